//! The operator and its chart against a real Kubernetes API server (the
//! `e2e/apiserver` control plane: etcd, kube-apiserver with RBAC and
//! service-account tokens, kube-controller-manager; no scheduler or
//! kubelet, so Pods stay Pending): the CRDs through `kubectl apply` and
//! the server's own CEL, defaulting and strict field validation; the chart
//! through `helm install`, `upgrade` and `uninstall`; and the real
//! `vectron-operator` binary, authenticated with the chart's
//! ServiceAccount token so it has exactly the RBAC the chart grants,
//! reconciling `examples/cluster.yaml` and Collections, and two replicas of
//! it electing a leader.
//!
//! `#[ignore]`d: `scripts/test.sh` builds the control plane and runs them
//! with `--ignored` (see `control_plane`).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Pod, Secret, Service, ServiceAccount};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, Resource};
use serde_json::{Value, json};
use vectron_operator::crd::{Collection, VectronCluster};

use crate::control_plane::{ControlPlane, failed, stop, succeeded};
use crate::local_pd::LocalPd;
use vectron_operator::runtime::TEST_PD_ADDR;
use vectron_operator::scale::RegisteredState;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn path(relative: &str) -> String {
    repo().join(relative).display().to_string()
}

/// Polls `probe` every 250 ms until it answers `Some`, for at most `limit`.
async fn wait_for<T, F, Fut>(what: &str, limit: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn install_crds(plane: &ControlPlane) {
    succeeded(
        "kubectl apply crds/",
        &plane.kubectl(&[
            "apply",
            "--server-side",
            "--validate=strict",
            "-f",
            &path("crds"),
        ]),
    );
    succeeded(
        "CRDs established",
        &plane.kubectl(&[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/vectronclusters.vectron.io",
            "crd/collections.vectron.io",
        ]),
    );
}

fn create_namespace(plane: &ControlPlane, name: &str) {
    succeeded(
        "create namespace",
        &plane.kubectl(&["create", "namespace", name]),
    );
}

fn dynamic<K: Resource<DynamicType = ()>>(client: &Client, namespace: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), namespace, &ApiResource::erase::<K>(&()))
}

fn object<K: Resource<DynamicType = ()>>(name: &str, spec: Value) -> DynamicObject {
    let mut object = DynamicObject::new(name, &ApiResource::erase::<K>(&()));
    object.data = json!({ "spec": spec });
    object
}

/// The server's refusal of creating `spec`, as its message.
async fn refused<K: Resource<DynamicType = ()>>(api: &Api<DynamicObject>, spec: Value) -> String {
    match api
        .create(
            &PostParams::default(),
            &object::<K>("refused", spec.clone()),
        )
        .await
    {
        Ok(_) => panic!("the API server accepted {spec}"),
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 422, "{status:?}");
            status.message
        }
        Err(other) => panic!("not a refusal: {other}"),
    }
}

#[tokio::test]
#[ignore = "needs the real control plane: scripts/test.sh builds e2e/apiserver and runs these with --ignored"]
async fn the_api_server_takes_the_crds_and_enforces_their_rules() {
    let plane = ControlPlane::start();
    install_crds(&plane);
    create_namespace(&plane, "search");
    let client = plane.client().await;

    // Defaults are the server's, from the schema.
    let clusters = dynamic::<VectronCluster>(&client, "search");
    clusters
        .create(
            &PostParams::default(),
            &object::<VectronCluster>("small", json!({"image": "v:1"})),
        )
        .await
        .expect("a minimal cluster is accepted");
    let stored = clusters.get("small").await.expect("stored");
    let spec = &stored.data["spec"];
    assert_eq!(spec["pd"]["replicas"], json!(3), "{spec}");
    assert_eq!(spec["workers"]["replicas"], json!(3), "{spec}");
    assert_eq!(spec["internalTls"]["mode"], json!("Operator"), "{spec}");
    assert_eq!(spec["internalTls"]["certificateDays"], json!(90), "{spec}");

    for (spec, expected) in [
        (
            json!({"image": "v:1", "pd": {"replicas": 4}}),
            "pd.replicas must be odd",
        ),
        (
            json!({"image": "v:1", "workers": {"replicas": 0}}),
            "workers.replicas must be at least 1",
        ),
        (json!({"image": ""}), "image must not be empty"),
        (
            json!({"image": "v:1", "internalTls": {"mode": "CertManager"}}),
            "internalTls.issuerRef is required",
        ),
        (
            json!({"image": "v:1", "internalTls": {"certificateDays": 1}}),
            "certificateDays must be between 3 and 825",
        ),
        (
            json!({"image": "v:1", "gateway": {"tls": {"secretName": ""}}}),
            "gateway.tls.secretName must not be empty",
        ),
        (
            json!({"image": "v:1", "internalTls": {"mode": "Sometimes"}}),
            "Unsupported value",
        ),
    ] {
        let message = refused::<VectronCluster>(&clusters, spec.clone()).await;
        assert!(
            message.contains(expected),
            "{spec}: expected {expected:?} in {message}"
        );
    }
    clusters
        .create(
            &PostParams::default(),
            &object::<VectronCluster>(
                "managed",
                json!({"image": "v:1", "internalTls": {"mode": "CertManager", "issuerRef": {"name": "ca"}}}),
            ),
        )
        .await
        .expect("cert-manager mode with an issuer is accepted");

    // Strict field validation names an unknown field instead of dropping it.
    let manifest = "apiVersion: vectron.io/v1alpha1\nkind: VectronCluster\nmetadata: {name: typo, namespace: search}\nspec: {image: 'v:1', workers: {replica: 3}}\n";
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("typo.yaml");
    std::fs::write(&file, manifest).expect("write manifest");
    let error = failed(
        "apply with an unknown field",
        &plane.kubectl(&[
            "apply",
            "--server-side",
            "--validate=strict",
            "-f",
            &file.display().to_string(),
        ]),
    );
    assert!(error.contains("replica"), "{error}");

    // Collections: what PD cannot change after creation is immutable.
    let collections = dynamic::<Collection>(&client, "search");
    collections
        .create(
            &PostParams::default(),
            &object::<Collection>("docs", json!({"cluster": "small", "dimension": 384})),
        )
        .await
        .expect("a collection is accepted");
    let stored = collections.get("docs").await.expect("stored");
    assert_eq!(stored.data["spec"]["metric"], json!("cosine"));
    assert_eq!(stored.data["spec"]["shards"], json!(4));
    for (change, field) in [
        (json!({"dimension": 768}), "dimension"),
        (json!({"metric": "l2"}), "metric"),
        (json!({"shards": 8}), "shards"),
        (json!({"replicationFactor": 2}), "replicationFactor"),
        (json!({"hnsw": {"m": 32}}), "hnsw"),
    ] {
        match collections
            .patch(
                "docs",
                &PatchParams::default(),
                &Patch::Merge(json!({ "spec": change })),
            )
            .await
        {
            Err(kube::Error::Api(status)) => assert!(
                status.message.contains(&format!("{field} is immutable")),
                "{}",
                status.message
            ),
            other => panic!("changing {field} was not refused: {other:?}"),
        }
    }
    collections
        .patch(
            "docs",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"deletionPolicy": "Retain"}})),
        )
        .await
        .expect("the deletion policy may change");
}

