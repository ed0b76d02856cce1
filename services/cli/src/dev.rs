//! `vectron dev`: PD, one worker, auth and the gateway in one process over one
//! data dir, replication factor 1. The internal PD and worker ports are
//! picked once and remembered in the data dir, so a restart finds its data
//! and its own address again. Internal traffic (gateway to worker, worker
//! to PD) is mutual TLS with a CA made in `<data-dir>/tls` (kept across
//! restarts), which also holds an `admin` certificate for local tools.
//! Does I/O (files, loopback sockets).

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tracing::{info, warn};
use vectron_auth::{AuthCore, AuthHandle, AuthStore};
use vectron_gateway::{Access, GatewayConfig};

use vectron_tls::Role;

use crate::args::DevArgs;
use crate::run::{RunError, admin_password, shutdown_signal};

/// The internal ports of a dev data dir.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct DevPorts {
    pd: u16,
    worker: u16,
}

fn free_loopback_port() -> Result<u16, RunError> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| RunError::Dev(format!("cannot find a free loopback port: {e}")))
}

/// Reads the remembered internal ports, or picks and saves new ones.
fn ports(data_dir: &Path) -> Result<DevPorts, RunError> {
    let file = data_dir.join("dev-ports.json");
    if let Ok(text) = std::fs::read_to_string(&file) {
        return serde_json::from_str(&text)
            .map_err(|e| RunError::Dev(format!("{} is damaged: {e}", file.display())));
    }
    let ports = DevPorts {
        pd: free_loopback_port()?,
        worker: free_loopback_port()?,
    };
    let text = serde_json::to_string_pretty(&ports)
        .map_err(|e| RunError::Dev(format!("encoding ports: {e}")))?;
    std::fs::write(&file, text)
        .map_err(|e| RunError::Dev(format!("cannot write {}: {e}", file.display())))?;
    Ok(ports)
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Runs `vectron dev` until SIGINT/SIGTERM.
pub async fn run(args: DevArgs, tls_chosen: bool) -> Result<(), RunError> {
    if args.auth {
        info!("vectron dev: auth is ON; requests need a JWT or an API key");
    } else {
        warn!(
            "vectron dev: auth is OFF; every request is allowed (bind to loopback only, or pass --auth)"
        );
    }
    for listen in [args.http_addr, args.grpc_addr] {
        if !listen.ip().is_loopback() && !args.auth {
            warn!(%listen, "listening beyond loopback without auth: anyone who can reach this address can read and change all data");
        }
    }
    let data_dir: PathBuf = args.data_dir.clone();
    std::fs::create_dir_all(&data_dir)
        .map_err(|e| RunError::Dev(format!("cannot create {}: {e}", data_dir.display())))?;
    let ports = ports(&data_dir)?;
    if !tls_chosen {
        // One process, one identity naming every role it plays; `admin` is
        // for local tools (`vectron bench --target worker`, scripts).
        let tls_dir = data_dir.join("tls");
        crate::internal_tls::install_local(
            &tls_dir,
            &[
                ("dev", &[Role::Pd, Role::Worker, Role::Auth, Role::Gateway]),
                ("admin", &[Role::Admin]),
            ],
            "dev",
        )?;
    }
    let pd_addr = addr(ports.pd);
    let pd_endpoints = vec![pd_addr.to_string()];
    let raft_timing = vectron_config::RaftTiming {
        heartbeat_interval_ms: 100,
        election_timeout_min_ms: 300,
        election_timeout_max_ms: 600,
    };

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };

    let pd_config = vectron_pd::PdNodeConfig {
        node_id: 1,
        listen_addr: pd_addr,
        advertise_addr: pd_addr.to_string(),
        data_dir: data_dir.join("pd"),
        bootstrap: vectron_pd::Bootstrap::InitialMembers([(1, pd_addr.to_string())].into()),
        raft_timing,
        snapshot_every: 1000,
        worker_down_timeout: Duration::from_secs(10),
        schedule: Default::default(),
        metrics_addr: None,
    };
    let pd = tokio::spawn(vectron_pd::node::run(pd_config, stopped(stop_rx.clone())));

    let worker_config = vectron_worker::node::WorkerConfig {
        name: "dev-worker".into(),
        listen_addr: addr(ports.worker),
        advertise_addr: addr(ports.worker).to_string(),
        pd_endpoints: pd_endpoints.clone(),
        data_dir: data_dir.join("worker"),
        zone: String::new(),
        raft_timing,
        snapshot_every: 5000,
    };
    let worker = tokio::spawn(vectron_worker::node::run(
        worker_config,
        stopped(stop_rx.clone()),
    ));

    let access = if args.auth {
        let secret = vectron_auth::load_or_create_secret(&data_dir.join("auth").join("jwt-secret"))
            .map_err(|e| RunError::Dev(e.to_string()))?;
        let pd_client =
            vectron_pd::PdClient::new(&pd_endpoints).map_err(|e| RunError::Dev(e.to_string()))?;
        let core = Arc::new(
            AuthCore::new(
                AuthStore::Pd(Arc::new(pd_client)),
                &secret,
                vectron_auth::DEFAULT_TOKEN_TTL,
            )
            .map_err(|e| RunError::Dev(e.to_string()))?,
        );
        match admin_password(args.admin_password_file.as_deref())? {
            Some(password) => vectron_auth::bootstrap_with_retry(&core, &password)
                .await
                .map_err(|e| RunError::Dev(format!("cannot bootstrap the admin user: {e}")))?,
            None => {
                info!("no VECTRON_ADMIN_PASSWORD given; an admin user is created only when one is")
            }
        }
        Access::Checked(AuthHandle::Local(core))
    } else {
        Access::Open
    };

    let gateway_config = GatewayConfig {
        http_addr: args.http_addr,
        grpc_addr: args.grpc_addr,
        pd_endpoints,
        access,
        limits: vectron_config::Limits::default(),
        overload: args.overload.config(crate::args::RateDefaults::DEV),
        metrics_addr: args.metrics_addr,
        plant_stale_strong_reads: false,
        tls: args.public_tls.files(),
    };
    let gateway = tokio::spawn(vectron_gateway::run(
        gateway_config,
        stopped(stop_rx.clone()),
    ));
    info!(http = %args.http_addr, grpc = %args.grpc_addr, data_dir = %data_dir.display(), "vectron dev is starting; GET /readyz answers 200 once it can serve");

    let mut pd = pd;
    let mut worker = worker;
    let mut gateway = gateway;
    let early = tokio::select! {
        _ = shutdown_signal() => None,
        r = &mut pd => Some(("PD", flatten(r.map(|r| r.map_err(|e| e.to_string()))))),
        r = &mut worker => Some(("worker", flatten(r.map(|r| r.map_err(|e| e.to_string()))))),
        r = &mut gateway => Some(("gateway", flatten(r.map(|r| r.map_err(|e| e.to_string()))))),
    };
    let _ = stop_tx.send(true);
    if let Some((part, result)) = early {
        let reason = result.err().unwrap_or_else(|| "stopped".into());
        pd.abort();
        worker.abort();
        gateway.abort();
        return Err(RunError::Dev(format!(
            "the embedded {part} stopped: {reason}"
        )));
    }
    let results = [
        (
            "gateway",
            flatten(gateway.await.map(|r| r.map_err(|e| e.to_string()))),
        ),
        (
            "worker",
            flatten(worker.await.map(|r| r.map_err(|e| e.to_string()))),
        ),
        (
            "PD",
            flatten(pd.await.map(|r| r.map_err(|e| e.to_string()))),
        ),
    ];
    for (part, result) in results {
        result.map_err(|e| RunError::Dev(format!("{part}: {e}")))?;
    }
    info!("vectron dev stopped");
    Ok(())
}

fn flatten(result: Result<Result<(), String>, tokio::task::JoinError>) -> Result<(), String> {
    result.map_err(|e| format!("task failed: {e}"))?
}
