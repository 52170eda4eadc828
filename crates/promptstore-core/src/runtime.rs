//! The runtime snapshot: what the server serves `resolve`, `render` and bulk resolve from,
//! in memory, without touching the database.
//!
//! A [`ProjectSnapshot`] is an immutable view of one project: every prompt with its labels
//! and its live versions (those a label, `latest` included, points to), plus a sandboxed
//! minijinja environment whose loader compiles templates lazily on first use and keeps
//! them — up to a bound (module `templates`): a compiled template costs ~12 KiB, so past a
//! few thousand the store starts a fresh environment and the hot templates compile again.
//! Templates without any template syntax (a static system message) are never compiled:
//! they render to themselves. Writes never mutate a snapshot:
//! [`ProjectSnapshot::with_prompt`] and [`ProjectSnapshot::without_prompt`] return a new one
//! that shares everything unchanged (compiled templates included), and the server swaps it
//! in (e.g. with `arc-swap`).
//!
//! Engine template names: `name@3` is the text of version 3, `name@3#1` the content of its
//! chat message 1, and `name@label` a label resolved against the snapshot the environment
//! belongs to — so a moved label is seen by the next snapshot. When a prompt changes, its
//! names are dropped from the new snapshot's environment; every other compiled template
//! stays valid because versions are immutable and labels are per prompt.
//!
//! Versions that are not live (an old version asked for by number, or an include pinned to
//! one) are not loaded: the operations answer [`RuntimeError::NeedVersion`]; the server then
//! loads that version from the store, hands it to [`ProjectSnapshot::add_version`] (a cache
//! shared by every later snapshot of the project, which never goes stale because versions
//! are immutable and keyed by prompt id) and retries.
//!
//! Running experiments (A/B tests) are part of the snapshot too
//! ([`ProjectSnapshot::with_experiments`]): resolving a label under a running experiment
//! with a unit id assigns an arm (`hash(experiment, unit)` over the weights, see
//! [`assignment`]) and serves that arm's version; without a unit id it serves the control
//! arm's version and assigns nothing. Arm versions are often not live: they go through the
//! same [`RuntimeError::NeedVersion`] path as any other non-live version. Includes that
//! name a label (`x@production`) follow the label itself, never an experiment.
//!
//! Hot path cost: one hash lookup for the prompt, one for the label, the variable check, one
//! `arc-swap` load of the template generation, and per template: a plain-text template, one
//! copy; a template of only text, `{{ variable }}` and plain `for` loops (most prompts), a
//! concatenation by the fast path (`template::fast`, byte for byte the engine's output);
//! any other, a context map (once per render), one lookup in minijinja's template cache
//! (its internal mutex) and the engine's render. With a running experiment on the label: one more hash
//! lookup and one SHA-256 of `"{experiment}:{unit}"`. No lock of ours is taken unless a
//! non-live version is involved.

mod answer_json;
pub mod assignment;
mod templates;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock, RwLock};

use minijinja::ErrorKind;
use promptstore_types::{
    ChatMessage, ErrorCode, PromptKind, PromptStatus, RenderedMessage, RenderedPrompt,
    ResolvedPrompt, Selector, Template, VariableSpec,
};
use serde_json::{Map, Value, json};

use crate::error::{Error, Result};
use crate::experiments::model::ExperimentRecord;
use crate::model::{PromptRecord, VersionRecord};
use crate::template::engine::{
    self, RenderLimits, context, is_plain_text, render_named, render_plain, render_template,
    template_name,
};
use crate::template::fast::FastTemplate;
use crate::template::format_include_ref;
use crate::variables::{check_variables, placeholder_messages};
use assignment::{ArmAssignment, ExperimentTable, RunningExperiment};
use templates::Templates;

/// How many non-live versions the shared cache keeps before it starts over. Versions are
/// small; this bounds memory when a client walks through every old version.
const EXTRA_VERSIONS_CAP: usize = 10_000;

/// A version the snapshot does not hold: load it from the store, pass it to
/// [`ProjectSnapshot::add_version`], and retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeedVersion {
    pub prompt: String,
    pub number: u32,
}

/// The failure of a runtime operation.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// Not a failure for the caller: the server loads the version and retries.
    #[error("version {} of prompt '{}' is not loaded", .0.number, .0.prompt)]
    NeedVersion(NeedVersion),
    /// A refusal to return to the caller (`not_found`, `prompt_archived`, render errors…).
    #[error(transparent)]
    Failed(#[from] Error),
}

impl RuntimeError {
    fn rejected(code: ErrorCode, message: String, details: Value) -> Self {
        RuntimeError::Failed(Error::rejected(code, message).with_details(details))
    }
}

/// How one template of a version (the text, or one chat message) is rendered.
#[derive(Debug)]
enum Part {
    /// Through the engine, under this engine name (compiled on first use), unless the
    /// template is one the fast path renders (decided at its first render, then kept with
    /// the version: versions are immutable) and the values allow it.
    Engine {
        name: Box<str>,
        fast: OnceLock<Option<FastTemplate>>,
    },
    /// Plain text without template syntax: rendered without the engine (it renders to
    /// itself), so it is never compiled. Keeps the engine name for error messages.
    Plain(Box<str>),
    /// A chat placeholder, expanded from its list variable.
    Placeholder,
}

impl Part {
    fn of(prompt: &str, number: u32, message: Option<usize>, source: &str) -> Self {
        let name = template_name(prompt, number, message).into_boxed_str();
        if is_plain_text(source) {
            Part::Plain(name)
        } else {
            Part::Engine {
                name,
                fast: OnceLock::new(),
            }
        }
    }
}

/// A version as the snapshot holds it: the record and how each of its templates renders.
#[derive(Debug)]
pub struct VersionEntry {
    record: VersionRecord,
    /// Text: one part. Chat: one per entry.
    parts: Vec<Part>,
    /// The pieces of a render answer's JSON that depend on the version alone, made at its
    /// first render (see `answer_json`).
    json: OnceLock<answer_json::VersionJson>,
}

impl VersionEntry {
    fn new(record: VersionRecord) -> Self {
        let (prompt, number) = (&record.prompt, record.number);
        let parts = match &record.template {
            Template::Text { text } => vec![Part::of(prompt, number, None, text)],
            Template::Chat { messages } => messages
                .iter()
                .enumerate()
                .map(|(i, m)| match m {
                    ChatMessage::Message { content, .. } => {
                        Part::of(prompt, number, Some(i), content)
                    }
                    ChatMessage::Placeholder { .. } => Part::Placeholder,
                })
                .collect(),
        };
        VersionEntry {
            record,
            parts,
            json: OnceLock::new(),
        }
    }

    pub fn record(&self) -> &VersionRecord {
        &self.record
    }
}

/// A prompt as the snapshot holds it: its record and its live versions by number.
#[derive(Debug)]
pub struct PromptEntry {
    record: PromptRecord,
    live: BTreeMap<u32, Arc<VersionEntry>>,
}

impl PromptEntry {
    pub fn record(&self) -> &PromptRecord {
        &self.record
    }

    /// The live versions held, by number.
    pub fn live_versions(&self) -> impl Iterator<Item = &VersionRecord> {
        self.live.values().map(|v| &v.record)
    }
}

/// Non-live versions loaded on demand, shared by all snapshots of a project.
#[derive(Debug, Default)]
struct ExtraVersions {
    /// (prompt id, number) → version. Keyed by id so a deleted and re-created prompt of the
    /// same name never sees the old prompt's versions.
    map: RwLock<HashMap<(String, u32), Arc<VersionEntry>>>,
}

impl ExtraVersions {
    fn get(&self, prompt_id: &str, number: u32) -> Option<Arc<VersionEntry>> {
        let map = self
            .map
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        map.get(&(prompt_id.to_owned(), number)).cloned()
    }

    fn insert(&self, entry: VersionEntry) {
        let mut map = self
            .map
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if map.len() >= EXTRA_VERSIONS_CAP {
            map.clear();
        }
        map.insert(
            (entry.record.prompt_id.clone(), entry.record.number),
            Arc::new(entry),
        );
    }
}

/// The data a snapshot's template loader reads.
#[derive(Debug)]
struct Data {
    /// foldhash, not SipHash: one lookup per render by the requested name, and names are
    /// only inserted by authenticated writers (the seed is random per map all the same).
    prompts: foldhash::HashMap<Arc<str>, Arc<PromptEntry>>,
    extra: Arc<ExtraVersions>,
}

/// Where a version was found, or why not.
enum Lookup {
    Found(Arc<VersionEntry>),
    Need(NeedVersion),
}

impl Data {
    fn version(&self, prompt: &PromptEntry, number: u32) -> Lookup {
        if let Some(v) = prompt.live.get(&number) {
            return Lookup::Found(v.clone());
        }
        match self.extra.get(&prompt.record.id, number) {
            Some(v) => Lookup::Found(v),
            None => Lookup::Need(NeedVersion {
                prompt: prompt.record.name.clone(),
                number,
            }),
        }
    }

