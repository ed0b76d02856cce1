//! Payload filters (docs/gateway.md): validated once from the wire form into a
//! [`PayloadFilter`], then evaluated against each point's JSON payload — inside
//! the HNSW traversal, by exact search, by delete-by-filter, count and scroll.
//! No I/O.
//!
//! Semantics: every `must` condition holds, at least one `should` holds when
//! any is given, and no `must_not` holds. A key is a dotted path into the
//! payload; when the path meets an array, the condition holds if it holds for
//! any element. A missing key never matches (so it satisfies `must_not`).

use serde_json::Value;
use vectron_proto::common::v1 as pb;

/// A filter that is not well formed; `field` is its path in the request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FilterError {
    /// Path of the offending part, e.g. `filter.must[2].range`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// Deepest nesting of filters accepted, so a hostile request cannot recurse
/// without bound.
pub const MAX_FILTER_DEPTH: usize = 16;

/// A scalar a payload value is compared with.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    /// A string.
    Keyword(String),
    /// An integer.
    Integer(i64),
    /// A boolean.
    Boolean(bool),
}

impl Scalar {
    fn matches(&self, value: &Value) -> bool {
        match (self, value) {
            (Scalar::Keyword(k), Value::String(s)) => k == s,
            (Scalar::Boolean(b), Value::Bool(v)) => b == v,
            (Scalar::Integer(i), Value::Number(n)) => {
                n.as_i64() == Some(*i)
                    || n.as_f64()
                        .is_some_and(|f| f.fract() == 0.0 && f == *i as f64)
            }
            _ => false,
        }
    }
}

/// Numeric bounds; absent bounds are open.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Bounds {
    /// Strictly greater than.
    pub gt: Option<f64>,
    /// Greater than or equal.
    pub gte: Option<f64>,
    /// Strictly less than.
    pub lt: Option<f64>,
    /// Less than or equal.
    pub lte: Option<f64>,
}

impl Bounds {
    fn matches(&self, value: &Value) -> bool {
        let Some(x) = value.as_f64() else {
            return false;
        };
        self.gt.is_none_or(|b| x > b)
            && self.gte.is_none_or(|b| x >= b)
            && self.lt.is_none_or(|b| x < b)
            && self.lte.is_none_or(|b| x <= b)
    }
}

/// One validated condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// The value at `key` equals one of `values`.
    Match {
        /// Dotted path split into segments.
        key: Vec<String>,
        /// Accepted values (one for `match.value`).
        values: Vec<Scalar>,
    },
    /// The number at `key` lies within `bounds`.
    Range {
        /// Dotted path split into segments.
        key: Vec<String>,
        /// The bounds.
        bounds: Bounds,
    },
    /// A nested filter over the same payload.
    Nested(Box<PayloadFilter>),
}

/// A validated payload filter.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PayloadFilter {
    /// All must hold.
    pub must: Vec<Condition>,
    /// At least one must hold, when non-empty.
    pub should: Vec<Condition>,
    /// None may hold.
    pub must_not: Vec<Condition>,
}

/// The values at a dotted path, descending into arrays.
fn values_at<'a>(value: &'a Value, path: &[String], out: &mut Vec<&'a Value>) {
    match (value, path.split_first()) {
        (Value::Array(items), _) => items.iter().for_each(|item| values_at(item, path, out)),
        (_, None) => out.push(value),
        (Value::Object(map), Some((head, rest))) => {
            if let Some(next) = map.get(head) {
                values_at(next, rest, out);
            }
        }
        _ => {}
    }
}

impl Condition {
    fn matches(&self, payload: &Value) -> bool {
        let mut found = Vec::new();
        match self {
            Condition::Match { key, values } => {
                values_at(payload, key, &mut found);
                found.iter().any(|v| values.iter().any(|s| s.matches(v)))
            }
            Condition::Range { key, bounds } => {
                values_at(payload, key, &mut found);
                found.iter().any(|v| bounds.matches(v))
            }
            Condition::Nested(filter) => filter.matches(payload),
        }
    }
}

impl PayloadFilter {
    /// Whether a point with this payload (`Value::Null` when it has none)
    /// passes the filter.
    pub fn matches(&self, payload: &Value) -> bool {
        self.must.iter().all(|c| c.matches(payload))
            && (self.should.is_empty() || self.should.iter().any(|c| c.matches(payload)))
            && !self.must_not.iter().any(|c| c.matches(payload))
    }

