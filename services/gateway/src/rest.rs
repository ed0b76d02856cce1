//! The REST front end (docs/gateway.md) on axum: routes, JSON bodies in and out,
//! the body limit (413) and the error shape. Every operation goes through
//! the [`Frontdoor`] and the shared [`Gateway`](crate::api::Gateway), so
//! REST and gRPC answer alike. Does network I/O.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Extension, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::Deserialize;
use serde_json::{Value, json};
use vectron_auth::Role;

use crate::access::{Action, http_credential};
use crate::api::path_id;
use crate::error::{ApiError, ErrorKind, Result};
use crate::guard::Frontdoor;
use crate::json;
use crate::model::GetQuery;
use crate::users;

/// The OpenAPI document of this API, kept in the repository.
pub const OPENAPI_JSON: &str = include_str!("../openapi.json");

type Shared = Arc<Frontdoor>;
type Body = std::result::Result<Bytes, BytesRejection>;

/// The REST router over `frontdoor`.
pub fn router(frontdoor: Arc<Frontdoor>) -> Router {
    let body_limit = frontdoor.gateway.limits().max_body_bytes;
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/v1/openapi.json", get(openapi))
        .route(
            "/v1/collections",
            post(create_collection).get(list_collections),
        )
        .route(
            "/v1/collections/{name}",
            get(get_collection).delete(delete_collection),
        )
        .route("/v1/collections/{name}/points", put(upsert_points))
        .route("/v1/collections/{name}/points/{id}", get(get_point))
        // The action routes are POST; a GET of the same path reads the point
        // whose id is that word, which `{id}` alone could not reach.
        .route(
            "/v1/collections/{name}/points/get",
            post(get_points).get(get_point_named("get")),
        )
        .route(
            "/v1/collections/{name}/points/delete",
            post(delete_points).get(get_point_named("delete")),
        )
        .route(
            "/v1/collections/{name}/points/search",
            post(search_points).get(get_point_named("search")),
        )
        .route(
            "/v1/collections/{name}/points/search/batch",
            post(search_batch),
        )
        .route(
            "/v1/collections/{name}/points/scroll",
            post(scroll_points).get(get_point_named("scroll")),
        )
        .route(
            "/v1/collections/{name}/points/count",
            post(count_points).get(get_point_named("count")),
        )
        .route("/v1/auth/login", post(login))
        .route("/v1/auth/users", post(create_user).get(list_users))
        .route(
            "/v1/auth/users/{username}",
            axum::routing::delete(delete_user),
        )
        .route("/v1/auth/users/{username}/password", put(change_password))
        .route("/v1/auth/api-keys", post(create_api_key).get(list_api_keys))
        .route(
            "/v1/auth/api-keys/{id}",
            axum::routing::delete(delete_api_key),
        )
        .route("/v1/cluster", get(cluster))
        .route("/v1/cluster/workers/{name}/drain", post(drain_worker))
        .route(
            "/v1/cluster/workers/{name}",
            axum::routing::delete(remove_worker),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(
            frontdoor.clone(),
            admit,
        ))
        .layer(axum::middleware::from_fn_with_state(
            frontdoor.clone(),
            track,
        ))
        .with_state(frontdoor)
}

/// The client's address as the listener saw it; `None` for callers that
/// reach the router in-process.
#[derive(Debug, Clone, Copy)]
struct ClientAddr(Option<IpAddr>);

/// Admits a request under the per-address rate limit before anything else
/// runs, and records the client's address for the handlers.
async fn admit(
    State(s): State<Shared>,
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip());
    if let Err(error) = s.admit_address(peer) {
        return answer(Err(error));
    }
    request.extensions_mut().insert(ClientAddr(peer));
    next.run(request).await
}

