//! The first use of a profile (issue 11, finding 10): `run`, `show` and `put` started together on
//! a fresh profile each wait for the one seed load instead of racing it. All succeed, the seed is
//! loaded once and whole, and nothing written meanwhile is lost.

use crate::support::coupler::coupler;
use crate::support::sync::{Project, PROFILE, USER};
use serde_json::{json, Value};
use std::process::{Child, Stdio};

const CUSTOMERS: usize = 400;

fn seeded() -> Project {
    let customers: Vec<Value> = (0..CUSTOMERS)
        .map(|i| json!({ "No.": format!("C{i:05}"), "Name": format!("Customer {i}") }))
        .collect();
    let accounts: Vec<Value> = (0..CUSTOMERS)
        .map(|i| json!({ "name": format!("Account {i}"), "accountnumber": format!("A{i:05}") }))
        .collect();
    Project::standard(
        json!({ "Customer": customers }),
        json!({ "account": accounts }),
    )
}

fn spawn(p: &Project, args: &[&str]) -> Child {
    coupler(args)
        .current_dir(p.root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
}

#[test]
fn commands_started_together_on_a_fresh_profile_share_one_seed_load() {
    for round in 0..4 {
        let p = seeded();
        let map = p.map_arg();
        let put =
            json!({ "No.": format!("NEW{round}"), "Name": "Written during the load" }).to_string();
        let commands: Vec<Vec<&str>> = vec![
            vec!["run", "--profile", PROFILE, &map, "--format", "json"],
            vec![
                "show",
                "--profile",
                PROFILE,
                "bc.Customer",
                "--mappings",
                &map,
                "--format",
                "json",
            ],
            vec![
                "show",
                "--profile",
                PROFILE,
                "sales.account",
                "--mappings",
                &map,
                "--format",
                "json",
            ],
            vec![
                "put",
                "--profile",
                PROFILE,
                "bc.Customer",
                "--mappings",
                &map,
                "--json",
                &put,
                "--user",
                USER,
            ],
        ];
        let children: Vec<Child> = commands.iter().map(|a| spawn(&p, a)).collect();
        for (child, args) in children.into_iter().zip(&commands) {
            let out = child.wait_with_output().expect("wait");
            assert_eq!(
                out.status.code(),
                Some(0),
                "round {round}: `coupler {}` failed: {}",
                args[0],
                String::from_utf8_lossy(&out.stderr)
            );
        }
        // The seed is whole and loaded once; the record put meanwhile is there too.
        let customers = p.show("bc.Customer");
        assert_eq!(customers.len(), CUSTOMERS + 1, "round {round}");
        assert!(p.show("sales.account").len() >= CUSTOMERS, "round {round}");
        let new = format!("NEW{round}");
        assert!(
            customers.iter().any(|c| c["No."] == new.as_str()),
            "round {round}"
        );
    }
}
