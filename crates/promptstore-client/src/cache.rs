//! The runtime cache: resolved prompts served from memory (a read lock, two hash lookups and
//! an `Arc` clone), refreshed in the background when stale, kept when the server is down,
//! pre-warmed in bulk and invalidated by the change stream.
//!
//! Experiment assignment needs the caller's unit id on the server, so the cache holds what a
//! label or version resolves to *without* a unit id; use [`Client::resolve`] per unit for
//! prompts under an A/B test.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use promptstore_types::{BulkResolved, ChangeEvent, ErrorCode, ResolvedPrompt, Selector};
use tokio::runtime::Handle;
use tokio::task::JoinHandle;

use crate::client::{Client, Fetched};
use crate::error::ClientError;

/// How the cache behaves.
#[derive(Debug, Clone)]
pub struct CacheConfig {
    /// How long a fetched entry is served without asking the server again.
    pub ttl: Duration,
    /// After a failed refresh, how long to wait before the next attempt (the stale entry is
    /// served meanwhile).
    pub retry_interval: Duration,
    /// A change stream that sends nothing (not even a keep-alive) for this long is
    /// considered dead and reopened.
    pub stream_idle_timeout: Duration,
    /// First and largest wait between reconnection attempts of the change stream.
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            ttl: Duration::from_secs(60),
            retry_interval: Duration::from_secs(2),
            stream_idle_timeout: Duration::from_secs(90),
            reconnect_min: Duration::from_millis(250),
            reconnect_max: Duration::from_secs(30),
        }
    }
}

/// Counters of what the cache did, for metrics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CacheStats {
    /// Entries currently held.
    pub entries: usize,
    /// Served from memory while fresh.
    pub hits: u64,
    /// Not in memory: fetched from the server before answering.
    pub misses: u64,
    /// Served from memory past the TTL while a refresh ran in the background.
    pub stale_hits: u64,
    /// Served from memory because the last refresh of the entry failed (server down…).
    pub served_stale: u64,
    /// Background refreshes that completed (changed or `304`).
    pub refreshes: u64,
    /// Background refreshes that failed; the entry was kept.
    pub refresh_failures: u64,
    /// Change events applied from the stream.
    pub change_events: u64,
    /// How long the oldest still-failing entry has been served stale, if any is.
    pub served_stale_for: Option<Duration>,
}

#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    stale_hits: AtomicU64,
    served_stale: AtomicU64,
    refreshes: AtomicU64,
    refresh_failures: AtomicU64,
    change_events: AtomicU64,
}

/// At most one refresh per key runs at a time; a request for another while one runs sets
/// `again`, so a change that arrived mid-refresh is never lost.
#[derive(Default)]
struct RefreshFlag {
    in_flight: AtomicBool,
    again: AtomicBool,
}

struct Entry {
    value: Arc<ResolvedPrompt>,
    etag: Option<String>,
    fresh_until: Instant,
    /// When refreshes of this entry started failing; `None` while the server answers.
    failing_since: Option<Instant>,
    refresh: Arc<RefreshFlag>,
}

/// name → selector → entry: two lookups by borrowed keys, so a hit allocates nothing.
type Entries = HashMap<String, HashMap<Selector, Entry>>;

struct Shared {
    client: Client,
    config: CacheConfig,
    runtime: Handle,
    entries: RwLock<Entries>,
    counters: Counters,
}

/// A [`Client`] with an in-memory cache of resolved prompts. Cheap to clone (shared state).
#[derive(Clone)]
pub struct CachedClient {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for CachedClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedClient")
            .field("client", &self.shared.client)
            .field("config", &self.shared.config)
            .finish()
    }
}

impl CachedClient {
    /// Wraps `client`. Must be called inside a Tokio runtime: background refreshes run on it.
    pub fn new(client: Client, config: CacheConfig) -> Result<CachedClient, ClientError> {
        let runtime = Handle::try_current().map_err(|_| {
            ClientError::InvalidArgument(
                "CachedClient::new must be called inside a Tokio runtime".into(),
            )
        })?;
        Ok(CachedClient {
            shared: Arc::new(Shared {
                client,
                config,
                runtime,
                entries: RwLock::new(HashMap::new()),
                counters: Counters::default(),
            }),
        })
    }

