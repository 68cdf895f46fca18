//! The HTTP connectors against real servers on loopback: the SAP CAP imitations of Dataverse and
//! Business Central (tests/servers/cap), the fault-injecting proxy in front of them, and the
//! Dataverse mock (OAuth token endpoint, change tracking).
use crate::support::http as http_support;

use coupler::config::Auth;
use coupler::plan::filter::{Cmp, FValue, Pred, Target};
use coupler::runtime::connector::*;
use coupler::runtime::connectors::{
    BusinessCentral, BusinessCentralOptions, Dataverse, DataverseOptions, HttpOptions,
};
use coupler::schema::Catalog;
use http_support::cap::{CapServer, COMPANY_NAME, USER_HEADER};
use http_support::dataverse_mock::DataverseMock;
use http_support::proxy::{FaultProxy, Faults};
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

const IU: &str = "aaaaaaaa-0000-4000-8000-000000000001";

fn catalog(file: &str) -> Arc<Catalog> {
    let path = format!("{}/schemas/{file}", env!("CARGO_MANIFEST_DIR"));
    Arc::new(Catalog::parse(&std::fs::read_to_string(path).unwrap()).unwrap())
}

fn fast() -> HttpOptions {
    HttpOptions {
        max_retries: 3,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
        timeout: Duration::from_secs(20),
        ..HttpOptions::dataverse()
    }
}

fn dv(url: &str, auth: Option<&Auth>) -> Dataverse {
    Dataverse::new(
        catalog("dynamics-365-sales.yaml"),
        url,
        auth,
        Some(IU),
        DataverseOptions {
            http: fast(),
            extra_headers: vec![(USER_HEADER.into(), IU.into())],
            ..DataverseOptions::default()
        },
    )
    .unwrap()
}

fn bc(url: &str) -> BusinessCentral {
    BusinessCentral::new(
        catalog("business-central.yaml"),
        url,
        Some(COMPANY_NAME),
        None,
        None,
        BusinessCentralOptions {
            http: HttpOptions {
                concurrency: 5,
                ..fast()
            },
            ..BusinessCentralOptions::default()
        },
    )
    .unwrap()
}

fn fields(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

fn guid() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn eq(field: &str, value: FValue) -> Pred {
    Pred::Compare {
        field: Target {
            field: field.into(),
            api: Some(field.into()),
        },
        cmp: Cmp::Eq,
        value,
    }
}

async fn read_all(c: &dyn Connector, q: &ChangeQuery<'_>) -> (Vec<Record>, usize) {
    let mut out = Vec::new();
    let mut after: Option<Cursor> = None;
    let mut pages = 0;
    loop {
        let page = c.read_changes(q, after.as_ref()).await.unwrap();
        pages += 1;
        out.extend(page.records);
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
        assert!(pages < 100, "paging does not end");
    }
    (out, pages)
}

fn query<'a>(table: &'a str, page_size: usize) -> ChangeQuery<'a> {
    ChangeQuery {
        table,
        filter: None,
        since: None,
        exclude_modified_by: None,
        page_size,
        fields: None,
    }
}

const EVIL: &str = "x' or 1 eq 1 or name eq '";

