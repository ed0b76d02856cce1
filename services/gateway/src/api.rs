//! The operations of the public API, shared by the REST and gRPC front ends:
//! collection management through PD, point writes grouped by shard and sent
//! to shard leaders in parallel (each group under one request id, so its
//! retries apply once), reads fanned out to every shard they touch, and search
//! merged to the global top-k. When the routing changes under a request (the
//! collection was dropped and recreated with other shards), the points of the
//! affected groups are regrouped against the new table and sent again.
//! Authorisation happens before these are called. Does network I/O (PD,
//! workers).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use vectron_config::Limits;
use vectron_ids::PointId;
use vectron_pd::{PdClient, PdClientOptions};
use vectron_proto::common::v1::{Consistency, Filter, Metric};
use vectron_proto::pd::v1 as pd;
use vectron_proto::v1 as api;
use vectron_proto::worker::v1 as worker;

use crate::convert;
use crate::dispatch::{DispatchError, Dispatcher, RetryPolicy, Target};
use crate::error::{ApiError, ErrorKind, Result};
use crate::metrics::Metrics;
use crate::model::{
    DeleteSelector, GetQuery, Hit, NewPoint, PointOut, ScrollPage, ScrollQuery, SearchQuery,
    defaults,
};
use crate::routing::{RoutingCache, RoutingTable, pd_error};
use crate::validate;

/// The gateway's core: routing, validation and fan-out.
pub struct Gateway {
    dispatch: Dispatcher,
    probe: PdClient,
    limits: Limits,
    metrics: Arc<Metrics>,
    /// The planted defect of the chaos suite's self-test (see
    /// [`Gateway::plant_stale_strong_reads`]).
    stale_strong_reads: bool,
}

fn target(consistency: Consistency) -> Target {
    match consistency {
        Consistency::Eventual => Target::AnyReplica,
        Consistency::Strong | Consistency::Unspecified => Target::Leader,
    }
}

/// Most times one request is regrouped after the routing changed under it.
const MAX_REGROUPS: usize = 3;

/// Longest a create waits for its shards' first leaders.
const SHARD_LEADER_WAIT: Duration = Duration::from_secs(10);

/// A fresh id for one shard write and all its retries.
fn new_request_id() -> Result<Vec<u8>> {
    let mut id = [0u8; 16];
    getrandom::fill(&mut id)
        .map_err(|e| ApiError::new(ErrorKind::Internal, format!("OS RNG: {e}")))?;
    Ok(id.to_vec())
}

fn rerouted_too_often(collection: &str) -> ApiError {
    ApiError::unavailable(format!(
        "the routing of collection {collection:?} kept changing during the request; retry"
    ))
}

/// Whether `a` ranks before `b` under `metric` (ties broken by id so the
/// order is the same on every call).
fn better(metric: Metric, a: &Hit, b: &Hit) -> std::cmp::Ordering {
    let by_score = match metric {
        Metric::L2 => a.score.total_cmp(&b.score),
        _ => b.score.total_cmp(&a.score),
    };
    by_score.then_with(|| a.id.canonical().cmp(&b.id.canonical()))
}

/// Merges per-shard top-k lists into the global top-k.
pub fn merge_hits(metric: Metric, lists: Vec<Vec<Hit>>, top_k: usize) -> Vec<Hit> {
    let mut all: Vec<Hit> = lists.into_iter().flatten().collect();
    all.sort_by(|a, b| better(metric, a, b));
    all.truncate(top_k);
    all
}

/// A scroll position: the shard to continue in and the last id returned
/// from it. Encoded as hex so clients treat it as opaque.
fn encode_cursor(shard: usize, after: Option<&str>) -> String {
    let raw = format!("{shard}:{}", after.unwrap_or(""));
    raw.bytes().map(|b| format!("{b:02x}")).collect()
}

fn decode_cursor(cursor: &str) -> Result<(usize, Option<String>)> {
    let bad = || ApiError::invalid("cursor", "is not a cursor this API returned");
    let hex = |digit: u8| char::from(digit).to_digit(16).ok_or_else(bad);
    if !cursor.len().is_multiple_of(2) {
        return Err(bad());
    }
    let bytes = cursor
        .as_bytes()
        .chunks_exact(2)
        .map(|pair| Ok((hex(pair[0])? * 16 + hex(pair[1])?) as u8))
        .collect::<Result<Vec<u8>>>()?;
    let raw = String::from_utf8(bytes).map_err(|_| bad())?;
    let (shard, after) = raw.split_once(':').ok_or_else(bad)?;
    let shard = shard.parse().map_err(|_| bad())?;
    Ok((shard, (!after.is_empty()).then(|| after.to_owned())))
}

