//! Who may do what: reads the credential of a request (`Authorization:
//! Bearer <jwt>` or `api-key: <key>`), has the auth service resolve it to a
//! principal, and checks the principal's role and collection scope against
//! the action. Default deny: no credential is 401, too little right is 403.
//! Does network I/O when auth runs as its own service.

use axum::http::HeaderMap;
use vectron_auth::{AuthHandle, Credential, Principal, Role};

use crate::error::{ApiError, ErrorKind, Result};

/// What a request wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action<'a> {
    /// Probes and login: open to everyone.
    Public,
    /// List collections (the answer is filtered to the caller's scope).
    ListCollections,
    /// Read a collection or its points.
    Read(&'a str),
    /// Upsert or delete points.
    Write(&'a str),
    /// Create or delete the collection.
    ManageCollection(&'a str),
    /// Users, API keys and the cluster: admins of every collection only.
    Admin,
}

/// How requests are checked.
#[derive(Clone)]
pub enum Access {
    /// Everything is allowed (`vectron dev` without `--auth`, `--no-auth`).
    Open,
    /// Credentials are checked by the auth service.
    Checked(AuthHandle),
}

/// The credential a request carries, from HTTP headers or gRPC metadata
/// values.
pub fn credential(
    authorization: Option<&str>,
    api_key: Option<&str>,
) -> Result<Option<Credential>> {
    if let Some(key) = api_key {
        return Ok(Some(Credential::ApiKey(key.trim().to_owned())));
    }
    match authorization {
        None => Ok(None),
        Some(value) => {
            let token = value
                .strip_prefix("Bearer ")
                .or_else(|| value.strip_prefix("bearer "))
                .ok_or_else(|| {
                    ApiError::new(
                        ErrorKind::Unauthenticated,
                        "the Authorization header must be \"Bearer <token>\"",
                    )
                })?;
            Ok(Some(Credential::Bearer(token.trim().to_owned())))
        }
    }
}

/// The credential of an HTTP request.
pub fn http_credential(headers: &HeaderMap) -> Result<Option<Credential>> {
    let text = |name: &str| -> Result<Option<&str>> {
        headers
            .get(name)
            .map(|v| {
                v.to_str().map_err(|_| {
                    ApiError::new(
                        ErrorKind::Unauthenticated,
                        format!("the {name} header is not text"),
                    )
                })
            })
            .transpose()
    };
    credential(text("authorization")?, text("api-key")?)
}

/// Whether `principal` may do `action`.
pub fn allows(principal: &Principal, action: Action<'_>) -> bool {
    match action {
        Action::Public | Action::ListCollections => true,
        Action::Read(collection) => principal.can_read(collection),
        Action::Write(collection) => principal.can_write(collection),
        Action::ManageCollection(collection) => {
            principal.role == Role::Admin && principal.sees(collection)
        }
        Action::Admin => principal.is_admin(),
    }
}

impl Access {
    /// Resolves the credential to the principal the request acts as: `None`
    /// when access is open, 401 when a credential is missing or invalid.
    pub async fn authenticate(&self, credential: Option<Credential>) -> Result<Option<Principal>> {
        let Access::Checked(auth) = self else {
            return Ok(None);
        };
        let credential = credential.ok_or_else(|| {
            ApiError::new(
                ErrorKind::Unauthenticated,
                "authentication required: send \"Authorization: Bearer <token>\" or \"api-key: <key>\"",
            )
        })?;
        let principal = auth.authenticate(&credential).await.map_err(|status| {
            let error = ApiError::from_status(&status);
            if error.kind == ErrorKind::Unavailable || error.kind == ErrorKind::Internal {
                error
            } else {
                ApiError::new(ErrorKind::Unauthenticated, status.message().to_owned())
            }
        })?;
        Ok(Some(principal))
    }

    /// The auth service, for login and user and key management.
    pub fn auth(&self) -> Result<&AuthHandle> {
        match self {
            Access::Checked(auth) => Ok(auth),
            Access::Open => Err(ApiError::new(
                ErrorKind::Conflict,
                "authentication is off on this gateway; start it with auth on to manage users and keys",
            )),
        }
    }
}

/// The caller of one request, once authenticated.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The principal; `None` when access is open.
    pub principal: Option<Principal>,
}

impl Caller {
    /// 403 unless the caller may do `action`.
    pub fn allow(&self, action: Action<'_>) -> Result<()> {
        match &self.principal {
            None => Ok(()),
            Some(p) if allows(p, action) => Ok(()),
            Some(p) => Err(ApiError::new(
                ErrorKind::PermissionDenied,
                format!(
                    "{} ({} role{}) may not do this",
                    p.subject,
                    p.role,
                    match &p.collections {
                        Some(names) => format!(", limited to collections {names:?}"),
                        None => String::new(),
                    }
                ),
            )),
        }
    }

    /// Whether `collection` is within the caller's scope.
    pub fn sees(&self, collection: &str) -> bool {
        self.principal.as_ref().is_none_or(|p| p.sees(collection))
    }

    /// The rate-limit key of the caller.
    pub fn rate_key(&self) -> &str {
        self.principal
            .as_ref()
            .map_or("anonymous", |p| p.subject.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(role: Role, collections: Option<&[&str]>) -> Principal {
        Principal {
            subject: "api-key:x".into(),
            role,
            collections: collections.map(|c| c.iter().map(|s| s.to_string()).collect()),
        }
    }

    #[test]
    fn roles_and_scopes() {
        let read = principal(Role::Read, None);
        assert!(allows(&read, Action::Read("a")));
        assert!(!allows(&read, Action::Write("a")));
        let write_b = principal(Role::Write, Some(&["b"]));
        assert!(allows(&write_b, Action::Write("b")));
        assert!(!allows(&write_b, Action::Read("a")));
        let admin_b = principal(Role::Admin, Some(&["b"]));
        assert!(allows(&admin_b, Action::ManageCollection("b")));
        assert!(!allows(&admin_b, Action::ManageCollection("a")));
        assert!(!allows(&admin_b, Action::Admin));
        assert!(allows(&principal(Role::Admin, None), Action::Admin));
    }

    #[test]
    fn credentials_from_headers() {
        assert!(credential(None, None).expect("none").is_none());
        assert!(matches!(
            credential(Some("Bearer abc"), None).expect("bearer"),
            Some(Credential::Bearer(t)) if t == "abc"
        ));
        assert!(matches!(
            credential(None, Some("vk_1")).expect("key"),
            Some(Credential::ApiKey(k)) if k == "vk_1"
        ));
        assert!(credential(Some("Basic abc"), None).is_err());
    }
}
