//! Roles and the principal a request acts as, with the permission checks the
//! gateway runs. Pure; no I/O.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use vectron_proto::auth::v1 as pb;

use crate::error::{AuthError, Result};

/// Authorisation role; each includes the rights of the ones before it, so
/// the order is `Read < Write < Admin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// List and read collections; get, search, scroll and count points.
    Read,
    /// Also upsert and delete points.
    Write,
    /// Everything.
    Admin,
}

impl Role {
    /// The lower-case name used in JSON and JWT claims.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Write => "write",
            Role::Admin => "admin",
        }
    }

    /// The protobuf role.
    pub fn to_proto(self) -> pb::Role {
        match self {
            Role::Read => pb::Role::Read,
            Role::Write => pb::Role::Write,
            Role::Admin => pb::Role::Admin,
        }
    }

    /// Reads a protobuf role (its `i32` wire value); unspecified or unknown
    /// values are an invalid `role` field.
    pub fn from_proto(value: i32) -> Result<Self> {
        match pb::Role::try_from(value) {
            Ok(pb::Role::Read) => Ok(Role::Read),
            Ok(pb::Role::Write) => Ok(Role::Write),
            Ok(pb::Role::Admin) => Ok(Role::Admin),
            Ok(pb::Role::Unspecified) => Err(AuthError::invalid(
                "role",
                "must be one of \"read\", \"write\", \"admin\"",
            )),
            Err(_) => Err(AuthError::invalid("role", format!("unknown role {value}"))),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = AuthError;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "read" => Ok(Role::Read),
            "write" => Ok(Role::Write),
            "admin" => Ok(Role::Admin),
            other => Err(AuthError::invalid(
                "role",
                format!("{other:?} is not one of \"read\", \"write\", \"admin\""),
            )),
        }
    }
}

/// Converts an optional collection list to the protobuf scope (absent = all).
pub fn scope_to_proto(collections: &Option<Vec<String>>) -> Option<pb::CollectionScope> {
    collections.as_ref().map(|names| pb::CollectionScope {
        names: names.clone(),
    })
}

/// Converts a protobuf scope to an optional collection list (absent = all).
pub fn scope_from_proto(scope: Option<pb::CollectionScope>) -> Option<Vec<String>> {
    scope.map(|s| s.names)
}

/// Who a request acts as: a user (`user:<name>`) or an API key
/// (`api-key:<id>`), with its role and the collections it is limited to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// `user:<name>` or `api-key:<id>`.
    pub subject: String,
    /// The role.
    pub role: Role,
    /// The collections this principal is limited to; `None` means all.
    pub collections: Option<Vec<String>>,
}

impl Principal {
    /// Whether `collection` is within this principal's scope.
    pub fn sees(&self, collection: &str) -> bool {
        match &self.collections {
            None => true,
            Some(names) => names.iter().any(|n| n == collection),
        }
    }

    /// Whether this principal may read `collection` (every role can read).
    pub fn can_read(&self, collection: &str) -> bool {
        self.role >= Role::Read && self.sees(collection)
    }

    /// Whether this principal may upsert and delete points in `collection`.
    pub fn can_write(&self, collection: &str) -> bool {
        self.role >= Role::Write && self.sees(collection)
    }

    /// Whether this principal may create, delete or change `collection`
    /// itself: an admin whose scope includes it.
    pub fn can_admin(&self, collection: &str) -> bool {
        self.role == Role::Admin && self.sees(collection)
    }

    /// Whether this principal is an unrestricted admin, the only kind that may
    /// manage users, API keys and the cluster. An admin limited to some
    /// collections is not: it could otherwise mint itself an unscoped key.
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin && self.collections.is_none()
    }

    /// The protobuf principal.
    pub fn to_proto(&self) -> pb::Principal {
        pb::Principal {
            subject: self.subject.clone(),
            role: self.role.to_proto().into(),
            collections: scope_to_proto(&self.collections),
        }
    }

    /// Reads a protobuf principal.
    pub fn from_proto(principal: pb::Principal) -> Result<Self> {
        Ok(Self {
            role: Role::from_proto(principal.role)?,
            subject: principal.subject,
            collections: scope_from_proto(principal.collections),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(role: Role, collections: Option<&[&str]>) -> Principal {
        Principal {
            subject: "user:t".into(),
            role,
            collections: collections.map(|c| c.iter().map(|s| s.to_string()).collect()),
        }
    }

    #[test]
    fn roles_are_ordered() {
        assert!(Role::Read < Role::Write && Role::Write < Role::Admin);
    }

    #[test]
    fn permission_matrix() {
        // (role, scoped, can_read a, can_write a, can_read b, can_write b, is_admin, can_admin a)
        let cases = [
            (Role::Read, false, true, false, true, false, false, false),
            (Role::Read, true, true, false, false, false, false, false),
            (Role::Write, false, true, true, true, true, false, false),
            (Role::Write, true, true, true, false, false, false, false),
            (Role::Admin, false, true, true, true, true, true, true),
            (Role::Admin, true, true, true, false, false, false, true),
        ];
        for (role, scoped, ra, wa, rb, wb, admin, admin_a) in cases {
            let p = principal(role, scoped.then_some(&["a"][..]));
            let ctx = format!("{role} scoped={scoped}");
            assert_eq!(p.can_read("a"), ra, "{ctx} read a");
            assert_eq!(p.can_write("a"), wa, "{ctx} write a");
            assert_eq!(p.can_read("b"), rb, "{ctx} read b");
            assert_eq!(p.can_write("b"), wb, "{ctx} write b");
            assert_eq!(p.is_admin(), admin, "{ctx} is_admin");
            assert_eq!(p.can_admin("a"), admin_a, "{ctx} can_admin a");
            assert_eq!(p.sees("b"), !scoped, "{ctx} sees b");
        }
    }

    #[test]
    fn role_parsing() {
        assert_eq!("write".parse::<Role>().unwrap(), Role::Write);
        match "root".parse::<Role>() {
            Err(AuthError::Invalid { field, .. }) => assert_eq!(field, "role"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            Role::from_proto(pb::Role::Unspecified as i32),
            Err(AuthError::Invalid { field: "role", .. })
        ));
        assert!(Role::from_proto(99).is_err());
        assert_eq!(
            Role::from_proto(pb::Role::Admin as i32).unwrap(),
            Role::Admin
        );
    }

    #[test]
    fn proto_round_trip() {
        let p = principal(Role::Write, Some(&["x", "y"]));
        assert_eq!(Principal::from_proto(p.to_proto()).unwrap(), p);
        let all = principal(Role::Read, None);
        assert_eq!(Principal::from_proto(all.to_proto()).unwrap(), all);
    }
}
