//! Running a worker: open its RocksDB, register with PD under its name (the
//! id is kept in the data dir), serve the Worker and Raft services on one
//! port, and heartbeat every second — reporting replicas and converging on
//! the assignment in each reply (open new replicas, form new groups, destroy
//! replicas no longer assigned). Does disk and network I/O.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use openraft::Config;
use tracing::{info, warn};
use vectron_config::RaftTiming;
use vectron_pd::{PdClient, PdClientOptions};
use vectron_proto::pd::v1 as pd;
use vectron_proto::worker::v1::worker_server::WorkerServer;
use vectron_raft::network::ChannelPool;
use vectron_raft::open_db;
use vectron_raft::service::{GroupRegistry, RaftService};

use crate::mover::StepRunner;
use crate::replica::Replica;
use crate::service::{Replicas, WorkerService};
use crate::shard::ShardTypeConfig;
use crate::storage::DATA_CFS;

/// Everything a worker needs to start.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Registration name.
    pub name: String,
    /// Listen address.
    pub listen_addr: SocketAddr,
    /// Address PD, gateways and peers use.
    pub advertise_addr: String,
    /// PD endpoints.
    pub pd_endpoints: Vec<String>,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Failure zone.
    pub zone: String,
    /// Raft timing of shard groups.
    pub raft_timing: RaftTiming,
    /// Snapshot each shard (and purge its log behind) every this many entries.
    pub snapshot_every: u64,
}

/// Why a worker stopped.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// Bad configuration or an unusable data dir.
    #[error("{0}")]
    Config(String),
    /// PD could not be reached or refused us.
    #[error("PD: {0}")]
    Pd(String),
    /// The gRPC server failed.
    #[error("gRPC server: {0}")]
    Serve(String),
}

fn raft_config(timing: &RaftTiming, snapshot_every: u64) -> Result<Arc<Config>, WorkerError> {
    timing
        .validate()
        .map_err(|e| WorkerError::Config(e.to_string()))?;
    Config {
        cluster_name: "vectron-shard".into(),
        heartbeat_interval: timing.heartbeat_interval_ms,
        election_timeout_min: timing.election_timeout_min_ms,
        election_timeout_max: timing.election_timeout_max_ms,
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(snapshot_every.max(1)),
        max_in_snapshot_log_to_keep: snapshot_every.min(1_000),
        install_snapshot_timeout: 30_000,
        ..Config::default()
    }
    .validate()
    .map(Arc::new)
    .map_err(|e| WorkerError::Config(e.to_string()))
}

