//! What every pod of a cluster shares: object metadata with labels and the
//! owner reference, the restricted security contexts, the scheduling
//! constraints from the spec (cluster-wide, overridden per role) and the
//! common environment. Pure.

use serde_json::{Value, json};

use super::BuildInput;
use crate::crd::SchedulingSpec;
use crate::labels::{self, Component};

/// User and group the image runs as (the distroless `nonroot` user).
pub const RUN_AS: i64 = 65532;

/// Metadata of an object named `name` belonging to `component`.
pub fn metadata(input: &BuildInput, name: &str, component: Option<Component>) -> Value {
    let labels = match component {
        Some(component) => labels::component_labels(&input.name, component),
        None => labels::cluster_labels(&input.name),
    };
    json!({
        "name": name,
        "namespace": input.namespace,
        "labels": labels,
        "ownerReferences": [super::owner(input)],
    })
}

/// Pod-level security: non-root, RuntimeDefault seccomp, volumes owned by
/// the run-as group.
pub fn pod_security() -> Value {
    json!({
        "runAsNonRoot": true,
        "runAsUser": RUN_AS,
        "runAsGroup": RUN_AS,
        "fsGroup": RUN_AS,
        // Re-own a volume only when its root is not already the pod's
        // group: a recursive chown of a large data volume delays every
        // restart.
        "fsGroupChangePolicy": "OnRootMismatch",
        "seccompProfile": {"type": "RuntimeDefault"},
    })
}

/// Container-level security of the restricted Pod Security Standard.
pub fn container_security() -> Value {
    json!({
        "allowPrivilegeEscalation": false,
        "readOnlyRootFilesystem": true,
        "runAsNonRoot": true,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    })
}

/// Environment every container gets: its pod name and namespace (for
/// advertised addresses) and the cluster's shared settings.
pub fn env() -> Value {
    json!([
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
    ])
}

/// `envFrom` of the shared ConfigMap.
pub fn env_from(input: &BuildInput) -> Value {
    json!([{"configMapRef": {"name": labels::config_name(&input.name)}}])
}

/// Where `component`'s pods may run: the cluster-wide placement with the
/// role's own fields in place of the ones it sets.
pub fn scheduling(input: &BuildInput, component: Component) -> SchedulingSpec {
    let spec = &input.spec;
    let role = match component {
        Component::Pd => spec.pd.scheduling.as_ref(),
        Component::Worker => spec.workers.scheduling.as_ref(),
        Component::Gateway => spec.gateway.scheduling.as_ref(),
        Component::Auth => spec.auth.scheduling.as_ref(),
    };
    spec.scheduling.overridden_by(role)
}

/// A pod template for `component` running `container` with `volumes`.
pub fn template(
    input: &BuildInput,
    component: Component,
    container: Value,
    volumes: Vec<Value>,
) -> Value {
    let scheduling = &scheduling(input, component);
    let selector = labels::selector(&input.name, component);
    let spread: Vec<Value> = scheduling
        .topology_spread_constraints
        .iter()
        .map(|c| {
            let mut c = serde_json::to_value(c).unwrap_or(Value::Null);
            if c.get("labelSelector").is_none() {
                c["labelSelector"] = json!({"matchLabels": selector});
            }
            c
        })
        .collect();
    let mut volumes = volumes;
    volumes.extend(super::tls::volume(input, component));
    let mut spec = json!({
        "automountServiceAccountToken": false,
        "enableServiceLinks": false,
        "securityContext": pod_security(),
        "terminationGracePeriodSeconds": 30,
        "containers": [container],
        "volumes": volumes,
    });
    if !scheduling.node_selector.is_empty() {
        spec["nodeSelector"] = json!(scheduling.node_selector);
    }
    if !scheduling.tolerations.is_empty() {
        spec["tolerations"] = json!(scheduling.tolerations);
    }
    if let Some(affinity) = &scheduling.affinity {
        spec["affinity"] = json!(affinity);
    }
    if !spread.is_empty() {
        spec["topologySpreadConstraints"] = json!(spread);
    }
    if let Some(priority) = &scheduling.priority_class_name {
        spec["priorityClassName"] = json!(priority);
    }
    json!({
        "metadata": {"labels": labels::component_labels(&input.name, component)},
        "spec": spec,
    })
}

/// A container of the single image running `args`.
pub fn container(
    input: &BuildInput,
    component: Component,
    args: Vec<String>,
    ports: Value,
    probes: Value,
    mounts: Vec<Value>,
    resources: Option<&k8s_openapi::api::core::v1::ResourceRequirements>,
) -> Value {
    let mut env = env();
    if let Value::Array(env) = &mut env {
        env.extend(super::tls::env(input));
    }
    let mut mounts = mounts;
    mounts.extend(super::tls::mount(input));
    let mut container = json!({
        "name": component.as_str(),
        "image": input.spec.image,
        "imagePullPolicy": input.spec.image_pull_policy.as_str(),
        "args": args,
        "ports": ports,
        "env": env,
        "envFrom": env_from(input),
        "securityContext": container_security(),
        "volumeMounts": mounts,
    });
    if let Some(resources) = resources {
        container["resources"] = json!(resources);
    }
    if let (Value::Object(target), Value::Object(probes)) = (&mut container, probes) {
        target.extend(probes);
    }
    container
}

/// TCP probes for a gRPC-only role listening on `port`.
pub fn tcp_probes(port: i32) -> Value {
    json!({
        "startupProbe": {"tcpSocket": {"port": port}, "periodSeconds": 2, "failureThreshold": 90},
        "livenessProbe": {"tcpSocket": {"port": port}, "periodSeconds": 10, "failureThreshold": 6},
        "readinessProbe": {"tcpSocket": {"port": port}, "periodSeconds": 5},
    })
}

/// The scratch volume mounted at `/tmp` (the root filesystem is read-only).
pub fn tmp_volume() -> (Value, Value) {
    (
        json!({"name": "tmp", "emptyDir": {}}),
        json!({"name": "tmp", "mountPath": "/tmp"}),
    )
}
