//! Several Business Central companies, one Dataverse (issue 13): two companies, each with its
//! own embedded Business Central and state, share ONE embedded Dataverse. With the company
//! scope (`company bcbi_companyid` on the `sales` system, `company_id` in each profile) each
//! company reads its own accounts and those of no company, stamps what it writes, and never
//! couples or updates the other's; without it, the second company couples the first one's
//! account by name and overwrites it.

use crate::support::coupler::coupler;
use crate::support::sync::{code, schema, stderr, write};
use serde_json::{json, Map, Value};
use std::path::Path;
use tempfile::TempDir;

const COMPANY_A: &str = "aaaaaaaa-0000-4000-8000-00000000000a";
const COMPANY_B: &str = "bbbbbbbb-0000-4000-8000-00000000000b";
const NO_COMPANY_ACCOUNT: &str = "cccccccc-0000-4000-8000-00000000000c";
const B_ACCOUNT: &str = "dddddddd-0000-4000-8000-00000000000d";

fn map(scoped: bool) -> String {
    let scope = if scoped {
        "    company bcbi_companyid\n"
    } else {
        ""
    };
    let body = [
        "mapping CUSTOMER: bc.Customer <-> sales.account {",
        "    couple by Name == name",
        "    on missing: create",
        "    on conflict: log",
        "",
        "    fields {",
        "        Name        <-> name | truncate(100)",
        "        \"Phone No.\" <-> telephone1 | truncate(30)",
        "    }",
        "}",
    ]
    .join("\n");
    format!(
        "system bc    = business_central \"{}\"\nsystem sales = dataverse        \"{}\"\n{scope}\n{body}\n",
        schema("business-central.yaml").display(),
        schema("dynamics-365-sales.yaml").display()
    )
}

/// Two profiles, `a` and `b`: their own Business Central and state, one Sales database.
fn project(scoped: bool) -> TempDir {
    let dir = tempfile::Builder::new()
        .prefix("coupler-companies-")
        .tempdir()
        .expect("temp dir");
    let root = dir.path();
    write(&root.join("sync.map"), &map(scoped));
    let seed = |path: &str, v: Value| {
        write(
            &root.join(path).join("seed.json"),
            &serde_json::to_string_pretty(&v).expect("seed"),
        )
    };
    seed(
        "seed/bc-a",
        json!({ "Customer": [
            { "No.": "A1", "Name": "Alpine Ski House", "Phone No.": "111" },
            { "No.": "A2", "Name": "Shared Name Ltd", "Phone No.": "222" }
        ]}),
    );
    seed(
        "seed/bc-b",
        json!({ "Customer": [
            { "No.": "B1", "Name": "Bikes Inc", "Phone No.": "333" },
            { "No.": "B2", "Name": "Shared Name Ltd", "Phone No.": "444" }
        ]}),
    );
    seed(
        "seed/sales",
        json!({
            "bcbi_company": [
                { "bcbi_companyid": COMPANY_A, "bcbi_name": "CRONUS A" },
                { "bcbi_companyid": COMPANY_B, "bcbi_name": "CRONUS B" }
            ],
            "account": [
                { "accountid": NO_COMPANY_ACCOUNT, "name": "Nobody's Account", "telephone1": "555" },
                { "accountid": B_ACCOUNT, "name": "B's Own Account", "telephone1": "666",
                  "bcbi_companyid": COMPANY_B }
            ]
        }),
    );
    let company = |id: &str| {
        if scoped {
            format!(", company_id: '{id}'")
        } else {
            String::new()
        }
    };
    let profile = |name: &str, id: &str| {
        format!(
            "  {name}:\n    systems:\n      bc: {{ kind: embedded, seed: seed/bc-{name} }}\n      sales: {{ kind: embedded, seed: seed/sales, database: shared/sales.db{} }}\n    state: state-{name}/state.db\n",
            company(id)
        )
    };
    write(
        &root.join("coupler.yaml"),
        &format!(
            "profiles:\n{}{}",
            profile("a", COMPANY_A),
            profile("b", COMPANY_B)
        ),
    );
    dir
}

