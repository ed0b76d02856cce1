//! The auth logic behind the gRPC service and the in-process handle: users,
//! logins, API keys and credential checks over an [`AuthStore`]. Does I/O
//! through the store; password hashing runs on the blocking pool.

use std::sync::OnceLock;
use std::time::Duration;

use crate::api_key;
use crate::error::{AuthError, Result};
use crate::hash_gate::HashGate;
use crate::password;
use crate::principal::{Principal, Role};
use crate::record_cache::RecordCache;
use crate::store::{self, ApiKeyRecord, AuthStore, UserRecord};
use crate::time::now_unix;
use crate::token::JwtKeys;

/// Name of the user created by [`AuthCore::bootstrap_admin`].
pub const BOOTSTRAP_ADMIN: &str = "admin";

/// Longest username accepted.
pub const MAX_USERNAME_LEN: usize = 64;

/// Longest API-key name accepted.
pub const MAX_KEY_NAME_LEN: usize = 128;

/// How long an API-key record or a user's token version fetched for
/// [`AuthCore::authenticate`] is reused; bounds how long a key deleted, or
/// a user deleted or given a new password, through another auth instance
/// keeps working (on the instance that made the change, at once).
pub const API_KEY_CACHE_TTL: Duration = Duration::from_secs(2);

/// Most cached API-key (and user) lookups, so unknown ids cannot grow the
/// cache without bound.
const API_KEY_CACHE_MAX: usize = 10_000;

/// The one error for a failed login, whichever part was wrong.
const BAD_LOGIN: &str = "invalid username or password";

/// A credential presented by a client.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// A JWT from `Authorization: Bearer`.
    Bearer(String),
    /// The value of the `api-key` header.
    ApiKey(String),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never log the secret itself.
        match self {
            Credential::Bearer(_) => f.write_str("Bearer(..)"),
            Credential::ApiKey(_) => f.write_str("ApiKey(..)"),
        }
    }
}

/// A user as listed (without the password hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    /// The login name.
    pub username: String,
    /// The role.
    pub role: Role,
    /// The collections the user is limited to; `None` means all.
    pub collections: Option<Vec<String>>,
    /// Creation time, seconds since the Unix epoch.
    pub created_at_unix: i64,
}

impl From<UserRecord> for UserInfo {
    fn from(r: UserRecord) -> Self {
        Self {
            username: r.username,
            role: r.role,
            collections: r.collections,
            created_at_unix: r.created_at_unix,
        }
    }
}

/// An API key as listed (without its secret or digest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyInfo {
    /// The public id.
    pub id: String,
    /// The label given at creation.
    pub name: String,
    /// The role.
    pub role: Role,
    /// The collections the key is limited to; `None` means all.
    pub collections: Option<Vec<String>>,
    /// Creation time, seconds since the Unix epoch.
    pub created_at_unix: i64,
}

impl From<ApiKeyRecord> for ApiKeyInfo {
    fn from(r: ApiKeyRecord) -> Self {
        Self {
            id: r.id,
            name: r.name,
            role: r.role,
            collections: r.collections,
            created_at_unix: r.created_at_unix,
        }
    }
}

/// Users, tokens and API keys over one store.
pub struct AuthCore {
    store: AuthStore,
    jwt: JwtKeys,
    token_ttl: Duration,
    api_keys: RecordCache<ApiKeyRecord>,
    /// Users' current token versions, by name.
    token_versions: RecordCache<u64>,
    /// Bounds concurrent password hashing (login floods).
    hash_gate: HashGate,
}

impl std::fmt::Debug for AuthCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthCore")
            .field("store", &self.store)
            .field("token_ttl", &self.token_ttl)
            .finish_non_exhaustive()
    }
}

/// Checks a username: 1 to 64 characters of `[A-Za-z0-9_.-]`.
pub fn validate_username(username: &str) -> Result<()> {
    if username.is_empty() {
        return Err(AuthError::invalid("username", "must not be empty"));
    }
    if username.len() > MAX_USERNAME_LEN {
        return Err(AuthError::invalid(
            "username",
            format!("must be at most {MAX_USERNAME_LEN} characters"),
        ));
    }
    if !username
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
    {
        return Err(AuthError::invalid(
            "username",
            "may contain only letters, digits, '_', '.' and '-'",
        ));
    }
    Ok(())
}

