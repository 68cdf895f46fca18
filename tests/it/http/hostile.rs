//! Hostile servers (issue 11, finding 11): a server that never answers, one that sends a body
//! without end, one that echoes the credentials into its error pages at the 300-character cut,
//! and a `$metadata` nested without end. Each costs a clear error, bounded time and memory, and
//! never a secret in the output. The real binary, with the limits set in the profile.

use crate::support::coupler::Coupler;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use std::process::Output;
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;

const SECRET: &str = "Zq8~secret-value-that-must-never-show-0123456789";
const TOKEN: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.token-that-must-never-show-0123456789";

/// What the server does with `$metadata` (and, for `EchoSecret`, with the token request).
#[derive(Clone, Copy)]
enum Mode {
    /// Accepts the request and never answers.
    Hang,
    /// 200 with a body of `mb` megabytes, streamed (no Content-Length).
    Endless { mb: usize },
    /// 200 with a `$metadata` of `depth` nested elements.
    Deep { depth: usize },
    /// 400 whose text carries the bearer token across character 300.
    EchoToken,
    /// The token endpoint answers 400 with the client secret across character 300.
    EchoSecret,
}

async fn token(State(mode): State<Arc<Mode>>) -> Response {
    match *mode {
        Mode::EchoSecret => {
            let body = format!("{}{SECRET} was refused", "x".repeat(290));
            (StatusCode::BAD_REQUEST, body).into_response()
        }
        _ => axum::Json(serde_json::json!({
            "access_token": TOKEN, "token_type": "Bearer", "expires_in": 3600
        }))
        .into_response(),
    }
}

async fn metadata(State(mode): State<Arc<Mode>>, headers: HeaderMap) -> Response {
    match *mode {
        Mode::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::OK.into_response()
        }
        Mode::Endless { mb } => {
            let chunk = axum::body::Bytes::from(vec![b' '; 1024 * 1024]);
            let stream =
                futures::stream::iter((0..mb).map(move |_| Ok::<_, std::io::Error>(chunk.clone())));
            Body::from_stream(stream).into_response()
        }
        Mode::Deep { depth } => {
            let xml = format!(
                "<edmx:Edmx xmlns:edmx=\"http://docs.oasis-open.org/odata/ns/edmx\" Version=\"4.0\">{}{}</edmx:Edmx>",
                "<a>".repeat(depth),
                "</a>".repeat(depth)
            );
            (StatusCode::OK, xml).into_response()
        }
        Mode::EchoToken | Mode::EchoSecret => {
            let auth = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            // "Bearer " is 7 characters: the token starts at 290 and is cut at 300.
            let body = format!("{}{auth} is not allowed here", "x".repeat(283));
            (StatusCode::BAD_REQUEST, body).into_response()
        }
    }
}

/// A server on loopback in its own thread; its port.
fn start(mode: Mode) -> u16 {
    crate::support::http::loopback::serve(
        Router::new()
            .route("/token", post(token))
            .route("/api/data/v9.2/$metadata", get(metadata))
            .with_state(Arc::new(mode)),
    )
}

/// `coupler schema pull --profile live sales` against the server, with `limits` in the profile.
fn pull(mode: Mode, limits: &str) -> Output {
    let port = start(mode);
    let dir = TempDir::new().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("mappings")).unwrap();
    std::fs::write(
        root.join("mappings/systems.map"),
        "system sales = dataverse \"../schemas/sales.yaml\"\n",
    )
    .unwrap();
    std::fs::write(
        root.join("coupler.yaml"),
        format!(
            "profiles:\n  live:\n    state: state/coupler.db\n    systems:\n      sales:\n        kind: dataverse\n        url: http://127.0.0.1:{port}\n        limits: {limits}\n        auth:\n          tenant: tenant\n          client_id: app\n          client_secret: ${{HOSTILE_SECRET}}\n          token_url: http://127.0.0.1:{port}/token\n"
        ),
    )
    .unwrap();
    Coupler::new()
        .args(["schema", "pull", "--profile", "live", "sales"])
        .current_dir(root)
        .env("HOSTILE_SECRET", SECRET)
        .output()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// No piece of a secret long enough to matter: any 8 characters of it.
fn assert_no_piece_of(text: &str, secret: &str) {
    let chars: Vec<char> = secret.chars().collect();
    for w in chars.windows(8) {
        let piece: String = w.iter().collect();
        assert!(!text.contains(&piece), "`{piece}` of a secret in: {text}");
    }
}

#[test]
fn a_server_that_never_answers_costs_the_profiles_timeout_twice() {
    let out = pull(Mode::Hang, "{ timeout_seconds: 1 }");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("timed out after 1 s"), "{err}");
    // Tried once more, then given up: "after 2 attempts", not six.
    assert!(err.contains("after 2 attempts"), "{err}");
}

#[test]
fn an_endless_body_is_refused_at_the_profiles_limit() {
    let out = pull(Mode::Endless { mb: 64 }, "{ max_response_mb: 2 }");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("the response is larger than 2 MB (`limits.max_response_mb`"),
        "{err}"
    );
    // Under the limit, the same kind of body is read whole (then it is not XML).
    let out = pull(Mode::Endless { mb: 1 }, "{ max_response_mb: 2 }");
    let err = stderr(&out);
    assert!(!err.contains("larger than"), "{err}");
    assert!(err.contains("XML") || err.contains("metadata"), "{err}");
}

#[test]
fn metadata_nested_without_end_is_an_error_not_a_stack_overflow() {
    let out = pull(Mode::Deep { depth: 150_000 }, "{}");
    let err = stderr(&out);
    assert!(out.status.code().is_some(), "killed by a signal: {err}");
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("deeper than 256 levels"), "{err}");
    // A document of ordinary depth goes past that check.
    let out = pull(Mode::Deep { depth: 20 }, "{}");
    assert!(!stderr(&out).contains("deeper than"), "{}", stderr(&out));
}

#[test]
fn secrets_echoed_at_the_cut_are_scrubbed_before_it() {
    let out = pull(Mode::EchoSecret, "{}");
    let err = stderr(&out);
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("xxxxxxxxxx"),
        "the server's text is shown: {err}"
    );
    assert_no_piece_of(&err, SECRET);
    let out = pull(Mode::EchoToken, "{}");
    let err = stderr(&out);
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("xxxxxxxxxx"),
        "the server's text is shown: {err}"
    );
    assert_no_piece_of(&err, TOKEN);
}

#[test]
fn limits_out_of_range_are_refused_with_their_name() {
    for (limits, want) in [
        (
            "{ timeout_seconds: 0 }",
            "`limits.timeout_seconds` must be between 1 and 3600",
        ),
        (
            "{ max_response_mb: 100000 }",
            "`limits.max_response_mb` must be between 1 and 4096",
        ),
        ("{ timeout: 5 }", "unknown field `timeout`"),
    ] {
        let out = pull(Mode::Hang, limits);
        let err = stderr(&out);
        assert_ne!(out.status.code(), Some(0), "{err}");
        assert!(err.contains(want), "{limits}: {err}");
    }
}
