//! PD metrics in the Prometheus text format on `--metrics-addr`: whether
//! this node leads, the scheduler's move counters, running moves,
//! under-replicated shards and workers by state. The counters are kept by
//! the node that runs the scheduler, so scrape every PD node and sum.
//! Does network I/O (one HTTP listener).

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::model::WorkerState;
use crate::service::PdCore;

/// The metrics page of `core`.
pub fn render(core: &PdCore) -> String {
    let leader = core.raft.metrics().borrow().current_leader == Some(core.node_id);
    let scheduler = &core.scheduler_metrics;
    let (running, workers) = {
        let applied = core.state.read();
        let mut workers = [0u64; 4];
        for w in applied.state.workers.values() {
            let slot = match w.state {
                WorkerState::Up => 0,
                WorkerState::Draining => 1,
                WorkerState::Down => 2,
                WorkerState::Removed => 3,
            };
            workers[slot] += 1;
        }
        (applied.state.moves.len(), workers)
    };
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, samples: &[(&str, u64)]| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    metric(
        "vectron_pd_is_leader",
        "gauge",
        "1 on the PD leader, 0 elsewhere.",
        &[("", u64::from(leader))],
    );
    metric(
        "vectron_pd_moves_started_total",
        "counter",
        "Replica moves this node's scheduler started.",
        &[("", scheduler.started.load(Ordering::Relaxed))],
    );
    metric(
        "vectron_pd_moves_finished_total",
        "counter",
        "Replica moves this node's scheduler saw complete.",
        &[("", scheduler.finished.load(Ordering::Relaxed))],
    );
    metric(
        "vectron_pd_moves_failed_total",
        "counter",
        "Replica moves this node's scheduler rolled back.",
        &[("", scheduler.failed.load(Ordering::Relaxed))],
    );
    metric(
        "vectron_pd_moves_running",
        "gauge",
        "Replica moves under way (replicated state).",
        &[("", running as u64)],
    );
    metric(
        "vectron_pd_under_replicated_shards",
        "gauge",
        "Shards with fewer live voters than their replication factor (leader only).",
        &[("", scheduler.under_replicated.load(Ordering::Relaxed))],
    );
    metric(
        "vectron_pd_workers",
        "gauge",
        "Registered workers by state.",
        &[
            ("{state=\"up\"}", workers[0]),
            ("{state=\"draining\"}", workers[1]),
            ("{state=\"down\"}", workers[2]),
            ("{state=\"removed\"}", workers[3]),
        ],
    );
    out
}

/// The router serving `GET /metrics`.
pub fn router(core: Arc<PdCore>) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(|State(core): State<Arc<PdCore>>| async move {
                (
                    [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                    render(&core),
                )
                    .into_response()
            }),
        )
        .with_state(core)
}
