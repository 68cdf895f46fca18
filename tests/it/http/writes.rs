//! Dataverse write semantics over HTTP, on the CAP imitation and on the Dataverse mock: a create
//! is an upsert `PATCH <set>(<id>)` (sent twice, it makes one record), an update is `PATCH` with
//! `If-Match: *` (a record deleted meanwhile fails with a clear reason and is not re-created),
//! alone and inside a multipart `$batch`.
use crate::support::http as http_support;

use coupler::config::Auth;
use coupler::runtime::connector::*;
use coupler::runtime::connectors::{Dataverse, DataverseOptions, HttpOptions};
use coupler::schema::Catalog;
use http_support::cap::{CapServer, USER_HEADER};
use http_support::dataverse_mock::DataverseMock;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::Duration;

const IU: &str = "aaaaaaaa-0000-4000-8000-000000000001";

pub(super) fn connector(url: &str, auth: Option<&Auth>, use_batch: bool) -> Dataverse {
    let path = format!(
        "{}/schemas/dynamics-365-sales.yaml",
        env!("CARGO_MANIFEST_DIR")
    );
    let catalog = Arc::new(Catalog::parse(&std::fs::read_to_string(path).unwrap()).unwrap());
    Dataverse::new(
        catalog,
        url,
        auth,
        Some(IU),
        DataverseOptions {
            http: HttpOptions {
                max_retries: 2,
                base_delay: Duration::from_millis(20),
                timeout: Duration::from_secs(20),
                ..HttpOptions::dataverse()
            },
            use_batch,
            extra_headers: vec![(USER_HEADER.into(), IU.into())],
            ..DataverseOptions::default()
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

fn create(id: &str, name: &str) -> WriteOp {
    WriteOp::Create {
        id: id.to_string(),
        fields: fields(json!({ "name": name })),
    }
}

fn update(id: &str, name: &str) -> WriteOp {
    WriteOp::Update {
        id: id.to_string(),
        fields: fields(json!({ "name": name })),
    }
}

async fn names(c: &Dataverse) -> Vec<(String, String)> {
    let q = ChangeQuery {
        table: "account",
        filter: None,
        since: None,
        exclude_modified_by: None,
        page_size: 1000,
        fields: None,
    };
    let page = c.read_changes(&q, None).await.unwrap();
    assert!(page.next.is_none());
    let mut out: Vec<(String, String)> = page
        .records
        .iter()
        .map(|r| (r.id.clone(), r.get("name").as_str().unwrap_or("").into()))
        .collect();
    out.sort();
    out
}

/// The checks both servers must pass, for single requests and for `$batch`.
async fn create_is_idempotent_and_update_never_recreates(c: &Dataverse, delete: impl Fn(&str)) {
    // Twice the same create (a create retried after a crash): one record, the second's values.
    let (a, b) = (guid(), guid());
    let r = c
        .write("account", vec![create(&a, "A"), create(&b, "B")])
        .await
        .unwrap();
    assert!(r.iter().all(Result::is_ok), "{r:?}");
    let r = c
        .write("account", vec![create(&a, "A again"), create(&b, "B")])
        .await
        .unwrap();
    assert!(r.iter().all(Result::is_ok), "{r:?}");
    assert_eq!(r[0].as_ref().unwrap().get("name"), "A again");
    let mut want = vec![(a.clone(), "A again".to_string()), (b.clone(), "B".into())];
    want.sort();
    assert_eq!(names(c).await, want);

    // An update of a record deleted meanwhile fails with the reason; the other update succeeds
    // and nothing is re-created.
    delete(&a);
    let r = c
        .write("account", vec![update(&a, "ghost"), update(&b, "B2")])
        .await
        .unwrap();
    let e = &r[0].as_ref().unwrap_err().message;
    assert!(
        e.contains(&a) && e.contains("deleted?") && e.contains("not created again"),
        "{e}"
    );
    assert_eq!(r[1].as_ref().unwrap().get("name"), "B2");
    assert_eq!(names(c).await, vec![(b.clone(), "B2".to_string())]);

    // Alone (no batch) as well.
    let r = c.write("account", vec![update(&a, "ghost")]).await.unwrap();
    assert!(
        r[0].as_ref().unwrap_err().message.contains("deleted?"),
        "{r:?}"
    );
    let r = c.write("account", vec![create(&b, "B3")]).await.unwrap();
    assert_eq!(r[0].as_ref().unwrap().get("name"), "B3");
    assert_eq!(names(c).await, vec![(b, "B3".to_string())]);
}

#[tokio::test]
async fn dataverse_writes_on_cap() {
    let cap = tokio::task::spawn_blocking(CapServer::start).await.unwrap();
    let root = cap.dataverse_url();
    let http = reqwest::Client::new();
    for use_batch in [true, false] {
        let c = connector(&root, None, use_batch);
        let remove = |id: &str| {
            let url = format!("{root}/accounts({id})");
            let http = http.clone();
            let status = std::thread::spawn(move || {
                tokio::runtime::Runtime::new()
                    .unwrap()
                    .block_on(async { http.delete(url).send().await.unwrap().status() })
            })
            .join()
            .unwrap();
            assert_eq!(status.as_u16(), 204);
        };
        create_is_idempotent_and_update_never_recreates(&c, remove).await;
        // Clean up for the next round: delete what is left.
        for (id, _) in names(&c).await {
            let r = c.write("account", vec![WriteOp::Delete { id }]).await;
            assert!(r.unwrap()[0].is_ok());
        }
    }
}

#[tokio::test]
async fn dataverse_writes_on_the_mock() {
    let mock = tokio::task::spawn_blocking(DataverseMock::start)
        .await
        .unwrap();
    let cfg = mock.config();
    let auth = Auth {
        tenant: cfg.tenant,
        client_id: cfg.client_id,
        client_secret: cfg.client_secret,
        token_url: Some(mock.token_url()),
    };
    for use_batch in [true, false] {
        let c = connector(&mock.api_url(), Some(&auth), use_batch);
        mock.clear_requests();
        create_is_idempotent_and_update_never_recreates(&c, |id| {
            assert!(mock.delete("accounts", id));
        })
        .await;
        // What went over the wire: creates are PATCH without a condition, updates PATCH with
        // `If-Match: *`; no POST of a record.
        let writes: Vec<_> = mock
            .requests()
            .into_iter()
            .filter(|r| r.method != "GET" && !r.path_and_query.contains("$batch"))
            .filter(|r| !r.path_and_query.contains("oauth2"))
            .collect();
        assert!(!writes.is_empty());
        assert!(writes.iter().all(|r| r.method == "PATCH"), "{writes:#?}");
        // Updates carry the version read (or written) before, never nothing.
        let conditional = writes
            .iter()
            .filter(|r| {
                r.header("if-match")
                    .is_some_and(|v| v.starts_with("W/\"") || v == "*")
            })
            .count();
        // 3 updates (one of them alone), 5 creates.
        assert_eq!((writes.len(), conditional), (8, 3), "{writes:#?}");
        for id in mock
            .rows("accounts")
            .iter()
            .filter_map(|r| r["accountid"].as_str().map(String::from))
        {
            mock.delete("accounts", &id);
        }
    }
}

/// Issue 11 finding 9: an edit made on Dataverse between coupler's read and its update is not
/// overwritten. The update carries the etag read (`If-Match: W/"…"`), so it fails as a conflict
/// and the other user's value stays; once read again, the update goes through. A record written
/// twice in a row by coupler is no conflict: each write brings the new version.
#[tokio::test]
async fn an_edit_made_after_the_read_is_a_conflict_not_overwritten() {
    let cap = tokio::task::spawn_blocking(CapServer::start).await.unwrap();
    let root = cap.dataverse_url();
    for use_batch in [true, false] {
        let ours = connector(&root, None, use_batch);
        let theirs = connector(&root, None, use_batch);
        let (a, b) = (guid(), guid());
        let r = ours
            .write("account", vec![create(&a, "A"), create(&b, "B")])
            .await
            .unwrap();
        assert!(r.iter().all(Result::is_ok), "{r:?}");
        // Written twice in a row: the second carries the version the first brought back.
        let r = ours.write("account", vec![update(&a, "A1")]).await.unwrap();
        assert!(r[0].is_ok(), "{r:?}");
        // Read by us; then changed by someone else (a client that never read it).
        ours.read_by_ids("account", &[a.clone(), b.clone()])
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        let r = theirs
            .write("account", vec![update(&a, "their edit")])
            .await
            .unwrap();
        assert!(r[0].is_ok(), "{r:?}");
        let r = ours
            .write("account", vec![update(&a, "ours"), update(&b, "B2")])
            .await
            .unwrap();
        let e = r[0].as_ref().unwrap_err();
        assert_eq!(e.kind, ErrorKind::Conflict, "{e:?}");
        assert!(e.message.contains("changed by someone else"), "{e:?}");
        assert!(r[1].is_ok(), "the untouched record is written: {r:?}");
        let now: Vec<String> = names(&ours).await.into_iter().map(|(_, n)| n).collect();
        assert!(now.contains(&"their edit".to_string()), "{now:?}");
        // Read again, the same update goes through.
        ours.read_by_ids("account", std::slice::from_ref(&a))
            .await
            .unwrap();
        let r = ours
            .write("account", vec![update(&a, "ours")])
            .await
            .unwrap();
        assert!(r[0].is_ok(), "{r:?}");
        for id in [a, b] {
            let r = ours.write("account", vec![WriteOp::Delete { id }]).await;
            assert!(r.unwrap()[0].is_ok());
        }
    }
}
