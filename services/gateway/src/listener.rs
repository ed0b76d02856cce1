//! The gateway's public listeners, with or without TLS: the accepted
//! connections of `vectron_tls::bind_public`, handed to axum (REST) and
//! tonic (gRPC). Does network I/O.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use vectron_tls::{PublicIncoming, PublicIo, ServerCert, TlsError};

/// The certificate and key files of the public API (`--tls-cert`,
/// `--tls-key`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicTlsFiles {
    /// The certificate chain, PEM.
    pub cert: PathBuf,
    /// The private key, PEM.
    pub key: PathBuf,
}

/// Loads the certificate for a listener offering `alpn`.
pub fn server_cert(files: &PublicTlsFiles, alpn: &[&str]) -> Result<Arc<ServerCert>, TlsError> {
    ServerCert::load(files.cert.clone(), files.key.clone(), alpn).map(Arc::new)
}

/// The REST listener, as axum takes it.
pub struct RestListener {
    incoming: PublicIncoming,
    local: SocketAddr,
}

impl RestListener {
    /// Binds `addr`, under TLS with `cert` when given.
    pub fn bind(addr: SocketAddr, cert: Option<Arc<ServerCert>>) -> io::Result<RestListener> {
        let (local, incoming) = vectron_tls::bind_public(addr, cert)?;
        Ok(RestListener { incoming, local })
    }
}

impl axum::serve::Listener for RestListener {
    type Io = PublicIo;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (PublicIo, SocketAddr) {
        match self.incoming.recv().await {
            Some(accepted) => accepted,
            // The accept loop ends only when this listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }
}

/// The gRPC listener, as tonic takes it: binds `addr`, under TLS with
/// `cert` when given.
pub fn grpc_incoming(
    addr: SocketAddr,
    cert: Option<Arc<ServerCert>>,
) -> io::Result<impl Stream<Item = Result<PublicIo, io::Error>>> {
    let (_, incoming) = vectron_tls::bind_public(addr, cert)?;
    Ok(ReceiverStream::new(incoming).map(|(io, _)| Ok(io)))
}
