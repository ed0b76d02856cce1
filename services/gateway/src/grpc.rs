//! The gRPC front end: the public service `vectron.v1.Vectron`, one call per
//! REST row, running the same [`Frontdoor`] checks and [`Gateway`]
//! operations so ids, scores and errors match REST exactly. Credentials come
//! from the `authorization` and `api-key` metadata. Does network I/O.
//!
//! [`Gateway`]: crate::api::Gateway

use std::collections::BTreeMap;
use std::sync::Arc;

use prost_types::value::Kind;
use serde_json::{Map, Number, Value};
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};
use vectron_auth::{Credential, Role};
use vectron_proto::common::v1::Consistency;
use vectron_proto::v1 as api;
use vectron_proto::v1::vectron_server::Vectron;

use crate::access::{Action, credential};
use crate::convert::{id_from_wire, id_to_wire};
use crate::error::{ApiError, ErrorKind, Result};
use crate::guard::Frontdoor;
use crate::model::{
    DeleteSelector, GetQuery, Hit, NewPoint, PointOut, ScrollQuery, SearchQuery, defaults,
};
use crate::users;

/// The interceptor that admits each gRPC request under the per-address rate
/// limit before the request is decoded or its credential read.
pub fn admit_address(
    door: Arc<Frontdoor>,
) -> impl FnMut(Request<()>) -> std::result::Result<Request<()>, Status> + Clone {
    move |request: Request<()>| {
        door.admit_address(request.remote_addr().map(|a| a.ip()))
            .map_err(Status::from)?;
        Ok(request)
    }
}

/// The `vectron.v1.Vectron` service.
pub struct GrpcApi {
    door: Arc<Frontdoor>,
}

impl GrpcApi {
    /// A service over `door`.
    pub fn new(door: Arc<Frontdoor>) -> Self {
        Self { door }
    }
}

type Reply<T> = std::result::Result<Response<T>, Status>;

fn reply<T>(result: Result<T>) -> Reply<T> {
    result.map(Response::new).map_err(|e| e.to_status())
}

fn metadata_credential(metadata: &MetadataMap) -> Result<Option<Credential>> {
    let text = |name: &str| -> Result<Option<&str>> {
        metadata
            .get(name)
            .map(|v| {
                v.to_str().map_err(|_| {
                    ApiError::new(
                        ErrorKind::Unauthenticated,
                        format!("the {name} metadata is not text"),
                    )
                })
            })
            .transpose()
    };
    credential(text("authorization")?, text("api-key")?)
}

/// A protobuf `Struct` as a JSON object. Whole numbers that fit come back as
/// integers, so payloads read the same through both front ends.
pub fn struct_to_json(s: prost_types::Struct) -> Map<String, Value> {
    s.fields
        .into_iter()
        .map(|(k, v)| (k, value_to_json(v)))
        .collect()
}

fn value_to_json(v: prost_types::Value) -> Value {
    match v.kind {
        None | Some(Kind::NullValue(_)) => Value::Null,
        Some(Kind::BoolValue(b)) => Value::Bool(b),
        Some(Kind::StringValue(s)) => Value::String(s),
        Some(Kind::NumberValue(n)) => {
            if n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0 {
                Value::Number(Number::from(n as i64))
            } else {
                Number::from_f64(n).map_or(Value::Null, Value::Number)
            }
        }
        Some(Kind::StructValue(s)) => Value::Object(struct_to_json(s)),
        Some(Kind::ListValue(l)) => Value::Array(l.values.into_iter().map(value_to_json).collect()),
    }
}

/// A JSON object as a protobuf `Struct`.
pub fn json_to_struct(map: &Map<String, Value>) -> prost_types::Struct {
    prost_types::Struct {
        fields: map
            .iter()
            .map(|(k, v)| (k.clone(), json_to_value(v)))
            .collect::<BTreeMap<_, _>>(),
    }
}

