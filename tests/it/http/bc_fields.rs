//! Catalog fields the Business Central API v2.0 does not expose as such, on the CAP imitation:
//! - "Document No." of invoice lines (`api_ref: documentId`) is read, written, filtered and
//!   matched as the invoice's number, through the invoice's id;
//! - Currency "ISO Code" (no API property) fails a read, filter or match before any request, and
//!   a mapping that needs it fails with the field, the table and the mapping named.
use crate::support::http as http_support;

use coupler::plan::filter::{Cmp, FValue, Pred, Target};
use coupler::runtime::connector::*;
use coupler::runtime::connectors::{BusinessCentral, BusinessCentralOptions, HttpOptions};
use coupler::runtime::embedded::EmbeddedSystem;
use coupler::runtime::engine::{self, Quiet, RunOptions};
use coupler::runtime::state::StateStore;
use coupler::schema::Catalog;
use http_support::cap::{CapServer, COMPANY_NAME, SEED_HEADER};
use http_support::proxy::{FaultProxy, Faults};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

fn catalog() -> Arc<Catalog> {
    let path = format!(
        "{}/schemas/business-central.yaml",
        env!("CARGO_MANIFEST_DIR")
    );
    Arc::new(Catalog::parse(&std::fs::read_to_string(path).unwrap()).unwrap())
}

/// The connector, seeding: the CAP imitation refuses read-only properties (an invoice's
/// number, as the real salesInvoices page does) unless a test says it is loading data.
fn bc(url: &str) -> BusinessCentral {
    BusinessCentral::new(
        catalog(),
        url,
        Some(COMPANY_NAME),
        None,
        None,
        BusinessCentralOptions {
            http: HttpOptions {
                max_retries: 1,
                base_delay: Duration::from_millis(20),
                timeout: Duration::from_secs(20),
                ..HttpOptions::business_central()
            },
            extra_headers: vec![(SEED_HEADER.0.into(), SEED_HEADER.1.into())],
            ..BusinessCentralOptions::default()
        },
    )
    .unwrap()
}

fn fields(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

fn create(v: Value) -> WriteOp {
    WriteOp::Create {
        id: uuid::Uuid::new_v4().to_string(),
        fields: fields(v),
    }
}

/// A comparison on a field without an API name (the planner leaves `api` empty for those).
fn local(field: &str, cmp: Cmp, value: &str) -> Pred {
    Pred::Compare {
        field: Target {
            field: field.into(),
            api: None,
        },
        cmp,
        value: FValue::Text(value.into()),
    }
}

fn query<'a>(
    table: &'a str,
    fields: Option<&'a [String]>,
    filter: Option<&'a Pred>,
) -> ChangeQuery<'a> {
    ChangeQuery {
        table,
        filter,
        since: None,
        exclude_modified_by: None,
        page_size: 100,
        fields,
    }
}

