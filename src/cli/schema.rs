//! `coupler schema pull`: fetch a system's OData `$metadata` (or read a saved copy) and write its
//! schema catalog (conversion in `crate::schema::pull`).
//!
//! Endpoint URLs (from the profile):
//! - Dataverse: an organization root (`https://org.crm.dynamics.com`, no path) means the Web API
//!   at `/api/data/v9.2`; a URL with a path is taken as the service root as it is (e.g.
//!   `https://org.crm.dynamics.com/api/data/v9.2`, or a local mock). `$metadata` is below it.
//! - Business Central: the URL is the API root (`.../v2.0/<tenant>/<env>/api/v2.0`, or a custom
//!   `/api/<publisher>/<group>/<version>`); a `/companies(...)` suffix is cut off. `$metadata` is
//!   below it; it does not depend on the company.
//!
//! Requests go through `runtime::connectors::http` (plain `http` only for loopback hosts, retries,
//! secret scrubbing) with `runtime::connectors::auth` (OAuth client credentials).

use super::args::{SchemaCommand, SchemaPullArgs, SystemKindArg};
use super::load;
use super::setup::{self, fail, Stop};
use crate::analysis::SystemKind;
use crate::config::Endpoint;
use crate::runtime::connectors::auth::TokenSource;
use crate::runtime::connectors::http::{Bearer, Http, HttpOptions, Req};
use crate::schema::pull::{self, OptionSetValues, PullOptions};
use crate::schema::Catalog;
use crate::syntax::ast::Item;
use futures::StreamExt as _;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::Arc;

pub fn run(command: SchemaCommand) -> i32 {
    match command {
        SchemaCommand::Pull(a) => match execute_pull(a) {
            Ok(code) | Err(Stop(code)) => code,
        },
    }
}

fn execute_pull(a: SchemaPullArgs) -> Result<i32, Stop> {
    let kind = system_kind(&a)?;
    let (xml, source, remote) = match &a.from_file {
        Some(path) => {
            let bytes = std::fs::read(path)
                .map_err(|e| fail(format!("cannot read `{}`: {e}", path.display())))?;
            let xml = String::from_utf8(bytes).map_err(|e| {
                fail(format!(
                    "`{}` is not UTF-8 text (byte {}); save $metadata as UTF-8",
                    path.display(),
                    e.utf8_error().valid_up_to()
                ))
            })?;
            (xml, path.display().to_string(), None)
        }
        None => {
            let profile_name = a.profile.as_deref().ok_or_else(|| {
                fail("give `--profile NAME` to fetch $metadata, or `--from-file METADATA.xml`")
            })?;
            let profile = setup::profile(profile_name, a.config.as_deref())?;
            let Some(endpoint) = profile.systems.get(&a.system) else {
                return Err(fail(format!(
                    "profile `{profile_name}` binds no endpoint to system `{}`; add it under `profiles.{profile_name}.systems`",
                    a.system
                )));
            };
            let remote = Remote::of(&a.system, endpoint, kind)?;
            let url = remote.metadata_url();
            let xml = setup::block_on(remote.fetch_metadata())?.map_err(fail)?;
            (xml, url, Some(remote))
        }
    };
    let mut options = PullOptions {
        only: a.only.iter().map(|s| s.trim().to_string()).collect(),
        source: Some(source.clone()),
        option_sets: BTreeMap::new(),
    };
    let at = |e: pull::PullError| match e.line {
        Some(line) => fail(format!("{source}:{line}: {}", e.message)),
        None => fail(format!("{source}: {}", e.message)),
    };
    if a.option_sets {
        if kind != SystemKind::Dataverse {
            return Err(fail(
                "`--option-sets` reads Dataverse's Metadata API; Business Central's enums are in $metadata already",
            ));
        }
        let Some(remote) = &remote else {
            return Err(fail("`--option-sets` needs a live endpoint (`--profile`)"));
        };
        let csdl = pull::parse_csdl(&xml).map_err(at)?;
        let tables = pull::build_catalog(&csdl, kind, &options)
            .map_err(at)?
            .table_names();
        options.option_sets = setup::block_on(remote.fetch_option_sets(tables))?.map_err(fail)?;
    }
    let yaml = pull::catalog_from_csdl(&xml, kind, &options).map_err(at)?;
    match &a.output {
        Some(path) => {
            std::fs::write(path, &yaml)
                .map_err(|e| fail(format!("cannot write `{}`: {e}", path.display())))?;
            let tables = Catalog::parse(&yaml).map(|c| c.tables.len()).unwrap_or(0);
            eprintln!(
                "wrote {} ({tables} table{}) for system `{}`",
                path.display(),
                if tables == 1 { "" } else { "s" },
                a.system
            );
        }
        None => {
            let mut out = std::io::stdout();
            let _ = out.write_all(yaml.as_bytes());
            let _ = out.flush();
        }
    }
    Ok(0)
}