/// Checks a collection scope and removes duplicates; `None` (all
/// collections) is always valid, an empty list is not.
pub fn validate_collections(collections: Option<Vec<String>>) -> Result<Option<Vec<String>>> {
    let Some(names) = collections else {
        return Ok(None);
    };
    if names.is_empty() {
        return Err(AuthError::invalid(
            "collections",
            "must name at least one collection, or be null for all collections",
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(names.len());
    for name in names {
        if name.is_empty() || name.len() > 255 {
            return Err(AuthError::invalid(
                "collections",
                "collection names must be 1 to 255 bytes",
            ));
        }
        if !out.contains(&name) {
            out.push(name);
        }
    }
    Ok(Some(out))
}

fn validate_key_name(name: &str) -> Result<()> {
    if name.trim().is_empty() {
        return Err(AuthError::invalid("name", "must not be empty"));
    }
    if name.len() > MAX_KEY_NAME_LEN {
        return Err(AuthError::invalid(
            "name",
            format!("must be at most {MAX_KEY_NAME_LEN} bytes"),
        ));
    }
    Ok(())
}

/// A random starting token version.
fn random_version() -> Result<u64> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|e| AuthError::Internal(format!("OS RNG: {e}")))?;
    Ok(u64::from_le_bytes(bytes))
}

fn now_i64() -> i64 {
    i64::try_from(now_unix()).unwrap_or(i64::MAX)
}

/// A hash to verify against when the user does not exist, so that a wrong
/// username costs as much time as a wrong password.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| password::hash("vectron-dummy-password").unwrap_or_default())
}

impl AuthCore {
    /// A core over `store` signing tokens with `jwt_secret` (at least 32
    /// bytes) valid for `token_ttl`.
    pub fn new(store: AuthStore, jwt_secret: &[u8], token_ttl: Duration) -> Result<Self> {
        Ok(Self {
            store,
            jwt: JwtKeys::new(jwt_secret)?,
            token_ttl,
            api_keys: RecordCache::new(API_KEY_CACHE_TTL, API_KEY_CACHE_MAX),
            token_versions: RecordCache::new(API_KEY_CACHE_TTL, API_KEY_CACHE_MAX),
            hash_gate: HashGate::default(),
        })
    }

    /// The lifetime of issued tokens.
    pub fn token_ttl(&self) -> Duration {
        self.token_ttl
    }

    /// Creates user `admin` with role admin and `password` if no user exists
    /// at all; returns whether it did.
    pub async fn bootstrap_admin(&self, password: &str) -> Result<bool> {
        let users = self
            .store
            .scan_prefix(store::USERS_PREFIX.as_bytes())
            .await?;
        if !users.is_empty() {
            return Ok(false);
        }
        let record = self
            .user_record(BOOTSTRAP_ADMIN, password, Role::Admin, None)
            .await?;
        self.store
            .put_if_absent(&store::user_key(BOOTSTRAP_ADMIN), store::encode(&record)?)
            .await
    }

    /// Verifies `username` and `password` and issues a token; returns it with
    /// its expiry in Unix seconds. Any mismatch is the same
    /// [`AuthError::Unauthenticated`].
    pub async fn login(&self, username: &str, password: &str) -> Result<(String, i64)> {
        // The turn comes first: a login flood is refused before it costs a
        // user lookup.
        let turn = self.hash_gate.turn().await?;
        let record = if validate_username(username).is_ok() {
            self.get_user(username).await?
        } else {
            None
        };
        let hash = match &record {
            Some(r) => r.password_hash.clone(),
            None => String::new(),
        };
        let password = password.to_owned();
        let matches = turn
            .hash(move || {
                let hash = if hash.is_empty() {
                    dummy_hash()
                } else {
                    hash.as_str()
                };
                password::verify(&password, hash)
            })
            .await?;
        let record = match record {
            Some(record) if matches => record,
            _ => return Err(AuthError::Unauthenticated(BAD_LOGIN.into())),
        };
        let (token, claims) = self.jwt.issue(
            format!("user:{}", record.username),
            record.role,
            record.collections,
            record.token_version,
            self.token_ttl,
        )?;
        Ok((token, i64::try_from(claims.exp).unwrap_or(i64::MAX)))
    }

