//! Reading records: rows decoded into [`Record`]s with their stamps.

use super::codec::{self, quote_ident};
use super::error::Res;
use super::{id_field, EmbeddedSystem};
use crate::runtime::connector::Record;
use crate::schema::Table;
use rusqlite::params_from_iter;
use rusqlite::types::Value as SqlValue;
use serde_json::{Map, Value};

impl EmbeddedSystem {
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

    pub(super) fn query(
        &self,
        table_name: &str,
        where_sql: &str,
        params: Vec<SqlValue>,
        tail: &str,
    ) -> Res<Vec<Record>> {
        self.query_fields(table_name, None, where_sql, params, tail)
    }

    /// As `query`, reading only `fields` (plus the id and the stamps) when given.
    pub(super) fn query_fields(
        &self,
        table_name: &str,
        fields: Option<&[String]>,
        where_sql: &str,
        params: Vec<SqlValue>,
        tail: &str,
    ) -> Res<Vec<Record>> {
        let table = &self.table(table_name)?;
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
        let mut stmt = conn.prepare_cached(&sql)?;
        let names: Vec<String> = stmt.column_names().iter().map(|s| s.to_string()).collect();
        let rows = stmt.query_map(params_from_iter(params), |row| {
            Ok(self.row_to_record(table, row, &names))
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// All records of a table, in key order (for `coupler show`).
    pub fn list(&self, table: &str) -> Res<Vec<Record>> {
        let t = &self.table(table)?;
        let id = quote_ident(&id_field(self.kind, t));
        let order: Vec<String> = t.key.iter().map(|k| quote_ident(k)).chain([id]).collect();
        self.query(
            table,
            "1",
            Vec::new(),
            &format!("ORDER BY {}", order.join(", ")),
        )
    }

    /// The records with these ids (any case), in chunks SQLite's parameter limit allows.
    pub(super) fn read_ids(&self, table: &str, ids: &[String]) -> Res<Vec<Record>> {
        let t = &self.table(table)?;
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
}
