//! The JSON bodies of the REST API (docs/gateway.md): parsing requests into the
//! gateway's types with errors that name the field, and rendering answers.
//! No I/O.

use serde::Deserialize;
use serde_json::{Map, Value, json};
use vectron_ids::PointId;
use vectron_proto::common::v1 as common;
use vectron_proto::common::v1::{Consistency, Metric};
use vectron_proto::v1 as api;

use crate::error::{ApiError, ErrorKind, Result};
use crate::model::{
    DeleteSelector, GetQuery, Hit, NewPoint, PointOut, ScrollQuery, SearchQuery, defaults,
};

/// Parses a body into `T`, answering malformed JSON or a wrong shape with
/// `invalid_json` and serde's description (which names the field).
pub fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T> {
    if body.is_empty() {
        return Err(ApiError::new(
            ErrorKind::InvalidJson,
            "the request body is empty; send a JSON object",
        ));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::new(ErrorKind::InvalidJson, format!("invalid JSON body: {e}")))
}

/// `POST /v1/collections`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateCollectionBody {
    name: String,
    dimension: u32,
    metric: String,
    #[serde(default)]
    shards: Option<u32>,
    #[serde(default)]
    replication_factor: Option<u32>,
    #[serde(default)]
    hnsw: Option<HnswBody>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HnswBody {
    #[serde(default)]
    m: Option<u32>,
    #[serde(default)]
    ef_construction: Option<u32>,
    #[serde(default)]
    ef_search: Option<u32>,
}

/// The metric named `raw`.
pub fn metric(raw: &str) -> Result<Metric> {
    match raw {
        "cosine" => Ok(Metric::Cosine),
        "l2" => Ok(Metric::L2),
        "dot" => Ok(Metric::Dot),
        other => Err(ApiError::invalid(
            "metric",
            format!("{other:?} is not one of \"cosine\", \"l2\", \"dot\""),
        )),
    }
}

fn metric_name(metric: i32) -> &'static str {
    match Metric::try_from(metric) {
        Ok(Metric::Cosine) => "cosine",
        Ok(Metric::L2) => "l2",
        Ok(Metric::Dot) => "dot",
        _ => "unspecified",
    }
}

impl CreateCollectionBody {
    /// The gRPC request this body stands for.
    pub fn into_request(self) -> Result<api::CreateCollectionRequest> {
        let explicit = |value: Option<u32>, field: &str| match value {
            Some(0) => Err(ApiError::invalid(field, "must be at least 1")),
            Some(v) => Ok(v),
            None => Ok(0),
        };
        let hnsw = match self.hnsw {
            Some(h) => Some(common::HnswParams {
                m: explicit(h.m, "hnsw.m")?,
                ef_construction: explicit(h.ef_construction, "hnsw.ef_construction")?,
                ef_search: h.ef_search.unwrap_or(0),
            }),
            None => None,
        };
        if self.dimension == 0 {
            return Err(ApiError::invalid("dimension", "must be at least 1"));
        }
        Ok(api::CreateCollectionRequest {
            name: self.name,
            dimension: self.dimension,
            metric: metric(&self.metric)?.into(),
            shards: explicit(self.shards, "shards")?,
            replication_factor: explicit(self.replication_factor, "replication_factor")?,
            hnsw,
        })
    }
}

fn status_name(status: i32) -> &'static str {
    match api::CollectionStatus::try_from(status) {
        Ok(api::CollectionStatus::Ready) => "ready",
        Ok(api::CollectionStatus::Degraded) => "degraded",
        _ => "creating",
    }
}

/// A collection; `detailed` adds point counts and shard status.
pub fn collection(c: &api::Collection, detailed: bool) -> Value {
    let hnsw = c.hnsw.unwrap_or_default();
    let mut value = json!({
        "name": c.name,
        "dimension": c.dimension,
        "metric": metric_name(c.metric),
        "shards": c.shards,
        "replication_factor": c.replication_factor,
        "hnsw": {"m": hnsw.m, "ef_construction": hnsw.ef_construction, "ef_search": hnsw.ef_search},
        "status": status_name(c.status),
    });
    if detailed {
        value["points"] = json!(c.points);
        value["shard_status"] = c
            .shard_status
            .iter()
            .map(|s| json!({"shard": s.shard, "leader": s.leader, "replicas": s.replicas, "points": s.points, "unindexed_points": s.unindexed_points}))
            .collect();
    }
    value
}