#[tokio::test]
async fn dataverse_on_cap_writes_reads_pages_and_filters() {
    let cap = CapServer::start();
    let c = dv(&cap.dataverse_url(), None);
    let ids: Vec<String> = (0..5).map(|_| guid()).collect();
    let mut ops: Vec<WriteOp> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| WriteOp::Create {
            id: id.clone(),
            fields: fields(json!({"name": format!("A{i}"), "customertypecode": "Customer", "telephone1": "555"})),
        })
        .collect();
    let evil = guid();
    ops.push(WriteOp::Create {
        id: evil.clone(),
        fields: fields(json!({"name": EVIL})),
    });
    // Two records that fail inside the batch: an unknown option label, an update of a missing row.
    ops.push(WriteOp::Create {
        id: guid(),
        fields: fields(json!({"name": "bad", "customertypecode": "Nope"})),
    });
    ops.push(WriteOp::Update {
        id: guid(),
        fields: fields(json!({"name": "ghost"})),
    });
    let results = c.write("account", ops).await.unwrap();
    assert_eq!(results.len(), 8);
    for r in &results[..6] {
        let r = r.as_ref().unwrap();
        assert!(!r.modified_on.is_empty(), "{r:?}");
    }
    assert_eq!(
        results[0].as_ref().unwrap().get("customertypecode"),
        "Customer"
    );
    assert!(results[6].as_ref().unwrap_err().message.contains("Nope"));
    assert!(results[7].is_err(), "{:?}", results[7]);

    // Loop prevention: everything was written by the integration user.
    let mut q = query("account", 2);
    q.exclude_modified_by = Some(IU);
    assert!(read_all(&c, &q).await.0.is_empty());

    // Paging (CAP pages at 100 and ignores maxpagesize: one page; the mock below pages).
    let (all, _) = read_all(&c, &query("account", 2)).await;
    let mut seen: Vec<&str> = all.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(seen.len(), 6);
    seen.dedup();
    assert_eq!(seen.len(), 6);
    let cursors: Vec<Cursor> = all.iter().map(Record::cursor).collect();
    assert!(cursors.windows(2).all(|w| w[0] < w[1]), "{cursors:?}");

    // $select
    let sel = vec!["name".to_string()];
    let mut q = query("account", 100);
    q.fields = Some(&sel);
    let (some, _) = read_all(&c, &q).await;
    assert!(some
        .iter()
        .all(|r| r.fields.contains_key("name") && !r.fields.contains_key("telephone1")));

    // Filter pushdown; a quote cannot escape its literal.
    let p = eq("name", FValue::Text("A1".into()));
    let mut q = query("account", 100);
    q.filter = Some(&p);
    let (a1, _) = read_all(&c, &q).await;
    assert_eq!(a1.len(), 1);
    assert_eq!(a1[0].id, ids[1]);
    let p = eq("name", FValue::Text(EVIL.into()));
    q.filter = Some(&p);
    let (ev, _) = read_all(&c, &q).await;
    assert_eq!(
        ev.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        vec![evil.as_str()]
    );
    let found = c
        .find(
            "account",
            &[("name".into(), json!("nothing' or name ne '"))],
            false,
            None,
        )
        .await
        .unwrap();
    assert!(found.is_empty());
    let found = c
        .find("account", &[("name".into(), json!(EVIL))], false, None)
        .await
        .unwrap();
    assert_eq!(found.len(), 1);

    // Update, delete, read by ids, count.
    let before = all.iter().find(|r| r.id == ids[1]).unwrap().clone();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let results = c
        .write(
            "account",
            vec![
                WriteOp::Update {
                    id: ids[1].clone(),
                    fields: fields(json!({"name": "A1 renamed"})),
                },
                WriteOp::Delete { id: ids[2].clone() },
            ],
        )
        .await
        .unwrap();
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let after = results[0].as_ref().unwrap();
    assert!(after.modified_on > before.modified_on);
    let back = c
        .read_by_ids("account", &[ids[1].clone(), ids[2].clone()])
        .await
        .unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].get("name"), "A1 renamed");
    assert_eq!(back[0].modified_by.as_deref(), Some(IU));
    assert_eq!(c.count("account", None).await.unwrap(), 5);
    let active = eq(
        "customertypecode",
        FValue::Option {
            label: "Customer".into(),
            value: 3,
            api: "Customer".into(),
        },
    );
    assert_eq!(c.count("account", Some(&active)).await.unwrap(), 4);
    // CAP has no change tracking: no deletions known, no error.
    assert!(c.read_deleted("account", None).await.unwrap().is_empty());
}

#[tokio::test]
async fn watermark_with_equal_stamps_on_cap() {
    let cap = CapServer::start();
    // One transaction (an atomicity group): CAP stamps every row with the same modifiedon.
    let requests: Vec<Value> = (0..5)
        .map(|i| {
            json!({"id": format!("r{i}"), "atomicityGroup": "g", "method": "POST", "url": "accounts",
                   "headers": {"content-type": "application/json"},
                   "body": {"accountid": guid(), "name": format!("S{i}")}})
        })
        .collect();
    let resp = reqwest::Client::new()
        .post(format!("{}/$batch", cap.dataverse_url()))
        .json(&json!({ "requests": requests }))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    let c = dv(&cap.dataverse_url(), None);
    let (all, _) = read_all(&c, &query("account", 100)).await;
    assert_eq!(all.len(), 5);
    assert!(all.iter().all(|r| r.modified_on == all[0].modified_on));
    // Keyset pages from a fresh connector (no stored next link): the id breaks the tie.
    for cut in 0..5 {
        let c = dv(&cap.dataverse_url(), None);
        let since = all[cut].cursor();
        let mut q = query("account", 2);
        q.since = Some(&since);
        let (rest, _) = read_all(&c, &q).await;
        let got: Vec<&str> = rest.iter().map(|r| r.id.as_str()).collect();
        let want: Vec<&str> = all[cut + 1..].iter().map(|r| r.id.as_str()).collect();
        assert_eq!(got, want, "after {cut}");
    }
}

