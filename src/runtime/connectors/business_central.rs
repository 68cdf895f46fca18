//! The Business Central API v2.0 connector (`…/api/v2.0/companies(<id>)/<set>`).
//!
//! - `url` is the API root; the company (by name) is resolved once with
//!   `GET companies?$filter=name eq '<name>'` (no name: the only company); a company given by
//!   its id (a GUID) is used as it is, which saves that request in every run.
//! - Tables are the catalog's entity sets (`api:`); fields are translated catalog name ↔ API
//!   property through `Field.api`. A reference the API holds as an id (`api_ref:`, e.g. invoice
//!   lines' `documentId` for "Document No.") is translated through the referenced record
//!   ([`refs`]). A field with neither is not read (absent from records); reading, filtering or
//!   matching on it fails before any request, and writing it fails the record, each with a message
//!   naming the table and the field. The record id is `id` (SystemId), the watermark
//!   `lastModifiedDateTime`.
//! - Enums travel by their API value: the catalog's `api_values`, or the label's OData name
//!   (the blank member as `_x0020_`); read back to the option label.
//! - Change reads are keyset pages: `(lastModifiedDateTime gt T or (… eq T and id gt ID))`,
//!   `$orderby=lastModifiedDateTime,id`, `$top=<page>`; BC stamps milliseconds, so the keyset
//!   is exact.
//! - Loop prevention: the API does not say who changed a record, so `exclude_modified_by` is not
//!   applied here; records written by the integration come back and the engine finds them equal
//!   to their coupled stamps / values (unchanged) instead.
//! - Deletions are not visible by polling (only through webhooks): `read_deleted` returns none.
//! - Writes: `POST` (BC chooses the SystemId unless `client_ids`), `PATCH` with
//!   `If-Match: <@odata.etag>` (kept from reads, else read first), `DELETE`; a 412 fails that
//!   record ("changed by someone else"). Several operations go as one JSON `$batch` (≤ 100).

mod currency;
mod lines;
mod refs;

use super::http::{Http, HttpOptions};
use super::odata::client::Chunks;
use super::odata::{self, BatchFormat, BatchOp, Client, EndpointOptions, Flavor};
use crate::analysis::SystemKind;
use crate::config::Auth;
use crate::plan::filter::Pred;
use crate::runtime::connector::*;
use crate::runtime::filter_eval::matches;
use crate::runtime::values::now_stamp;
use crate::schema::{Catalog, Field, FieldType, Table};
use async_trait::async_trait;
use reqwest::Method;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::OnceCell;
use url::Url;

pub type BusinessCentralOptions = EndpointOptions<BusinessCentralOnly>;

/// What only a Business Central endpoint is configured with.
#[derive(Debug, Clone, Default)]
pub struct BusinessCentralOnly {
    /// Send coupler's chosen id on create (servers that accept a client SystemId).
    pub client_ids: bool,
}

/// Business Central takes 100 operations per `$batch`.
impl Flavor for BusinessCentralOnly {
    const BATCH_SIZE: usize = 100;
    const HTTP: fn() -> HttpOptions = HttpOptions::business_central;
}

pub struct BusinessCentral {
    catalog: Arc<Catalog>,
    company: Option<String>,
    company_id: OnceCell<String>,
    /// The local currency's code ([`currency`]), read once when a table shows it.
    lcy: OnceCell<String>,
    client: Client,
    user: String,
    opts: BusinessCentralOptions,
    /// `@odata.etag` of records read, by (table, id).
    etags: odata::Etags,
    /// `api_ref` translations: (entity set, id) -> code and (entity set, code) -> id.
    ref_codes: Mutex<HashMap<(String, String), String>>,
    ref_ids: Mutex<HashMap<(String, String), String>>,
}

/// Table facts in API terms.
struct Api<'a> {
    /// The catalog name of the table.
    name: &'a str,
    table: &'a Table,
    set: &'a str,
    /// Catalog name of the id field (SystemId).
    id_field: Option<&'a str>,
    modified: String,
}

