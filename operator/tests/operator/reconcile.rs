//! The reconciles against an in-memory Kubernetes API (kube-fake-client,
//! which has no watch: the tests call reconcile directly) and a fake PD:
//! creation, spec changes, a worker scale-down that waits for PD's drain,
//! an invalid spec, and a Collection's create / ready / delete with its
//! finalizer.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use kube_fake_client::ClientBuilder;
use serde_json::json;
use vectron_operator::crd::{ClusterPhase, Collection, CollectionPhase, VectronCluster};
use vectron_operator::placement::{
    CollectionInfo, NewCollection, Placement, PlacementError, WorkerInfo,
};
use vectron_operator::reconcile::{Context, cluster, collection};
use vectron_operator::scale::{RegisteredState, RegisteredWorker};

use crate::fixtures;

/// What the fake PD holds and what it was asked.
#[derive(Default)]
struct PdState {
    workers: BTreeMap<String, u32>,
    /// Workers asked to drain and not undrained since.
    draining: std::collections::BTreeSet<String>,
    /// Removals are refused (as PD does while it cannot commit).
    refuse_removal: bool,
    collections: BTreeMap<String, CollectionInfo>,
    /// Replication factor per collection (made by the operator or, in a
    /// test, through the API).
    replication: BTreeMap<String, u32>,
    calls: Vec<String>,
    /// Every worker and member call fails as if PD were unreachable.
    down: bool,
}

#[derive(Clone, Default)]
struct FakePd(Arc<Mutex<PdState>>);

impl FakePd {
    fn state(&self) -> std::sync::MutexGuard<'_, PdState> {
        self.0.lock().expect("fake PD lock")
    }
    fn calls(&self) -> Vec<String> {
        self.state().calls.clone()
    }
    fn reachable(&self) -> Result<(), PlacementError> {
        if self.state().down {
            return Err(PlacementError::Unreachable("connection refused".into()));
        }
        Ok(())
    }
}

impl Placement for FakePd {
    async fn drain_worker(&self, name: &str) -> Result<(), PlacementError> {
        self.reachable()?;
        let mut state = self.state();
        state.calls.push(format!("drain {name}"));
        state.draining.insert(name.into());
        Ok(())
    }
    async fn undrain_worker(&self, name: &str) -> Result<(), PlacementError> {
        self.reachable()?;
        let mut state = self.state();
        state.calls.push(format!("undrain {name}"));
        state.draining.remove(name);
        Ok(())
    }
    async fn workers(&self) -> Result<Vec<RegisteredWorker>, PlacementError> {
        self.reachable()?;
        let state = self.state();
        Ok(state
            .workers
            .iter()
            .map(|(name, replicas)| RegisteredWorker {
                name: name.clone(),
                state: if state.draining.contains(name) {
                    RegisteredState::Draining
                } else {
                    RegisteredState::Up
                },
                replicas: *replicas,
            })
            .collect())
    }
    async fn worker(&self, name: &str) -> Result<Option<WorkerInfo>, PlacementError> {
        self.reachable()?;
        Ok(self.state().workers.get(name).map(|r| WorkerInfo {
            replicas: *r,
            draining: true,
        }))
    }
    async fn remove_worker(&self, name: &str) -> Result<(), PlacementError> {
        self.reachable()?;
        let mut state = self.state();
        state.calls.push(format!("remove {name}"));
        if state.refuse_removal {
            return Err(PlacementError::Unreachable("no leader".into()));
        }
        state.workers.remove(name);
        state.draining.remove(name);
        Ok(())
    }
    async fn remove_member(&self, node_id: u64) -> Result<(), PlacementError> {
        self.reachable()?;
        self.state().calls.push(format!("remove member {node_id}"));
        Ok(())
    }
    async fn create_collection(&self, spec: &NewCollection) -> Result<(), PlacementError> {
        let mut state = self.state();
        state
            .calls
            .push(format!("create {} dim {}", spec.name, spec.dimension));
        state
            .replication
            .insert(spec.name.clone(), spec.replication_factor);
        state.collections.insert(
            spec.name.clone(),
            CollectionInfo {
                shards: spec.shards,
                shards_ready: 0,
                points: 0,
            },
        );
        Ok(())
    }
    async fn collection(&self, name: &str) -> Result<Option<CollectionInfo>, PlacementError> {
        Ok(self.state().collections.get(name).cloned())
    }
    async fn replication_factors(&self) -> Result<Vec<u32>, PlacementError> {
        self.reachable()?;
        Ok(self.state().replication.values().copied().collect())
    }
    async fn drop_collection(&self, name: &str) -> Result<(), PlacementError> {
        let mut state = self.state();
        state.calls.push(format!("drop {name}"));
        state.collections.remove(name);
        state.replication.remove(name);
        Ok(())
    }
}

