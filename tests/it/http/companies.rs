//! The company scope over HTTP, into the CAP imitation of Dataverse (whose `_bcbi_companyid_value`
//! columns come from Business Central's solution, recorded in tests/servers/api/dataverse/*.yaml):
//! two Business Central companies share one Dataverse; the company filter is sent in `$filter`
//! and the server honours it. What a company writes is not tested here: the stamp is a lookup
//! bind, and no source read names the navigation property of `bcbi_companyid`.
use super::e2e::{embedded, run_once};
use crate::support::http as http_support;
use crate::support::sync::systems_header;

use coupler::analysis::Model;
use coupler::runtime::company::CompanyScoped;
use coupler::runtime::connector::{ChangeQuery, Connector};
use coupler::runtime::connectors::{Dataverse, DataverseOptions};
use coupler::runtime::state::StateStore;
use http_support::cap::{CapServer, USER_HEADER};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

const IU: &str = "aaaaaaaa-0000-4000-8000-000000000001";
const COMPANY_A: &str = "aaaaaaaa-0000-4000-8000-00000000000a";
const COMPANY_B: &str = "bbbbbbbb-0000-4000-8000-00000000000b";
const A_ACCOUNT: &str = "eeeeeeee-0000-4000-8000-00000000000e";
const B_ACCOUNT: &str = "dddddddd-0000-4000-8000-00000000000d";

fn model(dir: &Path) -> Model {
    let text = format!(
        "{}mapping CUSTOMER: bc.Customer <- sales.account {{\n    on missing: create\n\n    fields {{\n        Name <- name | truncate(100)\n    }}\n}}\n",
        systems_header().replace(
            "dynamics-365-sales.yaml\"\n",
            "dynamics-365-sales.yaml\"\n    company bcbi_companyid\n"
        )
    );
    let path = dir.join("sync.map");
    std::fs::write(&path, text).unwrap();
    let (loaded, model) = coupler::cli::load::check(&[path]).unwrap();
    assert!(!loaded.diagnostics.has_errors());
    model
}

fn dataverse(model: &Model, cap: &CapServer, user: &str) -> Arc<Dataverse> {
    Arc::new(
        Dataverse::new(
            model.systems["sales"].catalog.clone().unwrap(),
            &cap.dataverse_url(),
            None,
            Some(user),
            DataverseOptions {
                extra_headers: vec![(USER_HEADER.into(), user.into())],
                ..DataverseOptions::default()
            },
        )
        .unwrap(),
    )
}

fn seed(dir: &Path, customers: Value) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("seed.json"),
        json!({ "Customer": customers }).to_string(),
    )
    .unwrap();
    dir.to_path_buf()
}

/// Rows as Business Central's setup and the companies left them: the stamp is stored straight
/// into `_bcbi_companyid_value`, since no source read names the column's navigation property
/// (tests/servers/cap/gen_cds.py), so a bind cannot be sent.
async fn seed_sales(cap: &CapServer) {
    let client = reqwest::Client::new();
    let post = |set: &str, body: Value| {
        let url = format!("{}/{set}", cap.dataverse_url());
        let req = client.post(url).json(&body);
        async move {
            let r = req.send().await.expect("POST");
            assert!(
                r.status().is_success(),
                "{}",
                r.text().await.unwrap_or_default()
            );
        }
    };
    for (id, name) in [(COMPANY_A, "A"), (COMPANY_B, "B")] {
        post(
            "bcbi_companies",
            json!({ "bcbi_companyid": id, "bcbi_name": name }),
        )
        .await;
    }
    post(
        "accounts",
        json!({ "accountid": A_ACCOUNT, "name": "A's Account", "_bcbi_companyid_value": COMPANY_A }),
    )
    .await;
    post(
        "accounts",
        json!({ "accountid": B_ACCOUNT, "name": "B's Account", "_bcbi_companyid_value": COMPANY_B }),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_company_filter_is_sent_and_honoured_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let model = model(dir.path());
    let cap = tokio::task::spawn_blocking(CapServer::start).await.unwrap();
    seed_sales(&cap).await;
    let bc_seed = seed(&dir.path().join("seed"), json!([]));
    let scoped: Arc<dyn Connector> = Arc::new(CompanyScoped::new(
        dataverse(&model, &cap, IU),
        "bcbi_companyid",
        COMPANY_A,
        HashSet::from(["account".to_string()]),
    ));
    let bc = embedded(&model, dir.path(), "bc", Some(&bc_seed));
    let mut systems: HashMap<String, Arc<dyn Connector>> = HashMap::new();
    systems.insert("bc".into(), bc.clone());
    systems.insert("sales".into(), scoped);
    let state = StateStore::open(&dir.path().join("state.db"), true).unwrap();
    let first = run_once(&model, &systems, &state, true).await;
    for m in &first.mappings {
        assert!(m.error.is_none() && m.counts.failed == 0, "{first:?}");
    }
    let log = cap.log();
    assert!(
        log.contains("_bcbi_companyid_value"),
        "no company filter in the requests:\n{log}"
    );
    // Company A's Business Central got A's account only.
    let all = ChangeQuery {
        table: "Customer",
        filter: None,
        since: None,
        exclude_modified_by: None,
        page_size: 100,
        fields: None,
    };
    let customers = bc
        .read_changes(&all, None)
        .await
        .unwrap()
        .records
        .into_iter()
        .map(|r| r.get("Name").as_str().unwrap_or("").to_string())
        .collect::<Vec<_>>();
    assert_eq!(customers, ["A's Account"], "{first:?}");
    drop(cap);
}
