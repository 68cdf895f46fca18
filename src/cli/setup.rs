//! What the runtime commands share: a checked mapping set, a profile, its endpoints and state.

use super::args::ProfileArgs;
use super::{load, output};
use crate::analysis::Model;
use crate::config::{self, Endpoint, Limits, ResolvedProfile};
use crate::diagnostic::Severity;
use crate::runtime::connector::Connector;
use crate::runtime::connectors::http::MB;
use crate::runtime::connectors::HttpOptions;
use crate::runtime::embedded::EmbeddedSystem;
use crate::runtime::state::StateStore;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why a command stopped: the exit code and what was already printed.
pub struct Stop(pub i32);

pub fn fail(message: impl std::fmt::Display) -> Stop {
    eprintln!("error: {message}");
    Stop(2)
}

/// Prints the errors among `diagnostics` and stops (exit 1) when there is one.
fn stop_on_errors(
    loaded: &load::Loaded,
    diagnostics: Vec<crate::diagnostic::Diagnostic>,
    what: &str,
) -> Result<(), Stop> {
    let errors: Vec<_> = diagnostics
        .into_iter()
        .filter(|d| d.severity() == Severity::Error)
        .collect();
    if errors.is_empty() {
        return Ok(());
    }
    output::print_human(&errors, &loaded.sources);
    eprintln!(
        "error: {what}: {}",
        output::summary(&errors, loaded.file_count)
    );
    Err(Stop(1))
}

/// One line on stderr when the profile leaves something out: never a silent difference.
fn note_left_out(model: &Model, profile: &ResolvedProfile) {
    let mappings = model.left_out.iter().filter(|l| l.line.is_none()).count();
    let lines = model.left_out.len() - mappings;
    if mappings + lines > 0 {
        eprintln!(
            "note: profile `{}` leaves out {mappings} mapping(s) and {lines} field line(s) its endpoints do not serve; `coupler check --profile {}` lists them",
            profile.name, profile.name
        );
    }
}

/// Loads and checks the mapping set; errors in it stop the command (exit 1). `warnings` prints the warnings of a set without errors too.
pub fn checked_model_with(paths: &[PathBuf], warnings: bool, what: &str) -> Result<Model, Stop> {
    let (loaded, model) = load::check(paths).map_err(|e| fail(e.0))?;
    stop_on_errors(&loaded, loaded.diagnostics.iter().cloned().collect(), what)?;
    if warnings && !loaded.diagnostics.is_empty() {
        let all: Vec<_> = loaded.diagnostics.iter().cloned().collect();
        output::print_human(&all, &loaded.sources);
    }
    Ok(model)
}

/// The profile `name`, its settings applied to the mapping set, its endpoints checked against
/// the kinds of the systems they serve.
pub fn bind(model: &mut Model, name: &str, config: Option<&Path>) -> Result<ResolvedProfile, Stop> {
    bind_for(model, name, config, config::Use::Connect)
}

/// `bind` for `usage`: a static command (`check`, `plan`) needs no secret in the environment.
pub fn bind_for(
    model: &mut Model,
    name: &str,
    config: Option<&Path>,
    usage: config::Use,
) -> Result<ResolvedProfile, Stop> {
    let profile = config::load_profile_for(config, name, usage).map_err(fail)?;
    apply_settings(model, &profile)?;
    check_kinds(model, &profile)?;
    Ok(profile)
}

/// Restricts the mapping set to what the profile's endpoints serve (`analysis::endpoint`):
/// the diagnostics say what is left out (warnings) and what cannot run (errors).
pub fn serve_endpoints(
    model: &mut Model,
    profile: &ResolvedProfile,
) -> Result<Vec<crate::diagnostic::Diagnostic>, Stop> {
    use crate::analysis::endpoint::{self, Published, PublishedTable};
    let mut out = Vec::new();
    for (system, ep) in &profile.systems {
        let Endpoint::BusinessCentral { publishes, .. } = ep else {
            continue;
        };
        if !model.systems.contains_key(system) {
            continue;
        }
        let published = Published {
            tables: publishes
                .iter()
                .map(|(t, p)| {
                    let table = PublishedTable {
                        entity_set: p.entity_set.clone(),
                        fields: p.fields.clone(),
                    };
                    (t.clone(), table)
                })
                .collect(),
        };
        let unknown = endpoint::published::unknown(model, system, &published);
        if !unknown.is_empty() {
            return Err(fail(format!(
                "profile `{}`, system `{system}`: `publishes` names what the schema catalog does not have: {}",
                profile.name,
                unknown.join(", ")
            )));
        }
        out.extend(endpoint::serve(model, system, &profile.name, &published));
    }
    Ok(out)
}

