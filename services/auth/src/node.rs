//! Running the auth service as a process: load the JWT secret, connect to
//! PD, bootstrap the first admin, serve gRPC until shutdown. Does disk and
//! network I/O.

use std::fs::OpenOptions;
use std::future::Future;
use std::io::{ErrorKind, Write};
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{info, warn};
use vectron_pd::PdClient;

use crate::api_key::random_bytes;
use crate::core::{AuthCore, BOOTSTRAP_ADMIN};
use crate::error::{AuthError, Result};
use crate::service::AuthService;
use crate::store::AuthStore;
use crate::token::{DEFAULT_TOKEN_TTL, MIN_SECRET_LEN};

/// How long to keep trying to reach PD for the admin bootstrap.
const BOOTSTRAP_DEADLINE: Duration = Duration::from_secs(60);

/// Random bytes in a secret file made by [`load_or_create_secret`].
const GENERATED_SECRET_LEN: usize = 64;

/// What an auth service process needs.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// gRPC listen address.
    pub listen_addr: SocketAddr,
    /// PD endpoints, `host:port`.
    pub pd_endpoints: Vec<String>,
    /// File holding the JWT HMAC secret (at least 32 bytes).
    pub jwt_secret_file: PathBuf,
    /// Password of the `admin` user to create when no user exists.
    pub admin_password: Option<String>,
    /// Lifetime of issued tokens.
    pub token_ttl: Duration,
}

impl AuthConfig {
    /// A config with the default token lifetime and no bootstrap password.
    pub fn new(
        listen_addr: SocketAddr,
        pd_endpoints: Vec<String>,
        jwt_secret_file: PathBuf,
    ) -> Self {
        Self {
            listen_addr,
            pd_endpoints,
            jwt_secret_file,
            admin_password: None,
            token_ttl: DEFAULT_TOKEN_TTL,
        }
    }
}

fn secret_error(path: &Path, message: impl Into<String>) -> AuthError {
    AuthError::Secret {
        path: path.to_owned(),
        message: message.into(),
    }
}

/// Reads the JWT secret from `path`: the file's bytes with surrounding
/// whitespace trimmed (so `openssl rand -hex 32 > file` works), at least
/// [`MIN_SECRET_LEN`] of them.
pub fn read_secret(path: &Path) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).map_err(|e| secret_error(path, e.to_string()))?;
    let secret = bytes.trim_ascii().to_vec();
    if secret.len() < MIN_SECRET_LEN {
        return Err(secret_error(
            path,
            format!(
                "holds {} bytes; at least {MIN_SECRET_LEN} are required",
                secret.len()
            ),
        ));
    }
    Ok(secret)
}

/// Reads the JWT secret at `path`, first creating the file (mode 0600, with
/// its directory) holding 64 random bytes in hex when it does not exist.
pub fn load_or_create_secret(path: &Path) -> Result<Vec<u8>> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| secret_error(path, format!("creating {}: {e}", dir.display())))?;
    }
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(mut file) => {
            let mut raw = [0u8; GENERATED_SECRET_LEN];
            random_bytes(&mut raw)?;
            let mut text: String = raw.iter().map(|b| format!("{b:02x}")).collect();
            text.push('\n');
            file.write_all(text.as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(|e| secret_error(path, format!("writing: {e}")))?;
            info!(path = %path.display(), "created JWT secret file");
        }
        // Created earlier, or by a concurrent process: use it.
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
        Err(e) => return Err(secret_error(path, format!("creating: {e}"))),
    }
    read_secret(path)
}

