//! The pulled catalog: what [`super::build_catalog`] produces and [`super::render`] writes.

use crate::schema::SystemKind;

/// A catalog ready to render.
#[derive(Debug, Clone)]
pub struct PulledCatalog {
    pub system: SystemKind,
    /// Header comment lines (without `# `).
    pub header: Vec<String>,
    pub tables: Vec<PulledTable>,
}

impl PulledCatalog {
    pub fn table(&self, name: &str) -> Option<&PulledTable> {
        self.tables.iter().find(|t| t.name == name)
    }

    pub fn table_names(&self) -> Vec<String> {
        self.tables.iter().map(|t| t.name.clone()).collect()
    }
}

#[derive(Debug, Clone)]
pub struct PulledTable {
    pub name: String,
    pub api: Option<String>,
    pub key: Vec<String>,
    pub modified_on: Option<String>,
    pub modified_by: Option<String>,
    pub fields: Vec<PulledField>,
    /// Comment lines shown above `fields:`.
    pub notes: Vec<String>,
}

impl PulledTable {
    pub fn field(&self, name: &str) -> Option<&PulledField> {
        self.fields.iter().find(|f| f.name == name)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PulledField {
    pub name: String,
    /// A catalog type name: `text`, `guid`, `option`, `lookup`, ...
    pub ty: &'static str,
    pub length: Option<u32>,
    pub options: Vec<(String, i64)>,
    pub option_set: Option<String>,
    pub lookup: Vec<String>,
    /// (lookup target table, navigation property through which the reference is written).
    pub nav: Vec<(String, String)>,
    pub api: Option<String>,
    pub read_only: bool,
    /// A trailing comment.
    pub note: Option<String>,
}
