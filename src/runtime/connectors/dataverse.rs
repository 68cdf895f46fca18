//! The Dataverse Web API connector (OData v4, `…/api/data/v9.2`).
//!
//! - Tables are the catalog's entity sets (`api:`); the key is the table's primary key, the
//!   watermark `modifiedon`, who changed a record `_modifiedby_value`.
//! - Values: choices travel as integers and become labels (the engine's canonical form);
//!   lookups are read from `_<field>_value` and written as `<nav>@odata.bind: "/<set>(<id>)"`
//!   (the nav property is the field for a single-target lookup and for `ownerid`,
//!   `<field>_<target>` for other polymorphic lookups such as `parentcustomerid`); an
//!   entity-name column (`owneridtype`) is never sent: it follows from the bound set, and it is
//!   read from the lookup's `lookuplogicalname` annotation (or the column, where a server has it).
//! - Reads page with `Prefer: odata.maxpagesize`. The first page of a change read filters
//!   `(modifiedon gt T or (modifiedon eq T and key gt ID))`; later pages of the same read follow
//!   the server's `@odata.nextLink` (kept here between calls), because Dataverse returns
//!   `modifiedon` to the second while it orders by the stored value, so a keyset built from
//!   returned values could repeat records within a second. Loop prevention:
//!   `_modifiedby_value ne <integration user>`.
//! - Writes: create = upsert `PATCH <set>(<key coupler chose>)` without a condition header (a
//!   create retried after a crash updates the record it made before: one record, never two);
//!   update `PATCH` with `If-Match: <etag read>` (`*` when not read; a change made since the
//!   read is a 412 conflict; never an upsert: a record deleted meanwhile fails with
//!   "no record", 404, or 412 from servers that say so, and is not re-created); delete
//!   `DELETE`; several operations go as one multipart `$batch` with
//!   `Prefer: odata.continue-on-error` (each operation outside change sets, so one failing record
//!   fails alone), one result per record; a server that refuses `$batch` gets single requests.
//! - Deletions (`read_deleted`): change tracking (`Prefer: odata.track-changes`). The first call
//!   for a table only takes a delta link (deletions before it cannot be known); later calls
//!   return the `$deletedEntity` rows since. The delta link goes to the engine
//!   (`deletion_position`), which keeps it between runs; so does the finding that a table has no
//!   change tracking ([`untracked`]), which is checked again once a day, not every run.

mod local_date;
mod option_sets;
mod untracked;
mod verify;
mod write_flags;

use super::http::{Http, HttpOptions};
use super::odata::client::Chunks;
use super::odata::{self, BatchFormat, BatchOp, BatchResponse, Client, EndpointOptions, Flavor};
use crate::analysis::SystemKind;
use crate::config::Auth;
use crate::plan::filter::Pred;
use crate::runtime::connector::*;
use crate::runtime::filter_eval::matches;
use crate::runtime::values::{now_stamp, option_value};
use crate::schema::{Catalog, Field, FieldType, Table};
use async_trait::async_trait;
use reqwest::Method;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use url::Url;

const ANNOTATIONS: &str = "odata.include-annotations=\"Microsoft.Dynamics.CRM.lookuplogicalname\"";

pub type DataverseOptions = EndpointOptions<DataverseOnly>;

/// What only a Dataverse endpoint is configured with.
#[derive(Debug, Clone)]
pub struct DataverseOnly {
    /// Learn deletions through change tracking.
    pub track_deletions: bool,
    /// Where the Sales users' days begin: date-only UserLocal columns ([`local_date`]).
    pub time_zone: chrono_tz::Tz,
}

impl Default for DataverseOnly {
    fn default() -> Self {
        DataverseOnly {
            track_deletions: true,
            time_zone: chrono_tz::Tz::UTC,
        }
    }
}

/// Dataverse takes 1,000 operations per `$batch`.
impl Flavor for DataverseOnly {
    const BATCH_SIZE: usize = 1000;
    const HTTP: fn() -> HttpOptions = HttpOptions::dataverse;
}

pub struct Dataverse {
    catalog: Arc<Catalog>,
    client: Client,
    user: String,
    opts: DataverseOptions,
    /// The next page of a change read, by the cursor handed out with the page before.
    links: Mutex<HashMap<(String, String, String), Url>>,
    /// Change-tracking delta links by table; None: the server does not track changes.
    deltas: Mutex<HashMap<String, Option<Url>>>,
    /// The deletion position of the tables without change tracking (see [`untracked`]).
    untracked: Mutex<HashMap<String, String>>,
    /// The server rejects entity-name columns (`owneridtype`) in `$select` (real Dataverse).
    no_type_columns: AtomicBool,
    /// The version of every record read or written, by (entity set, id), for `If-Match`.
    etags: odata::Etags,
    /// Option values beyond the catalog's, read from or inserted through the Metadata API.
    added_options: option_sets::Added,
}

