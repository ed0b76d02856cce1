//! Where auth state lives: PD's replicated key-value namespace, or an
//! in-memory map for unit tests. Records are JSON under `auth/users/<name>`
//! and `auth/api-keys/<id>`. Does network I/O (PD variant).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tonic::Code;
use vectron_pd::{PdClient, PdClientError};
use vectron_proto::pd::v1 as pd;

use crate::error::{AuthError, Result};
use crate::principal::Role;

/// Key prefix of user records.
pub const USERS_PREFIX: &str = "auth/users/";
/// Key prefix of API-key records.
pub const API_KEYS_PREFIX: &str = "auth/api-keys/";

/// Page size of prefix scans against PD.
const SCAN_PAGE: u32 = 500;

/// The store key of user `username`.
pub fn user_key(username: &str) -> Vec<u8> {
    format!("{USERS_PREFIX}{username}").into_bytes()
}

/// The store key of API key `id`.
pub fn api_key_key(id: &str) -> Vec<u8> {
    format!("{API_KEYS_PREFIX}{id}").into_bytes()
}

/// A stored user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    /// The login name.
    pub username: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// The role.
    pub role: Role,
    /// The collections the user is limited to; `None` means all.
    pub collections: Option<Vec<String>>,
    /// Creation time, seconds since the Unix epoch.
    pub created_at_unix: i64,
    /// The version every token issued to the user carries; a token whose
    /// version differs (the password changed since) is refused. Random at
    /// creation; 0 for users created before versions existed.
    #[serde(default)]
    pub token_version: u64,
}

/// A stored API key (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    /// The public id.
    pub id: String,
    /// A label chosen by the creator.
    pub name: String,
    /// Hex SHA-256 of the key's secret.
    pub secret_sha256: String,
    /// The role.
    pub role: Role,
    /// The collections the key is limited to; `None` means all.
    pub collections: Option<Vec<String>>,
    /// Creation time, seconds since the Unix epoch.
    pub created_at_unix: i64,
}

/// Serialises a record for the store.
pub fn encode<T: Serialize>(record: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(record).map_err(|e| AuthError::Internal(format!("encoding record: {e}")))
}

/// Reads a record from the store; `key` names it in the error.
pub fn decode<T: DeserializeOwned>(key: &[u8], value: &[u8]) -> Result<T> {
    serde_json::from_slice(value).map_err(|e| {
        AuthError::Internal(format!(
            "corrupt record at {}: {e}",
            String::from_utf8_lossy(key)
        ))
    })
}

/// Map type of the in-memory store: key → (value, version).
pub type MemoryMap = BTreeMap<Vec<u8>, (Vec<u8>, u64)>;

/// The backing key-value store.
pub enum AuthStore {
    /// PD's replicated KV namespace; what every real deployment uses.
    Pd(Arc<PdClient>),
    /// A process-local map. For unit tests only: nothing is replicated or
    /// persisted, so never use it in a running service.
    Memory(Mutex<MemoryMap>),
}

impl std::fmt::Debug for AuthStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuthStore::Pd(_) => f.write_str("AuthStore::Pd"),
            AuthStore::Memory(_) => f.write_str("AuthStore::Memory"),
        }
    }
}

fn lock(map: &Mutex<MemoryMap>) -> std::sync::MutexGuard<'_, MemoryMap> {
    map.lock().unwrap_or_else(|p| p.into_inner())
}

impl AuthStore {
    /// An empty in-memory store (unit tests only; see [`AuthStore::Memory`]).
    pub fn memory() -> Self {
        AuthStore::Memory(Mutex::new(BTreeMap::new()))
    }

