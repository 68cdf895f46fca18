//! Writing records: one transaction per batch, one stamp per transaction, each operation
//! succeeding or failing on its own.

use super::codec::{self, quote_ident};
use super::error::Res;
use super::{id_field, EmbeddedError, EmbeddedSystem};
use crate::runtime::connector::{Record, WriteOp};
use crate::runtime::sql::Cached;
use crate::runtime::values::{new_guid, normalize};
use crate::schema::{FieldType, SystemKind, Table};
use rusqlite::types::Value as SqlValue;
use rusqlite::{params_from_iter, Connection, OptionalExtension};
use serde_json::{Map, Value};

/// One batch of writes to one table: what every operation in it shares.
pub(super) struct Batch<'a> {
    pub table: &'a Table,
    pub table_name: &'a str,
    pub id_name: &'a str,
    pub stamp: &'a str,
    pub user: &'a str,
    /// Read-only fields may be written (seeds, and what the system does on its own).
    pub trusted: bool,
}

/// The id and the values stored by a create or update (a delete stores nothing).
type Written = Option<(String, Map<String, Value>)>;

/// A stamp later than any this database gave before (at least a millisecond), inside the
/// write transaction.
fn next_stamp(tx: &Connection) -> Res<String> {
    let last: Option<String> = tx
        .one("SELECT last FROM \"__stamp\"", [], |r| r.get(0))
        .optional()?;
    let now = chrono::Utc::now();
    let stamp = match last.and_then(|l| chrono::DateTime::parse_from_rfc3339(&l).ok()) {
        Some(l) if l.with_timezone(&chrono::Utc) >= now => {
            l.with_timezone(&chrono::Utc) + chrono::Duration::milliseconds(1)
        }
        _ => now,
    };
    let text = crate::runtime::values::stamp(stamp);
    tx.exec("DELETE FROM \"__stamp\"", [])?;
    tx.exec("INSERT INTO \"__stamp\" (last) VALUES (?1)", [&text])?;
    Ok(text)
}

impl EmbeddedSystem {
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
        let table = &self.table(table_name)?;
        let id_name = id_field(self.kind, table);
        let mut existing: Option<String> = fields
            .get(&id_name)
            .and_then(Value::as_str)
            .map(str::to_lowercase);
        if existing.is_none()
            && table.key.iter().all(|k| fields.contains_key(k))
            && !table.key.is_empty()
        {
            existing = self.find_by_key(table_name, table, &fields)?;
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

    /// The id of the record whose primary key has the values in `fields`.
    fn find_by_key(
        &self,
        table_name: &str,
        table: &Table,
        fields: &Map<String, Value>,
    ) -> Res<Option<String>> {
        let mut params = Vec::new();
        let mut conds = Vec::new();
        for k in &table.key {
            let f = &table.fields[k];
            let v = normalize(k, f, &fields[k])?;
            params.push(codec::encode(self.kind, f, &v));
            conds.push(format!("{} = ?{}", quote_ident(k), params.len()));
        }
        Ok(self
            .query(table_name, &conds.join(" AND "), params, "")?
            .first()
            .map(|r| r.id.clone()))
    }

    /// Applies write operations in one transaction; each operation succeeds or fails on its own.
    pub fn apply(&self, table_name: &str, ops: Vec<WriteOp>, user: &str) -> Res<Vec<Res<Record>>> {
        self.apply_as(table_name, ops, user, false)
    }

    fn apply_as(
        &self,
        table_name: &str,
        ops: Vec<WriteOp>,
        user: &str,
        trusted: bool,
    ) -> Res<Vec<Res<Record>>> {
        let table = self.table(table_name)?.clone();
        let id_name = id_field(self.kind, &table);
        let mut conn = self.lock();
        // The write lock first, then the stamp: transactions commit in stamp order, and each
        // has its own stamp, so a reader that saw a stamp has seen every record written with it.
        let mut tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let stamp = next_stamp(&tx)?;
        let batch = Batch {
            table: &table,
            table_name,
            id_name: &id_name,
            stamp: &stamp,
            user,
            trusted,
        };
        let mut outcomes = Vec::with_capacity(ops.len());
        let op_ids: Vec<String> = ops.iter().map(|o| o.id().to_lowercase()).collect();
        for op in ops {
            // A failed record leaves no trace and the batch goes on: one statement undoes itself
            // when it fails; writes of several statements get a savepoint.
            let several = matches!(op, WriteOp::Delete { .. })
                || (self.kind == SystemKind::Dataverse && table_name == "uomschedule");
            let outcome = if several {
                let sp = tx.savepoint()?;
                let r = self.apply_one(&sp, &batch, &op);
                if r.is_ok() {
                    sp.commit()?;
                }
                r
            } else {
                self.apply_one(&tx, &batch, &op)
            };
            outcomes.push(outcome);
        }
        tx.commit()?;
        drop(conn);
        // The record as written: stamps and the values stored (an update returns what changed).
        Ok(outcomes
            .into_iter()
            .zip(op_ids)
            .map(|(w, op_id)| {
                let (id, fields) = w?.unwrap_or((op_id, Map::new()));
                Ok(Record {
                    id,
                    modified_on: stamp.clone(),
                    modified_by: Some(user.to_string()),
                    fields,
                })
            })
            .collect())
    }

    pub(super) fn apply_one(&self, tx: &Connection, b: &Batch<'_>, op: &WriteOp) -> Res<Written> {
        let id = op.id().to_lowercase();
        match op {
            WriteOp::Delete { .. } => delete_one(tx, b, &id).map(|()| None),
            WriteOp::Create { fields, .. } => self.create_one(tx, b, id, fields).map(Some),
            WriteOp::Update { fields, .. } => self.update_one(tx, b, id, fields).map(Some),
        }
    }

    fn create_one(
        &self,
        tx: &Connection,
        b: &Batch<'_>,
        id: String,
        fields: &Map<String, Value>,
    ) -> Res<(String, Map<String, Value>)> {
        let mut values = self.stamped(b, fields)?;
        self.check_currency_code(b, &values)?;
        self.defaults(b.table, &mut values);
        fill_keys(tx, b, &mut values)?;
        let (mut cols, mut params) = self.columns(b, &values);
        cols.push("\"__modified_on\"".into());
        cols.push("\"__modified_by\"".into());
        cols.push(quote_ident(b.id_name));
        params.push(SqlValue::Text(id.clone()));
        let slots: Vec<String> = (1..=params.len()).map(|i| format!("?{i}")).collect();
        tx.exec(
            &format!(
                "INSERT INTO {} ({}) VALUES ({})",
                quote_ident(b.table_name),
                cols.join(", "),
                slots.join(", ")
            ),
            params_from_iter(params),
        )
        .map_err(|e| match e {
            rusqlite::Error::SqliteFailure(f, _)
                if f.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                EmbeddedError::DuplicateKey(b.table_name.to_string())
            }
            other => other.into(),
        })?;
        values.insert(b.id_name.to_string(), Value::String(id.clone()));
        self.after_create(tx, b, &id, &values)?;
        Ok((id, values))
    }

