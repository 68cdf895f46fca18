//! 429 handling against the fault proxy's sliding-window rate limit (in front of CAP): a 429
//! pauses the whole endpoint, so the requests waiting for a slot do not collect 429s of their
//! own, and every request still gets through.
use crate::support::http as http_support;

use coupler::runtime::connectors::http::{Http, Req};
use coupler::runtime::connectors::HttpOptions;
use http_support::cap::CapServer;
use http_support::proxy::{FaultKind, FaultProxy, Faults};
use std::sync::Arc;
use std::time::{Duration, Instant};
use url::Url;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_pauses_every_request_of_the_endpoint() {
    let cap = tokio::task::spawn_blocking(CapServer::start).await.unwrap();
    let (max, window) = (10usize, Duration::from_secs(1));
    let proxy = FaultProxy::start(&cap.base_url(), Faults::none().with_rate_limit(max, window));
    let concurrency = 4;
    let root = Url::parse(&format!("{}/api/data/v9.2", proxy.url())).unwrap();
    let http = Arc::new(
        Http::new(
            &root,
            HttpOptions {
                concurrency,
                max_retries: 8,
                ..HttpOptions::default()
            },
            None,
        )
        .unwrap(),
    );
    let n = 40;
    let url = Url::parse(&format!("{root}/accounts?$top=1")).unwrap();
    let t = Instant::now();
    let answers = futures::future::join_all((0..n).map(|_| {
        let http = http.clone();
        let req = Req::get(url.clone());
        async move { http.send(&req).await }
    }))
    .await;
    let elapsed = t.elapsed();
    for a in &answers {
        assert_eq!(a.as_ref().map(|r| r.status), Ok(200), "{a:?}");
    }
    let throttled = proxy.injected(FaultKind::RateLimited);
    let windows = (n / max) as u64;
    eprintln!("{throttled} 429s for {n} requests ({windows} windows) in {elapsed:?}");
    // Each time the budget runs out, only the requests already in flight can get a 429; the
    // ones waiting for a slot wait for the pause instead. Without the shared pause every waiting
    // request collects at least one 429 (about one per admitted request).
    assert!(
        throttled <= windows * concurrency as u64,
        "{throttled} 429s for {n} requests in {windows} windows"
    );
    assert_eq!(proxy.forwarded(), n as u64);
    assert!(elapsed >= window * (windows as u32 - 1), "{elapsed:?}");
}
