//! The cluster a chaos run breaks: `vectron pd` ×N, `vectron worker` ×M and
//! one `vectron gateway` as child processes of this binary on loopback,
//! each of which can be killed (-9) and restarted with the same arguments
//! and data, or paused (SIGSTOP) and resumed. Knows where the PD leader and
//! each shard's leader are. Every child dies with this process. Does process
//! and network I/O.
//!
//! Every PD node and worker sits behind its own fault-injecting proxy
//! ([`super::net`]): it listens on a private port, advertises the proxy's,
//! and opens its own connections from its own loopback address
//! (`127.10.0.<n>`), so the run can cut and slow links between members.

use std::fs::OpenOptions;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use vectron_tls::Role as TlsRole;

use tokio::process::{Child, Command};
use tokio::time::Instant;
use vectron_pd::{PdClient, PdClientOptions};
use vectron_proto::pd::v1 as pd;

use super::ChaosError;
use super::net::Network;

/// What a member of the cluster is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A placement-driver node.
    Pd,
    /// A worker.
    Worker,
    /// The gateway.
    Gateway,
}

/// One child process and how to start it again.
struct Member {
    name: String,
    role: Role,
    /// The address others reach it at (its proxy's, for PD and workers).
    addr: String,
    /// The address its own connections leave from.
    ip: IpAddr,
    args: Vec<String>,
    log: PathBuf,
    child: Option<Child>,
    paused: bool,
    /// `FAILPOINTS` of the running process (a crash point armed), if any.
    failpoints: Option<String>,
}

/// The shape of the cluster.
#[derive(Debug, Clone)]
pub struct ClusterSpec {
    /// PD nodes.
    pub pd: u32,
    /// Workers.
    pub workers: u32,
    /// First of [`PORT_BLOCK`] consecutive free loopback ports.
    pub base_port: u16,
    /// Raft election timeout bounds (ms) for PD and workers.
    pub election_ms: (u64, u64),
    /// Raft heartbeat interval (ms).
    pub heartbeat_ms: u64,
    /// Plant the stale-read bug in the gateway (the checker's self-test).
    pub plant_stale_reads: bool,
    /// Run internal traffic in plaintext (`--insecure-internal`); otherwise
    /// every member gets a certificate from a CA made in the run's `tls`
    /// directory and the runner's own clients use its `admin` certificate.
    pub insecure_internal: bool,
}

/// A running cluster.
pub struct Cluster {
    exe: PathBuf,
    members: Vec<Member>,
    /// REST base URL of the gateway.
    pub http: String,
    pd_endpoints: Vec<String>,
    pd_client: PdClient,
    gateway: vectron_client::Client,
    network: Network,
}

/// Consecutive loopback ports a run uses: the gateway's two at the base,
/// then PD proxies (+10), PD private ports (+20), worker proxies (+30) and
/// worker private ports (+40), nine of each at most.
pub const PORT_BLOCK: u16 = 50;

/// Most PD nodes or workers a run can have in its port block.
pub const MAX_MEMBERS_PER_ROLE: u32 = 9;

/// The loopback address the `n`th member's connections leave from.
fn member_ip(n: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 10, 0, (n % 250 + 1) as u8))
}

fn loopback(port: u32) -> Result<String, ChaosError> {
    u16::try_from(port)
        .map(|p| format!("127.0.0.1:{p}"))
        .map_err(|_| ChaosError::Cluster(format!("port {port} is out of range")))
}

