//! How a `vectron` process secures its internal traffic, decided once at
//! start-up from `--internal-ca/--internal-cert/--internal-key` and
//! `--insecure-internal`, and `vectron cert` (a CA and certificates for a
//! real deployment). Does file I/O.

use std::path::Path;

use tracing::{info, warn};
use vectron_tls::{Authority, CertRequest, Identity, Role, Security, TlsFiles};

use crate::args::{CertCommand, InternalTlsArgs};
use crate::run::RunError;

/// What a role requires of the internal-TLS flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// A server role (pd, worker, auth, gateway): files or
    /// `--insecure-internal`, nothing else.
    Server,
    /// A tool (bench, chaos runner, dev, playground): the files if given,
    /// else the tool decides.
    Optional,
}

/// The three files, when all three flags are given; an error names the
/// missing one when only some are.
pub fn files(args: &InternalTlsArgs) -> Result<Option<TlsFiles>, RunError> {
    match (&args.internal_ca, &args.internal_cert, &args.internal_key) {
        (None, None, None) => Ok(None),
        (Some(ca), Some(cert), Some(key)) => Ok(Some(TlsFiles {
            ca: ca.clone(),
            cert: cert.clone(),
            key: key.clone(),
        })),
        (ca, cert, _) => {
            let missing = if ca.is_none() {
                "--internal-ca"
            } else if cert.is_none() {
                "--internal-cert"
            } else {
                "--internal-key"
            };
            Err(RunError::Input(format!(
                "{missing} is missing: internal TLS needs --internal-ca, --internal-cert and --internal-key together"
            )))
        }
    }
}

/// Installs this process's choice. Returns whether a choice was made (a
/// tool given no flags makes none and may install its own later).
pub fn install(args: &InternalTlsArgs, need: Need) -> Result<bool, RunError> {
    let files = files(args)?;
    let security = match (files, args.insecure_internal) {
        (Some(_), true) => {
            return Err(RunError::Input(
                "--insecure-internal conflicts with --internal-ca/--internal-cert/--internal-key"
                    .into(),
            ));
        }
        (Some(files), false) => {
            let identity = Identity::load(files).map_err(|e| RunError::Input(e.to_string()))?;
            info!(roles = %identity.roles(), cert = %identity.files().cert.display(), "internal traffic uses mutual TLS");
            Security::Mutual(std::sync::Arc::new(identity))
        }
        (None, true) => {
            warn!(
                "--insecure-internal: internal ports serve PLAINTEXT and trust EVERY caller; anyone who can reach them owns the cluster"
            );
            Security::Insecure
        }
        (None, false) if need == Need::Server => {
            return Err(RunError::Input(
                "internal TLS is required: give --internal-ca, --internal-cert and --internal-key (see `vectron cert`), or --insecure-internal for a local experiment".into(),
            ));
        }
        (None, false) => return Ok(false),
    };
    vectron_tls::install(security).map_err(|e| RunError::Input(e.to_string()))?;
    Ok(true)
}

/// Makes the key material of a local cluster in `dir` (the CA there, or a
/// new one) and installs `own` as this process's identity.
pub fn install_local(dir: &Path, members: &[(&str, &[Role])], own: &str) -> Result<(), RunError> {
    vectron_tls::local_pki(dir, members).map_err(|e| RunError::Input(e.to_string()))?;
    let identity =
        Identity::load(TlsFiles::in_dir(dir, own)).map_err(|e| RunError::Input(e.to_string()))?;
    vectron_tls::install(Security::Mutual(std::sync::Arc::new(identity)))
        .map_err(|e| RunError::Input(e.to_string()))?;
    info!(dir = %dir.display(), "internal traffic uses mutual TLS; certificates and the CA are in this directory");
    Ok(())
}

/// The flags giving a child process the identity `<name>` in `dir`.
pub fn child_flags(dir: &Path, name: &str) -> Vec<String> {
    let files = TlsFiles::in_dir(dir, name);
    vec![
        "--internal-ca".into(),
        files.ca.display().to_string(),
        "--internal-cert".into(),
        files.cert.display().to_string(),
        "--internal-key".into(),
        files.key.display().to_string(),
    ]
}

/// `vectron cert`.
pub fn run_cert(command: CertCommand) -> Result<(), RunError> {
    let failed = |e: vectron_tls::TlsError| RunError::Input(e.to_string());
    match command {
        CertCommand::Ca { dir, force } => {
            if dir.join("ca.key").exists() && !force {
                return Err(RunError::Input(format!(
                    "{} already holds a CA (ca.key); pass --force to replace it",
                    dir.display()
                )));
            }
            Authority::generate()
                .and_then(|ca| ca.write(&dir))
                .map_err(failed)?;
            println!(
                "CA written: {0}/ca.pem (give it to every process) and {0}/ca.key (keep it secret)",
                dir.display()
            );
        }
        CertCommand::Issue(args) => {
            let ca = Authority::load(&args.dir.join("ca.pem"), &args.dir.join("ca.key"))
                .map_err(failed)?;
            let issued = ca
                .issue(&CertRequest {
                    common_name: args.name.clone(),
                    roles: args.roles.clone(),
                    hosts: args.hosts.clone(),
                    days: args.days,
                })
                .map_err(failed)?;
            let out = args.out.unwrap_or(args.dir);
            issued.write(&out, &args.name).map_err(failed)?;
            let roles: Vec<&str> = args.roles.iter().map(|r| r.as_str()).collect();
            println!(
                "certificate for {} (roles {}) written: {2}/{1}.pem and {2}/{1}.key",
                args.name,
                roles.join(","),
                out.display()
            );
        }
    }
    Ok(())
}
