//! Disruption budgets and network policies. Budgets follow the quorums:
//! PD keeps a majority of its voters; workers lose at most as many pods at
//! once as the smallest collection's replica set survives losing. Network
//! policies admit only the traffic the design needs: Raft among PD nodes
//! and among workers, every role to PD, gateways to workers and auth, the
//! operator to PD, clients to gateways, scrapers to metrics ports. Pure.

use serde_json::{Value, json};

use super::{BuildInput, Desired, pod, ports, typed};
use crate::crd::ServiceType;
use crate::labels::{self, COMPONENT, Component, INSTANCE, NAME};

fn budget(input: &BuildInput, component: Component, rule: Value) -> Value {
    let mut spec = json!({"selector": {"matchLabels": labels::selector(&input.name, component)}});
    if let (Value::Object(spec), Value::Object(rule)) = (&mut spec, rule) {
        spec.extend(rule);
    }
    json!({
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": pod::metadata(input, &labels::object_name(&input.name, component), Some(component)),
        "spec": spec,
    })
}

/// Pods of this cluster with one of `components`.
fn peers(input: &BuildInput, components: &[Component]) -> Value {
    json!({"podSelector": {
        "matchLabels": {NAME: "vectron", INSTANCE: input.name},
        "matchExpressions": [{
            "key": COMPONENT,
            "operator": "In",
            "values": components.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
        }],
    }})
}

fn tcp(port: i32) -> Value {
    json!({"protocol": "TCP", "port": port})
}

/// Any pod in any namespace (clients, Prometheus).
fn anyone() -> Value {
    json!({"namespaceSelector": {}})
}

/// The label every namespace carries with its own name.
const NAMESPACE_NAME: &str = "kubernetes.io/metadata.name";

/// Who may reach the gateway. Behind a LoadBalancer or NodePort Service
/// clients come from outside the cluster, which `namespaceSelector` cannot
/// match, so the API ports admit every source; behind a ClusterIP Service
/// only pods can reach them. Metrics stay open to pods (scrapers) only.
fn gateway_ingress(input: &BuildInput) -> Value {
    let service = &input.spec.gateway.service;
    let api_ports = json!([tcp(service.http_port), tcp(service.grpc_port)]);
    let api = match service.type_ {
        ServiceType::LoadBalancer | ServiceType::NodePort => json!({"ports": api_ports}),
        ServiceType::ClusterIP => json!({"from": [anyone()], "ports": api_ports}),
    };
    json!([api, {"from": [anyone()], "ports": [tcp(ports::GATEWAY_METRICS)]}])
}

fn network_policy(input: &BuildInput, component: Component, ingress: Value) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": pod::metadata(input, &labels::object_name(&input.name, component), Some(component)),
        "spec": {
            "podSelector": {"matchLabels": labels::selector(&input.name, component)},
            "policyTypes": ["Ingress"],
            "ingress": ingress,
        },
    })
}

/// Worker pods a voluntary disruption (a node drain) may take at once: as
/// many as the smallest replica set survives losing, (rf − 1) / 2. Under a
/// factor of 3 that is none: losing one replica of a factor 1 or 2 shard
/// already stops it, so evictions wait until someone decides (raises the
/// factor, or deletes the pod accepting the outage). Without collections,
/// one at a time.
pub fn workers_may_be_unavailable(smallest_replication_factor: Option<i32>) -> i32 {
    match smallest_replication_factor {
        Some(rf) => (rf.max(1) - 1) / 2,
        None => 1,
    }
}

pub(super) fn build(input: &BuildInput, desired: &mut Desired) {
    let pd_quorum = input.spec.pd.replicas / 2 + 1;
    let mut budgets = Vec::new();
    // A single PD member has no quorum to protect: a budget of
    // minAvailable 1 would only block every node drain for ever.
    if input.spec.pd.replicas > 1 {
        budgets.push(budget(
            input,
            Component::Pd,
            json!({"minAvailable": pd_quorum}),
        ));
    }
    budgets.push(budget(
        input,
        Component::Worker,
        json!({"maxUnavailable": workers_may_be_unavailable(input.smallest_replication_factor)}),
    ));
    budgets.push(budget(
        input,
        Component::Gateway,
        json!({"maxUnavailable": 1}),
    ));
    if input.spec.auth.enabled {
        budgets.push(budget(input, Component::Auth, json!({"maxUnavailable": 1})));
    }
    desired
        .disruption_budgets
        .extend(budgets.into_iter().map(typed));

    // The operator's pods, in the operator's namespace only: a pod that
    // carries the operator's label elsewhere is not the operator.
    let operator = json!({
        "namespaceSelector": {"matchLabels": {NAMESPACE_NAME: input.operator_namespace}},
        "podSelector": {"matchLabels": {NAME: "vectron-operator"}},
    });
    let mut policies = vec![
        network_policy(
            input,
            Component::Pd,
            json!([
                {"from": [peers(input, &Component::ALL), operator], "ports": [tcp(ports::PD)]},
                {"from": [anyone()], "ports": [tcp(ports::PD_METRICS)]},
            ]),
        ),
        network_policy(
            input,
            Component::Worker,
            json!([{
                "from": [peers(input, &[Component::Worker, Component::Gateway])],
                "ports": [tcp(ports::WORKER)],
            }]),
        ),
        network_policy(input, Component::Gateway, gateway_ingress(input)),
    ];
    if input.spec.auth.enabled {
        policies.push(network_policy(
            input,
            Component::Auth,
            json!([{"from": [peers(input, &[Component::Gateway])], "ports": [tcp(ports::AUTH)]}]),
        ));
    }
    desired
        .network_policies
        .extend(policies.into_iter().map(typed));
}