/// A profile binds each system to an endpoint of its kind: a `dataverse` system to Dataverse,
/// a `business_central` one to Business Central (or either to an embedded system).
pub fn check_kinds(model: &Model, profile: &ResolvedProfile) -> Result<(), Stop> {
    use crate::analysis::SystemKind;
    for (name, endpoint) in &profile.systems {
        let Some(system) = model.systems.get(name) else {
            continue;
        };
        let bound = match endpoint {
            Endpoint::Embedded { .. } => continue,
            Endpoint::BusinessCentral { .. } => (SystemKind::BusinessCentral, "business_central"),
            Endpoint::Dataverse { .. } => (SystemKind::Dataverse, "dataverse"),
        };
        if system.kind != bound.0 {
            return Err(fail(format!(
                "profile `{}` binds system `{name}` to a `{}` endpoint, but the mapping set declares `{name}` as `{}`; bind it to an endpoint of its kind",
                profile.name,
                bound.1,
                system.kind.as_str()
            )));
        }
    }
    Ok(())
}

/// The profile's values for settings of the mapping set: same names, same kinds of value.
pub fn apply_settings(model: &mut Model, profile: &ResolvedProfile) -> Result<(), Stop> {
    use crate::config::SettingValue;
    use crate::syntax::ast::LitKind;
    for (name, value) in &profile.settings {
        let Some(lit) = model.settings.get_mut(name) else {
            let hint = crate::diagnostic::suggest::help_for(name, model.settings.keys())
                .map(|h| format!("; {h}"))
                .unwrap_or_default();
            return Err(fail(format!(
                "profile `{}` sets `{name}`, which the mapping set does not declare in `settings {{ ... }}`{hint}",
                profile.name
            )));
        };
        let kind = match (&lit.kind, value) {
            (LitKind::Bool(_), SettingValue::Bool(b)) => LitKind::Bool(*b),
            (LitKind::Str(_), SettingValue::Text(t)) => LitKind::Str(t.clone()),
            (LitKind::Num(..), SettingValue::Number(n)) => {
                let raw = n.to_string();
                match raw.parse::<rust_decimal::Decimal>() {
                    Ok(d) => LitKind::Num(raw, d),
                    Err(_) => {
                        return Err(fail(format!(
                            "profile `{}`: setting `{name}` = {n} is out of range",
                            profile.name
                        )))
                    }
                }
            }
            (declared, _) => {
                let what = match declared {
                    LitKind::Bool(_) => "`true` or `false`",
                    LitKind::Str(_) => "a text",
                    LitKind::Num(..) => "a number",
                    LitKind::Null => "null",
                };
                return Err(fail(format!(
                    "profile `{}` sets `{name}` to {value:?}, but the mapping set declares it as {what}",
                    profile.name
                )));
            }
        };
        lit.kind = kind;
    }
    Ok(())
}

pub fn profile(name: &str, config: Option<&Path>) -> Result<ResolvedProfile, Stop> {
    config::load_profile(config, name).map_err(fail)
}

pub struct Session {
    pub model: Model,
    pub profile: ResolvedProfile,
    pub systems: HashMap<String, Arc<dyn Connector>>,
    pub embedded: HashMap<String, Arc<EmbeddedSystem>>,
}

/// For commands that change the state: takes the run lock first, then opens the systems, so
/// that nothing (not even loading a seed) happens while another run holds the state.
pub fn open_locked(args: &ProfileArgs) -> Result<(Session, StateStore), Stop> {
    let profile = profile(&args.profile, args.config.as_deref())?;
    let state = state(&profile, true)?;
    let session = open(args)?;
    Ok((session, state))
}

/// Opens every system the mapping set declares with the endpoint the profile binds to it.
pub fn open(args: &ProfileArgs) -> Result<Session, Stop> {
    open_with(&args.paths, &args.profile, args.config.as_deref())
}

