//! What the PD leader knows from heartbeats but does not replicate: when each
//! worker was last heard from and what it reported about its replicas. Kept in
//! memory on the leader; a new leader starts with a grace period, treating
//! every worker as just seen. No I/O.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use vectron_ids::{ShardId, WorkerId};
use vectron_proto::pd::v1::{ReplicaReport, ReplicaRole};

use crate::scheduler::progress::ShardReports;

/// Heartbeat bookkeeping of the leader.
#[derive(Debug, Default)]
pub struct Liveness {
    last_seen: HashMap<WorkerId, Instant>,
    reports: HashMap<WorkerId, Vec<ReplicaReport>>,
    /// When this node last became leader; workers not heard from since are
    /// given until `since + timeout` before being declared Down.
    leader_since: Option<Instant>,
}

impl Liveness {
    /// Records a heartbeat.
    pub fn heartbeat(&mut self, worker: WorkerId, reports: Vec<ReplicaReport>, now: Instant) {
        self.last_seen.insert(worker, now);
        self.reports.insert(worker, reports);
    }

    /// Records a registration (counts as a heartbeat without reports).
    pub fn touch(&mut self, worker: WorkerId, now: Instant) {
        self.last_seen.insert(worker, now);
    }

    /// Starts (or, with `false`, ends) a leadership term.
    pub fn set_leader(&mut self, is_leader: bool, now: Instant) {
        match (is_leader, self.leader_since) {
            (true, None) => self.leader_since = Some(now),
            (false, Some(_)) => {
                self.leader_since = None;
                self.last_seen.clear();
                self.reports.clear();
            }
            _ => {}
        }
    }

    /// How long this node has been leader at `now`; `None` when it is not.
    pub fn leading_for(&self, now: Instant) -> Option<Duration> {
        self.leader_since
            .map(|since| now.saturating_duration_since(since))
    }

    /// Whether `worker` has been silent for longer than `timeout`.
    pub fn is_silent(&self, worker: WorkerId, timeout: Duration, now: Instant) -> bool {
        let Some(since) = self.leader_since else {
            return false;
        };
        let last = self
            .last_seen
            .get(&worker)
            .copied()
            .unwrap_or(since)
            .max(since);
        now.saturating_duration_since(last) > timeout
    }

    /// Whether `worker` has been heard from within `timeout`.
    pub fn is_alive(&self, worker: WorkerId, timeout: Duration, now: Instant) -> bool {
        self.last_seen
            .get(&worker)
            .is_some_and(|last| now.saturating_duration_since(*last) <= timeout)
    }

    /// The worker leading `shard` by the freshest reports (highest term).
    pub fn shard_leader(&self, shard: ShardId) -> Option<WorkerId> {
        self.leader_report(shard).map(|(worker, _)| worker)
    }

    /// The shard leader's freshest report, with the leader's id.
    pub fn leader_report(&self, shard: ShardId) -> Option<(WorkerId, &ReplicaReport)> {
        self.reports
            .iter()
            .flat_map(|(worker, reports)| reports.iter().map(move |r| (*worker, r)))
            .filter(|(_, r)| r.shard_id == shard.0 && r.role() == ReplicaRole::Leader)
            .max_by_key(|(_, r)| r.term)
    }

    /// What `worker` last reported about its replica of `shard`.
    pub fn report(&self, worker: WorkerId, shard: ShardId) -> Option<&ReplicaReport> {
        self.reports
            .get(&worker)?
            .iter()
            .find(|r| r.shard_id == shard.0)
    }

    /// What the executor needs to judge a move on `shard` adding `target`.
    pub fn shard_reports(&self, shard: ShardId, target: Option<WorkerId>) -> ShardReports {
        let ids = |raw: &[u64]| raw.iter().copied().map(WorkerId).collect::<Vec<_>>();
        let mut out = ShardReports::default();
        if let Some((leader, report)) = self.leader_report(shard) {
            out.leader = Some(leader);
            out.voters = ids(&report.voters);
            out.learners = ids(&report.learners);
            out.leader_applied = report.applied_index;
        }
        out.target_applied = target
            .and_then(|t| self.report(t, shard))
            .map(|r| r.applied_index);
        out
    }

    /// The largest point count and byte size any replica of `shard` reported.
    pub fn shard_size(&self, shard: ShardId) -> (u64, u64) {
        self.reports
            .values()
            .flatten()
            .filter(|r| r.shard_id == shard.0)
            .fold((0, 0), |(points, bytes), r| {
                (points.max(r.points), bytes.max(r.bytes))
            })
    }

    /// The most points any replica of `shard` reported as not yet in its
    /// graph.
    pub fn shard_unindexed(&self, shard: ShardId) -> u64 {
        self.reports
            .values()
            .flatten()
            .filter(|r| r.shard_id == shard.0)
            .map(|r| r.unindexed_points)
            .max()
            .unwrap_or(0)
    }

