//! The typed values the state store keeps as text: a pass's arrow, a report line's leg and a
//! run's status. Written and read in one place, as the JSON output has always shown them.

use crate::analysis::Arrow;
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use serde::{Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// The leg of a mapping that a report line counts: a pass in one direction, or that pass's
/// `[deferred]` patches, written `->` and `-> (deferred)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Leg {
    Pass(Arrow),
    Deferred(Arrow),
}

const DEFERRED: &str = " (deferred)";

impl Leg {
    pub fn arrow(self) -> Arrow {
        match self {
            Leg::Pass(a) | Leg::Deferred(a) => a,
        }
    }
}

impl fmt::Display for Leg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Leg::Pass(a) => f.pad(a.as_str()),
            Leg::Deferred(a) => f.pad(&format!("{a}{DEFERRED}")),
        }
    }
}

impl FromStr for Leg {
    type Err = crate::analysis::policy::UnknownArrow;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.strip_suffix(DEFERRED) {
            Some(a) => a.parse().map(Leg::Deferred),
            None => s.parse().map(Leg::Pass),
        }
    }
}

impl Serialize for Leg {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// How a run ended (or that it has not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunStatus {
    /// Started and not finished: still running, or killed.
    Running,
    Ok,
    /// Finished; some records failed.
    Failures,
    /// Finished; a mapping could not run.
    Error,
    /// Stopped by a signal before the end.
    Stopped,
    DryRun,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Ok => "ok",
            RunStatus::Failures => "failures",
            RunStatus::Error => "error",
            RunStatus::Stopped => "stopped",
            RunStatus::DryRun => "dry-run",
        }
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for RunStatus {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        [
            RunStatus::Running,
            RunStatus::Ok,
            RunStatus::Failures,
            RunStatus::Error,
            RunStatus::Stopped,
            RunStatus::DryRun,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
        .ok_or(())
    }
}

/// A text column that holds none of the type's values: a corrupt or newer state store.
#[derive(Debug, thiserror::Error)]
#[error("unknown {what} `{text}` in the state store")]
struct Unknown {
    what: &'static str,
    text: String,
}

/// Stored as its `Display` text, read back with `FromStr`; `what` names it in an error.
macro_rules! text_column {
    ($($t:ty => $what:literal),* $(,)?) => {$(
        impl ToSql for $t {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.to_string()))
            }
        }

        impl FromSql for $t {
            fn column_result(v: ValueRef<'_>) -> FromSqlResult<Self> {
                let s = v.as_str()?;
                s.parse().map_err(|_| {
                    FromSqlError::Other(Box::new(Unknown {
                        what: $what,
                        text: s.to_string(),
                    }))
                })
            }
        }
    )*};
}

text_column!(Arrow => "direction", Leg => "direction", RunStatus => "run status");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legs_read_back_as_written() {
        for a in [Arrow::Forward, Arrow::Backward, Arrow::Both] {
            for leg in [Leg::Pass(a), Leg::Deferred(a)] {
                assert_eq!(leg.to_string().parse::<Leg>().unwrap(), leg);
            }
        }
        assert_eq!(Leg::Deferred(Arrow::Forward).to_string(), "-> (deferred)");
        assert_eq!(format!("{:<5}|", Leg::Pass(Arrow::Backward)), "<-   |");
        assert!("=>".parse::<Leg>().is_err());
    }

    #[test]
    fn statuses_serialize_as_stored() {
        let json = serde_json::to_string(&RunStatus::DryRun).unwrap();
        assert_eq!(json, "\"dry-run\"");
    }
}
