//! The placement driver: a StatefulSet whose pod `N` is PD node `N+1`, a
//! headless Service giving each pod a stable DNS name (published before the
//! pods are ready, so Raft peers find each other) and a client Service.
//! The founding members are fixed when the cluster is created; PD pods
//! added later join them. Pure.

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use serde_json::{Value, json};

use super::{BuildInput, Desired, pod, ports, typed};
use crate::crd::StorageSpec;
use crate::labels::{self, Component};

/// `1=<pod-0 dns>:7400,2=…`: the PD founders, by stable DNS name.
pub fn initial_members(input: &BuildInput) -> String {
    let founders = input.kept.pd_founders.unwrap_or(input.spec.pd.replicas);
    (0..founders)
        .map(|ordinal| {
            format!(
                "{}={}:{}",
                ordinal + 1,
                labels::pod_dns(&input.name, &input.namespace, Component::Pd, ordinal),
                ports::PD
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The volume claim template of a StatefulSet's data volume.
pub fn claim(storage: &StorageSpec) -> PersistentVolumeClaim {
    let mut spec = json!({
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": storage.size}},
    });
    if let Some(class) = &storage.storage_class_name {
        spec["storageClassName"] = json!(class);
    }
    typed(json!({"metadata": {"name": "data"}, "spec": spec}))
}

/// A headless Service for `component`'s StatefulSet.
pub fn headless_service(input: &BuildInput, component: Component, port: i32) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": pod::metadata(input, &labels::headless_name(&input.name, component), Some(component)),
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": true,
            "selector": labels::selector(&input.name, component),
            "ports": [{"name": "grpc", "port": port, "targetPort": port, "protocol": "TCP"}],
        },
    })
}

/// A ClusterIP Service for `component`.
pub fn client_service(input: &BuildInput, component: Component, ports: Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": pod::metadata(input, &labels::object_name(&input.name, component), Some(component)),
        "spec": {
            "type": "ClusterIP",
            "selector": labels::selector(&input.name, component),
            "ports": ports,
        },
    })
}

/// The StatefulSet of `component`: pods started in parallel (PD founders
/// must all start for the group to form), stable DNS through the headless
/// Service, claims deleted when a pod is scaled away (its data has moved or
/// its PD node has left the group).
pub fn stateful_set(
    input: &BuildInput,
    component: Component,
    replicas: i32,
    template: Value,
    claims: Vec<PersistentVolumeClaim>,
) -> k8s_openapi::api::apps::v1::StatefulSet {
    typed(json!({
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": pod::metadata(input, &labels::object_name(&input.name, component), Some(component)),
        "spec": {
            "replicas": replicas,
            "serviceName": labels::headless_name(&input.name, component),
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": labels::selector(&input.name, component)},
            "template": template,
            "volumeClaimTemplates": claims,
            "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Delete"},
        },
    }))
}

/// The data volume mount.
pub fn data_mount() -> Value {
    json!({"name": "data", "mountPath": "/data"})
}

pub(super) fn build(input: &BuildInput, desired: &mut Desired) {
    let component = Component::Pd;
    let advertise = format!(
        "$(POD_NAME).{}.$(POD_NAMESPACE).svc:{}",
        labels::headless_name(&input.name, component),
        ports::PD
    );
    let args: Vec<String> = [
        "pd",
        "--node-id-from-ordinal",
        "--addr",
        &format!("0.0.0.0:{}", ports::PD),
        "--advertise-addr",
        &advertise,
        "--initial-members",
        &initial_members(input),
        "--data-dir",
        "/data",
        "--metrics-addr",
        &format!("0.0.0.0:{}", ports::PD_METRICS),
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let (tmp, tmp_mount) = pod::tmp_volume();
    let container = pod::container(
        input,
        component,
        args,
        json!([
            {"name": "grpc", "containerPort": ports::PD, "protocol": "TCP"},
            {"name": "metrics", "containerPort": ports::PD_METRICS, "protocol": "TCP"},
        ]),
        pod::tcp_probes(ports::PD),
        vec![data_mount(), tmp_mount],
        input.spec.pd.resources.as_ref(),
    );
    let claims = input
        .kept
        .pd_claims
        .clone()
        .unwrap_or_else(|| vec![claim(&input.spec.pd.storage)]);
    desired
        .services
        .push(typed(headless_service(input, component, ports::PD)));
    desired.services.push(typed(client_service(
        input,
        component,
        json!([{"name": "grpc", "port": ports::PD, "targetPort": ports::PD, "protocol": "TCP"}]),
    )));
    // A PD pod scaled away has left the Raft group first; its old state
    // must not come back with a later pod of that ordinal.
    desired.stateful_sets.push(stateful_set(
        input,
        component,
        input.spec.pd.replicas,
        pod::template(input, component, container, vec![tmp]),
        claims,
    ));
}