    /// The live workers (heard from within `alive_within`) that may still
    /// serve a replica of `shards`, dropped at `dropped_at`: those whose latest
    /// report lists one, and those of `assigned` not heard from since the
    /// drop (a worker opens replicas only from heartbeat replies and handles
    /// them in order, so its first report after the drop reflects every reply
    /// that could have named the shards).
    pub fn still_hosting(
        &self,
        shards: &[ShardId],
        assigned: &[WorkerId],
        dropped_at: Instant,
        alive_within: Duration,
        now: Instant,
    ) -> Vec<WorkerId> {
        let lists_one = |worker: &WorkerId| {
            self.reports.get(worker).is_some_and(|reports| {
                reports
                    .iter()
                    .any(|r| shards.contains(&ShardId(r.shard_id)))
            })
        };
        let unheard_since_drop = |worker: &WorkerId| {
            assigned.contains(worker)
                && self
                    .last_seen
                    .get(worker)
                    .is_none_or(|seen| *seen <= dropped_at)
        };
        let mut out: Vec<WorkerId> = self
            .last_seen
            .keys()
            .chain(assigned)
            .filter(|w| self.is_alive(**w, alive_within, now))
            .filter(|w| lists_one(w) || unheard_since_drop(w))
            .copied()
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// How many shards `worker` reports leading.
    pub fn leader_count(&self, worker: WorkerId) -> u32 {
        self.reports
            .get(&worker)
            .map(|reports| {
                reports
                    .iter()
                    .filter(|r| r.role() == ReplicaRole::Leader)
                    .count() as u32
            })
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(shard: u64, role: ReplicaRole, term: u64, points: u64) -> ReplicaReport {
        ReplicaReport {
            shard_id: shard,
            role: role.into(),
            term,
            points,
            ..ReplicaReport::default()
        }
    }

    #[test]
    fn a_new_leader_grants_a_grace_period() {
        let t0 = Instant::now();
        let timeout = Duration::from_secs(5);
        let mut liveness = Liveness::default();
        assert!(!liveness.is_silent(WorkerId(1), timeout, t0 + Duration::from_secs(60)));
        liveness.set_leader(true, t0);
        assert!(!liveness.is_silent(WorkerId(1), timeout, t0 + Duration::from_secs(4)));
        assert!(liveness.is_silent(WorkerId(1), timeout, t0 + Duration::from_secs(6)));
        liveness.heartbeat(WorkerId(1), Vec::new(), t0 + Duration::from_secs(6));
        assert!(!liveness.is_silent(WorkerId(1), timeout, t0 + Duration::from_secs(10)));
    }

    #[test]
    fn only_live_workers_that_may_still_serve_a_dropped_shard_hold_up_a_drop() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let alive = s(5);
        let mut liveness = Liveness::default();
        liveness.heartbeat(WorkerId(1), vec![report(4, ReplicaRole::Leader, 1, 0)], t0);
        liveness.heartbeat(WorkerId(2), vec![report(7, ReplicaRole::Leader, 1, 0)], t0);
        liveness.heartbeat(
            WorkerId(3),
            vec![report(5, ReplicaRole::Follower, 1, 0)],
            t0 - s(10),
        );
        let dropped = [ShardId(4), ShardId(5)];
        // Worker 2 was assigned shard 5 but had not reported it yet: it must
        // be heard from after the drop. Worker 3 is silent, hence Down.
        let assigned = [WorkerId(1), WorkerId(2), WorkerId(3)];
        let pending = |l: &Liveness, now| l.still_hosting(&dropped, &assigned, t0, alive, now);
        assert_eq!(pending(&liveness, t0), vec![WorkerId(1), WorkerId(2)]);
        liveness.heartbeat(
            WorkerId(2),
            vec![report(7, ReplicaRole::Leader, 1, 0)],
            t0 + s(1),
        );
        liveness.heartbeat(
            WorkerId(1),
            vec![report(4, ReplicaRole::Leader, 1, 0)],
            t0 + s(1),
        );
        assert_eq!(pending(&liveness, t0 + s(1)), vec![WorkerId(1)]);
        liveness.heartbeat(WorkerId(1), Vec::new(), t0 + s(2));
        assert!(pending(&liveness, t0 + s(2)).is_empty());
    }

    #[test]
    fn the_highest_term_leader_report_wins() {
        let mut liveness = Liveness::default();
        let now = Instant::now();
        liveness.heartbeat(
            WorkerId(1),
            vec![report(9, ReplicaRole::Leader, 2, 10)],
            now,
        );
        liveness.heartbeat(
            WorkerId(2),
            vec![report(9, ReplicaRole::Leader, 3, 12)],
            now,
        );
        liveness.heartbeat(
            WorkerId(3),
            vec![report(9, ReplicaRole::Follower, 3, 11)],
            now,
        );
        assert_eq!(liveness.shard_leader(ShardId(9)), Some(WorkerId(2)));
        assert_eq!(liveness.shard_size(ShardId(9)).0, 12);
        assert_eq!(liveness.leader_count(WorkerId(2)), 1);
        assert_eq!(liveness.shard_leader(ShardId(8)), None);
    }
}
