//! The command line of `vectron`: every subcommand and flag, each
//! flag also settable as `VECTRON_<FLAG>`. Parsing only; no I/O.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use vectron_config::RaftTiming;

/// Vectron: a distributed vector database.
#[derive(Debug, Parser)]
#[command(name = "vectron", version, about, propagate_version = true)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
    /// Make every internal connection this process opens (to PD, workers,
    /// auth and Raft peers) leave from this local IP address.
    #[arg(long, global = true, env = "VECTRON_OUTBOUND_IP")]
    pub outbound_ip: Option<IpAddr>,
    #[command(flatten)]
    pub internal_tls: InternalTlsArgs,
}

/// How this process secures internal traffic (PD, workers, auth, Raft).
/// PD, worker, auth and gateway processes need either all three files or
/// `--insecure-internal`; `dev`, `playground` and `chaos` make their own CA.
#[derive(Debug, Clone, Args)]
pub struct InternalTlsArgs {
    /// CA certificate (PEM) every internal peer's certificate must chain to.
    #[arg(long, global = true, env = "VECTRON_INTERNAL_CA")]
    pub internal_ca: Option<PathBuf>,
    /// This process's certificate (PEM), naming its role (`vectron cert issue`).
    #[arg(long, global = true, env = "VECTRON_INTERNAL_CERT")]
    pub internal_cert: Option<PathBuf>,
    /// This process's private key (PEM).
    #[arg(long, global = true, env = "VECTRON_INTERNAL_KEY")]
    pub internal_key: Option<PathBuf>,
    /// Serve and call internal ports in plaintext, trusting every caller.
    /// For local experiments only: anyone who reaches a port owns the cluster.
    #[arg(long, global = true, env = "VECTRON_INSECURE_INTERNAL")]
    pub insecure_internal: bool,
}

/// The roles and tools of the `vectron` binary.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run PD, one worker, auth and gateway in one process (replication factor 1).
    Dev(DevArgs),
    /// Run a real multi-process cluster on loopback until Ctrl-C.
    Playground(PlaygroundArgs),
    /// Run one placement-driver node.
    Pd(PdArgs),
    /// Run a worker that hosts shard replicas.
    Worker(WorkerArgs),
    /// Run the auth service.
    Auth(AuthArgs),
    /// Run the gateway serving the public REST and gRPC API.
    Gateway(GatewayArgs),
    /// Benchmark search and ingest against running targets and in-process baselines.
    Bench(BenchArgs),
    /// Break a local multi-process cluster on a seeded schedule while clients
    /// read and write, then check the history for linearizability.
    Chaos(ChaosArgs),
    /// Create a private CA and issue internal certificates for a deployment.
    #[command(subcommand)]
    Cert(CertCommand),
    /// Print the version.
    Version,
}

/// `vectron cert`.
#[derive(Debug, Subcommand)]
pub enum CertCommand {
    /// Create a CA: writes ca.pem and ca.key (mode 0600) into --dir.
    Ca {
        /// Directory for the CA's files.
        #[arg(long)]
        dir: PathBuf,
        /// Replace a CA already in --dir (every certificate it issued stops
        /// being trusted once processes load the new ca.pem).
        #[arg(long)]
        force: bool,
    },
    /// Issue a certificate from the CA in --dir.
    Issue(CertIssueArgs),
}

