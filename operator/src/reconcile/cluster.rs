//! Reconciling one VectronCluster: validate → gather the facts to keep →
//! decide scaling (PD members leave through PD's member API first; leaving
//! workers are drained through PD and the StatefulSet shrinks only once PD
//! reports them empty; PD's worker list says which drains a reversed
//! scale-down left to cancel and which removals to retry) → build → apply →
//! remove drained workers from PD → status. An invalid spec changes nothing
//! but the status.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde_json::json;

use super::{Context, ReconcileError, Requeue};
use crate::apply::Applier;
use crate::build::{self, ADMIN_PASSWORD_KEY, BuildInput, JWT_KEY, Kept};
use crate::crd::{Collection, VectronCluster};
use crate::labels::{self, Component};
use crate::placement::Placement;
use crate::scale::{self, WorkerScale};
use crate::status::{self, Observed};

fn random_hex(bytes: usize) -> Result<String, ReconcileError> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| ReconcileError::Random(e.to_string()))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

async fn secret_value(
    api: &Api<Secret>,
    name: &str,
    key: &str,
) -> Result<Option<String>, ReconcileError> {
    Ok(api
        .get_opt(name)
        .await?
        .and_then(|s| s.data)
        .and_then(|d| {
            d.get(key)
                .map(|v| String::from_utf8_lossy(&v.0).into_owned())
        })
        .filter(|v| !v.is_empty()))
}

fn founders(pd: &StatefulSet) -> Option<i32> {
    let args = pd
        .spec
        .as_ref()?
        .template
        .spec
        .as_ref()?
        .containers
        .first()?
        .args
        .as_ref()?;
    let members = args
        .iter()
        .skip_while(|a| *a != "--initial-members")
        .nth(1)?;
    Some(members.split(',').count() as i32)
}

fn replicas(set: Option<&StatefulSet>) -> Option<i32> {
    set.and_then(|s| s.spec.as_ref()).and_then(|s| s.replicas)
}

fn claims(
    set: Option<&StatefulSet>,
) -> Option<Vec<k8s_openapi::api::core::v1::PersistentVolumeClaim>> {
    set.and_then(|s| s.spec.as_ref())
        .and_then(|s| s.volume_claim_templates.clone())
}