impl Dataverse {
    /// A connector for the service root `url`. No request is sent yet.
    pub fn new(
        catalog: Arc<Catalog>,
        url: &str,
        auth: Option<&Auth>,
        integration_user: Option<&str>,
        opts: DataverseOptions,
    ) -> Result<Dataverse, ConnectorError> {
        let mut headers = vec![
            ("OData-MaxVersion".to_string(), "4.0".to_string()),
            ("OData-Version".to_string(), "4.0".to_string()),
        ];
        headers.extend(opts.extra_headers.iter().cloned());
        let client = Client::new(
            "Dataverse",
            url,
            auth,
            opts.http.clone(),
            headers,
            BatchFormat::Multipart,
            opts.use_batch,
        )?;
        Ok(Dataverse {
            catalog,
            client,
            user: integration_user
                .map(|u| u.trim_matches(|c| c == '{' || c == '}').to_lowercase())
                .unwrap_or_default(),
            opts,
            links: Mutex::new(HashMap::new()),
            deltas: Mutex::new(HashMap::new()),
            added_options: Default::default(),
            untracked: Mutex::new(HashMap::new()),
            no_type_columns: AtomicBool::new(false),
            etags: odata::Etags::default(),
        })
    }

    pub fn http(&self) -> &Arc<Http> {
        &self.client.http
    }

    /// Remembers that a table has no change tracking, with the position that says so.
    fn not_tracked(&self, table: &str, marker: String) {
        self.deltas
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(table.to_string(), None);
        self.untracked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(table.to_string(), marker);
    }

    pub fn set_integration_user(&mut self, user: &str) {
        self.user = user.to_lowercase();
    }

    /// `GET WhoAmI`: the systemuserid the credentials act as.
    pub async fn who_am_i(&self) -> Result<String, ConnectorError> {
        let url = self.client.url("WhoAmI", &[])?;
        let json = self.get_json(url).await?.0;
        json.get("UserId")
            .and_then(Value::as_str)
            .map(str::to_lowercase)
            .ok_or_else(|| ConnectorError::new("WhoAmI answered without a UserId"))
    }

    /// A catalog table, with the option values added to its option sets, and its entity set.
    fn table(&self, name: &str) -> Result<(Table, String), ConnectorError> {
        let t = self.catalog.table(name).ok_or_else(|| {
            ConnectorError::new(format!("Dataverse has no table `{name}` in the catalog"))
        })?;
        let set = t.api.clone().ok_or_else(|| {
            ConnectorError::new(format!(
                "table `{name}` has no entity set name (`api:`) in the catalog"
            ))
        })?;
        Ok((self.added_options.merged(name, t), set))
    }

