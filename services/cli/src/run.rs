//! Dispatches a parsed command line to the service that implements it. Roles
//! whose service is not built yet fail with a clear "not implemented yet".

use std::time::Duration;

use tracing::info;

use crate::args::{Cli, Command, PdArgs, WorkerArgs};

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
    /// A flag value is unusable.
    #[error("{0}")]
    Config(#[from] vectron_config::ConfigError),
    /// The PD node failed.
    #[error(transparent)]
    Pd(#[from] vectron_pd::node::NodeError),
    /// The worker failed.
    #[error(transparent)]
    Worker(#[from] vectron_worker::node::WorkerError),
}

/// The version line printed by `vectron version`.
pub fn version_line() -> String {
    format!("vectron {}", env!("CARGO_PKG_VERSION"))
}

/// Resolves when the process receives SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("installing a SIGTERM handler works on unix");
        tokio::select! {
            _ = interrupt => info!("SIGINT received"),
            _ = terminate.recv() => info!("SIGTERM received"),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}

/// Runs the command to completion.
pub async fn run(cli: Cli) -> Result<(), RunError> {
    let not_implemented = |command, issue| Err(RunError::NotImplemented { command, issue });
    match cli.command {
        Command::Version => {
            println!("{}", version_line());
            Ok(())
        }
        Command::Pd(args) => run_pd(args).await,
        Command::Dev(_) => not_implemented("dev", "#5"),
        Command::Playground(_) => not_implemented("playground", "#5"),
        Command::Worker(args) => run_worker(args).await,
        Command::Auth(_) => not_implemented("auth", "#5"),
        Command::Gateway(_) => not_implemented("gateway", "#5"),
    }
}

async fn run_pd(args: PdArgs) -> Result<(), RunError> {
    let bootstrap = match (&args.initial_members, &args.join) {
        (Some(members), _) => {
            vectron_pd::Bootstrap::InitialMembers(vectron_config::parse_initial_members(members)?)
        }
        (None, Some(join)) => vectron_pd::Bootstrap::Join(join.clone()),
        (None, None) => {
            return Err(vectron_config::ConfigError::Empty("--initial-members or --join").into());
        }
    };
    let advertise_addr = args
        .advertise_addr
        .clone()
        .unwrap_or_else(|| args.addr.to_string());
    let config = vectron_pd::PdNodeConfig {
        node_id: args.node_id,
        listen_addr: args.addr,
        advertise_addr,
        data_dir: args.data_dir.clone(),
        bootstrap,
        raft_timing: args.raft.timing(),
        snapshot_every: args.snapshot_every,
        worker_down_timeout: Duration::from_secs(args.heartbeat_timeout_secs),
    };
    vectron_pd::node::run(config, shutdown_signal()).await?;
    Ok(())
}

fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|| "worker".to_owned())
}

async fn run_worker(args: WorkerArgs) -> Result<(), RunError> {
    let config = vectron_worker::node::WorkerConfig {
        name: args.name.clone().unwrap_or_else(hostname),
        listen_addr: args.addr,
        advertise_addr: args
            .advertise_addr
            .clone()
            .unwrap_or_else(|| args.addr.to_string()),
        pd_endpoints: vectron_config::parse_endpoints("--pd-endpoints", &args.pd_endpoints)?,
        data_dir: args.data_dir.clone(),
        zone: args.zone.clone(),
        raft_timing: args.raft.timing(),
        snapshot_every: args.snapshot_every,
    };
    vectron_worker::node::run(config, shutdown_signal()).await?;
    Ok(())
}