/// `coupler run --profile P`: the report's total counts (exit 0 required).
fn run(root: &Path, profile: &str) -> Value {
    let out = coupler(["run", "--profile", profile, "sync.map", "--format", "json"])
        .current_dir(root)
        .output();
    assert_eq!(code(&out), 0, "run {profile}: {}", stderr(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("run prints JSON");
    let mut total = Map::new();
    for m in doc["report"]["mappings"].as_array().expect("mappings") {
        for (k, v) in m["counts"].as_object().expect("counts") {
            let n = total.get(k).and_then(Value::as_u64).unwrap_or(0) + v.as_u64().unwrap_or(0);
            total.insert(k.clone(), json!(n));
        }
    }
    Value::Object(total)
}

fn show(root: &Path, profile: &str, target: &str) -> Vec<Map<String, Value>> {
    let out = coupler([
        "show",
        "--profile",
        profile,
        target,
        "--mappings",
        "sync.map",
        "--format",
        "json",
    ])
    .current_dir(root)
    .output();
    assert_eq!(code(&out), 0, "show {target}: {}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("show prints JSON");
    v.as_array()
        .expect("records")
        .iter()
        .map(|r| r.as_object().expect("record").clone())
        .collect()
}

fn put(root: &Path, profile: &str, target: &str, record: Value) {
    let text = record.to_string();
    let out = coupler([
        "put",
        "--profile",
        profile,
        target,
        "--mappings",
        "sync.map",
        "--json",
        &text,
        "--user",
        "consultant",
    ])
    .current_dir(root)
    .output();
    assert_eq!(code(&out), 0, "put {text}: {}", stderr(&out));
}

/// (name, phone, company) of every Sales account, sorted.
fn accounts(root: &Path) -> Vec<(String, String, String)> {
    let mut v: Vec<_> = show(root, "a", "sales.account")
        .iter()
        .map(|r| {
            let s = |f: &str| r.get(f).and_then(Value::as_str).unwrap_or("").to_string();
            (s("name"), s("telephone1"), s("bcbi_companyid"))
        })
        .collect();
    v.sort();
    v
}

fn names(root: &Path, profile: &str) -> Vec<String> {
    let mut v: Vec<String> = show(root, profile, "bc.Customer")
        .iter()
        .map(|r| r["Name"].as_str().unwrap_or("").to_string())
        .collect();
    v.sort();
    v
}

fn count(v: &Value, what: &str) -> u64 {
    v[what].as_u64().unwrap_or(0)
}

fn t(name: &str, phone: &str, company: &str) -> (String, String, String) {
    (name.into(), phone.into(), company.into())
}

#[test]
fn two_companies_share_one_dataverse_without_crossing() {
    let dir = project(true);
    let root = dir.path();
    let a = run(root, "a");
    let b = run(root, "b");
    assert_eq!(
        accounts(root),
        vec![
            t("Alpine Ski House", "111", COMPANY_A),
            t("B's Own Account", "666", COMPANY_B),
            t("Bikes Inc", "333", COMPANY_B),
            // Company A took the account of no company first and stamped it (SetCompanyId).
            t("Nobody's Account", "555", COMPANY_A),
            // One per company: B's customer is not coupled by name to A's account.
            t("Shared Name Ltd", "222", COMPANY_A),
            t("Shared Name Ltd", "444", COMPANY_B),
        ],
        "after a: {a}\nafter b: {b}"
    );
    assert_eq!(
        names(root, "a"),
        ["Alpine Ski House", "Nobody's Account", "Shared Name Ltd"]
    );
    assert_eq!(
        names(root, "b"),
        ["B's Own Account", "Bikes Inc", "Shared Name Ltd"]
    );

    // Second runs write nothing.
    for p in ["a", "b"] {
        let again = run(root, p);
        assert_eq!(
            count(&again, "inserted") + count(&again, "modified"),
            0,
            "{p}: {again}"
        );
    }

    // B changes its "Shared Name Ltd": only B's account changes, whoever runs.
    put(
        root,
        "b",
        "bc.Customer",
        json!({ "No.": "B2", "Phone No.": "999" }),
    );
    let a_again = run(root, "a");
    assert_eq!(count(&a_again, "modified"), 0, "{a_again}");
    run(root, "b");
    let shared: Vec<_> = accounts(root)
        .into_iter()
        .filter(|(n, _, _)| n == "Shared Name Ltd")
        .collect();
    assert_eq!(
        shared,
        vec![
            t("Shared Name Ltd", "222", COMPANY_A),
            t("Shared Name Ltd", "999", COMPANY_B)
        ]
    );
}

/// What the scope prevents: without it, the two companies cross.
#[test]
fn without_the_company_scope_the_companies_cross() {
    let dir = project(false);
    let root = dir.path();
    run(root, "a");
    run(root, "b");
    let all = accounts(root);
    // B coupled A's "Shared Name Ltd" by name and overwrote its phone.
    let shared: Vec<_> = all
        .iter()
        .filter(|(n, _, _)| n == "Shared Name Ltd")
        .collect();
    assert_eq!(shared.len(), 1, "{all:?}");
    assert_eq!(shared[0].1, "444", "{all:?}");
    // A took B's own account into its Business Central.
    assert!(names(root, "a").contains(&"B's Own Account".to_string()));
}

#[test]
fn a_scoped_system_needs_the_company_in_the_profile() {
    let dir = project(true);
    let root = dir.path();
    let yaml = std::fs::read_to_string(root.join("coupler.yaml")).expect("yaml");
    write(
        &root.join("coupler.yaml"),
        &yaml.replace(&format!(", company_id: '{COMPANY_A}'"), ""),
    );
    let out = coupler(["run", "--profile", "a", "sync.map"])
        .current_dir(root)
        .output();
    assert_ne!(code(&out), 0);
    assert!(stderr(&out).contains("`company_id`"), "{}", stderr(&out));
}

/// The demo variant (docs/demo.md, "Two companies"): both companies run with no failure, share
/// the currencies, keep their customers apart, and a second run of each writes nothing.
#[test]
fn the_two_company_demo_runs_clean_and_then_writes_nothing() {
    use crate::support::common::{copy_dir, repo};
    let dir = tempfile::Builder::new()
        .prefix("coupler-two-companies-")
        .tempdir()
        .expect("temp dir");
    let root = dir.path();
    for d in ["examples", "schemas"] {
        copy_dir(&repo().join(d), &root.join(d));
    }
    std::fs::copy(repo().join("coupler.yaml"), root.join("coupler.yaml")).expect("coupler.yaml");
    let run = |profile: &str| -> Value {
        let out = coupler([
            "run",
            "--profile",
            profile,
            "examples/two-companies.map",
            "--full",
            "--format",
            "json",
        ])
        .current_dir(root)
        .output();
        assert_eq!(code(&out), 0, "run {profile}: {}", stderr(&out));
        let doc: Value = serde_json::from_slice(&out.stdout).expect("JSON");
        doc["report"]["mappings"].clone()
    };
    let sum = |report: &Value, what: &str| -> u64 {
        report
            .as_array()
            .expect("mappings")
            .iter()
            .map(|m| m["counts"][what].as_u64().unwrap_or(0))
            .sum()
    };
    for p in ["demo-us", "demo-ca"] {
        let first = run(p);
        assert_eq!(sum(&first, "failed"), 0, "{p}: {first:#}");
        assert!(sum(&first, "inserted") > 0, "{p}: {first:#}");
    }
    for p in ["demo-us", "demo-ca"] {
        let again = run(p);
        assert_eq!(
            sum(&again, "inserted") + sum(&again, "modified") + sum(&again, "failed"),
            0,
            "{p}: {again:#}"
        );
    }
    let out = coupler([
        "show",
        "--profile",
        "demo-us",
        "sales.account",
        "--mappings",
        "examples/two-companies.map",
        "--format",
        "json",
    ])
    .current_dir(root)
    .output();
    let accounts: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let trey: Vec<&Value> = accounts
        .as_array()
        .expect("records")
        .iter()
        .filter(|r| r["name"] == "Trey Research")
        .collect();
    assert_eq!(trey.len(), 2, "one Trey Research per company: {accounts:#}");
    assert_ne!(trey[0]["bcbi_companyid"], trey[1]["bcbi_companyid"]);
}

/// The plan shows the company filter pushed down and the stamp.
#[test]
fn the_plan_shows_the_company_filter() {
    let dir = project(true);
    let out = coupler(["plan", "sync.map"])
        .current_dir(dir.path())
        .output();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(
            "$filter: _bcbi_companyid_value eq <company> or _bcbi_companyid_value eq null"
        ),
        "{text}"
    );
    assert!(
        text.contains("writes:  bcbi_companyid = <company>"),
        "{text}"
    );
}

#[test]
fn a_company_id_that_is_no_company_row_stops_the_run() {
    let dir = project(true);
    let root = dir.path();
    let yaml = std::fs::read_to_string(root.join("coupler.yaml")).expect("yaml");
    write(
        &root.join("coupler.yaml"),
        &yaml.replace(COMPANY_A, "99999999-0000-4000-8000-000000000009"),
    );
    let out = coupler(["run", "--profile", "a", "sync.map"])
        .current_dir(root)
        .output();
    assert_ne!(code(&out), 0);
    assert!(
        stderr(&out).contains("is no row of `bcbi_company`"),
        "{}",
        stderr(&out)
    );
}
