//! The state store (SQLite): couplings, watermarks per mapping and side, runs with their
//! counters, failed records, and pending deferred patches. It is what makes a second run
//! incremental and a crashed run resumable without duplicates.

mod error;
mod extra;
mod failure;
mod keys;
mod migrations;
mod pending;

pub use error::{Res, StateError};
pub use extra::{Held, Part};
pub use failure::{Failed, Failure, FailureKind};
pub use keys::{Leg, RunStatus};
pub use pending::PendingCreate;

use error::err;

use crate::analysis::Arrow;
use crate::runtime::connector::Cursor;
use crate::runtime::sql::Cached;
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub use crate::analysis::SideName;

/// The couplings columns of a side: `column("id")` is `left_id` or `right_id`.
trait Column {
    fn column(self, what: &str) -> String;
}

impl Column for SideName {
    fn column(self, what: &str) -> String {
        format!("{}_{what}", self.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Coupling {
    pub mapping: String,
    pub left_id: String,
    pub right_id: String,
    pub left_ref: Option<String>,
    pub right_ref: Option<String>,
    pub left_stamp: Option<String>,
    pub right_stamp: Option<String>,
    pub skipped: bool,
    pub pending: bool,
}

impl Coupling {
    pub fn id(&self, side: SideName) -> &str {
        match side {
            SideName::Left => &self.left_id,
            SideName::Right => &self.right_id,
        }
    }

    pub fn stamp(&self, side: SideName) -> Option<&str> {
        match side {
            SideName::Left => self.left_stamp.as_deref(),
            SideName::Right => self.right_stamp.as_deref(),
        }
    }

    pub fn reference(&self, side: SideName) -> Option<&str> {
        match side {
            SideName::Left => self.left_ref.as_deref(),
            SideName::Right => self.right_ref.as_deref(),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Counts {
    pub inserted: u64,
    pub modified: u64,
    pub deleted: u64,
    pub unchanged: u64,
    pub skipped: u64,
    pub failed: u64,
    pub coupled: u64,
    pub conflicts: u64,
}

impl Counts {
    pub fn add(&mut self, o: &Counts) {
        self.inserted += o.inserted;
        self.modified += o.modified;
        self.deleted += o.deleted;
        self.unchanged += o.unchanged;
        self.skipped += o.skipped;
        self.failed += o.failed;
        self.coupled += o.coupled;
        self.conflicts += o.conflicts;
    }

    /// Everything that wrote to a system or to the couplings.
    pub fn writes(&self) -> u64 {
        self.inserted + self.modified + self.deleted + self.coupled
    }
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct RunInfo {
    pub id: i64,
    pub started: String,
    pub finished: Option<String>,
    pub status: RunStatus,
    pub full: bool,
}

pub struct StateStore {
    conn: Mutex<Connection>,
    pub path: PathBuf,
    /// Held for the life of a run: a second run on the same state refuses to start.
    _lock: Option<File>,
}

impl StateStore {
    /// Opens the state store, applying migrations. With `exclusive`, takes the run lock.
    pub fn open(path: &Path, exclusive: bool) -> Res<StateStore> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| StateError::CreateDir {
                dir: dir.to_path_buf(),
                source,
            })?;
        }
        let lock = if exclusive {
            Some(take_lock(path)?)
        } else {
            None
        };
        let setup = |source| StateError::Setup {
            path: path.to_path_buf(),
            source,
        };
        let mut conn = Connection::open(path).map_err(|source| StateError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        // The timeout first: switching to WAL waits for other connections too.
        conn.execute_batch("PRAGMA busy_timeout=10000; PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;")
            .map_err(setup)?;
        conn.set_prepared_statement_cache_capacity(256);
        migrate(path, &mut conn)?;
        Ok(StateStore {
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
            _lock: lock,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` in one transaction.
    pub fn transaction<T>(&self, f: impl FnOnce(&Connection) -> Res<T>) -> Res<T> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(err)?;
        let out = f(&tx)?;
        tx.commit().map_err(err)?;
        Ok(out)
    }

    pub fn coupling_by(&self, mapping: &str, side: SideName, id: &str) -> Res<Option<Coupling>> {
        let col = side.column("id");
        let conn = self.lock();
        query_coupling(
            &conn,
            &format!("mapping = ?1 AND {col} = ?2"),
            params![mapping, id],
        )
    }

    /// The couplings of many records of one side, in one query.
    pub fn couplings_by(
        &self,
        mapping: &str,
        side: SideName,
        ids: &[&str],
    ) -> Res<HashMap<String, Coupling>> {
        let col = side.column("id");
        let conn = self.lock();
        let mut out = HashMap::new();
        for chunk in ids.chunks(500) {
            let slots: Vec<String> = (0..chunk.len()).map(|i| format!("?{}", i + 2)).collect();
            let sql = format!(
                "SELECT {COUPLING_COLS} FROM couplings WHERE mapping = ?1 AND {col} IN ({})",
                slots.join(", ")
            );
            let mut stmt = conn.prepare_cached(&sql).map_err(err)?;
            let params: Vec<&dyn rusqlite::ToSql> =
                std::iter::once(&mapping as &dyn rusqlite::ToSql)
                    .chain(chunk.iter().map(|s| s as &dyn rusqlite::ToSql))
                    .collect();
            let rows = stmt
                .query_map(params.as_slice(), row_coupling)
                .map_err(err)?;
            for c in rows {
                let c = c.map_err(err)?;
                out.insert(c.id(side).to_string(), c);
            }
        }
        Ok(out)
    }

    /// The coupling whose record is referenced as `reference` on `side` (a code, or a GUID).
    pub fn coupling_by_ref(
        &self,
        mapping: &str,
        side: SideName,
        reference: &str,
    ) -> Res<Option<Coupling>> {
        let col = side.column("ref");
        let conn = self.lock();
        query_coupling(
            &conn,
            &format!("mapping = ?1 AND {col} = ?2 AND pending = 0"),
            params![mapping, reference],
        )
    }

    pub fn couplings(&self, mapping: &str) -> Res<Vec<Coupling>> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {COUPLING_COLS} FROM couplings WHERE mapping = ?1 ORDER BY left_id"
            ))
            .map_err(err)?;
        let rows = stmt.query_map([mapping], row_coupling).map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    pub fn pending_couplings(&self, mapping: &str) -> Res<Vec<Coupling>> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {COUPLING_COLS} FROM couplings WHERE mapping = ?1 AND pending = 1"
            ))
            .map_err(err)?;
        let rows = stmt.query_map([mapping], row_coupling).map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    pub fn count_couplings(&self, mapping: &str) -> Res<(u64, u64)> {
        let conn = self.lock();
        conn.one(
            "SELECT COUNT(*), COALESCE(SUM(skipped), 0) FROM couplings WHERE mapping = ?1 AND pending = 0",
            [mapping],
            |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
        )
        .map_err(err)
    }

    pub fn watermark(&self, mapping: &str, side: SideName) -> Res<Option<Cursor>> {
        let conn = self.lock();
        conn.one(
            "SELECT modified_on, id FROM watermarks WHERE mapping = ?1 AND side = ?2",
            [mapping, side.as_str()],
            |r| {
                Ok(Cursor {
                    modified_on: r.get(0)?,
                    id: r.get(1)?,
                })
            },
        )
        .optional()
        .map(|c| c.filter(|c| !c.modified_on.is_empty()))
        .map_err(err)
    }

    pub fn deleted_since(&self, mapping: &str, side: SideName) -> Res<Option<String>> {
        let conn = self.lock();
        conn.one(
            "SELECT deleted_since FROM watermarks WHERE mapping = ?1 AND side = ?2",
            [mapping, side.as_str()],
            |r| r.get::<_, Option<String>>(0),
        )
        .optional()
        .map(Option::flatten)
        .map_err(err)
    }

    pub fn start_run(&self, full: bool, dry_run: bool) -> Res<i64> {
        let conn = self.lock();
        conn.exec(
            "INSERT INTO runs (started, status, full, dry_run) VALUES (?1, 'running', ?2, ?3)",
            params![crate::runtime::values::now_stamp(), full, dry_run],
        )
        .map_err(err)?;
        Ok(conn.last_insert_rowid())
    }

    /// The mappings of `run`, a `--full` run, are full until each finishes.
    pub fn mark_full(&self, run: i64, mappings: &[String]) -> Res<()> {
        self.transaction(|conn| {
            for m in mappings {
                conn.exec(
                    "INSERT OR REPLACE INTO full_pending (mapping, run) VALUES (?1, ?2)",
                    params![m, run],
                )
                .map_err(err)?;
            }
            Ok(())
        })
    }

    /// Mappings a `--full` run did not finish: mapping -> that run.
    pub fn full_pending(&self) -> Res<HashMap<String, i64>> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached("SELECT mapping, run FROM full_pending")
            .map_err(err)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
            .map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    /// A mapping's full synchronization finished.
    pub fn clear_full(&self, mapping: &str) -> Res<()> {
        self.lock()
            .exec(
                "DELETE FROM full_pending WHERE mapping = ?1",
                params![mapping],
            )
            .map_err(err)?;
        Ok(())
    }

    pub fn finish_run(&self, run: i64, status: RunStatus) -> Res<()> {
        let conn = self.lock();
        conn.exec(
            "UPDATE runs SET finished = ?1, status = ?2 WHERE id = ?3",
            params![crate::runtime::values::now_stamp(), status, run],
        )
        .map_err(err)?;
        Ok(())
    }

    pub fn save_counts(&self, run: i64, mapping: &str, direction: Leg, c: &Counts) -> Res<()> {
        let conn = self.lock();
        conn.exec(
            "INSERT OR REPLACE INTO run_counts (run_id, mapping, direction, inserted, modified, deleted, unchanged, skipped, failed, coupled, conflicts)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![run, mapping, direction, c.inserted, c.modified, c.deleted, c.unchanged, c.skipped, c.failed, c.coupled, c.conflicts],
        )
        .map_err(err)?;
        Ok(())
    }

    pub fn last_run(&self) -> Res<Option<RunInfo>> {
        let conn = self.lock();
        conn.one(
            "SELECT id, started, finished, status, full FROM runs WHERE dry_run = 0 ORDER BY id DESC LIMIT 1",
            [],
            |r| {
                Ok(RunInfo {
                    id: r.get(0)?,
                    started: r.get(1)?,
                    finished: r.get(2)?,
                    status: r.get(3)?,
                    full: r.get(4)?,
                })
            },
        )
        .optional()
        .map_err(err)
    }

    pub fn run_counts(&self, run: i64) -> Res<Vec<(String, Leg, Counts)>> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare("SELECT mapping, direction, inserted, modified, deleted, unchanged, skipped, failed, coupled, conflicts FROM run_counts WHERE run_id = ?1")
            .map_err(err)?;
        let rows = stmt
            .query_map([run], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    Counts {
                        inserted: r.get::<_, i64>(2)? as u64,
                        modified: r.get::<_, i64>(3)? as u64,
                        deleted: r.get::<_, i64>(4)? as u64,
                        unchanged: r.get::<_, i64>(5)? as u64,
                        skipped: r.get::<_, i64>(6)? as u64,
                        failed: r.get::<_, i64>(7)? as u64,
                        coupled: r.get::<_, i64>(8)? as u64,
                        conflicts: r.get::<_, i64>(9)? as u64,
                    },
                ))
            })
            .map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    pub fn failures(&self, mapping: Option<&str>) -> Res<Vec<Failure>> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare(
                "SELECT mapping, direction, source_id, target_id, kind, message, first_seen, last_seen, attempts FROM failures
                 WHERE ?1 IS NULL OR mapping = ?1 ORDER BY mapping, direction, last_seen, source_id",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map([mapping], |r| {
                Ok(Failure {
                    mapping: r.get(0)?,
                    direction: r.get(1)?,
                    source_id: r.get(2)?,
                    target_id: r.get(3)?,
                    kind: FailureKind::parse(&r.get::<_, String>(4)?),
                    message: r.get(5)?,
                    first_seen: r.get(6)?,
                    last_seen: r.get(7)?,
                    attempts: r.get(8)?,
                })
            })
            .map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    /// The kind of a record's recorded failure, if it has one.
    pub fn failure_kind(
        &self,
        mapping: &str,
        direction: Arrow,
        source: &str,
    ) -> Res<Option<FailureKind>> {
        let conn = self.lock();
        conn.one(
            "SELECT kind FROM failures WHERE mapping = ?1 AND direction = ?2 AND source_id = ?3",
            params![mapping, direction, source],
            |r| r.get::<_, String>(0),
        )
        .optional()
        .map(|k| k.as_deref().map(FailureKind::parse))
        .map_err(err)
    }

    pub fn failed_ids(&self, mapping: &str, direction: Arrow) -> Res<Vec<String>> {
        self.source_ids("failures", mapping, direction)
    }

    /// The source ids a table holds for a mapping and direction (failures, patches).
    fn source_ids(&self, table: &str, mapping: &str, direction: Arrow) -> Res<Vec<String>> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT source_id FROM {table} WHERE mapping = ?1 AND direction = ?2 ORDER BY source_id"
            ))
            .map_err(err)?;
        let rows = stmt
            .query_map(params![mapping, direction], |r| r.get(0))
            .map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    /// Creates that were in flight when a run stopped, or whose outcome was not heard:
    /// (batch, direction, creates).
    pub fn pending_creates(&self, mapping: &str) -> Res<Vec<(i64, Arrow, Vec<PendingCreate>)>> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached("SELECT id, direction, pairs FROM pending_creates WHERE mapping = ?1")
            .map_err(err)?;
        let rows = stmt
            .query_map([mapping], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, Arrow>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .map_err(err)?;
        let mut out = Vec::new();
        for row in rows {
            let (id, direction, pairs) = row.map_err(err)?;
            let pairs: Vec<PendingCreate> =
                serde_json::from_str(&pairs).map_err(|source| StateError::Json {
                    what: format!("pending creates of `{mapping}`"),
                    source,
                })?;
            out.push((id, direction, pairs));
        }
        Ok(out)
    }

    pub fn patch_ids(&self, mapping: &str, direction: Arrow) -> Res<Vec<String>> {
        self.source_ids("patches", mapping, direction)
    }

    /// Removes a coupling by hand (`coupler uncouple`).
    pub fn uncouple(&self, mapping: &str, side: SideName, id: &str) -> Res<bool> {
        let col = side.column("id");
        let conn = self.lock();
        let n = conn
            .execute(
                &format!("DELETE FROM couplings WHERE mapping = ?1 AND {col} = ?2"),
                params![mapping, id],
            )
            .map_err(err)?;
        Ok(n > 0)
    }
}

/// The run lock beside the state: a second run on the same state is refused, not queued.
fn take_lock(path: &Path) -> Res<File> {
    let lock_path = path.with_extension("lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|source| StateError::OpenLock {
            lock: lock_path.clone(),
            source,
        })?;
    file.try_lock().map_err(|_| StateError::Busy {
        path: path.to_path_buf(),
    })?;
    Ok(file)
}

/// Applies the migrations this state lacks. They run under the write lock and re-read the
/// version inside it, so two processes opening a new state at once do not both apply them.
fn migrate(path: &Path, conn: &mut Connection) -> Res<()> {
    let setup = |source| StateError::Setup {
        path: path.to_path_buf(),
        source,
    };
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(setup)?;
    let version: i64 = tx
        .one("PRAGMA user_version", [], |r| r.get(0))
        .map_err(setup)?;
    let known = migrations::MIGRATIONS.len() as i64;
    if version > known {
        return Err(StateError::Newer {
            path: path.to_path_buf(),
            version,
            known,
        });
    }
    for (i, step) in migrations::MIGRATIONS
        .iter()
        .enumerate()
        .skip(version as usize)
    {
        tx.execute_batch(step)
            .map_err(|source| StateError::Migration {
                step: i + 1,
                source,
            })?;
        tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1))
            .map_err(err)?;
    }
    tx.commit().map_err(err)
}

pub const COUPLING_COLS: &str =
    "mapping, left_id, right_id, left_ref, right_ref, left_stamp, right_stamp, skipped, pending";

fn row_coupling(r: &rusqlite::Row<'_>) -> rusqlite::Result<Coupling> {
    Ok(Coupling {
        mapping: r.get(0)?,
        left_id: r.get(1)?,
        right_id: r.get(2)?,
        left_ref: r.get(3)?,
        right_ref: r.get(4)?,
        left_stamp: r.get(5)?,
        right_stamp: r.get(6)?,
        skipped: r.get(7)?,
        pending: r.get(8)?,
    })
}

fn query_coupling(
    conn: &Connection,
    cond: &str,
    p: impl rusqlite::Params,
) -> Res<Option<Coupling>> {
    conn.one(
        &format!("SELECT {COUPLING_COLS} FROM couplings WHERE {cond}"),
        p,
        row_coupling,
    )
    .optional()
    .map_err(err)
}

/// Writes used inside [`StateStore::transaction`].
pub mod tx {
    pub use super::extra::{
        delete_part, hold, mark_parts_due, parts_done, put_part, release, release_all, settle_parts,
    };
    use super::*;

    pub fn put_coupling(conn: &Connection, c: &Coupling) -> Res<()> {
        // REPLACE removes any older coupling of either record (the primary key on the left id,
        // the unique key on the right id): a record is coupled to one record at a time.
        conn.exec(
            &format!(
                "INSERT OR REPLACE INTO couplings ({COUPLING_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
            ),
            params![c.mapping, c.left_id, c.right_id, c.left_ref, c.right_ref, c.left_stamp, c.right_stamp, c.skipped, c.pending],
        )
        .map_err(err)?;
        Ok(())
    }

    pub fn delete_coupling(conn: &Connection, mapping: &str, left_id: &str) -> Res<()> {
        conn.exec(
            "DELETE FROM couplings WHERE mapping = ?1 AND left_id = ?2",
            params![mapping, left_id],
        )
        .map_err(err)?;
        Ok(())
    }

    pub fn set_watermark(conn: &Connection, mapping: &str, side: SideName, c: &Cursor) -> Res<()> {
        conn.exec(
            "INSERT INTO watermarks (mapping, side, modified_on, id) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (mapping, side) DO UPDATE SET modified_on = ?3, id = ?4
             WHERE (?3, ?4) > (watermarks.modified_on, watermarks.id)",
            params![mapping, side.as_str(), c.modified_on, c.id],
        )
        .map_err(err)?;
        Ok(())
    }

    pub fn set_deleted_since(
        conn: &Connection,
        mapping: &str,
        side: SideName,
        stamp: &str,
    ) -> Res<()> {
        conn.exec(
            "INSERT INTO watermarks (mapping, side, modified_on, id, deleted_since) VALUES (?1, ?2, '', '', ?3)
             ON CONFLICT (mapping, side) DO UPDATE SET deleted_since = ?3",
            params![mapping, side.as_str(), stamp],
        )
        .map_err(err)?;
        Ok(())
    }

    pub fn clear_watermarks(conn: &Connection, mapping: &str) -> Res<()> {
        conn.exec(
            "UPDATE watermarks SET modified_on = '', id = '' WHERE mapping = ?1",
            [mapping],
        )
        .map_err(err)?;
        Ok(())
    }

    /// Records (or records again) a failed record of `mapping`'s `direction` in `run`.
    pub fn record_failure(
        conn: &Connection,
        mapping: &str,
        direction: Arrow,
        run: i64,
        f: &Failed<'_>,
    ) -> Res<()> {
        let now = crate::runtime::values::now_stamp();
        conn.exec(
            "INSERT INTO failures (mapping, direction, source_id, target_id, kind, message, first_seen, last_seen, attempts, run_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, 1, ?8)
             ON CONFLICT (mapping, direction, source_id) DO UPDATE SET target_id = COALESCE(?4, target_id),
             kind = ?5, message = ?6, last_seen = ?7, attempts = attempts + 1, run_id = ?8",
            params![mapping, direction, f.source, f.target, f.kind.as_str(), f.message, now, run],
        )
        .map_err(err)?;
        Ok(())
    }

    pub fn clear_failure(
        conn: &Connection,
        mapping: &str,
        direction: Arrow,
        source: &str,
    ) -> Res<()> {
        conn.exec(
            "DELETE FROM failures WHERE mapping = ?1 AND direction = ?2 AND source_id = ?3",
            params![mapping, direction, source],
        )
        .map_err(err)?;
        Ok(())
    }

    /// Announces a batch of creates (source id, chosen target id); returns its id.
    pub fn add_pending_creates(
        conn: &Connection,
        mapping: &str,
        direction: Arrow,
        pairs: &[PendingCreate],
    ) -> Res<i64> {
        let json = serde_json::to_string(pairs).map_err(|source| StateError::Json {
            what: format!("pending creates of `{mapping}`"),
            source,
        })?;
        conn.exec(
            "INSERT INTO pending_creates (mapping, direction, pairs) VALUES (?1, ?2, ?3)",
            params![mapping, direction, json],
        )
        .map_err(err)?;
        Ok(conn.last_insert_rowid())
    }

    pub fn clear_pending_creates(conn: &Connection, batch: i64) -> Res<()> {
        conn.exec("DELETE FROM pending_creates WHERE id = ?1", params![batch])
            .map_err(err)?;
        Ok(())
    }

    pub fn add_patch(conn: &Connection, mapping: &str, direction: Arrow, source: &str) -> Res<()> {
        conn.exec(
            "INSERT OR IGNORE INTO patches (mapping, direction, source_id) VALUES (?1, ?2, ?3)",
            params![mapping, direction, source],
        )
        .map_err(err)?;
        Ok(())
    }

    pub fn clear_patch(
        conn: &Connection,
        mapping: &str,
        direction: Arrow,
        source: &str,
    ) -> Res<()> {
        conn.exec(
            "DELETE FROM patches WHERE mapping = ?1 AND direction = ?2 AND source_id = ?3",
            params![mapping, direction, source],
        )
        .map_err(err)?;
        Ok(())
    }
}