/// `vectron cert issue`.
#[derive(Debug, Args)]
pub struct CertIssueArgs {
    /// Directory holding the CA (ca.pem, ca.key).
    #[arg(long)]
    pub dir: PathBuf,
    /// File name of the certificate: writes <name>.pem and <name>.key.
    #[arg(long)]
    pub name: String,
    /// Roles the certificate names: pd, worker, auth, gateway, operator, admin
    /// (comma-separated or repeated).
    #[arg(long = "role", required = true, value_delimiter = ',')]
    pub roles: Vec<vectron_tls::Role>,
    /// Extra host name or IP address the certificate is valid for (repeatable).
    #[arg(long = "host")]
    pub hosts: Vec<String>,
    /// Validity in days.
    #[arg(long, default_value_t = 365, value_parser = clap::value_parser!(i64).range(1..=3650))]
    pub days: i64,
    /// Directory to write into (defaults to --dir).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

fn host_port(value: &str) -> Result<String, String> {
    vectron_config::parse_host_port("address", value).map_err(|e| e.to_string())
}

/// `vectron dev`.
#[derive(Debug, Args)]
pub struct DevArgs {
    /// Directory holding all data of the embedded cluster.
    #[arg(long, env = "VECTRON_DATA_DIR", default_value = "./vectron-data")]
    pub data_dir: PathBuf,
    /// Address of the REST API.
    #[arg(long, env = "VECTRON_HTTP_ADDR", default_value = "127.0.0.1:7333")]
    pub http_addr: SocketAddr,
    /// Address of the public gRPC API.
    #[arg(long, env = "VECTRON_GRPC_ADDR", default_value = "127.0.0.1:7334")]
    pub grpc_addr: SocketAddr,
    /// Require credentials (off by default: every request is allowed).
    #[arg(long, env = "VECTRON_AUTH")]
    pub auth: bool,
    /// File holding the first admin's password (else VECTRON_ADMIN_PASSWORD).
    #[arg(long, env = "VECTRON_ADMIN_PASSWORD_FILE")]
    pub admin_password_file: Option<PathBuf>,
    /// Serve Prometheus metrics at GET /metrics on this address (off by default).
    #[arg(long, env = "VECTRON_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    #[command(flatten)]
    pub overload: OverloadArgs,
    #[command(flatten)]
    pub public_tls: PublicTlsArgs,
}

/// `vectron playground`.
#[derive(Debug, Args)]
pub struct PlaygroundArgs {
    /// Number of PD nodes (odd).
    #[arg(long, env = "VECTRON_PD", default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(1..=7))]
    pub pd: u32,
    /// Number of workers.
    #[arg(long, env = "VECTRON_WORKERS", default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(1..=64))]
    pub workers: u32,
    /// Gateway HTTP port; gRPC is base-port+1 and the other processes follow.
    #[arg(long, env = "VECTRON_BASE_PORT", default_value_t = 17000,
          value_parser = clap::value_parser!(u16).range(1024..=60000))]
    pub base_port: u16,
    /// Directory holding every process's data dir.
    #[arg(long, env = "VECTRON_DATA_DIR", default_value = "./vectron-playground")]
    pub data_dir: PathBuf,
    /// Require credentials.
    #[arg(long, env = "VECTRON_AUTH")]
    pub auth: bool,
    /// File holding the first admin's password (else VECTRON_ADMIN_PASSWORD).
    #[arg(long, env = "VECTRON_ADMIN_PASSWORD_FILE")]
    pub admin_password_file: Option<PathBuf>,
}

/// `vectron pd`.
#[derive(Debug, Args)]
pub struct PdArgs {
    /// This node's id in the PD Raft group (positive, stable across restarts).
    #[arg(long, env = "VECTRON_NODE_ID",
          value_parser = clap::value_parser!(u64).range(1..),
          required_unless_present = "node_id_from_ordinal",
          conflicts_with = "node_id_from_ordinal")]
    pub node_id: Option<u64>,
    /// Take the node id from the host name's trailing ordinal plus one
    /// (`vec-pd-0` is node 1), as in a Kubernetes StatefulSet. A node whose
    /// id is not among --initial-members joins those members instead.
    #[arg(long, env = "VECTRON_NODE_ID_FROM_ORDINAL")]
    pub node_id_from_ordinal: bool,
    /// Address to listen on for the PD API and Raft traffic.
    #[arg(long, env = "VECTRON_ADDR", default_value = "127.0.0.1:7400")]
    pub addr: SocketAddr,
    /// Address other nodes use to reach this one (defaults to --addr).
    #[arg(long, env = "VECTRON_ADVERTISE_ADDR", value_parser = host_port)]
    pub advertise_addr: Option<String>,
    /// Every founding member as "1=host:port,2=host:port,3=host:port"; give
    /// every node the same list.
    #[arg(
        long,
        env = "VECTRON_INITIAL_MEMBERS",
        conflicts_with = "join",
        required_unless_present = "join"
    )]
    pub initial_members: Option<String>,
    /// Directory for the Raft log, snapshots and state.
    #[arg(long, env = "VECTRON_DATA_DIR", default_value = "./vectron-pd")]
    pub data_dir: PathBuf,
    /// Address of a running PD node; this node joins that cluster instead of
    /// bootstrapping one.
    #[arg(long, env = "VECTRON_JOIN", value_parser = host_port)]
    pub join: Option<String>,
    /// Snapshot the state machine (and purge the log behind it) every N entries.
    #[arg(long, env = "VECTRON_SNAPSHOT_EVERY", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub snapshot_every: u64,
    /// Mark a worker Down after this many seconds without a heartbeat.
    #[arg(long, env = "VECTRON_HEARTBEAT_TIMEOUT_SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(2..))]
    pub heartbeat_timeout_secs: u64,
    /// Re-create the replicas of a worker that has been Down this long.
    #[arg(long, env = "VECTRON_DOWN_TIMEOUT_SECS", default_value_t = 120,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub down_timeout_secs: u64,
    /// Replica moves the scheduler runs at once in the whole cluster.
    #[arg(long, env = "VECTRON_MAX_MOVES", default_value_t = 4,
          value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub max_moves: u64,
    /// Replica moves touching one worker at once.
    #[arg(long, env = "VECTRON_MAX_MOVES_PER_WORKER", default_value_t = 2,
          value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub max_moves_per_worker: u64,
    /// Serve Prometheus metrics at GET /metrics on this address (off by default).
    #[arg(long, env = "VECTRON_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    #[command(flatten)]
    pub raft: RaftTimingArgs,
}