fn now() -> String {
    "2026-11-23T12:00:00Z".into()
}

fn context(client: Client, pd: &FakePd) -> Context<FakePd> {
    let pd = pd.clone();
    Context {
        client,
        placement: Box::new(move |_endpoint| pd.clone()),
        now,
        events: None,
        operator_namespace: "vectron-system".into(),
    }
}

async fn client_with(objects: Vec<serde_json::Value>) -> Client {
    ClientBuilder::new()
        .with_resource::<VectronCluster>()
        .with_resource::<Collection>()
        .with_runtime_objects(objects)
        .build()
        .await
        .expect("fake client")
}

fn fixture_json(name: &str) -> serde_json::Value {
    serde_json::to_value(fixtures::cluster(name)).expect("json")
}

async fn get_cluster(client: &Client, ns: &str, name: &str) -> VectronCluster {
    Api::<VectronCluster>::namespaced(client.clone(), ns)
        .get(name)
        .await
        .expect("cluster")
}

async fn stateful_set(client: &Client, ns: &str, name: &str) -> Option<StatefulSet> {
    Api::<StatefulSet>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await
        .expect("get stateful set")
}

fn replicas(set: &StatefulSet) -> i32 {
    set.spec.as_ref().and_then(|s| s.replicas).unwrap_or(-1)
}

async fn set_workers(client: &Client, replicas: i32) {
    Api::<VectronCluster>::namespaced(client.clone(), "search")
        .patch(
            "vec",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"workers": {"replicas": replicas}}})),
        )
        .await
        .expect("patch spec");
}

#[tokio::test]
async fn creating_a_cluster_writes_its_objects_and_a_status() {
    let client = client_with(vec![fixture_json("minimal.yaml")]).await;
    let pd = FakePd::default();
    let ctx = context(client.clone(), &pd);
    let vc = get_cluster(&client, "search", "vec").await;
    cluster::reconcile(&vc, &ctx).await.expect("reconcile");

    let pd_set = stateful_set(&client, "search", "vec-pd")
        .await
        .expect("PD set");
    assert_eq!(replicas(&pd_set), 3);
    let workers = stateful_set(&client, "search", "vec-worker")
        .await
        .expect("workers");
    assert_eq!(replicas(&workers), 3);
    let gateway = Api::<Deployment>::namespaced(client.clone(), "search")
        .get("vec-gateway")
        .await
        .expect("gateway");
    assert_eq!(gateway.spec.and_then(|s| s.replicas), Some(2));
    let status = get_cluster(&client, "search", "vec")
        .await
        .status
        .expect("status");
    assert_eq!(status.phase, ClusterPhase::Creating);
    assert_eq!(status.observed_generation, Some(1));
    let progressing = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Progressing")
        .expect("Progressing");
    assert_eq!(
        (progressing.status.as_str(), progressing.reason.as_str()),
        ("True", "PodsStarting")
    );
    assert!(
        pd.calls().is_empty(),
        "creation asks PD nothing: {:?}",
        pd.calls()
    );
}

