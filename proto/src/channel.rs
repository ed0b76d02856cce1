//! How every internal gRPC connection is built. PD nodes, workers, the
//! gateway and auth reach each other through channels made here, so the
//! settings they share live in one place: no Nagle delay, a bounded connect,
//! and an optional fixed source address for every outgoing connection of the
//! process (`--outbound-ip`: on a host with several addresses it makes a
//! process's traffic come from its own; the chaos suite gives each process
//! its own loopback address this way so that its fault-injecting proxies can
//! tell peers apart), and mutual TLS when the process installed an internal
//! TLS identity (`vectron_tls::install`): the channel then presents this
//! process's certificate and accepts only a server whose certificate, from
//! the cluster's CA, names the role the caller meant to reach. Builds values
//! only; no I/O.

use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::Duration;

use tonic::transport::Endpoint;
pub use vectron_tls::Role;
use vectron_tls::Security;

/// The source address of this process's outgoing internal connections, set
/// once at start-up.
static OUTBOUND_IP: OnceLock<IpAddr> = OnceLock::new();

/// Makes every internal connection this process opens from now on leave
/// from `ip`. Set once, before any channel is built; a second call with a
/// different address is refused and returns the address already in force.
pub fn set_outbound_ip(ip: IpAddr) -> Result<(), IpAddr> {
    let set = *OUTBOUND_IP.get_or_init(|| ip);
    if set == ip { Ok(()) } else { Err(set) }
}

/// The source address set by [`set_outbound_ip`], if any.
pub fn outbound_ip() -> Option<IpAddr> {
    OUTBOUND_IP.get().copied()
}

/// An endpoint for `target` (`host:port`, or a URL with a scheme) of a
/// server of role `peer`, with the shared settings and `connect_timeout`;
/// callers add their own timeouts and keep-alives, then connect (usually
/// lazily). Under mutual TLS the scheme is https whatever `target` says.
pub fn internal_endpoint(
    target: &str,
    peer: Role,
    connect_timeout: Duration,
) -> Result<Endpoint, tonic::transport::Error> {
    endpoint_with(vectron_tls::current(), target, peer, connect_timeout)
}

fn endpoint_with(
    security: &Security,
    target: &str,
    peer: Role,
    connect_timeout: Duration,
) -> Result<Endpoint, tonic::transport::Error> {
    let tls = match security {
        Security::Insecure => None,
        Security::Mutual(identity) => Some(identity.client_config(peer)),
    };
    internal_endpoint_with_tls(target, tls, connect_timeout)
}

/// Like [`internal_endpoint`], with the TLS client configuration given
/// rather than taken from the process's installed identity (`None`:
/// plaintext): for a process holding one identity per cluster it talks to,
/// as the operator does. Build `tls` with
/// `vectron_tls::client_config_from_pem`, which pins the server's role.
pub fn internal_endpoint_with_tls(
    target: &str,
    tls: Option<tonic::transport::ClientTlsConfig>,
    connect_timeout: Duration,
) -> Result<Endpoint, tonic::transport::Error> {
    let authority = target.split_once("://").map_or(target, |(_, rest)| rest);
    let scheme = if tls.is_some() { "https" } else { "http" };
    let endpoint = Endpoint::from_shared(format!("{scheme}://{authority}"))?
        .connect_timeout(connect_timeout)
        .tcp_nodelay(true)
        .local_address(outbound_ip());
    match tls {
        None => Ok(endpoint),
        Some(tls) => endpoint.tls_config(tls),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outbound_address_is_set_once() {
        let ip: IpAddr = "127.0.0.7".parse().expect("ip");
        assert_eq!(set_outbound_ip(ip), Ok(()));
        assert_eq!(
            set_outbound_ip(ip),
            Ok(()),
            "the same address again is fine"
        );
        let other: IpAddr = "127.0.0.8".parse().expect("ip");
        assert_eq!(set_outbound_ip(other), Err(ip));
        assert_eq!(outbound_ip(), Some(ip));
    }

    #[test]
    fn targets_without_a_scheme_get_http_and_bad_ones_are_refused() {
        let second = Duration::from_secs(1);
        let endpoint = internal_endpoint("127.0.0.1:7400", Role::Pd, second).expect("ok");
        assert_eq!(endpoint.uri().to_string(), "http://127.0.0.1:7400/");
        let with_scheme = internal_endpoint("http://pd-0:7400", Role::Pd, second).expect("ok");
        assert_eq!(with_scheme.uri().host(), Some("pd-0"));
        assert!(internal_endpoint("not a uri", Role::Pd, second).is_err());
    }

    #[test]
    fn under_mutual_tls_every_channel_is_https() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = vectron_tls::Authority::generate().expect("ca");
        ca.write(dir.path()).expect("ca files");
        ca.issue(&vectron_tls::CertRequest {
            common_name: "gateway".into(),
            roles: vec![Role::Gateway],
            hosts: vec![],
            days: 1,
        })
        .expect("issue")
        .write(dir.path(), "gateway")
        .expect("write");
        let identity =
            vectron_tls::Identity::load(vectron_tls::TlsFiles::in_dir(dir.path(), "gateway"))
                .expect("identity");
        let security = Security::Mutual(std::sync::Arc::new(identity));
        let second = Duration::from_secs(1);
        for target in ["127.0.0.1:7500", "http://127.0.0.1:7500"] {
            let endpoint = endpoint_with(&security, target, Role::Worker, second).expect("ok");
            assert_eq!(endpoint.uri().scheme_str(), Some("https"), "{target}");
        }
    }

    /// Every RPC of the internal services has an entry in the access
    /// policy; a new RPC without one would be refused to everyone.
    #[test]
    fn every_internal_rpc_has_an_access_rule() {
        use vectron_tls::ServerKind;
        use vectron_tls::policy::allowed_roles;
        let protos = [
            (
                "vectron/pd/v1/pd.proto",
                "vectron.pd.v1.PlacementDriver",
                vec![ServerKind::Pd],
            ),
            (
                "vectron/raft/v1/raft.proto",
                "vectron.raft.v1.Raft",
                vec![ServerKind::Pd, ServerKind::Worker],
            ),
            (
                "vectron/worker/v1/worker.proto",
                "vectron.worker.v1.Worker",
                vec![ServerKind::Worker],
            ),
            (
                "vectron/auth/v1/auth.proto",
                "vectron.auth.v1.Auth",
                vec![ServerKind::Auth],
            ),
        ];
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut checked = 0;
        for (file, service, servers) in protos {
            let text = std::fs::read_to_string(root.join(file)).expect("proto");
            for line in text.lines() {
                let Some(rest) = line.trim().strip_prefix("rpc ") else {
                    continue;
                };
                let method = rest.split('(').next().unwrap_or_default().trim();
                for server in &servers {
                    let path = format!("/{service}/{method}");
                    assert!(allowed_roles(*server, &path).is_some(), "{server:?} {path}");
                    checked += 1;
                }
            }
        }
        assert!(checked > 40, "the proto files were read ({checked} rules)");
    }
}