#[tokio::test]
async fn invoice_lines_name_their_invoice_by_number() {
    let cap = tokio::task::spawn_blocking(CapServer::start).await.unwrap();
    let c = bc(&cap.business_central_url());
    let headers = c
        .write(
            "Sales Invoice Header",
            vec![
                create(json!({"No.": "si-1", "Bill-to Name": "One"})),
                create(json!({"No.": "SI-2", "Bill-to Name": "Two"})),
            ],
        )
        .await
        .unwrap();
    let ids: Vec<String> = headers
        .iter()
        .map(|h| h.as_ref().unwrap().id.clone())
        .collect();
    let lines = c
        .write(
            "Sales Invoice Line",
            vec![
                create(json!({"Document No.": "SI-1", "Line No.": 10000, "Quantity": 2})),
                create(json!({"Document No.": "si-2", "Line No.": 10000, "Quantity": 3})),
                create(json!({"Document No.": "SI-2", "Line No.": 20000, "Quantity": 4})),
                // No such invoice: this line fails alone, with the reason.
                create(json!({"Document No.": "SI-9", "Line No.": 10000, "Quantity": 5})),
            ],
        )
        .await
        .unwrap();
    for l in &lines[..3] {
        assert!(l.is_ok(), "{lines:?}");
    }
    assert_eq!(lines[1].as_ref().unwrap().get("Document No."), "SI-2");
    let e = &lines[3].as_ref().unwrap_err().message;
    assert!(
        e.contains("`Sales Invoice Line`.`Document No.`")
            && e.contains("SI-9")
            && e.contains("salesInvoices"),
        "{e}"
    );

    // The line page refuses a read that names no document, as Business Central's does.
    let url = format!("{}/salesInvoiceLines?$select=documentId", cap.company_url());
    let r = reqwest::get(url).await.unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("Document Id"));
    // On the wire the line carries the invoice's id.
    let mut docs: Vec<(String, i64)> = Vec::new();
    for id in &ids {
        let url = format!(
            "{}/salesInvoiceLines?$select=documentId,sequence&$filter=documentId eq {id}",
            cap.company_url()
        );
        let raw: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
        docs.extend(raw["value"].as_array().unwrap().iter().map(|r| {
            (
                r["documentId"].as_str().unwrap().to_string(),
                r["sequence"].as_i64().unwrap(),
            )
        }));
    }
    docs.sort_by_key(|d| d.1);
    assert_eq!(docs.len(), 3);
    assert!(
        docs.iter().filter(|d| d.0 == ids[1]).count() == 2,
        "{docs:?} {ids:?}"
    );

    // Read back by number, with a fresh connector (nothing remembered).
    let c = bc(&cap.business_central_url());
    let wanted = vec![
        "Document No.".to_string(),
        "Line No.".into(),
        "Quantity".into(),
    ];
    let page = c
        .read_changes(&query("Sales Invoice Line", Some(&wanted), None), None)
        .await
        .unwrap();
    let mut got: Vec<(String, i64)> = page
        .records
        .iter()
        .map(|r| {
            let doc = r.get("Document No.").as_str().unwrap().to_string();
            (doc, r.get("Line No.").as_i64().unwrap())
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            ("SI-1".into(), 10000),
            ("SI-2".into(), 10000),
            ("SI-2".into(), 20000)
        ]
    );

    // Filtered on it (locally) and matched on it (through the id).
    let only = local("Document No.", Cmp::Eq, "SI-2");
    let page = c
        .read_changes(
            &query("Sales Invoice Line", Some(&wanted), Some(&only)),
            None,
        )
        .await
        .unwrap();
    assert_eq!(page.records.len(), 2);
    let found = c
        .find(
            "Sales Invoice Line",
            &[
                ("Document No.".into(), json!("SI-2")),
                ("Line No.".into(), json!(20000)),
            ],
            false,
            None,
        )
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].get("Quantity").as_f64(), Some(4.0));
    let none = c
        .find(
            "Sales Invoice Line",
            &[("Document No.".into(), json!("SI-9"))],
            false,
            None,
        )
        .await
        .unwrap();
    assert!(none.is_empty());

    // Moved to another invoice by an update.
    let id = found[0].id.clone();
    let r = c
        .write(
            "Sales Invoice Line",
            vec![WriteOp::Update {
                id: id.clone(),
                fields: fields(json!({"Document No.": "SI-1"})),
            }],
        )
        .await
        .unwrap();
    assert_eq!(r[0].as_ref().unwrap().get("Document No."), "SI-1");
    let back = c.read_by_ids("Sales Invoice Line", &[id]).await.unwrap();
    assert_eq!(back[0].get("Document No."), "SI-1");
}