#[tokio::test]
async fn a_collection_made_through_the_api_counts_toward_the_worker_budget() {
    use k8s_openapi::api::policy::v1::PodDisruptionBudget;
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    let client = client_with(vec![fixture_json("minimal.yaml")]).await;
    let pd = FakePd::default();
    let ctx = context(client.clone(), &pd);
    let budget = || async {
        Api::<PodDisruptionBudget>::namespaced(client.clone(), "search")
            .get("vec-worker")
            .await
            .expect("worker budget")
            .spec
            .and_then(|s| s.max_unavailable)
    };
    pd.state().replication.insert("made-by-rest".into(), 1);
    let vc = get_cluster(&client, "search", "vec").await;
    cluster::reconcile(&vc, &ctx).await.expect("reconcile");
    assert_eq!(budget().await, Some(IntOrString::Int(0)), "factor 1 held");
    pd.state().replication.insert("made-by-rest".into(), 5);
    cluster::reconcile(&vc, &ctx).await.expect("reconcile");
    assert_eq!(budget().await, Some(IntOrString::Int(2)), "factor 5 held");
}

#[tokio::test]
async fn a_spec_change_updates_objects_and_keeps_generated_secrets() {
    let client = client_with(vec![fixture_json("minimal.yaml")]).await;
    let pd = FakePd::default();
    let ctx = context(client.clone(), &pd);
    cluster::reconcile(&get_cluster(&client, "search", "vec").await, &ctx)
        .await
        .expect("first reconcile");
    let secrets = Api::<Secret>::namespaced(client.clone(), "search");
    let key_before = secrets.get("vec-jwt").await.expect("jwt").data;

    Api::<VectronCluster>::namespaced(client.clone(), "search")
        .patch(
            "vec",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"spec": {"gateway": {"replicas": 4}, "workers": {"replicas": 5}}}),
            ),
        )
        .await
        .expect("patch spec");
    cluster::reconcile(&get_cluster(&client, "search", "vec").await, &ctx)
        .await
        .expect("second reconcile");
    let gateway = Api::<Deployment>::namespaced(client.clone(), "search")
        .get("vec-gateway")
        .await
        .expect("gateway");
    assert_eq!(gateway.spec.and_then(|s| s.replicas), Some(4));
    let workers = stateful_set(&client, "search", "vec-worker")
        .await
        .expect("workers");
    assert_eq!(replicas(&workers), 5, "scale-up needs no drain");
    let key_after = secrets.get("vec-jwt").await.expect("jwt").data;
    assert_eq!(key_before, key_after, "the JWT key survives reconciles");
}

#[tokio::test]
async fn scaling_workers_down_waits_for_pd_to_drain_them() {
    let client = client_with(vec![fixture_json("minimal.yaml")]).await;
    let pd = FakePd::default();
    let ctx = context(client.clone(), &pd);
    set_workers(&client, 5).await;
    cluster::reconcile(&get_cluster(&client, "search", "vec").await, &ctx)
        .await
        .expect("at five");
    {
        let mut state = pd.state();
        for (worker, held) in [
            ("vec-worker-0", 4),
            ("vec-worker-3", 0),
            ("vec-worker-4", 2),
        ] {
            state.workers.insert(worker.into(), held);
        }
    }

    set_workers(&client, 3).await;
    cluster::reconcile(&get_cluster(&client, "search", "vec").await, &ctx)
        .await
        .expect("drain round");
    let workers = stateful_set(&client, "search", "vec-worker")
        .await
        .expect("workers");
    assert_eq!(
        replicas(&workers),
        5,
        "no pod goes while worker-4 holds replicas"
    );
    assert_eq!(pd.calls(), ["drain vec-worker-4", "drain vec-worker-3"]);
    let status = get_cluster(&client, "search", "vec")
        .await
        .status
        .expect("status");
    assert_eq!(status.phase, ClusterPhase::Scaling);
    assert_eq!(
        status.workers.as_ref().map(|w| w.draining.clone()),
        Some(vec!["vec-worker-4".to_owned()])
    );
    let progressing = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Progressing")
        .expect("Progressing");
    assert_eq!(progressing.reason, "DrainingWorkers");

    pd.state().workers.insert("vec-worker-4".into(), 0);
    cluster::reconcile(&get_cluster(&client, "search", "vec").await, &ctx)
        .await
        .expect("shrink round");
    let workers = stateful_set(&client, "search", "vec-worker")
        .await
        .expect("workers");
    assert_eq!(replicas(&workers), 3);
    let calls = pd.calls();
    assert!(
        calls.contains(&"remove vec-worker-4".to_owned()),
        "{calls:?}"
    );
    assert!(
        calls.contains(&"remove vec-worker-3".to_owned()),
        "{calls:?}"
    );
    assert!(
        !calls.iter().any(|c| c.contains("vec-worker-0")),
        "{calls:?}"
    );
    let status = get_cluster(&client, "search", "vec")
        .await
        .status
        .expect("status");
    assert_eq!(
        status.workers.map(|w| w.draining),
        Some(vec![]),
        "a finished drain leaves the status"
    );
}