    fn key<'t>(&self, t: &'t Table) -> &'t str {
        t.key.first().map(String::as_str).unwrap_or("id")
    }

    async fn get_json(&self, url: Url) -> Result<(Value, Url), ConnectorError> {
        self.get_json_with(url, &[]).await
    }

    async fn get_json_with(
        &self,
        url: Url,
        prefer: &[&str],
    ) -> Result<(Value, Url), ConnectorError> {
        let mut p = vec![ANNOTATIONS.to_string()];
        p.extend(prefer.iter().map(|s| s.to_string()));
        self.client.get_json(url, &p).await
    }

    /// The `$select` list for some catalog fields (None: all).
    fn select(&self, t: &Table, fields: Option<&[String]>, extra: &[&str]) -> Option<String> {
        let fields = fields?;
        let mut out: Vec<String> = vec![self.key(t).to_string()];
        if let Some(m) = &t.modified_on {
            out.push(m.clone());
        }
        if let Some(m) = &t.modified_by {
            out.push(format!("_{m}_value"));
        }
        let names = fields
            .iter()
            .map(String::as_str)
            .chain(extra.iter().copied());
        for f in names {
            let Some(field) = t.fields.get(f) else {
                continue;
            };
            let col = match field.ty {
                FieldType::Lookup => format!("_{f}_value"),
                FieldType::Entityname => {
                    if let Some(base) = f.strip_suffix("type") {
                        if t.fields.contains_key(base) {
                            out.push(format!("_{base}_value"));
                        }
                    }
                    if self.no_type_columns.load(Ordering::Relaxed) {
                        continue;
                    }
                    f.to_string()
                }
                _ => f.to_string(),
            };
            out.push(col);
        }
        let mut seen = std::collections::HashSet::new();
        out.retain(|c| seen.insert(c.clone()));
        Some(out.join(","))
    }

    /// A GET of a query. A server that rejects the query (400) while `$select` has entity-name
    /// columns (`owneridtype`, which real Dataverse does not take there) is asked once more
    /// without them; when that works, it is never sent them again.
    async fn query(
        &self,
        t: &Table,
        set: &str,
        params: impl Fn(Option<String>) -> Vec<(&'static str, String)>,
        fields: Option<&[String]>,
        extra: &[&str],
        prefer: &[&str],
    ) -> Result<(Value, Url), ConnectorError> {
        let select = self.select(t, fields, extra);
        let url = self.client.url(set, &params(select))?;
        let typed = |f: &str| {
            t.fields
                .get(f)
                .is_some_and(|f| f.ty == FieldType::Entityname)
        };
        let asks_types =
            fields.is_some_and(|fs| fs.iter().any(|f| typed(f))) || extra.iter().any(|e| typed(e));
        match self.get_json_with(url, prefer).await {
            Err(e)
                if e.kind == ErrorKind::Rejected
                    && asks_types
                    && !self.no_type_columns.load(Ordering::Relaxed) =>
            {
                self.no_type_columns.store(true, Ordering::Relaxed);
                let url = self
                    .client
                    .url(set, &params(self.select(t, fields, extra)))?;
                let again = self.get_json_with(url, prefer).await;
                if again.is_err() {
                    // Not the entity-name columns, then: the first refusal is the answer.
                    self.no_type_columns.store(false, Ordering::Relaxed);
                    return Err(e);
                }
                again
            }
            other => other,
        }
    }

    /// A row of the Web API -> a record with canonical values.
    pub fn decode(&self, t: &Table, row: &Map<String, Value>) -> Record {
        let key = self.key(t);
        let id = row
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_lowercase();
        if let Some(set) = &t.api {
            self.etags.keep(set, &id, row);
        }
        let modified_on = t
            .modified_on
            .as_ref()
            .and_then(|m| row.get(m))
            .and_then(Value::as_str)
            .and_then(odata::stamp)
            .unwrap_or_default();
        let modified_by = t
            .modified_by
            .as_ref()
            .and_then(|m| row.get(&format!("_{m}_value")))
            .and_then(Value::as_str)
            .map(str::to_lowercase);
        let mut fields = Map::new();
        for (name, f) in &t.fields {
            let v = match f.ty {
                FieldType::Lookup => match row.get(&format!("_{name}_value")) {
                    Some(v) => lower(v),
                    None => continue,
                },
                FieldType::Entityname => {
                    let ann = name.strip_suffix("type").and_then(|base| {
                        row.get(&format!(
                            "_{base}_value@Microsoft.Dynamics.CRM.lookuplogicalname"
                        ))
                    });
                    match row.get(name).filter(|v| !v.is_null()).or(ann) {
                        Some(v) => v.clone(),
                        None if row.contains_key(name) => Value::Null,
                        None => continue,
                    }
                }
                _ => match row.get(name) {
                    Some(v) => decode_value(f, v, self.opts.only.time_zone),
                    None => continue,
                },
            };
            fields.insert(name.clone(), v);
        }
        Record {
            id,
            modified_on,
            modified_by,
            fields,
        }
    }

    /// Canonical fields -> the body of a create or update.
    pub fn encode(
        &self,
        t: &Table,
        fields: &Map<String, Value>,
    ) -> Result<Map<String, Value>, ConnectorError> {
        let bad = |m: String| ConnectorError::new(m);
        let mut out = Map::new();
        for (name, v) in fields {
            let f = t
                .fields
                .get(name)
                .ok_or_else(|| bad(format!("`{name}` is not a field of this table")))?;
            match f.ty {
                FieldType::Entityname => continue, // implied by the bound entity set
                FieldType::Lookup => {
                    let target = lookup_target(name, f, fields)?;
                    // The catalog's navigation property (`msdyn_Project`: custom lookups keep
                    // their schema name's casing), else Dataverse's convention for system ones.
                    let nav = match f.nav_for(&target) {
                        Some(n) => n.to_string(),
                        None if f.lookup.len() > 1 && name != "ownerid" => {
                            format!("{name}_{target}")
                        }
                        None => name.clone(),
                    };
                    let value = match v {
                        Value::Null => Value::Null,
                        Value::String(s) if s.is_empty() => Value::Null,
                        Value::String(s) => {
                            let set = self
                                .catalog
                                .table(&target)
                                .and_then(|t| t.api.clone())
                                .ok_or_else(|| {
                                    ConnectorError::configuration(format!(
                                        "lookup `{name}`: table `{target}` has no entity set name"
                                    ))
                                })?;
                            Value::String(format!("/{set}({})", s.to_lowercase()))
                        }
                        other => {
                            return Err(bad(format!("lookup `{name}` expects a GUID, got {other}")))
                        }
                    };
                    out.insert(format!("{nav}@odata.bind"), value);
                }
                FieldType::Option => {
                    let value = match v {
                        Value::Null => Value::Null,
                        Value::String(s) => {
                            Value::from(option_value(f, s).ok_or_else(|| {
                                bad(format!("`{s}` is not an option of `{name}`"))
                            })?)
                        }
                        Value::Number(_) => v.clone(),
                        other => {
                            return Err(bad(format!(
                                "option `{name}` expects a label, got {other}"
                            )))
                        }
                    };
                    out.insert(name.clone(), value);
                }
                FieldType::Date if f.user_local => {
                    let value = match v {
                        Value::Null => Value::Null,
                        Value::String(s) if s.is_empty() => Value::Null,
                        Value::String(s) => local_date::write(s, self.opts.only.time_zone)
                            .map(Value::String)
                            .ok_or_else(|| bad(format!("`{name}`: `{s}` is not a date")))?,
                        other => return Err(bad(format!("`{name}` expects a date, got {other}"))),
                    };
                    out.insert(name.clone(), value);
                }
                _ => {
                    out.insert(name.clone(), v.clone());
                }
            }
        }
        Ok(out)
    }

    /// An OData literal for a canonical value of a field.
    fn literal(&self, f: &Field, v: &Value) -> Result<String, ConnectorError> {
        Ok(match (f.ty, v) {
            (_, Value::Null) => "null".into(),
            (FieldType::Option, Value::String(s)) => option_value(f, s)
                .ok_or_else(|| ConnectorError::new(format!("`{s}` is not an option")))?
                .to_string(),
            // The instant coupler writes for that day (filters on these stay local: plan::filter).
            (FieldType::Date, Value::String(s)) if f.user_local => {
                local_date::write(s, self.opts.only.time_zone)
                    .ok_or_else(|| ConnectorError::new(format!("`{s}` is not a date")))?
            }
            (
                FieldType::Guid | FieldType::Lookup | FieldType::Date | FieldType::Datetime,
                Value::String(_),
            ) => odata::typed_literal(f.ty, v)?,
            (_, Value::String(s)) => odata::quote(s),
            (_, Value::Bool(b)) => b.to_string(),
            (_, Value::Number(n)) => n.to_string(),
            (_, other) => odata::quote(&other.to_string()),
        })
    }

    fn api_name(&self, t: &Table, name: &str) -> String {
        match t.fields.get(name).map(|f| f.ty) {
            Some(FieldType::Lookup) => format!("_{name}_value"),
            _ => name.to_string(),
        }
    }

    /// Records of a query, following every next link; the local part of a filter applied.
    async fn read_all(
        &self,
        t: &Table,
        set: &str,
        filter: Option<String>,
        rest: Option<&Pred>,
        limit: Option<usize>,
    ) -> Result<Vec<Record>, ConnectorError> {
        let (mut json, mut url) = self
            .query(
                t,
                set,
                |_| {
                    let mut p = Vec::new();
                    if let Some(f) = &filter {
                        p.push(("$filter", f.clone()));
                    }
                    p
                },
                None,
                &[],
                &["odata.maxpagesize=1000"],
            )
            .await?;
        let mut out = Vec::new();
        loop {
            for row in odata::rows(&json) {
                let r = self.decode(t, &row);
                if rest.is_none_or(|p| matches(p, &r)) {
                    out.push(r);
                }
            }
            if limit.is_some_and(|l| out.len() >= l) {
                break;
            }
            match odata::next_link(&json, &url)? {
                Some(next) => {
                    (json, url) = self
                        .get_json_with(next, &["odata.maxpagesize=1000"])
                        .await?;
                }
                None => break,
            }
        }
        Ok(out)
    }

    fn split(&self, filter: Option<&Pred>) -> (Option<String>, Option<Pred>) {
        match filter {
            Some(p) => p.split_pushdown(SystemKind::Dataverse),
            None => (None, None),
        }
    }

    /// The request of one write, and for a create with update-only columns the update that
    /// writes them once the record exists.
    fn op_request(
        &self,
        t: &Table,
        set: &str,
        op: &WriteOp,
    ) -> Result<(BatchOp, Option<BatchOp>), ConnectorError> {
        let id = op.id().to_lowercase();
        uuid::Uuid::parse_str(&id)
            .map_err(|_| ConnectorError::new(format!("`{id}` is not a GUID key")))?;
        let representation = ("Prefer".to_string(), "return=representation".to_string());
        Ok(match op {
            // An upsert (no condition header): a create retried after a crash, whose record
            // was already made, updates that record instead of failing or duplicating it. One
            // holding a create-only column is not replayed after a lost answer (as an update it
            // would fail): it stays pending, and the next run finds its record by id.
            WriteOp::Create { fields, .. } => {
                let (now, after) = write_flags::split_create(t, fields);
                let create = BatchOp {
                    method: "PATCH",
                    url: format!("{set}({id})"),
                    headers: vec![representation.clone()],
                    once: write_flags::holds_create_only(t, &now),
                    body: Some(Value::Object(self.encode(t, &now)?)),
                };
                // `If-Match: *`: only the record just made, never a second upsert.
                let then = match after.is_empty() {
                    true => None,
                    false => Some(BatchOp {
                        method: "PATCH",
                        url: format!("{set}({id})"),
                        headers: vec![("If-Match".into(), "*".into()), representation],
                        body: Some(Value::Object(self.encode(t, &after)?)),
                        once: false,
                    }),
                };
                (create, then)
            }
            // `If-Match`: never an upsert, so a record deleted meanwhile is not re-created; with
            // the etag read, a change made since is a 412 (a conflict), not overwritten.
            WriteOp::Update { fields, .. } => {
                let fields = &write_flags::check_update(t, set, fields)?;
                let update = BatchOp {
                    method: "PATCH",
                    url: format!("{set}({id})"),
                    headers: vec![
                        (
                            "If-Match".into(),
                            self.etags.get(set, &id).unwrap_or_else(|| "*".into()),
                        ),
                        representation,
                    ],
                    body: Some(Value::Object(self.encode(t, fields)?)),
                    once: false,
                };
                (update, None)
            }
            WriteOp::Delete { .. } => (
                BatchOp {
                    method: "DELETE",
                    url: format!("{set}({id})"),
                    headers: vec![],
                    body: None,
                    once: false,
                },
                None,
            ),
        })
    }
}

