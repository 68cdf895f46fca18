//! OAuth 2.0 client credentials against Microsoft Entra ID: one token per endpoint, cached and
//! renewed five minutes before it expires (or at once after a 401).
//!
//! `POST https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token` (or `auth.token_url`) with
//! `grant_type=client_credentials`, `client_id`, `client_secret` and `scope=<resource>/.default`,
//! where the resource is the scheme and host of the endpoint's URL.

use super::http::{Bearer, Http, Req};
use crate::config::Auth;
use crate::runtime::connector::{ConnectorError, ErrorKind};
use async_trait::async_trait;
use reqwest::Method;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;
use url::Url;

/// How long before its expiry a token is renewed (at most half its lifetime).
pub const RENEW_EARLY: Duration = Duration::from_secs(300);

pub struct TokenSource {
    token_url: Url,
    client_id: String,
    secret: String,
    scope: String,
    cached: Mutex<Option<Cached>>,
    /// Every token handed out, so messages can be scrubbed of them.
    issued: std::sync::Mutex<Vec<String>>,
}

struct Cached {
    token: String,
    renew_at: Instant,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource")
            .field("token_url", &self.token_url.as_str())
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("scope", &self.scope)
            .finish()
    }
}

impl TokenSource {
    /// Credentials for the API at `api` (its origin is the resource the token is for).
    pub fn new(auth: &Auth, api: &Url) -> Result<TokenSource, ConnectorError> {
        let token_url = match &auth.token_url {
            Some(t) => crate::config::check_url(t, "auth.token_url")
                .map_err(ConnectorError::configuration)?,
            None => Url::parse(&format!(
                "https://login.microsoftonline.com/{}/oauth2/v2.0/token",
                auth.tenant.trim()
            ))
            .map_err(|_| ConnectorError::configuration("`auth.tenant` cannot be part of a URL"))?,
        };
        let origin = api.origin().ascii_serialization();
        Ok(TokenSource {
            token_url,
            client_id: auth.client_id.clone(),
            secret: auth.client_secret.clone(),
            scope: format!("{origin}/.default"),
            cached: Mutex::new(None),
            issued: std::sync::Mutex::new(Vec::new()),
        })
    }

    pub fn scope(&self) -> &str {
        &self.scope
    }

    /// The texts never to show: the secret (also form-encoded, as it travels in a token
    /// request) and every token handed out.
    fn secrets(&self) -> Vec<String> {
        let mut plain = vec![self.secret.clone()];
        plain.extend(
            self.issued
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .cloned(),
        );
        let mut all = Vec::with_capacity(plain.len() * 2);
        for s in plain.into_iter().filter(|s| s.len() >= 4) {
            let encoded: String = url::form_urlencoded::byte_serialize(s.as_bytes()).collect();
            if encoded != s {
                all.push(encoded);
            }
            all.push(s);
        }
        all
    }

    /// `text` without the secret or any token this source handed out.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in self.secrets() {
            out = out.replace(&s, "<redacted>");
        }
        out
    }

    /// Whether `bytes` hold the secret or a token (a cheap search, before copying a body).
    pub fn exposes(&self, bytes: &[u8]) -> bool {
        self.secrets()
            .iter()
            .any(|s| memchr::memmem::find(bytes, s.as_bytes()).is_some())
    }

    /// A valid token: the cached one, or a new one.
    pub async fn token(&self, http: &Http) -> Result<String, ConnectorError> {
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref() {
            if Instant::now() < c.renew_at {
                return Ok(c.token.clone());
            }
        }
        let (token, lifetime) = self.fetch(http).await?;
        self.issued
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(token.clone());
        *cached = Some(Cached {
            token: token.clone(),
            renew_at: Instant::now() + lifetime.saturating_sub(RENEW_EARLY.min(lifetime / 2)),
        });
        Ok(token)
    }

    /// Forgets `token` (rejected with 401) unless it was already replaced.
    pub async fn invalidate(&self, token: &str) {
        let mut cached = self.cached.lock().await;
        if cached.as_ref().is_some_and(|c| c.token == token) {
            *cached = None;
        }
    }

    async fn fetch(&self, http: &Http) -> Result<(String, Duration), ConnectorError> {
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "client_credentials")
            .append_pair("client_id", &self.client_id)
            .append_pair("client_secret", &self.secret)
            .append_pair("scope", &self.scope)
            .finish();
        let req = Req::new(Method::POST, self.token_url.clone())
            .replayable()
            .header("Accept", "application/json")
            .body("application/x-www-form-urlencoded", body.into_bytes());
        let fail = |kind: ErrorKind, message: String| {
            let text = format!(
                "cannot get an access token from {}: {message}",
                self.token_url.as_str()
            );
            ConnectorError::of(kind, self.scrub(&text))
        };
        let resp = http
            .send_plain(&req)
            .await
            .map_err(|e| fail(e.kind, e.message))?;
        if !resp.ok() {
            // Entra ID answers 400 or 401 to credentials it refuses: never a retry.
            let kind = match ErrorKind::of_status(resp.status) {
                ErrorKind::Transient => ErrorKind::Transient,
                _ => ErrorKind::Authentication,
            };
            return Err(fail(kind, resp.reason()));
        }
        let json = resp
            .json()
            .map_err(|e| fail(ErrorKind::Authentication, e.message))?;
        let token = json
            .get("access_token")
            .and_then(|t| t.as_str())
            .ok_or_else(|| {
                fail(
                    ErrorKind::Authentication,
                    "the response has no `access_token`".into(),
                )
            })?
            .to_string();
        let expires = json
            .get("expires_in")
            .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
            .unwrap_or(3600);
        Ok((token, Duration::from_secs(expires)))
    }
}

#[async_trait]
impl Bearer for TokenSource {
    async fn token(&self, http: &Http) -> Result<String, ConnectorError> {
        TokenSource::token(self, http).await
    }

    async fn invalidate(&self, token: &str) {
        TokenSource::invalidate(self, token).await;
    }

    fn scrub(&self, text: &str) -> String {
        TokenSource::scrub(self, text)
    }

    fn exposes(&self, bytes: &[u8]) -> bool {
        TokenSource::exposes(self, bytes)
    }
}
