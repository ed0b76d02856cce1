//! Carrying out the internal TLS of one cluster: in mode Operator, reading
//! the cluster's CA and role certificates from their Secrets, making the CA
//! when there is none and issuing every certificate [`crate::pki::verdict`]
//! refuses (the builders then write them back); in every mode, finding the
//! operator's own client certificate for the cluster's PD. Does network
//! I/O (the Kubernetes API) and generates keys.

use std::path::Path;

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use vectron_tls::{Authority, CertRequest, Role};

use super::ReconcileError;
use crate::crd::{InternalTlsMode, InternalTlsSpec};
use crate::labels;
use crate::pki::{
    self, CA_CERT_KEY, CERT_KEY, CERT_ROLES, ClusterPki, NOT_AFTER_ANNOTATION, PRIVATE_KEY_KEY,
    ROLES_ANNOTATION, StoredCert,
};
use crate::placement::{ClientIdentity, PdAccess, PdSecurity};

fn text(secret: &Secret, key: &str) -> String {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|v| String::from_utf8_lossy(&v.0).into_owned())
        .unwrap_or_default()
}

fn stored(secret: &Secret) -> StoredCert {
    let annotation = |key: &str| {
        secret
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(key))
            .cloned()
    };
    StoredCert {
        ca_pem: text(secret, CA_CERT_KEY),
        cert_pem: text(secret, CERT_KEY),
        key_pem: text(secret, PRIVATE_KEY_KEY),
        not_after: annotation(NOT_AFTER_ANNOTATION).and_then(|v| v.parse().ok()),
        roles: annotation(ROLES_ANNOTATION),
    }
}

/// The cluster's CA and role certificates, made or renewed as needed, for
/// the builders to write (mode Operator); `None` in the other modes. `now`
/// is Unix seconds.
pub async fn gather(
    secrets: &Api<Secret>,
    cluster: &str,
    spec: &InternalTlsSpec,
    now: i64,
) -> Result<Option<ClusterPki>, ReconcileError> {
    if spec.mode != InternalTlsMode::Operator {
        return Ok(None);
    }
    let ca_name = labels::internal_ca_secret_name(cluster);
    let authority = match secrets.get_opt(&ca_name).await? {
        Some(secret) if !text(&secret, CERT_KEY).is_empty() => Authority::from_pem(
            text(&secret, CERT_KEY),
            &text(&secret, PRIVATE_KEY_KEY),
            Path::new(&format!("Secret {ca_name}")),
        )?,
        _ => {
            tracing::info!(cluster, "making the cluster's internal CA");
            Authority::generate()?
        }
    };
    let days = i64::from(spec.certificate_days);
    let mut certs = Vec::with_capacity(CERT_ROLES.len());
    for role in CERT_ROLES {
        let name = labels::internal_tls_secret_name(cluster, role.as_str());
        let existing = secrets.get_opt(&name).await?.map(|s| stored(&s));
        let cert = match pki::verdict(existing.as_ref(), authority.cert_pem(), role, days, now) {
            Ok(()) => existing.unwrap_or_default(),
            Err(reason) => {
                tracing::info!(cluster, role = role.as_str(), %reason, "issuing an internal certificate");
                issue(&authority, cluster, role, days, now)?
            }
        };
        certs.push((role, cert));
    }
    Ok(Some(ClusterPki {
        ca_cert_pem: authority.cert_pem().to_owned(),
        ca_key_pem: authority.key_pem(),
        certs,
    }))
}

fn issue(
    authority: &Authority,
    cluster: &str,
    role: Role,
    days: i64,
    now: i64,
) -> Result<StoredCert, ReconcileError> {
    let issued = authority.issue(&CertRequest {
        common_name: format!("{cluster}-{}", role.as_str()),
        roles: vec![role],
        hosts: Vec::new(),
        days,
    })?;
    Ok(StoredCert {
        ca_pem: authority.cert_pem().to_owned(),
        cert_pem: issued.cert_pem,
        key_pem: issued.key_pem,
        not_after: Some(now + days * 86_400),
        roles: Some(role.as_str().to_owned()),
    })
}

/// How the operator reaches the PD at `endpoint` of `cluster`: with the
/// certificate just gathered (`pki`), else the one in the cluster's
/// operator Secret (mode CertManager, or a Collection's reconcile).
pub async fn pd_access(
    secrets: &Api<Secret>,
    cluster: &str,
    spec: &InternalTlsSpec,
    pki: Option<&ClusterPki>,
    endpoint: String,
) -> Result<PdAccess, ReconcileError> {
    let security = if spec.mode == InternalTlsMode::Disabled {
        PdSecurity::Plaintext
    } else {
        let name = labels::internal_tls_secret_name(cluster, Role::Operator.as_str());
        let cert = match pki.and_then(|p| p.cert(Role::Operator)) {
            Some(cert) => Some(cert.clone()),
            None => secrets.get_opt(&name).await?.map(|s| stored(&s)),
        };
        match cert {
            Some(cert)
                if !cert.ca_pem.is_empty()
                    && !cert.cert_pem.is_empty()
                    && !cert.key_pem.is_empty() =>
            {
                PdSecurity::Mutual(ClientIdentity {
                    ca_pem: cert.ca_pem,
                    cert_pem: cert.cert_pem,
                    key_pem: cert.key_pem,
                })
            }
            _ => PdSecurity::Missing(format!(
                "the operator's certificate for cluster {cluster} (Secret {name}) is not issued yet"
            )),
        }
    };
    Ok(PdAccess { endpoint, security })
}
