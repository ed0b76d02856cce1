//! Checks a whole request against the collection and the limits before any
//! of it is sent to a worker, so an invalid batch writes nothing. Every error
//! names the offending field. No I/O.

use prost::Message;
use vectron_config::Limits;
use vectron_ids::PointId;
use vectron_proto::common::v1::Filter;

use crate::error::{ApiError, Result};
use crate::model::{NewPoint, SearchQuery};

/// Checks a point id's length limits.
pub fn point_id(id: &PointId, field: &str, limits: &Limits) -> Result<()> {
    if let PointId::Str(s) = id {
        if s.is_empty() {
            return Err(ApiError::invalid(field, "a string id must not be empty"));
        }
        if s.len() > limits.max_id_bytes {
            return Err(ApiError::invalid(
                field,
                format!(
                    "id is {} bytes long; the limit is {}",
                    s.len(),
                    limits.max_id_bytes
                ),
            ));
        }
    }
    Ok(())
}

/// Checks a vector's length and values.
pub fn vector(values: &[f32], dimension: usize, field: &str) -> Result<()> {
    if values.is_empty() {
        return Err(ApiError::invalid(field, "a vector is required"));
    }
    if values.len() != dimension {
        return Err(ApiError::invalid(
            field,
            format!(
                "has {} components; the collection's dimension is {dimension}",
                values.len()
            ),
        ));
    }
    if let Some(i) = values.iter().position(|x| !x.is_finite()) {
        return Err(ApiError::invalid(
            format!("{field}[{i}]"),
            "is not a finite number",
        ));
    }
    Ok(())
}

