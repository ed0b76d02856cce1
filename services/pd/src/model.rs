//! The PD state machine's data: workers, collections, shards, the KV namespace
//! and the id allocator, as plain serialisable values. No I/O.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use vectron_ids::{CollectionId, ShardId, WorkerId};

/// Lifecycle state of a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WorkerState {
    /// Heartbeating and eligible for new replicas.
    Up,
    /// Heartbeating; its replicas are to be moved away, it gets no new ones.
    Draining,
    /// Missed heartbeats past the timeout.
    Down,
    /// Removed by an operator; its name may register again.
    Removed,
}

/// A worker as PD records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerRecord {
    /// Persistent id.
    pub id: WorkerId,
    /// Registration name (pod name on Kubernetes).
    pub name: String,
    /// Advertised gRPC address.
    pub addr: String,
    /// Failure zone, empty when unknown.
    pub zone: String,
    /// Lifecycle state.
    pub state: WorkerState,
    /// Whether an operator asked to drain it; survives a Down/Up flap.
    pub drain_requested: bool,
    /// Leader clock (ms since the epoch) of the last state-changing event.
    pub last_heartbeat_ms: i64,
    /// Leader clock when it was marked Down; `None` while it is not Down.
    #[serde(default)]
    pub down_since_ms: Option<i64>,
}

/// Distance function of a collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Metric {
    /// Cosine similarity.
    Cosine,
    /// Squared Euclidean distance.
    L2,
    /// Dot product.
    Dot,
}

/// HNSW parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hnsw {
    /// Links per node.
    pub m: u32,
    /// Build-time candidate list size.
    pub ef_construction: u32,
    /// Default search-time candidate list size.
    pub ef_search: u32,
}

impl Default for Hnsw {
    fn default() -> Self {
        Self {
            m: 16,
            ef_construction: 200,
            ef_search: 64,
        }
    }
}

/// What a user asks for when creating a collection (validated).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectionSpec {
    /// Unique name.
    pub name: String,
    /// Vector dimension.
    pub dimension: u32,
    /// Distance function.
    pub metric: Metric,
    /// Number of shards, fixed at creation.
    pub shards: u32,
    /// Replicas per shard.
    pub replication_factor: u32,
    /// Index parameters.
    pub hnsw: Hnsw,
}

/// A collection as PD records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectionRecord {
    /// Cluster-unique id.
    pub id: CollectionId,
    /// The validated spec.
    pub spec: CollectionSpec,
    /// Its shards in index order.
    pub shard_ids: Vec<ShardId>,
    /// Leader clock at creation.
    pub created_at_ms: i64,
}

/// Membership kind of a replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReplicaKind {
    /// Votes in the shard's Raft group.
    Voter,
    /// Receives the log but does not vote (during a move).
    Learner,
}

/// One replica of a shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaRecord {
    /// The worker hosting it.
    pub worker: WorkerId,
    /// Voter or learner.
    pub kind: ReplicaKind,
}

/// A shard as PD records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardRecord {
    /// Cluster-unique id (the Raft group id on workers).
    pub id: ShardId,
    /// Owning collection's name.
    pub collection: String,
    /// Position in the collection.
    pub index: u32,
    /// First hash of its range.
    pub range_start: u64,
    /// Last hash of its range (inclusive).
    pub range_end: u64,
    /// Bumped on every membership change.
    pub epoch: u64,
    /// Replicas; the first voter is the preferred leader.
    pub replicas: Vec<ReplicaRecord>,
}

/// Why a replica move exists; repairs come before drains before balancing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum MoveReason {
    /// A replica sits on a worker that is down past the timeout or removed.
    Repair,
    /// A replica sits on a draining worker.
    Drain,
    /// Replica counts per worker differ by more than the tolerance.
    BalanceReplicas,
    /// Leader counts per worker differ by more than the tolerance.
    BalanceLeaders,
}

impl MoveReason {
    /// The name shown in `GET /v1/cluster` and metrics.
    pub fn name(self) -> &'static str {
        match self {
            MoveReason::Repair => "repair",
            MoveReason::Drain => "drain",
            MoveReason::BalanceReplicas => "balance_replicas",
            MoveReason::BalanceLeaders => "balance_leaders",
        }
    }
}

/// One step of a replica move, in order. Each has a timeout in the executor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Step {
    /// Start a learner replica on the target worker.
    AddLearner,
    /// Wait until the learner has caught up (log or snapshot).
    CatchUp,
    /// Membership change: the learner becomes a voter.
    Promote,
    /// Move leadership off the replica that leaves.
    TransferLeader,
    /// Membership change: the old replica leaves; the shard epoch is bumped.
    RemoveOld,
}

impl Step {
    /// The name shown in `GET /v1/cluster`.
    pub fn name(self) -> &'static str {
        match self {
            Step::AddLearner => "add_learner",
            Step::CatchUp => "catch_up",
            Step::Promote => "promote",
            Step::TransferLeader => "transfer_leader",
            Step::RemoveOld => "remove_old",
        }
    }
}