/// `--kind`, else the kind of SYSTEM's `system` declaration in the mapping files.
fn system_kind(a: &SchemaPullArgs) -> Result<SystemKind, Stop> {
    if let Some(k) = a.kind {
        return Ok(match k {
            SystemKindArg::BusinessCentral => SystemKind::BusinessCentral,
            SystemKindArg::Dataverse => SystemKind::Dataverse,
        });
    }
    // Parse only: the catalog the declaration names may not exist yet.
    let loaded = load::load(&a.paths).map_err(|e| {
        fail(format!(
            "{}; the kind of system `{}` comes from its `system` declaration (or give `--kind`)",
            e.0, a.system
        ))
    })?;
    let mut declared = Vec::new();
    for (_, file) in &loaded.asts {
        for item in &file.items {
            if let Item::System(s) = item {
                if s.name.name == a.system {
                    return SystemKind::ALL
                        .iter()
                        .find(|(n, _)| *n == s.kind.name)
                        .map(|(_, k)| *k)
                        .ok_or_else(|| {
                            fail(format!(
                                "system `{}` is declared with the unknown kind `{}`; the kinds are `business_central` and `dataverse`",
                                a.system, s.kind.name
                            ))
                        });
                }
                declared.push(s.name.name.clone());
            }
        }
    }
    let hint =
        crate::diagnostic::suggest::did_you_mean(&a.system, declared.iter().map(String::as_str))
            .map(|s| format!("; did you mean `{s}`?"))
            .unwrap_or_else(|| {
                if declared.is_empty() {
                    String::new()
                } else {
                    format!("; declared: {}", declared.join(", "))
                }
            });
    Err(fail(format!(
        "no mapping file declares system `{}`{hint} (or give `--kind`)",
        a.system
    )))
}

/// A live endpoint to read from, through the connectors' HTTP client (TLS, loopback-only plain
/// http, retries, OAuth client credentials, secret scrubbing).
struct Remote {
    /// The OData service root, without a trailing slash.
    base: url::Url,
    http: Http,
}

fn trimmed(url: &url::Url) -> url::Url {
    let mut u = url.clone();
    let path = u.path().trim_end_matches('/').to_string();
    u.set_path(&path);
    u.set_query(None);
    u.set_fragment(None);
    u
}

impl Remote {
    fn of(system: &str, endpoint: &Endpoint, kind: SystemKind) -> Result<Remote, Stop> {
        let (url, auth, limits, endpoint_kind) = match endpoint {
            Endpoint::Embedded { .. } => {
                return Err(fail(format!(
                    "system `{system}` is an embedded system in this profile: it has no $metadata (its catalog is its schema); pull from a profile with a real endpoint, or use `--from-file`"
                )))
            }
            Endpoint::Dataverse {
                url, auth, limits, ..
            } => (url, auth, limits, SystemKind::Dataverse),
            Endpoint::BusinessCentral {
                url, auth, limits, ..
            } => (url, auth, limits, SystemKind::BusinessCentral),
        };
        if endpoint_kind != kind {
            return Err(fail(format!(
                "system `{system}` is `{}` in the mapping files but the profile binds a `{}` endpoint to it",
                kind.as_str(),
                endpoint_kind.as_str()
            )));
        }
        let parsed = crate::config::check_url(url, "url")
            .map_err(|e| fail(format!("system `{system}`: {e}")))?;
        let mut base = trimmed(&parsed);
        let options = match kind {
            SystemKind::Dataverse => {
                if base.path().is_empty() || base.path() == "/" {
                    base.set_path("/api/data/v9.2");
                }
                HttpOptions::dataverse()
            }
            SystemKind::BusinessCentral => {
                if let Some(i) = base.path().find("/companies(") {
                    let path = base.path()[..i].to_string();
                    base.set_path(&path);
                }
                HttpOptions::business_central()
            }
        };
        let options = HttpOptions {
            max_retries: 2,
            ..super::setup::limited(options, limits)
        };
        let tokens = match auth {
            Some(a) => Some(Arc::new(
                TokenSource::new(a, &base).map_err(|e| fail(format!("system `{system}`: {e}")))?,
            ) as Arc<dyn Bearer>),
            None => None,
        };
        let http = Http::new(&base, options, tokens)
            .map_err(|e| fail(format!("system `{system}`: {e}")))?;
        Ok(Remote { base, http })
    }

