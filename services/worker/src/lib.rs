//! The worker: hosts shard replicas, each its own Raft group with RocksDB
//! storage and an HNSW index, and serves per-shard data operations.
//!
//! Built so far (issue #4 in progress): payload filters (`filter`), the
//! distance functions and exact search used as the search fallback and recall
//! baseline (`distance`, `exact`), and the segmented HNSW index of a shard
//! (`index`).

// openraft's storage traits return its `StorageError`, which is large; our
// helpers return the same type rather than boxing and unboxing it.
#![allow(clippy::result_large_err)]

pub mod distance;
pub mod exact;
pub mod filter;
pub mod index;
pub mod shard;
pub mod storage;
