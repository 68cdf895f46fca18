//! The command line: clap structs, then one file per subcommand.

mod args;
mod check;
mod explain;
mod fmt;
pub mod load;
mod output;
mod plan;

pub use args::{Cli, Command};
use clap::Parser;

/// Runs the command line and returns the process exit code (0 ok, 1 input errors, 2 usage or I/O).
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    run(cli)
}

pub fn run(cli: Cli) -> i32 {
    match cli.command {
        Command::Check(a) => check::run(a),
        Command::Fmt(a) => fmt::run(a),
        Command::Explain(a) => explain::run(a),
        Command::Plan(a) => plan::run(a),
    }
}