const RELEASE: &str = "vectron-operator";
const OPERATOR_NAMESPACE: &str = "vectron-system";

fn helm_install(plane: &ControlPlane, extra: &[&str]) {
    let chart = path("charts/vectron-operator");
    let mut args = vec![
        "install",
        RELEASE,
        &chart,
        "--namespace",
        OPERATOR_NAMESPACE,
        "--create-namespace",
    ];
    args.extend_from_slice(extra);
    succeeded("helm install", &plane.helm(&args));
}

#[tokio::test]
#[ignore = "needs the real control plane: scripts/test.sh builds e2e/apiserver and runs these with --ignored"]
async fn helm_installs_upgrades_and_uninstalls_the_chart() {
    let plane = ControlPlane::start();
    helm_install(&plane, &[]);
    let client = plane.client().await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), OPERATOR_NAMESPACE);
    let deployment = deployments
        .get(RELEASE)
        .await
        .expect("the operator's Deployment");
    assert_eq!(deployment.spec.and_then(|s| s.replicas), Some(2));
    Api::<ServiceAccount>::namespaced(client.clone(), OPERATOR_NAMESPACE)
        .get(RELEASE)
        .await
        .expect("the ServiceAccount");
    Api::<Service>::namespaced(client.clone(), OPERATOR_NAMESPACE)
        .get(&format!("{RELEASE}-metrics"))
        .await
        .expect("the metrics Service");
    let roles: Api<ClusterRole> = Api::all(client.clone());
    roles.get(RELEASE).await.expect("the ClusterRole");
    succeeded(
        "the chart's CRDs are established",
        &plane.kubectl(&[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/vectronclusters.vectron.io",
            "crd/collections.vectron.io",
        ]),
    );
    // The Deployment's Pods are created by the controller-manager.
    let pods: Api<Pod> = Api::namespaced(client.clone(), OPERATOR_NAMESPACE);
    wait_for("the operator's Pod", Duration::from_secs(60), || async {
        let list = pods.list(&ListParams::default()).await.ok()?;
        (!list.items.is_empty()).then_some(())
    })
    .await;

    let chart = path("charts/vectron-operator");
    succeeded(
        "helm upgrade",
        &plane.helm(&[
            "upgrade",
            RELEASE,
            &chart,
            "--namespace",
            OPERATOR_NAMESPACE,
            "--set",
            "replicaCount=3",
            "--set",
            "logLevel=debug",
        ]),
    );
    let deployment = deployments.get(RELEASE).await.expect("the Deployment");
    assert_eq!(deployment.spec.as_ref().and_then(|s| s.replicas), Some(3));
    let env = deployment
        .spec
        .and_then(|s| s.template.spec)
        .and_then(|p| p.containers.into_iter().next())
        .and_then(|c| c.env)
        .unwrap_or_default();
    assert!(
        env.iter()
            .any(|e| e.name == "RUST_LOG" && e.value.as_deref() == Some("debug")),
        "{env:?}"
    );

    let refused = failed(
        "helm upgrade with a bad value",
        &plane.helm(&[
            "upgrade",
            RELEASE,
            &chart,
            "--namespace",
            OPERATOR_NAMESPACE,
            "--set",
            "replicaCount=0",
        ]),
    );
    assert!(refused.contains("replicaCount"), "{refused}");
    // Two operators without a Lease would both reconcile every cluster.
    let refused = failed(
        "helm upgrade with two replicas and no leader election",
        &plane.helm(&[
            "upgrade",
            RELEASE,
            &chart,
            "--namespace",
            OPERATOR_NAMESPACE,
            "--set",
            "replicaCount=2",
            "--set",
            "leaderElection.enabled=false",
        ]),
    );
    assert!(refused.contains("replicaCount"), "{refused}");
    let deployment = deployments.get(RELEASE).await.expect("the Deployment");
    assert_eq!(
        deployment.spec.as_ref().and_then(|s| s.replicas),
        Some(3),
        "a refused upgrade changes nothing"
    );

    succeeded(
        "helm uninstall",
        &plane.helm(&["uninstall", RELEASE, "--namespace", OPERATOR_NAMESPACE]),
    );
    assert!(deployments.get_opt(RELEASE).await.expect("get").is_none());
    assert!(roles.get_opt(RELEASE).await.expect("get").is_none());
}

