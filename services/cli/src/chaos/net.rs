//! The chaos run's network: a fault-injecting TCP proxy in front of every
//! member's port, so that links between members can be cut (partitions) and
//! slowed (delay) without root, network namespaces or kernel queueing
//! disciplines.
//!
//! Every member listens on a private port and advertises its proxy's; every
//! member's own outgoing connections leave from its own loopback address
//! (`--outbound-ip`), so a proxy knows which member each connection comes
//! from. A link between two members is a pair of addresses:
//!
//! - **cut**: bytes stop flowing both ways on every connection between the
//!   two, and new connections are accepted but carry nothing — the way a
//!   silent partition looks to TCP (no reset; requests time out). Bytes
//!   held back flow again when the cut heals, as TCP's retransmissions
//!   would deliver them.
//! - **delay**: every chunk is held for the larger of the two members'
//!   delays before it is passed on, without limiting throughput.
//!
//! Connections from addresses that are no member's (the run's own clients,
//! at 127.0.0.1) are never cut or delayed. Does network I/O.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::ChaosError;

/// Chunks in flight per direction of one connection while delayed.
const DELAY_QUEUE: usize = 1024;

/// What the network does to traffic between members right now.
#[derive(Debug, Default, Clone)]
struct Rules {
    /// Cut links, each as (lower, higher) address.
    cut: BTreeSet<(IpAddr, IpAddr)>,
    /// Extra one-way delay of each member's traffic.
    delay: HashMap<IpAddr, Duration>,
}

fn link(a: IpAddr, b: IpAddr) -> (IpAddr, IpAddr) {
    if a <= b { (a, b) } else { (b, a) }
}

impl Rules {
    fn is_cut(&self, a: IpAddr, b: IpAddr) -> bool {
        a != b && self.cut.contains(&link(a, b))
    }

    fn delay(&self, a: IpAddr, b: IpAddr) -> Duration {
        let of = |ip| self.delay.get(&ip).copied().unwrap_or_default();
        of(a).max(of(b))
    }
}

/// The rules, shared with every proxy task; a version counter wakes the
/// tasks waiting for a cut to heal.
struct Shared {
    rules: RwLock<Rules>,
    version: watch::Sender<u64>,
}

impl Shared {
    fn rules(&self) -> Rules {
        self.rules
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn change(&self, edit: impl FnOnce(&mut Rules)) {
        edit(&mut self.rules.write().unwrap_or_else(|p| p.into_inner()));
        self.version.send_modify(|v| *v += 1);
    }

    fn is_cut(&self, a: IpAddr, b: IpAddr) -> bool {
        self.rules
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .is_cut(a, b)
    }

    fn delay(&self, a: IpAddr, b: IpAddr) -> Duration {
        self.rules
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .delay(a, b)
    }

    /// Returns once the link between `a` and `b` is not cut.
    async fn wait_open(&self, a: IpAddr, b: IpAddr) {
        let mut version = self.version.subscribe();
        while self.is_cut(a, b) {
            if version.changed().await.is_err() {
                return;
            }
        }
    }
}

/// The proxies of one run. Dropping it stops every proxy and closes every
/// connection through them.
pub struct Network {
    shared: Arc<Shared>,
    proxies: Vec<JoinHandle<()>>,
}

impl Default for Network {
    fn default() -> Self {
        Self::new()
    }
}

impl Network {
    /// A network with no proxies and nothing cut.
    pub fn new() -> Self {
        let (version, _) = watch::channel(0);
        Self {
            shared: Arc::new(Shared {
                rules: RwLock::new(Rules::default()),
                version,
            }),
            proxies: Vec::new(),
        }
    }

    /// Starts a proxy at `listen` for the member whose address is `member`,
    /// forwarding to its private port `upstream`.
    pub async fn front(
        &mut self,
        member: IpAddr,
        listen: SocketAddr,
        upstream: SocketAddr,
    ) -> Result<(), ChaosError> {
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|e| ChaosError::Cluster(format!("proxy at {listen}: {e}")))?;
        let shared = self.shared.clone();
        self.proxies.push(tokio::spawn(async move {
            loop {
                let Ok((client, from)) = listener.accept().await else {
                    // Out of descriptors, say: let connections close.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let shared = shared.clone();
                tokio::spawn(async move {
                    let _ = carry(shared, client, from.ip(), member, upstream).await;
                });
            }
        }));
        Ok(())
    }

    /// Cuts every link between a member of `side_a` and one of `side_b`.
    pub fn cut(&self, side_a: &[IpAddr], side_b: &[IpAddr]) {
        self.shared.change(|rules| {
            for &a in side_a {
                for &b in side_b {
                    if a != b {
                        rules.cut.insert(link(a, b));
                    }
                }
            }
        });
    }

    /// Delays all traffic of `member` by `by` (each way).
    pub fn slow(&self, member: IpAddr, by: Duration) {
        self.shared.change(|rules| {
            rules.delay.insert(member, by);
        });
    }

    /// Heals every cut and removes every delay.
    pub fn heal(&self) {
        self.shared.change(|rules| *rules = Rules::default());
    }

