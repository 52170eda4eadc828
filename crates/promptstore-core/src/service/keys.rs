//! API keys: how a secret is built from random bytes and hashed, and the key use cases.
//!
//! The caller supplies the random bytes (the server reads them from the OS), so this module
//! stays pure and its format is unit-testable.

use promptstore_types::CreateApiKey;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::model::{Actor, ApiKeyRecord, NewApiKey};
use crate::store::Store;

/// Length of the public key id (`ps_<id>_…`).
pub const KEY_ID_LEN: usize = 12;
/// Random bytes behind the secret part (64 hex characters).
pub const KEY_SECRET_BYTES: usize = 32;
/// How many random bytes [`KeyMaterial::from_random`] needs.
pub const KEY_RANDOM_BYTES: usize = KEY_ID_LEN + KEY_SECRET_BYTES;

const ID_ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// A freshly generated key: the id, the full secret (shown once) and its stored hash.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyMaterial {
    pub id: String,
    pub secret: String,
    pub secret_hash: String,
}

impl std::fmt::Debug for KeyMaterial {
    // The secret must never reach a log line through `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyMaterial")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl KeyMaterial {
    /// Build `ps_<12 [a-z0-9]>_<64 hex>` from OS-random bytes.
    pub fn from_random(random: &[u8; KEY_RANDOM_BYTES]) -> Self {
        let (id_bytes, secret_bytes) = random.split_at(KEY_ID_LEN);
        let id: String = id_bytes
            .iter()
            .map(|b| char::from(ID_ALPHABET[usize::from(*b) % ID_ALPHABET.len()]))
            .collect();
        let secret = format!("ps_{id}_{}", hex::encode(secret_bytes));
        let secret_hash = hash_secret(&secret);
        KeyMaterial {
            id,
            secret,
            secret_hash,
        }
    }
}

/// SHA-256 (hex) of the whole presented secret: what the store keeps.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(secret_digest(secret))
}

/// SHA-256 of the whole presented secret, as bytes: what authentication compares, so a
/// request does not pay for hex-encoding it.
pub fn secret_digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// The bytes of a stored secret hash (`hash_secret`'s hex), or `None` when it is not one.
pub fn parse_secret_hash(stored: &str) -> Option<[u8; 32]> {
    let bytes = hex::decode(stored).ok()?;
    bytes.try_into().ok()
}

/// The key id inside a presented secret, when it has the `ps_<id>_<64 hex>` shape.
pub fn key_id_of(secret: &str) -> Option<&str> {
    let rest = secret.strip_prefix("ps_")?;
    let (id, tail) = rest.split_once('_')?;
    let id_ok = id.len() == KEY_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let tail_ok = tail.len() == KEY_SECRET_BYTES * 2 && tail.bytes().all(|b| b.is_ascii_hexdigit());
    (id_ok && tail_ok).then_some(id)
}

/// Create a key in the actor's project.
pub async fn create(
    store: &dyn Store,
    actor: &Actor,
    req: &CreateApiKey,
    material: &KeyMaterial,
) -> Result<ApiKeyRecord> {
    crate::names::validate_key_name(&req.name)?;
    let name = req.name.trim().to_owned();
    let key = NewApiKey {
        id: material.id.clone(),
        name,
        role: req.role,
        secret_hash: material.secret_hash.clone(),
    };
    Ok(store.create_api_key(actor, key).await?)
}

/// Every key of the actor's project, revoked ones included.
pub async fn list(store: &dyn Store, actor: &Actor) -> Result<Vec<ApiKeyRecord>> {
    Ok(store.list_api_keys(&actor.project).await?)
}

/// Revoke a key of the actor's project. A key of another project is `not_found`.
pub async fn revoke(store: &dyn Store, actor: &Actor, id: &str) -> Result<ApiKeyRecord> {
    let found = store.find_api_key(id).await?;
    match found {
        Some(k) if k.project == actor.project => Ok(store.revoke_api_key(actor, id).await?),
        _ => Err(Error::not_found(format!("key '{id}'"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_has_the_documented_shape_and_round_trips_its_id() {
        let mut random = [0u8; KEY_RANDOM_BYTES];
        for (i, b) in random.iter_mut().enumerate() {
            *b = (i * 37 % 256) as u8;
        }
        let m = KeyMaterial::from_random(&random);
        assert_eq!(m.id.len(), KEY_ID_LEN);
        assert!(m.secret.starts_with(&format!("ps_{}_", m.id)));
        assert_eq!(m.secret.len(), 3 + KEY_ID_LEN + 1 + 64);
        assert_eq!(key_id_of(&m.secret), Some(m.id.as_str()));
        assert_eq!(m.secret_hash, hash_secret(&m.secret));
        assert_eq!(m.secret_hash.len(), 64);
        assert!(!format!("{m:?}").contains(&m.secret));
    }

    #[test]
    fn malformed_secrets_have_no_id() {
        let hex64 = "a".repeat(64);
        for bad in [
            String::new(),
            "ps_".to_owned(),
            format!("ps_ABCDEFGHIJKL_{hex64}"),
            format!("ps_abc_{hex64}"),
            format!("xx_abcdefghijkl_{hex64}"),
            "ps_abcdefghijkl_zz".to_owned(),
        ] {
            assert_eq!(key_id_of(&bad), None, "{bad}");
        }
        assert_eq!(
            key_id_of(&format!("ps_abcdefghijkl_{hex64}")),
            Some("abcdefghijkl")
        );
    }

    #[test]
    fn sha256_hex_matches_a_known_vector() {
        assert_eq!(
            hash_secret("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
