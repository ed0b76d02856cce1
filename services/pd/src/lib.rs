//! The placement driver: a Raft-replicated metadata service that owns workers,
//! collections, shard placement and a small KV namespace, served over
//! `vectron.pd.v1.PlacementDriver`, plus the client every other component
//! uses to reach it.
//!
//! Layers, each depending only on those before it: `model` (the data) →
//! `command` / `placement` / `apply` (pure state transitions) →
//! `state_machine` (openraft + RocksDB snapshots) → `service` (gRPC) → `node`
//! (process wiring). `client` is independent.

// openraft's storage traits return its `StorageError`, which is large; our
// helpers return the same type rather than boxing and unboxing it.
#![allow(clippy::result_large_err)]

pub mod apply;
pub mod client;
pub mod command;
pub mod convert;
pub mod error;
pub mod executor;
pub mod liveness;
pub mod metrics;
pub mod model;
pub mod node;
pub mod placement;
pub mod registration;
pub mod scheduler;
pub mod service;
pub mod state_machine;
pub mod types;
pub mod validate;

pub use client::{PdClient, PdClientError, PdClientOptions};
pub use error::PdError;
pub use node::{Bootstrap, PdNodeConfig};
