//! What an incremental run with no change costs, per source side: the requests the connectors
//! save between runs (through the positions the engine keeps, or the configuration).
use crate::support::http as http_support;

use coupler::runtime::connector::*;
use coupler::runtime::connectors::{
    BusinessCentral, BusinessCentralOptions, Dataverse, DataverseOptions, HttpOptions,
};
use coupler::schema::Catalog;
use http_support::cap::{CapServer, COMPANY_NAME, USER_HEADER};
use http_support::proxy::{FaultProxy, Faults};
use std::sync::Arc;
use std::time::Duration;

const IU: &str = "aaaaaaaa-0000-4000-8000-000000000001";

fn catalog(file: &str) -> Arc<Catalog> {
    let path = format!("{}/schemas/{file}", env!("CARGO_MANIFEST_DIR"));
    Arc::new(Catalog::parse(&std::fs::read_to_string(path).unwrap()).unwrap())
}

fn connector(url: &str) -> Dataverse {
    Dataverse::new(
        catalog("dynamics-365-sales.yaml"),
        url,
        None,
        Some(IU),
        DataverseOptions {
            http: HttpOptions {
                max_retries: 1,
                base_delay: Duration::from_millis(20),
                ..HttpOptions::dataverse()
            },
            extra_headers: vec![(USER_HEADER.into(), IU.into())],
            ..DataverseOptions::default()
        },
    )
    .unwrap()
}

fn query(table: &str) -> ChangeQuery<'_> {
    ChangeQuery {
        table,
        filter: None,
        since: None,
        exclude_modified_by: None,
        page_size: 100,
        fields: None,
    }
}

#[tokio::test]
async fn business_central_company_by_id_saves_a_request() {
    let cap = tokio::task::spawn_blocking(CapServer::start).await.unwrap();
    let proxy = FaultProxy::start(&cap.base_url(), Faults::none());
    let url = format!("{}/api/v2.0", proxy.url());
    // An incremental read with nothing new: the company lookup and the read, or the read alone.
    for (company, requests) in [(COMPANY_NAME, 2), (cap.company_id(), 1)] {
        let c = BusinessCentral::new(
            catalog("business-central.yaml"),
            &url,
            Some(company),
            None,
            None,
            BusinessCentralOptions::default(),
        )
        .unwrap();
        let before = proxy.requests();
        let page = c.read_changes(&query("Customer"), None).await.unwrap();
        assert!(page.records.is_empty() && page.next.is_none());
        assert_eq!(proxy.requests() - before, requests, "company `{company}`");
    }
}

#[tokio::test]
async fn no_change_tracking_is_remembered_between_runs() {
    let cap = tokio::task::spawn_blocking(CapServer::start).await.unwrap();
    let proxy = FaultProxy::start(&cap.base_url(), Faults::none());
    let url = format!("{}/api/data/v9.2", proxy.url());
    // A run: CAP has no change tracking, which costs one request to find out.
    let first = connector(&url);
    assert!(first
        .read_deleted("account", None)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(proxy.requests(), 1);
    let position = first.deletion_position("account").unwrap();
    assert!(position.starts_with("untracked "), "{position}");
    // The next run (a new connector) gets the position from the state store: no request.
    let next = connector(&url);
    assert!(next
        .read_deleted("account", Some(&position))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(proxy.requests(), 1);
    assert_eq!(next.deletion_position("account"), Some(position));
    // A day later it asks again.
    let old = "untracked 2020-01-01T00:00:00Z";
    let later = connector(&url);
    assert!(later
        .read_deleted("account", Some(old))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(proxy.requests(), 2);
    assert_ne!(later.deletion_position("account").as_deref(), Some(old));
}