    /// The loader: engine name → template source (see the module docs for the names).
    fn load(&self, name: &str) -> std::result::Result<Option<String>, minijinja::Error> {
        let Some((prompt, rest)) = name.rsplit_once('@') else {
            return Ok(None);
        };
        let (selector, message) = match rest.split_once('#') {
            Some((sel, i)) => match i.parse::<usize>() {
                Ok(i) => (sel, Some(i)),
                Err(_) => return Ok(None),
            },
            None => (rest, None),
        };
        let Some(entry) = self.prompts.get(prompt) else {
            return Ok(None);
        };
        let number = match selector.parse::<u32>() {
            Ok(n) => n,
            Err(_) => match entry.record.labels.get(selector) {
                Some(n) => *n,
                None => return Ok(None),
            },
        };
        let Lookup::Found(version) = self.version(entry, number) else {
            return Ok(None);
        };
        match (&version.record.template, message) {
            (Template::Text { text }, None) => Ok(Some(text.clone())),
            (Template::Chat { messages }, Some(i)) => match messages.get(i) {
                Some(ChatMessage::Message { content, .. }) => Ok(Some(content.clone())),
                _ => Ok(None),
            },
            (Template::Chat { .. }, None) => Err(minijinja::Error::new(
                ErrorKind::InvalidOperation,
                format!("prompt '{prompt}' is a chat prompt; only text prompts can be included"),
            )),
            (Template::Text { .. }, Some(_)) => Ok(None),
        }
    }
}

/// A prompt resolved to the version to serve.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub prompt: Arc<PromptEntry>,
    pub version: Arc<VersionEntry>,
    /// The label that was resolved; `None` when a version number was asked for.
    pub label: Option<String>,
    /// The experiment arm the unit was assigned to, when the label runs an experiment and a
    /// unit id was given.
    pub assignment: Option<ArmAssignment>,
}

impl Resolved {
    pub fn prompt(&self) -> &PromptRecord {
        &self.prompt.record
    }

    pub fn version(&self) -> &VersionRecord {
        &self.version.record
    }

    /// The wire answer of `resolve`, with the assignment when there is one.
    pub fn to_wire(&self) -> ResolvedPrompt {
        let p = self.prompt();
        let v = self.version();
        ResolvedPrompt {
            prompt: p.name.clone(),
            kind: p.kind,
            version: v.number,
            label: self.label.clone(),
            status: p.status,
            template: v.template.clone(),
            variables: v.variables.clone(),
            model_config: v.model_config.clone(),
            content_hash: v.content_hash.clone(),
            assignment: self.assignment.as_ref().map(ArmAssignment::to_wire),
        }
    }
}

/// What a render produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RenderOutput {
    Text(String),
    Messages(Vec<RenderedMessage>),
}

/// A rendered prompt with the version it came from.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub resolved: Resolved,
    pub output: RenderOutput,
}

impl Rendered {
    /// The wire answer of `render`, with the assignment when there is one.
    pub fn into_wire(self) -> RenderedPrompt {
        let (text, messages) = match self.output {
            RenderOutput::Text(t) => (Some(t), None),
            RenderOutput::Messages(m) => (None, Some(m)),
        };
        let p = self.resolved.prompt();
        let v = self.resolved.version();
        RenderedPrompt {
            prompt: p.name.clone(),
            kind: p.kind,
            version: v.number,
            label: self.resolved.label.clone(),
            text,
            messages,
            model_config: v.model_config.clone(),
            assignment: self
                .resolved
                .assignment
                .as_ref()
                .map(ArmAssignment::to_wire),
        }
    }
}

/// Source of [`ProjectSnapshot::id`]s: unique for the life of the process.
static NEXT_SNAPSHOT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

struct Inner {
    /// See [`ProjectSnapshot::id`].
    id: u64,
    data: Arc<Data>,
    /// Compiled templates, bounded; shared with snapshots that hold the same prompts.
    templates: Arc<Templates>,
    limits: RenderLimits,
    experiments: Arc<ExperimentTable>,
}

/// The in-memory runtime view of one project. Cheap to clone (one `Arc`), `Send + Sync`.
#[derive(Clone)]
pub struct ProjectSnapshot {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ProjectSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProjectSnapshot")
            .field("prompts", &self.inner.data.prompts.len())
            .field("experiments", &self.inner.experiments.len())
            .field("limits", &self.inner.limits)
            .finish()
    }
}

fn entry_for(record: PromptRecord, versions: Vec<VersionRecord>) -> PromptEntry {
    let live = versions
        .into_iter()
        .filter(|v| v.prompt_id == record.id && v.prompt == record.name)
        .map(|v| (v.number, Arc::new(VersionEntry::new(v))))
        .collect();
    PromptEntry { record, live }
}

/// Whether an engine template name belongs to `prompt` (names never contain `@` otherwise).
fn belongs_to(name: &str, prompt: &str) -> bool {
    name.rsplit_once('@').is_some_and(|(p, _)| p == prompt)
}

impl ProjectSnapshot {
    /// A snapshot of a project from its prompts and their live versions (versions of other
    /// prompts, or whose prompt id does not match, are ignored).
    pub fn build(
        prompts: Vec<PromptRecord>,
        versions: Vec<VersionRecord>,
        limits: RenderLimits,
    ) -> Self {
        Self::build_with_capacity(prompts, versions, limits, templates::DEFAULT_CAPACITY)
    }

    /// [`ProjectSnapshot::build`] keeping at most about `capacity` compiled templates.
    fn build_with_capacity(
        mut prompts: Vec<PromptRecord>,
        mut versions: Vec<VersionRecord>,
        limits: RenderLimits,
        capacity: usize,
    ) -> Self {
        // A merge of both lists by prompt name: the store returns them in that order
        // already, so the sorts only check it, and no name is hashed or copied per version.
        prompts.sort_by(|a, b| a.name.cmp(&b.name));
        if !versions.is_sorted_by(|a, b| a.prompt <= b.prompt) {
            versions.sort_by(|a, b| a.prompt.cmp(&b.prompt));
        }
        let mut versions = versions.into_iter().peekable();
        let mut map =
            foldhash::HashMap::with_capacity_and_hasher(prompts.len(), Default::default());
        for record in prompts {
            while versions.next_if(|v| v.prompt < record.name).is_some() {}
            let mut live = BTreeMap::new();
            while let Some(v) = versions.next_if(|v| v.prompt == record.name) {
                if v.prompt_id == record.id {
                    live.insert(v.number, Arc::new(VersionEntry::new(v)));
                }
            }
            map.insert(
                Arc::<str>::from(record.name.as_str()),
                Arc::new(PromptEntry { record, live }),
            );
        }
        let data = Arc::new(Data {
            prompts: map,
            extra: Arc::default(),
        });
        let templates = Arc::new(Templates::new(data.clone(), limits, capacity));
        Self::assemble(data, templates, limits, Arc::default())
    }

    /// A snapshot with no prompts.
    pub fn empty(limits: RenderLimits) -> Self {
        Self::build(Vec::new(), Vec::new(), limits)
    }

    fn assemble(
        data: Arc<Data>,
        templates: Arc<Templates>,
        limits: RenderLimits,
        experiments: Arc<ExperimentTable>,
    ) -> Self {
        ProjectSnapshot {
            inner: Arc::new(Inner {
                id: NEXT_SNAPSHOT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                data,
                templates,
                limits,
                experiments,
            }),
        }
    }

    /// This snapshot's identity, unique in the process. Every change of what the runtime
    /// answers (a prompt, a label, an experiment) makes a new snapshot with a new id, so
    /// an answer computed from a snapshot stays valid exactly as long as the id is current.
    /// (Clones share the id; [`ProjectSnapshot::add_version`] keeps it, since loading an
    /// immutable version changes no answer that could already be given.)
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// A new snapshot whose running experiments are `running` (records in any other status
    /// are ignored), replacing the previous set; prompts and compiled templates are shared.
    /// Call after every experiment write and whenever prompts change (a deleted prompt
    /// takes its experiments with it).
    pub fn with_experiments(&self, running: &[ExperimentRecord]) -> Self {
        Self::assemble(
            self.inner.data.clone(),
            self.inner.templates.clone(),
            self.inner.limits,
            Arc::new(ExperimentTable::build(running)),
        )
    }

    /// The running experiment with this id, if this snapshot has it.
    pub fn running_experiment(&self, id: &str) -> Option<&Arc<RunningExperiment>> {
        self.inner.experiments.get(id)
    }

    /// Every running experiment of the snapshot (in no particular order).
    pub fn running_experiments(&self) -> impl Iterator<Item = &Arc<RunningExperiment>> {
        self.inner.experiments.all()
    }

    /// A new snapshot where prompt `name` is replaced (or removed when `replacement` is None).
    fn replaced(&self, name: &str, replacement: Option<PromptEntry>) -> Self {
        let mut prompts = self.inner.data.prompts.clone();
        match replacement {
            Some(entry) => {
                prompts.insert(Arc::from(name), Arc::new(entry));
            }
            None => {
                prompts.remove(name);
            }
        }
        let data = Arc::new(Data {
            prompts,
            extra: self.inner.data.extra.clone(),
        });
        let templates = Arc::new(self.inner.templates.derived(data.clone(), name));
        Self::assemble(
            data,
            templates,
            self.inner.limits,
            self.inner.experiments.clone(),
        )
    }

    /// A new snapshot where one prompt (its record, labels and live versions) is replaced or
    /// added. Call after every write to that prompt.
    pub fn with_prompt(&self, prompt: PromptRecord, live_versions: Vec<VersionRecord>) -> Self {
        let name = prompt.name.clone();
        self.replaced(&name, Some(entry_for(prompt, live_versions)))
    }

