//! The shared storage conformance suite, run on a real SQLite file in a temporary directory.

use promptstore_core::store::Store;
use promptstore_core::store_tests::Fixture;
use promptstore_store_sqlite::SqliteStore;

/// A fresh database file; the directory lives as long as the store.
struct TempStore {
    _dir: tempfile::TempDir,
    store: SqliteStore,
}

impl Fixture for TempStore {
    fn store(&self) -> &dyn Store {
        &self.store
    }
}

async fn fresh() -> TempStore {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = SqliteStore::open(&dir.path().join("conformance.db"))
        .await
        .expect("a fresh database");
    TempStore { _dir: dir, store }
}

promptstore_core::store_test_suite!(fresh().await);
