//! End to end over HTTP: the standard mapping set (mappings/business-central-sales.map) run from
//! an embedded Business Central (seed: examples/demo/business-central) into the SAP CAP
//! imitation of Dataverse, compared with the same run into an embedded Dataverse: the report
//! counts must be the same.
use crate::support::http as http_support;

use coupler::analysis::Model;
use coupler::runtime::connector::Connector;
use coupler::runtime::connectors::{Dataverse, DataverseOptions};
use coupler::runtime::embedded::EmbeddedSystem;
use coupler::runtime::engine::{self, Quiet, RunOptions, RunReport};
use coupler::runtime::state::StateStore;
use coupler::schema::Catalog;
use http_support::cap::{CapServer, SEED_HEADER, USER_HEADER};
use http_support::loopback::read_all;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const IU: &str = "aaaaaaaa-0000-4000-8000-000000000001";

pub(super) fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn model() -> Model {
    let (_, model) =
        coupler::cli::load::check(&[repo().join("mappings/business-central-sales.map")]).unwrap();
    model
}

pub(super) fn embedded(
    model: &Model,
    dir: &Path,
    name: &str,
    seed: Option<&Path>,
) -> Arc<EmbeddedSystem> {
    let s = &model.systems[name];
    Arc::new(
        EmbeddedSystem::open(
            &dir.join(format!("{name}.db")),
            name,
            s.kind,
            s.catalog.clone().unwrap(),
            seed,
            "coupler-integration",
        )
        .unwrap(),
    )
}

pub(super) async fn run_once(
    model: &Model,
    systems: &HashMap<String, Arc<dyn Connector>>,
    state: &StateStore,
    full: bool,
) -> RunReport {
    let plan = coupler::plan::compile(model, None);
    let opts = RunOptions {
        full,
        page_size: 50,
        ..RunOptions::default()
    };
    engine::run(model, &plan, systems, state, &opts, &Quiet)
        .await
        .unwrap()
}

/// The base currency of CAP's Dataverse organization (its seed).
const CAP_BASE_CURRENCY: &str = "7d2b9c3e-0b1f-4e57-9a61-000000000001";

