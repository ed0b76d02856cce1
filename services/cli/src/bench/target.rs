//! What `vectron bench` measures: a running Vectron over REST, over the
//! gateway's gRPC API, or one worker directly over gRPC (found through PD),
//! Vectron's own shard index in this process (the search walk with no
//! request path around it), and raw hnsw_rs in this process as the baseline. Each target creates its
//! collection, takes batches of points, reports how many are searchable and
//! answers searches with the ids of its hits. Does network I/O.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use hnsw_rs::prelude::{DistDot, DistL2, Hnsw};
use thiserror::Error;
use tonic::transport::Channel;
use vectron_proto::common::v1 as common;
use vectron_proto::pd::v1 as pd;
use vectron_proto::v1 as api;
use vectron_proto::v1::vectron_client::VectronClient;
use vectron_proto::worker::v1 as wk;
use vectron_proto::worker::v1::worker_client::WorkerClient;
use vectron_worker::distance::Metric;

use super::filtered::{TagFilter, tag_payload};

/// A failed benchmark step.
#[derive(Debug, Error)]
#[error("{target}: {what}: {reason}")]
pub struct TargetError {
    /// The target's name.
    pub target: String,
    /// The step.
    pub what: &'static str,
    /// The cause.
    pub reason: String,
}

/// A boxed future, so each target can answer through one interface.
pub type Reply<'a, T> = Pin<Box<dyn Future<Output = Result<T, TargetError>> + Send + 'a>>;

/// Collection settings shared by every target.
#[derive(Debug, Clone)]
pub struct CollectionSpec {
    /// Collection name.
    pub name: String,
    /// Components per vector.
    pub dimension: usize,
    /// Distance.
    pub metric: Metric,
    /// HNSW links per node.
    pub m: usize,
    /// HNSW build breadth.
    pub ef_construction: usize,
    /// Replication factor (network targets).
    pub replication_factor: u32,
    /// Whether points carry the payload of [`tag_payload`] (network
    /// targets), for filtered searches.
    pub tagged: bool,
}

/// One system under test.
pub trait Target: Send + Sync {
    /// The name in reports.
    fn name(&self) -> String;
    /// Creates the (empty) collection, replacing one of the same name.
    fn create(&self) -> Reply<'_, ()>;
    /// Stores points, acknowledged once durable.
    fn upsert<'a>(&'a self, points: &'a [(u64, Vec<f32>)]) -> Reply<'a, ()>;
    /// Points the target can find now.
    fn count(&self) -> Reply<'_, u64>;
    /// The ids of the `k` best hits for `query` at breadth `ef`.
    fn search<'a>(&'a self, query: &'a [f32], k: usize, ef: usize) -> Reply<'a, Vec<u64>>;
    /// Removes the collection.
    fn drop_collection(&self) -> Reply<'_, ()>;
    /// Points stored but not yet in an HNSW graph (searched by exact scan
    /// meanwhile); `None` when the target builds as it stores.
    fn unindexed(&self) -> Reply<'_, Option<u64>> {
        Box::pin(async { Ok(None) })
    }
    /// As [`Target::search`], among the points `filter` keeps (their
    /// payloads set by a load with [`CollectionSpec::tagged`]).
    fn search_filtered<'a>(
        &'a self,
        _query: &'a [f32],
        _k: usize,
        _ef: usize,
        _filter: TagFilter,
    ) -> Reply<'a, Vec<u64>> {
        Box::pin(async move {
            Err(failed(&self.name(), "filtered search")(
                "not supported".into(),
            ))
        })
    }
    /// Whether [`Target::search_filtered`] is supported.
    fn filters(&self) -> bool {
        false
    }
}

fn failed<'a>(target: &'a str, what: &'static str) -> impl Fn(String) -> TargetError + 'a {
    move |reason| TargetError {
        target: target.to_string(),
        what,
        reason,
    }
}

fn wire_metric(metric: Metric) -> common::Metric {
    match metric {
        Metric::Cosine => common::Metric::Cosine,
        Metric::L2 => common::Metric::L2,
        Metric::Dot => common::Metric::Dot,
    }
}