    /// The value at `key`, if any.
    pub async fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        match self {
            AuthStore::Pd(client) => {
                let req = pd::KvGetRequest { key: key.to_vec() };
                let resp = client
                    .call(|mut c| {
                        let req = req.clone();
                        async move { c.kv_get(req).await }
                    })
                    .await?;
                Ok(resp.pair.map(|p| p.value))
            }
            AuthStore::Memory(map) => Ok(lock(map).get(key).map(|(v, _)| v.clone())),
        }
    }

    /// Writes `value` at `key` only if the key does not exist; returns
    /// whether it wrote.
    pub async fn put_if_absent(&self, key: &[u8], value: Vec<u8>) -> Result<bool> {
        match self {
            AuthStore::Pd(client) => {
                let req = pd::KvPutRequest {
                    key: key.to_vec(),
                    value,
                    expected_version: Some(0),
                };
                let result = client
                    .call(|mut c| {
                        let req = req.clone();
                        async move { c.kv_put(req).await }
                    })
                    .await;
                match result {
                    Ok(_) => Ok(true),
                    Err(PdClientError::Rejected(status)) if status.code() == Code::Aborted => {
                        Ok(false)
                    }
                    Err(e) => Err(e.into()),
                }
            }
            AuthStore::Memory(map) => {
                let mut map = lock(map);
                if map.contains_key(key) {
                    return Ok(false);
                }
                map.insert(key.to_vec(), (value, 1));
                Ok(true)
            }
        }
    }

    /// Writes `value` at `key` unconditionally.
    pub async fn put(&self, key: &[u8], value: Vec<u8>) -> Result<()> {
        match self {
            AuthStore::Pd(client) => {
                let req = pd::KvPutRequest {
                    key: key.to_vec(),
                    value,
                    expected_version: None,
                };
                client
                    .call(|mut c| {
                        let req = req.clone();
                        async move { c.kv_put(req).await }
                    })
                    .await?;
                Ok(())
            }
            AuthStore::Memory(map) => {
                let mut map = lock(map);
                let version = map.get(key).map_or(1, |(_, v)| v + 1);
                map.insert(key.to_vec(), (value, version));
                Ok(())
            }
        }
    }

    /// Deletes `key`; returns whether it existed.
    pub async fn delete(&self, key: &[u8]) -> Result<bool> {
        match self {
            AuthStore::Pd(client) => {
                let req = pd::KvDeleteRequest { key: key.to_vec() };
                let resp = client
                    .call(|mut c| {
                        let req = req.clone();
                        async move { c.kv_delete(req).await }
                    })
                    .await?;
                Ok(resp.deleted)
            }
            AuthStore::Memory(map) => Ok(lock(map).remove(key).is_some()),
        }
    }

    /// Every (key, value) under `prefix`, in key order.
    pub async fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        match self {
            AuthStore::Pd(client) => {
                let mut out = Vec::new();
                let mut start_after = Vec::new();
                loop {
                    let req = pd::KvScanRequest {
                        prefix: prefix.to_vec(),
                        start_after: start_after.clone(),
                        limit: SCAN_PAGE,
                    };
                    let resp = client
                        .call(|mut c| {
                            let req = req.clone();
                            async move { c.kv_scan(req).await }
                        })
                        .await?;
                    let Some(last) = resp.pairs.last().map(|p| p.key.clone()) else {
                        break;
                    };
                    out.extend(resp.pairs.into_iter().map(|p| (p.key, p.value)));
                    if !resp.more {
                        break;
                    }
                    start_after = last;
                }
                Ok(out)
            }
            AuthStore::Memory(map) => Ok(lock(map)
                .range(prefix.to_vec()..)
                .take_while(|(k, _)| k.starts_with(prefix))
                .map(|(k, (v, _))| (k.clone(), v.clone()))
                .collect()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_store_operations() {
        let store = AuthStore::memory();
        assert_eq!(store.get(b"auth/users/a").await.unwrap(), None);
        assert!(
            store
                .put_if_absent(b"auth/users/a", b"1".to_vec())
                .await
                .unwrap()
        );
        assert!(
            !store
                .put_if_absent(b"auth/users/a", b"2".to_vec())
                .await
                .unwrap()
        );
        assert_eq!(
            store.get(b"auth/users/a").await.unwrap(),
            Some(b"1".to_vec())
        );
        store.put(b"auth/users/a", b"3".to_vec()).await.unwrap();
        store.put(b"auth/users/b", b"4".to_vec()).await.unwrap();
        store.put(b"auth/api-keys/x", b"5".to_vec()).await.unwrap();
        let users = store.scan_prefix(USERS_PREFIX.as_bytes()).await.unwrap();
        assert_eq!(
            users,
            vec![
                (b"auth/users/a".to_vec(), b"3".to_vec()),
                (b"auth/users/b".to_vec(), b"4".to_vec())
            ]
        );
        assert!(store.delete(b"auth/users/a").await.unwrap());
        assert!(!store.delete(b"auth/users/a").await.unwrap());
        assert_eq!(
            store
                .scan_prefix(USERS_PREFIX.as_bytes())
                .await
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn corrupt_record_names_its_key() {
        let err = decode::<UserRecord>(b"auth/users/x", b"{").unwrap_err();
        assert!(err.to_string().contains("auth/users/x"), "{err}");
    }
}