/// Raft timing flags shared by PD and workers.
#[derive(Debug, Args)]
pub struct RaftTimingArgs {
    /// Raft leader heartbeat interval in milliseconds.
    #[arg(long, env = "VECTRON_RAFT_HEARTBEAT_MS", default_value_t = RaftTiming::default().heartbeat_interval_ms)]
    pub raft_heartbeat_ms: u64,
    /// Lower bound of the Raft election timeout in milliseconds.
    #[arg(long, env = "VECTRON_RAFT_ELECTION_MIN_MS", default_value_t = RaftTiming::default().election_timeout_min_ms)]
    pub raft_election_min_ms: u64,
    /// Upper bound of the Raft election timeout in milliseconds.
    #[arg(long, env = "VECTRON_RAFT_ELECTION_MAX_MS", default_value_t = RaftTiming::default().election_timeout_max_ms)]
    pub raft_election_max_ms: u64,
}

impl RaftTimingArgs {
    /// The timing these flags describe.
    pub fn timing(&self) -> vectron_config::RaftTiming {
        vectron_config::RaftTiming {
            heartbeat_interval_ms: self.raft_heartbeat_ms,
            election_timeout_min_ms: self.raft_election_min_ms,
            election_timeout_max_ms: self.raft_election_max_ms,
        }
    }
}

/// `vectron worker`.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Name under which the worker registers with PD (defaults to the hostname).
    #[arg(long, env = "VECTRON_NAME")]
    pub name: Option<String>,
    /// Address to listen on for shard operations and Raft traffic.
    #[arg(long, env = "VECTRON_ADDR", default_value = "127.0.0.1:7500")]
    pub addr: SocketAddr,
    /// Address PD, gateways and peers use to reach this worker (defaults to --addr).
    #[arg(long, env = "VECTRON_ADVERTISE_ADDR", value_parser = host_port)]
    pub advertise_addr: Option<String>,
    /// PD endpoints, "host:port,host:port".
    #[arg(long, env = "VECTRON_PD_ENDPOINTS", default_value = "127.0.0.1:7400")]
    pub pd_endpoints: String,
    /// Directory for the RocksDB store, index segments and the worker id.
    #[arg(long, env = "VECTRON_DATA_DIR", default_value = "./vectron-worker")]
    pub data_dir: PathBuf,
    /// Failure zone (rack, availability zone); replicas spread across zones.
    #[arg(long, env = "VECTRON_ZONE", default_value = "")]
    pub zone: String,
    /// Snapshot each shard (and purge its log behind it) every N entries.
    #[arg(long, env = "VECTRON_SNAPSHOT_EVERY", default_value_t = 5000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub snapshot_every: u64,
    #[command(flatten)]
    pub raft: RaftTimingArgs,
}

