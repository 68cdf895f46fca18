//! A fault-injecting HTTP proxy for tests.
//!
//! [`FaultProxy`] is a reverse proxy listening on `127.0.0.1:<free port>` in front of a real
//! upstream server (CAP, or the Dataverse mock). It forwards method, path+query, headers (minus
//! hop-by-hop headers) and body unchanged and returns the upstream status, headers and body. On
//! the way it can inject the faults a Dataverse / Business Central client has to survive:
//!
//! | fault | setter | effect |
//! |---|---|---|
//! | concurrency limit | [`FaultProxy::max_concurrent`] | more than `n` requests in flight: `429` at once, `Retry-After: 1` |
//! | rate limit | [`FaultProxy::rate_limit`] | more than `max` admitted requests in the sliding `window`: `429`, `Retry-After` = seconds until a slot frees |
//! | throttling | [`FaultProxy::throttle_429`] | the next `n` requests get `429` with `Retry-After: <secs>` |
//! | dropped connection | [`FaultProxy::drop_connection_every_nth`] | every n-th request: the TCP connection is closed without a response |
//! | server error | [`FaultProxy::fail_every_nth_with`] | every n-th request gets `status` (e.g. 503) |
//! | latency | [`FaultProxy::latency`] | forwarded requests are delayed |
//! | spoiled answer | [`Faults::with_spoiled_answers`] | after forwarding: the answer lost, cut, garbled, its batch parts reordered, dropped or repeated, or a 500 ([`AnswerFault`]) |
//!
//! The checks run in the order of that table, and the first fault that applies wins. "Every n-th"
//! counts all requests received by the proxy (1-based), so with `n = 5` requests 5, 10, 15, ... are
//! hit. The rate limit window only holds requests it admitted (rejected ones don't extend the
//! penalty). Latency applies only to requests that are forwarded.
//!
//! The proxy speaks HTTP/1.1 itself (keep-alive, `Content-Length` and chunked request bodies) so
//! it can drop a connection at exactly the right moment; upstream calls go through `reqwest`
//! (no redirects followed, no system proxy). It runs its own tokio runtime on a background thread,
//! so synchronous tests can use it too, and it stops when dropped.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::answers;
pub use super::answers::AnswerFault;

/// Largest request head (request line + headers) the proxy accepts.
const MAX_HEAD: usize = 64 * 1024;
/// Largest request body the proxy accepts.
const MAX_BODY: usize = 64 * 1024 * 1024;

/// Fault settings. All off by default ([`Faults::none`]); adjust at runtime through the
/// [`FaultProxy`] setters or replace wholesale with [`FaultProxy::set_faults`].
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// `(n, status)`: every n-th request gets `status` instead of being forwarded.
    pub fail_every_nth: Option<(u64, u16)>,
    /// The next this-many requests get `429` with `Retry-After: throttle_retry_after_secs`.
    pub throttle_remaining: u64,
    /// The `Retry-After` value sent by [`Faults::throttle_remaining`] throttling.
    pub throttle_retry_after_secs: u64,
    /// Delay before a request is forwarded.
    pub latency: Duration,
    /// Every n-th request: close the connection without a response.
    pub drop_every_nth: Option<u64>,
    /// `(max_requests, window)`: sliding-window rate limit.
    pub rate_limit: Option<(usize, Duration)>,
    /// At most this many requests in flight; the rest get `429` immediately.
    pub max_concurrent: Option<usize>,
    /// Answers spoiled after the upstream acted on the request (see [`SpoiledAnswers`]).
    pub spoil: Option<SpoiledAnswers>,
}

/// Which answers to spoil, and how: of the requests with `method` (any, when None), the ones
/// after the first `skip` ones, `times` of them.
#[derive(Clone, Debug)]
pub struct SpoiledAnswers {
    pub method: Option<String>,
    pub skip: u64,
    pub times: u64,
    pub fault: AnswerFault,
}