impl Cluster {
    /// Starts every member under `dir` and waits (bounded) until all workers
    /// are registered and the gateway is ready.
    pub async fn start(spec: &ClusterSpec, dir: &Path) -> Result<Self, ChaosError> {
        let exe = std::env::current_exe()
            .map_err(|e| ChaosError::Cluster(format!("cannot find the vectron binary: {e}")))?;
        let logs = dir.join("logs");
        std::fs::create_dir_all(&logs)
            .map_err(|e| ChaosError::Cluster(format!("cannot create {}: {e}", logs.display())))?;
        let base = u32::from(spec.base_port);
        let http = loopback(base)?;
        let grpc = loopback(base + 1)?;
        let pd_addrs: Vec<String> = (1..=spec.pd)
            .map(|i| loopback(base + 10 + i))
            .collect::<Result<_, _>>()?;
        let members_flag = pd_addrs
            .iter()
            .enumerate()
            .map(|(i, a)| format!("{}={a}", i + 1))
            .collect::<Vec<_>>()
            .join(",");
        let pd_endpoints = pd_addrs.join(",");
        let timing = [
            "--raft-heartbeat-ms".to_owned(),
            spec.heartbeat_ms.to_string(),
            "--raft-election-min-ms".to_owned(),
            spec.election_ms.0.to_string(),
            "--raft-election-max-ms".to_owned(),
            spec.election_ms.1.to_string(),
        ];
        let tls_dir = dir.join("tls");
        if !spec.insecure_internal {
            let pd_names: Vec<String> = (1..=spec.pd).map(|i| format!("pd-{i}")).collect();
            let worker_names: Vec<String> =
                (1..=spec.workers).map(|j| format!("worker-{j}")).collect();
            let mut certs: Vec<(&str, &[TlsRole])> = vec![
                ("gateway", &[TlsRole::Gateway]),
                ("admin", &[TlsRole::Admin]),
            ];
            certs.extend(pd_names.iter().map(|n| (n.as_str(), &[TlsRole::Pd][..])));
            certs.extend(
                worker_names
                    .iter()
                    .map(|n| (n.as_str(), &[TlsRole::Worker][..])),
            );
            crate::internal_tls::install_local(&tls_dir, &certs, "admin")
                .map_err(|e| ChaosError::Cluster(e.to_string()))?;
        }
        let identity = |name: &str| -> Vec<String> {
            if spec.insecure_internal {
                vec!["--insecure-internal".to_owned()]
            } else {
                crate::internal_tls::child_flags(&tls_dir, name)
            }
        };
        let s = |v: &str| v.to_owned();
        let mut members = Vec::new();
        let mut proxies: Vec<(IpAddr, String, String)> = Vec::new();
        for (i, addr) in pd_addrs.iter().enumerate() {
            let id = i + 1;
            let private = loopback(base + 20 + id as u32)?;
            let ip = member_ip(members.len());
            let mut args = vec![
                s("pd"),
                s("--node-id"),
                id.to_string(),
                s("--addr"),
                private.clone(),
                s("--advertise-addr"),
                addr.clone(),
                s("--outbound-ip"),
                ip.to_string(),
                s("--initial-members"),
                members_flag.clone(),
                s("--data-dir"),
                dir.join(format!("pd-{id}")).display().to_string(),
                // Failures here are short; keep replicas where they are.
                s("--down-timeout-secs"),
                s("3600"),
            ];
            args.extend(timing.iter().cloned());
            args.extend(identity(&format!("pd-{id}")));
            proxies.push((ip, addr.clone(), private));
            members.push(Member::new(
                &logs,
                &format!("pd-{id}"),
                Role::Pd,
                addr,
                ip,
                args,
            ));
        }
        for j in 1..=spec.workers {
            let addr = loopback(base + 30 + j)?;
            let private = loopback(base + 40 + j)?;
            let ip = member_ip(members.len());
            let name = format!("worker-{j}");
            let mut args = vec![
                s("worker"),
                s("--name"),
                name.clone(),
                s("--addr"),
                private.clone(),
                s("--advertise-addr"),
                addr.clone(),
                s("--outbound-ip"),
                ip.to_string(),
                s("--pd-endpoints"),
                pd_endpoints.clone(),
                s("--data-dir"),
                dir.join(&name).display().to_string(),
                // Snapshot often, so restarted replicas also catch up through
                // snapshots.
                s("--snapshot-every"),
                s("200"),
            ];
            args.extend(timing.iter().cloned());
            args.extend(identity(&name));
            proxies.push((ip, addr.clone(), private));
            members.push(Member::new(&logs, &name, Role::Worker, &addr, ip, args));
        }
        let gateway_ip = member_ip(members.len());
        let mut gateway = vec![
            s("gateway"),
            s("--outbound-ip"),
            gateway_ip.to_string(),
            s("--http-addr"),
            http.clone(),
            s("--grpc-addr"),
            grpc,
            s("--pd-endpoints"),
            pd_endpoints.clone(),
            s("--no-auth"),
            // The workload must never be refused by the rate limiter.
            s("--rate-limit"),
            s("1000000"),
        ];
        if spec.plant_stale_reads {
            gateway.push(s("--plant-stale-strong-reads"));
        }
        gateway.extend(identity("gateway"));
        members.push(Member::new(
            &logs,
            "gateway",
            Role::Gateway,
            &http,
            gateway_ip,
            gateway,
        ));
        let mut network = Network::new();
        for (ip, listen, private) in proxies {
            let parse = |a: &str| {
                a.parse::<SocketAddr>()
                    .map_err(|e| ChaosError::Cluster(format!("address {a}: {e}")))
            };
            network.front(ip, parse(&listen)?, parse(&private)?).await?;
        }

        let pd_client = PdClient::with_options(
            &pd_addrs,
            PdClientOptions {
                request_timeout: Duration::from_secs(2),
                deadline: Duration::from_secs(4),
                ..PdClientOptions::default()
            },
        )
        .map_err(|e| ChaosError::Cluster(e.to_string()))?;
        let gateway = vectron_client::Client::new(&format!("http://{http}"))
            .map_err(|e| ChaosError::Cluster(e.to_string()))?;
        let mut cluster = Self {
            exe,
            members,
            gateway,
            http: format!("http://{http}"),
            pd_endpoints: pd_addrs,
            pd_client,
            network,
        };
        for index in 0..cluster.members.len() {
            cluster.spawn(index)?;
        }
        cluster
            .wait_serving(spec.workers as usize, Duration::from_secs(120))
            .await?;
        Ok(cluster)
    }