impl Gateway {
    /// A gateway over the PD cluster at `pd_endpoints`.
    pub fn new(pd_endpoints: &[String], limits: Limits) -> Result<Self> {
        let pd = PdClient::new(pd_endpoints).map_err(pd_error)?;
        let probe = PdClient::with_options(
            pd_endpoints,
            PdClientOptions {
                request_timeout: Duration::from_secs(1),
                deadline: Duration::from_secs(2),
                ..PdClientOptions::default()
            },
        )
        .map_err(pd_error)?;
        let metrics = Arc::new(Metrics::default());
        Ok(Self {
            dispatch: Dispatcher::new(
                RoutingCache::new(Arc::new(pd)),
                RetryPolicy::default(),
                metrics.clone(),
            ),
            probe,
            limits,
            metrics,
            stale_strong_reads: false,
        })
    }

    /// TEST ONLY: plants a consistency bug — strong point reads are served by
    /// any replica without a read barrier, so they can return stale values.
    /// The chaos suite turns this on once to show that its checker catches
    /// such a bug; nothing else may.
    pub fn plant_stale_strong_reads(&mut self) {
        tracing::error!(
            "PLANTED BUG ON: strong reads are served stale (a chaos-suite self-test; never use this for data)"
        );
        self.stale_strong_reads = true;
    }

    /// Where point reads of `consistency` go, and the consistency asked of
    /// the worker.
    fn read_route(&self, consistency: Consistency) -> (Target, Consistency) {
        if self.stale_strong_reads {
            return (Target::AnyReplica, Consistency::Eventual);
        }
        (target(consistency), consistency)
    }

