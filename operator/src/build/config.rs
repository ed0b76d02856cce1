//! The cluster's shared settings (a ConfigMap every container reads its
//! environment from) and its secrets: the JWT signing key and, when the
//! spec references no Secret, the generated admin password. Pure: the
//! secret values come from [`super::Kept`].

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use serde_json::json;

use super::{BuildInput, Desired, ports, typed};
use crate::labels::{self, Component};

/// Key of the JWT signing key in its Secret.
pub const JWT_KEY: &str = "jwt-secret";
/// Key of the generated admin password in its Secret.
pub const ADMIN_PASSWORD_KEY: &str = "password";

/// The PD address every other role dials (the PD client Service).
pub fn pd_endpoint(input: &BuildInput) -> String {
    format!(
        "{}.{}.svc:{}",
        labels::object_name(&input.name, Component::Pd),
        input.namespace,
        ports::PD
    )
}

pub(super) fn build(input: &BuildInput, desired: &mut Desired) {
    desired.config_maps.push(typed(json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": super::pod::metadata(input, &labels::config_name(&input.name), None),
        "data": {
            "VECTRON_PD_ENDPOINTS": pd_endpoint(input),
            "RUST_LOG": "info",
        },
    })));
    let secret = |name: String, key: &str, value: &str| -> Secret {
        let mut secret: Secret = typed(json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": super::pod::metadata(input, &name, None),
            "type": "Opaque",
        }));
        secret.data = Some(BTreeMap::from([(
            key.to_owned(),
            ByteString(value.as_bytes().to_vec()),
        )]));
        secret
    };
    desired.secrets.push(secret(
        labels::jwt_secret_name(&input.name),
        JWT_KEY,
        &input.kept.jwt_key,
    ));
    if input.spec.auth.enabled && input.spec.auth.admin_password_secret_ref.is_none() {
        desired.secrets.push(secret(
            labels::admin_secret_name(&input.name),
            ADMIN_PASSWORD_KEY,
            &input.kept.admin_password,
        ));
    }
}