/// Defect: the scale-down state came from the StatefulSet's count alone, so
/// scaling back up mid-drain left the workers Draining in PD forever, and a
/// removal that failed after the shrink was never retried.
#[tokio::test]
async fn a_reversed_scale_down_cancels_its_drains_and_failed_removals_are_retried() {
    let client = client_with(vec![fixture_json("minimal.yaml")]).await;
    let pd = FakePd::default();
    let ctx = context(client.clone(), &pd);
    set_workers(&client, 5).await;
    cluster::reconcile(&get_cluster(&client, "search", "vec").await, &ctx)
        .await
        .expect("at five");
    for worker in 0..5 {
        let held = if worker == 4 { 2 } else { 1 };
        pd.state()
            .workers
            .insert(format!("vec-worker-{worker}"), held);
    }
    set_workers(&client, 3).await;
    cluster::reconcile(&get_cluster(&client, "search", "vec").await, &ctx)
        .await
        .expect("drain round");
    assert_eq!(pd.state().draining.len(), 2, "workers 3 and 4 draining");

    // Back up to five mid-drain: the drains are cancelled, nothing shrinks.
    set_workers(&client, 5).await;
    cluster::reconcile(&get_cluster(&client, "search", "vec").await, &ctx)
        .await
        .expect("reversed");
    let calls = pd.calls();
    for worker in ["vec-worker-3", "vec-worker-4"] {
        assert!(calls.contains(&format!("undrain {worker}")), "{calls:?}");
    }
    assert!(pd.state().draining.is_empty(), "no worker left Draining");
    let workers = stateful_set(&client, "search", "vec-worker")
        .await
        .expect("workers");
    assert_eq!(replicas(&workers), 5);
    let status = get_cluster(&client, "search", "vec")
        .await
        .status
        .expect("status");
    assert_eq!(status.workers.map(|w| w.draining), Some(vec![]));

    // Down to three again, drained, but PD refuses the removal after the
    // shrink: the StatefulSet shrinks and the removal is retried later.
    set_workers(&client, 3).await;
    {
        let mut state = pd.state();
        state.workers.insert("vec-worker-3".into(), 0);
        state.workers.insert("vec-worker-4".into(), 0);
        state.refuse_removal = true;
    }
    cluster::reconcile(&get_cluster(&client, "search", "vec").await, &ctx)
        .await
        .expect("shrink round");
    let workers = stateful_set(&client, "search", "vec-worker")
        .await
        .expect("workers");
    assert_eq!(replicas(&workers), 3);
    assert!(pd.state().workers.contains_key("vec-worker-4"));
    pd.state().refuse_removal = false;
    pd.state().calls.clear();
    cluster::reconcile(&get_cluster(&client, "search", "vec").await, &ctx)
        .await
        .expect("retry round");
    let calls = pd.calls();
    for worker in ["vec-worker-3", "vec-worker-4"] {
        assert!(calls.contains(&format!("remove {worker}")), "{calls:?}");
    }
    let state = pd.state();
    assert_eq!(
        state.workers.keys().cloned().collect::<Vec<_>>(),
        ["vec-worker-0", "vec-worker-1", "vec-worker-2"],
        "PD forgot the removed workers"
    );
}

