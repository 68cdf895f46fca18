//! Helpers for the end-to-end synchronization tests (`sync`, `watch`, `sales_orders`): a
//! throw-away project with a `coupler.yaml` whose profile binds two embedded systems seeded from small JSON folders, and
//! wrappers around the real `coupler` binary that parse its JSON output.

use super::coupler::coupler;
use coupler::analysis::SystemKind;
use coupler::runtime::connector::WriteOp;
use coupler::runtime::embedded::EmbeddedSystem;
use coupler::schema::Catalog;
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::sync::Arc;
use tempfile::TempDir;

/// The profile every test project defines.
pub const PROFILE: &str = "test";
/// Who `coupler put` edits as in these tests (anyone but the integration user).
pub const USER: &str = "consultant";
/// The integration user of both embedded systems (coupler's default).
pub const INTEGRATION: &str = "coupler-integration";

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn schema(file: &str) -> PathBuf {
    repo().join("schemas").join(file)
}

/// The two `system` lines of a mapping file, with absolute catalog paths.
pub fn systems_header() -> String {
    format!(
        "system bc    = business_central \"{}\"\nsystem sales = dataverse        \"{}\"\n\n",
        schema("business-central.yaml").display(),
        schema("dynamics-365-sales.yaml").display()
    )
}

/// The standard mapping set with absolute catalog paths, so it runs from a temp folder.
pub fn standard_map() -> String {
    let text = std::fs::read_to_string(repo().join("mappings/business-central-sales.map"))
        .expect("the standard mapping set is readable");
    let fixed = text.replace(
        "\"../schemas/",
        &format!("\"{}/", repo().join("schemas").display()),
    );
    assert!(
        fixed.contains(&*repo().join("schemas").to_string_lossy()),
        "the standard set's `system` lines no longer point at ../schemas/"
    );
    fixed
}

/// A seed folder's content: table name -> records.
pub type Seed = Value;

/// A temp project: `coupler.yaml`, `sync.map`, `seed/bc/`, `seed/sales/`, `state/`.
pub struct Project {
    pub dir: TempDir,
    pub map: PathBuf,
}

/// Counters of one mapping direction, as `coupler run --format json` reports them: the
/// library's own type, read back from the JSON.
pub use coupler::runtime::state::Counts;

/// What one `coupler run --format json` said.
#[derive(Debug)]
pub struct Outcome {
    pub code: i32,
    pub report: Value,
    pub actions: Vec<Value>,
    pub stderr: String,
}

