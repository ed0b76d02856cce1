//! Runs a gateway: binds the HTTP and gRPC listeners (under TLS when given a
//! certificate), serves the REST router and the `vectron.v1.Vectron`
//! service over one shared [`Frontdoor`], and stops both when asked. Does
//! network I/O.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::watch;
use tracing::info;
use vectron_config::Limits;
use vectron_proto::v1::vectron_server::VectronServer;

use crate::access::Access;
use crate::api::Gateway;
use crate::grpc::GrpcApi;
use crate::guard::Frontdoor;
use crate::limits::OverloadConfig;
use crate::listener::{self, PublicTlsFiles, RestListener};
use axum::serve::ListenerExt;

/// Why a gateway stopped.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The configuration is unusable.
    #[error("{0}")]
    Config(String),
    /// A server failed while running.
    #[error("{0}")]
    Serve(String),
}

/// Everything a gateway needs.
pub struct GatewayConfig {
    /// REST listen address.
    pub http_addr: SocketAddr,
    /// gRPC listen address.
    pub grpc_addr: SocketAddr,
    /// PD endpoints, host:port.
    pub pd_endpoints: Vec<String>,
    /// How callers are checked.
    pub access: Access,
    /// Input limits.
    pub limits: Limits,
    /// Rate limit, in-flight cap and timeout.
    pub overload: OverloadConfig,
    /// Where to serve `GET /metrics` (Prometheus text); off when `None`.
    pub metrics_addr: Option<SocketAddr>,
    /// TEST ONLY: serve strong reads stale (the chaos suite's planted bug).
    pub plant_stale_strong_reads: bool,
    /// TLS on the REST and gRPC ports; plaintext when `None`.
    pub tls: Option<PublicTlsFiles>,
}

/// Runs a gateway until `shutdown` resolves.
pub async fn run(
    config: GatewayConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), GatewayError> {
    let mut gateway = Gateway::new(&config.pd_endpoints, config.limits)
        .map_err(|e| GatewayError::Config(e.message))?;
    if config.plant_stale_strong_reads {
        gateway.plant_stale_strong_reads();
    }
    let auth_on = matches!(config.access, Access::Checked(_));
    let door = Arc::new(Frontdoor::new(gateway, config.access, config.overload));

    let (rest_cert, grpc_cert) = match &config.tls {
        Some(files) => {
            let load = |alpn: &[&str]| {
                listener::server_cert(files, alpn).map_err(|e| GatewayError::Config(e.to_string()))
            };
            (Some(load(&["h2", "http/1.1"])?), Some(load(&["h2"])?))
        }
        None => (None, None),
    };
    let http =
        RestListener::bind(config.http_addr, rest_cert).map_err(|source| GatewayError::Bind {
            addr: config.http_addr,
            source,
        })?;
    let grpc = listener::grpc_incoming(config.grpc_addr, grpc_cert).map_err(|source| {
        GatewayError::Bind {
            addr: config.grpc_addr,
            source,
        }
    })?;
    let metrics_listener = match config.metrics_addr {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| GatewayError::Bind { addr, source })?,
        ),
        None => None,
    };
    info!(http = %config.http_addr, grpc = %config.grpc_addr, metrics = ?config.metrics_addr, auth = auth_on, tls = config.tls.is_some(), "gateway listening");

    let (stop_tx, stop_rx) = watch::channel(false);
    let wait = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let body_limit = config.limits.max_body_bytes;
    let rest = axum::serve(
        http.tap_io(|_| {}),
        crate::rest::router(door.clone())
            .into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(wait(stop_rx.clone()));
    let metrics = metrics_listener.map(|listener| {
        let serve = axum::serve(listener, crate::rest::metrics_router(door.clone()))
            .with_graceful_shutdown(wait(stop_rx.clone()));
        tokio::spawn(async move { serve.await.map_err(|e| e.to_string()) })
    });
    let grpc_server = tonic::transport::Server::builder()
        .add_service(tonic::service::interceptor::InterceptedService::new(
            VectronServer::new(GrpcApi::new(door.clone()))
                .max_decoding_message_size(body_limit)
                .max_encoding_message_size(64 * 1024 * 1024),
            crate::grpc::admit_address(door),
        ))
        .serve_with_incoming_shutdown(grpc, wait(stop_rx));
    let rest = tokio::spawn(async move { rest.await.map_err(|e| e.to_string()) });
    let grpc_server = tokio::spawn(async move { grpc_server.await.map_err(|e| e.to_string()) });

    shutdown.await;
    info!("gateway shutting down");
    let _ = stop_tx.send(true);
    let tasks = [
        ("REST", Some(rest)),
        ("gRPC", Some(grpc_server)),
        ("metrics", metrics),
    ];
    for (name, task) in tasks.into_iter().filter_map(|(n, t)| t.map(|t| (n, t))) {
        match task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(GatewayError::Serve(format!("{name} server: {e}"))),
            Err(e) => return Err(GatewayError::Serve(format!("{name} server task: {e}"))),
        }
    }
    Ok(())
}
