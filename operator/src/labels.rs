//! Names and labels of everything the operator creates for a cluster
//! (docs/operator.md): one place decides them, so builders, the orphan sweep and
//! selectors always agree. Pure.

use std::collections::BTreeMap;

/// A role of the cluster, as the `app.kubernetes.io/component` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Component {
    /// Placement driver.
    Pd,
    /// Worker.
    Worker,
    /// Gateway.
    Gateway,
    /// Auth service.
    Auth,
}

impl Component {
    /// Every component.
    pub const ALL: [Component; 4] = [
        Component::Pd,
        Component::Worker,
        Component::Gateway,
        Component::Auth,
    ];

    /// The label value and name suffix.
    pub fn as_str(self) -> &'static str {
        match self {
            Component::Pd => "pd",
            Component::Worker => "worker",
            Component::Gateway => "gateway",
            Component::Auth => "auth",
        }
    }
}

/// `app.kubernetes.io/name`.
pub const NAME: &str = "app.kubernetes.io/name";
/// `app.kubernetes.io/instance`.
pub const INSTANCE: &str = "app.kubernetes.io/instance";
/// `app.kubernetes.io/component`.
pub const COMPONENT: &str = "app.kubernetes.io/component";
/// `app.kubernetes.io/managed-by`.
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";

/// Labels on every object of `cluster`.
pub fn cluster_labels(cluster: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (NAME.to_owned(), "vectron".to_owned()),
        (INSTANCE.to_owned(), cluster.to_owned()),
        (MANAGED_BY.to_owned(), crate::FIELD_MANAGER.to_owned()),
    ])
}

/// Labels on the objects of one component.
pub fn component_labels(cluster: &str, component: Component) -> BTreeMap<String, String> {
    let mut labels = cluster_labels(cluster);
    labels.insert(COMPONENT.to_owned(), component.as_str().to_owned());
    labels
}

/// The pod selector of a component. Never changes for an existing cluster
/// (the apiserver refuses to change a StatefulSet's selector), so it holds
/// only the stable identity labels.
pub fn selector(cluster: &str, component: Component) -> BTreeMap<String, String> {
    BTreeMap::from([
        (NAME.to_owned(), "vectron".to_owned()),
        (INSTANCE.to_owned(), cluster.to_owned()),
        (COMPONENT.to_owned(), component.as_str().to_owned()),
    ])
}

/// `<cluster>-<component>`: the StatefulSet, Deployment, Service and PDB name.
pub fn object_name(cluster: &str, component: Component) -> String {
    format!("{cluster}-{}", component.as_str())
}

/// The headless Service giving a StatefulSet's pods stable DNS names.
pub fn headless_name(cluster: &str, component: Component) -> String {
    format!("{cluster}-{}-headless", component.as_str())
}

/// The stable DNS name of pod `ordinal` of a StatefulSet component.
pub fn pod_dns(cluster: &str, namespace: &str, component: Component, ordinal: i32) -> String {
    format!(
        "{}-{ordinal}.{}.{namespace}.svc",
        object_name(cluster, component),
        headless_name(cluster, component)
    )
}

/// The Secret holding the cluster's JWT signing key.
pub fn jwt_secret_name(cluster: &str) -> String {
    format!("{cluster}-jwt")
}

/// The Secret holding the generated admin password.
pub fn admin_secret_name(cluster: &str) -> String {
    format!("{cluster}-admin")
}

/// The ConfigMap with the cluster's shared settings.
pub fn config_name(cluster: &str) -> String {
    format!("{cluster}-config")
}

/// The Secret holding the cluster's internal CA (certificate and key; read
/// only by the operator, never mounted).
pub fn internal_ca_secret_name(cluster: &str) -> String {
    format!("{cluster}-internal-ca")
}

/// The Secret holding the internal TLS certificate of `role` (`pd`,
/// `worker`, `auth`, `gateway` or `operator`).
pub fn internal_tls_secret_name(cluster: &str, role: &str) -> String {
    format!("{cluster}-internal-tls-{role}")
}
