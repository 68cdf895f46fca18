//! Synchronization benchmark: a full sync of N customers embedded -> embedded, measured against
//! a raw SQLite copy of the same rows in the same process; then an incremental run with 10
//! changed records. Prints figures; asserts nothing.
//!
//!   cargo bench --bench sync -- 100000      (one size per process, so peak memory is its own)
//!   bash bench/sync.sh                       (100k and 1M, and the incremental comparison)

use coupler::cli::load;
use coupler::runtime::connector::{Connector, WriteOp};
use coupler::runtime::embedded::EmbeddedSystem;
use coupler::runtime::engine::{self, Quiet, RunOptions};
use coupler::runtime::state::StateStore;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

const MAPPING: &str = r#"
system bc    = business_central "SCHEMAS/business-central.yaml"
system sales = dataverse        "SCHEMAS/dynamics-365-sales.yaml"

mapping CUSTOMER: bc.Customer -> sales.account {
    where bc: Blocked == ' '
    on missing: create
    fields {
        Name                 -> name
        "Phone No."          -> telephone1
        "E-Mail"             -> emailaddress1 | lower
        City                 -> address1_city
        "Post Code"          -> address1_postalcode
        Address              -> address1_line1
        "Credit Limit (LCY)" -> creditlimit
    }
}
"#;

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn customer(i: usize) -> Map<String, Value> {
    let v = json!({
        "No.": format!("C{i:07}"),
        "Name": format!("Customer {i} Ltd."),
        "Phone No.": format!("+1 425 555 {:04}", i % 10000),
        "E-Mail": format!("Contact{i}@Example.COM"),
        "City": "Seattle",
        "Post Code": "98101",
        "Address": format!("{} Main Street", i % 900 + 1),
        "Credit Limit (LCY)": (i % 50) * 1000,
        "Blocked": " ",
    });
    match v {
        Value::Object(m) => m,
        _ => unreachable!(),
    }
}

struct Setup {
    model: coupler::analysis::Model,
    bc: Arc<EmbeddedSystem>,
    sales: Arc<EmbeddedSystem>,
}

fn setup(dir: &std::path::Path) -> Setup {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let map_path = dir.join("bench.map");
    let text = MAPPING.replace("SCHEMAS", &root.join("schemas").display().to_string());
    std::fs::write(&map_path, &text).expect("write mapping");
    let (loaded, model) = load::check_text(&map_path, &text);
    assert!(!loaded.diagnostics.has_errors(), "bench mapping has errors");
    let catalog = |s: &str| model.systems[s].catalog.clone().expect("catalog");
    let open = |name: &str| {
        Arc::new(
            EmbeddedSystem::open(
                &dir.join(format!("{name}.db")),
                name,
                model.systems[name].kind,
                catalog(name),
                None,
                "integration",
            )
            .expect("open system"),
        )
    };
    let (bc, sales) = (open("bc"), open("sales"));
    Setup { model, bc, sales }
}