impl BusinessCentral {
    pub fn new(
        catalog: Arc<Catalog>,
        url: &str,
        company: Option<&str>,
        auth: Option<&Auth>,
        integration_user: Option<&str>,
        opts: BusinessCentralOptions,
    ) -> Result<BusinessCentral, ConnectorError> {
        let mut headers = vec![("OData-Version".to_string(), "4.0".to_string())];
        headers.extend(opts.extra_headers.iter().cloned());
        let client = Client::new(
            "Business Central",
            url,
            auth,
            opts.http.clone(),
            headers,
            BatchFormat::Json,
            opts.use_batch,
        )?;
        Ok(BusinessCentral {
            catalog,
            company: company.map(str::to_string),
            company_id: OnceCell::new(),
            lcy: OnceCell::new(),
            client,
            user: integration_user.unwrap_or_default().to_string(),
            opts,
            etags: odata::Etags::default(),
            ref_codes: Mutex::new(HashMap::new()),
            ref_ids: Mutex::new(HashMap::new()),
        })
    }

    pub fn http(&self) -> &Arc<Http> {
        &self.client.http
    }

    fn err(&self, e: impl std::fmt::Display) -> ConnectorError {
        self.client.err(e)
    }

    async fn get_json(&self, url: Url) -> Result<(Value, Url), ConnectorError> {
        self.client.get_json(url, &[]).await
    }

    /// The company's id, resolved once.
    pub async fn company_id(&self) -> Result<&str, ConnectorError> {
        self.company_id
            .get_or_try_init(|| async {
                if let Some(id) = self
                    .company
                    .as_deref()
                    .and_then(|c| uuid::Uuid::parse_str(c.trim()).ok())
                {
                    return Ok(id.to_string());
                }
                let mut params = vec![("$select", "id,name".to_string())];
                if let Some(name) = &self.company {
                    params.push(("$filter", format!("name eq {}", odata::quote(name))));
                }
                let url = self.client.url("companies", &params)?;
                let rows = odata::rows(&self.get_json(url).await?.0);
                match (rows.len(), &self.company) {
                    (1, _) => Ok(rows[0]
                        .get("id")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_lowercase()),
                    (0, Some(name)) => Err(self.err(format!("no company named `{name}`"))),
                    (0, None) => Err(self.err("the environment has no company")),
                    (n, None) => Err(self.err(format!(
                        "the environment has {n} companies: name one with `company:`"
                    ))),
                    (n, Some(name)) => Err(self.err(format!("{n} companies are named `{name}`"))),
                }
            })
            .await
            .map(String::as_str)
    }