    /// The wrapped client, for uncached calls.
    pub fn client(&self) -> &Client {
        &self.shared.client
    }

    /// The cached resolution of `name` at `selector`, fetching it on a miss. A stale entry is
    /// returned at once and refreshed in the background; while the server is unreachable the
    /// last good value keeps being served.
    pub async fn get(
        &self,
        name: &str,
        selector: &Selector,
    ) -> Result<Arc<ResolvedPrompt>, ClientError> {
        if let Some(hit) = self.get_cached(name, selector) {
            return Ok(hit);
        }
        self.shared.counters.misses.fetch_add(1, Ordering::Relaxed);
        match self
            .shared
            .client
            .resolve_conditional(name, selector, None, None)
            .await?
        {
            Fetched::Modified(tagged) => {
                let value = Arc::new(tagged.value);
                self.shared
                    .store(name, selector, value.clone(), tagged.etag);
                Ok(value)
            }
            // We sent no ETag, so a 304 is a server bug; say so rather than loop.
            Fetched::NotModified => Err(ClientError::Decode(
                "the server answered 304 to an unconditional resolve".into(),
            )),
        }
    }

    /// The memory-only half of [`CachedClient::get`]: `None` on a miss, never waits on the
    /// network (a stale hit schedules a background refresh).
    pub fn get_cached(&self, name: &str, selector: &Selector) -> Option<Arc<ResolvedPrompt>> {
        let shared = &self.shared;
        let entries = shared
            .entries
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let entry = entries.get(name)?.get(selector)?;
        let value = entry.value.clone();
        if entry.failing_since.is_some() {
            shared.counters.served_stale.fetch_add(1, Ordering::Relaxed);
        }
        if Instant::now() < entry.fresh_until {
            shared.counters.hits.fetch_add(1, Ordering::Relaxed);
            return Some(value);
        }
        let flag = entry.refresh.clone();
        drop(entries);
        shared.counters.stale_hits.fetch_add(1, Ordering::Relaxed);
        Shared::spawn_refresh(shared, name.to_string(), selector.clone(), flag);
        Some(value)
    }

    /// Loads every prompt that has `label` in one call (bulk resolve), so the first
    /// requests after start are served from memory. Returns how many were loaded.
    pub async fn prewarm(&self, label: &str) -> Result<usize, ClientError> {
        let bulk = self.shared.client.bulk_resolve(label).await?;
        let selector = Selector::Label(label.to_string());
        let count = bulk.prompts.len();
        for prompt in bulk.prompts {
            let name = prompt.prompt.clone();
            // The bulk ETag covers the whole set, not one prompt: the first refresh of each
            // entry fetches it in full and learns its own ETag.
            self.shared.store(&name, &selector, Arc::new(prompt), None);
        }
        Ok(count)
    }

    /// Loads a bulk-resolve answer obtained some other way (an offline bundle shipped with an
    /// agent, a file saved at the last run) as fresh entries, without touching the network:
    /// a boot-time fallback for when the server cannot be reached.
    pub fn load_bundle(&self, bundle: &BulkResolved) {
        let selector = Selector::Label(bundle.label.clone());
        for prompt in &bundle.prompts {
            self.shared
                .store(&prompt.prompt, &selector, Arc::new(prompt.clone()), None);
        }
    }

