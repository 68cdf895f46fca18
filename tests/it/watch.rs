//! `coupler run --watch`: scheduled synchronization with the real binary on two embedded systems.
//! Each mapping runs on its `schedule`; runs never overlap; a change made between runs arrives;
//! SIGTERM stops the watch cleanly (the run lock is released; a run in progress stops after its
//! page in flight); a second run is refused meanwhile.

use crate::support::sync as sync_support;

use crate::support::coupler::coupler;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};
use sync_support::{code, stderr, Project, PROFILE};

/// Currencies every 4 seconds, customers (which look their currency up) every second.
fn map(curr_every: &str, cust_every: &str) -> String {
    format!(
        r#"
mapping CURR: bc.Currency -> sales.transactioncurrency {{
    where bc: "ISO Code" != ''
    couple by Code == isocurrencycode
    on missing: create
    schedule every {curr_every}

    fields {{
        Code        -> isocurrencycode
        Description -> currencyname
    }}
}}

mapping CUST: bc.Customer -> sales.account {{
    on missing: create
    schedule every {cust_every}

    fields {{
        Name            -> name
        "Currency Code" -> transactioncurrencyid via CURR
    }}
}}
"#
    )
}

fn project(curr_every: &str, cust_every: &str) -> Project {
    Project::new(
        &map(curr_every, cust_every),
        json!({
            "Currency": [{ "Code": "EUR", "ISO Code": "EUR", "Description": "Euro" }],
            "Customer": [{ "No.": "C1", "Name": "Alpha", "Currency Code": "EUR" }]
        }),
        json!({}),
    )
}

/// A watching `coupler run`, its JSON lines arriving on a channel, stderr collected at the end.
struct Watch {
    child: Child,
    lines: Receiver<Value>,
}

impl Watch {
    fn start(p: &Project, extra: &[&str]) -> Watch {
        let map = p.map_arg();
        let mut child = coupler([
            "run",
            "--watch",
            "--profile",
            PROFILE,
            &map,
            "--format",
            "json",
        ])
        .args(extra)
        .current_dir(p.root())
        .spawn();
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let v: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        Watch { child, lines }
    }

    /// The next run's line; fails after `secs` seconds.
    fn next_run(&self, secs: u64) -> Value {
        self.lines
            .recv_timeout(Duration::from_secs(secs))
            .unwrap_or_else(|e| panic!("no run reported within {secs}s: {e}"))
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// Waits for the process to end (at most `secs` seconds): exit code, the remaining run
    /// lines, stderr.
    fn finish(mut self, secs: u64) -> (i32, Vec<Value>, String) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("the watch did not end within {secs}s");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            use std::io::Read;
            let _ = e.read_to_string(&mut err);
        }
        let rest: Vec<Value> = self.lines.iter().collect();
        let code = status
            .code()
            .unwrap_or_else(|| panic!("killed by a signal; stderr:\n{err}"));
        (code, rest, err)
    }
}

