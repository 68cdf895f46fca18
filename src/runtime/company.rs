//! A company-scoped Dataverse endpoint: several Business Central companies share one Dataverse
//! environment, each seeing its own records and those of no company, as Business Central does
//! (microsoft/BCApps c3414ede3ec7bab5a928f312c1208dbd0f8e39a7, src/Layers/W1/BaseApp/
//! Integration/Dataverse/CDSSetupDefaults.Codeunit.al: the integration table filters add
//! `CompanyId = <this company>|<empty>`; CDSIntegrationImpl.Codeunit.al `SetCompanyId`, called
//! by CDSIntTableSubscriber.Codeunit.al before a record is inserted or modified in Dataverse,
//! and after a Business Central record was created from a Dataverse one of no company).
//!
//! Every connector call of a scoped entity goes through here: reads get the company filter
//! (pushed down like a `where`), records of another company are never handed to the engine
//! (so never updated), and every create and update carries this company.

use super::connector::{
    ChangeQuery, Connector, ConnectorError, Cursor, Page, Record, Res, Tombstone, WriteOp,
    WriteResult,
};
use crate::plan::filter::{self, Pred};
use async_trait::async_trait;
use serde_json::{Map, Value};
use std::collections::HashSet;
use std::sync::Arc;

pub struct CompanyScoped {
    inner: Arc<dyn Connector>,
    column: String,
    /// This company's id, lower-case.
    company: String,
    /// The entities that carry the column and are not shared (`except`).
    scoped: HashSet<String>,
    filter: Pred,
}

impl CompanyScoped {
    pub fn new(
        inner: Arc<dyn Connector>,
        column: &str,
        company: &str,
        scoped: HashSet<String>,
    ) -> CompanyScoped {
        let company = company
            .trim_matches(|c| c == '{' || c == '}')
            .to_lowercase();
        CompanyScoped {
            inner,
            filter: filter::company(column, &company),
            column: column.to_string(),
            company,
            scoped,
        }
    }

    fn scoped(&self, table: &str) -> bool {
        self.scoped.contains(table)
    }

    fn with_scope(&self, table: &str, f: Option<&Pred>) -> Option<Pred> {
        if self.scoped(table) {
            Some(filter::both(f, self.filter.clone()))
        } else {
            f.cloned()
        }
    }

    /// Whether a record read belongs to this company or to none.
    fn ours(&self, r: &Record) -> bool {
        match r.get(&self.column) {
            Value::Null => true,
            Value::String(s) if s.is_empty() => true,
            Value::String(s) => s.eq_ignore_ascii_case(&self.company),
            _ => false,
        }
    }

    fn stamp(&self, fields: &mut Map<String, Value>) {
        fields.insert(self.column.clone(), Value::String(self.company.clone()));
    }
}

#[async_trait]
impl Connector for CompanyScoped {
    fn integration_user(&self) -> &str {
        self.inner.integration_user()
    }

    async fn read_changes(&self, q: &ChangeQuery<'_>, after: Option<&Cursor>) -> Res<Page> {
        let scoped = self.with_scope(q.table, q.filter);
        // The column is read too: `claim` stamps only the records that have no company.
        let fields = q.fields.map(|f| {
            let mut f = f.to_vec();
            if self.scoped(q.table) && !f.contains(&self.column) {
                f.push(self.column.clone());
            }
            f
        });
        let q = ChangeQuery {
            filter: scoped.as_ref(),
            fields: fields.as_deref(),
            ..q.clone()
        };
        self.inner.read_changes(&q, after).await
    }

    async fn read_by_ids(&self, table: &str, ids: &[String]) -> Res<Vec<Record>> {
        let mut records = self.inner.read_by_ids(table, ids).await?;
        if self.scoped(table) {
            records.retain(|r| self.ours(r));
        }
        Ok(records)
    }

    async fn find(
        &self,
        table: &str,
        equals: &[(String, Value)],
        ignore_case: bool,
        f: Option<&Pred>,
    ) -> Res<Vec<Record>> {
        let scoped = self.with_scope(table, f);
        self.inner
            .find(table, equals, ignore_case, scoped.as_ref())
            .await
    }

    fn deletion_position(&self, table: &str) -> Option<String> {
        self.inner.deletion_position(table)
    }

    fn writable(&self, table: &str, fields: &[String]) -> Result<(), ConnectorError> {
        self.inner.writable(table, fields)
    }

    fn keeps_create_ids(&self, table: &str) -> bool {
        self.inner.keeps_create_ids(table)
    }

    async fn read_deleted(&self, table: &str, since: Option<&str>) -> Res<Vec<Tombstone>> {
        self.inner.read_deleted(table, since).await
    }

    async fn count(&self, table: &str, f: Option<&Pred>) -> Res<u64> {
        let scoped = self.with_scope(table, f);
        self.inner.count(table, scoped.as_ref()).await
    }

    async fn write(&self, table: &str, mut ops: Vec<WriteOp>) -> Res<Vec<WriteResult>> {
        if self.scoped(table) {
            for op in &mut ops {
                match op {
                    WriteOp::Create { fields, .. } | WriteOp::Update { fields, .. } => {
                        self.stamp(fields)
                    }
                    WriteOp::Delete { .. } => {}
                }
            }
        }
        self.inner.write(table, ops).await
    }

    /// Business Central stamps a Dataverse record of no company that it created a record from
    /// (`SetCompanyIdOnCRMAccount` / `...OnCRMContact` after the insert).
    async fn claim(&self, table: &str, records: &[&Record]) -> Res<()> {
        if !self.scoped(table) {
            return Ok(());
        }
        let ops: Vec<WriteOp> = records
            .iter()
            .filter(|r| matches!(r.get(&self.column), Value::Null))
            .map(|r| {
                let mut fields = Map::new();
                self.stamp(&mut fields);
                WriteOp::Update {
                    id: r.id.clone(),
                    fields,
                }
            })
            .collect();
        if ops.is_empty() {
            return Ok(());
        }
        for result in self.inner.write(table, ops).await? {
            result?;
        }
        Ok(())
    }

    async fn added_options(&self, table: &str, field: &str) -> Res<Vec<(String, i64)>> {
        self.inner.added_options(table, field).await
    }

    async fn insert_option_value(
        &self,
        table: &str,
        field: &str,
        label: &str,
        value: Option<i64>,
    ) -> Res<i64> {
        self.inner
            .insert_option_value(table, field, label, value)
            .await
    }
}
