//! Fields the Business Central API does not expose as such.
//!
//! - A reference the API holds as the referenced record's id (`api_ref:` in the catalog): invoice
//!   lines name their invoice by `documentId` (the header's SystemId), not by "Document No.".
//!   Reads turn the id into the referenced record's code (the API property of its key, e.g.
//!   `number`), writes and matches turn the code into the id: one query per 50 distinct values,
//!   remembered for the connector's life (a posted document's number never changes).
//! - A field with no API property at all (Currency "ISO Code"): a read, filter or match that
//!   needs it fails before any request, naming the table and the field, instead of reading
//!   null.

use super::{Api, BusinessCentral};
use crate::runtime::connector::{ConnectorError, Record};
use crate::runtime::connectors::odata;
use crate::schema::Table;
use serde_json::{Map, Value};
use std::collections::HashSet;

/// The id the API uses for "no record" in an id property.
const NO_ID: &str = "00000000-0000-0000-0000-000000000000";

/// An `api_ref` field in API terms.
pub(super) struct Ref {
    /// The catalog field (`Document No.`).
    pub field: String,
    /// The property holding the referenced record's id (`documentId`).
    pub property: String,
    /// The referenced table's entity set (`salesInvoices`) and its code property (`number`).
    pub set: String,
    pub code: String,
}

impl BusinessCentral {
    /// The `api_ref` field `name` of a table in API terms; None if it is not one.
    pub(super) fn reference(&self, t: &Table, name: &str) -> Result<Option<Ref>, ConnectorError> {
        let Some(f) = t.fields.get(name) else {
            return Ok(None);
        };
        let Some(property) = &f.api_ref else {
            return Ok(None);
        };
        let target = f.lookup.first().map(String::as_str).unwrap_or_default();
        let tt = self.catalog.table(target).ok_or_else(|| {
            ConnectorError::configuration(format!(
                "`{name}`: its `lookup:` table `{target}` is not in the catalog"
            ))
        })?;
        let set = tt.api.clone().ok_or_else(|| {
            ConnectorError::configuration(format!(
                "`{name}`: table `{target}` is not exposed by the API (no `api:`)"
            ))
        })?;
        // The code is the key field the API exposes (`No.` of [Document Type, No.]).
        let code = tt
            .key
            .iter()
            .rev()
            .find_map(|k| tt.fields.get(k)?.api.clone())
            .ok_or_else(|| {
                ConnectorError::configuration(format!(
                    "`{name}`: no key field of `{target}` is exposed by the API"
                ))
            })?;
        Ok(Some(Ref {
            field: name.to_string(),
            property: property.to_string(),
            set,
            code,
        }))
    }

