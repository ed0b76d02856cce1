//! Dispatches a parsed command line to the service that implements it. Roles
//! whose service is not built yet fail with a clear "not implemented yet".

use crate::args::{Cli, Command};

/// A command that cannot run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The role exists in the contract but its service is not built yet.
    #[error("`vectron {command}` is not implemented yet (tracked in issue {issue})")]
    NotImplemented {
        /// The subcommand.
        command: &'static str,
        /// The issue that builds it.
        issue: &'static str,
    },
}

/// The version line printed by `vectron version`.
pub fn version_line() -> String {
    format!("vectron {}", env!("CARGO_PKG_VERSION"))
}

/// Runs the command to completion.
pub async fn run(cli: Cli) -> Result<(), RunError> {
    let not_implemented = |command, issue| Err(RunError::NotImplemented { command, issue });
    match cli.command {
        Command::Version => {
            println!("{}", version_line());
            Ok(())
        }
        Command::Dev(_) => not_implemented("dev", "#5"),
        Command::Playground(_) => not_implemented("playground", "#5"),
        Command::Pd(_) => not_implemented("pd", "#3"),
        Command::Worker(_) => not_implemented("worker", "#4"),
        Command::Auth(_) => not_implemented("auth", "#5"),
        Command::Gateway(_) => not_implemented("gateway", "#5"),
    }
}
