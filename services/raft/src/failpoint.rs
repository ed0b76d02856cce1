//! Crash points for the chaos suite: named places where a process can be made
//! to abort, to prove that what it acknowledged survives a crash exactly
//! there. They compile to nothing unless the `failpoints` feature is on
//! (`cargo build --features vectron/failpoints`); the chaos suite arms one
//! through the `FAILPOINTS` environment variable (`name=1*return` aborts the
//! first time the point is reached). [`NAMES`] lists every point, so the
//! chaos suite can pick one and the tests can check each exists. No I/O.

pub use fail;

/// Aborts the process at this point when the failpoint `$name` is armed.
#[macro_export]
macro_rules! crash_point {
    ($name:literal) => {
        $crate::failpoint::fail::fail_point!($name, |_| {
            eprintln!(concat!("failpoint ", $name, " fired: aborting"));
            ::std::process::abort()
        })
    };
}

/// Every crash point of a PD node.
pub const PD_POINTS: &[&str] = &[
    "raft::log::before_append_sync",
    "raft::log::after_append_sync",
    "raft::log::save_vote",
    "raft::log::truncate",
    "raft::log::purge",
    "pd::apply",
    "pd::snapshot::build",
    "pd::snapshot::install",
];

/// Every crash point of a worker.
pub const WORKER_POINTS: &[&str] = &[
    "raft::log::before_append_sync",
    "raft::log::after_append_sync",
    "raft::log::save_vote",
    "raft::log::truncate",
    "raft::log::purge",
    "worker::apply::before_write",
    "worker::apply::before_index",
    "worker::snapshot::build",
    "worker::snapshot::install",
    "worker::index::dump_segment",
    "worker::index::manifest",
    "worker::move::add_learner",
    "worker::move::promote",
    "worker::move::transfer_leader",
    "worker::move::remove_replica",
];

/// Whether this build has the failpoints compiled in.
pub const ENABLED: bool = cfg!(feature = "failpoints");

/// Reads `FAILPOINTS` and arms what it names; keep the result alive for the
/// life of the process. Without the feature it does nothing.
pub fn arm_from_env() -> fail::FailScenario<'static> {
    fail::FailScenario::setup()
}