fn metric_name(metric: Metric) -> &'static str {
    match metric {
        Metric::Cosine => "cosine",
        Metric::L2 => "l2",
        Metric::Dot => "dot",
    }
}

fn wire_id(id: u64) -> Option<common::PointId> {
    Some(common::PointId {
        kind: Some(common::point_id::Kind::Num(id)),
    })
}

/// [`tag_payload`] as the gRPC API's struct.
fn tag_struct(id: u64) -> prost_types::Struct {
    let fields = tag_payload(id)
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(key, value)| {
            let number = value.as_f64()?;
            Some((
                key.clone(),
                prost_types::Value {
                    kind: Some(prost_types::value::Kind::NumberValue(number)),
                },
            ))
        })
        .collect();
    prost_types::Struct { fields }
}

fn id_of(id: Option<&common::PointId>) -> Option<u64> {
    match id?.kind.as_ref()? {
        common::point_id::Kind::Num(n) => Some(*n),
        _ => None,
    }
}

// ---------------------------------------------------------------- REST

/// The gateway's REST API (`vectron dev`, a playground or a deployment).
pub struct Rest {
    client: vectron_client::Client,
    spec: CollectionSpec,
    url: String,
}

impl Rest {
    /// A target at `url`, with an API key if given.
    pub fn new(
        url: &str,
        api_key: Option<&str>,
        spec: CollectionSpec,
    ) -> Result<Self, TargetError> {
        let client = vectron_client::Client::new(url)
            .map_err(|e| failed("rest", "connect")(e.to_string()))?;
        let client = match api_key {
            Some(key) => client.with_api_key(key),
            None => client,
        };
        Ok(Self {
            client,
            spec,
            url: url.to_string(),
        })
    }
}

impl Target for Rest {
    fn name(&self) -> String {
        format!("gateway REST {}", self.url)
    }

    fn create(&self) -> Reply<'_, ()> {
        Box::pin(async move {
            let _ = self.client.delete_collection(&self.spec.name).await;
            let body = serde_json::json!({
                "name": self.spec.name,
                "dimension": self.spec.dimension,
                "metric": metric_name(self.spec.metric),
                "replication_factor": self.spec.replication_factor,
                "hnsw": {"m": self.spec.m, "ef_construction": self.spec.ef_construction},
            });
            self.client
                .create_collection(&body)
                .await
                .map(|_| ())
                .map_err(|e| failed("rest", "create collection")(e.to_string()))
        })
    }

    fn upsert<'a>(&'a self, points: &'a [(u64, Vec<f32>)]) -> Reply<'a, ()> {
        Box::pin(async move {
            let points: Vec<vectron_client::Point> = points
                .iter()
                .map(|(id, v)| {
                    let point = vectron_client::Point::new(*id, v.clone());
                    if self.spec.tagged {
                        point.with_payload(tag_payload(*id))
                    } else {
                        point
                    }
                })
                .collect();
            self.client
                .upsert(&self.spec.name, &points)
                .await
                .map(|_| ())
                .map_err(|e| failed("rest", "upsert")(e.to_string()))
        })
    }

    fn count(&self) -> Reply<'_, u64> {
        Box::pin(async move {
            self.client
                .count(&self.spec.name, &serde_json::json!({}))
                .await
                .map_err(|e| failed("rest", "count")(e.to_string()))
        })
    }

    fn search<'a>(&'a self, query: &'a [f32], k: usize, ef: usize) -> Reply<'a, Vec<u64>> {
        self.search_body(serde_json::json!({"vector": query, "top_k": k, "ef": ef}))
    }

    fn filters(&self) -> bool {
        true
    }

    fn search_filtered<'a>(
        &'a self,
        query: &'a [f32],
        k: usize,
        ef: usize,
        filter: TagFilter,
    ) -> Reply<'a, Vec<u64>> {
        self.search_body(
            serde_json::json!({"vector": query, "top_k": k, "ef": ef, "filter": filter.json()}),
        )
    }

    fn drop_collection(&self) -> Reply<'_, ()> {
        Box::pin(async move {
            self.client
                .delete_collection(&self.spec.name)
                .await
                .map_err(|e| failed("rest", "drop collection")(e.to_string()))
        })
    }

    fn unindexed(&self) -> Reply<'_, Option<u64>> {
        Box::pin(async move {
            let info = self
                .client
                .get_collection(&self.spec.name)
                .await
                .map_err(|e| failed("rest", "collection status")(e.to_string()))?;
            let shards = info["shard_status"].as_array().cloned().unwrap_or_default();
            Ok(Some(
                shards
                    .iter()
                    .filter_map(|s| s["unindexed_points"].as_u64())
                    .sum(),
            ))
        })
    }
}

