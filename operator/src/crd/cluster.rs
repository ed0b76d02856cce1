//! `VectronCluster` (`vectron.io/v1alpha1`, short name `vc`): the desired
//! shape of one Vectron cluster (docs/operator.md) and the status the operator
//! reports. Defaults and the apiserver-side rules (replicas ≥ 1, PD
//! replicas odd) live in the schema, so `kubectl apply` rejects bad specs
//! before the operator sees them. Pure types; no I/O.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, ResourceRequirements, Toleration, TopologySpreadConstraint,
};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Condition;

/// The desired state of a Vectron cluster.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "vectron.io",
    version = "v1alpha1",
    kind = "VectronCluster",
    namespaced,
    status = "VectronClusterStatus",
    shortname = "vc",
    category = "vectron",
    derive = "PartialEq",
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"PD","type":"string","jsonPath":".status.pd.summary"}"#,
    printcolumn = r#"{"name":"Workers","type":"string","jsonPath":".status.workers.summary"}"#,
    printcolumn = r#"{"name":"Gateway","type":"string","jsonPath":".status.gateway.summary"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct VectronClusterSpec {
    /// The container image every role runs (`vectron pd|worker|gateway|auth`).
    #[x_kube(validation = Rule::new("self.size() > 0").message("image must not be empty"))]
    pub image: String,
    /// Kubernetes image pull policy.
    #[serde(default)]
    pub image_pull_policy: PullPolicy,
    /// The placement driver (a Raft group; an odd number of voters).
    #[serde(default)]
    pub pd: PdSpec,
    /// Workers holding shard replicas.
    #[serde(default)]
    pub workers: WorkerSpec,
    /// Stateless gateways serving REST and gRPC.
    #[serde(default)]
    pub gateway: GatewaySpec,
    /// The auth service.
    #[serde(default)]
    pub auth: AuthSpec,
    /// Where pods may run.
    #[serde(default)]
    pub scheduling: SchedulingSpec,
    /// Mutual TLS between the cluster's own processes.
    #[serde(default)]
    pub internal_tls: InternalTlsSpec,
}

/// Who issues the certificates of the cluster's internal mutual TLS.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum InternalTlsMode {
    /// The operator keeps a private CA per cluster in a Secret, issues each
    /// role's certificate from it and renews them before they expire.
    #[default]
    Operator,
    /// cert-manager issues them from `issuerRef`, through Certificate
    /// resources the operator creates.
    CertManager,
    /// Plaintext internal traffic: every internal port trusts whoever
    /// reaches it, and the NetworkPolicies are the only guard. For
    /// experiments only.
    Disabled,
}

/// The cluster's internal mutual TLS.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.mode != 'CertManager' || has(self.issuerRef)").message("internalTls.issuerRef is required when mode is CertManager"))]
pub struct InternalTlsSpec {
    /// Who issues the certificates.
    #[serde(default)]
    pub mode: InternalTlsMode,
    /// The cert-manager issuer (mode CertManager).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_ref: Option<IssuerRef>,
    /// Days each role certificate is valid; it is renewed when a third of
    /// that remains.
    #[serde(default = "default_certificate_days")]
    #[x_kube(validation = Rule::new("self >= 3 && self <= 825").message("certificateDays must be between 3 and 825"))]
    pub certificate_days: i32,
}

impl Default for InternalTlsSpec {
    fn default() -> Self {
        Self {
            mode: InternalTlsMode::default(),
            issuer_ref: None,
            certificate_days: default_certificate_days(),
        }
    }
}

/// A cert-manager Issuer or ClusterIssuer.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct IssuerRef {
    /// Its name.
    pub name: String,
    /// `Issuer` (in the cluster's namespace) or `ClusterIssuer`.
    #[serde(default = "default_issuer_kind")]
    pub kind: String,
    /// Its API group.
    #[serde(default = "default_issuer_group")]
    pub group: String,
}

fn default_certificate_days() -> i32 {
    90
}

fn default_issuer_kind() -> String {
    "Issuer".into()
}

fn default_issuer_group() -> String {
    "cert-manager.io".into()
}

/// Kubernetes image pull policy.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum PullPolicy {
    /// Always pull.
    Always,
    /// Pull when the node lacks the image.
    #[default]
    IfNotPresent,
    /// Never pull.
    Never,
}

