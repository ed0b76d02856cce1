//! The Vectron Kubernetes operator: CRD types, the reconcile pipeline
//! (validate → build → apply → status) and scaling procedures. Built in
//! issue #6; this crate currently pins the Kubernetes client stack so the
//! workspace's kube / k8s-openapi / schemars versions are proven to build
//! together.

/// API group of Vectron's custom resources.
pub const API_GROUP: &str = "vectron.io";
/// API version of Vectron's custom resources.
pub const API_VERSION: &str = "v1alpha1";
/// Field manager used for every server-side apply.
pub const FIELD_MANAGER: &str = "vectron-operator";