/// Registers with PD. The id recorded in the data directory goes along, so a
/// restart keeps its id while a new or wiped directory joins as a new worker
/// (its Raft votes and logs are gone, so it must not reuse the old node id).
/// A name still heartbeated from another address is retried for a while: a
/// worker that moved (a rescheduled pod) waits out its old process's silence.
async fn register(pd: &PdClient, config: &WorkerConfig) -> Result<u64, WorkerError> {
    let id_file = config.data_dir.join("worker_id");
    let recorded = match std::fs::read_to_string(&id_file) {
        Ok(text) => Some(text.trim().parse::<u64>().map_err(|_| {
            WorkerError::Config(format!(
                "{} should hold a worker id but holds {:?}",
                id_file.display(),
                text.trim()
            ))
        })?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(WorkerError::Config(format!(
                "cannot read {}: {e}",
                id_file.display()
            )));
        }
    };
    let request = pd::RegisterWorkerRequest {
        name: config.name.clone(),
        addr: config.advertise_addr.clone(),
        zone: config.zone.clone(),
        worker_id: recorded.unwrap_or(0),
        new_data_dir: recorded.is_none(),
    };
    let deadline = tokio::time::Instant::now() + NAME_IN_USE_PATIENCE;
    let id = loop {
        let answer = pd
            .call(|mut c| {
                let request = request.clone();
                async move { c.register_worker(request).await }
            })
            .await;
        match answer {
            Ok(reply) => break reply.worker_id,
            Err(e) if name_in_use(&e) && tokio::time::Instant::now() < deadline => {
                warn!(error = %e, "worker name in use; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => return Err(WorkerError::Pd(e.to_string())),
        }
    };
    match recorded {
        Some(previous) if previous != id => Err(WorkerError::Config(format!(
            "{} holds worker id {previous} but PD knows {:?} as {id}; refusing to mix another worker's data",
            id_file.display(),
            config.name
        ))),
        Some(_) => Ok(id),
        None => {
            write_durably(&id_file, id.to_string().as_bytes()).map_err(|e| {
                WorkerError::Config(format!("cannot write {}: {e}", id_file.display()))
            })?;
            Ok(id)
        }
    }
}

/// Writes `path` so that after a crash it holds either nothing or all of
/// `contents`: a synced temporary file renamed into place, then the
/// directory synced so the rename itself survives.
fn write_durably(path: &std::path::Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let temporary = path.with_extension("tmp");
    let mut file = std::fs::File::create(&temporary)?;
    file.write_all(contents)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&temporary, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Whether PD refused the registration because another address holds the name.
fn name_in_use(error: &vectron_pd::PdClientError) -> bool {
    use vectron_proto::common::v1::ErrorReason;
    vectron_proto::error_detail::detail_of(&error.status())
        .is_some_and(|d| d.reason() == ErrorReason::Conflict && d.field == "name")
}

/// How long a registration keeps retrying while PD says another address still
/// heartbeats this worker's name (PD's heartbeat timeout is 10 s by default).
const NAME_IN_USE_PATIENCE: Duration = Duration::from_secs(30);

/// Runs a worker until `shutdown` resolves.
pub async fn run(
    config: WorkerConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), WorkerError> {
    std::fs::create_dir_all(&config.data_dir).map_err(|e| {
        WorkerError::Config(format!("cannot create {}: {e}", config.data_dir.display()))
    })?;
    let raft_config = raft_config(&config.raft_timing, config.snapshot_every)?;
    let db_path = config.data_dir.join("db");
    let db = open_db(&db_path, DATA_CFS)
        .map_err(|e| WorkerError::Config(format!("cannot open {}: {e}", db_path.display())))?;
    let pd = PdClient::with_options(
        &config.pd_endpoints,
        PdClientOptions {
            deadline: Duration::from_secs(60),
            ..PdClientOptions::default()
        },
    )
    .map_err(|e| WorkerError::Pd(e.to_string()))?;
    let worker_id = register(&pd, &config).await?;
    info!(name = %config.name, worker_id, addr = %config.listen_addr, "worker registered with PD");

    let replicas: Replicas = Arc::new(RwLock::new(HashMap::new()));
    let registry = Arc::new(GroupRegistry::<ShardTypeConfig>::default());
    let (_, incoming) =
        vectron_tls::bind(config.listen_addr, vectron_tls::current()).map_err(|e| {
            WorkerError::Config(format!("cannot listen on {}: {e}", config.listen_addr))
        })?;
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let server = tonic::transport::Server::builder()
        .layer(vectron_tls::AuthorizeLayer::new(
            vectron_tls::ServerKind::Worker,
        ))
        .add_service(RaftService::server(registry.clone()))
        .add_service(
            WorkerServer::new(WorkerService::new(replicas.clone()))
                .max_decoding_message_size(64 * 1024 * 1024)
                .max_encoding_message_size(64 * 1024 * 1024),
        )
        .serve_with_incoming_shutdown(incoming, async move {
            let _ = stop_rx.wait_for(|stop| *stop).await;
        });
    let server = tokio::spawn(server);

    let pool = ChannelPool::new(vectron_proto::channel::Role::Worker);
    let lease = Duration::from_millis(raft_config.election_timeout_max);
    let converge = Converger {
        db,
        index_root: config.data_dir.join("index"),
        worker_id,
        raft_config,
        steps: StepRunner::new(pool.clone(), lease),
        pool,
        replicas: replicas.clone(),
        registry,
        retiring: Default::default(),
    };
    let heartbeats = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            let reports: Vec<pd::ReplicaReport> =
                converge.snapshot().iter().map(|r| r.report()).collect();
            let request = pd::HeartbeatRequest {
                worker_id,
                replicas: reports,
            };
            match pd
                .call(|mut c| {
                    let request = request.clone();
                    async move { c.heartbeat(request).await }
                })
                .await
            {
                Ok(reply) => converge.apply(reply).await,
                Err(e) => warn!(error = %e, "heartbeat to PD failed"),
            }
        }
    });

    shutdown.await;
    info!(name = %config.name, "worker shutting down");
    heartbeats.abort();
    let _ = stop_tx.send(true);
    let hosted: Vec<Arc<Replica>> = replicas
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .values()
        .cloned()
        .collect();
    for replica in hosted {
        let _ = replica.raft.shutdown().await;
    }
    server
        .await
        .map_err(|e| WorkerError::Serve(e.to_string()))?
        .map_err(|e| WorkerError::Serve(e.to_string()))
}

