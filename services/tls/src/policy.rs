//! Which roles may call which internal RPC: a pure verdict per request,
//! stating its reason when it refuses.
//!
//! The tables below are the whole access model of the internal ports; a
//! method missing from them is refused. In short:
//! - the Raft services accept only members of their own group (PD nodes on
//!   PD, workers on workers);
//! - PD's worker lifecycle (register, heartbeat) accepts only workers; its
//!   key-value API only auth; membership, drains and collections only the
//!   gateway, the operator and admins (AddMember also a joining PD node);
//! - a worker's data API and the auth service accept only the gateway;
//! - `admin` may call every method except the Raft services (tests and
//!   tools register workers and write KV with it).

use std::fmt;

use crate::{Role, RoleSet};

/// The internal servers, each with its own table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerKind {
    /// A PD node: the placement driver API and PD's Raft service.
    Pd,
    /// A worker: the data API and the shard Raft service.
    Worker,
    /// The auth service.
    Auth,
}

const PD_SERVICE: &str = "vectron.pd.v1.PlacementDriver";
const RAFT_SERVICE: &str = "vectron.raft.v1.Raft";
const WORKER_SERVICE: &str = "vectron.worker.v1.Worker";
const AUTH_SERVICE: &str = "vectron.auth.v1.Auth";

use Role::{Admin, Auth, Gateway, Operator, Pd, Worker};

/// Reads of placement anyone inside the cluster may make.
const ANY_INTERNAL: &[Role] = &[Pd, Worker, Auth, Gateway, Operator, Admin];
/// Cluster administration: the gateway (on behalf of an admin user it has
/// authorised), the operator and admins.
const ADMINISTRATION: &[Role] = &[Gateway, Operator, Admin];

fn pd_method(method: &str) -> Option<&'static [Role]> {
    Some(match method {
        "RegisterWorker" | "Heartbeat" => &[Worker, Admin],
        "GetWorker"
        | "ListWorkers"
        | "ListCollections"
        | "GetCollectionStatus"
        | "GetRoutingTable"
        | "GetMembers" => ANY_INTERNAL,
        "DrainWorker" | "RemoveWorker" | "ListMoves" | "CreateCollection" | "DropCollection"
        | "RemoveMember" => ADMINISTRATION,
        "UndrainWorker" => &[Operator, Admin],
        "AddMember" => &[Pd, Operator, Admin],
        "AllocId" => &[Pd, Admin],
        "KvGet" | "KvPut" | "KvDelete" | "KvScan" => &[Auth, Admin],
        _ => return None,
    })
}

fn raft_method(method: &str) -> bool {
    matches!(
        method,
        "AppendEntries" | "Vote" | "InstallSnapshot" | "TriggerElection"
    )
}

fn worker_method(method: &str) -> bool {
    matches!(
        method,
        "Upsert" | "Delete" | "Get" | "Search" | "Scroll" | "Count"
    )
}

fn auth_method(method: &str) -> bool {
    matches!(
        method,
        "Login"
            | "Authenticate"
            | "CreateUser"
            | "DeleteUser"
            | "ChangePassword"
            | "ListUsers"
            | "CreateApiKey"
            | "ListApiKeys"
            | "DeleteApiKey"
    )
}

/// The roles that may call `path` (`/package.Service/Method`) on `server`;
/// `None` when the server serves no such method.
pub fn allowed_roles(server: ServerKind, path: &str) -> Option<RoleSet> {
    let (service, method) = path.trim_start_matches('/').split_once('/')?;
    let roles: &[Role] = match (server, service) {
        (ServerKind::Pd, PD_SERVICE) => pd_method(method)?,
        (ServerKind::Pd, RAFT_SERVICE) if raft_method(method) => &[Pd],
        (ServerKind::Worker, RAFT_SERVICE) if raft_method(method) => &[Worker],
        (ServerKind::Worker, WORKER_SERVICE) if worker_method(method) => &[Gateway, Admin],
        (ServerKind::Auth, AUTH_SERVICE) if auth_method(method) => &[Gateway, Admin],
        _ => return None,
    };
    Some(RoleSet::of(roles))
}