/// A line page has no stamp of its own: a line carries its document's, however it is read
/// (change stream, by id, found with or without its document, a write's answer). With an empty
/// stamp on some paths, a bidirectional line would look changed on every read and every edit
/// on the other side would be a conflict.
#[tokio::test]
async fn lines_carry_their_documents_stamp_however_they_are_read() {
    let cap = CapServer::start();
    let c = bc(&cap.business_central_url());
    let header = c
        .write(
            "Sales Invoice Header",
            vec![create(json!({"No.": "SI-7", "Bill-to Name": "Seven"}))],
        )
        .await
        .unwrap();
    let doc = header[0].as_ref().unwrap().id.clone();
    let written = c
        .write(
            "Sales Invoice Line",
            vec![create(
                json!({"Document No.": "SI-7", "Line No.": 10000, "Quantity": 1}),
            )],
        )
        .await
        .unwrap();
    let line = written[0].as_ref().unwrap().clone();
    let stamp_of_doc = c.read_by_ids("Sales Invoice Header", &[doc]).await.unwrap()[0]
        .modified_on
        .clone();
    assert!(!stamp_of_doc.is_empty());
    let streamed = c
        .read_changes(&query("Sales Invoice Line", None, None), None)
        .await
        .unwrap();
    let by_id = c
        .read_by_ids("Sales Invoice Line", std::slice::from_ref(&line.id))
        .await
        .unwrap();
    let with_doc = c
        .find(
            "Sales Invoice Line",
            &[("Document No.".into(), json!("SI-7"))],
            false,
            None,
        )
        .await
        .unwrap();
    let without_doc = c
        .find(
            "Sales Invoice Line",
            &[("Line No.".into(), json!(10000))],
            false,
            None,
        )
        .await
        .unwrap();
    for (how, r) in [
        ("write answer", &line),
        ("change stream", &streamed.records[0]),
        ("by id", &by_id[0]),
        ("found by document", &with_doc[0]),
        ("found without document", &without_doc[0]),
    ] {
        assert_eq!(r.id, line.id, "{how}");
        assert_eq!(r.modified_on, stamp_of_doc, "{how}");
    }
    // The stream stands at the document: the next page after it is empty.
    let again = c
        .read_changes(
            &query("Sales Invoice Line", None, None),
            streamed.position.as_ref(),
        )
        .await
        .unwrap();
    assert!(again.records.is_empty(), "{:?}", again.records);
    // A change of the line restamps its document, so the stream sees the line again.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    c.write(
        "Sales Invoice Line",
        vec![WriteOp::Update {
            id: line.id.clone(),
            fields: fields(json!({"Quantity": 3})),
        }],
    )
    .await
    .unwrap()[0]
        .as_ref()
        .unwrap();
    let changed = c
        .read_changes(
            &query("Sales Invoice Line", None, None),
            streamed.position.as_ref(),
        )
        .await
        .unwrap();
    assert_eq!(changed.records.len(), 1, "{:?}", changed.records);
    assert_eq!(changed.records[0].get("Quantity").as_f64(), Some(3.0));
    assert!(changed.records[0].modified_on > stamp_of_doc);
}

#[tokio::test]
async fn a_field_without_api_property_fails_before_any_request() {
    let cap = tokio::task::spawn_blocking(CapServer::start).await.unwrap();
    let proxy = FaultProxy::start(&cap.base_url(), Faults::none());
    let c = bc(&format!("{}/api/v2.0", proxy.url()));
    let named = |e: &ConnectorError| {
        assert!(
            e.message.contains("`Currency`.`ISO Code`") && e.message.contains("currencies"),
            "{e:?}"
        );
    };
    let wanted = vec!["Code".to_string(), "ISO Code".into()];
    named(
        &c.read_changes(&query("Currency", Some(&wanted), None), None)
            .await
            .unwrap_err(),
    );
    let has_iso = local("ISO Code", Cmp::Ne, "");
    let code = vec!["Code".to_string()];
    named(
        &c.read_changes(&query("Currency", Some(&code), Some(&has_iso)), None)
            .await
            .unwrap_err(),
    );
    named(
        &c.find(
            "Currency",
            &[("ISO Code".into(), json!("EUR"))],
            false,
            None,
        )
        .await
        .unwrap_err(),
    );
    named(&c.count("Currency", Some(&has_iso)).await.unwrap_err());
    assert_eq!(proxy.requests(), 0, "{:?}", proxy.request_lines());
    // Not read either where a whole record is: absent, never a made-up null.
    let r = c
        .write(
            "Currency",
            vec![create(json!({"Code": "eur", "Description": "Euro"}))],
        )
        .await
        .unwrap();
    let eur = r[0].as_ref().unwrap();
    assert_eq!(eur.get("Code"), "EUR");
    assert!(!eur.fields.contains_key("ISO Code"), "{eur:?}");
    // Written: the record fails with the reason.
    let r = c
        .write(
            "Currency",
            vec![create(json!({"Code": "USD", "ISO Code": "USD"}))],
        )
        .await
        .unwrap();
    let e = &r[0].as_ref().unwrap_err().message;
    assert!(
        e.contains("`Currency`.`ISO Code`") && e.contains("cannot be written"),
        "{e}"
    );
}

