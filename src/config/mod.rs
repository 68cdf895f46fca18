//! `coupler.yaml`: profiles binding each system name of the mapping files to an endpoint, and
//! where the state lives. No secrets here: `${VAR}` takes a value from the environment.

use indexmap::IndexMap;
use serde::Deserialize;
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
    },
    BusinessCentral {
        url: String,
        #[serde(default)]
        company: Option<String>,
        #[serde(default)]
        auth: Option<Auth>,
    },
    Dataverse {
        url: String,
        #[serde(default)]
        auth: Option<Auth>,
    },
}

fn default_integration_user() -> String {
    "coupler-integration".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    pub tenant: String,
    pub client_id: String,
    pub client_secret: String,
    #[serde(default)]
    pub token_url: Option<String>,
}

/// A profile ready to use: paths resolved against the folder of `coupler.yaml`.
#[derive(Debug, Clone)]
pub struct ResolvedProfile {
    pub name: String,
    pub root: PathBuf,
    pub systems: IndexMap<String, Endpoint>,
    pub state: PathBuf,
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

/// Loads a profile from `coupler.yaml` (found from the current folder unless given).
pub fn load_profile(config: Option<&Path>, name: &str) -> Result<ResolvedProfile, ConfigError> {
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
        *s = interpolate(s)
            .map_err(|e| ConfigError(format!("profile `{name}`, system `{sys}`: {e}")))?;
        Ok(())
    };
    for (sys, ep) in systems.iter_mut() {
        match ep {
            Endpoint::Embedded { seed, .. } => {
                if let Some(seed) = seed {
                    *seed = root.join(&*seed);
                }
            }
            Endpoint::BusinessCentral { url, company, auth } => {
                env(url, sys)?;
                if let Some(c) = company {
                    env(c, sys)?;
                }
                if let Some(a) = auth {
                    env(&mut a.tenant, sys)?;
                    env(&mut a.client_id, sys)?;
                    env(&mut a.client_secret, sys)?;
                }
            }
            Endpoint::Dataverse { url, auth } => {
                env(url, sys)?;
                if let Some(a) = auth {
                    env(&mut a.tenant, sys)?;
                    env(&mut a.client_id, sys)?;
                    env(&mut a.client_secret, sys)?;
                }
            }
        }
    }
    Ok(ResolvedProfile {
        name: name.to_string(),
        state: root.join(&profile.state),
        root,
        systems,
    })
}

/// Replaces `${VAR}` with the environment's value; a missing variable is an error naming it
/// (never its value).
pub fn interpolate(text: &str) -> Result<String, String> {
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
            Err(_) => return Err(format!("environment variable `{var}` is not set")),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}
