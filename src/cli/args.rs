//! Raw command-line arguments (clap). No I/O here.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "coupler",
    version,
    about = "Business Central <-> Dynamics 365 Sales integration as checked code"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Parse and check mapping files; print every diagnostic and a summary
    Check(CheckArgs),
    /// Rewrite mapping files in canonical form (comments kept)
    Fmt(FmtArgs),
    /// Compile and print the execution plan: stages, filters and their queries, field steps
    Plan(PlanArgs),
    /// Synchronize: execute the plan against the profile's endpoints
    Run(RunArgs),
    /// Watermarks, couplings, last run, failures and the initial-sync recommendation per mapping
    Status(ProfileArgs),
    /// Failed records of the last runs; `--retry` runs them again
    Errors(ErrorsArgs),
    /// Couple two records by hand (mapping, key on each side)
    Couple(CoupleArgs),
    /// Remove a coupling by hand
    Uncouple(UncoupleArgs),
    /// List the records of a table of an embedded system
    Show(ShowArgs),
    /// Create or update one record of an embedded system, as an ordinary user would
    Put(PutArgs),
    /// Print the long explanation of a diagnostic code (all codes when none is given)
    Explain(ExplainArgs),
    /// Schema catalogs: `schema pull` writes one from an endpoint's $metadata
    #[command(subcommand)]
    Schema(SchemaCommand),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiagnosticFormat {
    Human,
    Json,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Mapping files or folders (every *.map below them); default `mappings/`
    pub paths: Vec<PathBuf>,
    /// `json` prints one JSON object per diagnostic on stdout
    #[arg(long, value_enum, default_value = "human")]
    pub format: DiagnosticFormat,
    /// Treat warnings as errors (exit 1)
    #[arg(long)]
    pub deny_warnings: bool,
    /// Also check against this profile of `coupler.yaml`: its settings, and what its endpoints
    /// can serve (the Business Central API's tables and fields)
    #[arg(long)]
    pub profile: Option<String>,
    /// The configuration file; default: `coupler.yaml` in this folder or above
    #[arg(long, requires = "profile")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct FmtArgs {
    /// Mapping files or folders; default `mappings/`
    pub paths: Vec<PathBuf>,
    /// Do not write; print a diff and exit 1 when a file is not formatted
    #[arg(long)]
    pub check: bool,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// A diagnostic code such as E0301
    pub code: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    Text,
    Json,
    Yaml,
    Dot,
    Mermaid,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Mapping files or folders; default `mappings/`
    pub paths: Vec<PathBuf>,
    /// `text` for review, `json`/`yaml` for tools, `dot`/`mermaid` for the dependency graph
    #[arg(long, value_enum, default_value = "text")]
    pub format: PlanFormat,
    /// Mappings to include: `CUSTOMER`, `CUSTOMER+` (and what depends on it), `+CUSTOMER` (and what it depends on), comma-separated
    #[arg(long)]
    pub select: Option<String>,
    /// The plan of this profile of `coupler.yaml`: its `settings` switch mappings on or off
    #[arg(long)]
    pub profile: Option<String>,
    /// The configuration file; default: `coupler.yaml` in this folder or above
    #[arg(long, requires = "profile")]
    pub config: Option<PathBuf>,
}

