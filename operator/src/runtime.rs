//! `vectron-operator run`: leader election on a Lease, the two controllers
//! (VectronCluster, owning its StatefulSets, Deployments and Services;
//! Collection), `/metrics` and `/healthz`, and graceful shutdown on
//! SIGTERM. Wiring only; the decisions live in `reconcile`. Does network
//! I/O (the Kubernetes API, PD, one HTTP listener).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Service;
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Client, Resource};
use tracing::{info, warn};

use crate::crd::{Collection, VectronCluster};
use crate::lease::{self, Elector};
use crate::placement::{GrpcPlacement, PdAccess};
use crate::reconcile::{self, Context, ReconcileError};

/// How `run` is configured.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Where `/metrics` and `/healthz` are served.
    pub metrics_addr: SocketAddr,
    /// Whether to hold a Lease before reconciling.
    pub leader_election: bool,
    /// Namespaces to watch; all when empty.
    pub namespaces: Vec<String>,
}

/// Why the operator stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// No Kubernetes configuration (in-cluster or kubeconfig).
    #[error("kubernetes client: {0}")]
    Client(#[from] kube::Error),
    /// The metrics listener could not bind.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// The Lease was lost; another replica leads now.
    #[error("lost the leader Lease")]
    LostLease,
}

/// Reconcile counters and durations by kind and outcome.
#[derive(Default)]
pub struct Metrics {
    counts: Mutex<BTreeMap<(&'static str, String), u64>>,
    seconds: Mutex<BTreeMap<&'static str, (f64, u64)>>,
}

impl Metrics {
    fn record(&self, kind: &'static str, outcome: String, took: Duration) {
        *self
            .counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((kind, outcome))
            .or_default() += 1;
        let mut seconds = self.seconds.lock().unwrap_or_else(|p| p.into_inner());
        let entry = seconds.entry(kind).or_default();
        entry.0 += took.as_secs_f64();
        entry.1 += 1;
    }

    /// The Prometheus text page.
    pub fn render(&self) -> String {
        let mut out = String::from(
            "# HELP vectron_operator_reconciles_total Reconciles by kind and outcome (ok or the failure reason).\n\
             # TYPE vectron_operator_reconciles_total counter\n",
        );
        for ((kind, outcome), n) in self.counts.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            out.push_str(&format!(
                "vectron_operator_reconciles_total{{kind=\"{kind}\",outcome=\"{outcome}\"}} {n}\n"
            ));
        }
        out.push_str(
            "# HELP vectron_operator_reconcile_seconds Time spent reconciling.\n\
             # TYPE vectron_operator_reconcile_seconds summary\n",
        );
        for (kind, (sum, count)) in self
            .seconds
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            out.push_str(&format!(
                "vectron_operator_reconcile_seconds_sum{{kind=\"{kind}\"}} {sum}\n\
                 vectron_operator_reconcile_seconds_count{{kind=\"{kind}\"}} {count}\n"
            ));
        }
        out
    }
}

fn outcome(result: &Result<reconcile::Requeue, ReconcileError>) -> String {
    match result {
        Ok(_) => "ok".into(),
        Err(ReconcileError::Apply(_)) => "apply".into(),
        Err(ReconcileError::Kube(_)) => "kube".into(),
        Err(ReconcileError::Placement(_)) => "pd".into(),
        Err(ReconcileError::Incomplete(_)) => "incomplete".into(),
        Err(ReconcileError::Random(_)) => "random".into(),
        Err(ReconcileError::Pki(_)) => "pki".into(),
        Err(ReconcileError::Encode(_)) => "encode".into(),
    }
}

struct Shared {
    ctx: Context<GrpcPlacement>,
    metrics: Arc<Metrics>,
}

async fn serve_metrics(addr: SocketAddr, metrics: Arc<Metrics>) -> Result<(), RunError> {
    use axum::routing::get;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| RunError::Bind { addr, source })?;
    let app = axum::Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/metrics",
            get(move || {
                let metrics = metrics.clone();
                async move { metrics.render() }
            }),
        );
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            warn!(error = %e, "metrics listener failed");
        }
    });
    Ok(())
}

/// The operator's own namespace: `POD_NAMESPACE` (the chart sets it), else
/// the service account's namespace file, else `default`.
fn operator_namespace() -> String {
    std::env::var("POD_NAMESPACE")
        .ok()
        .filter(|n| !n.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
                .ok()
                .map(|n| n.trim().to_owned())
                .filter(|n| !n.is_empty())
        })
        .unwrap_or_else(|| "default".into())
}

/// Waits until this replica holds the leader Lease, then keeps renewing
/// it in the background (exiting the process when it cannot for two
/// thirds of the lease: another replica may lead by then). Answers the
/// renewal task, to stop before the Lease is released.
async fn lead(client: Client) -> tokio::task::JoinHandle<()> {
    let mut elector = lease_elector(client);
    loop {
        match elector.try_hold().await {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => warn!(error = %e, "leader election"),
        }
        tokio::time::sleep(lease::POLL).await;
    }
    info!(identity = elector.identity(), "holding the leader Lease");
    tokio::spawn(async move {
        let mut renewed = Instant::now();
        loop {
            tokio::time::sleep(lease::POLL).await;
            let attempt = Instant::now();
            match elector.try_hold().await {
                Ok(true) => renewed = attempt,
                Ok(false) => {
                    tracing::error!("{}", RunError::LostLease);
                    std::process::exit(1);
                }
                // Stop at two thirds of the lease, measured from before the
                // last successful renewal, well before a rival may take it.
                Err(e)
                    if renewed.elapsed()
                        > Duration::from_secs(lease::LEASE_SECONDS as u64 * 2 / 3) =>
                {
                    tracing::error!(error = %e, "{}", RunError::LostLease);
                    std::process::exit(1);
                }
                Err(e) => warn!(error = %e, "renewing the leader Lease"),
            }
        }
    })
}

