//! Dispatches a parsed command line to the service that implements it.

use std::time::Duration;

use tracing::info;

use crate::args::{AuthArgs, Cli, Command, GatewayArgs, PdArgs, WorkerArgs};

/// A command that cannot run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A flag value is unusable.
    #[error("{0}")]
    Config(#[from] vectron_config::ConfigError),
    /// The PD node failed.
    #[error(transparent)]
    Pd(#[from] vectron_pd::node::NodeError),
    /// The worker failed.
    #[error(transparent)]
    Worker(#[from] vectron_worker::node::WorkerError),
    /// The auth service failed.
    #[error(transparent)]
    Auth(#[from] vectron_auth::AuthError),
    /// The gateway failed.
    #[error(transparent)]
    Gateway(#[from] vectron_gateway::GatewayError),
    /// A file named on the command line is unusable.
    #[error("{0}")]
    Input(String),
    /// `vectron dev` failed.
    #[error("vectron dev: {0}")]
    Dev(String),
    /// `vectron bench` failed.
    #[error("vectron bench: {0}")]
    Bench(#[from] crate::bench::BenchError),
    /// `vectron playground` failed.
    #[error("vectron playground: {0}")]
    Playground(String),
    /// `vectron chaos` failed or found a violation.
    #[error("vectron chaos: {0}")]
    Chaos(#[from] crate::chaos::ChaosError),
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
    if let Some(ip) = cli.outbound_ip {
        vectron_proto::channel::set_outbound_ip(ip).map_err(|set| {
            RunError::Input(format!("--outbound-ip {ip}: {set} is already in force"))
        })?;
        info!(%ip, "internal connections leave from this address");
    }
    let need = match &cli.command {
        Command::Pd(_) | Command::Worker(_) | Command::Auth(_) | Command::Gateway(_) => {
            crate::internal_tls::Need::Server
        }
        _ => crate::internal_tls::Need::Optional,
    };
    let tls_chosen = crate::internal_tls::install(&cli.internal_tls, need)?;
    match cli.command {
        Command::Cert(command) => crate::internal_tls::run_cert(command),
        Command::Version => {
            println!("{}", version_line());
            Ok(())
        }
        Command::Pd(args) => run_pd(args).await,
        Command::Dev(args) => crate::dev::run(args, tls_chosen).await,
        Command::Playground(args) => crate::playground::run(args, cli.internal_tls).await,
        Command::Worker(args) => run_worker(args).await,
        Command::Auth(args) => run_auth(args).await,
        Command::Gateway(args) => run_gateway(args).await,
        Command::Bench(args) => Ok(crate::bench::run(args).await?),
        Command::Chaos(args) => {
            if crate::internal_tls::files(&cli.internal_tls)?.is_some() {
                return Err(RunError::Input(
                    "vectron chaos makes its own CA and certificates; give no --internal-* flags (or --insecure-internal)".into(),
                ));
            }
            Ok(crate::chaos::run(args, cli.internal_tls.insecure_internal).await?)
        }
    }
}

/// The node id `--node-id-from-ordinal` derives from a host name such as
/// `vec-pd-2` (ordinal 2, node 3).
fn node_id_from_host_name(host: &str) -> Result<u64, RunError> {
    host.rsplit_once('-')
        .and_then(|(_, ordinal)| ordinal.parse::<u64>().ok())
        .map(|ordinal| ordinal + 1)
        .ok_or_else(|| {
            RunError::Input(format!(
                "--node-id-from-ordinal: host name {host:?} does not end in -<ordinal>"
            ))
        })
}

fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .unwrap_or_default()
}

async fn run_pd(args: PdArgs) -> Result<(), RunError> {
    let node_id = match args.node_id {
        Some(id) => id,
        None => node_id_from_host_name(&host_name())?,
    };
    let bootstrap = match (&args.initial_members, &args.join) {
        (Some(members), _) => {
            let members = vectron_config::parse_initial_members(members)?;
            match members.values().next() {
                // A node added after the founders joins them.
                Some(founder) if !members.contains_key(&node_id) => {
                    vectron_pd::Bootstrap::Join(founder.clone())
                }
                _ => vectron_pd::Bootstrap::InitialMembers(members),
            }
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
        node_id,
        listen_addr: args.addr,
        advertise_addr,
        data_dir: args.data_dir.clone(),
        bootstrap,
        raft_timing: args.raft.timing(),
        snapshot_every: args.snapshot_every,
        worker_down_timeout: Duration::from_secs(args.heartbeat_timeout_secs),
        schedule: vectron_pd::scheduler::ScheduleConfig {
            limits: vectron_pd::scheduler::ScheduleLimits {
                max_moves: args.max_moves as usize,
                max_moves_per_worker: args.max_moves_per_worker as usize,
                ..Default::default()
            },
            down_timeout: Duration::from_secs(args.down_timeout_secs),
            ..Default::default()
        },
        metrics_addr: args.metrics_addr,
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

/// The first admin's password: the file named by `--admin-password-file`,
/// else `VECTRON_ADMIN_PASSWORD`; `None` when neither is set.
pub fn admin_password(file: Option<&std::path::Path>) -> Result<Option<String>, RunError> {
    if let Some(file) = file {
        let text = std::fs::read_to_string(file).map_err(|e| {
            RunError::Input(format!(
                "--admin-password-file: cannot read {}: {e}",
                file.display()
            ))
        })?;
        return Ok(Some(text.trim_end_matches(['\r', '\n']).to_owned()));
    }
    Ok(std::env::var("VECTRON_ADMIN_PASSWORD")
        .ok()
        .filter(|p| !p.is_empty()))
}

async fn run_auth(args: AuthArgs) -> Result<(), RunError> {
    let mut config = vectron_auth::AuthConfig::new(
        args.addr,
        vectron_config::parse_endpoints("--pd-endpoints", &args.pd_endpoints)?,
        args.jwt_secret_file.clone(),
    );
    config.admin_password = admin_password(args.admin_password_file.as_deref())?;
    vectron_auth::run(config, shutdown_signal()).await?;
    Ok(())
}

async fn run_gateway(args: GatewayArgs) -> Result<(), RunError> {
    let access = if args.no_auth {
        tracing::warn!("gateway started with --no-auth: every request is allowed");
        vectron_gateway::Access::Open
    } else {
        vectron_gateway::Access::Checked(vectron_auth::AuthHandle::connect(&args.auth_endpoint)?)
    };
    let config = vectron_gateway::GatewayConfig {
        http_addr: args.http_addr,
        grpc_addr: args.grpc_addr,
        pd_endpoints: vectron_config::parse_endpoints("--pd-endpoints", &args.pd_endpoints)?,
        access,
        limits: vectron_config::Limits::default(),
        overload: args.overload.config(crate::args::RateDefaults::GATEWAY),
        metrics_addr: args.metrics_addr,
        plant_stale_strong_reads: args.plant_stale_strong_reads,
        tls: args.public_tls.files(),
    };
    vectron_gateway::run(config, shutdown_signal()).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::node_id_from_host_name;

    #[test]
    fn the_node_id_is_the_stateful_set_ordinal_plus_one() {
        assert_eq!(node_id_from_host_name("vec-pd-0").expect("ordinal"), 1);
        assert_eq!(node_id_from_host_name("prod-pd-12").expect("ordinal"), 13);
        let error = node_id_from_host_name("laptop").expect_err("no ordinal");
        assert!(error.to_string().contains("laptop"), "{error}");
    }
}