#[tokio::test]
async fn business_central_on_cap_etags_and_conflicts() {
    let cap = CapServer::start();
    let c = bc(&cap.business_central_url());
    let results = c
        .write(
            "Customer",
            vec![
                WriteOp::Create {
                    id: guid(),
                    fields: fields(json!({"No.": "c1", "Name": "One", "Blocked": " "})),
                },
                WriteOp::Create {
                    id: guid(),
                    fields: fields(json!({"No.": "C2", "Name": "Two", "Blocked": "Ship"})),
                },
                // Not exposed by the API: fails alone, with the reason.
                WriteOp::Create {
                    id: guid(),
                    fields: fields(json!({"No.": "C3", "Search Name": "X"})),
                },
            ],
        )
        .await
        .unwrap();
    let one = results[0].as_ref().unwrap().clone();
    assert_eq!(one.get("No."), "C1");
    assert_eq!(one.get("Blocked"), " ");
    assert_eq!(results[1].as_ref().unwrap().get("Blocked"), "Ship");
    assert!(
        results[2]
            .as_ref()
            .is_err_and(|e| e.message.contains("`Customer`.`Search Name`")
                && e.message.contains("cannot be written")),
        "{results:?}"
    );

    let (all, _) = read_all(&c, &query("Customer", 1)).await;
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].get("Search Name"), &Value::Null);
    let blank = Pred::Compare {
        field: Target {
            field: "Blocked".into(),
            api: Some("blocked".into()),
        },
        cmp: Cmp::Eq,
        value: FValue::Option {
            label: " ".into(),
            value: 0,
            api: "_x0020_".into(),
        },
    };
    let mut q = query("Customer", 10);
    q.filter = Some(&blank);
    let (unblocked, _) = read_all(&c, &q).await;
    assert_eq!(unblocked.len(), 1);
    assert_eq!(unblocked[0].id, one.id);

    // Update with the etag read: fine.
    let r = c
        .write(
            "Customer",
            vec![WriteOp::Update {
                id: one.id.clone(),
                fields: fields(json!({"Name": "One!"})),
            }],
        )
        .await
        .unwrap();
    assert_eq!(r[0].as_ref().unwrap().get("Name"), "One!");
    // Someone else changes it: our etag is stale, the update fails as a conflict.
    let url = format!("{}/customers({})", cap.company_url(), one.id);
    let resp = reqwest::Client::new()
        .patch(&url)
        .header("If-Match", "*")
        .json(&json!({"displayName": "Theirs"}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    let r = c
        .write(
            "Customer",
            vec![WriteOp::Update {
                id: one.id.clone(),
                fields: fields(json!({"Name": "Ours"})),
            }],
        )
        .await
        .unwrap();
    let e = &r[0].as_ref().unwrap_err().message;
    assert!(
        e.contains("changed by someone else") && e.contains("412"),
        "{e}"
    );
    let found = c
        .find("Customer", &[("Name".into(), json!("theirs"))], true, None)
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(c.count("Customer", None).await.unwrap(), 2);
}

#[tokio::test]
async fn retries_through_the_fault_proxy() {
    let cap = tokio::task::spawn_blocking(CapServer::start).await.unwrap();
    let proxy = FaultProxy::start(&cap.base_url(), Faults::none());
    let url = format!("{}/api/data/v9.2", proxy.url());
    let c = dv(&url, None);
    let create = |name: &str| WriteOp::Create {
        id: guid(),
        fields: fields(json!({ "name": name })),
    };

    // 429 + Retry-After: 1 s is waited out.
    proxy.throttle_429(1, 1);
    let t = Instant::now();
    let r = c.write("account", vec![create("t")]).await.unwrap();
    assert!(r[0].is_ok(), "{r:?}");
    assert!(t.elapsed() >= Duration::from_secs(1), "{:?}", t.elapsed());

    // 5xx on every other request: retried, then success.
    proxy.fail_every_nth_with(2, 503);
    for i in 0..3 {
        let r = c
            .write("account", vec![create(&format!("f{i}"))])
            .await
            .unwrap();
        assert!(r[0].is_ok(), "{r:?}");
    }
    assert!(read_all(&c, &query("account", 100)).await.0.len() >= 4);
    proxy.clear_faults();

    // Dropped connections: retried.
    proxy.drop_connection_every_nth(2);
    for i in 0..3 {
        let r = c
            .write("account", vec![create(&format!("d{i}"))])
            .await
            .unwrap();
        assert!(r[0].is_ok(), "{r:?}");
    }
    proxy.clear_faults();

    // Retries exhausted: the records fail with the reason, the call does not.
    proxy.fail_every_nth_with(1, 503);
    let before = c.http().request_count();
    let r = c
        .write("account", vec![create("x1"), create("x2")])
        .await
        .unwrap();
    assert_eq!(r.len(), 2);
    for e in &r {
        let e = &e.as_ref().unwrap_err().message;
        assert!(e.contains("503") && e.contains("4 attempts"), "{e}");
    }
    assert_eq!(c.http().request_count() - before, 4);
    // A read that cannot get through is an endpoint error.
    let e = c
        .read_changes(&query("account", 10), None)
        .await
        .unwrap_err();
    assert!(e.is_transient() && e.message.contains("503"), "{e:?}");
    proxy.clear_faults();
}

#[tokio::test]
async fn concurrency_limit_is_respected() {
    let cap = tokio::task::spawn_blocking(CapServer::start).await.unwrap();
    let proxy = FaultProxy::start(
        &cap.base_url(),
        Faults::none().with_latency(Duration::from_millis(50)),
    );
    let url = format!("{}/api/v2.0", proxy.url());
    let opts = BusinessCentralOptions {
        http: HttpOptions {
            concurrency: 5,
            ..fast()
        },
        use_batch: false,
        ..BusinessCentralOptions::default()
    };
    let c = BusinessCentral::new(
        catalog("business-central.yaml"),
        &url,
        None,
        None,
        None,
        opts,
    )
    .unwrap();
    let ops: Vec<WriteOp> = (0..20)
        .map(|i| WriteOp::Create {
            id: guid(),
            fields: fields(json!({"No.": format!("K{i}"), "Name": "k"})),
        })
        .collect();
    let r = c.write("Customer", ops).await.unwrap();
    assert!(r.iter().all(Result::is_ok));
    assert!(
        proxy.max_in_flight_seen() <= 5,
        "{}",
        proxy.max_in_flight_seen()
    );
    assert!(proxy.max_in_flight_seen() >= 2);
}

fn mock_auth(mock: &DataverseMock, secret: &str) -> Auth {
    let cfg = mock.config();
    Auth {
        tenant: cfg.tenant,
        client_id: cfg.client_id,
        client_secret: secret.into(),
        token_url: Some(mock.token_url()),
    }
}

#[tokio::test]
async fn tokens_paging_and_change_tracking_on_the_mock() {
    let mock = tokio::task::spawn_blocking(DataverseMock::start)
        .await
        .unwrap();
    let secret = mock.config().client_secret;
    let auth = mock_auth(&mock, &secret);
    let c = Dataverse::new(
        catalog("dynamics-365-sales.yaml"),
        &mock.api_url(),
        Some(&auth),
        None,
        DataverseOptions {
            http: fast(),
            ..DataverseOptions::default()
        },
    )
    .unwrap();
    assert_eq!(c.who_am_i().await.unwrap(), mock.integration_user());
    assert_eq!(mock.tokens_issued(), 1);
    let rows: Vec<Value> = (0..7)
        .map(|i| json!({"accountid": guid(), "name": format!("M{i}"), "modifiedon": "2024-05-01T10:00:00.000Z"}))
        .collect();
    mock.seed("accounts", rows);
    // Absolute next links with opaque skip tokens, equal stamps.
    let (all, pages) = read_all(&c, &query("account", 3)).await;
    assert_eq!(all.len(), 7);
    assert_eq!(pages, 3);
    let mut ids: Vec<&str> = all.iter().map(|r| r.id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 7);

    // A revoked token: one renewal, then the request goes through.
    mock.expire_tokens();
    let again = c
        .read_by_ids("account", &[all[0].id.clone()])
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(mock.tokens_issued(), 2);

    // Deletions through change tracking (within one connector's life).
    assert!(c.read_deleted("account", None).await.unwrap().is_empty());
    assert!(mock.delete("accounts", &all[0].id));
    let gone = c.read_deleted("account", None).await.unwrap();
    assert_eq!(
        gone.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(),
        vec![all[0].id.as_str()]
    );
    assert!(c.read_deleted("account", None).await.unwrap().is_empty());

    // Across runs: the delta link is the deletion position the engine stores, and a new
    // connector (the next run) resumes from it.
    let position = c.deletion_position("account").expect("a delta link");
    assert!(position.starts_with("http"), "{position}");
    assert!(mock.delete("accounts", &all[6].id));
    let next_run = Dataverse::new(
        catalog("dynamics-365-sales.yaml"),
        &mock.api_url(),
        Some(&auth),
        None,
        DataverseOptions {
            http: fast(),
            ..DataverseOptions::default()
        },
    )
    .unwrap();
    let gone = next_run
        .read_deleted("account", Some(&position))
        .await
        .unwrap();
    assert_eq!(
        gone.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(),
        vec![all[6].id.as_str()]
    );

    // Writes as single requests (204 + OData-EntityId, stamps read back) and as a $batch.
    let r = c
        .write(
            "account",
            vec![WriteOp::Create {
                id: guid(),
                fields: fields(json!({"name": "one"})),
            }],
        )
        .await
        .unwrap();
    assert!(!r[0].as_ref().unwrap().modified_on.is_empty());
    let r = c
        .write(
            "account",
            vec![
                WriteOp::Update {
                    id: all[1].id.clone(),
                    fields: fields(json!({"name": "renamed"})),
                },
                WriteOp::Update {
                    id: guid(),
                    fields: fields(json!({"name": "missing"})),
                },
            ],
        )
        .await
        .unwrap();
    assert!(r[0].is_ok(), "{r:?}");
    assert!(r[1].as_ref().unwrap_err().message.contains("404"), "{r:?}");
    // Loop prevention: what the integration user wrote is not read back.
    let mut q = query("account", 100);
    let user = mock.integration_user();
    q.exclude_modified_by = Some(&user);
    let (theirs, _) = read_all(&c, &q).await;
    // Seven seeded, two deleted above, one rewritten by the integration user.
    assert_eq!(theirs.len(), 4);
}

#[tokio::test]
async fn secrets_never_appear_in_errors_or_debug() {
    let mock = tokio::task::spawn_blocking(DataverseMock::start)
        .await
        .unwrap();
    let secret = "S3cr3t-never-print-me";
    let auth = mock_auth(&mock, secret);
    assert!(!format!("{auth:?}").contains(secret));
    let make = |url: &str, auth: &Auth| {
        Dataverse::new(
            catalog("dynamics-365-sales.yaml"),
            url,
            Some(auth),
            None,
            DataverseOptions {
                http: fast(),
                ..DataverseOptions::default()
            },
        )
    };
    let mut texts = Vec::new();
    // A wrong secret: the token endpoint refuses.
    let c = make(&mock.api_url(), &auth).unwrap();
    let e = c
        .read_changes(&query("account", 10), None)
        .await
        .unwrap_err();
    assert!(
        e.message.contains("invalid_client") || e.message.contains("401"),
        "{e:?}"
    );
    texts.push(format!("{e} {e:?} {:?}", c.http()));
    // Unreachable token endpoint and API.
    let mut dead = auth.clone();
    dead.token_url = Some("http://127.0.0.1:9/token".into());
    let c = make("http://127.0.0.1:9/api/data/v9.2", &dead).unwrap();
    texts.push(format!(
        "{:?}",
        c.read_changes(&query("account", 10), None)
            .await
            .unwrap_err()
    ));
    texts.push(format!(
        "{:?}",
        c.write("account", vec![WriteOp::Delete { id: guid() }])
            .await
    ));
    // Plain http to a non-loopback host is refused before anything is sent.
    let e = make("http://example.com/api/data/v9.2", &auth)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("loopback"), "{e}");
    texts.push(e);
    let mut remote = auth.clone();
    remote.token_url = Some(format!("http://example.com/?secret={secret}"));
    texts.push(make(&mock.api_url(), &remote).err().unwrap().to_string());
    // A valid token, then API errors: the token is not in them either.
    let good = mock_auth(&mock, &mock.config().client_secret);
    let c = make(&mock.api_url(), &good).unwrap();
    let e = c.find("nosuchtable", &[], false, None).await.unwrap_err();
    texts.push(e.message);
    let e = c.read_by_ids("account", &[guid()]).await;
    texts.push(format!("{e:?}"));
    let token = mock.issue_token();
    for t in &texts {
        assert!(!t.contains(secret), "secret in: {t}");
        assert!(!t.contains(&mock.config().client_secret), "secret in: {t}");
        assert!(!t.contains(&token), "token in: {t}");
    }
}