    /// Resolves a credential to the principal it stands for. A token's role
    /// and collections come from its claims (fixed at login); it is refused
    /// once its user is deleted or changes password (its token version, read
    /// at most [`API_KEY_CACHE_TTL`] ago, no longer matches). An API key's
    /// role and scope come from its record, read at most that long ago.
    pub async fn authenticate(&self, credential: &Credential) -> Result<Principal> {
        match credential {
            Credential::Bearer(token) => {
                let claims = self.jwt.verify(token)?;
                if let Some(username) = claims.sub.strip_prefix("user:") {
                    match self.cached_token_version(username).await? {
                        None => {
                            return Err(AuthError::Unauthenticated(
                                "the token's user no longer exists".into(),
                            ));
                        }
                        Some(version) if version != claims.ver => {
                            return Err(AuthError::Unauthenticated(
                                "the token was revoked (the password changed); log in again".into(),
                            ));
                        }
                        Some(_) => {}
                    }
                }
                Ok(claims.principal())
            }
            Credential::ApiKey(key) => {
                let parsed = api_key::parse(key)?;
                let record = self.cached_api_key(&parsed.id).await?;
                match record {
                    Some(r) if api_key::verify(&parsed.secret, &r.secret_sha256) => Ok(Principal {
                        subject: format!("api-key:{}", r.id),
                        role: r.role,
                        collections: r.collections,
                    }),
                    _ => Err(AuthError::Unauthenticated("invalid API key".into())),
                }
            }
        }
    }

    /// Creates a user; [`AuthError::AlreadyExists`] if the name is taken.
    pub async fn create_user(
        &self,
        username: &str,
        password: &str,
        role: Role,
        collections: Option<Vec<String>>,
    ) -> Result<()> {
        let record = self
            .user_record(username, password, role, collections)
            .await?;
        if !self
            .store
            .put_if_absent(&store::user_key(username), store::encode(&record)?)
            .await?
        {
            return Err(AuthError::AlreadyExists {
                kind: "user",
                name: username.to_owned(),
            });
        }
        Ok(())
    }

    /// Deletes a user; [`AuthError::NotFound`] if there is none. Tokens
    /// already issued to it are refused from now on (by other auth
    /// instances within [`API_KEY_CACHE_TTL`]).
    pub async fn delete_user(&self, username: &str) -> Result<()> {
        let not_found = || AuthError::NotFound {
            kind: "user",
            name: username.to_owned(),
        };
        if validate_username(username).is_err() {
            return Err(not_found());
        }
        let deleted = self.store.delete(&store::user_key(username)).await?;
        self.token_versions.forget(username);
        if !deleted {
            return Err(not_found());
        }
        Ok(())
    }

    /// Gives `username` a new password and revokes every token issued to it
    /// before; [`AuthError::NotFound`] if there is no such user.
    pub async fn change_password(&self, username: &str, new_password: &str) -> Result<()> {
        let not_found = || AuthError::NotFound {
            kind: "user",
            name: username.to_owned(),
        };
        if validate_username(username).is_err() {
            return Err(not_found());
        }
        password::validate(new_password)?;
        let mut record = self.get_user(username).await?.ok_or_else(not_found)?;
        let password = new_password.to_owned();
        record.password_hash = self
            .hash_gate
            .run(move || password::hash(&password))
            .await??;
        record.token_version = record.token_version.wrapping_add(1);
        self.store
            .put(&store::user_key(username), store::encode(&record)?)
            .await?;
        self.token_versions.forget(username);
        Ok(())
    }

    /// Every user, by name.
    pub async fn list_users(&self) -> Result<Vec<UserInfo>> {
        self.store
            .scan_prefix(store::USERS_PREFIX.as_bytes())
            .await?
            .into_iter()
            .map(|(k, v)| store::decode::<UserRecord>(&k, &v).map(UserInfo::from))
            .collect()
    }

