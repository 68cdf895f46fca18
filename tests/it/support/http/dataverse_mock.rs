//! A loopback server for Dataverse behaviours CAP lacks.
//!
//! [`DataverseMock`] is an axum server on `127.0.0.1:<free port>` with its own tokio runtime on a
//! background thread (stops on drop). It imitates:
//!
//! * **OAuth client credentials** (the shared [`super::token::Tokens`]): `POST /<tenant>/oauth2/
//!   v2.0/token` (form `grant_type=client_credentials`, `client_id`, `client_secret`, `scope`)
//!   returns `{"token_type":"Bearer","expires_in":N,"access_token":"..."}`. Wrong id/secret:
//!   `401 {"error":"invalid_client"}`; other grant types: `400 unsupported_grant_type`; missing
//!   scope: `400 invalid_scope`; another tenant: `400 invalid_request`. Tokens really expire after
//!   `expires_in` seconds.
//! * **Web API** under `/api/data/v9.2/` (every request needs `Authorization: Bearer <token issued
//!   here and not expired>`, else `401`): an in-memory store of schemaless JSON rows per entity set
//!   (key field per set, e.g. `accounts` → `accountid`).
//!   - `GET <set>`: `$select`, `$filter`, `$orderby`, `$top`; `Prefer: odata.maxpagesize=N` (max
//!     and default 5000, larger values ignored) with an ABSOLUTE `@odata.nextLink` carrying an
//!     opaque, percent-encoded `$skiptoken` (keyset paging), and `Preference-Applied`. `$skip`,
//!     `$expand`, `$count`, `$apply`, unknown options: `400`.
//!   - `$filter` subset: `<field> eq|ne <literal>` (strings case-insensitive, numbers, bools, null,
//!     GUIDs, date-times), `<field> gt|ge|lt|le <date-time or number>` (e.g. `modifiedon ge
//!     2024-05-01T00:00:00Z`), `and`, `or`, parentheses. Everything else (functions such as
//!     `contains(...)`, `not`, navigation paths, arithmetic, string ordering) is `400`.
//!   - Change tracking: `Prefer: odata.track-changes` on a plain GET (only `$select` allowed; with
//!     `$filter`/`$orderby`/`$top` it is `400`) returns all rows plus an absolute
//!     `@odata.deltaLink` (`...?$select=..&$deltatoken=<n>`). GET on a deltaLink returns rows
//!     created/updated since plus `{"@odata.context":"...$deletedEntity","id":"<guid>","reason":
//!     "deleted"}` for deletes, and a new deltaLink. Paging with maxpagesize works here too (the
//!     deltaLink comes on the last page). Unknown/future delta tokens: `400`.
//!   - `GET <set>(<id>)`, `GET <set>(<altkey>='<v>',...)`: one row or `404`; `$select` honoured.
//!   - `POST <set>`: `204` + `OData-EntityId` (client may supply the key; an existing key gives
//!     `412`); `Prefer: return=representation` gives `201` with the row.
//!   - `PATCH <set>(<key>)`: upsert as in api-facts.md: no header → create or update (`204`);
//!     `If-Match: *` → `404` if missing; `If-None-Match: *` → `412` if it exists; `If-Match:
//!     W/"<v>"` → `412` when stale. Alternate keys (`accounts(accountnumber='A-1')`) are accepted
//!     for any column.
//!   - `DELETE <set>(<key>)`: `204` (`404` if missing); recorded for change tracking.
//!   - Every write stamps `modifiedon` (UTC, milliseconds, `...Z`) and `_modifiedby_value` (from
//!     `CallerObjectId` or `MSCRMCallerID` if present, else the configured integration user); a
//!     create also stamps `createdon`/`_createdby_value`. Every row carries `@odata.etag` (`W/"<v>"`).
//!     `"<nav>@odata.bind": "accounts(<guid>)"` is stored as `_<nav>_value: "<guid>"`.
//!   - `GET WhoAmI`: `{"UserId": <caller or integration user>, ...}`.
//!   - `POST $batch` (`multipart/mixed`): top-level requests and change sets; request lines must
//!     be absolute paths (`/api/data/v9.2/...`), absolute URLs or `$<n>` references (else 400),
//!     (`multipart/mixed; boundary=changeset_..`, atomic: a failure rolls the set back and the
//!     failing response replaces the change set's response), `Content-ID` echo, `$<n>` references
//!     at the start of a URL or as an `@odata.bind` value, at most 1,000 operations. With `Prefer:
//!     odata.continue-on-error` the batch returns `200` with every operation's response;
//!     without it processing stops at the first failure and the batch status is that failure's
//!     status (body: the responses so far, the failing one last). Any method the single-request
//!     API supports works inside a batch (GET not inside a change set).
//!
//! Error bodies look like Dataverse's: `{"error":{"code":"0x...","message":"..."}}`. Links are
//! built from the request's `Host` header, so a client talking through the fault proxy keeps
//! talking through it.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::response::Response;
use serde_json::{json, Map, Value};

use super::token::Tokens;

/// The service root path.
pub const API_PATH: &str = "/api/data/v9.2";

/// Start-up settings of a [`DataverseMock`].
#[derive(Clone, Debug)]
pub struct MockConfig {
    pub tenant: String,
    pub client_id: String,
    pub client_secret: String,
    /// `expires_in` of issued tokens, in seconds; tokens are rejected after that.
    pub token_expires_in: u64,
    /// `_modifiedby_value` of writes without an impersonation header.
    pub integration_user: String,
    /// `_modifiedby_value` given to seeded rows that don't carry one (a "human" user).
    pub seed_user: String,
    /// `(entity set, key field)` pairs.
    pub entity_sets: Vec<(String, String)>,
}

impl Default for MockConfig {
    fn default() -> Self {
        let sets = [
            ("accounts", "accountid"),
            ("contacts", "contactid"),
            ("products", "productid"),
            ("opportunities", "opportunityid"),
            ("salesorders", "salesorderid"),
            ("salesorderdetails", "salesorderdetailid"),
            ("invoices", "invoiceid"),
            ("systemusers", "systemuserid"),
            ("transactioncurrencies", "transactioncurrencyid"),
        ];
        MockConfig {
            tenant: "72f988bf-0000-4000-8000-00000000c0de".into(),
            client_id: "11111111-2222-4333-8444-555555555555".into(),
            client_secret: "mock-client-secret".into(),
            token_expires_in: 3599,
            integration_user: "99999999-0000-4000-8000-000000000001".into(),
            seed_user: "88888888-0000-4000-8000-000000000002".into(),
            entity_sets: sets
                .iter()
                .map(|(s, k)| (s.to_string(), k.to_string()))
                .collect(),
        }
    }
}

/// One request received by the mock.
#[derive(Clone, Debug)]
pub struct MockRequest {
    pub method: String,
    /// Path and query as received (inside a batch: the operation's URL as written).
    pub path_and_query: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// The operation came inside a `$batch`.
    pub in_batch: bool,
}

impl MockRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        header_of(&self.headers, name)
    }
}

#[derive(Clone)]
struct Row {
    data: Map<String, Value>,
    version: u64,
}

#[derive(Clone)]
struct EntitySet {
    key: String,
    rows: BTreeMap<String, Row>,
    /// key -> version of the delete
    deleted: BTreeMap<String, u64>,
}

struct State {
    cfg: MockConfig,
    own_base: String,
    sets: BTreeMap<String, EntitySet>,
    version: u64,
    tokens: Tokens,
    requests: Vec<MockRequest>,
}

/// A running Dataverse mock; see the module docs. Stops on drop.
pub struct DataverseMock {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl DataverseMock {
    /// Starts with [`MockConfig::default`].
    pub fn start() -> DataverseMock {
        Self::start_with(MockConfig::default())
    }

