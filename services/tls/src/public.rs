//! TLS on a public listener (the gateway's REST and gRPC ports): a server
//! certificate and key read from two PEM files and read again when they
//! change, no client certificate asked for, and an accept loop that
//! completes each handshake off the loop (bounded by
//! [`crate::incoming::HANDSHAKE_TIMEOUT`]) so a slow client cannot hold up
//! others.
//!
//! Rotation contract: as for the internal identity ([`crate::material`]):
//! replace the files and within [`crate::material::RELOAD_CHECK`] every new
//! connection gets the new certificate; a pair that does not load leaves
//! the previous one in force and is logged.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use rustls::ServerConfig;
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tonic::transport::server::{Connected, TcpConnectInfo};
use tracing::{debug, info, warn};

use crate::TlsError;
use crate::incoming::HANDSHAKE_TIMEOUT;
use crate::material::{RELOAD_CHECK, parse_certs, read};

type Stamps = [Option<(SystemTime, u64)>; 2];

struct Loaded {
    config: Arc<ServerConfig>,
    stamps: Stamps,
}

/// A public server certificate, reloaded when its files change.
pub struct ServerCert {
    cert: PathBuf,
    key: PathBuf,
    alpn: Vec<Vec<u8>>,
    state: Mutex<(Arc<Loaded>, Instant)>,
}

impl std::fmt::Debug for ServerCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerCert")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish()
    }
}

fn stamps(cert: &Path, key: &Path) -> Stamps {
    let stamp = |path: &Path| {
        std::fs::metadata(path)
            .ok()
            .and_then(|m| Some((m.modified().ok()?, m.len())))
    };
    [stamp(cert), stamp(key)]
}

fn load(cert: &Path, key: &Path, alpn: &[Vec<u8>]) -> Result<Loaded, TlsError> {
    let stamps = stamps(cert, key);
    let chain = parse_certs(&read(cert)?, cert)?;
    let key_pem = read(key)?;
    let private = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| TlsError::Pem {
        path: key.to_owned(),
        what: format!("unreadable private key: {e}"),
    })?;
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(chain, private)
            .map_err(|e| TlsError::Config(format!("{}: {e}", key.display())))?;
    config.alpn_protocols = alpn.to_vec();
    Ok(Loaded {
        config: Arc::new(config),
        stamps,
    })
}

impl ServerCert {
    /// Loads `cert` (chain, PEM) and `key` (PEM); `alpn` lists the
    /// protocols offered (`h2` for gRPC, `h2` and `http/1.1` for REST). An
    /// error names the file and what is wrong.
    pub fn load(cert: PathBuf, key: PathBuf, alpn: &[&str]) -> Result<ServerCert, TlsError> {
        let alpn: Vec<Vec<u8>> = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
        let loaded = load(&cert, &key, &alpn)?;
        Ok(ServerCert {
            cert,
            key,
            alpn,
            state: Mutex::new((Arc::new(loaded), Instant::now())),
        })
    }

    /// The configuration for the next accepted connection.
    pub fn server_config(&self) -> Arc<ServerConfig> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.1.elapsed() >= RELOAD_CHECK {
            state.1 = Instant::now();
            if stamps(&self.cert, &self.key) != state.0.stamps {
                match load(&self.cert, &self.key, &self.alpn) {
                    Ok(loaded) => {
                        info!(cert = %self.cert.display(), "public TLS certificate reloaded");
                        state.0 = Arc::new(loaded);
                    }
                    Err(e) => {
                        warn!(error = %e, "public TLS files changed but do not load; the previous certificate stays in force");
                    }
                }
            }
        }
        state.0.config.clone()
    }
}

/// An accepted public connection.
pub enum PublicIo {
    /// Plaintext (no certificate configured).
    Plain(TcpStream),
    /// TLS.
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

impl PublicIo {
    fn tcp(&self) -> &TcpStream {
        match self {
            PublicIo::Plain(tcp) => tcp,
            PublicIo::Tls(tls) => tls.get_ref().0,
        }
    }
}

impl Connected for PublicIo {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.tcp().connect_info()
    }
}

