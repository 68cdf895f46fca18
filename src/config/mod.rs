//! `coupler.yaml`: profiles binding each system name of the mapping files to an endpoint, and
//! where the state lives. No secrets here: `${VAR}` takes a value from the environment.

use indexmap::IndexMap;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub profiles: IndexMap<String, Profile>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub systems: IndexMap<String, Endpoint>,
    /// The state store (SQLite); relative to `coupler.yaml`.
    pub state: PathBuf,
    /// Values for settings of the mapping set in this environment (`create_sales_orders: true`).
    #[serde(default)]
    pub settings: IndexMap<String, SettingValue>,
}

/// A setting's value in a profile: the literal kinds of the mapping language.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum SettingValue {
    Bool(bool),
    Number(f64),
    Text(String),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Endpoint {
    /// A SQLite database under the state folder, behaving like the real system.
    Embedded {
        /// A JSON file, or a folder of them, loaded on first use.
        #[serde(default)]
        seed: Option<PathBuf>,
        /// Who the integration writes as; changes by this user are never synchronized back.
        #[serde(default = "default_integration_user")]
        integration_user: String,
        /// The database file, relative to `coupler.yaml`; default `<state folder>/<system>.db`.
        /// Profiles that name the same file share one embedded system (several Business
        /// Central companies, one Dataverse).
        #[serde(default)]
        database: Option<PathBuf>,
        /// For a company-scoped Dataverse system (`company COLUMN` in the mapping set): the id
        /// of this Business Central company's row in the company entity (`bcbi_company`).
        #[serde(default)]
        company_id: Option<String>,
    },
    /// Business Central API v2.0: `url` is the API root (`…/api/v2.0`), `company` the company
    /// name (optional when the environment has one company).
    BusinessCentral {
        url: String,
        #[serde(default)]
        company: Option<String>,
        #[serde(default)]
        auth: Option<Auth>,
        /// Who the integration writes as. The API does not expose who changed a record, so on
        /// Business Central this only names the user; loop prevention compares values.
        #[serde(default)]
        integration_user: Option<String>,
        #[serde(default)]
        limits: Limits,
        /// What this endpoint publishes beyond API v2.0 (custom API pages): table name ->
        /// its entity set and field -> property. Anything else the API does not serve is left
        /// out for this profile (`coupler check --profile` lists it).
        #[serde(default)]
        publishes: BTreeMap<String, Publishes>,
    },
    /// Dataverse Web API: `url` is the service root (`https://<org>.crm.dynamics.com/api/data/v9.2`).
    Dataverse {
        url: String,
        #[serde(default)]
        auth: Option<Auth>,
        /// The systemuserid (GUID) the integration writes as; records last changed by it are not
        /// read back. Default: `WhoAmI` when `auth` is set.
        #[serde(default)]
        integration_user: Option<String>,
        #[serde(default)]
        limits: Limits,
        /// The time zone of the Sales users (IANA name, `Europe/Berlin`): date-only columns
        /// with the UserLocal behaviour hold midnight of that zone. Default: UTC.
        #[serde(default)]
        time_zone: Option<String>,
        /// For a company-scoped system (`company COLUMN` in the mapping set): the id of this
        /// Business Central company's row in the company entity (`bcbi_company`), as Business
        /// Central finds it by the company's external id (CDS Integration Impl.
        /// `InitializeCompanyCache`).
        #[serde(default)]
        company_id: Option<String>,
    },
}

impl Endpoint {
    /// The company id of a company-scoped Dataverse endpoint (`company_id`).
    pub fn company_id(&self) -> Option<&str> {
        match self {
            Endpoint::Embedded { company_id, .. } | Endpoint::Dataverse { company_id, .. } => {
                company_id.as_deref()
            }
            Endpoint::BusinessCentral { .. } => None,
        }
    }
}

/// A table a Business Central endpoint publishes beyond API v2.0.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Publishes {
    /// The entity set, for a table API v2.0 has none for.
    #[serde(default)]
    pub entity_set: Option<String>,
    /// Field name -> API property.
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
}

/// What an HTTP endpoint may cost: how long one request may take and how large an answer may
/// be. Unset, the connector's defaults (120 s, 100 MB).
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// One request, from sending to the last byte of its answer (1 to 3600).
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
    /// The largest answer read, in megabytes (1 to 4096).
    #[serde(default)]
    pub max_response_mb: Option<u64>,
}

impl Limits {
    fn validate(&self) -> Result<(), String> {
        let check = |what: &str, v: Option<u64>, max: u64| match v {
            Some(n) if n == 0 || n > max => Err(format!(
                "`limits.{what}` must be between 1 and {max}, got {n}"
            )),
            _ => Ok(()),
        };
        check("timeout_seconds", self.timeout_seconds, 3600)?;
        check("max_response_mb", self.max_response_mb, 4096)
    }
}

fn default_integration_user() -> String {
    "coupler-integration".into()
}

