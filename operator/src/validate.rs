//! Checks a VectronCluster spec before anything is built: the apiserver
//! enforces the CRD's schema and CEL rules, but an object may predate them
//! or come from a test. Every error names the field. Pure.

use crate::crd::{InternalTlsMode, InternalTlsSpec, StorageSpec, VectronClusterSpec};

/// Longest cluster name: `<name>-worker-headless` and pod host names must
/// stay within the 63 characters of a DNS label.
pub const MAX_CLUSTER_NAME: usize = 40;

/// A field of the spec that is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidSpec {
    /// JSON path of the field, e.g. `spec.pd.replicas`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

fn invalid(field: &str, message: impl Into<String>) -> InvalidSpec {
    InvalidSpec {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// Whether `s` is a Kubernetes quantity such as `10Gi`, `500M` or `1.5Gi`.
pub fn is_quantity(s: &str) -> bool {
    const SUFFIXES: [&str; 13] = [
        "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "k", "M", "G", "T", "P", "E", "",
    ];
    SUFFIXES.iter().any(|suffix| {
        s.strip_suffix(suffix).is_some_and(|number| {
            !number.is_empty()
                && number.chars().all(|c| c.is_ascii_digit() || c == '.')
                && number.chars().filter(|c| *c == '.').count() <= 1
                && number.chars().next().is_some_and(|c| c.is_ascii_digit())
        })
    })
}

fn storage(field: &str, spec: &StorageSpec) -> Result<(), InvalidSpec> {
    if !is_quantity(&spec.size) {
        return Err(invalid(
            &format!("{field}.size"),
            format!("{:?} is not a quantity such as 10Gi", spec.size),
        ));
    }
    if spec.storage_class_name.as_deref() == Some("") {
        return Err(invalid(
            &format!("{field}.storageClassName"),
            "must not be empty; leave it out for the default class",
        ));
    }
    Ok(())
}

/// Checks the cluster `name` and its `spec`.
pub fn cluster(name: &str, spec: &VectronClusterSpec) -> Result<(), InvalidSpec> {
    if name.len() > MAX_CLUSTER_NAME {
        return Err(invalid(
            "metadata.name",
            format!(
                "must be at most {MAX_CLUSTER_NAME} characters (pod host names derive from it)"
            ),
        ));
    }
    if spec.image.trim().is_empty() {
        return Err(invalid("spec.image", "must name a container image"));
    }
    if spec.pd.replicas < 1 || spec.pd.replicas % 2 == 0 {
        return Err(invalid(
            "spec.pd.replicas",
            format!(
                "must be odd and at least 1 (a Raft group needs a majority), got {}",
                spec.pd.replicas
            ),
        ));
    }
    if spec.workers.replicas < 1 {
        return Err(invalid("spec.workers.replicas", "must be at least 1"));
    }
    if spec.gateway.replicas < 1 {
        return Err(invalid("spec.gateway.replicas", "must be at least 1"));
    }
    storage("spec.pd.storage", &spec.pd.storage)?;
    storage("spec.workers.storage", &spec.workers.storage)?;
    let service = &spec.gateway.service;
    for (field, port) in [
        ("spec.gateway.service.httpPort", service.http_port),
        ("spec.gateway.service.grpcPort", service.grpc_port),
    ] {
        if !(1..=65535).contains(&port) {
            return Err(invalid(field, format!("{port} is not a port number")));
        }
    }
    for (field, port) in [
        ("spec.gateway.service.httpPort", service.http_port),
        ("spec.gateway.service.grpcPort", service.grpc_port),
    ] {
        if port == crate::build::ports::GATEWAY_METRICS {
            return Err(invalid(
                field,
                format!("{port} is the gateway's metrics port; choose another"),
            ));
        }
    }
    if service.http_port == service.grpc_port {
        return Err(invalid(
            "spec.gateway.service.grpcPort",
            "must differ from httpPort",
        ));
    }
    if let Some(secret) = &spec.auth.admin_password_secret_ref
        && (secret.name.is_empty() || secret.key.is_empty())
    {
        return Err(invalid(
            "spec.auth.adminPasswordSecretRef",
            "needs both name and key",
        ));
    }
    if let Some(tls) = &spec.gateway.tls
        && tls.secret_name.is_empty()
    {
        return Err(invalid(
            "spec.gateway.tls.secretName",
            "must name a kubernetes.io/tls Secret",
        ));
    }
    internal_tls(&spec.internal_tls)
}

fn internal_tls(spec: &InternalTlsSpec) -> Result<(), InvalidSpec> {
    if !(3..=825).contains(&spec.certificate_days) {
        return Err(invalid(
            "spec.internalTls.certificateDays",
            format!("must be between 3 and 825, got {}", spec.certificate_days),
        ));
    }
    match (&spec.mode, &spec.issuer_ref) {
        (InternalTlsMode::CertManager, None) => Err(invalid(
            "spec.internalTls.issuerRef",
            "is required when mode is CertManager",
        )),
        (InternalTlsMode::CertManager, Some(issuer)) if issuer.name.is_empty() => Err(invalid(
            "spec.internalTls.issuerRef.name",
            "must name a cert-manager Issuer or ClusterIssuer",
        )),
        _ => Ok(()),
    }
}

/// Checks that `workers` can hold every replica of the cluster's
/// `collections` (name, replication factor): a worker holds at most one
/// replica of a shard, so fewer workers than a replication factor leave a
/// drain that can never finish.
pub fn workers_cover_replication(
    workers: i32,
    collections: &[(String, i32)],
) -> Result<(), InvalidSpec> {
    let Some((collection, factor)) = collections
        .iter()
        .max_by_key(|(name, factor)| (*factor, std::cmp::Reverse(name.clone())))
    else {
        return Ok(());
    };
    if workers < *factor {
        return Err(invalid(
            "spec.workers.replicas",
            format!(
                "{workers} workers cannot hold the {factor} replicas of each shard of \
                 collection {collection} (replicationFactor {factor})"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod replication_tests {
    use super::workers_cover_replication;

    #[test]
    fn workers_must_cover_the_highest_replication_factor() {
        let collections = [("docs".to_owned(), 3), ("logs".to_owned(), 2)];
        assert!(workers_cover_replication(3, &collections).is_ok());
        assert!(workers_cover_replication(1, &[]).is_ok());
        let refused = workers_cover_replication(2, &collections).expect_err("below RF 3");
        assert_eq!(refused.field, "spec.workers.replicas");
        assert!(
            refused.message.contains("collection docs"),
            "{}",
            refused.message
        );
    }
}