    /// Starts on `127.0.0.1:0` with `cfg`.
    pub fn start_with(cfg: MockConfig) -> DataverseMock {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind mock to 127.0.0.1");
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let addr = listener.local_addr().expect("mock address");
        let sets = cfg
            .entity_sets
            .iter()
            .map(|(s, k)| {
                (
                    s.clone(),
                    EntitySet {
                        key: k.clone(),
                        rows: BTreeMap::new(),
                        deleted: BTreeMap::new(),
                    },
                )
            })
            .collect();
        let tokens = Tokens::new(&cfg.client_id, &cfg.client_secret, cfg.token_expires_in);
        let state = Arc::new(Mutex::new(State {
            cfg,
            own_base: format!("http://{addr}"),
            sets,
            version: 0,
            tokens,
            requests: Vec::new(),
        }));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let app_state = state.clone();
        let thread = std::thread::Builder::new()
            .name(format!("dataverse-mock-{}", addr.port()))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("mock runtime");
                rt.block_on(async move {
                    let listener =
                        tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                    let app = axum::Router::new().fallback(move |req: Request<Body>| {
                        let st = app_state.clone();
                        async move { dispatch(st, req).await }
                    });
                    // Stop without waiting for open connections (bounded shutdown).
                    tokio::select! {
                        _ = axum::serve(listener, app) => {}
                        _ = rx => {}
                    }
                });
                rt.shutdown_timeout(Duration::from_millis(200));
            })
            .expect("spawn mock thread");
        DataverseMock {
            addr,
            state,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:<port>` (no trailing slash): the "organization URI".
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>/api/data/v9.2`.
    pub fn api_url(&self) -> String {
        format!("{}{API_PATH}", self.url())
    }

    /// `http://127.0.0.1:<port>/<tenant>/oauth2/v2.0/token`.
    pub fn token_url(&self) -> String {
        format!("{}/{}/oauth2/v2.0/token", self.url(), self.config().tenant)
    }

    /// `<url>/.default`, the scope a client should ask for.
    pub fn scope(&self) -> String {
        format!("{}/.default", self.url())
    }

    pub fn config(&self) -> MockConfig {
        self.state.lock().unwrap().cfg.clone()
    }

    /// The integration user's GUID (`_modifiedby_value` of writes without impersonation).
    pub fn integration_user(&self) -> String {
        self.config().integration_user
    }

    /// Tokens issued so far.
    pub fn tokens_issued(&self) -> u64 {
        self.state.lock().unwrap().tokens.issued()
    }

    /// `expires_in` of tokens issued from now on.
    pub fn set_token_expiry(&self, secs: u64) {
        self.state.lock().unwrap().tokens.expires_in = secs;
    }

    /// Invalidates every token issued so far (the next API call gets 401).
    pub fn expire_tokens(&self) {
        self.state.lock().unwrap().tokens.expire_all();
    }

    /// Issues a token directly (no HTTP), for tests that don't exercise the token flow.
    pub fn issue_token(&self) -> String {
        self.state.lock().unwrap().tokens.issue()
    }

    /// Inserts or replaces rows. A row without its key gets a new GUID; without `modifiedon` it
    /// gets "now"; without `_modifiedby_value` it gets the configured seed user. Seeded rows are
    /// change-tracked like any write. Panics on an unknown entity set.
    pub fn seed(&self, entity_set: &str, rows: Vec<Value>) {
        let mut st = self.state.lock().unwrap();
        let seed_user = st.cfg.seed_user.clone();
        for row in rows {
            let Value::Object(mut data) = row else {
                panic!("seed rows must be JSON objects")
            };
            st.version += 1;
            let version = st.version;
            let set = st
                .sets
                .get_mut(entity_set)
                .unwrap_or_else(|| panic!("unknown entity set {entity_set}"));
            let key = match data.get(&set.key).and_then(Value::as_str) {
                Some(k) => k.to_ascii_lowercase(),
                None => uuid::Uuid::new_v4().to_string(),
            };
            data.insert(set.key.clone(), Value::String(key.clone()));
            data.entry("modifiedon")
                .or_insert_with(|| Value::String(now_stamp()));
            let created = data_get(&data, "modifiedon");
            data.entry("createdon").or_insert(created);
            data.entry("_modifiedby_value")
                .or_insert_with(|| Value::String(seed_user.clone()));
            set.deleted.remove(&key);
            set.rows.insert(key, Row { data, version });
        }
    }

    /// All rows of a set (ordered by key), as stored (no `@odata.etag`).
    pub fn rows(&self, entity_set: &str) -> Vec<Value> {
        let st = self.state.lock().unwrap();
        st.sets
            .get(entity_set)
            .map(|s| {
                s.rows
                    .values()
                    .map(|r| Value::Object(r.data.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// One row by key.
    pub fn row(&self, entity_set: &str, id: &str) -> Option<Value> {
        let st = self.state.lock().unwrap();
        st.sets
            .get(entity_set)
            .and_then(|s| s.rows.get(&id.to_ascii_lowercase()))
            .map(|r| Value::Object(r.data.clone()))
    }

    /// Updates a row as `modified_by` would in the Dataverse UI (stamps `modifiedon`,
    /// `_modifiedby_value`; change-tracked). Returns false if the row doesn't exist.
    pub fn update(&self, entity_set: &str, id: &str, changes: Value, modified_by: &str) -> bool {
        let mut st = self.state.lock().unwrap();
        st.version += 1;
        let version = st.version;
        let Some(set) = st.sets.get_mut(entity_set) else {
            return false;
        };
        let Some(row) = set.rows.get_mut(&id.to_ascii_lowercase()) else {
            return false;
        };
        if let Value::Object(ch) = changes {
            for (k, v) in ch {
                row.data.insert(k, v);
            }
        }
        row.data
            .insert("modifiedon".into(), Value::String(now_stamp()));
        row.data.insert(
            "_modifiedby_value".into(),
            Value::String(modified_by.to_string()),
        );
        row.version = version;
        true
    }

    /// Deletes a row as a user would (change-tracked). Returns false if it didn't exist.
    pub fn delete(&self, entity_set: &str, id: &str) -> bool {
        let mut st = self.state.lock().unwrap();
        st.version += 1;
        let version = st.version;
        let Some(set) = st.sets.get_mut(entity_set) else {
            return false;
        };
        let key = id.to_ascii_lowercase();
        if set.rows.remove(&key).is_some() {
            set.deleted.insert(key, version);
            true
        } else {
            false
        }
    }

    /// Every request received (token requests and batch operations included), in order.
    pub fn requests(&self) -> Vec<MockRequest> {
        self.state.lock().unwrap().requests.clone()
    }

    pub fn clear_requests(&self) {
        self.state.lock().unwrap().requests.clear();
    }

    /// `http://127.0.0.1:<port>/api/data/v9.2/<set>(<id>)`.
    pub fn entity_url(&self, entity_set: &str, id: &str) -> String {
        format!("{}/{entity_set}({id})", self.api_url())
    }
}

impl Drop for DataverseMock {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------------------------

fn data_get(data: &Map<String, Value>, k: &str) -> Value {
    data.get(k).cloned().unwrap_or(Value::Null)
}

fn now_stamp() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

fn header_of<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn empty(status: u16) -> Resp {
        Resp {
            status,
            headers: vec![("OData-Version".into(), "4.0".into())],
            body: Vec::new(),
        }
    }

    fn json(status: u16, v: &Value) -> Resp {
        Resp {
            status,
            headers: vec![
                (
                    "Content-Type".into(),
                    "application/json; odata.metadata=minimal".into(),
                ),
                ("OData-Version".into(), "4.0".into()),
            ],
            body: v.to_string().into_bytes(),
        }
    }

    fn error(status: u16, code: &str, message: &str) -> Resp {
        Self::json(
            status,
            &json!({"error": {"code": code, "message": message}}),
        )
    }

    fn bad(message: &str) -> Resp {
        Self::error(400, "0x80060888", message)
    }

    fn header(mut self, k: &str, v: impl Into<String>) -> Resp {
        self.headers.push((k.to_string(), v.into()));
        self
    }

    fn into_response(self) -> Response {
        let mut b = Response::builder()
            .status(StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
        for (k, v) in &self.headers {
            b = b.header(k.as_str(), v.as_str());
        }
        b.body(Body::from(self.body)).unwrap()
    }
}

fn headers_vec(h: &HeaderMap) -> Vec<(String, String)> {
    h.iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).to_string(),
            )
        })
        .collect()
}

async fn dispatch(state: Arc<Mutex<State>>, req: Request<Body>) -> Response {
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, 64 * 1024 * 1024).await {
        Ok(b) => b,
        Err(_) => return Resp::bad("unreadable body").into_response(),
    };
    let headers = headers_vec(&parts.headers);
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let method = parts.method.as_str().to_string();
    let mut st = state.lock().unwrap();
    st.requests.push(MockRequest {
        method: method.clone(),
        path_and_query: path_and_query.clone(),
        headers: headers.clone(),
        body: String::from_utf8_lossy(&body).to_string(),
        in_batch: false,
    });
    let base = header_of(&headers, "host")
        .map(|h| format!("http://{h}"))
        .unwrap_or_else(|| st.own_base.clone());
    let (path, query) = match path_and_query.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (path_and_query.clone(), String::new()),
    };

    let token_path = format!("/{}/oauth2/v2.0/token", st.cfg.tenant);
    if path.ends_with("/oauth2/v2.0/token") {
        if method != "POST" {
            return Resp::error(405, "invalid_request", "use POST").into_response();
        }
        if path != token_path {
            return Resp::json(400, &json!({"error":"invalid_request","error_description":"AADSTS90002: Tenant not found."})).into_response();
        }
        let (status, answer) = st.tokens.respond(&body);
        return Resp::json(status, &answer).into_response();
    }

    let Some(rest) = path.strip_prefix(API_PATH) else {
        return Resp::error(404, "0x80060888", "Resource not found for the segment.")
            .into_response();
    };
    let rest = rest.trim_start_matches('/').to_string();

    // Authorization
    if !st.tokens.accepts(header_of(&headers, "authorization")) {
        return Resp::json(401, &json!({"error":{"code":"0x80040220","message":"Bearer token missing, invalid or expired."}}))
            .header(
                "WWW-Authenticate",
                format!("Bearer authorization_uri={}{}", base, token_path.trim_end_matches("/token")),
            )
            .into_response();
    }

    let api = ApiReq {
        method: method.clone(),
        path: rest,
        query,
        headers,
        body: body.to_vec(),
        base,
        in_batch: false,
        caller_default: None,
    };
    let resp = if api.path == "$batch" {
        if method != "POST" {
            Resp::error(405, "0x80060888", "$batch needs POST")
        } else {
            batch(&mut st, &api)
        }
    } else {
        handle_api(&mut st, &api)
    };
    resp.into_response()
}

// ---------------------------------------------------------------------------------------------
// Web API
// ---------------------------------------------------------------------------------------------

struct ApiReq {
    method: String,
    /// Path below the service root, e.g. `accounts(…)`.
    path: String,
    /// Raw query string (no `?`).
    query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// `http://host:port` for links.
    base: String,
    in_batch: bool,
    /// Impersonation header of the enclosing batch.
    caller_default: Option<String>,
}

impl ApiReq {
    fn header(&self, name: &str) -> Option<&str> {
        header_of(&self.headers, name)
    }

