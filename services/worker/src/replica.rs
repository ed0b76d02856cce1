//! A hosted shard replica: its Raft handle, index, storage and the placement
//! facts PD gave it (collection, dimension, metric, epoch). Opening one
//! loads its index from its dumps and RocksDB and starts the index upkeep
//! task; destroying one removes exactly its keys and its dumps. Does disk I/O.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use openraft::{BasicNode, Config, ServerState};
use vectron_proto::common::v1::LeaderHint;
use vectron_proto::pd::v1 as pb;
use vectron_raft::RocksLogStore;
use vectron_raft::network::{ChannelPool, GrpcNetworkFactory};

use crate::distance::Metric;
use crate::index::disk::IndexDir;
use crate::index::{HnswParams, ShardIndex};
use crate::maintenance::{self, MaintenanceConfig};
use crate::shard::ShardTypeConfig;
use crate::shard::row_ids::RowIds;
use crate::shard::state_machine::ShardStateMachine;
use crate::storage::ShardStore;

/// A shard replica's Raft handle.
pub type ShardRaft = openraft::Raft<ShardTypeConfig>;

/// One shard replica hosted by this worker.
pub struct Replica {
    /// The shard (also the Raft group id).
    pub shard_id: u64,
    /// Owning collection.
    pub collection: String,
    /// Vector dimension.
    pub dimension: usize,
    /// Metric.
    pub metric: Metric,
    /// Default search breadth.
    pub ef_search: usize,
    /// The routing hashes of the points this shard holds; points outside it
    /// are refused (the caller's routing is out of date).
    pub range: vectron_routing::HashRange,
    /// Latest epoch PD told us.
    pub epoch: AtomicU64,
    /// Raft handle.
    pub raft: ShardRaft,
    /// The index.
    pub index: Arc<RwLock<ShardIndex>>,
    /// The id of each row the index holds.
    pub row_ids: Arc<RowIds>,
    /// Stored points.
    pub store: ShardStore,
    /// Set while this replica hands leadership over: it takes no writes
    /// or strong reads, so its followers' leases can run out.
    handing_over: AtomicBool,
    /// The point count last read from the index, reported while the index
    /// is busy.
    points_seen: AtomicU64,
    /// The unbuilt points of the last report that could read the index.
    unbuilt_seen: AtomicU64,
    log_store: RocksLogStore<ShardTypeConfig>,
    dumps: IndexDir,
    upkeep: tokio::task::JoinHandle<()>,
}

/// While alive, the replica is handing leadership over: heartbeats are off
/// and requests are turned away. Dropping it restores both.
pub struct Handover<'a> {
    replica: &'a Replica,
}

impl Drop for Handover<'_> {
    fn drop(&mut self) {
        self.replica.raft.runtime_config().heartbeat(true);
        self.replica.handing_over.store(false, Ordering::SeqCst);
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.upkeep.abort();
    }
}

/// Why a replica could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("shard {shard_id}: {message}")]
pub struct ReplicaError {
    /// The shard.
    pub shard_id: u64,
    /// What failed.
    pub message: String,
}

fn metric_of(raw: i32) -> Metric {
    match vectron_proto::common::v1::Metric::try_from(raw) {
        Ok(vectron_proto::common::v1::Metric::L2) => Metric::L2,
        Ok(vectron_proto::common::v1::Metric::Dot) => Metric::Dot,
        _ => Metric::Cosine,
    }
}

impl Replica {
    /// Opens (or creates) the replica PD assigned, as Raft node `node_id`;
    /// its index dumps live under `index_root/<shard id>`.
    pub async fn open(
        db: Arc<rocksdb::DB>,
        index_root: &Path,
        node_id: u64,
        assignment: &pb::ReplicaAssignment,
        raft_config: Arc<Config>,
        pool: ChannelPool,
    ) -> Result<Self, ReplicaError> {
        let shard = assignment.shard.clone().unwrap_or_default();
        let shard_id = shard.shard_id;
        let error = |message: String| ReplicaError { shard_id, message };
        let hnsw = assignment.hnsw.unwrap_or_default();
        let params = HnswParams {
            m: hnsw.m.clamp(2, 256) as usize,
            ef_construction: hnsw.ef_construction.max(hnsw.m).max(2) as usize,
        };
        let metric = metric_of(assignment.metric);
        let store = ShardStore::new(db.clone(), shard_id);
        let dumps = IndexDir::new(index_root.join(shard_id.to_string()));
        let state_machine = ShardStateMachine::open(store.clone(), metric, params, &dumps)
            .map_err(|e| error(e.to_string()))?;
        let index = state_machine.index();
        let row_ids = state_machine.row_ids();
        let upkeep = maintenance::spawn(
            shard_id,
            index.clone(),
            dumps.clone(),
            MaintenanceConfig::default(),
        );
        let log_store = RocksLogStore::new(db, shard_id);
        let network = GrpcNetworkFactory::new(shard_id, pool);
        let raft = ShardRaft::new(
            node_id,
            raft_config,
            network,
            log_store.clone(),
            state_machine,
        )
        .await
        .map_err(|e| error(e.to_string()))?;
        Ok(Self {
            shard_id,
            collection: shard.collection.clone(),
            dimension: assignment.dimension as usize,
            metric,
            ef_search: if hnsw.ef_search == 0 {
                64
            } else {
                hnsw.ef_search as usize
            },
            range: vectron_routing::HashRange {
                start: shard.range_start,
                end: shard.range_end,
            },
            epoch: AtomicU64::new(shard.epoch),
            raft,
            index,
            row_ids,
            store,
            handing_over: AtomicBool::new(false),
            points_seen: AtomicU64::new(0),
            unbuilt_seen: AtomicU64::new(0),
            log_store,
            dumps,
            upkeep,
        })
    }