    fn api<'a>(&'a self, name: &str) -> Result<Api<'a>, ConnectorError> {
        let table = self
            .catalog
            .table(name)
            .ok_or_else(|| self.err(format!("no table `{name}` in the catalog")))?;
        let set = table.api.as_deref().ok_or_else(|| {
            self.err(format!(
                "table `{name}` is not exposed by the API (no `api:` in the catalog)"
            ))
        })?;
        let id_field = table
            .fields
            .iter()
            .find(|(_, f)| f.api.as_deref() == Some("id"))
            .map(|(n, _)| n.as_str());
        let modified = table
            .modified_on
            .as_ref()
            .and_then(|m| table.fields.get(m))
            .and_then(|f| f.api.clone())
            .unwrap_or_else(|| "lastModifiedDateTime".into());
        Ok(Api {
            name: self
                .catalog
                .tables
                .get_key_value(name)
                .map_or("", |(k, _)| k),
            table,
            set,
            id_field,
            modified,
        })
    }

    async fn entity_url(
        &self,
        set: &str,
        id: Option<&str>,
        params: &[(&str, String)],
    ) -> Result<Url, ConnectorError> {
        let path = self.entity_path(set, id).await?;
        match self.scope(set).filter(|_| id.is_none()) {
            Some(scope) => self.client.url(&path, &scoped(params, scope)),
            None => self.client.url(&path, params),
        }
    }

    /// The part of an entity set the catalog's table is (`api_filter:`): `salesInvoices` holds
    /// drafts too, the posted invoices' table only the rest. Every collection read is held to it.
    fn scope(&self, set: &str) -> Option<&str> {
        self.catalog
            .tables
            .values()
            .find(|t| t.api.as_deref() == Some(set))
            .and_then(|t| t.api_filter.as_deref())
    }

    async fn entity_path(&self, set: &str, id: Option<&str>) -> Result<String, ConnectorError> {
        let company = self.company_id().await?;
        Ok(match id {
            Some(id) => format!("companies({company})/{set}({id})"),
            None => format!("companies({company})/{set}"),
        })
    }

    fn decode(&self, a: &Api<'_>, table: &str, row: &Map<String, Value>) -> Record {
        let id = row
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_lowercase();
        self.etags.keep(table, &id, row);
        let modified_on = row
            .get(&a.modified)
            .and_then(Value::as_str)
            .and_then(odata::stamp)
            .unwrap_or_default();
        let mut fields = Map::new();
        for (name, f) in &a.table.fields {
            // The value the entity set implies ("Document Type" of salesOrders: Order).
            if let Some(c) = &f.api_constant {
                fields.insert(name.clone(), Value::String(c.to_string()));
                continue;
            }
            // Fields without an API property are not read (`api_ref` ones: see `fill_refs`).
            let Some(v) = f.api.as_ref().and_then(|api| row.get(api)) else {
                continue;
            };
            fields.insert(name.clone(), decode_value(f, v));
        }
        Record {
            id,
            modified_on,
            modified_by: None,
            fields,
        }
    }

    fn encode(
        &self,
        a: &Api<'_>,
        fields: &Map<String, Value>,
    ) -> Result<Map<String, Value>, ConnectorError> {
        let mut out = Map::new();
        for (name, v) in fields {
            let f = a.table.fields.get(name).ok_or_else(|| {
                ConnectorError::new(format!("`{name}` is not a field of this table"))
            })?;
            if Some(name.as_str()) == a.id_field || f.api_ref.is_some() {
                continue; // api_ref fields: see `encode_refs`
            }
            if let Some(c) = &f.api_constant {
                // Implied by the entity set: only that value can be written, and is not sent.
                if v.as_str() == Some(c.as_str()) {
                    continue;
                }
                return Err(ConnectorError::configuration(format!(
                    "`{}`.`{name}` is `{c}` for every record of the API's `{}`: `{v}` cannot be written there",
                    a.name, a.set
                )));
            }
            let api = f.api.as_ref().ok_or_else(|| {
                ConnectorError::configuration(format!(
                    "`{}`.`{name}` has no property in the API's `{}` (Business Central API v2.0 does not expose it), so it cannot be written",
                    a.name, a.set
                ))
            })?;
            out.insert(api.clone(), encode_value(f, v));
        }
        Ok(out)
    }

    fn literal(&self, f: &Field, v: &Value) -> Result<String, ConnectorError> {
        Ok(match (f.ty, v) {
            (
                FieldType::Guid | FieldType::Lookup | FieldType::Date | FieldType::Datetime,
                Value::String(_),
            ) => odata::typed_literal(f.ty, v)?,
            (FieldType::Code, Value::String(s)) => odata::quote(&s.to_uppercase()),
            _ => match encode_value(f, v) {
                Value::String(s) => odata::quote(&s),
                Value::Null => "null".into(),
                other => other.to_string(),
            },
        })
    }

    fn split(&self, filter: Option<&Pred>) -> (Option<String>, Option<Pred>) {
        match filter {
            Some(p) => p.split_pushdown(SystemKind::BusinessCentral),
            None => (None, None),
        }
    }

    /// Every record of a query (following next links), the local filter applied.
    async fn read_all(
        &self,
        table: &str,
        a: &Api<'_>,
        filter: Option<String>,
        rest: Option<&Pred>,
        limit: Option<usize>,
    ) -> Result<Vec<Record>, ConnectorError> {
        let mut params = Vec::new();
        if let Some(f) = filter {
            params.push(("$filter", f));
        }
        let url = self.entity_url(a.set, None, &params).await?;
        let through = self.through(a)?;
        let mut page = Some(self.get_json(url).await?);
        let mut out = Vec::new();
        while let Some((json, url)) = page {
            let rows = odata::rows(&json);
            let mut records: Vec<Record> = rows.iter().map(|r| self.decode(a, table, r)).collect();
            self.fill_refs(a, &rows, &mut records, None).await?;
            // Lines carry their documents' stamps, however they are read.
            if let Some(t) = &through {
                self.stamp_lines(a, t, &rows, &mut records).await?;
            }
            out.extend(
                records
                    .into_iter()
                    .filter(|r| rest.is_none_or(|p| matches(p, r))),
            );
            if limit.is_some_and(|l| out.len() >= l) {
                break;
            }
            page = self.client.next_page(&json, &url, &[]).await?;
        }
        Ok(out)
    }

    async fn etag(&self, table: &str, a: &Api<'_>, id: &str) -> Result<String, ConnectorError> {
        if let Some(e) = self.etags.get(table, id) {
            return Ok(e);
        }
        let url = self.entity_url(a.set, Some(id), &[]).await?;
        let resp = self.client.send(&self.client.req(Method::GET, url)).await?;
        if resp.status == 404 {
            return Err(ConnectorError::of(
                ErrorKind::Gone,
                format!("no record `{id}` (deleted?)"),
            ));
        }
        if !resp.ok() {
            return Err(ConnectorError::of(
                ErrorKind::of_status(resp.status),
                resp.reason(),
            ));
        }
        resp.json()?
            .get("@odata.etag")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| ConnectorError::new("the record has no @odata.etag"))
    }

    async fn op_request(
        &self,
        table: &str,
        a: &Api<'_>,
        op: &WriteOp,
    ) -> Result<BatchOp, ConnectorError> {
        let id = op.id().to_lowercase();
        Ok(match op {
            WriteOp::Create { fields, .. } => {
                let mut body = self.encode(a, fields)?;
                self.encode_refs(a, fields, &mut body).await?;
                if self.opts.only.client_ids {
                    body.insert("id".into(), Value::String(id));
                }
                BatchOp {
                    method: "POST",
                    url: self.entity_path(a.set, None).await?,
                    headers: vec![],
                    body: Some(Value::Object(body)),
                    once: false,
                }
            }
            WriteOp::Update { fields, .. } => {
                let mut body = self.encode(a, fields)?;
                self.encode_refs(a, fields, &mut body).await?;
                let etag = self.etag(table, a, &id).await?;
                BatchOp {
                    method: "PATCH",
                    url: self.entity_path(a.set, Some(&id)).await?,
                    headers: vec![("If-Match".into(), etag)],
                    body: Some(Value::Object(body)),
                    once: false,
                }
            }
            WriteOp::Delete { .. } => {
                let etag = self.etags.get(table, &id).unwrap_or_else(|| "*".into());
                BatchOp {
                    method: "DELETE",
                    url: self.entity_path(a.set, Some(&id)).await?,
                    headers: vec![("If-Match".into(), etag)],
                    body: None,
                    once: false,
                }
            }
        })
    }
}

