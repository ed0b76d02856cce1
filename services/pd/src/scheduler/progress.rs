//! Whether a running move's current step is done, still under way, or has
//! failed, judged from what workers report in heartbeats: the shard
//! leader's view of the group membership and each replica's applied index.
//! Pure; no I/O.

use std::time::Duration;

use vectron_ids::WorkerId;

use crate::model::{MoveRecord, Step, WorkerRecord, WorkerState};

/// What a shard's replicas last reported, as the executor needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShardReports {
    /// The worker leading the shard by the freshest report.
    pub leader: Option<WorkerId>,
    /// The leader's voters.
    pub voters: Vec<WorkerId>,
    /// The leader's learners.
    pub learners: Vec<WorkerId>,
    /// The leader's applied log index.
    pub leader_applied: u64,
    /// The applied index the move's target reports, when it reports one.
    pub target_applied: Option<u64>,
}

impl ShardReports {
    fn member(&self, worker: WorkerId) -> bool {
        self.voters.contains(&worker) || self.learners.contains(&worker)
    }

    /// Whether a leader reported a committed membership (an empty voter
    /// list means its change is not committed yet).
    fn membership_known(&self) -> bool {
        self.leader.is_some() && !self.voters.is_empty()
    }
}

/// How long each step may take before it is rolled back or skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepTimeouts {
    /// Adding the learner to the group.
    pub add_learner: Duration,
    /// The learner catching up (may include a snapshot transfer).
    pub catch_up: Duration,
    /// Handing leadership over.
    pub transfer_leader: Duration,
}

impl Default for StepTimeouts {
    fn default() -> Self {
        Self {
            add_learner: Duration::from_secs(30),
            catch_up: Duration::from_secs(300),
            transfer_leader: Duration::from_secs(20),
        }
    }
}

/// A learner this close to the leader's applied index counts as caught up.
pub const CATCH_UP_LAG: u64 = 16;

/// The executor's verdict on a move's current step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Still under way.
    Wait,
    /// Done (or, for a leadership hand-over that timed out while a replica
    /// still has to leave, skipped: removing the leader makes it step down).
    Advance,
    /// Failed before the new replica voted: roll the move back.
    Abort(String),
}

/// Whether a move may go on with `target` (the worker receiving the
/// replica): it is Up, or Down for less than `down_timeout`. A worker that
/// missed a few heartbeats under load usually comes back, and rolling its
/// move back would throw away the catch-up so far (and, retried, could
/// throw it away again and again).
pub fn target_usable(target: Option<&WorkerRecord>, now_ms: i64, down_timeout: Duration) -> bool {
    target.is_some_and(|w| match w.state {
        WorkerState::Up => true,
        WorkerState::Down => w
            .down_since_ms
            .is_none_or(|since| now_ms - since < down_timeout.as_millis() as i64),
        WorkerState::Draining | WorkerState::Removed => false,
    })
}

