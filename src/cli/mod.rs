//! The command line: clap structs, then one file per subcommand.

mod args;
mod check;
mod couple;
mod errors;
mod explain;
mod fmt;
pub mod load;
mod output;
mod plan;
mod progress;
mod run;
mod schema;
mod setup;
mod show;
mod status;
mod watch;

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
        Command::Run(a) => run::run(a),
        Command::Status(a) => status::run(a),
        Command::Errors(a) => errors::run(a),
        Command::Couple(a) => couple::couple(a),
        Command::Uncouple(a) => couple::uncouple(a),
        Command::Show(a) => show::show(a),
        Command::Put(a) => show::put(a),
        Command::Schema(a) => schema::run(a),
    }
}