const CURRENCY: &str = r#"
system bc    = business_central "SCHEMAS/business-central.yaml"
system sales = dataverse        "SCHEMAS/dynamics-365-sales.yaml"

mapping CURRENCY: bc.Currency -> sales.transactioncurrency {
    where bc: "ISO Code" != ''
    couple by Code == isocurrencycode
    on missing: create

    fields {
        Code        -> isocurrencycode | truncate(5)
        Description -> currencyname
    }
}
"#;

/// A mapping text (`SCHEMAS` standing for the catalogs' folder) run by the engine between a
/// Business Central API endpoint at `bc_url` and an embedded Sales seeded with `sales_seed`.
struct Rig {
    _dir: tempfile::TempDir,
    model: coupler::analysis::Model,
    plan: coupler::plan::Plan,
    sales: Arc<EmbeddedSystem>,
    systems: HashMap<String, Arc<dyn Connector>>,
    state: StateStore,
}

impl Rig {
    fn new(map: &str, bc_url: &str, sales_seed: Option<Value>) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let root = env!("CARGO_MANIFEST_DIR");
        let text = map.replace("SCHEMAS", &format!("{root}/schemas"));
        let path = dir.path().join("rig.map");
        std::fs::write(&path, &text).unwrap();
        let (loaded, model) = coupler::cli::load::check_text(&path, &text);
        assert!(!loaded.diagnostics.has_errors(), "{:?}", loaded.diagnostics);
        let seed = sales_seed.map(|v| {
            let seed = dir.path().join("sales.json");
            std::fs::write(&seed, v.to_string()).unwrap();
            seed
        });
        let s = &model.systems["sales"];
        let sales = Arc::new(
            EmbeddedSystem::open(
                &dir.path().join("sales.db"),
                "sales",
                s.kind,
                s.catalog.clone().unwrap(),
                seed.as_deref(),
                "integration",
            )
            .unwrap(),
        );
        let mut systems: HashMap<String, Arc<dyn Connector>> = HashMap::new();
        systems.insert("bc".into(), Arc::new(bc(bc_url)));
        systems.insert("sales".into(), sales.clone());
        let state = StateStore::open(&dir.path().join("state.db"), true).unwrap();
        let plan = coupler::plan::compile(&model, None);
        Rig {
            _dir: dir,
            model,
            plan,
            sales,
            systems,
            state,
        }
    }

    async fn run(&self) -> engine::RunReport {
        engine::run(
            &self.model,
            &self.plan,
            &self.systems,
            &self.state,
            &RunOptions::default(),
            &Quiet,
        )
        .await
        .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mapping_that_needs_such_a_field_fails_naming_it() {
    let cap = tokio::task::spawn_blocking(CapServer::start).await.unwrap();
    let proxy = FaultProxy::start(&cap.base_url(), Faults::none());
    let rig = Rig::new(CURRENCY, &format!("{}/api/v2.0", proxy.url()), None);
    let report = rig.run().await;
    let m = &report.mappings[0];
    assert_eq!(m.mapping, "CURRENCY");
    let e = m.error.as_deref().unwrap_or_default();
    assert!(e.contains("`Currency`.`ISO Code`"), "{:?}", report.mappings);
    assert_eq!(proxy.requests(), 0, "{:?}", proxy.request_lines());
}

const CURRENCY_BACK: &str = r#"
system bc    = business_central "SCHEMAS/business-central.yaml"
system sales = dataverse        "SCHEMAS/dynamics-365-sales.yaml"

mapping CURRENCY-BACK: bc.Currency <- sales.transactioncurrency {
    on missing: create

    fields {
        Code               <- isocurrencycode | upper
        "ISO Code"         <- isocurrencycode | upper
        "ISO Numeric Code" <- currencysymbol | truncate(3)
        Description        <- currencyname | truncate(30)
    }
}
"#;

/// Writing fields the API lacks stops the mapping before anything is sent, naming every such
/// field once, instead of failing each record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mapping_that_writes_such_fields_stops_before_sending_anything() {
    let cap = tokio::task::spawn_blocking(CapServer::start).await.unwrap();
    let proxy = FaultProxy::start(&cap.base_url(), Faults::none());
    let seed = json!({ "transactioncurrency": [
        { "isocurrencycode": "CHF", "currencyname": "Swiss franc", "currencysymbol": "Fr." }
    ]});
    let rig = Rig::new(
        CURRENCY_BACK,
        &format!("{}/api/v2.0", proxy.url()),
        Some(seed),
    );
    let report = rig.run().await;
    let state = &rig.state;
    let m = &report.mappings[0];
    assert_eq!(m.mapping, "CURRENCY-BACK");
    let e = m.error.as_deref().unwrap_or_default();
    assert!(
        e.contains("`ISO Code`, `ISO Numeric Code` have no property") && e.contains("`Currency`"),
        "{:?}",
        report.mappings
    );
    assert!(!e.contains("`Description`"), "{e}");
    assert_eq!(m.counts.failed, 0, "no record is tried");
    assert!(state.failures(None).unwrap().is_empty());
    assert_eq!(proxy.requests(), 0, "{:?}", proxy.request_lines());
}

