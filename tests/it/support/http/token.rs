//! The one OAuth token endpoint of the test servers: client credentials as Microsoft Entra ID
//! answers them, and the bearer tokens it issued (they really expire). The Dataverse mock and the
//! `schema pull` mock both issue and check their tokens here.

use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The client the endpoint knows, and the tokens it issued.
#[derive(Debug)]
pub struct Tokens {
    pub client_id: String,
    pub client_secret: String,
    /// `expires_in` of tokens issued from now on, in seconds.
    pub expires_in: u64,
    /// The status of a wrong client id or secret (`401`, as Entra ID answers it).
    pub refused: u16,
    /// What the requested scope must start with; `None`: any scope that is not empty.
    pub scope: Option<String>,
    issued: u64,
    live: HashMap<String, Instant>,
}

impl Tokens {
    pub fn new(client_id: &str, client_secret: &str, expires_in: u64) -> Tokens {
        Tokens {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            expires_in,
            refused: 401,
            scope: None,
            issued: 0,
            live: HashMap::new(),
        }
    }

    /// The answer to a `POST .../oauth2/v2.0/token` with this form body: status and JSON.
    pub fn respond(&mut self, form: &[u8]) -> (u16, Value) {
        let form: HashMap<String, String> =
            url::form_urlencoded::parse(form).into_owned().collect();
        let get = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
        if get("grant_type") != "client_credentials" {
            return (
                400,
                json!({"error":"unsupported_grant_type","error_description":"only client_credentials"}),
            );
        }
        if get("client_id") != self.client_id || get("client_secret") != self.client_secret {
            return (
                self.refused,
                json!({"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided."}),
            );
        }
        let scope = get("scope");
        let wanted = self.scope.as_deref().unwrap_or("");
        if scope.is_empty() || !scope.starts_with(wanted) {
            return (
                400,
                json!({"error":"invalid_scope","error_description":"scope is required"}),
            );
        }
        let token = self.issue();
        (
            200,
            json!({
                "token_type": "Bearer",
                "expires_in": self.expires_in,
                "ext_expires_in": self.expires_in,
                "access_token": token,
            }),
        )
    }

    /// Issues a token directly (no HTTP).
    pub fn issue(&mut self) -> String {
        self.issued += 1;
        let token = format!("mock-{}-{}", uuid::Uuid::new_v4().simple(), self.issued);
        let expiry = Instant::now() + Duration::from_secs(self.expires_in);
        self.live.insert(token.clone(), expiry);
        token
    }

    /// Whether an `Authorization` header value carries a token issued here and not expired.
    pub fn accepts(&self, authorization: Option<&str>) -> bool {
        authorization
            .and_then(|v| {
                let (scheme, tok) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| tok.trim())
            })
            .and_then(|tok| self.live.get(tok))
            .is_some_and(|expiry| Instant::now() < *expiry)
    }

    /// Tokens issued so far.
    pub fn issued(&self) -> u64 {
        self.issued
    }

    /// Invalidates every token issued so far.
    pub fn expire_all(&mut self) {
        self.live.clear();
    }
}
