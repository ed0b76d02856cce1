//! The operator's integration suite, one binary with a module per area:
//! the CRDs (fresh, structural, CEL rules) and the pure builders (from YAML
//! fixtures) and the reconciles against an in-memory API with a fake PD.
//! No Kubernetes API server is needed.

mod builders;
mod crds;
mod fixtures;
mod reconcile;
mod traffic;