/// Records each request's route, method, status and latency.
async fn track(
    State(s): State<Shared>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    s.gateway.metrics().record(
        &route,
        &method,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// The router of the metrics listener: `GET /metrics`.
pub fn metrics_router(frontdoor: Arc<Frontdoor>) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(|State(s): State<Shared>| async move {
                (
                    [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                    s.gateway.metrics().render(),
                )
                    .into_response()
            }),
        )
        .with_state(frontdoor)
}

fn answer(result: Result<(StatusCode, Value)>) -> Response {
    match result {
        Ok((status, body)) => (status, axum::Json(body)).into_response(),
        Err(error) => {
            if error.kind == ErrorKind::Internal {
                tracing::error!(message = %error.message, "internal error");
            }
            error.into_response()
        }
    }
}

fn ok(body: Value) -> Result<(StatusCode, Value)> {
    Ok((StatusCode::OK, body))
}

/// The request body, or 413 / 400 when it cannot be read.
fn body_bytes(body: Body) -> Result<Bytes> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                ErrorKind::PayloadTooLarge,
                format!("the request body is over the limit: {rejection}"),
            )
        } else {
            ApiError::new(
                ErrorKind::InvalidJson,
                format!("cannot read the request body: {rejection}"),
            )
        }
    })
}

async fn not_found() -> Response {
    ApiError::new(ErrorKind::NotFound, "no such route; see /v1/openapi.json").into_response()
}

async fn method_not_allowed() -> Response {
    let error = ApiError::new(
        ErrorKind::InvalidArgument,
        "this method is not allowed on this route",
    );
    (StatusCode::METHOD_NOT_ALLOWED, axum::Json(error.body())).into_response()
}

async fn healthz() -> Response {
    (StatusCode::OK, axum::Json(json!({"status": "ok"}))).into_response()
}

async fn readyz(State(s): State<Shared>) -> Response {
    match s.gateway.ready().await {
        Ok(()) => (StatusCode::OK, axum::Json(json!({"status": "ready"}))).into_response(),
        Err(e) => ApiError::unavailable(e.message).into_response(),
    }
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI_JSON).into_response()
}

async fn create_collection(State(s): State<Shared>, headers: HeaderMap, body: Body) -> Response {
    answer(
        s.clone()
            .serve(http_credential(&headers), |caller| async move {
                let body: json::CreateCollectionBody = json::parse(&body_bytes(body)?)?;
                let request = body.into_request()?;
                caller.allow(Action::ManageCollection(&request.name))?;
                let collection = s.gateway.create_collection(request).await?;
                Ok((
                    StatusCode::CREATED,
                    json!({"collection": json::collection(&collection, false)}),
                ))
            })
            .await,
    )
}

async fn list_collections(State(s): State<Shared>, headers: HeaderMap) -> Response {
    answer(
        s.clone()
            .serve(http_credential(&headers), |caller| async move {
                caller.allow(Action::ListCollections)?;
                let collections: Vec<Value> = s
                    .gateway
                    .list_collections()
                    .await?
                    .iter()
                    .filter(|c| caller.sees(&c.name))
                    .map(|c| json::collection(c, false))
                    .collect();
                ok(json!({"collections": collections}))
            })
            .await,
    )
}

async fn get_collection(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    answer(
        s.clone()
            .serve(http_credential(&headers), |caller| async move {
                caller.allow(Action::Read(&name))?;
                let collection = s.gateway.get_collection(&name).await?;
                ok(json!({"collection": json::collection(&collection, true)}))
            })
            .await,
    )
}

async fn delete_collection(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    answer(
        s.clone()
            .serve(http_credential(&headers), |caller| async move {
                caller.allow(Action::ManageCollection(&name))?;
                s.gateway.delete_collection(&name).await?;
                ok(json!({}))
            })
            .await,
    )
}

async fn upsert_points(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Body,
) -> Response {
    answer(
        s.clone()
            .serve(http_credential(&headers), |caller| async move {
                caller.allow(Action::Write(&name))?;
                let body: json::UpsertBody = json::parse(&body_bytes(body)?)?;
                let upserted = s.gateway.upsert(&name, body.into_points()?).await?;
                ok(json!({"upserted": upserted}))
            })
            .await,
    )
}

async fn get_point(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path((name, id)): Path<(String, String)>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    read_point(s, headers, name, id, params).await
}

/// `GET /v1/collections/{name}/points/<id>` for an id that is also the name
/// of an action route.
fn get_point_named(id: &'static str) -> axum::routing::MethodRouter<Shared> {
    get(
        move |State(s): State<Shared>,
              headers: HeaderMap,
              Path(name): Path<String>,
              Query(params): Query<HashMap<String, String>>| async move {
            read_point(s, headers, name, id.to_owned(), params).await
        },
    )
}