impl Outcome {
    pub fn mappings(&self) -> &[Value] {
        self.report["mappings"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// The counters of one mapping and direction (`->`, `<-`, `-> (deferred)`); zero if absent.
    pub fn counts(&self, mapping: &str, direction: &str) -> Counts {
        self.mappings()
            .iter()
            .find(|m| m["mapping"] == mapping && m["direction"] == direction)
            .map(|m| serde_json::from_value(m["counts"].clone()).expect("counts"))
            .unwrap_or_default()
    }

    /// The counters of one mapping, all directions (deferred patches included).
    pub fn mapping_total(&self, mapping: &str) -> Counts {
        let mut t = Counts::default();
        for m in self.mappings().iter().filter(|m| m["mapping"] == mapping) {
            t.add(&serde_json::from_value(m["counts"].clone()).expect("counts"));
        }
        t
    }

    pub fn total(&self) -> Counts {
        let mut t = Counts::default();
        for m in self.mappings() {
            t.add(&serde_json::from_value(m["counts"].clone()).expect("counts"));
        }
        t
    }

    /// Mapping names in report order.
    pub fn mapping_order(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for m in self.mappings() {
            let name = m["mapping"].as_str().unwrap_or_default().to_string();
            if !out.contains(&name) {
                out.push(name);
            }
        }
        out
    }

    /// Errors of mapping passes (an endpoint failure, not a record failure).
    pub fn pass_errors(&self) -> Vec<String> {
        self.mappings()
            .iter()
            .filter_map(|m| {
                m.get("error")
                    .and_then(Value::as_str)
                    .map(|e| format!("{} {}: {e}", m["mapping"], m["direction"]))
            })
            .collect()
    }

    pub fn actions_of(&self, mapping: &str) -> Vec<&Value> {
        self.actions
            .iter()
            .filter(|a| a["mapping"] == mapping)
            .collect()
    }

    pub fn actions_of_kind(&self, kind: &str) -> Vec<&Value> {
        self.actions.iter().filter(|a| a["kind"] == kind).collect()
    }
}

impl Project {
    /// A project running `map_body` (mapping declarations; the `system` lines are added).
    pub fn new(map_body: &str, bc: Seed, sales: Seed) -> Project {
        Project::with_map_text(&format!("{}{map_body}", systems_header()), bc, sales)
    }

    /// A project running the standard mapping set.
    pub fn standard(bc: Seed, sales: Seed) -> Project {
        Project::with_map_text(&standard_map(), bc, sales)
    }

    pub fn with_map_text(map: &str, bc: Seed, sales: Seed) -> Project {
        let dir = tempfile::Builder::new()
            .prefix("coupler-sync-")
            .tempdir()
            .expect("temp dir");
        let root = dir.path();
        write(&root.join("sync.map"), map);
        write_seed(&root.join("seed/bc"), &bc);
        write_seed(&root.join("seed/sales"), &sales);
        write(
            &root.join("coupler.yaml"),
            &format!(
                "profiles:\n  {PROFILE}:\n    systems:\n      bc: {{ kind: embedded, seed: seed/bc }}\n      sales: {{ kind: embedded, seed: seed/sales }}\n    state: state/state.db\n"
            ),
        );
        Project {
            map: root.join("sync.map"),
            dir,
        }
    }

    /// A project whose seeds are copied from `tests/fixtures/sync/NAME/{bc,sales}/`.
    pub fn standard_with_fixture(name: &str) -> Project {
        let p = Project::standard(json!({}), json!({}));
        let from = repo().join("tests/fixtures/sync").join(name);
        for system in ["bc", "sales"] {
            let to = p.root().join("seed").join(system);
            std::fs::remove_dir_all(&to).expect("clear seed folder");
            std::fs::create_dir_all(&to).expect("seed folder");
            for entry in std::fs::read_dir(from.join(system)).expect("fixture seed folder") {
                let entry = entry.expect("fixture entry");
                std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy seed");
            }
        }
        p
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn map_arg(&self) -> String {
        self.map.display().to_string()
    }

    /// Runs `coupler ARGS` in the project folder.
    pub fn coupler(&self, args: &[&str]) -> Output {
        coupler(args).current_dir(self.root()).output()
    }

    /// `coupler run --profile test sync.map --format json EXTRA...` as a child process that is
    /// still running (its output is discarded).
    pub fn spawn_run(&self, extra: &[&str]) -> Child {
        let map = self.map_arg();
        coupler(["run", "--profile", PROFILE, &map, "--format", "json"])
            .args(extra)
            .current_dir(self.root())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
    }

    /// The state store's database (`state: state/state.db` in `coupler.yaml`).
    pub fn state_db(&self) -> PathBuf {
        self.root().join("state/state.db")
    }

    /// The lock file a run holds while it uses the state (`<state>` with the extension `lock`).
    pub fn state_lock(&self) -> PathBuf {
        self.state_db().with_extension("lock")
    }

    /// Loads both embedded systems from their seeds (any command that opens them does).
    pub fn load_systems(&self) {
        for target in ["bc.Customer", "sales.account"] {
            let map = self.map_arg();
            let out = self.coupler(&[
                "show",
                "--profile",
                PROFILE,
                target,
                "--mappings",
                &map,
                "--format",
                "json",
            ]);
            assert_eq!(code(&out), 0, "show {target}: {}", stderr(&out));
        }
    }

    /// Copies the loaded system databases of `other` (see [`load_systems`](Self::load_systems))
    /// into this project, so that it starts where `other` stands without loading its seeds.
    pub fn copy_systems_from(&self, other: &Project) {
        let to = self.root().join("state");
        std::fs::create_dir_all(&to).expect("state folder");
        for entry in std::fs::read_dir(other.root().join("state")).expect("state folder") {
            let entry = entry.expect("state entry");
            let name = entry.file_name();
            if name.to_string_lossy().starts_with("state.") {
                continue;
            }
            std::fs::copy(entry.path(), to.join(&name)).expect("copy a system database");
        }
    }

    /// `coupler run --profile test sync.map --format json EXTRA...`
    pub fn run(&self, extra: &[&str]) -> Outcome {
        let map = self.map_arg();
        let mut args = vec!["run", "--profile", PROFILE, &map, "--format", "json"];
        args.extend_from_slice(extra);
        let out = self.coupler(&args);
        let code = code(&out);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let doc: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
            panic!("`coupler run` did not print JSON ({e}); exit {code}\nstdout:\n{stdout}\nstderr:\n{stderr}")
        });
        Outcome {
            code,
            report: doc["report"].clone(),
            actions: doc["actions"].as_array().cloned().unwrap_or_default(),
            stderr,
        }
    }

    /// A run that must succeed (exit 0, no pass errors); returns its outcome.
    pub fn run_ok(&self, extra: &[&str]) -> Outcome {
        let o = self.run(extra);
        assert_eq!(
            o.code,
            0,
            "`coupler run {extra:?}` exited {}\nstderr: {}\nreport: {:#}\nactions: {:#}",
            o.code,
            o.stderr,
            o.report,
            Value::from(o.actions.clone())
        );
        assert!(o.pass_errors().is_empty(), "{:?}", o.pass_errors());
        o
    }

    /// The records of `system.table` (`coupler show --format json`).
    pub fn show(&self, target: &str) -> Vec<Map<String, Value>> {
        let map = self.map_arg();
        let out = self.coupler(&[
            "show",
            "--profile",
            PROFILE,
            target,
            "--mappings",
            &map,
            "--format",
            "json",
        ]);
        assert_eq!(code(&out), 0, "show {target}: {}", stderr(&out));
        let v: Value = serde_json::from_slice(&out.stdout).expect("show prints JSON");
        v.as_array()
            .expect("an array of records")
            .iter()
            .map(|r| r.as_object().expect("a record").clone())
            .collect()
    }

    /// The one record of `target` whose `field` is `value`; fails unless exactly one matches.
    pub fn find(&self, target: &str, field: &str, value: &str) -> Map<String, Value> {
        let all = self.show(target);
        let hits: Vec<_> = all.iter().filter(|r| r[field] == value).collect();
        assert_eq!(
            hits.len(),
            1,
            "expected one `{target}` with {field} = {value:?}, found {}: {:#?}",
            hits.len(),
            all
        );
        hits[0].clone()
    }

    /// The values of `field` over all records of `target`, sorted.
    pub fn column(&self, target: &str, field: &str) -> Vec<Value> {
        let mut v: Vec<Value> = self
            .show(target)
            .into_iter()
            .map(|r| r.get(field).cloned().unwrap_or(Value::Null))
            .collect();
        v.sort_by_key(|x| x.to_string());
        v
    }

    /// `coupler put` as `user`; returns the record as written.
    pub fn put_as(&self, target: &str, record: Value, user: &str) -> Map<String, Value> {
        let map = self.map_arg();
        let text = record.to_string();
        let out = self.coupler(&[
            "put",
            "--profile",
            PROFILE,
            target,
            "--mappings",
            &map,
            "--json",
            &text,
            "--user",
            user,
        ]);
        assert_eq!(code(&out), 0, "put {target} {text}: {}", stderr(&out));
        let v: Value = serde_json::from_slice(&out.stdout).expect("put prints the record");
        v.as_object().expect("a record").clone()
    }

    /// `coupler put` as an ordinary user.
    pub fn put(&self, target: &str, record: Value) -> Map<String, Value> {
        self.put_as(target, record, USER)
    }

    pub fn status(&self) -> Value {
        let map = self.map_arg();
        let out = self.coupler(&["status", "--profile", PROFILE, &map, "--format", "json"]);
        assert_eq!(code(&out), 0, "status: {}", stderr(&out));
        serde_json::from_slice(&out.stdout).expect("status prints JSON")
    }

    /// The status row of one mapping.
    pub fn mapping_status(&self, mapping: &str) -> Value {
        let s = self.status();
        s["mappings"]
            .as_array()
            .expect("mappings")
            .iter()
            .find(|m| m["mapping"] == mapping)
            .cloned()
            .unwrap_or_else(|| panic!("no status row for {mapping}: {s:#}"))
    }

    pub fn errors(&self) -> Vec<Value> {
        let map = self.map_arg();
        let out = self.coupler(&["errors", "--profile", PROFILE, &map, "--format", "json"]);
        assert_eq!(code(&out), 0, "errors: {}", stderr(&out));
        serde_json::from_slice::<Value>(&out.stdout)
            .expect("errors prints JSON")
            .as_array()
            .cloned()
            .expect("an array of failures")
    }

    /// Opens an embedded system's database directly (the library, as `coupler` does).
    pub fn system(&self, name: &str) -> EmbeddedSystem {
        let (kind, file) = match name {
            "bc" => (SystemKind::BusinessCentral, "business-central.yaml"),
            "sales" => (SystemKind::Dataverse, "dynamics-365-sales.yaml"),
            other => panic!("no system {other}"),
        };
        let text = std::fs::read_to_string(schema(file)).expect("catalog");
        let catalog = Catalog::parse(&text).expect("catalog parses");
        let db = self.root().join("state").join(format!("{name}.db"));
        assert!(
            db.exists(),
            "{} does not exist yet: run first",
            db.display()
        );
        EmbeddedSystem::open(&db, name, kind, Arc::new(catalog), None, INTEGRATION)
            .expect("embedded system opens")
    }

    /// Deletes one record of an embedded system as `user` (there is no CLI delete).
    pub fn delete(&self, system: &str, table: &str, id: &str) {
        let sys = self.system(system);
        let results = sys
            .apply(table, vec![WriteOp::Delete { id: id.to_string() }], USER)
            .expect("delete applies");
        assert!(
            results.iter().all(Result::is_ok),
            "delete failed: {results:?}"
        );
    }

    /// Updates several records in one write, so that they all get the same modified-on stamp.
    pub fn update_together(&self, system: &str, table: &str, updates: Vec<(String, Value)>) {
        let sys = self.system(system);
        let ops = updates
            .into_iter()
            .map(|(id, fields)| WriteOp::Update {
                id,
                fields: fields.as_object().expect("fields").clone(),
            })
            .collect();
        let results = sys.apply(table, ops, USER).expect("update applies");
        assert!(
            results.iter().all(Result::is_ok),
            "update failed: {results:?}"
        );
    }
}

pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or_else(|| {
        panic!(
            "coupler was killed by a signal\nstderr:\n{}",
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn write(path: &Path, text: &str) {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).expect("create folder");
    }
    std::fs::write(path, text).expect("write file");
}

fn write_seed(dir: &Path, seed: &Seed) {
    write(
        &dir.join("seed.json"),
        &serde_json::to_string_pretty(seed).expect("seed serializes"),
    );
}

/// A record's string field (panics with the record when absent).
pub fn text<'a>(r: &'a Map<String, Value>, field: &str) -> &'a str {
    r.get(field)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("`{field}` is not text in {r:#?}"))
}
