//! `vectron playground`: a real multi-process cluster on loopback. Spawns
//! `vectron pd` ×N, `vectron worker` ×M, `vectron auth` (with `--auth`) and
//! `vectron gateway` as child processes of the current binary, waits until
//! the gateway can serve and every worker is registered, prints every
//! address and PID, and stops them all on SIGINT/SIGTERM. A child that dies
//! (say, killed by a test) is reported and left down. Internal traffic is
//! mutual TLS: the CA and every process's certificate are made in
//! `<data-dir>/tls` (the CA is kept across runs). Does process and
//! network I/O.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};
use tokio::time::Instant;
use tracing::{info, warn};

use vectron_tls::Role;

use crate::args::{InternalTlsArgs, PlaygroundArgs};
use crate::run::{RunError, shutdown_signal};

/// One child process.
struct Proc {
    name: String,
    addr: String,
    child: Child,
    log: PathBuf,
    exited: bool,
}

impl Proc {
    fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

fn spawn(
    exe: &Path,
    logs: &Path,
    name: &str,
    addr: String,
    args: &[String],
) -> Result<Proc, RunError> {
    let log = logs.join(format!("{name}.log"));
    let file = std::fs::File::create(&log)
        .map_err(|e| RunError::Playground(format!("cannot create {}: {e}", log.display())))?;
    let mut command = Command::new(exe);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(file))
        .kill_on_drop(true);
    #[cfg(target_os = "linux")]
    // SAFETY: prctl is async-signal-safe; it only sets a flag on the child.
    unsafe {
        command.pre_exec(|| {
            // Children die with the playground even when it is killed -9.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let child = command
        .spawn()
        .map_err(|e| RunError::Playground(format!("cannot start {name}: {e}")))?;
    Ok(Proc {
        name: name.to_owned(),
        addr,
        child,
        log,
        exited: false,
    })
}

fn loopback(port: u32) -> Result<String, RunError> {
    if port > u32::from(u16::MAX) {
        return Err(RunError::Playground(format!(
            "port {port} is out of range; lower --base-port"
        )));
    }
    Ok(format!("127.0.0.1:{port}"))
}

/// Runs the playground until SIGINT/SIGTERM.
pub async fn run(args: PlaygroundArgs, tls: InternalTlsArgs) -> Result<(), RunError> {
    let exe = std::env::current_exe()
        .map_err(|e| RunError::Playground(format!("cannot find the vectron binary: {e}")))?;
    let data_dir = args.data_dir.clone();
    let logs = data_dir.join("logs");
    std::fs::create_dir_all(&logs)
        .map_err(|e| RunError::Playground(format!("cannot create {}: {e}", logs.display())))?;
    let base = u32::from(args.base_port);
    let http = loopback(base)?;
    let grpc = loopback(base + 1)?;
    let auth_addr = loopback(base + 2)?;
    let pd_addrs: Vec<String> = (1..=args.pd)
        .map(|i| loopback(base + 10 + i))
        .collect::<Result<_, _>>()?;
    let members = pd_addrs
        .iter()
        .enumerate()
        .map(|(i, a)| format!("{}={a}", i + 1))
        .collect::<Vec<_>>()
        .join(",");
    let pd_endpoints = pd_addrs.join(",");

    let tls_dir = data_dir.join("tls");
    if crate::internal_tls::files(&tls)?.is_some() {
        return Err(RunError::Playground(
            "the playground makes its own CA and certificates; give no --internal-* flags (or --insecure-internal)".into(),
        ));
    }
    if !tls.insecure_internal {
        let pd_names: Vec<String> = (1..=args.pd).map(|i| format!("pd-{i}")).collect();
        let worker_names: Vec<String> = (1..=args.workers).map(|j| format!("worker-{j}")).collect();
        let mut members: Vec<(&str, &[Role])> = vec![
            ("auth", &[Role::Auth]),
            ("gateway", &[Role::Gateway]),
            ("admin", &[Role::Admin]),
        ];
        members.extend(pd_names.iter().map(|n| (n.as_str(), &[Role::Pd][..])));
        members.extend(
            worker_names
                .iter()
                .map(|n| (n.as_str(), &[Role::Worker][..])),
        );
        crate::internal_tls::install_local(&tls_dir, &members, "admin")?;
    }
    // The flags giving child `name` its identity (or plaintext).
    let identity = |name: &str| -> Vec<String> {
        if tls.insecure_internal {
            vec!["--insecure-internal".to_owned()]
        } else {
            crate::internal_tls::child_flags(&tls_dir, name)
        }
    };

    let mut procs: Vec<Proc> = Vec::new();
    let s = |v: &str| v.to_owned();
    for (i, addr) in pd_addrs.iter().enumerate() {
        let id = i + 1;
        let dir = data_dir.join(format!("pd-{id}"));
        let metrics = loopback(base + 20 + id as u32)?;
        procs.push(spawn(
            &exe,
            &logs,
            &format!("pd-{id}"),
            addr.clone(),
            &[
                s("pd"),
                s("--node-id"),
                id.to_string(),
                s("--addr"),
                addr.clone(),
                s("--initial-members"),
                members.clone(),
                s("--data-dir"),
                dir.display().to_string(),
                s("--metrics-addr"),
                metrics,
            ]
            .into_iter()
            .chain(identity(&format!("pd-{id}")))
            .collect::<Vec<_>>(),
        )?);
    }
    for j in 1..=args.workers {
        let addr = loopback(base + 30 + j)?;
        let name = format!("worker-{j}");
        let dir = data_dir.join(&name);
        procs.push(spawn(
            &exe,
            &logs,
            &name,
            addr.clone(),
            &[
                s("worker"),
                s("--name"),
                name.clone(),
                s("--addr"),
                addr,
                s("--pd-endpoints"),
                pd_endpoints.clone(),
                s("--data-dir"),
                dir.display().to_string(),
            ]
            .into_iter()
            .chain(identity(&name))
            .collect::<Vec<_>>(),
        )?);
    }
    let mut gateway_args = vec![
        s("gateway"),
        s("--http-addr"),
        http.clone(),
        s("--grpc-addr"),
        grpc.clone(),
        s("--pd-endpoints"),
        pd_endpoints.clone(),
    ];
    if args.auth {
        let secret_file = data_dir.join("jwt-secret");
        vectron_auth::load_or_create_secret(&secret_file)
            .map_err(|e| RunError::Playground(e.to_string()))?;
        let mut auth_args = vec![
            s("auth"),
            s("--addr"),
            auth_addr.clone(),
            s("--pd-endpoints"),
            pd_endpoints.clone(),
            s("--jwt-secret-file"),
            secret_file.display().to_string(),
        ];
        if let Some(file) = &args.admin_password_file {
            auth_args.extend([s("--admin-password-file"), file.display().to_string()]);
        }
        auth_args.extend(identity("auth"));
        procs.push(spawn(&exe, &logs, "auth", auth_addr.clone(), &auth_args)?);
        gateway_args.extend([s("--auth-endpoint"), auth_addr.clone()]);
    } else {
        gateway_args.push(s("--no-auth"));
    }
    gateway_args.extend(identity("gateway"));
    procs.push(spawn(&exe, &logs, "gateway", http.clone(), &gateway_args)?);

    let auth_to_wait_for = args.auth.then_some(auth_addr.as_str());
    let outcome = tokio::select! {
        ready = wait_ready(&mut procs, &pd_addrs, &grpc, auth_to_wait_for, args.workers as usize) => ready,
        _ = shutdown_signal() => Err(RunError::Playground("interrupted before the cluster was ready".into())),
    };
    if let Err(e) = outcome {
        stop_all(&mut procs).await;
        return Err(e);
    }

    println!("vectron playground is ready");
    println!("  gateway  REST http://{http}  gRPC {grpc}");
    for p in &procs {
        println!("  {:<10} {:<21} pid {}", p.name, p.addr, p.pid());
    }
    let pd_metrics: Vec<String> = (1..=args.pd)
        .map(|i| format!("http://127.0.0.1:{}/metrics", base + 20 + i))
        .collect();
    println!("  PD metrics {}", pd_metrics.join(" "));
    println!("  data {}  logs {}", data_dir.display(), logs.display());
    if tls.insecure_internal {
        println!("  internal ports: PLAINTEXT (--insecure-internal)");
    } else {
        println!(
            "  internal ports: mutual TLS; CA and certificates in {} (admin.pem/admin.key for tools)",
            tls_dir.display()
        );
    }
    println!("Press Ctrl-C to stop.");

    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let signal = shutdown_signal();
    tokio::pin!(signal);
    loop {
        tokio::select! {
            _ = &mut signal => break,
            _ = tick.tick() => report_exits(&mut procs),
        }
    }
    stop_all(&mut procs).await;
    info!("playground stopped");
    Ok(())
}

fn report_exits(procs: &mut [Proc]) {
    for p in procs.iter_mut().filter(|p| !p.exited) {
        if let Ok(Some(status)) = p.child.try_wait() {
            p.exited = true;
            warn!(name = %p.name, %status, "child process exited; it stays down until the playground restarts");
        }
    }
}

/// Waits until every worker is registered, the gateway is ready and, with
/// auth on, the auth service accepts connections (it opens its port only
/// after creating the first admin).
async fn wait_ready(
    procs: &mut [Proc],
    pd_addrs: &[String],
    grpc: &str,
    auth: Option<&str>,
    workers: usize,
) -> Result<(), RunError> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let pd = vectron_pd::PdClient::with_options(
        pd_addrs,
        vectron_pd::PdClientOptions {
            request_timeout: Duration::from_secs(2),
            deadline: Duration::from_secs(3),
            ..vectron_pd::PdClientOptions::default()
        },
    )
    .map_err(|e| RunError::Playground(e.to_string()))?;
    let mut last;
    loop {
        for p in procs.iter_mut() {
            if let Ok(Some(status)) = p.child.try_wait() {
                return Err(RunError::Playground(format!(
                    "{} exited during start-up ({status}); last log lines:\n{}",
                    p.name,
                    p.log_tail()
                )));
            }
        }
        let up = pd
            .call(|mut c| async move {
                c.list_workers(vectron_proto::pd::v1::ListWorkersRequest {})
                    .await
            })
            .await
            .map(|r| {
                r.workers
                    .iter()
                    .filter(|w| w.state() == vectron_proto::pd::v1::WorkerState::Up)
                    .count()
            });
        match up {
            Ok(n) if n >= workers => {
                let ready = async {
                    let mut client = vectron_proto::v1::vectron_client::VectronClient::connect(
                        format!("http://{grpc}"),
                    )
                    .await
                    .ok()?;
                    client.ready(vectron_proto::v1::ReadyRequest {}).await.ok()
                }
                .await;
                let auth_up = match auth {
                    Some(addr) => tokio::net::TcpStream::connect(addr).await.is_ok(),
                    None => true,
                };
                if ready.is_some() && auth_up {
                    return Ok(());
                }
                last = if auth_up {
                    "the gateway is not ready yet".into()
                } else {
                    "the auth service is not listening yet".into()
                };
            }
            Ok(n) => last = format!("{n} of {workers} workers registered"),
            Err(e) => last = format!("PD not ready: {e}"),
        }
        if Instant::now() > deadline {
            return Err(RunError::Playground(format!(
                "the cluster was not ready within 120 s: {last}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Stops the gateway and auth first, then workers, then PD: SIGTERM, up to
/// 10 s grace, then SIGKILL.
async fn stop_all(procs: &mut [Proc]) {
    procs.reverse();
    for p in procs.iter_mut() {
        if let Some(pid) = p.child.id() {
            // SAFETY: sending a signal to our own child's pid.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGTERM);
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    for p in procs.iter_mut() {
        let left = deadline.saturating_duration_since(Instant::now());
        if tokio::time::timeout(left, p.child.wait()).await.is_err() {
            warn!(name = %p.name, "did not stop within 10 s; killing it");
            let _ = p.child.kill().await;
        }
    }
}
