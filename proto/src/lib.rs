//! Vectron's protocol contract: the Rust types and gRPC stubs generated from
//! `proto/vectron/**.proto`, plus helpers for the machine-readable error
//! detail every service attaches to its errors, and the one builder of
//! internal gRPC channels ([`channel`]). No I/O.
//!
//! Modules mirror the protobuf packages with the crate root standing for
//! `vectron`: `vectron.pd.v1` is [`pd::v1`].

pub mod channel;
pub mod error_detail;

/// Types shared by every service (`vectron.common.v1`).
pub mod common {
    /// Version 1 of the shared types.
    pub mod v1 {
        tonic::include_proto!("vectron.common.v1");
    }
}

/// The public API (`vectron.v1.Vectron`).
pub mod v1 {
    tonic::include_proto!("vectron.v1");
}

/// The placement driver (`vectron.pd.v1.PlacementDriver`).
pub mod pd {
    /// Version 1 of the placement-driver API.
    pub mod v1 {
        tonic::include_proto!("vectron.pd.v1");
    }
}

/// Per-shard data operations (`vectron.worker.v1.Worker`).
pub mod worker {
    /// Version 1 of the worker API.
    pub mod v1 {
        tonic::include_proto!("vectron.worker.v1");
    }
}

/// The group-multiplexed Raft transport (`vectron.raft.v1.Raft`).
pub mod raft {
    /// Version 1 of the Raft transport.
    pub mod v1 {
        tonic::include_proto!("vectron.raft.v1");
    }
}

/// The auth service (`vectron.auth.v1.Auth`).
pub mod auth {
    /// Version 1 of the auth API.
    pub mod v1 {
        tonic::include_proto!("vectron.auth.v1");
    }
}