/// An API value -> canonical.
fn decode_value(f: &Field, v: &Value) -> Value {
    match (f.ty, v) {
        (_, Value::Null) => Value::Null,
        // The API's enum value (`_x0020_`, `Comment`, `In_x0020_Review`) -> the option label.
        (FieldType::Option, Value::String(s)) => {
            let label = f
                .label_of_api_value(s)
                .or_else(|| f.option_label(if s.is_empty() { " " } else { s }))
                .unwrap_or(s);
            Value::String(label.to_string())
        }
        (FieldType::Guid, Value::String(s)) => Value::String(s.to_lowercase()),
        (FieldType::Datetime, Value::String(s)) => {
            if s.starts_with("0001-01-01") {
                Value::Null
            } else {
                odata::stamp(s)
                    .map(Value::String)
                    .unwrap_or_else(|| v.clone())
            }
        }
        (FieldType::Date, Value::String(s)) if s.starts_with("0001-01-01") => Value::Null,
        (FieldType::Date, Value::String(s)) => Value::String(s.chars().take(10).collect()),
        (FieldType::Decimal | FieldType::Integer | FieldType::Bigint, Value::String(s)) => {
            odata::value::number(s).unwrap_or_else(|| v.clone())
        }
        _ => v.clone(),
    }
}

