//! What a chaos run checks besides linearizability: that no acknowledged
//! write was lost (the final value of every key is one some write could have
//! left), that every replica of every shard converges to the same content
//! after the last heal, that every point present at the end is its own
//! nearest neighbour, and how long writes stalled after each leader kill.
//! The lost-write and failover figures are pure functions of the history;
//! convergence and search do network I/O.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;
use vectron_client::Client;
use vectron_proto::common::v1::Consistency;
use vectron_proto::pd::v1 as pd;
use vectron_proto::worker::v1 as pb;

use super::ChaosError;
use super::cluster::Cluster;
use super::faults::{Fault, Injected};
use super::history::{OpKind, Outcome, Record};
use super::workload::vector;

/// An acknowledged write whose effect is gone without any later write that
/// could explain it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LostWrite {
    /// The key.
    pub key: String,
    /// What the write did ("put c1-4", "delete").
    pub write: String,
    /// What the final read saw.
    pub final_state: String,
}

fn describe(found: bool, read: &str) -> String {
    if found {
        format!("value {read}")
    } else {
        "absent".to_owned()
    }
}

/// The lost writes of `records`: for each key with a final read (client
/// `final_client`), every acknowledged put or delete that completed before
/// that read, whose effect the read does not show, and that no other write
/// (acknowledged or of unknown outcome, not finished before it began) could
/// have overwritten with what the read shows.
pub fn lost_writes(records: &[Record], final_client: usize) -> Vec<LostWrite> {
    let mut by_key: BTreeMap<&str, Vec<&Record>> = BTreeMap::new();
    for record in records {
        by_key.entry(record.key.as_str()).or_default().push(record);
    }
    let mut lost = Vec::new();
    for (key, ops) in by_key {
        let Some(last_read) = ops
            .iter()
            .filter(|r| r.client == final_client && r.op == OpKind::Get && r.outcome == Outcome::Ok)
            .max_by_key(|r| r.call)
        else {
            continue;
        };
        let writes: Vec<&&Record> = ops
            .iter()
            .filter(|r| r.op != OpKind::Get && r.outcome != Outcome::Failed)
            .collect();
        let shows = |w: &Record| match w.op {
            OpKind::Put => last_read.found && last_read.read == w.value,
            _ => !last_read.found,
        };
        for write in writes.iter().filter(|w| w.outcome == Outcome::Ok) {
            if write.returned >= last_read.call || shows(write) {
                continue;
            }
            let explained = writes.iter().any(|other| {
                !std::ptr::eq(**other, **write)
                    && shows(other)
                    && other.call <= last_read.returned
                    && (other.outcome == Outcome::Unknown || other.returned >= write.call)
            });
            if !explained {
                lost.push(LostWrite {
                    key: key.to_owned(),
                    write: match write.op {
                        OpKind::Put => format!("put {}", write.value),
                        _ => "delete".to_owned(),
                    },
                    final_state: describe(last_read.found, &last_read.read),
                });
            }
        }
    }
    lost
}

/// For each leader kill, how long after it the next write acknowledged to
/// a key of the killed leader's shard (or, for PD, the next collection
/// created) returned, in seconds.
pub fn shard_failovers(
    records: &[Record],
    injected: &[Injected],
    shard_of_key: &dyn Fn(&str) -> Option<u64>,
) -> Vec<f64> {
    injected
        .iter()
        .filter(|i| i.fault == Fault::KillShardLeader)
        .filter_map(|kill| {
            records
                .iter()
                .filter(|r| {
                    r.op != OpKind::Get
                        && r.outcome == Outcome::Ok
                        && r.call >= kill.at
                        && shard_of_key(&r.key) == kill.shard
                })
                .map(|r| r.returned - kill.at)
                .min()
                .map(|ns| ns as f64 / 1e9)
        })
        .collect()
}

/// `(p50, p99, max)` of `values`; zeros when empty.
pub fn percentiles(values: &[f64]) -> (f64, f64, f64) {
    if values.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let at = |q: f64| sorted[((sorted.len() as f64 - 1.0) * q).round() as usize];
    (at(0.5), at(0.99), sorted[sorted.len() - 1])
}

