//! The record of a chaos run's operations, in the form the Porcupine checker
//! (`tests/chaos/checker`) reads: one entry per operation with its client,
//! key, kind, times (nanoseconds since the run started) and outcome. An
//! outcome is `ok` (the answer is known), `unknown` (a write that timed out
//! or failed in a way that does not prove it did not commit) or `failed`
//! (refused before anything was written; left out of the check). No I/O
//! apart from writing the file.

use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use serde::Serialize;

/// What an operation was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OpKind {
    /// Upsert of the key's point with a new value in its payload.
    Put,
    /// Strong read of the key's point.
    Get,
    /// Delete of the key's point.
    Delete,
}

/// How an operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Answered; the answer is in the record.
    Ok,
    /// No answer that proves whether a write committed.
    Unknown,
    /// Refused before anything was written.
    Failed,
}

/// One operation.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    /// The client that ran it.
    pub client: usize,
    /// The point id, as text.
    pub key: String,
    /// What it was.
    pub op: OpKind,
    /// For a put, the value written.
    pub value: String,
    /// When it was called, ns since the run started.
    pub call: i64,
    /// When it returned, ns since the run started.
    #[serde(rename = "return")]
    pub returned: i64,
    /// How it ended.
    pub outcome: Outcome,
    /// For a get: whether the point existed.
    pub found: bool,
    /// For a get: the value read.
    pub read: String,
    /// For a delete: how many points it removed.
    pub deleted: u64,
}

/// Every operation of a run, appended concurrently by the clients.
pub struct History {
    started: Instant,
    records: Mutex<Vec<Record>>,
}

#[derive(Serialize)]
struct HistoryFile<'a> {
    operations: &'a [Record],
}

impl History {
    /// An empty history whose clock starts now.
    pub fn new() -> Self {
        Self {
            started: Instant::now(),
            records: Mutex::new(Vec::new()),
        }
    }

    /// Nanoseconds since the run started.
    pub fn now(&self) -> i64 {
        self.started.elapsed().as_nanos() as i64
    }

    /// Adds a finished operation.
    pub fn push(&self, record: Record) {
        self.records
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(record);
    }

    /// A copy of every record so far.
    pub fn records(&self) -> Vec<Record> {
        self.records
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Writes the checkable history (definite failures left out) to `path`.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let records: Vec<Record> = self
            .records()
            .into_iter()
            .filter(|r| r.outcome != Outcome::Failed)
            .collect();
        let json = serde_json::to_vec(&HistoryFile {
            operations: &records,
        })
        .map_err(std::io::Error::other)?;
        std::fs::write(path, json)
    }
}

impl Default for History {
    fn default() -> Self {
        Self::new()
    }
}
