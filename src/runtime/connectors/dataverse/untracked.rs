//! The deletion position of a table without change tracking: `untracked <time of the check>`.
//!
//! Finding out that a table has no change tracking costs a request; the engine keeps the
//! position between runs, so the next runs skip that request (a no-change run then costs one
//! request on a Dataverse source side) and ask again once a day, in case tracking was turned on.

use chrono::{DateTime, Duration, Utc};

const PREFIX: &str = "untracked ";

/// Asked again after this long.
pub(super) fn recheck_after() -> Duration {
    Duration::hours(24)
}

/// The position saying "checked at `now`: not tracked".
pub(super) fn marker(now: DateTime<Utc>) -> String {
    format!(
        "{PREFIX}{}",
        now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    )
}

/// Whether `since` is a marker younger than [`recheck_after`].
pub(super) fn recent(since: Option<&str>, now: DateTime<Utc>) -> bool {
    since
        .and_then(|s| s.strip_prefix(PREFIX))
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .is_some_and(|t| {
            let age = now - t.with_timezone(&Utc);
            age >= Duration::zero() && age < recheck_after()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_expire_after_a_day() {
        let now = Utc::now();
        let m = marker(now);
        assert!(m.starts_with("untracked 20"));
        assert!(recent(Some(&m), now + Duration::hours(23)));
        assert!(!recent(Some(&m), now + Duration::hours(25)));
        assert!(
            !recent(Some(&m), now - Duration::hours(1)),
            "from the future"
        );
        assert!(!recent(
            Some("https://org/api/data/v9.2/accounts?$deltatoken=1"),
            now
        ));
        assert!(!recent(Some("untracked soon"), now));
        assert!(!recent(None, now));
    }
}
