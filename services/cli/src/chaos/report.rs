//! The figures of a chaos run and its verdict: what passed, what failed and
//! why, printed as a table and as JSON. No I/O.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

use super::history::{OpKind, Outcome, Record};
use super::verify::{LostWrite, percentiles};

/// Everything a run measured.
pub struct Report {
    /// The seed.
    pub seed: u64,
    /// The fault mix.
    pub mix: String,
    /// Fault cycles run.
    pub cycles: u32,
    /// Length of the faulty phase.
    pub elapsed: Duration,
    /// Every operation.
    pub records: Vec<Record>,
    /// Faults injected, by kind.
    pub fault_counts: BTreeMap<String, u32>,
    /// The checker's verdict.
    pub linearizable: bool,
    /// What the checker printed.
    pub checker_said: String,
    /// Acknowledged writes whose effect vanished.
    pub lost: Vec<LostWrite>,
    /// Whether replicas converged, or why not.
    pub convergence: Result<Duration, String>,
    /// Time from the last heal until the replicas matched.
    pub converged_after: Option<Duration>,
    /// Keys whose point was not its own top hit.
    pub search_misses: Vec<String>,
    /// Seconds from each shard-leader kill to the next acknowledged write to
    /// that shard.
    pub shard_failovers: Vec<f64>,
    /// Seconds from each PD-leader kill to the next collection created.
    pub pd_failovers: Vec<f64>,
    /// Crash points armed, by name: (times armed, times fired).
    pub crash_points: BTreeMap<String, (u32, u32)>,
    /// Where the history was written.
    pub history_path: PathBuf,
}

impl Report {
    fn count(&self, op: Option<OpKind>, outcome: Outcome) -> usize {
        self.records
            .iter()
            .filter(|r| op.is_none_or(|o| r.op == o) && r.outcome == outcome)
            .count()
    }

    /// Why the run failed; empty when it passed.
    pub fn failures(&self) -> Vec<String> {
        let mut failures = Vec::new();
        if !self.linearizable {
            failures.push(format!("not linearizable: {}", self.checker_said));
        }
        if !self.lost.is_empty() {
            failures.push(format!("{} acknowledged writes lost", self.lost.len()));
        }
        if let Err(reason) = &self.convergence {
            failures.push(reason.clone());
        }
        if !self.search_misses.is_empty() {
            failures.push(format!(
                "{} points not found by their own vector",
                self.search_misses.len()
            ));
        }
        failures
    }

    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.failures().is_empty()
    }

    /// The figures as a table.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let line = |out: &mut String, name: &str, value: String| {
            out.push_str(&format!("  {name:<34} {value}\n"));
        };
        out.push_str(&format!(
            "chaos run: mix {}, {} cycles, seed {}, {:.1} s of faults\n",
            self.mix,
            self.cycles,
            self.seed,
            self.elapsed.as_secs_f64()
        ));
        line(&mut out, "operations", self.records.len().to_string());
        for (name, op) in [
            ("puts", OpKind::Put),
            ("gets", OpKind::Get),
            ("deletes", OpKind::Delete),
        ] {
            line(
                &mut out,
                &format!("  {name} ok / failed / unknown"),
                format!(
                    "{} / {} / {}",
                    self.count(Some(op), Outcome::Ok),
                    self.count(Some(op), Outcome::Failed),
                    self.count(Some(op), Outcome::Unknown)
                ),
            );
        }
        let faults = self
            .fault_counts
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ");
        line(&mut out, "faults", faults);
        line(
            &mut out,
            "linearizability violations",
            format!("{} ({})", u8::from(!self.linearizable), self.checker_said),
        );
        line(
            &mut out,
            "lost acknowledged writes",
            self.lost.len().to_string(),
        );
        for lost in self.lost.iter().take(10) {
            line(
                &mut out,
                "  lost",
                format!(
                    "key {}: {} (final {})",
                    lost.key, lost.write, lost.final_state
                ),
            );
        }
        line(
            &mut out,
            "convergence after the last heal",
            match (&self.convergence, self.converged_after) {
                (Ok(_), Some(after)) => format!("{:.1} s", after.as_secs_f64()),
                (Err(reason), _) => format!("FAILED: {reason}"),
                _ => "unknown".into(),
            },
        );
        line(
            &mut out,
            "points not their own top-1",
            self.search_misses.len().to_string(),
        );
        let (p50, p99, max) = percentiles(&self.shard_failovers);
        line(
            &mut out,
            "shard leader kill -> next write",
            format!(
                "p50 {p50:.2} s, p99 {p99:.2} s, max {max:.2} s over {} kills",
                self.shard_failovers.len()
            ),
        );
        let (p50, p99, max) = percentiles(&self.pd_failovers);
        line(
            &mut out,
            "PD leader kill -> next PD write",
            format!(
                "p50 {p50:.2} s, p99 {p99:.2} s, max {max:.2} s over {} kills",
                self.pd_failovers.len()
            ),
        );
        if !self.crash_points.is_empty() {
            let armed: u32 = self.crash_points.values().map(|(a, _)| a).sum();
            let fired: u32 = self.crash_points.values().map(|(_, f)| f).sum();
            line(
                &mut out,
                "crash points fired",
                format!("{fired} of {armed} armed"),
            );
            for (name, (armed, fired)) in &self.crash_points {
                line(
                    &mut out,
                    "  crash point",
                    format!("{name}: {fired}/{armed}"),
                );
            }
        }
        line(&mut out, "history", self.history_path.display().to_string());
        out.push_str(if self.passed() {
            "PASSED\n"
        } else {
            "FAILED\n"
        });
        out
    }

    /// The figures as JSON.
    pub fn to_json(&self) -> Value {
        let (shard_p50, shard_p99, shard_max) = percentiles(&self.shard_failovers);
        let (pd_p50, pd_p99, pd_max) = percentiles(&self.pd_failovers);
        json!({
            "seed": self.seed,
            "mix": self.mix,
            "cycles": self.cycles,
            "operations": self.records.len(),
            "ok": self.count(None, Outcome::Ok),
            "failed": self.count(None, Outcome::Failed),
            "unknown": self.count(None, Outcome::Unknown),
            "faults": self.fault_counts,
            "linearizable": self.linearizable,
            "lost_writes": self.lost.len(),
            "converged_after_s": self.converged_after.map(|d| d.as_secs_f64()),
            "search_misses": self.search_misses.len(),
            "shard_failover_s": {"p50": shard_p50, "p99": shard_p99, "max": shard_max, "n": self.shard_failovers.len()},
            "pd_failover_s": {"p50": pd_p50, "p99": pd_p99, "max": pd_max, "n": self.pd_failovers.len()},
            "crash_points": self.crash_points.iter().map(|(name, (armed, fired))| {
                (name.clone(), json!({"armed": armed, "fired": fired}))
            }).collect::<serde_json::Map<String, Value>>(),
            "passed": self.passed(),
        })
    }
}
