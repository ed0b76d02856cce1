//! The status of a VectronCluster from what was observed, pure: phase,
//! per-role readiness and the Available / Progressing / Degraded
//! conditions, each stamped with the generation it describes. A
//! condition's transition time only moves when its status does.

use crate::crd::{
    ClusterPhase, Condition, GatewayStatus, PdStatus, VectronClusterStatus, WorkersStatus,
};

/// What the reconcile observed this round.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// Generation of the spec reconciled.
    pub generation: Option<i64>,
    /// Desired and ready PD pods.
    pub pd: (i32, i32),
    /// Worker pods the StatefulSet runs and how many are ready.
    pub workers: (i32, i32),
    /// Desired and ready gateway pods.
    pub gateway: (i32, i32),
    /// Desired and ready auth pods; (0, 0) when auth is off.
    pub auth: (i32, i32),
    /// Workers being drained before a scale-down.
    pub draining: Vec<String>,
    /// The gateway's in-cluster endpoint.
    pub endpoint: Option<String>,
    /// Why the spec cannot be reconciled, if it cannot.
    pub invalid: Option<String>,
    /// A Secret the spec references that does not exist or lacks the key
    /// (the pods that read it cannot start); everything else was applied.
    pub missing_secret: Option<String>,
    /// The PD-facing steps (member removal, drains) that failed this
    /// round, and why; every other change was still applied.
    pub pd_unreachable: Option<String>,
}

/// Condition type, True while PD-facing steps are held back because PD
/// could not be reached or refused.
pub const PD_UNREACHABLE: &str = "PdUnreachable";

/// Condition `type_` with status True when `on`, keeping the previous
/// transition time when its status did not change.
pub fn condition(
    previous: &[Condition],
    type_: &str,
    on: bool,
    reason: &str,
    message: String,
    generation: Option<i64>,
    now: &str,
) -> Condition {
    let status = if on { "True" } else { "False" };
    let since = previous
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| now.to_owned());
    Condition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: reason.to_owned(),
        message,
        last_transition_time: since,
        observed_generation: generation,
    }
}