    /// The gateway's metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The input limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    fn pd(&self) -> &PdClient {
        self.dispatch.routing().pd()
    }

    async fn table(&self, collection: &str) -> Result<Arc<RoutingTable>> {
        self.dispatch.routing().table(collection).await
    }

    /// The routing table this gateway holds for `collection` (fetched from
    /// PD when not cached).
    pub async fn routing_table(&self, collection: &str) -> Result<Arc<RoutingTable>> {
        self.table(collection).await
    }

    /// Sends `items` to the shards that own them, one `send` per shard with
    /// that shard's items; the items of a group whose shard turns out to be
    /// rerouted are regrouped against the refreshed table and sent again.
    /// Every group is waited for; the first failure is returned.
    async fn by_owner<I, T, F, Fut>(
        &self,
        collection: &str,
        items: Vec<I>,
        id_of: impl Fn(&I) -> &PointId,
        send: F,
    ) -> Result<Vec<T>>
    where
        I: Clone,
        F: Fn(u64, Arc<Vec<I>>) -> Fut,
        Fut: Future<Output = Result<T, DispatchError>>,
    {
        let mut pending = items;
        let mut answers = Vec::new();
        for _ in 0..=MAX_REGROUPS {
            if pending.is_empty() {
                return Ok(answers);
            }
            let table = self.table(collection).await?;
            let mut groups: BTreeMap<u64, Vec<I>> = BTreeMap::new();
            for item in pending.drain(..) {
                let index = table.map.index_of_point(id_of(&item));
                let shard = table.shards.get(index).ok_or_else(|| {
                    ApiError::new(
                        ErrorKind::Internal,
                        format!("routing table of {collection:?} has no shard {index}"),
                    )
                })?;
                groups.entry(shard.shard_id).or_default().push(item);
            }
            let calls = groups.into_iter().map(|(shard_id, items)| {
                let items = Arc::new(items);
                let call = send(shard_id, items.clone());
                async move { (items, call.await) }
            });
            let mut failure = None;
            for (items, result) in join_all(calls).await {
                match result {
                    Ok(answer) => answers.push(answer),
                    Err(DispatchError::Rerouted { .. }) => pending.extend(items.iter().cloned()),
                    Err(DispatchError::Api(error)) => {
                        failure.get_or_insert(error);
                    }
                }
            }
            if let Some(error) = failure {
                return Err(error);
            }
        }
        if pending.is_empty() {
            Ok(answers)
        } else {
            Err(rerouted_too_often(collection))
        }
    }

    /// Runs `send` once on every shard of the collection; shards that turn
    /// out to be rerouted are replaced by the shards of the refreshed table
    /// not yet answered. Every call is waited for; the first failure is
    /// returned.
    async fn on_every_shard<T, F, Fut>(&self, collection: &str, send: F) -> Result<Vec<T>>
    where
        F: Fn(u64) -> Fut,
        Fut: Future<Output = Result<T, DispatchError>>,
    {
        let mut answered: HashSet<u64> = HashSet::new();
        let mut answers = Vec::new();
        for _ in 0..=MAX_REGROUPS {
            let table = self.table(collection).await?;
            let shard_ids: Vec<u64> = table
                .shards
                .iter()
                .map(|s| s.shard_id)
                .filter(|id| !answered.contains(id))
                .collect();
            if shard_ids.is_empty() {
                return Ok(answers);
            }
            let calls = shard_ids.into_iter().map(|shard_id| {
                let call = send(shard_id);
                async move { (shard_id, call.await) }
            });
            let mut failure = None;
            let mut rerouted = false;
            for (shard_id, result) in join_all(calls).await {
                match result {
                    Ok(answer) => {
                        answered.insert(shard_id);
                        answers.push(answer);
                    }
                    Err(DispatchError::Rerouted { .. }) => rerouted = true,
                    Err(DispatchError::Api(error)) => {
                        failure.get_or_insert(error);
                    }
                }
            }
            if let Some(error) = failure {
                return Err(error);
            }
            if !rerouted {
                return Ok(answers);
            }
        }
        Err(rerouted_too_often(collection))
    }

    /// Succeeds when the gateway can serve: PD answers, has a leader and
    /// knows at least one worker that is up (before that, creating a
    /// collection or writing a point could only fail).
    pub async fn ready(&self) -> Result<()> {
        let members = self
            .probe
            .call(|mut c| async move { c.get_members(pd::GetMembersRequest {}).await })
            .await
            .map_err(pd_error)?;
        if members.leader_id == 0 {
            return Err(ApiError::unavailable("the placement driver has no leader"));
        }
        let workers = self
            .probe
            .call(|mut c| async move { c.list_workers(pd::ListWorkersRequest {}).await })
            .await
            .map_err(pd_error)?;
        if !workers
            .workers
            .iter()
            .any(|w| w.state() == pd::WorkerState::Up)
        {
            return Err(ApiError::unavailable(
                "no worker has registered with the placement driver yet",
            ));
        }
        Ok(())
    }

    /// Creates a collection, applying the documented defaults; answers once
    /// every shard has a leader (see [`Gateway::await_shard_leaders`]).
    pub async fn create_collection(
        &self,
        request: api::CreateCollectionRequest,
    ) -> Result<api::Collection> {
        if request.metric == 0 {
            return Err(ApiError::invalid(
                "metric",
                "must be one of cosine, l2, dot",
            ));
        }
        if request.shards > self.limits.max_shards {
            return Err(ApiError::invalid(
                "shards",
                format!(
                    "is {}; the limit is {}",
                    request.shards, self.limits.max_shards
                ),
            ));
        }
        if request.dimension > self.limits.max_dimension {
            return Err(ApiError::invalid(
                "dimension",
                format!(
                    "is {}; the limit is {}",
                    request.dimension, self.limits.max_dimension
                ),
            ));
        }
        let or = |value: u32, default: u32| if value == 0 { default } else { value };
        let hnsw = request.hnsw.unwrap_or_default();
        let spec = pd::CollectionSpec {
            name: request.name,
            dimension: request.dimension,
            metric: request.metric,
            shards: or(request.shards, defaults::SHARDS),
            replication_factor: or(request.replication_factor, defaults::REPLICATION_FACTOR),
            hnsw: Some(vectron_proto::common::v1::HnswParams {
                m: or(hnsw.m, defaults::HNSW_M),
                ef_construction: or(hnsw.ef_construction, defaults::HNSW_EF_CONSTRUCTION),
                ef_search: hnsw.ef_search,
            }),
        };
        let name = spec.name.clone();
        let created = self
            .pd()
            .call(|mut c| {
                let request = pd::CreateCollectionRequest {
                    spec: Some(spec.clone()),
                };
                async move { c.create_collection(request).await }
            })
            .await
            .map_err(pd_error)?;
        self.dispatch.routing().invalidate(&name);
        let collection = created.collection.ok_or_else(|| {
            ApiError::new(ErrorKind::Internal, "PD answered without the collection")
        })?;
        self.await_shard_leaders(&name).await;
        Ok(convert::collection(&collection))
    }

    /// Waits (at most [`SHARD_LEADER_WAIT`]) until PD knows a leader for
    /// every shard of a new collection, so the first requests go straight
    /// to them instead of retrying through the elections. The collection
    /// exists either way: past the bound (or if PD cannot say) the create
    /// answers, and requests retry as they do across any leader change.
    async fn await_shard_leaders(&self, name: &str) {
        let deadline = tokio::time::Instant::now() + SHARD_LEADER_WAIT;
        let mut pause = Duration::from_millis(10);
        loop {
            match self.dispatch.routing().refresh(name).await {
                Ok(table) if table.shards.iter().all(|s| s.leader_worker_id != 0) => return,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(collection = name, error = %e, "cannot tell whether the new collection's shards have leaders");
                    return;
                }
            }
            if tokio::time::Instant::now() + pause > deadline {
                tracing::warn!(
                    collection = name,
                    waited_s = SHARD_LEADER_WAIT.as_secs(),
                    "created before every shard had a leader; first requests may retry"
                );
                return;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }

    /// Every collection.
    pub async fn list_collections(&self) -> Result<Vec<api::Collection>> {
        let answer = self
            .pd()
            .call(|mut c| async move { c.list_collections(pd::ListCollectionsRequest {}).await })
            .await
            .map_err(pd_error)?;
        Ok(answer.collections.iter().map(convert::collection).collect())
    }

    /// One collection with point counts and per-shard status.
    pub async fn get_collection(&self, name: &str) -> Result<api::Collection> {
        let request = pd::GetCollectionStatusRequest {
            name: name.to_owned(),
        };
        let answer = self
            .pd()
            .call(|mut c| {
                let request = request.clone();
                async move { c.get_collection_status(request).await }
            })
            .await
            .map_err(|e| not_found_as_collection(pd_error(e), name))?;
        let pd_collection = answer.collection.ok_or_else(|| {
            ApiError::new(ErrorKind::Internal, "PD answered without the collection")
        })?;
        let mut collection = convert::collection(&pd_collection);
        collection.points = answer.points;
        collection.shard_status = answer
            .shards
            .iter()
            .filter_map(|status| {
                let shard = status.shard.as_ref()?;
                Some(api::ShardStatus {
                    shard: shard.index,
                    leader: shard
                        .replicas
                        .iter()
                        .find(|r| r.worker_id == shard.leader_worker_id)
                        .map(|r| r.worker_name.clone())
                        .unwrap_or_default(),
                    replicas: shard
                        .replicas
                        .iter()
                        .map(|r| r.worker_name.clone())
                        .collect(),
                    points: status.points,
                    unindexed_points: status.unindexed_points,
                })
            })
            .collect();
        Ok(collection)
    }

    /// Drops a collection and all its points.
    pub async fn delete_collection(&self, name: &str) -> Result<()> {
        let request = pd::DropCollectionRequest {
            name: name.to_owned(),
        };
        self.pd()
            .call(|mut c| {
                let request = request.clone();
                async move { c.drop_collection(request).await }
            })
            .await
            .map_err(|e| not_found_as_collection(pd_error(e), name))?;
        self.dispatch.routing().invalidate(name);
        Ok(())
    }

    /// Validates every point, then writes each shard's group through its
    /// leader, all shards in parallel.
    pub async fn upsert(&self, collection: &str, points: Vec<NewPoint>) -> Result<u64> {
        let table = self.table(collection).await?;
        validate::upsert(&points, table.dimension(), &self.limits)?;
        let mut wire = Vec::with_capacity(points.len());
        for point in points {
            let payload_json = match &point.payload {
                Some(payload) => serde_json::to_vec(payload).map_err(|e| {
                    ApiError::new(ErrorKind::Internal, format!("payload encoding: {e}"))
                })?,
                None => Vec::new(),
            };
            wire.push((
                point.id.clone(),
                worker::Point {
                    id: Some(convert::id_to_wire(&point.id)),
                    vector: point.vector,
                    payload_json,
                },
            ));
        }
        let answers = self
            .by_owner(
                collection,
                wire,
                |(id, _)| id,
                |shard_id, points| async move {
                    let request_id = new_request_id()?;
                    self.dispatch
                        .on_shard(collection, shard_id, Target::Leader, |mut c, shard| {
                            let request = worker::UpsertRequest {
                                shard: Some(shard),
                                points: points.iter().map(|(_, p)| p.clone()).collect(),
                                request_id: request_id.clone(),
                            };
                            async move { c.upsert(request).await }
                        })
                        .await
                },
            )
            .await?;
        Ok(answers.iter().map(|a| a.upserted).sum())
    }

    /// Reads points by id, in the order asked (missing ids omitted).
    pub async fn get_points(&self, collection: &str, query: GetQuery) -> Result<Vec<PointOut>> {
        self.table(collection).await?;
        validate::ids(&query.ids, &self.limits)?;
        let query = &query;
        let answers = self
            .by_owner(
                collection,
                query.ids.clone(),
                |id| id,
                |shard_id, ids| async move {
                    let (target, consistency) = self.read_route(query.consistency);
                    self.dispatch
                        .on_shard(collection, shard_id, target, |mut c, shard| {
                            let request = worker::GetRequest {
                                shard: Some(shard),
                                ids: ids.iter().map(convert::id_to_wire).collect(),
                                with_vector: query.with_vector,
                                with_payload: query.with_payload,
                                consistency: consistency.into(),
                            };
                            async move { c.get(request).await }
                        })
                        .await
                },
            )
            .await?;
        let mut found: HashMap<String, PointOut> = HashMap::new();
        for answer in answers {
            for point in answer.points {
                if let Some(point) = convert::point_from_worker(point, query.with_vector) {
                    found.insert(point.id.canonical(), point);
                }
            }
        }
        Ok(query
            .ids
            .iter()
            .filter_map(|id| found.remove(&id.canonical()))
            .collect())
    }

    /// Deletes points by id or filter; answers how many existed.
    pub async fn delete_points(&self, collection: &str, selector: DeleteSelector) -> Result<u64> {
        self.table(collection).await?;
        let answers = match selector {
            DeleteSelector::Ids(ids) => {
                validate::ids(&ids, &self.limits)?;
                self.by_owner(
                    collection,
                    ids,
                    |id| id,
                    |shard_id, ids| async move {
                        let request_id = new_request_id()?;
                        self.dispatch
                            .on_shard(collection, shard_id, Target::Leader, |mut c, shard| {
                                let request = worker::DeleteRequest {
                                    shard: Some(shard),
                                    ids: ids.iter().map(convert::id_to_wire).collect(),
                                    filter: None,
                                    request_id: request_id.clone(),
                                };
                                async move { c.delete(request).await }
                            })
                            .await
                    },
                )
                .await?
            }
            DeleteSelector::Filter(filter) => {
                validate::filter(Some(&filter), "filter", &self.limits)?;
                let filter = &filter;
                self.on_every_shard(collection, |shard_id| async move {
                    let request_id = new_request_id()?;
                    self.dispatch
                        .on_shard(collection, shard_id, Target::Leader, |mut c, shard| {
                            let request = worker::DeleteRequest {
                                shard: Some(shard),
                                ids: Vec::new(),
                                filter: Some(filter.clone()),
                                request_id: request_id.clone(),
                            };
                            async move { c.delete(request).await }
                        })
                        .await
                })
                .await?
            }
        };
        Ok(answers.iter().map(|a| a.deleted).sum())
    }

    /// Searches every shard in parallel and merges to the global top-k.
    pub async fn search(&self, collection: &str, query: SearchQuery) -> Result<Vec<Hit>> {
        let table = self.table(collection).await?;
        validate::search(&query, table.dimension(), &self.limits)?;
        let request = worker::SearchRequest {
            shard: None,
            vector: query.vector.clone(),
            top_k: query.top_k,
            ef: query.ef.unwrap_or(0),
            filter: query.filter.clone(),
            with_payload: query.with_payload,
            with_vector: query.with_vector,
            consistency: query.consistency.into(),
        };
        let request = &request;
        let answers = self
            .on_every_shard(collection, |shard_id| async move {
                self.dispatch
                    .on_shard(
                        collection,
                        shard_id,
                        target(query.consistency),
                        |mut c, shard| {
                            let mut request = request.clone();
                            request.shard = Some(shard);
                            async move { c.search(request).await }
                        },
                    )
                    .await
            })
            .await?;
        let lists = answers
            .into_iter()
            .map(|answer| {
                answer
                    .results
                    .into_iter()
                    .filter_map(|hit| convert::hit_from_worker(hit, query.with_vector))
                    .collect()
            })
            .collect();
        Ok(merge_hits(table.metric(), lists, query.top_k as usize))
    }

    /// Runs several searches of one collection at once and answers their
    /// hits in the order asked. Every search is validated before any runs,
    /// so a bad one fails the batch with its position in the field name
    /// (`searches[3].ef`).
    pub async fn search_batch(
        &self,
        collection: &str,
        queries: Vec<SearchQuery>,
    ) -> Result<Vec<Vec<Hit>>> {
        if queries.len() > self.limits.max_batch_searches {
            return Err(ApiError::invalid(
                "searches",
                format!(
                    "has {} searches; the limit is {}",
                    queries.len(),
                    self.limits.max_batch_searches
                ),
            ));
        }
        let table = self.table(collection).await?;
        for (i, query) in queries.iter().enumerate() {
            validate::search(query, table.dimension(), &self.limits)
                .map_err(|e| e.within(&format!("searches[{i}]")))?;
        }
        futures::future::try_join_all(
            queries
                .into_iter()
                .map(|query| self.search(collection, query)),
        )
        .await
    }

    /// One page of points, shard by shard in id order.
    pub async fn scroll(&self, collection: &str, query: ScrollQuery) -> Result<ScrollPage> {
        let table = self.table(collection).await?;
        validate::top_k(query.limit, "limit", &self.limits)?;
        validate::filter(query.filter.as_ref(), "filter", &self.limits)?;
        let (mut shard, mut after) = match &query.cursor {
            Some(cursor) => decode_cursor(cursor)?,
            None => (0, None),
        };
        let mut points = Vec::new();
        while shard < table.shards.len() {
            let remaining = query.limit as usize - points.len();
            let request = worker::ScrollRequest {
                shard: None,
                limit: remaining as u32,
                after_id: after.clone(),
                filter: query.filter.clone(),
                with_vector: query.with_vector,
                with_payload: query.with_payload,
                consistency: query.consistency.into(),
            };
            let shard_id = table.shards[shard].shard_id;
            let answer = self
                .dispatch
                .on_shard(
                    collection,
                    shard_id,
                    target(query.consistency),
                    |mut c, shard| {
                        let mut request = request.clone();
                        request.shard = Some(shard);
                        async move { c.scroll(request).await }
                    },
                )
                .await?;
            points.extend(
                answer
                    .points
                    .into_iter()
                    .filter_map(|p| convert::point_from_worker(p, query.with_vector)),
            );
            match answer.next_after_id {
                Some(next) if points.len() >= query.limit as usize => {
                    return Ok(ScrollPage {
                        points,
                        next_cursor: Some(encode_cursor(shard, Some(&next))),
                    });
                }
                Some(next) => after = Some(next),
                None => {
                    shard += 1;
                    after = None;
                    if points.len() >= query.limit as usize {
                        let next_cursor =
                            (shard < table.shards.len()).then(|| encode_cursor(shard, None));
                        return Ok(ScrollPage {
                            points,
                            next_cursor,
                        });
                    }
                }
            }
        }
        Ok(ScrollPage {
            points,
            next_cursor: None,
        })
    }

    /// Counts the points matching `filter` over every shard.
    pub async fn count(
        &self,
        collection: &str,
        filter: Option<Filter>,
        consistency: Consistency,
    ) -> Result<u64> {
        validate::filter(filter.as_ref(), "filter", &self.limits)?;
        let filter = &filter;
        let answers = self
            .on_every_shard(collection, |shard_id| async move {
                self.dispatch
                    .on_shard(collection, shard_id, target(consistency), |mut c, shard| {
                        let request = worker::CountRequest {
                            shard: Some(shard),
                            filter: filter.clone(),
                            consistency: consistency.into(),
                        };
                        async move { c.count(request).await }
                    })
                    .await
            })
            .await?;
        Ok(answers.iter().map(|a| a.count).sum())
    }

    /// PD members, workers and replica moves.
    pub async fn cluster(&self) -> Result<api::GetClusterResponse> {
        let members = self
            .pd()
            .call(|mut c| async move { c.get_members(pd::GetMembersRequest {}).await })
            .await
            .map_err(pd_error)?;
        let workers = self
            .pd()
            .call(|mut c| async move { c.list_workers(pd::ListWorkersRequest {}).await })
            .await
            .map_err(pd_error)?;
        let moves = self
            .pd()
            .call(|mut c| async move { c.list_moves(pd::ListMovesRequest {}).await })
            .await
            .map_err(pd_error)?;
        Ok(api::GetClusterResponse {
            pd: Some(api::PdInfo {
                leader: members.leader_addr,
                members: members
                    .members
                    .iter()
                    .map(|m| api::PdMember {
                        id: m.node_id,
                        addr: m.addr.clone(),
                        role: convert::member_role(m.role()).into(),
                    })
                    .collect(),
            }),
            workers: workers
                .workers
                .iter()
                .map(|w| api::WorkerInfo {
                    name: w.name.clone(),
                    id: w.id,
                    addr: w.addr.clone(),
                    zone: w.zone.clone(),
                    state: convert::worker_state(w.state()).into(),
                    replicas: w.replicas,
                    leaders: w.leaders,
                })
                .collect(),
            moves: moves
                .moves
                .into_iter()
                .map(|m| api::MoveInfo {
                    shard: m.shard_id,
                    from: m.from,
                    to: m.to,
                    step: m.step,
                })
                .collect(),
        })
    }

    /// Asks PD to move every replica off worker `name`.
    pub async fn drain_worker(&self, name: &str) -> Result<()> {
        let request = pd::DrainWorkerRequest {
            name: name.to_owned(),
        };
        self.pd()
            .call(|mut c| {
                let request = request.clone();
                async move { c.drain_worker(request).await }
            })
            .await
            .map_err(pd_error)?;
        Ok(())
    }

    /// Removes a drained or down worker from PD.
    pub async fn remove_worker(&self, name: &str) -> Result<()> {
        let request = pd::RemoveWorkerRequest {
            name: name.to_owned(),
        };
        self.pd()
            .call(|mut c| {
                let request = request.clone();
                async move { c.remove_worker(request).await }
            })
            .await
            .map_err(pd_error)?;
        Ok(())
    }
}

