//! HTTP benchmark (issue 5 item 5): requests per 1,000 records and rate-limited throughput of
//! the HTTP connectors against the SAP CAP imitations (tests/servers/cap), counted by a
//! transparent FaultProxy in front of them. Prints figures; asserts only that no record is lost.
//!
//!   cargo bench --bench http -- 2000      (N customers; default 2,000)
//!   bash bench/http.sh
//!
//! Phases:
//! 1. full sync embedded BC -> CAP Dataverse of N customers, then an incremental run with no
//!    change (connector defaults, i.e. what a `kind: dataverse` profile gets, and with batches
//!    of 1,000);
//! 2. full sync CAP Dataverse -> CAP Business Central of those N accounts (BC batches of 100);
//! 3. the full sync of phase 1 through a rate limit scaled down from Business Central's 6,000
//!    requests per 5 minutes to 100 per 5 s, with batches of 5 so that the run needs several
//!    windows: records/s, share of the request budget used, and that every customer ends up as
//!    exactly one account.
#[path = "../tests/it/support/http/mod.rs"]
mod http_support;

use coupler::analysis::Model;
use coupler::runtime::connector::{ChangeQuery, Connector, WriteOp};
use coupler::runtime::connectors::{
    BusinessCentral, BusinessCentralOptions, Dataverse, DataverseOptions,
};
use coupler::runtime::embedded::EmbeddedSystem;
use coupler::runtime::engine::{self, Quiet, RunOptions, RunReport};
use coupler::runtime::state::StateStore;
use http_support::cap::{CapServer, COMPANY_NAME, USER_HEADER};
use http_support::proxy::{FaultProxy, Faults};
use serde_json::{json, Map, Value};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const IU: &str = "aaaaaaaa-0000-4000-8000-000000000001";
/// Phase 2's integration user: another one, so the accounts phase 1 wrote are not its own.
const IU2: &str = "aaaaaaaa-0000-4000-8000-000000000002";

const TO_SALES: &str = r#"
system bc    = business_central "SCHEMAS/business-central.yaml"
system sales = dataverse        "SCHEMAS/dynamics-365-sales.yaml"

