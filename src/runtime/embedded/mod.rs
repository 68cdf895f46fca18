//! The embedded system kind: one SQLite database per system, holding the tables of its schema
//! catalog and behaving like the real system — it stamps modified-on and modified-by on every
//! write, generates keys, checks types and lengths, keeps tombstones of deleted records, and
//! evaluates pushed-down filters.

mod codec;
mod seed;
mod sql;

use crate::plan::filter::Pred;
use crate::runtime::connector::*;
use crate::runtime::sql::Cached;
use crate::runtime::values::{new_guid, normalize};
use crate::schema::SystemKind;
use crate::schema::{Catalog, FieldType, Table};
use async_trait::async_trait;
use codec::quote_ident;
use rusqlite::types::Value as SqlValue;
use rusqlite::{params_from_iter, Connection, OptionalExtension};
use serde_json::{Map, Value};
use std::path::Path;
use std::sync::{Arc, Mutex};

pub struct EmbeddedSystem {
    pub name: String,
    pub kind: SystemKind,
    pub catalog: Arc<Catalog>,
    conn: Mutex<Connection>,
    integration_user: String,
}

/// The field that identifies records: Dataverse's primary key, Business Central's SystemId.
pub fn id_field(kind: SystemKind, table: &Table) -> String {
    if kind == SystemKind::BusinessCentral && table.fields.contains_key("SystemId") {
        "SystemId".into()
    } else {
        table.key.first().cloned().unwrap_or_else(|| "id".into())
    }
}

type Res<T> = Result<T, String>;

/// A stamp later than any this database gave before (at least a millisecond), inside the
/// write transaction.
fn next_stamp(tx: &Connection) -> Res<String> {
    use crate::runtime::sql::Cached;
    let last: Option<String> = tx
        .one("SELECT last FROM \"__stamp\"", [], |r| r.get(0))
        .optional()
        .map_err(sql_err)?;
    let now = chrono::Utc::now();
    let stamp = match last.and_then(|l| chrono::DateTime::parse_from_rfc3339(&l).ok()) {
        Some(l) if l.with_timezone(&chrono::Utc) >= now => {
            l.with_timezone(&chrono::Utc) + chrono::Duration::milliseconds(1)
        }
        _ => now,
    };
    let text = stamp.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
    tx.exec("DELETE FROM \"__stamp\"", []).map_err(sql_err)?;
    tx.exec("INSERT INTO \"__stamp\" (last) VALUES (?1)", [&text])
        .map_err(sql_err)?;
    Ok(text)
}

fn sql_err(e: rusqlite::Error) -> String {
    format!("embedded store: {e}")
}

