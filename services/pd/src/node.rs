//! Starting and running one PD node: open storage, start Raft and the gRPC
//! server (PD API and Raft transport on one port), bootstrap or join the
//! cluster, run the leader's liveness monitor, and shut down on request.
//! Does disk and network I/O.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openraft::{BasicNode, Config, SnapshotPolicy};
use tokio::sync::watch;
use tracing::{info, warn};
use vectron_config::RaftTiming;
use vectron_proto::pd::v1::AddMemberRequest;
use vectron_proto::pd::v1::placement_driver_server::PlacementDriverServer;
use vectron_raft::network::{ChannelPool, GrpcNetworkFactory};
use vectron_raft::service::{GroupRegistry, RaftService};
use vectron_raft::{RocksLogStore, open_db};

use crate::client::{PdClient, PdClientOptions};
use crate::command::PdCommand;
use crate::liveness::Liveness;
use crate::model::WorkerState;
use crate::service::{PdCore, PdService, now_ms};
use crate::state_machine::{CF_PD_SNAPSHOT, PdStateMachine};
use crate::types::PdRaft;

/// The Raft group id of PD on the shared transport.
pub const PD_GROUP: u64 = 0;

/// How a node finds its cluster.
#[derive(Debug, Clone)]
pub enum Bootstrap {
    /// Found a cluster with these members (node id → address); every founding
    /// node gets the same list.
    InitialMembers(BTreeMap<u64, String>),
    /// Join the running cluster reachable at this address.
    Join(String),
}

/// Everything a PD node needs to start.
#[derive(Debug, Clone)]
pub struct PdNodeConfig {
    /// This node's id.
    pub node_id: u64,
    /// Address to listen on.
    pub listen_addr: SocketAddr,
    /// Address other nodes reach this one at.
    pub advertise_addr: String,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Bootstrap or join.
    pub bootstrap: Bootstrap,
    /// Raft timing.
    pub raft_timing: RaftTiming,
    /// Take a snapshot (and purge the log behind it) every this many entries.
    pub snapshot_every: u64,
    /// A worker silent for longer is marked Down.
    pub worker_down_timeout: Duration,
    /// The scheduler's limits, step timeouts and down timeout.
    pub schedule: crate::scheduler::ScheduleConfig,
    /// Serve Prometheus metrics at `GET /metrics` here, when set.
    pub metrics_addr: Option<SocketAddr>,
}

/// Why a PD node failed.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// Bad configuration.
    #[error("invalid PD configuration: {0}")]
    Config(String),
    /// Storage could not be opened.
    #[error("cannot open PD storage in {path}: {source}")]
    Storage {
        /// The data directory.
        path: PathBuf,
        /// The RocksDB error.
        source: rocksdb::Error,
    },
    /// Raft failed to start or initialise.
    #[error("raft: {0}")]
    Raft(String),
    /// The gRPC server failed.
    #[error("gRPC server on {addr}: {source}")]
    Serve {
        /// Listen address.
        addr: SocketAddr,
        /// The transport error.
        source: tonic::transport::Error,
    },
    /// Joining the cluster failed.
    #[error("joining the PD cluster at {addr}: {message}")]
    Join {
        /// The address joined.
        addr: String,
        /// What went wrong.
        message: String,
    },
}

fn raft_config(config: &PdNodeConfig) -> Result<Arc<Config>, NodeError> {
    let timing = &config.raft_timing;
    timing
        .validate()
        .map_err(|e| NodeError::Config(e.to_string()))?;
    let raft = Config {
        cluster_name: "vectron-pd".into(),
        heartbeat_interval: timing.heartbeat_interval_ms,
        election_timeout_min: timing.election_timeout_min_ms,
        election_timeout_max: timing.election_timeout_max_ms,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(config.snapshot_every.max(1)),
        // Keep a short tail after a snapshot so a briefly lagging follower
        // catches up from the log; anything further behind gets the snapshot.
        max_in_snapshot_log_to_keep: config.snapshot_every.min(100),
        install_snapshot_timeout: 10_000,
        ..Config::default()
    };
    raft.validate()
        .map(Arc::new)
        .map_err(|e| NodeError::Config(e.to_string()))
}