    /// A new snapshot without prompt `name` (after a delete).
    pub fn without_prompt(&self, name: &str) -> Self {
        self.replaced(name, None)
    }

    /// Adds a non-live version loaded from the store (after [`RuntimeError::NeedVersion`]).
    /// Shared by this snapshot and every snapshot derived from it. Returns false, and keeps
    /// nothing, when the version's prompt is not in this snapshot under the same id.
    pub fn add_version(&self, version: VersionRecord) -> bool {
        let matches = self
            .inner
            .data
            .prompts
            .get(version.prompt.as_str())
            .is_some_and(|p| p.record.id == version.prompt_id);
        if matches {
            self.inner.data.extra.insert(VersionEntry::new(version));
        }
        matches
    }

    pub fn limits(&self) -> &RenderLimits {
        &self.inner.limits
    }

    /// How many compiled templates the snapshot's current generation holds (bounded: see
    /// the module docs).
    pub fn compiled_templates(&self) -> usize {
        self.inner.templates.compiled()
    }

    /// The prompt named `name`, whatever its status.
    pub fn prompt(&self, name: &str) -> Option<&PromptRecord> {
        self.inner.data.prompts.get(name).map(|p| &p.record)
    }

    /// Number of prompts in the snapshot.
    pub fn len(&self) -> usize {
        self.inner.data.prompts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.inner.data.prompts.is_empty()
    }