mapping CUSTOMER: bc.Customer -> sales.account {
    on missing: create
    fields {
        "No."                -> accountnumber
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

const TO_BC: &str = r#"
system bc    = business_central "SCHEMAS/business-central.yaml"
system sales = dataverse        "SCHEMAS/dynamics-365-sales.yaml"

mapping CUSTOMER: bc.Customer <- sales.account {
    on missing: create
    fields {
        "No."        <- accountnumber
        Name         <- name
        "Phone No."  <- telephone1
        "E-Mail"     <- emailaddress1
        City         <- address1_city
        "Post Code"  <- address1_postalcode
        Address      <- address1_line1
    }
}
"#;

fn model(dir: &Path, name: &str, text: &str) -> Model {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let path = dir.join(format!("{name}.map"));
    let text = text.replace("SCHEMAS", &root.join("schemas").display().to_string());
    std::fs::write(&path, &text).expect("write mapping");
    let (loaded, model) = coupler::cli::load::check_text(&path, &text);
    assert!(!loaded.diagnostics.has_errors(), "bench mapping has errors");
    model
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

/// An embedded Business Central with N generated customers.
fn embedded_bc(model: &Model, dir: &Path, n: usize) -> Arc<EmbeddedSystem> {
    let s = &model.systems["bc"];
    let bc = EmbeddedSystem::open(
        &dir.join("bc.db"),
        "bc",
        s.kind,
        s.catalog.clone().unwrap(),
        None,
        "integration",
    )
    .expect("open bc");
    for start in (0..n).step_by(2000) {
        let ops = (start..(start + 2000).min(n))
            .map(|i| WriteOp::Create {
                id: uuid::Uuid::new_v4().to_string(),
                fields: customer(i),
            })
            .collect();
        bc.apply("Customer", ops, "user").expect("load customers");
    }
    Arc::new(bc)
}

fn dataverse(model: &Model, url: &str, batch_size: Option<usize>, user: &str) -> Arc<Dataverse> {
    let mut opts = DataverseOptions {
        extra_headers: vec![(USER_HEADER.into(), user.into())],
        ..DataverseOptions::default()
    };
    if let Some(b) = batch_size {
        opts.batch_size = b;
    }
    Arc::new(
        Dataverse::new(
            model.systems["sales"].catalog.clone().unwrap(),
            url,
            None,
            Some(user),
            opts,
        )
        .expect("dataverse connector"),
    )
}

fn run(
    rt: &tokio::runtime::Runtime,
    model: &Model,
    systems: &HashMap<String, Arc<dyn Connector>>,
    state: &StateStore,
) -> (RunReport, f64) {
    let plan = coupler::plan::compile(model, None);
    let t = Instant::now();
    let report = rt
        .block_on(engine::run(
            model,
            &plan,
            systems,
            state,
            &RunOptions::default(),
            &Quiet,
        ))
        .expect("run");
    (report, t.elapsed().as_secs_f64())
}

fn per_1000(requests: u64, records: u64) -> f64 {
    requests as f64 * 1000.0 / records.max(1) as f64
}

/// `accountnumber` of every account in CAP's Dataverse.
fn account_numbers(rt: &tokio::runtime::Runtime, sales: &dyn Connector) -> Vec<String> {
    let fields = vec!["accountnumber".to_string()];
    let q = ChangeQuery {
        table: "account",
        filter: None,
        since: None,
        exclude_modified_by: None,
        page_size: 5000,
        fields: Some(&fields),
    };
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = rt
            .block_on(sales.read_changes(&q, after.as_ref()))
            .expect("read accounts");
        out.extend(
            page.records
                .iter()
                .map(|r| r.get("accountnumber").as_str().unwrap_or("").to_string()),
        );
        match page.next {
            Some(c) => after = Some(c),
            None => return out,
        }
    }
}

/// Phase 1 (and 3 with a rate limit): embedded BC -> CAP Dataverse through a proxy.
struct ToSales {
    requests_full: u64,
    requests_incremental: u64,
    written: u64,
    seconds: f64,
    proxy: FaultProxy,
    _cap: CapServer,
    sales: Arc<Dataverse>,
}

fn to_sales(
    rt: &tokio::runtime::Runtime,
    n: usize,
    faults: Faults,
    batch_size: Option<usize>,
    incremental: bool,
) -> ToSales {
    let dir = tempfile::tempdir().expect("temp dir");
    let model = model(dir.path(), "to-sales", TO_SALES);
    let bc = embedded_bc(&model, dir.path(), n);
    // CAP's default request body limit (100 kb) refuses a `$batch` of 1,000 records (413).
    let cap = CapServer::start_with_env(&[("CDS_SERVER_BODY__PARSER_LIMIT", "50mb")]);
    let proxy = FaultProxy::start(&cap.base_url(), faults);
    let sales = dataverse(
        &model,
        &format!("{}/api/data/v9.2", proxy.url()),
        batch_size,
        IU,
    );
    let mut systems: HashMap<String, Arc<dyn Connector>> = HashMap::new();
    systems.insert("bc".into(), bc);
    systems.insert("sales".into(), sales.clone());
    let state = StateStore::open(&dir.path().join("state.db"), true).expect("state");
    let before = proxy.requests();
    let (report, seconds) = run(rt, &model, &systems, &state);
    let requests_full = proxy.requests() - before;
    let t = report.total();
    let written = t.inserted + t.modified;
    if t.failed > 0 {
        let f = state.failures(None).expect("failures");
        println!(
            "  {} failed, e.g. {}",
            t.failed,
            f.first().map(|f| f.message.as_str()).unwrap_or("")
        );
    }
    let mut requests_incremental = 0;
    if incremental {
        let before = proxy.requests();
        let (report, _) = run(rt, &model, &systems, &state);
        requests_incremental = proxy.requests() - before;
        let t = report.total();
        assert_eq!(t.inserted + t.modified, 0, "no-change run wrote nothing");
    }
    ToSales {
        requests_full,
        requests_incremental,
        written,
        seconds,
        proxy,
        _cap: cap,
        sales,
    }
}

/// Phase 2b: those Business Central customers -> CAP Dataverse (BC as the source side): the
/// requests of a no-change run, with the connector of the full run and with a new one (as a new
/// `coupler run` process builds).
fn bc_source_no_change(rt: &tokio::runtime::Runtime, r: &ToSales, bc_proxy: &FaultProxy) {
    let dir = tempfile::tempdir().expect("temp dir");
    let model = model(dir.path(), "bc-source", TO_SALES);
    let bc_connector = |company: &str| {
        Arc::new(
            BusinessCentral::new(
                model.systems["bc"].catalog.clone().unwrap(),
                &format!("{}/api/v2.0", bc_proxy.url()),
                Some(company),
                None,
                Some(IU2),
                BusinessCentralOptions::default(),
            )
            .expect("bc connector"),
        )
    };
    let sales = dataverse(
        &model,
        &format!("{}/api/data/v9.2", r.proxy.url()),
        None,
        IU2,
    );
    let state = StateStore::open(&dir.path().join("state.db"), true).expect("state");
    let systems = |bc: Arc<BusinessCentral>| {
        let mut systems: HashMap<String, Arc<dyn Connector>> = HashMap::new();
        systems.insert("bc".into(), bc);
        systems.insert("sales".into(), sales.clone());
        systems
    };
    let bc = bc_connector(COMPANY_NAME);
    let (report, _) = run(rt, &model, &systems(bc.clone()), &state);
    let t = report.total();
    let mut figures = Vec::new();
    for (label, bc) in [
        ("same connector", bc),
        ("new connector", bc_connector(COMPANY_NAME)),
        ("new, company by id", bc_connector(r._cap.company_id())),
    ] {
        let (bc_before, dv_before) = (bc_proxy.requests(), sales.http().request_count());
        let (report, _) = run(rt, &model, &systems(bc), &state);
        let t = report.total();
        assert_eq!(t.inserted + t.modified, 0, "no-change run wrote nothing");
        figures.push(format!(
            "{label}: {} BC, {} Dataverse",
            bc_proxy.requests() - bc_before,
            sales.http().request_count() - dv_before
        ));
    }
    println!(
        "CAP BC -> CAP Dataverse       full sync wrote {} (failed {}); no-change run requests: {} (target: 1 per mapping side)",
        t.inserted + t.modified,
        t.failed,
        figures.join("; ")
    );
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let n: usize = args.iter().find_map(|a| a.parse().ok()).unwrap_or(2000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");

    println!("== {n} customers, embedded BC -> CAP Dataverse (1 mapping, 1 HTTP side)");
    for (label, batch) in [
        ("default options (batch 100)", None),
        ("batch 1,000", Some(1000)),
    ] {
        let r = to_sales(&rt, n, Faults::none(), batch, true);
        println!(
            "{label:28} full sync: {} requests for {} records written = {:.1} per 1,000 ({:.2} s, {:.0} records/s)",
            r.requests_full,
            r.written,
            per_1000(r.requests_full, r.written),
            r.seconds,
            r.written as f64 / r.seconds
        );
        println!(
            "{label:28} no-change run: {} requests (target: 1 per mapping side)",
            r.requests_incremental
        );
        if batch.is_none() {
            // Phase 2: those accounts -> CAP Business Central.
            let dir = tempfile::tempdir().expect("temp dir");
            let model = model(dir.path(), "to-bc", TO_BC);
            let sales = dataverse(
                &model,
                &format!("{}/api/data/v9.2", r.proxy.url()),
                None,
                IU2,
            );
            let bc_proxy = FaultProxy::start(&r._cap.base_url(), Faults::none());
            let bc = Arc::new(
                BusinessCentral::new(
                    model.systems["bc"].catalog.clone().unwrap(),
                    &format!("{}/api/v2.0", bc_proxy.url()),
                    Some(COMPANY_NAME),
                    None,
                    Some(IU2),
                    BusinessCentralOptions::default(),
                )
                .expect("bc connector"),
            );
            let mut systems: HashMap<String, Arc<dyn Connector>> = HashMap::new();
            systems.insert("bc".into(), bc.clone());
            systems.insert("sales".into(), sales.clone());
            let state = StateStore::open(&dir.path().join("state.db"), true).expect("state");
            let (report, seconds) = run(&rt, &model, &systems, &state);
            let t = report.total();
            let written = t.inserted + t.modified;
            let bc_requests = bc_proxy.requests();
            println!(
                "CAP Dataverse -> CAP BC       full sync: {bc_requests} BC requests for {written} records written = {:.1} per 1,000, {} Dataverse requests ({:.2} s; failed {})",
                per_1000(bc_requests, written),
                sales.http().request_count(),
                seconds,
                t.failed
            );
            let before = bc_proxy.requests();
            let dv_before = sales.http().request_count();
            run(&rt, &model, &systems, &state);
            println!(
                "CAP Dataverse -> CAP BC       no-change run: {} BC requests, {} Dataverse requests",
                bc_proxy.requests() - before,
                sales.http().request_count() - dv_before
            );
            // As a new `coupler run` process does it: new connectors (the BC company by id).
            let fresh = dataverse(
                &model,
                &format!("{}/api/data/v9.2", r.proxy.url()),
                None,
                IU2,
            );
            let bc_fresh = Arc::new(
                BusinessCentral::new(
                    model.systems["bc"].catalog.clone().unwrap(),
                    &format!("{}/api/v2.0", bc_proxy.url()),
                    Some(r._cap.company_id()),
                    None,
                    Some(IU2),
                    BusinessCentralOptions::default(),
                )
                .expect("bc connector"),
            );
            systems.insert("bc".into(), bc_fresh);
            systems.insert("sales".into(), fresh.clone());
            let before = bc_proxy.requests();
            run(&rt, &model, &systems, &state);
            println!(
                "CAP Dataverse -> CAP BC       no-change run, new connectors: {} BC requests, {} Dataverse requests",
                bc_proxy.requests() - before,
                fresh.http().request_count()
            );
            bc_source_no_change(&rt, &r, &bc_proxy);
        }
    }

    // Phase 3: rate limited.
    let (max, window) = (100usize, Duration::from_secs(5));
    let batch = 5;
    println!(
        "== rate limit {max} requests / {} s (BC's 6,000 / 5 min scaled down), Dataverse batches of {batch}",
        window.as_secs()
    );
    let r = to_sales(
        &rt,
        n,
        Faults::none().with_rate_limit(max, window),
        Some(batch),
        false,
    );
    let admitted = r.proxy.forwarded();
    let windows = (r.seconds / window.as_secs_f64()).ceil().max(1.0);
    let numbers = account_numbers(&rt, r.sales.as_ref());
    let distinct: HashSet<&String> = numbers.iter().collect();
    println!(
        "{} records in {:.1} s = {:.0} records/s; {} requests received, {admitted} admitted, {} got 429",
        r.written,
        r.seconds,
        r.written as f64 / r.seconds,
        r.requests_full,
        r.proxy.injected(http_support::proxy::FaultKind::RateLimited),
    );
    println!(
        "budget used: {admitted} / ({max} x {windows:.0} windows) = {:.0}% (target >= 90%); exact elapsed: {:.0}%",
        admitted as f64 * 100.0 / (max as f64 * windows),
        admitted as f64 * 100.0 / (max as f64 * r.seconds / window.as_secs_f64())
    );
    println!(
        "accounts: {} ({} distinct) for {n} customers",
        numbers.len(),
        distinct.len()
    );
    assert!(
        numbers.len() == n && distinct.len() == n,
        "record lost or duplicated: {} accounts, {} distinct, {n} customers",
        numbers.len(),
        distinct.len()
    );
    println!("no record lost");
}