/// OAuth 2.0 client credentials (Microsoft Entra ID). Its `Debug` never shows the secret.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    pub tenant: String,
    pub client_id: String,
    pub client_secret: String,
    #[serde(default)]
    pub token_url: Option<String>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("tenant", &self.tenant)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("token_url", &self.token_url)
            .finish()
    }
}

/// A profile ready to use: paths resolved against the folder of `coupler.yaml`.
#[derive(Debug, Clone)]
pub struct ResolvedProfile {
    pub name: String,
    pub root: PathBuf,
    pub systems: IndexMap<String, Endpoint>,
    pub state: PathBuf,
    pub settings: IndexMap<String, SettingValue>,
}

impl ResolvedProfile {
    /// The folder holding the state store and embedded databases.
    pub fn state_dir(&self) -> PathBuf {
        self.state
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."))
    }
}

#[derive(Debug)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Finds `coupler.yaml` in the current folder or above it.
pub fn find_config() -> Option<PathBuf> {
    let mut dir = std::env::current_dir().ok()?;
    loop {
        let candidate = dir.join("coupler.yaml");
        if candidate.is_file() {
            return Some(candidate);
        }
        if !dir.pop() {
            return None;
        }
    }
}

/// Whether a profile is loaded to connect (every `${VAR}` must be set) or only to be looked at
/// by a static command (`check`, `plan`): those must not need the secrets.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Use {
    Connect,
    Static,
}

/// Loads a profile from `coupler.yaml` (found from the current folder unless given).
pub fn load_profile(config: Option<&Path>, name: &str) -> Result<ResolvedProfile, ConfigError> {
    load_profile_for(config, name, Use::Connect)
}

/// Loads a profile for `usage`: with `Use::Static`, a variable that is not set stays `${VAR}`
/// and the values that still hold one are not validated.
pub fn load_profile_for(
    config: Option<&Path>,
    name: &str,
    usage: Use,
) -> Result<ResolvedProfile, ConfigError> {
    let path = match config {
        Some(p) => p.to_path_buf(),
        None => find_config().ok_or_else(|| {
            ConfigError(
                "no `coupler.yaml` in this folder or above it; profiles are defined there".into(),
            )
        })?,
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| ConfigError(format!("cannot read `{}`: {e}", path.display())))?;
    let file: ConfigFile = serde_norway::from_str(&text).map_err(|e| {
        let at = e
            .location()
            .map(|l| format!(":{}:{}", l.line(), l.column()))
            .unwrap_or_default();
        ConfigError(format!("{}{at}: {}", path.display(), e))
    })?;
    let root = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let Some(profile) = file.profiles.get(name) else {
        let names: Vec<&str> = file.profiles.keys().map(String::as_str).collect();
        let hint = crate::diagnostic::suggest::did_you_mean(name, names.iter().copied())
            .map(|s| format!("; did you mean `{s}`?"))
            .unwrap_or_else(|| format!("; the profiles are {}", names.join(", ")));
        return Err(ConfigError(format!(
            "no profile `{name}` in `{}`{hint}",
            path.display()
        )));
    };
    let mut systems = profile.systems.clone();
    // Only the chosen profile needs its environment variables.
    let env = |s: &mut String, sys: &str| -> Result<(), ConfigError> {
        *s = interpolate(s, usage)
            .map_err(|e| ConfigError(format!("profile `{name}`, system `{sys}`: {e}")))?;
        Ok(())
    };
    for (sys, ep) in systems.iter_mut() {
        match ep {
            Endpoint::Embedded {
                seed,
                database,
                company_id,
                ..
            } => {
                if let Some(seed) = seed {
                    *seed = root.join(&*seed);
                }
                if let Some(db) = database {
                    *db = root.join(&*db);
                }
                if let Some(c) = company_id {
                    env(c, sys)?;
                }
            }
            Endpoint::BusinessCentral {
                url,
                company,
                auth,
                integration_user,
                ..
            } => {
                env(url, sys)?;
                if let Some(c) = company {
                    env(c, sys)?;
                }
                if let Some(u) = integration_user {
                    env(u, sys)?;
                }
                if let Some(a) = auth {
                    env_auth(a, &env, sys)?;
                }
            }
            Endpoint::Dataverse {
                url,
                auth,
                integration_user,
                company_id,
                ..
            } => {
                env(url, sys)?;
                if let Some(c) = company_id {
                    env(c, sys)?;
                }
                if let Some(u) = integration_user {
                    env(u, sys)?;
                }
                if let Some(a) = auth {
                    env_auth(a, &env, sys)?;
                }
            }
        }
        if usage == Use::Connect {
            validate_endpoint(ep)
        } else {
            validate_endpoint(&placeholders_filled(ep))
        }
        .map_err(|e| ConfigError(format!("profile `{name}`, system `{sys}`: {e}")))?;
    }
    Ok(ResolvedProfile {
        name: name.to_string(),
        state: root.join(&profile.state),
        root,
        systems,
        settings: profile.settings.clone(),
    })
}