    /// Drops every cached entry of a prompt (the next `get` fetches it).
    pub fn invalidate(&self, name: &str) {
        self.shared
            .entries
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name);
    }

    /// Refreshes every cached entry in the background.
    pub fn refresh_all(&self) {
        Shared::refresh_matching(&self.shared, |_| true);
    }

    /// Applies one change event as the subscription does (useful when the caller reads
    /// [`Client::changes`] itself).
    pub fn apply_change(&self, event: &ChangeEvent) {
        Shared::apply(&self.shared, event);
    }

    /// Follows the server's change stream in a background task, refreshing affected entries
    /// as changes arrive and reconnecting with backoff. The task stops when the returned
    /// [`Subscription`] is dropped.
    pub fn subscribe(&self) -> Subscription {
        let connected = Arc::new(AtomicBool::new(false));
        let task = self.shared.runtime.spawn(Shared::follow_changes(
            self.shared.clone(),
            connected.clone(),
        ));
        Subscription { task, connected }
    }

    /// What the cache did so far.
    pub fn stats(&self) -> CacheStats {
        let c = &self.shared.counters;
        let entries = self
            .shared
            .entries
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        let served_stale_for = entries
            .values()
            .flat_map(|by_selector| by_selector.values())
            .filter_map(|entry| entry.failing_since)
            .map(|since| now.saturating_duration_since(since))
            .max();
        CacheStats {
            entries: entries.values().map(HashMap::len).sum(),
            hits: c.hits.load(Ordering::Relaxed),
            misses: c.misses.load(Ordering::Relaxed),
            stale_hits: c.stale_hits.load(Ordering::Relaxed),
            served_stale: c.served_stale.load(Ordering::Relaxed),
            refreshes: c.refreshes.load(Ordering::Relaxed),
            refresh_failures: c.refresh_failures.load(Ordering::Relaxed),
            change_events: c.change_events.load(Ordering::Relaxed),
            served_stale_for,
        }
    }
}

/// A running change-stream subscription; dropping it stops the background task.
#[derive(Debug)]
pub struct Subscription {
    task: JoinHandle<()>,
    connected: Arc<AtomicBool>,
}