    /// PD addresses.
    pub fn pd_endpoints(&self) -> &[String] {
        &self.pd_endpoints
    }

    /// The network between the members.
    pub fn network(&self) -> &Network {
        &self.network
    }

    /// The address `name`'s own connections leave from.
    pub fn ip(&self, name: &str) -> Option<IpAddr> {
        self.members.iter().find(|m| m.name == name).map(|m| m.ip)
    }

    /// Every member's name.
    pub fn all_names(&self) -> Vec<String> {
        self.members.iter().map(|m| m.name.clone()).collect()
    }

    /// The PD client of the run.
    pub fn pd(&self) -> &PdClient {
        &self.pd_client
    }

    fn index_of(&self, name: &str) -> Result<usize, ChaosError> {
        self.members
            .iter()
            .position(|m| m.name == name)
            .ok_or_else(|| ChaosError::Cluster(format!("no member named {name}")))
    }

    fn spawn(&mut self, index: usize) -> Result<(), ChaosError> {
        let member = &mut self.members[index];
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&member.log)
            .map_err(|e| ChaosError::Cluster(format!("{}: {e}", member.log.display())))?;
        let mut command = Command::new(&self.exe);
        command.args(&member.args);
        match &member.failpoints {
            Some(failpoints) => command.env("FAILPOINTS", failpoints),
            None => command.env_remove("FAILPOINTS"),
        };
        command
            .env("RUST_LOG", "info,openraft=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .kill_on_drop(true);
        #[cfg(target_os = "linux")]
        // SAFETY: prctl is async-signal-safe; it only sets a flag on the child.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = command
            .spawn()
            .map_err(|e| ChaosError::Cluster(format!("cannot start {}: {e}", member.name)))?;
        member.child = Some(child);
        member.paused = false;
        Ok(())
    }