/// Reads a point id.
pub fn point_id(value: &Value, field: &str) -> Result<PointId> {
    match value {
        Value::Number(n) => n
            .as_u64()
            .map(PointId::Num)
            .ok_or_else(|| ApiError::invalid(field, format!("{n} is not an unsigned integer id"))),
        Value::String(s) => Ok(PointId::Str(s.clone())),
        Value::Null => Err(ApiError::invalid(field, "a point id is required")),
        other => Err(ApiError::invalid(
            field,
            format!("must be an unsigned integer or a string, got {other}"),
        )),
    }
}

/// The JSON form of an id.
pub fn id_value(id: &PointId) -> Value {
    match id {
        PointId::Num(n) => json!(n),
        PointId::Str(s) => json!(s),
    }
}

fn vector(value: Option<&Value>, field: &str) -> Result<Vec<f32>> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Err(ApiError::invalid(field, "a vector is required"));
    };
    let Value::Array(items) = value else {
        return Err(ApiError::invalid(field, "must be an array of numbers"));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| match item.as_f64() {
            Some(x) => Ok(x as f32),
            None => Err(ApiError::invalid(
                format!("{field}[{i}]"),
                format!("{item} is not a number"),
            )),
        })
        .collect()
}

fn consistency(value: Option<&str>, field: &str) -> Result<Consistency> {
    match value {
        None | Some("strong") => Ok(Consistency::Strong),
        Some("eventual") => Ok(Consistency::Eventual),
        Some(other) => Err(ApiError::invalid(
            field,
            format!("{other:?} is not one of \"strong\", \"eventual\""),
        )),
    }
}

/// The `consistency` query parameter of `GET .../points/{id}`.
pub fn consistency_param(value: Option<&str>) -> Result<Consistency> {
    consistency(value, "consistency")
}

/// `PUT /v1/collections/{name}/points`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpsertBody {
    points: Vec<Map<String, Value>>,
}

impl UpsertBody {
    /// The points, each checked for shape (limits are checked later).
    pub fn into_points(self) -> Result<Vec<NewPoint>> {
        self.points
            .into_iter()
            .enumerate()
            .map(|(i, mut point)| {
                if let Some(key) = point
                    .keys()
                    .find(|k| !matches!(k.as_str(), "id" | "vector" | "payload"))
                {
                    return Err(ApiError::invalid(
                        format!("points[{i}].{key}"),
                        "is not a point field (id, vector, payload)",
                    ));
                }
                let id = point_id(
                    point.get("id").unwrap_or(&Value::Null),
                    &format!("points[{i}].id"),
                )?;
                let vector = vector(point.get("vector"), &format!("points[{i}].vector"))?;
                let payload = match point.remove("payload") {
                    None | Some(Value::Null) => None,
                    Some(Value::Object(map)) => Some(map),
                    Some(_) => {
                        return Err(ApiError::invalid(
                            format!("points[{i}].payload"),
                            "must be a JSON object",
                        ));
                    }
                };
                Ok(NewPoint {
                    id,
                    vector,
                    payload,
                })
            })
            .collect()
    }
}

/// `POST .../points/get`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetBody {
    ids: Vec<Value>,
    #[serde(default)]
    with_vector: Option<bool>,
    #[serde(default)]
    with_payload: Option<bool>,
    #[serde(default)]
    consistency: Option<String>,
}

fn ids(values: &[Value]) -> Result<Vec<PointId>> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| point_id(v, &format!("ids[{i}]")))
        .collect()
}

impl GetBody {
    /// The query.
    pub fn into_query(self) -> Result<GetQuery> {
        Ok(GetQuery {
            ids: ids(&self.ids)?,
            with_vector: self.with_vector.unwrap_or(true),
            with_payload: self.with_payload.unwrap_or(true),
            consistency: consistency(self.consistency.as_deref(), "consistency")?,
        })
    }
}

/// `POST .../points/delete`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteBody {
    #[serde(default)]
    ids: Option<Vec<Value>>,
    #[serde(default)]
    filter: Option<Value>,
}

