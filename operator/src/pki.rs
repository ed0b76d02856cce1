//! The certificates of a cluster's internal mutual TLS when the operator
//! issues them itself: which roles need one, where each is kept, and the
//! verdict on a stored certificate — keep it, or issue a new one and why.
//! Pure: the clock is a parameter; generating keys and signing happen in
//! the reconcile step (`reconcile::pki`).
//!
//! A role certificate is kept in a Secret with the CA certificate that
//! issued it and two annotations the operator writes beside it: when it
//! expires and which roles it names. The verdict reads those rather than
//! parsing the certificate, so a Secret edited by hand (annotations
//! dropped) is simply reissued.

use std::fmt;

use vectron_tls::Role;

/// The roles that get a certificate: one per kind of pod, and the operator
/// itself (its client certificate for PD; never mounted in a pod).
pub const CERT_ROLES: [Role; 5] = [
    Role::Pd,
    Role::Worker,
    Role::Auth,
    Role::Gateway,
    Role::Operator,
];

/// Key of the CA certificate in every internal TLS Secret (the name
/// cert-manager uses too).
pub const CA_CERT_KEY: &str = "ca.crt";
/// Key of the certificate in a role's Secret, and of the CA certificate in
/// the CA's Secret.
pub const CERT_KEY: &str = "tls.crt";
/// Key of the private key in a role's Secret and in the CA's Secret.
pub const PRIVATE_KEY_KEY: &str = "tls.key";
/// Annotation: when the certificate expires (Unix seconds).
pub const NOT_AFTER_ANNOTATION: &str = "vectron.io/not-after";
/// Annotation: the roles the certificate names, comma-separated.
pub const ROLES_ANNOTATION: &str = "vectron.io/roles";

/// A role certificate as kept in its Secret.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StoredCert {
    /// The CA certificate that issued it (PEM).
    pub ca_pem: String,
    /// The certificate (PEM).
    pub cert_pem: String,
    /// Its private key (PEM).
    pub key_pem: String,
    /// When it expires, from its annotation.
    pub not_after: Option<i64>,
    /// The roles it names, from its annotation.
    pub roles: Option<String>,
}

/// The cluster's CA and every role's certificate, as the builders emit
/// them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClusterPki {
    /// The CA certificate (PEM).
    pub ca_cert_pem: String,
    /// The CA's private key (PEM).
    pub ca_key_pem: String,
    /// Each role's certificate, in [`CERT_ROLES`] order.
    pub certs: Vec<(Role, StoredCert)>,
}

impl ClusterPki {
    /// The certificate of `role`, if issued.
    pub fn cert(&self, role: Role) -> Option<&StoredCert> {
        self.certs.iter().find(|(r, _)| *r == role).map(|(_, c)| c)
    }
}

/// Why a role's certificate must be issued anew.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reissue {
    /// There is none.
    Missing,
    /// Its Secret lacks the certificate, the key or the CA.
    Incomplete,
    /// It was issued by another CA than the cluster's current one.
    OtherAuthority,
    /// It names other roles than this one.
    RolesDiffer {
        /// What its annotation says.
        stored: String,
    },
    /// Its expiry is not recorded.
    UnknownExpiry,
    /// It expires within the renewal window.
    Expiring {
        /// Seconds until it expires (negative: already expired).
        remaining: i64,
        /// The window: a third of its validity.
        window: i64,
    },
}

impl fmt::Display for Reissue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reissue::Missing => write!(f, "no certificate yet"),
            Reissue::Incomplete => write!(f, "its Secret lacks the certificate, key or CA"),
            Reissue::OtherAuthority => write!(f, "it was issued by another CA"),
            Reissue::RolesDiffer { stored } => write!(f, "it names roles {stored:?}"),
            Reissue::UnknownExpiry => write!(f, "its expiry is not recorded"),
            Reissue::Expiring { remaining, window } => write!(
                f,
                "it expires in {remaining} s, within the renewal window of {window} s"
            ),
        }
    }
}

/// Seconds in a day.
const DAY: i64 = 86_400;

/// Whether `stored`, the certificate of `role`, may stay: it must come
/// from the CA `ca_pem`, name exactly `role`, and have more than a third of
/// a `days`-day validity left at `now` (Unix seconds).
pub fn verdict(
    stored: Option<&StoredCert>,
    ca_pem: &str,
    role: Role,
    days: i64,
    now: i64,
) -> Result<(), Reissue> {
    let Some(stored) = stored else {
        return Err(Reissue::Missing);
    };
    if stored.cert_pem.is_empty() || stored.key_pem.is_empty() || stored.ca_pem.is_empty() {
        return Err(Reissue::Incomplete);
    }
    if stored.ca_pem.trim() != ca_pem.trim() {
        return Err(Reissue::OtherAuthority);
    }
    match stored.roles.as_deref() {
        Some(roles) if roles == role.as_str() => {}
        other => {
            return Err(Reissue::RolesDiffer {
                stored: other.unwrap_or_default().to_owned(),
            });
        }
    }
    let Some(not_after) = stored.not_after else {
        return Err(Reissue::UnknownExpiry);
    };
    let window = days * DAY / 3;
    let remaining = not_after - now;
    if remaining <= window {
        return Err(Reissue::Expiring { remaining, window });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn stored(not_after: i64) -> StoredCert {
        StoredCert {
            ca_pem: "CA".into(),
            cert_pem: "CERT".into(),
            key_pem: "KEY".into(),
            not_after: Some(not_after),
            roles: Some("worker".into()),
        }
    }

    #[test]
    fn a_fresh_certificate_from_the_current_ca_is_kept() {
        assert_eq!(
            verdict(Some(&stored(NOW + 80 * DAY)), "CA\n", Role::Worker, 90, NOW),
            Ok(())
        );
    }

    #[test]
    fn each_reason_to_reissue_is_named() {
        assert_eq!(
            verdict(None, "CA", Role::Worker, 90, NOW),
            Err(Reissue::Missing)
        );
        let mut no_key = stored(NOW + 80 * DAY);
        no_key.key_pem.clear();
        assert_eq!(
            verdict(Some(&no_key), "CA", Role::Worker, 90, NOW),
            Err(Reissue::Incomplete)
        );
        assert_eq!(
            verdict(
                Some(&stored(NOW + 80 * DAY)),
                "OTHER",
                Role::Worker,
                90,
                NOW
            ),
            Err(Reissue::OtherAuthority)
        );
        assert_eq!(
            verdict(Some(&stored(NOW + 80 * DAY)), "CA", Role::Pd, 90, NOW),
            Err(Reissue::RolesDiffer {
                stored: "worker".into()
            })
        );
        let mut unknown = stored(0);
        unknown.not_after = None;
        assert_eq!(
            verdict(Some(&unknown), "CA", Role::Worker, 90, NOW),
            Err(Reissue::UnknownExpiry)
        );
    }

    #[test]
    fn renewal_starts_when_a_third_of_the_validity_remains() {
        let window = 30 * DAY;
        assert_eq!(
            verdict(Some(&stored(NOW + window + 1)), "CA", Role::Worker, 90, NOW),
            Ok(())
        );
        assert_eq!(
            verdict(Some(&stored(NOW + window)), "CA", Role::Worker, 90, NOW),
            Err(Reissue::Expiring {
                remaining: window,
                window
            })
        );
        let expired = verdict(Some(&stored(NOW - 5)), "CA", Role::Worker, 90, NOW);
        assert_eq!(
            expired,
            Err(Reissue::Expiring {
                remaining: -5,
                window
            })
        );
    }
}
