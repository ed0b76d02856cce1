//! A cluster's PD and workers as real `vectron` processes on loopback,
//! standing in for the pods an API server without a kubelet never runs:
//! one PD node and workers named like the worker StatefulSet's pods
//! (`<cluster>-worker-N`), with plaintext internal traffic (the cluster's
//! `internalTls` is `Disabled`). [`LocalPd::follow`] plays the kubelet:
//! a worker runs exactly while its ordinal is below the StatefulSet's
//! replica count. Every process stops, and the data dirs go, on drop.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use vectron_operator::placement::{GrpcPlacement, PdAccess, PdSecurity};

use crate::control_plane::stop;

/// The `vectron` binary cargo built beside this test (the workspace tests
/// build it; `cargo build -p vectron` does too).
fn vectron() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir");
    let binary = dir.join("vectron");
    assert!(
        binary.exists(),
        "{} is missing: build it first (cargo build -p vectron)",
        binary.display()
    );
    binary
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// PD and workers of cluster `cluster` on loopback.
pub struct LocalPd {
    cluster: String,
    dir: tempfile::TempDir,
    /// PD's `host:port`.
    pub addr: String,
    pd: Option<Child>,
    workers: BTreeMap<i32, Child>,
}

impl LocalPd {
    /// Starts PD and workers `0..workers`.
    pub fn start(cluster: &str, workers: i32) -> Self {
        let mut local = LocalPd {
            cluster: cluster.to_owned(),
            dir: tempfile::tempdir().expect("temp dir"),
            addr: format!("127.0.0.1:{}", free_port()),
            pd: None,
            workers: BTreeMap::new(),
        };
        local.start_pd();
        local.follow(workers);
        local
    }

    fn spawn(&self, name: &str, args: &[String]) -> Child {
        let log = std::fs::File::create(self.dir.path().join(format!("{name}.log"))).expect("log");
        Command::new(vectron())
            .arg("--insecure-internal")
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"))
    }

    /// Starts PD (again, on the same address and data).
    pub fn start_pd(&mut self) {
        let args = [
            "pd".to_owned(),
            "--node-id".into(),
            "1".into(),
            "--addr".into(),
            self.addr.clone(),
            "--initial-members".into(),
            format!("1={}", self.addr),
            "--data-dir".into(),
            self.dir.path().join("pd").display().to_string(),
        ];
        self.pd = Some(self.spawn("pd", &args));
    }

    /// Stops PD (SIGTERM, then SIGKILL).
    pub fn stop_pd(&mut self) {
        if let Some(mut pd) = self.pd.take() {
            stop(&mut pd, Duration::from_secs(10));
        }
    }

    /// The kubelet's part: workers with an ordinal below `replicas` run,
    /// the others are stopped (their data stays, as a volume would).
    pub fn follow(&mut self, replicas: i32) {
        let gone: Vec<i32> = self
            .workers
            .keys()
            .copied()
            .filter(|n| *n >= replicas)
            .collect();
        for ordinal in gone {
            if let Some(mut worker) = self.workers.remove(&ordinal) {
                stop(&mut worker, Duration::from_secs(10));
            }
        }
        for ordinal in 0..replicas {
            if self.workers.contains_key(&ordinal) {
                continue;
            }
            let name = format!("{}-worker-{ordinal}", self.cluster);
            let args = [
                "worker".to_owned(),
                "--name".into(),
                name.clone(),
                "--addr".into(),
                format!("127.0.0.1:{}", free_port()),
                "--pd-endpoints".into(),
                self.addr.clone(),
                "--data-dir".into(),
                self.dir.path().join(&name).display().to_string(),
            ];
            let child = self.spawn(&name, &args);
            self.workers.insert(ordinal, child);
        }
    }

    /// A PD client of the kind the operator uses.
    pub fn placement(&self) -> GrpcPlacement {
        GrpcPlacement::new(&PdAccess {
            endpoint: self.addr.clone(),
            security: PdSecurity::Plaintext,
        })
    }

    /// The last lines of every process's log, for a failure message.
    pub fn logs(&self) -> String {
        let mut text = String::new();
        let mut names = vec!["pd".to_owned()];
        names.extend((0..8).map(|n| format!("{}-worker-{n}", self.cluster)));
        for name in names {
            let Ok(log) = std::fs::read_to_string(self.dir.path().join(format!("{name}.log")))
            else {
                continue;
            };
            let lines: Vec<&str> = log.lines().collect();
            let tail = lines[lines.len().saturating_sub(15)..].join("\n");
            text.push_str(&format!("--- {name}\n{tail}\n"));
        }
        text
    }
}

impl Drop for LocalPd {
    fn drop(&mut self) {
        for worker in self.workers.values_mut() {
            stop(worker, Duration::from_secs(10));
        }
        self.stop_pd();
    }
}
