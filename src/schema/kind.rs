/// The kind of system a schema catalog describes. It lives here, below the analysis, because
/// pulling and reading catalogs already depend on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SystemKind {
    BusinessCentral,
    Dataverse,
}

impl SystemKind {
    pub const ALL: [(&'static str, SystemKind); 2] = [
        ("business_central", SystemKind::BusinessCentral),
        ("dataverse", SystemKind::Dataverse),
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SystemKind::BusinessCentral => "business_central",
            SystemKind::Dataverse => "dataverse",
        }
    }
}