fn json_to_value(v: &Value) -> prost_types::Value {
    let kind = match v {
        Value::Null => Kind::NullValue(0),
        Value::Bool(b) => Kind::BoolValue(*b),
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(0.0)),
        Value::String(s) => Kind::StringValue(s.clone()),
        Value::Array(a) => Kind::ListValue(prost_types::ListValue {
            values: a.iter().map(json_to_value).collect(),
        }),
        Value::Object(o) => Kind::StructValue(json_to_struct(o)),
    };
    prost_types::Value { kind: Some(kind) }
}

fn payload_struct(payload: &Option<Value>) -> Option<prost_types::Struct> {
    match payload {
        Some(Value::Object(map)) => Some(json_to_struct(map)),
        _ => None,
    }
}

fn point_out(p: PointOut) -> api::Point {
    api::Point {
        id: Some(id_to_wire(&p.id)),
        vector: p.vector.unwrap_or_default(),
        payload: payload_struct(&p.payload),
    }
}

fn hit_out(h: Hit) -> api::ScoredPoint {
    api::ScoredPoint {
        id: Some(id_to_wire(&h.id)),
        score: h.score,
        payload: payload_struct(&h.payload),
        vector: h.vector.unwrap_or_default(),
    }
}

fn ids_in(ids: &[vectron_proto::common::v1::PointId]) -> Result<Vec<vectron_ids::PointId>> {
    ids.iter()
        .enumerate()
        .map(|(i, id)| {
            id_from_wire(Some(id))
                .ok_or_else(|| ApiError::invalid(format!("ids[{i}]"), "a point id is required"))
        })
        .collect()
}

fn consistency(raw: i32) -> Result<Consistency> {
    Consistency::try_from(raw)
        .map_err(|_| ApiError::invalid("consistency", format!("unknown value {raw}")))
}

fn role(raw: i32) -> Result<Role> {
    Role::from_proto(raw).map_err(|e| ApiError::invalid("role", e))
}

fn scope(scope: Option<api::CollectionScope>) -> Option<Vec<String>> {
    scope.map(|s| s.names)
}

fn api_role(role: Role) -> api::Role {
    match role {
        Role::Read => api::Role::Read,
        Role::Write => api::Role::Write,
        Role::Admin => api::Role::Admin,
    }
}

#[tonic::async_trait]
impl Vectron for GrpcApi {
    async fn health(&self, _: Request<api::HealthRequest>) -> Reply<api::HealthResponse> {
        Ok(Response::new(api::HealthResponse {}))
    }

    async fn ready(&self, _: Request<api::ReadyRequest>) -> Reply<api::ReadyResponse> {
        reply(
            self.door
                .gateway
                .ready()
                .await
                .map(|()| api::ReadyResponse {}),
        )
    }

    async fn create_collection(
        &self,
        request: Request<api::CreateCollectionRequest>,
    ) -> Reply<api::CreateCollectionResponse> {
        let credential = metadata_credential(request.metadata());
        let request = request.into_inner();
        let door = &self.door;
        reply(
            door.serve(credential, |caller| async move {
                caller.allow(Action::ManageCollection(&request.name))?;
                let collection = door.gateway.create_collection(request).await?;
                Ok(api::CreateCollectionResponse {
                    collection: Some(collection),
                })
            })
            .await,
        )
    }

    async fn list_collections(
        &self,
        request: Request<api::ListCollectionsRequest>,
    ) -> Reply<api::ListCollectionsResponse> {
        let credential = metadata_credential(request.metadata());
        let door = &self.door;
        reply(
            door.serve(credential, |caller| async move {
                caller.allow(Action::ListCollections)?;
                let collections = door
                    .gateway
                    .list_collections()
                    .await?
                    .into_iter()
                    .filter(|c| caller.sees(&c.name))
                    .collect();
                Ok(api::ListCollectionsResponse { collections })
            })
            .await,
        )
    }

