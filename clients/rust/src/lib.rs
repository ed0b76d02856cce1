//! A small async client of Vectron's REST API (docs/gateway.md): typed calls for
//! the common operations, and [`Client::call`] for any route, returning the
//! status and JSON body as they are. Errors keep the server's error code and
//! message. Does network I/O.
//!
//! ```no_run
//! # async fn example() -> Result<(), vectron_client::ClientError> {
//! use serde_json::json;
//! use vectron_client::{Client, Point};
//!
//! let client = Client::new("http://127.0.0.1:7333")?;
//! client.create_collection(&json!({"name": "docs", "dimension": 3, "metric": "cosine"})).await?;
//! client.upsert("docs", &[Point::new(1, vec![0.1, 0.2, 0.3])]).await?;
//! let hits = client.search("docs", &json!({"vector": [0.1, 0.2, 0.3], "top_k": 5})).await?;
//! # Ok(()) }
//! ```

use std::time::Duration;

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// A failed call.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error (the documented error shape).
    #[error("HTTP {status} {code}: {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// The error's snake_case code.
        code: String,
        /// The error's message.
        message: String,
    },
    /// The request could not be sent or the answer not read.
    #[error("transport: {0}")]
    Transport(String),
    /// The answer was not the JSON expected.
    #[error("unexpected answer: {0}")]
    Decode(String),
}

impl ClientError {
    /// The HTTP status of an API error.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Results of the client.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// A point id: an unsigned integer or a string.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PointId {
    /// Integer id.
    Num(u64),
    /// String id.
    Str(String),
}

impl From<u64> for PointId {
    fn from(n: u64) -> Self {
        PointId::Num(n)
    }
}

impl From<&str> for PointId {
    fn from(s: &str) -> Self {
        PointId::Str(s.to_owned())
    }
}

/// A point to upsert or read back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Its id.
    pub id: PointId,
    /// Its vector (absent on reads that did not ask for it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vector: Option<Vec<f32>>,
    /// Its payload object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Map<String, Value>>,
}

impl Point {
    /// A point without payload.
    pub fn new(id: impl Into<PointId>, vector: Vec<f32>) -> Self {
        Self {
            id: id.into(),
            vector: Some(vector),
            payload: None,
        }
    }

    /// The point with `payload` (a JSON object; anything else is dropped).
    pub fn with_payload(mut self, payload: Value) -> Self {
        if let Value::Object(map) = payload {
            self.payload = Some(map);
        }
        self
    }
}

/// One search hit, best first.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ScoredPoint {
    /// The point's id.
    pub id: PointId,
    /// Similarity (cosine, dot) or squared distance (l2).
    pub score: f32,
    /// The payload, when asked for.
    #[serde(default)]
    pub payload: Option<Map<String, Value>>,
    /// The vector, when asked for.
    #[serde(default)]
    pub vector: Option<Vec<f32>>,
}

/// How a client proves who it is.
#[derive(Debug, Clone)]
enum Credential {
    Bearer(String),
    ApiKey(String),
}

/// A client of one gateway.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    credential: Option<Credential>,
}

