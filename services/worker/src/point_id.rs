//! Conversions between the wire point id (`vectron.common.v1.PointId`) and
//! [`vectron_ids::PointId`], and the canonical form used as the storage key.
//! No I/O.

use vectron_ids::PointId;
use vectron_proto::common::v1 as common;
use vectron_proto::common::v1::point_id::Kind;

/// The wire form of an id.
pub fn to_pb(id: &PointId) -> common::PointId {
    common::PointId {
        kind: Some(match id {
            PointId::Num(n) => Kind::Num(*n),
            PointId::Str(s) => Kind::Str(s.clone()),
        }),
    }
}

/// The id a wire message carries, if any.
pub fn from_pb(id: Option<&common::PointId>) -> Option<PointId> {
    match id.and_then(|id| id.kind.as_ref())? {
        Kind::Num(n) => Some(PointId::Num(*n)),
        Kind::Str(s) => Some(PointId::Str(s.clone())),
    }
}

/// The canonical form of a wire id (empty when it carries none).
pub fn canonical(id: Option<&common::PointId>) -> String {
    from_pb(id).map(|id| id.canonical()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_canonicalises() {
        for id in [PointId::Num(7), PointId::Str("a".into())] {
            assert_eq!(from_pb(Some(&to_pb(&id))), Some(id.clone()));
            assert_eq!(canonical(Some(&to_pb(&id))), id.canonical());
        }
        assert_eq!(canonical(None), "");
        assert_eq!(from_pb(Some(&common::PointId { kind: None })), None);
    }
}
