//! A process's internal TLS identity: the CA it trusts and its own
//! certificate and key, read from three PEM files and read again when they
//! change.
//!
//! Rotation contract: replace the files (each by a rename, as
//! [`crate::write_private`] does, or all three at once as a Kubernetes
//! Secret volume does) and within [`RELOAD_CHECK`] every new connection,
//! accepted or opened, uses the new material; connections already open keep
//! the certificate they were made with. A set of files that does not load
//! (a half-finished rotation: a key that does not match its certificate) is
//! not used; the last good material stays in force and the failure is
//! logged, so a rotation can never take a running process down.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tracing::{info, warn};

use crate::{Role, RoleSet, TlsError, roles_of};

/// How often the files are looked at for a change (their modification
/// times and sizes; nothing is read unless one changed).
pub const RELOAD_CHECK: Duration = Duration::from_secs(2);

/// Where a process's TLS identity lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The CA certificate(s) every peer's certificate must chain to.
    pub ca: PathBuf,
    /// This process's certificate (chain), PEM.
    pub cert: PathBuf,
    /// This process's private key, PEM.
    pub key: PathBuf,
}

impl TlsFiles {
    /// `ca.pem`, `<name>.pem` and `<name>.key` in `dir`.
    pub fn in_dir(dir: &Path, name: &str) -> TlsFiles {
        TlsFiles {
            ca: dir.join("ca.pem"),
            cert: dir.join(format!("{name}.pem")),
            key: dir.join(format!("{name}.key")),
        }
    }

    fn stamps(&self) -> [Option<(SystemTime, u64)>; 3] {
        let stamp = |path: &Path| {
            std::fs::metadata(path)
                .ok()
                .and_then(|m| Some((m.modified().ok()?, m.len())))
        };
        [stamp(&self.ca), stamp(&self.cert), stamp(&self.key)]
    }
}

/// One loaded set of files.
struct Loaded {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
    server: Arc<ServerConfig>,
    roles: RoleSet,
    stamps: [Option<(SystemTime, u64)>; 3],
}

struct State {
    loaded: Arc<Loaded>,
    checked: Instant,
}

/// A process's internal TLS identity, reloaded when its files change.
pub struct Identity {
    files: TlsFiles,
    state: Mutex<State>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("files", &self.files)
            .field("roles", &self.roles().to_string())
            .finish()
    }
}

pub(crate) fn read(path: &Path) -> Result<String, TlsError> {
    std::fs::read_to_string(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

/// The certificates in a PEM text.
pub(crate) fn parse_certs(
    pem: &str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Pem {
            path: path.to_owned(),
            what: format!("unreadable certificate: {e}"),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            path: path.to_owned(),
            what: "no certificate in the file".into(),
        });
    }
    Ok(certs)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn load(files: &TlsFiles) -> Result<Loaded, TlsError> {
    let stamps = files.stamps();
    let ca_pem = read(&files.ca)?;
    let cert_pem = read(&files.cert)?;
    let key_pem = read(&files.key)?;
    let mut roots = RootCertStore::empty();
    for ca in parse_certs(&ca_pem, &files.ca)? {
        roots.add(ca).map_err(|e| TlsError::Pem {
            path: files.ca.clone(),
            what: format!("not a usable CA certificate: {e}"),
        })?;
    }
    let chain = parse_certs(&cert_pem, &files.cert)?;
    let roles = roles_of(&chain[0]);
    if roles.is_empty() {
        return Err(TlsError::NoRole {
            path: files.cert.clone(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| TlsError::Pem {
        path: files.key.clone(),
        what: format!("unreadable private key: {e}"),
    })?;
    let provider = provider();
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| TlsError::Config(format!("client verifier: {e}")))?;
    let mut server = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Config(format!("{}: {e}", files.key.display())))?;
    server.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Loaded {
        ca_pem,
        cert_pem,
        key_pem,
        server: Arc::new(server),
        roles,
        stamps,
    })
}

impl Identity {
    /// Loads the three files; an error names the file and what is wrong.
    pub fn load(files: TlsFiles) -> Result<Identity, TlsError> {
        let loaded = load(&files)?;
        Ok(Identity {
            files,
            state: Mutex::new(State {
                loaded: Arc::new(loaded),
                checked: Instant::now(),
            }),
        })
    }

    /// The files this identity is read from.
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    fn current(&self) -> Arc<Loaded> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.checked.elapsed() >= RELOAD_CHECK {
            state.checked = Instant::now();
            Self::refresh(&self.files, &mut state);
        }
        state.loaded.clone()
    }

    fn refresh(files: &TlsFiles, state: &mut State) -> bool {
        if files.stamps() == state.loaded.stamps {
            return false;
        }
        match load(files) {
            Ok(loaded) => {
                info!(cert = %files.cert.display(), roles = %loaded.roles, "internal TLS certificate reloaded");
                state.loaded = Arc::new(loaded);
                true
            }
            Err(e) => {
                warn!(error = %e, "internal TLS files changed but do not load; the previous certificate stays in force");
                false
            }
        }
    }

    /// Looks at the files now (not waiting for [`RELOAD_CHECK`]); true when
    /// new material was loaded.
    pub fn reload_now(&self) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.checked = Instant::now();
        Self::refresh(&self.files, &mut state)
    }

    /// The roles this process's own certificate names.
    pub fn roles(&self) -> RoleSet {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .loaded
            .roles
    }

    /// The server configuration for the next accepted connection: TLS 1.3,
    /// a client certificate chaining to the CA required, ALPN h2.
    pub fn server_config(&self) -> Arc<ServerConfig> {
        self.current().server.clone()
    }

    /// The client configuration for a new connection to a server of role
    /// `peer`: the server must present a certificate from the CA that names
    /// `peer`, whatever address was dialled.
    pub fn client_config(&self, peer: Role) -> tonic::transport::ClientTlsConfig {
        let loaded = self.current();
        client_config_from_pem(&loaded.ca_pem, &loaded.cert_pem, &loaded.key_pem, peer)
    }
}

/// The client configuration for a connection to a server of role `peer`
/// from key material held in memory (PEM): for a process that talks to
/// several clusters, each with its own CA (the operator), rather than
/// installing one identity for the whole process.
pub fn client_config_from_pem(
    ca_pem: &str,
    cert_pem: &str,
    key_pem: &str,
    peer: Role,
) -> tonic::transport::ClientTlsConfig {
    tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(ca_pem))
        .identity(tonic::transport::Identity::from_pem(cert_pem, key_pem))
        .domain_name(peer.dns_name())
}