    /// Every prompt record, sorted by name.
    pub fn prompts(&self) -> Vec<&PromptRecord> {
        let mut all: Vec<&PromptRecord> = self
            .inner
            .data
            .prompts
            .values()
            .map(|p| &p.record)
            .collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// The version of `name` that `selector` designates. Archived prompts are refused with
    /// `prompt_archived`; an unknown prompt, label or version is `not_found` naming it. A
    /// label under a running experiment gives its control arm's version (no unit id: no
    /// assignment); see [`ProjectSnapshot::resolve_for`].
    pub fn resolve(
        &self,
        name: &str,
        selector: &Selector,
    ) -> std::result::Result<Resolved, RuntimeError> {
        self.resolve_for(name, selector, None)
    }

    /// [`ProjectSnapshot::resolve`] for a unit (user, session…): a label under a running
    /// experiment gives the version of the arm the unit is assigned to, and the answer says
    /// which experiment and arm. An empty unit id counts as none.
    pub fn resolve_for(
        &self,
        name: &str,
        selector: &Selector,
        unit_id: Option<&str>,
    ) -> std::result::Result<Resolved, RuntimeError> {
        let data = &self.inner.data;
        let Some(prompt) = data.prompts.get(name) else {
            return Err(Error::not_found(format!("prompt '{name}'")).into());
        };
        if prompt.record.status == PromptStatus::Archived {
            return Err(RuntimeError::rejected(
                ErrorCode::PromptArchived,
                format!(
                    "prompt '{name}' is archived and is not served; restore it to active first"
                ),
                json!({ "prompt": name }),
            ));
        }
        let (number, label, assignment) = match selector {
            Selector::Label(label) => match prompt.record.labels.get(label) {
                Some(n) => {
                    let (number, assignment) = self.experiment_version(prompt, label, *n, unit_id);
                    (number, Some(label.clone()), assignment)
                }
                None => {
                    return Err(
                        Error::not_found(format!("label '{label}' of prompt '{name}'")).into(),
                    );
                }
            },
            Selector::Version(n) => {
                if *n == 0 || *n > prompt.record.latest_version {
                    return Err(Error::not_found(format!("version {n} of prompt '{name}'")).into());
                }
                (*n, None, None)
            }
        };
        match data.version(prompt, number) {
            Lookup::Found(version) => Ok(Resolved {
                prompt: prompt.clone(),
                version,
                label,
                assignment,
            }),
            Lookup::Need(need) => Err(RuntimeError::NeedVersion(need)),
        }
    }

    /// The version to serve for `label` (pointing at `labelled`) of `prompt`: the label's own
    /// when no experiment runs there; else the assigned arm's (with a unit id) or the
    /// control's (without).
    fn experiment_version(
        &self,
        prompt: &PromptEntry,
        label: &str,
        labelled: u32,
        unit_id: Option<&str>,
    ) -> (u32, Option<ArmAssignment>) {
        let table = &self.inner.experiments;
        if table.is_empty() {
            return (labelled, None);
        }
        let Some(experiment) = table.on(&prompt.record.name, &prompt.record.id, label) else {
            return (labelled, None);
        };
        match unit_id.filter(|u| !u.is_empty()) {
            Some(unit) => {
                let arm = experiment.assign(unit);
                let version = experiment.arms().get(arm).map_or(labelled, |a| a.version);
                (version, Some(ArmAssignment::new(experiment.clone(), arm)))
            }
            None => (
                experiment.arms().first().map_or(labelled, |a| a.version),
                None,
            ),
        }
    }

    /// Every non-archived prompt that has `label`, sorted by name (the control's version
    /// where an experiment runs on the label).
    pub fn bulk(&self, label: &str) -> std::result::Result<Vec<Resolved>, RuntimeError> {
        let data = &self.inner.data;
        let mut out = Vec::new();
        for prompt in data.prompts.values() {
            if prompt.record.status == PromptStatus::Archived {
                continue;
            }
            let Some(number) = prompt.record.labels.get(label) else {
                continue;
            };
            // No unit id in a bulk load: a label under an experiment gives its control.
            let (number, _) = self.experiment_version(prompt, label, *number, None);
            match data.version(prompt, number) {
                Lookup::Found(version) => out.push(Resolved {
                    prompt: prompt.clone(),
                    version,
                    label: Some(label.to_owned()),
                    assignment: None,
                }),
                Lookup::Need(need) => return Err(RuntimeError::NeedVersion(need)),
            }
        }
        out.sort_by(|a, b| a.prompt.record.name.cmp(&b.prompt.record.name));
        Ok(out)
    }

    /// Resolves and renders: variables checked against the version's specs (defaults
    /// applied), each template rendered under the snapshot's limits, chat placeholders
    /// expanded from their list variable.
    pub fn render(
        &self,
        name: &str,
        selector: &Selector,
        vars: &Map<String, Value>,
    ) -> std::result::Result<Rendered, RuntimeError> {
        self.render_for(name, selector, vars, None)
    }

    /// [`ProjectSnapshot::render`] for a unit: the version is chosen as by
    /// [`ProjectSnapshot::resolve_for`].
    pub fn render_for(
        &self,
        name: &str,
        selector: &Selector,
        vars: &Map<String, Value>,
        unit_id: Option<&str>,
    ) -> std::result::Result<Rendered, RuntimeError> {
        let resolved = self.resolve_for(name, selector, unit_id)?;
        let output = self.render_entry(&resolved.version, vars)?;
        Ok(Rendered { resolved, output })
    }

    /// Renders an already resolved version (e.g. after experiment assignment).
    pub fn render_resolved(
        &self,
        resolved: Resolved,
        vars: &Map<String, Value>,
    ) -> std::result::Result<Rendered, RuntimeError> {
        let output = self.render_entry(&resolved.version, vars)?;
        Ok(Rendered { resolved, output })
    }

    fn render_entry(
        &self,
        version: &Arc<VersionEntry>,
        vars: &Map<String, Value>,
    ) -> std::result::Result<RenderOutput, RuntimeError> {
        if !version.record.includes.is_empty() {
            self.check_includes(version)?;
        }
        let checked = check_variables(&version.record.variables, vars)?;
        let templates = &self.inner.templates;
        let generation = templates.current();
        let output = self.render_parts(&generation.env, version, &checked);
        templates.release(generation);
        output
    }

    /// Renders each part of `version` with `env` (the generation held for this render).
    fn render_parts(
        &self,
        env: &minijinja::Environment<'static>,
        version: &VersionEntry,
        checked: &crate::variables::CheckedVariables<'_>,
    ) -> std::result::Result<RenderOutput, RuntimeError> {
        let limits = &self.inner.limits;
        // The engine's context, built when a part first needs the engine.
        let mut ctx: Option<minijinja::Value> = None;
        let mut remaining = limits.max_output_bytes;
        let mut render = |part: &Part, source: &str| -> Result<String> {
            match part {
                Part::Engine { name, fast } => {
                    let fast = fast.get_or_init(|| FastTemplate::compile(source));
                    if let Some(done) = fast
                        .as_ref()
                        .and_then(|f| f.render(checked, name, &mut remaining, limits))
                    {
                        return done;
                    }
                    let ctx = ctx.get_or_insert_with(|| context(checked));
                    render_named(env, name, ctx, &mut remaining, limits)
                }
                Part::Plain(name) => render_plain(name, source, &mut remaining, limits),
                Part::Placeholder => Err(Error::rejected(
                    ErrorCode::Internal,
                    "a template part does not match its version",
                )),
            }
        };
        match &version.record.template {
            Template::Text { text } => {
                let part = version.parts.first().unwrap_or(&Part::Placeholder);
                Ok(RenderOutput::Text(render(part, text)?))
            }
            Template::Chat { messages } => {
                let mut out = Vec::with_capacity(messages.len());
                for (message, part) in messages.iter().zip(&version.parts) {
                    match message {
                        ChatMessage::Message { role, content } => {
                            let content = render(part, content)?;
                            out.push(RenderedMessage {
                                role: role.clone(),
                                content,
                            });
                        }
                        ChatMessage::Placeholder { placeholder } => {
                            expand_placeholder(
                                placeholder,
                                &version.record.variables,
                                checked.get(placeholder),
                                &mut out,
                            )?;
                        }
                    }
                }
                Ok(RenderOutput::Messages(out))
            }
        }
    }

    /// Renders a template that is not saved (an editor preview or playground run) with the
    /// snapshot's includes and limits. The template is compiled for this call only; run
    /// [`crate::template::analyze`] first, which also yields `includes` for this check.
    pub fn render_draft(
        &self,
        template: &Template,
        variables: &[VariableSpec],
        includes: &[promptstore_types::IncludeRef],
        vars: &Map<String, Value>,
    ) -> std::result::Result<RenderOutput, RuntimeError> {
        let mut walk = IncludeWalk {
            path: Vec::new(),
            done: Vec::new(),
        };
        for r in includes {
            self.check_include(r, 1, &mut walk)?;
        }
        let checked = check_variables(variables, vars)?;
        let templates = &self.inner.templates;
        let generation = templates.current();
        let output = self.render_draft_with(&generation.env, template, variables, &checked);
        templates.release(generation);
        output
    }

    /// Compiles and renders a draft with `env` (the generation held for this render).
    fn render_draft_with(
        &self,
        env: &minijinja::Environment<'static>,
        template: &Template,
        variables: &[VariableSpec],
        checked: &crate::variables::CheckedVariables<'_>,
    ) -> std::result::Result<RenderOutput, RuntimeError> {
        let limits = &self.inner.limits;
        let ctx = context(checked);
        let mut remaining = limits.max_output_bytes;
        match template {
            Template::Text { text } => {
                let tmpl = env
                    .template_from_named_str("draft", text)
                    .map_err(|e| engine::syntax_error(&e, None))?;
                Ok(RenderOutput::Text(render_template(
                    env,
                    &tmpl,
                    &ctx,
                    &mut remaining,
                    limits,
                )?))
            }
            Template::Chat { messages } => {
                let mut out = Vec::with_capacity(messages.len());
                for (i, message) in messages.iter().enumerate() {
                    match message {
                        ChatMessage::Message { role, content } => {
                            let name = format!("draft#{i}");
                            let tmpl = env
                                .template_from_named_str(&name, content)
                                .map_err(|e| engine::syntax_error(&e, Some(i)))?;
                            let content =
                                render_template(env, &tmpl, &ctx, &mut remaining, limits)?;
                            out.push(RenderedMessage {
                                role: role.clone(),
                                content,
                            });
                        }
                        ChatMessage::Placeholder { placeholder } => {
                            expand_placeholder(
                                placeholder,
                                variables,
                                checked.get(placeholder),
                                &mut out,
                            )?;
                        }
                    }
                }
                Ok(RenderOutput::Messages(out))
            }
        }
    }

    /// Checks, before rendering, that every version reachable through includes is loaded,
    /// servable, a text prompt, not part of a cycle, and within the include depth limit.
    fn check_includes(&self, version: &Arc<VersionEntry>) -> std::result::Result<(), RuntimeError> {
        let mut walk = IncludeWalk {
            path: vec![(Arc::as_ptr(version) as usize, self_name(version))],
            done: Vec::new(),
        };
        for r in &version.record.includes {
            self.check_include(r, 1, &mut walk)?;
        }
        Ok(())
    }

    fn check_include(
        &self,
        r: &promptstore_types::IncludeRef,
        depth: usize,
        walk: &mut IncludeWalk,
    ) -> std::result::Result<(), RuntimeError> {
        let limits = &self.inner.limits;
        let reference = format_include_ref(r);
        if depth > limits.max_include_depth {
            return Err(RuntimeError::rejected(
                ErrorCode::RenderLimit,
                format!(
                    "includes nest deeper than {} levels (at '{reference}')",
                    limits.max_include_depth
                ),
                json!({ "limit": "include_depth", "max": limits.max_include_depth, "include": reference }),
            ));
        }
        let failed = |why: String| {
            RuntimeError::rejected(
                ErrorCode::RenderFailed,
                format!("included '{reference}' cannot be rendered: {why}"),
                json!({ "include": reference }),
            )
        };
        let data = &self.inner.data;
        let Some(prompt) = data.prompts.get(r.prompt.as_str()) else {
            return Err(failed(format!("prompt '{}' does not exist", r.prompt)));
        };
        if prompt.record.status == PromptStatus::Archived {
            return Err(failed(format!("prompt '{}' is archived", r.prompt)));
        }
        if prompt.record.kind == PromptKind::Chat {
            return Err(failed(format!(
                "prompt '{}' is a chat prompt; only text prompts can be included",
                r.prompt
            )));
        }
        let number = match (&r.label, r.version) {
            (Some(label), _) => match prompt.record.labels.get(label) {
                Some(n) => *n,
                None => {
                    return Err(failed(format!(
                        "prompt '{}' has no label '{label}'",
                        r.prompt
                    )));
                }
            },
            (None, Some(n)) if n >= 1 && n <= prompt.record.latest_version => n,
            (None, Some(n)) => {
                return Err(failed(format!("prompt '{}' has no version {n}", r.prompt)));
            }
            (None, None) => {
                return Err(failed(
                    "the reference has neither label nor version".to_owned(),
                ));
            }
        };
        let version = match data.version(prompt, number) {
            Lookup::Found(v) => v,
            Lookup::Need(need) => return Err(RuntimeError::NeedVersion(need)),
        };
        let key = Arc::as_ptr(&version) as usize;
        if walk.path.iter().any(|(k, _)| *k == key) {
            // Saves refuse cycles, but moving a label can still close one.
            let mut names: Vec<String> = walk.path.iter().map(|(_, n)| n.clone()).collect();
            names.push(self_name(&version));
            let cycle = names.join(" → ");
            return Err(RuntimeError::rejected(
                ErrorCode::RenderFailed,
                format!("the includes form a cycle ({cycle}); move a label to break it"),
                json!({ "include": reference, "cycle": names }),
            ));
        }
        // Diamonds: a version already checked from the same or a shallower depth is fine.
        if walk.done.iter().any(|(k, d)| *k == key && *d <= depth) {
            return Ok(());
        }
        walk.path.push((key, self_name(&version)));
        for next in &version.record.includes {
            self.check_include(next, depth + 1, walk)?;
        }
        walk.path.pop();
        walk.done.push((key, depth));
        Ok(())
    }
}

/// State of the pre-render include walk: the current path (entry address, `name@n`) and
/// the entries fully checked, with the depth they were checked at.
struct IncludeWalk {
    path: Vec<(usize, String)>,
    done: Vec<(usize, usize)>,
}

fn self_name(v: &VersionEntry) -> String {
    format!("{}@{}", v.record.prompt, v.record.number)
}

/// Appends the messages of placeholder `name`: absent and declared optional → nothing;
/// absent and not declared → `missing_variable` (declared required is caught earlier).
fn expand_placeholder(
    name: &str,
    specs: &[VariableSpec],
    value: Option<&Value>,
    out: &mut Vec<RenderedMessage>,
) -> Result<()> {
    match value {
        Some(v) => {
            out.extend(placeholder_messages(name, v)?);
            Ok(())
        }
        None if specs.iter().any(|s| s.name == name) => Ok(()),
        None => Err(Error::rejected(
            ErrorCode::MissingVariable,
            format!("placeholder variable '{name}' was not given: send a list of {{role, content}} messages"),
        )
        .with_details(json!({ "variable": name }))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ProjectId;
    use promptstore_types::VarType;
    use time::OffsetDateTime;

    fn prompt_record(
        name: &str,
        id: &str,
        kind: PromptKind,
        status: PromptStatus,
        labels: &[(&str, u32)],
    ) -> PromptRecord {
        let labels: BTreeMap<String, u32> =
            labels.iter().map(|(l, n)| (l.to_string(), *n)).collect();
        PromptRecord {
            id: id.into(),
            project: ProjectId("p1".into()),
            name: name.into(),
            kind,
            description: String::new(),
            tags: vec![],
            status,
            revision: 1,
            latest_version: labels
                .values()
                .copied()
                .max()
                .unwrap_or(1)
                .max(labels.get("latest").copied().unwrap_or(1)),
            labels,
            created_by: "me".into(),
            created_at: OffsetDateTime::UNIX_EPOCH,
            updated_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    fn version_record(
        prompt: &str,
        id: &str,
        number: u32,
        template: Template,
        variables: Vec<VariableSpec>,
    ) -> VersionRecord {
        let analysis = crate::template::analyze(&template, &variables, &json!({})).unwrap();
        VersionRecord {
            prompt_id: id.into(),
            prompt: prompt.into(),
            number,
            content_hash: crate::hash::content_hash(&template, &variables, &json!({})),
            template,
            variables,
            model_config: json!({"model": "m"}),
            commit_message: String::new(),
            author: "me".into(),
            parent: None,
            includes: analysis.includes,
            breaking_changes: vec![],
            created_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    fn text(t: &str) -> Template {
        Template::Text { text: t.into() }
    }

    fn spec(name: &str, ty: VarType) -> VariableSpec {
        VariableSpec::new(name, ty)
    }

    fn vars(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    fn label(l: &str) -> Selector {
        Selector::Label(l.into())
    }

    /// A project:
    /// - `greet` (text, active): v1 "Hello {{ name }}!", v2 "Hi {{ name }}{{ suffix }}" (suffix
    ///   defaults to "."); latest → 2, production → 1.
    /// - `header` (text): v1 "H1", v2 "H2", v3 "H3"; production → 2, latest → 3; v1 not live.
    /// - `page` (text): includes header@production and header@1.
    /// - `chat` (chat): system with tone, placeholder history, user question.
    /// - `old` (archived, text) with production → 1.
    fn project() -> ProjectSnapshot {
        let prompts = vec![
            prompt_record(
                "greet",
                "g",
                PromptKind::Text,
                PromptStatus::Active,
                &[("latest", 2), ("production", 1)],
            ),
            prompt_record(
                "header",
                "h",
                PromptKind::Text,
                PromptStatus::Active,
                &[("latest", 3), ("production", 2)],
            ),
            prompt_record(
                "page",
                "pg",
                PromptKind::Text,
                PromptStatus::Active,
                &[("latest", 1), ("production", 1)],
            ),
            prompt_record(
                "chat",
                "c",
                PromptKind::Chat,
                PromptStatus::Active,
                &[("latest", 1)],
            ),
            prompt_record(
                "old",
                "o",
                PromptKind::Text,
                PromptStatus::Archived,
                &[("latest", 1), ("production", 1)],
            ),
        ];
        let mut suffix = spec("suffix", VarType::String);
        suffix.default = Some(json!("."));
        let mut history = spec("history", VarType::List);
        history.required = false;
        let versions = vec![
            version_record(
                "greet",
                "g",
                1,
                text("Hello {{ name }}!"),
                vec![spec("name", VarType::String)],
            ),
            version_record(
                "greet",
                "g",
                2,
                text("Hi {{ name }}{{ suffix }}"),
                vec![spec("name", VarType::String), suffix],
            ),
            version_record("header", "h", 2, text("H2"), vec![]),
            version_record("header", "h", 3, text("H3"), vec![]),
            version_record(
                "page",
                "pg",
                1,
                text("{% include \"header@production\" %}|{% include \"header@1\" %}|{{ body }}"),
                vec![],
            ),
            version_record(
                "chat",
                "c",
                1,
                Template::Chat {
                    messages: vec![
                        ChatMessage::Message {
                            role: "system".into(),
                            content: "Be {{ tone }}.".into(),
                        },
                        ChatMessage::Placeholder {
                            placeholder: "history".into(),
                        },
                        ChatMessage::Message {
                            role: "user".into(),
                            content: "{{ q }}".into(),
                        },
                    ],
                },
                vec![
                    spec("tone", VarType::String),
                    history,
                    spec("q", VarType::String),
                ],
            ),
            version_record("old", "o", 1, text("old"), vec![]),
            // A version of an unknown prompt is ignored.
            version_record("ghost", "x", 1, text("boo"), vec![]),
        ];
        ProjectSnapshot::build(prompts, versions, RenderLimits::default())
    }

    fn header_v1() -> VersionRecord {
        version_record("header", "h", 1, text("H1"), vec![])
    }

    fn render_text(
        s: &ProjectSnapshot,
        name: &str,
        sel: &Selector,
        v: Value,
    ) -> std::result::Result<String, RuntimeError> {
        s.render(name, sel, &vars(v)).map(|r| match r.output {
            RenderOutput::Text(t) => t,
            RenderOutput::Messages(m) => format!("{m:?}"),
        })
    }

    /// Expected outcome of an operation: the text, or an error code with a message fragment.
    fn check(
        got: std::result::Result<String, RuntimeError>,
        expected: std::result::Result<&str, (ErrorCode, &str)>,
    ) {
        match (got, expected) {
            (Ok(got), Ok(want)) => assert_eq!(got, want),
            (Err(RuntimeError::Failed(e)), Err((code, fragment))) => {
                assert_eq!(e.code(), code, "{e}");
                let text = e.to_body().message;
                assert!(text.contains(fragment), "{text:?} lacks {fragment:?}");
            }
            (got, want) => panic!("got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn snapshot_is_send_sync_and_cheap_to_clone() {
        fn assert_send_sync<T: Send + Sync + Clone + 'static>() {}
        assert_send_sync::<ProjectSnapshot>();
        assert_send_sync::<Resolved>();
        let s = project();
        assert_eq!(s.len(), 5);
        assert_eq!(
            s.prompts()
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>(),
            ["chat", "greet", "header", "old", "page"]
        );
    }

    #[test]
    fn resolve() {
        let s = project();
        let r = s.resolve("greet", &label("production")).unwrap();
        assert_eq!(
            (r.version().number, r.label.as_deref()),
            (1, Some("production"))
        );
        let wire = r.to_wire();
        assert_eq!(
            (wire.prompt.as_str(), wire.version, wire.kind),
            ("greet", 1, PromptKind::Text)
        );
        let r = s.resolve("greet", &label("latest")).unwrap();
        assert_eq!(r.version().number, 2);
        let r = s.resolve("greet", &Selector::Version(2)).unwrap();
        assert_eq!((r.version().number, r.label.clone()), (2, None));
        let name = |r: std::result::Result<Resolved, RuntimeError>| {
            r.map(|r| format!("{}@{}", r.prompt().name, r.version().number))
        };
        check(
            name(s.resolve("nope", &label("latest"))),
            Err((ErrorCode::NotFound, "prompt 'nope'")),
        );
        check(
            name(s.resolve("greet", &label("staging"))),
            Err((ErrorCode::NotFound, "label 'staging' of prompt 'greet'")),
        );
        check(
            name(s.resolve("greet", &Selector::Version(9))),
            Err((ErrorCode::NotFound, "version 9 of prompt 'greet'")),
        );
        check(
            name(s.resolve("greet", &Selector::Version(0))),
            Err((ErrorCode::NotFound, "version 0")),
        );
        check(
            name(s.resolve("old", &label("production"))),
            Err((ErrorCode::PromptArchived, "archived")),
        );
    }

    #[test]
    fn non_live_versions_are_loaded_on_demand() {
        let s = project();
        match s.resolve("header", &Selector::Version(1)) {
            Err(RuntimeError::NeedVersion(need)) => assert_eq!(
                need,
                NeedVersion {
                    prompt: "header".into(),
                    number: 1
                }
            ),
            other => panic!("{other:?}"),
        }
        // A version of another prompt id (deleted and re-created prompt) is not kept.
        let mut foreign = header_v1();
        foreign.prompt_id = "other".into();
        assert!(!s.add_version(foreign));
        assert!(s.add_version(header_v1()));
        // The cache is shared with snapshots derived later.
        let later = s.without_prompt("greet");
        check(
            render_text(&later, "header", &Selector::Version(1), json!({})),
            Ok("H1"),
        );
    }

    #[test]
    fn render_text_prompts() {
        let s = project();
        type Case<'a> = (
            &'a str,
            Selector,
            Value,
            std::result::Result<&'a str, (ErrorCode, &'a str)>,
        );
        let cases: Vec<Case> = vec![
            (
                "greet",
                label("production"),
                json!({"name": "Ada"}),
                Ok("Hello Ada!"),
            ),
            (
                "greet",
                label("latest"),
                json!({"name": "Ada"}),
                Ok("Hi Ada."),
            ),
            (
                "greet",
                label("latest"),
                json!({"name": "Ada", "suffix": "!!"}),
                Ok("Hi Ada!!"),
            ),
            (
                "greet",
                label("latest"),
                json!({}),
                Err((ErrorCode::MissingVariable, "'name'")),
            ),
            (
                "greet",
                label("latest"),
                json!({"name": 5}),
                Err((ErrorCode::VariableType, "'name' must be a string")),
            ),
            (
                "old",
                label("production"),
                json!({}),
                Err((ErrorCode::PromptArchived, "archived")),
            ),
        ];
        for (name, sel, v, want) in cases {
            check(render_text(&s, name, &sel, v), want);
        }
        let wire = s
            .render("greet", &label("production"), &vars(json!({"name": "A"})))
            .unwrap()
            .into_wire();
        assert_eq!(
            (wire.text.as_deref(), wire.messages.is_none(), wire.version),
            (Some("Hello A!"), true, 1)
        );
    }

    #[test]
    fn render_chat_prompts() {
        let s = project();
        let render = |v: Value| {
            s.render("chat", &label("latest"), &vars(v))
                .map(|r| r.output)
        };
        let m = |role: &str, content: &str| RenderedMessage {
            role: role.into(),
            content: content.into(),
        };
        let out = render(
            json!({"tone": "brief", "q": "Why?", "history": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}),
        );
        assert_eq!(
            out.unwrap(),
            RenderOutput::Messages(vec![
                m("system", "Be brief."),
                m("user", "Hi"),
                m("assistant", "Hello"),
                m("user", "Why?")
            ])
        );
        // The optional placeholder may be left out.
        assert_eq!(
            render(json!({"tone": "brief", "q": "Why?"})).unwrap(),
            RenderOutput::Messages(vec![m("system", "Be brief."), m("user", "Why?")])
        );
        let err = |v: Value| match render(v) {
            Err(RuntimeError::Failed(e)) => (e.code(), e.to_body().details["variable"].clone()),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            err(json!({"tone": "x", "q": "y", "history": [{"role": "god", "content": "x"}]})),
            (ErrorCode::VariableType, json!("history"))
        );
        assert_eq!(
            err(json!({"tone": "x", "q": "y", "history": "text"})),
            (ErrorCode::VariableType, json!("history"))
        );
        assert_eq!(
            err(json!({"tone": "x"})),
            (ErrorCode::MissingVariable, json!("q"))
        );
    }

    #[test]
    fn undeclared_placeholder_must_be_given() {
        let prompts = vec![prompt_record(
            "c",
            "c",
            PromptKind::Chat,
            PromptStatus::Active,
            &[("latest", 1)],
        )];
        let versions = vec![version_record(
            "c",
            "c",
            1,
            Template::Chat {
                messages: vec![ChatMessage::Placeholder {
                    placeholder: "h".into(),
                }],
            },
            vec![],
        )];
        let s = ProjectSnapshot::build(prompts, versions, RenderLimits::default());
        check(
            render_text(&s, "c", &label("latest"), json!({})),
            Err((ErrorCode::MissingVariable, "'h'")),
        );
        check(
            render_text(&s, "c", &label("latest"), json!({"h": []})),
            Ok("[]"),
        );
    }

    #[test]
    fn includes_by_label_and_pinned_version() {
        let s = project();
        // header@1 is pinned and not live: the snapshot asks for it first.
        match s.render("page", &label("latest"), &vars(json!({"body": "B"}))) {
            Err(RuntimeError::NeedVersion(need)) => assert_eq!(
                need,
                NeedVersion {
                    prompt: "header".into(),
                    number: 1
                }
            ),
            other => panic!("{other:?}"),
        }
        assert!(s.add_version(header_v1()));
        check(
            render_text(&s, "page", &label("latest"), json!({"body": "B"})),
            Ok("H2|H1|B"),
        );
        // Moving header's production label is seen by the next snapshot, not by the old one.
        let moved = s.with_prompt(
            prompt_record(
                "header",
                "h",
                PromptKind::Text,
                PromptStatus::Active,
                &[("latest", 3), ("production", 3)],
            ),
            vec![version_record("header", "h", 3, text("H3"), vec![])],
        );
        check(
            render_text(&moved, "page", &label("latest"), json!({"body": "B"})),
            Ok("H3|H1|B"),
        );
        check(
            render_text(&s, "page", &label("latest"), json!({"body": "B"})),
            Ok("H2|H1|B"),
        );
        // A prompt deleted and re-created under the same name serves its new content.
        let recreated = moved.without_prompt("header").with_prompt(
            prompt_record(
                "header",
                "h-new",
                PromptKind::Text,
                PromptStatus::Active,
                &[("latest", 1), ("production", 1)],
            ),
            vec![version_record("header", "h-new", 1, text("NEW"), vec![])],
        );
        check(
            render_text(&recreated, "page", &label("latest"), json!({"body": "B"})),
            Ok("NEW|NEW|B"),
        );
        check(
            render_text(&recreated, "header", &Selector::Version(1), json!({})),
            Ok("NEW"),
        );
    }

    #[test]
    fn include_failures() {
        let mk = |include: &str, target: Option<(PromptKind, PromptStatus)>| {
            let mut prompts = vec![prompt_record(
                "p",
                "p",
                PromptKind::Text,
                PromptStatus::Active,
                &[("latest", 1)],
            )];
            let mut versions = vec![version_record(
                "p",
                "p",
                1,
                text(&format!("{{% include \"{include}\" %}}")),
                vec![],
            )];
            if let Some((kind, status)) = target {
                prompts.push(prompt_record("t", "t", kind, status, &[("latest", 1)]));
                let template = match kind {
                    PromptKind::Text => text("T"),
                    PromptKind::Chat => Template::Chat {
                        messages: vec![ChatMessage::Message {
                            role: "user".into(),
                            content: "T".into(),
                        }],
                    },
                };
                versions.push(version_record("t", "t", 1, template, vec![]));
            }
            let s = ProjectSnapshot::build(prompts, versions, RenderLimits::default());
            render_text(&s, "p", &label("latest"), json!({}))
        };
        use PromptKind::*;
        use PromptStatus::*;
        check(mk("t@latest", Some((Text, Active))), Ok("T"));
        check(
            mk("t@latest", None),
            Err((ErrorCode::RenderFailed, "prompt 't' does not exist")),
        );
        check(
            mk("t@prod", Some((Text, Active))),
            Err((ErrorCode::RenderFailed, "no label 'prod'")),
        );
        check(
            mk("t@7", Some((Text, Active))),
            Err((ErrorCode::RenderFailed, "no version 7")),
        );
        check(
            mk("t@latest", Some((Chat, Active))),
            Err((ErrorCode::RenderFailed, "chat prompt")),
        );
        check(
            mk("t@latest", Some((Text, Archived))),
            Err((ErrorCode::RenderFailed, "archived")),
        );
    }

    #[test]
    fn include_cycles_made_by_labels_stop_at_the_depth_limit() {
        let prompts = vec![
            prompt_record(
                "a",
                "a",
                PromptKind::Text,
                PromptStatus::Active,
                &[("latest", 1)],
            ),
            prompt_record(
                "b",
                "b",
                PromptKind::Text,
                PromptStatus::Active,
                &[("latest", 1)],
            ),
        ];
        let versions = vec![
            version_record("a", "a", 1, text("a{% include \"b@latest\" %}"), vec![]),
            version_record("b", "b", 1, text("b{% include \"a@latest\" %}"), vec![]),
        ];
        let s = ProjectSnapshot::build(prompts, versions, RenderLimits::default());
        check(
            render_text(&s, "a", &label("latest"), json!({})),
            Err((ErrorCode::RenderFailed, "cycle (a@1 → b@1 → a@1)")),
        );
        // A chain longer than the depth limit.
        let n = 12;
        let prompts = (0..n)
            .map(|i| {
                prompt_record(
                    &format!("p{i}"),
                    &format!("p{i}"),
                    PromptKind::Text,
                    PromptStatus::Active,
                    &[("latest", 1)],
                )
            })
            .collect();
        let versions = (0..n)
            .map(|i| {
                let body = if i + 1 < n {
                    format!("{i}{{% include \"p{}@latest\" %}}", i + 1)
                } else {
                    format!("{i}")
                };
                version_record(&format!("p{i}"), &format!("p{i}"), 1, text(&body), vec![])
            })
            .collect();
        let s = ProjectSnapshot::build(prompts, versions, RenderLimits::default());
        check(
            render_text(&s, "p0", &label("latest"), json!({})),
            Err((ErrorCode::RenderLimit, "deeper than 10")),
        );
        check(
            render_text(&s, "p2", &label("latest"), json!({})),
            Ok("234567891011"),
        );
    }

    #[test]
    fn limits_stop_runaway_templates() {
        let limits = RenderLimits {
            fuel: 50_000,
            max_output_bytes: 10_000,
            max_include_depth: 3,
        };
        let prompts = vec![
            prompt_record(
                "loop",
                "l",
                PromptKind::Text,
                PromptStatus::Active,
                &[("latest", 1)],
            ),
            prompt_record(
                "big",
                "b",
                PromptKind::Chat,
                PromptStatus::Active,
                &[("latest", 1)],
            ),
            prompt_record(
                "undef",
                "u",
                PromptKind::Text,
                PromptStatus::Active,
                &[("latest", 1)],
            ),
        ];
        let msg = |c: &str| ChatMessage::Message {
            role: "user".into(),
            content: c.into(),
        };
        let versions = vec![
            version_record(
                "loop",
                "l",
                1,
                text(
                    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
                ),
                vec![],
            ),
            // Each message alone fits; together they exceed the budget.
            version_record(
                "big",
                "b",
                1,
                Template::Chat {
                    messages: vec![msg("{{ s }}"), msg("{{ s }}")],
                },
                vec![spec("s", VarType::String)],
            ),
            version_record("undef", "u", 1, text("ok\n{{ user.name }}"), vec![]),
        ];
        let s = ProjectSnapshot::build(prompts, versions, limits);
        let started = std::time::Instant::now();
        check(
            render_text(&s, "loop", &label("latest"), json!({})),
            Err((ErrorCode::RenderLimit, "units of work")),
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "fuel must stop the loop promptly"
        );
        let half = "x".repeat(6_000);
        check(
            render_text(&s, "big", &label("latest"), json!({"s": half})),
            Err((ErrorCode::RenderLimit, "10000 bytes")),
        );
        match s
            .render(
                "big",
                &label("latest"),
                &vars(json!({"s": "x".repeat(4_000)})),
            )
            .map(|r| r.output)
        {
            Ok(RenderOutput::Messages(m)) => {
                assert_eq!(m.iter().map(|m| m.content.len()).sum::<usize>(), 8_000)
            }
            other => panic!("{other:?}"),
        }
        match s.render("undef", &label("latest"), &Map::new()) {
            Err(RuntimeError::Failed(e)) => {
                assert_eq!(e.code(), ErrorCode::RenderFailed);
                let details = e.to_body().details;
                assert_eq!(details["line"], 2, "{details}");
                assert_eq!(details["expression"], "user.name", "{details}");
                assert_eq!(details["template"], "undef@1", "{details}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bulk_lists_non_archived_prompts_with_the_label() {
        let s = project();
        let names = |label: &str| -> Vec<String> {
            s.bulk(label)
                .unwrap()
                .iter()
                .map(|r| format!("{}@{}", r.prompt().name, r.version().number))
                .collect()
        };
        assert_eq!(names("production"), ["greet@1", "header@2", "page@1"]);
        assert_eq!(names("latest"), ["chat@1", "greet@2", "header@3", "page@1"]);
        assert!(names("nothing").is_empty());
    }

    #[test]
    fn incremental_updates() {
        let s = project();
        // Warm the template cache, then publish greet v3 as latest.
        check(
            render_text(&s, "greet", &label("latest"), json!({"name": "A"})),
            Ok("Hi A."),
        );
        let next = s.with_prompt(
            prompt_record(
                "greet",
                "g",
                PromptKind::Text,
                PromptStatus::Active,
                &[("latest", 3), ("production", 1)],
            ),
            vec![
                version_record(
                    "greet",
                    "g",
                    1,
                    text("Hello {{ name }}!"),
                    vec![spec("name", VarType::String)],
                ),
                version_record(
                    "greet",
                    "g",
                    3,
                    text("Yo {{ name }}"),
                    vec![spec("name", VarType::String)],
                ),
            ],
        );
        check(
            render_text(&next, "greet", &label("latest"), json!({"name": "A"})),
            Ok("Yo A"),
        );
        check(
            render_text(&next, "greet", &label("production"), json!({"name": "A"})),
            Ok("Hello A!"),
        );
        check(
            render_text(&s, "greet", &label("latest"), json!({"name": "A"})),
            Ok("Hi A."),
        );
        let gone = next.without_prompt("greet");
        assert!(gone.prompt("greet").is_none());
        check(
            render_text(&gone, "greet", &label("latest"), json!({})),
            Err((ErrorCode::NotFound, "prompt 'greet'")),
        );
        assert_eq!(gone.len(), 4);
    }

    #[test]
    fn drafts_render_against_the_snapshot() {
        let s = project();
        let template = text("{% include \"header@production\" %} {{ x }}");
        let variables = vec![spec("x", VarType::Number)];
        let analysis = crate::template::analyze(&template, &variables, &json!({})).unwrap();
        let out = s
            .render_draft(
                &template,
                &variables,
                &analysis.includes,
                &vars(json!({"x": 3})),
            )
            .unwrap();
        assert_eq!(out, RenderOutput::Text("H2 3".into()));
        match s.render_draft(
            &template,
            &variables,
            &analysis.includes,
            &vars(json!({"x": "3"})),
        ) {
            Err(RuntimeError::Failed(e)) => assert_eq!(e.code(), ErrorCode::VariableType),
            other => panic!("{other:?}"),
        }
        let chat = Template::Chat {
            messages: vec![ChatMessage::Message {
                role: "user".into(),
                content: "{{ nope }}".into(),
            }],
        };
        match s.render_draft(&chat, &[], &[], &Map::new()) {
            Err(RuntimeError::Failed(e)) => assert_eq!(e.code(), ErrorCode::RenderFailed),
            other => panic!("{other:?}"),
        }
    }

    fn experiment(id: &str, arms: &[(&str, u32, f64, bool)]) -> ExperimentRecord {
        use promptstore_types::{Arm, ExperimentStatus, MetricSpec, OnConclusion};
        ExperimentRecord {
            id: id.into(),
            project: ProjectId("p1".into()),
            name: format!("exp {id}"),
            description: String::new(),
            prompt_id: "h".into(),
            prompt: "header".into(),
            label: "production".into(),
            arms: arms
                .iter()
                .map(|(name, version, weight, stopped)| Arm {
                    name: (*name).into(),
                    version: *version,
                    weight: *weight,
                    stopped: *stopped,
                    stopped_reason: None,
                })
                .collect(),
            primary_metric: MetricSpec {
                metric: "success_rate".into(),
                direction: None,
            },
            guardrails: vec![],
            min_sample_per_arm: 100,
            max_duration_hours: None,
            on_conclusion: OnConclusion::Nothing,
            alpha: 0.05,
            sequential_tuning: 5000.0,
            prior: None,
            mde: 0.05,
            status: ExperimentStatus::Running,
            conclusion: None,
            revision: 1,
            phase: 1,
            created_by: "me".into(),
            created_at: OffsetDateTime::UNIX_EPOCH,
            started_at: Some(OffsetDateTime::UNIX_EPOCH),
            phase_started_at: Some(OffsetDateTime::UNIX_EPOCH),
            ended_at: None,
        }
    }

    /// header@production (→ 2) runs an experiment: control v2, treatment v3 (live) and an
    /// arm on v1 (not live).
    fn with_experiment(arms: &[(&str, u32, f64, bool)]) -> ProjectSnapshot {
        project().with_experiments(&[experiment("e1", arms)])
    }

    fn assigned(s: &ProjectSnapshot, unit: Option<&str>) -> (u32, Option<(String, String)>) {
        let r = s.resolve_for("header", &label("production"), unit).unwrap();
        let wire = r.to_wire();
        (wire.version, wire.assignment.map(|a| (a.experiment, a.arm)))
    }

    #[test]
    fn assignment_is_sticky_and_follows_the_weights() {
        let s = with_experiment(&[("control", 2, 1.0, false), ("short", 3, 3.0, false)]);
        let mut counts = [0u32; 2];
        for i in 0..2_000 {
            let unit = format!("user-{i}");
            let (version, assignment) = assigned(&s, Some(&unit));
            let (experiment, arm) = assignment.unwrap();
            assert_eq!(experiment, "e1");
            // The same unit gets the same arm on every call, and the version of that arm.
            assert_eq!(assigned(&s, Some(&unit)).1.unwrap().1, arm);
            let index = usize::from(arm == "short");
            assert_eq!(version, [2, 3][index]);
            assert_eq!(
                index,
                promptstore_stats::assign_arm("e1", &unit, &[1.0, 3.0]).unwrap()
            );
            counts[index] += 1;
        }
        // 25 % / 75 % within a generous margin (the test is deterministic anyway).
        assert!((400..600).contains(&counts[0]), "{counts:?}");
        // Render uses the same assignment.
        let rendered = s
            .render_for("header", &label("production"), &Map::new(), Some("user-1"))
            .unwrap();
        let arm = rendered
            .resolved
            .assignment
            .as_ref()
            .unwrap()
            .arm_name()
            .to_owned();
        let expected = if arm == "short" { "H3" } else { "H2" };
        assert_eq!(rendered.output, RenderOutput::Text(expected.into()));
    }

    #[test]
    fn the_answer_json_is_the_wire_type_serialised() {
        let s = with_experiment(&[("control", 2, 1.0, false), ("short", 3, 3.0, false)]);
        let chat_vars = json!({"tone": "brief \"and\" kind\n", "q": "Why\t\\?", "history": [
            {"role": "user", "content": "Hi ü 🦀"}, {"role": "assistant", "content": "Hello"}]});
        let cases = [
            // Text at a label, at a version (no label), and with an arm assignment.
            s.render(
                "greet",
                &label("latest"),
                &vars(json!({"name": "Ada \"A\""})),
            ),
            s.render(
                "greet",
                &Selector::Version(1),
                &vars(json!({"name": "x\u{1}y"})),
            ),
            s.render_for("header", &label("production"), &Map::new(), Some("user-1")),
            // Chat with a placeholder expanded.
            s.render("chat", &label("latest"), &vars(chat_vars)),
        ];
        // Chat whose plain-text messages (escapes, a trailing newline the engine drops) are
        // written from the version's cached JSON, rendered twice (the cache made, then used).
        let message = |role: &str, content: &str| ChatMessage::Message {
            role: role.into(),
            content: content.into(),
        };
        let plain = ProjectSnapshot::build(
            vec![prompt_record(
                "c",
                "c",
                PromptKind::Chat,
                PromptStatus::Active,
                &[("latest", 1)],
            )],
            vec![version_record(
                "c",
                "c",
                1,
                Template::Chat {
                    messages: vec![
                        message("system", "Be \"terse\",\n\tkind \\ ü 🦀 \u{1}.\r\n"),
                        message("user", "{{ q }}"),
                        message("assistant", "{# only a comment #}"),
                        message("user", "plain again\n"),
                    ],
                },
                vec![spec("q", VarType::String)],
            )],
            RenderLimits::default(),
        );
        let chat = || plain.render("c", &label("latest"), &vars(json!({"q": "Why \"so\"?\n"})));
        for rendered in cases.into_iter().chain([chat(), chat()]) {
            let rendered = rendered.unwrap();
            let expected = serde_json::to_vec(&rendered.clone().into_wire()).unwrap();
            let got = rendered.to_json().unwrap();
            assert_eq!(
                String::from_utf8(got).unwrap(),
                String::from_utf8(expected).unwrap()
            );
        }
    }

    #[test]
    fn no_unit_gives_the_control_and_no_assignment() {
        // The control arm need not be where the label points.
        let s = with_experiment(&[("control", 3, 1.0, false), ("b", 2, 1.0, false)]);
        assert_eq!(assigned(&s, None), (3, None));
        assert_eq!(assigned(&s, Some("")), (3, None));
        let bulk = s.bulk("production").unwrap();
        let header = bulk.iter().find(|r| r.prompt().name == "header").unwrap();
        assert_eq!(header.version().number, 3);
        assert!(header.assignment.is_none());
        // Other labels and version selectors are untouched.
        let latest = s
            .resolve_for("header", &label("latest"), Some("u"))
            .unwrap();
        assert_eq!(
            (latest.version().number, latest.assignment.is_none()),
            (3, true)
        );
        let pinned = s
            .resolve_for("header", &Selector::Version(2), Some("u"))
            .unwrap();
        assert_eq!(
            (pinned.version().number, pinned.assignment.is_none()),
            (2, true)
        );
    }

    #[test]
    fn stopped_arms_get_no_traffic_and_non_live_arms_are_loaded() {
        let s = with_experiment(&[
            ("control", 2, 1.0, false),
            ("stopped", 3, 5.0, true),
            ("old", 1, 1.0, false),
        ]);
        let mut needed = false;
        for i in 0..300 {
            let unit = format!("u{i}");
            match s.resolve_for("header", &label("production"), Some(&unit)) {
                Ok(r) => {
                    let arm = r.assignment.unwrap();
                    assert_ne!(arm.arm_name(), "stopped");
                }
                Err(RuntimeError::NeedVersion(need)) => {
                    assert_eq!(need.number, 1);
                    needed = true;
                    assert!(s.add_version(header_v1()));
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert!(needed, "the non-live arm version was asked for");
        // Every arm stopped: nothing to assign, the label serves as usual.
        let all_stopped = with_experiment(&[("control", 2, 1.0, true), ("b", 3, 1.0, true)]);
        assert_eq!(assigned(&all_stopped, Some("u")), (2, None));
    }

    #[test]
    fn experiments_survive_prompt_refreshes_and_are_replaced_whole() {
        let s = with_experiment(&[("control", 2, 1.0, false), ("b", 3, 1.0, false)]);
        assert!(s.running_experiment("e1").is_some());
        // Refreshing another prompt keeps the experiment.
        let refreshed = s.without_prompt("greet");
        assert!(assigned(&refreshed, Some("u")).1.is_some());
        // A prompt re-created under the same name (new id) does not inherit it.
        let recreated = s.without_prompt("header").with_prompt(
            prompt_record(
                "header",
                "h-new",
                PromptKind::Text,
                PromptStatus::Active,
                &[("latest", 1), ("production", 1)],
            ),
            vec![version_record("header", "h-new", 1, text("NEW"), vec![])],
        );
        assert_eq!(assigned(&recreated, Some("u")), (1, None));
        // Replacing the set drops experiments that no longer run.
        let mut stopped = experiment("e1", &[("control", 2, 1.0, false), ("b", 3, 1.0, false)]);
        stopped.status = promptstore_types::ExperimentStatus::Stopped;
        let after = s.with_experiments(&[stopped]);
        assert!(after.running_experiment("e1").is_none());
        assert_eq!(assigned(&after, Some("u")), (2, None));
    }

    /// `n` text prompts `t0..tn`, each with `latest` on a template that uses the engine.
    fn many(n: usize, capacity: usize) -> ProjectSnapshot {
        let prompts = (0..n)
            .map(|i| {
                prompt_record(
                    &format!("t{i}"),
                    &format!("t{i}"),
                    PromptKind::Text,
                    PromptStatus::Active,
                    &[("latest", 1)],
                )
            })
            .collect();
        let versions = (0..n)
            .map(|i| {
                let name = format!("t{i}");
                let body = format!("{i}:{{{{ x }}}}");
                version_record(
                    &name,
                    &name,
                    1,
                    text(&body),
                    vec![spec("x", VarType::String)],
                )
            })
            .collect();
        ProjectSnapshot::build_with_capacity(prompts, versions, RenderLimits::default(), capacity)
    }

    #[test]
    fn compiled_templates_are_bounded_and_renders_stay_correct() {
        let s = many(40, 8);
        for round in 0..3 {
            for i in 0..40 {
                check(
                    render_text(
                        &s,
                        &format!("t{i}"),
                        &label("latest"),
                        json!({"x": round.to_string()}),
                    ),
                    Ok(&format!("{i}:{round}")),
                );
                // One render compiles at most one template past the bound, then a fresh
                // generation starts.
                assert!(s.compiled_templates() <= 8, "{}", s.compiled_templates());
            }
        }
        // Derived snapshots keep the bound and see a moved label at once.
        let next = s.with_prompt(
            prompt_record(
                "t3",
                "t3",
                PromptKind::Text,
                PromptStatus::Active,
                &[("latest", 2)],
            ),
            vec![version_record(
                "t3",
                "t3",
                2,
                text("new {{ x }}"),
                vec![spec("x", VarType::String)],
            )],
        );
        check(
            render_text(&next, "t3", &label("latest"), json!({"x": "a"})),
            Ok("new a"),
        );
        check(
            render_text(&s, "t3", &label("latest"), json!({"x": "a"})),
            Ok("3:a"),
        );
        for i in 0..40 {
            render_text(&next, &format!("t{i}"), &label("latest"), json!({"x": "1"})).unwrap();
            assert!(next.compiled_templates() <= 8);
        }
    }

    #[test]
    fn templates_without_syntax_are_not_compiled() {
        let s = project();
        // `header` v2 is plain text; `greet` uses the engine.
        check(
            render_text(&s, "header", &label("production"), json!({})),
            Ok("H2"),
        );
        assert_eq!(s.compiled_templates(), 0);
        // Text and plain variables: the fast path renders it, the engine compiles nothing.
        check(
            render_text(&s, "greet", &label("production"), json!({"name": "A"})),
            Ok("Hello A!"),
        );
        assert_eq!(s.compiled_templates(), 0);
        // A plain chat message next to one that needs the engine (a filter): only the latter
        // is compiled.
        let prompts = vec![prompt_record(
            "c",
            "c",
            PromptKind::Chat,
            PromptStatus::Active,
            &[("latest", 1)],
        )];
        let message = |role: &str, content: &str| ChatMessage::Message {
            role: role.into(),
            content: content.into(),
        };
        let versions = vec![version_record(
            "c",
            "c",
            1,
            Template::Chat {
                messages: vec![
                    message("system", "You are terse.\n"),
                    message("user", "{{ q | trim }}"),
                ],
            },
            vec![spec("q", VarType::String)],
        )];
        let limits = RenderLimits {
            max_output_bytes: 20,
            ..RenderLimits::default()
        };
        let c = ProjectSnapshot::build(prompts.clone(), versions, limits);
        match c.render("c", &label("latest"), &vars(json!({"q": "why?"}))) {
            Ok(r) => assert_eq!(
                r.output,
                RenderOutput::Messages(vec![
                    RenderedMessage {
                        role: "system".into(),
                        content: "You are terse.".into()
                    },
                    RenderedMessage {
                        role: "user".into(),
                        content: "why?".into()
                    },
                ])
            ),
            Err(e) => panic!("{e}"),
        }
        assert_eq!(c.compiled_templates(), 1);
        // Plain text counts against the output budget like rendered text.
        match c.render("c", &label("latest"), &vars(json!({"q": "x".repeat(7)}))) {
            Err(RuntimeError::Failed(e)) => {
                assert_eq!(e.code(), ErrorCode::RenderLimit, "{e}");
                assert!(e.to_string().contains("more than 20 bytes"), "{e}");
            }
            other => panic!("{other:?}"),
        }
        // The same with `{{ q }}`, which the fast path renders: the same budget, the same error.
        let fast = ProjectSnapshot::build(
            prompts,
            vec![version_record(
                "c",
                "c",
                1,
                Template::Chat {
                    messages: vec![
                        message("system", "You are terse.\n"),
                        message("user", "{{ q }}"),
                    ],
                },
                vec![spec("q", VarType::String)],
            )],
            limits,
        );
        for (q, ok) in [("x".repeat(6), true), ("x".repeat(7), false)] {
            match fast.render("c", &label("latest"), &vars(json!({ "q": q }))) {
                Ok(r) if ok => match r.output {
                    RenderOutput::Messages(m) => assert_eq!(m[1].content, q),
                    other => panic!("{other:?}"),
                },
                Err(RuntimeError::Failed(e)) if !ok => {
                    assert_eq!(e.code(), ErrorCode::RenderLimit, "{e}");
                    assert!(
                        e.to_string()
                            .contains("'c@1#1' produced more than 20 bytes"),
                        "{e}"
                    );
                }
                other => panic!("{q}: {other:?}"),
            }
        }
        assert_eq!(fast.compiled_templates(), 0);
        let tight = RenderLimits {
            max_output_bytes: 5,
            ..RenderLimits::default()
        };
        let plain = ProjectSnapshot::build(
            vec![prompt_record(
                "p",
                "p",
                PromptKind::Text,
                PromptStatus::Active,
                &[("latest", 1)],
            )],
            vec![version_record("p", "p", 1, text("123456"), vec![])],
            tight,
        );
        check(
            render_text(&plain, "p", &label("latest"), json!({})),
            Err((ErrorCode::RenderLimit, "more than 5 bytes")),
        );
    }
}
