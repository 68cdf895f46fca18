//! Pending creates: the creates of a page, stored before they are sent, so that a run that
//! stops (or hears no answer) before it couples them finds their records again instead of
//! making them twice.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One create whose outcome is not known yet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "Stored")]
pub struct PendingCreate {
    pub source: String,
    /// The id coupler chose for the new record.
    pub target: String,
    /// For an endpoint that gives new records ids of its own (Business Central): the values
    /// that find the record it made (the match fields, the key coupler set, or the texts
    /// written), since the id chosen is not its id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub find_by: Vec<(String, Value)>,
    /// When it was announced (`2026-12-03T10:00:00.000Z`): a record found by its values must
    /// have changed since (give or take the clocks' difference), or it was there before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub announced: Option<String>,
}

/// Stored forms: `[source, target]` (before `find_by`), or the struct.
#[derive(Deserialize)]
#[serde(untagged)]
enum Stored {
    Pair(String, String),
    Full {
        source: String,
        target: String,
        #[serde(default)]
        find_by: Vec<(String, Value)>,
        #[serde(default)]
        announced: Option<String>,
    },
}

impl From<Stored> for PendingCreate {
    fn from(s: Stored) -> Self {
        match s {
            Stored::Pair(source, target) => PendingCreate {
                source,
                target,
                find_by: Vec::new(),
                announced: None,
            },
            Stored::Full {
                source,
                target,
                find_by,
                announced,
            } => PendingCreate {
                source,
                target,
                find_by,
                announced,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_earlier_versions_stored() {
        let old: Vec<PendingCreate> = serde_json::from_str(r#"[["s1","t1"]]"#).unwrap();
        assert_eq!(old[0].source, "s1");
        assert_eq!(old[0].target, "t1");
        assert!(old[0].find_by.is_empty());
        let new = vec![PendingCreate {
            source: "s".into(),
            target: "t".into(),
            find_by: vec![
                ("Name".into(), Value::from("Alpha")),
                (
                    "Credit".into(),
                    serde_json::from_str("12345678901234567.89").unwrap(),
                ),
            ],
            announced: Some("2026-12-03T10:00:00.000Z".into()),
        }];
        let text = serde_json::to_string(&new).unwrap();
        let back: Vec<PendingCreate> = serde_json::from_str(&text).unwrap();
        assert_eq!(back, new);
    }
}
