//! The tower layer every internal gRPC server runs its services under: it
//! reads the caller's roles from the connection ([`crate::PeerInfo`]) and
//! answers PERMISSION_DENIED, naming the method and the roles it needs,
//! before a refused call reaches a service.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tonic::body::Body;
use tower::{Layer, Service};
use tracing::warn;

use crate::PeerInfo;
use crate::policy::{ServerKind, authorize};

/// Wraps a server's routes with the authorisation of `server`'s table.
#[derive(Debug, Clone, Copy)]
pub struct AuthorizeLayer {
    server: ServerKind,
}

impl AuthorizeLayer {
    /// The layer for `server`.
    pub fn new(server: ServerKind) -> AuthorizeLayer {
        AuthorizeLayer { server }
    }
}

impl<S> Layer<S> for AuthorizeLayer {
    type Service = Authorize<S>;

    fn layer(&self, inner: S) -> Authorize<S> {
        Authorize {
            inner,
            server: self.server,
        }
    }
}

/// The service [`AuthorizeLayer`] makes.
#[derive(Debug, Clone)]
pub struct Authorize<S> {
    inner: S,
    server: ServerKind,
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S> Service<http::Request<Body>> for Authorize<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let peer = request.extensions().get::<PeerInfo>();
        // A connection that did not come through `crate::bind` carries no
        // peer information; it is treated as naming no role.
        let caller = match peer {
            Some(peer) => peer.roles,
            None => Some(crate::RoleSet::EMPTY),
        };
        match authorize(self.server, request.uri().path(), caller) {
            Ok(()) => {
                // The clone is not known to be ready; call the one that is.
                let clone = self.inner.clone();
                let mut ready = std::mem::replace(&mut self.inner, clone);
                Box::pin(ready.call(request))
            }
            Err(denied) => {
                let remote = peer.and_then(|p| p.remote_addr);
                warn!(remote = ?remote, %denied, "internal call refused");
                let status = tonic::Status::permission_denied(denied.to_string());
                Box::pin(std::future::ready(Ok(status.into_http())))
            }
        }
    }
}
