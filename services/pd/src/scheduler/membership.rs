//! Whether a shard's Raft group agrees with its placement, judged from the
//! shard leader's latest report. New moves start only on a group that
//! agrees: one that still counts a member the placement dropped (left by a
//! rolled-back move), or whose membership change is still pending, may hold
//! a voter on a worker that PD would then give the shard to again. That
//! worker has destroyed its old replica, so the new one would rejoin empty
//! while the group still counts it as a voter — and an empty voter can
//! elect a leader that lacks acknowledged writes. Pure; no I/O.

use std::collections::BTreeSet;

use vectron_proto::pd::v1::ReplicaReport;

use crate::model::ShardRecord;

/// How a shard's group stands against its placement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Agreement {
    /// The group's committed members are exactly the placement's replicas.
    Settled,
    /// No replica reports leading the shard.
    NoLeader,
    /// The leader's membership change is not committed yet, so its members
    /// are unknown.
    Pending,
    /// The group still has members the placement lacks (worker ids); the
    /// leader is asked to remove them.
    Strays(Vec<u64>),
}

impl Agreement {
    /// Why no move may start on the shard; `None` when one may.
    pub fn reason(&self) -> Option<String> {
        match self {
            Agreement::Settled => None,
            Agreement::NoLeader => Some("no replica reports leading the shard".into()),
            Agreement::Pending => Some("a membership change is not committed yet".into()),
            Agreement::Strays(ids) => Some(format!(
                "the group still has members the placement dropped: workers {ids:?}"
            )),
        }
    }
}

/// Judges `shard` against `leader_report`, the latest report of the worker
/// leading it. A worker reports an empty membership while a change is
/// uncommitted.
pub fn agreement(shard: &ShardRecord, leader_report: Option<&ReplicaReport>) -> Agreement {
    let Some(report) = leader_report else {
        return Agreement::NoLeader;
    };
    if report.voters.is_empty() {
        return Agreement::Pending;
    }
    let strays = strays(shard, report);
    if strays.is_empty() {
        Agreement::Settled
    } else {
        Agreement::Strays(strays)
    }
}

/// Group members in `report` that the placement of `shard` does not have.
pub fn strays(shard: &ShardRecord, report: &ReplicaReport) -> Vec<u64> {
    let placed: BTreeSet<u64> = shard.replicas.iter().map(|r| r.worker.0).collect();
    report
        .voters
        .iter()
        .chain(&report.learners)
        .copied()
        .filter(|id| !placed.contains(id))
        .collect()
}

#[cfg(test)]
mod tests {
    use vectron_ids::{ShardId, WorkerId};

    use super::*;
    use crate::model::{ReplicaKind, ReplicaRecord};

    fn shard(workers: &[u64]) -> ShardRecord {
        ShardRecord {
            id: ShardId(5),
            collection: "c".into(),
            index: 0,
            range_start: 0,
            range_end: u64::MAX,
            epoch: 3,
            replicas: workers
                .iter()
                .map(|&w| ReplicaRecord {
                    worker: WorkerId(w),
                    kind: ReplicaKind::Voter,
                })
                .collect(),
        }
    }

    fn report(voters: &[u64], learners: &[u64]) -> ReplicaReport {
        ReplicaReport {
            shard_id: 5,
            voters: voters.to_vec(),
            learners: learners.to_vec(),
            ..ReplicaReport::default()
        }
    }

    #[test]
    fn only_a_group_matching_its_placement_is_settled() {
        let placed = shard(&[1, 2, 3]);
        assert_eq!(
            agreement(&placed, Some(&report(&[1, 2, 3], &[]))),
            Agreement::Settled
        );
        assert_eq!(agreement(&placed, None), Agreement::NoLeader);
        // A rolled-back promotion still pending: members unknown.
        assert_eq!(
            agreement(&placed, Some(&report(&[], &[]))),
            Agreement::Pending
        );
        // A rolled-back move left worker 4 as a voter and worker 6 as a
        // learner.
        let left = agreement(&placed, Some(&report(&[1, 2, 3, 4], &[6])));
        assert_eq!(left, Agreement::Strays(vec![4, 6]));
        assert!(left.reason().is_some_and(|r| r.contains("[4, 6]")));
        assert_eq!(Agreement::Settled.reason(), None);
    }
}