/// Checks every point of an upsert.
pub fn upsert(points: &[NewPoint], dimension: usize, limits: &Limits) -> Result<()> {
    if points.is_empty() {
        return Err(ApiError::invalid("points", "must hold at least one point"));
    }
    if points.len() > limits.max_points_per_upsert {
        return Err(ApiError::invalid(
            "points",
            format!(
                "holds {} points; the limit per upsert is {}",
                points.len(),
                limits.max_points_per_upsert
            ),
        ));
    }
    for (i, point) in points.iter().enumerate() {
        point_id(&point.id, &format!("points[{i}].id"), limits)?;
        vector(&point.vector, dimension, &format!("points[{i}].vector"))?;
        if let Some(payload) = &point.payload {
            let size = serde_json::to_vec(payload).map(|b| b.len()).unwrap_or(0);
            if size > limits.max_payload_bytes {
                return Err(ApiError::invalid(
                    format!("points[{i}].payload"),
                    format!(
                        "is {size} bytes of JSON; the limit is {}",
                        limits.max_payload_bytes
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Checks a payload filter's size.
pub fn filter(filter: Option<&Filter>, field: &str, limits: &Limits) -> Result<()> {
    let Some(filter) = filter else {
        return Ok(());
    };
    let size = filter.encoded_len();
    if size > limits.max_filter_bytes {
        return Err(ApiError::invalid(
            field,
            format!(
                "is {size} bytes encoded; the limit is {}",
                limits.max_filter_bytes
            ),
        ));
    }
    Ok(())
}

/// Checks a search.
pub fn search(query: &SearchQuery, dimension: usize, limits: &Limits) -> Result<()> {
    vector(&query.vector, dimension, "vector")?;
    top_k(query.top_k, "top_k", limits)?;
    filter(query.filter.as_ref(), "filter", limits)?;
    match query.ef {
        Some(0) => Err(ApiError::invalid("ef", "must be at least 1")),
        Some(ef) if ef > limits.max_ef => Err(ApiError::invalid(
            "ef",
            format!("is {ef}; the limit is {}", limits.max_ef),
        )),
        _ => Ok(()),
    }
}

/// Checks a result count (`top_k`, scroll `limit`).
pub fn top_k(value: u32, field: &str, limits: &Limits) -> Result<()> {
    if value == 0 {
        return Err(ApiError::invalid(field, "must be at least 1"));
    }
    if value > limits.max_top_k {
        return Err(ApiError::invalid(
            field,
            format!("is {value}; the limit is {}", limits.max_top_k),
        ));
    }
    Ok(())
}

/// Checks a list of ids.
pub fn ids(ids: &[PointId], limits: &Limits) -> Result<()> {
    if ids.is_empty() {
        return Err(ApiError::invalid("ids", "must hold at least one id"));
    }
    if ids.len() > limits.max_points_per_upsert {
        return Err(ApiError::invalid(
            "ids",
            format!(
                "holds {} ids; the limit is {}",
                ids.len(),
                limits.max_points_per_upsert
            ),
        ));
    }
    for (i, id) in ids.iter().enumerate() {
        point_id(id, &format!("ids[{i}]"), limits)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(id: u64, vector: Vec<f32>) -> NewPoint {
        NewPoint {
            id: PointId::Num(id),
            vector,
            payload: None,
        }
    }

    #[test]
    fn one_bad_point_fails_the_batch_naming_it() {
        let limits = Limits::default();
        let points = vec![
            point(1, vec![1.0, 2.0]),
            point(2, vec![1.0, f32::NAN]),
            point(3, vec![1.0, 2.0]),
        ];
        let error = upsert(&points, 2, &limits).expect_err("NaN rejected");
        assert_eq!(error.field, "points[1].vector[1]");
        let error = upsert(&[point(1, vec![1.0])], 2, &limits).expect_err("dimension");
        assert_eq!(error.field, "points[0].vector");
        let error = upsert(&[point(1, vec![])], 2, &limits).expect_err("missing vector");
        assert!(error.message.contains("required"), "{}", error.message);
        assert!(upsert(&points[..1], 2, &limits).is_ok());
    }

    #[test]
    fn top_k_bounds() {
        let limits = Limits::default();
        assert_eq!(top_k(0, "top_k", &limits).expect_err("0").field, "top_k");
        assert!(top_k(limits.max_top_k + 1, "top_k", &limits).is_err());
        assert!(top_k(limits.max_top_k, "top_k", &limits).is_ok());
    }

    #[test]
    fn ef_bounds() {
        let limits = Limits::default();
        let query = |ef| SearchQuery {
            vector: vec![1.0, 0.0],
            top_k: 10,
            ef,
            filter: None,
            with_payload: false,
            with_vector: false,
            consistency: Default::default(),
        };
        assert!(search(&query(None), 2, &limits).is_ok());
        assert!(search(&query(Some(limits.max_ef)), 2, &limits).is_ok());
        for bad in [0, limits.max_ef + 1, u32::MAX] {
            let error = search(&query(Some(bad)), 2, &limits).expect_err("out of bounds");
            assert_eq!(error.field, "ef", "ef {bad}");
        }
    }

    #[test]
    fn a_filter_over_the_byte_limit_is_refused_naming_the_field() {
        use vectron_proto::common::v1::{
            Condition, Match, MatchValue, condition, r#match, match_value,
        };
        let limits = Limits::default();
        let keyword = |bytes: usize| Filter {
            must: vec![Condition {
                key: "topic".into(),
                condition: Some(condition::Condition::Match(Match {
                    kind: Some(r#match::Kind::Value(MatchValue {
                        value: Some(match_value::Value::Keyword("x".repeat(bytes))),
                    })),
                })),
            }],
            ..Filter::default()
        };
        assert!(filter(None, "filter", &limits).is_ok());
        assert!(filter(Some(&keyword(1000)), "filter", &limits).is_ok());
        let error = filter(Some(&keyword(limits.max_filter_bytes)), "filter", &limits)
            .expect_err("too big");
        assert_eq!(error.field, "filter");
        assert!(error.message.contains("limit"), "{}", error.message);
    }

    #[test]
    fn long_and_empty_string_ids_are_rejected() {
        let limits = Limits::default();
        assert!(point_id(&PointId::Str(String::new()), "id", &limits).is_err());
        assert!(point_id(&PointId::Str("x".repeat(257)), "id", &limits).is_err());
        assert!(point_id(&PointId::Str("x".repeat(256)), "id", &limits).is_ok());
    }
}