impl Client {
    /// A client of the gateway at `base_url` (e.g. `http://127.0.0.1:7333`).
    pub fn new(base_url: &str) -> Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        Ok(Self {
            http,
            base: base_url.trim_end_matches('/').to_owned(),
            credential: None,
        })
    }

    /// This client sending `api-key: <key>`.
    pub fn with_api_key(&self, key: &str) -> Self {
        Self {
            credential: Some(Credential::ApiKey(key.to_owned())),
            ..self.clone()
        }
    }

    /// This client sending `Authorization: Bearer <token>`.
    pub fn with_token(&self, token: &str) -> Self {
        Self {
            credential: Some(Credential::Bearer(token.to_owned())),
            ..self.clone()
        }
    }

    /// Sends any request; answers the status and the JSON body (`Null` when
    /// the body is empty or not JSON). Never fails on an HTTP error status.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value)> {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        request = match &self.credential {
            Some(Credential::Bearer(token)) => request.bearer_auth(token),
            Some(Credential::ApiKey(key)) => request.header("api-key", key),
            None => request,
        };
        if let Some(body) = body {
            request = request.json(body);
        }
        self.send(request).await
    }

    /// Sends a raw body (for tests of malformed input).
    pub async fn call_raw(
        &self,
        method: Method,
        path: &str,
        body: Vec<u8>,
    ) -> Result<(u16, Value)> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body);
        request = match &self.credential {
            Some(Credential::Bearer(token)) => request.bearer_auth(token),
            Some(Credential::ApiKey(key)) => request.header("api-key", key),
            None => request,
        };
        self.send(request).await
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<(u16, Value)> {
        let response = request
            .send()
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        let status = response.status().as_u16();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        Ok((
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ))
    }

    /// Like [`Client::call`], but an error status becomes [`ClientError::Api`].
    pub async fn request(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Value> {
        let (status, value) = self.call(method, path, body).await?;
        if (200..300).contains(&status) {
            return Ok(value);
        }
        Err(ClientError::Api {
            status,
            code: value["error"]["code"]
                .as_str()
                .unwrap_or("unknown")
                .to_owned(),
            message: value["error"]["message"].as_str().unwrap_or("").to_owned(),
        })
    }

    fn field<T: for<'de> Deserialize<'de>>(value: &Value, name: &str) -> Result<T> {
        serde_json::from_value(value[name].clone())
            .map_err(|e| ClientError::Decode(format!("field {name:?}: {e}")))
    }

    /// `GET /readyz` succeeded.
    pub async fn ready(&self) -> bool {
        matches!(self.call(Method::GET, "/readyz", None).await, Ok((200, _)))
    }

    /// Creates a collection from a body as documented in docs/gateway.md (`name`, `dimension`,
    /// `metric`, ...); answers the collection.
    pub async fn create_collection(&self, spec: &Value) -> Result<Value> {
        let value = self
            .request(Method::POST, "/v1/collections", Some(spec))
            .await?;
        Ok(value["collection"].clone())
    }

    /// Every collection.
    pub async fn list_collections(&self) -> Result<Vec<Value>> {
        let value = self.request(Method::GET, "/v1/collections", None).await?;
        Self::field(&value, "collections")
    }

    /// One collection with point counts and shard status.
    pub async fn get_collection(&self, name: &str) -> Result<Value> {
        let value = self
            .request(Method::GET, &format!("/v1/collections/{name}"), None)
            .await?;
        Ok(value["collection"].clone())
    }

    /// Drops a collection.
    pub async fn delete_collection(&self, name: &str) -> Result<()> {
        self.request(Method::DELETE, &format!("/v1/collections/{name}"), None)
            .await?;
        Ok(())
    }

    /// Upserts points; answers how many.
    pub async fn upsert(&self, collection: &str, points: &[Point]) -> Result<u64> {
        let body = json!({ "points": points });
        let value = self
            .request(
                Method::PUT,
                &format!("/v1/collections/{collection}/points"),
                Some(&body),
            )
            .await?;
        Self::field(&value, "upserted")
    }

    /// Reads one point; `None` when it does not exist.
    pub async fn get_point(
        &self,
        collection: &str,
        id: &PointId,
        consistency: &str,
    ) -> Result<Option<Point>> {
        let id = match id {
            PointId::Num(n) => n.to_string(),
            PointId::Str(s) => s.clone(),
        };
        let path = format!("/v1/collections/{collection}/points/{id}?consistency={consistency}");
        match self.request(Method::GET, &path, None).await {
            Ok(value) => Self::field(&value, "point").map(Some),
            Err(ClientError::Api {
                status: 404, code, ..
            }) if code == "not_found" => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Reads points by id with a body as documented in docs/gateway.md (`ids`, `with_vector`, ...).
    pub async fn get_points(&self, collection: &str, body: &Value) -> Result<Vec<Point>> {
        let value = self
            .request(
                Method::POST,
                &format!("/v1/collections/{collection}/points/get"),
                Some(body),
            )
            .await?;
        Self::field(&value, "points")
    }

    /// Deletes by `{"ids": [...]}` or `{"filter": {...}}`; answers how many.
    pub async fn delete_points(&self, collection: &str, body: &Value) -> Result<u64> {
        let value = self
            .request(
                Method::POST,
                &format!("/v1/collections/{collection}/points/delete"),
                Some(body),
            )
            .await?;
        Self::field(&value, "deleted")
    }

    /// Searches with a body as documented in docs/gateway.md (`vector`, `top_k`, `filter`, ...).
    pub async fn search(&self, collection: &str, body: &Value) -> Result<Vec<ScoredPoint>> {
        let value = self
            .request(
                Method::POST,
                &format!("/v1/collections/{collection}/points/search"),
                Some(body),
            )
            .await?;
        Self::field(&value, "results")
    }

    /// Runs several searches of one collection in one request (at most
    /// 100), each a body as for [`search`](Self::search); answers one list
    /// of hits per search, in order.
    pub async fn search_batch(
        &self,
        collection: &str,
        searches: &[Value],
    ) -> Result<Vec<Vec<ScoredPoint>>> {
        let body = json!({ "searches": searches });
        let value = self
            .request(
                Method::POST,
                &format!("/v1/collections/{collection}/points/search/batch"),
                Some(&body),
            )
            .await?;
        Self::field(&value, "results")
    }

    /// One scroll page: the points and the next cursor.
    pub async fn scroll(
        &self,
        collection: &str,
        body: &Value,
    ) -> Result<(Vec<Point>, Option<String>)> {
        let value = self
            .request(
                Method::POST,
                &format!("/v1/collections/{collection}/points/scroll"),
                Some(body),
            )
            .await?;
        Ok((
            Self::field(&value, "points")?,
            Self::field(&value, "next_cursor")?,
        ))
    }

    /// Counts points matching a body as documented in docs/gateway.md (`filter`, `consistency`).
    pub async fn count(&self, collection: &str, body: &Value) -> Result<u64> {
        let value = self
            .request(
                Method::POST,
                &format!("/v1/collections/{collection}/points/count"),
                Some(body),
            )
            .await?;
        Self::field(&value, "count")
    }

    /// Logs in; answers the token.
    pub async fn login(&self, username: &str, password: &str) -> Result<String> {
        let body = json!({"username": username, "password": password});
        let value = self
            .request(Method::POST, "/v1/auth/login", Some(&body))
            .await?;
        Self::field(&value, "token")
    }

    /// Creates an API key; answers `(id, key)`.
    pub async fn create_api_key(
        &self,
        name: &str,
        role: &str,
        collections: Option<&[&str]>,
    ) -> Result<(String, String)> {
        let body = json!({"name": name, "role": role, "collections": collections});
        let value = self
            .request(Method::POST, "/v1/auth/api-keys", Some(&body))
            .await?;
        Ok((Self::field(&value, "id")?, Self::field(&value, "key")?))
    }

    /// Every user (admins only), as the server lists them.
    pub async fn list_users(&self) -> Result<Vec<Value>> {
        let value = self.request(Method::GET, "/v1/auth/users", None).await?;
        Ok(value["users"].as_array().cloned().unwrap_or_default())
    }

    /// Deletes a user (admins only); its tokens stop working at once.
    pub async fn delete_user(&self, username: &str) -> Result<()> {
        self.request(Method::DELETE, &format!("/v1/auth/users/{username}"), None)
            .await
            .map(|_| ())
    }

    /// Sets a user's password (admins, or the user themselves); the tokens
    /// issued to it before stop working at once.
    pub async fn change_password(&self, username: &str, password: &str) -> Result<()> {
        let body = json!({"password": password});
        self.request(
            Method::PUT,
            &format!("/v1/auth/users/{username}/password"),
            Some(&body),
        )
        .await
        .map(|_| ())
    }

    /// The cluster view (`GET /v1/cluster`).
    pub async fn cluster(&self) -> Result<Value> {
        self.request(Method::GET, "/v1/cluster", None).await
    }
}

pub use reqwest::Method as HttpMethod;
