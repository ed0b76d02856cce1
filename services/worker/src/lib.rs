//! The worker: hosts shard replicas, each its own Raft group with RocksDB
//! storage and an HNSW index, and serves per-shard data operations.
//!
//! Layers, each depending only on those before it: `storage` (RocksDB layout)
//! → `distance` / `exact` / `filter` / `payload_index` / `index` (search) →
//! `shard` (Raft commands and state machine) → `maintenance` (index rebuilds
//! and dumps) → `replica` (one hosted group) → `service` (gRPC) → `node` (PD
//! registration, heartbeats, converging on assignments).

// openraft's storage traits return its `StorageError`, which is large; our
// helpers return the same type rather than boxing and unboxing it.
#![allow(clippy::result_large_err)]

pub mod distance;

/// A map keyed by server-assigned integers (rows, offsets): hashed with
/// foldhash, several times faster than the standard library's SipHash,
/// which guards against chosen keys these maps never see.
pub type RowMap<V> = std::collections::HashMap<u64, V, foldhash::fast::RandomState>;
pub mod exact;
pub mod filter;
pub mod index;
pub mod maintenance;
pub mod mover;
pub mod node;
pub mod payload_index;
pub mod point_id;
pub mod replica;
pub mod service;
pub mod shard;
pub mod storage;
