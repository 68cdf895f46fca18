//! The HTTP client the connectors share: rustls with certificate verification (never turned
//! off), plain `http://` only to loopback addresses, a per-endpoint concurrency limit, bounded
//! retries (429 honouring `Retry-After`; 5xx, timeouts and connection errors with exponential
//! backoff and jitter), bearer tokens renewed on 401, and a request counter.
//!
//! A 429 pauses the whole endpoint, not just the request that got it: the limits it signals
//! (Business Central's requests per user and window, Dataverse's service protection) count every
//! request of the connector, so the others would only collect 429s of their own meanwhile. Every
//! request waits, holding its concurrency slot, until the pause the last 429 asked for is over.
//!
//! No error message, log line or `Debug` output of this module contains the client secret or a
//! bearer token: every message is scrubbed of them before it leaves (see [`Http::scrub`]).

use crate::runtime::connector::{ConnectorError, ErrorKind};
use async_trait::async_trait;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use reqwest::Method;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use url::Url;

/// Limits and retry behaviour of one endpoint.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Requests in flight at once (Dataverse allows 52 per user, Business Central 5).
    pub concurrency: usize,
    /// Retries after the first attempt, for 429, 5xx, timeouts and connection errors.
    pub max_retries: u32,
    /// The first backoff; doubled on every retry, with jitter.
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// The longest `Retry-After` honoured; a longer one is cut to this.
    pub max_retry_after: Duration,
    /// One request, from sending to the last byte of the body. A request that timed out is
    /// tried once more at most: a server that does not answer costs two timeouts, not six.
    pub timeout: Duration,
    /// The largest response body read (bytes); a larger one is an error, read no further.
    pub max_body: usize,
}

impl HttpOptions {
    pub fn dataverse() -> HttpOptions {
        HttpOptions {
            concurrency: 52,
            ..HttpOptions::default()
        }
    }

    pub fn business_central() -> HttpOptions {
        HttpOptions {
            concurrency: 5,
            ..HttpOptions::default()
        }
    }
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            concurrency: 5,
            max_retries: 5,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(300),
            timeout: Duration::from_secs(120),
            max_body: 100 * MB,
        }
    }
}

/// A megabyte, as `limits.max_response_mb` counts them.
pub const MB: usize = 1024 * 1024;

/// Where bearer tokens come from ([`super::auth::TokenSource`]). A trait, so this module does
/// not depend on auth: auth sends its token requests through [`Http::send_plain`].
#[async_trait]
pub trait Bearer: Send + Sync + std::fmt::Debug {
    /// A valid token (the cached one, or a new one asked from `http`).
    async fn token(&self, http: &Http) -> Result<String, ConnectorError>;
    /// Forgets `token` (rejected with 401) unless it was already replaced.
    async fn invalidate(&self, token: &str);
    /// `text` without the secret or any token handed out.
    fn scrub(&self, text: &str) -> String;
    /// Whether `bytes` hold the secret or a token handed out.
    fn exposes(&self, bytes: &[u8]) -> bool;
}

/// One request. The body is bytes with its content type.
#[derive(Clone)]
pub struct Req {
    pub method: Method,
    pub url: Url,
    pub headers: Vec<(String, String)>,
    pub body: Option<(String, Vec<u8>)>,
    /// Whether sending it again after the server may have acted on it is harmless. A `POST`
    /// create is not: resent after a lost answer it makes the record twice. Such a request is
    /// retried only when it cannot have been acted on (the connection was never made, or a
    /// 429); otherwise its failure says the outcome is unknown.
    pub replayable: bool,
}

impl Req {
    pub fn new(method: Method, url: Url) -> Req {
        Req {
            replayable: method != Method::POST,
            method,
            url,
            headers: Vec::new(),
            body: None,
        }
    }

    /// Marks a request that may be sent again whatever became of the last attempt (a token
    /// request; a `$batch` of upserts by key, `If-Match` updates and deletes).
    pub fn replayable(mut self) -> Req {
        self.replayable = true;
        self
    }