impl Faults {
    /// No faults: a transparent proxy.
    pub fn none() -> Self {
        Self::default()
    }
    pub fn with_fail_every_nth(mut self, n: u64, status: u16) -> Self {
        self.fail_every_nth = Some((n, status));
        self
    }
    pub fn with_throttle_429(mut self, n_times: u64, retry_after_secs: u64) -> Self {
        self.throttle_remaining = n_times;
        self.throttle_retry_after_secs = retry_after_secs;
        self
    }
    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }
    pub fn with_drop_connection_every_nth(mut self, n: u64) -> Self {
        self.drop_every_nth = Some(n);
        self
    }
    pub fn with_rate_limit(mut self, max_requests: usize, window: Duration) -> Self {
        self.rate_limit = Some((max_requests, window));
        self
    }
    /// The next `n` requests with this method are forwarded, and the upstream's answer is lost
    /// (the connection closes without it): the server acted, the client never hears of it.
    pub fn with_lost_answers(self, method: &str, n: u64) -> Self {
        self.with_spoiled_answers(Some(method), 0, n, AnswerFault::Lose)
    }
    /// Of the requests with `method` (any: None), after `skip` of them, `times` answers spoiled.
    pub fn with_spoiled_answers(
        mut self,
        method: Option<&str>,
        skip: u64,
        times: u64,
        fault: AnswerFault,
    ) -> Self {
        self.spoil = Some(SpoiledAnswers {
            method: method.map(str::to_string),
            skip,
            times,
            fault,
        });
        self
    }
    pub fn with_max_concurrent(mut self, n: usize) -> Self {
        self.max_concurrent = Some(n);
        self
    }
}

/// Which fault hit a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultKind {
    /// `fail_every_nth_with`: the configured status was returned.
    FailedNth,
    /// `throttle_429`: 429 with the configured Retry-After.
    Throttled,
    /// `rate_limit`: 429, budget of the sliding window used up.
    RateLimited,
    /// `max_concurrent`: 429, too many requests in flight.
    ConcurrencyLimited,
    /// `drop_connection_every_nth`: connection closed without a response.
    Dropped,
    /// [`AnswerFault::FakeSuccess`]: answered as done, never forwarded.
    FakeSuccess,
}

/// What happened to a logged request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Forwarded; the upstream answered with this status (502 if the upstream was unreachable).
    Forwarded(u16),
    /// A fault was injected instead of forwarding.
    Injected(FaultKind),
}

/// One request as the proxy received it.
#[derive(Clone, Debug)]
pub struct LoggedRequest {
    /// 1-based sequence number (the "n" of every-n-th faults).
    pub seq: u64,
    pub method: String,
    /// Path and query exactly as sent by the client (`/api/data/v9.2/accounts?$top=1`).
    pub path_and_query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// `None` while the request is still being processed.
    pub outcome: Option<Outcome>,
}

impl LoggedRequest {
    /// `"GET /path?query"`.
    pub fn line(&self) -> String {
        format!("{} {}", self.method, self.path_and_query)
    }