/// Where the mapping files and the profile are.
#[derive(Debug, Args, Clone)]
pub struct ProfileArgs {
    /// Mapping files or folders; default `mappings/`
    pub paths: Vec<PathBuf>,
    /// The profile of `coupler.yaml` to use
    #[arg(long)]
    pub profile: String,
    /// The configuration file; default: `coupler.yaml` in this folder or above
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// `json` for tools
    #[arg(long, value_enum, default_value = "text")]
    pub format: OutputFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub profile: ProfileArgs,
    /// Ignore watermarks and create what is missing (a full synchronization)
    #[arg(long)]
    pub full: bool,
    /// Show per record what would be created, updated, coupled or skipped; write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Mappings to run: `CUSTOMER`, `CUSTOMER+`, `+CUSTOMER`, comma-separated
    #[arg(long)]
    pub select: Option<String>,
    /// Records per page read from an endpoint
    #[arg(long, default_value_t = 1000)]
    pub page_size: usize,
    /// Keep running: run each mapping on its schedule (`schedule every 30m`; every 30 minutes
    /// without one) until SIGINT or SIGTERM, which stop it once the records in flight are done
    #[arg(long, conflicts_with_all = ["full", "dry_run"])]
    pub watch: bool,
    /// With --watch: stop after this many runs
    #[arg(long, requires = "watch", value_name = "N")]
    pub max_runs: Option<u64>,
    /// With --watch: one minute of the schedules lasts this many seconds (tests and demos)
    #[arg(long, requires = "watch", value_name = "SECONDS", hide = true)]
    pub tick: Option<f64>,
    /// Write the JSON of the plan the engine executes to FILE (as `coupler plan --format json`)
    #[arg(long, value_name = "FILE", conflicts_with = "watch", hide = true)]
    pub dump_plan: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ErrorsArgs {
    #[command(flatten)]
    pub profile: ProfileArgs,
    /// Only this mapping's failures
    #[arg(long)]
    pub mapping: Option<String>,
    /// Synchronize the failed records again
    #[arg(long)]
    pub retry: bool,
}

#[derive(Debug, Args)]
pub struct CoupleArgs {
    #[command(flatten)]
    pub profile: ProfileArgs,
    /// The mapping whose couplings to change
    #[arg(long)]
    pub mapping: String,
    /// Id of the record on the left side of the mapping (Business Central: SystemId)
    #[arg(long)]
    pub left: String,
    /// Id of the record on the right side (Dataverse: its GUID)
    #[arg(long)]
    pub right: String,
}

#[derive(Debug, Args)]
pub struct UncoupleArgs {
    #[command(flatten)]
    pub profile: ProfileArgs,
    #[arg(long)]
    pub mapping: String,
    /// Id of the record on the left side
    #[arg(long, conflicts_with = "right", required_unless_present = "right")]
    pub left: Option<String>,
    /// Id of the record on the right side
    #[arg(long)]
    pub right: Option<String>,
}

/// Options of the commands that work on one table of an embedded system.
#[derive(Debug, Args)]
pub struct TableArgs {
    /// SYSTEM.TABLE, e.g. `bc.Customer`, `sales.account` or `bc."Payment Terms"`
    #[arg(value_name = "SYSTEM.TABLE")]
    pub table: String,
    /// The profile of `coupler.yaml` to use
    #[arg(long)]
    pub profile: String,
    /// The configuration file; default: `coupler.yaml` in this folder or above
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Mapping files or folders that declare the system; default `mappings/`
    #[arg(long = "mappings")]
    pub paths: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    #[command(flatten)]
    pub target: TableArgs,
    #[arg(long, value_enum, default_value = "text")]
    pub format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct PutArgs {
    #[command(flatten)]
    pub target: TableArgs,
    /// The record as a JSON object (field name -> value); found by its id or primary key
    #[arg(long)]
    pub json: String,
    /// Who makes the change
    #[arg(long, default_value = "user")]
    pub user: String,
}

#[derive(Debug, Subcommand)]
pub enum SchemaCommand {
    /// Write the schema catalog of a system from its endpoint's OData $metadata (or a saved copy)
    Pull(SchemaPullArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SystemKindArg {
    #[value(name = "business_central", alias = "business-central")]
    BusinessCentral,
    Dataverse,
}

#[derive(Debug, Args)]
pub struct SchemaPullArgs {
    /// The system, as the mapping files declare it (`system NAME = KIND "catalog.yaml"`)
    pub system: String,
    /// The profile of `coupler.yaml` whose endpoint for SYSTEM to read (not needed with --from-file)
    #[arg(long, required_unless_present = "from_file")]
    pub profile: Option<String>,
    /// The configuration file; default: `coupler.yaml` in this folder or above
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Mapping files or folders that declare SYSTEM (its kind); default `mappings/`
    #[arg(long = "mappings")]
    pub paths: Vec<PathBuf>,
    /// Write the catalog here instead of printing it
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Only these tables (entity type or entity set names), comma-separated
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Convert a saved $metadata document instead of fetching it (no network, no profile needed)
    #[arg(long, value_name = "METADATA.xml")]
    pub from_file: Option<PathBuf>,
    /// The system kind, instead of reading it from the mapping files
    #[arg(long, value_enum)]
    pub kind: Option<SystemKindArg>,
    /// Dataverse: also read choice values (picklist, state, status) from the Metadata API
    #[arg(long, conflicts_with = "from_file")]
    pub option_sets: bool,
}