/// The mapping names a run line reports, in report order.
fn mappings(line: &Value) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for m in line["report"]["mappings"].as_array().expect("mappings") {
        let name = m["mapping"].as_str().expect("name").to_string();
        if !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

fn counter(line: &Value, mapping: &str, field: &str) -> u64 {
    line["report"]["mappings"]
        .as_array()
        .expect("mappings")
        .iter()
        .filter(|m| m["mapping"] == mapping)
        .map(|m| m["counts"][field].as_u64().unwrap_or(0))
        .sum()
}

#[test]
fn runs_on_schedule_and_picks_up_a_change_made_between_runs() {
    let p = project("10s", "2s");
    let w = Watch::start(&p, &["--max-runs", "3"]);
    let first = w.next_run(8);
    // Both are due at the start; the currency runs first, the customer looks it up.
    assert_eq!(mappings(&first), ["CURR", "CUST"], "{first:#}");
    assert_eq!(counter(&first, "CURR", "inserted"), 1);
    assert_eq!(counter(&first, "CUST", "inserted"), 1);
    // A user adds a customer while the watch sleeps.
    p.put("bc.Customer", json!({ "No.": "C2", "Name": "Beta" }));
    let (code, rest, err) = w.finish(10);
    assert_eq!(code, 0, "{err}");
    assert_eq!(rest.len(), 2, "{rest:#?}\n{err}");
    for line in &rest {
        // The currency is not due again within 10 seconds.
        assert_eq!(mappings(line), ["CUST"], "{line:#}");
    }
    let inserted: u64 = rest.iter().map(|l| counter(l, "CUST", "inserted")).sum();
    assert_eq!(inserted, 1, "{rest:#?}");
    assert!(err.contains("stopped after 3 runs"), "{err}");
    let mut names: Vec<String> = p
        .show("sales.account")
        .iter()
        .map(|r| r["name"].as_str().unwrap_or_default().to_string())
        .collect();
    names.sort();
    assert_eq!(names, ["Alpha", "Beta"]);
}

#[test]
fn sigterm_stops_the_watch_and_releases_the_lock() {
    let p = project("30m", "30m");
    let w = Watch::start(&p, &[]);
    w.next_run(8);
    // Asleep until the next due time, half an hour away.
    let sent = Instant::now();
    w.signal("TERM");
    let (code, rest, err) = w.finish(5);
    assert!(sent.elapsed() < Duration::from_secs(3), "{err}");
    assert_eq!(code, 0, "{err}");
    assert!(rest.is_empty(), "{rest:#?}");
    assert!(err.contains("SIGTERM"), "{err}");
    assert!(err.contains("stopped after 1 run"), "{err}");
    // The lock is free: an ordinary run starts and finds nothing to do.
    let o = p.run_ok(&[]);
    assert_eq!(o.total().writes(), 0, "{:#}", o.report);
}

#[test]
fn a_signal_during_a_run_stops_it_after_the_page_in_flight() {
    let customers: Vec<Value> = (0..3000)
        .map(|i| json!({ "No.": format!("C{i:04}"), "Name": format!("Customer {i}") }))
        .collect();
    let p = Project::new(
        &map("30m", "30m"),
        json!({ "Customer": customers }),
        json!({}),
    );
    // Loads both systems and creates the state store before the watch starts (`status` below
    // must not race the watch on creating its tables).
    p.load_systems();
    p.status();
    let w = Watch::start(&p, &["--page-size", "20"]);
    // Wait until the run has started (the state store says so), then interrupt it.
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        let status = p.status();
        if status["last_run"]["status"] == "running" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the run did not start: {status:#}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let sent = chrono::Utc::now();
    w.signal("INT");
    let (code, rest, err) = w.finish(10);
    assert_eq!(code, 0, "{err}");
    assert_eq!(rest.len(), 1, "the run in progress is reported: {err}");
    // The run ended after the signal, between two pages: part of the customers are written,
    // every one of them recorded (coupled), none failed.
    let ended: chrono::DateTime<chrono::Utc> = rest[0]["time"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .expect("a run line has its time");
    assert!(
        ended > sent,
        "the run ended at {ended}, before the signal at {sent}"
    );
    let first = counter(&rest[0], "CUST", "inserted");
    assert!(first < 3000, "the run was not stopped: {:#}", rest[0]);
    assert_eq!(counter(&rest[0], "CUST", "failed"), 0, "{:#}", rest[0]);
    assert!(err.contains("stopped after 1 run"), "{err}");
    assert_eq!(p.status()["last_run"]["status"], "stopped");
    assert_eq!(p.show("sales.account").len() as u64, first);
    // The next run goes on from there: the rest, once each.
    let o = p.run_ok(&[]);
    assert_eq!(
        o.counts("CUST", "->").inserted,
        3000 - first,
        "{:#}",
        o.report
    );
    assert_eq!(p.show("sales.account").len(), 3000);
    let o = p.run_ok(&[]);
    assert_eq!(o.total().writes(), 0, "{:#}", o.report);
}

#[test]
fn a_second_run_is_refused_while_watching() {
    let p = project("30m", "30m");
    let w = Watch::start(&p, &[]);
    w.next_run(8);
    let map = p.map_arg();
    for extra in [&[][..], &["--watch"][..]] {
        let mut args = vec!["run", "--profile", PROFILE, &map];
        args.extend_from_slice(extra);
        let out = p.coupler(&args);
        assert_eq!(code(&out), 2, "{}", stderr(&out));
        assert!(
            stderr(&out).contains("another coupler run is using the state"),
            "{}",
            stderr(&out)
        );
    }
    w.signal("TERM");
    let (code, _, err) = w.finish(5);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn the_mapping_with_the_shorter_schedule_runs_more_often() {
    // One schedule minute lasts a second: currencies every 3 s, customers every second.
    let p = project("3m", "1m");
    let w = Watch::start(&p, &["--tick", "1", "--max-runs", "5"]);
    let first = w.next_run(8);
    let (code, rest, err) = w.finish(10);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<Value> = std::iter::once(first).chain(rest).collect();
    assert_eq!(lines.len(), 5, "{lines:#?}");
    let runs_of = |m: &str| {
        lines
            .iter()
            .filter(|l| mappings(l).contains(&m.to_string()))
            .count()
    };
    let (curr, cust) = (runs_of("CURR"), runs_of("CUST"));
    assert_eq!(cust, 5, "{lines:#?}");
    assert!((1..=2).contains(&curr), "CURR ran {curr} times: {lines:#?}");
    // Every line says when each mapping is due next.
    let next = lines[0]["next"].as_array().expect("next");
    assert_eq!(next.len(), 2, "{next:?}");
    assert!(next
        .iter()
        .all(|n| n["due"].is_string() && n["on_hold"] == false));
}

#[test]
fn a_quiet_mapping_goes_on_hold_after_its_idle_time() {
    // Customers every second, on hold after 2 seconds without a change: then every 2 seconds.
    let map = r#"
mapping CUST: bc.Customer -> sales.account {
    on missing: create
    schedule every 1s idle 2s

    fields {
        Name -> name
    }
}
"#;
    let p = Project::new(
        map,
        json!({ "Customer": [{ "No.": "C1", "Name": "Alpha" }] }),
        json!({}),
    );
    let w = Watch::start(&p, &["--max-runs", "4"]);
    let (code, lines, err) = w.finish(12);
    assert_eq!(code, 0, "{err}");
    assert_eq!(lines.len(), 4, "{lines:#?}");
    let held: Vec<bool> = lines
        .iter()
        .map(|l| l["next"][0]["on_hold"].as_bool().expect("on_hold"))
        .collect();
    // Run 1 creates Alpha; runs 2 and 3 find nothing, 1 and 2 s later; from then on it is held.
    assert_eq!(held, [false, false, true, true], "{lines:#?}");
}

#[test]
fn watch_rejects_full_and_dry_run() {
    let p = project("30m", "30m");
    let map = p.map_arg();
    for flag in ["--full", "--dry-run"] {
        let out = p.coupler(&["run", "--watch", flag, "--profile", PROFILE, &map]);
        assert_eq!(code(&out), 2, "{flag}: {}", stderr(&out));
    }
    let out = p.coupler(&["run", "--max-runs", "1", "--profile", PROFILE, &map]);
    assert_eq!(
        code(&out),
        2,
        "--max-runs without --watch: {}",
        stderr(&out)
    );
}

#[test]
fn a_mapping_without_a_schedule_runs_every_30_minutes() {
    // One schedule minute lasts 0.2 s: customers every 0.2 s, currencies (no schedule: 30
    // minutes, Business Central's job-queue default) every 6 s.
    let p = project("1m", "1m");
    let text = std::fs::read_to_string(&p.map).expect("map");
    let start = text.find("    schedule every 1m").expect("a schedule line");
    let mut without = text.clone();
    without.replace_range(start..start + "    schedule every 1m\n".len(), "");
    std::fs::write(&p.map, without).expect("write map");
    let w = Watch::start(&p, &["--tick", "0.2", "--max-runs", "5"]);
    let (code, lines, err) = w.finish(10);
    assert_eq!(code, 0, "{err}");
    assert_eq!(lines.len(), 5, "{lines:#?}");
    let curr = lines
        .iter()
        .filter(|l| mappings(l).contains(&"CURR".to_string()))
        .count();
    assert_eq!(curr, 1, "{lines:#?}");
    let due = |l: &Value, m: &str| -> chrono::DateTime<chrono::FixedOffset> {
        let n = l["next"].as_array().expect("next");
        let row = n.iter().find(|r| r["mapping"] == m).expect("a next row");
        chrono::DateTime::parse_from_rfc3339(row["due"].as_str().expect("due")).expect("a time")
    };
    let gap = due(&lines[0], "CURR") - due(&lines[0], "CUST");
    assert!(
        gap > chrono::Duration::seconds(5) && gap < chrono::Duration::seconds(7),
        "{gap}"
    );
}
