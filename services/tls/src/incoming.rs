//! The listener of an internal gRPC server: accepts TCP connections and,
//! under mutual TLS, completes each handshake off the accept loop (bounded
//! by [`HANDSHAKE_TIMEOUT`]) before handing the connection to tonic with the
//! caller's roles attached ([`PeerInfo`], read by [`crate::AuthorizeLayer`]).
//! A connection whose certificate does not chain to the CA never reaches a
//! service.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Connected;
use tracing::{debug, warn};

use crate::{Identity, RoleSet, Security, roles_of};

/// How long a client has to complete its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Who is on the other end of an internal connection.
#[derive(Debug, Clone)]
pub struct PeerInfo {
    /// The caller's address.
    pub remote_addr: Option<SocketAddr>,
    /// The roles the caller's verified certificate names; `None` on a
    /// plaintext listener (`--insecure-internal`), where every caller is
    /// trusted.
    pub roles: Option<RoleSet>,
}

/// An accepted internal connection.
pub enum InternalIo {
    /// A plaintext connection (`--insecure-internal`).
    Plain(TcpStream),
    /// A connection whose client presented a certificate from the CA.
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>, RoleSet),
}

impl Connected for InternalIo {
    type ConnectInfo = PeerInfo;

    fn connect_info(&self) -> PeerInfo {
        match self {
            InternalIo::Plain(tcp) => PeerInfo {
                remote_addr: tcp.peer_addr().ok(),
                roles: None,
            },
            InternalIo::Tls(tls, roles) => PeerInfo {
                remote_addr: tls.get_ref().0.peer_addr().ok(),
                roles: Some(*roles),
            },
        }
    }
}