/// A digest of one replica's points (ids and payloads).
async fn replica_digest(addr: &str, shard: &pd::Shard) -> Option<(u64, usize)> {
    let channel = vectron_proto::channel::internal_endpoint(
        addr,
        vectron_proto::channel::Role::Worker,
        std::time::Duration::from_secs(2),
    )
    .ok()?
    .connect()
    .await
    .ok()?;
    let mut client = vectron_proto::worker::v1::worker_client::WorkerClient::new(channel)
        .max_decoding_message_size(64 * 1024 * 1024);
    let mut after = None;
    let mut entries: Vec<(String, Vec<u8>)> = Vec::new();
    loop {
        let request = pb::ScrollRequest {
            shard: Some(pb::ShardRef {
                shard_id: shard.shard_id,
                epoch: shard.epoch,
            }),
            limit: 10_000,
            after_id: after.clone(),
            filter: None,
            with_vector: false,
            with_payload: true,
            consistency: Consistency::Eventual.into(),
        };
        let page = tokio::time::timeout(Duration::from_secs(5), client.scroll(request))
            .await
            .ok()?
            .ok()?
            .into_inner();
        for point in page.points {
            let id = match point.id.and_then(|i| i.kind) {
                Some(vectron_proto::common::v1::point_id::Kind::Num(n)) => n.to_string(),
                Some(vectron_proto::common::v1::point_id::Kind::Str(s)) => s,
                None => String::new(),
            };
            entries.push((id, point.payload_json));
        }
        match page.next_after_id {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    entries.sort();
    let mut bytes = Vec::new();
    for (id, payload) in &entries {
        bytes.extend_from_slice(id.as_bytes());
        bytes.push(0);
        bytes.extend_from_slice(payload);
        bytes.push(0);
    }
    Some((vectron_routing::fnv1a64(&bytes), entries.len()))
}

/// Waits until every replica of every shard of `collection` holds the same
/// points; returns how long that took, or an error naming the shards still
/// apart after `timeout`.
pub async fn convergence(
    cluster: &Cluster,
    collection: &str,
    timeout: Duration,
) -> Result<Duration, ChaosError> {
    let started = Instant::now();
    loop {
        let mut apart = Vec::new();
        match cluster.shards(collection).await {
            Ok(shards) => {
                for shard in &shards {
                    let mut digests = Vec::new();
                    for replica in &shard.replicas {
                        digests.push(replica_digest(&replica.addr, shard).await);
                    }
                    let first = digests.first().cloned().flatten();
                    if first.is_none() || digests.iter().any(|d| *d != first) {
                        apart.push(format!("shard {}: {digests:?}", shard.shard_id));
                    }
                }
            }
            Err(e) => apart.push(e.to_string()),
        }
        if apart.is_empty() {
            return Ok(started.elapsed());
        }
        if started.elapsed() > timeout {
            return Err(ChaosError::Violation(format!(
                "replicas did not converge within {timeout:?}: {}",
                apart.join("; ")
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Searches each key present at the end by its own vector; returns the keys
/// whose point was not the top hit.
pub async fn own_nearest(
    http: &Client,
    collection: &str,
    present: &[u64],
) -> Result<Vec<String>, ChaosError> {
    let mut misses = Vec::new();
    for key in present {
        let body = json!({"vector": vector(*key), "top_k": 1, "consistency": "strong"});
        let hits = tokio::time::timeout(Duration::from_secs(30), http.search(collection, &body))
            .await
            .map_err(|_| ChaosError::Cluster("search timed out after the heal".into()))?
            .map_err(|e| ChaosError::Cluster(format!("search after the heal: {e}")))?;
        let top = hits.first().map(|h| match &h.id {
            vectron_client::PointId::Num(n) => n.to_string(),
            vectron_client::PointId::Str(s) => s.clone(),
        });
        if top.as_deref() != Some(key.to_string().as_str()) {
            misses.push(format!("key {key}: top hit {top:?}"));
        }
    }
    Ok(misses)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(client: usize, op: OpKind, value: &str, call: i64, returned: i64) -> Record {
        Record {
            client,
            key: "k".into(),
            op,
            value: value.into(),
            call,
            returned,
            outcome: Outcome::Ok,
            found: false,
            read: String::new(),
            deleted: 0,
        }
    }

    fn final_read(found: bool, read: &str, call: i64) -> Record {
        Record {
            found,
            read: read.into(),
            ..op(9, OpKind::Get, "", call, call + 1)
        }
    }

    #[test]
    fn an_overwritten_ack_is_not_lost_but_a_vanished_one_is() {
        let put_a = op(0, OpKind::Put, "a", 0, 10);
        let put_b = op(1, OpKind::Put, "b", 20, 30);
        // b overwrote a: nothing lost.
        let fine = vec![put_a.clone(), put_b.clone(), final_read(true, "b", 100)];
        assert!(lost_writes(&fine, 9).is_empty());
        // The final read shows a although b was acknowledged after a
        // finished: b is lost.
        let lost = lost_writes(
            &[put_a.clone(), put_b.clone(), final_read(true, "a", 100)],
            9,
        );
        assert_eq!(lost.len(), 1, "{lost:?}");
        assert_eq!(lost[0].write, "put b");
        // Nothing at all: both acknowledged puts are lost.
        assert_eq!(
            lost_writes(
                &[put_a.clone(), put_b.clone(), final_read(false, "", 100)],
                9
            )
            .len(),
            2
        );
        // ... unless a delete of unknown outcome could explain it.
        let mut delete = op(2, OpKind::Delete, "", 5, 6);
        delete.outcome = Outcome::Unknown;
        assert!(lost_writes(&[put_a, put_b, delete, final_read(false, "", 100)], 9).is_empty());
    }

    #[test]
    fn failover_is_the_first_acknowledged_write_to_the_shard_after_the_kill() {
        let kill = Injected {
            fault: Fault::KillShardLeader,
            targets: vec!["worker-1".into()],
            shard: Some(7),
            point: None,
            detail: None,
            at: 1_000_000_000,
        };
        let mut records = vec![
            op(0, OpKind::Put, "a", 500_000_000, 900_000_000),
            op(0, OpKind::Put, "b", 1_100_000_000, 3_000_000_000),
            op(1, OpKind::Put, "c", 1_200_000_000, 2_500_000_000),
        ];
        records[2].key = "other".into();
        let shard_of = |key: &str| Some(if key == "k" { 7 } else { 8 });
        assert_eq!(shard_failovers(&records, &[kill], &shard_of), vec![2.0]);
        assert_eq!(percentiles(&[3.0, 1.0, 2.0]), (2.0, 3.0, 3.0));
    }
}