const BORROWED_INTO_BC: &str = r#"
system bc    = business_central "SCHEMAS/business-central.yaml"
system sales = dataverse        "SCHEMAS/dynamics-365-sales.yaml"

mapping CUR: bc.Currency <- sales.transactioncurrency {
    on missing: create

    fields {
        Code <- isocurrencycode | upper
    }
}

mapping CUR-NAME: bc.Currency <- sales.transactioncurrency {
    couple via CUR

    fields {
        Description <- currencyname | truncate(30)
    }
}
"#;

/// The Business Central API names no modifier: a borrowed mapping's own write must not look like a
/// user's edit to it on the next run (it would skip the record until the owner writes it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_borrowed_mapping_into_business_central_keeps_updating() {
    let cap = tokio::task::spawn_blocking(CapServer::start).await.unwrap();
    let seed = json!({ "transactioncurrency": [
        { "isocurrencycode": "CHF", "currencyname": "Swiss franc", "currencysymbol": "Fr." }
    ]});
    let rig = Rig::new(
        BORROWED_INTO_BC,
        &format!("{}/api/v2.0", cap.base_url()),
        Some(seed),
    );
    let bcc = rig.systems["bc"].clone();
    let sales = rig.sales.clone();
    let run = || rig.run();
    let r = run().await;
    assert!(
        r.mappings.iter().all(|m| m.error.is_none()),
        "{:?}",
        r.mappings
    );
    let desc = || async {
        let mut q = None;
        let cur = bcc
            .read_changes(
                &ChangeQuery {
                    table: "Currency",
                    filter: None,
                    since: None,
                    exclude_modified_by: None,
                    page_size: 100,
                    fields: None,
                },
                q.take(),
            )
            .await
            .unwrap();
        cur.records
            .iter()
            .find(|r| r.get("Code") == &json!("CHF"))
            .map(|r| r.get("Description").clone())
    };
    assert_eq!(desc().await, Some(json!("Swiss franc")));
    // Two edits in Sales, each followed by a run: the name follows each time.
    for name in ["Swiss franc (CHF)", "Franken"] {
        let id = sales.list("transactioncurrency").unwrap().remove(0).id;
        let rec = fields(json!({ "transactioncurrencyid": id, "currencyname": name }));
        sales.put("transactioncurrency", rec, "someone").unwrap();
        let r = run().await;
        assert_eq!(desc().await, Some(json!(name)), "{:#?}", r.mappings);
    }
}

