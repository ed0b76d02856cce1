//! Creating a private certificate authority and issuing role certificates
//! from it (rcgen). Used by `vectron cert`, by `vectron dev` and
//! `vectron playground` (which make their own CA at start), and by tests.
//!
//! Every CA made here has the same subject name, so a CA can be loaded back
//! from its certificate and key files alone: to sign, rcgen needs the
//! issuer's subject and key, and the subject is known. Chains still verify
//! per CA, because verification checks the signature with the CA's key.

use std::fs;
use std::io::Write;
use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use time::{Duration, OffsetDateTime};

use crate::{Role, TlsError};

/// The subject common name of every Vectron CA.
const CA_COMMON_NAME: &str = "Vectron internal CA";

/// How long a CA made here is valid.
pub const CA_VALIDITY_DAYS: i64 = 3650;

/// A private certificate authority: its certificate and signing key.
pub struct Authority {
    key: KeyPair,
    cert_pem: String,
}

/// What a new certificate should say.
#[derive(Debug, Clone)]
pub struct CertRequest {
    /// Shown as the subject's common name (for people reading logs).
    pub common_name: String,
    /// The roles the certificate names.
    pub roles: Vec<Role>,
    /// Extra host names or IP addresses the certificate is valid for (a
    /// server reached by a client that verifies addresses, e.g. a browser).
    pub hosts: Vec<String>,
    /// Validity from now, in days.
    pub days: i64,
}

/// An issued certificate and its private key, both PEM.
#[derive(Debug, Clone)]
pub struct IssuedCert {
    /// The certificate.
    pub cert_pem: String,
    /// The private key (PKCS#8).
    pub key_pem: String,
}

fn ca_params(days: i64) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, CA_COMMON_NAME);
    name.push(DnType::OrganizationName, "Vectron");
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(days);
    params
}

impl Authority {
    /// A new CA with a fresh key.
    pub fn generate() -> Result<Authority, TlsError> {
        let key = KeyPair::generate()?;
        let cert = ca_params(CA_VALIDITY_DAYS).self_signed(&key)?;
        Ok(Authority {
            key,
            cert_pem: cert.pem(),
        })
    }

    /// A CA from its certificate and key files (PEM), as written by
    /// [`Authority::write`].
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Authority, TlsError> {
        let cert_pem = crate::material::read(cert_path)?;
        let key_pem = crate::material::read(key_path)?;
        Self::from_pem(cert_pem, &key_pem, key_path)
    }

    /// A CA from its certificate and key held in memory (PEM), e.g. read
    /// from a Kubernetes Secret; `source` names where they came from in
    /// errors.
    pub fn from_pem(cert_pem: String, key_pem: &str, source: &Path) -> Result<Authority, TlsError> {
        let key = KeyPair::from_pem(key_pem).map_err(|e| TlsError::Pem {
            path: source.to_owned(),
            what: format!("not a private key: {e}"),
        })?;
        crate::material::parse_certs(&cert_pem, source)?;
        Ok(Authority { key, cert_pem })
    }

    /// The CA's private key (PEM, PKCS#8): keep it where only the issuer
    /// can read it.
    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    /// The CA certificate (PEM): what every process trusts.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Writes `ca.pem` and `ca.key` (mode 0600) into `dir`.
    pub fn write(&self, dir: &Path) -> Result<(), TlsError> {
        write_private(&dir.join("ca.pem"), &self.cert_pem)?;
        write_private(&dir.join("ca.key"), &self.key.serialize_pem())
    }