/// Runs a PD node until `shutdown` resolves.
pub async fn run(
    config: PdNodeConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), NodeError> {
    if let Bootstrap::InitialMembers(members) = &config.bootstrap
        && !members.contains_key(&config.node_id)
    {
        return Err(NodeError::Config(format!(
            "--node-id {} is not in --initial-members ({:?})",
            config.node_id,
            members.keys().collect::<Vec<_>>()
        )));
    }
    let raft_config = raft_config(&config)?;
    let db_path = config.data_dir.join("raft");
    std::fs::create_dir_all(&config.data_dir).map_err(|e| {
        NodeError::Config(format!(
            "cannot create data dir {}: {e}",
            config.data_dir.display()
        ))
    })?;
    let db = open_db(&db_path, &[CF_PD_SNAPSHOT]).map_err(|source| NodeError::Storage {
        path: db_path.clone(),
        source,
    })?;
    let log_store = RocksLogStore::new(db.clone(), PD_GROUP);
    let state_machine =
        PdStateMachine::open(db.clone()).map_err(|e| NodeError::Raft(e.to_string()))?;
    let state = state_machine.shared();
    let network =
        GrpcNetworkFactory::new(PD_GROUP, ChannelPool::new(vectron_proto::channel::Role::Pd));
    let raft = PdRaft::new(
        config.node_id,
        raft_config,
        network,
        log_store,
        state_machine,
    )
    .await
    .map_err(|e| NodeError::Raft(e.to_string()))?;

    let registry = Arc::new(GroupRegistry::default());
    registry.insert(PD_GROUP, raft.clone());
    let core = Arc::new(PdCore {
        raft: raft.clone(),
        node_id: config.node_id,
        state,
        liveness: Mutex::new(Liveness::default()),
        worker_down_timeout: config.worker_down_timeout,
        membership_changes: tokio::sync::Mutex::new(()),
        schedule: config.schedule,
        scheduler_metrics: Default::default(),
    });

    // Without TCP_NODELAY small Raft and API messages wait on delayed ACKs
    // (tens of milliseconds per round trip).
    let (_, incoming) = vectron_tls::bind(config.listen_addr, vectron_tls::current())
        .map_err(|e| NodeError::Config(format!("cannot listen on {}: {e}", config.listen_addr)))?;
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let server = tonic::transport::Server::builder()
        .layer(vectron_tls::AuthorizeLayer::new(
            vectron_tls::ServerKind::Pd,
        ))
        .add_service(RaftService::server(registry))
        .add_service(PlacementDriverServer::new(PdService::new(core.clone())))
        .serve_with_incoming_shutdown(incoming, async move {
            let _ = stop_rx.wait_for(|stop| *stop).await;
        });
    let server = tokio::spawn(server);
    info!(node_id = config.node_id, addr = %config.listen_addr, advertise = %config.advertise_addr, "PD node listening");

    bootstrap(&config, &raft).await?;
    let monitor = tokio::spawn(liveness_monitor(core.clone()));
    let scheduler = tokio::spawn(crate::executor::run(core.clone()));
    if let Some(addr) = config.metrics_addr {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| NodeError::Config(format!("cannot listen on {addr} for metrics: {e}")))?;
        let mut stop = stop_tx.subscribe();
        let serve = axum::serve(listener, crate::metrics::router(core.clone()))
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|stop| *stop).await;
            });
        tokio::spawn(async move {
            if let Err(e) = serve.await {
                warn!(error = %e, "metrics listener failed");
            }
        });
        info!(%addr, "PD metrics at /metrics");
    }

    shutdown.await;
    info!(node_id = config.node_id, "PD node shutting down");
    monitor.abort();
    scheduler.abort();
    let _ = stop_tx.send(true);
    if let Err(e) = raft.shutdown().await {
        warn!(error = %e, "raft shutdown");
    }
    match server.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(source)) => Err(NodeError::Serve {
            addr: config.listen_addr,
            source,
        }),
        Err(join) => Err(NodeError::Raft(format!("server task: {join}"))),
    }
}

async fn bootstrap(config: &PdNodeConfig, raft: &PdRaft) -> Result<(), NodeError> {
    let initialized = raft
        .is_initialized()
        .await
        .map_err(|e| NodeError::Raft(e.to_string()))?;
    if initialized {
        info!("PD state found on disk; rejoining the cluster");
        return Ok(());
    }
    match &config.bootstrap {
        Bootstrap::InitialMembers(members) => {
            let nodes: BTreeMap<u64, BasicNode> = members
                .iter()
                .map(|(id, addr)| (*id, BasicNode::new(addr.clone())))
                .collect();
            // Every founding node proposes the same membership at log index
            // 0; openraft accepts the identical proposal from each, so exactly
            // one cluster forms whichever nodes start first.
            match raft.initialize(nodes).await {
                Ok(()) => info!(members = ?members, "PD cluster initialised"),
                Err(e) => info!(error = %e, "PD cluster already initialised by a peer"),
            }
            Ok(())
        }
        Bootstrap::Join(addr) => join(config, addr).await,
    }
}

async fn join(config: &PdNodeConfig, addr: &str) -> Result<(), NodeError> {
    let client = PdClient::with_options(
        &[addr.to_owned()],
        PdClientOptions {
            deadline: Duration::from_secs(60),
            request_timeout: Duration::from_secs(30),
            ..PdClientOptions::default()
        },
    )
    .map_err(|e| NodeError::Join {
        addr: addr.to_owned(),
        message: e.to_string(),
    })?;
    let request = AddMemberRequest {
        node_id: config.node_id,
        addr: config.advertise_addr.clone(),
        learner_only: false,
    };
    client
        .call(|mut c| {
            let request = request.clone();
            async move { c.add_member(request).await }
        })
        .await
        .map_err(|e| NodeError::Join {
            addr: addr.to_owned(),
            message: e.to_string(),
        })?;
    info!(
        node_id = config.node_id,
        via = addr,
        "joined the PD cluster as a voter"
    );
    Ok(())
}

/// On the leader, every second: mark workers silent past the timeout Down.
async fn liveness_monitor(core: Arc<PdCore>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let is_leader = core.raft.metrics().borrow().current_leader == Some(core.node_id);
        let now = Instant::now();
        core.liveness().set_leader(is_leader, now);
        if !is_leader {
            continue;
        }
        let silent: Vec<_> = {
            let applied = core.state.read();
            let liveness = core.liveness();
            applied
                .state
                .workers
                .values()
                .filter(|w| matches!(w.state, WorkerState::Up | WorkerState::Draining))
                .filter(|w| liveness.is_silent(w.id, core.worker_down_timeout, now))
                .map(|w| w.id)
                .collect()
        };
        if silent.is_empty() {
            continue;
        }
        warn!(workers = ?silent, "workers missed heartbeats; marking them Down");
        let command = PdCommand::SetWorkersLiveness {
            down: silent,
            up: Vec::new(),
            now_ms: now_ms(),
        };
        if let Err(e) = core.write(command).await {
            warn!(error = %e, "could not mark workers Down");
        }
    }
}
