//! Entry point of `vectron-operator`: `run` reconciles clusters, `crdgen`
//! writes the CRDs. Both arrive with issue #6.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Kubernetes operator for Vectron clusters.
#[derive(Debug, Parser)]
#[command(name = "vectron-operator", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Reconcile VectronCluster and Collection resources.
    Run,
    /// Write the CustomResourceDefinitions to a directory.
    Crdgen {
        /// Output directory.
        #[arg(long, default_value = "crds")]
        out: std::path::PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    vectron_telemetry::init();
    let name = match cli.command {
        Command::Run => "run",
        Command::Crdgen { .. } => "crdgen",
    };
    eprintln!(
        "error: `vectron-operator {name}` ({} {}) is not implemented yet (tracked in issue #6)",
        vectron_operator::API_GROUP,
        vectron_operator::API_VERSION
    );
    ExitCode::FAILURE
}
