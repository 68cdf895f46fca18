//! Self-tests of the loopback test servers in `support/http`: the fault-injecting proxy
//! (with the Dataverse mock as its upstream, so no CAP is needed) and the Dataverse mock.

use crate::support::http as http_support;

use std::time::{Duration, Instant};

use http_support::dataverse_mock::{DataverseMock, MockConfig};
use http_support::proxy::{FaultKind, FaultProxy, Faults, Outcome};
use serde_json::{json, Value};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// Client-credentials token from `base` (the mock, or a proxy in front of it).
async fn token_via(c: &reqwest::Client, base: &str, mock: &DataverseMock) -> String {
    let cfg = mock.config();
    let resp = c
        .post(format!("{base}/{}/oauth2/v2.0/token", cfg.tenant))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", cfg.client_id.as_str()),
            ("client_secret", cfg.client_secret.as_str()),
            ("scope", mock.scope().as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    v["access_token"].as_str().unwrap().to_string()
}

async fn get(c: &reqwest::Client, url: &str, token: &str) -> reqwest::Response {
    c.get(url)
        .bearer_auth(token)
        .header("OData-MaxVersion", "4.0")
        .header("OData-Version", "4.0")
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap()
}

fn guid(n: u32) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

fn seed_accounts(mock: &DataverseMock, n: u32) {
    let rows = (1..=n)
        .map(|i| {
            json!({
                "accountid": guid(i),
                "name": format!("Account {i}"),
                "accountnumber": format!("A-{i:03}"),
                "revenue": i * 1000,
                "donotemail": i % 2 == 0,
                "modifiedon": format!("2024-05-{:02}T10:00:00.000Z", i),
            })
        })
        .collect();
    mock.seed("accounts", rows);
}

fn retry_after(r: &reqwest::Response) -> Option<u64> {
    r.headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

// =============================================================================================
// proxy
// =============================================================================================

#[tokio::test]
async fn proxy_passes_traffic_through_unchanged() {
    let mock = DataverseMock::start();
    seed_accounts(&mock, 3);
    let proxy = FaultProxy::start(&mock.url(), Faults::none());
    assert!(proxy.url().starts_with("http://127.0.0.1:"));
    let c = client();
    let token = token_via(&c, &proxy.url(), &mock).await;

    // GET: same body as direct (links aside, which follow the Host header), same headers.
    let path = "/api/data/v9.2/accounts?$select=name,accountnumber&$filter=revenue%20ge%202000";
    let direct = get(&c, &format!("{}{path}", mock.url()), &token).await;
    let via = c
        .get(format!("{}{path}", proxy.url()))
        .bearer_auth(&token)
        .header("X-Custom-Header", "custom-value")
        .send()
        .await
        .unwrap();
    assert_eq!(via.status(), direct.status());
    assert_eq!(
        via.headers().get("content-type"),
        direct.headers().get("content-type")
    );
    assert_eq!(via.headers().get("odata-version").unwrap(), "4.0");
    let dv: Value = direct.json().await.unwrap();
    let vv: Value = via.json().await.unwrap();
    assert_eq!(dv["value"], vv["value"]);
    assert_eq!(vv["value"].as_array().unwrap().len(), 2);

    // The upstream saw the exact path+query and the custom header.
    let seen = mock.requests();
    let last = seen.last().unwrap();
    assert_eq!(last.path_and_query, path);
    assert_eq!(last.header("x-custom-header"), Some("custom-value"));
    assert_eq!(
        last.header("authorization"),
        Some(format!("Bearer {token}").as_str())
    );

    // POST with a body: body forwarded byte for byte, 204 + OData-EntityId returned.
    let body = r#"{"accountid":"00000000-0000-4000-8000-000000000777","name":"Through proxy"}"#;
    let resp = c
        .post(format!("{}/api/data/v9.2/accounts", proxy.url()))
        .bearer_auth(&token)
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let eid = resp
        .headers()
        .get("odata-entityid")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(eid.ends_with("/api/data/v9.2/accounts(00000000-0000-4000-8000-000000000777)"));
    assert_eq!(mock.requests().last().unwrap().body, body);

    // Upstream error statuses pass through too.
    let resp = get(
        &c,
        &format!("{}/api/data/v9.2/accounts({})", proxy.url(), guid(999)),
        &token,
    )
    .await;
    assert_eq!(resp.status(), 404);

    assert_eq!(proxy.requests(), 4); // token, GET, POST, GET 404 (the direct GET bypassed it)
    assert_eq!(proxy.forwarded(), 4);
    assert_eq!(proxy.injected_total(), 0);
    let lines = proxy.request_lines();
    assert!(lines[0].starts_with("POST /"));
    assert!(lines.contains(&format!("GET {path}")));
    // Request-log assertions: the secret went to the token endpoint only.
    let secret = mock.config().client_secret;
    assert!(proxy.any_request_contains(&secret));
    assert!(!proxy
        .log()
        .iter()
        .filter(|r| r.path_and_query.starts_with("/api/"))
        .any(|r| r.contains(&secret)));
    assert!(proxy
        .log()
        .iter()
        .all(|r| matches!(r.outcome, Some(Outcome::Forwarded(_)))));
}

#[tokio::test]
async fn proxy_keeps_absolute_next_links_on_the_proxy() {
    let mock = DataverseMock::start();
    seed_accounts(&mock, 5);
    let proxy = FaultProxy::start(&mock.url(), Faults::none());
    let c = client();
    let token = token_via(&c, &proxy.url(), &mock).await;
    let mut url = format!("{}/api/data/v9.2/accounts", proxy.url());
    let mut seen = 0;
    for _ in 0..10 {
        let v: Value = c
            .get(&url)
            .bearer_auth(&token)
            .header("Prefer", "odata.maxpagesize=2")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        seen += v["value"].as_array().unwrap().len();
        match v["@odata.nextLink"].as_str() {
            Some(next) => {
                assert!(next.starts_with(&proxy.url()), "{next}");
                url = next.to_string();
            }
            None => break,
        }
    }
    assert_eq!(seen, 5);
    assert_eq!(proxy.forwarded(), 4); // token + 3 pages
}

#[tokio::test]
async fn proxy_fails_every_nth_request() {
    let mock = DataverseMock::start();
    let proxy = FaultProxy::start(&mock.url(), Faults::none().with_fail_every_nth(3, 503));
    let c = client();
    let mut statuses = Vec::new();
    for _ in 0..9 {
        let r = c
            .get(format!("{}/nothing-here", proxy.url()))
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    assert_eq!(statuses, vec![404, 404, 503, 404, 404, 503, 404, 404, 503]);
    assert_eq!(proxy.injected(FaultKind::FailedNth), 3);
    assert_eq!(proxy.forwarded(), 6);
    assert_eq!(proxy.requests(), 9);

    // Runtime change: every 2nd request (counting continues), with 500.
    proxy.fail_every_nth_with(2, 500);
    let r = c.get(format!("{}/x", proxy.url())).send().await.unwrap(); // request 10
    assert_eq!(r.status(), 500);
    proxy.fail_every_nth_with(0, 500);
    let r = c.get(format!("{}/x", proxy.url())).send().await.unwrap(); // request 11
    assert_eq!(r.status(), 404);
    let r = c.get(format!("{}/x", proxy.url())).send().await.unwrap(); // request 12
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn proxy_throttles_next_n_requests_with_retry_after() {
    let mock = DataverseMock::start();
    let proxy = FaultProxy::start(&mock.url(), Faults::none());
    let c = client();
    proxy.throttle_429(2, 7);
    for _ in 0..2 {
        let r = c.get(format!("{}/x", proxy.url())).send().await.unwrap();
        assert_eq!(r.status(), 429);
        assert_eq!(retry_after(&r), Some(7));
        let v: Value = r.json().await.unwrap();
        assert!(v["error"]["code"].is_string());
    }
    let r = c.get(format!("{}/x", proxy.url())).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(proxy.injected(FaultKind::Throttled), 2);
    assert_eq!(proxy.forwarded(), 1);
    assert_eq!(
        mock.requests().len(),
        1,
        "throttled requests never reach the upstream"
    );
}

#[tokio::test]
async fn proxy_drops_connection_every_nth_request() {
    let mock = DataverseMock::start();
    let proxy = FaultProxy::start(
        &mock.url(),
        Faults::none().with_drop_connection_every_nth(2),
    );
    let c = client();
    let r1 = c.get(format!("{}/x", proxy.url())).send().await;
    assert_eq!(r1.unwrap().status(), 404);
    let started = Instant::now();
    let r2 = c.get(format!("{}/x", proxy.url())).send().await;
    let err = r2.expect_err("the second request must see a closed connection");
    assert!(!err.is_timeout(), "{err:?}");
    assert!(err.is_request() || err.is_connect(), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
    let r3 = c.get(format!("{}/x", proxy.url())).send().await;
    assert_eq!(r3.unwrap().status(), 404);
    assert_eq!(proxy.injected(FaultKind::Dropped), 1);
    assert_eq!(proxy.forwarded(), 2);
    assert_eq!(
        proxy.log()[1].outcome,
        Some(Outcome::Injected(FaultKind::Dropped))
    );
}

#[tokio::test]
async fn proxy_adds_latency() {
    let mock = DataverseMock::start();
    let proxy = FaultProxy::start(&mock.url(), Faults::none());
    let c = client();
    // warm-up (connection set-up)
    c.get(format!("{}/x", proxy.url())).send().await.unwrap();
    let t = Instant::now();
    c.get(format!("{}/x", proxy.url())).send().await.unwrap();
    let fast = t.elapsed();
    proxy.latency(Duration::from_millis(300));
    let t = Instant::now();
    let r = c.get(format!("{}/x", proxy.url())).send().await.unwrap();
    let slow = t.elapsed();
    assert_eq!(r.status(), 404);
    assert!(slow >= Duration::from_millis(300), "{slow:?}");
    assert!(slow < Duration::from_millis(2000), "{slow:?}");
    assert!(fast < Duration::from_millis(250), "{fast:?}");
}

#[tokio::test]
async fn proxy_rate_limit_allows_budget_then_429s_until_a_slot_frees() {
    let mock = DataverseMock::start();
    let proxy = FaultProxy::start(&mock.url(), Faults::none());
    proxy.rate_limit(5, Duration::from_secs(1));
    let c = client();
    let started = Instant::now();
    for _ in 0..5 {
        let r = c.get(format!("{}/x", proxy.url())).send().await.unwrap();
        assert_eq!(r.status(), 404);
    }
    for _ in 0..3 {
        let r = c.get(format!("{}/x", proxy.url())).send().await.unwrap();
        assert_eq!(r.status(), 429);
        let ra = retry_after(&r).expect("Retry-After");
        assert_eq!(ra, 1, "window 1 s: the oldest slot frees within a second");
    }
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "test assumption: still in window"
    );
    assert_eq!(proxy.injected(FaultKind::RateLimited), 3);
    assert_eq!(proxy.forwarded(), 5);

    // After the window, the budget is back.
    tokio::time::sleep(
        Duration::from_secs(1).saturating_sub(started.elapsed()) + Duration::from_millis(50),
    )
    .await;
    for _ in 0..5 {
        let r = c.get(format!("{}/x", proxy.url())).send().await.unwrap();
        assert_eq!(r.status(), 404);
    }
    let r = c.get(format!("{}/x", proxy.url())).send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(proxy.forwarded(), 10);

    // Retry-After for a longer window reflects the time until the oldest admission expires.
    proxy.rate_limit(1, Duration::from_secs(30));
    assert_eq!(
        c.get(format!("{}/x", proxy.url()))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let r = c.get(format!("{}/x", proxy.url())).send().await.unwrap();
    assert_eq!(r.status(), 429);
    let ra = retry_after(&r).unwrap();
    assert!((29..=30).contains(&ra), "{ra}");
    proxy.no_rate_limit();
    assert_eq!(
        c.get(format!("{}/x", proxy.url()))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_concurrency_limit_rejects_excess_in_flight_requests() {
    let mock = DataverseMock::start();
    let proxy = FaultProxy::start(
        &mock.url(),
        Faults::none()
            .with_max_concurrent(2)
            .with_latency(Duration::from_millis(500)),
    );
    let c = client();
    let url = format!("{}/x", proxy.url());
    let mut tasks = Vec::new();
    for _ in 0..5 {
        let c = c.clone();
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            let r = c.get(url).send().await.unwrap();
            (r.status().as_u16(), retry_after(&r), t.elapsed())
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    let ok: Vec<_> = results.iter().filter(|r| r.0 == 404).collect();
    let limited: Vec<_> = results.iter().filter(|r| r.0 == 429).collect();
    assert_eq!(ok.len(), 2, "{results:?}");
    assert_eq!(limited.len(), 3, "{results:?}");
    for r in &limited {
        assert!(r.1.is_some(), "429 carries Retry-After");
        assert!(
            r.2 < Duration::from_millis(400),
            "rejected immediately: {r:?}"
        );
    }
    assert_eq!(proxy.injected(FaultKind::ConcurrencyLimited), 3);
    assert!(proxy.max_in_flight_seen() >= 3);
    // Sequential requests are fine.
    proxy.latency(Duration::ZERO);
    for _ in 0..3 {
        assert_eq!(c.get(&url).send().await.unwrap().status(), 404);
    }
    assert_eq!(proxy.in_flight(), 0);
}

#[test]
fn proxy_is_usable_from_sync_code_and_stops_on_drop() {
    let mock = DataverseMock::start();
    let proxy = FaultProxy::start(&mock.url(), Faults::none());
    let addr = proxy.addr();
    assert!(std::net::TcpStream::connect(addr).is_ok());
    drop(proxy);
    // The listener is gone after drop.
    assert!(std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_err());
}

// =============================================================================================
// Dataverse mock
// =============================================================================================

#[tokio::test]
async fn mock_token_flow() {
    let mock = DataverseMock::start_with(MockConfig {
        token_expires_in: 1234,
        ..MockConfig::default()
    });
    let c = client();
    let cfg = mock.config();
    let resp = c
        .post(mock.token_url())
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", cfg.client_id.as_str()),
            ("client_secret", cfg.client_secret.as_str()),
            ("scope", mock.scope().as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["expires_in"], 1234);
    let token = v["access_token"].as_str().unwrap();
    assert_eq!(mock.tokens_issued(), 1);
    let r = get(&c, &format!("{}/accounts", mock.api_url()), token).await;
    assert_eq!(r.status(), 200);

    // wrong secret
    let resp = c
        .post(mock.token_url())
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", cfg.client_id.as_str()),
            ("client_secret", "wrong"),
            ("scope", mock.scope().as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"], "invalid_client");
    assert_eq!(mock.tokens_issued(), 1);

    // wrong grant type
    let resp = c
        .post(mock.token_url())
        .form(&[
            ("grant_type", "password"),
            ("client_id", cfg.client_id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn mock_requires_a_valid_bearer_token() {
    let mock = DataverseMock::start();
    let c = client();
    let url = format!("{}/accounts", mock.api_url());
    let r = c.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().get("www-authenticate").is_some());
    assert_eq!(get(&c, &url, "not-a-token").await.status(), 401);
    let token = token_via(&c, &mock.url(), &mock).await;
    assert_eq!(get(&c, &url, &token).await.status(), 200);
    mock.expire_tokens();
    assert_eq!(get(&c, &url, &token).await.status(), 401);
    // Tokens really expire.
    mock.set_token_expiry(0);
    let short = token_via(&c, &mock.url(), &mock).await;
    assert_eq!(get(&c, &url, &short).await.status(), 401);
    mock.set_token_expiry(3600);
    let fresh = token_via(&c, &mock.url(), &mock).await;
    assert_eq!(get(&c, &url, &fresh).await.status(), 200);
    assert_eq!(mock.tokens_issued(), 3);
}

#[tokio::test]
async fn mock_pages_with_absolute_next_link() {
    let mock = DataverseMock::start();
    seed_accounts(&mock, 7);
    let c = client();
    let token = mock.issue_token();
    let mut url = format!(
        "{}/accounts?$select=name&$orderby=modifiedon%20desc",
        mock.api_url()
    );
    let mut pages = Vec::new();
    for _ in 0..10 {
        let r = c
            .get(&url)
            .bearer_auth(&token)
            .header("Prefer", "odata.maxpagesize=3")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.headers().get("preference-applied").unwrap(),
            "odata.maxpagesize=3"
        );
        let v: Value = r.json().await.unwrap();
        let names: Vec<String> = v["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| {
                assert!(row["@odata.etag"].is_string());
                assert!(row["accountid"].is_string(), "key always selected");
                assert!(row.get("accountnumber").is_none(), "$select honoured");
                row["name"].as_str().unwrap().to_string()
            })
            .collect();
        pages.push(names);
        match v["@odata.nextLink"].as_str() {
            Some(next) => {
                assert!(
                    next.starts_with(&format!("{}/accounts?", mock.api_url())),
                    "absolute: {next}"
                );
                assert!(next.contains("$skiptoken="), "{next}");
                assert!(next.contains("$select=name"), "{next}");
                url = next.to_string();
            }
            None => break,
        }
    }
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![3, 3, 1]
    );
    let all: Vec<String> = pages.concat();
    let expected: Vec<String> = (1..=7).rev().map(|i| format!("Account {i}")).collect();
    assert_eq!(all, expected, "ordered by modifiedon desc across pages");

    // Page size above 5000 is ignored (no Preference-Applied).
    let r = c
        .get(format!("{}/accounts", mock.api_url()))
        .bearer_auth(&token)
        .header("Prefer", "odata.maxpagesize=10000")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("preference-applied").is_none());
    // $skip is not supported by Dataverse.
    let r = get(&c, &format!("{}/accounts?$skip=2", mock.api_url()), &token).await;
    assert_eq!(r.status(), 400);
}

async fn names(
    c: &reqwest::Client,
    mock: &DataverseMock,
    token: &str,
    filter: &str,
) -> Result<Vec<String>, u16> {
    let url = reqwest::Url::parse_with_params(
        &format!("{}/accounts", mock.api_url()),
        &[("$filter", filter), ("$select", "name")],
    )
    .unwrap();
    let r = get(c, url.as_str(), token).await;
    if r.status() != 200 {
        return Err(r.status().as_u16());
    }
    let v: Value = r.json().await.unwrap();
    Ok(v["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect())
}

#[tokio::test]
async fn mock_filters() {
    let mock = DataverseMock::start();
    seed_accounts(&mock, 5);
    let me = mock.integration_user();
    mock.update("accounts", &guid(2), json!({}), &me);
    let c = client();
    let t = mock.issue_token();
    let n = |v: &[u32]| -> Vec<String> { v.iter().map(|i| format!("Account {i}")).collect() };

    assert_eq!(
        names(
            &c,
            &mock,
            &t,
            "modifiedon ge 2024-05-03T10:00:00Z and modifiedon lt 2024-06-01T00:00:00Z"
        )
        .await,
        Ok(n(&[3, 4, 5]))
    );
    assert_eq!(
        names(
            &c,
            &mock,
            &t,
            "modifiedon gt 2024-05-03T10:00:00.000Z and modifiedon le 2024-05-05T10:00:00+00:00"
        )
        .await,
        Ok(n(&[4, 5]))
    );
    assert_eq!(
        names(&c, &mock, &t, &format!("_modifiedby_value ne {me}")).await,
        Ok(n(&[1, 3, 4, 5]))
    );
    assert_eq!(
        names(&c, &mock, &t, "name eq 'ACCOUNT 3'").await,
        Ok(n(&[3])),
        "case-insensitive"
    );
    assert_eq!(
        names(&c, &mock, &t, "revenue eq 4000 or donotemail eq false").await,
        Ok(n(&[1, 3, 4, 5]))
    );
    assert_eq!(
        names(
            &c,
            &mock,
            &t,
            "(revenue ge 2000 and revenue le 3000) or accountnumber eq 'A-005'"
        )
        .await,
        Ok(n(&[2, 3, 5]))
    );
    assert_eq!(
        names(&c, &mock, &t, "telephone1 eq null").await,
        Ok(n(&[1, 2, 3, 4, 5]))
    );
    assert_eq!(
        names(&c, &mock, &t, "name ne 'Account 1' and donotemail eq true").await,
        Ok(n(&[2, 4]))
    );
    // Unsupported things are 400 so tests notice.
    for bad in [
        "contains(name,'Acc')",
        "not (revenue eq 1)",
        "name gt 'B'",
        "revenue add 1 eq 2",
        "parentaccountid/name eq 'x'",
        "name eq",
    ] {
        assert_eq!(names(&c, &mock, &t, bad).await, Err(400), "{bad}");
    }
}

#[tokio::test]
async fn mock_change_tracking_initial_and_delta_with_deleted_row() {
    let mock = DataverseMock::start();
    seed_accounts(&mock, 3);
    let c = client();
    let t = mock.issue_token();
    let r = c
        .get(format!("{}/accounts?$select=name", mock.api_url()))
        .bearer_auth(&t)
        .header("Prefer", "odata.track-changes")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r
        .headers()
        .get("preference-applied")
        .unwrap()
        .to_str()
        .unwrap()
        .contains("odata.track-changes"));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["value"].as_array().unwrap().len(), 3);
    let delta = v["@odata.deltaLink"].as_str().unwrap().to_string();
    assert!(
        delta.starts_with(&format!("{}/accounts?", mock.api_url())),
        "{delta}"
    );
    assert!(delta.contains("$deltatoken="), "{delta}");
    assert!(v.get("@odata.nextLink").is_none());

    // Changes: one update over the API, one delete, one create.
    let r = c
        .patch(format!("{}/accounts({})", mock.api_url(), guid(1)))
        .bearer_auth(&t)
        .json(&json!({"name": "Renamed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(mock.delete("accounts", &guid(2)));
    mock.seed(
        "accounts",
        vec![json!({"accountid": guid(10), "name": "New"})],
    );

    let r = c
        .get(&delta)
        .bearer_auth(&t)
        .header("Prefer", "odata.track-changes")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let rows = v["value"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "{v}");
    let changed: Vec<&str> = rows
        .iter()
        .filter(|r| r.get("reason").is_none())
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(changed, vec!["Renamed", "New"]);
    let deleted: Vec<&Value> = rows.iter().filter(|r| r.get("reason").is_some()).collect();
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0]["id"], guid(2));
    assert_eq!(deleted[0]["reason"], "deleted");
    assert!(deleted[0]["@odata.context"]
        .as_str()
        .unwrap()
        .ends_with("$metadata#accounts/$deletedEntity"));
    let delta2 = v["@odata.deltaLink"].as_str().unwrap().to_string();
    assert_ne!(delta, delta2);

    // Nothing changed since: empty.
    let v: Value = get(&c, &delta2, &t).await.json().await.unwrap();
    assert_eq!(v["value"].as_array().unwrap().len(), 0);
    assert!(v["@odata.deltaLink"].is_string());

    // Paging inside change tracking: deltaLink only on the last page.
    let r = c
        .get(format!("{}/accounts", mock.api_url()))
        .bearer_auth(&t)
        .header("Prefer", "odata.track-changes,odata.maxpagesize=2")
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["value"].as_array().unwrap().len(), 2);
    assert!(v.get("@odata.deltaLink").is_none());
    let next = v["@odata.nextLink"].as_str().unwrap().to_string();
    let r = c
        .get(&next)
        .bearer_auth(&t)
        .header("Prefer", "odata.track-changes,odata.maxpagesize=2")
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["value"].as_array().unwrap().len(), 1);
    assert!(v["@odata.deltaLink"].is_string());

    // $filter with track-changes is an error.
    let r = c
        .get(format!(
            "{}/accounts?$filter=name%20eq%20'New'",
            mock.api_url()
        ))
        .bearer_auth(&t)
        .header("Prefer", "odata.track-changes")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

async fn patch_with(
    c: &reqwest::Client,
    url: &str,
    t: &str,
    header: Option<(&str, &str)>,
    body: Value,
) -> u16 {
    let mut b = c.patch(url).bearer_auth(t).json(&body);
    if let Some((k, v)) = header {
        b = b.header(k, v);
    }
    b.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn mock_upsert_semantics() {
    let mock = DataverseMock::start();
    let c = client();
    let t = mock.issue_token();
    let url = |i: u32| format!("{}/accounts({})", mock.api_url(), guid(i));

    // no header: create if missing, update if present
    assert_eq!(
        patch_with(&c, &url(1), &t, None, json!({"name": "one"})).await,
        204
    );
    assert_eq!(mock.row("accounts", &guid(1)).unwrap()["name"], "one");
    assert_eq!(
        patch_with(&c, &url(1), &t, None, json!({"name": "one b"})).await,
        204
    );
    assert_eq!(mock.row("accounts", &guid(1)).unwrap()["name"], "one b");

    // If-Match: * — update only
    assert_eq!(
        patch_with(
            &c,
            &url(2),
            &t,
            Some(("If-Match", "*")),
            json!({"name": "two"})
        )
        .await,
        404
    );
    assert!(mock.row("accounts", &guid(2)).is_none());
    assert_eq!(
        patch_with(
            &c,
            &url(1),
            &t,
            Some(("If-Match", "*")),
            json!({"name": "one c"})
        )
        .await,
        204
    );
    assert_eq!(mock.row("accounts", &guid(1)).unwrap()["name"], "one c");

    // If-None-Match: * — create only
    assert_eq!(
        patch_with(
            &c,
            &url(1),
            &t,
            Some(("If-None-Match", "*")),
            json!({"name": "x"})
        )
        .await,
        412
    );
    assert_eq!(mock.row("accounts", &guid(1)).unwrap()["name"], "one c");
    assert_eq!(
        patch_with(
            &c,
            &url(3),
            &t,
            Some(("If-None-Match", "*")),
            json!({"name": "three"})
        )
        .await,
        204
    );
    assert_eq!(mock.row("accounts", &guid(3)).unwrap()["name"], "three");

    // Stale etag
    assert_eq!(
        patch_with(
            &c,
            &url(1),
            &t,
            Some(("If-Match", "W/\"1\"")),
            json!({"name": "y"})
        )
        .await,
        412
    );

    // Stamps: integration user by default, impersonated caller with CallerObjectId.
    let row = mock.row("accounts", &guid(1)).unwrap();
    assert_eq!(row["_modifiedby_value"], mock.integration_user());
    let modifiedon = row["modifiedon"].as_str().unwrap();
    assert!(
        modifiedon.ends_with('Z') && modifiedon.len() == 24,
        "{modifiedon}"
    );
    let caller = "12345678-1234-4234-8234-123456789abc";
    let r = c
        .patch(url(1))
        .bearer_auth(&t)
        .header("CallerObjectId", caller)
        .json(&json!({"name": "as caller"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(r
        .headers()
        .get("odata-entityid")
        .unwrap()
        .to_str()
        .unwrap()
        .ends_with(&format!("accounts({})", guid(1))));
    assert_eq!(
        mock.row("accounts", &guid(1)).unwrap()["_modifiedby_value"],
        caller
    );

    // Alternate key upsert
    let alt = format!("{}/accounts(accountnumber='ALT-1')", mock.api_url());
    assert_eq!(
        patch_with(&c, &alt, &t, None, json!({"name": "alt"})).await,
        204
    );
    assert_eq!(
        patch_with(&c, &alt, &t, None, json!({"name": "alt 2"})).await,
        204
    );
    let alts: Vec<Value> = mock
        .rows("accounts")
        .into_iter()
        .filter(|r| r["accountnumber"] == "ALT-1")
        .collect();
    assert_eq!(alts.len(), 1);
    assert_eq!(alts[0]["name"], "alt 2");

    // POST create with a client key: 204 + OData-EntityId; duplicate: 412. DELETE: 204 then 404.
    let r = c
        .post(format!("{}/accounts", mock.api_url()))
        .bearer_auth(&t)
        .json(&json!({"accountid": guid(50), "name": "posted", "primarycontactid@odata.bind": format!("contacts({})", guid(7))}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        r.headers().get("odata-entityid").unwrap().to_str().unwrap(),
        mock.entity_url("accounts", &guid(50))
    );
    assert_eq!(
        mock.row("accounts", &guid(50)).unwrap()["_primarycontactid_value"],
        guid(7)
    );
    let r = c
        .post(format!("{}/accounts", mock.api_url()))
        .bearer_auth(&t)
        .json(&json!({"accountid": guid(50), "name": "again"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 412);
    let r = c.delete(url(50)).bearer_auth(&t).send().await.unwrap();
    assert_eq!(r.status(), 204);
    let r = c.delete(url(50)).bearer_auth(&t).send().await.unwrap();
    assert_eq!(r.status(), 404);
}

fn batch_part(
    method: &str,
    url: &str,
    extra_headers: &[(&str, &str)],
    body: Option<&Value>,
) -> String {
    let mut s =
        String::from("Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n");
    s.push_str(&format!("{method} {url} HTTP/1.1\r\n"));
    for (k, v) in extra_headers {
        s.push_str(&format!("{k}: {v}\r\n"));
    }
    match body {
        Some(b) => s.push_str(&format!("Content-Type: application/json\r\n\r\n{b}\r\n")),
        None => s.push_str("\r\n"),
    }
    s
}

/// Status codes of the `HTTP/1.1 nnn` lines of a multipart batch response, in order.
fn part_statuses(body: &str) -> Vec<u16> {
    body.lines()
        .filter_map(|l| l.strip_prefix("HTTP/1.1 "))
        .map(|l| l[..3].parse().unwrap())
        .collect()
}

async fn send_batch(
    c: &reqwest::Client,
    mock: &DataverseMock,
    t: &str,
    body: String,
    continue_on_error: bool,
) -> (u16, String) {
    let mut b = c
        .post(format!("{}/$batch", mock.api_url()))
        .bearer_auth(t)
        .header("Content-Type", "multipart/mixed; boundary=batch_AAA123")
        .body(body);
    if continue_on_error {
        b = b.header("Prefer", "odata.continue-on-error");
    }
    let r = b.send().await.unwrap();
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        ct.starts_with("multipart/mixed; boundary=batchresponse_"),
        "{ct}"
    );
    (status, r.text().await.unwrap())
}

#[tokio::test]
async fn mock_batch_continue_on_error_and_stop_on_error() {
    let mock = DataverseMock::start();
    seed_accounts(&mock, 1);
    let c = client();
    let t = mock.issue_token();
    let api = mock.api_url();
    let ops = |suffix: u32| {
        let b1 = json!({"name": format!("batch create {suffix}")});
        let b2 = json!({"name": "never"});
        let b3 = json!({"name": "renamed in batch"});
        [
            batch_part(
                "PATCH",
                &format!("{api}/accounts({})", guid(100 + suffix)),
                &[],
                Some(&b1),
            ),
            batch_part(
                "PATCH",
                &format!("{api}/accounts({})", guid(200 + suffix)),
                &[("If-Match", "*")],
                Some(&b2),
            ),
            batch_part(
                "PATCH",
                &format!("/api/data/v9.2/accounts({})", guid(1)),
                &[],
                Some(&b3),
            ),
        ]
    };
    let body = |parts: [String; 3]| {
        let mut s = String::new();
        for p in parts {
            s.push_str("--batch_AAA123\r\n");
            s.push_str(&p);
        }
        s.push_str("--batch_AAA123--\r\n");
        s
    };

    let (status, text) = send_batch(&c, &mock, &t, body(ops(1)), true).await;
    assert_eq!(status, 200);
    assert_eq!(part_statuses(&text), vec![204, 404, 204], "{text}");
    assert!(mock.row("accounts", &guid(101)).is_some());
    assert!(mock.row("accounts", &guid(201)).is_none());
    assert_eq!(
        mock.row("accounts", &guid(1)).unwrap()["name"],
        "renamed in batch"
    );
    assert_eq!(mock.requests().iter().filter(|r| r.in_batch).count(), 3);

    // Without continue-on-error: stops at the failure, batch status is the failure's.
    mock.update("accounts", &guid(1), json!({"name": "reset"}), "u");
    let (status, text) = send_batch(&c, &mock, &t, body(ops(2)), false).await;
    assert_eq!(status, 404);
    assert_eq!(part_statuses(&text), vec![204, 404], "{text}");
    assert!(mock.row("accounts", &guid(102)).is_some());
    assert_eq!(mock.row("accounts", &guid(1)).unwrap()["name"], "reset");
}

#[tokio::test]
async fn mock_batch_change_set_is_atomic_and_resolves_content_ids() {
    let mock = DataverseMock::start();
    let c = client();
    let t = mock.issue_token();
    let api = mock.api_url();
    let changeset = |ops: Vec<(String, u32)>| {
        let mut s = String::from(
            "--batch_AAA123\r\nContent-Type: multipart/mixed; boundary=changeset_BBB\r\n\r\n",
        );
        for (op, id) in ops {
            s.push_str(&format!("--changeset_BBB\r\nContent-ID: {id}\r\n"));
            s.push_str(&op);
        }
        s.push_str("--changeset_BBB--\r\n");
        s
    };
    // Good change set: create an account, then a contact bound to it via $1.
    let acc = json!({"name": "cs account"});
    let con = json!({"lastname": "cs contact", "parentcustomerid_account@odata.bind": "$1"});
    let mut body = changeset(vec![
        (
            batch_part("POST", &format!("{api}/accounts"), &[], Some(&acc)),
            1,
        ),
        (
            batch_part("POST", &format!("{api}/contacts"), &[], Some(&con)),
            2,
        ),
    ]);
    body.push_str("--batch_AAA123\r\n");
    body.push_str(&batch_part(
        "GET",
        &format!("{api}/accounts?$select=name"),
        &[],
        None,
    ));
    body.push_str("--batch_AAA123--\r\n");
    let (status, text) = send_batch(&c, &mock, &t, body, false).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(part_statuses(&text), vec![204, 204, 200], "{text}");
    assert!(text.contains("changesetresponse_"));
    assert!(text.contains("Content-ID: 2"));
    let account_id = mock.rows("accounts")[0]["accountid"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        mock.rows("contacts")[0]["_parentcustomerid_account_value"],
        account_id.as_str()
    );

    // Failing change set: nothing persists.
    let mut body = changeset(vec![
        (
            batch_part(
                "POST",
                &format!("{api}/accounts"),
                &[],
                Some(&json!({"name": "rolled back"})),
            ),
            1,
        ),
        (
            batch_part(
                "PATCH",
                &format!("{api}/accounts({})", guid(404)),
                &[("If-Match", "*")],
                Some(&json!({"name": "x"})),
            ),
            2,
        ),
    ]);
    body.push_str("--batch_AAA123--\r\n");
    let (status, text) = send_batch(&c, &mock, &t, body, true).await;
    assert_eq!(status, 200);
    assert_eq!(part_statuses(&text), vec![404], "{text}");
    assert_eq!(mock.rows("accounts").len(), 1, "change set rolled back");
}

/// The proxy's spoiled batch answers do what they say, in both formats.
#[test]
fn spoiled_batch_answers_reorder_drop_and_repeat_parts() {
    use http_support::answers::{spoil, AnswerFault};
    let json_body = json!({ "responses": [ { "id": "1" }, { "id": "2" }, { "id": "3" } ] });
    let ids = |body: &[u8]| -> Vec<String> {
        let v: Value = serde_json::from_slice(body).unwrap();
        v["responses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect()
    };
    let raw = json_body.to_string().into_bytes();
    let ct = "application/json";
    assert_eq!(ids(&spoil(AnswerFault::Reorder, ct, &raw)), ["3", "2", "1"]);
    assert_eq!(ids(&spoil(AnswerFault::DropPart, ct, &raw)), ["1", "2"]);
    assert_eq!(
        ids(&spoil(AnswerFault::DuplicatePart, ct, &raw)),
        ["1", "1", "2", "3"]
    );
    assert!(serde_json::from_slice::<Value>(&spoil(AnswerFault::Garble, ct, &raw)).is_err());

    let ct = "multipart/mixed; boundary=b_1";
    let part = |n: u32| {
        format!("\r\nContent-Type: application/http\r\nContent-ID: {n}\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n")
    };
    let body = format!("--b_1{}--b_1{}--b_1--\r\n", part(1), part(2));
    let content_ids = |b: &[u8]| -> Vec<String> {
        String::from_utf8_lossy(b)
            .lines()
            .filter_map(|l| l.strip_prefix("Content-ID: ").map(str::to_string))
            .collect()
    };
    let spoiled = spoil(AnswerFault::Reorder, ct, body.as_bytes());
    assert_eq!(content_ids(&spoiled), ["2", "1"]);
    assert!(String::from_utf8_lossy(&spoiled).ends_with("--b_1--\r\n"));
    assert_eq!(
        content_ids(&spoil(AnswerFault::DropPart, ct, body.as_bytes())),
        ["1"]
    );
    let unnamed = spoil(AnswerFault::ReorderUnnamed, ct, body.as_bytes());
    assert!(content_ids(&unnamed).is_empty());
    assert!(String::from_utf8_lossy(&unnamed).contains("HTTP/1.1 204"));
    let unnamed = spoil(AnswerFault::ReorderUnnamed, "application/json", &raw);
    let v: Value = serde_json::from_slice(&unnamed).unwrap();
    let responses = v["responses"].as_array().unwrap();
    assert!(responses.iter().all(|r| r.get("id").is_none()));
}