impl DeleteBody {
    /// What to delete.
    pub fn into_selector(self) -> Result<DeleteSelector> {
        match (self.ids, self.filter) {
            (Some(list), None) => Ok(DeleteSelector::Ids(ids(&list)?)),
            (None, Some(filter)) => Ok(DeleteSelector::Filter(self::filter(&filter, "filter")?)),
            _ => Err(ApiError::invalid(
                "ids",
                "give exactly one of \"ids\" or \"filter\"",
            )),
        }
    }
}

/// `POST .../points/search`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchBody {
    #[serde(default)]
    vector: Option<Value>,
    #[serde(default)]
    top_k: Option<u32>,
    #[serde(default)]
    filter: Option<Value>,
    #[serde(default)]
    ef: Option<u32>,
    #[serde(default)]
    with_payload: Option<bool>,
    #[serde(default)]
    with_vector: Option<bool>,
    #[serde(default)]
    consistency: Option<String>,
}

impl SearchBody {
    /// The query.
    pub fn into_query(self) -> Result<SearchQuery> {
        Ok(SearchQuery {
            vector: vector(self.vector.as_ref(), "vector")?,
            top_k: self.top_k.unwrap_or(defaults::TOP_K),
            filter: optional_filter(self.filter.as_ref())?,
            ef: self.ef,
            with_payload: self.with_payload.unwrap_or(false),
            with_vector: self.with_vector.unwrap_or(false),
            consistency: consistency(self.consistency.as_deref(), "consistency")?,
        })
    }
}

/// `POST .../points/search/batch`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchBatchBody {
    #[serde(default)]
    searches: Option<Vec<SearchBody>>,
}

impl SearchBatchBody {
    /// The queries, in order; a bad one is named by its position.
    pub fn into_queries(self) -> Result<Vec<SearchQuery>> {
        let searches = self
            .searches
            .ok_or_else(|| ApiError::invalid("searches", "is required: a list of search bodies"))?;
        searches
            .into_iter()
            .enumerate()
            .map(|(i, body)| {
                body.into_query()
                    .map_err(|e| e.within(&format!("searches[{i}]")))
            })
            .collect()
    }
}

/// `POST .../points/scroll`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrollBody {
    #[serde(default)]
    limit: Option<u32>,
    #[serde(default)]
    cursor: Option<String>,
    #[serde(default)]
    filter: Option<Value>,
    #[serde(default)]
    with_payload: Option<bool>,
    #[serde(default)]
    with_vector: Option<bool>,
    #[serde(default)]
    consistency: Option<String>,
}

impl ScrollBody {
    /// The query.
    pub fn into_query(self) -> Result<ScrollQuery> {
        Ok(ScrollQuery {
            limit: self.limit.unwrap_or(defaults::SCROLL_LIMIT),
            cursor: self.cursor,
            filter: optional_filter(self.filter.as_ref())?,
            with_payload: self.with_payload.unwrap_or(true),
            with_vector: self.with_vector.unwrap_or(false),
            consistency: consistency(self.consistency.as_deref(), "consistency")?,
        })
    }
}

/// `POST .../points/count`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CountBody {
    #[serde(default)]
    filter: Option<Value>,
    #[serde(default)]
    consistency: Option<String>,
}

impl CountBody {
    /// The filter and consistency.
    pub fn into_parts(self) -> Result<(Option<common::Filter>, Consistency)> {
        Ok((
            optional_filter(self.filter.as_ref())?,
            consistency(self.consistency.as_deref(), "consistency")?,
        ))
    }
}

fn optional_filter(value: Option<&Value>) -> Result<Option<common::Filter>> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(value) => filter(value, "filter").map(Some),
    }
}