impl Rest {
    fn search_body(&self, body: serde_json::Value) -> Reply<'_, Vec<u64>> {
        Box::pin(async move {
            let hits = self
                .client
                .search(&self.spec.name, &body)
                .await
                .map_err(|e| failed("rest", "search")(e.to_string()))?;
            Ok(hits
                .iter()
                .filter_map(|h| match &h.id {
                    vectron_client::PointId::Num(n) => Some(*n),
                    vectron_client::PointId::Str(_) => None,
                })
                .collect())
        })
    }
}

// ---------------------------------------------------------------- gateway gRPC

/// The gateway's public gRPC API.
pub struct GatewayGrpc {
    client: VectronClient<Channel>,
    spec: CollectionSpec,
    url: String,
}

impl GatewayGrpc {
    /// A target at `url` (`http://host:port`).
    pub async fn connect(url: &str, spec: CollectionSpec) -> Result<Self, TargetError> {
        let client = VectronClient::connect(url.to_string())
            .await
            .map_err(|e| failed("grpc", "connect")(e.to_string()))?
            .max_decoding_message_size(64 << 20)
            .max_encoding_message_size(64 << 20);
        Ok(Self {
            client,
            spec,
            url: url.to_string(),
        })
    }
}

impl Target for GatewayGrpc {
    fn name(&self) -> String {
        format!("gateway gRPC {}", self.url)
    }

    fn unindexed(&self) -> Reply<'_, Option<u64>> {
        Box::pin(async move {
            let reply = self
                .client
                .clone()
                .get_collection(api::GetCollectionRequest {
                    name: self.spec.name.clone(),
                })
                .await
                .map_err(|e| failed("grpc", "collection status")(e.message().to_string()))?;
            Ok(Some(
                reply
                    .into_inner()
                    .collection
                    .map(|c| c.shard_status.iter().map(|s| s.unindexed_points).sum())
                    .unwrap_or(0),
            ))
        })
    }

    fn create(&self) -> Reply<'_, ()> {
        Box::pin(async move {
            let mut client = self.client.clone();
            let _ = client
                .delete_collection(api::DeleteCollectionRequest {
                    name: self.spec.name.clone(),
                })
                .await;
            client
                .create_collection(api::CreateCollectionRequest {
                    name: self.spec.name.clone(),
                    dimension: self.spec.dimension as u32,
                    metric: wire_metric(self.spec.metric).into(),
                    shards: 1,
                    replication_factor: self.spec.replication_factor,
                    hnsw: Some(common::HnswParams {
                        m: self.spec.m as u32,
                        ef_construction: self.spec.ef_construction as u32,
                        ef_search: 0,
                    }),
                })
                .await
                .map(|_| ())
                .map_err(|e| failed("grpc", "create collection")(e.message().to_string()))
        })
    }

    fn upsert<'a>(&'a self, points: &'a [(u64, Vec<f32>)]) -> Reply<'a, ()> {
        Box::pin(async move {
            let request = api::UpsertPointsRequest {
                collection: self.spec.name.clone(),
                points: points
                    .iter()
                    .map(|(id, v)| api::Point {
                        id: wire_id(*id),
                        vector: v.clone(),
                        payload: self.spec.tagged.then(|| tag_struct(*id)),
                    })
                    .collect(),
            };
            self.client
                .clone()
                .upsert_points(request)
                .await
                .map(|_| ())
                .map_err(|e| failed("grpc", "upsert")(e.message().to_string()))
        })
    }

    fn count(&self) -> Reply<'_, u64> {
        Box::pin(async move {
            self.client
                .clone()
                .count_points(api::CountPointsRequest {
                    collection: self.spec.name.clone(),
                    filter: None,
                    consistency: common::Consistency::Strong.into(),
                })
                .await
                .map(|r| r.into_inner().count)
                .map_err(|e| failed("grpc", "count")(e.message().to_string()))
        })
    }

    fn search<'a>(&'a self, query: &'a [f32], k: usize, ef: usize) -> Reply<'a, Vec<u64>> {
        self.search_with(query, k, ef, None)
    }

    fn filters(&self) -> bool {
        true
    }

    fn search_filtered<'a>(
        &'a self,
        query: &'a [f32],
        k: usize,
        ef: usize,
        filter: TagFilter,
    ) -> Reply<'a, Vec<u64>> {
        self.search_with(query, k, ef, Some(filter.wire()))
    }

    fn drop_collection(&self) -> Reply<'_, ()> {
        self.drop_it()
    }
}

