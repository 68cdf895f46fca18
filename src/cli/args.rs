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
    /// Print the long explanation of a diagnostic code (all codes when none is given)
    Explain(ExplainArgs),
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
}
