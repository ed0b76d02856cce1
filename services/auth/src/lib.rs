//! Vectron's auth service: users with Argon2id passwords, HS256 JWTs, API
//! keys stored as SHA-256 digests, all kept in PD's replicated key-value
//! namespace; plus the handle the gateway uses to call it in process or over
//! gRPC. Modules say whether they do I/O.

#![warn(missing_docs)]

pub mod api_key;
pub mod core;
pub mod error;
pub mod handle;
pub mod hash_gate;
pub mod node;
pub mod password;
pub mod principal;
pub mod record_cache;
pub mod service;
pub mod store;
pub mod time;
pub mod token;

pub use crate::core::{ApiKeyInfo, AuthCore, Credential, UserInfo};
pub use error::{AuthError, Result};
pub use handle::AuthHandle;
pub use node::{AuthConfig, bootstrap_with_retry, load_or_create_secret, read_secret, run};
pub use principal::{Principal, Role};
pub use service::AuthService;
pub use store::AuthStore;
pub use time::rfc3339;
pub use token::{Claims, DEFAULT_TOKEN_TTL, JwtKeys, sign_claims};