impl GatewayGrpc {
    fn search_with<'a>(
        &'a self,
        query: &'a [f32],
        k: usize,
        ef: usize,
        filter: Option<common::Filter>,
    ) -> Reply<'a, Vec<u64>> {
        Box::pin(async move {
            let reply = self
                .client
                .clone()
                .search_points(api::SearchPointsRequest {
                    collection: self.spec.name.clone(),
                    vector: query.to_vec(),
                    top_k: k as u32,
                    filter,
                    ef: Some(ef as u32),
                    with_payload: false,
                    with_vector: false,
                    consistency: common::Consistency::Strong.into(),
                })
                .await
                .map_err(|e| failed("grpc", "search")(e.message().to_string()))?;
            Ok(reply
                .into_inner()
                .results
                .iter()
                .filter_map(|h| id_of(h.id.as_ref()))
                .collect())
        })
    }

    fn drop_it(&self) -> Reply<'_, ()> {
        Box::pin(async move {
            self.client
                .clone()
                .delete_collection(api::DeleteCollectionRequest {
                    name: self.spec.name.clone(),
                })
                .await
                .map(|_| ())
                .map_err(|e| failed("grpc", "drop collection")(e.message().to_string()))
        })
    }
}

// ---------------------------------------------------------------- worker gRPC

/// One shard's leader worker, called directly (no gateway): the collection
/// is created through PD with one shard, and points go straight to the
/// worker that leads it.
pub struct Worker {
    pd: vectron_pd::PdClient,
    pd_addr: String,
    spec: CollectionSpec,
    leader: tokio::sync::OnceCell<(WorkerClient<Channel>, wk::ShardRef)>,
}

impl Worker {
    /// A target reached through the PD at `pd_addr`.
    pub fn new(pd_addr: &str, spec: CollectionSpec) -> Result<Self, TargetError> {
        let pd = vectron_pd::PdClient::new(&[pd_addr.to_string()])
            .map_err(|e| failed("worker", "connect to PD")(e.to_string()))?;
        Ok(Self {
            pd,
            pd_addr: pd_addr.to_string(),
            spec,
            leader: tokio::sync::OnceCell::new(),
        })
    }

    async fn shard(&self) -> Result<pd::Shard, TargetError> {
        let request = pd::GetRoutingTableRequest {
            collection: self.spec.name.clone(),
        };
        let table = self
            .pd
            .call(|mut c| {
                let request = request.clone();
                async move { c.get_routing_table(request).await }
            })
            .await
            .map_err(|e| failed("worker", "routing table")(e.to_string()))?;
        table
            .shards
            .into_iter()
            .next()
            .ok_or_else(|| failed("worker", "routing table")("no shard".into()))
    }