/// The status for `observed`, given the `previous` one, at time `now`
/// (RFC 3339).
pub fn cluster_status(
    previous: Option<&VectronClusterStatus>,
    observed: &Observed,
    now: &str,
) -> VectronClusterStatus {
    let prior: &[Condition] = previous.map_or(&[], |s| s.conditions.as_slice());
    let generation = observed.generation;
    let summary = |(want, ready): (i32, i32)| format!("{ready}/{want}");
    let all_ready = [observed.pd, observed.workers, observed.gateway]
        .iter()
        .all(|(want, ready)| ready >= want && *want > 0)
        && observed.auth.1 >= observed.auth.0;
    let readiness = || {
        let mut text = format!(
            "PD {}, workers {}, gateways {}",
            summary(observed.pd),
            summary(observed.workers),
            summary(observed.gateway)
        );
        if observed.auth.0 > 0 {
            text.push_str(&format!(", auth {}", summary(observed.auth)));
        }
        text + " ready"
    };
    let scaling = !observed.draining.is_empty();
    let was_running = previous.is_some_and(|s| {
        matches!(
            s.phase,
            ClusterPhase::Running | ClusterPhase::Scaling | ClusterPhase::Degraded
        )
    });
    let broken = observed.invalid.is_some() || observed.missing_secret.is_some();
    let phase = match (broken, all_ready, scaling) {
        (true, _, _) => ClusterPhase::Degraded,
        (false, _, true) => ClusterPhase::Scaling,
        (false, true, false) => ClusterPhase::Running,
        (false, false, false) if was_running => ClusterPhase::Degraded,
        (false, false, false) => ClusterPhase::Creating,
    };
    let (progress_reason, progress_message) = if scaling {
        (
            "DrainingWorkers",
            format!(
                "waiting for PD to move every replica off {}",
                observed.draining.join(", ")
            ),
        )
    } else if all_ready {
        ("Reconciled", "every role is ready".to_owned())
    } else {
        ("PodsStarting", readiness())
    };
    let (degraded, degraded_reason, degraded_message) =
        match (&observed.invalid, &observed.missing_secret) {
            (Some(why), _) => (true, "InvalidSpec", why.clone()),
            (None, Some(why)) => (true, "SecretMissing", why.clone()),
            (None, None) if !all_ready && was_running => (true, "PodsNotReady", readiness()),
            (None, None) => (false, "AsExpected", "nothing is wrong".to_owned()),
        };
    let conditions = vec![
        condition(
            prior,
            "Available",
            all_ready && observed.invalid.is_none(),
            if all_ready {
                "AllRolesReady"
            } else {
                "NotReady"
            },
            readiness(),
            generation,
            now,
        ),
        condition(
            prior,
            "Progressing",
            scaling || (!all_ready && observed.invalid.is_none()),
            progress_reason,
            progress_message,
            generation,
            now,
        ),
        condition(
            prior,
            "Degraded",
            degraded,
            degraded_reason,
            degraded_message,
            generation,
            now,
        ),
        match &observed.pd_unreachable {
            Some(why) => condition(
                prior,
                PD_UNREACHABLE,
                true,
                "PdCallsFailed",
                why.clone(),
                generation,
                now,
            ),
            None => condition(
                prior,
                PD_UNREACHABLE,
                false,
                "PdAnswered",
                "every PD-facing step went through".to_owned(),
                generation,
                now,
            ),
        },
    ];
    VectronClusterStatus {
        observed_generation: generation,
        phase,
        conditions,
        pd: Some(PdStatus {
            replicas: observed.pd.0,
            ready: observed.pd.1,
            leader: previous
                .and_then(|s| s.pd.as_ref())
                .and_then(|p| p.leader.clone()),
            summary: summary(observed.pd),
        }),
        workers: Some(WorkersStatus {
            replicas: observed.workers.0,
            ready: observed.workers.1,
            draining: observed.draining.clone(),
            summary: summary(observed.workers),
        }),
        gateway: Some(GatewayStatus {
            ready: observed.gateway.1,
            endpoint: observed.endpoint.clone(),
            summary: summary(observed.gateway),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observed(ready: i32) -> Observed {
        Observed {
            generation: Some(2),
            pd: (3, ready.min(3)),
            workers: (3, ready.min(3)),
            gateway: (2, ready.min(2)),
            ..Observed::default()
        }
    }

    fn find<'a>(s: &'a VectronClusterStatus, t: &str) -> &'a Condition {
        s.conditions
            .iter()
            .find(|c| c.type_ == t)
            .expect("condition")
    }

    #[test]
    fn phases_follow_readiness_draining_and_validity() {
        let creating = cluster_status(None, &observed(0), "t0");
        assert_eq!(creating.phase, ClusterPhase::Creating);
        assert_eq!(find(&creating, "Progressing").status, "True");
        let running = cluster_status(Some(&creating), &observed(3), "t1");
        assert_eq!(running.phase, ClusterPhase::Running);
        assert_eq!(find(&running, "Available").status, "True");
        assert_eq!(running.pd.as_ref().map(|p| p.summary.as_str()), Some("3/3"));
        let mut draining = observed(3);
        draining.draining = vec!["vec-worker-3".into()];
        let scaling = cluster_status(Some(&running), &draining, "t2");
        assert_eq!(scaling.phase, ClusterPhase::Scaling);
        assert_eq!(find(&scaling, "Progressing").reason, "DrainingWorkers");
        let lost = cluster_status(Some(&running), &observed(1), "t3");
        assert_eq!(lost.phase, ClusterPhase::Degraded);
        assert_eq!(find(&lost, "Degraded").reason, "PodsNotReady");
        let mut invalid = observed(3);
        invalid.invalid = Some("spec.pd.replicas: must be odd".into());
        let bad = cluster_status(Some(&running), &invalid, "t4");
        assert_eq!(bad.phase, ClusterPhase::Degraded);
        assert_eq!(
            find(&bad, "Degraded").message,
            "spec.pd.replicas: must be odd"
        );
        assert_eq!(find(&bad, "Degraded").observed_generation, Some(2));
        assert_eq!(find(&bad, PD_UNREACHABLE).status, "False");
        let mut cut_off = draining.clone();
        cut_off.pd_unreachable = Some("draining vec-worker-3: PD unreachable: dns".into());
        let held = cluster_status(Some(&scaling), &cut_off, "t5");
        assert_eq!(held.phase, ClusterPhase::Scaling);
        let trouble = find(&held, PD_UNREACHABLE);
        assert_eq!(
            (trouble.status.as_str(), trouble.reason.as_str()),
            ("True", "PdCallsFailed")
        );
        assert!(
            trouble.message.contains("vec-worker-3"),
            "{}",
            trouble.message
        );
    }

    #[test]
    fn a_missing_secret_degrades_a_new_cluster_and_says_which() {
        let mut missing = observed(0);
        missing.missing_secret =
            Some("spec.auth.adminPasswordSecretRef: Secret own has no non-empty key pw".into());
        let status = cluster_status(None, &missing, "t0");
        assert_eq!(status.phase, ClusterPhase::Degraded);
        let degraded = find(&status, "Degraded");
        assert_eq!(
            (degraded.status.as_str(), degraded.reason.as_str()),
            ("True", "SecretMissing")
        );
        assert!(
            degraded.message.contains("Secret own"),
            "{}",
            degraded.message
        );
        let fixed = cluster_status(Some(&status), &observed(3), "t1");
        assert_eq!(fixed.phase, ClusterPhase::Running);
        assert_eq!(find(&fixed, "Degraded").status, "False");
    }

    #[test]
    fn auth_pods_count_toward_readiness_when_auth_is_on() {
        let mut waiting = observed(3);
        waiting.auth = (2, 1);
        let status = cluster_status(None, &waiting, "t0");
        assert_eq!(status.phase, ClusterPhase::Creating);
        assert!(
            find(&status, "Available").message.contains("auth 1/2"),
            "{}",
            find(&status, "Available").message
        );
        waiting.auth = (2, 2);
        assert_eq!(
            cluster_status(None, &waiting, "t1").phase,
            ClusterPhase::Running
        );
        assert_eq!(
            cluster_status(None, &observed(3), "t1").phase,
            ClusterPhase::Running
        );
    }

    #[test]
    fn transition_times_move_only_when_a_status_changes() {
        let first = cluster_status(None, &observed(3), "t0");
        let again = cluster_status(Some(&first), &observed(3), "t9");
        assert_eq!(find(&again, "Available").last_transition_time, "t0");
        let lost = cluster_status(Some(&again), &observed(0), "t10");
        assert_eq!(find(&lost, "Available").last_transition_time, "t10");
    }
}
