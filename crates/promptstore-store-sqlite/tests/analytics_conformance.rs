//! The shared analytics conformance suite, run on real SQLite files (registry and events)
//! in a temporary directory.

use promptstore_core::analytics::store::AnalyticsStore;
use promptstore_core::analytics::store_tests::AnalyticsFixture;
use promptstore_core::store::Store;
use promptstore_store_sqlite::SqliteStore;

/// Fresh database files; the directory lives as long as the store.
struct TempStore {
    _dir: tempfile::TempDir,
    store: SqliteStore,
}

impl AnalyticsFixture for TempStore {
    fn analytics(&self) -> &dyn AnalyticsStore {
        &self.store
    }

    fn registry(&self) -> &dyn Store {
        &self.store
    }
}

async fn fresh() -> TempStore {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = SqliteStore::open(&dir.path().join("conformance.db"))
        .await
        .expect("fresh databases");
    TempStore { _dir: dir, store }
}

promptstore_core::analytics_store_test_suite!(fresh().await);