/// Issue 11 finding 3: a `$batch` of creates the server carried out, whose answer was lost, is
/// not sent again (it would make every customer twice): each record fails as transient, saying
/// the outcome is unknown.
#[tokio::test]
async fn a_lost_answer_to_a_batch_of_creates_is_not_sent_again() {
    let cap = tokio::task::spawn_blocking(CapServer::start).await.unwrap();
    let proxy = FaultProxy::start(&cap.base_url(), Faults::none());
    let c = bc(&format!("{}/api/v2.0", proxy.url()));
    let before = c
        .read_changes(&query("Customer", None, None), None)
        .await
        .unwrap()
        .records
        .len();
    proxy.set_faults(Faults::none().with_lost_answers("POST", 1));
    let ops = vec![
        create(json!({ "Name": "Lost Answer One" })),
        create(json!({ "Name": "Lost Answer Two" })),
    ];
    let results = c.write("Customer", ops).await.unwrap();
    assert_eq!(results.len(), 2);
    for r in &results {
        let e = r.as_ref().unwrap_err();
        assert_eq!(e.kind, ErrorKind::Transient, "{e:?}");
        assert!(e.message.contains("unknown"), "{}", e.message);
    }
    let posts = proxy.log().iter().filter(|r| r.method == "POST").count();
    assert_eq!(posts, 1, "{:#?}", proxy.request_lines());
    proxy.clear_faults();
    let after = c
        .read_changes(&query("Customer", None, None), None)
        .await
        .unwrap()
        .records;
    let lost: Vec<_> = after
        .iter()
        .filter(|r| {
            r.get("Name")
                .as_str()
                .is_some_and(|n| n.starts_with("Lost Answer"))
        })
        .collect();
    // The server made them once; nothing made them twice.
    assert_eq!(lost.len(), 2, "{lost:#?}");
    assert_eq!(after.len(), before + 2);
}