#[tokio::test]
async fn an_unreachable_pd_holds_back_only_the_drain() {
    let client = client_with(vec![fixture_json("minimal.yaml")]).await;
    let pd = FakePd::default();
    let ctx = context(client.clone(), &pd);
    set_workers(&client, 5).await;
    cluster::reconcile(&get_cluster(&client, "search", "vec").await, &ctx)
        .await
        .expect("at five");
    pd.state().down = true;

    Api::<VectronCluster>::namespaced(client.clone(), "search")
        .patch(
            "vec",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"spec": {"workers": {"replicas": 3}, "gateway": {"replicas": 4}}}),
            ),
        )
        .await
        .expect("patch spec");
    cluster::reconcile(&get_cluster(&client, "search", "vec").await, &ctx)
        .await
        .expect("a PD outage is not a reconcile failure");
    let workers = stateful_set(&client, "search", "vec-worker")
        .await
        .expect("workers");
    assert_eq!(
        replicas(&workers),
        5,
        "no worker leaves while PD cannot drain it"
    );
    let gateway = Api::<Deployment>::namespaced(client.clone(), "search")
        .get("vec-gateway")
        .await
        .expect("gateway");
    assert_eq!(
        gateway.spec.and_then(|s| s.replicas),
        Some(4),
        "the rest of the spec is applied"
    );
    let status = get_cluster(&client, "search", "vec")
        .await
        .status
        .expect("status");
    let trouble = status
        .conditions
        .iter()
        .find(|c| c.type_ == "PdUnreachable")
        .expect("PdUnreachable");
    assert_eq!(trouble.status, "True");
    assert!(
        trouble.message.contains("connection refused"),
        "{}",
        trouble.message
    );

    pd.state().down = false;
    set_workers(&client, 5).await;
    cluster::reconcile(&get_cluster(&client, "search", "vec").await, &ctx)
        .await
        .expect("PD back, scale cancelled");
    let status = get_cluster(&client, "search", "vec")
        .await
        .status
        .expect("status");
    let trouble = status
        .conditions
        .iter()
        .find(|c| c.type_ == "PdUnreachable")
        .expect("PdUnreachable");
    assert_eq!(trouble.status, "False");
    assert_eq!(status.workers.map(|w| w.draining), Some(vec![]));
}

#[tokio::test]
async fn an_invalid_spec_is_reported_and_nothing_else_changes() {
    let client = client_with(vec![fixture_json("invalid.yaml")]).await;
    let pd = FakePd::default();
    let ctx = context(client.clone(), &pd);
    cluster::reconcile(&get_cluster(&client, "search", "broken").await, &ctx)
        .await
        .expect("reconcile");
    assert!(stateful_set(&client, "search", "broken-pd").await.is_none());
    assert!(
        Api::<Secret>::namespaced(client.clone(), "search")
            .get_opt("broken-jwt")
            .await
            .expect("get")
            .is_none()
    );
    let status = get_cluster(&client, "search", "broken")
        .await
        .status
        .expect("status");
    assert_eq!(status.phase, ClusterPhase::Degraded);
    let degraded = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Degraded")
        .expect("Degraded");
    assert_eq!(degraded.status, "True");
    assert_eq!(degraded.reason, "InvalidSpec");
    assert!(
        degraded.message.contains("spec.pd.replicas"),
        "{}",
        degraded.message
    );
}

fn collection_json(extra_meta: serde_json::Value) -> serde_json::Value {
    let mut meta = json!({"name": "docs", "namespace": "search", "uid": "c-1", "generation": 1});
    if let (Some(meta), Some(extra)) = (meta.as_object_mut(), extra_meta.as_object()) {
        meta.extend(extra.clone());
    }
    json!({
        "apiVersion": "vectron.io/v1alpha1",
        "kind": "Collection",
        "metadata": meta,
        "spec": {"cluster": "vec", "dimension": 384, "metric": "cosine", "shards": 4},
    })
}

async fn get_collection(client: &Client) -> Option<Collection> {
    Api::<Collection>::namespaced(client.clone(), "search")
        .get_opt("docs")
        .await
        .expect("get collection")
}

