//! Raft plumbing shared by the placement driver and the workers: the type
//! configuration every Vectron Raft group uses, a RocksDB log store keyed by
//! group, the conversions to the `vectron.raft.v1` wire format, and a gRPC
//! transport that carries many groups over one connection per peer.

// openraft's storage traits return its `StorageError`, which is large; our
// helpers return the same type rather than boxing and unboxing it.
#![allow(clippy::result_large_err)]

pub mod convert;
pub mod failpoint;
pub mod log_store;
pub mod network;
pub mod service;

use std::io::Cursor;
use std::path::Path;
use std::sync::Arc;

use openraft::{BasicNode, Entry, RaftTypeConfig};
use rocksdb::{ColumnFamilyDescriptor, DB, Options};

pub use log_store::{CF_RAFT_LOG, CF_RAFT_META, RocksLogStore};

/// Encoding of a group's application commands inside log entries and on the
/// wire. Each state machine owns its command format.
pub trait PayloadCodec: Sized {
    /// Encodes the command.
    fn encode_payload(&self) -> Vec<u8>;
    /// Decodes a command, or says why it cannot.
    fn decode_payload(bytes: &[u8]) -> Result<Self, String>;
}

/// The openraft type configuration shape shared by every Vectron Raft group:
/// u64 node ids, nodes addressed by host:port, in-memory snapshot buffers.
pub trait GroupConfig:
    RaftTypeConfig<
        D: PayloadCodec,
        NodeId = u64,
        Node = BasicNode,
        Entry = Entry<Self>,
        SnapshotData = Cursor<Vec<u8>>,
    >
{
}

impl<C> GroupConfig for C
where
    C: RaftTypeConfig<
            NodeId = u64,
            Node = BasicNode,
            Entry = Entry<C>,
            SnapshotData = Cursor<Vec<u8>>,
        >,
    C::D: PayloadCodec,
{
}

/// Opens (creating if needed) the RocksDB at `path` with the Raft column
/// families plus `extra_cfs` for the caller's own data.
pub fn open_db(path: &Path, extra_cfs: &[&str]) -> Result<Arc<DB>, rocksdb::Error> {
    let mut options = Options::default();
    options.create_if_missing(true);
    options.create_missing_column_families(true);
    let cfs = [CF_RAFT_LOG, CF_RAFT_META]
        .iter()
        .chain(extra_cfs)
        .map(|name| ColumnFamilyDescriptor::new(*name, Options::default()));
    DB::open_cf_descriptors(&options, path, cfs).map(Arc::new)
}