    fn metadata_url(&self) -> String {
        format!("{}/$metadata", self.base.as_str().trim_end_matches('/'))
    }

    async fn get(&self, url: &str, accept: &str) -> Result<String, String> {
        let parsed = url::Url::parse(url).map_err(|e| format!("`{url}` is not a URL: {e}"))?;
        let req = Req::get(parsed)
            .header("Accept", accept)
            .header("OData-MaxVersion", "4.0")
            .header("OData-Version", "4.0");
        let resp = self
            .http
            .send(&req)
            .await
            .map_err(|e| format!("GET {url}: {}", e.message))?;
        if !resp.ok() {
            return Err(self
                .http
                .scrub(&format!("GET {url}: HTTP {}", resp.reason())));
        }
        Ok(resp.text())
    }

    async fn fetch_metadata(&self) -> Result<String, String> {
        self.get(&self.metadata_url(), "application/xml").await
    }

    /// Choice columns of each table from Dataverse's Metadata API:
    /// `EntityDefinitions(LogicalName='t')/Attributes/Microsoft.Dynamics.CRM.{Picklist,State,Status}AttributeMetadata`.
    async fn fetch_option_sets(
        &self,
        tables: Vec<String>,
    ) -> Result<BTreeMap<String, BTreeMap<String, OptionSetValues>>, String> {
        let base = self.base.as_str().trim_end_matches('/').to_string();
        let mut requests = Vec::new();
        for t in &tables {
            for cast in ["Picklist", "State", "Status"] {
                requests.push((
                    t.clone(),
                    format!(
                        "{base}/EntityDefinitions(LogicalName='{t}')/Attributes/Microsoft.Dynamics.CRM.{cast}AttributeMetadata?$select=LogicalName&$expand=OptionSet"
                    ),
                ));
            }
        }
        let results: Vec<(String, Result<String, String>)> = futures::stream::iter(requests)
            .map(|(t, url)| async move {
                let r = self.get(&url, "application/json").await;
                (t, r)
            })
            .buffered(6)
            .collect()
            .await;
        let mut sets: BTreeMap<String, BTreeMap<String, OptionSetValues>> = BTreeMap::new();
        for (table, body) in results {
            let body = body?;
            let json: Value = serde_json::from_str(&body)
                .map_err(|e| format!("Metadata API answer for `{table}` is not JSON: {e}"))?;
            for attr in json
                .get("value")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let Some(column) = attr.get("LogicalName").and_then(Value::as_str) else {
                    continue;
                };
                let set = attr.get("OptionSet").unwrap_or(&Value::Null);
                let global = set.get("IsGlobal").and_then(Value::as_bool) == Some(true);
                let name = set
                    .get("Name")
                    .and_then(Value::as_str)
                    .filter(|_| global)
                    .map(str::to_string);
                let options: Vec<(String, i64)> = set
                    .get("Options")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|o| {
                        let value = o.get("Value")?.as_i64()?;
                        Some((option_label(o).unwrap_or_else(|| value.to_string()), value))
                    })
                    .collect();
                if !options.is_empty() {
                    sets.entry(table.clone())
                        .or_default()
                        .insert(column.to_string(), OptionSetValues { name, options });
                }
            }
        }
        Ok(sets)
    }
}

/// `Label.UserLocalizedLabel.Label`, else the first `LocalizedLabels` entry.
fn option_label(option: &Value) -> Option<String> {
    let label = option.get("Label")?;
    label
        .get("UserLocalizedLabel")
        .and_then(|l| l.get("Label"))
        .and_then(Value::as_str)
        .or_else(|| {
            label
                .get("LocalizedLabels")?
                .as_array()?
                .first()?
                .get("Label")?
                .as_str()
        })
        .map(str::to_string)
}