impl AsyncRead for InternalIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            InternalIo::Plain(io) => Pin::new(io).poll_read(cx, buf),
            InternalIo::Tls(io, _) => Pin::new(io.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for InternalIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            InternalIo::Plain(io) => Pin::new(io).poll_write(cx, buf),
            InternalIo::Tls(io, _) => Pin::new(io.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            InternalIo::Plain(io) => Pin::new(io).poll_flush(cx),
            InternalIo::Tls(io, _) => Pin::new(io.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            InternalIo::Plain(io) => Pin::new(io).poll_shutdown(cx),
            InternalIo::Tls(io, _) => Pin::new(io.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            InternalIo::Plain(io) => Pin::new(io).poll_write_vectored(cx, bufs),
            InternalIo::Tls(io, _) => Pin::new(io.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            InternalIo::Plain(io) => io.is_write_vectored(),
            InternalIo::Tls(io, _) => io.is_write_vectored(),
        }
    }
}

/// The stream of accepted connections tonic serves.
pub type Incoming = ReceiverStream<Result<InternalIo, io::Error>>;

/// Binds `addr` and accepts connections under `security` until the returned
/// stream is dropped (the server stopped), which also closes the listener.
/// Returns the bound address (useful with port 0).
pub fn bind(addr: SocketAddr, security: &Security) -> io::Result<(SocketAddr, Incoming)> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let listener = TcpListener::from_std(listener)?;
    let local = listener.local_addr()?;
    let (tx, rx) = mpsc::channel(64);
    let identity = match security {
        Security::Insecure => None,
        Security::Mutual(identity) => Some(identity.clone()),
    };
    tokio::spawn(accept_loop(listener, identity, tx));
    Ok((local, ReceiverStream::new(rx)))
}

async fn accept_loop(
    listener: TcpListener,
    identity: Option<Arc<Identity>>,
    tx: mpsc::Sender<Result<InternalIo, io::Error>>,
) {
    loop {
        let accepted = tokio::select! {
            () = tx.closed() => return,
            accepted = listener.accept() => accepted,
        };
        let (tcp, remote) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Out of file descriptors and the like: back off, keep serving.
                warn!(error = %e, "accepting an internal connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let Some(identity) = identity.clone() else {
            if tx.send(Ok(InternalIo::Plain(tcp))).await.is_err() {
                return;
            }
            continue;
        };
        let tx = tx.clone();
        tokio::spawn(async move {
            let acceptor = TlsAcceptor::from(identity.server_config());
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => {
                    let roles = tls
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|certs| certs.first())
                        .map(roles_of)
                        .unwrap_or(RoleSet::EMPTY);
                    let _ = tx.send(Ok(InternalIo::Tls(Box::new(tls), roles))).await;
                }
                Ok(Err(e)) => debug!(%remote, error = %e, "internal TLS handshake refused"),
                Err(_) => debug!(%remote, "internal TLS handshake timed out"),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Authority, CertRequest, Role, TlsFiles};
    use rustls::ClientConfig;
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    use tokio_stream::StreamExt;

    fn issue(ca: &Authority, dir: &std::path::Path, name: &str, roles: &[Role]) -> TlsFiles {
        ca.issue(&CertRequest {
            common_name: name.into(),
            roles: roles.to_vec(),
            hosts: vec![],
            days: 1,
        })
        .expect("issue")
        .write(dir, name)
        .expect("write");
        TlsFiles::in_dir(dir, name)
    }

    /// A rustls client with `files`' identity (or none), trusting `files.ca`.
    fn client(files: &TlsFiles, with_cert: bool) -> tokio_rustls::TlsConnector {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for ca in CertificateDer::pem_file_iter(&files.ca).expect("ca") {
            roots.add(ca.expect("ca pem")).expect("root");
        }
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots);
        let mut config = if with_cert {
            let chain: Vec<_> = CertificateDer::pem_file_iter(&files.cert)
                .expect("cert")
                .map(|c| c.expect("cert pem"))
                .collect();
            let key = PrivateKeyDer::from_pem_file(&files.key).expect("key");
            builder
                .with_client_auth_cert(chain, key)
                .expect("client auth")
        } else {
            builder.with_no_client_auth()
        };
        config.alpn_protocols = vec![b"h2".to_vec()];
        tokio_rustls::TlsConnector::from(Arc::new(config))
    }

    /// Connects and returns the server's certificate if the server accepted
    /// the client (it answers a byte only once accepted).
    async fn handshake(
        addr: SocketAddr,
        connector: &tokio_rustls::TlsConnector,
        server_role: Role,
        incoming: &mut Incoming,
    ) -> Option<(CertificateDer<'static>, RoleSet)> {
        let tcp = TcpStream::connect(addr).await.expect("tcp");
        let name = ServerName::try_from(server_role.dns_name()).expect("name");
        let tls = connector.connect(name, tcp).await.ok()?;
        let server_cert = tls.get_ref().1.peer_certificates()?[0].clone().into_owned();
        // TLS 1.3 reports a refused client certificate only after the
        // client's side completes: the server side decides.
        let accepted = tokio::time::timeout(Duration::from_secs(2), incoming.next()).await;
        match accepted {
            Ok(Some(Ok(io))) => Some((server_cert, io.connect_info().roles.expect("tls"))),
            _ => None,
        }
    }

    #[tokio::test]
    async fn only_certificates_from_the_ca_get_in_and_rotation_needs_no_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = Authority::generate().expect("ca");
        ca.write(dir.path()).expect("ca files");
        let server_files = issue(&ca, dir.path(), "pd-1", &[Role::Pd]);
        let identity = Arc::new(Identity::load(server_files.clone()).expect("identity"));
        let (addr, mut incoming) = bind(
            "127.0.0.1:0".parse().expect("addr"),
            &Security::Mutual(identity.clone()),
        )
        .expect("bind");

        let worker = issue(&ca, dir.path(), "worker-1", &[Role::Worker]);
        let (first_cert, roles) = handshake(addr, &client(&worker, true), Role::Pd, &mut incoming)
            .await
            .expect("a worker certificate from the CA is accepted");
        assert_eq!(roles, RoleSet::of(&[Role::Worker]));

        assert!(
            handshake(addr, &client(&worker, false), Role::Pd, &mut incoming)
                .await
                .is_none(),
            "no client certificate: refused"
        );
        let other_dir = tempfile::tempdir().expect("tempdir");
        let other_ca = Authority::generate().expect("other ca");
        other_ca.write(other_dir.path()).expect("other ca files");
        let mut stranger = issue(&other_ca, other_dir.path(), "admin", &[Role::Admin]);
        // The stranger trusts our CA (so it gets as far as the server's
        // check) but its own certificate is from another CA.
        stranger.ca = server_files.ca.clone();
        assert!(
            handshake(addr, &client(&stranger, true), Role::Pd, &mut incoming)
                .await
                .is_none(),
            "a certificate from another CA: refused"
        );

        // Rotate the server's certificate in place; the next connection
        // sees the new one without a restart.
        issue(&ca, dir.path(), "pd-1", &[Role::Pd]);
        assert!(identity.reload_now(), "changed files are reloaded");
        let (second_cert, _) = handshake(addr, &client(&worker, true), Role::Pd, &mut incoming)
            .await
            .expect("still accepted after rotation");
        assert_ne!(first_cert, second_cert, "the rotated certificate is served");

        // A half-written rotation (a key that does not match the
        // certificate) keeps the last good material in force.
        std::fs::copy(dir.path().join("worker-1.key"), &server_files.key).expect("copy");
        assert!(!identity.reload_now(), "a mismatched key is not loaded");
        let (third_cert, _) = handshake(addr, &client(&worker, true), Role::Pd, &mut incoming)
            .await
            .expect("still served by the last good certificate");
        assert_eq!(third_cert, second_cert);
    }
}