async fn read_point(
    s: Shared,
    headers: HeaderMap,
    name: String,
    id: String,
    params: HashMap<String, String>,
) -> Response {
    answer(
        s.clone()
            .serve(http_credential(&headers), |caller| async move {
                caller.allow(Action::Read(&name))?;
                if let Some(key) = params.keys().find(|k| k.as_str() != "consistency") {
                    return Err(ApiError::invalid(
                        key.clone(),
                        "is not a query parameter here (consistency)",
                    ));
                }
                let consistency =
                    json::consistency_param(params.get("consistency").map(String::as_str))?;
                let id = path_id(&id);
                let query = GetQuery {
                    ids: vec![id.clone()],
                    with_vector: true,
                    with_payload: true,
                    consistency,
                };
                match s.gateway.get_points(&name, query).await?.first() {
                    Some(point) => ok(json!({"point": json::point(point)})),
                    None => Err(ApiError::new(
                        ErrorKind::NotFound,
                        format!("point {id} does not exist in collection {name:?}"),
                    )),
                }
            })
            .await,
    )
}

async fn get_points(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Body,
) -> Response {
    answer(
        s.clone()
            .serve(http_credential(&headers), |caller| async move {
                caller.allow(Action::Read(&name))?;
                let body: json::GetBody = json::parse(&body_bytes(body)?)?;
                let points = s.gateway.get_points(&name, body.into_query()?).await?;
                ok(json!({"points": points.iter().map(json::point).collect::<Vec<_>>()}))
            })
            .await,
    )
}

async fn delete_points(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Body,
) -> Response {
    answer(
        s.clone()
            .serve(http_credential(&headers), |caller| async move {
                caller.allow(Action::Write(&name))?;
                let body: json::DeleteBody = json::parse(&body_bytes(body)?)?;
                let deleted = s
                    .gateway
                    .delete_points(&name, body.into_selector()?)
                    .await?;
                ok(json!({"deleted": deleted}))
            })
            .await,
    )
}

async fn search_points(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Body,
) -> Response {
    answer(
        s.clone()
            .serve(http_credential(&headers), |caller| async move {
                caller.allow(Action::Read(&name))?;
                let body: json::SearchBody = json::parse(&body_bytes(body)?)?;
                let hits = s.gateway.search(&name, body.into_query()?).await?;
                ok(json!({"results": hits.iter().map(json::hit).collect::<Vec<_>>()}))
            })
            .await,
    )
}

async fn search_batch(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Body,
) -> Response {
    answer(
        s.clone()
            .serve(http_credential(&headers), |caller| async move {
                caller.allow(Action::Read(&name))?;
                let body: json::SearchBatchBody = json::parse(&body_bytes(body)?)?;
                let answers = s.gateway.search_batch(&name, body.into_queries()?).await?;
                let results: Vec<Vec<serde_json::Value>> = answers
                    .iter()
                    .map(|hits| hits.iter().map(json::hit).collect())
                    .collect();
                ok(json!({ "results": results }))
            })
            .await,
    )
}

async fn scroll_points(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Body,
) -> Response {
    answer(
        s.clone()
            .serve(http_credential(&headers), |caller| async move {
                caller.allow(Action::Read(&name))?;
                let bytes = body_bytes(body)?;
                let body: json::ScrollBody = if bytes.is_empty() {
                    json::parse(b"{}")?
                } else {
                    json::parse(&bytes)?
                };
                let page = s.gateway.scroll(&name, body.into_query()?).await?;
                ok(json!({
                    "points": page.points.iter().map(json::point).collect::<Vec<_>>(),
                    "next_cursor": page.next_cursor,
                }))
            })
            .await,
    )
}

