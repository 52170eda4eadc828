//! A bounded cache of render answers, so that a render asked again with the same request
//! (the same prompt, label or version, variables and unit id, for the same project) is
//! answered with the bytes computed the first time instead of being decoded, rendered and
//! encoded again. Agents render their system prompts with the same variables at every step
//! of a conversation; that is the traffic this serves.
//!
//! Correctness rests on two checks at every hit:
//! - the entry was computed from the project's *current* snapshot (`ProjectSnapshot::id`):
//!   every change of a prompt, label or experiment makes a new snapshot, so an entry can
//!   never outlive the state it was rendered from;
//! - the request is byte-for-byte the one the entry was computed from (the hash only finds
//!   the slot; equal bytes decide), so a hash collision can only cost a miss.
//!
//! Only answers without side effects are cached: a render that assigned an experiment arm
//! to a unit (and so offers an exposure) is never stored, and errors are never stored.
//!
//! An answer is kept on its request's *second* sighting, not its first (a "doorkeeper", as
//! in TinyLFU): a small table remembers a fingerprint of recent requests, and only a request
//! found there is admitted. Traffic whose requests never repeat (a user's question in every
//! render) then costs one atomic store per request instead of an entry built, inserted and
//! evicted unused; traffic that repeats is served from its third request on.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Bytes;
use axum::http::HeaderValue;
use promptstore_core::model::ProjectId;
use quick_cache::Weighter;
use quick_cache::sync::Cache;

/// Requests larger than this are not cached: agents' render requests are small, and a
/// large one would evict many small ones for one probable use.
const MAX_CACHED_REQUEST_BYTES: usize = 16 * 1024;
/// Answers larger than this are not cached, for the same reason.
const MAX_CACHED_ANSWER_BYTES: usize = 256 * 1024;
/// Bookkeeping bytes charged to every entry on top of its request and answer.
const ENTRY_OVERHEAD_BYTES: u64 = 160;
/// Slots of the doorkeeper (a power of two; 8 bytes each). A request is remembered until
/// another one lands on its slot, so this bounds how far apart two sightings may be to
/// count as a repeat: 16,384 distinct requests in between, on average.
const DOORKEEPER_SLOTS: usize = 16 * 1024;

/// A cached answer: the rendered body and its ETag, and what it was computed from.
#[derive(Debug)]
pub struct Answer {
    project: ProjectId,
    snapshot: u64,
    request: Box<[u8]>,
    pub body: Bytes,
    pub etag: HeaderValue,
}

#[derive(Clone)]
struct ByBytes;

impl Weighter<u128, Arc<Answer>> for ByBytes {
    fn weight(&self, _key: &u128, answer: &Arc<Answer>) -> u64 {
        (answer.request.len() + answer.body.len() + answer.project.0.len()) as u64
            + ENTRY_OVERHEAD_BYTES
    }
}

/// The render answer cache; `AnswerCache::new(0)` is a cache that keeps nothing.
pub struct AnswerCache {
    entries: Option<Cache<u128, Arc<Answer>, ByBytes>>,
    /// Fingerprints of requests seen once (see the module comment); 0 is an empty slot.
    seen: Box<[AtomicU64]>,
}

impl std::fmt::Debug for AnswerCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnswerCache")
            .field("entries", &self.entries.as_ref().map_or(0, Cache::len))
            .field("bytes", &self.entries.as_ref().map_or(0, Cache::weight))
            .finish()
    }
}

/// Where a request's answer is (or would be) kept: a hash of the project and the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnswerKey(u128);

impl AnswerCache {
    /// A cache holding at most about `capacity_bytes` of requests and answers (0 = off).
    pub fn new(capacity_bytes: u64) -> Self {
        let entries = (capacity_bytes > 0).then(|| {
            // Estimated item count for the table's initial size: answers of ~2 KiB.
            let estimated = usize::try_from(capacity_bytes / 2048)
                .unwrap_or(usize::MAX)
                .max(16);
            Cache::with_weighter(estimated, capacity_bytes, ByBytes)
        });
        let slots = if entries.is_some() {
            DOORKEEPER_SLOTS
        } else {
            0
        };
        let seen = (0..slots).map(|_| AtomicU64::new(0)).collect();
        AnswerCache { entries, seen }
    }

    /// Whether `key` was seen before (its answer is worth keeping); remembers it if not.
    fn seen_before(&self, key: AnswerKey) -> bool {
        if self.seen.is_empty() {
            return false;
        }
        // The low bits choose the slot, the high half is the fingerprint (never 0, the
        // empty slot). Races between requests only cost an admission, never a wrong answer:
        // a hit is still decided by `get`'s full comparison.
        let slot = &self.seen[(key.0 as usize) & (self.seen.len() - 1)];
        let fingerprint = ((key.0 >> 64) as u64) | 1;
        if slot.load(Ordering::Relaxed) == fingerprint {
            return true;
        }
        slot.store(fingerprint, Ordering::Relaxed);
        false
    }

    /// The key of `request` of `project`, or None when such a request is not cached.
    pub fn key(&self, project: &ProjectId, request: &[u8]) -> Option<AnswerKey> {
        if self.entries.is_none() || request.len() > MAX_CACHED_REQUEST_BYTES {
            return None;
        }
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        hasher.update(project.0.as_bytes());
        // The project name cannot contain a NUL byte: this separates it from the request.
        hasher.update(&[0]);
        hasher.update(request);
        Some(AnswerKey(hasher.digest128()))
    }

