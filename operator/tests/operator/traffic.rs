//! Exact-traffic tests: the Collection reconcile against a mocked API
//! server (tower-test), asserting each request's method, path, content
//! type and body — the finalizer release on deletion and the status patch.

use std::pin::pin;

use http::{Request, Response};
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};
use tower_test::mock;
use vectron_operator::crd::Collection;
use vectron_operator::placement::{
    CollectionInfo, NewCollection, Placement, PlacementError, WorkerInfo,
};
use vectron_operator::reconcile::{Context, collection};
use vectron_operator::scale::RegisteredWorker;

/// A PD that holds one ready collection and records drops.
#[derive(Clone, Default)]
struct ReadyPd(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl Placement for ReadyPd {
    async fn drain_worker(&self, _: &str) -> Result<(), PlacementError> {
        Ok(())
    }
    async fn undrain_worker(&self, _: &str) -> Result<(), PlacementError> {
        Ok(())
    }
    async fn workers(&self) -> Result<Vec<RegisteredWorker>, PlacementError> {
        Ok(Vec::new())
    }
    async fn worker(&self, _: &str) -> Result<Option<WorkerInfo>, PlacementError> {
        Ok(None)
    }
    async fn remove_worker(&self, _: &str) -> Result<(), PlacementError> {
        Ok(())
    }
    async fn remove_member(&self, _: u64) -> Result<(), PlacementError> {
        Ok(())
    }
    async fn create_collection(&self, _: &NewCollection) -> Result<(), PlacementError> {
        Ok(())
    }
    async fn collection(&self, _: &str) -> Result<Option<CollectionInfo>, PlacementError> {
        Ok(Some(CollectionInfo {
            shards: 2,
            shards_ready: 2,
            points: 77,
        }))
    }
    async fn drop_collection(&self, name: &str) -> Result<(), PlacementError> {
        self.0.lock().expect("lock").push(format!("drop {name}"));
        Ok(())
    }
    async fn replication_factors(&self) -> Result<Vec<u32>, PlacementError> {
        Ok(vec![3])
    }
}

fn cluster_json() -> Value {
    json!({
        "apiVersion": "vectron.io/v1alpha1",
        "kind": "VectronCluster",
        "metadata": {"name": "vec", "namespace": "search", "uid": "u-1"},
        "spec": {"image": "v:1"},
    })
}

fn collection(meta: Value) -> Collection {
    let mut metadata =
        json!({"name": "docs", "namespace": "search", "uid": "c-1", "generation": 3});
    if let (Some(m), Some(extra)) = (metadata.as_object_mut(), meta.as_object()) {
        m.extend(extra.clone());
    }
    serde_json::from_value(json!({
        "apiVersion": "vectron.io/v1alpha1",
        "kind": "Collection",
        "metadata": metadata,
        "spec": {"cluster": "vec", "dimension": 8, "metric": "l2", "shards": 2},
    }))
    .expect("collection")
}

fn respond(value: &Value) -> Response<Body> {
    Response::new(Body::from(serde_json::to_vec(value).expect("json")))
}

/// The next request: method, path with query, content type and JSON body.
async fn next(
    handle: &mut std::pin::Pin<&mut mock::Handle<Request<Body>, Response<Body>>>,
) -> (
    String,
    String,
    String,
    Value,
    mock::SendResponse<Response<Body>>,
) {
    let (request, send) = handle.next_request().await.expect("a request");
    let method = request.method().to_string();
    let uri = request.uri().to_string();
    let content_type = request
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let bytes = request.into_body().collect_bytes().await.expect("body");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).expect("JSON body")
    };
    (method, uri, content_type, body, send)
}

/// Answers the read of the operator's certificate for cluster `vec` (the
/// PD client's identity), which follows the read of the cluster.
async fn answer_operator_certificate(
    handle: &mut std::pin::Pin<&mut mock::Handle<Request<Body>, Response<Body>>>,
) {
    let (method, uri, _, _, send) = next(handle).await;
    assert_eq!(
        (method.as_str(), uri.as_str()),
        (
            "GET",
            "/api/v1/namespaces/search/secrets/vec-internal-tls-operator"
        )
    );
    send.send_response(respond(&json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "vec-internal-tls-operator", "namespace": "search"},
        "type": "kubernetes.io/tls",
        // "CA", "CERT", "KEY"
        "data": {"ca.crt": "Q0E=", "tls.crt": "Q0VSVA==", "tls.key": "S0VZ"},
    })));
}