/// `vectron auth`.
#[derive(Debug, Args)]
pub struct AuthArgs {
    /// Address to listen on for the auth gRPC API.
    #[arg(long, env = "VECTRON_ADDR", default_value = "127.0.0.1:7600")]
    pub addr: SocketAddr,
    /// PD endpoints, "host:port,host:port".
    #[arg(long, env = "VECTRON_PD_ENDPOINTS", default_value = "127.0.0.1:7400")]
    pub pd_endpoints: String,
    /// File holding the JWT signing secret (at least 32 bytes).
    #[arg(long, env = "VECTRON_JWT_SECRET_FILE")]
    pub jwt_secret_file: PathBuf,
    /// File holding the first admin's password (else VECTRON_ADMIN_PASSWORD).
    #[arg(long, env = "VECTRON_ADMIN_PASSWORD_FILE")]
    pub admin_password_file: Option<PathBuf>,
}

/// `vectron gateway`.
#[derive(Debug, Args)]
pub struct GatewayArgs {
    /// Address of the REST API.
    #[arg(long, env = "VECTRON_HTTP_ADDR", default_value = "127.0.0.1:7333")]
    pub http_addr: SocketAddr,
    /// Address of the public gRPC API.
    #[arg(long, env = "VECTRON_GRPC_ADDR", default_value = "127.0.0.1:7334")]
    pub grpc_addr: SocketAddr,
    /// PD endpoints, "host:port,host:port".
    #[arg(long, env = "VECTRON_PD_ENDPOINTS", default_value = "127.0.0.1:7400")]
    pub pd_endpoints: String,
    /// Address of the auth service.
    #[arg(long, env = "VECTRON_AUTH_ENDPOINT", default_value = "127.0.0.1:7600",
          value_parser = host_port)]
    pub auth_endpoint: String,
    /// Serve without authentication (auth is on unless this is given).
    #[arg(long, env = "VECTRON_NO_AUTH")]
    pub no_auth: bool,
    /// Serve Prometheus metrics at GET /metrics on this address (off by default).
    #[arg(long, env = "VECTRON_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// TEST ONLY (hidden): serve strong reads stale, the bug the chaos suite
    /// plants to show that its checker catches one.
    #[arg(long, hide = true)]
    pub plant_stale_strong_reads: bool,
    #[command(flatten)]
    pub overload: OverloadArgs,
    #[command(flatten)]
    pub public_tls: PublicTlsArgs,
}

/// TLS on the public REST and gRPC ports.
#[derive(Debug, Args)]
pub struct PublicTlsArgs {
    /// Serve the REST and gRPC APIs over TLS with this certificate (chain,
    /// PEM); reloaded when the file changes. Needs --tls-key.
    #[arg(long, env = "VECTRON_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, env = "VECTRON_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

impl PublicTlsArgs {
    /// The files, when TLS was asked for.
    pub fn files(&self) -> Option<vectron_gateway::PublicTlsFiles> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(vectron_gateway::PublicTlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            }),
            _ => None,
        }
    }
}

/// Overload protection of a gateway.
#[derive(Debug, Args)]
pub struct OverloadArgs {
    /// Sustained requests per second allowed per credential (429 beyond;
    /// 0 turns it off). Default: 1000 for a gateway, off for `vectron dev`.
    #[arg(long, env = "VECTRON_RATE_LIMIT")]
    pub rate_limit: Option<f64>,
    /// Sustained requests per second allowed per client address, checked
    /// before credentials (429 beyond; 0 turns it off). Default: 10,000 for
    /// a gateway, off for `vectron dev`.
    #[arg(long, env = "VECTRON_ADDRESS_RATE_LIMIT")]
    pub address_rate_limit: Option<f64>,
    /// Sustained login attempts per second allowed per client address, in
    /// bursts of up to 10 (429 beyond).
    #[arg(long, env = "VECTRON_LOGIN_RATE_LIMIT", default_value_t = 2.0)]
    pub login_rate_limit: f64,
    /// Requests served at once; more are refused with 503.
    #[arg(long, env = "VECTRON_MAX_IN_FLIGHT", default_value_t = 512)]
    pub max_in_flight: usize,
    /// Longest a request may take, in seconds (then 503).
    #[arg(long, env = "VECTRON_REQUEST_TIMEOUT_SECS", default_value_t = 30)]
    pub request_timeout_secs: u64,
}