    /// The answer computed for exactly this request of this project from `snapshot`.
    pub fn get(
        &self,
        key: AnswerKey,
        project: &ProjectId,
        snapshot: u64,
        request: &[u8],
    ) -> Option<Arc<Answer>> {
        let answer = self.entries.as_ref()?.get(&key.0)?;
        (answer.snapshot == snapshot && *answer.request == *request && answer.project == *project)
            .then_some(answer)
    }

    /// Keep `body` (with `etag`) as the answer to `request` of `project` at `snapshot`, if
    /// this request was seen before (see the module comment).
    pub fn insert(
        &self,
        key: AnswerKey,
        project: &ProjectId,
        snapshot: u64,
        request: &[u8],
        body: Bytes,
        etag: HeaderValue,
    ) {
        let Some(entries) = &self.entries else {
            return;
        };
        if body.len() > MAX_CACHED_ANSWER_BYTES || !self.seen_before(key) {
            return;
        }
        entries.insert(
            key.0,
            Arc::new(Answer {
                project: project.clone(),
                snapshot,
                request: request.into(),
                body,
                etag,
            }),
        );
    }

    /// Entries held.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.as_ref().map_or(0, Cache::len)
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(name: &str) -> ProjectId {
        ProjectId(name.to_owned())
    }

    fn etag() -> HeaderValue {
        HeaderValue::from_static("\"e\"")
    }

    #[test]
    fn a_hit_needs_the_same_project_snapshot_and_bytes() {
        let cache = AnswerCache::new(1 << 20);
        let p = project("p");
        let request = br#"{"name":"a","variables":{"x":1}}"#;
        let key = cache.key(&p, request).unwrap();
        for _ in 0..2 {
            cache.insert(key, &p, 7, request, Bytes::from_static(b"answer"), etag());
        }

        let hit = cache
            .get(key, &p, 7, request)
            .expect("same request, same snapshot");
        assert_eq!(&hit.body[..], b"answer");
        assert!(
            cache.get(key, &p, 8, request).is_none(),
            "a newer snapshot misses"
        );
        let other = project("q");
        assert_ne!(
            cache.key(&other, request),
            Some(key),
            "keys differ by project"
        );
        assert!(
            cache.get(key, &other, 7, request).is_none(),
            "another project misses even on the same slot"
        );
        let changed = br#"{"name":"a","variables":{"x":2}}"#;
        assert!(
            cache.get(key, &p, 7, changed).is_none(),
            "other bytes on the same slot (a collision) miss"
        );
    }

    #[test]
    fn an_answer_is_kept_from_its_second_sighting_on() {
        let cache = AnswerCache::new(1 << 20);
        let p = project("p");
        let request = br#"{"name":"a"}"#;
        let key = cache.key(&p, request).unwrap();
        let keep = || cache.insert(key, &p, 1, request, Bytes::from_static(b"x"), etag());
        keep();
        assert!(
            cache.get(key, &p, 1, request).is_none(),
            "seen once: not kept"
        );
        keep();
        assert!(cache.get(key, &p, 1, request).is_some(), "seen twice: kept");

        // Requests that never repeat leave the cache empty.
        let fresh = AnswerCache::new(1 << 20);
        for i in 0..1_000 {
            let request = format!(r#"{{"name":"a","variables":{{"i":{i}}}}}"#);
            let key = fresh.key(&p, request.as_bytes()).unwrap();
            fresh.insert(
                key,
                &p,
                1,
                request.as_bytes(),
                Bytes::from_static(b"x"),
                etag(),
            );
        }
        assert!(fresh.is_empty());
    }

    #[test]
    fn a_disabled_cache_keeps_nothing() {
        let cache = AnswerCache::new(0);
        let p = project("p");
        assert!(cache.key(&p, b"{}").is_none());
        assert!(cache.is_empty());
    }

    #[test]
    fn large_requests_and_answers_are_not_cached() {
        let cache = AnswerCache::new(1 << 20);
        let p = project("p");
        let big_request = vec![b' '; MAX_CACHED_REQUEST_BYTES + 1];
        assert!(cache.key(&p, &big_request).is_none());
        let key = cache.key(&p, b"{}").unwrap();
        let big_answer = Bytes::from(vec![b'x'; MAX_CACHED_ANSWER_BYTES + 1]);
        for _ in 0..2 {
            cache.insert(key, &p, 1, b"{}", big_answer.clone(), etag());
        }
        assert!(cache.get(key, &p, 1, b"{}").is_none());
    }

    #[test]
    fn the_cache_stays_within_its_byte_budget() {
        let budget = 64 * 1024;
        let cache = AnswerCache::new(budget);
        let p = project("p");
        for i in 0..1_000 {
            let request = format!(r#"{{"name":"a","variables":{{"i":{i}}}}}"#);
            let key = cache.key(&p, request.as_bytes()).unwrap();
            for _ in 0..2 {
                cache.insert(
                    key,
                    &p,
                    1,
                    request.as_bytes(),
                    Bytes::from(vec![b'x'; 1024]),
                    etag(),
                );
            }
        }
        let entries = cache.entries.as_ref().unwrap();
        assert!(
            entries.weight() <= budget,
            "{} > {budget}",
            entries.weight()
        );
        assert!(cache.len() < 1_000 && !cache.is_empty());
    }
}
