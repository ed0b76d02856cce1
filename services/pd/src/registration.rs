//! Who may register under a worker name. A name belongs to one process at a
//! time: a registration from another address is refused while the name's
//! current worker is still heartbeating, so two processes started with the
//! same `--name` cannot share one worker id (and with it one Raft node id).
//! Pure; no I/O.

use std::time::{Duration, Instant};

use vectron_ids::WorkerId;
use vectron_proto::pd::v1 as pb;

use crate::command::DataDir;
use crate::error::PdError;
use crate::liveness::Liveness;
use crate::model::{WorkerRecord, WorkerState};

/// What a registration request says about the worker's data directory.
pub fn data_dir(request: &pb::RegisterWorkerRequest) -> Result<DataDir, PdError> {
    match (request.worker_id, request.new_data_dir) {
        (0, false) => Ok(DataDir::Unreported),
        (0, true) => Ok(DataDir::Fresh),
        (id, false) => Ok(DataDir::Holds(WorkerId(id))),
        (_, true) => Err(PdError::invalid(
            "new_data_dir",
            "a new data directory cannot also hold a worker id",
        )),
    }
}

/// Refuses `name` from `addr` while another address heartbeats it: the
/// name's `current` worker (see [`crate::model::PdState::worker_by_name`]) was heard from
/// within `heartbeat_timeout` at `now`.
pub fn check_name_free(
    current: Option<&WorkerRecord>,
    liveness: &Liveness,
    name: &str,
    addr: &str,
    heartbeat_timeout: Duration,
    now: Instant,
) -> Result<(), PdError> {
    let Some(current) = current else {
        return Ok(());
    };
    if current.state == WorkerState::Removed
        || current.addr == addr
        || !liveness.is_alive(current.id, heartbeat_timeout, now)
    {
        return Ok(());
    }
    Err(PdError::NameInUse {
        name: name.to_owned(),
        holder: current.id.0,
        addr: current.addr.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::PdCommand;
    use crate::model::PdState;

    fn check(
        state: &PdState,
        liveness: &Liveness,
        name: &str,
        addr: &str,
        timeout: Duration,
        now: Instant,
    ) -> Result<(), PdError> {
        let current = state.worker_by_name(name);
        check_name_free(current, liveness, name, addr, timeout, now)
    }

    fn registered(name: &str, addr: &str) -> (PdState, WorkerId) {
        let mut state = PdState::default();
        state.apply(
            PdCommand::RegisterWorker {
                name: name.into(),
                addr: addr.into(),
                zone: String::new(),
                now_ms: 0,
                data_dir: DataDir::Fresh,
            },
            1,
        );
        let id = state.worker_by_name(name).expect("registered").id;
        (state, id)
    }

    #[test]
    fn a_name_heartbeated_from_another_address_is_refused() {
        let (state, id) = registered("w", "127.0.0.1:1");
        let mut liveness = Liveness::default();
        let t0 = Instant::now();
        let timeout = Duration::from_secs(10);
        liveness.heartbeat(id, Vec::new(), t0);
        let refused = check(&state, &liveness, "w", "127.0.0.1:2", timeout, t0)
            .expect_err("another live process holds the name");
        assert!(refused.to_string().contains("127.0.0.1:1"), "{refused}");
        // The same address is a restart of the same process.
        check(&state, &liveness, "w", "127.0.0.1:1", timeout, t0).expect("restart");
        // Once the holder is silent past the timeout, the name may move.
        check(
            &state,
            &liveness,
            "w",
            "127.0.0.1:2",
            timeout,
            t0 + Duration::from_secs(11),
        )
        .expect("the old holder is gone");
        check(&state, &liveness, "other", "127.0.0.1:2", timeout, t0)
            .expect("an unknown name is free");
    }

    #[test]
    fn the_request_says_what_the_data_directory_holds() {
        let request = |worker_id, new_data_dir| pb::RegisterWorkerRequest {
            worker_id,
            new_data_dir,
            ..Default::default()
        };
        assert_eq!(data_dir(&request(0, false)).ok(), Some(DataDir::Unreported));
        assert_eq!(data_dir(&request(0, true)).ok(), Some(DataDir::Fresh));
        assert_eq!(
            data_dir(&request(7, false)).ok(),
            Some(DataDir::Holds(WorkerId(7)))
        );
        let both = data_dir(&request(7, true)).expect_err("contradictory");
        assert!(both.to_string().contains("new_data_dir"), "{both}");
    }
}
