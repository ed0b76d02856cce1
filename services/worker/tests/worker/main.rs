//! Integration tests of the worker crate (one test binary, one module per
//! area).

mod raft_transport;
mod shard_state;
mod storage_conformance;