/// Canonical -> API. Business Central has no null text, number or date: blank values instead.
fn encode_value(f: &Field, v: &Value) -> Value {
    match (f.ty, v) {
        (FieldType::Text | FieldType::Code | FieldType::Dateformula, Value::Null) => {
            Value::String(String::new())
        }
        (FieldType::Code, Value::String(s)) => Value::String(s.to_uppercase()),
        (FieldType::Integer | FieldType::Bigint | FieldType::Decimal, Value::Null) => {
            Value::from(0)
        }
        (FieldType::Boolean, Value::Null) => Value::Bool(false),
        (FieldType::Date, Value::Null) => Value::String("0001-01-01".into()),
        (FieldType::Option, Value::Null) => f
            .options
            .as_ref()
            .and_then(|o| {
                o.iter()
                    .min_by_key(|(_, v)| **v)
                    .map(|(l, _)| Value::String(f.api_value(l)))
            })
            .unwrap_or(Value::Null),
        (FieldType::Option, Value::String(label)) => Value::String(
            f.option_label(label)
                .map_or_else(|| label.clone(), |l| f.api_value(l)),
        ),
        _ => v.clone(),
    }
}

#[async_trait]
impl Connector for BusinessCentral {
    fn integration_user(&self) -> &str {
        &self.user
    }

    /// The API's `id` is read-only (`SystemId`, set by Business Central on insert): unless the
    /// server takes client ids (the CAP imitation, when told to), the id chosen is not kept.
    fn keeps_create_ids(&self, _table: &str) -> bool {
        self.opts.only.client_ids
    }

    fn writable(&self, table: &str, fields: &[String]) -> Result<(), ConnectorError> {
        let a = self.api(table)?;
        let missing: Vec<&str> = fields
            .iter()
            .map(String::as_str)
            .filter(|name| {
                Some(*name) != a.id_field
                    && a.table.fields.get(*name).is_none_or(|f| {
                        f.api.is_none() && f.api_ref.is_none() && f.api_constant.is_none()
                    })
            })
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let names: Vec<String> = missing.iter().map(|n| format!("`{n}`")).collect();
        let (have, them) = if names.len() == 1 {
            ("has", "it")
        } else {
            ("have", "them")
        };
        Err(ConnectorError::configuration(format!(
            "`{}`: {} {have} no property in the API's `{}` (Business Central API v2.0 does not expose {them}), so this mapping cannot write {them} over the API; leave {them} out of the mapping for this endpoint",
            a.name,
            names.join(", "),
            a.set
        )))
    }

    async fn read_changes(
        &self,
        q: &ChangeQuery<'_>,
        after: Option<&Cursor>,
    ) -> Result<Page, ConnectorError> {
        let a = self.api(q.table)?;
        let (pushed, rest) = self.split(q.filter);
        let extra: Vec<&str> = rest.as_ref().map(|r| r.fields()).unwrap_or_default();
        let needed = q.fields.unwrap_or_default().iter().map(String::as_str);
        self.check_readable(&a, q.table, needed.chain(extra.iter().copied()))?;
        let through = self.through(&a)?;
        let mut parts: Vec<String> = Vec::new();
        if let Some(c) = after.or(q.since).filter(|_| through.is_none()) {
            parts.push(odata::keyset(&a.modified, "id", c));
        }
        let top = q.page_size.max(1);
        let mut params = Vec::new();
        // The fields the refs are filled for: those read, and those the local filter needs.
        let mut wanted: Option<Vec<String>> = None;
        if let Some(fields) = q.fields {
            let mut cols = vec!["id".to_string()];
            if through.is_none() {
                cols.push(a.modified.clone());
            }
            let names: Vec<String> = fields
                .iter()
                .cloned()
                .chain(extra.iter().map(|e| e.to_string()))
                .collect();
            for f in names.iter().filter_map(|n| a.table.fields.get(n)) {
                if let Some(api) = f.api.clone().or_else(|| f.api_ref.as_deref().cloned()) {
                    if !cols.contains(&api) {
                        cols.push(api);
                    }
                }
            }
            params.push(("$select", cols.join(",")));
            wanted = Some(names);
        }
        if let Some(t) = &through {
            let select = params.pop().map(|(_, s)| s);
            let (mut raw, rows, position, more) = self
                .read_changes_through(q, after, &a, t, select, pushed)
                .await?;
            self.fill_refs(&a, &rows, &mut raw, wanted.as_deref())
                .await?;
            return Ok(lines::page(raw, rest.as_ref(), position, more));
        }
        parts.extend(pushed);
        if let Some(f) = odata::and_all(&parts) {
            params.push(("$filter", f));
        }
        params.push(("$orderby", format!("{} asc,id asc", a.modified)));
        params.push(("$top", top.to_string()));
        let url = self.entity_url(a.set, None, &params).await?;
        let (mut json, mut url) = self.get_json(url).await?;
        let mut rows = Vec::new();
        loop {
            rows.extend(odata::rows(&json));
            match odata::next_link(&json, &url)? {
                Some(next) if rows.len() < top => (json, url) = self.get_json(next).await?,
                _ => break,
            }
        }
        let mut raw: Vec<Record> = rows.iter().map(|r| self.decode(&a, q.table, r)).collect();
        self.fill_refs(&a, &rows, &mut raw, wanted.as_deref())
            .await?;
        let next = (raw.len() >= top)
            .then(|| raw.last().map(Record::cursor))
            .flatten();
        Ok(odata::page(raw, rest.as_ref(), next))
    }