    fn prefer(&self) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("prefer"))
            .flat_map(|(_, v)| v.split(',').map(|s| s.trim().to_string()))
            .filter(|s| !s.is_empty())
            .collect()
    }

    fn caller(&self) -> Option<String> {
        self.header("callerobjectid")
            .or_else(|| self.header("mscrmcallerid"))
            .map(|s| s.trim().to_ascii_lowercase())
            .or_else(|| self.caller_default.clone())
    }

    fn api_base(&self) -> String {
        format!("{}{API_PATH}", self.base)
    }
}

/// The resource a path addresses.
enum Target {
    Collection(String),
    /// set, key spec
    Entity(String, KeySpec),
}

#[derive(Clone)]
enum KeySpec {
    Id(String),
    Alternate(Vec<(String, Value)>),
}

fn is_guid(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok() && s.len() == 36
}

fn parse_target(path: &str) -> Result<Target, Resp> {
    let path = url_decode(path);
    if let Some(open) = path.find('(') {
        if !path.ends_with(')') {
            return Err(Resp::bad(&format!("unsupported path {path}")));
        }
        let set = path[..open].to_string();
        let inner = &path[open + 1..path.len() - 1];
        if is_guid(inner.trim()) {
            return Ok(Target::Entity(
                set,
                KeySpec::Id(inner.trim().to_ascii_lowercase()),
            ));
        }
        let mut pairs = Vec::new();
        for part in split_top_level(inner, ',') {
            let Some((k, v)) = part.split_once('=') else {
                return Err(Resp::bad(&format!("bad key segment ({inner})")));
            };
            let lit = parse_literal_text(v.trim()).map_err(|e| Resp::bad(&e))?;
            pairs.push((k.trim().to_string(), lit.to_json()));
        }
        if pairs.is_empty() {
            return Err(Resp::bad("empty key"));
        }
        Ok(Target::Entity(set, KeySpec::Alternate(pairs)))
    } else if path.contains('/') || path.is_empty() {
        Err(Resp::error(
            404,
            "0x80060888",
            &format!("Resource not found for the segment '{path}'."),
        ))
    } else {
        Ok(Target::Collection(path))
    }
}

/// Splits on `sep` outside single-quoted strings.
fn split_top_level(s: &str, sep: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_str = false;
    for c in s.chars() {
        if c == '\'' {
            in_str = !in_str;
        }
        if c == sep && !in_str {
            out.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    out.push(cur);
    out
}

fn url_decode(s: &str) -> String {
    // Path segments: %XX decoding without '+' handling.
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).to_string()
}

fn entity_not_found(set: &str, key: &KeySpec) -> Resp {
    let k = match key {
        KeySpec::Id(id) => format!("Id = {id}"),
        KeySpec::Alternate(p) => p
            .iter()
            .map(|(k, v)| format!("{k} = {v}"))
            .collect::<Vec<_>>()
            .join(", "),
    };
    Resp::error(404, "0x80040217", &format!("{set} With {k} Does Not Exist"))
}

fn find_key(set: &EntitySet, key: &KeySpec) -> Option<String> {
    match key {
        KeySpec::Id(id) => set.rows.contains_key(id).then(|| id.clone()),
        KeySpec::Alternate(pairs) => set
            .rows
            .iter()
            .find(|(_, r)| {
                pairs
                    .iter()
                    .all(|(k, v)| values_equal(r.data.get(k).unwrap_or(&Value::Null), v))
            })
            .map(|(k, _)| k.clone()),
    }
}

fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) => x.eq_ignore_ascii_case(y),
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn handle_api(st: &mut State, req: &ApiReq) -> Resp {
    if req.path == "WhoAmI" {
        let user = req
            .caller()
            .unwrap_or_else(|| st.cfg.integration_user.clone());
        return Resp::json(
            200,
            &json!({
                "@odata.context": format!("{}/$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse", req.api_base()),
                "BusinessUnitId": "00000000-0000-4000-8000-0000000000b0",
                "UserId": user,
                "OrganizationId": "00000000-0000-4000-8000-0000000000c0",
            }),
        );
    }
    let target = match parse_target(&req.path) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let set_name = match &target {
        Target::Collection(s) | Target::Entity(s, _) => s.clone(),
    };
    if !st.sets.contains_key(&set_name) {
        return Resp::error(
            404,
            "0x80060888",
            &format!("Resource not found for the segment '{set_name}'."),
        );
    }
    match (req.method.as_str(), target) {
        ("GET", Target::Collection(_)) => get_collection(st, req, &set_name),
        ("GET", Target::Entity(_, key)) => get_entity(st, req, &set_name, &key),
        ("POST", Target::Collection(_)) => create(st, req, &set_name),
        ("PATCH", Target::Entity(_, key)) => patch(st, req, &set_name, &key),
        ("DELETE", Target::Entity(_, key)) => delete(st, req, &set_name, &key),
        (m, _) => Resp::error(
            405,
            "0x80060888",
            &format!("{m} is not supported on this resource"),
        ),
    }
}