/// A kubeconfig for the chart's ServiceAccount: the admin kubeconfig's
/// server and CA with a token from the TokenRequest API.
fn service_account_kubeconfig(plane: &ControlPlane, dir: &Path) -> PathBuf {
    let token = succeeded(
        "kubectl create token",
        &plane.kubectl(&[
            "create",
            "token",
            RELEASE,
            "--namespace",
            OPERATOR_NAMESPACE,
            "--duration=1h",
        ]),
    );
    let admin = std::fs::read_to_string(plane.kubeconfig()).expect("admin kubeconfig");
    let admin: Value = serde_saphyr::from_str(&admin).expect("kubeconfig YAML");
    let cluster = admin["clusters"][0]["cluster"].clone();
    let config = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "plane", "cluster": cluster}],
        "users": [{"name": "operator", "user": {"token": token.trim()}}],
        "contexts": [{"name": "operator", "context": {"cluster": "plane", "user": "operator"}}],
        "current-context": "operator",
    });
    let file = dir.join("operator.kubeconfig");
    std::fs::write(&file, config.to_string()).expect("write kubeconfig");
    file
}

/// The real operator binary, stopped when dropped.
struct Operator(Child);

impl Operator {
    fn start(kubeconfig: &Path, log: &Path, name: &str, leader_election: bool) -> Self {
        Self::start_with(kubeconfig, log, name, leader_election, &[])
    }

    fn start_with(
        kubeconfig: &Path,
        log: &Path,
        name: &str,
        leader_election: bool,
        env: &[(&str, &str)],
    ) -> Self {
        let log = std::fs::File::create(log).expect("operator log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_vectron-operator"));
        command.args(["run", "--metrics-addr", "127.0.0.1:0"]);
        if leader_election {
            command.arg("--leader-election");
        }
        let child = command
            .envs(env.iter().copied())
            .env("KUBECONFIG", kubeconfig)
            .env("POD_NAMESPACE", OPERATOR_NAMESPACE)
            .env("POD_NAME", name)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start vectron-operator");
        Operator(child)
    }

    fn running(&mut self) -> bool {
        matches!(self.0.try_wait(), Ok(None))
    }

    /// SIGKILL: no chance to finish what it was doing.
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        stop(&mut self.0, Duration::from_secs(10));
    }
}

/// A control plane with the chart installed, namespace `search`, and the
/// operator running (no leader election) with the chart's ServiceAccount;
/// its log is `operator.log` in the returned dir.
fn chart_and_operator() -> (ControlPlane, tempfile::TempDir, Operator) {
    let plane = ControlPlane::start();
    helm_install(&plane, &[]);
    create_namespace(&plane, "search");
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = service_account_kubeconfig(&plane, dir.path());
    let operator = Operator::start(
        &kubeconfig,
        &dir.path().join("operator.log"),
        "operator-under-test",
        false,
    );
    (plane, dir, operator)
}

fn controlled_by(meta: &kube::api::ObjectMeta, uid: &str) -> bool {
    meta.owner_references
        .iter()
        .flatten()
        .any(|o| o.uid == uid && o.controller == Some(true) && o.kind == "VectronCluster")
}

fn condition(cluster: &VectronCluster, type_: &str) -> Option<(String, String)> {
    cluster
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.message.clone()))
}

fn image_of(set: &StatefulSet) -> Option<String> {
    set.spec
        .as_ref()?
        .template
        .spec
        .as_ref()?
        .containers
        .first()?
        .image
        .clone()
}

