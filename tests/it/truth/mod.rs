//! The catalogs (`schemas/`) checked against the real API surface recorded from Microsoft's
//! sources (`tests/servers/api/`, each file with its provenance): a catalog binding that the
//! recorded API contradicts fails here, naming both.

mod business_central;
mod dataverse;
mod description;