/// An update sent with `If-Match: *` fails only when the record is gone: Dataverse answers 404,
/// some OData servers 412, which would otherwise read as "changed by someone else". With an
/// etag, a 412 is that: a change made since the record was read.
fn gone_as_404(
    sent: &BatchOp,
    answer: Result<BatchResponse, ConnectorError>,
) -> Result<BatchResponse, ConnectorError> {
    let any_version = sent
        .headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("If-Match") && v == "*");
    answer.map(|mut r| {
        if r.status == 412 && sent.method == "PATCH" && any_version {
            r.status = 404;
        }
        r
    })
}

impl Dataverse {
    /// The record a write's answer carries, if it is the one written: answers matched by
    /// position (multipart parts need not carry a `Content-ID`) could be another request's.
    fn answered(
        &self,
        t: &Table,
        op: &WriteOp,
        body: &Map<String, Value>,
    ) -> Result<Record, ConnectorError> {
        let mut r = self.decode(t, body);
        let id = op.id().to_lowercase();
        if r.id.is_empty() {
            r.id = id;
        } else if r.id != id {
            return Err(ConnectorError::of(
                ErrorKind::Transient,
                format!(
                    "the answer for `{id}` is the record `{}`: answers and requests are crossed, whether it was written is unknown",
                    r.id
                ),
            ));
        }
        Ok(r)
    }
}

