//! Sends one per-shard call to the right worker: the shard leader for writes
//! and strong reads, any voting replica for eventual reads (never a learner,
//! which may still be catching up). Follows NOT_LEADER hints, refreshes the
//! routing table on STALE_EPOCH / SHARD_NOT_FOUND / WRONG_SHARD, moves on to
//! other replicas when a worker is unreachable, and gives up after a bounded
//! time with 503. A call names its shard by id: when the refreshed table no
//! longer has that shard (the collection was dropped and recreated) or the
//! worker says the points are not its own, the call ends with
//! [`DispatchError::Rerouted`] and the caller regroups against the new table.
//!
//! Retrying is safe because every attempt sends the same request: reads
//! change nothing, and each write carries one request id for all its
//! attempts, which the shard applies at most once — so a timed-out attempt
//! that committed after all is not applied again by the retry. Does network
//! I/O (workers).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;
use tonic::transport::Channel;
use tonic::{Code, Status};
use tracing::debug;
use vectron_proto::channel::{Role, internal_endpoint};
use vectron_proto::common::v1::ErrorReason;
use vectron_proto::error_detail;
use vectron_proto::pd::v1 as pd;
use vectron_proto::worker::v1::ShardRef;
use vectron_proto::worker::v1::worker_client::WorkerClient;

use crate::error::{ApiError, Result};
use crate::metrics::Metrics;
use crate::routing::RoutingCache;

/// Largest gRPC message to or from a worker.
const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// Which replica of a shard may serve a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Only the leader (writes and strong reads).
    Leader,
    /// Any replica (eventual reads).
    AnyReplica,
}

/// Time limits of shard calls.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Per-attempt timeout.
    pub attempt_timeout: Duration,
    /// Give up after this long.
    pub deadline: Duration,
    /// First pause after every replica failed; doubled up to `max_backoff`.
    pub initial_backoff: Duration,
    /// Longest pause.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempt_timeout: Duration::from_secs(10),
            deadline: Duration::from_secs(20),
            initial_backoff: Duration::from_millis(25),
            max_backoff: Duration::from_millis(250),
        }
    }
}

/// Why a shard call did not produce an answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DispatchError {
    /// The shard is not where the caller grouped for any more (it is gone
    /// from the refreshed routing table, or its worker refused the points as
    /// not its own): regroup against the current table and send again.
    #[error("the routing of collection {collection:?} changed under shard {shard_id}")]
    Rerouted {
        /// The collection.
        collection: String,
        /// The shard the call was for.
        shard_id: u64,
    },
    /// The call failed.
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl From<DispatchError> for ApiError {
    fn from(error: DispatchError) -> Self {
        match error {
            DispatchError::Api(error) => error,
            rerouted @ DispatchError::Rerouted { .. } => {
                ApiError::unavailable(format!("{rerouted}; retry"))
            }
        }
    }
}

/// What to do after a failed attempt.
enum AfterFailure {
    /// Give up with this error.
    Fail(ApiError),
    /// Try this address next.
    Leader(String),
    /// Try the next replica.
    NextReplica,
    /// Refresh the routing table, then start over.
    Refresh,
    /// Refresh the routing table and hand the call back for regrouping.
    Regroup,
}

fn classify(status: &Status, tried: &str) -> AfterFailure {
    let detail = error_detail::detail_of(status);
    match detail.as_ref().map(|d| d.reason()) {
        Some(ErrorReason::NotLeader) => {
            match detail
                .and_then(|d| d.leader)
                .map(|l| l.addr)
                .filter(|a| !a.is_empty() && a != tried)
            {
                Some(addr) => AfterFailure::Leader(addr),
                None => AfterFailure::NextReplica,
            }
        }
        Some(ErrorReason::StaleEpoch | ErrorReason::ShardNotFound) => AfterFailure::Refresh,
        Some(ErrorReason::WrongShard) => AfterFailure::Regroup,
        Some(ErrorReason::NoQuorum) => AfterFailure::NextReplica,
        _ => match status.code() {
            Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown => {
                AfterFailure::NextReplica
            }
            _ => AfterFailure::Fail(ApiError::from_status(status)),
        },
    }
}

