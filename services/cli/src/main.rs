//! Entry point of the `vectron` binary: parse the command line, set up logging,
//! run the chosen role.

use std::process::ExitCode;

use clap::Parser;
use vectron::args::Cli;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    vectron_telemetry::init();
    match vectron::run::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}