    pub fn get(url: Url) -> Req {
        Req::new(Method::GET, url)
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Req {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    pub fn json(mut self, body: &serde_json::Value) -> Req {
        self.body = Some((
            "application/json".into(),
            serde_json::to_vec(body).unwrap_or_default(),
        ));
        self
    }

    pub fn body(mut self, content_type: &str, body: Vec<u8>) -> Req {
        self.body = Some((content_type.to_string(), body));
        self
    }
}

/// A response with its whole body.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub url: Url,
}

impl Resp {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Result<serde_json::Value, ConnectorError> {
        if self.body.is_empty() {
            return Ok(serde_json::Value::Null);
        }
        serde_json::from_slice(&self.body).map_err(|e| {
            // A garbled or cut answer: asking again may well get a whole one.
            ConnectorError::of(
                ErrorKind::Transient,
                format!(
                    "{} {}: the response is not JSON ({e})",
                    self.status,
                    path_of(&self.url)
                ),
            )
        })
    }

    /// The failure this answer is, with the kind its status says (see [`ErrorKind::of_status`]).
    pub fn failure(&self, what: &str) -> ConnectorError {
        ConnectorError::of(
            ErrorKind::of_status(self.status),
            format!("{what} failed: {}", self.reason()),
        )
    }

    /// The server's reason: the OData `error.message` when there is one, else the body's start.
    pub fn reason(&self) -> String {
        error_reason(self.status, &self.body)
    }
}

/// `404: No record …` from an OData error body (`{"error":{"code","message"}}`).
pub fn error_reason(status: u16, body: &[u8]) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let message = parsed.as_ref().and_then(|v| {
        let e = v.get("error").unwrap_or(v);
        e.get("message")
            .and_then(|m| {
                m.as_str()
                    .map(str::to_string)
                    .or_else(|| m.get("value")?.as_str().map(str::to_string))
            })
            .or_else(|| e.get("error_description")?.as_str().map(str::to_string))
    });
    let text = message.unwrap_or_else(|| {
        let t = String::from_utf8_lossy(body);
        t.chars().take(300).collect::<String>()
    });
    let name = reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    if text.trim().is_empty() {
        format!("{status} {name}")
    } else {
        format!("{status} {name}: {}", text.trim())
    }
}