/// Reconciles `cluster`; answers when to look again.
pub async fn reconcile<P: Placement>(
    cluster: &VectronCluster,
    ctx: &Context<P>,
) -> Result<Requeue, ReconcileError> {
    let name = cluster
        .metadata
        .name
        .clone()
        .ok_or(ReconcileError::Incomplete("name"))?;
    let namespace = cluster
        .namespace()
        .ok_or(ReconcileError::Incomplete("namespace"))?;
    let uid = cluster
        .metadata
        .uid
        .clone()
        .ok_or(ReconcileError::Incomplete("uid"))?;
    let clusters: Api<VectronCluster> = Api::namespaced(ctx.client.clone(), &namespace);
    let mut observed = Observed {
        generation: cluster.meta().generation,
        ..Observed::default()
    };

    if let Err(invalid) = crate::validate::cluster(&name, &cluster.spec) {
        observed.invalid = Some(invalid.to_string());
        write_status(&clusters, cluster, &observed, ctx).await?;
        return Ok(Requeue(Duration::from_secs(300)));
    }

    // Fewer workers than a collection's replication factor: the drain of
    // the leaving ones could never finish.
    let collections: Vec<(String, i32)> =
        Api::<Collection>::namespaced(ctx.client.clone(), &namespace)
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .filter(|c| c.spec.cluster == name && c.metadata.deletion_timestamp.is_none())
            .map(|c| (c.name_any(), c.spec.replication_factor))
            .collect();
    if let Err(invalid) =
        crate::validate::workers_cover_replication(cluster.spec.workers.replicas, &collections)
    {
        observed.invalid = Some(invalid.to_string());
        write_status(&clusters, cluster, &observed, ctx).await?;
        return Ok(Requeue(Duration::from_secs(60)));
    }

    let sets: Api<StatefulSet> = Api::namespaced(ctx.client.clone(), &namespace);
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    let pd_set = sets
        .get_opt(&labels::object_name(&name, Component::Pd))
        .await?;
    let worker_set = sets
        .get_opt(&labels::object_name(&name, Component::Worker))
        .await?;
    let kept = Kept {
        pd_founders: pd_set.as_ref().and_then(founders),
        pd_claims: claims(pd_set.as_ref()),
        worker_claims: claims(worker_set.as_ref()),
        jwt_key: match secret_value(&secrets, &labels::jwt_secret_name(&name), JWT_KEY).await? {
            Some(key) => key,
            None => random_hex(32)?,
        },
        admin_password: match secret_value(
            &secrets,
            &labels::admin_secret_name(&name),
            ADMIN_PASSWORD_KEY,
        )
        .await?
        {
            Some(password) => password,
            None => random_hex(12)?,
        },
        internal_pki: super::pki::gather(
            &secrets,
            &name,
            &cluster.spec.internal_tls,
            super::unix_seconds((ctx.now)().as_str()),
        )
        .await?,
    };
    // PD may not shrink below its founders: a founder pod that comes back
    // empty would bootstrap a second, empty PD cluster.
    if let Some(founders) = kept.pd_founders
        && cluster.spec.pd.replicas < founders
    {
        observed.invalid = Some(format!(
            "spec.pd.replicas: {} is below the {founders} PD members the cluster was founded with",
            cluster.spec.pd.replicas
        ));
        write_status(&clusters, cluster, &observed, ctx).await?;
        return Ok(Requeue(Duration::from_secs(300)));
    }
    if cluster.spec.auth.enabled
        && let Some(reference) = &cluster.spec.auth.admin_password_secret_ref
        && secret_value(&secrets, &reference.name, &reference.key)
            .await?
            .is_none()
    {
        observed.missing_secret = Some(format!(
            "spec.auth.adminPasswordSecretRef: Secret {} has no non-empty key {}; the auth pods cannot start until it does",
            reference.name, reference.key
        ));
    }
    let mut spec = cluster.spec.clone();
    let input_for = |spec| BuildInput {
        name: name.clone(),
        namespace: namespace.clone(),
        uid: uid.clone(),
        spec,
        kept: kept.clone(),
        operator_namespace: ctx.operator_namespace.clone(),
        smallest_replication_factor: None,
    };
    let access = super::pki::pd_access(
        &secrets,
        &name,
        &spec.internal_tls,
        kept.internal_pki.as_ref(),
        build::pd_endpoint(&input_for(spec.clone())),
    )
    .await?;
    let placement = (ctx.placement)(&access);

    // PD shrinks through its member API before its StatefulSet does. A PD
    // that cannot be reached holds back only the PD-facing steps: every
    // other change is still applied, and the status says why.
    let mut pd_failures = Vec::new();
    if let Some(current) = replicas(pd_set.as_ref()) {
        for node_id in scale::leaving_pd_members(current, spec.pd.replicas) {
            match placement.remove_member(node_id).await {
                Ok(()) => {
                    tracing::info!(cluster = %name, node_id, "removed a PD member before scaling down");
                }
                Err(e) => {
                    pd_failures.push(format!("removing PD member {node_id}: {e}"));
                    spec.pd.replicas = current;
                    break;
                }
            }
        }
    }

    // PD's own worker list, not the StatefulSet alone, says what is left
    // to do: drains a reversed scale-down started (cancelled here, before
    // anything else) and removals that failed after a shrink (retried once
    // the desired objects are applied).
    let current_workers = replicas(worker_set.as_ref());
    let cleanup = match placement.workers().await {
        Ok(registered) => {
            scale::worker_cleanup(&name, current_workers, spec.workers.replicas, &registered)
        }
        Err(e) => {
            pd_failures.push(format!("listing workers: {e}"));
            scale::WorkerCleanup::default()
        }
    };
    for worker in &cleanup.undrain {
        match placement.undrain_worker(worker).await {
            Ok(()) => {
                tracing::info!(cluster = %name, worker, "scale-down reversed: drain cancelled");
            }
            Err(e) => pd_failures.push(format!("cancelling the drain of {worker}: {e}")),
        }
    }

    // Workers shrink only once PD has moved every replica off them; while
    // PD cannot say, they stay.
    let leaving = current_workers
        .map(|current| scale::leaving_workers(&name, current, spec.workers.replicas))
        .unwrap_or_default();
    let mut held = std::collections::BTreeMap::new();
    let mut drain_unknown = false;
    for worker in &leaving {
        let asked = match placement.drain_worker(worker).await {
            Ok(()) => placement.worker(worker).await,
            Err(e) => Err(e),
        };
        match asked {
            Ok(info) => {
                held.insert(worker.clone(), info.map(|i| i.replicas));
            }
            Err(e) => {
                pd_failures.push(format!("draining {worker}: {e}"));
                drain_unknown = true;
                break;
            }
        }
    }
    let decision = match current_workers {
        Some(current) if drain_unknown => WorkerScale::WaitForDrain {
            keep: current,
            waiting: leaving.clone(),
        },
        _ => scale::worker_scale(&name, current_workers, spec.workers.replicas, |w| {
            held.get(w).copied().flatten()
        }),
    };
    if let WorkerScale::WaitForDrain { keep, waiting } = &decision {
        spec.workers.replicas = *keep;
        observed.draining = waiting.clone();
    }

    // The workers' disruption budget follows the smallest replication
    // factor, counting collections made through the API too when PD says.
    let from_pd = match placement.replication_factors().await {
        Ok(factors) => factors,
        Err(e) => {
            pd_failures.push(format!("listing collections: {e}"));
            Vec::new()
        }
    };
    let smallest_replication_factor = collections
        .iter()
        .map(|(_, rf)| *rf)
        .chain(
            from_pd
                .iter()
                .map(|rf| i32::try_from(*rf).unwrap_or(i32::MAX)),
        )
        .min();
    let desired = build::desired(&BuildInput {
        smallest_replication_factor,
        ..input_for(spec.clone())
    });
    Applier::new(ctx.client.clone(), &namespace, &name)
        .apply_desired(&desired)
        .await?;

    let shrunk = match &decision {
        WorkerScale::Shrink { leaving } => leaving.as_slice(),
        _ => &[],
    };
    for worker in shrunk.iter().chain(&cleanup.remove) {
        match placement.remove_worker(worker).await {
            Ok(()) => tracing::info!(cluster = %name, worker, "drained worker removed from PD"),
            Err(e) => pd_failures.push(format!("removing drained {worker}: {e}")),
        }
    }
    if !pd_failures.is_empty() {
        tracing::warn!(cluster = %name, failures = ?pd_failures, "PD-facing steps held back");
        observed.pd_unreachable = Some(pd_failures.join("; "));
    }

    observe_readiness(&ctx.client, &namespace, &name, &spec, &mut observed).await?;
    observed.endpoint = Some(format!(
        "{}://{}.{namespace}.svc:{}",
        if spec.gateway.tls.is_some() {
            "https"
        } else {
            "http"
        },
        labels::object_name(&name, Component::Gateway),
        spec.gateway.service.http_port
    ));
    write_status(&clusters, cluster, &observed, ctx).await?;
    let settled = observed.draining.is_empty()
        && observed.pd_unreachable.is_none()
        && observed.missing_secret.is_none()
        && [
            observed.pd,
            observed.workers,
            observed.gateway,
            observed.auth,
        ]
        .iter()
        .all(|(want, ready)| ready >= want);
    Ok(Requeue(Duration::from_secs(if settled { 60 } else { 10 })))
}

