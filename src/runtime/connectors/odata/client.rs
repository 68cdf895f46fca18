//! The client both HTTP connectors use: requests with the endpoint's headers, sending through
//! [`Http`] (its one retry loop), JSON reads with paging, `$count`, and batched writes in the
//! endpoint's `$batch` format, falling back to single requests where a server refuses `$batch`.
//! Every failure is a [`ConnectorError`] whose kind comes from the status or the transport, and
//! whose message names the endpoint and is scrubbed of secrets.

use super::batch::{self, BatchOp, BatchResponse};
use crate::config::Auth;
use crate::runtime::connector::{ConnectorError, ErrorKind};
use crate::runtime::connectors::auth::TokenSource;
use crate::runtime::connectors::http::{path_of, Http, HttpOptions, Req, Resp};
use reqwest::Method;
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use url::Url;

/// How an endpoint takes several operations in one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchFormat {
    /// `multipart/mixed`, every operation outside change sets (Dataverse).
    Multipart,
    /// OData 4.01 JSON batch (Business Central).
    Json,
}

/// How the chunks of one write are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunks {
    /// All at once, bounded by the endpoint's concurrency limit.
    Concurrent,
    /// One after the other.
    Sequential,
}

pub struct Client {
    /// "Dataverse", "Business Central": the start of every message.
    name: &'static str,
    pub root: Url,
    pub http: Arc<Http>,
    /// Sent with every request, before `Accept`.
    headers: Vec<(String, String)>,
    format: BatchFormat,
    use_batch: bool,
    /// The server answered a `$batch` as one it does not take: single requests from then on.
    batch_refused: AtomicBool,
}

impl Client {
    /// A client for the service root `url` (https, or http on loopback), with tokens when `auth`
    /// is given. No request is sent yet.
    pub fn new(
        name: &'static str,
        url: &str,
        auth: Option<&Auth>,
        options: HttpOptions,
        headers: Vec<(String, String)>,
        format: BatchFormat,
        use_batch: bool,
    ) -> Result<Client, ConnectorError> {
        let root = crate::config::check_url(url.trim_end_matches('/'), "url")
            .map_err(ConnectorError::configuration)?;
        let tokens = match auth {
            Some(a) => Some(Arc::new(TokenSource::new(a, &root)?) as _),
            None => None,
        };
        let http = Arc::new(Http::new(&root, options, tokens)?);
        Ok(Client {
            name,
            root,
            http,
            headers,
            format,
            use_batch,
            batch_refused: AtomicBool::new(false),
        })
    }

    /// A refusal in this endpoint's words.
    pub fn err(&self, e: impl std::fmt::Display) -> ConnectorError {
        self.fail(ErrorKind::Rejected, e)
    }

    pub fn fail(&self, kind: ErrorKind, e: impl std::fmt::Display) -> ConnectorError {
        ConnectorError::of(kind, self.http.scrub(&format!("{}: {e}", self.name)))
    }

    /// `e` in this endpoint's words, its kind kept.
    pub fn named(&self, e: ConnectorError) -> ConnectorError {
        self.fail(e.kind, e.message)
    }

    pub fn url(&self, path: &str, params: &[(&str, String)]) -> Result<Url, ConnectorError> {
        super::url(&self.root, path, params).map_err(|e| self.named(e))
    }

    pub fn req(&self, method: Method, url: Url) -> Req {
        self.req_accepting(method, url, "application/json")
    }

    fn req_accepting(&self, method: Method, url: Url, accept: &str) -> Req {
        let mut r = Req::new(method, url);
        for (k, v) in &self.headers {
            r = r.header(k, v.clone());
        }
        r.header("Accept", accept)
    }

    pub async fn send(&self, req: &Req) -> Result<Resp, ConnectorError> {
        self.http.send(req).await.map_err(|e| self.named(e))
    }

    /// A GET of JSON with `Prefer` values (none: no header); any status but 2xx is a failure.
    pub async fn get_json(
        &self,
        url: Url,
        prefer: &[String],
    ) -> Result<(Value, Url), ConnectorError> {
        let mut req = self.req(Method::GET, url.clone());
        if !prefer.is_empty() {
            req = req.header("Prefer", prefer.join(","));
        }
        let resp = self.send(&req).await?;
        if !resp.ok() {
            return Err(self.named(resp.failure(&format!("GET {}", path_of(&url)))));
        }
        Ok((resp.json().map_err(|e| self.named(e))?, url))
    }

    /// The page after `json` (its `@odata.nextLink`), or None after the last.
    pub async fn next_page(
        &self,
        json: &Value,
        url: &Url,
        prefer: &[String],
    ) -> Result<Option<(Value, Url)>, ConnectorError> {
        match super::next_link(json, url)? {
            Some(next) => self.get_json(next, prefer).await.map(Some),
            None => Ok(None),
        }
    }

    /// `GET <path>/$count`, the filter pushed down.
    pub async fn count(&self, path: &str, filter: Option<String>) -> Result<u64, ConnectorError> {
        let params: Vec<(&str, String)> = filter.map(|f| ("$filter", f)).into_iter().collect();
        let url = self.url(&format!("{path}/$count"), &params)?;
        let req = self.req_accepting(Method::GET, url, "text/plain");
        let resp = self.send(&req).await?;
        if !resp.ok() {
            return Err(self.named(resp.failure(&format!("counting `{path}`"))));
        }
        let text = resp.text();
        text.trim()
            .trim_start_matches('\u{feff}')
            .parse::<u64>()
            .map_err(|_| self.err(format!("counting `{path}`: not a number: {text}")))
    }