/// The path and query of a URL, for messages (never credentials: URLs carry none).
pub fn path_of(url: &Url) -> String {
    let mut s = url.path().to_string();
    if let Some(q) = url.query() {
        s.push('?');
        s.push_str(q);
    }
    let decoded = percent_decode(&s);
    if decoded.chars().count() > 1000 {
        format!("{}…", decoded.chars().take(1000).collect::<String>())
    } else {
        decoded
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() && s.is_char_boundary(i + 3) {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The shared client of one endpoint.
pub struct Http {
    client: reqwest::Client,
    limit: Semaphore,
    pub options: HttpOptions,
    /// Every HTTP request sent (retries and token requests included).
    pub requests: Arc<AtomicU64>,
    auth: Option<Arc<dyn Bearer>>,
    /// No request is sent before this instant (set by a 429).
    paused_until: std::sync::Mutex<Option<tokio::time::Instant>>,
}

impl std::fmt::Debug for Http {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http")
            .field("options", &self.options)
            .field("requests", &self.requests.load(Ordering::Relaxed))
            .field("auth", &self.auth)
            .finish()
    }
}

impl Http {
    /// A client for an endpoint; `base` is checked (https, or http on loopback only).
    pub fn new(
        base: &Url,
        options: HttpOptions,
        auth: Option<Arc<dyn Bearer>>,
    ) -> Result<Http, ConnectorError> {
        crate::config::check_url(base.as_str(), "url").map_err(ConnectorError::configuration)?;
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            .https_only(false) // plain http is refused above unless on loopback
            .timeout(options.timeout)
            .connect_timeout(Duration::from_secs(30).min(options.timeout))
            .pool_max_idle_per_host(options.concurrency.max(1))
            .user_agent(concat!("coupler/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                ConnectorError::configuration(format!("cannot build the HTTP client: {e}"))
            })?;
        Ok(Http {
            client,
            limit: Semaphore::new(options.concurrency.max(1)),
            options,
            requests: Arc::new(AtomicU64::new(0)),
            auth,
            paused_until: std::sync::Mutex::new(None),
        })
    }

    pub fn request_count(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    pub fn has_auth(&self) -> bool {
        self.auth.is_some()
    }

    /// Removes the client secret and any bearer token from a message.
    pub fn scrub(&self, text: &str) -> String {
        match &self.auth {
            Some(a) => a.scrub(text),
            None => text.to_string(),
        }
    }

    /// Sends a request with authentication and retries. Any status that is not retried is
    /// returned as a response (the caller decides what a 404 or 412 means); an error is a request
    /// that could not be completed even after its retries (kind transient), or one that cannot
    /// be sent at all (configuration) or got no token (authentication).
    pub async fn send(&self, req: &Req) -> Result<Resp, ConnectorError> {
        self.send_with(req, self.auth.as_deref(), true).await
    }

    /// Sends without authentication and without waiting for the endpoint's pause (the token
    /// request itself), with the same retries.
    pub async fn send_plain(&self, req: &Req) -> Result<Resp, ConnectorError> {
        self.send_with(req, None, false).await
    }

    /// The one retry loop: 401 renews the token once, 429 pauses the endpoint (`gated`: its own
    /// requests) or waits (the token endpoint's), transient answers and transport errors back
    /// off; anything else is the answer.
    async fn send_with(
        &self,
        req: &Req,
        auth: Option<&dyn Bearer>,
        gated: bool,
    ) -> Result<Resp, ConnectorError> {
        let mut renewed = false;
        let mut attempt: u32 = 0;
        let mut timeouts: u32 = 0;
        loop {
            let token = match auth {
                Some(a) => Some(a.token(self).await?),
                None => None,
            };
            let outcome = self.attempt(req, token.as_deref(), gated).await;
            let mut timed_out = false;
            let (throttled, why) = match outcome {
                Ok(resp) if resp.status == 401 && !renewed => {
                    if let (Some(a), Some(t)) = (auth, &token) {
                        // The token may have been revoked or expired early: renew it once.
                        renewed = true;
                        a.invalidate(t).await;
                        continue;
                    }
                    return Ok(resp);
                }
                Ok(resp) if resp.status == 429 => {
                    let wait = retry_after(&resp)
                        .map(|d| d.min(self.options.max_retry_after))
                        .unwrap_or_else(|| self.backoff(attempt));
                    if gated {
                        // Every request of the endpoint waits this out before it is sent.
                        self.pause(wait);
                    }
                    (Some(wait), format!("throttled: {}", resp.reason()))
                }
                // The server may have acted on it: only a replayable request is sent again.
                Ok(resp) if retried_status(resp.status) && req.replayable => (None, resp.reason()),
                Ok(resp) => return Ok(resp),
                Err(Failed {
                    error,
                    sent,
                    timed_out: t,
                }) if error.kind == ErrorKind::Transient => {
                    timed_out = t;
                    if sent && !req.replayable {
                        return Err(ConnectorError::of(
                            ErrorKind::Transient,
                            format!(
                                "{} {}: {}; not sent again, whether it was carried out is unknown",
                                req.method,
                                path_of(&req.url),
                                error.message
                            ),
                        ));
                    }
                    (None, error.message)
                }
                Err(Failed { error, .. }) => return Err(error),
            };
            if timed_out {
                timeouts += 1;
            }
            if attempt >= self.options.max_retries || timeouts > 1 {
                return Err(ConnectorError::of(
                    ErrorKind::Transient,
                    self.scrub(&format!(
                        "{} {} failed after {} attempts: {why}",
                        req.method,
                        path_of(&req.url),
                        attempt + 1
                    )),
                ));
            }
            let delay = match throttled {
                Some(_) if gated => Duration::ZERO, // the pause is waited out in `attempt`
                Some(wait) => wait,
                None => self.backoff(attempt),
            };
            attempt += 1;
            tokio::time::sleep(delay).await;
        }
    }

    /// Exponential backoff with jitter: a random delay between half and all of base·2^n.
    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .options
            .base_delay
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.options.max_delay);
        let factor: f64 = 0.5 + rand::random::<f64>() * 0.5;
        exp.mul_f64(factor)
    }

    /// Pauses every request of this endpoint for `wait` from now (never shortens a pause).
    fn pause(&self, wait: Duration) {
        let until = tokio::time::Instant::now() + wait;
        let mut p = self.paused_until.lock().unwrap_or_else(|e| e.into_inner());
        if p.is_none_or(|t| t < until) {
            *p = Some(until);
        }
    }

    /// Waits until no pause is in force (a pause may be extended while waiting).
    async fn wait_for_pause(&self) {
        loop {
            let until = *self.paused_until.lock().unwrap_or_else(|e| e.into_inner());
            match until {
                Some(t) if t > tokio::time::Instant::now() => tokio::time::sleep_until(t).await,
                _ => return,
            }
        }
    }

    /// One attempt: waits for a slot (and, when `gated`, for the endpoint's pause), sends, reads
    /// the whole body. Errors are scrubbed texts, with whether the request may have reached the
    /// server.
    async fn attempt(&self, req: &Req, token: Option<&str>, gated: bool) -> Result<Resp, Failed> {
        let unsent = |error| Failed {
            error,
            sent: false,
            timed_out: false,
        };
        let _permit = self.limit.acquire().await.map_err(|_| {
            unsent(ConnectorError::of(
                ErrorKind::Transient,
                "the HTTP client is shutting down",
            ))
        })?;
        if gated {
            self.wait_for_pause().await;
        }
        self.requests.fetch_add(1, Ordering::Relaxed);
        let mut b = self.client.request(req.method.clone(), req.url.clone());
        let mut headers = HeaderMap::new();
        for (k, v) in &req.headers {
            let name = reqwest::header::HeaderName::from_bytes(k.as_bytes()).map_err(|_| {
                unsent(ConnectorError::configuration(format!(
                    "invalid header name `{k}`"
                )))
            })?;
            let value = HeaderValue::from_str(v).map_err(|_| {
                unsent(ConnectorError::configuration(format!(
                    "invalid value for header `{k}`"
                )))
            })?;
            headers.append(name, value);
        }
        if let Some(t) = token {
            let mut value = HeaderValue::from_str(&format!("Bearer {t}")).map_err(|_| {
                unsent(ConnectorError::of(
                    ErrorKind::Authentication,
                    "the access token is not a valid header value",
                ))
            })?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        b = b.headers(headers);
        if let Some((ct, body)) = &req.body {
            b = b
                .header(reqwest::header::CONTENT_TYPE, ct.as_str())
                .body(body.clone());
        }
        // A connection never made cannot have delivered the request; anything later may have.
        let resp = b
            .send()
            .await
            .map_err(|e| self.failed(&e, !e.is_connect()))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let url = resp.url().clone();
        let body = self.read_body(resp, req).await?;
        // A token request's answer is the new token (which may be one handed out before):
        // only its refusals are scrubbed.
        let ok = (200..300).contains(&status);
        let body = if gated || !ok {
            self.scrub_body(body)
        } else {
            body
        };
        Ok(Resp {
            status,
            headers,
            body,
            url,
        })
    }

    /// The whole body, refused (and read no further) once it is larger than `max_body`.
    async fn read_body(&self, mut resp: reqwest::Response, req: &Req) -> Result<Vec<u8>, Failed> {
        let limit = self.options.max_body;
        let too_large = || {
            Failed {
            error: ConnectorError::configuration(format!(
                "{} {}: the response is larger than {} MB (`limits.max_response_mb` in the profile)",
                req.method,
                path_of(&req.url),
                limit.div_ceil(MB)
            )),
            sent: true,
            timed_out: false,
        }
        };
        if resp.content_length().is_some_and(|n| n > limit as u64) {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.failed(&e, true))? {
            if body.len() + chunk.len() > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// A body without the secret or a token: scrubbed as it arrives, so no message cut from
    /// it later can hold part of one. Searched first: a body without any is not copied.
    fn scrub_body(&self, body: Vec<u8>) -> Vec<u8> {
        match &self.auth {
            Some(a) if a.exposes(&body) => a.scrub(&String::from_utf8_lossy(&body)).into_bytes(),
            _ => body,
        }
    }

    fn failed(&self, e: &reqwest::Error, sent: bool) -> Failed {
        Failed {
            error: self.describe(e),
            sent,
            timed_out: e.is_timeout(),
        }
    }

    /// A transport error in words, with its causes, scrubbed: transient (a timeout, a refused
    /// connection, a body cut off are worth another attempt).
    fn describe(&self, e: &reqwest::Error) -> ConnectorError {
        let timeout = format!("timed out after {} s", self.options.timeout.as_secs_f64());
        let what = if e.is_timeout() {
            timeout.as_str()
        } else if e.is_connect() {
            "could not connect"
        } else if e.is_body() || e.is_decode() {
            "the response broke off"
        } else {
            "request failed"
        };
        let mut causes = Vec::new();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            causes.push(s.to_string());
            source = s.source();
        }
        causes.dedup();
        let text = if causes.is_empty() {
            what.to_string()
        } else {
            format!("{what} ({})", causes.join(": "))
        };
        ConnectorError::of(ErrorKind::Transient, self.scrub(&text))
    }
}

/// An attempt that got no answer: the error, and whether the request may have reached the server.
struct Failed {
    error: ConnectorError,
    sent: bool,
    timed_out: bool,
}

/// Statuses worth another attempt (besides 429): the server errors [`ErrorKind::of_status`]
/// calls transient (not "not implemented" or "version not supported", which no retry changes).
fn retried_status(status: u16) -> bool {
    status >= 500 && ErrorKind::of_status(status) == ErrorKind::Transient
}

/// `Retry-After`: seconds, or an HTTP date.
pub fn retry_after(resp: &Resp) -> Option<Duration> {
    parse_retry_after(resp.header("retry-after")?, chrono::Utc::now())
}

pub fn parse_retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = v.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            // A hostile value (1e30) must not panic: too long is the longest (then capped).
            return Some(Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX));
        }
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let wait = when.with_timezone(&chrono::Utc) - now;
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_retry_after_does_not_panic() {
        let now = chrono::Utc::now();
        assert_eq!(parse_retry_after("1e30", now), Some(Duration::MAX));
        assert_eq!(
            parse_retry_after("99999999999999999999", now),
            Some(Duration::MAX)
        );
    }

    #[test]
    fn retry_after_takes_seconds_and_dates() {
        let now = chrono::DateTime::parse_from_rfc3339("2015-10-21T07:28:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:05 GMT", now),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn plain_http_only_on_loopback() {
        for ok in [
            "http://127.0.0.1:4004/api",
            "http://127.1.2.3/x",
            "http://localhost:1/x",
            "http://[::1]:8080/x",
            "https://org.crm.dynamics.com/api/data/v9.2",
        ] {
            let u = Url::parse(ok).unwrap();
            assert!(Http::new(&u, HttpOptions::default(), None).is_ok(), "{ok}");
        }
        for bad in [
            "http://org.crm.dynamics.com/api/data/v9.2",
            "http://10.0.0.1/x",
            "http://localhost.evil.com/x",
            "ftp://127.0.0.1/x",
        ] {
            let u = Url::parse(bad).unwrap();
            let e = Http::new(&u, HttpOptions::default(), None).unwrap_err();
            assert_eq!(e.kind, ErrorKind::Configuration, "{bad}");
            let e = e.to_string();
            assert!(e.contains("http") || e.contains("scheme"), "{bad}: {e}");
        }
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let u = Url::parse("http://127.0.0.1/").unwrap();
        let h = Http::new(
            &u,
            HttpOptions {
                base_delay: Duration::from_millis(100),
                max_delay: Duration::from_millis(1000),
                ..HttpOptions::default()
            },
            None,
        )
        .unwrap();
        for n in 0..10 {
            let d = h.backoff(n);
            let full = Duration::from_millis(100 * (1 << n)).min(Duration::from_millis(1000));
            assert!(d >= full / 2 && d <= full, "{n}: {d:?}");
        }
    }
}