    async fn get_collection(
        &self,
        request: Request<api::GetCollectionRequest>,
    ) -> Reply<api::GetCollectionResponse> {
        let credential = metadata_credential(request.metadata());
        let name = request.into_inner().name;
        let door = &self.door;
        reply(
            door.serve(credential, |caller| async move {
                caller.allow(Action::Read(&name))?;
                Ok(api::GetCollectionResponse {
                    collection: Some(door.gateway.get_collection(&name).await?),
                })
            })
            .await,
        )
    }

    async fn delete_collection(
        &self,
        request: Request<api::DeleteCollectionRequest>,
    ) -> Reply<api::DeleteCollectionResponse> {
        let credential = metadata_credential(request.metadata());
        let name = request.into_inner().name;
        let door = &self.door;
        reply(
            door.serve(credential, |caller| async move {
                caller.allow(Action::ManageCollection(&name))?;
                door.gateway.delete_collection(&name).await?;
                Ok(api::DeleteCollectionResponse {})
            })
            .await,
        )
    }

    async fn upsert_points(
        &self,
        request: Request<api::UpsertPointsRequest>,
    ) -> Reply<api::UpsertPointsResponse> {
        let credential = metadata_credential(request.metadata());
        let request = request.into_inner();
        let door = &self.door;
        reply(
            door.serve(credential, |caller| async move {
                caller.allow(Action::Write(&request.collection))?;
                let points = request
                    .points
                    .into_iter()
                    .enumerate()
                    .map(|(i, p)| {
                        Ok(NewPoint {
                            id: id_from_wire(p.id.as_ref()).ok_or_else(|| {
                                ApiError::invalid(
                                    format!("points[{i}].id"),
                                    "a point id is required",
                                )
                            })?,
                            vector: p.vector,
                            payload: p.payload.map(struct_to_json),
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                let upserted = door.gateway.upsert(&request.collection, points).await?;
                Ok(api::UpsertPointsResponse { upserted })
            })
            .await,
        )
    }

    async fn get_point(
        &self,
        request: Request<api::GetPointRequest>,
    ) -> Reply<api::GetPointResponse> {
        let credential = metadata_credential(request.metadata());
        let request = request.into_inner();
        let door = &self.door;
        reply(
            door.serve(credential, |caller| async move {
                caller.allow(Action::Read(&request.collection))?;
                let id = id_from_wire(request.id.as_ref())
                    .ok_or_else(|| ApiError::invalid("id", "a point id is required"))?;
                let query = GetQuery {
                    ids: vec![id.clone()],
                    with_vector: true,
                    with_payload: true,
                    consistency: consistency(request.consistency)?,
                };
                let point = door
                    .gateway
                    .get_points(&request.collection, query)
                    .await?
                    .into_iter()
                    .next()
                    .ok_or_else(|| {
                        ApiError::new(
                            ErrorKind::NotFound,
                            format!(
                                "point {id} does not exist in collection {:?}",
                                request.collection
                            ),
                        )
                    })?;
                Ok(api::GetPointResponse {
                    point: Some(point_out(point)),
                })
            })
            .await,
        )
    }

    async fn get_points(
        &self,
        request: Request<api::GetPointsRequest>,
    ) -> Reply<api::GetPointsResponse> {
        let credential = metadata_credential(request.metadata());
        let request = request.into_inner();
        let door = &self.door;
        reply(
            door.serve(credential, |caller| async move {
                caller.allow(Action::Read(&request.collection))?;
                let query = GetQuery {
                    ids: ids_in(&request.ids)?,
                    with_vector: request.with_vector.unwrap_or(true),
                    with_payload: request.with_payload.unwrap_or(true),
                    consistency: consistency(request.consistency)?,
                };
                let points = door.gateway.get_points(&request.collection, query).await?;
                Ok(api::GetPointsResponse {
                    points: points.into_iter().map(point_out).collect(),
                })
            })
            .await,
        )
    }

    async fn delete_points(
        &self,
        request: Request<api::DeletePointsRequest>,
    ) -> Reply<api::DeletePointsResponse> {
        let credential = metadata_credential(request.metadata());
        let request = request.into_inner();
        let door = &self.door;
        reply(
            door.serve(credential, |caller| async move {
                caller.allow(Action::Write(&request.collection))?;
                let selector = match (request.ids.is_empty(), request.filter) {
                    (false, None) => DeleteSelector::Ids(ids_in(&request.ids)?),
                    (true, Some(filter)) => DeleteSelector::Filter(filter),
                    _ => {
                        return Err(ApiError::invalid(
                            "ids",
                            "give exactly one of ids or filter",
                        ));
                    }
                };
                let deleted = door
                    .gateway
                    .delete_points(&request.collection, selector)
                    .await?;
                Ok(api::DeletePointsResponse { deleted })
            })
            .await,
        )
    }

    async fn search_points(
        &self,
        request: Request<api::SearchPointsRequest>,
    ) -> Reply<api::SearchPointsResponse> {
        let credential = metadata_credential(request.metadata());
        let request = request.into_inner();
        let door = &self.door;
        reply(
            door.serve(credential, |caller| async move {
                caller.allow(Action::Read(&request.collection))?;
                let collection = request.collection.clone();
                let hits = door
                    .gateway
                    .search(&collection, search_query(request)?)
                    .await?;
                Ok(api::SearchPointsResponse {
                    results: hits.into_iter().map(hit_out).collect(),
                })
            })
            .await,
        )
    }

    async fn search_batch(
        &self,
        request: Request<api::SearchBatchRequest>,
    ) -> Reply<api::SearchBatchResponse> {
        let credential = metadata_credential(request.metadata());
        let request = request.into_inner();
        let door = &self.door;
        reply(
            door.serve(credential, |caller| async move {
                caller.allow(Action::Read(&request.collection))?;
                let queries = request
                    .searches
                    .into_iter()
                    .enumerate()
                    .map(|(i, search)| {
                        let at = format!("searches[{i}]");
                        if !search.collection.is_empty() && search.collection != request.collection
                        {
                            return Err(ApiError::invalid(
                                format!("{at}.collection"),
                                format!(
                                    "is {:?}; a batch searches one collection, {:?}",
                                    search.collection, request.collection
                                ),
                            ));
                        }
                        search_query(search).map_err(|e| e.within(&at))
                    })
                    .collect::<Result<Vec<_>>>()?;
                let answers = door
                    .gateway
                    .search_batch(&request.collection, queries)
                    .await?;
                Ok(api::SearchBatchResponse {
                    results: answers
                        .into_iter()
                        .map(|hits| api::SearchPointsResponse {
                            results: hits.into_iter().map(hit_out).collect(),
                        })
                        .collect(),
                })
            })
            .await,
        )
    }

    async fn scroll_points(
        &self,
        request: Request<api::ScrollPointsRequest>,
    ) -> Reply<api::ScrollPointsResponse> {
        let credential = metadata_credential(request.metadata());
        let request = request.into_inner();
        let door = &self.door;
        reply(
            door.serve(credential, |caller| async move {
                caller.allow(Action::Read(&request.collection))?;
                let query = ScrollQuery {
                    limit: if request.limit == 0 {
                        defaults::SCROLL_LIMIT
                    } else {
                        request.limit
                    },
                    cursor: request.cursor,
                    filter: request.filter,
                    with_payload: true,
                    with_vector: false,
                    consistency: consistency(request.consistency)?,
                };
                let page = door.gateway.scroll(&request.collection, query).await?;
                Ok(api::ScrollPointsResponse {
                    points: page.points.into_iter().map(point_out).collect(),
                    next_cursor: page.next_cursor,
                })
            })
            .await,
        )
    }

    async fn count_points(
        &self,
        request: Request<api::CountPointsRequest>,
    ) -> Reply<api::CountPointsResponse> {
        let credential = metadata_credential(request.metadata());
        let request = request.into_inner();
        let door = &self.door;
        reply(
            door.serve(credential, |caller| async move {
                caller.allow(Action::Read(&request.collection))?;
                let count = door
                    .gateway
                    .count(
                        &request.collection,
                        request.filter,
                        consistency(request.consistency)?,
                    )
                    .await?;
                Ok(api::CountPointsResponse { count })
            })
            .await,
        )
    }

    async fn login(&self, request: Request<api::LoginRequest>) -> Reply<api::LoginResponse> {
        let peer = request.remote_addr().map(|a| a.ip());
        let request = request.into_inner();
        let result = async {
            let (token, expires_at) = self
                .door
                .login(peer, &request.username, &request.password)
                .await?;
            Ok(api::LoginResponse {
                token,
                expires_at: vectron_auth::rfc3339(expires_at),
            })
        }
        .await;
        reply(result)
    }

    async fn create_user(
        &self,
        request: Request<api::CreateUserRequest>,
    ) -> Reply<api::CreateUserResponse> {
        let credential = metadata_credential(request.metadata());
        let request = request.into_inner();
        let door = &self.door;
        reply(
            door.serve(credential, |caller| async move {
                caller.allow(Action::Admin)?;
                door.access
                    .auth()?
                    .create_user(
                        &request.username,
                        &request.password,
                        role(request.role)?,
                        scope(request.collections),
                    )
                    .await
                    .map_err(|e| ApiError::from_status(&e))?;
                Ok(api::CreateUserResponse {})
            })
            .await,
        )
    }

    async fn list_users(
        &self,
        request: Request<api::ListUsersRequest>,
    ) -> Reply<api::ListUsersResponse> {
        let credential = metadata_credential(request.metadata());
        let door = &self.door;
        reply(
            door.serve(credential, |caller| async move {
                let users = users::list(&door.access, &caller).await?;
                Ok(api::ListUsersResponse {
                    users: users
                        .into_iter()
                        .map(|u| api::User {
                            username: u.username,
                            role: api_role(u.role).into(),
                            collections: u.collections.map(|names| api::CollectionScope { names }),
                            created_at: vectron_auth::rfc3339(u.created_at_unix),
                        })
                        .collect(),
                })
            })
            .await,
        )
    }

    async fn delete_user(
        &self,
        request: Request<api::DeleteUserRequest>,
    ) -> Reply<api::DeleteUserResponse> {
        let credential = metadata_credential(request.metadata());
        let username = request.into_inner().username;
        let door = &self.door;
        reply(
            door.serve(credential, |caller| async move {
                users::delete(&door.access, &caller, &username).await?;
                Ok(api::DeleteUserResponse {})
            })
            .await,
        )
    }

    async fn change_password(
        &self,
        request: Request<api::ChangePasswordRequest>,
    ) -> Reply<api::ChangePasswordResponse> {
        let credential = metadata_credential(request.metadata());
        let request = request.into_inner();
        let door = &self.door;
        reply(
            door.serve(credential, |caller| async move {
                users::change_password(&door.access, &caller, &request.username, &request.password)
                    .await?;
                Ok(api::ChangePasswordResponse {})
            })
            .await,
        )
    }

    async fn create_api_key(
        &self,
        request: Request<api::CreateApiKeyRequest>,
    ) -> Reply<api::CreateApiKeyResponse> {
        let credential = metadata_credential(request.metadata());
        let request = request.into_inner();
        let door = &self.door;
        reply(
            door.serve(credential, |caller| async move {
                caller.allow(Action::Admin)?;
                let (id, key) = door
                    .access
                    .auth()?
                    .create_api_key(
                        &request.name,
                        role(request.role)?,
                        scope(request.collections),
                    )
                    .await
                    .map_err(|e| ApiError::from_status(&e))?;
                Ok(api::CreateApiKeyResponse { id, key })
            })
            .await,
        )
    }

    async fn list_api_keys(
        &self,
        request: Request<api::ListApiKeysRequest>,
    ) -> Reply<api::ListApiKeysResponse> {
        let credential = metadata_credential(request.metadata());
        let door = &self.door;
        reply(
            door.serve(credential, |caller| async move {
                caller.allow(Action::Admin)?;
                let keys = door
                    .access
                    .auth()?
                    .list_api_keys()
                    .await
                    .map_err(|e| ApiError::from_status(&e))?;
                Ok(api::ListApiKeysResponse {
                    api_keys: keys
                        .into_iter()
                        .map(|k| api::ApiKey {
                            id: k.id,
                            name: k.name,
                            role: api_role(k.role).into(),
                            collections: k.collections.map(|names| api::CollectionScope { names }),
                            created_at: vectron_auth::rfc3339(k.created_at_unix),
                        })
                        .collect(),
                })
            })
            .await,
        )
    }

    async fn delete_api_key(
        &self,
        request: Request<api::DeleteApiKeyRequest>,
    ) -> Reply<api::DeleteApiKeyResponse> {
        let credential = metadata_credential(request.metadata());
        let id = request.into_inner().id;
        let door = &self.door;
        reply(
            door.serve(credential, |caller| async move {
                caller.allow(Action::Admin)?;
                door.access
                    .auth()?
                    .delete_api_key(&id)
                    .await
                    .map_err(|e| ApiError::from_status(&e))?;
                Ok(api::DeleteApiKeyResponse {})
            })
            .await,
        )
    }

    async fn get_cluster(
        &self,
        request: Request<api::GetClusterRequest>,
    ) -> Reply<api::GetClusterResponse> {
        let credential = metadata_credential(request.metadata());
        let door = &self.door;
        reply(
            door.serve(credential, |caller| async move {
                caller.allow(Action::Admin)?;
                door.gateway.cluster().await
            })
            .await,
        )
    }

    async fn drain_worker(
        &self,
        request: Request<api::DrainWorkerRequest>,
    ) -> Reply<api::DrainWorkerResponse> {
        let credential = metadata_credential(request.metadata());
        let name = request.into_inner().name;
        let door = &self.door;
        reply(
            door.serve(credential, |caller| async move {
                caller.allow(Action::Admin)?;
                door.gateway.drain_worker(&name).await?;
                Ok(api::DrainWorkerResponse {})
            })
            .await,
        )
    }

    async fn remove_worker(
        &self,
        request: Request<api::RemoveWorkerRequest>,
    ) -> Reply<api::RemoveWorkerResponse> {
        let credential = metadata_credential(request.metadata());
        let name = request.into_inner().name;
        let door = &self.door;
        reply(
            door.serve(credential, |caller| async move {
                caller.allow(Action::Admin)?;
                door.gateway.remove_worker(&name).await?;
                Ok(api::RemoveWorkerResponse {})
            })
            .await,
        )
    }
}

/// The query of one gRPC search request.
fn search_query(request: api::SearchPointsRequest) -> Result<SearchQuery> {
    Ok(SearchQuery {
        vector: request.vector,
        top_k: if request.top_k == 0 {
            defaults::TOP_K
        } else {
            request.top_k
        },
        filter: request.filter,
        ef: request.ef,
        with_payload: request.with_payload,
        with_vector: request.with_vector,
        consistency: consistency(request.consistency)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trips_through_struct() {
        let payload: Value =
            serde_json::json!({"n": 3, "f": 1.5, "s": "x", "b": true, "l": [1, {"k": null}]});
        let Value::Object(map) = payload.clone() else {
            unreachable!("object literal")
        };
        let back = Value::Object(struct_to_json(json_to_struct(&map)));
        assert_eq!(back, payload);
    }
}