    /// Creates an API key; returns its id and the full key, which is not
    /// stored and cannot be shown again.
    pub async fn create_api_key(
        &self,
        name: &str,
        role: Role,
        collections: Option<Vec<String>>,
    ) -> Result<(String, String)> {
        validate_key_name(name)?;
        let collections = validate_collections(collections)?;
        // 64 random bits per id: a collision is practically impossible, but
        // retrying costs nothing.
        for _ in 0..3 {
            let new = api_key::generate()?;
            let record = ApiKeyRecord {
                id: new.id.clone(),
                name: name.to_owned(),
                secret_sha256: new.secret_sha256,
                role,
                collections: collections.clone(),
                created_at_unix: now_i64(),
            };
            let key = store::api_key_key(&record.id);
            if self
                .store
                .put_if_absent(&key, store::encode(&record)?)
                .await?
            {
                self.api_keys.forget(&new.id);
                return Ok((new.id, new.key));
            }
        }
        Err(AuthError::Conflict(
            "could not allocate a unique API key id".into(),
        ))
    }

    /// Every API key, by id.
    pub async fn list_api_keys(&self) -> Result<Vec<ApiKeyInfo>> {
        self.store
            .scan_prefix(store::API_KEYS_PREFIX.as_bytes())
            .await?
            .into_iter()
            .map(|(k, v)| store::decode::<ApiKeyRecord>(&k, &v).map(ApiKeyInfo::from))
            .collect()
    }

    /// Deletes an API key; [`AuthError::NotFound`] if there is none. The key
    /// stops working here at once and on other auth instances within
    /// [`API_KEY_CACHE_TTL`].
    pub async fn delete_api_key(&self, id: &str) -> Result<()> {
        let not_found = || AuthError::NotFound {
            kind: "API key",
            name: id.to_owned(),
        };
        if !api_key::is_valid_id(id) {
            return Err(not_found());
        }
        let deleted = self.store.delete(&store::api_key_key(id)).await?;
        self.api_keys.forget(id);
        if !deleted {
            return Err(not_found());
        }
        Ok(())
    }

    async fn user_record(
        &self,
        username: &str,
        password: &str,
        role: Role,
        collections: Option<Vec<String>>,
    ) -> Result<UserRecord> {
        validate_username(username)?;
        password::validate(password)?;
        let collections = validate_collections(collections)?;
        let password = password.to_owned();
        let password_hash = self
            .hash_gate
            .run(move || password::hash(&password))
            .await??;
        Ok(UserRecord {
            username: username.to_owned(),
            password_hash,
            role,
            collections,
            created_at_unix: now_i64(),
            // Random, so tokens of a deleted user never match a new user
            // of the same name.
            token_version: random_version()?,
        })
    }

    async fn get_user(&self, username: &str) -> Result<Option<UserRecord>> {
        let key = store::user_key(username);
        match self.store.get(&key).await? {
            Some(value) => Ok(Some(store::decode(&key, &value)?)),
            None => Ok(None),
        }
    }

    async fn cached_api_key(&self, id: &str) -> Result<Option<ApiKeyRecord>> {
        if let Some(hit) = self.api_keys.get(id) {
            return Ok(hit);
        }
        let key = store::api_key_key(id);
        let record: Option<ApiKeyRecord> = match self.store.get(&key).await? {
            Some(value) => Some(store::decode(&key, &value)?),
            None => None,
        };
        self.api_keys.put(id, record.clone());
        Ok(record)
    }

