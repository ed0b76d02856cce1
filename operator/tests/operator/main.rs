//! The operator's integration suite, one binary with a module per area:
//! the CRDs (fresh, structural, CEL rules) and the pure builders (from YAML
//! fixtures). No Kubernetes API server is needed.

mod builders;
mod crds;
mod fixtures;