/// A replica move PD is carrying out, replicated so a new PD leader goes on
/// with it (or rolls it back) where the old one stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoveRecord {
    /// Cluster-unique id.
    pub id: u64,
    /// The shard.
    pub shard: ShardId,
    /// Worker that gains a replica.
    pub add: Option<WorkerId>,
    /// Worker that loses its replica.
    pub remove: Option<WorkerId>,
    /// Worker that should lead afterwards.
    pub transfer_leader_to: Option<WorkerId>,
    /// Why.
    pub reason: MoveReason,
    /// The step under way.
    pub step: Step,
    /// Leader clock when the move started.
    pub started_ms: i64,
    /// Leader clock when the current step started (for its timeout).
    pub step_started_ms: i64,
}

impl MoveRecord {
    /// The steps that carry the move out, in order.
    pub fn steps(&self) -> Vec<Step> {
        steps_of(self.add, self.remove, self.transfer_leader_to)
    }

    /// The step after the current one, if any.
    pub fn next_step(&self) -> Option<Step> {
        let steps = self.steps();
        let position = steps.iter().position(|s| *s == self.step)?;
        steps.get(position + 1).copied()
    }
}

/// The steps of a move adding, removing and handing leadership as given.
pub fn steps_of(
    add: Option<WorkerId>,
    remove: Option<WorkerId>,
    transfer_leader_to: Option<WorkerId>,
) -> Vec<Step> {
    let mut steps = Vec::new();
    if add.is_some() {
        steps.extend([Step::AddLearner, Step::CatchUp, Step::Promote]);
    }
    if transfer_leader_to.is_some() {
        steps.push(Step::TransferLeader);
    }
    if remove.is_some() {
        steps.push(Step::RemoveOld);
    }
    steps
}

/// A KV value and the log index that last wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvValue {
    /// The value bytes.
    pub value: Vec<u8>,
    /// Log index of the last write (never 0).
    pub version: u64,
}

/// The whole replicated PD state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PdState {
    /// Workers by id.
    pub workers: BTreeMap<WorkerId, WorkerRecord>,
    /// Collections by name.
    pub collections: BTreeMap<String, CollectionRecord>,
    /// Shards by id.
    pub shards: BTreeMap<ShardId, ShardRecord>,
    /// The KV namespace (auth state). Stored as a list of pairs because JSON
    /// map keys must be strings and these keys are arbitrary bytes.
    #[serde(with = "kv_pairs")]
    pub kv: BTreeMap<Vec<u8>, KvValue>,
    /// Next unallocated id (ids start at 1).
    pub next_id: u64,
    /// Bumped whenever the placement changes.
    pub placement_version: u64,
    /// Replica moves under way, by id.
    #[serde(default)]
    pub moves: BTreeMap<u64, MoveRecord>,
}

impl PdState {
    /// The worker registered under `name`, if any: its incarnation that is
    /// not removed, else the latest removed one. (A worker that joins again
    /// with a new data directory gets a new id; its earlier ids stay as
    /// removed records under the same name.)
    pub fn worker_by_name(&self, name: &str) -> Option<&WorkerRecord> {
        let named = || self.workers.values().filter(move |w| w.name == name);
        named()
            .find(|w| w.state != WorkerState::Removed)
            .or_else(|| named().next_back())
    }

    /// Shards that have a replica on `worker`.
    pub fn shards_on(&self, worker: WorkerId) -> impl Iterator<Item = &ShardRecord> {
        self.shards
            .values()
            .filter(move |s| s.replicas.iter().any(|r| r.worker == worker))
    }

    /// Number of replicas placed on `worker`.
    pub fn replica_count(&self, worker: WorkerId) -> usize {
        self.shards_on(worker).count()
    }

    /// Takes `count` fresh ids.
    pub fn alloc_ids(&mut self, count: u64) -> u64 {
        let first = self.next_id.max(1);
        self.next_id = first + count;
        first
    }
}

/// Serialises a byte-keyed map as a sequence of `(key, value)` pairs.
mod kv_pairs {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serializer};

    use super::KvValue;

    pub fn serialize<S: Serializer>(
        map: &BTreeMap<Vec<u8>, KvValue>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(map.iter())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<Vec<u8>, KvValue>, D::Error> {
        Vec::<(Vec<u8>, KvValue)>::deserialize(d).map(|pairs| pairs.into_iter().collect())
    }

    #[cfg(test)]
    mod tests {
        use super::super::{KvValue, PdState};

        #[test]
        fn state_with_binary_kv_keys_round_trips_through_json() {
            let mut state = PdState::default();
            state.kv.insert(
                vec![0, 255, 7],
                KvValue {
                    value: b"v".to_vec(),
                    version: 3,
                },
            );
            let json = serde_json::to_vec(&state).expect("serialises");
            let back: PdState = serde_json::from_slice(&json).expect("deserialises");
            assert_eq!(back, state);
        }
    }
}
