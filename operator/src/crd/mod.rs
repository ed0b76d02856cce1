//! The custom resources of `vectron.io/v1alpha1` and what they share: the
//! status condition type and the CRD documents `vectron-operator crdgen`
//! writes. Pure; no I/O.

mod cluster;
mod collection;

pub use cluster::*;
pub use collection::*;

use kube::CustomResourceExt;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A status condition, shaped like `metav1.Condition`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// `Available`, `Progressing`, `Degraded` or `Ready`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// Machine-readable cause, CamelCase.
    pub reason: String,
    /// What a human should know.
    pub message: String,
    /// RFC 3339 time the status last changed.
    pub last_transition_time: String,
    /// The generation the condition was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// Every CRD of the operator with the file name `crdgen` writes it to.
pub fn all() -> Vec<(
    &'static str,
    k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
)> {
    vec![
        ("vectronclusters.vectron.io.yaml", VectronCluster::crd()),
        ("collections.vectron.io.yaml", Collection::crd()),
    ]
}
