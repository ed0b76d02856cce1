//! Entry point of `vectron-operator`: `crdgen` writes the CRDs; `run`
//! reconciles clusters.

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
    Run {
        /// Serve /metrics and /healthz here.
        #[arg(long, default_value = "0.0.0.0:8080")]
        metrics_addr: std::net::SocketAddr,
        /// Hold a Lease so only one replica reconciles at a time.
        #[arg(long)]
        leader_election: bool,
        /// Namespaces to watch (repeatable); all when absent.
        #[arg(long = "namespace")]
        namespaces: Vec<String>,
    },
    /// Write the CustomResourceDefinitions to a directory.
    Crdgen {
        /// Output directory.
        #[arg(long, default_value = "crds")]
        out: std::path::PathBuf,
    },
}

fn crdgen(out: &std::path::Path) -> Result<(), String> {
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    for (file, yaml) in vectron_operator::crdgen::render().map_err(|e| e.to_string())? {
        let path = out.join(&file);
        std::fs::write(&path, yaml).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn run(config: vectron_operator::runtime::RunConfig) -> Result<(), String> {
    let runtime = tokio::runtime::Runtime::new().map_err(|e| format!("tokio runtime: {e}"))?;
    runtime
        .block_on(vectron_operator::runtime::run(config))
        .map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    vectron_telemetry::init();
    vectron_tls::install_default_crypto_provider();
    let result = match cli.command {
        Command::Crdgen { out } => crdgen(&out),
        Command::Run {
            metrics_addr,
            leader_election,
            namespaces,
        } => run(vectron_operator::runtime::RunConfig {
            metrics_addr,
            leader_election,
            namespaces,
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
