//! The Vectron Kubernetes operator: the custom resources
//! (`crd`), their CRD documents (`crdgen`), and the reconcile pipeline of a
//! VectronCluster — `validate` (pure) → `build` (pure) → apply → status.

pub mod apply;
pub mod build;
pub mod crd;
pub mod crdgen;
pub mod labels;
pub mod lease;
pub mod patch;
pub mod pki;
pub mod placement;
pub mod reconcile;
pub mod runtime;
pub mod scale;
pub mod status;
pub mod validate;

/// API group of Vectron's custom resources.
pub const API_GROUP: &str = "vectron.io";
/// API version of Vectron's custom resources.
pub const API_VERSION: &str = "v1alpha1";
/// Field manager used for every server-side apply.
pub const FIELD_MANAGER: &str = "vectron-operator";