/// Replica addresses to try for `shard`, best first: for the leader, the
/// last leader this gateway saw (`hinted`, newer than PD's report), then the
/// leader PD reported, then the other voters; for any replica, the voters rotated by `rotation`.
/// Learners are never candidates: they may not have caught up, and they can
/// neither lead nor answer a strong read.
fn candidates(
    shard: &pd::Shard,
    target: Target,
    hinted: Option<String>,
    rotation: usize,
) -> Vec<String> {
    let mut addrs: Vec<String> = shard
        .replicas
        .iter()
        .filter(|r| r.kind() != pd::ReplicaKind::Learner)
        .map(|r| r.addr.clone())
        .collect();
    match target {
        Target::Leader => {
            let reported = shard
                .replicas
                .iter()
                .find(|r| r.worker_id == shard.leader_worker_id)
                .filter(|r| r.kind() != pd::ReplicaKind::Learner)
                .map(|r| r.addr.clone());
            let hinted = hinted.filter(|h| addrs.contains(h));
            for first in [reported, hinted].into_iter().flatten() {
                addrs.retain(|a| *a != first);
                addrs.insert(0, first);
            }
        }
        Target::AnyReplica => {
            if !addrs.is_empty() {
                let start = rotation % addrs.len();
                addrs.rotate_left(start);
            }
        }
    }
    addrs
}

/// Worker connections and shard leader hints.
pub struct Dispatcher {
    routing: RoutingCache,
    channels: Mutex<HashMap<String, Channel>>,
    leaders: Mutex<HashMap<u64, String>>,
    round_robin: AtomicUsize,
    policy: RetryPolicy,
    metrics: std::sync::Arc<Metrics>,
}

impl Dispatcher {
    /// A dispatcher over `routing`, counting retries in `metrics`.
    pub fn new(
        routing: RoutingCache,
        policy: RetryPolicy,
        metrics: std::sync::Arc<Metrics>,
    ) -> Self {
        Self {
            routing,
            channels: Mutex::new(HashMap::new()),
            leaders: Mutex::new(HashMap::new()),
            round_robin: AtomicUsize::new(0),
            policy,
            metrics,
        }
    }

    /// The routing cache.
    pub fn routing(&self) -> &RoutingCache {
        &self.routing
    }