    /// Whether `needle` occurs in the path/query, a header name or value, or the body.
    pub fn contains(&self, needle: &str) -> bool {
        self.path_and_query.contains(needle)
            || self
                .headers
                .iter()
                .any(|(k, v)| k.contains(needle) || v.contains(needle))
            || String::from_utf8_lossy(&self.body).contains(needle)
    }
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    forwarded: AtomicU64,
    failed_nth: AtomicU64,
    throttled: AtomicU64,
    rate_limited: AtomicU64,
    concurrency_limited: AtomicU64,
    dropped: AtomicU64,
    /// Answers spoiled after forwarding.
    spoiled: AtomicU64,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

struct FaultState {
    faults: Faults,
    /// Admission times inside the current rate-limit window.
    window: VecDeque<Instant>,
}

struct Shared {
    upstream: String,
    faults: Mutex<FaultState>,
    counters: Counters,
    log: Mutex<Vec<LoggedRequest>>,
    client: reqwest::Client,
}

/// A running fault-injecting proxy; see the module docs. Stops on drop.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Starts a proxy on `127.0.0.1:0` forwarding to `upstream` (`http://127.0.0.1:port`, an
    /// optional path prefix is kept and request paths are appended to it).
    pub fn start(upstream: &str, faults: Faults) -> FaultProxy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind proxy to 127.0.0.1");
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let addr = listener.local_addr().expect("proxy address");
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(60))
            .build()
            .expect("proxy upstream client");
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_string(),
            faults: Mutex::new(FaultState {
                faults,
                window: VecDeque::new(),
            }),
            counters: Counters::default(),
            log: Mutex::new(Vec::new()),
            client,
        });
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("fault-proxy-{}", addr.port()))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("proxy runtime");
                rt.block_on(async move {
                    let listener = TcpListener::from_std(listener).expect("tokio listener");
                    let mut rx = rx;
                    loop {
                        tokio::select! {
                            _ = &mut rx => break,
                            accepted = listener.accept() => {
                                if let Ok((stream, _)) = accepted {
                                    let _ = stream.set_nodelay(true);
                                    tokio::spawn(serve_connection(stream, thread_shared.clone()));
                                }
                            }
                        }
                    }
                });
                rt.shutdown_timeout(Duration::from_millis(200));
            })
            .expect("spawn proxy thread");
        FaultProxy {
            addr,
            shared,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:<port>` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The upstream this proxy forwards to.
    pub fn upstream(&self) -> &str {
        &self.shared.upstream
    }

    // ---- counters ----

    /// Requests received (fully read), whatever happened to them.
    pub fn requests(&self) -> u64 {
        self.shared.counters.requests.load(Ordering::SeqCst)
    }

    /// Requests forwarded to the upstream.
    /// Answers spoiled after they were forwarded ([`Faults::with_spoiled_answers`]).
    pub fn spoiled(&self) -> u64 {
        self.shared.counters.spoiled.load(Ordering::SeqCst)
    }

    pub fn forwarded(&self) -> u64 {
        self.shared.counters.forwarded.load(Ordering::SeqCst)
    }

    /// How often a fault of `kind` was injected.
    pub fn injected(&self, kind: FaultKind) -> u64 {
        let c = &self.shared.counters;
        match kind {
            FaultKind::FailedNth => &c.failed_nth,
            FaultKind::Throttled => &c.throttled,
            FaultKind::RateLimited => &c.rate_limited,
            FaultKind::ConcurrencyLimited => &c.concurrency_limited,
            FaultKind::Dropped => &c.dropped,
            FaultKind::FakeSuccess => &c.spoiled,
        }
        .load(Ordering::SeqCst)
    }

    /// All injected faults together.
    pub fn injected_total(&self) -> u64 {
        [
            FaultKind::FailedNth,
            FaultKind::Throttled,
            FaultKind::RateLimited,
            FaultKind::ConcurrencyLimited,
            FaultKind::Dropped,
        ]
        .iter()
        .map(|k| self.injected(*k))
        .sum()
    }

    /// Requests in flight right now.
    pub fn in_flight(&self) -> usize {
        self.shared.counters.in_flight.load(Ordering::SeqCst)
    }

    /// Highest number of requests that were in flight at once (rejected ones included).
    pub fn max_in_flight_seen(&self) -> usize {
        self.shared.counters.max_in_flight.load(Ordering::SeqCst)
    }

    // ---- request log ----

    /// Every request received, in arrival order.
    pub fn log(&self) -> Vec<LoggedRequest> {
        self.shared.log.lock().unwrap().clone()
    }

    /// `"METHOD path?query"` of every request received, in arrival order.
    pub fn request_lines(&self) -> Vec<String> {
        self.shared
            .log
            .lock()
            .unwrap()
            .iter()
            .map(LoggedRequest::line)
            .collect()
    }

    /// Whether any request carried `needle` in its path/query, headers or body.
    pub fn any_request_contains(&self, needle: &str) -> bool {
        self.shared
            .log
            .lock()
            .unwrap()
            .iter()
            .any(|r| r.contains(needle))
    }

    /// Forgets the request log (counters are kept).
    pub fn clear_log(&self) {
        self.shared.log.lock().unwrap().clear();
    }

    // ---- fault settings (take effect for the next request) ----

    /// The current fault settings.
    pub fn faults(&self) -> Faults {
        self.shared.faults.lock().unwrap().faults.clone()
    }

    /// Replaces all fault settings (and resets the rate-limit window).
    pub fn set_faults(&self, faults: Faults) {
        let mut st = self.shared.faults.lock().unwrap();
        st.faults = faults;
        st.window.clear();
    }

    /// Turns every fault off.
    pub fn clear_faults(&self) {
        self.set_faults(Faults::none());
    }

    /// Every n-th request (counted over all requests received) gets `status`. `n = 0` turns it off.
    pub fn fail_every_nth_with(&self, n: u64, status: u16) {
        self.shared.faults.lock().unwrap().faults.fail_every_nth = (n > 0).then_some((n, status));
    }

    /// The next `n_times` requests get `429` with `Retry-After: retry_after_secs`.
    pub fn throttle_429(&self, n_times: u64, retry_after_secs: u64) {
        let mut st = self.shared.faults.lock().unwrap();
        st.faults.throttle_remaining = n_times;
        st.faults.throttle_retry_after_secs = retry_after_secs;
    }

    /// Delay every forwarded request by `d` (`Duration::ZERO` turns it off).
    pub fn latency(&self, d: Duration) {
        self.shared.faults.lock().unwrap().faults.latency = d;
    }

    /// Every n-th request: close the connection without answering. `n = 0` turns it off.
    pub fn drop_connection_every_nth(&self, n: u64) {
        self.shared.faults.lock().unwrap().faults.drop_every_nth = (n > 0).then_some(n);
    }

    /// Sliding-window limit: at most `max_requests` admitted per `window`; the rest get `429`
    /// with `Retry-After` = whole seconds (rounded up, at least 1) until the oldest admission
    /// leaves the window. Resets the window.
    pub fn rate_limit(&self, max_requests: usize, window: Duration) {
        let mut st = self.shared.faults.lock().unwrap();
        st.faults.rate_limit = Some((max_requests, window));
        st.window.clear();
    }

    /// Turns the rate limit off.
    pub fn no_rate_limit(&self) {
        let mut st = self.shared.faults.lock().unwrap();
        st.faults.rate_limit = None;
        st.window.clear();
    }

    /// More than `n` requests in flight at once: the extra ones get `429` immediately.
    pub fn max_concurrent(&self, n: usize) {
        self.shared.faults.lock().unwrap().faults.max_concurrent = Some(n);
    }

    /// Turns the concurrency limit off.
    pub fn no_concurrency_limit(&self) {
        self.shared.faults.lock().unwrap().faults.max_concurrent = None;
    }
}

impl Drop for FaultProxy {
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
// HTTP/1.1 server side
// ---------------------------------------------------------------------------------------------

struct Request {
    method: String,
    target: String,
    version_10: bool,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn wants_close(&self) -> bool {
        let conn = self.header("connection").map(|v| v.to_ascii_lowercase());
        match conn {
            Some(c) if c.split(',').any(|t| t.trim() == "close") => true,
            Some(c) if c.split(',').any(|t| t.trim() == "keep-alive") => false,
            _ => self.version_10,
        }
    }
}

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

enum Action {
    Respond(Response),
    Drop,
    /// The head with the whole length, half the body, then the connection closes.
    Truncate(Response),
}

fn find_subslice(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Reads more bytes into `buf`; `Ok(false)` on EOF.
async fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<bool> {
    let mut chunk = [0u8; 16 * 1024];
    let n = stream.read(&mut chunk).await?;
    buf.extend_from_slice(&chunk[..n]);
    Ok(n > 0)
}

fn invalid(msg: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg.to_string())
}

/// Reads one request; `Ok(None)` on a clean EOF between requests.
async fn read_request(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
) -> std::io::Result<Option<Request>> {
    let head_end = loop {
        if let Some(i) = find_subslice(buf, b"\r\n\r\n") {
            break i;
        }
        if buf.len() > MAX_HEAD {
            return Err(invalid("request head too large"));
        }
        if !fill(stream, buf).await? {
            if buf.iter().all(|b| b.is_ascii_whitespace()) {
                return Ok(None);
            }
            return Err(invalid("eof inside request head"));
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    buf.drain(..head_end + 4);
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default().to_string();
    let version = parts.next().unwrap_or_default().to_string();
    if method.is_empty() || target.is_empty() || !version.starts_with("HTTP/1.") {
        return Err(invalid("bad request line"));
    }
    let mut headers = Vec::new();
    for line in lines {
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let mut req = Request {
        method,
        target,
        version_10: version == "HTTP/1.0",
        headers,
        body: Vec::new(),
    };
    if req
        .header("expect")
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
    {
        stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await?;
    }
    let chunked = req
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        req.body = read_chunked(stream, buf).await?;
    } else if let Some(len) = req.header("content-length") {
        let len: usize = len
            .trim()
            .parse()
            .map_err(|_| invalid("bad content-length"))?;
        if len > MAX_BODY {
            return Err(invalid("body too large"));
        }
        while buf.len() < len {
            if !fill(stream, buf).await? {
                return Err(invalid("eof inside body"));
            }
        }
        req.body = buf.drain(..len).collect();
    }
    Ok(Some(req))
}

async fn read_chunked(stream: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = loop {
            if let Some(i) = find_subslice(buf, b"\r\n") {
                break i;
            }
            if buf.len() > MAX_HEAD || !fill(stream, buf).await? {
                return Err(invalid("bad chunk header"));
            }
        };
        let size_line = String::from_utf8_lossy(&buf[..line_end]).to_string();
        buf.drain(..line_end + 2);
        let size_hex = size_line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_hex, 16).map_err(|_| invalid("bad chunk size"))?;
        if body.len() + size > MAX_BODY {
            return Err(invalid("body too large"));
        }
        if size == 0 {
            // Trailers (ignored) up to the empty line.
            loop {
                let end = loop {
                    if let Some(i) = find_subslice(buf, b"\r\n") {
                        break i;
                    }
                    if buf.len() > MAX_HEAD || !fill(stream, buf).await? {
                        return Err(invalid("bad trailer"));
                    }
                };
                buf.drain(..end + 2);
                if end == 0 {
                    return Ok(body);
                }
            }
        }
        while buf.len() < size + 2 {
            if !fill(stream, buf).await? {
                return Err(invalid("eof inside chunk"));
            }
        }
        body.extend(buf.drain(..size));
        buf.drain(..2);
    }
}

async fn serve_connection(mut stream: TcpStream, shared: Arc<Shared>) {
    let mut buf = Vec::new();
    loop {
        let req = match read_request(&mut stream, &mut buf).await {
            Ok(Some(r)) => r,
            Ok(None) => return,
            Err(_) => {
                let _ = stream
                    .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .await;
                return;
            }
        };
        let close = req.wants_close();
        let is_head = req.method.eq_ignore_ascii_case("HEAD");
        let action = handle(&shared, req).await;
        let (resp, truncate) = match action {
            Action::Drop => {
                // Close without a response.
                return;
            }
            Action::Respond(r) => (r, false),
            Action::Truncate(r) => (r, true),
        };
        let reason = reqwest::StatusCode::from_u16(resp.status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("Unknown");
        let mut out = format!("HTTP/1.1 {} {}\r\n", resp.status, reason).into_bytes();
        let no_body = resp.status == 204 || resp.status == 304 || (100..200).contains(&resp.status);
        for (k, v) in &resp.headers {
            // Keep the upstream length only for HEAD (there is no body to measure).
            let keep_length = is_head && !no_body;
            if k.eq_ignore_ascii_case("content-length") && !keep_length {
                continue;
            }
            out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
        }
        if !no_body && !is_head {
            out.extend_from_slice(format!("content-length: {}\r\n", resp.body.len()).as_bytes());
        }
        if close {
            out.extend_from_slice(b"connection: close\r\n");
        }
        out.extend_from_slice(b"\r\n");
        if truncate {
            out.extend_from_slice(&resp.body[..resp.body.len() / 2]);
            let _ = stream.write_all(&out).await;
            return;
        }
        if !no_body && !is_head {
            out.extend_from_slice(&resp.body);
        }
        if stream.write_all(&out).await.is_err() || stream.flush().await.is_err() || close {
            return;
        }
    }
}

struct InFlightGuard<'a>(&'a Counters);

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The answer of a server that says it did what it did not: a batch with every part 2xx and
/// no body, or a lone 204.
fn fake_success(req: &Request) -> Response {
    let ct = req.header("content-type").unwrap_or_default();
    match answers::fake_success(ct, &req.body) {
        Some((content_type, body)) => Response {
            status: 200,
            headers: vec![("content-type".into(), content_type)],
            body,
        },
        None => Response {
            status: 204,
            headers: Vec::new(),
            body: Vec::new(),
        },
    }
}

fn error_response(status: u16, code: &str, message: &str, retry_after: Option<u64>) -> Response {
    let mut headers = vec![
        (
            "content-type".to_string(),
            "application/json; odata.metadata=minimal".to_string(),
        ),
        ("x-fault-proxy".to_string(), "injected".to_string()),
    ];
    if let Some(secs) = retry_after {
        headers.push(("retry-after".to_string(), secs.to_string()));
    }
    let body = serde_json::json!({"error": {"code": code, "message": message}});
    Response {
        status,
        headers,
        body: body.to_string().into_bytes(),
    }
}

const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "trailers",
    "transfer-encoding",
    "upgrade",
];

fn is_hop_by_hop(name: &str, connection_tokens: &[String]) -> bool {
    let lower = name.to_ascii_lowercase();
    HOP_BY_HOP.contains(&lower.as_str()) || connection_tokens.contains(&lower)
}

fn connection_tokens(headers: &[(String, String)]) -> Vec<String> {
    headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("connection"))
        .flat_map(|(_, v)| v.split(',').map(|t| t.trim().to_ascii_lowercase()))
        .filter(|t| !t.is_empty())
        .collect()
}

async fn handle(shared: &Arc<Shared>, req: Request) -> Action {
    let c = &shared.counters;
    let seq = c.requests.fetch_add(1, Ordering::SeqCst) + 1;
    let now_in_flight = c.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    let _guard = InFlightGuard(c);
    c.max_in_flight.fetch_max(now_in_flight, Ordering::SeqCst);

    let log_index = {
        let mut log = shared.log.lock().unwrap();
        log.push(LoggedRequest {
            seq,
            method: req.method.clone(),
            path_and_query: req.target.clone(),
            headers: req.headers.clone(),
            body: req.body.clone(),
            outcome: None,
        });
        log.len() - 1
    };
    let set_outcome = |o: Outcome| {
        let mut log = shared.log.lock().unwrap();
        // The log may have been cleared meanwhile; match by sequence number.
        if let Some(entry) = log.get_mut(log_index).filter(|e| e.seq == seq) {
            entry.outcome = Some(o);
        } else if let Some(entry) = log.iter_mut().find(|e| e.seq == seq) {
            entry.outcome = Some(o);
        }
    };

    // Decide on a fault under the lock; act on it afterwards.
    let (injected, latency) = {
        let mut st = shared.faults.lock().unwrap();
        let f = st.faults.clone();
        let mut injected: Option<(FaultKind, Option<Response>)> = None;
        if let Some(max) = f.max_concurrent {
            if now_in_flight > max {
                injected = Some((
                    FaultKind::ConcurrencyLimited,
                    Some(error_response(
                        429,
                        "0x80072326",
                        &format!("Number of concurrent requests exceeded the limit of {max}."),
                        Some(1),
                    )),
                ));
            }
        }
        if injected.is_none() {
            if let Some((max, window)) = f.rate_limit {
                let now = Instant::now();
                while st
                    .window
                    .front()
                    .is_some_and(|t| now.duration_since(*t) >= window)
                {
                    st.window.pop_front();
                }
                if st.window.len() >= max {
                    let frees_at = st
                        .window
                        .front()
                        .map(|t| *t + window)
                        .unwrap_or(now + window);
                    let wait = frees_at.saturating_duration_since(now);
                    let secs = (wait.as_millis().div_ceil(1000) as u64).max(1);
                    injected = Some((
                        FaultKind::RateLimited,
                        Some(error_response(
                            429,
                            "0x80072322",
                            &format!(
                                "Number of requests exceeded the limit of {max} over time window of {} seconds.",
                                window.as_secs_f64()
                            ),
                            Some(secs),
                        )),
                    ));
                } else {
                    st.window.push_back(now);
                }
            }
        }
        if injected.is_none() && f.throttle_remaining > 0 {
            st.faults.throttle_remaining -= 1;
            injected = Some((
                FaultKind::Throttled,
                Some(error_response(
                    429,
                    "0x80072322",
                    "Too many requests (injected by the test proxy).",
                    Some(f.throttle_retry_after_secs),
                )),
            ));
        }
        if injected.is_none() {
            if let Some(n) = f.drop_every_nth {
                if n > 0 && seq.is_multiple_of(n) {
                    injected = Some((FaultKind::Dropped, None));
                }
            }
        }
        if injected.is_none() {
            if let Some((n, status)) = f.fail_every_nth {
                if n > 0 && seq.is_multiple_of(n) {
                    injected = Some((
                        FaultKind::FailedNth,
                        Some(error_response(
                            status,
                            "InjectedFault",
                            &format!(
                                "Request {seq} failed with {status} (injected by the test proxy)."
                            ),
                            None,
                        )),
                    ));
                }
            }
        }
        (injected, f.latency)
    };

    if let Some((kind, resp)) = injected {
        match kind {
            FaultKind::FailedNth => &c.failed_nth,
            FaultKind::Throttled => &c.throttled,
            FaultKind::RateLimited => &c.rate_limited,
            FaultKind::ConcurrencyLimited => &c.concurrency_limited,
            FaultKind::Dropped => &c.dropped,
            FaultKind::FakeSuccess => &c.spoiled,
        }
        .fetch_add(1, Ordering::SeqCst);
        set_outcome(Outcome::Injected(kind));
        return match resp {
            Some(r) => Action::Respond(r),
            None => Action::Drop,
        };
    }

    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }

    let fault = {
        let mut f = shared.faults.lock().unwrap();
        match &mut f.faults.spoil {
            Some(s)
                if s.times > 0
                    && s.method
                        .as_ref()
                        .is_none_or(|m| m.eq_ignore_ascii_case(&req.method)) =>
            {
                if s.skip > 0 {
                    s.skip -= 1;
                    None
                } else {
                    s.times -= 1;
                    Some(s.fault)
                }
            }
            _ => None,
        }
    };
    if fault == Some(AnswerFault::FakeSuccess) {
        // Answered as carried out, never forwarded.
        c.spoiled.fetch_add(1, Ordering::SeqCst);
        set_outcome(Outcome::Injected(FaultKind::FakeSuccess));
        return Action::Respond(fake_success(&req));
    }
    c.forwarded.fetch_add(1, Ordering::SeqCst);
    let resp = forward(shared, req).await;
    set_outcome(Outcome::Forwarded(resp.status));
    let Some(fault) = fault else {
        return Action::Respond(resp);
    };
    c.spoiled.fetch_add(1, Ordering::SeqCst);
    let content_type = resp
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    match fault {
        AnswerFault::Delay => {
            tokio::time::sleep(answers::DELAY).await;
            Action::Respond(resp)
        }
        AnswerFault::Lose => Action::Drop,
        AnswerFault::Truncate => Action::Truncate(resp),
        AnswerFault::ServerError => Action::Respond(error_response(
            500,
            "InjectedFault",
            "Internal error after the request was carried out (injected by the test proxy).",
            None,
        )),
        AnswerFault::RefusedAfterwards => Action::Respond(Response {
            status: 400,
            headers: vec![("content-type".into(), "text/html".into())],
            body: b"<html><body>Bad Request</body></html>".to_vec(),
        }),
        other => Action::Respond(Response {
            body: answers::spoil(other, &content_type, &resp.body),
            ..resp
        }),
    }
}

async fn forward(shared: &Arc<Shared>, req: Request) -> Response {
    let path = if req.target.starts_with('/') {
        req.target.clone()
    } else if let Some(rest) = req.target.split_once("://").map(|(_, r)| r) {
        // absolute-form: keep only path and query
        rest.find('/')
            .map(|i| rest[i..].to_string())
            .unwrap_or_else(|| "/".into())
    } else {
        format!("/{}", req.target)
    };
    let url = format!("{}{}", shared.upstream, path);
    let method = match reqwest::Method::from_bytes(req.method.as_bytes()) {
        Ok(m) => m,
        Err(_) => return error_response(400, "BadMethod", "bad method", None),
    };
    let tokens = connection_tokens(&req.headers);
    let mut headers = reqwest::header::HeaderMap::new();
    for (k, v) in &req.headers {
        if is_hop_by_hop(k, &tokens) || k.eq_ignore_ascii_case("content-length") {
            continue;
        }
        if let (Ok(name), Ok(value)) = (
            reqwest::header::HeaderName::from_bytes(k.as_bytes()),
            reqwest::header::HeaderValue::from_str(v),
        ) {
            headers.append(name, value);
        }
    }
    let mut builder = shared.client.request(method, &url).headers(headers);
    if !req.body.is_empty() || req.header("content-length").is_some() {
        builder = builder.body(req.body);
    }
    match builder.send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let resp_tokens: Vec<String> = resp
                .headers()
                .get_all(reqwest::header::CONNECTION)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(',').map(|t| t.trim().to_ascii_lowercase()))
                .collect();
            let headers: Vec<(String, String)> = resp
                .headers()
                .iter()
                .filter(|(k, _)| !is_hop_by_hop(k.as_str(), &resp_tokens))
                .map(|(k, v)| {
                    (
                        k.as_str().to_string(),
                        String::from_utf8_lossy(v.as_bytes()).to_string(),
                    )
                })
                .collect();
            match resp.bytes().await {
                Ok(body) => Response {
                    status,
                    headers,
                    body: body.to_vec(),
                },
                Err(e) => error_response(502, "BadGateway", &format!("upstream body: {e}"), None),
            }
        }
        Err(e) => error_response(502, "BadGateway", &format!("upstream: {e}"), None),
    }
}