fn env_auth(
    a: &mut Auth,
    env: &dyn Fn(&mut String, &str) -> Result<(), ConfigError>,
    sys: &str,
) -> Result<(), ConfigError> {
    env(&mut a.tenant, sys)?;
    env(&mut a.client_id, sys)?;
    env(&mut a.client_secret, sys)?;
    if let Some(t) = &mut a.token_url {
        env(t, sys)?;
    }
    Ok(())
}

/// Checks an HTTP endpoint once its variables are filled in: a usable URL (https, or http on a
/// loopback address only), a GUID integration user, complete credentials. Messages never
/// contain the client secret.
pub fn validate_endpoint(ep: &Endpoint) -> Result<(), String> {
    if let Some(id) = ep.company_id() {
        if uuid::Uuid::try_parse(id).is_err() {
            return Err(format!(
                "`company_id` must be the GUID of the company's row in Dataverse, got `{id}`"
            ));
        }
    }
    let (url, auth, user, limits) = match ep {
        Endpoint::Embedded { .. } => return Ok(()),
        Endpoint::BusinessCentral {
            url,
            auth,
            integration_user,
            limits,
            ..
        }
        | Endpoint::Dataverse {
            url,
            auth,
            integration_user,
            limits,
            ..
        } => (url, auth, integration_user, limits),
    };
    limits.validate()?;
    if let Endpoint::Dataverse {
        time_zone: Some(zone),
        ..
    } = ep
    {
        zone.parse::<chrono_tz::Tz>().map_err(|_| {
            format!("`time_zone`: `{zone}` is not a time zone of the IANA database (e.g. `Europe/Berlin`, `UTC`)")
        })?;
    }
    check_url(url, "url")?;
    if let Some(a) = auth {
        for (what, v) in [
            ("tenant", &a.tenant),
            ("client_id", &a.client_id),
            ("client_secret", &a.client_secret),
        ] {
            if v.trim().is_empty() {
                return Err(format!("`auth.{what}` is empty"));
            }
        }
        if let Some(t) = &a.token_url {
            check_url(t, "auth.token_url")?;
        }
    }
    if let (Endpoint::Dataverse { .. }, Some(u)) = (ep, user) {
        if uuid::Uuid::parse_str(u.trim_matches(|c| c == '{' || c == '}')).is_err() {
            return Err(format!(
                "`integration_user` must be the systemuserid (a GUID) of the integration's application user, got `{u}`"
            ));
        }
    }
    Ok(())
}

/// The endpoint with every value that still holds a `${VAR}` replaced by a value that passes
/// validation, so that a static command checks everything else.
fn placeholders_filled(ep: &Endpoint) -> Endpoint {
    let mut ep = ep.clone();
    let fill = |s: &mut String, with: &str| {
        if s.contains("${") {
            *s = with.to_string();
        }
    };
    let nil = "00000000-0000-0000-0000-000000000000";
    if let Endpoint::BusinessCentral {
        url,
        auth,
        integration_user,
        ..
    }
    | Endpoint::Dataverse {
        url,
        auth,
        integration_user,
        ..
    } = &mut ep
    {
        fill(url, "https://placeholder.invalid/");
        if let Some(u) = integration_user {
            fill(u, nil);
        }
        if let Some(a) = auth {
            for v in [&mut a.tenant, &mut a.client_id, &mut a.client_secret] {
                fill(v, "set");
            }
            if let Some(t) = &mut a.token_url {
                fill(t, "https://placeholder.invalid/");
            }
        }
    }
    if let Endpoint::Embedded {
        company_id: Some(c),
        ..
    }
    | Endpoint::Dataverse {
        company_id: Some(c),
        ..
    } = &mut ep
    {
        fill(c, nil);
    }
    ep
}

/// `https://…`, or `http://…` on a loopback address (tests, local servers): anything else would
/// send credentials and data in clear text.
pub fn check_url(text: &str, what: &str) -> Result<url::Url, String> {
    let url =
        url::Url::parse(text).map_err(|e| format!("`{what}` is not a URL ({e}): `{text}`"))?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        "http" => Err(format!(
            "`{what}` uses plain http on a host that is not a loopback address (`{}`): use https; plain http is allowed only for 127.0.0.0/8, ::1 and localhost",
            url.host_str().unwrap_or_default()
        )),
        other => Err(format!("`{what}`: unsupported scheme `{other}` (use https)")),
    }
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Replaces `${VAR}` with the environment's value; a missing variable is an error naming it
/// (never its value).
pub fn interpolate(text: &str, usage: Use) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err("unterminated `${` in configuration".into());
        };
        let var = &after[..end];
        match std::env::var(var) {
            Ok(v) => out.push_str(&v),
            Err(_) if usage == Use::Static => out.push_str(&rest[start..start + 3 + end]),
            Err(_) => return Err(format!("environment variable `{var}` is not set")),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}