impl PullPolicy {
    /// The value Kubernetes expects.
    pub fn as_str(self) -> &'static str {
        match self {
            PullPolicy::Always => "Always",
            PullPolicy::IfNotPresent => "IfNotPresent",
            PullPolicy::Never => "Never",
        }
    }
}

/// A persistent volume per pod.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StorageSpec {
    /// Volume size, e.g. `10Gi`.
    pub size: String,
    /// Storage class; the cluster default when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
}

/// The placement driver.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.replicas % 2 == 1").message("pd.replicas must be odd (a Raft group needs a majority)"))]
pub struct PdSpec {
    /// Voters in the PD Raft group (odd).
    #[serde(default = "default_pd_replicas")]
    #[x_kube(validation = Rule::new("self >= 1").message("pd.replicas must be at least 1"))]
    pub replicas: i32,
    /// Volume per PD pod.
    #[serde(default = "default_pd_storage")]
    pub storage: StorageSpec,
    /// Container resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Placement of this role's pods: each field set here replaces the
    /// cluster-wide `scheduling` field of the same name for this role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduling: Option<SchedulingSpec>,
}

/// The workers.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkerSpec {
    /// Worker pods. Scaling down drains the leaving workers through PD
    /// first.
    #[serde(default = "default_worker_replicas")]
    #[x_kube(validation = Rule::new("self >= 1").message("workers.replicas must be at least 1"))]
    pub replicas: i32,
    /// Volume per worker pod.
    #[serde(default = "default_worker_storage")]
    pub storage: StorageSpec,
    /// Container resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Placement of this role's pods: each field set here replaces the
    /// cluster-wide `scheduling` field of the same name for this role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduling: Option<SchedulingSpec>,
}

/// The gateways.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewaySpec {
    /// Gateway pods.
    #[serde(default = "default_gateway_replicas")]
    #[x_kube(validation = Rule::new("self >= 1").message("gateway.replicas must be at least 1"))]
    pub replicas: i32,
    /// The Service in front of them.
    #[serde(default)]
    pub service: GatewayServiceSpec,
    /// Container resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Placement of this role's pods: each field set here replaces the
    /// cluster-wide `scheduling` field of the same name for this role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduling: Option<SchedulingSpec>,
    /// TLS on the REST and gRPC ports, from a `kubernetes.io/tls` Secret
    /// (`tls.crt`, `tls.key`); plaintext when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<GatewayTlsSpec>,
}

/// The gateway's public TLS.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewayTlsSpec {
    /// A Secret in the cluster's namespace with `tls.crt` and `tls.key`
    /// (for example one cert-manager keeps); renewed files are picked up
    /// without a restart.
    #[x_kube(validation = Rule::new("self.size() > 0").message("gateway.tls.secretName must not be empty"))]
    pub secret_name: String,
}

/// Kind of the gateway Service.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ServiceType {
    /// In-cluster only.
    #[default]
    ClusterIP,
    /// A port on every node.
    NodePort,
    /// A cloud load balancer.
    LoadBalancer,
}

impl ServiceType {
    /// The value Kubernetes expects.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceType::ClusterIP => "ClusterIP",
            ServiceType::NodePort => "NodePort",
            ServiceType::LoadBalancer => "LoadBalancer",
        }
    }
}

/// The gateway Service.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewayServiceSpec {
    /// Service type.
    #[serde(default, rename = "type")]
    pub type_: ServiceType,
    /// REST port.
    #[serde(default = "default_http_port")]
    #[x_kube(validation = Rule::new("self >= 1 && self <= 65535").message("httpPort must be a port number"))]
    pub http_port: i32,
    /// gRPC port.
    #[serde(default = "default_grpc_port")]
    #[x_kube(validation = Rule::new("self >= 1 && self <= 65535").message("grpcPort must be a port number"))]
    pub grpc_port: i32,
}

/// The auth service.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthSpec {
    /// Whether requests need a credential (a token or an API key).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Secret key holding the first admin's password; generated when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_password_secret_ref: Option<SecretKeyRef>,
    /// Placement of this role's pods: each field set here replaces the
    /// cluster-wide `scheduling` field of the same name for this role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduling: Option<SchedulingSpec>,
}

/// A key in a Secret of the cluster's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct SecretKeyRef {
    /// Secret name.
    pub name: String,
    /// Key in the Secret.
    pub key: String,
}

/// Pod placement constraints: cluster-wide under `spec.scheduling`, and
/// per role under `spec.<role>.scheduling`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SchedulingSpec {
    /// Node labels pods require.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Taints pods tolerate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    /// Affinity rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    /// Spread constraints (the operator adds the pod selector's labels).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub topology_spread_constraints: Vec<TopologySpreadConstraint>,
    /// PriorityClass of the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
}

