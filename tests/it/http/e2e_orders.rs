//! End to end over HTTP between the two SAP CAP imitations (Business Central API v2.0 and
//! Dataverse), no embedded endpoint on either side:
//! - a submitted Sales order with an item line, a write-in line and a long description becomes
//!   one Business Central sales order with its lines and Comment lines (SALESORDER-FROMSALES,
//!   SALESORDERLINE-FROMSALES), and a second run changes nothing;
//! - after a full sync of e2e.rs's reduced standard set, an edit in Business Central and an edit
//!   in Dataverse (by a Sales user) each arrive on the other side, and a further run changes
//!   nothing.
use super::e2e::{self, api_tables, counts, embedded, load, reduced_model, run_once};
use crate::support::http as http_support;

use coupler::analysis::Model;
use coupler::runtime::connector::{Connector, Record, WriteOp};
use coupler::runtime::connectors::{
    BusinessCentral, BusinessCentralOnly, BusinessCentralOptions, Dataverse, DataverseOptions,
};
use coupler::runtime::engine::{self, Quiet, RunOptions, RunReport};
use coupler::runtime::state::{tx, Coupling, StateStore};
use http_support::cap::{CapServer, COMPANY_NAME, SEED_HEADER, USER_HEADER};
use http_support::loopback::read_all;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// The integration user, and a Sales user who enters and edits data.
const IU: &str = "aaaaaaaa-0000-4000-8000-000000000001";
const USER: &str = "bbbbbbbb-0000-4000-8000-000000000002";

fn bc_connector(model: &Model, cap: &CapServer, seeding: bool) -> Arc<BusinessCentral> {
    let extra_headers = if seeding {
        vec![(SEED_HEADER.0.into(), SEED_HEADER.1.into())]
    } else {
        Vec::new()
    };
    Arc::new(
        BusinessCentral::new(
            model.systems["bc"].catalog.clone().unwrap(),
            &cap.business_central_url(),
            Some(COMPANY_NAME),
            None,
            Some(IU),
            BusinessCentralOptions {
                only: BusinessCentralOnly { client_ids: true },
                extra_headers,
                ..BusinessCentralOptions::default()
            },
        )
        .unwrap(),
    )
}

