//! Scaling decisions, pure: which worker pods leave when the worker count
//! goes down (the highest ordinals, as a StatefulSet removes them), whether
//! they are drained so the StatefulSet may shrink, which PD members leave
//! when PD shrinks, and what PD's own worker list still asks for — a drain to
//! cancel after a scale back up, a removal to retry after a shrink. The
//! reconcile carries them out.

use crate::labels::{self, Component};

/// Pod names of the workers a scale from `current` to `desired` removes.
pub fn leaving_workers(cluster: &str, current: i32, desired: i32) -> Vec<String> {
    (desired.max(0)..current)
        .rev()
        .map(|ordinal| {
            format!(
                "{}-{ordinal}",
                labels::object_name(cluster, Component::Worker)
            )
        })
        .collect()
}

/// PD node ids a scale from `current` to `desired` voters removes, highest
/// first (pod `N` is node `N+1`).
pub fn leaving_pd_members(current: i32, desired: i32) -> Vec<u64> {
    (desired.max(1)..current)
        .rev()
        .map(|ordinal| ordinal as u64 + 1)
        .collect()
}

/// What the worker StatefulSet's replica count is this round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkerScale {
    /// Apply the desired count (first creation, steady or scale-up).
    Desired,
    /// Keep the current count: these leaving workers still hold replicas.
    WaitForDrain {
        /// Current replica count, kept.
        keep: i32,
        /// Workers still holding replicas.
        waiting: Vec<String>,
    },
    /// Every leaving worker is drained: shrink, then remove them from PD.
    Shrink {
        /// Workers to remove from PD.
        leaving: Vec<String>,
    },
}

/// Decides the worker count given the StatefulSet's `current` count, the
/// `desired` one and how many replicas PD says each leaving worker holds
/// (`None`: PD does not know it, so it holds nothing).
pub fn worker_scale(
    cluster: &str,
    current: Option<i32>,
    desired: i32,
    held: impl Fn(&str) -> Option<u32>,
) -> WorkerScale {
    let Some(current) = current.filter(|c| *c > desired) else {
        return WorkerScale::Desired;
    };
    let leaving = leaving_workers(cluster, current, desired);
    let waiting: Vec<String> = leaving
        .iter()
        .filter(|w| held(w).is_some_and(|n| n > 0))
        .cloned()
        .collect();
    if waiting.is_empty() {
        WorkerScale::Shrink { leaving }
    } else {
        WorkerScale::WaitForDrain {
            keep: current,
            waiting,
        }
    }
}

/// A worker's state as PD lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegisteredState {
    /// Serving and taking replicas.
    Up,
    /// Having its replicas moved away.
    Draining,
    /// Missing heartbeats.
    Down,
    /// Forgotten.
    Removed,
}

/// A worker in PD's list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredWorker {
    /// Its name (the pod name).
    pub name: String,
    /// Its state.
    pub state: RegisteredState,
    /// Replicas it holds.
    pub replicas: u32,
}

/// What PD's worker list asks of the operator beyond the StatefulSet count.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerCleanup {
    /// Workers that stay (ordinal below the desired count) but are still
    /// Draining from a scale-down that was reversed: cancel their drain.
    pub undrain: Vec<String>,
    /// Workers whose pods are gone (ordinal at or past both the current and
    /// the desired count) that PD still lists, drained or Down: a removal
    /// that failed after the shrink, to retry.
    pub remove: Vec<String>,
}

/// The ordinal of `name` when it is one of `cluster`'s worker pods.
fn worker_ordinal(cluster: &str, name: &str) -> Option<i32> {
    let prefix = format!("{}-", labels::object_name(cluster, Component::Worker));
    name.strip_prefix(&prefix)?
        .parse()
        .ok()
        .filter(|n: &i32| *n >= 0)
}