#[tokio::test]
#[ignore = "needs the real control plane: scripts/test.sh builds e2e/apiserver and runs these with --ignored"]
async fn the_operator_reconciles_a_cluster_with_the_rbac_the_chart_grants() {
    let (plane, dir, mut operator) = chart_and_operator();
    let log = dir.path().join("operator.log");
    let operator_log = || std::fs::read_to_string(&log).unwrap_or_default();

    succeeded(
        "kubectl apply examples/cluster.yaml",
        &plane.kubectl(&[
            "apply",
            "--server-side",
            "--validate=strict",
            "--namespace",
            "search",
            "-f",
            &path("examples/cluster.yaml"),
        ]),
    );
    let client = plane.client().await;
    let clusters: Api<VectronCluster> = Api::namespaced(client.clone(), "search");
    let uid = clusters
        .get("demo")
        .await
        .expect("the cluster")
        .metadata
        .uid
        .expect("uid");

    // Every object the cluster needs, each owned by it.
    let sets: Api<StatefulSet> = Api::namespaced(client.clone(), "search");
    let limit = Duration::from_secs(90);
    for name in ["demo-pd", "demo-worker"] {
        let set = wait_for(&format!("StatefulSet {name}"), limit, || async {
            sets.get_opt(name).await.ok().flatten()
        })
        .await;
        assert!(controlled_by(&set.metadata, &uid), "{name} is not owned");
    }
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "search");
    for name in ["demo-gateway", "demo-auth"] {
        let deployment = wait_for(&format!("Deployment {name}"), limit, || async {
            deployments.get_opt(name).await.ok().flatten()
        })
        .await;
        assert!(
            controlled_by(&deployment.metadata, &uid),
            "{name} is not owned"
        );
    }
    let owned = |metas: Vec<kube::api::ObjectMeta>| {
        metas
            .into_iter()
            .filter(|m| controlled_by(m, &uid))
            .filter_map(|m| m.name)
            .collect::<Vec<_>>()
    };
    // One reconcile applies every kind in turn: wait for the last ones
    // (NetworkPolicies come last) before checking each kind.
    wait_for(
        "the cluster's NetworkPolicies and Secrets",
        limit,
        || async {
            let policies = Api::<NetworkPolicy>::namespaced(client.clone(), "search")
                .list(&ListParams::default())
                .await
                .ok()?;
            let secrets = Api::<Secret>::namespaced(client.clone(), "search")
                .list(&ListParams::default())
                .await
                .ok()?;
            let owned_policies = owned(policies.items.into_iter().map(|p| p.metadata).collect());
            let owned_secrets = owned(secrets.items.into_iter().map(|s| s.metadata).collect());
            (!owned_policies.is_empty() && owned_secrets.len() >= 5).then_some(())
        },
    )
    .await;
    let services = Api::<Service>::namespaced(client.clone(), "search")
        .list(&ListParams::default())
        .await
        .expect("services");
    let services = owned(services.items.into_iter().map(|s| s.metadata).collect());
    assert!(services.iter().any(|s| s == "demo-gateway"), "{services:?}");
    assert!(services.iter().any(|s| s == "demo-pd"), "{services:?}");
    let budgets = Api::<PodDisruptionBudget>::namespaced(client.clone(), "search")
        .list(&ListParams::default())
        .await
        .expect("budgets");
    assert!(
        owned(budgets.items.into_iter().map(|b| b.metadata).collect()).len() >= 2,
        "PD and worker budgets"
    );
    let policies = Api::<NetworkPolicy>::namespaced(client.clone(), "search")
        .list(&ListParams::default())
        .await
        .expect("policies");
    assert!(!owned(policies.items.into_iter().map(|p| p.metadata).collect()).is_empty());
    let secrets = Api::<Secret>::namespaced(client.clone(), "search")
        .list(&ListParams::default())
        .await
        .expect("secrets");
    let secrets = owned(secrets.items.into_iter().map(|s| s.metadata).collect());
    for expected in [
        "demo-internal-ca",
        "demo-internal-tls-pd",
        "demo-internal-tls-worker",
        "demo-jwt",
        "demo-admin",
    ] {
        assert!(
            secrets.iter().any(|s| s == expected),
            "{expected} missing from {secrets:?}"
        );
    }

    // The status subresource, and an Event.
    let cluster = wait_for("the status", limit, || async {
        let cluster = clusters.get("demo").await.ok()?;
        (cluster.status.as_ref()?.observed_generation == Some(1)).then_some(cluster)
    })
    .await;
    assert!(
        condition(&cluster, "Progressing").is_some(),
        "{:?}",
        cluster.status
    );
    let events: Api<Event> = Api::namespaced(client.clone(), "search");
    wait_for("an Event about the cluster", limit, || async {
        let list = events.list(&ListParams::default()).await.ok()?;
        list.items
            .iter()
            .any(|e| e.regarding.as_ref().and_then(|r| r.uid.as_deref()) == Some(uid.as_str()))
            .then_some(())
    })
    .await;
    // The controller-manager makes the StatefulSets' Pods.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "search");
    wait_for("the PD Pods", limit, || async {
        let list = pods
            .list(&ListParams::default().labels("app.kubernetes.io/component=pd"))
            .await
            .ok()?;
        (list.items.len() == 3).then_some(())
    })
    .await;

    // An admin password Secret that does not exist: the cluster says so
    // (Degraded, SecretMissing) until the Secret appears.
    clusters
        .patch(
            "demo",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"auth": {"adminPasswordSecretRef": {"name": "demo-own-admin", "key": "password"}}}})),
        )
        .await
        .expect("reference a Secret");
    let degraded = |cluster: &VectronCluster| {
        let status = cluster.status.as_ref()?;
        status
            .conditions
            .iter()
            .find(|c| c.type_ == "Degraded")
            .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
    };
    let missing = wait_for("SecretMissing", limit, || async {
        let cluster = clusters.get("demo").await.ok()?;
        let (status, reason, message) = degraded(&cluster)?;
        (status == "True" && reason == "SecretMissing").then_some(message)
    })
    .await;
    assert!(
        missing.contains("adminPasswordSecretRef") && missing.contains("demo-own-admin"),
        "{missing}"
    );
    Api::<Secret>::namespaced(client.clone(), "search")
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "demo-own-admin"},
                "stringData": {"password": "chosen-by-the-user"},
            }))
            .expect("secret"),
        )
        .await
        .expect("create the Secret");
    wait_for("SecretMissing to clear", limit, || async {
        let cluster = clusters.get("demo").await.ok()?;
        let (_, reason, _) = degraded(&cluster)?;
        (reason != "SecretMissing").then_some(())
    })
    .await;

    // PD is unreachable (its Pods never run): a worker scale-down is held
    // back with a condition and a Warning, while an image change still
    // rolls out.
    clusters
        .patch(
            "demo",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"image": "ghcr.io/vectron/vectron:0.1.1", "workers": {"replicas": 2}}})),
        )
        .await
        .expect("edit the cluster");
    let cluster = wait_for("PdUnreachable", limit, || async {
        let cluster = clusters.get("demo").await.ok()?;
        let (status, _) = condition(&cluster, "PdUnreachable")?;
        (status == "True" && cluster.status.as_ref()?.observed_generation == Some(3))
            .then_some(cluster)
    })
    .await;
    assert_eq!(
        cluster
            .status
            .as_ref()
            .and_then(|s| s.workers.as_ref())
            .map(|w| w.draining.clone()),
        Some(vec!["demo-worker-2".to_owned()])
    );
    let workers = sets.get("demo-worker").await.expect("workers");
    assert_eq!(
        workers.spec.as_ref().and_then(|s| s.replicas),
        Some(3),
        "no worker leaves undrained"
    );
    assert_eq!(
        image_of(&workers).as_deref(),
        Some("ghcr.io/vectron/vectron:0.1.1")
    );
    let pd = sets.get("demo-pd").await.expect("pd");
    assert_eq!(
        image_of(&pd).as_deref(),
        Some("ghcr.io/vectron/vectron:0.1.1")
    );
    wait_for("a PdCallsFailed Warning", limit, || async {
        let list = events.list(&ListParams::default()).await.ok()?;
        list.items
            .iter()
            .any(|e| {
                e.reason.as_deref() == Some("PdCallsFailed")
                    && e.type_.as_deref() == Some("Warning")
            })
            .then_some(())
    })
    .await;

    // Scaling back up cancels the scale-down: the draining list clears in
    // the stored status and no drain is asked for any more. PD is still
    // unreachable, so the condition stays True, naming only the lists the
    // operator reads from PD every round.
    clusters
        .patch(
            "demo",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"workers": {"replicas": 3}}})),
        )
        .await
        .expect("scale back");
    let cluster = wait_for("the scale-down to be cancelled", limit, || async {
        let cluster = clusters.get("demo").await.ok()?;
        let status = cluster.status.as_ref()?;
        let draining = status.workers.as_ref()?.draining.clone();
        (status.observed_generation == Some(4) && draining.is_empty()).then_some(cluster)
    })
    .await;
    let (unreachable, why) = condition(&cluster, "PdUnreachable").expect("condition");
    assert_eq!(unreachable, "True", "PD never ran");
    assert!(
        why.contains("listing workers") && !why.contains("draining demo-worker-2"),
        "{why}"
    );
    let stored = dynamic::<VectronCluster>(&client, "search")
        .get("demo")
        .await
        .expect("raw cluster");
    assert!(
        stored.data["status"]["workers"].get("draining").is_none(),
        "a cancelled drain stays in the status: {}",
        stored.data["status"]
    );
    assert!(cluster.status.is_some());

    // Deleting the cluster garbage-collects what it owned.
    clusters
        .delete("demo", &Default::default())
        .await
        .expect("delete the cluster");
    wait_for("garbage collection", limit, || async {
        let left = sets.list(&ListParams::default()).await.ok()?;
        left.items.is_empty().then_some(())
    })
    .await;
    assert!(
        operator.running(),
        "the operator exited:\n{}",
        operator_log()
    );
    let log = operator_log();
    assert!(
        !log.contains("forbidden"),
        "the chart's RBAC refused the operator something:\n{log}"
    );
}