pub(super) fn counts(r: &RunReport) -> Vec<String> {
    r.mappings
        .iter()
        .map(|m| format!("{} {} {:?} {:?}", m.mapping, m.direction, m.counts, m.error))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standard_mapping_set_embedded_bc_to_cap_dataverse() {
    let model = model();
    let seed = repo().join("examples/demo/business-central");

    // Reference: embedded -> embedded.
    let a = tempfile::tempdir().unwrap();
    let mut systems: HashMap<String, Arc<dyn Connector>> = HashMap::new();
    systems.insert("bc".into(), embedded(&model, a.path(), "bc", Some(&seed)));
    systems.insert("sales".into(), embedded(&model, a.path(), "sales", None));
    let state = StateStore::open(&a.path().join("state.db"), true).unwrap();
    let want1 = run_once(&model, &systems, &state, true).await;
    let want2 = run_once(&model, &systems, &state, false).await;

    // The same into CAP's Dataverse.
    let cap = tokio::task::spawn_blocking(CapServer::start).await.unwrap();
    let b = tempfile::tempdir().unwrap();
    let sales = Arc::new(
        Dataverse::new(
            model.systems["sales"].catalog.clone().unwrap(),
            &cap.dataverse_url(),
            None,
            Some(IU),
            DataverseOptions {
                extra_headers: vec![(USER_HEADER.into(), IU.into())],
                use_batch: std::env::var("E2E_NO_BATCH").is_err(),
                ..DataverseOptions::default()
            },
        )
        .unwrap(),
    );
    let mut systems: HashMap<String, Arc<dyn Connector>> = HashMap::new();
    systems.insert("bc".into(), embedded(&model, b.path(), "bc", Some(&seed)));
    systems.insert("sales".into(), sales.clone());
    let state = StateStore::open(&b.path().join("state.db"), true).unwrap();
    let got1 = run_once(&model, &systems, &state, true).await;
    let got2 = run_once(&model, &systems, &state, false).await;

    // Known defect of the CAP imitation (tests/servers/cap/server.js): binding a lookup adds
    // `<field>type` to the row before CAP validates it, so a table without that column rejects
    // the write ("Property \"defaultuomscheduleidtype\" does not exist"). Products cannot be
    // created there until it is fixed; the mappings that depend on them are compared once it is.
    let cap_bug = state
        .failures(None)
        .unwrap()
        .iter()
        .any(|f| f.message.contains("type\" does not exist"));
    let skip: &[&str] = if cap_bug {
        eprintln!("note: CAP rejects `<field>type` on tables without it; ITEM-PRODUCT and SALESPRC-PRODPRICE not compared");
        &["ITEM-PRODUCT", "SALESPRC-PRODPRICE"]
    } else {
        &[]
    };
    let keep = |v: Vec<String>| -> Vec<String> {
        v.into_iter()
            .filter(|l| !skip.iter().any(|s| l.starts_with(&format!("{s} "))))
            .collect()
    };
    assert_eq!(
        keep(counts(&got1)),
        keep(counts(&want1)),
        "first (full) run"
    );
    assert_eq!(keep(counts(&got2)), keep(counts(&want2)), "second run");
    assert!(want1.total().inserted > 0);
    // `create missing`: the demo's codes with no Sales option ('1M(8D)', 'EXW', 'OWN LOG.') became
    // option values through InsertOptionValue on CAP's Dataverse, once; a later connector reads
    // them back from the option set (the Metadata API), so the second run created none.
    for (m, table, field, label) in [
        ("PAYMENT TERMS", "account", "paymenttermscode", "1M(8D)"),
        (
            "SHIPMENT METHOD",
            "account",
            "address1_freighttermscode",
            "EXW",
        ),
        (
            "SHIPPING AGENT",
            "salesorder",
            "shippingmethodcode",
            "OWN LOG.",
        ),
    ] {
        let created = |r: &RunReport| {
            r.mappings
                .iter()
                .find(|x| x.mapping == m)
                .map(|x| x.counts.inserted)
        };
        assert_eq!((created(&got1), created(&got2)), (Some(1), Some(0)), "{m}");
        let added = sales.added_options(table, field).await.unwrap();
        assert!(added.iter().any(|(l, _)| l == label), "{m}: {added:?}");
    }
    // Local currency: the demo's prices have a blank currency code; on CAP's Dataverse they
    // carry the organization's base currency, which the connector read from `organizations`
    // (tests/servers/cap/db/data/dv-organizations.csv).
    let url = format!(
        "{}/productpricelevels?$select=_transactioncurrencyid_value",
        cap.dataverse_url()
    );
    let raw: serde_json::Value = reqwest::get(url).await.unwrap().json().await.unwrap();
    let currencies: Vec<_> = raw["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["_transactioncurrencyid_value"].clone())
        .collect();
    assert!(!currencies.is_empty());
    assert!(
        currencies.iter().all(|c| c == CAP_BASE_CURRENCY),
        "{currencies:?}"
    );
    let requests = sales.http().request_count();
    let records = got1.total().inserted + got1.total().modified + got1.total().unchanged;
    eprintln!(
        "CAP Dataverse: {requests} requests for {records} records ({:.1} per 1,000)",
        requests as f64 * 1000.0 / records.max(1) as f64
    );
}

// ---------------------------------------------------------------------------------------------
// CAP Business Central <-> CAP Dataverse.

/// The mappings of the standard set a Business Central API endpoint serves: those whose BC
/// table has an `api:` entity set in schemas/business-central.yaml. `endpoint::serve` leaves out
/// "UNIT GROUP", "ITEM UOM", "RESOURCE UOM", RESOURCE-PRODUCT, CUSTPRCGRP-PRICE,
/// SALESPRC-PRODPRICE, PLHEADER-PRICE, PLLINE-PRODPRICE and the options "SHIPPING AGENT" (W0904),
/// the `via "SHIPPING AGENT"` lines (W0905) and the lines on fields the API has no property for
/// (W0903), as `coupler run --profile` does with a `business_central` endpoint; the test checks
/// that the mappings it keeps are these.
pub(super) const CAP_BC_MAPPINGS: &[&str] = &[
    "SALESPEOPLE",
    "CURRENCY",
    "CUSTOMER",
    "VENDOR",
    "CONTACT",
    "\"UNIT OF MEASURE\"",
    "ITEM-PRODUCT",
    "ITEM-AVAILABILITY",
    "OPPORTUNITY",
    "POSTEDSALESINV-INV",
    "POSTEDSALESLINE-INV",
    "SALESORDER-ORDER-ONEWAY",
    "SALESORDER-ORDER",
    "SOLINE-ORDERDETAIL",
    "\"PAYMENT TERMS\"",
    "\"SHIPMENT METHOD\"",
];

/// mappings/business-central-sales.map as it is, with the settings `on` switched on, restricted
/// to what a Business Central API endpoint serves (`endpoint::serve`, as a profile with a
/// `business_central` endpoint does; no error may remain) and, of that, to the mappings `keep`
/// (the others that would run are left out as a selection).
pub(super) fn reduced_model(keep: &[&str], on: &[&str]) -> Model {
    let mut model = model();
    for name in on {
        model
            .settings
            .get_mut(*name)
            .unwrap_or_else(|| panic!("the standard set declares `{name}`"))
            .kind = coupler::syntax::ast::LitKind::Bool(true);
    }
    let published = coupler::analysis::endpoint::Published::default();
    let diagnostics = coupler::analysis::endpoint::serve(&mut model, "bc", "cap", &published);
    let errors: Vec<String> = diagnostics
        .iter()
        .filter(|d| d.severity() == coupler::diagnostic::Severity::Error)
        .map(|d| format!("{} ({})", d.message, d.label))
        .collect();
    assert!(
        errors.is_empty(),
        "the standard set on the API: {errors:#?}"
    );
    let unquote = |n: &str| n.trim_matches('"').to_string();
    let kept: Vec<String> = keep.iter().map(|n| unquote(n)).collect();
    for k in &kept {
        let why = model.not_served(k).map(|l| &l.reason);
        assert!(why.is_none(), "`{k}` is not served on the API: {why:?}");
    }
    let names: Vec<String> = model.mappings.keys().cloned().collect();
    for name in names {
        // Mappings off by a setting or not served do not run anyway.
        if !kept.contains(&name) && model.enabled(&model.mappings[&name]) {
            model.left_out.push(coupler::analysis::LeftOut {
                mapping: name.clone(),
                line: None,
                what: name,
                reason: "not in this test".into(),
            });
        }
    }
    model
}

/// Loads `tables` of a demo seed into an HTTP endpoint through its connector's `write` (Business
/// Central: the writable fields its API has; ids kept), then copies what the endpoint
/// holds into the embedded `reference`. Returns the number of records loaded.
pub(super) async fn load(
    model: &Model,
    dir: &Path,
    system: &str,
    seed: &str,
    tables: &[String],
    endpoint: &dyn Connector,
    reference: &EmbeddedSystem,
) -> usize {
    use coupler::runtime::connector::WriteOp;
    let catalog = model.systems[system].catalog.clone().unwrap();
    let seeded = embedded(
        model,
        &dir.join(format!("seed-{system}")),
        system,
        Some(&repo().join(seed)),
    );
    let bc = model.systems[system].kind == coupler::analysis::SystemKind::BusinessCentral;
    let mut loaded = 0;
    for table in tables {
        let t = catalog.table(table).unwrap();
        let ops: Vec<WriteOp> = seeded
            .list(table)
            .unwrap()
            .into_iter()
            .map(|r| {
                let fields = r
                    .fields
                    .into_iter()
                    .filter(|(k, v)| {
                        let f = &t.fields[k];
                        let writable = if bc {
                            (f.api.is_some() || f.api_ref.is_some())
                                && f.api.as_deref() != Some("id")
                                && !f.read_only
                        } else {
                            // The key is the record id; the server stamps created*/modified*.
                            // Other read-only columns (`fullname`) are seeded: the loading
                            // connector sends the seed header.
                            !t.key.contains(k)
                                && !k.starts_with("created")
                                && !k.starts_with("modified")
                        };
                        writable && !v.is_null()
                    })
                    .collect();
                WriteOp::Create { id: r.id, fields }
            })
            .collect();
        loaded += ops.len();
        for res in endpoint.write(table, ops).await.unwrap() {
            res.unwrap_or_else(|e| panic!("loading {table} into {system}: {e}"));
        }
        for r in read_all(endpoint, table).await {
            let fields = r.fields.into_iter().filter(|(_, v)| !v.is_null()).collect();
            reference.put_as(table, fields, "seed", true).unwrap();
        }
    }
    assert!(loaded > 0, "the seed has records in {tables:?}");
    loaded
}

/// The tables in the API whose key fields are all in it (not the document lines, see
/// [`CAP_BC_MAPPINGS`]), each after the tables its `api_ref` fields name: a record is written
/// with the ids of the records those name.
pub(super) fn api_tables(catalog: &Catalog) -> Vec<String> {
    let in_api = |f: &coupler::schema::Field| f.api.is_some() || f.api_ref.is_some();
    let api_tables: Vec<String> = catalog
        .tables
        .iter()
        .filter(|(_, t)| t.api.is_some() && t.key.iter().all(|k| in_api(&t.fields[k])))
        .map(|(n, _)| n.clone())
        .collect();
    let refers = |a: &str, b: &str| {
        catalog.tables[a]
            .fields
            .values()
            .any(|f| f.api_ref.is_some() && f.lookup.iter().any(|l| l == b))
    };
    let mut ordered: Vec<String> = Vec::new();
    while ordered.len() < api_tables.len() {
        let next = api_tables
            .iter()
            .find(|t| {
                !ordered.contains(t)
                    && api_tables
                        .iter()
                        .all(|o| o == *t || ordered.contains(o) || !refers(t, o))
            })
            .expect("no cycle of api_ref references")
            .clone();
        ordered.push(next);
    }
    ordered
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cap_business_central_to_cap_dataverse() {
    use coupler::runtime::connectors::{BusinessCentral, BusinessCentralOptions};

    let dir = tempfile::tempdir().unwrap();
    let model = reduced_model(CAP_BC_MAPPINGS, &[]);
    // CAP_BC_MAPPINGS is all the API serves of the standard set: no mapping was left out by
    // this test rather than by the endpoint.
    let selected: Vec<&str> = model
        .left_out
        .iter()
        .filter(|l| l.reason == "not in this test")
        .map(|l| l.mapping.as_str())
        .collect();
    assert!(selected.is_empty(), "served but not run: {selected:?}");
    let catalog = model.systems["bc"].catalog.clone().unwrap();
    let cap = tokio::task::spawn_blocking(CapServer::start).await.unwrap();

    // What a profile with `kind: business_central` (url = the API root, company by name) and
    // `kind: dataverse` builds.
    let connect = |seeding: bool| {
        let extra_headers = if seeding {
            vec![(SEED_HEADER.0.into(), SEED_HEADER.1.into())]
        } else {
            Vec::new()
        };
        Arc::new(
            BusinessCentral::new(
                catalog.clone(),
                &cap.business_central_url(),
                Some(http_support::cap::COMPANY_NAME),
                None,
                Some(IU),
                BusinessCentralOptions {
                    only: coupler::runtime::connectors::BusinessCentralOnly { client_ids: true },
                    extra_headers,
                    ..BusinessCentralOptions::default()
                },
            )
            .unwrap(),
        )
    };
    let bc = connect(false);
    // The seed is loaded as data: with the values of properties the API does not let a client
    // write (document numbers), which the imitation takes only from a loading test.
    let bc_seed = connect(true);
    let connect_sales = |seeding: bool| {
        let mut extra_headers = vec![(USER_HEADER.into(), IU.into())];
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
    };
    let sales = connect_sales(false);
    // Likewise the Sales seed: with the values of columns the reference makes read-only
    // (`fullname`, `islicensed`...), which the imitation takes only from a loading test.
    let sales_seed = connect_sales(true);

    // The demo seed, API tables and API fields only, into CAP's Business Central through the
    // connector's write; then read back, so the embedded reference gets exactly what CAP holds
    // (CAP's defaults for the fields the seed leaves empty included).
    let api_tables = api_tables(&catalog);
    let reference_bc = embedded(&model, dir.path(), "bc", None);
    let loaded = load(
        &model,
        dir.path(),
        "bc",
        "examples/demo/business-central",
        &api_tables,
        bc_seed.as_ref(),
        &reference_bc,
    )
    .await;
    // The Sales users and currencies of the demo seed on both sides, so that salespeople couple
    // by e-mail (owners resolve) as in the demo profile.
    let reference_sales = embedded(&model, dir.path(), "sales", None);
    let sales_tables = ["systemuser".to_string(), "transactioncurrency".to_string()];
    load(
        &model,
        dir.path(),
        "sales",
        "examples/demo/dynamics-365-sales",
        &sales_tables,
        sales_seed.as_ref(),
        &reference_sales,
    )
    .await;

    // Reference: embedded <-> embedded from the same data.
    let mut systems: HashMap<String, Arc<dyn Connector>> = HashMap::new();
    systems.insert("bc".into(), reference_bc);
    systems.insert("sales".into(), reference_sales);
    let state = StateStore::open(&dir.path().join("state-ref.db"), true).unwrap();
    let want1 = run_once(&model, &systems, &state, true).await;
    let want2 = run_once(&model, &systems, &state, false).await;

    // CAP Business Central <-> CAP Dataverse.
    let bc_before = bc.http().request_count();
    let mut systems: HashMap<String, Arc<dyn Connector>> = HashMap::new();
    systems.insert("bc".into(), bc.clone());
    systems.insert("sales".into(), sales.clone());
    let state = StateStore::open(&dir.path().join("state.db"), true).unwrap();
    let got1 = run_once(&model, &systems, &state, true).await;
    let got2 = run_once(&model, &systems, &state, false).await;
    // Same known CAP defect as above (products cannot be created on CAP's Dataverse).
    let cap_bug = state
        .failures(None)
        .unwrap()
        .iter()
        .any(|f| f.message.contains("type\" does not exist"));
    let skip: &[&str] = if cap_bug {
        eprintln!(
            "note: CAP rejects `<field>type` on tables without it; ITEM-PRODUCT not compared"
        );
        &["ITEM-PRODUCT"]
    } else {
        &[]
    };
    let keep = |v: Vec<String>| -> Vec<String> {
        v.into_iter()
            .filter(|l| !skip.iter().any(|s| l.starts_with(&format!("{s} "))))
            .collect()
    };
    assert_eq!(
        keep(counts(&got1)),
        keep(counts(&want1)),
        "first (full) run"
    );
    assert_eq!(keep(counts(&got2)), keep(counts(&want2)), "second run");
    assert!(want1.total().inserted > 0);
    // The second run changes nothing, and nothing failed: with the fields the API does not
    // expose left out, CURRENCY couples the currencies (its `where bc: "ISO Code" != ''` is one of
    // those), so every customer, vendor and invoice resolves its currency; the invoice lines
    // reach their invoices through `documentId`.
    let t2 = got2.total();
    assert_eq!((t2.inserted, t2.modified), (0, 0), "{:#?}", counts(&got2));
    let failures: Vec<String> = state
        .failures(None)
        .unwrap()
        .iter()
        .map(|f| format!("{}: {}", f.mapping, f.message))
        .collect();
    assert!(failures.is_empty(), "{failures:#?}");
    let lines = got1
        .mappings
        .iter()
        .find(|m| m.mapping == "POSTEDSALESLINE-INV")
        .map(|m| m.counts.inserted);
    assert!(lines.is_some_and(|n| n > 0), "{:#?}", counts(&got1));
    eprintln!(
        "CAP BC <-> CAP Dataverse: {} BC requests, {} Dataverse requests, {} records loaded",
        bc.http().request_count() - bc_before,
        sales.http().request_count(),
        loaded
    );
}