// ---- query options ----

struct Query {
    select: Option<Vec<String>>,
    filter: Option<Expr>,
    orderby: Vec<(String, bool)>,
    top: Option<usize>,
    skiptoken: Option<Cookie>,
    deltatoken: Option<u64>,
    /// raw `name=value` pairs as received, in order
    raw: Vec<(String, String)>,
}

fn parse_query(raw_query: &str) -> Result<Query, Resp> {
    let mut q = Query {
        select: None,
        filter: None,
        orderby: Vec::new(),
        top: None,
        skiptoken: None,
        deltatoken: None,
        raw: Vec::new(),
    };
    for piece in raw_query.split('&').filter(|p| !p.is_empty()) {
        let (rk, rv) = piece.split_once('=').unwrap_or((piece, ""));
        let name: String = url::form_urlencoded::parse(format!("k={rk}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        let value: String = url::form_urlencoded::parse(format!("k={rv}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        q.raw.push((name.clone(), piece.to_string()));
        match name.as_str() {
            "$select" => {
                let cols: Vec<String> = value.split(',').map(|s| s.trim().to_string()).collect();
                if cols.iter().any(|c| !is_ident(c)) {
                    return Err(Resp::bad(&format!("bad $select: {value}")));
                }
                q.select = Some(cols);
            }
            "$filter" => {
                q.filter =
                    Some(parse_filter(&value).map_err(|e| Resp::bad(&format!("$filter: {e}")))?)
            }
            "$orderby" => {
                for part in value.split(',') {
                    let mut words = part.split_whitespace();
                    let field = words.next().unwrap_or("");
                    let dir = words.next().unwrap_or("asc");
                    if !is_ident(field)
                        || words.next().is_some()
                        || !(dir == "asc" || dir == "desc")
                    {
                        return Err(Resp::bad(&format!("bad $orderby: {value}")));
                    }
                    q.orderby.push((field.to_string(), dir == "desc"));
                }
            }
            "$top" => match value.trim().parse::<usize>() {
                Ok(n) => q.top = Some(n),
                Err(_) => return Err(Resp::bad(&format!("bad $top: {value}"))),
            },
            "$skiptoken" => {
                q.skiptoken =
                    Some(Cookie::parse(&value).ok_or_else(|| Resp::bad("invalid $skiptoken"))?)
            }
            "$deltatoken" => {
                let n = value.split('!').next().unwrap_or("").trim().parse::<u64>();
                q.deltatoken = Some(n.map_err(|_| Resp::bad("invalid $deltatoken"))?);
            }
            other => {
                return Err(Resp::bad(&format!(
                    "The query parameter {other} is not supported by this mock"
                )))
            }
        }
    }
    Ok(q)
}

fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The `$skiptoken` "paging cookie": keyset position of the last row served and, for
/// change-tracking queries, the snapshot version.
struct Cookie {
    page: u64,
    last: Vec<Value>,
    ver: Option<u64>,
}

impl Cookie {
    fn encode(&self) -> String {
        let last_hex: String = serde_json::to_string(&self.last)
            .unwrap()
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect();
        let ver = self
            .ver
            .map(|v| format!(" ver=\"{v}\""))
            .unwrap_or_default();
        let raw = format!(
            "<cookie pagenumber=\"{}\" last=\"{last_hex}\"{ver} />",
            self.page
        );
        url::form_urlencoded::byte_serialize(raw.as_bytes())
            .collect::<String>()
            .replace('+', "%20")
    }

    fn parse(decoded: &str) -> Option<Cookie> {
        let attr = |name: &str| -> Option<String> {
            let start = decoded.find(&format!("{name}=\""))? + name.len() + 2;
            let end = decoded[start..].find('"')? + start;
            Some(decoded[start..end].to_string())
        };
        let hex = attr("last")?;
        if hex.len() % 2 != 0 {
            return None;
        }
        let bytes: Option<Vec<u8>> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
            .collect();
        let last: Vec<Value> = serde_json::from_slice(&bytes?).ok()?;
        Some(Cookie {
            page: attr("pagenumber")?.parse().ok()?,
            last,
            ver: attr("ver").and_then(|v| v.parse().ok()),
        })
    }
}

fn project(row: &Row, key: &str, select: &Option<Vec<String>>) -> Value {
    let mut out = Map::new();
    out.insert(
        "@odata.etag".into(),
        Value::String(format!("W/\"{}\"", row.version)),
    );
    match select {
        None => {
            for (k, v) in &row.data {
                out.insert(k.clone(), v.clone());
            }
        }
        Some(cols) => {
            for c in cols {
                out.insert(c.clone(), data_get(&row.data, c));
            }
            out.insert(key.to_string(), data_get(&row.data, key));
        }
    }
    Value::Object(out)
}

fn context_url(req: &ApiReq, set: &str, select: &Option<Vec<String>>, entity: bool) -> String {
    let sel = select
        .as_ref()
        .map(|c| format!("({})", c.join(",")))
        .unwrap_or_default();
    let ent = if entity { "/$entity" } else { "" };
    format!("{}/$metadata#{set}{sel}{ent}", req.api_base())
}

/// Total order used for sorting and keyset paging.
fn cmp_values(a: &Value, b: &Value) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Null => 0,
            Value::Bool(_) => 1,
            Value::Number(_) => 2,
            Value::String(_) => 3,
            _ => 4,
        }
    }
    match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .unwrap_or(0.0)
            .partial_cmp(&y.as_f64().unwrap_or(0.0))
            .unwrap_or(Ordering::Equal),
        (Value::String(x), Value::String(y)) => match (parse_dt(x), parse_dt(y)) {
            (Some(dx), Some(dy)) => dx.cmp(&dy),
            _ => x.to_lowercase().cmp(&y.to_lowercase()),
        },
        _ => rank(a).cmp(&rank(b)),
    }
}

fn cmp_tuples(a: &[Value], b: &[Value], desc: &[bool]) -> std::cmp::Ordering {
    for (i, (x, y)) in a.iter().zip(b.iter()).enumerate() {
        let mut o = cmp_values(x, y);
        if desc.get(i).copied().unwrap_or(false) {
            o = o.reverse();
        }
        if o != std::cmp::Ordering::Equal {
            return o;
        }
    }
    a.len().cmp(&b.len())
}

fn parse_dt(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    if let Ok(d) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(d.with_timezone(&chrono::Utc));
    }
    if s.len() == 10 {
        let d = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
        return Some(d.and_hms_opt(0, 0, 0)?.and_utc());
    }
    None
}