    /// Issues a certificate for both client and server use, naming
    /// `request.roles` (see [`crate::role`]) and `request.hosts`.
    pub fn issue(&self, request: &CertRequest) -> Result<IssuedCert, TlsError> {
        if request.roles.is_empty() {
            return Err(TlsError::Request(
                "a certificate needs at least one role".into(),
            ));
        }
        if request.days < 1 {
            return Err(TlsError::Request(format!(
                "days must be at least 1, got {}",
                request.days
            )));
        }
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, request.common_name.as_str());
        name.push(DnType::OrganizationName, "Vectron");
        params.distinguished_name = name;
        for role in &request.roles {
            params.subject_alt_names.push(SanType::DnsName(
                role.dns_name()
                    .try_into()
                    .map_err(|e| TlsError::Request(format!("role name: {e}")))?,
            ));
        }
        for host in &request.hosts {
            let san = match host.parse::<std::net::IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName(
                    host.as_str()
                        .try_into()
                        .map_err(|e| TlsError::Request(format!("host {host:?}: {e}")))?,
                ),
            };
            params.subject_alt_names.push(san);
        }
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::hours(1);
        params.not_after = now + Duration::days(request.days);
        // rcgen derives the serial from the new key, so no two share one.
        let key = KeyPair::generate()?;
        let issuer = Issuer::new(ca_params(CA_VALIDITY_DAYS), &self.key);
        let cert = params.signed_by(&key, &issuer)?;
        Ok(IssuedCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

impl IssuedCert {
    /// Writes `<name>.pem` and `<name>.key` (mode 0600) into `dir`.
    pub fn write(&self, dir: &Path, name: &str) -> Result<(), TlsError> {
        write_private(&dir.join(format!("{name}.pem")), &self.cert_pem)?;
        write_private(&dir.join(format!("{name}.key")), &self.key_pem)
    }
}

/// Writes `contents` to `path` readable by its owner only (0600), replacing
/// any earlier file in one rename so a reader never sees half a file.
pub fn write_private(path: &Path, contents: &str) -> Result<(), TlsError> {
    let write_error = |source: std::io::Error| TlsError::Write {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(write_error)?;
    }
    let temporary = path.with_extension("tmp-write");
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&temporary).map_err(write_error)?;
    file.write_all(contents.as_bytes()).map_err(write_error)?;
    file.sync_all().map_err(write_error)?;
    fs::rename(&temporary, path).map_err(write_error)
}

/// Makes the key material of a cluster run on one machine (`vectron dev`,
/// `vectron playground`, `vectron chaos`, tests) in `dir`: the CA already
/// there (`ca.pem` + `ca.key`) or a new one, and a fresh certificate for
/// each `(name, roles)` member, valid for loopback addresses, written as
/// `<name>.pem` / `<name>.key`. Every file is 0600.
pub fn local_pki(dir: &Path, members: &[(&str, &[Role])]) -> Result<(), TlsError> {
    let (ca_cert, ca_key) = (dir.join("ca.pem"), dir.join("ca.key"));
    let ca = if ca_cert.exists() && ca_key.exists() {
        Authority::load(&ca_cert, &ca_key)?
    } else {
        let ca = Authority::generate()?;
        ca.write(dir)?;
        ca
    };
    for (name, roles) in members {
        ca.issue(&CertRequest {
            common_name: (*name).to_owned(),
            roles: roles.to_vec(),
            hosts: vec!["localhost".into(), "127.0.0.1".into()],
            days: 365,
        })?
        .write(dir, name)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_certificates_name_their_roles_and_files_are_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = Authority::generate().expect("ca");
        ca.write(dir.path()).expect("write ca");
        let loaded = Authority::load(&dir.path().join("ca.pem"), &dir.path().join("ca.key"))
            .expect("load ca");
        let issued = loaded
            .issue(&CertRequest {
                common_name: "worker-1".into(),
                roles: vec![Role::Worker],
                hosts: vec!["127.0.0.1".into(), "worker-1.local".into()],
                days: 30,
            })
            .expect("issue");
        issued.write(dir.path(), "worker-1").expect("write");
        let der = crate::material::parse_certs(&issued.cert_pem, Path::new("worker-1.pem"))
            .expect("pem")
            .remove(0);
        let roles = crate::roles_of(&der);
        assert!(roles.contains(Role::Worker));
        assert!(!roles.contains(Role::Pd) && !roles.contains(Role::Admin));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for file in ["ca.key", "worker-1.key", "worker-1.pem"] {
                let mode = fs::metadata(dir.path().join(file))
                    .expect("stat")
                    .permissions()
                    .mode();
                assert_eq!(mode & 0o777, 0o600, "{file}");
            }
        }
    }

    #[test]
    fn a_request_without_roles_or_days_is_refused() {
        let ca = Authority::generate().expect("ca");
        let mut request = CertRequest {
            common_name: "x".into(),
            roles: vec![],
            hosts: vec![],
            days: 1,
        };
        assert!(ca.issue(&request).is_err());
        request.roles = vec![Role::Admin];
        request.days = 0;
        assert!(ca.issue(&request).is_err());
    }
}