fn dv_connector(model: &Model, cap: &CapServer, user: &str, seeding: bool) -> Arc<Dataverse> {
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

fn systems(bc: Arc<BusinessCentral>, sales: Arc<Dataverse>) -> HashMap<String, Arc<dyn Connector>> {
    let mut systems: HashMap<String, Arc<dyn Connector>> = HashMap::new();
    systems.insert("bc".into(), bc);
    systems.insert("sales".into(), sales);
    systems
}

/// One write, which must succeed.
async fn write_one(c: &dyn Connector, table: &str, op: WriteOp) {
    let results = c
        .write(table, vec![op])
        .await
        .expect("the write is answered");
    assert!(results.iter().all(Result::is_ok), "{table}: {results:?}");
}

fn fields(v: Value) -> Map<String, Value> {
    v.as_object().expect("an object").clone()
}

fn failures(state: &StateStore) -> Vec<String> {
    state
        .failures(None)
        .unwrap()
        .iter()
        .map(|f| format!("{} {}: {}", f.mapping, f.source_id, f.message))
        .collect()
}

fn assert_no_change(report: &RunReport) {
    let t = report.total();
    assert_eq!((t.inserted, t.modified), (0, 0), "{:#?}", counts(report));
}

/// GET on the Business Central API: the values as a client of the API sees them.
async fn bc_get(cap: &CapServer, path: &str) -> Vec<Value> {
    let url = format!("{}/{path}", cap.company_url());
    let body: Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
    body["value"]
        .as_array()
        .unwrap_or_else(|| panic!("GET {url}: {body}"))
        .clone()
}

// ---------------------------------------------------------------------------------------------
// Sales orders from Sales into the CAP Business Central.

const ACCOUNT: &str = "a0000000-0000-4000-8000-000000000001";
const PRODUCT: &str = "b0000000-0000-4000-8000-000000000001";
const SUBMITTED: &str = "d0000000-0000-4000-8000-000000000001";
const DRAFT: &str = "d0000000-0000-4000-8000-000000000002";
const CUSTOMER_ID: &str = "c0000000-0000-4000-8000-000000000001";
const ITEM_ID: &str = "c1000000-0000-4000-8000-000000000001";
const WRITE_IN_ID: &str = "c1000000-0000-4000-8000-000000000002";

/// What the order mappings need (their `via`s and `after`s), and the two order mappings.
const ORDER_MAPPINGS: &[&str] = &[
    "SALESPEOPLE",
    "CURRENCY",
    "CUSTOMER",
    "VENDOR",
    "CONTACT",
    "\"UNIT OF MEASURE\"",
    "ITEM-PRODUCT",
    "\"PAYMENT TERMS\"",
    "\"SHIPMENT METHOD\"",
    "SALESORDER-FROMSALES",
    "SALESORDERLINE-FROMSALES",
];

fn long_description() -> String {
    (0..25).map(|i| format!("part{i:02}....")).collect()
}

/// The reduced standard set with sales orders from Sales on.
fn order_model() -> Model {
    reduced_model(ORDER_MAPPINGS, &["create_sales_orders"])
}

/// A customer, an item and the write-in item the standard set names, loaded into the CAP
/// Business Central.
async fn seed_business_central(bc: &BusinessCentral) {
    let create = |id: &str, v: Value| WriteOp::Create {
        id: id.into(),
        fields: fields(v),
    };
    write_one(
        bc,
        "Customer",
        create(CUSTOMER_ID, json!({ "No.": "C1", "Name": "Alpha" })),
    )
    .await;
    for (id, no, description) in [
        (ITEM_ID, "1000", "Bicycle"),
        (WRITE_IN_ID, "WRITE-IN", "Write-in product"),
    ] {
        let item = json!({ "No.": no, "Description": description, "Unit Price": 400 });
        write_one(bc, "Item", create(id, item)).await;
    }
}

/// What a Sales user entered: an account, a product, a submitted order with an item line, a
/// write-in line and a line with a 250-character description, and a draft order with one line.
/// Loaded as seed data: an order's `statecode` is set by an update on Dataverse, never on create.
async fn seed_sales(sales: &Dataverse) {
    let rows = [
        (
            "account",
            ACCOUNT,
            json!({ "name": "Alpha", "customertypecode": "Customer", "statecode": "Active" }),
        ),
        (
            "product",
            PRODUCT,
            json!({ "productnumber": "1000", "name": "Bicycle", "producttypecode": "Sales Inventory", "statecode": "Active" }),
        ),
        (
            "salesorder",
            SUBMITTED,
            json!({ "name": "PO-4711", "ordernumber": "ORD-01001", "customerid": ACCOUNT, "customeridtype": "account", "statecode": "Submitted" }),
        ),
        (
            "salesorder",
            DRAFT,
            json!({ "name": "Draft", "ordernumber": "ORD-01002", "customerid": ACCOUNT, "customeridtype": "account", "statecode": "Active" }),
        ),
        (
            "salesorderdetail",
            "e0000000-0000-4000-8000-000000000001",
            json!({ "salesorderid": SUBMITTED, "productid": PRODUCT, "sequencenumber": 1, "quantity": 3, "priceperunit": 390, "productdescription": "Bicycle, red" }),
        ),
        (
            "salesorderdetail",
            "e0000000-0000-4000-8000-000000000002",
            json!({ "salesorderid": SUBMITTED, "isproductoverridden": true, "sequencenumber": 2, "quantity": 1, "priceperunit": 25, "productdescription": "Gift wrapping" }),
        ),
        (
            "salesorderdetail",
            "e0000000-0000-4000-8000-000000000003",
            json!({ "salesorderid": SUBMITTED, "productid": PRODUCT, "sequencenumber": 3, "quantity": 1, "priceperunit": 400, "productdescription": long_description() }),
        ),
        (
            "salesorderdetail",
            "e0000000-0000-4000-8000-000000000004",
            json!({ "salesorderid": DRAFT, "productid": PRODUCT, "sequencenumber": 1, "quantity": 9, "priceperunit": 400, "productdescription": "Draft line" }),
        ),
    ];
    for (entity, id, values) in rows {
        let op = WriteOp::Create {
            id: id.into(),
            fields: fields(values),
        };
        write_one(sales, entity, op).await;
    }
}

/// Couples a Business Central record with a Sales one by hand, as `coupler couple` does.
fn couple(state: &StateStore, mapping: &str, bc_id: &str, no: &str, sales_id: &str) {
    let coupling = Coupling {
        mapping: mapping.into(),
        left_id: bc_id.into(),
        right_id: sales_id.into(),
        left_ref: Some(no.into()),
        right_ref: Some(sales_id.into()),
        left_stamp: None,
        right_stamp: None,
        skipped: false,
        pending: false,
    };
    state
        .transaction(|conn| tx::put_coupling(conn, &coupling))
        .unwrap();
}

/// The two order mappings only (the master data is coupled by hand).
async fn run_orders(
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

/// The lines of an order as the API shows them: (sequence, lineType, lineObjectNumber,
/// description, quantity, unitPrice), in sequence order.
async fn order_lines(
    cap: &CapServer,
    order_id: &str,
) -> Vec<(i64, String, String, String, f64, f64)> {
    let mut lines: Vec<_> = bc_get(
        cap,
        &format!("salesOrderLines?$filter=documentId eq {order_id}"),
    )
    .await
    .iter()
    .map(|l| {
        let text = |k: &str| l[k].as_str().unwrap_or("?").to_string();
        let number = |k: &str| l[k].as_f64().unwrap_or(f64::NAN);
        (
            l["sequence"].as_i64().unwrap_or(-1),
            text("lineType"),
            text("lineObjectNumber"),
            text("description"),
            number("quantity"),
            number("unitPrice"),
        )
    })
    .collect();
    lines.sort_by_key(|l| l.0);
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sales_orders_from_cap_dataverse_into_cap_business_central() {
    let dir = tempfile::tempdir().unwrap();
    let model = order_model();
    let cap = tokio::task::spawn_blocking(CapServer::start).await.unwrap();
    seed_business_central(&bc_connector(&model, &cap, true)).await;
    seed_sales(&dv_connector(&model, &cap, USER, true)).await;
    let state = StateStore::open(&dir.path().join("state.db"), true).unwrap();
    couple(&state, "CUSTOMER", CUSTOMER_ID, "C1", ACCOUNT);
    couple(&state, "ITEM-PRODUCT", ITEM_ID, "1000", PRODUCT);
    let systems = systems(
        bc_connector(&model, &cap, false),
        dv_connector(&model, &cap, IU, false),
    );

    let first = run_orders(&model, &systems, &state).await;
    let failed = failures(&state);
    assert!(
        failed.is_empty(),
        "{failed:#?}\n{:#?}\n{}",
        counts(&first),
        cap.log()
    );

    // One order: the submitted one, the draft is not taken.
    let orders = bc_get(&cap, "salesOrders").await;
    assert_eq!(orders.len(), 1, "only the submitted order: {orders:#?}");
    assert_eq!(orders[0]["externalDocumentNumber"], json!("PO-4711"));
    assert_eq!(orders[0]["customerNumber"], json!("C1"));
    let order_id = orders[0]["id"].as_str().unwrap().to_string();

    // The write-in line goes to the item the standard set names (WRITE-IN); the description
    // beyond 100 characters follows on Comment lines numbered right after its line.
    let long = long_description();
    let line = |seq, kind: &str, no: &str, text: &str, qty, price| {
        (
            seq,
            kind.to_string(),
            no.to_string(),
            text.to_string(),
            qty,
            price,
        )
    };
    let want = vec![
        line(10000, "Item", "1000", "Bicycle, red", 3.0, 390.0),
        line(20000, "Item", "WRITE-IN", "Gift wrapping", 1.0, 25.0),
        line(30000, "Item", "1000", &long[..100], 1.0, 400.0),
        line(30001, "Comment", "", &long[100..200], 0.0, 0.0),
        line(30002, "Comment", "", &long[200..], 0.0, 0.0),
    ];
    assert_eq!(order_lines(&cap, &order_id).await, want);
    // The draft's line waits for its order.
    assert_eq!(state.count_held("SALESORDERLINE-FROMSALES").unwrap(), 1);

    let second = run_orders(&model, &systems, &state).await;
    assert_no_change(&second);
    assert!(failures(&state).is_empty(), "{:#?}", failures(&state));
    assert_eq!(bc_get(&cap, "salesOrders").await.len(), 1);
    assert_eq!(order_lines(&cap, &order_id).await, want);
}

// ---------------------------------------------------------------------------------------------
// Edits both ways after a full sync.

/// e2e.rs's CAP setup: the demo seed (API tables, API fields) in CAP's Business Central, the
/// demo's Sales users and currencies in CAP's Dataverse.
async fn seed_demo(model: &Model, dir: &Path, cap: &CapServer) {
    let catalog = model.systems["bc"].catalog.clone().unwrap();
    let scratch = |name: &str| embedded(model, &dir.join(format!("scratch-{name}")), name, None);
    let bc_seed = bc_connector(model, cap, true);
    let bc_tables = api_tables(&catalog);
    let seed = "examples/demo/business-central";
    load(
        model,
        dir,
        "bc",
        seed,
        &bc_tables,
        bc_seed.as_ref(),
        &scratch("bc"),
    )
    .await;
    let sales_seed = dv_connector(model, cap, USER, true);
    let sales_tables = ["systemuser".to_string(), "transactioncurrency".to_string()];
    let seed = "examples/demo/dynamics-365-sales";
    load(
        model,
        dir,
        "sales",
        seed,
        &sales_tables,
        sales_seed.as_ref(),
        &scratch("sales"),
    )
    .await;
}

/// Two customers coupled with their accounts by the full sync: (customer, account) pairs.
async fn coupled_customers(
    state: &StateStore,
    bc: &dyn Connector,
    sales: &dyn Connector,
) -> Vec<(Record, Record)> {
    let customers = read_all(bc, "Customer").await;
    let accounts = read_all(sales, "account").await;
    let by_id = |rs: &[Record], id: &str| rs.iter().find(|r| r.id == id).cloned();
    let pairs: Vec<(Record, Record)> = state
        .couplings("CUSTOMER")
        .unwrap()
        .iter()
        .filter_map(|c| {
            Some((
                by_id(&customers, &c.left_id)?,
                by_id(&accounts, &c.right_id)?,
            ))
        })
        .take(2)
        .collect();
    assert_eq!(
        pairs.len(),
        2,
        "the full sync coupled at least two customers"
    );
    pairs
}

async fn read_one(c: &dyn Connector, table: &str, id: &str) -> Record {
    let mut found = c.read_by_ids(table, &[id.to_string()]).await.unwrap();
    assert_eq!(found.len(), 1, "{table} {id}");
    found.remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_both_ways_between_cap_business_central_and_cap_dataverse() {
    let dir = tempfile::tempdir().unwrap();
    let model = reduced_model(e2e::CAP_BC_MAPPINGS, &[]);
    let cap = tokio::task::spawn_blocking(CapServer::start).await.unwrap();
    seed_demo(&model, dir.path(), &cap).await;
    let bc = bc_connector(&model, &cap, false);
    let sales = dv_connector(&model, &cap, IU, false);
    let systems = systems(bc.clone(), sales.clone());
    let state = StateStore::open(&dir.path().join("state.db"), true).unwrap();

    let full = run_once(&model, &systems, &state, true).await;
    assert!(full.total().inserted > 0, "{:#?}", counts(&full));
    assert!(failures(&state).is_empty(), "{:#?}", failures(&state));
    assert_no_change(&run_once(&model, &systems, &state, false).await);

    // A customer's phone edited in Business Central (through the API), another customer's
    // account's phone edited in Sales by a Sales user (not the integration user).
    let pairs = coupled_customers(&state, bc.as_ref(), sales.as_ref()).await;
    let ((customer, _), (_, account)) = (&pairs[0], &pairs[1]);
    let bc_phone = format!("{}-1", customer.get("Phone No.").as_str().unwrap_or("555"));
    let sales_phone = format!("{}-2", account.get("telephone1").as_str().unwrap_or("555"));
    let update = |id: &str, v: Value| WriteOp::Update {
        id: id.into(),
        fields: fields(v),
    };
    write_one(
        bc.as_ref(),
        "Customer",
        update(&customer.id, json!({ "Phone No.": bc_phone })),
    )
    .await;
    let user = dv_connector(&model, &cap, USER, false);
    write_one(
        user.as_ref(),
        "account",
        update(&account.id, json!({ "telephone1": sales_phone })),
    )
    .await;

    let edits = run_once(&model, &systems, &state, false).await;
    let failed = failures(&state);
    assert!(failed.is_empty(), "{failed:#?}\n{:#?}", counts(&edits));

    // Each edit arrived on the other side.
    let account_of_customer = read_one(sales.as_ref(), "account", &pairs[0].1.id).await;
    assert_eq!(account_of_customer.get("telephone1"), &json!(bc_phone));
    let customer_of_account = read_one(bc.as_ref(), "Customer", &pairs[1].0.id).await;
    assert_eq!(customer_of_account.get("Phone No."), &json!(sales_phone));
    // One update each way and nothing else; a further run sends neither edit back.
    let modified = |mapping: &str, arrow: &str| -> Vec<u64> {
        let m = edits.mappings.iter();
        m.filter(|m| m.mapping == mapping && m.direction.to_string() == arrow)
            .map(|m| m.counts.modified)
            .collect()
    };
    let why = counts(&edits);
    assert_eq!(modified("CUSTOMER", "->"), [1], "{why:#?}");
    assert_eq!(modified("CUSTOMER", "<-"), [1], "{why:#?}");
    let t = edits.total();
    assert_eq!((t.inserted, t.modified), (0, 2), "{why:#?}");
    assert_no_change(&run_once(&model, &systems, &state, false).await);
    assert!(failures(&state).is_empty(), "{:#?}", failures(&state));
    // The edited records themselves kept their edits.
    let customer = read_one(bc.as_ref(), "Customer", &pairs[0].0.id).await;
    assert_eq!(customer.get("Phone No."), &json!(bc_phone));
    let account = read_one(sales.as_ref(), "account", &pairs[1].1.id).await;
    assert_eq!(account.get("telephone1"), &json!(sales_phone));
}