fn get_collection(st: &mut State, req: &ApiReq, set_name: &str) -> Resp {
    let q = match parse_query(&req.query) {
        Ok(q) => q,
        Err(r) => return r,
    };
    let prefer = req.prefer();
    let track = prefer.iter().any(|p| p == "odata.track-changes") || q.deltatoken.is_some();
    let mut applied = Vec::new();
    let mut page_size = 5000usize;
    for p in &prefer {
        if let Some(n) = p.strip_prefix("odata.maxpagesize=") {
            match n.trim().parse::<usize>() {
                Ok(n) if (1..=5000).contains(&n) => {
                    page_size = n;
                    applied.push(format!("odata.maxpagesize={n}"));
                }
                Ok(_) => {}
                Err(_) => return Resp::bad("bad odata.maxpagesize"),
            }
        }
    }
    if track {
        if q.filter.is_some() || !q.orderby.is_empty() || q.top.is_some() {
            return Resp::bad("$filter, $orderby, $top and $expand are not supported with change tracking (odata.track-changes).");
        }
        if prefer.iter().any(|p| p == "odata.track-changes") {
            applied.push("odata.track-changes".into());
        }
    }
    let current_version = st.version;
    let set = &st.sets[set_name];
    let key = set.key.clone();

    // (sort tuple, output value)
    let mut items: Vec<(Vec<Value>, Value)> = Vec::new();
    let desc: Vec<bool>;
    let mut snapshot = None;
    if track {
        let snap = q
            .skiptoken
            .as_ref()
            .and_then(|c| c.ver)
            .unwrap_or(current_version);
        snapshot = Some(snap);
        let since = q.deltatoken.unwrap_or(0);
        if since > current_version {
            return Resp::bad("Invalid or expired $deltatoken.");
        }
        for (k, row) in &set.rows {
            let in_range = row.version <= snap && (q.deltatoken.is_none() || row.version > since);
            if in_range {
                items.push((
                    vec![json!(0), Value::String(k.clone())],
                    project(row, &key, &q.select),
                ));
            }
        }
        if q.deltatoken.is_some() {
            for (k, v) in &set.deleted {
                if *v > since && *v <= snap {
                    items.push((
                        vec![json!(1), Value::String(k.clone())],
                        json!({
                            "@odata.context": format!("{}/$metadata#{set_name}/$deletedEntity", req.api_base()),
                            "id": k,
                            "reason": "deleted",
                        }),
                    ));
                }
            }
        }
        desc = vec![false, false];
    } else {
        for row in set.rows.values() {
            if let Some(f) = &q.filter {
                if !f.eval(&row.data) {
                    continue;
                }
            }
            let mut tuple: Vec<Value> = q
                .orderby
                .iter()
                .map(|(f, _)| data_get(&row.data, f))
                .collect();
            tuple.push(data_get(&row.data, &key));
            items.push((tuple, project(row, &key, &q.select)));
        }
        let mut d: Vec<bool> = q.orderby.iter().map(|(_, d)| *d).collect();
        d.push(false);
        desc = d;
    }
    items.sort_by(|a, b| cmp_tuples(&a.0, &b.0, &desc));
    if let Some(top) = q.top {
        items.truncate(top);
    }
    if let Some(c) = &q.skiptoken {
        items.retain(|(t, _)| cmp_tuples(t, &c.last, &desc) == std::cmp::Ordering::Greater);
    }
    let more = items.len() > page_size;
    items.truncate(page_size);

    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        Value::String(context_url(req, set_name, &q.select, false)),
    );
    let last_tuple = items.last().map(|(t, _)| t.clone());
    body.insert(
        "value".into(),
        Value::Array(items.into_iter().map(|(_, v)| v).collect()),
    );
    if more {
        let page = q.skiptoken.as_ref().map(|c| c.page).unwrap_or(1) + 1;
        let cookie = Cookie {
            page,
            last: last_tuple.unwrap_or_default(),
            ver: snapshot,
        };
        let mut parts: Vec<String> = q
            .raw
            .iter()
            .filter(|(n, _)| n != "$skiptoken")
            .map(|(_, raw)| raw.clone())
            .collect();
        parts.push(format!("$skiptoken={}", cookie.encode()));
        body.insert(
            "@odata.nextLink".into(),
            Value::String(format!("{}/{set_name}?{}", req.api_base(), parts.join("&"))),
        );
    } else if let Some(snap) = snapshot {
        let mut parts: Vec<String> = q
            .raw
            .iter()
            .filter(|(n, _)| n == "$select")
            .map(|(_, raw)| raw.clone())
            .collect();
        parts.push(format!("$deltatoken={snap}"));
        body.insert(
            "@odata.deltaLink".into(),
            Value::String(format!("{}/{set_name}?{}", req.api_base(), parts.join("&"))),
        );
    }
    let mut resp = Resp::json(200, &Value::Object(body));
    if !applied.is_empty() {
        resp = resp.header("Preference-Applied", applied.join(","));
    }
    resp
}

fn get_entity(st: &mut State, req: &ApiReq, set_name: &str, key: &KeySpec) -> Resp {
    let q = match parse_query(&req.query) {
        Ok(q) => q,
        Err(r) => return r,
    };
    if q.filter.is_some()
        || q.top.is_some()
        || !q.orderby.is_empty()
        || q.skiptoken.is_some()
        || q.deltatoken.is_some()
    {
        return Resp::bad("only $select is supported on a single entity");
    }
    let set = &st.sets[set_name];
    let Some(k) = find_key(set, key) else {
        return entity_not_found(set_name, key);
    };
    let row = &set.rows[&k];
    let mut v = project(row, &set.key, &q.select);
    v.as_object_mut().unwrap().insert(
        "@odata.context".into(),
        Value::String(context_url(req, set_name, &q.select, true)),
    );
    Resp::json(200, &v).header("ETag", format!("W/\"{}\"", row.version))
}

/// Turns a request body into columns: `x@odata.bind` → `_x_value`, other annotations dropped.
fn body_columns(req: &ApiReq) -> Result<Map<String, Value>, Resp> {
    if req.body.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(Map::new());
    }
    let v: Value = serde_json::from_slice(&req.body)
        .map_err(|e| Resp::bad(&format!("invalid JSON body: {e}")))?;
    let Value::Object(obj) = v else {
        return Err(Resp::bad("body must be a JSON object"));
    };
    let mut out = Map::new();
    for (k, v) in obj {
        if let Some(nav) = k.strip_suffix("@odata.bind") {
            let id = match &v {
                Value::Null => Value::Null,
                Value::String(s) => {
                    let inner = s
                        .rsplit_once('(')
                        .and_then(|(_, r)| r.strip_suffix(')'))
                        .map(str::trim)
                        .filter(|i| is_guid(i));
                    match inner {
                        Some(i) => Value::String(i.to_ascii_lowercase()),
                        None => return Err(Resp::bad(&format!("bad @odata.bind value {s}"))),
                    }
                }
                _ => return Err(Resp::bad("bad @odata.bind value")),
            };
            out.insert(format!("_{nav}_value"), id);
        } else if k.starts_with('@') || k.contains("@odata.") {
            continue;
        } else {
            out.insert(k, v);
        }
    }
    Ok(out)
}

fn entity_id_url(req: &ApiReq, set: &str, key: &str) -> String {
    format!("{}/{set}({key})", req.api_base())
}

