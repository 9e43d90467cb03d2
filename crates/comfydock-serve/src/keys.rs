//! Bearer API keys: generated here, shown once, stored only as a SHA-256 hash.

use sha2::{Digest as _, Sha256};

use crate::store::{ApiKeyRecord, JobStore, StoreError};

/// A new key as shown to the user once.
#[derive(Debug, Clone)]
pub struct CreatedKey {
    /// The secret (`cdk_` + 64 hex characters).
    pub key: String,
    pub record: ApiKeyRecord,
}

/// The stored form of a key.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Creates a key named `name` in the store.
pub async fn create(store: &dyn JobStore, name: &str) -> Result<CreatedKey, StoreError> {
    let secret: [u8; 32] = rand::random();
    let key = format!("cdk_{}", hex::encode(secret));
    let prefix = key[..12].to_owned();
    let record = store.create_key(name.to_owned(), prefix, hash_key(&key)).await?;
    Ok(CreatedKey { key, record })
}

/// Why a key given to `serve` (from a deployment's Secret) is refused.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("an API key given to serve is {len} characters long; keys need at least {MIN_KEY_LEN}")]
    TooShort { len: usize },
    #[error("the API key `{prefix}…` given to serve was revoked")]
    Revoked { prefix: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl comfydock_foundation::Hinted for RegisterError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            Self::TooShort { .. } => "make one with `openssl rand -hex 32`".into(),
            Self::Revoked { .. } => "put a new key in the Secret (`openssl rand -hex 32`) and restart".into(),
            Self::Store(_) => return None,
        })
    }
}

/// The shortest key `serve` accepts from its environment (a 128-bit secret in hex).
pub const MIN_KEY_LEN: usize = 32;

/// Accept `key` (chosen elsewhere, e.g. a Kubernetes Secret) as an API key named `name`: stored
/// by hash the first time, found again afterwards. A key revoked in the store stays revoked.
pub async fn register(store: &dyn JobStore, name: &str, key: &str) -> Result<ApiKeyRecord, RegisterError> {
    let key = key.trim();
    if key.len() < MIN_KEY_LEN {
        return Err(RegisterError::TooShort { len: key.len() });
    }
    if let Some(found) = store.find_key(hash_key(key)).await? {
        if found.revoked_at.is_some() {
            return Err(RegisterError::Revoked { prefix: found.prefix });
        }
        return Ok(found);
    }
    let prefix = key.chars().take(8).collect::<String>();
    match store
        .create_key(name.to_owned(), prefix.clone(), hash_key(key))
        .await
    {
        Ok(record) => Ok(record),
        // Hashes are unique and no active key has this one: it is there, revoked.
        Err(e) if violates_unique(&e) => Err(RegisterError::Revoked { prefix }),
        Err(e) => Err(e.into()),
    }
}

/// Whether the database refused a row for a unique column (SQLite and PostgreSQL say so in
/// their messages, somewhere down the error's causes).
fn violates_unique(e: &StoreError) -> bool {
    let mut cause: Option<&dyn std::error::Error> = Some(e);
    while let Some(c) = cause {
        if c.to_string().to_ascii_lowercase().contains("unique") {
            return true;
        }
        cause = c.source();
    }
    false
}

/// Whether any key is active (then `/v1` requires one).
pub async fn any_active(store: &dyn JobStore) -> Result<bool, StoreError> {
    Ok(store.list_keys().await?.iter().any(|k| k.revoked_at.is_none()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn created_keys_are_found_by_hash_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::sqlite::SqliteStore::open(&dir.path().join("q.db")).unwrap();
        assert!(!any_active(&store).await.unwrap());
        let created = create(&store, "ci").await.unwrap();
        assert!(created.key.starts_with("cdk_") && created.key.len() == 68);
        assert!(created.key.starts_with(&created.record.prefix));
        assert!(any_active(&store).await.unwrap());
        let found = store.find_key(hash_key(&created.key)).await.unwrap().unwrap();
        assert_eq!(found.name, "ci");
        assert!(
            store.find_key(created.key.clone()).await.unwrap().is_none(),
            "the secret itself is not stored"
        );
    }

    #[tokio::test]
    async fn keys_from_a_secret_are_registered_once_and_stay_revoked() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::sqlite::SqliteStore::open(&dir.path().join("q.db")).unwrap();
        let key = "0123456789abcdef".repeat(4);
        assert!(matches!(
            register(&store, "secret", "short").await,
            Err(RegisterError::TooShort { len: 5 })
        ));
        let first = register(&store, "secret", &key).await.unwrap();
        let again = register(&store, "secret", &format!("{key}\n")).await.unwrap();
        assert_eq!(first.id, again.id, "registered once");
        assert_eq!(store.list_keys().await.unwrap().len(), 1);
        assert!(any_active(&store).await.unwrap());
        assert_eq!(
            store.find_key(hash_key(&key)).await.unwrap().unwrap().name,
            "secret"
        );
        assert_eq!(store.revoke_key(first.id.clone()).await.unwrap(), 1);
        assert!(matches!(
            register(&store, "secret", &key).await,
            Err(RegisterError::Revoked { .. })
        ));
    }
}
