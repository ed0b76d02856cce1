//! Configuration types shared by Vectron services: endpoint lists, PD initial
//! membership, Raft timing and API limits, with parsers that name what is wrong.
//! No I/O.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A configuration value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// An address is not of the form host:port.
    #[error("{field}: {value:?} is not host:port")]
    Address {
        /// The flag or field being parsed.
        field: &'static str,
        /// The offending text.
        value: String,
    },
    /// An `--initial-members` entry is not `id=host:port`.
    #[error("--initial-members: {entry:?} is not id=host:port with a positive integer id")]
    Member {
        /// The offending entry.
        entry: String,
    },
    /// Two `--initial-members` entries share an id.
    #[error("--initial-members: node id {0} appears twice")]
    DuplicateMember(u64),
    /// A list that must not be empty is empty.
    #[error("{0}: at least one entry is required")]
    Empty(&'static str),
    /// Raft timing that would not elect a stable leader.
    #[error("raft timing: {0}")]
    RaftTiming(String),
}

/// Checks that `value` is `host:port` with a non-empty host and a valid port.
pub fn parse_host_port(field: &'static str, value: &str) -> Result<String, ConfigError> {
    let bad = || ConfigError::Address {
        field,
        value: value.to_owned(),
    };
    let (host, port) = value.trim().rsplit_once(':').ok_or_else(bad)?;
    if host.is_empty() || port.parse::<u16>().is_err() {
        return Err(bad());
    }
    Ok(value.trim().to_owned())
}

/// Parses a comma-separated list of `host:port` endpoints (`--pd-endpoints`).
pub fn parse_endpoints(field: &'static str, value: &str) -> Result<Vec<String>, ConfigError> {
    let endpoints = value
        .split(',')
        .filter(|part| !part.trim().is_empty())
        .map(|part| parse_host_port(field, part))
        .collect::<Result<Vec<_>, _>>()?;
    if endpoints.is_empty() {
        return Err(ConfigError::Empty(field));
    }
    Ok(endpoints)
}

/// Parses `--initial-members "1=h:p,2=h:p,3=h:p"` into node id → address.
pub fn parse_initial_members(value: &str) -> Result<BTreeMap<u64, String>, ConfigError> {
    let mut members = BTreeMap::new();
    for entry in value.split(',').filter(|e| !e.trim().is_empty()) {
        let bad = || ConfigError::Member {
            entry: entry.trim().to_owned(),
        };
        let (id, addr) = entry.split_once('=').ok_or_else(bad)?;
        let id: u64 = id.trim().parse().map_err(|_| bad())?;
        if id == 0 {
            return Err(bad());
        }
        let addr = parse_host_port("--initial-members", addr).map_err(|_| bad())?;
        if members.insert(id, addr).is_some() {
            return Err(ConfigError::DuplicateMember(id));
        }
    }
    if members.is_empty() {
        return Err(ConfigError::Empty("--initial-members"));
    }
    Ok(members)
}

/// Raft timing for PD and shard groups. Followers honour their leader's lease
/// (the maximum election timeout) and then wait out their own election
/// timeout, so a dead leader is replaced after `max + [min, max]`: 1.5–2 s with
/// the defaults, which keeps kill-to-next-write under 3 s while leaving a
/// loaded 2-core machine ten missed heartbeats before anyone campaigns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaftTiming {
    /// Leader heartbeat interval.
    pub heartbeat_interval_ms: u64,
    /// Lower bound of the randomised election timeout.
    pub election_timeout_min_ms: u64,
    /// Upper bound of the randomised election timeout.
    pub election_timeout_max_ms: u64,
}

impl Default for RaftTiming {
    fn default() -> Self {
        Self {
            heartbeat_interval_ms: 100,
            election_timeout_min_ms: 500,
            election_timeout_max_ms: 1000,
        }
    }
}

