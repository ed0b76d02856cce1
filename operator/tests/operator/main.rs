//! The operator's integration suite, one binary with a module per area:
//! the CRDs (fresh, structural, CEL rules) and the pure builders (from YAML
//! fixtures) and the reconciles against an in-memory API with a fake PD,
//! none of which needs a Kubernetes API server; and, `#[ignore]`d unless
//! `scripts/test.sh` provides one, the CRDs, the chart and the real
//! operator binary against a real kube-apiserver (`apiserver`), with PD and
//! workers as real processes on loopback where PD must answer
//! (`local_pd`).

mod apiserver;
mod builders;
mod control_plane;
mod crds;
mod fixtures;
mod local_pd;
mod reconcile;
mod traffic;