impl SchedulingSpec {
    /// This cluster-wide placement with every field `role` sets taken from
    /// `role` instead.
    pub fn overridden_by(&self, role: Option<&SchedulingSpec>) -> SchedulingSpec {
        let Some(role) = role else {
            return self.clone();
        };
        SchedulingSpec {
            node_selector: if role.node_selector.is_empty() {
                self.node_selector.clone()
            } else {
                role.node_selector.clone()
            },
            tolerations: if role.tolerations.is_empty() {
                self.tolerations.clone()
            } else {
                role.tolerations.clone()
            },
            affinity: role.affinity.clone().or_else(|| self.affinity.clone()),
            topology_spread_constraints: if role.topology_spread_constraints.is_empty() {
                self.topology_spread_constraints.clone()
            } else {
                role.topology_spread_constraints.clone()
            },
            priority_class_name: role
                .priority_class_name
                .clone()
                .or_else(|| self.priority_class_name.clone()),
        }
    }
}

fn default_pd_replicas() -> i32 {
    3
}
fn default_worker_replicas() -> i32 {
    3
}
fn default_gateway_replicas() -> i32 {
    2
}
fn default_http_port() -> i32 {
    7333
}
fn default_grpc_port() -> i32 {
    7334
}
fn default_true() -> bool {
    true
}
fn default_pd_storage() -> StorageSpec {
    StorageSpec {
        size: "1Gi".into(),
        storage_class_name: None,
    }
}
fn default_worker_storage() -> StorageSpec {
    StorageSpec {
        size: "10Gi".into(),
        storage_class_name: None,
    }
}

impl Default for PdSpec {
    fn default() -> Self {
        Self {
            replicas: default_pd_replicas(),
            storage: default_pd_storage(),
            resources: None,
            scheduling: None,
        }
    }
}

impl Default for WorkerSpec {
    fn default() -> Self {
        Self {
            replicas: default_worker_replicas(),
            storage: default_worker_storage(),
            resources: None,
            scheduling: None,
        }
    }
}

impl Default for GatewaySpec {
    fn default() -> Self {
        Self {
            replicas: default_gateway_replicas(),
            service: GatewayServiceSpec::default(),
            resources: None,
            tls: None,
            scheduling: None,
        }
    }
}

impl Default for GatewayServiceSpec {
    fn default() -> Self {
        Self {
            type_: ServiceType::ClusterIP,
            http_port: default_http_port(),
            grpc_port: default_grpc_port(),
        }
    }
}

impl Default for AuthSpec {
    fn default() -> Self {
        Self {
            enabled: true,
            admin_password_secret_ref: None,
            scheduling: None,
        }
    }
}

/// Lifecycle phase of a cluster.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ClusterPhase {
    /// Accepted, nothing created yet.
    #[default]
    Pending,
    /// Resources created, pods starting.
    Creating,
    /// Every role ready.
    Running,
    /// A scale-up or a drain is under way.
    Scaling,
    /// Some role is not ready, or the spec is invalid.
    Degraded,
    /// Reconciling failed in a way that needs a human.
    Failed,
}

/// The observed state of a cluster.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VectronClusterStatus {
    /// The generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Summary phase.
    #[serde(default)]
    pub phase: ClusterPhase,
    /// Available, Progressing and Degraded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The placement driver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pd: Option<PdStatus>,
    /// The workers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workers: Option<WorkersStatus>,
    /// The gateways.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<GatewayStatus>,
}

/// PD as observed.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PdStatus {
    /// Desired voters.
    pub replicas: i32,
    /// Ready pods.
    pub ready: i32,
    /// Address of the Raft leader, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<String>,
    /// `ready/replicas`, for `kubectl get`.
    pub summary: String,
}

/// Workers as observed.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkersStatus {
    /// Pods the StatefulSet runs.
    pub replicas: i32,
    /// Ready pods.
    pub ready: i32,
    /// Workers being drained before a scale-down.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub draining: Vec<String>,
    /// `ready/replicas`, for `kubectl get`.
    pub summary: String,
}

/// Gateways as observed.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewayStatus {
    /// Ready pods.
    pub ready: i32,
    /// In-cluster REST endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// `ready/replicas`, for `kubectl get`.
    pub summary: String,
}
