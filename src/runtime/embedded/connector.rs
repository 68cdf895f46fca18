//! The embedded system as a [`Connector`]: change pages, lookups, counts and tombstones in SQL.
//! Errors cross the trait boundary as text, as every connector's do.

use super::codec::{self, quote_ident};
use super::error::Res;
use super::{id_field, sql, EmbeddedError, EmbeddedSystem};
use crate::plan::filter::Pred;
use crate::runtime::connector::*;
use crate::runtime::sql::Cached;
use async_trait::async_trait;
use rusqlite::params_from_iter;
use rusqlite::types::Value as SqlValue;
use serde_json::Value;

fn boundary(e: EmbeddedError) -> ConnectorError {
    ConnectorError::new(e.to_string())
}

impl EmbeddedSystem {
    fn changes(&self, q: &ChangeQuery<'_>, after: Option<&Cursor>) -> Res<Page> {
        let table = &self.table(q.table)?;
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
        let records = self.query_fields(
            q.table,
            q.fields,
            &where_sql,
            params,
            &format!("ORDER BY \"__modified_on\", {id} LIMIT {limit}"),
        )?;
        let next = (records.len() == limit)
            .then(|| records.last().map(Record::cursor))
            .flatten();
        Ok(Page {
            records,
            next,
            position: None,
        })
    }

    fn find_records(
        &self,
        table: &str,
        equals: &[(String, Value)],
        ignore_case: bool,
        filter: Option<&Pred>,
    ) -> Res<Vec<Record>> {
        let t = &self.table(table)?;
        let mut params = Vec::new();
        let mut conds = Vec::new();
        for (name, value) in equals {
            let Some(field) = t.fields.get(name) else {
                return Err(EmbeddedError::UnknownFieldOf {
                    field: name.clone(),
                    table: table.to_string(),
                });
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
        // No condition at all: any record (a one-row table such as the organization).
        if conds.is_empty() {
            conds.push("1 = 1".into());
        }
        self.query(table, &conds.join(" AND "), params, "LIMIT 2")
    }

    fn tombstones(&self, table: &str, since: Option<&str>) -> Res<Vec<Tombstone>> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT id, deleted_on, deleted_by FROM \"__deleted\" WHERE tbl = ?1 AND deleted_on > ?2 ORDER BY deleted_on, id",
        )?;
        let rows = stmt.query_map([table, since.unwrap_or("")], |r| {
            Ok(Tombstone {
                id: r.get(0)?,
                deleted_on: r.get(1)?,
                deleted_by: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    fn count_records(&self, table: &str, filter: Option<&Pred>) -> Res<u64> {
        self.table(table)?;
        let mut params = Vec::new();
        let where_sql = filter
            .map(|f| sql::where_sql(f, self.kind, &mut params))
            .unwrap_or_else(|| "1".into());
        let conn = self.lock();
        let n = conn.one(
            &format!(
                "SELECT COUNT(*) FROM {} WHERE {where_sql}",
                quote_ident(table)
            ),
            params_from_iter(params),
            |r| r.get::<_, i64>(0),
        )?;
        Ok(n as u64)
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
        self.changes(q, after).map_err(boundary)
    }

    async fn read_by_ids(
        &self,
        table: &str,
        ids: &[String],
    ) -> Result<Vec<Record>, ConnectorError> {
        self.read_ids(table, ids).map_err(boundary)
    }

    async fn find(
        &self,
        table: &str,
        equals: &[(String, Value)],
        ignore_case: bool,
        filter: Option<&Pred>,
    ) -> Result<Vec<Record>, ConnectorError> {
        self.find_records(table, equals, ignore_case, filter)
            .map_err(boundary)
    }

    async fn read_deleted(
        &self,
        table: &str,
        since: Option<&str>,
    ) -> Result<Vec<Tombstone>, ConnectorError> {
        self.tombstones(table, since).map_err(boundary)
    }

    async fn count(&self, table: &str, filter: Option<&Pred>) -> Result<u64, ConnectorError> {
        self.count_records(table, filter).map_err(boundary)
    }

    async fn write(
        &self,
        table: &str,
        ops: Vec<WriteOp>,
    ) -> Result<Vec<WriteResult>, ConnectorError> {
        let user = self.integration_user.clone();
        let results = self.apply(table, ops, &user).map_err(boundary)?;
        Ok(results.into_iter().map(|r| r.map_err(boundary)).collect())
    }

    async fn added_options(
        &self,
        table: &str,
        field: &str,
    ) -> Result<Vec<(String, i64)>, ConnectorError> {
        Ok(self.added_option_values(table, field))
    }

    async fn insert_option_value(
        &self,
        table: &str,
        field: &str,
        label: &str,
        value: Option<i64>,
    ) -> Result<i64, ConnectorError> {
        self.insert_option(table, field, label, value)
            .map_err(boundary)
    }
}
