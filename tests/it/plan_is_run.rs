//! `coupler run` executes the plan `coupler plan` shows: the plan the engine received (dumped by
//! the hidden `run --dump-plan FILE`, from the engine's own value) is, as JSON, byte for byte what
//! `coupler plan --format json` prints for the same files, profile and selection. The plan's
//! steps, filters and policies are read off the passes the engine executes, so this holds for
//! what runs, not only for what is shown. Runs are dry, on a copy of the demo.
use crate::support::common::{self, copy_dir, repo};
use std::path::Path;
use std::process::Output;

/// The embedded demo endpoints, without the standard set's settings: the examples' own profile.
const EXAMPLES_PROFILE: &str = "profiles:
  examples:
    systems:
      bc:    { kind: embedded, seed: examples/demo/business-central }
      sales: { kind: embedded, seed: examples/demo/dynamics-365-sales }
    state: .coupler/examples/state.db
";

/// A copy of the demo (profile, mappings, catalogs, seeds) with the examples beside it.
fn demo() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("coupler-plan-is-run-")
        .tempdir()
        .expect("temp dir");
    std::fs::copy(repo().join("coupler.yaml"), dir.path().join("coupler.yaml")).expect("yaml");
    for sub in ["mappings", "schemas", "examples"] {
        copy_dir(&repo().join(sub), &dir.path().join(sub));
    }
    std::fs::write(dir.path().join("examples.yaml"), EXAMPLES_PROFILE).expect("profile");
    dir
}

fn coupler(dir: &Path, args: &[&str]) -> Output {
    crate::support::coupler::coupler(args)
        .current_dir(dir)
        .output()
}

/// `coupler plan --format json` and the plan a dry `coupler run` executes, for the same `args`
/// (files, profile, selection).
fn plan_and_run(dir: &Path, args: &[&str]) -> (String, String) {
    let mut plan_args = vec!["plan", "--format", "json"];
    plan_args.extend_from_slice(args);
    let plan = coupler(dir, &plan_args);
    assert_eq!(
        plan.status.code(),
        Some(0),
        "plan {args:?}: {}",
        String::from_utf8_lossy(&plan.stderr)
    );
    let dump = dir.join("executed-plan.json");
    let _ = std::fs::remove_file(&dump);
    let dump_arg = dump.to_str().expect("utf-8 path");
    let mut run_args = vec!["run", "--dry-run", "--dump-plan", dump_arg];
    run_args.extend_from_slice(args);
    let run = coupler(dir, &run_args);
    // A dry run may count failures (exit 1); it must not stop (exit 2).
    assert!(
        matches!(run.status.code(), Some(0 | 1)),
        "run {args:?}: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let executed = std::fs::read_to_string(&dump).expect("run --dump-plan wrote the plan");
    (String::from_utf8_lossy(&plan.stdout).into_owned(), executed)
}

fn assert_plan_is_run(dir: &Path, args: &[&str]) {
    let (shown, executed) = plan_and_run(dir, args);
    let doc: serde_json::Value = serde_json::from_str(&executed).expect("the dump is JSON");
    assert!(
        doc["mappings"].as_array().is_some_and(|m| !m.is_empty()),
        "{args:?}: the executed plan has mappings"
    );
    assert_eq!(
        shown, executed,
        "{args:?}: `coupler plan` and `coupler run` differ"
    );
}

#[test]
fn the_standard_set_runs_the_plan_it_shows() {
    let dir = demo();
    assert_plan_is_run(dir.path(), &["--profile", "demo"]);
}

#[test]
fn a_selection_of_the_standard_set_runs_the_plan_it_shows() {
    let dir = demo();
    assert_plan_is_run(dir.path(), &["--profile", "demo", "--select", "+CONTACT"]);
    assert_plan_is_run(dir.path(), &["--profile", "demo", "--select", "CUSTOMER+"]);
}

#[test]
fn every_example_runs_the_plan_it_shows() {
    let dir = demo();
    let examples = common::map_files(&dir.path().join("examples"));
    assert!(!examples.is_empty(), "examples/*.map exist");
    let mut compared = 0;
    for file in examples {
        let check = coupler(dir.path(), &["check", file.to_str().expect("utf-8 path")]);
        if check.status.code() != Some(0) {
            continue;
        }
        let path = file.to_str().expect("utf-8 path");
        // The two-company example needs a company: it has its own profiles in coupler.yaml.
        let args: Vec<&str> = if path.ends_with("two-companies.map") {
            vec!["--profile", "demo-us", path]
        } else {
            vec!["--profile", "examples", "--config", "examples.yaml", path]
        };
        assert_plan_is_run(dir.path(), &args);
        compared += 1;
    }
    assert!(compared > 0, "some example checks clean");
}