pub fn open_with(
    paths: &[PathBuf],
    profile_name: &str,
    config: Option<&Path>,
) -> Result<Session, Stop> {
    let (loaded, mut model) = load::check(paths).map_err(|e| fail(e.0))?;
    stop_on_errors(
        &loaded,
        loaded.diagnostics.iter().cloned().collect(),
        "the mapping set has errors",
    )?;
    let profile = bind(&mut model, profile_name, config)?;
    let served = serve_endpoints(&mut model, &profile)?;
    stop_on_errors(
        &loaded,
        served.clone(),
        "the profile's endpoints cannot run the mapping set",
    )?;
    note_left_out(&model, &profile);
    let mut systems: HashMap<String, Arc<dyn Connector>> = HashMap::new();
    let mut embedded = HashMap::new();
    for (name, system) in &model.systems {
        let Some(endpoint) = profile.systems.get(name) else {
            return Err(fail(format!(
                "profile `{}` binds no endpoint to system `{name}`; add it under `profiles.{}.systems`",
                profile.name, profile.name
            )));
        };
        let catalog = system
            .catalog
            .clone()
            .ok_or_else(|| fail(format!("system `{name}` has no schema catalog")))?;
        match endpoint {
            Endpoint::Embedded {
                seed,
                integration_user,
                database,
                ..
            } => {
                let db = database
                    .clone()
                    .unwrap_or_else(|| profile.state_dir().join(format!("{name}.db")));
                let sys = EmbeddedSystem::open(
                    &db,
                    name,
                    system.kind,
                    catalog,
                    seed.as_deref(),
                    integration_user,
                )
                .map_err(|e| fail(format!("system `{name}`: {e}")))?;
                let sys = Arc::new(sys);
                company_row_exists(system, endpoint, sys.as_ref())?;
                embedded.insert(name.clone(), sys.clone());
                systems.insert(name.clone(), scoped(system, endpoint, &profile, sys)?);
            }
            Endpoint::BusinessCentral { .. } | Endpoint::Dataverse { .. } => {
                let sys = http_connector(name, endpoint, catalog)?;
                systems.insert(name.clone(), scoped(system, endpoint, &profile, sys)?);
            }
        }
    }
    Ok(Session {
        model,
        profile,
        systems,
        embedded,
    })
}

/// The connector of a company-scoped system, reading and writing for the profile's company
/// only (`company COLUMN` in the mapping set, `company_id` in the profile); others as they are.
fn scoped(
    system: &crate::analysis::System,
    endpoint: &Endpoint,
    profile: &ResolvedProfile,
    sys: Arc<dyn Connector>,
) -> Result<Arc<dyn Connector>, Stop> {
    let name = &system.name;
    let (scope, id): (&crate::analysis::CompanyScope, &str) = match (&system.company, endpoint.company_id()) {
        (None, None) => return Ok(sys),
        (Some(scope), Some(id)) => (scope, id),
        (Some(scope), None) => {
            return Err(fail(format!(
                "system `{name}` is company-scoped (`company {}`): profile `{}` must name the company with `company_id` under `profiles.{}.systems.{name}`",
                scope.column, profile.name, profile.name
            )))
        }
        (None, Some(_)) => {
            return Err(fail(format!(
                "profile `{}` names a `company_id` for system `{name}`, but the mapping set declares no company scope on it (`company COLUMN` after its `system` line)",
                profile.name
            )))
        }
    };
    let tables = system
        .catalog
        .as_ref()
        .map(|c| {
            c.tables
                .iter()
                .filter(|(t, table)| {
                    table.fields.contains_key(&scope.column) && system.company_column(t).is_some()
                })
                .map(|(t, _)| t.clone())
                .collect()
        })
        .unwrap_or_default();
    Ok(Arc::new(crate::runtime::company::CompanyScoped::new(
        sys,
        &scope.column,
        id,
        tables,
    )))
}

/// An embedded Dataverse holds the row of the profile's company in the company entity (the
/// column's lookup target), as Business Central finds its `bcbi_company` row before it
/// synchronizes (CDS Integration Impl. `InitializeCompanyCache`: "Company has not been found").
/// Over HTTP the row is not looked up before the run.
fn company_row_exists(
    system: &crate::analysis::System,
    endpoint: &Endpoint,
    sys: &dyn Connector,
) -> Result<(), Stop> {
    let (Some(scope), Some(id), Some(catalog)) =
        (&system.company, endpoint.company_id(), &system.catalog)
    else {
        return Ok(());
    };
    let entity = catalog
        .tables
        .values()
        .filter_map(|t| t.fields.get(&scope.column))
        .find_map(|f| f.lookup.first().cloned());
    let Some(entity) = entity else {
        return Ok(());
    };
    let id = id.trim_matches(|c| c == '{' || c == '}').to_lowercase();
    let found = block_on(sys.read_by_ids(&entity, std::slice::from_ref(&id)))?
        .map_err(|e| fail(format!("system `{}`: {e}", system.name)))?;
    if found.is_empty() {
        return Err(fail(format!(
            "system `{}`: `company_id` {id} is no row of `{entity}`; name the row of this Business Central company",
            system.name
        )));
    }
    Ok(())
}