impl Subscription {
    /// Whether the stream is open right now.
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Acquire)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Shared {
    fn store(
        &self,
        name: &str,
        selector: &Selector,
        value: Arc<ResolvedPrompt>,
        etag: Option<String>,
    ) {
        let fresh_until = Instant::now() + self.config.ttl;
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        let by_selector = entries.entry(name.to_string()).or_default();
        match by_selector.get_mut(selector) {
            Some(entry) => {
                entry.value = value;
                entry.etag = etag;
                entry.fresh_until = fresh_until;
                entry.failing_since = None;
            }
            None => {
                by_selector.insert(
                    selector.clone(),
                    Entry {
                        value,
                        etag,
                        fresh_until,
                        failing_since: None,
                        refresh: Arc::default(),
                    },
                );
            }
        }
    }

    /// Starts a background refresh of one key unless one is already running, in which case
    /// that one is asked to go again when it finishes.
    fn spawn_refresh(this: &Arc<Shared>, name: String, selector: Selector, flag: Arc<RefreshFlag>) {
        flag.again.store(true, Ordering::SeqCst);
        if flag.in_flight.swap(true, Ordering::SeqCst) {
            return;
        }
        let shared = this.clone();
        this.runtime.spawn(async move {
            loop {
                if flag.again.swap(false, Ordering::SeqCst) {
                    shared.refresh_once(&name, &selector).await;
                    continue;
                }
                flag.in_flight.store(false, Ordering::SeqCst);
                // A request that arrived between the check and the release saw `in_flight`
                // still set and only raised `again`: take the work back unless another task did.
                if flag.again.load(Ordering::SeqCst) && !flag.in_flight.swap(true, Ordering::SeqCst)
                {
                    continue;
                }
                break;
            }
        });
    }

    async fn refresh_once(&self, name: &str, selector: &Selector) {
        let etag = {
            let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
            match entries.get(name).and_then(|m| m.get(selector)) {
                Some(entry) => entry.etag.clone(),
                // Invalidated meanwhile (the prompt was deleted): nothing to refresh.
                None => return,
            }
        };
        let result = self
            .client
            .resolve_conditional(name, selector, None, etag.as_deref())
            .await;
        let now = Instant::now();
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        let Some(by_selector) = entries.get_mut(name) else {
            return;
        };
        match result {
            Ok(fetched) => {
                let Some(entry) = by_selector.get_mut(selector) else {
                    return;
                };
                if let Fetched::Modified(tagged) = fetched {
                    entry.value = Arc::new(tagged.value);
                    entry.etag = tagged.etag;
                }
                entry.fresh_until = now + self.config.ttl;
                entry.failing_since = None;
                self.counters.refreshes.fetch_add(1, Ordering::Relaxed);
            }
            // The prompt, label or version is gone for good: serving it stale would be wrong.
            Err(err)
                if matches!(
                    err.code(),
                    Some(ErrorCode::NotFound | ErrorCode::PromptArchived)
                ) =>
            {
                by_selector.remove(selector);
                if by_selector.is_empty() {
                    entries.remove(name);
                }
                tracing::debug!(prompt = %name, error = %err, "cached prompt no longer resolves, dropped");
            }
            Err(err) => {
                let Some(entry) = by_selector.get_mut(selector) else {
                    return;
                };
                entry.failing_since.get_or_insert(now);
                entry.fresh_until = now + self.config.retry_interval;
                self.counters
                    .refresh_failures
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(prompt = %name, error = %err, "cache refresh failed, serving the cached version");
            }
        }
    }

    /// Schedules a refresh of every entry whose prompt name matches.
    fn refresh_matching(this: &Arc<Shared>, matches: impl Fn(&str) -> bool) {
        let keys: Vec<(String, Selector, Arc<RefreshFlag>)> = {
            let entries = this.entries.read().unwrap_or_else(PoisonError::into_inner);
            entries
                .iter()
                .filter(|(name, _)| matches(name))
                .flat_map(|(name, by_selector)| {
                    by_selector.iter().map(|(selector, entry)| {
                        (name.clone(), selector.clone(), entry.refresh.clone())
                    })
                })
                .collect()
        };
        for (name, selector, flag) in keys {
            Shared::spawn_refresh(this, name, selector, flag);
        }
    }

    fn apply(this: &Arc<Shared>, event: &ChangeEvent) {
        this.counters.change_events.fetch_add(1, Ordering::Relaxed);
        match (event.kind.as_str(), event.prompt.as_deref()) {
            ("resync", _) => Shared::refresh_matching(this, |_| true),
            ("prompt_deleted", Some(prompt)) => {
                this.entries
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(prompt);
            }
            // Any other change of a prompt may change what its labels resolve to (a new
            // version moves `latest`, a status change may archive it): refresh its entries.
            // ETags make refreshing an unchanged entry cheap.
            (_, Some(prompt)) => Shared::refresh_matching(this, |name| name == prompt),
            (kind, None) => tracing::debug!(kind, "change event without a prompt ignored"),
        }
    }

    async fn follow_changes(this: Arc<Shared>, connected: Arc<AtomicBool>) {
        let mut backoff = this.config.reconnect_min;
        loop {
            match this.client.changes().await {
                Ok(mut stream) => {
                    connected.store(true, Ordering::Release);
                    backoff = this.config.reconnect_min;
                    // Changes made while we were not listening were missed: catch up.
                    Shared::refresh_matching(&this, |_| true);
                    loop {
                        match tokio::time::timeout(this.config.stream_idle_timeout, stream.next())
                            .await
                        {
                            Ok(Some(Ok(event))) => Shared::apply(&this, &event),
                            Ok(Some(Err(ClientError::Decode(message)))) => {
                                tracing::warn!(%message, "undecodable change event skipped");
                            }
                            Ok(Some(Err(err))) => {
                                tracing::warn!(error = %err, "change stream broke, reconnecting");
                                break;
                            }
                            Ok(None) => {
                                tracing::debug!("change stream closed by the server, reconnecting");
                                break;
                            }
                            Err(_) => {
                                tracing::warn!("change stream silent for too long, reconnecting");
                                break;
                            }
                        }
                    }
                    connected.store(false, Ordering::Release);
                }
                Err(err) => tracing::warn!(error = %err, "cannot open the change stream, retrying"),
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(this.config.reconnect_max);
        }
    }
}