    /// The shard leader, found once: the replica that answers a strong read.
    async fn leader(&self) -> Result<&(WorkerClient<Channel>, wk::ShardRef), TargetError> {
        self.leader
            .get_or_try_init(|| async {
                let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
                loop {
                    let shard = self.shard().await?;
                    let shard_ref = wk::ShardRef {
                        shard_id: shard.shard_id,
                        epoch: shard.epoch,
                    };
                    for replica in &shard.replicas {
                        let channel = match vectron_proto::channel::internal_endpoint(
                            &replica.addr,
                            vectron_proto::channel::Role::Worker,
                            Duration::from_secs(2),
                        ) {
                            Ok(endpoint) => endpoint.connect().await,
                            Err(e) => Err(e),
                        };
                        let Ok(channel) = channel else {
                            continue;
                        };
                        let client = WorkerClient::new(channel);
                        let mut client = client
                            .max_decoding_message_size(64 << 20)
                            .max_encoding_message_size(64 << 20);
                        let probe = wk::CountRequest {
                            shard: Some(shard_ref),
                            filter: None,
                            consistency: common::Consistency::Strong.into(),
                        };
                        if client.count(probe).await.is_ok() {
                            return Ok((client, shard_ref));
                        }
                    }
                    if tokio::time::Instant::now() > deadline {
                        return Err(failed("worker", "find the shard leader")(
                            "no replica answered a strong read within 60 s".into(),
                        ));
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            })
            .await
    }

    async fn delete_via_pd(&self) -> Result<(), TargetError> {
        let request = pd::DropCollectionRequest {
            name: self.spec.name.clone(),
        };
        self.pd
            .call(|mut c| {
                let request = request.clone();
                async move { c.drop_collection(request).await }
            })
            .await
            .map(|_| ())
            .map_err(|e| failed("worker", "drop collection")(e.to_string()))
    }
}

impl Target for Worker {
    fn name(&self) -> String {
        format!("worker gRPC (PD {})", self.pd_addr)
    }

    fn unindexed(&self) -> Reply<'_, Option<u64>> {
        Box::pin(async move {
            let request = pd::GetCollectionStatusRequest {
                name: self.spec.name.clone(),
            };
            let status = self
                .pd
                .call(|mut c| {
                    let request = request.clone();
                    async move { c.get_collection_status(request).await }
                })
                .await
                .map_err(|e| failed("worker", "collection status")(e.to_string()))?;
            Ok(Some(status.shards.iter().map(|s| s.unindexed_points).sum()))
        })
    }

    fn create(&self) -> Reply<'_, ()> {
        Box::pin(async move {
            let _ = self.delete_via_pd().await;
            let request = pd::CreateCollectionRequest {
                spec: Some(pd::CollectionSpec {
                    name: self.spec.name.clone(),
                    dimension: self.spec.dimension as u32,
                    metric: wire_metric(self.spec.metric).into(),
                    shards: 1,
                    replication_factor: self.spec.replication_factor,
                    hnsw: Some(common::HnswParams {
                        m: self.spec.m as u32,
                        ef_construction: self.spec.ef_construction as u32,
                        ef_search: 0,
                    }),
                }),
            };
            self.pd
                .call(|mut c| {
                    let request = request.clone();
                    async move { c.create_collection(request).await }
                })
                .await
                .map_err(|e| failed("worker", "create collection")(e.to_string()))?;
            self.leader().await.map(|_| ())
        })
    }

    fn upsert<'a>(&'a self, points: &'a [(u64, Vec<f32>)]) -> Reply<'a, ()> {
        Box::pin(async move {
            let (client, shard_ref) = self.leader().await?;
            let request = wk::UpsertRequest {
                shard: Some(*shard_ref),
                points: points
                    .iter()
                    .map(|(id, v)| wk::Point {
                        id: wire_id(*id),
                        vector: v.clone(),
                        payload_json: if self.spec.tagged {
                            tag_payload(*id).to_string().into_bytes()
                        } else {
                            Vec::new()
                        },
                    })
                    .collect(),
                ..Default::default()
            };
            client
                .clone()
                .upsert(request)
                .await
                .map(|_| ())
                .map_err(|e| failed("worker", "upsert")(e.message().to_string()))
        })
    }

    fn count(&self) -> Reply<'_, u64> {
        Box::pin(async move {
            let (client, shard_ref) = self.leader().await?;
            client
                .clone()
                .count(wk::CountRequest {
                    shard: Some(*shard_ref),
                    filter: None,
                    consistency: common::Consistency::Strong.into(),
                })
                .await
                .map(|r| r.into_inner().count)
                .map_err(|e| failed("worker", "count")(e.message().to_string()))
        })
    }

    fn search<'a>(&'a self, query: &'a [f32], k: usize, ef: usize) -> Reply<'a, Vec<u64>> {
        self.search_with(query, k, ef, None)
    }

    fn filters(&self) -> bool {
        true
    }

    fn search_filtered<'a>(
        &'a self,
        query: &'a [f32],
        k: usize,
        ef: usize,
        filter: TagFilter,
    ) -> Reply<'a, Vec<u64>> {
        self.search_with(query, k, ef, Some(filter.wire()))
    }

    fn drop_collection(&self) -> Reply<'_, ()> {
        Box::pin(self.delete_via_pd())
    }
}

