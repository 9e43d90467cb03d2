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
}