/// Parses a filter object of a request body into its validated form.
pub fn filter(value: &Value, field: &str) -> Result<common::Filter> {
    let Value::Object(map) = value else {
        return Err(ApiError::invalid(
            field,
            "must be an object with must, should or must_not",
        ));
    };
    let mut out = common::Filter::default();
    for (key, list) in map {
        let target = match key.as_str() {
            "must" => &mut out.must,
            "should" => &mut out.should,
            "must_not" => &mut out.must_not,
            other => {
                return Err(ApiError::invalid(
                    format!("{field}.{other}"),
                    "is not a filter clause (must, should, must_not)",
                ));
            }
        };
        let Value::Array(conditions) = list else {
            return Err(ApiError::invalid(
                format!("{field}.{key}"),
                "must be an array of conditions",
            ));
        };
        for (i, c) in conditions.iter().enumerate() {
            target.push(condition(c, &format!("{field}.{key}[{i}]"))?);
        }
    }
    Ok(out)
}

fn scalar(value: &Value, field: &str) -> Result<common::MatchValue> {
    use common::match_value::Value as V;
    let value = match value {
        Value::String(s) => V::Keyword(s.clone()),
        Value::Bool(b) => V::Boolean(*b),
        Value::Number(n) => V::Integer(n.as_i64().ok_or_else(|| {
            ApiError::invalid(field, format!("{n} is not an integer; match values are strings, integers or booleans (use range for other numbers)"))
        })?),
        other => {
            return Err(ApiError::invalid(
                field,
                format!("{other} is not a string, integer or boolean"),
            ));
        }
    };
    Ok(common::MatchValue { value: Some(value) })
}

fn condition(value: &Value, field: &str) -> Result<common::Condition> {
    use common::condition::Condition as C;
    let Value::Object(map) = value else {
        return Err(ApiError::invalid(field, "must be a condition object"));
    };
    if map.contains_key("must") || map.contains_key("should") || map.contains_key("must_not") {
        return Ok(common::Condition {
            key: String::new(),
            condition: Some(C::Filter(filter(value, field)?)),
        });
    }
    if let Some(nested) = map.get("filter") {
        return Ok(common::Condition {
            key: String::new(),
            condition: Some(C::Filter(filter(nested, &format!("{field}.filter"))?)),
        });
    }
    let key = match map.get("key") {
        Some(Value::String(k)) if !k.is_empty() => k.clone(),
        _ => {
            return Err(ApiError::invalid(
                format!("{field}.key"),
                "a non-empty payload path is required",
            ));
        }
    };
    if let Some(extra) = map
        .keys()
        .find(|k| !matches!(k.as_str(), "key" | "match" | "range"))
    {
        return Err(ApiError::invalid(
            format!("{field}.{extra}"),
            "is not a condition field (key, match, range)",
        ));
    }
    let condition = match (map.get("match"), map.get("range")) {
        (Some(m), None) => {
            let m_field = format!("{field}.match");
            let Value::Object(m) = m else {
                return Err(ApiError::invalid(
                    m_field,
                    "must be {\"value\": v} or {\"any\": [v...]}",
                ));
            };
            let kind = match (m.get("value"), m.get("any")) {
                (Some(v), None) => {
                    common::r#match::Kind::Value(scalar(v, &format!("{m_field}.value"))?)
                }
                (None, Some(Value::Array(values))) => {
                    common::r#match::Kind::Any(common::MatchAny {
                        values: values
                            .iter()
                            .enumerate()
                            .map(|(i, v)| scalar(v, &format!("{m_field}.any[{i}]")))
                            .collect::<Result<_>>()?,
                    })
                }
                _ => {
                    return Err(ApiError::invalid(
                        m_field,
                        "must be {\"value\": v} or {\"any\": [v...]}",
                    ));
                }
            };
            C::Match(common::Match { kind: Some(kind) })
        }
        (None, Some(r)) => {
            let r_field = format!("{field}.range");
            let Value::Object(r) = r else {
                return Err(ApiError::invalid(
                    r_field,
                    "must be an object of gt, gte, lt, lte",
                ));
            };
            let mut range = common::Range::default();
            for (bound, v) in r {
                let x = v.as_f64().ok_or_else(|| {
                    ApiError::invalid(format!("{r_field}.{bound}"), format!("{v} is not a number"))
                })?;
                match bound.as_str() {
                    "gt" => range.gt = Some(x),
                    "gte" => range.gte = Some(x),
                    "lt" => range.lt = Some(x),
                    "lte" => range.lte = Some(x),
                    other => {
                        return Err(ApiError::invalid(
                            format!("{r_field}.{other}"),
                            "is not a range bound (gt, gte, lt, lte)",
                        ));
                    }
                }
            }
            if r.is_empty() {
                return Err(ApiError::invalid(
                    r_field,
                    "needs at least one of gt, gte, lt, lte",
                ));
            }
            C::Range(range)
        }
        _ => {
            return Err(ApiError::invalid(
                field,
                "give exactly one of \"match\" or \"range\"",
            ));
        }
    };
    Ok(common::Condition {
        key,
        condition: Some(condition),
    })
}

