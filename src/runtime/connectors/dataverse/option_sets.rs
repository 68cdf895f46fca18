//! Option sets through the Metadata API: the values a column has beyond the catalog's (read from
//! the attribute's `OptionSet`), and the `InsertOptionValue` action that adds one. Web API
//! reference (MicrosoftDocs/powerapps-docs, "InsertOptionValue Action"): POST
//! `[Organization URI]/api/data/v9.2/InsertOptionValue` with `EntityLogicalName`,
//! `AttributeLogicalName`, `Label` (`LocalizedLabels`) and an optional `Value`; the answer is an
//! `InsertOptionValueResponse` whose `NewOptionValue` is the value given to the option.

use super::Dataverse;
use crate::runtime::connector::ConnectorError;
use crate::schema::Table;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Mutex;

/// The language of the labels coupler writes (English, as the catalog's labels are).
const LANGUAGE: i64 = 1033;

/// Option values by (table, field): (label, value).
type Sets = HashMap<(String, String), Vec<(String, i64)>>;

/// Values beyond the catalog's.
#[derive(Default)]
pub(super) struct Added(Mutex<Sets>);

impl Added {
    fn lock(&self) -> std::sync::MutexGuard<'_, Sets> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `table` with the added values in its option fields.
    pub(super) fn merged(&self, name: &str, table: &Table) -> Table {
        let mut table = table.clone();
        for ((t, f), values) in self.lock().iter() {
            if let (true, Some(field)) = (t == name, table.fields.get_mut(f)) {
                let options = field.options.get_or_insert_with(Default::default);
                for (l, v) in values {
                    options.insert(l.clone(), *v);
                }
            }
        }
        table
    }

    fn add(&self, table: &str, field: &str, label: &str, value: i64) {
        let mut all = self.lock();
        let known = all.entry((table.into(), field.into())).or_default();
        if !known.iter().any(|(l, v)| l == label && *v == value) {
            known.push((label.into(), value));
        }
    }
}

/// A label's text: the user's localized label, else the first localized one.
fn label_text(label: &Value) -> Option<&str> {
    label
        .pointer("/UserLocalizedLabel/Label")
        .or_else(|| label.pointer("/LocalizedLabels/0/Label"))
        .and_then(Value::as_str)
}

impl Dataverse {
    /// Reads the column's option set and keeps the values the catalog does not list.
    pub(super) async fn read_added_options(
        &self,
        table: &str,
        field: &str,
    ) -> Result<Vec<(String, i64)>, ConnectorError> {
        let path = format!(
            "EntityDefinitions(LogicalName='{table}')/Attributes(LogicalName='{field}')/Microsoft.Dynamics.CRM.PicklistAttributeMetadata"
        );
        let params = [
            ("$select", "LogicalName".to_string()),
            ("$expand", "OptionSet($select=Options)".to_string()),
        ];
        let url = self.client.url(&path, &params)?;
        let json = self.client.get_json(url, &[]).await?.0;
        let catalog = self
            .catalog
            .table(table)
            .and_then(|t| t.fields.get(field))
            .cloned();
        let known = |label: &str| {
            catalog
                .as_ref()
                .is_some_and(|f| f.option_label(label).is_some())
        };
        let options = json
            .pointer("/OptionSet/Options")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut out = Vec::new();
        for o in &options {
            let (Some(value), Some(label)) = (
                o.get("Value").and_then(Value::as_i64),
                o.get("Label").and_then(label_text),
            ) else {
                continue;
            };
            if !known(label) {
                self.added_options.add(table, field, label, value);
                out.push((label.to_string(), value));
            }
        }
        Ok(out)
    }

    /// `InsertOptionValue`: adds `label` to the column's option set; answers the new value.
    pub(super) async fn insert_option(
        &self,
        table: &str,
        field: &str,
        label: &str,
        value: Option<i64>,
    ) -> Result<i64, ConnectorError> {
        let mut body = json!({
            "EntityLogicalName": table,
            "AttributeLogicalName": field,
            "Label": { "LocalizedLabels": [{ "Label": label, "LanguageCode": LANGUAGE }] },
        });
        if let Some(v) = value {
            body["Value"] = json!(v);
        }
        let url = self.client.url("InsertOptionValue", &[])?;
        let req = self.client.req(Method::POST, url).json(&body);
        let resp = self.client.send(&req).await?;
        if !resp.ok() {
            return Err(self.client.named(resp.failure("POST InsertOptionValue")));
        }
        let answer = resp.json().map_err(|e| self.client.named(e))?;
        let new = answer
            .get("NewOptionValue")
            .and_then(Value::as_i64)
            .ok_or_else(|| {
                self.client
                    .err("InsertOptionValue answered without a NewOptionValue")
            })?;
        self.added_options.add(table, field, label, new);
        Ok(new)
    }
}
