//! Reconciling one Collection against its cluster's PD: a finalizer (when
//! `deletionPolicy: Delete`) so deleting the resource drops the collection
//! first; creation when PD lacks it; status from PD (shards with a leader,
//! points). Problems become conditions that name them: the cluster
//! missing, PD unreachable, an invalid spec.

use std::time::Duration;

use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde_json::json;

use super::{Context, ReconcileError, Requeue};
use crate::build;
use crate::crd::{Collection, CollectionPhase, CollectionStatus, DeletionPolicy, VectronCluster};
use crate::placement::{NewCollection, Placement, PlacementError};
use crate::status::condition;

/// The finalizer that drops the collection in PD before the resource goes.
pub const FINALIZER: &str = "vectron.io/drop-collection";

fn invalid_spec(collection: &Collection) -> Option<String> {
    let spec = &collection.spec;
    if spec.cluster.is_empty() {
        return Some("spec.cluster: must name a VectronCluster".into());
    }
    if !(1..=65536).contains(&spec.dimension) {
        return Some(format!(
            "spec.dimension: {} is not in 1..=65536",
            spec.dimension
        ));
    }
    if !(1..=1024).contains(&spec.shards) {
        return Some(format!("spec.shards: {} is not in 1..=1024", spec.shards));
    }
    if !(1..=7).contains(&spec.replication_factor) {
        return Some(format!(
            "spec.replicationFactor: {} is not in 1..=7",
            spec.replication_factor
        ));
    }
    None
}

/// Replaces the finalizer list of `collection`, as read, with
/// `finalizers`. The patch carries the resourceVersion read, so the server
/// refuses it (409, retried by the controller) if anyone changed the
/// object since: a finalizer another controller added meanwhile is never
/// dropped.
async fn set_finalizers(
    api: &Api<Collection>,
    collection: &Collection,
    finalizers: Vec<String>,
) -> Result<(), ReconcileError> {
    let mut metadata = json!({ "finalizers": finalizers });
    if let Some(version) = collection.resource_version() {
        metadata["resourceVersion"] = json!(version);
    }
    api.patch(
        &collection.name_any(),
        &PatchParams::default(),
        &Patch::Merge(json!({ "metadata": metadata })),
    )
    .await?;
    Ok(())
}

