//! Scaling decisions, pure: which worker pods leave when the worker count
//! goes down (the highest ordinals, as a StatefulSet removes them), whether
//! they are drained so the StatefulSet may shrink, and which PD members
//! leave when PD shrinks. The reconcile carries them out.

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
}