fn lease_elector(client: Client) -> Elector {
    let identity = std::env::var("POD_NAME").unwrap_or_else(|_| "vectron-operator".into());
    Elector::new(Api::namespaced(client, &operator_namespace()), identity)
}

/// Watches only the objects this operator labels as its own, so it does
/// not cache every StatefulSet, Deployment and Service of the cluster.
fn ours() -> watcher::Config {
    watcher::Config::default().labels(&format!(
        "{}={}",
        crate::labels::MANAGED_BY,
        crate::FIELD_MANAGER
    ))
}

fn api_for<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// Test-only: when set, every PD call goes to this `host:port` instead of
/// the cluster's PD Service, so the operator can drive PD and worker
/// processes on loopback under a real API server that runs no pods.
pub const TEST_PD_ADDR: &str = "VECTRON_OPERATOR_TEST_PD_ADDR";

/// The PD client for `access`, or for the test address when one is set.
fn placement_for(test_pd: Option<&str>, access: &PdAccess) -> GrpcPlacement {
    match test_pd {
        Some(endpoint) => GrpcPlacement::new(&PdAccess {
            endpoint: endpoint.to_owned(),
            security: access.security.clone(),
        }),
        None => GrpcPlacement::new(access),
    }
}

/// Runs the operator until SIGTERM.
pub async fn run(config: RunConfig) -> Result<(), RunError> {
    let client = Client::try_default().await?;
    let metrics = Arc::new(Metrics::default());
    serve_metrics(config.metrics_addr, metrics.clone()).await?;
    let renewal = if config.leader_election {
        Some(lead(client.clone()).await)
    } else {
        None
    };
    let shared = Arc::new(Shared {
        ctx: Context {
            client: client.clone(),
            placement: {
                let test_pd = std::env::var(TEST_PD_ADDR).ok().filter(|a| !a.is_empty());
                if let Some(addr) = &test_pd {
                    warn!(%addr, "{TEST_PD_ADDR} is set: every PD call goes there (tests only)");
                }
                Box::new(move |access| placement_for(test_pd.as_deref(), access))
            },
            now: reconcile::system_now,
            operator_namespace: operator_namespace(),
            events: Some(kube::runtime::events::Recorder::new(
                client.clone(),
                kube::runtime::events::Reporter {
                    controller: "vectron-operator".into(),
                    instance: std::env::var("POD_NAME").ok(),
                },
            )),
        },
        metrics,
    });
    let namespaces: Vec<Option<String>> = if config.namespaces.is_empty() {
        vec![None]
    } else {
        config.namespaces.into_iter().map(Some).collect()
    };
    let mut controllers = Vec::new();
    for namespace in &namespaces {
        let ns = namespace.as_deref();
        let clusters = Controller::new(
            api_for::<VectronCluster>(&client, ns),
            watcher::Config::default(),
        )
        .owns(api_for::<StatefulSet>(&client, ns), ours())
        .owns(api_for::<Deployment>(&client, ns), ours())
        .owns(api_for::<Service>(&client, ns), ours())
        .graceful_shutdown_on(shutdown_signal())
        .run(
            |object, shared: Arc<Shared>| async move {
                let started = Instant::now();
                let result = reconcile::cluster::reconcile(&object, &shared.ctx).await;
                shared
                    .metrics
                    .record("VectronCluster", outcome(&result), started.elapsed());
                result.map(|r| Action::requeue(r.0))
            },
            |_, error, _| {
                warn!(%error, "VectronCluster reconcile failed; retrying");
                Action::requeue(Duration::from_secs(10))
            },
            shared.clone(),
        )
        .for_each(|_| async {});
        let collections = Controller::new(
            api_for::<Collection>(&client, ns),
            watcher::Config::default(),
        )
        .graceful_shutdown_on(shutdown_signal())
        .run(
            |object, shared: Arc<Shared>| async move {
                let started = Instant::now();
                let result = reconcile::collection::reconcile(&object, &shared.ctx).await;
                shared
                    .metrics
                    .record("Collection", outcome(&result), started.elapsed());
                result.map(|r| Action::requeue(r.0))
            },
            |_, error, _| {
                warn!(%error, "Collection reconcile failed; retrying");
                Action::requeue(Duration::from_secs(10))
            },
            shared.clone(),
        )
        .for_each(|_| async {});
        controllers.push(Box::pin(async move {
            futures::join!(clusters, collections);
        }));
    }
    info!(namespaces = ?namespaces, "reconciling");
    futures::future::join_all(controllers).await;
    if let Some(renewal) = renewal {
        renewal.abort();
        match lease_elector(client).release().await {
            Ok(()) => info!("released the leader Lease"),
            Err(e) => warn!(error = %e, "could not release the leader Lease; it runs out instead"),
        }
    }
    info!("operator stopped");
    Ok(())
}