fn write_row(
    st: &mut State,
    req: &ApiReq,
    set_name: &str,
    existing: Option<String>,
    new_key: Option<String>,
    cols: Map<String, Value>,
) -> (String, bool) {
    let user = req
        .caller()
        .unwrap_or_else(|| st.cfg.integration_user.clone());
    st.version += 1;
    let version = st.version;
    let stamp = now_stamp();
    let set = st.sets.get_mut(set_name).unwrap();
    let key_field = set.key.clone();
    match existing {
        Some(k) => {
            let row = set.rows.get_mut(&k).unwrap();
            for (c, v) in cols {
                if c != key_field {
                    row.data.insert(c, v);
                }
            }
            row.data.insert("modifiedon".into(), Value::String(stamp));
            row.data
                .insert("_modifiedby_value".into(), Value::String(user));
            row.version = version;
            (k, false)
        }
        None => {
            let k = new_key.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
            let mut data = cols;
            data.insert(key_field, Value::String(k.clone()));
            data.insert("createdon".into(), Value::String(stamp.clone()));
            data.insert("modifiedon".into(), Value::String(stamp));
            data.insert("_createdby_value".into(), Value::String(user.clone()));
            data.insert("_modifiedby_value".into(), Value::String(user));
            set.deleted.remove(&k);
            set.rows.insert(k.clone(), Row { data, version });
            (k, true)
        }
    }
}

fn written_response(st: &State, req: &ApiReq, set_name: &str, key: &str, created: bool) -> Resp {
    let url = entity_id_url(req, set_name, key);
    if req.prefer().iter().any(|p| p == "return=representation") {
        let set = &st.sets[set_name];
        let row = &set.rows[key];
        let mut v = project(row, &set.key, &None);
        v.as_object_mut().unwrap().insert(
            "@odata.context".into(),
            Value::String(context_url(req, set_name, &None, true)),
        );
        return Resp::json(if created { 201 } else { 200 }, &v)
            .header("OData-EntityId", url)
            .header("ETag", format!("W/\"{}\"", row.version))
            .header("Preference-Applied", "return=representation");
    }
    Resp::empty(204).header("OData-EntityId", url)
}

fn key_from_body(cols: &Map<String, Value>, key_field: &str) -> Result<Option<String>, Resp> {
    match cols.get(key_field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if is_guid(s) => Ok(Some(s.to_ascii_lowercase())),
        Some(_) => Err(Resp::bad(&format!("{key_field} must be a GUID"))),
    }
}

fn create(st: &mut State, req: &ApiReq, set_name: &str) -> Resp {
    let q = match parse_query(&req.query) {
        Ok(q) => q,
        Err(r) => return r,
    };
    if !q.raw.is_empty() && q.select.is_none() {
        return Resp::bad("query options are not supported on create");
    }
    let cols = match body_columns(req) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let key_field = st.sets[set_name].key.clone();
    let supplied = match key_from_body(&cols, &key_field) {
        Ok(k) => k,
        Err(r) => return r,
    };
    if let Some(k) = &supplied {
        if st.sets[set_name].rows.contains_key(k) {
            return Resp::error(
                412,
                "0x80040237",
                "A record with matching key values already exists.",
            );
        }
    }
    let (k, created) = write_row(st, req, set_name, None, supplied, cols);
    written_response(st, req, set_name, &k, created)
}

fn etag_matches(header: &str, version: u64) -> bool {
    header
        .split(',')
        .map(str::trim)
        .any(|t| t == "*" || t == format!("W/\"{version}\"") || t == format!("\"{version}\""))
}

fn patch(st: &mut State, req: &ApiReq, set_name: &str, key: &KeySpec) -> Resp {
    if !req.query.is_empty() {
        return Resp::bad("query options are not supported on PATCH");
    }
    let mut cols = match body_columns(req) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let set = &st.sets[set_name];
    let key_field = set.key.clone();
    let body_key = match key_from_body(&cols, &key_field) {
        Ok(k) => k,
        Err(r) => return r,
    };
    if let (KeySpec::Id(id), Some(bk)) = (key, &body_key) {
        if id != bk {
            return Resp::bad("The key in the body does not match the key in the URL.");
        }
    }
    let existing = find_key(set, key);
    let if_match = req.header("if-match");
    let if_none_match = req.header("if-none-match");
    match (&existing, if_match, if_none_match) {
        (Some(_), _, Some(inm)) if inm.trim() == "*" => {
            return Resp::error(
                412,
                "0x80040237",
                "A record with matching key values already exists.",
            );
        }
        (None, Some(_), _) => return entity_not_found(set_name, key),
        (Some(k), Some(im), _) if !etag_matches(im, set.rows[k].version) => {
            return Resp::error(
                412,
                "0x80060882",
                "The version of the existing record doesn't match the RowVersion property provided.",
            );
        }
        _ => {}
    }
    let new_key = match key {
        KeySpec::Id(id) => Some(id.clone()),
        KeySpec::Alternate(pairs) => {
            if existing.is_none() {
                for (k, v) in pairs {
                    cols.insert(k.clone(), v.clone());
                }
            }
            body_key
        }
    };
    let (k, created) = write_row(st, req, set_name, existing, new_key, cols);
    written_response(st, req, set_name, &k, created)
}

fn delete(st: &mut State, req: &ApiReq, set_name: &str, key: &KeySpec) -> Resp {
    let set = &st.sets[set_name];
    let Some(k) = find_key(set, key) else {
        return entity_not_found(set_name, key);
    };
    if let Some(im) = req.header("if-match") {
        if !etag_matches(im, set.rows[&k].version) {
            return Resp::error(
                412,
                "0x80060882",
                "The version of the existing record doesn't match the RowVersion property provided.",
            );
        }
    }
    st.version += 1;
    let version = st.version;
    let set = st.sets.get_mut(set_name).unwrap();
    set.rows.remove(&k);
    set.deleted.insert(k, version);
    Resp::empty(204)
}

// ---- $filter ----

#[derive(Clone, Debug)]
enum Lit {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Guid(String),
    Dt(chrono::DateTime<chrono::Utc>, String),
}

impl Lit {
    fn to_json(&self) -> Value {
        match self {
            Lit::Null => Value::Null,
            Lit::Bool(b) => Value::Bool(*b),
            Lit::Num(n) => json!(n),
            Lit::Str(s) => Value::String(s.clone()),
            Lit::Guid(g) => Value::String(g.clone()),
            Lit::Dt(_, raw) => Value::String(raw.clone()),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

#[derive(Debug)]
enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Cmp(String, Op, Lit),
}

impl Expr {
    fn eval(&self, row: &Map<String, Value>) -> bool {
        match self {
            Expr::And(a, b) => a.eval(row) && b.eval(row),
            Expr::Or(a, b) => a.eval(row) || b.eval(row),
            Expr::Cmp(field, op, lit) => {
                let v = row.get(field).unwrap_or(&Value::Null);
                let ord: Option<std::cmp::Ordering> = match (lit, v) {
                    (Lit::Null, Value::Null) => Some(std::cmp::Ordering::Equal),
                    (Lit::Null, _) => None,
                    (_, Value::Null) => None,
                    (Lit::Bool(b), Value::Bool(x)) => Some(x.cmp(b)),
                    (Lit::Num(n), Value::Number(x)) => x.as_f64().and_then(|x| x.partial_cmp(n)),
                    (Lit::Num(n), Value::String(s)) => {
                        s.parse::<f64>().ok().and_then(|x| x.partial_cmp(n))
                    }
                    (Lit::Str(s), Value::String(x)) => {
                        Some(x.to_lowercase().cmp(&s.to_lowercase()))
                    }
                    (Lit::Guid(g), Value::String(x)) => {
                        Some(x.to_ascii_lowercase().cmp(&g.to_ascii_lowercase()))
                    }
                    (Lit::Dt(d, _), Value::String(x)) => parse_dt(x).map(|x| x.cmp(d)),
                    _ => None,
                };
                use std::cmp::Ordering::*;
                match (op, ord) {
                    (Op::Eq, o) => o == Some(Equal),
                    (Op::Ne, o) => o != Some(Equal),
                    (_, None) => false,
                    (Op::Gt, Some(o)) => o == Greater,
                    (Op::Ge, Some(o)) => o != Less,
                    (Op::Lt, Some(o)) => o == Less,
                    (Op::Le, Some(o)) => o != Greater,
                }
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    LParen,
    RParen,
    Str(String),
    Word(String),
}

fn tokenize(s: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '(' {
            out.push(Tok::LParen);
            i += 1;
        } else if c == ')' {
            out.push(Tok::RParen);
            i += 1;
        } else if c == '\'' {
            let mut lit = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err("unterminated string literal".into()),
                    Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                        lit.push('\'');
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(ch) => {
                        lit.push(*ch);
                        i += 1;
                    }
                }
            }
            out.push(Tok::Str(lit));
        } else if c.is_ascii_alphanumeric() || "_.:+-".contains(c) {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || "_.:+-".contains(chars[i]))
            {
                i += 1;
            }
            out.push(Tok::Word(chars[start..i].iter().collect()));
        } else {
            return Err(format!("unsupported character '{c}'"));
        }
    }
    Ok(out)
}

fn parse_literal_text(s: &str) -> Result<Lit, String> {
    if let Some(inner) = s.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')) {
        return Ok(Lit::Str(inner.replace("''", "'")));
    }
    parse_word_literal(s)
}

