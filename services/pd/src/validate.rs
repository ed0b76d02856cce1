//! Validation of PD requests that can be checked without the state: field
//! ranges and formats. Checks against the state (unique names, enough
//! workers) happen when the command is applied. No I/O.

use vectron_proto::common::v1 as common;
use vectron_proto::pd::v1 as pb;

use crate::error::{PdError, Result};
use crate::model::{CollectionSpec, Hnsw, Metric};

/// Largest vector dimension.
pub const MAX_DIMENSION: u32 = 65_536;
/// Longest collection name.
pub const MAX_NAME_LEN: usize = 255;
/// Most replicas of a shard.
pub const MAX_REPLICATION_FACTOR: u32 = 7;

/// Checks a collection or worker name: 1..=255 characters of `[A-Za-z0-9_.-]`.
pub fn check_name(field: &str, name: &str) -> Result<()> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(PdError::invalid(
            field,
            format!("must be 1 to {MAX_NAME_LEN} characters, got {}", name.len()),
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
    {
        return Err(PdError::invalid(
            field,
            format!("{name:?} contains {bad:?}; use letters, digits, '_', '-' and '.'"),
        ));
    }
    Ok(())
}

fn metric(raw: i32) -> Result<Metric> {
    match common::Metric::try_from(raw) {
        Ok(common::Metric::Cosine) => Ok(Metric::Cosine),
        Ok(common::Metric::L2) => Ok(Metric::L2),
        Ok(common::Metric::Dot) => Ok(Metric::Dot),
        _ => Err(PdError::invalid("metric", "must be one of cosine, l2, dot")),
    }
}

fn hnsw(params: Option<&common::HnswParams>) -> Result<Hnsw> {
    let defaults = Hnsw::default();
    let Some(params) = params else {
        return Ok(defaults);
    };
    let pick = |value: u32, default: u32| if value == 0 { default } else { value };
    let hnsw = Hnsw {
        m: pick(params.m, defaults.m),
        ef_construction: pick(params.ef_construction, defaults.ef_construction),
        ef_search: pick(params.ef_search, defaults.ef_search),
    };
    if !(2..=256).contains(&hnsw.m) {
        return Err(PdError::invalid(
            "hnsw.m",
            format!("must be 2..=256, got {}", hnsw.m),
        ));
    }
    if !(hnsw.m..=4096).contains(&hnsw.ef_construction) {
        return Err(PdError::invalid(
            "hnsw.ef_construction",
            format!("must be m..=4096, got {}", hnsw.ef_construction),
        ));
    }
    if !(1..=10_000).contains(&hnsw.ef_search) {
        return Err(PdError::invalid(
            "hnsw.ef_search",
            format!("must be 1..=10000, got {}", hnsw.ef_search),
        ));
    }
    Ok(hnsw)
}

/// Turns a CreateCollection request into a validated spec. Zero shards or
/// replication factor is rejected (the gateway applies the REST defaults
/// before calling PD).
pub fn collection_spec(spec: Option<&pb::CollectionSpec>) -> Result<CollectionSpec> {
    let spec = spec.ok_or_else(|| PdError::invalid("spec", "is required"))?;
    check_name("name", &spec.name)?;
    if !(1..=MAX_DIMENSION).contains(&spec.dimension) {
        return Err(PdError::invalid(
            "dimension",
            format!("must be 1..={MAX_DIMENSION}, got {}", spec.dimension),
        ));
    }
    if !(1..=vectron_routing::MAX_SHARDS).contains(&spec.shards) {
        return Err(PdError::invalid(
            "shards",
            format!(
                "must be 1..={}, got {}",
                vectron_routing::MAX_SHARDS,
                spec.shards
            ),
        ));
    }
    if !(1..=MAX_REPLICATION_FACTOR).contains(&spec.replication_factor) {
        return Err(PdError::invalid(
            "replication_factor",
            format!(
                "must be 1..={MAX_REPLICATION_FACTOR}, got {}",
                spec.replication_factor
            ),
        ));
    }
    Ok(CollectionSpec {
        name: spec.name.clone(),
        dimension: spec.dimension,
        metric: metric(spec.metric)?,
        shards: spec.shards,
        replication_factor: spec.replication_factor,
        hnsw: hnsw(spec.hnsw.as_ref())?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> pb::CollectionSpec {
        pb::CollectionSpec {
            name: "docs".into(),
            dimension: 128,
            metric: common::Metric::Cosine.into(),
            shards: 4,
            replication_factor: 3,
            hnsw: None,
        }
    }

    fn field_of(result: Result<CollectionSpec>) -> String {
        match result {
            Err(PdError::InvalidArgument { field, .. }) => field,
            other => panic!("expected InvalidArgument, got {other:?}"),
        }
    }

    #[test]
    fn valid_spec_gets_default_hnsw() {
        let spec = collection_spec(Some(&spec())).expect("valid");
        assert_eq!(spec.hnsw, Hnsw::default());
        assert_eq!(spec.metric, Metric::Cosine);
    }

    #[test]
    fn each_bad_field_is_named() {
        let cases: Vec<(pb::CollectionSpec, &str)> = vec![
            (
                pb::CollectionSpec {
                    dimension: 0,
                    ..spec()
                },
                "dimension",
            ),
            (
                pb::CollectionSpec {
                    dimension: 65_537,
                    ..spec()
                },
                "dimension",
            ),
            (
                pb::CollectionSpec {
                    shards: 0,
                    ..spec()
                },
                "shards",
            ),
            (
                pb::CollectionSpec {
                    shards: 1025,
                    ..spec()
                },
                "shards",
            ),
            (
                pb::CollectionSpec {
                    replication_factor: 0,
                    ..spec()
                },
                "replication_factor",
            ),
            (
                pb::CollectionSpec {
                    metric: 0,
                    ..spec()
                },
                "metric",
            ),
            (
                pb::CollectionSpec {
                    name: String::new(),
                    ..spec()
                },
                "name",
            ),
            (
                pb::CollectionSpec {
                    name: "a/b".into(),
                    ..spec()
                },
                "name",
            ),
            (
                pb::CollectionSpec {
                    hnsw: Some(common::HnswParams {
                        m: 1,
                        ef_construction: 0,
                        ef_search: 0,
                    }),
                    ..spec()
                },
                "hnsw.m",
            ),
        ];
        for (input, field) in cases {
            assert_eq!(field_of(collection_spec(Some(&input))), field, "{input:?}");
        }
        assert_eq!(field_of(collection_spec(None)), "spec");
    }
}
