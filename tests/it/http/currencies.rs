//! Currencies over HTTP, into the CAP imitation of Dataverse: like Dataverse, it refuses a
//! currency whose ISO code it does not know; with CURRENCY's rule (`where bc: Code is iso4217`)
//! such a currency is skipped with the reason instead, and nothing fails.
use super::e2e::{embedded, run_once};
use crate::support::http as http_support;
use crate::support::sync::{standard_map, systems_header};

use coupler::analysis::Model;
use coupler::runtime::connector::Connector;
use coupler::runtime::connectors::{Dataverse, DataverseOptions};
use coupler::runtime::engine::RunReport;
use coupler::runtime::state::{Counts, StateStore};
use http_support::cap::{CapServer, USER_HEADER};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

const IU: &str = "aaaaaaaa-0000-4000-8000-000000000001";

/// CURRENCY of the standard set, without the ISO rule: the seed document's rule not stated.
fn without_iso_rule(map: &str) -> String {
    let out = map.replace("    where bc: Code is iso4217\n", "");
    assert_ne!(
        out, map,
        "CURRENCY's ISO rule is no longer written as expected"
    );
    out
}

fn model(dir: &Path, text: &str) -> Model {
    let path = dir.join("sync.map");
    std::fs::write(&path, text).unwrap();
    coupler::cli::load::check(&[path]).unwrap().1
}

/// A Business Central seed with EUR, USD and BTC (no ISO 4217 code).
fn seed(dir: &Path) -> std::path::PathBuf {
    let seed = dir.join("seed-bc");
    std::fs::create_dir_all(&seed).unwrap();
    std::fs::write(
        seed.join("currencies.json"),
        r#"{ "Currency": [
            { "Code": "EUR", "Description": "Euro" },
            { "Code": "USD", "Description": "US Dollar" },
            { "Code": "BTC", "Description": "Bitcoin" }
        ] }"#,
    )
    .unwrap();
    seed
}

/// Runs CURRENCY of `map_text` twice from an embedded BC into CAP's Dataverse.
async fn run(map_text: &str) -> (RunReport, RunReport, StateStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let model = model(dir.path(), map_text);
    let cap = tokio::task::spawn_blocking(CapServer::start).await.unwrap();
    let sales = Arc::new(
        Dataverse::new(
            model.systems["sales"].catalog.clone().unwrap(),
            &cap.dataverse_url(),
            None,
            Some(IU),
            DataverseOptions {
                extra_headers: vec![(USER_HEADER.into(), IU.into())],
                ..DataverseOptions::default()
            },
        )
        .unwrap(),
    );
    let seed = seed(dir.path());
    let mut systems: HashMap<String, Arc<dyn Connector>> = HashMap::new();
    systems.insert("bc".into(), embedded(&model, dir.path(), "bc", Some(&seed)));
    systems.insert("sales".into(), sales);
    let state = StateStore::open(&dir.path().join("state.db"), true).unwrap();
    let first = run_once(&model, &systems, &state, true).await;
    let second = run_once(&model, &systems, &state, false).await;
    drop(cap);
    (first, second, state, dir)
}

fn currency(r: &RunReport) -> Counts {
    r.mappings
        .iter()
        .find(|m| m.mapping == "CURRENCY")
        .map(|m| m.counts)
        .unwrap_or_default()
}

/// Only CURRENCY of the standard set runs (the other mappings have nothing to read).
fn currency_only(text: String) -> String {
    let start = text
        .find("mapping CURRENCY:")
        .expect("CURRENCY in the standard set");
    let end = start + text[start..].find("\n}\n").expect("CURRENCY's end") + 3;
    format!("{}{}", systems_header(), &text[start..end])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cap_dataverse_refuses_a_currency_code_it_does_not_know() {
    let (first, _, state, _dir) = run(&currency_only(without_iso_rule(&standard_map()))).await;
    let c = currency(&first);
    // USD is the organization's base currency, there from the start: coupled, not created.
    assert_eq!((c.inserted, c.coupled, c.failed), (1, 1, 1), "{c:?}");
    let failures = state.failures(None).unwrap();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(
        failures[0]
            .message
            .contains("'BTC' is not a valid ISO currency code"),
        "{}",
        failures[0].message
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_currency_without_an_iso_code_is_skipped_with_the_reason_over_http() {
    let (first, second, state, _dir) = run(&currency_only(standard_map())).await;
    let c = currency(&first);
    assert_eq!(
        (c.inserted, c.coupled, c.skipped, c.failed),
        (1, 1, 1, 0),
        "{c:?}"
    );
    assert!(state.failures(None).unwrap().is_empty());
    let again = currency(&second);
    assert_eq!((again.writes(), again.failed), (0, 0), "{again:?}");
}
