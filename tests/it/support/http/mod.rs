//! Real servers on loopback for the HTTP connector tests: SAP CAP 9 OData services imitating
//! Dataverse and Business Central (`cap`), a fault-injecting proxy (`proxy`), and a small server
//! for the Dataverse behaviours CAP lacks (`dataverse_mock`), with one OAuth token endpoint (`token`). The benches include this module too
//! (`#[path]`), so it stands alone.
#![allow(dead_code)]

pub mod answers;
pub mod cap;
pub mod dataverse_mock;
pub mod loopback;
pub mod proxy;
pub mod token;
