//! `Collection` (`vectron.io/v1alpha1`, short name `vcol`): a collection
//! the operator creates in a cluster's PD. Dimension, metric and shard count
//! are fixed at creation; the schema's transition rules make the apiserver
//! refuse to change them. Pure types; no I/O.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Condition;

/// The desired collection.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "vectron.io",
    version = "v1alpha1",
    kind = "Collection",
    namespaced,
    status = "CollectionStatus",
    shortname = "vcol",
    category = "vectron",
    derive = "PartialEq",
    printcolumn = r#"{"name":"Cluster","type":"string","jsonPath":".spec.cluster"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Shards","type":"integer","jsonPath":".spec.shards"}"#,
    printcolumn = r#"{"name":"Points","type":"integer","jsonPath":".status.points"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct CollectionSpec {
    /// The VectronCluster (same namespace) holding the collection.
    #[x_kube(validation = Rule::new("self.size() > 0").message("cluster must name a VectronCluster"))]
    pub cluster: String,
    /// Vector dimension (immutable).
    #[x_kube(validation = Rule::new("self >= 1 && self <= 65536").message("dimension must be between 1 and 65536"))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("dimension is immutable"))]
    pub dimension: i32,
    /// Distance function (immutable).
    #[serde(default)]
    #[x_kube(validation = Rule::new("self == oldSelf").message("metric is immutable"))]
    pub metric: Metric,
    /// Shards (immutable).
    #[serde(default = "default_shards")]
    #[x_kube(validation = Rule::new("self >= 1 && self <= 1024").message("shards must be between 1 and 1024"))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("shards is immutable"))]
    pub shards: i32,
    /// Replicas per shard (immutable: PD has no way yet to change a
    /// collection's replication factor, so an edit is refused rather than
    /// silently ignored).
    #[serde(default = "default_replication_factor")]
    #[x_kube(validation = Rule::new("self >= 1 && self <= 7").message("replicationFactor must be between 1 and 7"))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("replicationFactor is immutable"))]
    pub replication_factor: i32,
    /// Index parameters (immutable, for the same reason).
    #[serde(default)]
    #[x_kube(validation = Rule::new("self == oldSelf").message("hnsw is immutable"))]
    pub hnsw: HnswSpec,
    /// What deleting this resource does to the data.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

/// Distance function.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    /// Cosine similarity.
    #[default]
    Cosine,
    /// Euclidean distance.
    L2,
    /// Dot product.
    Dot,
}

impl Metric {
    /// The name the REST API and PD use.
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Cosine => "cosine",
            Metric::L2 => "l2",
            Metric::Dot => "dot",
        }
    }
}

/// HNSW index parameters.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct HnswSpec {
    /// Links per node.
    #[serde(default = "default_m")]
    #[x_kube(validation = Rule::new("self >= 2 && self <= 256").message("hnsw.m must be between 2 and 256"))]
    pub m: i32,
    /// Build-time candidate list size.
    #[serde(default = "default_ef_construction")]
    #[x_kube(validation = Rule::new("self >= 4 && self <= 4096").message("hnsw.efConstruction must be between 4 and 4096"))]
    pub ef_construction: i32,
}

impl Default for HnswSpec {
    fn default() -> Self {
        Self {
            m: default_m(),
            ef_construction: default_ef_construction(),
        }
    }
}

/// What happens to the data when the resource is deleted.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum DeletionPolicy {
    /// Drop the collection in PD.
    #[default]
    Delete,
    /// Keep it.
    Retain,
}

fn default_shards() -> i32 {
    4
}
fn default_replication_factor() -> i32 {
    3
}
fn default_m() -> i32 {
    16
}
fn default_ef_construction() -> i32 {
    200
}

/// Lifecycle phase of a collection.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum CollectionPhase {
    /// Waiting for its cluster.
    #[default]
    Pending,
    /// Asked PD to create it.
    Creating,
    /// Every shard has a leader.
    Ready,
    /// Some shard lacks a leader or replicas.
    Degraded,
    /// Being dropped.
    Deleting,
    /// Cannot be reconciled (e.g. an invalid spec).
    Failed,
}

/// The observed state of a collection.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CollectionStatus {
    /// The generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Summary phase.
    #[serde(default)]
    pub phase: CollectionPhase,
    /// Ready and Degraded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Shards with a leader.
    #[serde(default)]
    pub shards_ready: i32,
    /// Points stored, as PD last saw them.
    #[serde(default)]
    pub points: i64,
}