fn not_found_as_collection(error: ApiError, name: &str) -> ApiError {
    if error.kind == ErrorKind::NotFound {
        ApiError::collection_not_found(name)
    } else {
        error
    }
}

/// Parses a path id: all digits is an integer id, anything else a string.
pub fn path_id(raw: &str) -> PointId {
    match raw.parse::<u64>() {
        Ok(n) if !raw.starts_with('+') => PointId::Num(n),
        _ => PointId::Str(raw.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(id: u64, score: f32) -> Hit {
        Hit {
            id: PointId::Num(id),
            score,
            payload: None,
            vector: None,
        }
    }

    #[test]
    fn merge_orders_by_metric_and_truncates() {
        let lists = vec![
            vec![hit(1, 0.9), hit(2, 0.5)],
            vec![hit(3, 0.7), hit(4, 0.1)],
        ];
        let ids = |hits: Vec<Hit>| hits.iter().map(|h| h.id.canonical()).collect::<Vec<_>>();
        assert_eq!(
            ids(merge_hits(Metric::Cosine, lists.clone(), 3)),
            ["1", "3", "2"]
        );
        assert_eq!(ids(merge_hits(Metric::L2, lists, 2)), ["4", "2"]);
    }

    #[test]
    fn cursor_round_trips_and_rejects_garbage() {
        for (shard, after) in [(0, None), (3, Some("a:b")), (12, Some("42"))] {
            let cursor = encode_cursor(shard, after);
            assert_eq!(
                decode_cursor(&cursor).expect("own cursor"),
                (shard, after.map(str::to_owned))
            );
        }
        assert_eq!(decode_cursor("zz").expect_err("garbage").field, "cursor");
        assert!(decode_cursor("abc").is_err());
        // Multi-byte characters of even byte length: refused, not a panic
        // on a char boundary.
        for garbage in ["éé", "€a", "0é", "+1"] {
            assert_eq!(
                decode_cursor(garbage).expect_err("non-hex").field,
                "cursor",
                "{garbage:?}"
            );
        }
    }

    #[test]
    fn path_ids_follow_the_canonical_form() {
        assert_eq!(path_id("42"), PointId::Num(42));
        assert_eq!(path_id("a-1"), PointId::Str("a-1".into()));
        assert_eq!(path_id("+1"), PointId::Str("+1".into()));
    }
}
