//! Starting, killing and restarting real `vectron pd` processes on loopback
//! for tests and benchmarks. Every process is killed and every temp dir
//! removed when the cluster value is dropped, even when a test panics; every
//! wait is bounded.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;
use vectron_pd::{PdClient, PdClientOptions};
use vectron_proto::pd::v1 as pb;
use vectron_proto::pd::v1::placement_driver_client::PlacementDriverClient;

/// The directory holding the suite's CA and one certificate per role
/// (`pd`, `worker`, `auth`, `gateway`, `admin`), made once per test process
/// under cargo's per-target temporary directory. The first call also makes
/// `admin` this process's internal identity, so the tests' own PD and
/// worker clients speak mutual TLS to the processes they start.
pub fn suite_pki() -> &'static Path {
    use std::sync::OnceLock;
    use vectron_tls::Role;
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("suite-pki");
        vectron_tls::local_pki(
            &dir,
            &[
                ("pd", &[Role::Pd]),
                ("worker", &[Role::Worker]),
                ("auth", &[Role::Auth]),
                ("gateway", &[Role::Gateway]),
                ("admin", &[Role::Admin]),
            ],
        )
        .expect("the suite's certificates");
        let admin = vectron_tls::Identity::load(vectron_tls::TlsFiles::in_dir(&dir, "admin"))
            .expect("the suite's admin identity");
        // Another harness in this process may have installed it already.
        let _ = vectron_tls::install(vectron_tls::Security::Mutual(std::sync::Arc::new(admin)));
        dir
    })
}

/// The internal-TLS flags for a `vectron <role>` child with the suite
/// certificate of that role.
pub fn identity_flags(role: &str) -> Vec<String> {
    vectron::internal_tls::child_flags(suite_pki(), role)
}

/// Puts the suite's CA into `<data_dir>/tls` so that `vectron dev` or
/// `vectron playground` over `data_dir` issues its certificates from it
/// and trusts the suite's admin certificate.
pub fn seed_ca(data_dir: &Path) {
    let pki = suite_pki();
    let tls = data_dir.join("tls");
    std::fs::create_dir_all(&tls).expect("tls dir");
    for file in ["ca.pem", "ca.key"] {
        std::fs::copy(pki.join(file), tls.join(file)).expect("copy the suite CA");
    }
}

/// The flags a `vectron <args>` child needs for internal TLS: a server role
/// gets the suite certificate of its role; `dev` and `playground` get the
/// suite CA seeded into their data dir.
fn internal_tls_for(args: &[String]) -> Vec<String> {
    match args.first().map(String::as_str) {
        Some(role @ ("pd" | "worker" | "auth" | "gateway")) => identity_flags(role),
        Some("dev" | "playground") => {
            if let Some(dir) = args
                .iter()
                .position(|a| a == "--data-dir")
                .and_then(|i| args.get(i + 1))
            {
                seed_ca(Path::new(dir));
            }
            Vec::new()
        }
        _ => Vec::new(),
    }
}

/// A channel to the internal server of role `peer` at `addr`, with this
/// process's identity.
pub async fn internal_channel(
    addr: &str,
    peer: vectron_tls::Role,
) -> Option<tonic::transport::Channel> {
    suite_pki();
    vectron_proto::channel::internal_endpoint(addr, peer, Duration::from_secs(2))
        .ok()?
        .connect()
        .await
        .ok()
}

/// A client of the worker at `addr`, with room for large batches and results.
pub async fn worker_client(
    addr: &str,
) -> Option<vectron_proto::worker::v1::worker_client::WorkerClient<tonic::transport::Channel>> {
    internal_channel(addr, vectron_tls::Role::Worker)
        .await
        .map(vectron_proto::worker::v1::worker_client::WorkerClient::new)
        .map(|c| {
            c.max_decoding_message_size(64 * 1024 * 1024)
                .max_encoding_message_size(64 * 1024 * 1024)
        })
}

/// A loopback port that was free a moment ago, below Linux's ephemeral
/// range (32768 and up) so that no outgoing connection takes it before the
/// process it is meant for binds it. Ports are handed out in turn from a
/// per-process starting point, so two calls never return the same one.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = std::process::id().wrapping_mul(2_654_435_761) % 8_000;
    for _ in 0..8_000 {
        let offset = (start + NEXT.fetch_add(1, Ordering::Relaxed)) % 8_000;
        // 24000..32000: below the ephemeral range, above the playground
        // blocks' usual start.
        let port = 24_000 + offset as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a loopback port")
}

/// Polls `check` every 100 ms until it returns `Some` or `timeout` passes.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A `vectron` child process with its stderr appended to a log file.
pub struct VectronProcess {
    log: PathBuf,
    child: Option<Child>,
}

impl VectronProcess {
    /// A stopped process logging to `log`.
    pub fn new(log: PathBuf) -> Self {
        Self { log, child: None }
    }