impl EmbeddedSystem {
    /// Opens (creating on first use) the database of a system; a new database is loaded from the seed.
    pub fn open(
        path: &Path,
        name: &str,
        kind: SystemKind,
        catalog: Arc<Catalog>,
        seed_path: Option<&Path>,
        integration_user: &str,
    ) -> Res<EmbeddedSystem> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create `{}`: {e}", dir.display()))?;
        }
        if !path.exists() {
            if let Some(seed) = seed_path {
                // Loaded aside and renamed into place: a stopped load leaves nothing half-done.
                let loading = path.with_extension("loading");
                for stale in [
                    &loading,
                    &loading.with_extension("loading-wal"),
                    &loading.with_extension("loading-shm"),
                ] {
                    let _ = std::fs::remove_file(stale);
                }
                let system =
                    Self::open_file(&loading, name, kind, catalog.clone(), integration_user)?;
                let loaded = seed::load(&system, seed).and_then(|()| system.checkpoint());
                drop(system);
                if let Err(e) = loaded {
                    let _ = std::fs::remove_file(&loading);
                    return Err(e);
                }
                std::fs::rename(&loading, path).map_err(|e| {
                    format!("cannot move the loaded seed into `{}`: {e}", path.display())
                })?;
            }
        }
        Self::open_file(path, name, kind, catalog, integration_user)
    }

    fn open_file(
        path: &Path,
        name: &str,
        kind: SystemKind,
        catalog: Arc<Catalog>,
        integration_user: &str,
    ) -> Res<EmbeddedSystem> {
        let conn =
            Connection::open(path).map_err(|e| format!("cannot open `{}`: {e}", path.display()))?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=10000;",
        )
        .map_err(|e| format!("`{}`: {e}", path.display()))?;
        conn.set_prepared_statement_cache_capacity(256);
        let system = EmbeddedSystem {
            name: name.into(),
            kind,
            catalog,
            conn: Mutex::new(conn),
            integration_user: integration_user.into(),
        };
        system.create_tables()?;
        Ok(system)
    }

    /// Writes the write-ahead log into the database file, so the file alone holds everything.
    fn checkpoint(&self) -> Res<()> {
        self.lock()
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode=DELETE;")
            .map_err(sql_err)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn create_tables(&self) -> Res<()> {
        let conn = self.lock();
        let mut ddl = String::from(
            "CREATE TABLE IF NOT EXISTS \"__stamp\" (last TEXT NOT NULL);\n\
             CREATE TABLE IF NOT EXISTS \"__deleted\" (tbl TEXT NOT NULL, id TEXT NOT NULL, deleted_on TEXT NOT NULL, deleted_by TEXT);\n\
             CREATE INDEX IF NOT EXISTS \"__deleted_on\" ON \"__deleted\"(tbl, deleted_on);\n",
        );
        for (tname, table) in &self.catalog.tables {
            let id = id_field(self.kind, table);
            let t = quote_ident(tname);
            let mut cols = vec![format!("{} TEXT PRIMARY KEY", quote_ident(&id))];
            for (fname, field) in &table.fields {
                if *fname != id {
                    cols.push(format!(
                        "{} {}",
                        quote_ident(fname),
                        codec::column_type(self.kind, field)
                    ));
                }
            }
            cols.push("\"__modified_on\" TEXT NOT NULL".into());
            cols.push("\"__modified_by\" TEXT".into());
            ddl.push_str(&format!(
                "CREATE TABLE IF NOT EXISTS {t} ({});\n",
                cols.join(", ")
            ));
            ddl.push_str(&format!(
                "CREATE INDEX IF NOT EXISTS {} ON {t}(\"__modified_on\", {});\n",
                quote_ident(&format!("{tname}__changes")),
                quote_ident(&id)
            ));
            // Business Central's primary key is unique, whatever the SystemId.
            if table.key.iter().all(|k| *k != id) && !table.key.is_empty() {
                let cols: Vec<String> = table.key.iter().map(|k| quote_ident(k)).collect();
                ddl.push_str(&format!(
                    "CREATE UNIQUE INDEX IF NOT EXISTS {} ON {t}({});\n",
                    quote_ident(&format!("{tname}__pk")),
                    cols.join(", ")
                ));
            }
        }
        conn.execute_batch(&ddl).map_err(sql_err)
    }

    fn table(&self, name: &str) -> Res<&Table> {
        self.catalog
            .table(name)
            .ok_or_else(|| format!("system `{}` has no table `{name}`", self.name))
    }

    fn row_to_record(&self, table: &Table, row: &rusqlite::Row<'_>, names: &[String]) -> Record {
        let id = id_field(self.kind, table);
        let mut fields = Map::new();
        let mut rec_id = String::new();
        let mut modified_on = String::new();
        let mut modified_by = None;
        for (i, col) in names.iter().enumerate() {
            let v = row
                .get_ref(i)
                .map(|r| codec::decode(self.kind, table.fields.get(col), r));
            let v = v.unwrap_or(Value::Null);
            match col.as_str() {
                "__modified_on" => modified_on = v.as_str().unwrap_or_default().to_string(),
                "__modified_by" => modified_by = v.as_str().map(str::to_string),
                _ => {
                    if *col == id {
                        rec_id = v.as_str().unwrap_or_default().to_string();
                    }
                    fields.insert(col.clone(), v);
                }
            }
        }
        Record {
            id: rec_id,
            modified_on,
            modified_by,
            fields,
        }
    }

    fn query(
        &self,
        table_name: &str,
        where_sql: &str,
        params: Vec<SqlValue>,
        tail: &str,
    ) -> Res<Vec<Record>> {
        self.query_fields(table_name, None, where_sql, params, tail)
    }

    /// As `query`, reading only `fields` (plus the id and the stamps) when given.
    fn query_fields(
        &self,
        table_name: &str,
        fields: Option<&[String]>,
        where_sql: &str,
        params: Vec<SqlValue>,
        tail: &str,
    ) -> Res<Vec<Record>> {
        let table = self.table(table_name)?;
        let columns = match fields {
            None => "*".to_string(),
            Some(fields) => {
                let id = id_field(self.kind, table);
                let mut cols = vec![
                    quote_ident(&id),
                    "\"__modified_on\"".into(),
                    "\"__modified_by\"".into(),
                ];
                cols.extend(
                    fields
                        .iter()
                        .filter(|f| **f != id && table.fields.contains_key(*f))
                        .map(|f| quote_ident(f)),
                );
                cols.join(", ")
            }
        };
        let conn = self.lock();
        let sql = format!(
            "SELECT {columns} FROM {} WHERE {where_sql} {tail}",
            quote_ident(table_name)
        );
        let mut stmt = conn.prepare_cached(&sql).map_err(sql_err)?;
        let names: Vec<String> = stmt.column_names().iter().map(|s| s.to_string()).collect();
        let rows = stmt
            .query_map(params_from_iter(params), |row| {
                Ok(self.row_to_record(table, row, &names))
            })
            .map_err(sql_err)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(sql_err)
    }

    /// All records of a table, in key order (for `coupler show`).
    pub fn list(&self, table: &str) -> Res<Vec<Record>> {
        let t = self.table(table)?;
        let id = quote_ident(&id_field(self.kind, t));
        let order: Vec<String> = t.key.iter().map(|k| quote_ident(k)).chain([id]).collect();
        self.query(
            table,
            "1",
            Vec::new(),
            &format!("ORDER BY {}", order.join(", ")),
        )
    }

    /// Creates or updates one record as `user` (not the integration user, unless said so).
    /// A record is found by its id field, else by its primary key.
    pub fn put(&self, table_name: &str, fields: Map<String, Value>, user: &str) -> Res<Record> {
        self.put_as(table_name, fields, user, false)
    }

    /// As [`put`](Self::put); `trusted` writes read-only fields too (seeds are the system's own data).
    pub fn put_as(
        &self,
        table_name: &str,
        fields: Map<String, Value>,
        user: &str,
        trusted: bool,
    ) -> Res<Record> {
        let table = self.table(table_name)?;
        let id_name = id_field(self.kind, table);
        let mut existing: Option<String> = fields
            .get(&id_name)
            .and_then(Value::as_str)
            .map(|s| s.to_lowercase());
        if existing.is_none()
            && table.key.iter().all(|k| fields.contains_key(k))
            && !table.key.is_empty()
        {
            let mut params = Vec::new();
            let mut conds = Vec::new();
            for k in &table.key {
                let f = &table.fields[k];
                let v = normalize(k, f, &fields[k])?;
                params.push(codec::encode(self.kind, f, &v));
                conds.push(format!("{} = ?{}", quote_ident(k), params.len()));
            }
            existing = self
                .query(table_name, &conds.join(" AND "), params, "")?
                .first()
                .map(|r| r.id.clone());
        } else if let Some(id) = &existing {
            if self
                .read_ids(table_name, std::slice::from_ref(id))?
                .is_empty()
            {
                // An explicit new id: create with it.
                let op = WriteOp::Create {
                    id: id.clone(),
                    fields,
                };
                return self
                    .apply_as(table_name, vec![op], user, trusted)?
                    .remove(0);
            }
        }
        let op = match existing {
            Some(id) => WriteOp::Update { id, fields },
            None => WriteOp::Create {
                id: new_guid(),
                fields,
            },
        };
        self.apply_as(table_name, vec![op], user, trusted)?
            .remove(0)
    }

    fn read_ids(&self, table: &str, ids: &[String]) -> Res<Vec<Record>> {
        let t = self.table(table)?;
        let id = quote_ident(&id_field(self.kind, t));
        let mut out = Vec::new();
        for chunk in ids.chunks(500) {
            let slots: Vec<String> = (1..=chunk.len()).map(|i| format!("?{i}")).collect();
            let params = chunk
                .iter()
                .map(|s| SqlValue::Text(s.to_lowercase()))
                .collect();
            out.extend(self.query(
                table,
                &format!("{id} IN ({})", slots.join(", ")),
                params,
                "",
            )?);
        }
        Ok(out)
    }

    /// Validates fields as the real system would: known, writable, of the right type and length.
    fn validate(
        &self,
        table: &Table,
        fields: &Map<String, Value>,
        id_name: &str,
        trusted: bool,
    ) -> Res<Map<String, Value>> {
        let mut out = Map::new();
        for (name, value) in fields {
            let field = table
                .fields
                .get(name)
                .ok_or_else(|| format!("`{name}` is not a field of this table"))?;
            if name == id_name {
                continue;
            }
            if field.read_only && !trusted && Some(name) != table.modified_on.as_ref() {
                return Err(format!("field `{name}` is read-only"));
            }
            out.insert(name.clone(), normalize(name, field, value)?);
        }
        Ok(out)
    }

    /// A number from the table's number series for a missing Business Central primary key.
    fn next_number(
        conn: &Connection,
        table_name: &str,
        key: &str,
        len: Option<u32>,
    ) -> Res<String> {
        let prefix: String = table_name
            .chars()
            .filter(|c| c.is_ascii_alphabetic())
            .take(4)
            .collect::<String>()
            .to_uppercase();
        let n: i64 = conn
            .one(
                &format!("SELECT COUNT(*) FROM {}", quote_ident(table_name)),
                [],
                |r| r.get(0),
            )
            .map_err(sql_err)?;
        let width = len
            .map(|l| (l as usize).saturating_sub(prefix.len()).clamp(1, 6))
            .unwrap_or(5);
        for i in (n + 1).. {
            let candidate = format!("{prefix}{i:0width$}");
            let taken: Option<i64> = conn
                .one(
                    &format!(
                        "SELECT 1 FROM {} WHERE {} = ?1",
                        quote_ident(table_name),
                        quote_ident(key)
                    ),
                    [&candidate],
                    |r| r.get(0),
                )
                .optional()
                .map_err(sql_err)?;
            if taken.is_none() {
                return Ok(candidate);
            }
        }
        unreachable!("an unbounded range always yields a free number")
    }

    /// Applies write operations in one transaction; each operation succeeds or fails on its own.
    pub fn apply(&self, table_name: &str, ops: Vec<WriteOp>, user: &str) -> Res<Vec<WriteResult>> {
        self.apply_as(table_name, ops, user, false)
    }

    fn apply_as(
        &self,
        table_name: &str,
        ops: Vec<WriteOp>,
        user: &str,
        trusted: bool,
    ) -> Res<Vec<WriteResult>> {
        let table = self.table(table_name)?.clone();
        let id_name = id_field(self.kind, &table);
        let mut conn = self.lock();
        // The write lock first, then the stamp: transactions commit in stamp order, and each
        // has its own stamp, so a reader that saw a stamp has seen every record written with it.
        let mut tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(sql_err)?;
        let stamp = next_stamp(&tx)?;
        let mut results = Vec::with_capacity(ops.len());
        let mut written: Vec<Option<(String, Map<String, Value>)>> = Vec::with_capacity(ops.len());
        let op_ids: Vec<String> = ops.iter().map(|o| o.id().to_lowercase()).collect();
        for op in ops {
            // A failed record leaves no trace and the batch goes on: one statement undoes itself
            // when it fails; writes of several statements get a savepoint.
            let several = matches!(op, WriteOp::Delete { .. })
                || (self.kind == SystemKind::Dataverse && table_name == "uomschedule");
            let outcome = if several {
                let sp = tx.savepoint().map_err(sql_err)?;
                let r = self.apply_one(
                    &sp, &table, table_name, &id_name, &op, &stamp, user, trusted,
                );
                if r.is_ok() {
                    sp.commit().map_err(sql_err)?;
                }
                r
            } else {
                self.apply_one(
                    &tx, &table, table_name, &id_name, &op, &stamp, user, trusted,
                )
            };
            match outcome {
                Ok(w) => {
                    written.push(w);
                    results.push(Ok(()));
                }
                Err(e) => {
                    written.push(None);
                    results.push(Err(e));
                }
            }
        }
        tx.commit().map_err(sql_err)?;
        drop(conn);
        // The record as written: stamps and the values stored (an update returns what changed).
        Ok(results
            .into_iter()
            .zip(written)
            .zip(op_ids)
            .map(|((r, w), op_id)| {
                r?;
                let (id, fields) = w.unwrap_or((op_id, Map::new()));
                Ok(Record {
                    id,
                    modified_on: stamp.clone(),
                    modified_by: Some(user.to_string()),
                    fields,
                })
            })
            .collect())
    }

    /// What the real system fills in on create: Business Central options start at their first
    /// value (ordinal 0), Dataverse records are created active.
    fn defaults(&self, table: &Table, values: &mut Map<String, Value>) {
        for (name, field) in &table.fields {
            if values.get(name).is_some_and(|v| !v.is_null()) || field.read_only {
                continue;
            }
            // Yes/no fields start as no, on both systems; Business Central numbers start at 0.
            match (field.ty, self.kind) {
                (FieldType::Boolean, _) => {
                    values.insert(name.clone(), Value::Bool(false));
                    continue;
                }
                (
                    FieldType::Integer | FieldType::Bigint | FieldType::Decimal,
                    SystemKind::BusinessCentral,
                ) => {
                    values.insert(name.clone(), Value::from(0));
                    continue;
                }
                (FieldType::Option, _) => {}
                _ => continue,
            }
            let applies = match self.kind {
                SystemKind::BusinessCentral => true,
                SystemKind::Dataverse => name == "statecode",
            };
            let zero = field
                .options
                .as_ref()
                .and_then(|o| o.iter().find(|(_, v)| **v == 0).map(|(l, _)| l.clone()));
            if let (true, Some(label)) = (applies, zero) {
                values.insert(name.clone(), Value::String(label));
            }
        }
    }

    /// What the real system does on its own after a create: Dataverse gives a new unit group
    /// its base unit, named by `baseuomname`.
    fn after_create(
        &self,
        tx: &Connection,
        table_name: &str,
        id: &str,
        values: &Map<String, Value>,
        stamp: &str,
        user: &str,
    ) -> Res<()> {
        if self.kind != SystemKind::Dataverse || table_name != "uomschedule" {
            return Ok(());
        }
        let Some(uom) = self.catalog.table("uom") else {
            return Ok(());
        };
        let base = values
            .get("baseuomname")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if base.is_empty() {
            return Err(
                "a unit group needs `baseuomname`: Dataverse creates its base unit from it".into(),
            );
        }
        let mut unit = Map::new();
        unit.insert("name".into(), Value::String(base.to_string()));
        unit.insert("uomscheduleid".into(), Value::String(id.to_string()));
        unit.insert("quantity".into(), Value::from(1));
        unit.insert("isschedulebaseuom".into(), Value::Bool(true));
        let unit_id = new_guid();
        let op = WriteOp::Create {
            id: unit_id.clone(),
            fields: unit,
        };
        let uom_id = id_field(self.kind, uom);
        self.apply_one(tx, &uom.clone(), "uom", &uom_id, &op, stamp, user, true)?;
        // The base unit is its own base.
        tx.exec(
            "UPDATE \"uom\" SET \"baseuom\" = ?1 WHERE \"uomid\" = ?1",
            [&unit_id],
        )
        .map_err(sql_err)?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn apply_one(
        &self,
        tx: &Connection,
        table: &Table,
        table_name: &str,
        id_name: &str,
        op: &WriteOp,
        stamp: &str,
        user: &str,
        trusted: bool,
    ) -> Res<Option<(String, Map<String, Value>)>> {
        let t = quote_ident(table_name);
        let id = op.id().to_lowercase();
        match op {
            WriteOp::Delete { .. } => {
                let n = tx
                    .execute(
                        &format!("DELETE FROM {t} WHERE {} = ?1", quote_ident(id_name)),
                        [&id],
                    )
                    .map_err(sql_err)?;
                if n == 0 {
                    return Err(format!("no record `{id}` in `{table_name}`"));
                }
                tx.exec(
                    "INSERT INTO \"__deleted\" (tbl, id, deleted_on, deleted_by) VALUES (?1, ?2, ?3, ?4)",
                    [table_name, &id, stamp, user],
                )
                .map_err(sql_err)?;
                Ok(None)
            }
            WriteOp::Create { fields, .. } | WriteOp::Update { fields, .. } => {
                let create = matches!(op, WriteOp::Create { .. });
                let mut values = self.validate(table, fields, id_name, trusted)?;
                if let Some(m) = &table.modified_on {
                    values.insert(m.clone(), Value::String(stamp.to_string()));
                }
                if let Some(m) = &table.modified_by {
                    if table
                        .fields
                        .get(m)
                        .is_some_and(|f| matches!(f.ty, FieldType::Text | FieldType::Code))
                    {
                        values.insert(m.clone(), Value::String(user.to_string()));
                    }
                }
                if create {
                    self.defaults(table, &mut values);
                    for k in &table.key {
                        if k == id_name {
                            continue;
                        }
                        let missing = values
                            .get(k)
                            .is_none_or(|v| v.is_null() || v.as_str() == Some(""));
                        if missing {
                            let f = &table.fields[k];
                            // The number series fills the key's last field (a document's
                            // "No."); other blank parts of a composite key stay blank.
                            if matches!(f.ty, FieldType::Code | FieldType::Text)
                                && table.key.last() == Some(k)
                            {
                                values.insert(
                                    k.clone(),
                                    Value::String(Self::next_number(tx, table_name, k, f.length)?),
                                );
                            } else if matches!(f.ty, FieldType::Code | FieldType::Text) {
                                // A blank part of a composite key is a value in Business Central.
                                values.insert(k.clone(), Value::String(String::new()));
                            } else {
                                return Err(format!("primary key field `{k}` needs a value"));
                            }
                        }
                    }
                }
                let mut cols = Vec::new();
                let mut params: Vec<SqlValue> = Vec::new();
                for (name, v) in &values {
                    cols.push(quote_ident(name));
                    params.push(codec::encode(self.kind, &table.fields[name], v));
                }
                params.push(SqlValue::Text(stamp.to_string()));
                params.push(SqlValue::Text(user.to_string()));
                if create {
                    cols.push("\"__modified_on\"".into());
                    cols.push("\"__modified_by\"".into());
                    cols.push(quote_ident(id_name));
                    params.push(SqlValue::Text(id.clone()));
                    let slots: Vec<String> = (1..=params.len()).map(|i| format!("?{i}")).collect();
                    tx.exec(
                        &format!(
                            "INSERT INTO {t} ({}) VALUES ({})",
                            cols.join(", "),
                            slots.join(", ")
                        ),
                        params_from_iter(params),
                    )
                    .map_err(|e| match e {
                        rusqlite::Error::SqliteFailure(f, _)
                            if f.code == rusqlite::ErrorCode::ConstraintViolation =>
                        {
                            format!("a record with the same key already exists in `{table_name}`")
                        }
                        other => sql_err(other),
                    })?;
                } else {
                    let mut sets: Vec<String> = cols
                        .iter()
                        .enumerate()
                        .map(|(i, c)| format!("{c} = ?{}", i + 1))
                        .collect();
                    sets.push(format!("\"__modified_on\" = ?{}", cols.len() + 1));
                    sets.push(format!("\"__modified_by\" = ?{}", cols.len() + 2));
                    params.push(SqlValue::Text(id.clone()));
                    let n = tx
                        .execute(
                            &format!(
                                "UPDATE {t} SET {} WHERE {} = ?{}",
                                sets.join(", "),
                                quote_ident(id_name),
                                params.len()
                            ),
                            params_from_iter(params),
                        )
                        .map_err(sql_err)?;
                    if n == 0 {
                        return Err(format!("no record `{id}` in `{table_name}` (deleted?)"));
                    }
                }
                if create {
                    values.insert(id_name.to_string(), Value::String(id.clone()));
                    self.after_create(tx, table_name, &id, &values, stamp, user)?;
                }
                Ok(Some((id, values)))
            }
        }
    }
}

#[async_trait]
impl Connector for EmbeddedSystem {
    fn integration_user(&self) -> &str {
        &self.integration_user
    }

    async fn read_changes(
        &self,
        q: &ChangeQuery<'_>,
        after: Option<&Cursor>,
    ) -> Result<Page, ConnectorError> {
        let table = self.table(q.table).map_err(ConnectorError::new)?;
        let id = quote_ident(&id_field(self.kind, table));
        let mut params = Vec::new();
        let mut conds = Vec::new();
        if let Some(f) = q.filter {
            conds.push(format!("({})", sql::where_sql(f, self.kind, &mut params)));
        }
        if let Some(c) = after.or(q.since) {
            params.push(SqlValue::Text(c.modified_on.clone()));
            let a = params.len();
            params.push(SqlValue::Text(c.id.clone()));
            let b = params.len();
            conds.push(format!(
                "(\"__modified_on\" > ?{a} OR (\"__modified_on\" = ?{a} AND {id} > ?{b}))"
            ));
        }
        if let Some(user) = q.exclude_modified_by {
            params.push(SqlValue::Text(user.to_string()));
            conds.push(format!("\"__modified_by\" IS NOT ?{}", params.len()));
        }
        let where_sql = if conds.is_empty() {
            "1".to_string()
        } else {
            conds.join(" AND ")
        };
        let limit = q.page_size.max(1);
        let records = self
            .query_fields(
                q.table,
                q.fields,
                &where_sql,
                params,
                &format!("ORDER BY \"__modified_on\", {id} LIMIT {limit}"),
            )
            .map_err(ConnectorError::new)?;
        let next = (records.len() == limit)
            .then(|| records.last().map(Record::cursor))
            .flatten();
        Ok(Page { records, next })
    }

    async fn read_by_ids(
        &self,
        table: &str,
        ids: &[String],
    ) -> Result<Vec<Record>, ConnectorError> {
        self.read_ids(table, ids).map_err(ConnectorError::new)
    }

    async fn find(
        &self,
        table: &str,
        equals: &[(String, Value)],
        ignore_case: bool,
        filter: Option<&Pred>,
    ) -> Result<Vec<Record>, ConnectorError> {
        let t = self.table(table).map_err(ConnectorError::new)?;
        let mut params = Vec::new();
        let mut conds = Vec::new();
        for (name, value) in equals {
            let Some(field) = t.fields.get(name) else {
                return Err(ConnectorError::new(format!(
                    "`{name}` is not a field of `{table}`"
                )));
            };
            if value.is_null() {
                return Ok(Vec::new());
            }
            params.push(codec::encode(self.kind, field, value));
            let collate = if ignore_case { " COLLATE NOCASE" } else { "" };
            conds.push(format!(
                "{} = ?{}{collate}",
                quote_ident(name),
                params.len()
            ));
        }
        if let Some(f) = filter {
            conds.push(format!("({})", sql::where_sql(f, self.kind, &mut params)));
        }
        self.query(table, &conds.join(" AND "), params, "LIMIT 2")
            .map_err(ConnectorError::new)
    }

    async fn read_deleted(
        &self,
        table: &str,
        since: Option<&str>,
    ) -> Result<Vec<Tombstone>, ConnectorError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached("SELECT id, deleted_on, deleted_by FROM \"__deleted\" WHERE tbl = ?1 AND deleted_on > ?2 ORDER BY deleted_on, id")
            .map_err(|e| ConnectorError::new(sql_err(e)))?;
        let rows = stmt
            .query_map([table, since.unwrap_or("")], |r| {
                Ok(Tombstone {
                    id: r.get(0)?,
                    deleted_on: r.get(1)?,
                    deleted_by: r.get(2)?,
                })
            })
            .map_err(|e| ConnectorError::new(sql_err(e)))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(|e| ConnectorError::new(sql_err(e)))
    }

    async fn count(&self, table: &str, filter: Option<&Pred>) -> Result<u64, ConnectorError> {
        self.table(table).map_err(ConnectorError::new)?;
        let mut params = Vec::new();
        let where_sql = filter
            .map(|f| sql::where_sql(f, self.kind, &mut params))
            .unwrap_or_else(|| "1".into());
        let conn = self.lock();
        conn.one(
            &format!(
                "SELECT COUNT(*) FROM {} WHERE {where_sql}",
                quote_ident(table)
            ),
            params_from_iter(params),
            |r| r.get::<_, i64>(0),
        )
        .map(|n| n as u64)
        .map_err(|e| ConnectorError::new(sql_err(e)))
    }

    async fn write(
        &self,
        table: &str,
        ops: Vec<WriteOp>,
    ) -> Result<Vec<WriteResult>, ConnectorError> {
        let user = self.integration_user.clone();
        self.apply(table, ops, &user).map_err(ConnectorError::new)
    }
}
