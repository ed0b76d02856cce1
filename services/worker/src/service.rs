//! The `vectron.worker.v1.Worker` gRPC service: per-shard upsert, delete, get,
//! search, scroll and count. Writes and strong reads go to the shard leader (a
//! follower answers NOT_LEADER with a hint); stale epochs get STALE_EPOCH;
//! points that hash outside the shard's range get WRONG_SHARD; input is
//! validated whole before anything is proposed, and a write's request id goes
//! into its proposal so a retry is applied at most once. Does I/O through
//! Raft and RocksDB.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};

use openraft::error::{CheckIsLeaderError, ClientWriteError, RaftError};
use prost::Message;
use tonic::{Request, Response, Status};
use vectron_proto::common::v1::{self as common, Consistency};
use vectron_proto::error_detail;
use vectron_proto::worker::v1 as pb;
use vectron_proto::worker::v1::worker_server::Worker;

use crate::filter::PayloadFilter;
use crate::maintenance::MAX_UNBUILT;
use crate::replica::Replica;
use crate::shard::codec;
use crate::shard::command::{PointRecord, RequestId, ShardCommand, ShardProposal, ShardResponse};
use crate::shard::read::{self, ShardQuery};
use crate::storage::{StorageError, StoredPoint};

/// Largest payload of one point, in bytes of JSON.
pub const MAX_PAYLOAD_BYTES: usize = 64 * 1024;
/// Most points per upsert request.
pub const MAX_POINTS_PER_UPSERT: usize = 10_000;
/// Largest write, in bytes of its log entry: well under the Raft transport's
/// cap per AppendEntries ([`vectron_raft::network::MAX_APPEND_BYTES`]), so
/// one entry always replicates.
pub const MAX_ENTRY_BYTES: usize = 32 * 1024 * 1024;

/// The replicas this worker hosts, by shard id.
pub type Replicas = Arc<RwLock<HashMap<u64, Arc<Replica>>>>;

/// The worker gRPC service.
pub struct WorkerService {
    replicas: Replicas,
}

impl WorkerService {
    /// A service over the hosted replicas.
    pub fn new(replicas: Replicas) -> Self {
        Self { replicas }
    }

    fn replica(&self, shard: Option<&pb::ShardRef>) -> Result<Arc<Replica>, Status> {
        let shard = shard.ok_or_else(|| error_detail::invalid_argument("shard", "is required"))?;
        let replica = self
            .replicas
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&shard.shard_id)
            .cloned()
            .ok_or_else(|| error_detail::shard_not_found(shard.shard_id))?;
        let current = replica.epoch.load(Ordering::Relaxed);
        if shard.epoch < current {
            return Err(error_detail::stale_epoch(
                shard.shard_id,
                shard.epoch,
                current,
            ));
        }
        Ok(replica)
    }
}

fn not_leader(replica: &Replica) -> Status {
    error_detail::not_leader(
        format!("this worker does not lead shard {}", replica.shard_id),
        replica.leader_hint(),
    )
}

fn handing_over(replica: &Replica) -> Status {
    Status::unavailable(format!(
        "shard {} is handing leadership over; retry shortly",
        replica.shard_id
    ))
}

async fn propose(replica: &Replica, proposal: ShardProposal) -> Result<ShardResponse, Status> {
    if replica.is_handing_over() {
        return Err(handing_over(replica));
    }
    match replica.raft.client_write(proposal).await {
        Ok(reply) => match reply.data {
            ShardResponse::Rejected(reason) => Err(error_detail::invalid_argument("", reason)),
            ok => Ok(ok),
        },
        Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_))) => Err(not_leader(replica)),
        Err(e) => Err(Status::unavailable(format!(
            "shard {}: {e}",
            replica.shard_id
        ))),
    }
}

/// Holds an upsert back while the shard has more unbuilt points than
/// [`MAX_UNBUILT`], so ingest runs at the graph's build rate; gives up
/// waiting after [`INDEXING_WAIT`] (the apply then enforces its hard bound).
/// The apply is never held back here, so strong reads never wait for a
/// build.
async fn wait_for_indexing(replica: &Replica) {
    let deadline = tokio::time::Instant::now() + INDEXING_WAIT;
    loop {
        let unbuilt = replica
            .index
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .unbuilt();
        if unbuilt < MAX_UNBUILT || tokio::time::Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// Longest an upsert waits for the graph builder before it is proposed.
const INDEXING_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// For strong reads: confirm leadership and wait until everything committed
/// before the call is applied.
async fn read_barrier(replica: &Replica, consistency: i32) -> Result<(), Status> {
    if Consistency::try_from(consistency) == Ok(Consistency::Eventual) {
        return Ok(());
    }
    if replica.is_handing_over() {
        return Err(handing_over(replica));
    }
    match replica.raft.ensure_linearizable().await {
        Ok(_) => Ok(()),
        Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(_))) => {
            Err(not_leader(replica))
        }
        Err(e) => Err(Status::unavailable(format!(
            "shard {}: {e}",
            replica.shard_id
        ))),
    }
}