/// Reconciles PD's worker list with the worker count: `current` is the
/// StatefulSet's count (`None` before it exists: nothing to clean up),
/// `desired` the spec's.
pub fn worker_cleanup(
    cluster: &str,
    current: Option<i32>,
    desired: i32,
    registered: &[RegisteredWorker],
) -> WorkerCleanup {
    let Some(current) = current else {
        return WorkerCleanup::default();
    };
    let mut cleanup = WorkerCleanup::default();
    for worker in registered {
        let Some(ordinal) = worker_ordinal(cluster, &worker.name) else {
            continue;
        };
        if ordinal < desired && worker.state == RegisteredState::Draining {
            cleanup.undrain.push(worker.name.clone());
        }
        let pod_gone = ordinal >= current && ordinal >= desired;
        let removable = worker.replicas == 0 || worker.state == RegisteredState::Down;
        if pod_gone && worker.state != RegisteredState::Removed && removable {
            cleanup.remove.push(worker.name.clone());
        }
    }
    cleanup
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_highest_ordinals_leave_first() {
        assert_eq!(
            leaving_workers("vec", 5, 3),
            ["vec-worker-4", "vec-worker-3"]
        );
        assert!(leaving_workers("vec", 3, 5).is_empty());
        assert_eq!(leaving_pd_members(5, 3), [5, 4]);
        assert!(leaving_pd_members(3, 3).is_empty());
    }

    #[test]
    fn shrinking_waits_until_every_leaving_worker_is_empty() {
        let held = |w: &str| match w {
            "vec-worker-4" => Some(2),
            "vec-worker-3" => Some(0),
            _ => None,
        };
        assert_eq!(
            worker_scale("vec", Some(5), 3, held),
            WorkerScale::WaitForDrain {
                keep: 5,
                waiting: vec!["vec-worker-4".into()],
            }
        );
        let drained = |_: &str| Some(0);
        assert_eq!(
            worker_scale("vec", Some(5), 3, drained),
            WorkerScale::Shrink {
                leaving: vec!["vec-worker-4".into(), "vec-worker-3".into()],
            }
        );
        assert_eq!(worker_scale("vec", Some(3), 5, held), WorkerScale::Desired);
        assert_eq!(worker_scale("vec", None, 3, held), WorkerScale::Desired);
    }

    fn registered(name: &str, state: RegisteredState, replicas: u32) -> RegisteredWorker {
        RegisteredWorker {
            name: name.into(),
            state,
            replicas,
        }
    }

    #[test]
    fn a_reversed_scale_down_cancels_the_drains_it_started() {
        use RegisteredState::*;
        let pd = [
            registered("vec-worker-0", Up, 3),
            registered("vec-worker-3", Draining, 1),
            registered("vec-worker-4", Draining, 0),
            registered("other-worker-1", Draining, 0),
        ];
        // Back to five while the StatefulSet still has five: both stay.
        assert_eq!(
            worker_cleanup("vec", Some(5), 5, &pd),
            WorkerCleanup {
                undrain: vec!["vec-worker-3".into(), "vec-worker-4".into()],
                remove: vec![],
            }
        );
        // Still scaling down to three: the drains go on.
        assert_eq!(
            worker_cleanup("vec", Some(5), 3, &pd),
            WorkerCleanup::default()
        );
    }

    #[test]
    fn a_removal_that_failed_after_the_shrink_is_retried() {
        use RegisteredState::*;
        let pd = [
            registered("vec-worker-2", Up, 3),
            registered("vec-worker-3", Draining, 0),
            registered("vec-worker-4", Down, 2),
            registered("vec-worker-5", Removed, 0),
            registered("vec-worker-6", Up, 1),
        ];
        assert_eq!(
            worker_cleanup("vec", Some(3), 3, &pd),
            WorkerCleanup {
                undrain: vec![],
                // Worker 6 still holds replicas and is Up: PD would refuse.
                remove: vec!["vec-worker-3".into(), "vec-worker-4".into()],
            }
        );
        // Scaling up to five: pods 3 and 4 come back, so they are kept and
        // their drain cancelled.
        assert_eq!(
            worker_cleanup("vec", Some(3), 5, &pd),
            WorkerCleanup {
                undrain: vec!["vec-worker-3".into()],
                remove: vec![],
            }
        );
        assert_eq!(
            worker_cleanup("vec", None, 3, &pd),
            WorkerCleanup::default()
        );
    }
}
