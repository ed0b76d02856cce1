//! Identifier newtypes shared by every Vectron service, so a shard id can never
//! be passed where a worker id is expected. No I/O.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Longest string point id accepted, in bytes.
pub const MAX_POINT_ID_BYTES: usize = 256;

macro_rules! u64_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub u64);

        impl $name {
            /// The raw integer.
            pub const fn get(self) -> u64 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }

        impl From<u64> for $name {
            fn from(raw: u64) -> Self {
                Self(raw)
            }
        }

        impl From<$name> for u64 {
            fn from(id: $name) -> u64 {
                id.0
            }
        }

        impl FromStr for $name {
            type Err = std::num::ParseIntError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.parse().map(Self)
            }
        }
    };
}

u64_id!(
    /// A shard, unique in the cluster; also the Raft group id of its replicas.
    ShardId
);
u64_id!(
    /// A worker's persistent id, assigned by PD at first registration.
    WorkerId
);
u64_id!(
    /// A collection, unique in the cluster for its lifetime (names can be reused
    /// after a drop; ids cannot).
    CollectionId
);
u64_id!(
    /// A member of the PD Raft group (`vectron pd --node-id`).
    PdNodeId
);
u64_id!(
    /// A Raft group multiplexed over one node-to-node transport; PD is group 0,
    /// worker shard groups use their shard id.
    GroupId
);

/// Why a point id is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PointIdError {
    /// String ids must not be empty.
    #[error("point id must not be an empty string")]
    Empty,
    /// String ids are limited in length.
    #[error("point id is {len} bytes long; the limit is {MAX_POINT_ID_BYTES}")]
    TooLong {
        /// Length of the rejected id in bytes.
        len: usize,
    },
}

/// A point id as the user gave it: an unsigned integer or a string.
///
/// Routing and storage use [`PointId::canonical`], under which the integer 7
/// and the string "7" are the same point.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PointId {
    /// An unsigned integer id.
    Num(u64),
    /// A string id (1..=256 bytes).
    Str(String),
}

impl PointId {
    /// Checks the limits on string ids.
    pub fn validate(&self) -> Result<(), PointIdError> {
        match self {
            PointId::Num(_) => Ok(()),
            PointId::Str(s) if s.is_empty() => Err(PointIdError::Empty),
            PointId::Str(s) if s.len() > MAX_POINT_ID_BYTES => {
                Err(PointIdError::TooLong { len: s.len() })
            }
            PointId::Str(_) => Ok(()),
        }
    }

    /// The canonical form: integers as their decimal string, strings as-is.
    pub fn canonical(&self) -> String {
        match self {
            PointId::Num(n) => n.to_string(),
            PointId::Str(s) => s.clone(),
        }
    }
}

impl fmt::Display for PointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PointId::Num(n) => write!(f, "{n}"),
            PointId::Str(s) => write!(f, "{s:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_ids_canonicalise_to_decimal() {
        assert_eq!(PointId::Num(0).canonical(), "0");
        assert_eq!(PointId::Num(42).canonical(), "42");
        assert_eq!(PointId::Num(u64::MAX).canonical(), "18446744073709551615");
        assert_eq!(
            PointId::Num(7).canonical(),
            PointId::Str("7".into()).canonical()
        );
    }

    #[test]
    fn string_ids_are_kept_verbatim() {
        assert_eq!(PointId::Str("007".into()).canonical(), "007");
        assert_eq!(PointId::Str("héllo".into()).canonical(), "héllo");
    }

    #[test]
    fn string_id_limits() {
        assert_eq!(
            PointId::Str(String::new()).validate(),
            Err(PointIdError::Empty)
        );
        assert!(
            PointId::Str("x".repeat(MAX_POINT_ID_BYTES))
                .validate()
                .is_ok()
        );
        assert_eq!(
            PointId::Str("x".repeat(MAX_POINT_ID_BYTES + 1)).validate(),
            Err(PointIdError::TooLong { len: 257 })
        );
    }

    #[test]
    fn point_ids_deserialise_from_json_numbers_and_strings() {
        let ids: Vec<PointId> = serde_json::from_str(r#"[1, "a"]"#).expect("valid json");
        assert_eq!(ids, vec![PointId::Num(1), PointId::Str("a".into())]);
        assert!(serde_json::from_str::<PointId>("-1").is_err());
        assert!(serde_json::from_str::<PointId>("1.5").is_err());
    }

    #[test]
    fn newtypes_round_trip_through_strings() {
        let id: ShardId = "12".parse().expect("number");
        assert_eq!(id, ShardId(12));
        assert_eq!(id.to_string(), "12");
        assert!("x".parse::<WorkerId>().is_err());
    }
}
