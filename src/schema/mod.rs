//! Schema catalogs: the tables/entities of a system, with fields, types, lengths, option sets
//! and lookups, loaded from YAML (`schemas/*.yaml`, format in `docs/schema-catalog.md`).

mod catalog;
mod kind;
mod nav;
pub mod pull;
pub mod value_set;

pub use catalog::{Catalog, Field, FieldType, Table};
pub use kind::SystemKind;
pub use nav::Nav;