    async fn read_by_ids(
        &self,
        table: &str,
        ids: &[String],
    ) -> Result<Vec<Record>, ConnectorError> {
        let a = self.api(table)?;
        if let Some(t) = self.through(&a)? {
            return self.lines_by_ids(table, &a, &t, ids).await;
        }
        let mut out = Vec::new();
        for filter in odata::id_filters("id", ids) {
            out.extend(self.read_all(table, &a, Some(filter), None, None).await?);
        }
        Ok(out)
    }

    async fn find(
        &self,
        table: &str,
        equals: &[(String, Value)],
        ignore_case: bool,
        filter: Option<&Pred>,
    ) -> Result<Vec<Record>, ConnectorError> {
        let a = self.api(table)?;
        let (pushed, rest) = self.split(filter);
        let extra: Vec<&str> = rest.as_ref().map(|r| r.fields()).unwrap_or_default();
        let matched = equals.iter().map(|(n, _)| n.as_str());
        self.check_readable(&a, table, matched.chain(extra.iter().copied()))?;
        let mut parts: Vec<String> = pushed.into_iter().collect();
        let mut local: Vec<(String, Value)> = Vec::new();
        for (name, v) in equals {
            let f = a
                .table
                .fields
                .get(name)
                .ok_or_else(|| self.err(format!("`{name}` is not a field of `{table}`")))?;
            if v.is_null() {
                return Ok(Vec::new());
            }
            if let Some(r) = self.reference(a.table, name).map_err(|e| self.err(e))? {
                // Matched by the referenced record's id; no such record: no match.
                let code = v.as_str().unwrap_or_default();
                match self.ref_id(&r, code).await.map_err(|e| self.err(e))? {
                    Some(id) => parts.push(format!("{} eq {id}", r.property)),
                    None => return Ok(Vec::new()),
                }
                continue;
            }
            match &f.api {
                // Text compared ignoring case cannot be pushed down exactly: filter here.
                Some(_) if ignore_case && f.ty == FieldType::Text => {
                    local.push((name.clone(), v.clone()))
                }
                Some(api) => parts.push(format!(
                    "{api} eq {}",
                    self.literal(f, v).map_err(|e| self.err(e))?
                )),
                // Refused by check_readable already; never read as null.
                None => return Err(self.err(format!("`{table}`.`{name}` cannot be matched on"))),
            }
        }
        let found = match self.through(&a)? {
            // A search that names no document: through every document.
            Some(t)
                if !parts
                    .iter()
                    .any(|p| p.starts_with(&format!("{} eq ", t.property))) =>
            {
                let all = self
                    .all_lines(table, &a, &t, odata::and_all(&parts).as_deref())
                    .await?;
                all.into_iter()
                    .filter(|r| rest.as_ref().is_none_or(|p| matches(p, r)))
                    .collect()
            }
            _ => {
                self.read_all(
                    table,
                    &a,
                    odata::and_all(&parts),
                    rest.as_ref(),
                    if local.is_empty() { Some(10) } else { None },
                )
                .await?
            }
        };
        Ok(found
            .into_iter()
            .filter(|r| {
                local.iter().all(|(n, v)| match (r.get(n), v) {
                    (Value::String(x), Value::String(y)) => x.to_lowercase() == y.to_lowercase(),
                    _ => false,
                })
            })
            .take(2)
            .collect())
    }

    async fn read_deleted(
        &self,
        table: &str,
        _since: Option<&str>,
    ) -> Result<Vec<Tombstone>, ConnectorError> {
        // Business Central reports deletions only through webhooks.
        self.api(table)?;
        Ok(Vec::new())
    }

