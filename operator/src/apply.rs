//! The only place the operator writes cluster objects: server-side apply
//! of every desired object with one field manager (forcing ownership, so a
//! manual edit is put back), and deletion of objects of the cluster's
//! labels that are no longer desired (orphans of a role turned off). Does
//! network I/O (the Kubernetes API).

use std::collections::BTreeSet;
use std::fmt::Debug;

use k8s_openapi::NamespaceResourceScope;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
};
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::build::Desired;
use crate::labels;

/// A Kubernetes API failure, naming what was being done.
#[derive(Debug, thiserror::Error)]
#[error("{action} {kind} {name}: {source}")]
pub struct ApplyError {
    /// `apply`, `list` or `delete`.
    pub action: &'static str,
    /// Object kind.
    pub kind: String,
    /// Object name.
    pub name: String,
    /// The API error.
    #[source]
    pub source: kube::Error,
}

/// Writes one cluster's objects in its namespace.
pub struct Applier {
    client: Client,
    namespace: String,
    cluster: String,
}

impl Applier {
    /// An applier for `cluster` in `namespace`.
    pub fn new(client: Client, namespace: &str, cluster: &str) -> Self {
        Self {
            client,
            namespace: namespace.to_owned(),
            cluster: cluster.to_owned(),
        }
    }

    fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// Server-side applies `objects`, then deletes objects of the same kind
    /// with the cluster's labels that are not among them.
    pub async fn apply_all<K>(&self, objects: &[K]) -> Result<(), ApplyError>
    where
        K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
            + Clone
            + Debug
            + Serialize
            + DeserializeOwned,
    {
        let api = self.api::<K>();
        let params = PatchParams::apply(crate::FIELD_MANAGER).force();
        let kind = K::kind(&()).to_string();
        let mut wanted = BTreeSet::new();
        for object in objects {
            let name = object.name_any();
            api.patch(&name, &params, &Patch::Apply(object))
                .await
                .map_err(|source| ApplyError {
                    action: "apply",
                    kind: kind.clone(),
                    name: name.clone(),
                    source,
                })?;
            wanted.insert(name);
        }
        let selector = self.selector();
        let existing = api
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|source| ApplyError {
                action: "list",
                kind: kind.clone(),
                name: selector.clone(),
                source,
            })?;
        for orphan in existing
            .items
            .iter()
            .filter(|o| !wanted.contains(&o.name_any()))
        {
            let name = orphan.name_any();
            match api.delete(&name, &DeleteParams::background()).await {
                Ok(_) => tracing::info!(kind, name, "deleted an object no longer desired"),
                Err(kube::Error::Api(status)) if status.is_not_found() => {}
                Err(source) => {
                    return Err(ApplyError {
                        action: "delete",
                        kind,
                        name,
                        source,
                    });
                }
            }
        }
        Ok(())
    }

    /// Applies every object of `desired`, kind by kind: configuration and
    /// secrets first, then Services, workloads, budgets and policies.
    pub async fn apply_desired(&self, desired: &Desired) -> Result<(), ApplyError> {
        self.apply_all(&desired.config_maps).await?;
        self.apply_all(&desired.secrets).await?;
        self.apply_all(&desired.services).await?;
        self.apply_all(&desired.stateful_sets).await?;
        self.apply_all(&desired.deployments).await?;
        self.apply_all(&desired.disruption_budgets).await?;
        self.apply_all(&desired.network_policies).await?;
        self.apply_certificates(&desired.certificates).await
    }

    /// Applies cert-manager Certificates and deletes the cluster's others.
    /// With none desired, a cluster without cert-manager (the resource
    /// unknown, or the operator not allowed to list it) has nothing to
    /// clean up, so a failing list is not an error then.
    async fn apply_certificates(&self, objects: &[DynamicObject]) -> Result<(), ApplyError> {
        let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(
            "cert-manager.io",
            "v1",
            "Certificate",
        ));
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), &self.namespace, &resource);
        let params = PatchParams::apply(crate::FIELD_MANAGER).force();
        let failed = |action: &'static str, name: &str, source| ApplyError {
            action,
            kind: "Certificate".into(),
            name: name.to_owned(),
            source,
        };
        let mut wanted = BTreeSet::new();
        for object in objects {
            let name = object.name_any();
            api.patch(&name, &params, &Patch::Apply(object))
                .await
                .map_err(|source| failed("apply", &name, source))?;
            wanted.insert(name);
        }
        let existing = match api
            .list(&ListParams::default().labels(&self.selector()))
            .await
        {
            Ok(list) => list.items,
            Err(_) if objects.is_empty() => return Ok(()),
            Err(source) => return Err(failed("list", &self.selector(), source)),
        };
        for orphan in existing.iter().filter(|o| !wanted.contains(&o.name_any())) {
            let name = orphan.name_any();
            match api.delete(&name, &DeleteParams::background()).await {
                Ok(_) => tracing::info!(name, "deleted a Certificate no longer desired"),
                Err(kube::Error::Api(status)) if status.is_not_found() => {}
                Err(source) => return Err(failed("delete", &name, source)),
            }
        }
        Ok(())
    }

    fn selector(&self) -> String {
        format!(
            "{}={},{}={}",
            labels::INSTANCE,
            self.cluster,
            labels::MANAGED_BY,
            crate::FIELD_MANAGER
        )
    }
}