fn holder(lease: Option<Lease>) -> Option<String> {
    lease?.spec?.holder_identity.filter(|h| !h.is_empty())
}

#[tokio::test]
#[ignore = "needs the real control plane: scripts/test.sh builds e2e/apiserver and runs these with --ignored"]
async fn one_of_two_operators_leads_and_hands_over_when_it_dies_or_stops() {
    let plane = ControlPlane::start();
    helm_install(&plane, &[]);
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = service_account_kubeconfig(&plane, dir.path());
    let client = plane.client().await;
    let leases: Api<Lease> = Api::namespaced(client.clone(), OPERATOR_NAMESPACE);
    let lease_of = || async {
        holder(
            leases
                .get_opt(vectron_operator::lease::LEASE_NAME)
                .await
                .ok()?,
        )
    };
    let limit = Duration::from_secs(60);

    let mut first = Operator::start(&kubeconfig, &dir.path().join("a.log"), "operator-a", true);
    wait_for("operator-a to lead", limit, || async {
        (lease_of().await.as_deref() == Some("operator-a")).then_some(())
    })
    .await;
    let mut second = Operator::start(&kubeconfig, &dir.path().join("b.log"), "operator-b", true);
    // Several of b's polls: it waits while a renews.
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(lease_of().await.as_deref(), Some("operator-a"));
    assert!(second.running(), "the waiting replica exited");

    // a dies without a word: b takes over once a's record stood still for
    // a whole lease.
    let _ = first.0.kill();
    let _ = first.0.wait();
    let died = Instant::now();
    wait_for("operator-b to take over", limit, || async {
        (lease_of().await.as_deref() == Some("operator-b")).then_some(())
    })
    .await;
    let took = died.elapsed();
    eprintln!("takeover {took:?} after the leader was killed");
    let lease_time = Duration::from_secs(vectron_operator::lease::LEASE_SECONDS as u64);
    // b starts counting when it first sees a's last renewal, at most one
    // poll after a made it.
    assert!(
        took + vectron_operator::lease::POLL >= lease_time,
        "b took over after {took:?}, before a's lease of {lease_time:?} ran out"
    );

    // b stops on SIGTERM and gives the Lease up on its way out.
    stop(&mut second.0, Duration::from_secs(20));
    assert_eq!(
        lease_of().await,
        None,
        "a replica stopped by SIGTERM leaves the Lease held:\n{}",
        std::fs::read_to_string(dir.path().join("b.log")).unwrap_or_default()
    );
}

