//! Crash points (src/runtime/crash.rs, issue 11): a run aborted at each named step of the write
//! protocol, then run again, ends in the same state as a run that was never interrupted:
//! records on both sides, their deferred lookups (primary contacts), couplings and failures.

use crate::support::coupler::coupler;
use crate::support::sync::{text, Project, PROFILE};
use coupler::runtime::crash::POINTS;
use serde_json::{json, Value};
use std::collections::BTreeMap;

fn project() -> Project {
    Project::standard(
        json!({
            "Contact": [
                { "No.": "CT1", "Type": "Company", "Name": "Alpha Company" },
                { "No.": "CT2", "Type": "Person", "Company No.": "CT1", "First Name": "Ann", "Surname": "Lee" },
                { "No.": "CT3", "Type": "Person", "Company No.": "CT1", "First Name": "Bo", "Surname": "Kim" }
            ],
            "Contact Business Relation": [
                { "Contact No.": "CT1", "Business Relation Code": "CUST", "Link to Table": "Customer", "No.": "C1" }
            ],
            "Customer": [
                { "No.": "C1", "Name": "Alpha", "Primary Contact No.": "CT2" },
                { "No.": "C2", "Name": "Beta", "Primary Contact No.": "CT3" },
                { "No.": "C3", "Name": "Gamma" }
            ]
        }),
        json!({}),
    )
}

/// What a consultant would check: accounts with their primary contact's name, contacts,
/// customers, and couplings and failures per mapping.
fn end_state(p: &Project) -> Value {
    let contacts: BTreeMap<String, String> = p
        .show("sales.contact")
        .iter()
        .map(|c| {
            (
                text(c, "contactid").to_string(),
                text(c, "lastname").to_string(),
            )
        })
        .collect();
    let mut accounts: Vec<(String, String)> = p
        .show("sales.account")
        .iter()
        .map(|a| {
            let primary = a["primarycontactid"].as_str().unwrap_or_default();
            let name = contacts.get(primary).cloned().unwrap_or_default();
            (text(a, "name").to_string(), name)
        })
        .collect();
    accounts.sort();
    let mut names: Vec<&String> = contacts.values().collect();
    names.sort();
    let status = p.status();
    let mappings: Vec<Value> = status["mappings"]
        .as_array()
        .expect("mappings")
        .iter()
        .map(|m| json!([m["mapping"], m["couplings"], m["failures"]]))
        .collect();
    json!({
        "accounts": accounts,
        "contacts": names,
        "customers": p.show("bc.Customer").len(),
        "mappings": mappings,
    })
}

#[test]
fn a_crash_at_every_write_step_ends_like_an_uninterrupted_run() {
    let clean = project();
    clean.run_ok(&["--full"]);
    let expected = end_state(&clean);
    assert_eq!(expected["accounts"].as_array().map(Vec::len), Some(3));
    let mut tried = 0;
    for point in POINTS {
        // The first time and a later time the point is reached (another page, another pass).
        for after in ["1", "2"] {
            let p = project();
            let map = p.map_arg();
            let out = coupler(["run", "--profile", PROFILE, &map, "--full"])
                .env("COUPLER_CRASH_AT", point)
                .env("COUPLER_CRASH_AFTER", after)
                .current_dir(p.root())
                .output();
            let crashed = String::from_utf8_lossy(&out.stderr).contains("crash point");
            assert!(
                crashed || out.status.success(),
                "{point}/{after}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            if !crashed {
                continue; // the point is not reached that often
            }
            tried += 1;
            // The next run is incremental, as a consultant's scheduled run would be; a
            // second one settles what the first queued (deferred patches of adopted records).
            p.run_ok(&[]);
            p.run_ok(&[]);
            assert_eq!(
                end_state(&p),
                expected,
                "crash at {point} (reached {after}×)"
            );
        }
    }
    assert!(tried >= POINTS.len(), "only {tried} crashes happened");
}

/// Issue 11 finding 12: `status` of a profile whose `--full` run was killed says the next run
/// resumes it as full (not "incremental: couplings exist"), and the next run does.
#[test]
fn status_says_a_killed_full_run_is_resumed() {
    let p = project();
    let map = p.map_arg();
    let out = coupler(["run", "--profile", PROFILE, &map, "--full"])
        .env("COUPLER_CRASH_AT", "after-settle")
        .current_dir(p.root())
        .output();
    assert!(String::from_utf8_lossy(&out.stderr).contains("crash point"));
    let status = p.status();
    let recommendations: Vec<&str> = status["mappings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["enabled"] == true)
        .map(|m| m["recommendation"].as_str().unwrap_or_default())
        // `couple via` mappings update what their owner coupled: no full run of their own.
        .filter(|r| !r.starts_with("updates the records"))
        .collect();
    assert!(!recommendations.is_empty());
    for r in &recommendations {
        assert!(
            r.contains("did not finish") && r.contains("resumes it as full"),
            "{recommendations:#?}"
        );
    }
    p.run_ok(&[]);
    let after = p.status();
    let customers = after["mappings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mapping"] == "CUSTOMER")
        .unwrap();
    assert_eq!(customers["recommendation"], "incremental: couplings exist");
}

/// Review finding: a killed `--full --select CUSTOMER` resumes CUSTOMER as full, and only
/// CUSTOMER — the other mappings were not part of it (a full run creates what `on missing:
/// skip` would not); `errors --retry` in between does not make it forgotten.
#[test]
fn a_killed_selected_full_run_resumes_only_its_mappings() {
    let p = project();
    let map = p.map_arg();
    let out = coupler([
        "run",
        "--profile",
        PROFILE,
        &map,
        "--full",
        "--select",
        "CUSTOMER",
    ])
    .env("COUPLER_CRASH_AT", "after-announce")
    .current_dir(p.root())
    .output();
    assert!(String::from_utf8_lossy(&out.stderr).contains("crash point"));
    let status = p.status();
    let says = |name: &str| -> String {
        status["mappings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["mapping"] == name)
            .map(|m| m["recommendation"].as_str().unwrap_or_default().to_string())
            .unwrap()
    };
    assert!(
        says("CUSTOMER").contains("resumes it as full"),
        "{status:#}"
    );
    assert!(
        !says("CONTACT").contains("resumes it as full"),
        "{status:#}"
    );
    let retry = coupler(["errors", "--profile", PROFILE, &map, "--retry"])
        .current_dir(p.root())
        .output();
    assert!(retry.status.code().is_some());
    let o = p.run_ok(&[]);
    let full: Vec<&str> = o
        .mappings()
        .iter()
        .filter(|m| m["note"] == "full synchronization")
        .map(|m| m["mapping"].as_str().unwrap_or_default())
        .collect();
    assert!(
        !full.is_empty() && full.iter().all(|m| *m == "CUSTOMER"),
        "{full:?}"
    );
    assert_eq!(p.show("sales.account").len(), 3);
    let after = p.status();
    assert!(after["mappings"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| !m["recommendation"]
            .as_str()
            .unwrap_or_default()
            .contains("resumes it as full")));
}
