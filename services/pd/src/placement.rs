//! Where a new collection's replicas go: each shard's replicas on distinct
//! workers, in distinct zones when zones allow, spreading replica and
//! preferred-leader counts evenly. Pure and deterministic: the same state
//! always yields the same placement, which Raft replication relies on.

use std::collections::BTreeSet;

use vectron_ids::WorkerId;

use crate::error::{PdError, Result};

/// A worker that can take replicas, with its current load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The worker.
    pub id: WorkerId,
    /// Its zone ("" when unknown; every unknown zone counts as its own).
    pub zone: String,
    /// Replicas it hosts now.
    pub replicas: usize,
    /// Shards for which it is the preferred leader now.
    pub leaders: usize,
}

/// Places `shards` shards of `replication_factor` replicas each. Returns, per
/// shard, its workers with the preferred leader first.
pub fn place(
    mut candidates: Vec<Candidate>,
    shards: u32,
    replication_factor: u32,
) -> Result<Vec<Vec<WorkerId>>> {
    let rf = replication_factor as usize;
    if candidates.len() < rf {
        return Err(PdError::invalid(
            "replication_factor",
            format!(
                "{rf} replicas per shard need {rf} live workers, but {} are up",
                candidates.len()
            ),
        ));
    }
    candidates.sort_by_key(|c| c.id);
    let mut placement = Vec::with_capacity(shards as usize);
    for _ in 0..shards {
        let mut chosen: Vec<usize> = Vec::with_capacity(rf);
        let mut zones: BTreeSet<&str> = BTreeSet::new();
        for _ in 0..rf {
            let pick = (0..candidates.len())
                .filter(|i| !chosen.contains(i))
                .min_by_key(|&i| {
                    let c = &candidates[i];
                    let zone_taken = !c.zone.is_empty() && zones.contains(c.zone.as_str());
                    (zone_taken, c.replicas, c.leaders, c.id)
                })
                .expect("enough candidates were checked above");
            chosen.push(pick);
            if !candidates[pick].zone.is_empty() {
                zones.insert(candidates[pick].zone.as_str());
            }
        }
        for &i in &chosen {
            candidates[i].replicas += 1;
        }
        let leader_slot = (0..chosen.len())
            .min_by_key(|&slot| {
                let c = &candidates[chosen[slot]];
                (c.leaders, c.id)
            })
            .expect("a shard has at least one replica");
        chosen.swap(0, leader_slot);
        candidates[chosen[0]].leaders += 1;
        placement.push(chosen.iter().map(|&i| candidates[i].id).collect());
    }
    Ok(placement)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn workers(zones: &[&str]) -> Vec<Candidate> {
        zones
            .iter()
            .enumerate()
            .map(|(i, zone)| Candidate {
                id: WorkerId(i as u64 + 1),
                zone: (*zone).into(),
                replicas: 0,
                leaders: 0,
            })
            .collect()
    }

    fn counts(
        placement: &[Vec<WorkerId>],
    ) -> (BTreeMap<WorkerId, usize>, BTreeMap<WorkerId, usize>) {
        let mut replicas = BTreeMap::new();
        let mut leaders = BTreeMap::new();
        for shard in placement {
            *leaders.entry(shard[0]).or_default() += 1;
            for w in shard {
                *replicas.entry(*w).or_default() += 1;
            }
        }
        (replicas, leaders)
    }

    fn spread(counts: &BTreeMap<WorkerId, usize>, workers: usize) -> usize {
        let max = counts.values().max().copied().unwrap_or(0);
        let min = if counts.len() < workers {
            0
        } else {
            counts.values().min().copied().unwrap_or(0)
        };
        max - min
    }

    #[test]
    fn replicas_are_distinct_and_balanced() {
        for (n, shards, rf) in [(3, 6, 3), (4, 6, 3), (5, 7, 2), (7, 100, 3), (3, 1, 1)] {
            let placement = place(workers(&vec![""; n]), shards, rf).expect("enough workers");
            assert_eq!(placement.len(), shards as usize);
            for shard in &placement {
                let distinct: BTreeSet<_> = shard.iter().collect();
                assert_eq!(distinct.len(), rf as usize, "{shard:?}");
            }
            let (replicas, leaders) = counts(&placement);
            assert!(spread(&replicas, n) <= 1, "replicas {replicas:?}");
            assert!(spread(&leaders, n) <= 1, "leaders {leaders:?}");
        }
    }

    #[test]
    fn zones_are_distinct_when_possible() {
        let placement = place(workers(&["a", "a", "b", "b", "c", "c"]), 12, 3).expect("ok");
        let zone_of = |w: WorkerId| ["a", "a", "b", "b", "c", "c"][(w.0 - 1) as usize];
        for shard in &placement {
            let zones: BTreeSet<_> = shard.iter().map(|w| zone_of(*w)).collect();
            assert_eq!(zones.len(), 3, "{shard:?}");
        }
        // Two zones for three replicas: still placed, on distinct workers.
        let placement = place(workers(&["a", "a", "b"]), 2, 3).expect("ok");
        assert!(
            placement
                .iter()
                .all(|s| s.iter().collect::<BTreeSet<_>>().len() == 3)
        );
    }

    #[test]
    fn existing_load_is_taken_into_account() {
        let mut candidates = workers(&["", "", ""]);
        candidates[0].replicas = 10;
        let placement = place(candidates, 2, 2).expect("ok");
        assert!(
            placement.iter().all(|s| !s.contains(&WorkerId(1))),
            "{placement:?}"
        );
    }

    #[test]
    fn deterministic_regardless_of_input_order() {
        let a = workers(&["x", "y", "z", "x"]);
        let mut b = a.clone();
        b.reverse();
        assert_eq!(place(a, 9, 3).expect("ok"), place(b, 9, 3).expect("ok"));
    }

    #[test]
    fn too_few_workers_names_replication_factor() {
        match place(workers(&["", ""]), 1, 3) {
            Err(PdError::InvalidArgument { field, message }) => {
                assert_eq!(field, "replication_factor");
                assert!(message.contains("2 are up"), "{message}");
            }
            other => panic!("expected InvalidArgument, got {other:?}"),
        }
    }
}
