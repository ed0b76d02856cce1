//! The roles an internal certificate can name, and how a certificate names
//! them.
//!
//! A certificate names a role by carrying the DNS subject-alternative name
//! `<role>.role.vectron` (for example `worker.role.vectron`). The same name
//! serves both directions: a server proves its role because the client
//! verifies the server's certificate against that name (whatever address it
//! dialled), and a client's roles are the role names its verified
//! certificate is valid for. One certificate may name several roles
//! (`vectron dev` runs every role in one process).

use std::fmt;
use std::str::FromStr;

use rustls_pki_types::{CertificateDer, DnsName, ServerName};

/// The DNS suffix of role names.
pub const ROLE_DOMAIN: &str = "role.vectron";

/// Who a process (or a person with a certificate) is inside the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// A placement-driver node.
    Pd,
    /// A worker hosting shard replicas.
    Worker,
    /// The auth service.
    Auth,
    /// A gateway serving the public API.
    Gateway,
    /// The Kubernetes operator.
    Operator,
    /// A human operator's tool (scripts, tests, `vectron chaos`): may call
    /// every API except the Raft services.
    Admin,
}

impl Role {
    /// Every role, in a fixed order.
    pub const ALL: [Role; 6] = [
        Role::Pd,
        Role::Worker,
        Role::Auth,
        Role::Gateway,
        Role::Operator,
        Role::Admin,
    ];

    /// The short name used on the command line and in file names.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Pd => "pd",
            Role::Worker => "worker",
            Role::Auth => "auth",
            Role::Gateway => "gateway",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// The DNS name a certificate carries to name this role.
    pub fn dns_name(self) -> String {
        format!("{}.{ROLE_DOMAIN}", self.as_str())
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is not one of [`Role::ALL`].
#[derive(Debug, thiserror::Error)]
#[error("unknown role {0:?} (expected one of pd, worker, auth, gateway, operator, admin)")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == s)
            .ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

/// A set of roles.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct RoleSet(u8);

impl RoleSet {
    /// No role.
    pub const EMPTY: RoleSet = RoleSet(0);

    /// The set of the given roles.
    pub fn of(roles: &[Role]) -> RoleSet {
        RoleSet(roles.iter().fold(0, |bits, role| bits | role.bit()))
    }

    /// Whether `role` is in the set.
    pub fn contains(self, role: Role) -> bool {
        self.0 & role.bit() != 0
    }

    /// Whether the two sets share a role.
    pub fn intersects(self, other: RoleSet) -> bool {
        self.0 & other.0 != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The roles in the set, in [`Role::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Role> {
        Role::ALL
            .into_iter()
            .filter(move |role| self.contains(*role))
    }
}

impl fmt::Display for RoleSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("no role");
        }
        let names: Vec<&str> = self.iter().map(Role::as_str).collect();
        f.write_str(&names.join(","))
    }
}

/// The roles an end-entity certificate names. The caller has already
/// verified the certificate's chain; a certificate that cannot be parsed
/// names no role.
pub fn roles_of(cert: &CertificateDer<'_>) -> RoleSet {
    let Ok(parsed) = webpki::EndEntityCert::try_from(cert) else {
        return RoleSet::EMPTY;
    };
    let named: Vec<Role> = Role::ALL
        .into_iter()
        .filter(|role| {
            DnsName::try_from(role.dns_name())
                .map(|name| {
                    parsed
                        .verify_is_valid_for_subject_name(&ServerName::DnsName(name))
                        .is_ok()
                })
                .unwrap_or(false)
        })
        .collect();
    RoleSet::of(&named)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_round_trip_and_unknown_ones_are_refused() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().expect("known"), role);
        }
        let error = "root".parse::<Role>().expect_err("unknown");
        assert!(error.to_string().contains("root"), "{error}");
    }

    #[test]
    fn a_role_set_holds_exactly_its_roles() {
        let set = RoleSet::of(&[Role::Pd, Role::Admin]);
        assert!(set.contains(Role::Pd) && set.contains(Role::Admin));
        assert!(!set.contains(Role::Worker));
        assert!(set.intersects(RoleSet::of(&[Role::Admin])));
        assert!(!set.intersects(RoleSet::of(&[Role::Gateway, Role::Worker])));
        assert_eq!(set.to_string(), "pd,admin");
        assert_eq!(RoleSet::EMPTY.to_string(), "no role");
    }
}
