//! Harness for whole-system tests: `vectron dev` and `vectron playground` as
//! real child processes on free loopback ports, with clients for their
//! gateway. Processes are stopped and temp dirs removed on drop, even when a
//! test panics; every wait is bounded.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;
use vectron_client::Client;

use crate::harness::{VectronProcess, free_port};

/// Polls the gateway at `client` until `/readyz` answers 200.
pub async fn wait_ready(client: &Client, timeout: Duration, logs: impl Fn() -> String) {
    let start = Instant::now();
    while !client.ready().await {
        assert!(
            start.elapsed() < timeout,
            "gateway not ready after {timeout:?}; log tail:\n{}",
            logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A `vectron dev` process over a temp data dir.
pub struct DevServer {
    dir: TempDir,
    /// REST base URL.
    pub http: String,
    /// gRPC address.
    pub grpc: String,
    args: Vec<String>,
    process: VectronProcess,
}

/// The admin password `DevServer::start_with_auth` bootstraps.
pub const ADMIN_PASSWORD: &str = "correct-horse-battery";

impl DevServer {
    /// Starts `vectron dev` (auth off) and waits until it is ready.
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// Starts `vectron dev --auth` with the admin password bootstrapped.
    pub async fn start_with_auth() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let password_file = dir.path().join("admin-password");
        std::fs::write(&password_file, ADMIN_PASSWORD).expect("write password file");
        let file = password_file.display().to_string();
        Self::start_in(dir, &["--auth", "--admin-password-file", &file]).await
    }

    /// Starts `vectron dev <extra>`.
    pub async fn start_with(extra: &[&str]) -> Self {
        Self::start_in(tempfile::tempdir().expect("temp dir"), extra).await
    }

    /// Starts `vectron dev <extra>` without waiting for it to be ready (a
    /// caller that cannot use the plaintext client, e.g. with TLS on).
    pub fn start_unready(dir: TempDir, extra: &[&str]) -> Self {
        let http_addr = format!("127.0.0.1:{}", free_port());
        let grpc = format!("127.0.0.1:{}", free_port());
        let mut args = vec![
            "dev".to_owned(),
            "--data-dir".to_owned(),
            dir.path().join("data").display().to_string(),
            "--http-addr".to_owned(),
            http_addr.clone(),
            "--grpc-addr".to_owned(),
            grpc.clone(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut process = VectronProcess::new(dir.path().join("dev.log"));
        process.spawn(&args);
        Self {
            http: format!("http://{http_addr}"),
            grpc,
            args,
            process,
            dir,
        }
    }

    async fn start_in(dir: TempDir, extra: &[&str]) -> Self {
        let http_addr = format!("127.0.0.1:{}", free_port());
        let grpc = format!("127.0.0.1:{}", free_port());
        let mut args = vec![
            "dev".to_owned(),
            "--data-dir".to_owned(),
            dir.path().join("data").display().to_string(),
            "--http-addr".to_owned(),
            http_addr.clone(),
            "--grpc-addr".to_owned(),
            grpc.clone(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let process = VectronProcess::new(dir.path().join("dev.log"));
        let mut server = Self {
            http: format!("http://{http_addr}"),
            grpc,
            args,
            process,
            dir,
        };
        server.spawn().await;
        server
    }

    async fn spawn(&mut self) {
        self.process.spawn(&self.args);
        let client = self.client();
        wait_ready(&client, Duration::from_secs(90), || self.process.log_tail()).await;
    }

    /// kill -9, then start again over the same data dir and wait for ready.
    pub async fn kill9_and_restart(&mut self) {
        self.process.kill9();
        self.spawn().await;
    }

    /// A client without credentials.
    pub fn client(&self) -> Client {
        Client::new(&self.http).expect("client")
    }

    /// The peak resident memory of the `vectron dev` process so far, in
    /// KiB (VmHWM; Linux only).
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let pid = self.process.pid()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// The data dir.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The log's last lines.
    pub fn log_tail(&self) -> String {
        self.process.log_tail()
    }
}

impl Drop for DevServer {
    fn drop(&mut self) {
        self.process.kill9();
        if std::thread::panicking() {
            eprintln!("--- vectron dev ---\n{}", self.process.log_tail());
        }
    }
}

/// One child process of a playground, as it printed it.
#[derive(Debug, Clone)]
pub struct PlaygroundChild {
    /// `pd-1`, `worker-2`, `gateway`, ...
    pub name: String,
    /// Its address.
    pub addr: String,
    /// Its PID.
    pub pid: u32,
}

/// A `vectron playground` process.
pub struct Playground {
    dir: TempDir,
    child: Child,
    /// REST base URL of the gateway.
    pub http: String,
    /// The children it reported.
    pub children: Vec<PlaygroundChild>,
}

/// A candidate first port of a playground's block, below Linux's ephemeral
/// range (32768 and up): there, an outgoing connection of the playground's
/// own processes cannot take a port of the block between the check and the
/// child's bind. Kept apart from `free_port`'s range.
fn port_block_candidate(attempt: u32) -> u16 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let seed =
        u64::from(std::process::id()) * 7_919 + u64::from(nanos) + u64::from(attempt) * 104_729;
    // 20000..23960: clear of `free_port`'s range and of the ephemeral one.
    20_000 + (seed % 3_960) as u16
}

fn ports_free(base: u16, span: u16) -> bool {
    (0..span).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok())
}

impl Playground {
    /// Starts `vectron playground --pd <pd> --workers <workers>` on a free
    /// port block and waits (bounded) until it prints that it is ready.
    pub fn start(pd: u32, workers: u32) -> Self {
        Self::start_with(pd, workers, &[])
    }

    /// Like [`Playground::start`], with extra `vectron playground` flags.
    pub fn start_with(pd: u32, workers: u32, extra: &[&str]) -> Self {
        Self::start_with_env(pd, workers, extra, &[])
    }

    /// Like [`Playground::start_with`], with environment variables every
    /// child inherits (e.g. `VECTRON_DOWN_TIMEOUT_SECS`).
    pub fn start_with_env(pd: u32, workers: u32, extra: &[&str], env: &[(&str, &str)]) -> Self {
        let base = (0..50)
            .map(port_block_candidate)
            .find(|&b| ports_free(b, 40))
            .expect("a free block of 40 loopback ports");
        let dir = tempfile::tempdir().expect("temp dir");
        crate::harness::seed_ca(&dir.path().join("pg"));
        let mut child = Command::new(env!("CARGO_BIN_EXE_vectron"))
            .args([
                "playground",
                "--pd",
                &pd.to_string(),
                "--workers",
                &workers.to_string(),
                "--base-port",
                &base.to_string(),
                "--data-dir",
                &dir.path().join("pg").display().to_string(),
            ])
            .args(extra)
            .envs(env.iter().copied())
            .env("RUST_LOG", "info,openraft=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(
                std::fs::File::create(dir.path().join("playground.log")).expect("log file"),
            ))
            .spawn()
            .expect("spawn vectron playground");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut playground = Self {
            dir,
            child,
            http: format!("http://127.0.0.1:{base}"),
            children: Vec::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.starts_with("Press Ctrl-C") => break,
                Ok(line) => {
                    let words: Vec<&str> = line.split_whitespace().collect();
                    if let [name, addr, "pid", pid] = words.as_slice() {
                        playground.children.push(PlaygroundChild {
                            name: name.to_string(),
                            addr: addr.to_string(),
                            pid: pid.parse().expect("numeric pid"),
                        });
                    }
                }
                Err(_) => panic!(
                    "playground did not become ready within 180 s:\n{}",
                    playground.logs()
                ),
            }
        }
        playground
    }

    /// The child named `name`.
    pub fn child(&self, name: &str) -> &PlaygroundChild {
        self.children
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no child {name} in {:?}", self.children))
    }

    /// PD addresses.
    pub fn pd_endpoints(&self) -> Vec<String> {
        self.children
            .iter()
            .filter(|c| c.name.starts_with("pd-"))
            .map(|c| c.addr.clone())
            .collect()
    }

    /// kill -9 of one child.
    pub fn kill9(&self, name: &str) {
        let pid = self.child(name).pid;
        let status = Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -9 {pid} ({name}) failed");
    }

    /// A client of the gateway.
    pub fn client(&self) -> Client {
        Client::new(&self.http).expect("client")
    }

    /// The playground's own log and the tails of its children's logs.
    pub fn logs(&self) -> String {
        let mut out =
            std::fs::read_to_string(self.dir.path().join("playground.log")).unwrap_or_default();
        let logs = self.dir.path().join("pg").join("logs");
        if let Ok(entries) = std::fs::read_dir(&logs) {
            for entry in entries.flatten() {
                let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                out.push_str(&format!(
                    "\n--- {} ---\n{}",
                    entry.path().display(),
                    lines[lines.len().saturating_sub(15)..].join("\n")
                ));
            }
        }
        out
    }

    /// The data dir of the playground.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Playground {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- playground logs ---\n{}", self.logs());
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        // Its children die with it (PR_SET_PDEATHSIG).
        let _ = self.child.wait();
        if std::thread::panicking() && std::env::var_os("VECTRON_TEST_KEEP_DIR").is_some() {
            let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("temp dir"));
            eprintln!(
                "kept the playground's data and logs in {}",
                dir.keep().display()
            );
        }
    }
}
