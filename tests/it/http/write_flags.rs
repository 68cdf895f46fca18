//! Dataverse columns valid for create only or for update only (`IsValidForCreate` /
//! `IsValidForUpdate` in Microsoft's entity reference, recorded in tests/servers/api/dataverse
//! and enforced by the CAP imitation): an invoice's totals travel in an update right after its
//! create; a changed invoice number fails the record, saying why, and nothing of it is written;
//! a write answered "done" without being carried out is not taken as written.
use super::writes::connector;
use crate::support::http::answers::AnswerFault;
use crate::support::http::cap::CapServer;
use crate::support::http::proxy::{FaultProxy, Faults};
use coupler::runtime::connector::*;
use serde_json::{json, Map, Value};

fn fields(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

fn guid() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn invoice(id: &str, number: &str, total: f64) -> WriteOp {
    WriteOp::Create {
        id: id.to_string(),
        fields: fields(
            json!({ "name": format!("Invoice {number}"), "invoicenumber": number, "totalamount": total }),
        ),
    }
}

async fn read(c: &dyn Connector, table: &str, id: &str) -> Record {
    let got = c.read_by_ids(table, &[id.to_string()]).await.unwrap();
    got.into_iter().next().expect("the record is there")
}

#[tokio::test]
async fn an_invoice_is_created_with_its_totals_and_keeps_its_number() {
    let cap = tokio::task::spawn_blocking(CapServer::start).await.unwrap();
    for use_batch in [true, false] {
        let c = connector(&cap.dataverse_url(), None, use_batch);
        let (a, b) = (guid(), guid());
        let r = c
            .write(
                "invoice",
                vec![invoice(&a, "INV-A", 100.5), invoice(&b, "INV-B", 7.25)],
            )
            .await
            .unwrap();
        assert!(r.iter().all(Result::is_ok), "{r:?}\n{}", cap.log());
        // The answer is the record after both requests: totals included.
        assert_eq!(r[0].as_ref().unwrap().get("totalamount"), &json!(100.5));
        let held = read(&c, "invoice", &b).await;
        assert_eq!(held.get("totalamount"), &json!(7.25));
        assert_eq!(held.get("invoicenumber"), "INV-B");

        // An update that changes the number (create only) fails alone, naming it; the other
        // update is written, and nothing of the refused one is.
        let r = c
            .write(
                "invoice",
                vec![
                    WriteOp::Update {
                        id: a.clone(),
                        fields: fields(json!({ "invoicenumber": "INV-A2", "name": "renamed" })),
                    },
                    WriteOp::Update {
                        id: b.clone(),
                        fields: fields(json!({ "totalamount": 8.5 })),
                    },
                ],
            )
            .await
            .unwrap();
        let e = r[0].as_ref().unwrap_err();
        assert_eq!(e.kind, ErrorKind::Rejected);
        assert!(
            e.message.contains("`invoicenumber`")
                && e.message.contains("only when the record is created"),
            "{e:?}"
        );
        assert!(r[1].is_ok(), "{r:?}");
        let held = read(&c, "invoice", &a).await;
        assert_eq!(
            (held.get("invoicenumber"), held.get("name")),
            (&json!("INV-A"), &json!("Invoice INV-A"))
        );
        assert_eq!(
            read(&c, "invoice", &b).await.get("totalamount"),
            &json!(8.5)
        );
    }
}

/// The second request of a create (its totals) fails: the create is not taken as written
/// (transient: it stays pending, and the next run finds the record by id and writes the
/// totals), and the message says what is missing.
#[tokio::test]
async fn a_create_whose_totals_were_refused_is_not_taken_as_written() {
    let cap = tokio::task::spawn_blocking(CapServer::start).await.unwrap();
    let proxy = FaultProxy::start(&cap.base_url(), Faults::none());
    let c = connector(&format!("{}/api/data/v9.2", proxy.url()), None, false);
    let id = guid();
    // Every PATCH after the first (the create) answers 500, retries included.
    proxy.set_faults(Faults::none().with_spoiled_answers(
        Some("PATCH"),
        1,
        100,
        AnswerFault::ServerError,
    ));
    let r = c
        .write("invoice", vec![invoice(&id, "INV-C", 3.5)])
        .await
        .unwrap();
    proxy.clear_faults();
    let e = r[0].as_ref().unwrap_err();
    assert_eq!(e.kind, ErrorKind::Transient, "{e:?}");
    assert!(
        e.message.contains(&id) && e.message.contains("`totalamount`"),
        "{e:?}"
    );
    // The record the create made is there, to be found by its id.
    assert_eq!(read(&c, "invoice", &id).await.get("invoicenumber"), "INV-C");
}

/// A proxy answers an update "done" without passing it on: read back, the record does not hold
/// what was written, so the update fails (transient) instead of coupling the old values.
#[tokio::test]
async fn an_update_answered_done_but_never_carried_out_fails() {
    let cap = tokio::task::spawn_blocking(CapServer::start).await.unwrap();
    let proxy = FaultProxy::start(&cap.base_url(), Faults::none());
    for use_batch in [true, false] {
        let c = connector(&format!("{}/api/data/v9.2", proxy.url()), None, use_batch);
        let (a, b) = (guid(), guid());
        let create = |id: &str, name: &str| WriteOp::Create {
            id: id.to_string(),
            fields: fields(json!({ "name": name })),
        };
        let r = c
            .write("account", vec![create(&a, "A"), create(&b, "B")])
            .await
            .unwrap();
        assert!(r.iter().all(Result::is_ok), "{r:?}");
        let method = if use_batch { "POST" } else { "PATCH" };
        proxy.set_faults(Faults::none().with_spoiled_answers(
            Some(method),
            0,
            if use_batch { 1 } else { 2 },
            AnswerFault::FakeSuccess,
        ));
        let update = |id: &str, name: &str| WriteOp::Update {
            id: id.to_string(),
            fields: fields(json!({ "name": name })),
        };
        let r = c
            .write("account", vec![update(&a, "A2"), update(&b, "B2")])
            .await
            .unwrap();
        proxy.clear_faults();
        for (r, id) in r.iter().zip([&a, &b]) {
            let e = r.as_ref().unwrap_err();
            assert_eq!(e.kind, ErrorKind::Transient, "{e:?}");
            assert!(
                e.message.contains(id.as_str()) && e.message.contains("does not hold"),
                "{e:?}"
            );
        }
        assert_eq!(read(&c, "account", &a).await.get("name"), "A");
    }
}

/// The recovery of a create whose totals were not written (found by id, then updated): the
/// update wants a blank currency (the local currency) where Dataverse filled its own on create.
/// A blank create-only column is no change: it is left out, and the totals are written. Before,
/// the whole update was refused and the totals never arrived (attack review of 0a55ce0).
#[tokio::test]
async fn an_update_with_a_blank_create_only_column_writes_the_rest() {
    let cap = tokio::task::spawn_blocking(CapServer::start).await.unwrap();
    let c = connector(&cap.dataverse_url(), None, true);
    let id = guid();
    let r = c
        .write("invoice", vec![invoice(&id, "INV-R", 1.0)])
        .await
        .unwrap();
    assert!(r[0].is_ok(), "{r:?}");
    let r = c
        .write(
            "invoice",
            vec![WriteOp::Update {
                id: id.clone(),
                fields: fields(json!({ "transactioncurrencyid": null, "totalamount": 9.5 })),
            }],
        )
        .await
        .unwrap();
    assert!(r[0].is_ok(), "{r:?}\n{}", cap.log());
    assert_eq!(
        read(&c, "invoice", &id).await.get("totalamount"),
        &json!(9.5)
    );
}

/// A `$batch` of creates that may be sent only once (an invoice number is create-only) is
/// carried out, then answered 400 with a page no client can read, as a server without `$batch`
/// would: the creates are not sent again one by one (each would be refused as a record that
/// exists, and a refusal makes the engine forget the create and make it again). They stay in
/// doubt: transient, looked for by id on the next run.
#[tokio::test]
async fn a_batch_of_once_creates_refused_after_it_ran_is_not_sent_again() {
    let cap = tokio::task::spawn_blocking(CapServer::start).await.unwrap();
    let proxy = FaultProxy::start(&cap.base_url(), Faults::none());
    let c = connector(&format!("{}/api/data/v9.2", proxy.url()), None, true);
    let (a, b) = (guid(), guid());
    proxy.set_faults(Faults::none().with_spoiled_answers(
        Some("POST"),
        0,
        1,
        AnswerFault::RefusedAfterwards,
    ));
    let r = c
        .write(
            "invoice",
            vec![invoice(&a, "INV-D", 1.0), invoice(&b, "INV-E", 2.0)],
        )
        .await
        .unwrap();
    proxy.clear_faults();
    for r in &r {
        let e = r.as_ref().unwrap_err();
        assert_eq!(e.kind, ErrorKind::Transient, "{e:?}");
    }
    let singles: Vec<_> = proxy
        .log()
        .into_iter()
        .filter(|l| !l.path_and_query.contains("$batch"))
        .map(|l| format!("{} {}", l.method, l.path_and_query))
        .collect();
    assert!(singles.is_empty(), "sent again one by one: {singles:?}");
    // Both records were made by the batch, once.
    assert_eq!(read(&c, "invoice", &a).await.get("invoicenumber"), "INV-D");
    assert_eq!(read(&c, "invoice", &b).await.get("invoicenumber"), "INV-E");
}
