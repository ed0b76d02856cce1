//! Sends one per-shard call to the right worker: the shard leader for writes
//! and strong reads, any replica for eventual reads. Follows NOT_LEADER hints,
//! refreshes the routing table on STALE_EPOCH / SHARD_NOT_FOUND, moves on to
//! other replicas when a worker is unreachable, and gives up after a bounded
//! time with 503. Every shard operation the gateway sends is idempotent
//! (upsert and delete name their points, reads change nothing), so retrying
//! cannot apply anything twice. Does network I/O (workers).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};
use tracing::debug;
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
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(1),
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
        Some(ErrorReason::NoQuorum) => AfterFailure::NextReplica,
        _ => match status.code() {
            Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown => {
                AfterFailure::NextReplica
            }
            _ => AfterFailure::Fail(ApiError::from_status(status)),
        },
    }
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
                let channel = Endpoint::from_shared(format!("http://{addr}"))
                    .map_err(|e| ApiError::unavailable(format!("bad worker address {addr}: {e}")))?
                    .connect_timeout(Duration::from_secs(1))
                    .tcp_nodelay(true)
                    .connect_lazy();
                channels.insert(addr.to_owned(), channel.clone());
                channel
            }
        };
        Ok(WorkerClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES))
    }

    /// Replica addresses to try, best first.
    fn candidates(&self, shard: &pd::Shard, target: Target) -> Vec<String> {
        let mut addrs: Vec<String> = shard.replicas.iter().map(|r| r.addr.clone()).collect();
        match target {
            Target::Leader => {
                let hinted = self
                    .leaders
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(&shard.shard_id)
                    .cloned();
                let reported = shard
                    .replicas
                    .iter()
                    .find(|r| r.worker_id == shard.leader_worker_id)
                    .map(|r| r.addr.clone());
                for first in [reported, hinted].into_iter().flatten() {
                    addrs.retain(|a| *a != first);
                    addrs.insert(0, first);
                }
            }
            Target::AnyReplica => {
                if !addrs.is_empty() {
                    let start = self.round_robin.fetch_add(1, Ordering::Relaxed) % addrs.len();
                    addrs.rotate_left(start);
                }
            }
        }
        addrs
    }

    fn remember_leader(&self, shard_id: u64, addr: &str) {
        self.leaders
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(shard_id, addr.to_owned());
    }

    /// Runs `call` on shard `index` of `collection` as described on the
    /// module.
    pub async fn on_shard<T, F, Fut>(
        &self,
        collection: &str,
        index: usize,
        target: Target,
        call: F,
    ) -> Result<T>
    where
        F: Fn(WorkerClient<Channel>, ShardRef) -> Fut,
        Fut: Future<Output = std::result::Result<tonic::Response<T>, Status>>,
    {
        let start = Instant::now();
        let mut backoff = self.policy.initial_backoff;
        let mut last = String::from("no replica tried");
        let mut refresh = false;
        loop {
            let table = if refresh {
                self.routing.refresh(collection).await?
            } else {
                self.routing.table(collection).await?
            };
            refresh = true;
            let shard = table.shards.get(index).ok_or_else(|| {
                ApiError::unavailable(format!(
                    "collection {collection:?} has no shard {index} any more"
                ))
            })?;
            let shard_ref = ShardRef {
                shard_id: shard.shard_id,
                epoch: shard.epoch,
            };
            let mut queue = self.candidates(shard, target);
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
                            self.remember_leader(shard.shard_id, &addr);
                        }
                        return Ok(response.into_inner());
                    }
                    Ok(Err(status)) => status,
                    Err(_) => Status::deadline_exceeded(format!("worker {addr} did not answer")),
                };
                debug!(collection, shard = shard.shard_id, %addr, code = ?status.code(), message = status.message(), "shard call failed");
                last = format!("worker {addr}: {}", status.message());
                let next = classify(&status, &addr);
                if !matches!(next, AfterFailure::Fail(_)) {
                    self.metrics.retried();
                }
                match next {
                    AfterFailure::Fail(error) => return Err(error),
                    AfterFailure::Leader(hint) => {
                        self.remember_leader(shard.shard_id, &hint);
                        if !tried.contains(&hint) {
                            queue.insert(0, hint);
                        }
                    }
                    AfterFailure::NextReplica => {}
                    AfterFailure::Refresh => break,
                }
            }
            if start.elapsed() + backoff > self.policy.deadline {
                return Err(ApiError::unavailable(format!(
                    "shard {index} of collection {collection:?} is unavailable after {:?}: {last}",
                    start.elapsed()
                )));
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
    }
}