    /// Starts `vectron <args>`.
    pub fn spawn<I, S>(&mut self, args: I)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        assert!(
            self.child.is_none(),
            "{} already running",
            self.log.display()
        );
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open process log");
        let args: Vec<String> = args
            .into_iter()
            .map(|a| a.as_ref().to_string_lossy().into_owned())
            .collect();
        let tls = internal_tls_for(&args);
        let child = Command::new(env!("CARGO_BIN_EXE_vectron"))
            .args(&args)
            .args(tls)
            .env("RUST_LOG", "info,openraft=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn vectron");
        self.child = Some(child);
    }

    /// kill -9 and reap.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Whether the process is running.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// The whole log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The first panics and the last lines of the log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = self.log();
        let lines: Vec<&str> = text.lines().collect();
        let panics = lines.iter().filter(|l| l.contains("panicked at")).take(3);
        let tail = &lines[lines.len().saturating_sub(30)..];
        panics.chain(tail).copied().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for VectronProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// One `vectron pd` process (running or stopped).
pub struct PdNode {
    /// Raft node id.
    pub id: u64,
    /// Loopback address.
    pub addr: String,
    /// Data directory.
    pub data_dir: PathBuf,
    bootstrap: Vec<String>,
    extra: Vec<String>,
    process: VectronProcess,
}

impl PdNode {
    fn spawn(&mut self) {
        let mut args: Vec<std::ffi::OsString> =
            vec!["pd".into(), "--node-id".into(), self.id.to_string().into()];
        args.extend([
            "--addr".into(),
            self.addr.clone().into(),
            "--data-dir".into(),
            self.data_dir.clone().into(),
        ]);
        args.extend(self.bootstrap.iter().chain(&self.extra).map(Into::into));
        self.process.spawn(args);
    }

    /// kill -9 and reap.
    pub fn kill9(&mut self) {
        self.process.kill9();
    }

    /// Whether the process is running.
    pub fn is_running(&self) -> bool {
        self.process.is_running()
    }

    /// The node's log so far (for failure messages).
    pub fn log_tail(&self) -> String {
        self.process.log_tail()
    }

    /// A client that only knows this node (it still follows leader hints).
    pub fn client(&self) -> PdClient {
        suite_pki();
        PdClient::with_options(
            std::slice::from_ref(&self.addr),
            PdClientOptions {
                deadline: Duration::from_secs(20),
                ..PdClientOptions::default()
            },
        )
        .expect("valid address")
    }

    /// This node's own view of the cluster (answered locally).
    pub async fn members(&self) -> Option<pb::GetMembersResponse> {
        let mut client =
            PlacementDriverClient::new(internal_channel(&self.addr, vectron_tls::Role::Pd).await?);
        let request = tonic::Request::new(pb::GetMembersRequest {});
        tokio::time::timeout(Duration::from_secs(2), client.get_members(request))
            .await
            .ok()?
            .ok()
            .map(|r| r.into_inner())
    }
}

/// A PD cluster of real processes in a temp dir.
pub struct PdCluster {
    /// The nodes by position (node id = position + 1).
    pub nodes: Vec<PdNode>,
    dir: TempDir,
    extra: Vec<String>,
    founders: String,
}

impl PdCluster {
    /// Starts `n` nodes founding one cluster; `extra` flags go to every node.
    pub fn start(n: u64, extra: &[&str]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("vectron-pd-test")
            .tempdir()
            .expect("temp dir");
        let addrs: BTreeMap<u64, String> = (1..=n)
            .map(|id| (id, format!("127.0.0.1:{}", free_port())))
            .collect();
        let members = addrs
            .iter()
            .map(|(id, addr)| format!("{id}={addr}"))
            .collect::<Vec<_>>()
            .join(",");
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let mut cluster = Self {
            nodes: Vec::new(),
            dir,
            extra,
            founders: members.clone(),
        };
        for (id, addr) in addrs {
            let node =
                cluster.new_node(id, addr, vec!["--initial-members".into(), members.clone()]);
            cluster.nodes.push(node);
        }
        for node in &mut cluster.nodes {
            node.spawn();
        }
        cluster
    }

    fn new_node(&self, id: u64, addr: String, bootstrap: Vec<String>) -> PdNode {
        PdNode {
            id,
            addr,
            data_dir: self.dir.path().join(format!("pd-{id}")),
            bootstrap,
            extra: self.extra.clone(),
            process: VectronProcess::new(self.dir.path().join(format!("pd-{id}.log"))),
        }
    }