fn request_id(bytes: &[u8]) -> Result<Option<RequestId>, Status> {
    RequestId::from_wire(bytes).map_err(|e| error_detail::invalid_argument("request_id", e))
}

/// Refuses a point that does not belong to this shard.
fn check_range(replica: &Replica, id: &vectron_ids::PointId, field: &str) -> Result<(), Status> {
    let hash = vectron_routing::point_hash(id);
    if replica.range.contains(hash) {
        return Ok(());
    }
    Err(error_detail::wrong_shard(
        replica.shard_id,
        field,
        format!(
            "point {id} hashes to {hash:#018x}, outside this shard's range [{:#018x}, {:#018x}]; refresh the routing table",
            replica.range.start, replica.range.end
        ),
    ))
}

fn point_id(id: Option<&common::PointId>, field: &str) -> Result<vectron_ids::PointId, Status> {
    let id = match id.and_then(|id| id.kind.as_ref()) {
        Some(common::point_id::Kind::Num(n)) => vectron_ids::PointId::Num(*n),
        Some(common::point_id::Kind::Str(s)) => vectron_ids::PointId::Str(s.clone()),
        None => {
            return Err(error_detail::invalid_argument(
                field,
                "a point id is required",
            ));
        }
    };
    id.validate()
        .map_err(|e| error_detail::invalid_argument(field, e.to_string()))?;
    Ok(id)
}

/// Validates every point of an upsert; nothing is written unless all pass.
fn validate_points(replica: &Replica, points: Vec<pb::Point>) -> Result<Vec<PointRecord>, Status> {
    if points.len() > MAX_POINTS_PER_UPSERT {
        return Err(error_detail::invalid_argument(
            "points",
            format!(
                "at most {MAX_POINTS_PER_UPSERT} points per upsert, got {}",
                points.len()
            ),
        ));
    }
    points
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            let field = format!("points[{i}].id");
            let id = point_id(p.id.as_ref(), &field)?;
            check_range(replica, &id, &field)?;
            if p.vector.len() != replica.dimension {
                return Err(error_detail::invalid_argument(
                    format!("points[{i}].vector"),
                    format!(
                        "point {id}: vector has {} components, collection {:?} has dimension {}",
                        p.vector.len(),
                        replica.collection,
                        replica.dimension
                    ),
                ));
            }
            if let Some(j) = p.vector.iter().position(|x| !x.is_finite()) {
                return Err(error_detail::invalid_argument(
                    format!("points[{i}].vector[{j}]"),
                    format!("point {id}: component {j} is not a finite number"),
                ));
            }
            if p.payload_json.len() > MAX_PAYLOAD_BYTES {
                return Err(error_detail::invalid_argument(
                    format!("points[{i}].payload"),
                    format!(
                        "point {id}: payload is {} bytes; the limit is {MAX_PAYLOAD_BYTES}",
                        p.payload_json.len()
                    ),
                ));
            }
            if !p.payload_json.is_empty() {
                let value: serde_json::Value =
                    serde_json::from_slice(&p.payload_json).map_err(|e| {
                        error_detail::invalid_argument(
                            format!("points[{i}].payload"),
                            format!("point {id}: {e}"),
                        )
                    })?;
                if !value.is_object() {
                    return Err(error_detail::invalid_argument(
                        format!("points[{i}].payload"),
                        format!("point {id}: payload must be a JSON object"),
                    ));
                }
            }
            Ok(PointRecord {
                id,
                vector: p.vector,
                payload: p.payload_json,
            })
        })
        .collect()
}

/// Searches up to this `ef` and `top_k`, with no filter, run on the async
/// thread that received them; others go to the blocking pool.
const INLINE_MAX_EF: usize = 512;

/// Runs a whole-shard read (scroll, filtered count) on tokio's blocking pool,
/// so a long scan never holds up the Raft heartbeats sharing the runtime.
async fn off_runtime<T: Send + 'static>(
    read: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<T, Status> {
    tokio::task::spawn_blocking(read)
        .await
        .map_err(|e| internal(format!("read task failed: {e}")))?
        .map_err(internal)
}