    /// Refuses, before any request, to read or filter on fields the API does not expose.
    pub(super) fn check_readable<'f>(
        &self,
        a: &Api<'_>,
        table: &str,
        fields: impl IntoIterator<Item = &'f str>,
    ) -> Result<(), ConnectorError> {
        let mut missing: Vec<&str> = Vec::new();
        for name in fields {
            let Some(f) = a.table.fields.get(name) else {
                continue;
            };
            // A page read through its documents has its documents' stamp as modification.
            let stamp =
                a.table.api_read_through.is_some() && a.table.modified_on.as_deref() == Some(name);
            let constant = f.api_constant.is_some();
            if f.api.is_none()
                && f.api_ref.is_none()
                && !stamp
                && !constant
                && !missing.contains(&name)
            {
                missing.push(name);
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        let list = missing
            .iter()
            .map(|m| format!("`{table}`.`{m}`"))
            .collect::<Vec<_>>()
            .join(", ");
        Err(self.err(format!(
            "{list}: no property in the API's `{}` (Business Central API v2.0 does not expose {}), so it cannot be read or filtered on here; leave {} out of this mapping for an API endpoint",
            a.set,
            if missing.len() == 1 { "this field" } else { "these fields" },
            if missing.len() == 1 { "it" } else { "them" },
        )))
    }

    /// Sets the `api_ref` fields of records decoded from `rows` (same order) to the codes of the
    /// records their ids point at, and the local currency's code back to blank. `wanted`: only
    /// these fields (None: all).
    pub(super) async fn fill_refs(
        &self,
        a: &Api<'_>,
        rows: &[Map<String, Value>],
        records: &mut [Record],
        wanted: Option<&[String]>,
    ) -> Result<(), ConnectorError> {
        self.blank_local_currency(a, records).await?;
        for name in a.table.fields.keys() {
            if wanted.is_some_and(|w| !w.contains(name)) {
                continue;
            }
            let Some(r) = self.reference(a.table, name).map_err(|e| self.err(e))? else {
                continue;
            };
            let ids: Vec<Option<String>> = rows
                .iter()
                .map(|row| {
                    row.get(&r.property)
                        .and_then(Value::as_str)
                        .map(str::to_lowercase)
                })
                .collect();
            self.learn_codes(&r, ids.iter().flatten()).await?;
            let known = self.ref_codes.lock().unwrap_or_else(|p| p.into_inner());
            for (rec, id) in records.iter_mut().zip(&ids) {
                let value = match id.as_deref() {
                    None => continue, // not read
                    Some(NO_ID) | Some("") => Value::String(String::new()),
                    // A record that is not there (deleted): unknown, not blank.
                    Some(id) => known
                        .get(&(r.set.clone(), id.to_string()))
                        .map(|c| Value::String(c.clone()))
                        .unwrap_or(Value::Null),
                };
                rec.fields.insert(r.field.clone(), value);
            }
        }
        Ok(())
    }

    /// Reads the codes of the ids not known yet, 50 per request.
    async fn learn_codes(
        &self,
        r: &Ref,
        ids: impl Iterator<Item = &String>,
    ) -> Result<(), ConnectorError> {
        let unknown: Vec<String> = {
            let known = self.ref_codes.lock().unwrap_or_else(|p| p.into_inner());
            let mut seen = HashSet::new();
            ids.filter(|id| id.as_str() != NO_ID && uuid::Uuid::parse_str(id).is_ok())
                .filter(|id| !known.contains_key(&(r.set.clone(), (*id).clone())))
                .filter(|id| seen.insert((*id).clone()))
                .cloned()
                .collect()
        };
        for chunk in unknown.chunks(50) {
            let filter = chunk
                .iter()
                .map(|id| format!("id eq {id}"))
                .collect::<Vec<_>>()
                .join(" or ");
            let rows = self.query_rows(&r.set, &r.code, filter).await?;
            self.remember(r, &rows);
        }
        Ok(())
    }

    /// Adds the `api_ref` fields of a create or update to its body, codes turned into ids.
    pub(super) async fn encode_refs(
        &self,
        a: &Api<'_>,
        fields: &Map<String, Value>,
        body: &mut Map<String, Value>,
    ) -> Result<(), ConnectorError> {
        for (name, v) in fields {
            let Some(r) = self.reference(a.table, name)? else {
                continue;
            };
            let code = match v {
                Value::Null => "",
                Value::String(s) => s.as_str(),
                other => {
                    return Err(ConnectorError::new(format!(
                        "`{name}` expects a code, got {other}"
                    )))
                }
            };
            let id = self.ref_id(&r, code).await?.ok_or_else(|| {
                ConnectorError::new(format!(
                    "`{}`.`{name}` is `{code}`, but the API's `{}` has no record with {} `{code}` (the API takes that record's id in `{}`)",
                    a.name, r.set, r.code, r.property
                ))
            })?;
            body.insert(r.property.clone(), Value::String(id));
        }
        Ok(())
    }

    /// The id of the record whose code is `code` (None: there is none).
    pub(super) async fn ref_id(
        &self,
        r: &Ref,
        code: &str,
    ) -> crate::runtime::connector::Res<Option<String>> {
        if code.is_empty() {
            return Ok(Some(NO_ID.to_string()));
        }
        let code = code.to_uppercase(); // Business Central codes are upper case
        let key = (r.set.clone(), code.clone());
        if let Some(id) = self
            .ref_ids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Ok(Some(id.clone()));
        }
        let filter = format!("{} eq {}", r.code, odata::quote(&code));
        let rows = self.query_rows(&r.set, &r.code, filter).await?;
        self.remember(r, &rows);
        Ok(self
            .ref_ids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .cloned())
    }

    /// `id` and the code of the records of `set` passing `filter` (one page: at most 50 asked).
    async fn query_rows(
        &self,
        set: &str,
        code: &str,
        filter: String,
    ) -> Result<Vec<Map<String, Value>>, ConnectorError> {
        let params = [("$select", format!("id,{code}")), ("$filter", filter)];
        let url = self.entity_url(set, None, &params).await?;
        Ok(odata::rows(&self.get_json(url).await?.0))
    }

    fn remember(&self, r: &Ref, rows: &[Map<String, Value>]) {
        let mut codes = self.ref_codes.lock().unwrap_or_else(|p| p.into_inner());
        let mut ids = self.ref_ids.lock().unwrap_or_else(|p| p.into_inner());
        for row in rows {
            let id = row.get("id").and_then(Value::as_str).map(str::to_lowercase);
            let code = row.get(&r.code).and_then(Value::as_str);
            if let (Some(id), Some(code)) = (id, code) {
                codes.insert((r.set.clone(), id.clone()), code.to_string());
                ids.insert((r.set.clone(), code.to_string()), id);
            }
        }
    }
}
