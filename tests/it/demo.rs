//! The demo of README.md and docs/demo.md, as shipped: `coupler.yaml`'s `demo` profile, the
//! standard mapping set and the demo seeds, copied into a temporary folder and run with the real
//! binary. The first run is full and fails nothing; a second changes nothing; the submitted Sales
//! order arrives in Business Central as Microsoft's "Integrating with Dynamics 365 Sales" describes; `--watch` keeps the demo in
//! sync on its schedules (a draft order submitted meanwhile arrives with its line).
use crate::support::common;

use crate::support::coupler::Coupler;
use common::{copy_dir, repo};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Output;

/// A copy of the repository's demo: its profile, mappings, catalogs and seeds.
fn demo() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("coupler-demo-")
        .tempdir()
        .expect("temp dir");
    std::fs::copy(repo().join("coupler.yaml"), dir.path().join("coupler.yaml")).expect("yaml");
    for sub in ["mappings", "schemas", "examples/demo"] {
        copy_dir(&repo().join(sub), &dir.path().join(sub));
    }
    dir
}

fn coupler(dir: &Path, args: &[&str]) -> Output {
    Coupler::new().args(args).current_dir(dir).output()
}

fn run_json(dir: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["run", "--profile", "demo", "--format", "json"];
    args.extend_from_slice(extra);
    let out = coupler(dir, &args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let doc: Value = serde_json::from_slice(&out.stdout).expect("a JSON report");
    doc["report"].clone()
}

fn total(report: &Value, field: &str) -> u64 {
    report["mappings"]
        .as_array()
        .expect("mappings")
        .iter()
        .map(|m| m["counts"][field].as_u64().unwrap_or(0))
        .sum()
}

fn show(dir: &Path, target: &str) -> Vec<Value> {
    let out = coupler(
        dir,
        &["show", "--profile", "demo", target, "--format", "json"],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Value>(&out.stdout)
        .expect("JSON records")
        .as_array()
        .cloned()
        .expect("an array")
}

const DRAFT: &str = "6b1f9a8d-2e3c-5d4b-9f5a-7b8c9d0e1f2a";

#[test]
fn the_demo_synchronizes_and_keeps_in_sync_on_its_schedules() {
    let dir = demo();
    let d = dir.path();
    let first = run_json(d, &["--full"]);
    assert_eq!(total(&first, "failed"), 0, "{first:#}");
    assert!(total(&first, "inserted") > 200, "{first:#}");
    let second = run_json(d, &[]);
    for field in ["inserted", "modified", "deleted", "coupled", "failed"] {
        assert_eq!(total(&second, field), 0, "{field}: {second:#}");
    }

    // The submitted order: one Business Central order, its lines as that documentation says.
    let headers = show(d, "bc.Sales Header");
    assert_eq!(headers.len(), 1, "{headers:#?}");
    assert_eq!(
        headers[0]["External Document No."],
        json!("PO 2026-118 RECEPTION AREA")
    );
    let mut lines = show(d, "bc.Sales Line");
    lines.sort_by_key(|l| l["Line No."].as_i64());
    let summary: Vec<(i64, String, String)> = lines
        .iter()
        .map(|l| {
            (
                l["Line No."].as_i64().unwrap_or(-1),
                l["Type"].as_str().unwrap_or("?").to_string(),
                l["No."].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let item = summary[0].2.clone();
    assert!(!item.is_empty() && item != "WRITE-IN", "{summary:?}");
    assert_eq!(
        summary,
        vec![
            (10000, "Item".into(), item.clone()),
            (10001, " ".into(), String::new()),
            (10002, " ".into(), String::new()),
            (20000, "Item".into(), "WRITE-IN".into()),
        ]
    );
    let text: String = lines[..3]
        .iter()
        .map(|l| l["Description"].as_str().unwrap_or(""))
        .collect();
    assert!(text.starts_with("Reception desk in oak veneer") && text.ends_with("included."));
    assert_eq!(
        lines[3]["Description"],
        json!("Engraved brass name plate for the reception desk")
    );

    // Submit the draft order, then watch: the scheduled runs bring it over with its line.
    let out = coupler(
        d,
        &[
            "put",
            "--profile",
            "demo",
            "sales.salesorder",
            "--json",
            &json!({ "salesorderid": DRAFT, "statecode": "Submitted" }).to_string(),
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = coupler(
        d,
        &[
            "run",
            "--profile",
            "demo",
            "--watch",
            "--tick",
            "0.01",
            "--max-runs",
            "2",
            "--format",
            "json",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let runs: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line per run"))
        .collect();
    assert_eq!(runs.len(), 2, "{stderr}");
    assert_eq!(total(&runs[0]["report"], "failed"), 0, "{:#}", runs[0]);
    assert_eq!(total(&runs[0]["report"], "inserted"), 2, "{:#}", runs[0]);
    assert_eq!(total(&runs[1]["report"], "inserted"), 0, "{:#}", runs[1]);
    assert_eq!(show(d, "bc.Sales Header").len(), 2);
    assert_eq!(show(d, "bc.Sales Line").len(), 5);
}

/// `coupler plan --profile demo` applies the profile's settings: sales orders from Sales are on
/// there, off in the mapping set itself.
#[test]
fn the_plan_of_a_profile_applies_its_settings() {
    let dir = demo();
    let d = dir.path();
    let enabled = |extra: &[&str]| -> Value {
        let mut args = vec!["plan", "--format", "json"];
        args.extend_from_slice(extra);
        let out = coupler(d, &args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let plan: Value = serde_json::from_slice(&out.stdout).expect("a JSON plan");
        plan["mappings"]
            .as_array()
            .expect("mappings")
            .iter()
            .find(|m| m["name"] == "SALESORDER-FROMSALES")
            .expect("SALESORDER-FROMSALES")["enabled"]
            .clone()
    };
    assert_eq!(enabled(&[]), json!(false));
    assert_eq!(enabled(&["--profile", "demo"]), json!(true));
}