/// Business Central shows a blank "Currency Code" as the local currency's code (here USD, from
/// companyInformation) and takes that code as blank: coupler's records keep BC's own blank, so
/// a local-currency customer does not go through the CURRENCY lookup as "USD".
#[tokio::test]
async fn the_local_currency_reads_and_writes_as_blank() {
    let cap = tokio::task::spawn_blocking(CapServer::start).await.unwrap();
    let proxy = FaultProxy::start(&cap.base_url(), Faults::none());
    let c = bc(&format!("{}/api/v2.0", proxy.url()));
    let raw = reqwest::Client::new();
    let company = cap.company_url();
    // A currency other than the local one, then customers in both, written through the API.
    let eur = c
        .write(
            "Currency",
            vec![create(json!({"Code": "EUR", "Description": "Euro"}))],
        )
        .await
        .unwrap();
    assert!(eur[0].is_ok(), "{eur:?}");
    let mut ids = Vec::new();
    for (no, code) in [("L1", ""), ("L2", "EUR")] {
        let id = uuid::Uuid::new_v4().to_string();
        let raw_post = raw
            .post(format!("{company}/customers"))
            .json(&json!({"id": id, "number": no, "displayName": no, "currencyCode": if code.is_empty() { "USD" } else { code }}))
            .send()
            .await
            .unwrap();
        assert!(
            raw_post.status().is_success(),
            "{}",
            raw_post.text().await.unwrap()
        );
        ids.push(id);
    }
    // What the API shows: the local currency's code, never blank.
    let shown: Value = raw
        .get(format!("{company}/customers({})", ids[0]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shown["currencyCode"], "USD");
    // What coupler reads: Business Central's own values.
    let read = c.read_by_ids("Customer", &ids).await.unwrap();
    let code = |no: &str| {
        read.iter()
            .find(|r| r.fields["No."] == no)
            .map(|r| r.fields["Currency Code"].clone())
    };
    assert_eq!(code("L1"), Some(json!("")));
    assert_eq!(code("L2"), Some(json!("EUR")));
    // Written blank, it stays the local currency; the written record reads back as blank.
    let made = c
        .write(
            "Customer",
            vec![create(
                json!({"No.": "L3", "Name": "L3", "Currency Code": ""}),
            )],
        )
        .await
        .unwrap();
    let made = made.into_iter().next().unwrap().unwrap();
    assert_eq!(made.fields["Currency Code"], json!(""));
    let shown: Value = raw
        .get(format!("{company}/customers({})", made.id))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shown["currencyCode"], "USD");
    // A filter on it is coupler's (the property is a page variable): blank finds L1 and L3.
    let blank = Pred::Compare {
        field: Target {
            field: "Currency Code".into(),
            api: None,
        },
        cmp: Cmp::Eq,
        value: FValue::Text(String::new()),
    };
    let page = c
        .read_changes(&query("Customer", None, Some(&blank)), None)
        .await
        .unwrap();
    let mut nos: Vec<String> = page
        .records
        .iter()
        .map(|r| r.fields["No."].as_str().unwrap().to_string())
        .collect();
    nos.sort();
    assert_eq!(nos, ["L1", "L3"]);
    // A code that is no currency is refused, as the page's OnValidate does.
    let bad = raw
        .post(format!("{company}/customers"))
        .json(&json!({"number": "L4", "displayName": "L4", "currencyCode": "XYZ"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);
}

/// `salesInvoices` lists draft invoices beside the posted ones: the posted invoices' table
/// (`api_filter:`) never reads a Draft or In Review invoice, nor its lines, nor counts it.
#[tokio::test]
async fn draft_invoices_are_not_posted_invoices() {
    let cap = tokio::task::spawn_blocking(CapServer::start).await.unwrap();
    let proxy = FaultProxy::start(&cap.base_url(), Faults::none());
    let c = bc(&format!("{}/api/v2.0", proxy.url()));
    let raw = reqwest::Client::new();
    let company = cap.company_url();
    let mut ids = HashMap::new();
    for (no, status) in [
        ("D-1", Some("Draft")),
        ("R-1", Some("In_x0020_Review")),
        ("P-1", None),
    ] {
        let mut body = json!({"number": no, "customerNumber": "C1"});
        if let Some(s) = status {
            body["status"] = json!(s);
        }
        let made = raw
            .post(format!("{company}/salesInvoices"))
            .header(SEED_HEADER.0, SEED_HEADER.1)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(made.status().is_success(), "{}", made.text().await.unwrap());
        let made: Value = made.json().await.unwrap();
        ids.insert(no, made["id"].as_str().unwrap().to_string());
        let line = raw
            .post(format!("{company}/salesInvoiceLines"))
            .json(&json!({"documentId": made["id"], "sequence": 10000, "quantity": 1}))
            .send()
            .await
            .unwrap();
        assert!(line.status().is_success(), "{}", line.text().await.unwrap());
    }
    // A client's own POST is a draft (the API creates unposted invoices only).
    let posted_by_client: Value = raw
        .post(format!("{company}/salesInvoices"))
        .json(&json!({"customerNumber": "C1"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(posted_by_client["status"], "Draft");
    let numbers = |rs: &[Record], field: &str| -> Vec<String> {
        let mut v: Vec<String> = rs
            .iter()
            .map(|r| r.fields[field].as_str().unwrap_or_default().to_string())
            .collect();
        v.sort();
        v
    };
    let page = c
        .read_changes(&query("Sales Invoice Header", None, None), None)
        .await
        .unwrap();
    assert_eq!(numbers(&page.records, "No."), ["P-1"]);
    assert_eq!(c.count("Sales Invoice Header", None).await.unwrap(), 1);
    let lines = c
        .read_changes(&query("Sales Invoice Line", None, None), None)
        .await
        .unwrap();
    assert_eq!(numbers(&lines.records, "Document No."), ["P-1"]);
    let all: Vec<String> = ids.values().cloned().collect();
    let by_id = c.read_by_ids("Sales Invoice Header", &all).await.unwrap();
    assert_eq!(numbers(&by_id, "No."), ["P-1"]);
}