    /// Starts a new node that joins through `via`; returns its position.
    pub fn join(&mut self, id: u64, via: &str) -> usize {
        let addr = format!("127.0.0.1:{}", free_port());
        let mut node = self.new_node(id, addr, vec!["--join".into(), via.to_owned()]);
        node.spawn();
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    /// Starts a new node given the founders' `--initial-members` (as a
    /// StatefulSet pod added after them is); returns its position.
    pub fn add_after_founders(&mut self, id: u64) -> usize {
        let addr = format!("127.0.0.1:{}", free_port());
        let bootstrap = vec!["--initial-members".into(), self.founders.clone()];
        let mut node = self.new_node(id, addr, bootstrap);
        node.spawn();
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    /// The node at `position`.
    pub fn node(&mut self, position: usize) -> &mut PdNode {
        &mut self.nodes[position]
    }

    /// Restarts a stopped node with its data dir as it is.
    pub fn restart(&mut self, position: usize) {
        self.nodes[position].spawn();
    }

    /// Deletes a stopped node's data dir.
    pub fn wipe(&mut self, position: usize) {
        let node = &self.nodes[position];
        assert!(!node.is_running(), "stop node {} before wiping it", node.id);
        let _ = std::fs::remove_dir_all(&node.data_dir);
    }

    /// All endpoints of running nodes.
    pub fn endpoints(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|n| n.is_running())
            .map(|n| n.addr.clone())
            .collect()
    }

    /// A client over every running node.
    pub fn client(&self) -> PdClient {
        suite_pki();
        PdClient::with_options(
            &self.endpoints(),
            PdClientOptions {
                deadline: Duration::from_secs(30),
                ..PdClientOptions::default()
            },
        )
        .expect("valid addresses")
    }

    /// Waits until every running node agrees on one leader that calls itself
    /// leader; returns the leader's position.
    pub async fn wait_for_leader(&self, timeout: Duration) -> usize {
        let running: Vec<&PdNode> = self.nodes.iter().filter(|n| n.is_running()).collect();
        let leader_id = wait_for("a single agreed PD leader", timeout, || async {
            let mut views = Vec::new();
            for node in &running {
                views.push(node.members().await?);
            }
            let leader = views.first()?.leader_id;
            let agreed = leader != 0 && views.iter().all(|v| v.leader_id == leader);
            let leaders_claimed = views
                .iter()
                .filter(|v| v.node_id == leader && v.leader_id == v.node_id)
                .count();
            (agreed && leaders_claimed == 1).then_some(leader)
        })
        .await;
        self.nodes
            .iter()
            .position(|n| n.id == leader_id)
            .expect("leader is one of ours")
    }

    /// Log tails of every node, for assertion messages.
    pub fn logs(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("--- pd-{} ---\n{}", n.id, n.log_tail()))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The temp dir holding every node's data.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for PdCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.kill9();
        }
        if std::thread::panicking() {
            eprintln!("PD logs of the failed test:\n{}", self.logs());
        }
    }
}

static PROCESS_TESTS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Serialises process tests: several Raft clusters at once on a 2-core
/// machine would make elections flap and timings meaningless.
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    PROCESS_TESTS.lock().await
}

/// One `vectron worker` process (running or stopped).
pub struct WorkerProc {
    /// Registration name.
    pub name: String,
    /// Loopback address.
    pub addr: String,
    /// Data directory.
    pub data_dir: PathBuf,
    pd_endpoints: String,
    /// Extra flags passed at every start.
    pub extra: Vec<String>,
    process: VectronProcess,
}

impl WorkerProc {
    /// A worker named `name` with its data under `dir`, not yet started.
    pub fn new(dir: &Path, name: &str, pd_endpoints: &[String]) -> Self {
        Self::labelled(dir, name, name, pd_endpoints)
    }

    /// A worker registering as `name` whose data dir and log under `dir`
    /// are named `label` (for a second process under one name).
    pub fn labelled(dir: &Path, name: &str, label: &str, pd_endpoints: &[String]) -> Self {
        Self {
            name: name.to_owned(),
            addr: format!("127.0.0.1:{}", free_port()),
            data_dir: dir.join(label),
            pd_endpoints: pd_endpoints.join(","),
            extra: Vec::new(),
            process: VectronProcess::new(dir.join(format!("{label}.log"))),
        }
    }

    /// Starts the process.
    pub fn spawn(&mut self) {
        let mut args: Vec<std::ffi::OsString> =
            vec!["worker".into(), "--name".into(), self.name.clone().into()];
        args.extend(["--addr".into(), self.addr.clone().into()]);
        args.extend(["--pd-endpoints".into(), self.pd_endpoints.clone().into()]);
        args.extend(["--data-dir".into(), self.data_dir.clone().into()]);
        args.extend(self.extra.iter().map(Into::into));
        self.process.spawn(args);
    }

    /// kill -9 and reap.
    pub fn kill9(&mut self) {
        self.process.kill9();
    }

    /// The worker's whole log.
    pub fn log(&self) -> String {
        self.process.log()
    }

    /// The first panics and last lines of the worker's log.
    pub fn log_tail(&self) -> String {
        self.process.log_tail()
    }
}

impl Drop for WorkerProc {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            eprintln!("--- {} ---\n{}", self.name, self.log_tail());
        }
    }
}
