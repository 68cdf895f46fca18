//! Sales orders over HTTP: from the SAP CAP imitation of Dataverse (a real OData v4
//! server on loopback) into an embedded Business Central, with the standard mapping set's
//! SALESORDER-FROMSALES and SALESORDERLINE-FROMSALES: a submitted order with an item line, a
//! write-in line and a 250-character description becomes one order with its lines and Comment
//! lines; the draft order is not taken and its line waits; a second run changes nothing.
use crate::support::common;
use crate::support::http as http_support;

use common::repo;
use coupler::analysis::Model;
use coupler::runtime::connector::{Connector, WriteOp};
use coupler::runtime::connectors::{Dataverse, DataverseOptions};
use coupler::runtime::embedded::EmbeddedSystem;
use coupler::runtime::engine::{self, Quiet, RunOptions, RunReport};
use coupler::runtime::state::{tx, Coupling, StateStore};
use coupler::syntax::ast::LitKind;
use http_support::cap::{CapServer, SEED_HEADER, USER_HEADER};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// The integration user, and a user who enters the Sales data.
const IU: &str = "aaaaaaaa-0000-4000-8000-000000000001";
const USER: &str = "bbbbbbbb-0000-4000-8000-000000000002";

const ACCOUNT: &str = "a0000000-0000-4000-8000-000000000001";
const PRODUCT: &str = "b0000000-0000-4000-8000-000000000001";
const SUBMITTED: &str = "d0000000-0000-4000-8000-000000000001";
const DRAFT: &str = "d0000000-0000-4000-8000-000000000002";

fn long_description() -> String {
    (0..25).map(|i| format!("part{i:02}....")).collect()
}

/// The standard set with sales orders from Sales on.
fn model() -> Model {
    let (_, mut model) =
        coupler::cli::load::check(&[repo().join("mappings/business-central-sales.map")]).unwrap();
    model
        .settings
        .get_mut("create_sales_orders")
        .expect("the standard set declares create_sales_orders")
        .kind = LitKind::Bool(true);
    model
}

fn dataverse(model: &Model, cap: &CapServer, user: &str, seeding: bool) -> Arc<Dataverse> {
    let mut extra_headers = vec![(USER_HEADER.into(), user.into())];
    if seeding {
        extra_headers.push((SEED_HEADER.0.into(), SEED_HEADER.1.into()));
    }
    Arc::new(
        Dataverse::new(
            model.systems["sales"].catalog.clone().unwrap(),
            &cap.dataverse_url(),
            None,
            Some(IU),
            DataverseOptions {
                extra_headers,
                ..DataverseOptions::default()
            },
        )
        .unwrap(),
    )
}

fn fields(v: Value) -> Map<String, Value> {
    v.as_object().expect("an object").clone()
}

async fn create(sales: &Dataverse, entity: &str, id: &str, values: Value) {
    let results = sales
        .write(
            entity,
            vec![WriteOp::Create {
                id: id.to_string(),
                fields: fields(values),
            }],
        )
        .await
        .expect("the write is answered");
    assert!(results.iter().all(Result::is_ok), "{entity}: {results:?}");
}

/// What a Sales user entered: an account, a product, a submitted order with three lines and a
/// draft order with one. Loaded as seed data (`SEED_HEADER`): an order's `statecode` is set by
/// an update on Dataverse, never on create (update-only in the reference).
async fn seed_sales(sales: &Dataverse) {
    create(
        sales,
        "account",
        ACCOUNT,
        json!({ "name": "Alpha", "customertypecode": "Customer", "statecode": "Active" }),
    )
    .await;
    create(sales, "product", PRODUCT, json!({ "productnumber": "1000", "name": "Bicycle", "producttypecode": "Sales Inventory", "statecode": "Active" })).await;
    create(sales, "salesorder", SUBMITTED, json!({ "name": "PO-4711", "ordernumber": "ORD-01001", "customerid": ACCOUNT, "customeridtype": "account", "statecode": "Submitted" })).await;
    create(sales, "salesorder", DRAFT, json!({ "name": "Draft", "ordernumber": "ORD-01002", "customerid": ACCOUNT, "customeridtype": "account", "statecode": "Active" })).await;
    let lines = [
        (
            "e0000000-0000-4000-8000-000000000001",
            json!({ "salesorderid": SUBMITTED, "productid": PRODUCT, "sequencenumber": 1, "quantity": 3, "priceperunit": 390, "productdescription": "Bicycle, red" }),
        ),
        (
            "e0000000-0000-4000-8000-000000000002",
            json!({ "salesorderid": SUBMITTED, "isproductoverridden": true, "sequencenumber": 2, "quantity": 1, "priceperunit": 25, "productdescription": "Gift wrapping" }),
        ),
        (
            "e0000000-0000-4000-8000-000000000003",
            json!({ "salesorderid": SUBMITTED, "productid": PRODUCT, "sequencenumber": 3, "quantity": 1, "priceperunit": 400, "productdescription": long_description() }),
        ),
        (
            "e0000000-0000-4000-8000-000000000004",
            json!({ "salesorderid": DRAFT, "productid": PRODUCT, "sequencenumber": 1, "quantity": 9, "priceperunit": 400, "productdescription": "Draft line" }),
        ),
    ];
    for (id, values) in lines {
        create(sales, "salesorderdetail", id, values).await;
    }
}