impl Worker {
    fn search_with<'a>(
        &'a self,
        query: &'a [f32],
        k: usize,
        ef: usize,
        filter: Option<common::Filter>,
    ) -> Reply<'a, Vec<u64>> {
        Box::pin(async move {
            let (client, shard_ref) = self.leader().await?;
            let reply = client
                .clone()
                .search(wk::SearchRequest {
                    shard: Some(*shard_ref),
                    vector: query.to_vec(),
                    top_k: k as u32,
                    ef: ef as u32,
                    filter,
                    with_payload: false,
                    with_vector: false,
                    consistency: common::Consistency::Strong.into(),
                })
                .await
                .map_err(|e| failed("worker", "search")(e.message().to_string()))?;
            Ok(reply
                .into_inner()
                .results
                .iter()
                .filter_map(|h| id_of(h.id.as_ref()))
                .collect())
        })
    }
}

// ---------------------------------------------------------------- raw hnsw_rs

enum RawGraph {
    Dot(Hnsw<'static, f32, DistDot>),
    L2(Hnsw<'static, f32, DistL2>),
}

/// hnsw_rs used directly in this process, as an application embedding it
/// would: `parallel_insert` per batch (all cores), `search` per query. For
/// cosine the vectors are normalised first and scored by `DistDot`.
pub struct RawHnsw {
    spec: CollectionSpec,
    capacity: usize,
    graph: RwLock<Option<Arc<RawGraph>>>,
    inserted: std::sync::atomic::AtomicU64,
}

impl RawHnsw {
    /// A baseline expecting about `capacity` points.
    pub fn new(spec: CollectionSpec, capacity: usize) -> Self {
        Self {
            spec,
            capacity,
            graph: RwLock::new(None),
            inserted: std::sync::atomic::AtomicU64::new(0),
        }
    }

    fn graph(&self) -> Result<Arc<RawGraph>, TargetError> {
        self.graph
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(|| failed("hnsw_rs", "use")("create it first".into()))
    }

    /// The vector as given to hnsw_rs. For cosine, unit length shrunk by a
    /// ten-thousandth: `DistDot` asserts `1 − a·b ≥ 0`, which rounding breaks for
    /// near-duplicate unit vectors (and panics the insert); the shrink keeps
    /// the order of every distance.
    fn raw_vector(&self, v: &[f32]) -> Vec<f32> {
        let mut prepared = self.spec.metric.prepare(v);
        if self.spec.metric == Metric::Cosine {
            prepared.iter_mut().for_each(|x| *x *= 1.0 - 1e-4);
        }
        prepared
    }
}

impl Target for RawHnsw {
    fn name(&self) -> String {
        "raw hnsw_rs (in-process)".into()
    }

    fn create(&self) -> Reply<'_, ()> {
        let (m, n, efc) = (
            self.spec.m,
            self.capacity.max(1024),
            self.spec.ef_construction,
        );
        let graph = match self.spec.metric {
            Metric::L2 => RawGraph::L2(Hnsw::new(m, n, 16, efc, DistL2 {})),
            Metric::Cosine | Metric::Dot => RawGraph::Dot(Hnsw::new(m, n, 16, efc, DistDot {})),
        };
        *self.graph.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(graph));
        Box::pin(async { Ok(()) })
    }

