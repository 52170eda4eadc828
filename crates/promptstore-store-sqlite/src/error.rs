//! sqlx failures → `StoreError`: a unique violation means the object exists already; every
//! other database failure is a backend error whose text is for the log only.

use promptstore_core::store::StoreError;

/// Map a database error. `what` names the object a unique violation is about.
pub(crate) fn db_error(what: impl FnOnce() -> String, e: sqlx::Error) -> StoreError {
    if let Some(db) = e.as_database_error()
        && db.is_unique_violation()
    {
        return StoreError::AlreadyExists { what: what() };
    }
    StoreError::Backend(e.to_string())
}

/// Map a database error where a unique violation would be a bug rather than a user's doing.
pub(crate) fn backend(e: sqlx::Error) -> StoreError {
    db_error(|| "object".to_owned(), e)
}

/// A stored value that does not decode: the database was changed behind the store's back.
pub(crate) fn corrupt(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("corrupt {what} in the database: {detail}"))
}
