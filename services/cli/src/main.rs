//! Entry point of the `vectron` binary: parse the command line, set up logging,
//! run the chosen role.

use std::process::ExitCode;

use clap::Parser;
use vectron::args::Cli;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    vectron_telemetry::init();
    // Chaos runs arm crash points through FAILPOINTS (builds with the
    // `failpoints` feature only; otherwise this does nothing).
    let _failpoints = vectron_raft::failpoint::arm_from_env();
    match vectron::run::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}
