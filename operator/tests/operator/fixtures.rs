//! Loading the YAML fixtures under `operator/tests/fixtures`.

use std::path::PathBuf;

use vectron_operator::build::{BuildInput, Kept};
use vectron_operator::crd::VectronCluster;

/// The fixture file `name`.
pub fn path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The VectronCluster in fixture `name`.
pub fn cluster(name: &str) -> VectronCluster {
    let text = std::fs::read_to_string(path(name)).expect("fixture readable");
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// The builder input of a fresh cluster from fixture `name`.
pub fn input(name: &str) -> BuildInput {
    let cluster = cluster(name);
    BuildInput {
        name: cluster.metadata.name.clone().expect("name"),
        namespace: cluster.metadata.namespace.clone().expect("namespace"),
        uid: cluster.metadata.uid.clone().expect("uid"),
        spec: cluster.spec,
        kept: Kept {
            jwt_key: "test-jwt-key".into(),
            admin_password: "test-admin-password".into(),
            ..Kept::default()
        },
        operator_namespace: "vectron-system".into(),
        smallest_replication_factor: None,
    }
}
