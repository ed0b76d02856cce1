//! The workers: a StatefulSet whose pods register with PD under their pod
//! name (so a restarted pod keeps its identity and data) and a headless
//! Service for the shard Raft traffic between them and the gateways'
//! calls. Each worker's failure zone comes from its node's zone label.
//! Scale-down is not decided here: the reconcile drains the pods
//! that will go before this replica count is lowered. Pure.

use serde_json::json;

use super::pd::{claim, data_mount, headless_service, stateful_set};
use super::{BuildInput, Desired, pod, ports, typed};
use crate::labels::{self, Component};

/// The node label Kubernetes copies onto a pod when it is bound to a node
/// (Node Topology Labels via Downward API, on by default since 1.35).
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

/// `VECTRON_ZONE` (the worker's `--zone`) from the pod's copy of its node's
/// zone label, so PD spreads each shard's replicas across zones. Where the
/// API server does not copy the label the value is empty and the worker
/// has no zone.
fn zone_env() -> serde_json::Value {
    json!({
        "name": "VECTRON_ZONE",
        "valueFrom": {"fieldRef": {"fieldPath": format!("metadata.labels['{ZONE_LABEL}']")}},
    })
}

pub(super) fn build(input: &BuildInput, desired: &mut Desired) {
    let component = Component::Worker;
    let advertise = format!(
        "$(POD_NAME).{}.$(POD_NAMESPACE).svc:{}",
        labels::headless_name(&input.name, component),
        ports::WORKER
    );
    let args: Vec<String> = [
        "worker",
        "--name",
        "$(POD_NAME)",
        "--addr",
        &format!("0.0.0.0:{}", ports::WORKER),
        "--advertise-addr",
        &advertise,
        "--data-dir",
        "/data",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let (tmp, tmp_mount) = pod::tmp_volume();
    let mut container = pod::container(
        input,
        component,
        args,
        json!([{"name": "grpc", "containerPort": ports::WORKER, "protocol": "TCP"}]),
        pod::tcp_probes(ports::WORKER),
        vec![data_mount(), tmp_mount],
        input.spec.workers.resources.as_ref(),
    );
    if let Some(serde_json::Value::Array(env)) = container.get_mut("env") {
        env.push(zone_env());
    }
    let claims = input
        .kept
        .worker_claims
        .clone()
        .unwrap_or_else(|| vec![claim(&input.spec.workers.storage)]);
    desired
        .services
        .push(typed(headless_service(input, component, ports::WORKER)));
    desired.stateful_sets.push(stateful_set(
        input,
        component,
        input.spec.workers.replicas,
        pod::template(input, component, container, vec![tmp]),
        claims,
    ));
}