    async fn count(&self, table: &str, filter: Option<&Pred>) -> Result<u64, ConnectorError> {
        let a = self.api(table)?;
        let (pushed, rest) = self.split(filter);
        if let Some(t) = self.through(&a)? {
            let all = self.all_lines(table, &a, &t, pushed.as_deref()).await?;
            return Ok(all
                .iter()
                .filter(|r| rest.as_ref().is_none_or(|p| matches(p, r)))
                .count() as u64);
        }
        if let Some(r) = &rest {
            self.check_readable(&a, table, r.fields())?;
            return Ok(self
                .read_all(table, &a, pushed, rest.as_ref(), None)
                .await?
                .len() as u64);
        }
        let path = self.entity_path(a.set, None).await?;
        let scope = self.scope(a.set).map(str::to_string);
        let filter = odata::and_all(&pushed.into_iter().chain(scope).collect::<Vec<_>>());
        self.client.count(&path, filter).await
    }

    async fn write(
        &self,
        table: &str,
        ops: Vec<WriteOp>,
    ) -> Result<Vec<WriteResult>, ConnectorError> {
        let a = self.api(table)?;
        self.company_id().await?;
        // Known before anything is sent: an answer must read back as what was written.
        self.local_currency(&a).await?;
        let mut results: Vec<Option<WriteResult>> = vec![None; ops.len()];
        let mut sendable: Vec<(usize, BatchOp)> = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            match self.op_request(table, &a, op).await {
                Ok(b) => sendable.push((i, b)),
                Err(e) => {
                    let scrubbed = self.client.http.scrub(&e.message);
                    results[i] = Some(Err(ConnectorError::of(e.kind, scrubbed)));
                }
            }
        }
        let size = self.opts.batch_size.clamp(1, 100);
        let batch: Vec<BatchOp> = sendable.iter().map(|(_, b)| b.clone()).collect();
        // Chunks go one after the other: Business Central runs a `$batch` in one session, and
        // batches writing one table at once wait on each other's locks (and share its 5
        // concurrent requests), so sending them together gains nothing and risks lock timeouts.
        let answers = self.client.write(&batch, size, Chunks::Sequential).await;
        let through = self.through(&a)?;
        for ((i, _), answer) in sendable.iter().zip(answers) {
            let op = &ops[*i];
            results[*i] = Some(match odata::write_outcome(op, answer) {
                Err(e) => Err(e),
                Ok(Some(body)) if !matches!(op, WriteOp::Delete { .. }) => {
                    let mut one = [self.decode(&a, table, &body)];
                    // The record is written whatever happens here: a failed translation
                    // only leaves its `api_ref` fields out (failing it would write it twice).
                    let _ = self.fill_refs(&a, std::slice::from_ref(&body), &mut one, None).await;
                    // A line carries its document's stamp (best effort, as above).
                    if let Some(t) = &through {
                        let _ = self.stamp_lines(&a, t, &[body], &mut one).await;
                    }
                    let [written] = one;
                    Ok(written)
                }
                // Business Central chose the new record's id, and only its answer says which:
                // coupling to the id coupler chose would point at a record that does not exist.
                Ok(_) if matches!(op, WriteOp::Create { .. }) && !self.opts.only.client_ids => {
                    Err(ConnectorError::of(
                        ErrorKind::Transient,
                        "the create was answered without the record: which record Business Central made, if any, is unknown",
                    ))
                }
                Ok(_) => {
                    let id = op.id().to_lowercase();
                    self.etags.forget(table, &id);
                    Ok(Record {
                        id,
                        modified_on: now_stamp(),
                        modified_by: None,
                        fields: Map::new(),
                    })
                }
            });
        }
        Ok(results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(ConnectorError::new("no result for the write"))))
            .collect())
    }
}

/// `params` with `scope` and-ed into their `$filter` (added when there is none).
fn scoped<'a>(params: &[(&'a str, String)], scope: &str) -> Vec<(&'a str, String)> {
    let mut out = params.to_vec();
    match out.iter_mut().find(|(k, _)| *k == "$filter") {
        Some((_, f)) => *f = odata::and_all(&[f.clone(), scope.to_string()]).unwrap_or_default(),
        None => out.push(("$filter", scope.to_string())),
    }
    out
}