fn output_point(stored: StoredPoint, with_vector: bool, with_payload: bool) -> pb::Point {
    pb::Point {
        id: stored.point.id,
        vector: if with_vector {
            stored.point.vector
        } else {
            Vec::new()
        },
        payload_json: if with_payload {
            stored.payload
        } else {
            Vec::new()
        },
    }
}

/// Checks a request's filter against the size limit (again: the gateway
/// checks it first) and compiles it.
fn compile_filter(filter: Option<&common::Filter>) -> Result<Option<PayloadFilter>, Status> {
    let limit = vectron_config::Limits::default().max_filter_bytes;
    if let Some(size) = filter.map(|f| f.encoded_len())
        && size > limit
    {
        return Err(error_detail::invalid_argument(
            "filter",
            format!("is {size} bytes encoded; the limit is {limit}"),
        ));
    }
    filter
        .map(|f| PayloadFilter::from_proto(f, "filter"))
        .transpose()
        .map_err(|e| error_detail::invalid_argument(e.field.clone(), e.to_string()))
}

fn internal(e: impl std::fmt::Display) -> Status {
    Status::internal(e.to_string())
}

#[tonic::async_trait]
impl Worker for WorkerService {
    async fn upsert(
        &self,
        request: Request<pb::UpsertRequest>,
    ) -> Result<Response<pb::UpsertResponse>, Status> {
        let request = request.into_inner();
        let replica = self.replica(request.shard.as_ref())?;
        let request_id = request_id(&request.request_id)?;
        let points = validate_points(&replica, request.points)?;
        if points.is_empty() {
            return Ok(Response::new(pb::UpsertResponse { upserted: 0 }));
        }
        let proposal = ShardProposal {
            request: request_id,
            command: ShardCommand::Upsert { points },
        };
        let bytes = codec::encoded_len(&proposal);
        if bytes > MAX_ENTRY_BYTES {
            return Err(error_detail::too_large(
                "points",
                format!(
                    "the batch encodes to {bytes} bytes; one write to a shard may take at most {MAX_ENTRY_BYTES}: send fewer or smaller points per request"
                ),
            ));
        }
        wait_for_indexing(&replica).await;
        match propose(&replica, proposal).await? {
            ShardResponse::Upserted(n) => Ok(Response::new(pb::UpsertResponse { upserted: n })),
            other => Err(internal(format!("unexpected reply {other:?}"))),
        }
    }

    async fn delete(
        &self,
        request: Request<pb::DeleteRequest>,
    ) -> Result<Response<pb::DeleteResponse>, Status> {
        let request = request.into_inner();
        let replica = self.replica(request.shard.as_ref())?;
        let request_id = request_id(&request.request_id)?;
        let command = match (&request.filter, request.ids.is_empty()) {
            (Some(filter), true) => {
                compile_filter(Some(filter))?;
                ShardCommand::DeleteByFilter {
                    filter: filter.encode_to_vec(),
                }
            }
            (None, false) => ShardCommand::Delete {
                ids: request
                    .ids
                    .iter()
                    .enumerate()
                    .map(|(i, id)| {
                        let field = format!("ids[{i}]");
                        let id = point_id(Some(id), &field)?;
                        check_range(&replica, &id, &field)?;
                        Ok(id)
                    })
                    .collect::<Result<_, Status>>()?,
            },
            _ => {
                return Err(error_detail::invalid_argument(
                    "ids",
                    "give exactly one of ids or filter",
                ));
            }
        };
        let proposal = ShardProposal {
            request: request_id,
            command,
        };
        match propose(&replica, proposal).await? {
            ShardResponse::Deleted(n) => Ok(Response::new(pb::DeleteResponse { deleted: n })),
            other => Err(internal(format!("unexpected reply {other:?}"))),
        }
    }