fn lower(v: &Value) -> Value {
    match v {
        Value::String(s) => Value::String(s.to_lowercase()),
        other => other.clone(),
    }
}

/// A Web API value -> canonical; `tz` places the dates of UserLocal columns.
fn decode_value(f: &Field, v: &Value, tz: chrono_tz::Tz) -> Value {
    match (f.ty, v) {
        (_, Value::Null) => Value::Null,
        (FieldType::Date, Value::String(s)) if f.user_local => local_date::read(s, tz)
            .map(Value::String)
            .unwrap_or_else(|| v.clone()),
        (FieldType::Option, Value::Number(n)) => f
            .options
            .as_ref()
            .and_then(|o| o.iter().find(|(_, val)| Some(**val) == n.as_i64()))
            .map(|(l, _)| Value::String(l.clone()))
            .unwrap_or_else(|| v.clone()),
        (FieldType::Option, Value::String(s)) => match s.parse::<i64>() {
            Ok(i) => decode_value(f, &Value::from(i), tz),
            Err(_) => v.clone(),
        },
        (FieldType::Guid, Value::String(s)) => Value::String(s.to_lowercase()),
        (FieldType::Datetime, Value::String(s)) => odata::stamp(s)
            .map(Value::String)
            .unwrap_or_else(|| v.clone()),
        (FieldType::Date, Value::String(s)) => Value::String(s.chars().take(10).collect()),
        (FieldType::Decimal | FieldType::Integer | FieldType::Bigint, Value::String(s)) => {
            odata::value::number(s).unwrap_or_else(|| v.clone())
        }
        _ => v.clone(),
    }
}

/// The table a lookup value points at: its only target, or the one named by the entity-name
/// field written with it (`ownerid` + `owneridtype`), or the first target.
fn lookup_target(
    name: &str,
    f: &Field,
    fields: &Map<String, Value>,
) -> Result<String, ConnectorError> {
    if f.lookup.len() <= 1 {
        return f.lookup.first().cloned().ok_or_else(|| {
            ConnectorError::configuration(format!(
                "lookup `{name}` has no target table in the catalog"
            ))
        });
    }
    let type_field = format!("{name}type");
    if let Some(Value::String(ty)) = fields.get(&type_field) {
        if let Some(tgt) = f.lookup.iter().find(|l| l.eq_ignore_ascii_case(ty)) {
            return Ok(tgt.clone());
        }
        return Err(ConnectorError::new(format!(
            "`{type_field}` is `{ty}`, not one of {}",
            f.lookup.join(", ")
        )));
    }
    Ok(f.lookup[0].clone())
}