/// A Dataverse or Business Central endpoint as a connector. Dataverse's integration user is
/// asked from `WhoAmI` when the profile does not name it and credentials are configured.
fn http_connector(
    name: &str,
    endpoint: &Endpoint,
    catalog: Arc<crate::schema::Catalog>,
) -> Result<Arc<dyn Connector>, Stop> {
    use crate::runtime::connectors::{
        BusinessCentral, BusinessCentralOptions, Dataverse, DataverseOptions,
    };
    let fail_sys = |e: String| fail(format!("system `{name}`: {e}"));
    match endpoint {
        Endpoint::Dataverse {
            url,
            auth,
            integration_user,
            limits,
            time_zone,
            ..
        } => {
            // Checked when the profile was loaded (config::validate_endpoint).
            let zone = match time_zone {
                Some(z) => z
                    .parse()
                    .map_err(|_| fail_sys(format!("`{z}` is no time zone")))?,
                None => chrono_tz::Tz::UTC,
            };
            let make = |user: Option<&str>| {
                let mut defaults = DataverseOptions::default();
                defaults.only.time_zone = zone;
                let options = DataverseOptions {
                    http: limited(defaults.http.clone(), limits),
                    ..defaults
                };
                Dataverse::new(catalog.clone(), url, auth.as_ref(), user, options)
            };
            let mut user = integration_user.clone();
            if user.is_none() && auth.is_some() {
                // A throw-away client on its own runtime: the connector's client stays unbound.
                let probe = make(None).map_err(|e| fail_sys(e.to_string()))?;
                let who = std::thread::spawn(move || {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(|e| e.to_string())?
                        .block_on(probe.who_am_i())
                        .map_err(|e| e.message)
                })
                .join()
                .map_err(|_| fail_sys("WhoAmI failed".into()))?
                .map_err(|e| {
                    fail_sys(format!(
                        "cannot ask WhoAmI for the integration user ({e}); set `integration_user`"
                    ))
                })?;
                user = Some(who);
            }
            Ok(Arc::new(
                make(user.as_deref()).map_err(|e| fail_sys(e.to_string()))?,
            ))
        }
        Endpoint::BusinessCentral {
            url,
            company,
            auth,
            integration_user,
            limits,
            ..
        } => {
            let defaults = BusinessCentralOptions::default();
            let options = BusinessCentralOptions {
                http: limited(defaults.http.clone(), limits),
                ..defaults
            };
            Ok(Arc::new(
                BusinessCentral::new(
                    catalog,
                    url,
                    company.as_deref(),
                    auth.as_ref(),
                    integration_user.as_deref(),
                    options,
                )
                .map_err(|e| fail_sys(e.to_string()))?,
            ))
        }
        Endpoint::Embedded { .. } => Err(fail_sys("not an HTTP endpoint".into())),
    }
}

/// An endpoint's HTTP options with the profile's `limits` applied.
pub fn limited(options: HttpOptions, limits: &Limits) -> HttpOptions {
    HttpOptions {
        timeout: limits
            .timeout_seconds
            .map_or(options.timeout, std::time::Duration::from_secs),
        max_body: limits
            .max_response_mb
            .map_or(options.max_body, |mb| mb as usize * MB),
        ..options
    }
}

pub fn state(profile: &ResolvedProfile, exclusive: bool) -> Result<StateStore, Stop> {
    StateStore::open(&profile.state, exclusive).map_err(fail)
}

/// A current-thread runtime is enough: endpoints are I/O bound.
pub fn block_on<F: std::future::Future>(f: F) -> Result<F::Output, Stop> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| fail(format!("cannot start the async runtime: {e}")))?;
    Ok(rt.block_on(f))
}

/// `bc.Customer` / `bc."Payment Terms"` -> (system, table).
pub fn split_target(target: &str) -> Result<(String, String), Stop> {
    let Some((system, table)) = target.split_once('.') else {
        return Err(fail(format!(
            "`{target}` is not SYSTEM.TABLE (e.g. `bc.Customer`)"
        )));
    };
    Ok((
        system.trim().to_string(),
        table.trim().trim_matches('"').to_string(),
    ))
}