    fn upsert<'a>(&'a self, points: &'a [(u64, Vec<f32>)]) -> Reply<'a, ()> {
        Box::pin(async move {
            let graph = self.graph()?;
            let prepared: Vec<(Vec<f32>, usize)> = points
                .iter()
                .map(|(id, v)| (self.raw_vector(v), *id as usize))
                .collect();
            let count = points.len() as u64;
            tokio::task::spawn_blocking(move || {
                let batch: Vec<(&Vec<f32>, usize)> =
                    prepared.iter().map(|(v, id)| (v, *id)).collect();
                match graph.as_ref() {
                    RawGraph::Dot(h) => h.parallel_insert(&batch),
                    RawGraph::L2(h) => h.parallel_insert(&batch),
                }
            })
            .await
            .map_err(|e| failed("hnsw_rs", "insert")(e.to_string()))?;
            self.inserted
                .fetch_add(count, std::sync::atomic::Ordering::Relaxed);
            Ok(())
        })
    }

    fn count(&self) -> Reply<'_, u64> {
        let count = self.inserted.load(std::sync::atomic::Ordering::Relaxed);
        Box::pin(async move { Ok(count) })
    }

    fn search<'a>(&'a self, query: &'a [f32], k: usize, ef: usize) -> Reply<'a, Vec<u64>> {
        Box::pin(async move {
            let graph = self.graph()?;
            let query = self.raw_vector(query);
            let hits = match graph.as_ref() {
                RawGraph::Dot(h) => h.search(&query, k, ef),
                RawGraph::L2(h) => h.search(&query, k, ef),
            };
            Ok(hits.iter().map(|n| n.d_id as u64).collect())
        })
    }

    fn drop_collection(&self) -> Reply<'_, ()> {
        *self.graph.write().unwrap_or_else(|p| p.into_inner()) = None;
        Box::pin(async { Ok(()) })
    }
}

// ------------------------------------------------------- Vectron's index alone

/// Vectron's shard index (`vectron_worker::index::ShardIndex`) in this
/// process: each batch inserted as the state machine applies a long run of
/// upserts (all cores), searchable copies refreshed before searching. Its
/// figures beside the worker's show what the request path costs on top of
/// the walk.
pub struct InProcessIndex {
    spec: CollectionSpec,
    index: RwLock<Option<Arc<RwLock<vectron_worker::index::ShardIndex>>>>,
}

impl InProcessIndex {
    /// An index target for `spec`.
    pub fn new(spec: CollectionSpec) -> Self {
        Self {
            spec,
            index: RwLock::new(None),
        }
    }

    fn index(&self) -> Result<Arc<RwLock<vectron_worker::index::ShardIndex>>, TargetError> {
        self.index
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(|| failed("index", "use")("create it first".into()))
    }
}

impl Target for InProcessIndex {
    fn name(&self) -> String {
        "vectron index (in-process)".into()
    }

    fn create(&self) -> Reply<'_, ()> {
        let params = vectron_worker::index::HnswParams {
            m: self.spec.m,
            ef_construction: self.spec.ef_construction,
        };
        let index = vectron_worker::index::ShardIndex::new(self.spec.metric, params);
        *self.index.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(RwLock::new(index)));
        Box::pin(async { Ok(()) })
    }

    fn upsert<'a>(&'a self, points: &'a [(u64, Vec<f32>)]) -> Reply<'a, ()> {
        Box::pin(async move {
            let index = self.index()?;
            let batch = points.to_vec();
            tokio::task::spawn_blocking(move || {
                index
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .bulk_upsert(batch)
            })
            .await
            .map_err(|e| failed("index", "insert")(e.to_string()))
        })
    }

    fn count(&self) -> Reply<'_, u64> {
        Box::pin(async move {
            let index = self.index()?;
            let mut index = index.write().unwrap_or_else(|p| p.into_inner());
            index.freeze_all();
            Ok(index.len() as u64)
        })
    }

    fn search<'a>(&'a self, query: &'a [f32], k: usize, ef: usize) -> Reply<'a, Vec<u64>> {
        Box::pin(async move {
            let index = self.index()?;
            let index = index.read().unwrap_or_else(|p| p.into_inner());
            Ok(index
                .search(query, k, ef, None)
                .into_iter()
                .map(|(key, _)| key)
                .collect())
        })
    }

    fn drop_collection(&self) -> Reply<'_, ()> {
        *self.index.write().unwrap_or_else(|p| p.into_inner()) = None;
        Box::pin(async { Ok(()) })
    }
}
