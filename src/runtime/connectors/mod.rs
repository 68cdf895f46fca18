//! HTTP connectors: Dataverse Web API and Business Central API v2.0.
//!
//! - [`http`]: the HTTP transport (TLS, loopback-only plain http, concurrency limit, the one
//!   retry loop, request counter, secret scrubbing);
//! - [`auth`]: OAuth 2.0 client credentials (Entra ID), cached and renewed tokens (below
//!   [`http`]'s [`Bearer`](http::Bearer) trait, so the two do not import each other);
//! - [`odata`]: the OData core both connectors share: query strings, watermark filters, paging,
//!   `$batch` formats and their answers, the [`Client`](odata::Client) that sends them;
//! - [`dataverse`] and [`business_central`]: the two [`Connector`](crate::runtime::connector::Connector)s.

pub mod auth;
pub mod business_central;
pub mod dataverse;
pub mod http;
pub mod odata;

pub use business_central::{BusinessCentral, BusinessCentralOnly, BusinessCentralOptions};
pub use dataverse::{Dataverse, DataverseOnly, DataverseOptions};
pub use http::HttpOptions;