    /// Whether any link is cut or slowed now.
    pub fn is_faulty(&self) -> bool {
        let rules = self.shared.rules();
        !rules.cut.is_empty() || !rules.delay.is_empty()
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for proxy in &self.proxies {
            proxy.abort();
        }
    }
}

/// Carries one connection from `from` to `member`'s private port, subject
/// to the rules for the link between them.
async fn carry(
    shared: Arc<Shared>,
    client: TcpStream,
    from: IpAddr,
    member: IpAddr,
    upstream: SocketAddr,
) -> std::io::Result<()> {
    // A cut link answers nothing, not even the connect upstream.
    shared.wait_open(from, member).await;
    let server = TcpStream::connect(upstream).await?;
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    // Either side closing ends the connection as a whole.
    tokio::select! {
        there = pump(shared.clone(), client_read, server_write, from, member) => there,
        back = pump(shared, server_read, client_write, from, member) => back,
    }
}

/// A task that ends when its handle is dropped (with the connection it
/// serves, when the other direction ends first).
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Copies `reader` to `writer`, holding each chunk while the link is cut and
/// for the link's delay. A reader task and a writer task joined by a queue,
/// so a delay adds latency without limiting throughput.
async fn pump(
    shared: Arc<Shared>,
    mut reader: OwnedReadHalf,
    mut writer: OwnedWriteHalf,
    a: IpAddr,
    b: IpAddr,
) -> std::io::Result<()> {
    let (queue, mut queued) = mpsc::channel::<(Instant, Vec<u8>)>(DELAY_QUEUE);
    let _reading = AbortOnDrop({
        let shared = shared.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                shared.wait_open(a, b).await;
                let n = match reader.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                let due = Instant::now() + shared.delay(a, b);
                if queue.send((due, buf[..n].to_vec())).await.is_err() {
                    return;
                }
            }
        })
    });
    let mut result = Ok(());
    while let Some((due, chunk)) = queued.recv().await {
        tokio::time::sleep_until(due).await;
        shared.wait_open(a, b).await;
        if let Err(e) = writer.write_all(&chunk).await {
            result = Err(e);
            break;
        }
    }
    // The reader saw the end (or an error): pass the end on, once the link
    // would carry it.
    shared.wait_open(a, b).await;
    let _ = writer.shutdown().await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 10, 0, last])
    }

    #[test]
    fn cuts_are_symmetric_and_never_cut_a_member_from_itself() {
        let mut rules = Rules::default();
        rules.cut.insert(link(ip(2), ip(1)));
        assert!(rules.is_cut(ip(1), ip(2)));
        assert!(rules.is_cut(ip(2), ip(1)));
        assert!(!rules.is_cut(ip(1), ip(3)));
        assert!(!rules.is_cut(ip(1), ip(1)));
    }

    #[test]
    fn a_link_takes_the_larger_delay_of_its_ends() {
        let mut rules = Rules::default();
        rules.delay.insert(ip(1), Duration::from_millis(50));
        rules.delay.insert(ip(2), Duration::from_millis(200));
        assert_eq!(rules.delay(ip(1), ip(2)), Duration::from_millis(200));
        assert_eq!(rules.delay(ip(1), ip(3)), Duration::from_millis(50));
        assert_eq!(rules.delay(ip(3), ip(4)), Duration::ZERO);
    }

    /// An echo server at a private port, fronted by a proxy for member
    /// `ip(9)`; returns the proxy's address.
    async fn echo_behind_proxy(network: &mut Network) -> SocketAddr {
        let server = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let upstream = server.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = server.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = conn.read(&mut buf).await {
                        if n == 0 || conn.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        let probe = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let listen = probe.local_addr().expect("addr");
        drop(probe);
        network.front(ip(9), listen, upstream).await.expect("proxy");
        listen
    }

    /// Connects to `proxy` from `source` and returns the echo of one
    /// message, or `None` when none comes within `wait`.
    async fn echo_from(source: IpAddr, proxy: SocketAddr, wait: Duration) -> Option<Duration> {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind(SocketAddr::new(source, 0))
            .expect("bind source");
        let mut conn = socket.connect(proxy).await.expect("connect");
        let started = Instant::now();
        conn.write_all(b"ping").await.expect("write");
        let mut buf = [0u8; 4];
        match tokio::time::timeout(wait, conn.read_exact(&mut buf)).await {
            Ok(Ok(_)) => {
                assert_eq!(&buf, b"ping");
                Some(started.elapsed())
            }
            _ => None,
        }
    }

    #[tokio::test]
    async fn a_cut_link_carries_nothing_until_it_heals_and_others_pass() {
        let mut network = Network::new();
        let proxy = echo_behind_proxy(&mut network).await;
        let wait = Duration::from_secs(2);
        assert!(echo_from(ip(1), proxy, wait).await.is_some());
        network.cut(&[ip(1)], &[ip(9)]);
        assert!(network.is_faulty());
        assert!(
            echo_from(ip(1), proxy, Duration::from_millis(500))
                .await
                .is_none(),
            "a cut link must carry nothing"
        );
        assert!(
            echo_from(ip(2), proxy, wait).await.is_some(),
            "another member's link stays open"
        );
        assert!(
            echo_from("127.0.0.1".parse().expect("ip"), proxy, wait)
                .await
                .is_some(),
            "the run's own clients are never cut"
        );

        // A connection held by the cut delivers once the cut heals.
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.bind(SocketAddr::new(ip(1), 0)).expect("bind");
        let mut held = socket.connect(proxy).await.expect("connect");
        held.write_all(b"late").await.expect("write");
        tokio::time::sleep(Duration::from_millis(200)).await;
        network.heal();
        assert!(!network.is_faulty());
        let mut buf = [0u8; 4];
        tokio::time::timeout(wait, held.read_exact(&mut buf))
            .await
            .expect("held bytes arrive after the heal")
            .expect("read");
        assert_eq!(&buf, b"late");
    }

    #[tokio::test]
    async fn a_slowed_member_waits_out_its_delay_each_way() {
        let mut network = Network::new();
        let proxy = echo_behind_proxy(&mut network).await;
        network.slow(ip(9), Duration::from_millis(150));
        let took = echo_from(ip(1), proxy, Duration::from_secs(3))
            .await
            .expect("echo");
        // 150 ms there and 150 ms back.
        assert!(took >= Duration::from_millis(300), "took {took:?}");
    }
}