async fn observe_readiness(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    spec: &crate::crd::VectronClusterSpec,
    observed: &mut Observed,
) -> Result<(), ReconcileError> {
    let sets: Api<StatefulSet> = Api::namespaced(client.clone(), namespace);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let ready_set = |set: Option<StatefulSet>| {
        set.and_then(|s| s.status)
            .and_then(|s| s.ready_replicas)
            .unwrap_or(0)
    };
    let pd = sets
        .get_opt(&labels::object_name(name, Component::Pd))
        .await?;
    let workers = sets
        .get_opt(&labels::object_name(name, Component::Worker))
        .await?;
    let gateway = ready_pods(&deployments, name, Component::Gateway).await?;
    observed.pd = (spec.pd.replicas, ready_set(pd));
    observed.workers = (spec.workers.replicas, ready_set(workers));
    observed.gateway = (spec.gateway.replicas, gateway);
    if spec.auth.enabled {
        let auth = ready_pods(&deployments, name, Component::Auth).await?;
        observed.auth = (build::AUTH_REPLICAS, auth);
    }
    Ok(())
}

/// Ready pods of the cluster's `component` Deployment (0 when missing).
async fn ready_pods(
    deployments: &Api<Deployment>,
    cluster: &str,
    component: Component,
) -> Result<i32, ReconcileError> {
    Ok(deployments
        .get_opt(&labels::object_name(cluster, component))
        .await?
        .and_then(|d| d.status)
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0))
}

async fn write_status<P: Placement>(
    api: &Api<VectronCluster>,
    cluster: &VectronCluster,
    observed: &Observed,
    ctx: &Context<P>,
) -> Result<(), ReconcileError> {
    let status = status::cluster_status(cluster.status.as_ref(), observed, &(ctx.now)());
    if cluster.status.as_ref() == Some(&status) {
        return Ok(());
    }
    let pd_trouble = |s: &crate::crd::VectronClusterStatus| {
        s.conditions
            .iter()
            .find(|c| c.type_ == status::PD_UNREACHABLE && c.status == "True")
            .cloned()
    };
    if let Some(trouble) = pd_trouble(&status)
        && cluster.status.as_ref().and_then(pd_trouble).is_none()
    {
        ctx.event(cluster, true, &trouble.reason, trouble.message)
            .await;
    }
    if cluster.status.as_ref().map(|s| s.phase) != Some(status.phase) {
        let degraded = status.conditions.iter().find(|c| c.type_ == "Degraded");
        let progressing = status.conditions.iter().find(|c| c.type_ == "Progressing");
        let (warning, reason, note) = match (degraded, progressing) {
            (Some(d), _) if d.status == "True" => (true, d.reason.clone(), d.message.clone()),
            (_, Some(p)) if p.status == "True" => (false, p.reason.clone(), p.message.clone()),
            _ => (
                false,
                format!("{:?}", status.phase),
                "every role is ready".into(),
            ),
        };
        ctx.event(cluster, warning, &reason, note).await;
    }
    api.patch_status(
        &cluster.name_any(),
        &PatchParams::default(),
        &Patch::Merge(json!({"status": super::status_patch(cluster.status.as_ref(), &status)?})),
    )
    .await?;
    Ok(())
}