/// Makes the hosted replicas match PD's assignment.
struct Converger {
    db: Arc<rocksdb::DB>,
    index_root: PathBuf,
    worker_id: u64,
    raft_config: Arc<Config>,
    pool: ChannelPool,
    steps: StepRunner,
    replicas: Replicas,
    registry: Arc<GroupRegistry<ShardTypeConfig>>,
    /// Replicas no longer assigned, destroyed once nothing else (a request,
    /// a move step) holds them; a shard waiting here is not reopened.
    retiring: std::sync::Mutex<Vec<Arc<Replica>>>,
}

impl Converger {
    fn retiring(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Replica>>> {
        self.retiring.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn is_retiring(&self, shard_id: u64) -> bool {
        self.retiring().iter().any(|r| r.shard_id == shard_id)
    }

    /// Destroys the retiring replicas nothing holds any more; the others
    /// wait for the next round.
    async fn destroy_retired(&self) {
        let pending = std::mem::take(&mut *self.retiring());
        for replica in pending {
            match Arc::try_unwrap(replica) {
                Ok(replica) => {
                    let shard_id = replica.shard_id;
                    match replica.destroy().await {
                        Ok(()) => info!(shard = shard_id, "replica no longer assigned; destroyed"),
                        Err(e) => warn!(error = %e, "cannot destroy replica"),
                    }
                }
                Err(in_use) => self.retiring().push(in_use),
            }
        }
    }

    /// Starts the move steps PD asks of this worker.
    fn launch_steps(&self, reply: &pd::HeartbeatResponse) {
        for step in &reply.steps {
            let Some(replica) = self.hosted(step.shard_id) else {
                continue;
            };
            let addr = reply
                .assignments
                .iter()
                .filter_map(|a| a.shard.as_ref())
                .filter(|s| s.shard_id == step.shard_id)
                .flat_map(|s| &s.replicas)
                .find(|r| r.worker_id == step.target_worker_id)
                .map(|r| r.addr.clone());
            self.steps.launch(replica, *step, addr);
        }
    }

    fn snapshot(&self) -> Vec<Arc<Replica>> {
        self.replicas
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    fn hosted(&self, shard_id: u64) -> Option<Arc<Replica>> {
        self.replicas
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&shard_id)
            .cloned()
    }

    async fn apply(&self, reply: pd::HeartbeatResponse) {
        let mut assigned = HashSet::new();
        for assignment in &reply.assignments {
            let Some(shard) = assignment.shard.as_ref() else {
                continue;
            };
            assigned.insert(shard.shard_id);
            // PD knows where each worker is now; a group's membership keeps the
            // address a replica was added with.
            for peer in &shard.replicas {
                self.pool.set_address(peer.worker_id, &peer.addr);
            }
            let replica = match self.hosted(shard.shard_id) {
                Some(replica) => replica,
                None if self.is_retiring(shard.shard_id) => continue,
                None => {
                    match Replica::open(
                        self.db.clone(),
                        &self.index_root,
                        self.worker_id,
                        assignment,
                        self.raft_config.clone(),
                        self.pool.clone(),
                    )
                    .await
                    {
                        Ok(replica) => {
                            let replica = Arc::new(replica);
                            self.registry.insert(shard.shard_id, replica.raft.clone());
                            self.replicas
                                .write()
                                .unwrap_or_else(|p| p.into_inner())
                                .insert(shard.shard_id, replica.clone());
                            info!(shard = shard.shard_id, collection = %shard.collection, "replica opened");
                            replica
                        }
                        Err(e) => {
                            warn!(error = %e, "cannot open replica");
                            continue;
                        }
                    }
                }
            };
            replica.epoch.fetch_max(shard.epoch, Ordering::Relaxed);
            if let Err(e) = replica.initialize_if_new(shard).await {
                warn!(error = %e, "cannot initialise shard group");
            }
        }
        self.launch_steps(&reply);
        let unassigned: Vec<u64> = self
            .snapshot()
            .iter()
            .map(|r| r.shard_id)
            .filter(|id| !assigned.contains(id))
            .collect();
        for shard_id in unassigned {
            self.registry.remove(shard_id);
            let removed = self
                .replicas
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&shard_id);
            if let Some(replica) = removed {
                self.retiring().push(replica);
            }
        }
        self.destroy_retired().await;
    }
}