fn parse_word_literal(w: &str) -> Result<Lit, String> {
    match w {
        "null" => return Ok(Lit::Null),
        "true" => return Ok(Lit::Bool(true)),
        "false" => return Ok(Lit::Bool(false)),
        _ => {}
    }
    if is_guid(w) {
        return Ok(Lit::Guid(w.to_ascii_lowercase()));
    }
    if let Some(d) = parse_dt(w) {
        return Ok(Lit::Dt(d, w.to_string()));
    }
    if let Ok(n) = w.parse::<f64>() {
        if w.chars()
            .all(|c| c.is_ascii_digit() || c == '.' || c == '-')
        {
            return Ok(Lit::Num(n));
        }
    }
    Err(format!("unsupported literal '{w}'"))
}

fn parse_filter(s: &str) -> Result<Expr, String> {
    let toks = tokenize(s)?;
    let mut pos = 0;
    let e = parse_or(&toks, &mut pos)?;
    if pos != toks.len() {
        return Err(format!("unexpected token {:?}", toks[pos]));
    }
    Ok(e)
}

fn parse_or(t: &[Tok], pos: &mut usize) -> Result<Expr, String> {
    let mut left = parse_and(t, pos)?;
    while t.get(*pos) == Some(&Tok::Word("or".into())) {
        *pos += 1;
        let right = parse_and(t, pos)?;
        left = Expr::Or(Box::new(left), Box::new(right));
    }
    Ok(left)
}

fn parse_and(t: &[Tok], pos: &mut usize) -> Result<Expr, String> {
    let mut left = parse_primary(t, pos)?;
    while t.get(*pos) == Some(&Tok::Word("and".into())) {
        *pos += 1;
        let right = parse_primary(t, pos)?;
        left = Expr::And(Box::new(left), Box::new(right));
    }
    Ok(left)
}

fn parse_primary(t: &[Tok], pos: &mut usize) -> Result<Expr, String> {
    match t.get(*pos) {
        Some(Tok::LParen) => {
            *pos += 1;
            let e = parse_or(t, pos)?;
            if t.get(*pos) != Some(&Tok::RParen) {
                return Err("missing ')'".into());
            }
            *pos += 1;
            Ok(e)
        }
        Some(Tok::Word(field)) => {
            if field == "not" {
                return Err("'not' is not supported".into());
            }
            if !is_ident(field) {
                return Err(format!("unsupported operand '{field}'"));
            }
            if t.get(*pos + 1) == Some(&Tok::LParen) {
                return Err(format!("function '{field}' is not supported"));
            }
            let op = match t.get(*pos + 1) {
                Some(Tok::Word(w)) => match w.as_str() {
                    "eq" => Op::Eq,
                    "ne" => Op::Ne,
                    "gt" => Op::Gt,
                    "ge" => Op::Ge,
                    "lt" => Op::Lt,
                    "le" => Op::Le,
                    other => return Err(format!("unsupported operator '{other}'")),
                },
                other => return Err(format!("expected operator after '{field}', got {other:?}")),
            };
            let lit = match t.get(*pos + 2) {
                Some(Tok::Str(s)) => Lit::Str(s.clone()),
                Some(Tok::Word(w)) => parse_word_literal(w)?,
                other => return Err(format!("expected literal, got {other:?}")),
            };
            if !matches!(op, Op::Eq | Op::Ne) && !matches!(lit, Lit::Num(_) | Lit::Dt(..)) {
                return Err("ordering comparisons need a number or date-time literal".into());
            }
            *pos += 3;
            Ok(Expr::Cmp(field.clone(), op, lit))
        }
        other => Err(format!("unexpected {other:?}")),
    }
}

// ---------------------------------------------------------------------------------------------
// $batch (multipart/mixed)
// ---------------------------------------------------------------------------------------------

struct Part {
    headers: Vec<(String, String)>,
    body: String,
}

fn boundary_of(content_type: &str) -> Option<String> {
    content_type.split(';').map(str::trim).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_string())
    })
}

/// Splits a multipart body (already normalised to `\n` line ends) into parts.
fn split_multipart(body: &str, boundary: &str) -> Result<Vec<Part>, String> {
    let delim = format!("--{boundary}");
    let mut parts = Vec::new();
    let mut segments = body.split(&delim);
    segments.next(); // preamble
    let mut closed = false;
    for seg in segments {
        if seg.starts_with("--") {
            closed = true;
            break;
        }
        let seg = seg.strip_prefix('\n').unwrap_or(seg);
        let seg = seg.strip_suffix('\n').unwrap_or(seg);
        let (head, body) = match seg.split_once("\n\n") {
            Some((h, b)) => (h, b),
            None => (seg, ""),
        };
        let headers = head
            .lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        parts.push(Part {
            headers,
            body: body.to_string(),
        });
    }
    if !closed {
        return Err(format!("missing closing delimiter --{boundary}--"));
    }
    Ok(parts)
}

struct Op1 {
    content_id: Option<String>,
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: String,
}

fn parse_http_part(part: &Part) -> Result<Op1, String> {
    let ct = header_of(&part.headers, "content-type").unwrap_or("");
    if !ct.to_ascii_lowercase().starts_with("application/http") {
        return Err(format!(
            "part Content-Type must be application/http, got '{ct}'"
        ));
    }
    let mut content_id = header_of(&part.headers, "content-id").map(str::to_string);
    let text = part.body.trim_start_matches('\n');
    let (head, body) = match text.split_once("\n\n") {
        Some((h, b)) => (h, b),
        None => (text, ""),
    };
    let mut lines = head.lines();
    let request_line = lines.next().ok_or("empty operation")?;
    let mut rl = request_line.split_whitespace();
    let method = rl.next().ok_or("no method")?.to_ascii_uppercase();
    let url = rl.next().ok_or("no URL")?.to_string();
    // Microsoft documents batch request lines as absolute paths (`/api/data/v9.2/...`) or
    // absolute URLs (or `$<n>` references); a path relative to the service root is refused.
    let absolute = url.starts_with('$')
        || url.starts_with(&format!("{API_PATH}/"))
        || ((url.starts_with("http://") || url.starts_with("https://"))
            && url.contains(&format!("{API_PATH}/")));
    if !absolute {
        return Err(format!(
            "The request line URL '{url}' of a batch part is not an absolute path ({API_PATH}/...) nor an absolute URL."
        ));
    }
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    if content_id.is_none() {
        content_id = header_of(&headers, "content-id").map(str::to_string);
    }
    Ok(Op1 {
        content_id,
        method,
        url,
        headers,
        body: body.trim_end_matches('\n').to_string(),
    })
}

