//! The process-wide choice between mutual TLS and plaintext for internal
//! traffic, made once at start-up from the command line. Servers bind with
//! it ([`crate::bind`]) and clients build their channels with it
//! (`vectron_proto::channel::internal_endpoint`).

use std::sync::{Arc, OnceLock};

use crate::Identity;

/// How this process talks to the rest of the cluster.
#[derive(Debug, Clone)]
pub enum Security {
    /// Plaintext, every caller trusted (`--insecure-internal`; the default
    /// only for code that never installs a choice, such as unit tests).
    Insecure,
    /// Mutual TLS with this identity.
    Mutual(Arc<Identity>),
}

static SECURITY: OnceLock<Security> = OnceLock::new();
static INSECURE: Security = Security::Insecure;

/// Installs the process's choice. Set once, before any server binds or
/// channel is built; a second call is refused.
pub fn install(security: Security) -> Result<(), AlreadyInstalled> {
    SECURITY.set(security).map_err(|_| AlreadyInstalled)
}

/// The installed choice, or [`Security::Insecure`] when none was installed.
pub fn current() -> &'static Security {
    SECURITY.get().unwrap_or(&INSECURE)
}

/// [`install`] was called twice.
#[derive(Debug, thiserror::Error)]
#[error("the internal TLS choice of this process is already made")]
pub struct AlreadyInstalled;