/// Judges `m`'s current step at leader clock `now_ms`; `target_usable` says
/// whether the worker receiving the replica may still be used (see
/// [`target_usable`]).
pub fn check(
    m: &MoveRecord,
    reports: &ShardReports,
    target_usable: bool,
    now_ms: i64,
    timeouts: &StepTimeouts,
) -> Progress {
    let elapsed = Duration::from_millis((now_ms - m.step_started_ms).max(0) as u64);
    let timed_out = |limit: Duration| elapsed > limit;
    let before_promotion = matches!(m.step, Step::AddLearner | Step::CatchUp);
    if before_promotion && !target_usable {
        return Progress::Abort("the target worker is no longer up".into());
    }
    match m.step {
        Step::AddLearner => {
            // As a learner: a voter there is left by an earlier replica on
            // the target, which the leader removes first.
            let added = m.add.is_some_and(|a| reports.learners.contains(&a));
            if added {
                Progress::Advance
            } else if timed_out(timeouts.add_learner) {
                Progress::Abort("the learner was not added in time".into())
            } else {
                Progress::Wait
            }
        }
        Step::CatchUp => {
            let caught_up = reports.leader.is_some()
                && reports
                    .target_applied
                    .is_some_and(|t| t > 0 && t + CATCH_UP_LAG >= reports.leader_applied);
            if caught_up {
                Progress::Advance
            } else if timed_out(timeouts.catch_up) {
                Progress::Abort("the learner did not catch up in time".into())
            } else {
                Progress::Wait
            }
        }
        // Never rolled back on a timeout, and on a lost target only once
        // the leader's committed membership shows it is not a voter: the
        // leader may have promoted it without PD seeing it yet, and a voter
        // taken out of the placement is destroyed by its worker — which,
        // given the replica again later, would rejoin empty with the old
        // vote counted. A promoted target that is down is kept (the move
        // goes on; repair replaces the replica if the worker stays down).
        Step::Promote => {
            let promoted = m.add.is_some_and(|a| reports.voters.contains(&a));
            if promoted {
                Progress::Advance
            } else if !target_usable && reports.membership_known() {
                Progress::Abort("the target worker is no longer up".into())
            } else {
                Progress::Wait
            }
        }
        Step::TransferLeader => {
            if reports.leader.is_some() && reports.leader == m.transfer_leader_to {
                Progress::Advance
            } else if timed_out(timeouts.transfer_leader) {
                // A replica still to leave steps down when removed (and a
                // new replica votes already), so only a move that is
                // nothing but a hand-over has failed.
                if m.remove.is_some() || m.add.is_some() {
                    Progress::Advance
                } else {
                    Progress::Abort("leadership was not handed over in time".into())
                }
            } else {
                Progress::Wait
            }
        }
        // Never rolled back: the new replica votes already, so the old one
        // leaving is always safe; the step is re-sent until it lands.
        Step::RemoveOld => {
            // An empty voter list means the leader's membership is not
            // committed yet (see the worker's report): not proof of removal.
            let gone = m.remove.is_some_and(|r| {
                reports.membership_known() && reports.leader != Some(r) && !reports.member(r)
            });
            if gone {
                Progress::Advance
            } else {
                Progress::Wait
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use vectron_ids::ShardId;

    use super::*;
    use crate::model::MoveReason;

    fn w(id: u64) -> WorkerId {
        WorkerId(id)
    }

    /// A move of shard 7 from worker 1 (the leader) to worker 4.
    fn moving(step: Step, step_started_ms: i64) -> MoveRecord {
        MoveRecord {
            id: 1,
            shard: ShardId(7),
            add: Some(w(4)),
            remove: Some(w(1)),
            transfer_leader_to: Some(w(2)),
            reason: MoveReason::Drain,
            step,
            started_ms: 0,
            step_started_ms,
        }
    }

    fn reports(voters: &[u64], learners: &[u64], leader: u64) -> ShardReports {
        ShardReports {
            leader: Some(w(leader)),
            voters: voters.iter().copied().map(w).collect(),
            learners: learners.iter().copied().map(w).collect(),
            leader_applied: 1000,
            target_applied: None,
        }
    }

    fn judge(m: &MoveRecord, r: &ShardReports, now_ms: i64) -> Progress {
        check(m, r, true, now_ms, &StepTimeouts::default())
    }

    #[test]
    fn each_step_advances_once_the_leader_reports_it_done() {
        let before = reports(&[1, 2, 3], &[], 1);
        let m = moving(Step::AddLearner, 0);
        assert_eq!(judge(&m, &before, 100), Progress::Wait);
        let learner = reports(&[1, 2, 3], &[4], 1);
        assert_eq!(judge(&m, &learner, 100), Progress::Advance);
        // A voter left there by an earlier replica is not the new learner.
        let leftover = reports(&[1, 2, 3, 4], &[], 1);
        assert_eq!(judge(&m, &leftover, 100), Progress::Wait);

        let m = moving(Step::CatchUp, 0);
        let mut lagging = learner.clone();
        lagging.target_applied = Some(10);
        assert_eq!(judge(&m, &lagging, 100), Progress::Wait);
        lagging.target_applied = Some(1000 - CATCH_UP_LAG);
        assert_eq!(judge(&m, &lagging, 100), Progress::Advance);

        let m = moving(Step::Promote, 0);
        assert_eq!(judge(&m, &learner, 100), Progress::Wait);
        let promoted = reports(&[1, 2, 3, 4], &[], 1);
        assert_eq!(judge(&m, &promoted, 100), Progress::Advance);

        let m = moving(Step::TransferLeader, 0);
        assert_eq!(judge(&m, &promoted, 100), Progress::Wait);
        let handed = reports(&[1, 2, 3, 4], &[], 2);
        assert_eq!(judge(&m, &handed, 100), Progress::Advance);

        let m = moving(Step::RemoveOld, 0);
        assert_eq!(judge(&m, &handed, 100), Progress::Wait);
        let removed = reports(&[2, 3, 4], &[], 2);
        assert_eq!(judge(&m, &removed, 100), Progress::Advance);
    }

    #[test]
    fn steps_before_the_vote_roll_back_on_timeout_or_a_lost_target() {
        let timeouts = StepTimeouts::default();
        let stuck = reports(&[1, 2, 3], &[], 1);
        let late = timeouts.add_learner.as_millis() as i64 + 1;
        let m = moving(Step::AddLearner, 0);
        assert!(matches!(judge(&m, &stuck, late), Progress::Abort(_)));
        let m = moving(Step::CatchUp, 0);
        assert!(matches!(
            check(&m, &stuck, false, 1, &timeouts),
            Progress::Abort(_)
        ));
    }

    #[test]
    fn promotion_waits_past_its_timeout_unless_the_target_is_gone() {
        let learner = reports(&[1, 2, 3], &[4], 1);
        let m = moving(Step::Promote, 0);
        assert_eq!(judge(&m, &learner, i64::MAX / 2), Progress::Wait);
        assert!(matches!(
            check(&m, &learner, false, 1, &StepTimeouts::default()),
            Progress::Abort(_)
        ));
    }

    #[test]
    fn a_target_down_briefly_is_waited_for() {
        let worker = |state, down_since_ms| WorkerRecord {
            id: w(4),
            name: "worker-4".into(),
            addr: "127.0.0.1:1".into(),
            zone: String::new(),
            state,
            drain_requested: false,
            last_heartbeat_ms: 0,
            down_since_ms,
        };
        let timeout = Duration::from_secs(5);
        let usable = |r: &WorkerRecord, now| target_usable(Some(r), now, timeout);
        assert!(usable(&worker(WorkerState::Up, None), 0));
        assert!(usable(&worker(WorkerState::Down, Some(1_000)), 5_999));
        assert!(!usable(&worker(WorkerState::Down, Some(1_000)), 6_001));
        assert!(!usable(&worker(WorkerState::Draining, None), 0));
        assert!(!usable(&worker(WorkerState::Removed, None), 0));
        assert!(!target_usable(None, 0, timeout));
    }

    #[test]
    fn a_lost_target_is_never_rolled_back_once_it_may_vote() {
        let m = moving(Step::Promote, 0);
        let lost = |r: &ShardReports| check(&m, r, false, 1, &StepTimeouts::default());
        // Promoted before it went down: the move goes on.
        assert_eq!(lost(&reports(&[1, 2, 3, 4], &[], 1)), Progress::Advance);
        // The promotion may be the pending membership change: wait.
        assert_eq!(lost(&reports(&[], &[], 1)), Progress::Wait);
        let mut no_leader = reports(&[1, 2, 3], &[4], 1);
        no_leader.leader = None;
        assert_eq!(lost(&no_leader), Progress::Wait);
    }

    #[test]
    fn an_uncommitted_membership_is_no_proof_of_removal() {
        let m = moving(Step::RemoveOld, 0);
        let unknown = reports(&[], &[], 2);
        assert_eq!(judge(&m, &unknown, 100), Progress::Wait);
    }

    #[test]
    fn a_slow_hand_over_is_skipped_and_removal_is_never_rolled_back() {
        let timeouts = StepTimeouts::default();
        let promoted = reports(&[1, 2, 3, 4], &[], 1);
        let late = timeouts.transfer_leader.as_millis() as i64 + 1;
        let m = moving(Step::TransferLeader, 0);
        assert_eq!(judge(&m, &promoted, late), Progress::Advance);
        let m = moving(Step::RemoveOld, 0);
        assert_eq!(judge(&m, &promoted, i64::MAX / 2), Progress::Wait);
        // The leaving replica still leads: not done even if it reports a
        // membership without itself.
        let self_removed = reports(&[2, 3, 4], &[], 1);
        assert_eq!(judge(&m, &self_removed, 100), Progress::Wait);
    }
}