#[tokio::test]
async fn a_collection_is_created_becomes_ready_and_is_dropped_on_delete() {
    let client = client_with(vec![
        fixture_json("minimal.yaml"),
        collection_json(json!({})),
    ])
    .await;
    let pd = FakePd::default();
    let ctx = context(client.clone(), &pd);
    let docs = get_collection(&client).await.expect("collection");
    collection::reconcile(&docs, &ctx).await.expect("create");
    let docs = get_collection(&client).await.expect("collection");
    assert!(
        docs.metadata
            .finalizers
            .iter()
            .flatten()
            .any(|f| f == collection::FINALIZER)
    );
    assert_eq!(pd.calls(), ["create docs dim 384"]);
    assert_eq!(
        docs.status.as_ref().map(|s| s.phase),
        Some(CollectionPhase::Creating)
    );

    if let Some(info) = pd.state().collections.get_mut("docs") {
        info.shards_ready = 4;
        info.points = 1234;
    }
    collection::reconcile(&docs, &ctx).await.expect("ready");
    let status = get_collection(&client)
        .await
        .and_then(|c| c.status)
        .expect("status");
    assert_eq!(status.phase, CollectionPhase::Ready);
    assert_eq!((status.shards_ready, status.points), (4, 1234));
    assert_eq!(
        pd.calls().len(),
        1,
        "a ready collection is not created again"
    );

    // Deletion requested: the apiserver set the timestamp; the finalizer
    // holds the object until the collection is dropped in PD.
    let deleting = client_with(vec![
        fixture_json("minimal.yaml"),
        collection_json(json!({
            "finalizers": [collection::FINALIZER],
            "deletionTimestamp": "2026-11-23T12:00:00Z",
        })),
    ])
    .await;
    let ctx = context(deleting.clone(), &pd);
    let docs = get_collection(&deleting)
        .await
        .expect("collection being deleted");
    collection::reconcile(&docs, &ctx).await.expect("delete");
    assert_eq!(pd.calls().last().map(String::as_str), Some("drop docs"));
    let left = get_collection(&deleting).await;
    assert!(
        left.is_none_or(|c| c.metadata.finalizers.unwrap_or_default().is_empty()),
        "the finalizer is released"
    );
}

#[tokio::test]
async fn a_collection_without_its_cluster_says_so() {
    let client = client_with(vec![collection_json(json!({}))]).await;
    let pd = FakePd::default();
    let ctx = context(client.clone(), &pd);
    let docs = get_collection(&client).await.expect("collection");
    collection::reconcile(&docs, &ctx).await.expect("reconcile");
    let status = get_collection(&client)
        .await
        .and_then(|c| c.status)
        .expect("status");
    assert_eq!(status.phase, CollectionPhase::Pending);
    assert_eq!(status.conditions[0].reason, "ClusterNotFound");
    assert!(status.conditions[0].message.contains("\"vec\""));
    assert!(pd.calls().is_empty());
}

#[tokio::test]
async fn scaling_pd_down_removes_members_before_the_stateful_set_shrinks() {
    let client = client_with(vec![fixture_json("minimal.yaml")]).await;
    let pd = FakePd::default();
    let ctx = context(client.clone(), &pd);
    let set_pd = |replicas: i32| {
        let client = client.clone();
        async move {
            Api::<VectronCluster>::namespaced(client, "search")
                .patch(
                    "vec",
                    &PatchParams::default(),
                    &Patch::Merge(json!({"spec": {"pd": {"replicas": replicas}}})),
                )
                .await
                .expect("patch spec");
        }
    };
    cluster::reconcile(&get_cluster(&client, "search", "vec").await, &ctx)
        .await
        .expect("at three");
    set_pd(5).await;
    cluster::reconcile(&get_cluster(&client, "search", "vec").await, &ctx)
        .await
        .expect("at five");
    let pd_set = stateful_set(&client, "search", "vec-pd")
        .await
        .expect("PD set");
    assert_eq!(replicas(&pd_set), 5);
    assert!(
        pd.calls().is_empty(),
        "growing PD needs no member call: {:?}",
        pd.calls()
    );
    set_pd(3).await;
    cluster::reconcile(&get_cluster(&client, "search", "vec").await, &ctx)
        .await
        .expect("back to three");
    // Below the founders is refused: a founder coming back empty would
    // start a second PD cluster.
    set_pd(1).await;
    cluster::reconcile(&get_cluster(&client, "search", "vec").await, &ctx)
        .await
        .expect("below the founders");
    let status = get_cluster(&client, "search", "vec")
        .await
        .status
        .expect("status");
    assert_eq!(status.phase, ClusterPhase::Degraded);
    let degraded = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Degraded")
        .expect("Degraded");
    assert!(
        degraded.message.contains("founded with"),
        "{}",
        degraded.message
    );
    assert_eq!(pd.calls(), ["remove member 5", "remove member 4"]);
    let pd_set = stateful_set(&client, "search", "vec-pd")
        .await
        .expect("PD set");
    assert_eq!(replicas(&pd_set), 3);
    let args = pd_set
        .spec
        .and_then(|s| s.template.spec)
        .map(|p| p.containers[0].args.clone());
    let members = args
        .flatten()
        .and_then(|a| {
            a.iter()
                .skip_while(|x| *x != "--initial-members")
                .nth(1)
                .cloned()
        })
        .expect("initial members");
    assert_eq!(
        members.matches('=').count(),
        3,
        "the founders never change: {members}"
    );
}