#[async_trait]
impl Connector for Dataverse {
    fn integration_user(&self) -> &str {
        &self.user
    }

    async fn read_changes(
        &self,
        q: &ChangeQuery<'_>,
        after: Option<&Cursor>,
    ) -> Result<Page, ConnectorError> {
        let (t, set) = self.table(q.table)?;
        let (t, set) = (&t, set.as_str());
        let (pushed, rest) = self.split(q.filter);
        let prefer = format!("odata.maxpagesize={}", q.page_size.clamp(1, 5000));
        let stored = after.and_then(|a| {
            self.links
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&(q.table.to_string(), a.modified_on.clone(), a.id.clone()))
        });
        let (json, url) = match stored {
            Some(link) => self.get_json_with(link, &[&prefer]).await?,
            None => {
                let key = self.key(t);
                let modified = t.modified_on.as_deref().unwrap_or("modifiedon");
                let mut parts: Vec<String> = pushed.into_iter().collect();
                if let Some(c) = after.or(q.since) {
                    parts.push(odata::keyset(modified, key, c));
                }
                if let (Some(u), Some(mb)) = (q.exclude_modified_by, &t.modified_by) {
                    if uuid::Uuid::parse_str(u).is_ok() {
                        parts.push(format!("_{mb}_value ne {}", u.to_lowercase()));
                    }
                }
                let filter = odata::and_all(&parts);
                let extra: Vec<&str> = rest.as_ref().map(|r| r.fields()).unwrap_or_default();
                let order = format!("{modified} asc,{key} asc");
                self.query(
                    t,
                    set,
                    |select| {
                        let mut p = Vec::new();
                        if let Some(s) = select {
                            p.push(("$select", s));
                        }
                        if let Some(f) = &filter {
                            p.push(("$filter", f.clone()));
                        }
                        p.push(("$orderby", order.clone()));
                        p
                    },
                    q.fields,
                    &extra,
                    &[&prefer],
                )
                .await?
            }
        };
        let raw: Vec<Record> = odata::rows(&json)
            .iter()
            .map(|r| self.decode(t, r))
            .collect();
        let last = raw.last().map(Record::cursor);
        let next = match (odata::next_link(&json, &url)?, &last) {
            (Some(link), Some(c)) => {
                self.links.lock().unwrap_or_else(|p| p.into_inner()).insert(
                    (q.table.to_string(), c.modified_on.clone(), c.id.clone()),
                    link,
                );
                Some(c.clone())
            }
            _ => None,
        };
        Ok(odata::page(raw, rest.as_ref(), next))
    }

    async fn read_by_ids(
        &self,
        table: &str,
        ids: &[String],
    ) -> Result<Vec<Record>, ConnectorError> {
        let (t, set) = self.table(table)?;
        let (t, set) = (&t, set.as_str());
        let key = self.key(t);
        let mut out = Vec::new();
        for filter in odata::id_filters(key, ids) {
            out.extend(self.read_all(t, set, Some(filter), None, None).await?);
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
        let (t, set) = self.table(table)?;
        let (t, set) = (&t, set.as_str());
        let (pushed, rest) = self.split(filter);
        let mut parts: Vec<String> = pushed.into_iter().collect();
        for (name, v) in equals {
            let f = t.fields.get(name).ok_or_else(|| {
                self.client
                    .err(format!("`{name}` is not a field of `{table}`"))
            })?;
            if v.is_null() {
                return Ok(Vec::new());
            }
            let lit = self.literal(f, v).map_err(|e| self.client.named(e))?;
            parts.push(format!("{} eq {lit}", self.api_name(t, name)));
        }
        // Dataverse compares text without regard to case; the exact comparison happens here.
        let found = self
            .read_all(t, set, odata::and_all(&parts), rest.as_ref(), Some(10))
            .await?;
        Ok(found
            .into_iter()
            .filter(|r| {
                equals.iter().all(|(name, v)| match (r.get(name), v) {
                    (Value::String(a), Value::String(b)) if ignore_case => {
                        a.eq_ignore_ascii_case(b) || a.to_lowercase() == b.to_lowercase()
                    }
                    (Value::String(a), Value::String(b)) => {
                        a == b
                            || t.fields.get(name).is_some_and(|f| {
                                matches!(f.ty, FieldType::Guid | FieldType::Lookup)
                            }) && a.eq_ignore_ascii_case(b)
                    }
                    (a, b) => crate::runtime::values::same(a, b),
                })
            })
            .take(2)
            .collect())
    }

    fn deletion_position(&self, table: &str) -> Option<String> {
        let delta = self
            .deltas
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(table)
            .cloned();
        match delta {
            Some(Some(u)) => Some(u.to_string()),
            Some(None) => self
                .untracked
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(table)
                .cloned(),
            None => None,
        }
    }

    async fn read_deleted(
        &self,
        table: &str,
        since: Option<&str>,
    ) -> Result<Vec<Tombstone>, ConnectorError> {
        if !self.opts.only.track_deletions {
            return Ok(Vec::new());
        }
        let (t, set) = self.table(table)?;
        let (t, set) = (&t, set.as_str());
        if untracked::recent(since, chrono::Utc::now()) {
            // Found untracked less than a day ago (a previous run): not asked again yet.
            self.not_tracked(table, since.unwrap_or_default().to_string());
            return Ok(Vec::new());
        }
        let known = self
            .deltas
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(table)
            .cloned()
            // The delta link of the previous run, kept by the engine's state store.
            .or_else(|| {
                since
                    .filter(|s| s.starts_with("http"))
                    .and_then(|s| reqwest::Url::parse(s).ok())
                    .map(Some)
            });
        let prefer = ["odata.track-changes", "odata.maxpagesize=5000"];
        let key = self.key(t);
        let (mut json, mut url, initial) = match known {
            Some(None) => return Ok(Vec::new()),
            Some(Some(link)) => {
                let (j, u) = self.get_json_with(link, &prefer).await?;
                (j, u, false)
            }
            None => {
                let url = self.client.url(set, &[("$select", key.to_string())])?;
                let req = self
                    .client
                    .req(Method::GET, url.clone())
                    .header("Prefer", prefer.join(","));
                let resp = self.client.send(&req).await?;
                let tracked = resp
                    .header("preference-applied")
                    .is_some_and(|p| p.contains("odata.track-changes"));
                if !resp.ok() || !tracked {
                    // No change tracking on this table (or server): deletions stay unknown.
                    self.not_tracked(table, untracked::marker(chrono::Utc::now()));
                    return Ok(Vec::new());
                }
                (resp.json().map_err(|e| self.client.named(e))?, url, true)
            }
        };
        let mut out = Vec::new();
        let stamp = now_stamp();
        loop {
            if !initial {
                for row in odata::rows(&json) {
                    let deleted = row
                        .get("@odata.context")
                        .and_then(Value::as_str)
                        .is_some_and(|c| c.ends_with("$deletedEntity"))
                        || row.get("reason").and_then(Value::as_str) == Some("deleted");
                    if deleted {
                        let id = row
                            .get("id")
                            .or_else(|| row.get(key))
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_lowercase();
                        out.push(Tombstone {
                            id,
                            deleted_on: stamp.clone(),
                            deleted_by: None,
                        });
                    }
                }
            }
            if let Some(next) = odata::next_link(&json, &url)? {
                (json, url) = self.get_json_with(next, &prefer).await?;
                continue;
            }
            let delta = odata::delta_link(&json, &url)?;
            self.deltas
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(table.to_string(), delta);
            break;
        }
        Ok(out)
    }

    async fn count(&self, table: &str, filter: Option<&Pred>) -> Result<u64, ConnectorError> {
        let (t, set) = self.table(table)?;
        let (t, set) = (&t, set.as_str());
        let (pushed, rest) = self.split(filter);
        if rest.is_some() {
            let n = self
                .read_all(t, set, pushed, rest.as_ref(), None)
                .await?
                .len();
            return Ok(n as u64);
        }
        self.client.count(set, pushed).await
    }

    async fn added_options(&self, table: &str, field: &str) -> Res<Vec<(String, i64)>> {
        self.read_added_options(table, field).await
    }

    async fn insert_option_value(
        &self,
        table: &str,
        field: &str,
        label: &str,
        value: Option<i64>,
    ) -> Res<i64> {
        self.insert_option(table, field, label, value).await
    }

    async fn write(
        &self,
        table: &str,
        ops: Vec<WriteOp>,
    ) -> Result<Vec<WriteResult>, ConnectorError> {
        let (t, set) = self.table(table)?;
        let (t, set) = (&t, set.as_str());
        let mut results: Vec<Option<WriteResult>> = vec![None; ops.len()];
        let mut sendable: Vec<(usize, BatchOp)> = Vec::new();
        let mut afterwards: Vec<(usize, BatchOp)> = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            match self.op_request(t, set, op) {
                Ok((b, after)) => {
                    sendable.push((i, b));
                    afterwards.extend(after.map(|a| (i, a)));
                }
                Err(e) => results[i] = Some(Err(e)),
            }
        }
        let mut reread = self.send(t, &ops, &sendable, &mut results).await;
        // The update-only columns of the creates that were made, now that their records exist.
        afterwards.retain(|(i, _)| matches!(results[*i], Some(Ok(_))));
        if !afterwards.is_empty() {
            reread.retain(|i| !afterwards.iter().any(|(j, _)| j == i));
            reread.extend(self.send(t, &ops, &afterwards, &mut results).await);
            for (i, _) in &afterwards {
                if let Some(Err(e)) = &results[*i] {
                    results[*i] = Some(Err(not_finished(t, &ops[*i], e)));
                }
            }
        }
        self.read_back(t, table, &ops, reread, &mut results).await;
        Ok(results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(ConnectorError::new("no result for the write"))))
            .collect())
    }
}

