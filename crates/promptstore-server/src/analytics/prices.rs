//! Each project's price book, kept in memory so costing an event at ingest never reads the
//! store. Loaded at start; a project's book is rebuilt after every change to its prices.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use promptstore_core::analytics::cost::PriceBook;
use promptstore_core::analytics::model::PriceRecord;
use promptstore_core::analytics::store::AnalyticsStore;
use promptstore_core::model::ProjectId;
use promptstore_core::store::StoreError;

#[derive(Debug)]
pub struct PriceCache {
    books: ArcSwap<HashMap<ProjectId, Arc<PriceBook>>>,
    /// The book of a project without entries of its own: the shipped defaults.
    defaults: Arc<PriceBook>,
    /// Serializes refreshes so an older read can never overwrite a newer one.
    refresh: tokio::sync::Mutex<()>,
}

impl PriceCache {
    /// Every project's entries, read once.
    pub async fn load(store: &dyn AnalyticsStore) -> Result<PriceCache, StoreError> {
        let mut by_project: HashMap<ProjectId, Vec<PriceRecord>> = HashMap::new();
        for (project, price) in store.all_prices().await? {
            by_project.entry(project).or_default().push(price);
        }
        let books = by_project
            .into_iter()
            .map(|(project, entries)| (project, Arc::new(PriceBook::new(&entries))))
            .collect();
        Ok(PriceCache {
            books: ArcSwap::from_pointee(books),
            defaults: Arc::new(PriceBook::new(&[])),
            refresh: tokio::sync::Mutex::new(()),
        })
    }

    /// The project's book (lock-free).
    pub fn book(&self, project: &ProjectId) -> Arc<PriceBook> {
        self.books
            .load()
            .get(project)
            .cloned()
            .unwrap_or_else(|| self.defaults.clone())
    }

    /// Re-read one project's entries after a price write.
    pub async fn refresh(
        &self,
        store: &dyn AnalyticsStore,
        project: &ProjectId,
    ) -> Result<(), StoreError> {
        let _guard = self.refresh.lock().await;
        let entries = store.list_prices(project).await?;
        let mut books = HashMap::clone(&self.books.load());
        books.insert(project.clone(), Arc::new(PriceBook::new(&entries)));
        self.books.store(Arc::new(books));
        Ok(())
    }
}
