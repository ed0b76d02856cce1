//! How every internal gRPC connection is built. PD nodes, workers, the
//! gateway and auth reach each other through channels made here, so the
//! settings they share live in one place: no Nagle delay, a bounded connect,
//! and an optional fixed source address for every outgoing connection of the
//! process (`--outbound-ip`: on a host with several addresses it makes a
//! process's traffic come from its own; the chaos suite gives each process
//! its own loopback address this way so that its fault-injecting proxies can
//! tell peers apart). Builds values only; no I/O.

use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::Duration;

use tonic::transport::Endpoint;

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

/// An endpoint for `target` (`host:port`, or a URL with a scheme) with the
/// shared settings and `connect_timeout`; callers add their own timeouts
/// and keep-alives, then connect (usually lazily).
pub fn internal_endpoint(
    target: &str,
    connect_timeout: Duration,
) -> Result<Endpoint, tonic::transport::Error> {
    let url = if target.contains("://") {
        target.to_owned()
    } else {
        format!("http://{target}")
    };
    Ok(Endpoint::from_shared(url)?
        .connect_timeout(connect_timeout)
        .tcp_nodelay(true)
        .local_address(outbound_ip()))
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
        let endpoint = internal_endpoint("127.0.0.1:7400", Duration::from_secs(1)).expect("ok");
        assert_eq!(endpoint.uri().to_string(), "http://127.0.0.1:7400/");
        let with_scheme =
            internal_endpoint("http://pd-0:7400", Duration::from_secs(1)).expect("ok");
        assert_eq!(with_scheme.uri().host(), Some("pd-0"));
        assert!(internal_endpoint("not a uri", Duration::from_secs(1)).is_err());
    }
}