impl RaftTiming {
    /// Rejects timings under which followers would time out between two
    /// heartbeats.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.heartbeat_interval_ms == 0 {
            return Err(ConfigError::RaftTiming(
                "heartbeat interval must be positive".into(),
            ));
        }
        if self.election_timeout_min_ms < 3 * self.heartbeat_interval_ms {
            return Err(ConfigError::RaftTiming(format!(
                "election timeout min ({} ms) must be at least 3 heartbeat intervals ({} ms)",
                self.election_timeout_min_ms,
                3 * self.heartbeat_interval_ms
            )));
        }
        if self.election_timeout_max_ms <= self.election_timeout_min_ms {
            return Err(ConfigError::RaftTiming(format!(
                "election timeout max ({} ms) must exceed min ({} ms)",
                self.election_timeout_max_ms, self.election_timeout_min_ms
            )));
        }
        Ok(())
    }

    /// The heartbeat interval as a duration.
    pub fn heartbeat_interval(&self) -> Duration {
        Duration::from_millis(self.heartbeat_interval_ms)
    }
}

/// Limits on API input (docs/gateway.md), configurable per deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    /// Largest vector dimension.
    pub max_dimension: u32,
    /// Largest `top_k` of a search.
    pub max_top_k: u32,
    /// Largest `ef` (search breadth) of a search. The walk keeps `ef`
    /// candidates, so this bounds a search's memory and time.
    pub max_ef: u32,
    /// Most points in one upsert.
    pub max_points_per_upsert: usize,
    /// Longest string point id, in bytes.
    pub max_id_bytes: usize,
    /// Largest payload of one point, in bytes of JSON.
    pub max_payload_bytes: usize,
    /// Most shards of a collection.
    pub max_shards: u32,
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// Largest payload filter, in bytes of its protobuf encoding (about the
    /// size of its JSON); bounds the work a filter costs per point. Nesting
    /// is bounded by the decoders (128 levels of JSON, 100 of protobuf).
    pub max_filter_bytes: usize,
    /// Most searches in one batch search.
    pub max_batch_searches: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_dimension: 65_536,
            max_top_k: 10_000,
            max_ef: 4_096,
            max_points_per_upsert: 10_000,
            max_id_bytes: 256,
            max_payload_bytes: 64 * 1024,
            max_shards: 1024,
            max_body_bytes: 32 * 1024 * 1024,
            max_filter_bytes: 64 * 1024,
            max_batch_searches: 100,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_members_parse() {
        let members = parse_initial_members("1=127.0.0.1:7001, 2=pd-1.pd:7400,3=[::1]:7003")
            .expect("valid list");
        assert_eq!(members.len(), 3);
        assert_eq!(members[&2], "pd-1.pd:7400");
        assert_eq!(members[&3], "[::1]:7003");
    }

    #[test]
    fn bad_initial_members_name_the_entry() {
        for (input, needle) in [
            ("1=a:1,x=b:2", "x=b:2"),
            ("0=a:1", "0=a:1"),
            ("1=a", "1=a"),
            ("1=a:99999", "1=a:99999"),
            ("1a:1", "1a:1"),
        ] {
            let err = parse_initial_members(input).expect_err(input).to_string();
            assert!(err.contains(needle), "{input}: {err}");
        }
        assert_eq!(
            parse_initial_members("1=a:1,1=b:2"),
            Err(ConfigError::DuplicateMember(1))
        );
        assert_eq!(
            parse_initial_members(""),
            Err(ConfigError::Empty("--initial-members"))
        );
    }

    #[test]
    fn endpoints_parse() {
        assert_eq!(
            parse_endpoints("--pd-endpoints", "a:1,b:2,").expect("valid"),
            vec!["a:1", "b:2"]
        );
        assert!(parse_endpoints("--pd-endpoints", "a").is_err());
        assert!(parse_endpoints("--pd-endpoints", ":1").is_err());
        assert_eq!(
            parse_endpoints("--pd-endpoints", ""),
            Err(ConfigError::Empty("--pd-endpoints"))
        );
    }

    #[test]
    fn default_raft_timing_is_valid_and_checked() {
        RaftTiming::default()
            .validate()
            .expect("defaults are valid");
        let flappy = RaftTiming {
            heartbeat_interval_ms: 500,
            election_timeout_min_ms: 600,
            election_timeout_max_ms: 900,
        };
        assert!(flappy.validate().is_err());
        let inverted = RaftTiming {
            election_timeout_max_ms: RaftTiming::default().election_timeout_min_ms,
            ..RaftTiming::default()
        };
        assert!(inverted.validate().is_err());
    }
}
