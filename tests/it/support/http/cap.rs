//! Starts the CAP services (see tests/servers/cap/README.md): SAP CAP 9 OData v4 servers that
//! imitate Dataverse (`/api/data/v9.2`) and Business Central (`/api/v2.0`) on 127.0.0.1.
//!
//! ```ignore
//! use crate::support::http as http_support;
//! use http_support::cap::CapServer;
//!
//! let cap = CapServer::start(); // a fresh server with an empty in-memory database
//! let accounts = format!("{}/accounts", cap.dataverse_url());
//! let customers = format!("{}/customers", cap.company_url());
//! // the server is killed when `cap` is dropped (also when the test panics)
//! ```
//!
//! `start` blocks for about a second (node start-up). Inside a multi-threaded tokio runtime,
//! `tokio::task::spawn_blocking(CapServer::start)` keeps the runtime free; in a
//! `#[tokio::test]` (current-thread) calling it directly is fine.
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// The one seeded Business Central company (tests/servers/cap/db/data/bc-companies.csv).
pub const COMPANY_ID: &str = "5c9a7a8e-1d2b-4c3e-9f40-000000000001";
/// Its `name` and `displayName`.
pub const COMPANY_NAME: &str = "CRONUS USA, Inc.";
/// Dataverse `_modifiedby_value` / `_createdby_value` (and WhoAmI's `UserId`) when a request sends
/// neither `x-coupler-user` nor `MSCRMCallerID`.
pub const DEFAULT_USER_ID: &str = "11111111-1111-1111-1111-111111111111";
/// Header that names the Dataverse user a request acts as (stamped into `_modifiedby_value`).
pub const USER_HEADER: &str = "x-coupler-user";

/// Sent by tests that load data into the Business Central imitation: it then takes values of
/// properties the real API refuses to write (read-only on the page), as seed data.
pub const SEED_HEADER: (&str, &str) = ("x-coupler-seed", "1");

const START_TIMEOUT: Duration = Duration::from_secs(30);
const LOG_LINES: usize = 400;

/// A running CAP server (one `node server.js` child process). Dropping it kills the process.
pub struct CapServer {
    child: Child,
    // Held open: the server exits when its stdin closes, so it cannot outlive this process.
    _stdin: Option<ChildStdin>,
    port: u16,
    log: Arc<Mutex<VecDeque<String>>>,
}

impl CapServer {
    /// Starts a server on a free loopback port and waits until it answers. Panics with the
    /// server's output if it does not come up within 30 s.
    pub fn start() -> CapServer {
        // Dataverse takes $batch requests of up to 1,000 operations; CAP's default body limit
        // is far smaller.
        Self::start_with_env(&[("CDS_SERVER_BODY__PARSER_LIMIT", "50mb")])
    }

    /// Like [`CapServer::start`], with extra environment variables for the server, e.g.
    /// `("COUPLER_CAP_RELATIVE_NEXTLINK", "1")` to get CAP's relative `@odata.nextLink`s.
    pub fn start_with_env(env: &[(&str, &str)]) -> CapServer {
        let dir = Self::server_dir();
        if !dir.join("node_modules/@sap/cds/package.json").is_file() {
            panic!(
                "CAP test server not installed: {} has no node_modules; \
                 run `npm ci` in tests/servers/cap, or bash .ci/run",
                dir.display()
            );
        }
        let mut cmd = Command::new("node");
        cmd.arg("server.js")
            .current_dir(&dir)
            .env("PORT", "0")
            .env("COUPLER_EXIT_ON_STDIN_EOF", "1")
            .env("NODE_ENV", "test")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => panic!(
                "cannot start `node server.js` in {}: {e} (is Node.js 20+ on PATH?)",
                dir.display()
            ),
        };
        let log = Arc::new(Mutex::new(VecDeque::new()));
        let (port_tx, port_rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        spawn_reader(stdout, Arc::clone(&log), Some(port_tx));
        spawn_reader(stderr, Arc::clone(&log), None);
        let stdin = child.stdin.take();
        let mut server = CapServer {
            child,
            _stdin: stdin,
            port: 0,
            log,
        };

        let deadline = Instant::now() + START_TIMEOUT;
        server.port = loop {
            match port_rx.recv_timeout(Duration::from_millis(50)) {
                Ok(port) => break port,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    server.fail("exited before printing `LISTENING <port>`")
                }
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                server.fail(&format!("exited with {status} before listening"));
            }
            if Instant::now() > deadline {
                server.fail("did not print `LISTENING <port>` within 30 s");
            }
        };
        // It listens once it printed the port; make sure the OData service answers, too.
        loop {
            if http_status(server.port, "/api/data/v9.2/") == Some(200) {
                break;
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                server.fail(&format!("exited with {status}"));
            }
            if Instant::now() > deadline {
                server.fail("GET /api/data/v9.2/ did not answer 200 within 30 s");
            }
            thread::sleep(Duration::from_millis(20));
        }
        server
    }

    /// tests/servers/cap (the CAP project).
    pub fn server_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/servers/cap")
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>` (no trailing slash).
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Dataverse Web API root: `http://127.0.0.1:<port>/api/data/v9.2` (no trailing slash).
    pub fn dataverse_url(&self) -> String {
        format!("{}/api/data/v9.2", self.base_url())
    }

    /// Business Central API root: `http://127.0.0.1:<port>/api/v2.0` (no trailing slash).
    pub fn business_central_url(&self) -> String {
        format!("{}/api/v2.0", self.base_url())
    }

    /// The seeded company's id ([`COMPANY_ID`]).
    pub fn company_id(&self) -> &'static str {
        COMPANY_ID
    }

    /// `http://127.0.0.1:<port>/api/v2.0/companies(<company id>)`: append `/customers` etc.
    pub fn company_url(&self) -> String {
        format!("{}/companies({})", self.business_central_url(), COMPANY_ID)
    }

    /// The last lines the server wrote (stdout and stderr), for assertion messages.
    pub fn log(&self) -> String {
        let log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        log.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    fn fail(&mut self, what: &str) -> ! {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // give the reader threads a moment to collect the last output
        thread::sleep(Duration::from_millis(50));
        panic!(
            "CAP test server (tests/servers/cap/server.js) {what}; its output:\n{}",
            self.log()
        );
    }
}

impl Drop for CapServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_reader<R: Read + Send + 'static>(
    stream: R,
    log: Arc<Mutex<VecDeque<String>>>,
    port_tx: Option<mpsc::Sender<u16>>,
) {
    thread::spawn(move || {
        let mut port_tx = port_tx;
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if let Some(tx) = &port_tx {
                if let Some(port) = line
                    .strip_prefix("LISTENING ")
                    .and_then(|p| p.trim().parse().ok())
                {
                    let _ = tx.send(port);
                    port_tx = None;
                }
            }
            let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
            if log.len() == LOG_LINES {
                log.pop_front();
            }
            log.push_back(line);
        }
    });
}

/// Status code of `GET <path>` on 127.0.0.1:<port>, or None if the request fails.
fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: application/json\r\nConnection: close\r\n\r\n").ok()?;
    let mut status_line = String::new();
    BufReader::new(stream).read_line(&mut status_line).ok()?;
    status_line.split_whitespace().nth(1)?.parse().ok()
}