/// Child process: the synchronization alone, so its peak memory is its own.
fn run_phase(dir: &std::path::Path, n: usize) {
    let Setup { model, bc, sales } = setup(dir);
    let state = StateStore::open(&dir.join("state.db"), true).expect("state");
    let plan = coupler::plan::compile(&model, None);
    let mut systems: HashMap<String, Arc<dyn Connector>> = HashMap::new();
    systems.insert("bc".into(), bc.clone());
    systems.insert("sales".into(), sales.clone());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let opts = RunOptions::default();
    let t = Instant::now();
    let report = rt
        .block_on(engine::run(&model, &plan, &systems, &state, &opts, &Quiet))
        .expect("run");
    let full = t.elapsed().as_secs_f64();
    assert_eq!(
        report.total().inserted as usize,
        n,
        "every customer synchronized"
    );
    let peak = peak_rss_mb();
    // Incremental: 10 changed records, spread over the table.
    let mut ids = Vec::new();
    let mut after = None;
    while ids.len() < n {
        let q = coupler::runtime::connector::ChangeQuery {
            table: "Customer",
            filter: None,
            since: None,
            exclude_modified_by: None,
            page_size: 5000,
            fields: None,
        };
        let page = rt
            .block_on(bc.read_changes(&q, after.as_ref()))
            .expect("read");
        ids.extend(page.records.iter().map(|r| r.id.clone()));
        match page.next {
            Some(c) => after = Some(c),
            None => break,
        }
    }
    let ops: Vec<WriteOp> = ids
        .iter()
        .step_by((n / 10).max(1))
        .take(10)
        .map(|id| {
            let mut f = Map::new();
            f.insert("Phone No.".into(), json!("+1 206 555 0000"));
            WriteOp::Update {
                id: id.clone(),
                fields: f,
            }
        })
        .collect();
    let changed = ops.len() as u64;
    bc.apply("Customer", ops, "user").expect("edit");
    let t = Instant::now();
    let report = rt
        .block_on(engine::run(&model, &plan, &systems, &state, &opts, &Quiet))
        .expect("incremental run");
    let incremental = t.elapsed().as_secs_f64();
    assert_eq!(report.total().modified, changed);
    println!(
        "full sync:          {:.3} s  ({:.0} records/s)",
        full,
        n as f64 / full
    );
    println!(
        "peak memory (sync): {:.1} MB (VmHWM of the process that ran it)",
        peak
    );
    println!(
        "incremental, {changed} changed among {n}: {:.1} ms",
        incremental * 1000.0
    );
    println!("FULL_SECONDS {full}");
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if args.first().map(String::as_str) == Some("run-phase") {
        let dir = std::path::PathBuf::from(&args[1]);
        let n: usize = args[2].parse().expect("size");
        run_phase(&dir, n);
        return;
    }
    let n: usize = args.iter().find_map(|a| a.parse().ok()).unwrap_or(100_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let Setup { bc, .. } = setup(dir.path());
    let t = Instant::now();
    for start in (0..n).step_by(2000) {
        let ops = (start..(start + 2000).min(n))
            .map(|i| WriteOp::Create {
                id: uuid::Uuid::new_v4().to_string(),
                fields: customer(i),
            })
            .collect();
        bc.apply("Customer", ops, "user").expect("load");
    }
    drop(bc);
    eprintln!("loaded {n} customers in {:.2} s", t.elapsed().as_secs_f64());
    // Raw copy: the same rows, SQLite to SQLite, no coupler, into a target table built like the
    // embedded account table (same columns and indexes).
    let raw = {
        let raw_dir = dir.path().join("raw");
        std::fs::create_dir_all(&raw_dir).expect("raw dir");
        drop(setup(&raw_dir).sales);
        let conn = rusqlite::Connection::open(raw_dir.join("sales.db")).expect("raw db");
        conn.execute_batch(&format!(
            "ATTACH '{}' AS src;",
            dir.path().join("bc.db").display()
        ))
        .expect("attach");
        let t = Instant::now();
        conn.execute_batch(
            "INSERT INTO account (accountid, name, telephone1, emailaddress1, address1_city, address1_postalcode,
                                  address1_line1, creditlimit, \"__modified_on\", \"__modified_by\")
             SELECT \"SystemId\", \"Name\", \"Phone No.\", lower(\"E-Mail\"), \"City\", \"Post Code\",
                    \"Address\", \"Credit Limit (LCY)\", \"__modified_on\", 'raw'
             FROM src.\"Customer\" WHERE \"Blocked\" = ' ';",
        )
        .expect("copy");
        t.elapsed().as_secs_f64()
    };
    let out = std::process::Command::new(std::env::current_exe().expect("exe"))
        .args([
            "run-phase",
            &dir.path().display().to_string(),
            &n.to_string(),
        ])
        .output()
        .expect("run phase");
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        panic!("run phase failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let full: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("FULL_SECONDS "))
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN);
    println!("records:            {n}");
    println!(
        "raw sqlite copy:    {:.3} s  ({:.0} records/s)",
        raw,
        n as f64 / raw
    );
    for l in text.lines().filter(|l| !l.starts_with("FULL_SECONDS")) {
        println!("{l}");
    }
    println!("ratio full sync / raw copy: {:.1}x", full / raw);
}