enum Item {
    Single(Op1),
    ChangeSet(String, Vec<Op1>),
}

fn render_part(out: &mut String, boundary: &str, content_id: Option<&str>, r: &Resp) {
    out.push_str(&format!("--{boundary}\r\n"));
    out.push_str("Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n");
    if let Some(id) = content_id {
        out.push_str(&format!("Content-ID: {id}\r\n"));
    }
    out.push_str("\r\n");
    let reason = StatusCode::from_u16(r.status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    out.push_str(&format!("HTTP/1.1 {} {reason}\r\n", r.status));
    for (k, v) in &r.headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(&String::from_utf8_lossy(&r.body));
    out.push_str("\r\n");
}

/// Resolves `$n` references and the URL forms allowed in a batch to a service-relative path.
fn resolve_op_url(url: &str, refs: &HashMap<String, String>) -> Result<(String, String), String> {
    let mut u = url.to_string();
    if let Some(r) = u.strip_prefix('$') {
        let digits: String = r.chars().take_while(|c| c.is_ascii_digit()).collect();
        if !digits.is_empty() {
            let target = refs
                .get(&digits)
                .ok_or_else(|| format!("Content-ID reference ${digits} not found"))?;
            u = format!("{target}{}", &r[digits.len()..]);
        }
    }
    if let Some(i) = u.find(API_PATH) {
        u = u[i + API_PATH.len()..].to_string();
    }
    let u = u.trim_start_matches('/').to_string();
    Ok(match u.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (u, String::new()),
    })
}

fn resolve_body_refs(body: &str, refs: &HashMap<String, String>) -> String {
    let mut out = body.to_string();
    // Longest ids first so "$10" isn't replaced by "$1".
    let mut ids: Vec<&String> = refs.keys().collect();
    ids.sort_by_key(|k| std::cmp::Reverse(k.len()));
    for id in ids {
        out = out.replace(&format!("\"${id}\""), &format!("\"{}\"", refs[id]));
    }
    out
}

fn run_op(
    st: &mut State,
    outer: &ApiReq,
    op: &Op1,
    refs: &mut HashMap<String, String>,
    in_changeset: bool,
) -> Resp {
    let (path, query) = match resolve_op_url(&op.url, refs) {
        Ok(x) => x,
        Err(e) => return Resp::bad(&e),
    };
    if in_changeset && op.method == "GET" {
        return Resp::bad("GET is not allowed inside a change set");
    }
    let body = resolve_body_refs(&op.body, refs);
    st.requests.push(MockRequest {
        method: op.method.clone(),
        path_and_query: op.url.clone(),
        headers: op.headers.clone(),
        body: body.clone(),
        in_batch: true,
    });
    let req = ApiReq {
        method: op.method.clone(),
        path,
        query,
        headers: op.headers.clone(),
        body: body.into_bytes(),
        base: outer.base.clone(),
        in_batch: true,
        caller_default: outer.caller(),
    };
    let resp = if req.path == "$batch" {
        Resp::bad("batches can't be nested")
    } else {
        handle_api(st, &req)
    };
    if let (Some(id), Some(eid)) = (&op.content_id, header_of(&resp.headers, "OData-EntityId")) {
        refs.insert(id.clone(), eid.to_string());
    }
    resp
}

fn batch(st: &mut State, req: &ApiReq) -> Resp {
    let ct = req.header("content-type").unwrap_or("");
    if !ct.to_ascii_lowercase().starts_with("multipart/mixed") {
        return Resp::bad("This mock supports only multipart/mixed $batch requests.");
    }
    let Some(boundary) = boundary_of(ct) else {
        return Resp::bad("multipart/mixed without boundary");
    };
    let text = String::from_utf8_lossy(&req.body).replace("\r\n", "\n");
    let parts = match split_multipart(&text, &boundary) {
        Ok(p) => p,
        Err(e) => return Resp::bad(&e),
    };
    let mut items = Vec::new();
    let mut n_ops = 0usize;
    for part in &parts {
        let pct = header_of(&part.headers, "content-type").unwrap_or("");
        if pct.to_ascii_lowercase().starts_with("multipart/mixed") {
            let Some(cs_boundary) = boundary_of(pct) else {
                return Resp::bad("change set without boundary");
            };
            let sub = match split_multipart(&part.body, &cs_boundary) {
                Ok(p) => p,
                Err(e) => return Resp::bad(&e),
            };
            let mut ops = Vec::new();
            for sp in &sub {
                match parse_http_part(sp) {
                    Ok(op) => ops.push(op),
                    Err(e) => return Resp::bad(&e),
                }
            }
            n_ops += ops.len();
            items.push(Item::ChangeSet(cs_boundary, ops));
        } else {
            match parse_http_part(part) {
                Ok(op) => items.push(Item::Single(op)),
                Err(e) => return Resp::bad(&e),
            }
            n_ops += 1;
        }
    }
    if n_ops > 1000 {
        return Resp::bad("The number of requests in a batch exceeds the limit of 1000.");
    }
    let continue_on_error = req.prefer().iter().any(|p| p == "odata.continue-on-error");
    let resp_boundary = format!("batchresponse_{}", uuid::Uuid::new_v4());
    let mut out = String::new();
    let mut refs: HashMap<String, String> = HashMap::new();
    let mut failed_status = None;
    for item in &items {
        match item {
            Item::Single(op) => {
                let r = run_op(st, req, op, &mut refs, false);
                render_part(&mut out, &resp_boundary, op.content_id.as_deref(), &r);
                if r.status >= 400 {
                    failed_status = Some(r.status);
                }
            }
            Item::ChangeSet(_, ops) => {
                let saved_sets = st.sets.clone();
                let saved_version = st.version;
                let saved_refs = refs.clone();
                let mut results = Vec::new();
                let mut failure = None;
                for op in ops {
                    let r = run_op(st, req, op, &mut refs, true);
                    if r.status >= 400 {
                        failure = Some((op.content_id.clone(), r));
                        break;
                    }
                    results.push((op.content_id.clone(), r));
                }
                match failure {
                    Some((cid, r)) => {
                        st.sets = saved_sets;
                        st.version = saved_version;
                        refs = saved_refs;
                        render_part(&mut out, &resp_boundary, cid.as_deref(), &r);
                        failed_status = Some(r.status);
                    }
                    None => {
                        let cs_resp = format!("changesetresponse_{}", uuid::Uuid::new_v4());
                        out.push_str(&format!("--{resp_boundary}\r\n"));
                        out.push_str(&format!(
                            "Content-Type: multipart/mixed; boundary={cs_resp}\r\n\r\n"
                        ));
                        for (cid, r) in &results {
                            render_part(&mut out, &cs_resp, cid.as_deref(), r);
                        }
                        out.push_str(&format!("--{cs_resp}--\r\n"));
                    }
                }
            }
        }
        if failed_status.is_some() && !continue_on_error {
            break;
        }
    }
    out.push_str(&format!("--{resp_boundary}--\r\n"));
    let status = match (failed_status, continue_on_error) {
        (Some(s), false) => s,
        _ => 200,
    };
    let mut resp = Resp {
        status,
        headers: vec![
            (
                "Content-Type".into(),
                format!("multipart/mixed; boundary={resp_boundary}"),
            ),
            ("OData-Version".into(), "4.0".into()),
        ],
        body: out.into_bytes(),
    };
    if continue_on_error {
        resp = resp.header("Preference-Applied", "odata.continue-on-error");
    }
    resp
}