    /// Sends write operations in chunks of `size`: one result per operation, in order. The
    /// messages are the record's own (not prefixed with the endpoint: they go to its failure).
    pub async fn write(
        &self,
        ops: &[BatchOp],
        size: usize,
        chunks: Chunks,
    ) -> Vec<Result<BatchResponse, ConnectorError>> {
        let parts: Vec<&[BatchOp]> = ops.chunks(size.max(1)).collect();
        let answers = match chunks {
            Chunks::Concurrent => {
                futures::future::join_all(parts.iter().map(|c| self.send_chunk(c))).await
            }
            Chunks::Sequential => {
                let mut out = Vec::with_capacity(parts.len());
                for c in &parts {
                    out.push(self.send_chunk(c).await);
                }
                out
            }
        };
        answers
            .into_iter()
            .flatten()
            .map(|r| r.map_err(|e| ConnectorError::of(e.kind, self.http.scrub(&e.message))))
            .collect()
    }

    /// One chunk: a `$batch`, or single requests (one operation, `$batch` off or refused).
    async fn send_chunk(&self, ops: &[BatchOp]) -> Vec<Result<BatchResponse, ConnectorError>> {
        if ops.len() > 1 && self.use_batch && !self.batch_refused.load(Ordering::Relaxed) {
            match self.send_batch(ops).await {
                Some(answers) => return answers,
                None => self.batch_refused.store(true, Ordering::Relaxed),
            }
            // A refusal with an unreadable answer may come from a proxy after the server ran the
            // batch: a request that may be sent only once is not sent again one by one now; it
            // stays in doubt (looked for next run) and later chunks go one by one.
            if ops.iter().any(|o| o.once) {
                let e = ConnectorError::of(
                    ErrorKind::Transient,
                    "the server refused the $batch with an unreadable answer; a create that may be sent only once was not sent again: it is looked for on the next run",
                );
                return ops.iter().map(|_| Err(e.clone())).collect();
            }
        }
        futures::future::join_all(ops.iter().map(|op| self.send_single(op))).await
    }

    /// A `$batch` of `ops`; None when the server does not take `$batch` (nothing was written).
    async fn send_batch(
        &self,
        ops: &[BatchOp],
    ) -> Option<Vec<Result<BatchResponse, ConnectorError>>> {
        let all = |e: ConnectorError| Some(ops.iter().map(|_| Err(e.clone())).collect());
        let url = match super::url(&self.root, "$batch", &[]) {
            Ok(u) => u,
            Err(e) => return all(e),
        };
        let req = match self.format {
            BatchFormat::Multipart => {
                let boundary = format!("batch_{}", uuid::Uuid::new_v4());
                let body = batch::multipart_batch(ops, &boundary, self.root.path());
                // Dataverse's batches hold upserts by the key coupler chose, `If-Match`
                // updates and deletes: sent twice, they leave the same records (unless an
                // operation says it is sent `once`).
                let req = self.req_accepting(Method::POST, url, "multipart/mixed");
                let req = match ops.iter().any(|o| o.once) {
                    true => req,
                    false => req.replayable(),
                };
                req.header("Prefer", "odata.continue-on-error")
                    .body(&format!("multipart/mixed; boundary={boundary}"), body)
            }
            BatchFormat::Json => self.req(Method::POST, url).json(&batch::json_batch(ops)),
        };
        let resp = match self.http.send(&req).await {
            Ok(r) => r,
            Err(e) => return all(e),
        };
        let ct = resp.header("content-type").unwrap_or_default().to_string();
        let json = ct.starts_with("application/json");
        let parsed = if json {
            resp.json().and_then(|j| batch::parse_json_batch(&j))
        } else {
            batch::parse_multipart(&ct, &resp.body)
        };
        // A server without `$batch` refuses it as a whole; one that answers a batch, whatever
        // the status, carried some of it out, and sending the requests again could make twice.
        let refused = matches!(resp.status, 400 | 404 | 405 | 415 | 501);
        match parsed {
            Ok(answers) if !answers.is_empty() && (resp.ok() || refused) => {
                Some(batch::match_answers(answers, ops.len(), !json))
            }
            _ if refused => None,
            _ if !resp.ok() => all(resp.failure("$batch")),
            Ok(answers) => Some(batch::match_answers(answers, ops.len(), !json)),
            Err(e) => all(e),
        }
    }

    async fn send_single(&self, op: &BatchOp) -> Result<BatchResponse, ConnectorError> {
        let url = Url::parse(&format!(
            "{}/{}",
            self.root.as_str().trim_end_matches('/'),
            op.url
        ))
        .map_err(|e| ConnectorError::configuration(format!("`{}`: {e}", op.url)))?;
        let method = Method::from_bytes(op.method.as_bytes())
            .map_err(|e| ConnectorError::configuration(e.to_string()))?;
        let mut req = self.req(method, url);
        if op.once {
            req.replayable = false;
        }
        for (k, v) in &op.headers {
            req = req.header(k, v.clone());
        }
        if let Some(b) = &op.body {
            req = req.json(b);
        }
        let resp = self.http.send(&req).await?;
        Ok(BatchResponse {
            answers: None,
            status: resp.status,
            headers: resp
                .headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
                .collect(),
            body: resp.body,
        })
    }
}