    fn update_one(
        &self,
        tx: &Connection,
        b: &Batch<'_>,
        id: String,
        fields: &Map<String, Value>,
    ) -> Res<(String, Map<String, Value>)> {
        let values = self.stamped(b, fields)?;
        let (cols, mut params) = self.columns(b, &values);
        let mut sets: Vec<String> = cols
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c} = ?{}", i + 1))
            .collect();
        sets.push(format!("\"__modified_on\" = ?{}", cols.len() + 1));
        sets.push(format!("\"__modified_by\" = ?{}", cols.len() + 2));
        params.push(SqlValue::Text(id.clone()));
        let n = tx.execute(
            &format!(
                "UPDATE {} SET {} WHERE {} = ?{}",
                quote_ident(b.table_name),
                sets.join(", "),
                quote_ident(b.id_name),
                params.len()
            ),
            params_from_iter(params),
        )?;
        if n == 0 {
            return Err(EmbeddedError::NoRecordToUpdate {
                id,
                table: b.table_name.to_string(),
            });
        }
        Ok((id, values))
    }

    /// The validated values, with the table's own modified-on and modified-by fields stamped.
    fn stamped(&self, b: &Batch<'_>, fields: &Map<String, Value>) -> Res<Map<String, Value>> {
        let table = b.table;
        let mut values = self.validate(table, fields, b.id_name, b.trusted)?;
        if let Some(m) = &table.modified_on {
            values.insert(m.clone(), Value::String(b.stamp.to_string()));
        }
        if let Some(m) = &table.modified_by {
            if table.fields.get(m).is_some_and(|f| is_text(f.ty)) {
                values.insert(m.clone(), Value::String(b.user.to_string()));
            }
        }
        Ok(values)
    }

    /// The quoted columns of `values` and their parameters, followed by the stamp and the user.
    fn columns(&self, b: &Batch<'_>, values: &Map<String, Value>) -> (Vec<String>, Vec<SqlValue>) {
        let mut cols = Vec::new();
        let mut params: Vec<SqlValue> = Vec::new();
        for (name, v) in values {
            cols.push(quote_ident(name));
            params.push(codec::encode(self.kind, &b.table.fields[name], v));
        }
        params.push(SqlValue::Text(b.stamp.to_string()));
        params.push(SqlValue::Text(b.user.to_string()));
        (cols, params)
    }
}

/// Deletes a record and keeps its tombstone.
fn delete_one(tx: &Connection, b: &Batch<'_>, id: &str) -> Res<()> {
    let n = tx.execute(
        &format!(
            "DELETE FROM {} WHERE {} = ?1",
            quote_ident(b.table_name),
            quote_ident(b.id_name)
        ),
        [id],
    )?;
    if n == 0 {
        return Err(EmbeddedError::NoRecord {
            id: id.to_string(),
            table: b.table_name.to_string(),
        });
    }
    tx.exec(
        "INSERT INTO \"__deleted\" (tbl, id, deleted_on, deleted_by) VALUES (?1, ?2, ?3, ?4)",
        [b.table_name, id, b.stamp, b.user],
    )?;
    Ok(())
}

/// Fills the blank primary key fields of a new record, as Business Central does.
fn fill_keys(tx: &Connection, b: &Batch<'_>, values: &mut Map<String, Value>) -> Res<()> {
    let table = b.table;
    for k in &table.key {
        if k == b.id_name {
            continue;
        }
        let missing = values
            .get(k)
            .is_none_or(|v| v.is_null() || v.as_str() == Some(""));
        if !missing {
            continue;
        }
        let f = &table.fields[k];
        if !is_text(f.ty) {
            return Err(EmbeddedError::KeyNeedsValue(k.clone()));
        }
        // The number series fills the key's last field (a document's "No."); other blank
        // parts of a composite key stay blank, which is a value in Business Central.
        let value = if table.key.last() == Some(k) {
            EmbeddedSystem::next_number(tx, b.table_name, k, f.length)?
        } else {
            String::new()
        };
        values.insert(k.clone(), Value::String(value));
    }
    Ok(())
}

fn is_text(ty: FieldType) -> bool {
    matches!(ty, FieldType::Text | FieldType::Code)
}