fn finalizers(collection: &DynamicObject) -> Vec<String> {
    collection.metadata.finalizers.clone().unwrap_or_default()
}

#[tokio::test]
#[ignore = "needs the real control plane: scripts/test.sh builds e2e/apiserver and runs these with --ignored"]
async fn collections_follow_their_deletion_policy_and_keep_other_controllers_finalizers() {
    let (plane, dir, mut operator) = chart_and_operator();
    let log = dir.path().join("operator.log");
    succeeded(
        "kubectl apply examples/cluster.yaml",
        &plane.kubectl(&[
            "apply",
            "--server-side",
            "--namespace",
            "search",
            "-f",
            &path("examples/cluster.yaml"),
        ]),
    );
    let client = plane.client().await;
    let collections = dynamic::<Collection>(&client, "search");
    let limit = Duration::from_secs(60);
    collections
        .create(
            &PostParams::default(),
            &object::<Collection>(
                "kept",
                json!({"cluster": "demo", "dimension": 8, "deletionPolicy": "Retain", "replicationFactor": 1}),
            ),
        )
        .await
        .expect("create kept");
    let mut dropped = object::<Collection>("dropped", json!({"cluster": "demo", "dimension": 8}));
    dropped.metadata.finalizers = Some(vec!["other.example/keep".into()]);
    collections
        .create(&PostParams::default(), &dropped)
        .await
        .expect("create dropped");

    // Delete (the default) gets the operator's finalizer beside the other.
    wait_for("the operator's finalizer", limit, || async {
        let found = collections.get("dropped").await.ok()?;
        let list = finalizers(&found);
        (list.contains(&"vectron.io/drop-collection".to_owned())
            && list.contains(&"other.example/keep".to_owned()))
        .then_some(())
    })
    .await;
    // PD cannot be reached: the status says so, through the subresource.
    let kept = wait_for("kept's status", limit, || async {
        let found = collections.get("kept").await.ok()?;
        let reason = found.data["status"]["conditions"][0]["reason"]
            .as_str()?
            .to_owned();
        (reason == "PdUnreachable").then_some(found)
    })
    .await;
    assert!(finalizers(&kept).is_empty(), "Retain needs no finalizer");

    // A factor-1 collection cannot lose a worker: the workers' budget
    // allows no voluntary eviction while it exists, one at a time after.
    let budgets: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), "search");
    let allowed = |budget: Option<PodDisruptionBudget>| {
        budget?.spec?.max_unavailable.map(|m| match m {
            k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(n) => n,
            k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(_) => -1,
        })
    };
    wait_for("a worker budget of none unavailable", limit, || async {
        (allowed(budgets.get_opt("demo-worker").await.ok()?) == Some(0)).then_some(())
    })
    .await;

    // Retain: deleted at once.
    collections
        .delete("kept", &Default::default())
        .await
        .expect("delete kept");
    wait_for("kept to go", limit, || async {
        collections
            .get_opt("kept")
            .await
            .ok()
            .and_then(|found| found.is_none().then_some(()))
    })
    .await;
    wait_for("the worker budget back at one", limit, || async {
        (allowed(budgets.get_opt("demo-worker").await.ok()?) == Some(1)).then_some(())
    })
    .await;

    // Delete: held while PD cannot drop the data.
    collections
        .delete("dropped", &Default::default())
        .await
        .expect("delete dropped");
    tokio::time::sleep(Duration::from_secs(5)).await;
    let held = collections.get("dropped").await.expect("still there");
    assert!(held.metadata.deletion_timestamp.is_some());
    assert_eq!(finalizers(&held).len(), 2, "{:?}", finalizers(&held));

    // Switched to Retain mid-deletion, the operator lets go of its own
    // finalizer only; the other controller's stays until that one is done.
    collections
        .patch(
            "dropped",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"deletionPolicy": "Retain"}})),
        )
        .await
        .expect("switch to Retain");
    wait_for("only the other finalizer left", limit, || async {
        let found = collections.get("dropped").await.ok()?;
        (finalizers(&found) == ["other.example/keep"]).then_some(())
    })
    .await;
    collections
        .patch(
            "dropped",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await
        .expect("the other controller lets go");
    wait_for("dropped to go", limit, || async {
        collections
            .get_opt("dropped")
            .await
            .ok()
            .and_then(|found| found.is_none().then_some(()))
    })
    .await;
    assert!(
        operator.running(),
        "the operator exited:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
}

/// Workers PD lists and has not removed, by name: (state, replicas).
async fn pd_workers(
    pd: &impl vectron_operator::placement::Placement,
) -> Option<std::collections::BTreeMap<String, (RegisteredState, u32)>> {
    Some(
        pd.workers()
            .await
            .ok()?
            .into_iter()
            .filter(|w| w.state != RegisteredState::Removed)
            .map(|w| (w.name, (w.state, w.replicas)))
            .collect(),
    )
}

fn worker_replicas(set: &StatefulSet) -> i32 {
    set.spec.as_ref().and_then(|s| s.replicas).unwrap_or(-1)
}

#[tokio::test]
#[ignore = "needs the real control plane: scripts/test.sh builds e2e/apiserver and runs these with --ignored"]
async fn pd_facing_steps_drive_real_pd_and_worker_processes() {
    use vectron_operator::placement::Placement;
    let plane = ControlPlane::start();
    helm_install(&plane, &[]);
    create_namespace(&plane, "search");
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = service_account_kubeconfig(&plane, dir.path());
    let mut local = LocalPd::start("demo", 5);
    let pd_addr = local.addr.clone();
    let start_operator = |name: &str| {
        Operator::start_with(
            &kubeconfig,
            &dir.path().join(format!("{name}.log")),
            name,
            false,
            &[(TEST_PD_ADDR, pd_addr.as_str())],
        )
    };
    let mut operator = start_operator("operator-a");
    let client = plane.client().await;
    let limit = Duration::from_secs(120);
    let pd = local.placement();

    dynamic::<VectronCluster>(&client, "search")
        .create(
            &PostParams::default(),
            &object::<VectronCluster>(
                "demo",
                json!({
                    "image": "ghcr.io/vectron/vectron:0.1.0",
                    "pd": {"replicas": 1},
                    "workers": {"replicas": 5},
                    "auth": {"enabled": false},
                    "internalTls": {"mode": "Disabled"},
                }),
            ),
        )
        .await
        .expect("create the cluster");
    dynamic::<Collection>(&client, "search")
        .create(
            &PostParams::default(),
            &object::<Collection>(
                "docs",
                json!({"cluster": "demo", "dimension": 8, "shards": 4, "replicationFactor": 3}),
            ),
        )
        .await
        .expect("create the collection");
    // The operator creates the collection in PD; PD places 4 × 3 replicas
    // on the five workers.
    wait_for("the collection placed on five workers", limit, || async {
        let info = pd.collection("docs").await.ok()??;
        let workers = pd_workers(&pd).await?;
        let held: u32 = workers.values().map(|(_, r)| r).sum();
        (info.shards_ready == 4 && workers.len() == 5 && held == 12).then_some(())
    })
    .await;

    let clusters: Api<VectronCluster> = Api::namespaced(client.clone(), "search");
    let sets: Api<StatefulSet> = Api::namespaced(client.clone(), "search");
    let set_workers = |replicas: i32| {
        let clusters = clusters.clone();
        async move {
            clusters
                .patch(
                    "demo",
                    &PatchParams::default(),
                    &Patch::Merge(json!({"spec": {"workers": {"replicas": replicas}}})),
                )
                .await
                .expect("scale the workers")
        }
    };

    // 5 → 3: the operator asks PD to drain the two leaving workers. It is
    // killed mid-drain, and the scale-down is reversed while it is away.
    set_workers(3).await;
    wait_for("the drain to start", limit, || async {
        let status = clusters.get("demo").await.ok()?.status?;
        (status.observed_generation == Some(2) && !status.workers?.draining.is_empty())
            .then_some(())
    })
    .await;
    operator.kill();
    let workers = pd_workers(&pd).await.expect("PD answers");
    for leaving in ["demo-worker-3", "demo-worker-4"] {
        assert_eq!(
            workers.get(leaving).map(|(state, _)| *state),
            Some(RegisteredState::Draining),
            "{workers:?}"
        );
    }
    assert_eq!(
        worker_replicas(&sets.get("demo-worker").await.expect("workers")),
        5,
        "nothing shrinks before PD has drained"
    );
    set_workers(5).await;
    let mut operator = start_operator("operator-b");
    wait_for("the drains cancelled in PD", limit, || async {
        let workers = pd_workers(&pd).await?;
        let status = clusters.get("demo").await.ok()?.status?;
        (workers.len() == 5
            && workers
                .values()
                .all(|(state, _)| *state == RegisteredState::Up)
            && status.observed_generation == Some(3)
            && status.workers?.draining.is_empty())
        .then_some(())
    })
    .await;
    assert_eq!(
        worker_replicas(&sets.get("demo-worker").await.expect("workers")),
        5
    );

    // 5 → 3 to the end: the StatefulSet shrinks only once PD has moved
    // every replica off the leaving workers, then they leave PD.
    set_workers(3).await;
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let replicas = worker_replicas(&sets.get("demo-worker").await.expect("workers"));
        if let Some(workers) = pd_workers(&pd).await {
            if replicas < 5 {
                for leaving in ["demo-worker-3", "demo-worker-4"] {
                    if let Some((_, held)) = workers.get(leaving) {
                        assert_eq!(
                            *held, 0,
                            "the StatefulSet shrank under {leaving}: {workers:?}"
                        );
                    }
                }
            }
            let names: Vec<&str> = workers.keys().map(String::as_str).collect();
            if replicas == 3 && names == ["demo-worker-0", "demo-worker-1", "demo-worker-2"] {
                break;
            }
        }
        // The kubelet stops the pods the StatefulSet no longer has.
        local.follow(replicas);
        assert!(
            Instant::now() < deadline,
            "the scale-down did not finish: {:?}\n{}",
            pd_workers(&pd).await,
            local.logs()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    wait_for("every shard whole on the three", limit, || async {
        let info = pd.collection("docs").await.ok()??;
        let held: u32 = pd_workers(&pd).await?.values().map(|(_, r)| r).sum();
        (info.shards_ready == 4 && held == 12).then_some(())
    })
    .await;

    // Fewer workers than the collection's replication factor could never
    // finish draining: refused, naming the field, and nothing shrinks.
    set_workers(2).await;
    let refusal = wait_for(
        "workers below the replication factor refused",
        limit,
        || async {
            let cluster = clusters.get("demo").await.ok()?;
            let degraded = cluster.status?.conditions.into_iter().find(|c| {
                c.type_ == "Degraded" && c.status == "True" && c.reason == "InvalidSpec"
            })?;
            Some(degraded.message)
        },
    )
    .await;
    assert!(
        refusal.contains("workers.replicas") && refusal.contains("docs"),
        "{refusal}"
    );
    assert_eq!(
        worker_replicas(&sets.get("demo-worker").await.expect("workers")),
        3
    );
    assert_eq!(pd_workers(&pd).await.map(|w| w.len()), Some(3));
    set_workers(3).await;

    // One PD member: no budget that would block every node drain. The
    // workers take their zone from their node's label (the server accepts
    // the downward-API reference).
    assert!(
        Api::<PodDisruptionBudget>::namespaced(client.clone(), "search")
            .get_opt("demo-pd")
            .await
            .expect("budgets")
            .is_none()
    );
    let template = sets
        .get("demo-worker")
        .await
        .expect("workers")
        .spec
        .expect("spec")
        .template;
    let env = template.spec.expect("pod").containers[0]
        .env
        .clone()
        .unwrap_or_default();
    assert!(
        env.iter().any(|e| e.name == "VECTRON_ZONE"
            && e.value_from
                .as_ref()
                .and_then(|v| v.field_ref.as_ref())
                .map(|f| f.field_path.as_str())
                == Some("metadata.labels['topology.kubernetes.io/zone']")),
        "{env:?}"
    );

    // PD down: only the PD-facing steps wait; an image change rolls out.
    local.stop_pd();
    clusters
        .patch(
            "demo",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"image": "ghcr.io/vectron/vectron:0.1.1"}})),
        )
        .await
        .expect("change the image");
    wait_for("PdUnreachable while the image rolls out", limit, || async {
        let cluster = clusters.get("demo").await.ok()?;
        let (status, _) = condition(&cluster, "PdUnreachable")?;
        let image = image_of(&sets.get("demo-worker").await.ok()?)?;
        (status == "True" && image.ends_with(":0.1.1")).then_some(())
    })
    .await;
    local.start_pd();
    wait_for("PD answering again", limit, || async {
        let cluster = clusters.get("demo").await.ok()?;
        let (status, _) = condition(&cluster, "PdUnreachable")?;
        (status == "False").then_some(())
    })
    .await;

    // Behind a LoadBalancer clients come from outside the cluster, which
    // no namespace selector matches: the gateway's policy admits its API
    // ports from every source.
    clusters
        .patch(
            "demo",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"gateway": {"service": {"type": "LoadBalancer"}}}})),
        )
        .await
        .expect("expose the gateway");
    let policies: Api<NetworkPolicy> = Api::namespaced(client.clone(), "search");
    wait_for(
        "the gateway's API ports open to every source",
        limit,
        || async {
            let rules = policies.get("demo-gateway").await.ok()?.spec?.ingress?;
            rules
                .iter()
                .any(|rule| {
                    rule.from.is_none()
                        && rule.ports.iter().flatten().any(|p| {
                            p.port
                                == Some(
                                    k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(
                                        7333,
                                    ),
                                )
                        })
                })
                .then_some(())
        },
    )
    .await;

    let log = std::fs::read_to_string(dir.path().join("operator-b.log")).unwrap_or_default();
    assert!(
        operator.running(),
        "the operator exited:\n{log}\n{}",
        local.logs()
    );
    assert!(!log.contains("forbidden"), "RBAC refused something:\n{log}");
}