    /// Forms the group if this replica has never been initialised and the
    /// shard is at its first epoch: every founding replica proposes the same
    /// voters, so exactly one group forms.
    pub async fn initialize_if_new(&self, shard: &pb::Shard) -> Result<(), ReplicaError> {
        let initialized = self.raft.is_initialized().await.map_err(|e| ReplicaError {
            shard_id: self.shard_id,
            message: e.to_string(),
        })?;
        let node_id = self.raft.metrics().borrow().id;
        let founding_voter = shard
            .replicas
            .iter()
            .any(|r| r.worker_id == node_id && r.kind() != pb::ReplicaKind::Learner);
        // A replica added by a move joins as a learner through the leader;
        // only the founders of a new shard form its group.
        if initialized || shard.epoch > 1 || !founding_voter {
            return Ok(());
        }
        let voters: std::collections::BTreeMap<u64, BasicNode> = shard
            .replicas
            .iter()
            .filter(|r| r.kind() != pb::ReplicaKind::Learner)
            .map(|r| (r.worker_id, BasicNode::new(r.addr.clone())))
            .collect();
        if let Err(e) = self.raft.initialize(voters).await {
            tracing::debug!(shard = self.shard_id, error = %e, "group already initialised");
        }
        Ok(())
    }

    /// What the heartbeat reports about this replica.
    pub fn report(&self) -> pb::ReplicaReport {
        let metrics = self.raft.metrics().borrow().clone();
        let role = match metrics.state {
            ServerState::Leader => pb::ReplicaRole::Leader,
            ServerState::Follower => pb::ReplicaRole::Follower,
            ServerState::Candidate => pb::ReplicaRole::Candidate,
            _ => pb::ReplicaRole::Learner,
        };
        // Never wait for the index: applying a long run of entries holds
        // its write lock, and a heartbeat stuck behind it gets the worker
        // marked Down.
        let (points, unindexed_points) = match self.index.try_read() {
            Ok(index) => {
                let points = index.len() as u64;
                let unbuilt = index.unbuilt() as u64;
                self.points_seen.store(points, Ordering::Relaxed);
                self.unbuilt_seen.store(unbuilt, Ordering::Relaxed);
                (points, unbuilt)
            }
            Err(_) => (
                self.points_seen.load(Ordering::Relaxed),
                self.unbuilt_seen.load(Ordering::Relaxed),
            ),
        };
        // Only a committed membership is reported (PD finishes moves on
        // it); a pending change reports none, which PD reads as "unknown".
        let committed =
            metrics.membership_config.log_id().as_ref() <= metrics.last_applied.as_ref();
        let membership = metrics.membership_config.membership();
        let (voters, learners) = if committed {
            (
                membership.voter_ids().collect(),
                membership.learner_ids().collect(),
            )
        } else {
            (Vec::new(), Vec::new())
        };
        pb::ReplicaReport {
            voters,
            learners,
            shard_id: self.shard_id,
            epoch: self.epoch.load(Ordering::Relaxed),
            role: role.into(),
            term: metrics.current_term,
            applied_index: metrics.last_applied.map(|l| l.index).unwrap_or(0),
            points,
            bytes: 0,
            unindexed_points,
        }
    }

    /// Starts handing leadership over (see [`Handover`]).
    pub fn begin_handover(&self) -> Handover<'_> {
        self.handing_over.store(true, Ordering::SeqCst);
        self.raft.runtime_config().heartbeat(false);
        Handover { replica: self }
    }

    /// Whether a leadership hand-over is under way.
    pub fn is_handing_over(&self) -> bool {
        self.handing_over.load(Ordering::SeqCst)
    }

    /// Where the leader is, as far as this replica knows.
    pub fn leader_hint(&self) -> Option<LeaderHint> {
        let metrics = self.raft.metrics().borrow().clone();
        let leader = metrics.current_leader?;
        let node = metrics
            .membership_config
            .membership()
            .get_node(&leader)?
            .clone();
        Some(LeaderHint {
            node_id: leader,
            addr: node.addr,
        })
    }

    /// Stops the group and deletes every key and index dump of the shard.
    pub async fn destroy(self) -> Result<(), ReplicaError> {
        let error = |message: String| ReplicaError {
            shard_id: self.shard_id,
            message,
        };
        self.upkeep.abort();
        let _ = self.raft.shutdown().await;
        self.dumps.remove().map_err(|e| error(e.to_string()))?;
        // Data and log go in one atomic write: a crash in between must not
        // leave a log whose entries claim data that is gone (or the reverse).
        // It retires the store: openraft's state-machine task may still be
        // applying entries it was handed before the shutdown, and those
        // writes must fail rather than land after the deletion.
        let mut batch = rocksdb::WriteBatch::default();
        self.store.delete_all(&mut batch);
        self.log_store.stage_destroy(&mut batch);
        self.store.retire(batch).map_err(|e| error(e.to_string()))
    }
}