#[test]
fn configuration_refuses_plain_http_to_remote_hosts() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("coupler.yaml");
    std::fs::write(
        &cfg,
        "profiles:\n  p:\n    state: s.db\n    systems:\n      sales: { kind: dataverse, url: 'http://org.crm.dynamics.com/api/data/v9.2' }\n",
    )
    .unwrap();
    let e = coupler::config::load_profile(Some(&cfg), "p").unwrap_err();
    assert!(e.0.contains("loopback"), "{}", e.0);
    std::fs::write(
        &cfg,
        "profiles:\n  p:\n    state: s.db\n    systems:\n      sales: { kind: dataverse, url: 'http://127.0.0.1:1/api/data/v9.2', integration_user: nope }\n",
    )
    .unwrap();
    let e = coupler::config::load_profile(Some(&cfg), "p").unwrap_err();
    assert!(e.0.contains("GUID"), "{}", e.0);
}

#[test]
fn configuration_names_a_time_zone_it_does_not_know() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("coupler.yaml");
    let profile = |zone: &str| {
        format!("profiles:\n  p:\n    state: s.db\n    systems:\n      sales: {{ kind: dataverse, url: 'http://127.0.0.1:1/api/data/v9.2', time_zone: '{zone}' }}\n")
    };
    std::fs::write(&cfg, profile("Europe/Berlni")).unwrap();
    let e = coupler::config::load_profile(Some(&cfg), "p").unwrap_err();
    assert!(
        e.0.contains("system `sales`") && e.0.contains("`time_zone`: `Europe/Berlni`"),
        "{}",
        e.0
    );
    std::fs::write(&cfg, profile("Europe/Berlin")).unwrap();
    coupler::config::load_profile(Some(&cfg), "p").unwrap();
}