/// Reconciles `collection`; answers when to look again.
pub async fn reconcile<P: Placement>(
    collection: &Collection,
    ctx: &Context<P>,
) -> Result<Requeue, ReconcileError> {
    let name = collection.name_any();
    let namespace = collection
        .namespace()
        .ok_or(ReconcileError::Incomplete("namespace"))?;
    let api: Api<Collection> = Api::namespaced(ctx.client.clone(), &namespace);
    let clusters: Api<VectronCluster> = Api::namespaced(ctx.client.clone(), &namespace);
    let cluster = clusters.get_opt(&collection.spec.cluster).await?;
    let placement = match &cluster {
        Some(c) => {
            let endpoint = build::pd_endpoint(&build::BuildInput {
                name: c.name_any(),
                namespace: namespace.clone(),
                uid: String::new(),
                spec: c.spec.clone(),
                kept: Default::default(),
                operator_namespace: ctx.operator_namespace.clone(),
                smallest_replication_factor: None,
            });
            let secrets = Api::namespaced(ctx.client.clone(), &namespace);
            let access = super::pki::pd_access(
                &secrets,
                &c.name_any(),
                &c.spec.internal_tls,
                None,
                endpoint,
            )
            .await?;
            Some((ctx.placement)(&access))
        }
        None => None,
    };
    let has_finalizer = collection.finalizers().iter().any(|f| f == FINALIZER);

    if collection.meta().deletion_timestamp.is_some() {
        if has_finalizer {
            if let (DeletionPolicy::Delete, Some(placement)) =
                (collection.spec.deletion_policy, &placement)
            {
                placement.drop_collection(&name).await?;
                tracing::info!(collection = %name, "dropped in PD before deletion");
            }
            let rest = collection
                .finalizers()
                .iter()
                .filter(|f| *f != FINALIZER)
                .cloned()
                .collect();
            set_finalizers(&api, collection, rest).await?;
        }
        return Ok(Requeue(Duration::from_secs(300)));
    }
    if collection.spec.deletion_policy == DeletionPolicy::Delete && !has_finalizer {
        let mut finalizers = collection.finalizers().to_vec();
        finalizers.push(FINALIZER.to_owned());
        set_finalizers(&api, collection, finalizers).await?;
    }

    let mut status = CollectionStatus {
        observed_generation: collection.meta().generation,
        ..collection.status.clone().unwrap_or_default()
    };
    let outcome = match (invalid_spec(collection), placement) {
        (Some(why), _) => Err(("InvalidSpec", why, CollectionPhase::Failed)),
        (None, None) => Err((
            "ClusterNotFound",
            format!(
                "VectronCluster {:?} does not exist in namespace {namespace}",
                collection.spec.cluster
            ),
            CollectionPhase::Pending,
        )),
        (None, Some(placement)) => sync(collection, &placement).await,
    };
    let now = (ctx.now)();
    let requeue = match outcome {
        Ok((phase, ready, points)) => {
            status.phase = phase;
            status.shards_ready = ready;
            status.points = points;
            let ok = phase == CollectionPhase::Ready;
            status.conditions = vec![condition(
                &status.conditions,
                "Ready",
                ok,
                if ok { "ShardsReady" } else { "ShardsNotReady" },
                format!("{ready} of {} shards have a leader", collection.spec.shards),
                collection.meta().generation,
                &now,
            )];
            if ok { 60 } else { 10 }
        }
        Err((reason, message, phase)) => {
            status.phase = phase;
            status.conditions = vec![condition(
                &status.conditions,
                "Ready",
                false,
                reason,
                message,
                collection.meta().generation,
                &now,
            )];
            if reason == "InvalidSpec" { 300 } else { 15 }
        }
    };
    if collection.status.as_ref().map(|s| s.phase) != Some(status.phase)
        && let Some(c) = status.conditions.first()
    {
        let warning = matches!(
            status.phase,
            CollectionPhase::Failed | CollectionPhase::Degraded
        ) || c.reason == "ClusterNotFound"
            || c.reason == "PdUnreachable";
        ctx.event(collection, warning, &c.reason, c.message.clone())
            .await;
    }
    if collection.status.as_ref() != Some(&status) {
        api.patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({
                "status": super::status_patch(collection.status.as_ref(), &status)?
            })),
        )
        .await?;
    }
    Ok(Requeue(Duration::from_secs(requeue)))
}

type Synced = Result<(CollectionPhase, i32, i64), (&'static str, String, CollectionPhase)>;

async fn sync<P: Placement>(collection: &Collection, placement: &P) -> Synced {
    let unreachable =
        |e: PlacementError| ("PdUnreachable", e.to_string(), CollectionPhase::Pending);
    match placement.collection(&collection.name_any()).await {
        Ok(Some(info)) => {
            let phase = if info.shards > 0 && info.shards_ready == info.shards {
                CollectionPhase::Ready
            } else {
                CollectionPhase::Degraded
            };
            Ok((phase, info.shards_ready as i32, info.points as i64))
        }
        Ok(None) => {
            let spec = &collection.spec;
            let create = NewCollection {
                name: collection.name_any(),
                dimension: spec.dimension as u32,
                metric: spec.metric.as_str().to_owned(),
                shards: spec.shards as u32,
                replication_factor: spec.replication_factor as u32,
                m: spec.hnsw.m as u32,
                ef_construction: spec.hnsw.ef_construction as u32,
            };
            match placement.create_collection(&create).await {
                Ok(()) => Ok((CollectionPhase::Creating, 0, 0)),
                Err(PlacementError::Refused(why)) => {
                    Err(("PdRefused", why, CollectionPhase::Failed))
                }
                Err(e) => Err(unreachable(e)),
            }
        }
        Err(e) => Err(unreachable(e)),
    }
}