/// A point read back.
pub fn point(p: &PointOut) -> Value {
    let mut value = json!({"id": id_value(&p.id)});
    if let Some(vector) = &p.vector {
        value["vector"] = json!(vector);
    }
    if let Some(payload) = &p.payload {
        value["payload"] = payload.clone();
    }
    value
}

/// A search hit.
pub fn hit(h: &Hit) -> Value {
    let mut value = json!({"id": id_value(&h.id), "score": h.score});
    if let Some(payload) = &h.payload {
        value["payload"] = payload.clone();
    }
    if let Some(vector) = &h.vector {
        value["vector"] = json!(vector);
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upsert_body_names_the_bad_field() {
        let body: UpsertBody =
            parse(br#"{"points":[{"id":1,"vector":[1,2]},{"id":-3,"vector":[1,2]}]}"#)
                .expect("shape ok");
        assert_eq!(
            body.into_points().expect_err("negative id").field,
            "points[1].id"
        );
        let body: UpsertBody =
            parse(br#"{"points":[{"id":"a","vector":[1,"x"]}]}"#).expect("shape");
        assert_eq!(
            body.into_points().expect_err("string").field,
            "points[0].vector[1]"
        );
        let body: UpsertBody = parse(br#"{"points":[{"id":"a"}]}"#).expect("shape");
        assert_eq!(
            body.into_points().expect_err("missing").field,
            "points[0].vector"
        );
        let body: UpsertBody =
            parse(br#"{"points":[{"id":"a","vector":[1],"payload":{"k":[1,{"x":2}]}}]}"#)
                .expect("shape");
        let points = body.into_points().expect("valid");
        assert_eq!(points[0].payload.as_ref().map(|p| p.len()), Some(1));
    }

    #[test]
    fn malformed_json_is_invalid_json() {
        let error = parse::<UpsertBody>(b"{\"points\": [").expect_err("truncated");
        assert_eq!(error.kind, ErrorKind::InvalidJson);
        let error = parse::<UpsertBody>(b"{\"pointz\": []}").expect_err("unknown field");
        assert!(error.message.contains("pointz"), "{}", error.message);
    }

    #[test]
    fn filters_parse_with_nesting_and_reject_unknown_keys() {
        let value = json!({
            "must": [{"key": "color", "match": {"value": "red"}}, {"key": "n", "range": {"gte": 1, "lt": 5.5}}],
            "should": [{"key": "tag", "match": {"any": ["a", 2, true]}}],
            "must_not": [{"should": [{"key": "x", "match": {"value": 1}}]}]
        });
        let parsed = filter(&value, "filter").expect("valid filter");
        assert_eq!(
            (
                parsed.must.len(),
                parsed.should.len(),
                parsed.must_not.len()
            ),
            (2, 1, 1)
        );
        let bad = json!({"must": [{"key": "a", "match": {"value": 1.5}}]});
        assert_eq!(
            filter(&bad, "filter").expect_err("float").field,
            "filter.must[0].match.value"
        );
        let bad = json!({"mustt": []});
        assert_eq!(
            filter(&bad, "filter").expect_err("clause").field,
            "filter.mustt"
        );
    }

    #[test]
    fn collection_body_applies_no_silent_zeroes() {
        let body: CreateCollectionBody =
            parse(br#"{"name":"c","dimension":4,"metric":"cosine","shards":0}"#).expect("shape");
        assert_eq!(
            body.into_request().expect_err("zero shards").field,
            "shards"
        );
        let body: CreateCollectionBody =
            parse(br#"{"name":"c","dimension":4,"metric":"euclid"}"#).expect("shape");
        assert_eq!(body.into_request().expect_err("metric").field, "metric");
    }
}
