//! The `vectron.auth.v1.Auth` gRPC service over an [`AuthCore`]. Request
//! parsing and response building only; the logic is in the core.

use std::sync::Arc;

use tonic::{Request, Response, Status};
use vectron_proto::auth::v1 as pb;
use vectron_proto::auth::v1::auth_server::{Auth, AuthServer};

use crate::core::{ApiKeyInfo, AuthCore, Credential, UserInfo};
use crate::principal::{Role, scope_from_proto, scope_to_proto};

/// The gRPC face of an [`AuthCore`].
#[derive(Debug, Clone)]
pub struct AuthService {
    core: Arc<AuthCore>,
}

impl AuthService {
    /// A service over `core`.
    pub fn new(core: Arc<AuthCore>) -> Self {
        Self { core }
    }

    /// The tonic server wrapping this service.
    pub fn server(core: Arc<AuthCore>) -> AuthServer<Self> {
        AuthServer::new(Self::new(core))
    }
}

type RpcResult<T> = Result<Response<T>, Status>;

/// The protobuf form of a listed user.
pub fn user_to_proto(user: UserInfo) -> pb::User {
    pb::User {
        role: user.role.to_proto().into(),
        collections: scope_to_proto(&user.collections),
        username: user.username,
        created_at_unix: user.created_at_unix,
    }
}

/// The protobuf form of a listed API key.
pub fn api_key_to_proto(key: ApiKeyInfo) -> pb::ApiKey {
    pb::ApiKey {
        role: key.role.to_proto().into(),
        collections: scope_to_proto(&key.collections),
        id: key.id,
        name: key.name,
        created_at_unix: key.created_at_unix,
    }
}

#[tonic::async_trait]
impl Auth for AuthService {
    async fn login(&self, request: Request<pb::LoginRequest>) -> RpcResult<pb::LoginResponse> {
        let req = request.into_inner();
        let (token, expires_at_unix) = self.core.login(&req.username, &req.password).await?;
        Ok(Response::new(pb::LoginResponse {
            token,
            expires_at_unix,
        }))
    }

    async fn authenticate(
        &self,
        request: Request<pb::AuthenticateRequest>,
    ) -> RpcResult<pb::AuthenticateResponse> {
        use pb::authenticate_request::Credential as Wire;
        let credential = match request.into_inner().credential {
            Some(Wire::BearerToken(token)) => Credential::Bearer(token),
            Some(Wire::ApiKey(key)) => Credential::ApiKey(key),
            None => return Err(Status::unauthenticated("no credential given")),
        };
        let principal = self.core.authenticate(&credential).await?;
        Ok(Response::new(pb::AuthenticateResponse {
            principal: Some(principal.to_proto()),
        }))
    }

    async fn create_user(
        &self,
        request: Request<pb::CreateUserRequest>,
    ) -> RpcResult<pb::CreateUserResponse> {
        let req = request.into_inner();
        let role = Role::from_proto(req.role)?;
        self.core
            .create_user(
                &req.username,
                &req.password,
                role,
                scope_from_proto(req.collections),
            )
            .await?;
        Ok(Response::new(pb::CreateUserResponse {}))
    }

    async fn delete_user(
        &self,
        request: Request<pb::DeleteUserRequest>,
    ) -> RpcResult<pb::DeleteUserResponse> {
        self.core
            .delete_user(&request.into_inner().username)
            .await?;
        Ok(Response::new(pb::DeleteUserResponse {}))
    }

    async fn change_password(
        &self,
        request: Request<pb::ChangePasswordRequest>,
    ) -> RpcResult<pb::ChangePasswordResponse> {
        let request = request.into_inner();
        self.core
            .change_password(&request.username, &request.new_password)
            .await?;
        Ok(Response::new(pb::ChangePasswordResponse {}))
    }

    async fn list_users(
        &self,
        _request: Request<pb::ListUsersRequest>,
    ) -> RpcResult<pb::ListUsersResponse> {
        let users = self.core.list_users().await?;
        Ok(Response::new(pb::ListUsersResponse {
            users: users.into_iter().map(user_to_proto).collect(),
        }))
    }

    async fn create_api_key(
        &self,
        request: Request<pb::CreateApiKeyRequest>,
    ) -> RpcResult<pb::CreateApiKeyResponse> {
        let req = request.into_inner();
        let role = Role::from_proto(req.role)?;
        let (id, key) = self
            .core
            .create_api_key(&req.name, role, scope_from_proto(req.collections))
            .await?;
        Ok(Response::new(pb::CreateApiKeyResponse { id, key }))
    }

    async fn list_api_keys(
        &self,
        _request: Request<pb::ListApiKeysRequest>,
    ) -> RpcResult<pb::ListApiKeysResponse> {
        let keys = self.core.list_api_keys().await?;
        Ok(Response::new(pb::ListApiKeysResponse {
            api_keys: keys.into_iter().map(api_key_to_proto).collect(),
        }))
    }

    async fn delete_api_key(
        &self,
        request: Request<pb::DeleteApiKeyRequest>,
    ) -> RpcResult<pb::DeleteApiKeyResponse> {
        self.core.delete_api_key(&request.into_inner().id).await?;
        Ok(Response::new(pb::DeleteApiKeyResponse {}))
    }
}