    /// The token version of `username` now, `None` if there is no such
    /// user.
    async fn cached_token_version(&self, username: &str) -> Result<Option<u64>> {
        if let Some(hit) = self.token_versions.get(username) {
            return Ok(hit);
        }
        let version = self.get_user(username).await?.map(|r| r.token_version);
        self.token_versions.put(username, version);
        Ok(version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::{Claims, sign_claims};

    const SECRET: &[u8] = b"an-auth-core-test-secret-of-32-bytes-or-more";

    fn core() -> AuthCore {
        AuthCore::new(AuthStore::memory(), SECRET, Duration::from_secs(600)).unwrap()
    }

    #[tokio::test]
    async fn bootstrap_runs_only_once() {
        let core = core();
        assert!(core.bootstrap_admin("first-password").await.unwrap());
        assert!(!core.bootstrap_admin("second-password").await.unwrap());
        // The first password stays in force.
        assert!(core.login("admin", "first-password").await.is_ok());
        assert!(core.login("admin", "second-password").await.is_err());
        let users = core.list_users().await.unwrap();
        assert_eq!(users.len(), 1);
        assert_eq!(users[0].role, Role::Admin);
        assert_eq!(users[0].collections, None);
    }

    #[tokio::test]
    async fn bootstrap_skipped_when_any_user_exists() {
        let core = core();
        core.create_user("bob", "bob-password", Role::Read, None)
            .await
            .unwrap();
        assert!(!core.bootstrap_admin("admin-password").await.unwrap());
        assert!(core.login("admin", "admin-password").await.is_err());
    }

    #[tokio::test]
    async fn bootstrap_rejects_short_password() {
        let core = core();
        assert!(matches!(
            core.bootstrap_admin("short").await,
            Err(AuthError::Invalid {
                field: "password",
                ..
            })
        ));
        assert!(core.list_users().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn login_good_and_bad() {
        let core = core();
        core.create_user(
            "alice",
            "alice-password",
            Role::Write,
            Some(vec!["docs".into()]),
        )
        .await
        .unwrap();
        let (token, expires_at) = core.login("alice", "alice-password").await.unwrap();
        let now = i64::try_from(now_unix()).unwrap();
        assert!(
            (now + 590..=now + 610).contains(&expires_at),
            "{expires_at}"
        );
        let principal = core.authenticate(&Credential::Bearer(token)).await.unwrap();
        assert_eq!(principal.subject, "user:alice");
        assert_eq!(principal.role, Role::Write);
        assert!(principal.can_write("docs") && !principal.can_read("other"));

        for (user, pass) in [
            ("alice", "wrong-password"),
            ("nobody", "alice-password"),
            ("", "alice-password"),
            ("bad name!", "x"),
        ] {
            match core.login(user, pass).await {
                Err(AuthError::Unauthenticated(m)) => assert_eq!(m, BAD_LOGIN),
                other => panic!("{user}/{pass}: {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn bad_bearer_tokens_are_unauthenticated() {
        let core = core();
        let expired = sign_claims(
            SECRET,
            &Claims {
                sub: "user:alice".into(),
                role: Role::Admin,
                collections: None,
                iat: now_unix() - 120,
                exp: now_unix() - 60,
                ver: 0,
            },
        )
        .unwrap();
        for token in [expired, "garbage".to_owned()] {
            assert!(matches!(
                core.authenticate(&Credential::Bearer(token)).await,
                Err(AuthError::Unauthenticated(_))
            ));
        }
    }

    #[tokio::test]
    async fn create_user_validates_and_rejects_duplicates() {
        let core = core();
        core.create_user("bob", "bob-password", Role::Read, None)
            .await
            .unwrap();
        assert!(matches!(
            core.create_user("bob", "other-password", Role::Admin, None)
                .await,
            Err(AuthError::AlreadyExists { kind: "user", .. })
        ));
        let long = "x".repeat(65);
        for (name, pass, collections, field) in [
            ("", "long-enough", None, "username"),
            (long.as_str(), "long-enough", None, "username"),
            ("a/b", "long-enough", None, "username"),
            ("carol", "short", None, "password"),
            ("carol", "long-enough", Some(vec![]), "collections"),
            (
                "carol",
                "long-enough",
                Some(vec![String::new()]),
                "collections",
            ),
        ] {
            match core.create_user(name, pass, Role::Read, collections).await {
                Err(AuthError::Invalid { field: f, .. }) => assert_eq!(f, field, "{name:?}"),
                other => panic!("{name:?}: {other:?}"),
            }
        }
        assert_eq!(core.list_users().await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn delete_user() {
        let core = core();
        core.create_user("bob", "bob-password", Role::Read, None)
            .await
            .unwrap();
        core.delete_user("bob").await.unwrap();
        assert!(matches!(
            core.delete_user("bob").await,
            Err(AuthError::NotFound { .. })
        ));
        assert!(core.login("bob", "bob-password").await.is_err());
    }

    #[tokio::test]
    async fn tokens_are_refused_once_their_user_is_deleted_or_changes_password() {
        let core = core();
        core.create_user("carol", "carol-password-1", Role::Write, None)
            .await
            .unwrap();
        let bearer = |token: &str| Credential::Bearer(token.to_owned());
        let (first, _) = core.login("carol", "carol-password-1").await.unwrap();
        assert!(core.authenticate(&bearer(&first)).await.is_ok());

        core.change_password("carol", "carol-password-2")
            .await
            .unwrap();
        assert!(
            matches!(
                core.authenticate(&bearer(&first)).await,
                Err(AuthError::Unauthenticated(m)) if m.contains("revoked")
            ),
            "a token from before the password change is refused at once"
        );
        assert!(core.login("carol", "carol-password-1").await.is_err());
        let (second, _) = core.login("carol", "carol-password-2").await.unwrap();
        assert!(core.authenticate(&bearer(&second)).await.is_ok());

        core.delete_user("carol").await.unwrap();
        assert!(
            matches!(
                core.authenticate(&bearer(&second)).await,
                Err(AuthError::Unauthenticated(m)) if m.contains("no longer exists")
            ),
            "a deleted user's token is refused at once"
        );
        // A new user of the same name does not revive the old tokens.
        core.create_user("carol", "carol-password-3", Role::Admin, None)
            .await
            .unwrap();
        assert!(core.authenticate(&bearer(&second)).await.is_err());
        assert!(matches!(
            core.change_password("nobody", "whatever-password").await,
            Err(AuthError::NotFound { .. })
        ));
        assert!(matches!(
            core.change_password("carol", "x").await,
            Err(AuthError::Invalid {
                field: "password",
                ..
            })
        ));
    }

    #[tokio::test]
    async fn api_key_lifecycle() {
        let core = core();
        let (id, key) = core
            .create_api_key(
                "ci",
                Role::Read,
                Some(vec!["a".into(), "a".into(), "b".into()]),
            )
            .await
            .unwrap();
        assert!(key.starts_with(&format!("vk_{id}_")));

        let principal = core
            .authenticate(&Credential::ApiKey(key.clone()))
            .await
            .unwrap();
        assert_eq!(principal.subject, format!("api-key:{id}"));
        assert_eq!(principal.role, Role::Read);
        assert_eq!(principal.collections, Some(vec!["a".into(), "b".into()]));

        let listed = core.list_api_keys().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].id, id);
        assert_eq!(listed[0].name, "ci");

        // A key with the right id but another secret is refused.
        let forged = format!("vk_{id}_{}", "ab".repeat(32));
        assert!(matches!(
            core.authenticate(&Credential::ApiKey(forged)).await,
            Err(AuthError::Unauthenticated(_))
        ));

        core.delete_api_key(&id).await.unwrap();
        // Deleting evicts the cached record at once.
        assert!(matches!(
            core.authenticate(&Credential::ApiKey(key)).await,
            Err(AuthError::Unauthenticated(_))
        ));
        assert!(matches!(
            core.delete_api_key(&id).await,
            Err(AuthError::NotFound { .. })
        ));
        assert!(matches!(
            core.delete_api_key("nope").await,
            Err(AuthError::NotFound { .. })
        ));
        assert!(core.list_api_keys().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn api_key_cache_expires() {
        let core = core();
        let (id, key) = core.create_api_key("k", Role::Write, None).await.unwrap();
        core.authenticate(&Credential::ApiKey(key.clone()))
            .await
            .unwrap();
        // Delete behind the cache's back, as another auth instance would.
        assert!(core.store.delete(&store::api_key_key(&id)).await.unwrap());
        assert!(
            core.authenticate(&Credential::ApiKey(key.clone()))
                .await
                .is_ok(),
            "cached record is reused"
        );
        // As if the cached lookup expired (expiry: `record_cache`'s tests).
        core.api_keys.forget(&id);
        assert!(core.authenticate(&Credential::ApiKey(key)).await.is_err());
    }

    #[tokio::test]
    async fn api_key_name_is_validated() {
        let core = core();
        assert!(matches!(
            core.create_api_key("", Role::Read, None).await,
            Err(AuthError::Invalid { field: "name", .. })
        ));
        assert!(matches!(
            core.authenticate(&Credential::ApiKey("vk_bad".into()))
                .await,
            Err(AuthError::Unauthenticated(_))
        ));
    }

    #[test]
    fn credential_debug_hides_secret() {
        let shown = format!("{:?}", Credential::ApiKey("vk_secret".into()));
        assert!(!shown.contains("secret"), "{shown}");
    }
}
