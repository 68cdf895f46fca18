//! Date-only columns with the UserLocal behaviour (`salesorder.requestdeliveryby`,
//! `pricelevel.begindate`, …). The Web API holds them as `Edm.DateTimeOffset`: the UTC instant of
//! midnight in the time zone of the user who entered the date. Cutting that instant to its UTC
//! date gives the previous day east of UTC, so coupler reads and writes them as dates in the
//! profile's `time_zone` (UTC when unset).

use chrono::{DateTime, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

/// The date `instant` (RFC 3339) falls on in `tz`; None when it is not a date-time.
pub fn read(instant: &str, tz: Tz) -> Option<String> {
    let at = DateTime::parse_from_rfc3339(instant.trim()).ok()?;
    Some(
        at.with_timezone(&tz)
            .date_naive()
            .format("%Y-%m-%d")
            .to_string(),
    )
}

/// The instant (RFC 3339, UTC) at which `date` begins in `tz`; None when it is not a date.
/// Where midnight does not exist (a clock change at 00:00), the first instant of that day.
pub fn write(date: &str, tz: Tz) -> Option<String> {
    let day = NaiveDate::parse_from_str(date.get(..10)?, "%Y-%m-%d").ok()?;
    let start = (0..24 * 4).find_map(|quarter| {
        let time = NaiveTime::from_num_seconds_from_midnight_opt(quarter * 15 * 60, 0)?;
        tz.from_local_datetime(&day.and_time(time)).earliest()
    })?;
    Some(
        start
            .with_timezone(&Utc)
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tz(name: &str) -> Tz {
        name.parse().unwrap()
    }

    #[test]
    fn a_date_east_of_utc_is_the_previous_evening_in_utc_and_reads_back_as_itself() {
        let auckland = tz("Pacific/Auckland"); // UTC+13 in December
        assert_eq!(
            write("2026-12-03", auckland).as_deref(),
            Some("2026-12-02T11:00:00Z")
        );
        assert_eq!(
            read("2026-12-02T11:00:00Z", auckland).as_deref(),
            Some("2026-12-03")
        );
        // What cutting the instant to its UTC date would have given.
        assert_eq!(
            read("2026-12-02T11:00:00Z", tz("UTC")).as_deref(),
            Some("2026-12-02")
        );
    }

    #[test]
    fn west_of_utc_and_across_a_daylight_saving_change() {
        let la = tz("America/Los_Angeles");
        assert_eq!(
            write("2026-01-15", la).as_deref(),
            Some("2026-01-15T08:00:00Z")
        );
        assert_eq!(
            write("2026-07-15", la).as_deref(),
            Some("2026-07-15T07:00:00Z")
        );
        assert_eq!(
            read("2026-07-15T07:00:00Z", la).as_deref(),
            Some("2026-07-15")
        );
        // Offsets in the answer are honoured whatever they are.
        assert_eq!(
            read("2026-07-15T00:00:00-07:00", la).as_deref(),
            Some("2026-07-15")
        );
    }

    #[test]
    fn a_day_without_midnight_starts_at_its_first_instant() {
        // Santiago moved its clocks from 00:00 to 01:00 on 2022-09-11.
        let santiago = tz("America/Santiago");
        let start = write("2022-09-11", santiago).unwrap();
        assert_eq!(start, "2022-09-11T04:00:00Z");
        assert_eq!(read(&start, santiago).as_deref(), Some("2022-09-11"));
    }

    #[test]
    fn every_day_of_a_year_round_trips_in_every_zone() {
        for name in [
            "UTC",
            "Europe/Berlin",
            "Asia/Kolkata",
            "Pacific/Chatham",
            "America/St_Johns",
            "Pacific/Kiritimati",
            "Pacific/Pago_Pago",
        ] {
            let zone = tz(name);
            let mut day = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
            while day.format("%Y").to_string() == "2026" {
                let d = day.format("%Y-%m-%d").to_string();
                let back = read(&write(&d, zone).unwrap(), zone);
                assert_eq!(back.as_deref(), Some(d.as_str()), "{name}");
                day = day.succ_opt().unwrap();
            }
        }
    }

    #[test]
    fn not_dates_and_not_zones() {
        assert_eq!(write("soon", tz("UTC")), None);
        assert_eq!(read("2026-12-03", tz("UTC")), None);
    }
}
