//! Key material from the operating system's random source.

use promptstore_core::service::keys::{KEY_RANDOM_BYTES, KeyMaterial};
use promptstore_types::ErrorCode;

use crate::error::ApiError;

/// A fresh key id and secret from OS randomness.
pub fn new_key_material() -> Result<KeyMaterial, ApiError> {
    let mut random = [0u8; KEY_RANDOM_BYTES];
    getrandom::fill(&mut random).map_err(|e| {
        tracing::error!(error = %e, "os random source failed");
        ApiError::new(
            ErrorCode::Internal,
            "internal error; the cause is in the server log",
        )
    })?;
    Ok(KeyMaterial::from_random(&random))
}