#[tokio::test]
async fn phase_changes_are_published_as_events() {
    let client = ClientBuilder::new()
        .with_resource::<VectronCluster>()
        .with_resource::<k8s_openapi::api::events::v1::Event>()
        .with_runtime_objects(vec![fixture_json("invalid.yaml")])
        .build()
        .await
        .expect("fake client");
    let pd = FakePd::default();
    let mut ctx = context(client.clone(), &pd);
    ctx.events = Some(kube::runtime::events::Recorder::new(
        client.clone(),
        kube::runtime::events::Reporter {
            controller: "vectron-operator".into(),
            instance: Some("test".into()),
        },
    ));
    cluster::reconcile(&get_cluster(&client, "search", "broken").await, &ctx)
        .await
        .expect("reconcile");
    let events = Api::<k8s_openapi::api::events::v1::Event>::namespaced(client.clone(), "search")
        .list(&Default::default())
        .await
        .expect("list events");
    let event = events
        .items
        .iter()
        .find(|e| e.reason.as_deref() == Some("InvalidSpec"))
        .unwrap_or_else(|| panic!("an InvalidSpec event in {:?}", events.items));
    assert_eq!(event.type_.as_deref(), Some("Warning"));
    assert!(
        event
            .note
            .as_deref()
            .is_some_and(|n| n.contains("spec.pd.replicas")),
        "{event:?}"
    );
    assert_eq!(
        event.regarding.as_ref().and_then(|r| r.name.as_deref()),
        Some("broken")
    );
}

fn secret_text(secret: &Secret, key: &str) -> String {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|v| String::from_utf8(v.0.clone()).expect("utf-8"))
        .unwrap_or_default()
}

const ROLES: [vectron_tls::Role; 5] = vectron_operator::pki::CERT_ROLES;

async fn role_secrets(client: &Client) -> Vec<Secret> {
    let secrets = Api::<Secret>::namespaced(client.clone(), "search");
    let mut out = Vec::new();
    for role in ROLES {
        out.push(
            secrets
                .get(&format!("vec-internal-tls-{}", role.as_str()))
                .await
                .unwrap_or_else(|e| panic!("{} certificate: {e}", role.as_str())),
        );
    }
    out
}