/// Rate limits a gateway applies when none are given: a shared gateway
/// limits each credential and client address; `vectron dev` serves one
/// local user and limits nothing unless asked.
#[derive(Debug, Clone, Copy)]
pub struct RateDefaults {
    /// Requests per second per credential.
    pub per_credential: f64,
    /// Requests per second per client address.
    pub per_address: f64,
}

impl RateDefaults {
    /// A gateway of a shared cluster.
    pub const GATEWAY: Self = Self {
        per_credential: 1000.0,
        per_address: 10_000.0,
    };
    /// `vectron dev`: off.
    pub const DEV: Self = Self {
        per_credential: 0.0,
        per_address: 0.0,
    };
}

impl OverloadArgs {
    /// The gateway's overload settings, `defaults` filling the rate limits
    /// not given.
    pub fn config(&self, defaults: RateDefaults) -> vectron_gateway::OverloadConfig {
        let rate = self.rate_limit.unwrap_or(defaults.per_credential).max(0.0);
        vectron_gateway::OverloadConfig {
            rate_per_second: rate,
            burst: (rate * 2.0).max(1.0),
            address_rate_per_second: self
                .address_rate_limit
                .unwrap_or(defaults.per_address)
                .max(0.0),
            login_rate_per_second: self.login_rate_limit,
            max_in_flight: self.max_in_flight,
            request_timeout: std::time::Duration::from_secs(self.request_timeout_secs.max(1)),
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn pd_requires_initial_members_or_join_but_not_both() {
        let parse = |args: &[&str]| Cli::try_parse_from(args);
        assert!(parse(&["vectron", "pd", "--node-id", "1"]).is_err());
        assert!(parse(&["vectron", "pd", "--node-id", "1", "--join", "a:1"]).is_ok());
        assert!(
            parse(&[
                "vectron",
                "pd",
                "--node-id",
                "1",
                "--join",
                "a:1",
                "--initial-members",
                "1=a:1",
            ])
            .is_err()
        );
        assert!(parse(&["vectron", "pd", "--node-id", "0", "--join", "a:1"]).is_err());
    }

    #[test]
    fn defaults_follow_the_contract() {
        let cli = Cli::try_parse_from(["vectron", "dev"]).expect("defaults parse");
        let Command::Dev(dev) = cli.command else {
            panic!("expected dev, got {:?}", cli.command);
        };
        assert_eq!(dev.data_dir, PathBuf::from("./vectron-data"));
        assert_eq!(dev.http_addr.to_string(), "127.0.0.1:7333");
        assert_eq!(dev.grpc_addr.to_string(), "127.0.0.1:7334");
        assert!(!dev.auth);

        let cli = Cli::try_parse_from(["vectron", "playground"]).expect("defaults parse");
        let Command::Playground(pg) = cli.command else {
            panic!("expected playground");
        };
        assert_eq!((pg.pd, pg.workers, pg.base_port), (3, 3, 17000));
        assert_eq!(pg.data_dir, PathBuf::from("./vectron-playground"));
    }

    #[test]
    fn advertise_addresses_must_be_host_port() {
        let bad = Cli::try_parse_from(["vectron", "worker", "--advertise-addr", "no-port"]);
        assert!(bad.is_err());
        let good = Cli::try_parse_from([
            "vectron",
            "worker",
            "--advertise-addr",
            "worker-0.workers.ns.svc:7500",
        ]);
        assert!(good.is_ok());
    }
}

/// `vectron chaos`.
#[derive(Debug, Args)]
pub struct ChaosArgs {
    /// Which faults to inject: kill, pause, partition (cuts and delays
    /// between members), mixed (all of these), failover (leader kills only)
    /// or crash (crash points; needs the `failpoints` feature).
    #[arg(long, default_value = "mixed")]
    pub mix: String,
    /// Fault cycles (inject, hold, heal, recover).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub cycles: u32,
    /// Seed of the fault schedule and the workload (default: from the clock;
    /// the run prints it).
    #[arg(long)]
    pub seed: Option<u64>,
    /// PD nodes.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=7))]
    pub pd: u32,
    /// Workers.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=9))]
    pub workers: u32,
    /// Shards of the test collection.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub shards: u32,
    /// Replicas per shard.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=9))]
    pub replication_factor: u32,
    /// Concurrent clients.
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub clients: u32,
    /// Keys (point ids) the clients share; each is one register.
    #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub keys: u64,
    /// Seconds each fault lasts before it is healed.
    #[arg(long, default_value_t = 3.0)]
    pub fault_secs: f64,
    /// Seconds of recovery after each heal.
    #[arg(long, default_value_t = 3.0)]
    pub recover_secs: f64,
    /// Raft election timeout lower bound (ms) of every PD node and worker.
    #[arg(long, default_value_t = RaftTiming::default().election_timeout_min_ms)]
    pub election_min_ms: u64,
    /// Raft election timeout upper bound (ms).
    #[arg(long, default_value_t = RaftTiming::default().election_timeout_max_ms)]
    pub election_max_ms: u64,
    /// Raft heartbeat interval (ms).
    #[arg(long, default_value_t = RaftTiming::default().heartbeat_interval_ms)]
    pub heartbeat_ms: u64,
    /// Directory for the cluster's data, logs, history and report (default: a
    /// new directory under the system temp dir; kept when the run fails).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Keep the data directory even when the run passes.
    #[arg(long)]
    pub keep: bool,
    /// The Porcupine checker's Go module (needs `go` on PATH).
    #[arg(long, default_value = "tests/chaos/checker")]
    pub checker_dir: PathBuf,
    /// Also write the figures as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// TEST ONLY: plant a stale-read bug in the gateway; the run must then
    /// fail (the suite's self-test).
    #[arg(long)]
    pub plant_stale_reads: bool,
}

/// `vectron bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// A dataset directory (base.f32, queries.f32, truth.u32, meta.json) or an
    /// .fvecs base file (then --queries-file is needed).
    #[arg(long)]
    pub dataset: Option<PathBuf>,
    /// Generate uniform random vectors instead, shaped NxDIM (e.g. 20000x128).
    #[arg(long, conflicts_with = "dataset")]
    pub random: Option<String>,
    /// Queries (.fvecs) for an .fvecs base file.
    #[arg(long)]
    pub queries_file: Option<PathBuf>,
    /// Ground truth (.ivecs) for an .fvecs base file; computed exactly when absent.
    #[arg(long)]
    pub truth_file: Option<PathBuf>,
    /// Distance metric: cosine, l2 or dot (a dataset directory names its own).
    #[arg(long)]
    pub metric: Option<String>,
    /// Neighbours asked for per query (recall is measured at k).
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// At most this many queries from the dataset.
    #[arg(long, default_value_t = 1000)]
    pub max_queries: usize,
    /// Target to measure, repeatable: rest=URL, grpc=URL, worker=PD_ADDR, index (Vectron's
    /// shard index in this process), hnsw-rs.
    #[arg(long, required = true)]
    pub target: Vec<String>,
    /// API key for REST and gRPC targets when the cluster requires credentials.
    #[arg(long, env = "VECTRON_API_KEY")]
    pub api_key: Option<String>,
    /// Name of the collection created (and dropped afterwards) on each target.
    #[arg(long, default_value = "bench")]
    pub collection: String,
    /// HNSW links per node.
    #[arg(long, default_value_t = 16)]
    pub m: usize,
    /// HNSW candidate list while building.
    #[arg(long, default_value_t = 200)]
    pub ef_construction: usize,
    /// Replicas per shard on cluster targets.
    #[arg(long, default_value_t = 1)]
    pub replication_factor: u32,
    /// Search candidate-list sizes to sweep, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "16,32,64,128")]
    pub ef: Vec<usize>,
    /// Concurrent client threads to sweep, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    pub threads: Vec<usize>,
    /// Points per upsert request while loading.
    #[arg(long, default_value_t = 500)]
    pub batch: usize,
    /// Concurrent upsert requests while loading.
    #[arg(long, default_value_t = 2)]
    pub load_clients: usize,
    /// Searches per (ef, threads) cell at least (the query set repeats).
    #[arg(long, default_value_t = 2000)]
    pub min_searches: usize,
    /// Keep the collections after the run.
    #[arg(long)]
    pub keep: bool,
    /// Also write the figures as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Give every point the payload `{"tag": id % 100}` and, after the
    /// unfiltered sweep, search with filters matching 1%, 10% and 50% of the
    /// points (recall against exact filtered search). Network targets only.
    #[arg(long)]
    pub filtered: bool,
}
