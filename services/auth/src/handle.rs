//! One way for the gateway to call auth, in process (`vectron dev`) or over
//! gRPC to a separate auth service; both answer with `tonic::Status` errors so
//! the gateway maps them to HTTP in one place. Does network I/O (remote).

use std::sync::Arc;
use std::time::Duration;

use tonic::Status;
use tonic::transport::Channel;
use vectron_proto::auth::v1 as pb;
use vectron_proto::auth::v1::auth_client::AuthClient;
use vectron_proto::channel::internal_endpoint;

use crate::core::{ApiKeyInfo, AuthCore, Credential, UserInfo};
use crate::error::{AuthError, Result};
use crate::principal::{Principal, Role, scope_from_proto, scope_to_proto};

/// Per-call timeout of the remote variant.
const REMOTE_TIMEOUT: Duration = Duration::from_secs(10);

/// The auth service as the gateway sees it.
#[derive(Debug, Clone)]
pub enum AuthHandle {
    /// The core in this process.
    Local(Arc<AuthCore>),
    /// A separate auth service.
    Remote(AuthClient<Channel>),
}

fn bad_reply(what: &str, error: AuthError) -> Status {
    Status::internal(format!("auth service sent a bad {what}: {error}"))
}

fn user_from_proto(user: pb::User) -> Result<UserInfo, Status> {
    Ok(UserInfo {
        role: Role::from_proto(user.role).map_err(|e| bad_reply("user", e))?,
        collections: scope_from_proto(user.collections),
        username: user.username,
        created_at_unix: user.created_at_unix,
    })
}

fn api_key_from_proto(key: pb::ApiKey) -> Result<ApiKeyInfo, Status> {
    Ok(ApiKeyInfo {
        role: Role::from_proto(key.role).map_err(|e| bad_reply("API key", e))?,
        collections: scope_from_proto(key.collections),
        id: key.id,
        name: key.name,
        created_at_unix: key.created_at_unix,
    })
}

impl AuthHandle {
    /// A handle to the auth service at `endpoint` (`host:port` or a URL).
    /// The connection is made lazily, on the first call.
    pub fn connect(endpoint: &str) -> Result<Self> {
        let channel = internal_endpoint(
            endpoint,
            vectron_proto::channel::Role::Auth,
            Duration::from_secs(2),
        )
        .map_err(|e| AuthError::invalid("auth-endpoint", format!("{endpoint:?}: {e}")))?
        .timeout(REMOTE_TIMEOUT)
        .connect_lazy();
        Ok(AuthHandle::Remote(AuthClient::new(channel)))
    }

    /// Verifies a username and password; returns a token and its expiry in
    /// Unix seconds.
    pub async fn login(&self, username: &str, password: &str) -> Result<(String, i64), Status> {
        match self {
            AuthHandle::Local(core) => Ok(core.login(username, password).await?),
            AuthHandle::Remote(client) => {
                let resp = client
                    .clone()
                    .login(pb::LoginRequest {
                        username: username.to_owned(),
                        password: password.to_owned(),
                    })
                    .await?
                    .into_inner();
                Ok((resp.token, resp.expires_at_unix))
            }
        }
    }

    /// Resolves a credential to a principal, or fails with UNAUTHENTICATED.
    pub async fn authenticate(&self, credential: &Credential) -> Result<Principal, Status> {
        match self {
            AuthHandle::Local(core) => Ok(core.authenticate(credential).await?),
            AuthHandle::Remote(client) => {
                use pb::authenticate_request::Credential as Wire;
                let wire = match credential {
                    Credential::Bearer(token) => Wire::BearerToken(token.clone()),
                    Credential::ApiKey(key) => Wire::ApiKey(key.clone()),
                };
                let resp = client
                    .clone()
                    .authenticate(pb::AuthenticateRequest {
                        credential: Some(wire),
                    })
                    .await?
                    .into_inner();
                let principal = resp
                    .principal
                    .ok_or_else(|| Status::internal("auth service sent no principal"))?;
                Principal::from_proto(principal).map_err(|e| bad_reply("principal", e))
            }
        }
    }

    /// Creates a user.
    pub async fn create_user(
        &self,
        username: &str,
        password: &str,
        role: Role,
        collections: Option<Vec<String>>,
    ) -> Result<(), Status> {
        match self {
            AuthHandle::Local(core) => Ok(core
                .create_user(username, password, role, collections)
                .await?),
            AuthHandle::Remote(client) => {
                client
                    .clone()
                    .create_user(pb::CreateUserRequest {
                        username: username.to_owned(),
                        password: password.to_owned(),
                        role: role.to_proto().into(),
                        collections: scope_to_proto(&collections),
                    })
                    .await?;
                Ok(())
            }
        }
    }

    /// Deletes a user.
    pub async fn delete_user(&self, username: &str) -> Result<(), Status> {
        match self {
            AuthHandle::Local(core) => Ok(core.delete_user(username).await?),
            AuthHandle::Remote(client) => {
                client
                    .clone()
                    .delete_user(pb::DeleteUserRequest {
                        username: username.to_owned(),
                    })
                    .await?;
                Ok(())
            }
        }
    }

    /// Sets a user's password and revokes the tokens issued to it before.
    pub async fn change_password(&self, username: &str, new_password: &str) -> Result<(), Status> {
        match self {
            AuthHandle::Local(core) => Ok(core.change_password(username, new_password).await?),
            AuthHandle::Remote(client) => {
                client
                    .clone()
                    .change_password(pb::ChangePasswordRequest {
                        username: username.to_owned(),
                        new_password: new_password.to_owned(),
                    })
                    .await?;
                Ok(())
            }
        }
    }

    /// Every user, by name.
    pub async fn list_users(&self) -> Result<Vec<UserInfo>, Status> {
        match self {
            AuthHandle::Local(core) => Ok(core.list_users().await?),
            AuthHandle::Remote(client) => client
                .clone()
                .list_users(pb::ListUsersRequest {})
                .await?
                .into_inner()
                .users
                .into_iter()
                .map(user_from_proto)
                .collect(),
        }
    }

    /// Creates an API key; returns its id and the full key (shown once).
    pub async fn create_api_key(
        &self,
        name: &str,
        role: Role,
        collections: Option<Vec<String>>,
    ) -> Result<(String, String), Status> {
        match self {
            AuthHandle::Local(core) => Ok(core.create_api_key(name, role, collections).await?),
            AuthHandle::Remote(client) => {
                let resp = client
                    .clone()
                    .create_api_key(pb::CreateApiKeyRequest {
                        name: name.to_owned(),
                        role: role.to_proto().into(),
                        collections: scope_to_proto(&collections),
                    })
                    .await?
                    .into_inner();
                Ok((resp.id, resp.key))
            }
        }
    }

    /// Every API key, by id.
    pub async fn list_api_keys(&self) -> Result<Vec<ApiKeyInfo>, Status> {
        match self {
            AuthHandle::Local(core) => Ok(core.list_api_keys().await?),
            AuthHandle::Remote(client) => client
                .clone()
                .list_api_keys(pb::ListApiKeysRequest {})
                .await?
                .into_inner()
                .api_keys
                .into_iter()
                .map(api_key_from_proto)
                .collect(),
        }
    }

    /// Deletes an API key.
    pub async fn delete_api_key(&self, id: &str) -> Result<(), Status> {
        match self {
            AuthHandle::Local(core) => Ok(core.delete_api_key(id).await?),
            AuthHandle::Remote(client) => {
                client
                    .clone()
                    .delete_api_key(pb::DeleteApiKeyRequest { id: id.to_owned() })
                    .await?;
                Ok(())
            }
        }
    }
}