    /// Validates a wire filter; `field` is its path in the request.
    pub fn from_proto(filter: &pb::Filter, field: &str) -> Result<Self, FilterError> {
        Self::from_proto_at(filter, field, 0)
    }

    fn from_proto_at(filter: &pb::Filter, field: &str, depth: usize) -> Result<Self, FilterError> {
        if depth > MAX_FILTER_DEPTH {
            return Err(FilterError {
                field: field.to_owned(),
                message: format!("filters nest deeper than {MAX_FILTER_DEPTH} levels"),
            });
        }
        let list = |conditions: &[pb::Condition], name: &str| {
            conditions
                .iter()
                .enumerate()
                .map(|(i, c)| condition(c, &format!("{field}.{name}[{i}]"), depth))
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(Self {
            must: list(&filter.must, "must")?,
            should: list(&filter.should, "should")?,
            must_not: list(&filter.must_not, "must_not")?,
        })
    }
}

fn error(field: &str, message: impl Into<String>) -> FilterError {
    FilterError {
        field: field.to_owned(),
        message: message.into(),
    }
}

fn key_path(key: &str, field: &str) -> Result<Vec<String>, FilterError> {
    let parts: Vec<String> = key.split('.').map(str::to_owned).collect();
    if key.is_empty() || parts.iter().any(String::is_empty) {
        return Err(error(
            &format!("{field}.key"),
            format!("{key:?} is not a dotted path like \"a.b\""),
        ));
    }
    Ok(parts)
}

fn scalar(value: &pb::MatchValue, field: &str) -> Result<Scalar, FilterError> {
    match &value.value {
        Some(pb::match_value::Value::Keyword(s)) => Ok(Scalar::Keyword(s.clone())),
        Some(pb::match_value::Value::Integer(i)) => Ok(Scalar::Integer(*i)),
        Some(pb::match_value::Value::Boolean(b)) => Ok(Scalar::Boolean(*b)),
        None => Err(error(field, "a string, integer or boolean is required")),
    }
}

fn condition(c: &pb::Condition, field: &str, depth: usize) -> Result<Condition, FilterError> {
    use pb::condition::Condition as Kind;
    match &c.condition {
        Some(Kind::Match(m)) => {
            let key = key_path(&c.key, field)?;
            let values = match &m.kind {
                Some(pb::r#match::Kind::Value(v)) => {
                    vec![scalar(v, &format!("{field}.match.value"))?]
                }
                Some(pb::r#match::Kind::Any(any)) => {
                    if any.values.is_empty() {
                        return Err(error(
                            &format!("{field}.match.any"),
                            "must list at least one value",
                        ));
                    }
                    any.values
                        .iter()
                        .enumerate()
                        .map(|(i, v)| scalar(v, &format!("{field}.match.any[{i}]")))
                        .collect::<Result<_, _>>()?
                }
                None => {
                    return Err(error(
                        &format!("{field}.match"),
                        "needs \"value\" or \"any\"",
                    ));
                }
            };
            Ok(Condition::Match { key, values })
        }
        Some(Kind::Range(r)) => {
            let key = key_path(&c.key, field)?;
            let bounds = Bounds {
                gt: r.gt,
                gte: r.gte,
                lt: r.lt,
                lte: r.lte,
            };
            let all = [bounds.gt, bounds.gte, bounds.lt, bounds.lte];
            if all.iter().all(Option::is_none) {
                return Err(error(
                    &format!("{field}.range"),
                    "needs at least one of gt, gte, lt, lte",
                ));
            }
            if all.iter().flatten().any(|b| !b.is_finite()) {
                return Err(error(
                    &format!("{field}.range"),
                    "bounds must be finite numbers",
                ));
            }
            Ok(Condition::Range { key, bounds })
        }
        Some(Kind::Filter(nested)) => Ok(Condition::Nested(Box::new(
            PayloadFilter::from_proto_at(nested, &format!("{field}.filter"), depth + 1)?,
        ))),
        None => Err(error(
            field,
            "needs \"match\", \"range\" or a nested filter",
        )),
    }
}

#[cfg(test)]
mod tests;
