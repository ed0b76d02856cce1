//! A real Kubernetes control plane for the operator's tests: the
//! `e2e/apiserver` program (etcd, kube-apiserver and
//! kube-controller-manager in one process on loopback, with `kubectl` and
//! `helm` built in as subcommands), started once per test.
//!
//! `scripts/test.sh` builds the program and names it in
//! `VECTRON_APISERVER_BIN`; the tests that need it are `#[ignore]`d so a
//! plain `cargo test` reports them as not run rather than passed. Every
//! wait is bounded. Dropping a [`ControlPlane`] stops the process (SIGTERM,
//! then SIGKILL after a bounded wait) and removes its directory, also when
//! the test panics.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};

/// Environment variable naming the built `e2e/apiserver` program.
pub const BINARY_ENV: &str = "VECTRON_APISERVER_BIN";

/// How long the control plane may take to print READY.
const START_TIMEOUT: Duration = Duration::from_secs(180);
/// How long a `kubectl` or `helm` command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// One running control plane.
pub struct ControlPlane {
    binary: PathBuf,
    child: Child,
    kubeconfig: PathBuf,
    log: PathBuf,
    // Holds the working dir (and the log) until the plane is stopped.
    _dir: tempfile::TempDir,
}

impl ControlPlane {
    /// Starts a control plane and waits for READY.
    ///
    /// # Panics
    /// When `VECTRON_APISERVER_BIN` is unset or the plane does not become
    /// ready in time (with the tail of its log).
    pub fn start() -> Self {
        let binary = PathBuf::from(std::env::var_os(BINARY_ENV).unwrap_or_else(|| {
            panic!(
                "{BINARY_ENV} is not set: these tests need the real control plane that \
                 scripts/test.sh builds from e2e/apiserver"
            )
        }));
        let dir = tempfile::tempdir().expect("a temp dir");
        let log = dir.path().join("control-plane.log");
        let mut child = Command::new(&binary)
            .arg("--dir")
            .arg(dir.path().join("plane"))
            .arg("--log-file")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let (lines, received) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        let mut plane = ControlPlane {
            binary,
            child,
            kubeconfig: PathBuf::new(),
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match received.recv_timeout(left) {
                Ok(line) if line == "READY" => break,
                Ok(line) => {
                    if let Some(path) = line.strip_prefix("KUBECONFIG=") {
                        plane.kubeconfig = PathBuf::from(path);
                    }
                }
                Err(_) => panic!(
                    "the control plane did not become ready within {START_TIMEOUT:?}:\n{}",
                    plane.log_tail()
                ),
            }
        }
        assert!(
            plane.kubeconfig.is_file(),
            "READY without a KUBECONFIG line"
        );
        plane
    }

    /// The admin kubeconfig (`system:masters`).
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// An admin client.
    pub async fn client(&self) -> Client {
        client_from(&self.kubeconfig).await
    }

    /// Runs the built-in `kubectl` with the admin kubeconfig.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.run("kubectl", args, &[])
    }

    /// Runs the built-in `helm` with the admin kubeconfig; its cache,
    /// config and data dirs stay inside the plane's directory.
    pub fn helm(&self, args: &[&str]) -> Output {
        let home = self._dir.path().join("helm");
        let envs = [
            ("HELM_CACHE_HOME", home.join("cache")),
            ("HELM_CONFIG_HOME", home.join("config")),
            ("HELM_DATA_HOME", home.join("data")),
        ];
        self.run("helm", args, &envs)
    }

    fn run(&self, tool: &str, args: &[&str], envs: &[(&str, PathBuf)]) -> Output {
        let mut command = Command::new(&self.binary);
        command
            .arg(tool)
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig);
        for (key, value) in envs {
            command.env(key, value);
        }
        run_bounded(command, COMMAND_TIMEOUT)
            .unwrap_or_else(|e| panic!("{tool} {}: {e}", args.join(" ")))
    }

    /// The last lines of the control plane's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        stop(&mut self.child, Duration::from_secs(30));
    }
}

/// A client for `kubeconfig`.
pub async fn client_from(kubeconfig: &Path) -> Client {
    vectron_tls::install_default_crypto_provider();
    let config = Kubeconfig::read_from(kubeconfig).expect("a readable kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(config, &KubeConfigOptions::default())
        .await
        .expect("a usable kubeconfig");
    Client::try_from(config).expect("a client")
}

/// Sends SIGTERM, waits up to `grace`, then kills.
pub fn stop(child: &mut Child, grace: Duration) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Runs `command` to completion within `timeout`, capturing its output;
/// kills it and answers an error when it takes longer.
pub fn run_bounded(mut command: Command, timeout: Duration) -> Result<Output, String> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start: {e}"))?;
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut out = Vec::new();
            let _ = pipe.read_to_end(&mut out);
            out
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("piped stdout")));
    let stderr = drain(Box::new(child.stderr.take().expect("piped stderr")));
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("still running after {timeout:?}"));
            }
            Err(e) => return Err(e.to_string()),
        }
    };
    Ok(Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

/// `output`'s stdout when it succeeded; panics with both streams when not.
pub fn succeeded(what: &str, output: &Output) -> String {
    assert!(
        output.status.success(),
        "{what} failed ({}):\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `output`'s stderr when it failed; panics when it succeeded.
pub fn failed(what: &str, output: &Output) -> String {
    assert!(
        !output.status.success(),
        "{what} succeeded but should have been refused:\n{}",
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}