    async fn get(
        &self,
        request: Request<pb::GetRequest>,
    ) -> Result<Response<pb::GetResponse>, Status> {
        let request = request.into_inner();
        let replica = self.replica(request.shard.as_ref())?;
        let ids = request
            .ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let field = format!("ids[{i}]");
                let id = point_id(Some(id), &field)?;
                check_range(&replica, &id, &field)?;
                Ok(id)
            })
            .collect::<Result<Vec<_>, Status>>()?;
        read_barrier(&replica, request.consistency).await?;
        let points = read::get_points(&replica.store, &ids, request.with_payload)
            .map_err(internal)?
            .into_iter()
            .map(|stored| output_point(stored, request.with_vector, request.with_payload))
            .collect();
        Ok(Response::new(pb::GetResponse { points }))
    }

    async fn search(
        &self,
        request: Request<pb::SearchRequest>,
    ) -> Result<Response<pb::SearchResponse>, Status> {
        let request = request.into_inner();
        let replica = self.replica(request.shard.as_ref())?;
        if request.vector.len() != replica.dimension {
            return Err(error_detail::invalid_argument(
                "vector",
                format!(
                    "query has {} components, dimension is {}",
                    request.vector.len(),
                    replica.dimension
                ),
            ));
        }
        if request.vector.iter().any(|x| !x.is_finite()) {
            return Err(error_detail::invalid_argument(
                "vector",
                "components must be finite numbers",
            ));
        }
        let limits = vectron_config::Limits::default();
        if request.ef > limits.max_ef {
            return Err(error_detail::invalid_argument(
                "ef",
                format!("is {}; the limit is {}", request.ef, limits.max_ef),
            ));
        }
        if request.top_k > limits.max_top_k {
            return Err(error_detail::invalid_argument(
                "top_k",
                format!("is {}; the limit is {}", request.top_k, limits.max_top_k),
            ));
        }
        let filter = compile_filter(request.filter.as_ref())?;
        read_barrier(&replica, request.consistency).await?;
        let ef = if request.ef == 0 {
            replica.ef_search
        } else {
            request.ef as usize
        };
        let (with_payload, with_vector) = (request.with_payload, request.with_vector);
        let top_k = request.top_k as usize;
        let inline = filter.is_none() && ef <= INLINE_MAX_EF && top_k <= INLINE_MAX_EF;
        let search = move || {
            let query = ShardQuery {
                vector: &request.vector,
                top_k,
                ef,
                filter: filter.as_ref(),
                with_payload,
                with_vector,
            };
            read::search_points(&replica.index, &replica.row_ids, &replica.store, &query)
        };
        // A plain search takes a fraction of a millisecond and runs here (a
        // hand-off would cost a good part of it); one that may take long —
        // a filter that reads payloads, a wide `ef` or `top_k` — runs on the
        // blocking pool so it never holds up the Raft heartbeats sharing
        // these threads.
        let found = if inline {
            search().map_err(internal)?
        } else {
            off_runtime(search).await?
        };
        let results = found
            .into_iter()
            .map(|(stored, score)| {
                let point = output_point(stored, with_vector, with_payload);
                pb::ScoredPoint {
                    id: point.id,
                    score,
                    vector: point.vector,
                    payload_json: point.payload_json,
                }
            })
            .collect();
        Ok(Response::new(pb::SearchResponse { results }))
    }

    async fn scroll(
        &self,
        request: Request<pb::ScrollRequest>,
    ) -> Result<Response<pb::ScrollResponse>, Status> {
        let request = request.into_inner();
        let replica = self.replica(request.shard.as_ref())?;
        let filter = compile_filter(request.filter.as_ref())?;
        read_barrier(&replica, request.consistency).await?;
        let limit = if request.limit == 0 {
            100
        } else {
            request.limit.min(10_000)
        } as usize;
        let store = replica.store.clone();
        let after = request.after_id.clone();
        let with_payload = request.with_payload;
        let page = off_runtime(move || {
            read::scroll_points(
                &store,
                after.as_deref(),
                limit,
                filter.as_ref(),
                with_payload,
            )
        })
        .await?;
        Ok(Response::new(pb::ScrollResponse {
            points: page
                .points
                .into_iter()
                .map(|(_, p)| output_point(p, request.with_vector, request.with_payload))
                .collect(),
            next_after_id: page.next_after,
        }))
    }

    async fn count(
        &self,
        request: Request<pb::CountRequest>,
    ) -> Result<Response<pb::CountResponse>, Status> {
        let request = request.into_inner();
        let replica = self.replica(request.shard.as_ref())?;
        let filter = compile_filter(request.filter.as_ref())?;
        read_barrier(&replica, request.consistency).await?;
        let count = match filter {
            None => replica
                .index
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .len() as u64,
            Some(filter) => {
                let indexed = replica.row_ids.read().payloads.select(&filter);
                match indexed {
                    Some(selection) => selection.count() as u64,
                    None => {
                        let store = replica.store.clone();
                        off_runtime(move || read::count_matching(&store, &filter)).await?
                    }
                }
            }
        };
        Ok(Response::new(pb::CountResponse { count }))
    }
}