    fn signal(&self, index: usize, signal: libc::c_int) -> Result<(), ChaosError> {
        let member = &self.members[index];
        let pid = member
            .child
            .as_ref()
            .and_then(Child::id)
            .ok_or_else(|| ChaosError::Cluster(format!("{} is not running", member.name)))?;
        // SAFETY: sending a signal to our own child's pid.
        let sent = unsafe { libc::kill(pid as libc::pid_t, signal) };
        if sent != 0 {
            return Err(ChaosError::Cluster(format!(
                "cannot signal {}: {}",
                member.name,
                std::io::Error::last_os_error()
            )));
        }
        Ok(())
    }

    /// kill -9 of `name`; it stays down until [`Cluster::restart`].
    pub async fn kill9(&mut self, name: &str) -> Result<(), ChaosError> {
        let index = self.index_of(name)?;
        if self.members[index].paused {
            self.signal(index, libc::SIGCONT)?;
        }
        self.signal(index, libc::SIGKILL)?;
        if let Some(mut child) = self.members[index].child.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
        }
        Ok(())
    }

    /// Starts `name` again with its arguments and data.
    pub fn restart(&mut self, name: &str) -> Result<(), ChaosError> {
        let index = self.index_of(name)?;
        if self.members[index].child.is_some() {
            return Ok(());
        }
        self.spawn(index)
    }

    /// Restarts `name` with the crash point `point` armed: the process
    /// aborts the first time it reaches it.
    pub async fn restart_armed(&mut self, name: &str, point: &str) -> Result<(), ChaosError> {
        self.kill9(name).await?;
        let index = self.index_of(name)?;
        self.members[index].failpoints = Some(format!("{point}=1*return"));
        self.spawn(index)
    }

    /// Disarms `name`'s crash point: restarts it plainly, whether it crashed
    /// there (returns `true`) or never reached it (it is killed first).
    pub async fn disarm(&mut self, name: &str) -> Result<bool, ChaosError> {
        let index = self.index_of(name)?;
        let fired = match self.members[index].child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(Some(_))),
            None => false,
        };
        if fired {
            // Exited and reaped: nothing left to kill.
            self.members[index].child = None;
        } else if self.members[index].child.is_some() {
            self.kill9(name).await?;
        }
        self.members[index].failpoints = None;
        self.spawn(index)?;
        Ok(fired)
    }

    /// SIGSTOP of `name`.
    pub fn pause(&mut self, name: &str) -> Result<(), ChaosError> {
        let index = self.index_of(name)?;
        self.signal(index, libc::SIGSTOP)?;
        self.members[index].paused = true;
        Ok(())
    }

    /// SIGCONT of `name`.
    pub fn resume(&mut self, name: &str) -> Result<(), ChaosError> {
        let index = self.index_of(name)?;
        if self.members[index].paused {
            self.signal(index, libc::SIGCONT)?;
            self.members[index].paused = false;
        }
        Ok(())
    }

    /// Heals the network, resumes every paused member and restarts every
    /// killed one.
    pub fn heal_all(&mut self) -> Result<(), ChaosError> {
        self.network.heal();
        for index in 0..self.members.len() {
            if self.members[index].paused {
                self.signal(index, libc::SIGCONT)?;
                self.members[index].paused = false;
            }
            if self.members[index].child.is_none() {
                self.spawn(index)?;
            }
        }
        Ok(())
    }

    /// Names of the members of `role`.
    pub fn names(&self, role: Role) -> Vec<String> {
        self.members
            .iter()
            .filter(|m| m.role == role)
            .map(|m| m.name.clone())
            .collect()
    }

    /// The address of `name`.
    pub fn addr(&self, name: &str) -> Option<&str> {
        self.members
            .iter()
            .find(|m| m.name == name)
            .map(|m| m.addr.as_str())
    }

    /// Members that exited without being killed by the run.
    pub fn crashed(&mut self) -> Vec<String> {
        let mut crashed = Vec::new();
        for member in &mut self.members {
            if let Some(child) = member.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                crashed.push(format!("{} ({status})", member.name));
                member.child = None;
            }
        }
        crashed
    }

    /// The name of the PD leader, when there is one.
    pub async fn pd_leader(&self) -> Option<String> {
        let members = self
            .pd_client
            .call(|mut c| async move { c.get_members(pd::GetMembersRequest {}).await })
            .await
            .ok()?;
        (members.leader_id != 0).then(|| format!("pd-{}", members.leader_id))
    }

    /// The collection's shards as PD places them.
    pub async fn shards(&self, collection: &str) -> Result<Vec<pd::Shard>, ChaosError> {
        let request = pd::GetRoutingTableRequest {
            collection: collection.to_owned(),
        };
        let mut shards = self
            .pd_client
            .call(|mut c| {
                let request = request.clone();
                async move { c.get_routing_table(request).await }
            })
            .await
            .map_err(|e| ChaosError::Cluster(format!("routing table: {e}")))?
            .shards;
        shards.sort_by_key(|s| s.index);
        Ok(shards)
    }

    /// Waits until `workers` workers are up in PD and the gateway is ready.
    pub async fn wait_serving(&self, workers: usize, timeout: Duration) -> Result<(), ChaosError> {
        let deadline = Instant::now() + timeout;
        let mut last;
        loop {
            let up = self
                .pd_client
                .call(|mut c| async move { c.list_workers(pd::ListWorkersRequest {}).await })
                .await
                .map(|r| {
                    r.workers
                        .iter()
                        .filter(|w| w.state() == pd::WorkerState::Up)
                        .count()
                });
            match up {
                Ok(n) if n >= workers => {
                    let ready = tokio::time::timeout(Duration::from_secs(3), self.gateway.ready())
                        .await
                        .unwrap_or(false);
                    if ready {
                        return Ok(());
                    }
                    last = "the gateway is not ready".to_owned();
                }
                Ok(n) => last = format!("{n} of {workers} workers up"),
                Err(e) => last = format!("PD: {e}"),
            }
            if Instant::now() > deadline {
                return Err(ChaosError::Cluster(format!(
                    "the cluster was not serving within {timeout:?}: {last}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Stops every member: SIGCONT, SIGTERM, then SIGKILL after 10 s.
    pub async fn stop(&mut self) {
        for index in (0..self.members.len()).rev() {
            if self.members[index].paused {
                let _ = self.signal(index, libc::SIGCONT);
            }
            let _ = self.signal(index, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        for member in self.members.iter_mut().rev() {
            if let Some(mut child) = member.child.take() {
                let left = deadline.saturating_duration_since(Instant::now());
                if tokio::time::timeout(left, child.wait()).await.is_err() {
                    let _ = child.kill().await;
                }
            }
        }
    }

    /// The last `lines` lines of every member's log.
    pub fn log_tails(&self, lines: usize) -> String {
        let mut out = String::new();
        for member in &self.members {
            let text = std::fs::read_to_string(&member.log).unwrap_or_default();
            let all: Vec<&str> = text.lines().collect();
            out.push_str(&format!(
                "--- {} ({}) ---\n{}\n",
                member.name,
                member.log.display(),
                all[all.len().saturating_sub(lines)..].join("\n")
            ));
        }
        out
    }
}

impl Member {
    fn new(logs: &Path, name: &str, role: Role, addr: &str, ip: IpAddr, args: Vec<String>) -> Self {
        Self {
            name: name.to_owned(),
            role,
            addr: addr.to_owned(),
            ip,
            args,
            log: logs.join(format!("{name}.log")),
            child: None,
            paused: false,
            failpoints: None,
        }
    }
}