fn context(client: Client, pd: &ReadyPd) -> Context<ReadyPd> {
    let pd = pd.clone();
    Context {
        client,
        placement: Box::new(move |_| pd.clone()),
        now: || "2026-11-23T12:00:00Z".into(),
        events: None,
        operator_namespace: "vectron-system".into(),
    }
}

#[tokio::test]
async fn deleting_drops_in_pd_then_releases_exactly_the_finalizer() {
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    let pd = ReadyPd::default();
    let docs = collection(json!({
        "finalizers": ["other.example/keep", collection::FINALIZER],
        "deletionTimestamp": "2026-11-23T11:00:00Z",
        "resourceVersion": "41",
    }));
    let server = tokio::spawn(async move {
        let mut handle = pin!(handle);
        let (method, uri, _, _, send) = next(&mut handle).await;
        assert_eq!(
            (method.as_str(), uri.as_str()),
            (
                "GET",
                "/apis/vectron.io/v1alpha1/namespaces/search/vectronclusters/vec"
            )
        );
        send.send_response(respond(&cluster_json()));
        answer_operator_certificate(&mut handle).await;
        let (method, uri, content_type, body, send) = next(&mut handle).await;
        assert_eq!(method, "PATCH");
        assert_eq!(
            uri,
            "/apis/vectron.io/v1alpha1/namespaces/search/collections/docs?"
        );
        assert_eq!(content_type, "application/merge-patch+json");
        assert_eq!(
            body,
            json!({"metadata": {"finalizers": ["other.example/keep"], "resourceVersion": "41"}}),
            "only our finalizer goes, and only from the version read"
        );
        send.send_response(respond(&json!({
            "apiVersion": "vectron.io/v1alpha1", "kind": "Collection",
            "metadata": {"name": "docs", "namespace": "search", "finalizers": ["other.example/keep"]},
            "spec": {"cluster": "vec", "dimension": 8},
        })));
    });
    let client = Client::new(service, "search");
    collection::reconcile(&docs, &context(client, &pd))
        .await
        .expect("reconcile");
    server.await.expect("mock server");
    assert_eq!(*pd.0.lock().expect("lock"), ["drop docs"]);
}

#[tokio::test]
async fn a_ready_collection_gets_one_status_patch_with_its_counts() {
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    let pd = ReadyPd::default();
    let docs = collection(json!({"finalizers": [collection::FINALIZER]}));
    let server = tokio::spawn(async move {
        let mut handle = pin!(handle);
        let (method, _, _, _, send) = next(&mut handle).await;
        assert_eq!(method, "GET");
        send.send_response(respond(&cluster_json()));
        answer_operator_certificate(&mut handle).await;
        let (method, uri, content_type, body, send) = next(&mut handle).await;
        assert_eq!(method, "PATCH");
        assert_eq!(
            uri,
            "/apis/vectron.io/v1alpha1/namespaces/search/collections/docs/status?"
        );
        assert_eq!(content_type, "application/merge-patch+json");
        let status = &body["status"];
        assert_eq!(status["phase"], "Ready");
        assert_eq!(status["shardsReady"], 2);
        assert_eq!(status["points"], 77);
        assert_eq!(status["observedGeneration"], 3);
        assert_eq!(status["conditions"][0]["type"], "Ready");
        assert_eq!(status["conditions"][0]["status"], "True");
        assert_eq!(
            status["conditions"][0]["lastTransitionTime"],
            "2026-11-23T12:00:00Z"
        );
        assert_eq!(
            body.as_object().map(|o| o.len()),
            Some(1),
            "only status: {body}"
        );
        send.send_response(respond(&json!({
            "apiVersion": "vectron.io/v1alpha1", "kind": "Collection",
            "metadata": {"name": "docs", "namespace": "search"},
            "spec": {"cluster": "vec", "dimension": 8},
        })));
    });
    let client = Client::new(service, "search");
    collection::reconcile(&docs, &context(client, &pd))
        .await
        .expect("reconcile");
    server.await.expect("mock server");
    assert!(pd.0.lock().expect("lock").is_empty(), "nothing dropped");
}