#[tokio::test]
async fn the_operator_makes_a_ca_issues_each_role_a_certificate_and_renews_only_what_expires() {
    let client = client_with(vec![fixture_json("minimal.yaml")]).await;
    let pd = FakePd::default();
    let ctx = context(client.clone(), &pd);
    let vc = get_cluster(&client, "search", "vec").await;
    cluster::reconcile(&vc, &ctx).await.expect("reconcile");

    let secrets = Api::<Secret>::namespaced(client.clone(), "search");
    let ca = secrets.get("vec-internal-ca").await.expect("CA secret");
    let ca_pem = secret_text(&ca, "tls.crt");
    assert!(ca_pem.contains("BEGIN CERTIFICATE"), "{ca_pem}");
    let first = role_secrets(&client).await;
    let dir = tempfile::tempdir().expect("tempdir");
    for (role, secret) in ROLES.iter().zip(&first) {
        assert_eq!(secret_text(secret, "ca.crt"), ca_pem, "{}", role.as_str());
        let files = vectron_tls::TlsFiles::in_dir(dir.path(), role.as_str());
        std::fs::write(&files.ca, secret_text(secret, "ca.crt")).expect("write");
        std::fs::write(&files.cert, secret_text(secret, "tls.crt")).expect("write");
        std::fs::write(&files.key, secret_text(secret, "tls.key")).expect("write");
        let identity = vectron_tls::Identity::load(files)
            .unwrap_or_else(|e| panic!("{} certificate loads: {e}", role.as_str()));
        assert_eq!(
            identity.roles(),
            vectron_tls::RoleSet::of(&[*role]),
            "the certificate names exactly its role"
        );
        let not_after: i64 =
            secret.metadata.annotations.as_ref().expect("annotations")["vectron.io/not-after"]
                .parse()
                .expect("a number");
        assert_eq!(
            not_after,
            vectron_operator::reconcile::unix_seconds(&now()) + 90 * 86_400
        );
    }

    // Nothing is reissued while the certificates are fresh.
    let vc = get_cluster(&client, "search", "vec").await;
    cluster::reconcile(&vc, &ctx)
        .await
        .expect("reconcile again");
    let second = role_secrets(&client).await;
    for (before, after) in first.iter().zip(&second) {
        assert_eq!(before.data, after.data, "{:?} kept", before.metadata.name);
    }
    let ca_again = secrets.get("vec-internal-ca").await.expect("CA secret");
    assert_eq!(ca_again.data, ca.data, "the CA is made once");

    // The worker's certificate nears its expiry: it alone is renewed.
    let soon = vectron_operator::reconcile::unix_seconds(&now()) + 86_400;
    secrets
        .patch(
            "vec-internal-tls-worker",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"annotations": {"vectron.io/not-after": soon.to_string()}}}),
            ),
        )
        .await
        .expect("patch");
    let vc = get_cluster(&client, "search", "vec").await;
    cluster::reconcile(&vc, &ctx)
        .await
        .expect("reconcile after expiry");
    let third = role_secrets(&client).await;
    for ((role, before), after) in ROLES.iter().zip(&second).zip(&third) {
        if *role == vectron_tls::Role::Worker {
            assert_ne!(
                secret_text(before, "tls.crt"),
                secret_text(after, "tls.crt"),
                "the expiring worker certificate is renewed"
            );
            assert_eq!(secret_text(after, "ca.crt"), ca_pem, "by the same CA");
        } else {
            assert_eq!(before.data, after.data, "{} kept", role.as_str());
        }
    }
}

#[tokio::test]
async fn workers_may_not_go_below_a_collections_replication_factor() {
    let client = client_with(vec![
        fixture_json("minimal.yaml"),
        collection_json(json!({})),
    ])
    .await;
    let pd = FakePd::default();
    let ctx = context(client.clone(), &pd);
    cluster::reconcile(&get_cluster(&client, "search", "vec").await, &ctx)
        .await
        .expect("at three");
    set_workers(&client, 2).await;
    cluster::reconcile(&get_cluster(&client, "search", "vec").await, &ctx)
        .await
        .expect("refused as invalid");
    let workers = stateful_set(&client, "search", "vec-worker")
        .await
        .expect("workers");
    assert_eq!(replicas(&workers), 3, "nothing drains");
    assert!(pd.calls().is_empty(), "{:?}", pd.calls());
    let status = get_cluster(&client, "search", "vec")
        .await
        .status
        .expect("status");
    let degraded = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Degraded")
        .expect("Degraded");
    assert_eq!(degraded.reason, "InvalidSpec");
    assert!(
        degraded.message.starts_with("spec.workers.replicas:") && degraded.message.contains("docs"),
        "{}",
        degraded.message
    );
}
