//! The operations of the public API, shared by the REST and gRPC front ends:
//! collection management through PD, point writes grouped by shard and sent
//! to shard leaders in parallel, reads fanned out to every shard they touch,
//! and search merged to the global top-k. Authorisation happens before these
//! are called. Does network I/O (PD, workers).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::future::try_join_all;
use vectron_config::Limits;
use vectron_ids::PointId;
use vectron_pd::{PdClient, PdClientOptions};
use vectron_proto::common::v1::{Consistency, Filter, Metric};
use vectron_proto::pd::v1 as pd;
use vectron_proto::v1 as api;
use vectron_proto::worker::v1 as worker;

use crate::convert;
use crate::dispatch::{Dispatcher, RetryPolicy, Target};
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
}

fn target(consistency: Consistency) -> Target {
    match consistency {
        Consistency::Eventual => Target::AnyReplica,
        Consistency::Strong | Consistency::Unspecified => Target::Leader,
    }
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
    if !cursor.len().is_multiple_of(2) {
        return Err(bad());
    }
    let bytes = (0..cursor.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&cursor[i..i + 2], 16))
        .collect::<std::result::Result<Vec<u8>, _>>()
        .map_err(|_| bad())?;
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
        })
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

    /// Succeeds when PD answers and has a leader.
    pub async fn ready(&self) -> Result<()> {
        let members = self
            .probe
            .call(|mut c| async move { c.get_members(pd::GetMembersRequest {}).await })
            .await
            .map_err(pd_error)?;
        if members.leader_id == 0 {
            return Err(ApiError::unavailable("the placement driver has no leader"));
        }
        Ok(())
    }

    /// Creates a collection, applying the documented defaults.
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
        Ok(convert::collection(&collection))
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
        let mut groups: BTreeMap<usize, Vec<worker::Point>> = BTreeMap::new();
        for point in points {
            let shard = table.map.index_of_point(&point.id);
            let payload_json = match &point.payload {
                Some(payload) => serde_json::to_vec(payload).map_err(|e| {
                    ApiError::new(ErrorKind::Internal, format!("payload encoding: {e}"))
                })?,
                None => Vec::new(),
            };
            groups.entry(shard).or_default().push(worker::Point {
                id: Some(convert::id_to_wire(&point.id)),
                vector: point.vector,
                payload_json,
            });
        }
        let calls = groups.into_iter().map(|(index, points)| {
            let points = Arc::new(points);
            self.dispatch
                .on_shard(collection, index, Target::Leader, move |mut c, shard| {
                    let request = worker::UpsertRequest {
                        shard: Some(shard),
                        points: points.as_ref().clone(),
                    };
                    async move { c.upsert(request).await }
                })
        });
        let answers = try_join_all(calls).await?;
        Ok(answers.iter().map(|a| a.upserted).sum())
    }

    /// Reads points by id, in the order asked (missing ids omitted).
    pub async fn get_points(&self, collection: &str, query: GetQuery) -> Result<Vec<PointOut>> {
        let table = self.table(collection).await?;
        validate::ids(&query.ids, &self.limits)?;
        let mut groups: BTreeMap<usize, Vec<vectron_proto::common::v1::PointId>> = BTreeMap::new();
        for id in &query.ids {
            groups
                .entry(table.map.index_of_point(id))
                .or_default()
                .push(convert::id_to_wire(id));
        }
        let calls = groups.into_iter().map(|(index, ids)| {
            let query = &query;
            self.dispatch.on_shard(
                collection,
                index,
                target(query.consistency),
                move |mut c, shard| {
                    let request = worker::GetRequest {
                        shard: Some(shard),
                        ids: ids.clone(),
                        with_vector: query.with_vector,
                        with_payload: query.with_payload,
                        consistency: query.consistency.into(),
                    };
                    async move { c.get(request).await }
                },
            )
        });
        let mut found: HashMap<String, PointOut> = HashMap::new();
        for answer in try_join_all(calls).await? {
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
        let table = self.table(collection).await?;
        let requests: Vec<(usize, worker::DeleteRequest)> = match selector {
            DeleteSelector::Ids(ids) => {
                validate::ids(&ids, &self.limits)?;
                let mut groups: BTreeMap<usize, Vec<_>> = BTreeMap::new();
                for id in &ids {
                    groups
                        .entry(table.map.index_of_point(id))
                        .or_default()
                        .push(convert::id_to_wire(id));
                }
                groups
                    .into_iter()
                    .map(|(index, ids)| {
                        (
                            index,
                            worker::DeleteRequest {
                                shard: None,
                                ids,
                                filter: None,
                            },
                        )
                    })
                    .collect()
            }
            DeleteSelector::Filter(filter) => (0..table.shards.len())
                .map(|index| {
                    (
                        index,
                        worker::DeleteRequest {
                            shard: None,
                            ids: Vec::new(),
                            filter: Some(filter.clone()),
                        },
                    )
                })
                .collect(),
        };
        let calls = requests.into_iter().map(|(index, request)| {
            self.dispatch
                .on_shard(collection, index, Target::Leader, move |mut c, shard| {
                    let mut request = request.clone();
                    request.shard = Some(shard);
                    async move { c.delete(request).await }
                })
        });
        let answers = try_join_all(calls).await?;
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
        let request = Arc::new(request);
        let calls = (0..table.shards.len()).map(|index| {
            let request = request.clone();
            self.dispatch.on_shard(
                collection,
                index,
                target(query.consistency),
                move |mut c, shard| {
                    let mut request = request.as_ref().clone();
                    request.shard = Some(shard);
                    async move { c.search(request).await }
                },
            )
        });
        let lists = try_join_all(calls)
            .await?
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

    /// One page of points, shard by shard in id order.
    pub async fn scroll(&self, collection: &str, query: ScrollQuery) -> Result<ScrollPage> {
        let table = self.table(collection).await?;
        validate::top_k(query.limit, "limit", &self.limits)?;
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
            let answer = self
                .dispatch
                .on_shard(
                    collection,
                    shard,
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
        let table = self.table(collection).await?;
        let calls = (0..table.shards.len()).map(|index| {
            let filter = filter.clone();
            self.dispatch.on_shard(
                collection,
                index,
                target(consistency),
                move |mut c, shard| {
                    let request = worker::CountRequest {
                        shard: Some(shard),
                        filter: filter.clone(),
                        consistency: consistency.into(),
                    };
                    async move { c.count(request).await }
                },
            )
        });
        Ok(try_join_all(calls).await?.iter().map(|a| a.count).sum())
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
    }

    #[test]
    fn path_ids_follow_the_canonical_form() {
        assert_eq!(path_id("42"), PointId::Num(42));
        assert_eq!(path_id("a-1"), PointId::Str("a-1".into()));
        assert_eq!(path_id("+1"), PointId::Str("+1".into()));
    }
}