/// Creates the bootstrap admin, retrying while PD is unreachable for up to
/// [`BOOTSTRAP_DEADLINE`].
pub async fn bootstrap_with_retry(core: &AuthCore, password: &str) -> Result<()> {
    let deadline = Instant::now() + BOOTSTRAP_DEADLINE;
    loop {
        match core.bootstrap_admin(password).await {
            Ok(true) => {
                info!(user = BOOTSTRAP_ADMIN, "bootstrap admin user created");
                return Ok(());
            }
            Ok(false) => {
                info!("users exist; bootstrap admin not created");
                return Ok(());
            }
            Err(AuthError::Pd(e)) if Instant::now() < deadline => {
                warn!(error = %e, "PD not answering; retrying admin bootstrap");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Runs the auth service described by `config` until `shutdown` completes.
pub async fn run(config: AuthConfig, shutdown: impl Future<Output = ()>) -> Result<()> {
    let secret = read_secret(&config.jwt_secret_file)?;
    let pd = PdClient::new(&config.pd_endpoints)?;
    let core = Arc::new(AuthCore::new(
        AuthStore::Pd(Arc::new(pd)),
        &secret,
        config.token_ttl,
    )?);
    // The first admin exists before the service answers, so a client that
    // sees the port open can log in.
    if let Some(password) = config.admin_password.as_deref() {
        bootstrap_with_retry(&core, password).await?;
    }
    let addr = config.listen_addr;
    let serve_error = |message: String| AuthError::Serve { addr, message };
    let (_, incoming) = vectron_tls::bind(addr, vectron_tls::current())
        .map_err(|e| serve_error(format!("cannot listen: {e}")))?;
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let mut server = tokio::spawn(
        tonic::transport::Server::builder()
            .layer(vectron_tls::AuthorizeLayer::new(
                vectron_tls::ServerKind::Auth,
            ))
            .add_service(AuthService::server(core.clone()))
            .serve_with_incoming_shutdown(incoming, async move {
                let _ = stop_rx.wait_for(|stop| *stop).await;
            }),
    );
    info!(%addr, pd = ?config.pd_endpoints, "auth service listening");

    let outcome = tokio::select! {
        () = shutdown => Ok(()),
        joined = &mut server => {
            return match joined {
                Ok(Ok(())) => Err(serve_error("server stopped unexpectedly".into())),
                Ok(Err(e)) => Err(serve_error(e.to_string())),
                Err(e) => Err(serve_error(format!("server task: {e}"))),
            };
        }
    };
    let _ = stop_tx.send(true);
    match server.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(serve_error(e.to_string())),
        Err(e) => return Err(serve_error(format!("server task: {e}"))),
    }
    info!(%addr, "auth service stopped");
    outcome
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use tonic::Code;

    use super::*;
    use crate::core::Credential;
    use crate::handle::AuthHandle;
    use crate::principal::Role;

    #[test]
    fn secret_file_is_created_once_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/jwt-secret");
        let first = load_or_create_secret(&path).unwrap();
        assert_eq!(first.len(), 2 * GENERATED_SECRET_LEN);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(load_or_create_secret(&path).unwrap(), first);
        assert_eq!(read_secret(&path).unwrap(), first);
    }

    #[test]
    fn missing_or_short_secret_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let err = read_secret(&missing).unwrap_err().to_string();
        assert!(err.contains(&missing.display().to_string()), "{err}");

        let short = dir.path().join("short");
        std::fs::write(&short, "0123456789\n").unwrap();
        let err = read_secret(&short).unwrap_err().to_string();
        assert!(err.contains(&short.display().to_string()), "{err}");
        assert!(err.contains("10 bytes"), "{err}");
    }

    #[tokio::test]
    async fn run_fails_fast_on_a_missing_secret() {
        let config = AuthConfig::new(
            "127.0.0.1:0".parse().unwrap(),
            vec!["127.0.0.1:1".into()],
            PathBuf::from("/nonexistent/vectron-jwt-secret"),
        );
        assert!(matches!(
            run(config, std::future::pending()).await,
            Err(AuthError::Secret { .. })
        ));
    }

    /// The remote handle, through the gRPC service, behaves like the core.
    #[tokio::test]
    async fn remote_handle_over_grpc() {
        let core =
            Arc::new(AuthCore::new(AuthStore::memory(), &[9u8; 32], DEFAULT_TOKEN_TTL).unwrap());
        assert!(core.bootstrap_admin("admin-password").await.unwrap());
        let incoming = tonic::transport::server::TcpIncoming::bind("127.0.0.1:0".parse().unwrap())
            .unwrap()
            .with_nodelay(Some(true));
        let addr = incoming.local_addr().unwrap();
        let (stop_tx, mut stop_rx) = watch::channel(false);
        let server = tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(AuthService::server(core.clone()))
                .serve_with_incoming_shutdown(incoming, async move {
                    let _ = stop_rx.wait_for(|stop| *stop).await;
                }),
        );

        let remote = AuthHandle::connect(&addr.to_string()).unwrap();
        let local = AuthHandle::Local(core);
        for handle in [&remote, &local] {
            let (token, _) = handle.login("admin", "admin-password").await.unwrap();
            let principal = handle
                .authenticate(&Credential::Bearer(token))
                .await
                .unwrap();
            assert!(principal.is_admin());
            let bad = handle.login("admin", "wrong-password").await.unwrap_err();
            assert_eq!(bad.code(), Code::Unauthenticated);
            assert_eq!(bad.message(), "invalid username or password");
        }

        remote
            .create_user(
                "reader",
                "reader-password",
                Role::Read,
                Some(vec!["a".into()]),
            )
            .await
            .unwrap();
        let dup = local
            .create_user("reader", "reader-password", Role::Read, None)
            .await
            .unwrap_err();
        assert_eq!(dup.code(), Code::AlreadyExists);
        let dup = remote
            .create_user("reader", "reader-password", Role::Read, None)
            .await
            .unwrap_err();
        assert_eq!(dup.code(), Code::AlreadyExists);
        let invalid = remote
            .create_user("x", "short", Role::Read, None)
            .await
            .unwrap_err();
        assert_eq!(invalid.code(), Code::InvalidArgument);
        let users = remote.list_users().await.unwrap();
        assert_eq!(users.len(), 2);
        assert_eq!(users[1].username, "reader");
        assert_eq!(users[1].collections, Some(vec!["a".to_owned()]));

        let (id, key) = remote
            .create_api_key("ci", Role::Write, None)
            .await
            .unwrap();
        let principal = remote
            .authenticate(&Credential::ApiKey(key.clone()))
            .await
            .unwrap();
        assert_eq!(principal.role, Role::Write);
        assert_eq!(principal.subject, format!("api-key:{id}"));
        assert_eq!(remote.list_api_keys().await.unwrap()[0].id, id);
        remote.delete_api_key(&id).await.unwrap();
        let gone = remote
            .authenticate(&Credential::ApiKey(key))
            .await
            .unwrap_err();
        assert_eq!(gone.code(), Code::Unauthenticated);
        assert_eq!(
            remote.delete_api_key(&id).await.unwrap_err().code(),
            Code::NotFound
        );
        remote.delete_user("reader").await.unwrap();
        assert_eq!(
            remote.delete_user("reader").await.unwrap_err().code(),
            Code::NotFound
        );

        let _ = stop_tx.send(true);
        server.await.unwrap().unwrap();
    }
}