impl AsyncRead for PublicIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            PublicIo::Plain(io) => Pin::new(io).poll_read(cx, buf),
            PublicIo::Tls(io) => Pin::new(io.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for PublicIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            PublicIo::Plain(io) => Pin::new(io).poll_write(cx, buf),
            PublicIo::Tls(io) => Pin::new(io.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            PublicIo::Plain(io) => Pin::new(io).poll_flush(cx),
            PublicIo::Tls(io) => Pin::new(io.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            PublicIo::Plain(io) => Pin::new(io).poll_shutdown(cx),
            PublicIo::Tls(io) => Pin::new(io.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Accepted public connections with their callers' addresses, in order of
/// completed handshakes; the listener closes when this is dropped.
pub type PublicIncoming = mpsc::Receiver<(PublicIo, SocketAddr)>;

/// Binds `addr` and accepts connections, under TLS with `cert` when given,
/// until the returned receiver is dropped. Returns the bound address.
pub fn bind_public(
    addr: SocketAddr,
    cert: Option<Arc<ServerCert>>,
) -> io::Result<(SocketAddr, PublicIncoming)> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let listener = TcpListener::from_std(listener)?;
    let local = listener.local_addr()?;
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(accept_loop(listener, cert, tx));
    Ok((local, rx))
}

async fn accept_loop(
    listener: TcpListener,
    cert: Option<Arc<ServerCert>>,
    tx: mpsc::Sender<(PublicIo, SocketAddr)>,
) {
    loop {
        let accepted = tokio::select! {
            () = tx.closed() => return,
            accepted = listener.accept() => accepted,
        };
        let (tcp, remote) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                warn!(error = %e, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let Some(cert) = cert.clone() else {
            if tx.send((PublicIo::Plain(tcp), remote)).await.is_err() {
                return;
            }
            continue;
        };
        let tx = tx.clone();
        tokio::spawn(async move {
            let acceptor = TlsAcceptor::from(cert.server_config());
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => {
                    let _ = tx.send((PublicIo::Tls(Box::new(tls)), remote)).await;
                }
                Ok(Err(e)) => debug!(%remote, error = %e, "TLS handshake failed"),
                Err(_) => debug!(%remote, "TLS handshake timed out"),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Authority, CertRequest, Role};
    use rustls::ClientConfig;
    use rustls_pki_types::{CertificateDer, ServerName};

    fn issue_server(ca: &Authority, dir: &Path) {
        let cert = ca
            .issue(&CertRequest {
                common_name: "api".into(),
                roles: vec![Role::Gateway],
                hosts: vec!["127.0.0.1".into(), "localhost".into()],
                days: 1,
            })
            .expect("issue");
        cert.write(dir, "api").expect("write");
    }

    /// Connects as a client trusting `ca` and verifying the address
    /// `127.0.0.1`; the server's certificate when the handshake succeeds.
    async fn connect(addr: SocketAddr, ca: &Authority) -> Option<CertificateDer<'static>> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca.cert_pem().as_bytes()) {
            roots.add(cert.expect("pem")).expect("root");
        }
        let config =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .expect("versions")
                .with_root_certificates(roots)
                .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = TcpStream::connect(addr).await.expect("tcp");
        let name = ServerName::try_from("127.0.0.1").expect("name");
        let tls = connector.connect(name, tcp).await.ok()?;
        Some(tls.get_ref().1.peer_certificates()?[0].clone().into_owned())
    }

    #[tokio::test]
    async fn clients_verify_the_address_and_a_rotated_certificate_is_served_without_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = Authority::generate().expect("ca");
        issue_server(&ca, dir.path());
        let cert = Arc::new(
            ServerCert::load(
                dir.path().join("api.pem"),
                dir.path().join("api.key"),
                &["h2"],
            )
            .expect("load"),
        );
        let (addr, mut incoming) =
            bind_public("127.0.0.1:0".parse().expect("addr"), Some(cert)).expect("bind");

        let first = connect(addr, &ca)
            .await
            .expect("a client trusting the CA gets in");
        let (io, _) = incoming.recv().await.expect("accepted");
        assert!(matches!(io, PublicIo::Tls(_)));
        assert!(
            connect(addr, &Authority::generate().expect("other"))
                .await
                .is_none(),
            "a client trusting another CA refuses the server"
        );

        issue_server(&ca, dir.path());
        tokio::time::sleep(RELOAD_CHECK + Duration::from_millis(200)).await;
        let second = connect(addr, &ca)
            .await
            .expect("still served after rotation");
        assert_ne!(first, second, "the rotated certificate is served");

        // A key that does not match the certificate: the last good pair stays.
        std::fs::write(dir.path().join("api.key"), ca.key_pem()).expect("bad key");
        tokio::time::sleep(RELOAD_CHECK + Duration::from_millis(200)).await;
        let third = connect(addr, &ca)
            .await
            .expect("served with the last good pair");
        assert_eq!(second, third);
    }

    #[tokio::test]
    async fn without_a_certificate_the_listener_is_plaintext() {
        let (addr, mut incoming) =
            bind_public("127.0.0.1:0".parse().expect("addr"), None).expect("bind");
        let tcp = TcpStream::connect(addr).await.expect("tcp");
        let (io, remote) = incoming.recv().await.expect("accepted");
        assert!(matches!(io, PublicIo::Plain(_)));
        assert_eq!(remote, tcp.local_addr().expect("client address"));
        assert_eq!(
            io.connect_info().remote_addr(),
            Some(remote),
            "tonic sees the caller's address"
        );
    }
}
