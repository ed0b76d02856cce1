//! Mutual TLS for Vectron's internal traffic.
//!
//! Every internal gRPC server (PD, worker, auth) accepts only clients that
//! present a certificate issued by the cluster's CA, and every internal
//! client verifies that the server's certificate names the role it meant
//! to reach. A certificate names roles ([`role`]); each server decides per
//! RPC which roles may call it ([`policy`], enforced by [`AuthorizeLayer`]).
//! Key material is read from files and read again when they change
//! ([`material`]); [`issue`] makes a CA and certificates.
//!
//! Plaintext remains possible (`--insecure-internal`) for local
//! experiments; then every caller is trusted, as before this crate.

pub mod authorize;
pub mod incoming;
pub mod issue;
pub mod material;
pub mod policy;
pub mod public;
pub mod role;
pub mod security;

pub use authorize::AuthorizeLayer;
pub use incoming::{Incoming, InternalIo, PeerInfo, bind};
pub use issue::{Authority, CertRequest, IssuedCert, local_pki, write_private};
pub use material::{Identity, TlsFiles, client_config_from_pem};
pub use policy::ServerKind;
pub use public::{PublicIncoming, PublicIo, ServerCert, bind_public};
pub use role::{Role, RoleSet, roles_of};
pub use security::{Security, current, install};

use std::path::PathBuf;

/// Key material that cannot be read, made or used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file does not hold what it should.
    #[error("{path}: {what}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// A certificate names no Vectron role.
    #[error(
        "{path}: the certificate names no role (it needs a DNS name such as worker.role.vectron)"
    )]
    NoRole {
        /// The certificate file.
        path: PathBuf,
    },
    /// The material loads but rustls refuses it (e.g. a key that does not
    /// match its certificate).
    #[error("unusable TLS material: {0}")]
    Config(String),
    /// A certificate request is invalid.
    #[error("certificate request: {0}")]
    Request(String),
    /// Generating a key or certificate failed.
    #[error("generating a certificate: {0}")]
    Generate(#[from] rcgen::Error),
}

/// Makes ring the process-wide rustls crypto provider, for libraries that
/// build their own TLS configs from the process default (kube's client).
/// With more than one provider compiled in (ring here, aws-lc-rs through
/// other crates) rustls cannot pick one and panics on first use. Call it
/// once at start; later calls do nothing.
pub fn install_default_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