/// Why a call was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    /// The method called.
    pub path: String,
    /// The roles the caller's certificate names.
    pub caller: RoleSet,
    /// The roles that may call it; `None` when no one may.
    pub allowed: Option<RoleSet>,
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.allowed {
            Some(allowed) => write!(
                f,
                "{} may be called by role {allowed}; the caller's certificate names {}",
                self.path, self.caller
            ),
            None => write!(f, "{} is not served to anyone on this port", self.path),
        }
    }
}

/// The verdict on one call. `caller` is `None` on a plaintext listener
/// (`--insecure-internal`), where every call is allowed.
pub fn authorize(server: ServerKind, path: &str, caller: Option<RoleSet>) -> Result<(), Denied> {
    let Some(caller) = caller else {
        return Ok(());
    };
    let allowed = allowed_roles(server, path);
    match allowed {
        Some(roles) if roles.intersects(caller) => Ok(()),
        _ => Err(Denied {
            path: path.to_owned(),
            caller,
            allowed,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(roles: &[Role]) -> Option<RoleSet> {
        Some(RoleSet::of(roles))
    }

    #[test]
    fn a_worker_certificate_cannot_write_pd_kv_or_add_members() {
        for method in [
            "KvPut",
            "KvScan",
            "AddMember",
            "DrainWorker",
            "CreateCollection",
        ] {
            let path = format!("/{PD_SERVICE}/{method}");
            let denied = authorize(ServerKind::Pd, &path, caller(&[Worker])).expect_err(method);
            assert!(denied.to_string().contains("names worker"), "{denied}");
        }
        let register = format!("/{PD_SERVICE}/RegisterWorker");
        assert!(authorize(ServerKind::Pd, &register, caller(&[Worker])).is_ok());
        assert!(authorize(ServerKind::Pd, &register, caller(&[Gateway])).is_err());
    }

    #[test]
    fn raft_services_accept_only_their_own_group() {
        let append = format!("/{RAFT_SERVICE}/AppendEntries");
        assert!(authorize(ServerKind::Pd, &append, caller(&[Pd])).is_ok());
        assert!(authorize(ServerKind::Pd, &append, caller(&[Worker])).is_err());
        assert!(authorize(ServerKind::Worker, &append, caller(&[Worker])).is_ok());
        assert!(authorize(ServerKind::Worker, &append, caller(&[Pd, Admin])).is_err());
        assert!(authorize(ServerKind::Worker, &append, caller(&[Admin])).is_err());
    }

    #[test]
    fn unknown_methods_are_refused_and_plaintext_allows_everything() {
        let unknown = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo";
        let denied = authorize(ServerKind::Auth, unknown, caller(&[Admin])).expect_err("unknown");
        assert_eq!(denied.allowed, None);
        assert!(authorize(ServerKind::Auth, unknown, None).is_ok());
        assert!(authorize(ServerKind::Auth, "nonsense", caller(&[Admin])).is_err());
    }

    #[test]
    fn auth_and_worker_data_accept_the_gateway_and_admins_only() {
        let create_key = format!("/{AUTH_SERVICE}/CreateApiKey");
        assert!(authorize(ServerKind::Auth, &create_key, caller(&[Gateway])).is_ok());
        assert!(authorize(ServerKind::Auth, &create_key, caller(&[Worker])).is_err());
        assert!(authorize(ServerKind::Auth, &create_key, caller(&[Pd])).is_err());
        let upsert = format!("/{WORKER_SERVICE}/Upsert");
        assert!(authorize(ServerKind::Worker, &upsert, caller(&[Gateway])).is_ok());
        assert!(authorize(ServerKind::Worker, &upsert, caller(&[Worker, Pd])).is_err());
    }
}