    fn client(&self, addr: &str) -> Result<WorkerClient<Channel>> {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        let channel = match channels.get(addr) {
            Some(channel) => channel.clone(),
            None => {
                let channel = internal_endpoint(addr, Role::Worker, Duration::from_secs(1))
                    .map_err(|e| ApiError::unavailable(format!("bad worker address {addr}: {e}")))?
                    .connect_lazy();
                channels.insert(addr.to_owned(), channel.clone());
                channel
            }
        };
        Ok(WorkerClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES))
    }

    fn remember_leader(&self, shard_id: u64, addr: &str) {
        self.leaders
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(shard_id, addr.to_owned());
    }

    /// Runs `call` on shard `shard_id` of `collection` as described on the
    /// module.
    pub async fn on_shard<T, F, Fut>(
        &self,
        collection: &str,
        shard_id: u64,
        target: Target,
        call: F,
    ) -> Result<T, DispatchError>
    where
        F: Fn(WorkerClient<Channel>, ShardRef) -> Fut,
        Fut: Future<Output = std::result::Result<tonic::Response<T>, Status>>,
    {
        let start = Instant::now();
        let mut backoff = self.policy.initial_backoff;
        let mut last = String::from("no replica tried");
        let mut refresh = false;
        let rerouted = || DispatchError::Rerouted {
            collection: collection.to_owned(),
            shard_id,
        };
        loop {
            let table = if refresh {
                self.routing.refresh(collection).await?
            } else {
                self.routing.table(collection).await?
            };
            refresh = true;
            let Some(shard) = table.shards.iter().find(|s| s.shard_id == shard_id) else {
                return Err(rerouted());
            };
            let shard_ref = ShardRef {
                shard_id: shard.shard_id,
                epoch: shard.epoch,
            };
            let hinted = self
                .leaders
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&shard_id)
                .cloned();
            let rotation = self.round_robin.fetch_add(1, Ordering::Relaxed);
            let mut queue = candidates(shard, target, hinted, rotation);
            let mut tried: Vec<String> = Vec::new();
            while let Some(addr) = (!queue.is_empty()).then(|| queue.remove(0)) {
                if tried.contains(&addr) {
                    continue;
                }
                tried.push(addr.clone());
                let client = self.client(&addr)?;
                let attempt =
                    tokio::time::timeout(self.policy.attempt_timeout, call(client, shard_ref))
                        .await;
                let status = match attempt {
                    Ok(Ok(response)) => {
                        if target == Target::Leader {
                            self.remember_leader(shard_id, &addr);
                        }
                        return Ok(response.into_inner());
                    }
                    Ok(Err(status)) => status,
                    Err(_) => Status::deadline_exceeded(format!("worker {addr} did not answer")),
                };
                debug!(collection, shard = shard_id, %addr, code = ?status.code(), message = status.message(), "shard call failed");
                last = format!("worker {addr}: {}", status.message());
                let next = classify(&status, &addr);
                if !matches!(next, AfterFailure::Fail(_)) {
                    self.metrics.retried();
                }
                match next {
                    AfterFailure::Fail(error) => return Err(error.into()),
                    AfterFailure::Leader(hint) => {
                        self.remember_leader(shard_id, &hint);
                        if !tried.contains(&hint) {
                            queue.insert(0, hint);
                        }
                    }
                    AfterFailure::NextReplica => {}
                    AfterFailure::Refresh => break,
                    AfterFailure::Regroup => {
                        self.routing.refresh(collection).await?;
                        return Err(rerouted());
                    }
                }
            }
            if start.elapsed() + backoff > self.policy.deadline {
                return Err(ApiError::unavailable(format!(
                    "shard {shard_id} of collection {collection:?} is unavailable after {:?}: {last}",
                    start.elapsed()
                ))
                .into());
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(self.policy.max_backoff);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vectron_proto::common::v1::LeaderHint;

    #[test]
    fn not_leader_with_a_new_hint_goes_to_the_hint() {
        let status = error_detail::not_leader(
            "follower",
            Some(LeaderHint {
                node_id: 2,
                addr: "127.0.0.1:2".into(),
            }),
        );
        assert!(
            matches!(classify(&status, "127.0.0.1:1"), AfterFailure::Leader(a) if a == "127.0.0.1:2")
        );
        assert!(matches!(
            classify(&status, "127.0.0.1:2"),
            AfterFailure::NextReplica
        ));
    }

    #[test]
    fn stale_routing_refreshes_and_bad_input_fails() {
        assert!(matches!(
            classify(&error_detail::stale_epoch(1, 1, 2), "a:1"),
            AfterFailure::Refresh
        ));
        assert!(matches!(
            classify(&error_detail::shard_not_found(1), "a:1"),
            AfterFailure::Refresh
        ));
        assert!(matches!(
            classify(&Status::unavailable("refused"), "a:1"),
            AfterFailure::NextReplica
        ));
        assert!(matches!(
            classify(&error_detail::invalid_argument("vector", "bad"), "a:1"),
            AfterFailure::Fail(_)
        ));
        assert!(matches!(
            classify(&error_detail::wrong_shard(1, "ids[0]", "not mine"), "a:1"),
            AfterFailure::Regroup
        ));
    }

    fn replica(worker_id: u64, kind: pd::ReplicaKind) -> pd::Replica {
        pd::Replica {
            worker_id,
            worker_name: format!("w{worker_id}"),
            addr: format!("127.0.0.1:{worker_id}"),
            kind: kind.into(),
        }
    }

    #[test]
    fn learners_serve_no_reads_and_leaders_come_first() {
        let shard = pd::Shard {
            shard_id: 1,
            replicas: vec![
                replica(1, pd::ReplicaKind::Voter),
                replica(2, pd::ReplicaKind::Learner),
                replica(3, pd::ReplicaKind::Voter),
            ],
            leader_worker_id: 3,
            ..pd::Shard::default()
        };
        for rotation in 0..6 {
            let any = candidates(&shard, Target::AnyReplica, None, rotation);
            assert_eq!(any.len(), 2, "two voters: {any:?}");
            assert!(
                !any.contains(&"127.0.0.1:2".to_owned()),
                "a learner is never asked: {any:?}"
            );
        }
        let firsts: std::collections::HashSet<String> = (0..6)
            .map(|r| candidates(&shard, Target::AnyReplica, None, r)[0].clone())
            .collect();
        assert_eq!(firsts.len(), 2, "eventual reads spread over the voters");
        assert_eq!(
            candidates(&shard, Target::Leader, Some("127.0.0.1:1".into()), 0),
            vec!["127.0.0.1:1".to_owned(), "127.0.0.1:3".to_owned()],
            "the leader last seen first, then the one PD reported"
        );
        assert_eq!(
            candidates(&shard, Target::Leader, Some("127.0.0.1:2".into()), 0)[0],
            "127.0.0.1:3",
            "a hint naming a learner is ignored"
        );
    }
}
