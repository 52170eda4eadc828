//! The compiled templates of a snapshot, in a bounded store.
//!
//! minijinja keeps every template its environment compiles until the environment is
//! dropped, and one compiled template costs about 12 KiB however short its source is (the
//! engine reserves room for 256 instructions and 128 line and span records per template
//! and never gives it back). Rendering each of 10,000 chat prompts once would keep more
//! than 200 MB of them. So the environment is a *generation*: the loader counts what it
//! compiles, and once a generation has compiled more than its capacity, the next render
//! swaps in a fresh generation (an empty environment with the same configuration and
//! loader). Renders running on the old one finish on it; it is freed when the last of
//! them drops it. Hot templates are compiled again in the new generation at their next
//! use (tens of microseconds each); memory stays within about twice the capacity.
//!
//! Correctness does not depend on what is cached: a generation's loader reads the same
//! immutable [`Data`] as the snapshot, and a derived snapshot (a prompt replaced or
//! removed) starts from a copy of the current generation without that prompt's names.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use arc_swap::{ArcSwap, Guard};
use minijinja::Environment;

use super::{Data, belongs_to};
use crate::template::engine::{RenderLimits, sandboxed_environment};

/// How many templates one generation compiles before the next render starts a new one
/// (about 25 MiB of compiled templates; plain-text messages are not compiled at all).
pub(crate) const DEFAULT_CAPACITY: usize = 2048;

/// One environment and the number of templates its loader has compiled.
pub(crate) struct Generation {
    pub(crate) env: Environment<'static>,
    compiled: Arc<AtomicUsize>,
}

impl Generation {
    /// `env` (already configured, possibly holding compiled templates: `already` of them)
    /// with a loader reading `data` and counting compiles.
    fn with_loader(mut env: Environment<'static>, data: Arc<Data>, already: usize) -> Self {
        let compiled = Arc::new(AtomicUsize::new(already));
        let counter = compiled.clone();
        env.set_loader(move |name| {
            let source = data.load(name)?;
            // The engine compiles what the loader returns (and keeps it): count it.
            if source.is_some() {
                counter.fetch_add(1, Ordering::Relaxed);
            }
            Ok(source)
        });
        Generation { env, compiled }
    }

    /// How many templates this generation has compiled (and holds).
    pub(crate) fn compiled(&self) -> usize {
        self.compiled.load(Ordering::Relaxed)
    }
}

/// The bounded store of compiled templates of one snapshot.
pub(crate) struct Templates {
    current: ArcSwap<Generation>,
    data: Arc<Data>,
    limits: RenderLimits,
    capacity: usize,
}

impl Templates {
    /// An empty store reading `data`.
    pub(crate) fn new(data: Arc<Data>, limits: RenderLimits, capacity: usize) -> Self {
        let first = Generation::with_loader(sandboxed_environment(&limits), data.clone(), 0);
        Templates {
            current: ArcSwap::from_pointee(first),
            data,
            limits,
            capacity: capacity.max(1),
        }
    }

    /// The store of a derived snapshot reading `data`: the templates compiled so far are
    /// kept (versions are immutable), except those of prompt `changed`, whose labels or
    /// versions may differ now.
    pub(crate) fn derived(&self, data: Arc<Data>, changed: &str) -> Self {
        let mut env = self.current.load().env.clone();
        let stale: Vec<String> = env
            .templates()
            .map(|(n, _)| n)
            .filter(|n| belongs_to(n, changed))
            .map(str::to_owned)
            .collect();
        for n in stale {
            env.remove_template(&n);
        }
        let kept = env.templates().count();
        Templates {
            current: ArcSwap::from_pointee(Generation::with_loader(env, data.clone(), kept)),
            data,
            limits: self.limits,
            capacity: self.capacity,
        }
    }

    /// The generation to render with. Hold it for the whole render (includes compile into
    /// it), then hand it to [`Templates::release`].
    pub(crate) fn current(&self) -> Guard<Arc<Generation>> {
        self.current.load()
    }

    /// After a render on `used`: past the capacity, start a new generation, unless another
    /// render already did.
    pub(crate) fn release(&self, used: Guard<Arc<Generation>>) {
        if used.compiled() <= self.capacity {
            return;
        }
        let fresh =
            Generation::with_loader(sandboxed_environment(&self.limits), self.data.clone(), 0);
        self.current.compare_and_swap(&used, Arc::new(fresh));
    }

    /// How many templates the current generation holds.
    pub(crate) fn compiled(&self) -> usize {
        self.current.load().compiled()
    }
}
