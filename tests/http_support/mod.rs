//! Real servers on loopback for the HTTP connector tests: SAP CAP 9 OData services imitating
//! Dataverse and Business Central (`cap`), a fault-injecting proxy (`proxy`), and a small server
//! for the Dataverse behaviours CAP lacks (`dataverse_mock`). Each test binary that needs them
//! declares `mod http_support;`.
#![allow(dead_code)]

pub mod cap;
pub mod dataverse_mock;
pub mod proxy;
