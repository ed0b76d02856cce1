//! The workers: a StatefulSet whose pods register with PD under their pod
//! name (so a restarted pod keeps its identity and data) and a headless
//! Service for the shard Raft traffic between them and the gateways'
//! calls. Scale-down is not decided here: the reconcile drains the pods
//! that will go before this replica count is lowered. Pure.

use serde_json::json;

use super::pd::{claim, data_mount, headless_service, stateful_set};
use super::{BuildInput, Desired, pod, ports, typed};
use crate::labels::{self, Component};

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
    let container = pod::container(
        input,
        component,
        args,
        json!([{"name": "grpc", "containerPort": ports::WORKER, "protocol": "TCP"}]),
        pod::tcp_probes(ports::WORKER),
        vec![data_mount(), tmp_mount],
        input.spec.workers.resources.as_ref(),
    );
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
