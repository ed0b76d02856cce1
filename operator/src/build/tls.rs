//! The cluster's internal mutual TLS as Kubernetes objects: in mode
//! Operator the CA's Secret and one Secret per role (from the certificates
//! the reconcile step issued, [`super::Kept::internal_pki`]); in mode
//! CertManager one cert-manager Certificate per role writing the same
//! Secrets; in mode Disabled nothing. And what each pod gets: its role's
//! Secret mounted read-only with the environment pointing the binary at
//! the three files, or the explicit plaintext switch. Pure.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::DynamicObject;
use serde_json::{Value, json};
use vectron_tls::Role;

use super::{BuildInput, Desired, pod, typed};
use crate::crd::InternalTlsMode;
use crate::labels::{self, Component};
use crate::pki::{
    CA_CERT_KEY, CERT_KEY, CERT_ROLES, NOT_AFTER_ANNOTATION, PRIVATE_KEY_KEY, ROLES_ANNOTATION,
};

/// Where a pod's role certificate is mounted.
pub const MOUNT_PATH: &str = "/etc/vectron/internal-tls";
/// The name of the volume holding it.
const VOLUME: &str = "internal-tls";

/// The role a component's pods present.
pub fn role_of(component: Component) -> Role {
    match component {
        Component::Pd => Role::Pd,
        Component::Worker => Role::Worker,
        Component::Gateway => Role::Gateway,
        Component::Auth => Role::Auth,
    }
}

fn secret(input: &BuildInput, name: &str, type_: &str, data: [(&str, &str); 3]) -> Secret {
    let mut secret: Secret = typed(json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": pod::metadata(input, name, None),
        "type": type_,
    }));
    secret.data = Some(
        data.iter()
            .filter(|(_, value)| !value.is_empty())
            .map(|(key, value)| ((*key).to_owned(), ByteString(value.as_bytes().to_vec())))
            .collect(),
    );
    secret
}

pub(super) fn build(input: &BuildInput, desired: &mut Desired) {
    match input.spec.internal_tls.mode {
        InternalTlsMode::Operator => operator_secrets(input, desired),
        InternalTlsMode::CertManager => {
            desired.certificates = CERT_ROLES
                .iter()
                .map(|role| certificate(input, *role))
                .collect();
        }
        InternalTlsMode::Disabled => {}
    }
}

fn operator_secrets(input: &BuildInput, desired: &mut Desired) {
    let Some(pki) = &input.kept.internal_pki else {
        return;
    };
    desired.secrets.push(secret(
        input,
        &labels::internal_ca_secret_name(&input.name),
        "Opaque",
        [
            (CERT_KEY, &pki.ca_cert_pem),
            (PRIVATE_KEY_KEY, &pki.ca_key_pem),
            (CA_CERT_KEY, ""),
        ],
    ));
    for (role, cert) in &pki.certs {
        let mut secret = secret(
            input,
            &labels::internal_tls_secret_name(&input.name, role.as_str()),
            "kubernetes.io/tls",
            [
                (CA_CERT_KEY, &cert.ca_pem),
                (CERT_KEY, &cert.cert_pem),
                (PRIVATE_KEY_KEY, &cert.key_pem),
            ],
        );
        let mut annotations = BTreeMap::new();
        if let Some(not_after) = cert.not_after {
            annotations.insert(NOT_AFTER_ANNOTATION.to_owned(), not_after.to_string());
        }
        if let Some(roles) = &cert.roles {
            annotations.insert(ROLES_ANNOTATION.to_owned(), roles.clone());
        }
        secret.metadata.annotations = Some(annotations);
        desired.secrets.push(secret);
    }
}

/// The cert-manager Certificate of `role`: its Secret has the same name and
/// keys as the one the operator would write.
fn certificate(input: &BuildInput, role: Role) -> DynamicObject {
    let tls = &input.spec.internal_tls;
    let days = i64::from(tls.certificate_days);
    let name = labels::internal_tls_secret_name(&input.name, role.as_str());
    let issuer = tls.issuer_ref.as_ref();
    typed(json!({
        "apiVersion": "cert-manager.io/v1",
        "kind": "Certificate",
        "metadata": pod::metadata(input, &name, None),
        "spec": {
            "secretName": name,
            "commonName": format!("{}-{}", input.name, role.as_str()),
            "dnsNames": [role.dns_name()],
            "duration": format!("{}h", days * 24),
            "renewBefore": format!("{}h", days * 8),
            "usages": ["digital signature", "key encipherment", "server auth", "client auth"],
            "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
            "issuerRef": {
                "name": issuer.map(|i| i.name.clone()).unwrap_or_default(),
                "kind": issuer.map_or_else(|| "Issuer".to_owned(), |i| i.kind.clone()),
                "group": issuer.map_or_else(|| "cert-manager.io".to_owned(), |i| i.group.clone()),
            },
        },
    }))
}

/// The volume holding `component`'s certificate, if the cluster runs
/// internal TLS.
pub fn volume(input: &BuildInput, component: Component) -> Option<Value> {
    (input.spec.internal_tls.mode != InternalTlsMode::Disabled).then(|| {
        json!({
            "name": VOLUME,
            "secret": {
                "secretName": labels::internal_tls_secret_name(&input.name, role_of(component).as_str()),
                // Readable by the pod's group (fsGroup) only.
                "defaultMode": 0o440,
            },
        })
    })
}

/// The mount of [`volume`], if any.
pub fn mount(input: &BuildInput) -> Option<Value> {
    (input.spec.internal_tls.mode != InternalTlsMode::Disabled)
        .then(|| json!({"name": VOLUME, "mountPath": MOUNT_PATH, "readOnly": true}))
}

/// The environment telling the binary where its certificate is, or that
/// the cluster runs plaintext internal traffic.
pub fn env(input: &BuildInput) -> Vec<Value> {
    if input.spec.internal_tls.mode == InternalTlsMode::Disabled {
        return vec![json!({"name": "VECTRON_INSECURE_INTERNAL", "value": "true"})];
    }
    [
        ("VECTRON_INTERNAL_CA", CA_CERT_KEY),
        ("VECTRON_INTERNAL_CERT", CERT_KEY),
        ("VECTRON_INTERNAL_KEY", PRIVATE_KEY_KEY),
    ]
    .iter()
    .map(|(name, file)| json!({"name": name, "value": format!("{MOUNT_PATH}/{file}")}))
    .collect()
}
