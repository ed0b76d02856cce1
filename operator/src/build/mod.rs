//! The desired Kubernetes objects of a VectronCluster, computed from its
//! spec and the few facts that must not change once the cluster exists
//! (PD's founding members, the volume claim templates, the generated
//! secrets). Pure: no I/O, no clock, no randomness; the same input always
//! gives the same objects, so the apply step can diff and tests can pin
//! them.

mod config;

pub use config::{ADMIN_PASSWORD_KEY, JWT_KEY, pd_endpoint};
pub use gateway::AUTH_REPLICAS;
mod gateway;
mod pd;
mod pod;
mod policy;
pub mod tls;
mod worker;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use serde::de::DeserializeOwned;

use crate::crd::VectronClusterSpec;

/// Ports every role listens on inside its pod.
pub mod ports {
    /// PD API and Raft.
    pub const PD: i32 = 7400;
    /// Worker API and shard Raft.
    pub const WORKER: i32 = 7500;
    /// Auth service.
    pub const AUTH: i32 = 7600;
    /// PD Prometheus metrics.
    pub const PD_METRICS: i32 = 7401;
    /// Gateway Prometheus metrics.
    pub const GATEWAY_METRICS: i32 = 7335;
}

/// What the builders work from.
#[derive(Debug, Clone)]
pub struct BuildInput {
    /// Cluster name.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// Its UID, for owner references.
    pub uid: String,
    /// The validated spec.
    pub spec: VectronClusterSpec,
    /// Facts kept from earlier reconciles.
    pub kept: Kept,
    /// The namespace the operator runs in (its pods alone may reach PD
    /// from outside the cluster's own pods).
    pub operator_namespace: String,
    /// The smallest replication factor among the cluster's Collections
    /// (None without any): the workers' disruption budget follows it.
    pub smallest_replication_factor: Option<i32>,
}

/// Facts of an existing cluster that later reconciles must reuse: changing
/// them would break the cluster or be refused by the apiserver.
#[derive(Debug, Clone, Default)]
pub struct Kept {
    /// PD voters the cluster was founded with; later PD pods join them.
    pub pd_founders: Option<i32>,
    /// The PD StatefulSet's volume claim templates, once it exists.
    pub pd_claims: Option<Vec<PersistentVolumeClaim>>,
    /// The worker StatefulSet's volume claim templates, once it exists.
    pub worker_claims: Option<Vec<PersistentVolumeClaim>>,
    /// The JWT signing key (generated once by the apply step).
    pub jwt_key: String,
    /// The generated admin password (when no Secret is referenced).
    pub admin_password: String,
    /// The internal CA and role certificates the operator issued (mode
    /// Operator).
    pub internal_pki: Option<crate::pki::ClusterPki>,
}

/// Every object of a cluster.
#[derive(Debug, Clone, Default)]
pub struct Desired {
    /// Shared settings.
    pub config_maps: Vec<ConfigMap>,
    /// JWT key and generated admin password.
    pub secrets: Vec<Secret>,
    /// Client and headless Services.
    pub services: Vec<Service>,
    /// PD and workers.
    pub stateful_sets: Vec<StatefulSet>,
    /// Gateways and auth.
    pub deployments: Vec<Deployment>,
    /// Disruption budgets.
    pub disruption_budgets: Vec<PodDisruptionBudget>,
    /// Allowed traffic.
    pub network_policies: Vec<NetworkPolicy>,
    /// cert-manager Certificates (internal TLS mode CertManager).
    pub certificates: Vec<kube::api::DynamicObject>,
}

/// Builds every object of the cluster.
pub fn desired(input: &BuildInput) -> Desired {
    let mut desired = Desired::default();
    config::build(input, &mut desired);
    tls::build(input, &mut desired);
    pd::build(input, &mut desired);
    worker::build(input, &mut desired);
    gateway::build(input, &mut desired);
    policy::build(input, &mut desired);
    desired
}

/// The owner reference making the cluster own an object.
pub(crate) fn owner(input: &BuildInput) -> OwnerReference {
    OwnerReference {
        api_version: format!("{}/{}", crate::API_GROUP, crate::API_VERSION),
        kind: "VectronCluster".into(),
        name: input.name.clone(),
        uid: input.uid.clone(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// Deserialises an object written as JSON; the builders' JSON is fixed by
/// the code, so a failure is a bug caught by the builder tests.
pub(crate) fn typed<T: DeserializeOwned>(value: serde_json::Value) -> T {
    match serde_json::from_value(value) {
        Ok(object) => object,
        Err(e) => panic!("builder produced an invalid object: {e}"),
    }
}