/// The Metadata API's InsertOptionValue on the CAP Dataverse: the connector sends the action, the
/// answer's NewOptionValue (100000000, the default publisher's first) is what an account written
/// with the new label stores; a connector of a later run learns the value from the attribute's
/// OptionSet; a label the set has already is refused with the server's reason.
#[tokio::test]
async fn insert_option_value_on_cap_adds_a_value_records_use() {
    let cap = CapServer::start();
    let c = dv(&cap.dataverse_url(), None);
    let value = c
        .insert_option_value("account", "paymenttermscode", "14 DAYS", None)
        .await
        .expect("InsertOptionValue");
    assert_eq!(value, 100_000_000);
    let copied = c
        .insert_option_value("salesorder", "paymenttermscode", "14 DAYS", Some(value))
        .await
        .expect("the same value in the order's set");
    assert_eq!(copied, value);

    let id = guid();
    let written = c
        .write(
            "account",
            vec![WriteOp::Create {
                id: id.clone(),
                fields: fields(json!({"name": "Beta", "paymenttermscode": "14 DAYS"})),
            }],
        )
        .await
        .unwrap();
    assert!(written[0].is_ok(), "{written:?}");

    // A later run: the catalog does not know the value until the option set is read.
    let later = dv(&cap.dataverse_url(), None);
    let raw = later
        .read_by_ids("account", std::slice::from_ref(&id))
        .await
        .unwrap();
    assert_eq!(raw[0].get("paymenttermscode"), &json!(100_000_000));
    let added = later
        .added_options("account", "paymenttermscode")
        .await
        .unwrap();
    assert_eq!(added, vec![("14 DAYS".to_string(), 100_000_000)]);
    let read = later
        .read_by_ids("account", std::slice::from_ref(&id))
        .await
        .unwrap();
    assert_eq!(read[0].get("paymenttermscode"), &json!("14 DAYS"));

    let again = later
        .insert_option_value("account", "paymenttermscode", "14 days", None)
        .await
        .expect_err("a label the set has");
    assert!(again.message.contains("already exists"), "{again}");
    let taken = later
        .insert_option_value("invoice", "paymenttermscode", "Other", Some(1))
        .await
        .expect_err("a value the set has");
    assert!(taken.message.contains("already used"), "{taken}");
}