fn business_central(model: &Model, dir: &Path) -> Arc<EmbeddedSystem> {
    let seed = dir.join("bc-seed.json");
    std::fs::write(
        &seed,
        json!({
            "Customer": [{ "No.": "C1", "Name": "Alpha" }],
            "Item": [
                { "No.": "1000", "Description": "Bicycle", "Unit Price": 400 },
                { "No.": "WRITE-IN", "Description": "Write-in product" }
            ]
        })
        .to_string(),
    )
    .unwrap();
    let s = &model.systems["bc"];
    Arc::new(
        EmbeddedSystem::open(
            &dir.join("bc.db"),
            "bc",
            s.kind,
            s.catalog.clone().unwrap(),
            Some(&seed),
            "coupler-integration",
        )
        .unwrap(),
    )
}

/// Couples the customer and the item by hand, as `coupler couple` does.
fn couple(
    state: &StateStore,
    bc: &EmbeddedSystem,
    mapping: &str,
    table: &str,
    no: &str,
    right: &str,
) {
    let left = bc
        .list(table)
        .unwrap()
        .into_iter()
        .find(|r| r.get("No.") == &json!(no))
        .unwrap_or_else(|| panic!("{table} {no}"));
    state
        .transaction(|conn| {
            tx::put_coupling(
                conn,
                &Coupling {
                    mapping: mapping.into(),
                    left_id: left.id.clone(),
                    right_id: right.into(),
                    left_ref: Some(no.into()),
                    right_ref: Some(right.into()),
                    left_stamp: None,
                    right_stamp: None,
                    skipped: false,
                    pending: false,
                },
            )
        })
        .unwrap();
}

async fn run(
    model: &Model,
    systems: &HashMap<String, Arc<dyn Connector>>,
    state: &StateStore,
) -> RunReport {
    let graph = coupler::plan::graph::DepGraph::build(model);
    let selection =
        coupler::plan::select::select(&graph, "SALESORDER-FROMSALES,SALESORDERLINE-FROMSALES")
            .unwrap();
    let plan = coupler::plan::compile(model, Some(&selection));
    let opts = RunOptions {
        page_size: 2,
        ..RunOptions::default()
    };
    engine::run(model, &plan, systems, state, &opts, &Quiet)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sales_orders_from_the_cap_dataverse_arrive_in_business_central() {
    let model = model();
    let cap = tokio::task::spawn_blocking(CapServer::start).await.unwrap();
    seed_sales(&dataverse(&model, &cap, USER, true)).await;

    let dir = tempfile::tempdir().unwrap();
    let bc = business_central(&model, dir.path());
    let state = StateStore::open(&dir.path().join("state.db"), true).unwrap();
    couple(&state, &bc, "CUSTOMER", "Customer", "C1", ACCOUNT);
    couple(&state, &bc, "ITEM-PRODUCT", "Item", "1000", PRODUCT);
    let mut systems: HashMap<String, Arc<dyn Connector>> = HashMap::new();
    systems.insert("bc".into(), bc.clone());
    systems.insert("sales".into(), dataverse(&model, &cap, IU, false));

    let first = run(&model, &systems, &state).await;
    let failures = state.failures(None).unwrap();
    assert!(failures.is_empty(), "{failures:#?}\n{:#?}", first.mappings);
    let headers = bc.list("Sales Header").unwrap();
    assert_eq!(headers.len(), 1, "only the submitted order: {headers:#?}");
    let no = headers[0].get("No.").clone();
    assert_eq!(headers[0].get("External Document No."), &json!("PO-4711"));
    let mut lines = bc.list("Sales Line").unwrap();
    lines.sort_by_key(|l| l.get("Line No.").as_i64());
    let long = long_description();
    let summary: Vec<(i64, String, String, String)> = lines
        .iter()
        .map(|l| {
            assert_eq!(l.get("Document No."), &no);
            (
                l.get("Line No.").as_i64().unwrap_or(-1),
                l.get("Type").as_str().unwrap_or("?").to_string(),
                l.get("No.").as_str().unwrap_or("").to_string(),
                l.get("Description").as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (10000, "Item".into(), "1000".into(), "Bicycle, red".into()),
            (
                20000,
                "Item".into(),
                "WRITE-IN".into(),
                "Gift wrapping".into()
            ),
            (30000, "Item".into(), "1000".into(), long[..100].to_string()),
            (30001, " ".into(), "".into(), long[100..200].to_string()),
            (30002, " ".into(), "".into(), long[200..].to_string()),
        ]
    );
    // The draft's line waits for its order.
    assert_eq!(state.count_held("SALESORDERLINE-FROMSALES").unwrap(), 1);

    let second = run(&model, &systems, &state).await;
    assert_eq!(
        second.total().inserted + second.total().modified,
        0,
        "{:#?}",
        second.mappings
    );
    assert_eq!(bc.list("Sales Line").unwrap().len(), 5);
}