/// What a write sent, as canonical fields.
fn written(op: &WriteOp) -> &Map<String, Value> {
    static NONE: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
    match op {
        WriteOp::Create { fields, .. } | WriteOp::Update { fields, .. } => fields,
        WriteOp::Delete { .. } => NONE.get_or_init(Map::new),
    }
}

/// A create made whose update-only columns could not be written: it is not taken as written
/// (a transient failure keeps it pending), so the next run finds the record by its id, couples
/// it and sends what it lacks as an update.
fn not_finished(t: &Table, op: &WriteOp, e: &ConnectorError) -> ConnectorError {
    let names: Vec<String> = match op {
        WriteOp::Create { fields, .. } => write_flags::split_create(t, fields)
            .1
            .keys()
            .map(|n| format!("`{n}`"))
            .collect(),
        _ => Vec::new(),
    };
    ConnectorError::of(
        ErrorKind::Transient,
        format!(
            "created `{}`, but writing {} (valid for update only) after the create failed ({}: {}); the next run finds the record and writes them",
            op.id().to_lowercase(),
            names.join(", "),
            e.kind.as_str(),
            e.message
        ),
    )
}

impl Dataverse {
    /// Sends `sendable` (indexes into `ops`) and puts each outcome in `results`; returns the
    /// ones answered without a body, to be read back.
    async fn send(
        &self,
        t: &Table,
        ops: &[WriteOp],
        sendable: &[(usize, BatchOp)],
        results: &mut [Option<WriteResult>],
    ) -> Vec<usize> {
        let size = self.opts.batch_size.clamp(1, 1000);
        let batch: Vec<BatchOp> = sendable.iter().map(|(_, b)| b.clone()).collect();
        // Chunks go at once: every operation is outside change sets, so chunks are independent,
        // and Dataverse takes 52 requests at a time per user (the HTTP client's limit).
        let answers = self.client.write(&batch, size, Chunks::Concurrent).await;
        let mut reread: Vec<usize> = Vec::new();
        for ((i, sent), answer) in sendable.iter().zip(answers) {
            let op = &ops[*i];
            // A failed write keeps the version read: if it did happen after all, a later write
            // with that version is a conflict, never an overwrite. A success brings the new one.
            results[*i] = Some(match odata::write_outcome(op, gone_as_404(sent, answer)) {
                Err(e) => Err(e),
                Ok(_) if matches!(op, WriteOp::Delete { .. }) => Ok(Record {
                    id: op.id().to_lowercase(),
                    modified_on: now_stamp(),
                    modified_by: Some(self.user.clone()),
                    fields: Map::new(),
                }),
                // An answer with a body but not the record (no key: only an etag, say) says as
                // little as a 204: the record is read back.
                Ok(Some(body)) if body.get(self.key(t)).is_some_and(|k| !k.is_null()) => {
                    self.answered(t, op, &body)
                }
                Ok(_) => {
                    reread.push(*i);
                    Ok(Record {
                        id: op.id().to_lowercase(),
                        modified_on: String::new(),
                        modified_by: Some(self.user.clone()),
                        fields: Map::new(),
                    })
                }
            });
        }
        reread
    }

