//! HTTP connectors: Dataverse Web API and Business Central API v2.0.
//!
//! - [`http`]: the shared client (TLS, loopback-only plain http, concurrency limit, retries,
//!   request counter, secret scrubbing);
//! - [`auth`]: OAuth 2.0 client credentials (Entra ID), cached and renewed tokens;
//! - [`odata`]: query strings, watermark filters, paging links, `$batch` formats;
//! - [`dataverse`] and [`business_central`]: the two [`Connector`](crate::runtime::connector::Connector)s.

pub mod auth;
pub mod business_central;
pub mod dataverse;
pub mod http;
pub mod odata;

pub use business_central::{BusinessCentral, BusinessCentralOptions};
pub use dataverse::{Dataverse, DataverseOptions};
pub use http::{HttpError, HttpOptions};