async fn count_points(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Body,
) -> Response {
    answer(
        s.clone()
            .serve(http_credential(&headers), |caller| async move {
                caller.allow(Action::Read(&name))?;
                let bytes = body_bytes(body)?;
                let body: json::CountBody = if bytes.is_empty() {
                    json::CountBody::default()
                } else {
                    json::parse(&bytes)?
                };
                let (filter, consistency) = body.into_parts()?;
                let count = s.gateway.count(&name, filter, consistency).await?;
                ok(json!({"count": count}))
            })
            .await,
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    username: String,
    password: String,
}

async fn login(
    State(s): State<Shared>,
    Extension(ClientAddr(peer)): Extension<ClientAddr>,
    body: Body,
) -> Response {
    answer(
        async {
            let body: LoginBody = json::parse(&body_bytes(body)?)?;
            let (token, expires_at) = s.login(peer, &body.username, &body.password).await?;
            ok(json!({"token": token, "expires_at": vectron_auth::rfc3339(expires_at)}))
        }
        .await,
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateUserBody {
    username: String,
    password: String,
    role: String,
    #[serde(default)]
    collections: Option<Vec<String>>,
}

fn role(raw: &str) -> Result<Role> {
    raw.parse::<Role>()
        .map_err(|e| ApiError::invalid("role", e))
}

async fn create_user(State(s): State<Shared>, headers: HeaderMap, body: Body) -> Response {
    answer(
        s.clone().serve(http_credential(&headers), |caller| async move {
            caller.allow(Action::Admin)?;
            let body: CreateUserBody = json::parse(&body_bytes(body)?)?;
            let role = role(&body.role)?;
            s.access
                .auth()?
                .create_user(&body.username, &body.password, role, body.collections.clone())
                .await
                .map_err(|e| ApiError::from_status(&e))?;
            Ok((
                StatusCode::CREATED,
                json!({"username": body.username, "role": role.as_str(), "collections": body.collections}),
            ))
        })
        .await,
    )
}

async fn list_users(State(s): State<Shared>, headers: HeaderMap) -> Response {
    answer(
        s.clone()
            .serve(http_credential(&headers), |caller| async move {
                let users: Vec<Value> = users::list(&s.access, &caller)
                    .await?
                    .iter()
                    .map(|u| {
                        json!({
                            "username": u.username,
                            "role": u.role.as_str(),
                            "collections": u.collections,
                            "created_at": vectron_auth::rfc3339(u.created_at_unix),
                        })
                    })
                    .collect();
                ok(json!({"users": users}))
            })
            .await,
    )
}

async fn delete_user(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(username): Path<String>,
) -> Response {
    answer(
        s.clone()
            .serve(http_credential(&headers), |caller| async move {
                users::delete(&s.access, &caller, &username).await?;
                ok(json!({}))
            })
            .await,
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangePasswordBody {
    password: String,
}

async fn change_password(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(username): Path<String>,
    body: Body,
) -> Response {
    answer(
        s.clone()
            .serve(http_credential(&headers), |caller| async move {
                let body: ChangePasswordBody = json::parse(&body_bytes(body)?)?;
                users::change_password(&s.access, &caller, &username, &body.password).await?;
                ok(json!({}))
            })
            .await,
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateApiKeyBody {
    name: String,
    role: String,
    #[serde(default)]
    collections: Option<Vec<String>>,
}

async fn create_api_key(State(s): State<Shared>, headers: HeaderMap, body: Body) -> Response {
    answer(
        s.clone()
            .serve(http_credential(&headers), |caller| async move {
                caller.allow(Action::Admin)?;
                let body: CreateApiKeyBody = json::parse(&body_bytes(body)?)?;
                let role = role(&body.role)?;
                let (id, key) = s
                    .access
                    .auth()?
                    .create_api_key(&body.name, role, body.collections)
                    .await
                    .map_err(|e| ApiError::from_status(&e))?;
                Ok((StatusCode::CREATED, json!({"id": id, "key": key})))
            })
            .await,
    )
}

async fn list_api_keys(State(s): State<Shared>, headers: HeaderMap) -> Response {
    answer(
        s.clone()
            .serve(http_credential(&headers), |caller| async move {
                caller.allow(Action::Admin)?;
                let keys = s
                    .access
                    .auth()?
                    .list_api_keys()
                    .await
                    .map_err(|e| ApiError::from_status(&e))?;
                let keys: Vec<Value> = keys
                    .iter()
                    .map(|k| {
                        json!({
                            "id": k.id,
                            "name": k.name,
                            "role": k.role.as_str(),
                            "collections": k.collections,
                            "created_at": vectron_auth::rfc3339(k.created_at_unix),
                        })
                    })
                    .collect();
                ok(json!({"api_keys": keys}))
            })
            .await,
    )
}

async fn delete_api_key(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    answer(
        s.clone()
            .serve(http_credential(&headers), |caller| async move {
                caller.allow(Action::Admin)?;
                s.access
                    .auth()?
                    .delete_api_key(&id)
                    .await
                    .map_err(|e| ApiError::from_status(&e))?;
                ok(json!({}))
            })
            .await,
    )
}

/// The JSON of `GET /v1/cluster`.
pub fn cluster_json(cluster: &vectron_proto::v1::GetClusterResponse) -> Value {
    use vectron_proto::v1::{MemberRole, WorkerState};
    let pd = cluster.pd.clone().unwrap_or_default();
    let role = |r: i32| match MemberRole::try_from(r) {
        Ok(MemberRole::Leader) => "leader",
        Ok(MemberRole::Follower) => "follower",
        Ok(MemberRole::Learner) => "learner",
        _ => "unknown",
    };
    let state = |s: i32| match WorkerState::try_from(s) {
        Ok(WorkerState::Up) => "up",
        Ok(WorkerState::Draining) => "draining",
        Ok(WorkerState::Down) => "down",
        Ok(WorkerState::Removed) => "removed",
        _ => "unknown",
    };
    json!({
        "pd": {
            "leader": pd.leader,
            "members": pd.members.iter().map(|m| json!({"id": m.id, "addr": m.addr, "role": role(m.role)})).collect::<Vec<_>>(),
        },
        "workers": cluster.workers.iter().map(|w| json!({
            "name": w.name, "id": w.id, "addr": w.addr, "zone": w.zone,
            "state": state(w.state), "replicas": w.replicas, "leaders": w.leaders,
        })).collect::<Vec<_>>(),
        "moves": cluster.moves.iter().map(|m| json!({"shard": m.shard, "from": m.from, "to": m.to, "step": m.step})).collect::<Vec<_>>(),
    })
}

async fn cluster(State(s): State<Shared>, headers: HeaderMap) -> Response {
    answer(
        s.clone()
            .serve(http_credential(&headers), |caller| async move {
                caller.allow(Action::Admin)?;
                ok(cluster_json(&s.gateway.cluster().await?))
            })
            .await,
    )
}

async fn drain_worker(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    answer(
        s.clone()
            .serve(http_credential(&headers), |caller| async move {
                caller.allow(Action::Admin)?;
                s.gateway.drain_worker(&name).await?;
                Ok((
                    StatusCode::ACCEPTED,
                    json!({"name": name, "state": "draining"}),
                ))
            })
            .await,
    )
}

async fn remove_worker(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    answer(
        s.clone()
            .serve(http_credential(&headers), |caller| async move {
                caller.allow(Action::Admin)?;
                s.gateway.remove_worker(&name).await?;
                ok(json!({}))
            })
            .await,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openapi_document_lists_every_route() {
        let doc: Value = serde_json::from_str(OPENAPI_JSON).expect("openapi.json is JSON");
        let paths = doc["paths"].as_object().expect("paths");
        for path in [
            "/healthz",
            "/readyz",
            "/v1/collections",
            "/v1/collections/{name}",
            "/v1/collections/{name}/points",
            "/v1/collections/{name}/points/{id}",
            "/v1/collections/{name}/points/get",
            "/v1/collections/{name}/points/delete",
            "/v1/collections/{name}/points/search",
            "/v1/collections/{name}/points/search/batch",
            "/v1/collections/{name}/points/scroll",
            "/v1/collections/{name}/points/count",
            "/v1/auth/login",
            "/v1/auth/users",
            "/v1/auth/users/{username}",
            "/v1/auth/users/{username}/password",
            "/v1/auth/api-keys",
            "/v1/auth/api-keys/{id}",
            "/v1/cluster",
            "/v1/cluster/workers/{name}/drain",
            "/v1/cluster/workers/{name}",
        ] {
            assert!(paths.contains_key(path), "openapi.json lacks {path}");
        }
    }
}
