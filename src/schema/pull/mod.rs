//! `coupler schema pull`: an OData v4 `$metadata` document (CSDL XML) converted to a schema
//! catalog (`docs/schema-catalog.md`). Pure: no I/O here; the command line fetches the document.
//!
//! The conversion runs in three steps that can be tested on their own:
//! [`parse_csdl`] reads the XML into a [`Csdl`] model, [`build_catalog`] maps it to a
//! [`PulledCatalog`] (one [`PulledTable`] per entity type, fields with catalog types), and
//! [`render`] writes the YAML. [`catalog_from_csdl`] does all three and checks the result with
//! [`Catalog::parse`] and [`Catalog::validate`].
//!
//! Mapping rules:
//! - Every non-abstract `EntityType` with a key (its own or inherited through `BaseType`) becomes a
//!   table named by the type's `Name`; its `EntitySet` name becomes `api:`.
//! - `Key/PropertyRef` -> `key`; key fields come first, the others in document order.
//! - `Edm.String` (`MaxLength`) -> `text` (`length`), `Edm.Guid` -> `guid`, `Edm.Int16/Int32` ->
//!   `integer`, `Edm.Int64` -> `bigint`, `Edm.Decimal/Double/Single` -> `decimal`, `Edm.Boolean`
//!   -> `boolean`, `Edm.Date` -> `date`, `Edm.DateTimeOffset` -> `datetime`, `Edm.TimeOfDay` ->
//!   `time`, `Edm.Duration` -> `duration`, `Edm.Binary/Stream` -> `blob`; an `EnumType` ->
//!   `option` with its members (`_x0020_` decoded, so BC's blank member is `' '`).
//!   Complex types, collections and spatial types are left out (a comment names them).
//! - A property that a single-valued `NavigationProperty` names in its `ReferentialConstraint`
//!   gets `lookup:` the navigation target. Dataverse's `_x_value` properties become the lookup
//!   column `x` (`type: lookup`), with every target whose navigation property refers to it.
//!   Targets outside the catalog (not in `$metadata`, or left out by `--only`) are dropped, and a
//!   comment says so.
//! - `read_only`: `Org.OData.Core.V1.Computed` and `Core.Permissions = Read`, inline or in
//!   `Annotations` blocks; also the system stamps (Dataverse `createdon`, `createdby`,
//!   `modifiedon`, `modifiedby`, ...; BC `lastModifiedDateTime`).
//! - Dataverse choices are `Edm.Int32` in `$metadata` (no enum): they come out as `integer` unless
//!   [`PullOptions::option_sets`] supplies their values (read from the Metadata API).

mod build;
mod csdl;
mod model;
mod options;
mod render;
mod select;
mod targets;

pub use build::{build_catalog, decode_xml_name};
pub use csdl::{parse_csdl, Csdl, EntityType, EnumType, NavigationProperty, Property};
pub use model::{PulledCatalog, PulledField, PulledTable};
pub use options::apply_option_sets;
pub use render::render;

use crate::schema::Catalog;
use crate::schema::SystemKind;
use std::collections::BTreeMap;

/// What to pull and how to describe it.
#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    /// Tables to keep (table or entity set names); empty: all.
    pub only: Vec<String>,
    /// Where the document came from (a URL or file name), for the header comment.
    pub source: Option<String>,
    /// Choice values per table and column (label, value), e.g. from Dataverse's Metadata API.
    /// A listed `integer` column becomes an `option` column.
    pub option_sets: BTreeMap<String, BTreeMap<String, OptionSetValues>>,
}

/// The values of one choice column.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OptionSetValues {
    /// The option set's name when it is shared (a global choice), else `None`.
    pub name: Option<String>,
    pub options: Vec<(String, i64)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullError {
    pub message: String,
    /// 1-based line of the XML document, when the problem has one.
    pub line: Option<usize>,
}

impl PullError {
    pub(crate) fn new(message: impl Into<String>, line: Option<usize>) -> PullError {
        PullError {
            message: message.into(),
            line,
        }
    }
}

impl std::fmt::Display for PullError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for PullError {}

/// `$metadata` XML -> catalog YAML, checked with [`Catalog::parse`] and [`Catalog::validate`].
pub fn catalog_from_csdl(
    xml: &str,
    kind: SystemKind,
    options: &PullOptions,
) -> Result<String, PullError> {
    let csdl = parse_csdl(xml)?;
    let catalog = build_catalog(&csdl, kind, options)?;
    let yaml = render(&catalog);
    let parsed = Catalog::parse(&yaml).map_err(|e| {
        PullError::new(
            format!("internal error: the pulled catalog does not load: {e}"),
            None,
        )
    })?;
    let problems = parsed.validate();
    if !problems.is_empty() {
        return Err(PullError::new(
            format!(
                "internal error: the pulled catalog does not validate: {}",
                problems.join("; ")
            ),
            None,
        ));
    }
    Ok(yaml)
}