    /// Written without a body (204): read the stamps back. A record that cannot be read back
    /// is not taken as written: it fails (transient), and its create is looked for before it
    /// is made again.
    async fn read_back(
        &self,
        t: &Table,
        table: &str,
        ops: &[WriteOp],
        reread: Vec<usize>,
        results: &mut [Option<WriteResult>],
    ) {
        if reread.is_empty() {
            return;
        }
        let ids: Vec<String> = reread.iter().map(|i| ops[*i].id().to_lowercase()).collect();
        let back = self.read_by_ids(table, &ids).await.map(|rs| {
            rs.into_iter()
                .map(|r| (r.id.clone(), r))
                .collect::<HashMap<String, Record>>()
        });
        for i in reread {
            let id = ops[i].id().to_lowercase();
            let transient = |m: String| ConnectorError::of(ErrorKind::Transient, m);
            results[i] = Some(match &back {
                Ok(back) => match back.get(&id) {
                    None => Err(transient(format!(
                        "answered as written, but `{id}` is not there when read back"
                    ))),
                    Some(r) => match verify::unheld(t, written(&ops[i]), r) {
                        lost if lost.is_empty() => Ok(r.clone()),
                        lost => Err(transient(format!(
                            "answered as written, but `{id}` read back does not hold what was written: {}",
                            lost.join(", ")
                        ))),
                    },
                },
                Err(e) => Err(ConnectorError::of(
                    ErrorKind::Transient,
                    format!(
                        "answered as written, but reading `{id}` back failed: {}",
                        e.message
                    ),
                )),
            });
        }
    }
}
