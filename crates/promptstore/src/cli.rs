//! The command line, declared once with clap: every flag, its environment variable and its
//! help text. Parsing only; what each command does lives in `commands/`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// promptstore: self-hosted prompt management. `serve` runs the server; the other commands
/// talk to a running server over its HTTP API.
#[derive(Debug, Parser)]
#[command(name = "promptstore", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (REST API, docs page) on an embedded SQLite database.
    Serve(ServeArgs),
    /// Create, inspect, version, render and retire prompts.
    #[command(subcommand)]
    Prompt(PromptCommand),
    /// Move labels (deploy), remove them, roll them back.
    #[command(subcommand)]
    Label(LabelCommand),
    /// Manage the project's API keys (admin key needed).
    #[command(subcommand)]
    Key(KeyCommand),
    /// Write every prompt of the project as one YAML file per prompt under DIR.
    Export(ExportArgs),
    /// Read every .yaml/.yml/.json file under DIR and apply them all at once (all or nothing).
    Import(ImportArgs),
    /// Usage summary for a time range: count, success rate, latency, tokens, cost, scores,
    /// feedback — overall or broken down.
    Stats(StatsArgs),
    /// Record usage events.
    #[command(subcommand)]
    Events(EventsCommand),
    /// The model price table used to cost events (admin key to change it).
    #[command(subcommand)]
    Prices(PricesCommand),
    /// Alert rules and their firing/resolved history.
    #[command(subcommand)]
    Alerts(AlertsCommand),
    /// A/B tests of prompt versions on a label: create, start, change arms, stop,
    /// conclude, results and history.
    #[command(subcommand)]
    Experiment(ExperimentCommand),
    /// The A/B calculator: analyse data from anywhere, locally (no server needed).
    #[command(subcommand)]
    Abtest(AbtestCommand),
}

#[derive(Debug, Subcommand)]
pub enum ExperimentCommand {
    /// Create an experiment (a draft) from a YAML or JSON file holding a `CreateExperiment`:
    /// name, prompt, label, arms [{name, version, weight}] (the first is the control),
    /// primary_metric {metric, direction?}, guardrails, min_sample_per_arm,
    /// max_duration_hours, on_conclusion (nothing | promote_winner), alpha…
    Create {
        #[command(flatten)]
        client: ClientArgs,
        #[arg(long, short = 'f')]
        file: PathBuf,
    },
    /// List experiments, newest first.
    List {
        #[command(flatten)]
        client: ClientArgs,
        /// Only experiments on this prompt.
        #[arg(long)]
        prompt: Option<String>,
        /// Only experiments in this status (draft, running, stopped, concluded).
        #[arg(long)]
        status: Option<String>,
    },
    /// Show an experiment: its definition, arms and status.
    Show {
        #[command(flatten)]
        client: ClientArgs,
        id: String,
    },
    /// Start a draft: the label's traffic is split between the arms from now on.
    Start {
        #[command(flatten)]
        client: ClientArgs,
        id: String,
    },
    /// Stop a running experiment (the label serves its own version again).
    Stop {
        #[command(flatten)]
        client: ClientArgs,
        id: String,
        /// Why, recorded in the history.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Conclude a running or stopped experiment, optionally naming the winner and moving
    /// the label to its version (--promote).
    Conclude {
        #[command(flatten)]
        client: ClientArgs,
        id: String,
        /// The winning arm (none: no winner).
        #[arg(long)]
        winner: Option<String>,
        /// Move the label to the winner's version in the same step.
        #[arg(long, requires = "winner")]
        promote: bool,
        /// Why, recorded in the history and the label's deployment log.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Change the arms or weights of a running experiment (a new analysis phase starts)
    /// from a YAML or JSON file: a list of arms [{name, version, weight}], or {arms: […]}.
    Arms {
        #[command(flatten)]
        client: ClientArgs,
        id: String,
        #[arg(long, short = 'f')]
        file: PathBuf,
        /// Why the arms change (required: it changes the analysis).
        #[arg(long)]
        reason: String,
    },
    /// The statistical results: per arm and per comparison with the control, the SRM
    /// check, the sample size still needed and the verdict.
    Results {
        #[command(flatten)]
        client: ClientArgs,
        id: String,
        /// Analyse every phase, not only the current one.
        #[arg(long)]
        all_phases: bool,
        /// Minimum detectable relative effect for the sample size (e.g. 0.05).
        #[arg(long)]
        mde: Option<f64>,
    },
    /// Every lifecycle step and automatic decision, oldest first.
    History {
        #[command(flatten)]
        client: ClientArgs,
        id: String,
    },
    /// Delete a draft.
    Delete {
        #[command(flatten)]
        client: ClientArgs,
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AbtestCommand {
    /// Analyse a JSON file: a case {id?, kind?, input}, a list of cases, or a document
    /// shaped like the reference cases.json. Rate metrics give {n, successes} per arm,
    /// continuous ones {n, sum, sum_squares}; SRM-only and sample-size cases too.
    Analyze {
        /// The JSON file (`-` for standard input).
        file: PathBuf,
        /// report: a readable analysis; reference: [{"id", "expected": {...}}] with the
        /// reference cases' field names (for check.py); json: the same results as JSON.
        #[arg(long, value_enum, default_value_t = AnalyzeFormatArg::Report)]
        format: AnalyzeFormatArg,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AnalyzeFormatArg {
    Report,
    Reference,
    Json,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Only this prompt.
    #[arg(long)]
    pub prompt: Option<String>,
    /// Only this version (with --prompt).
    #[arg(long, requires = "prompt")]
    pub version: Option<u32>,
    /// Only events recorded with this label.
    #[arg(long)]
    pub label: Option<String>,
    /// Only this model.
    #[arg(long)]
    pub model: Option<String>,
    /// Start: RFC 3339 (2026-01-02T00:00:00Z) or an age such as 7d, 24h, 90m (default 24h).
    #[arg(long)]
    pub from: Option<String>,
    /// End: RFC 3339 or an age (default: now).
    #[arg(long)]
    pub to: Option<String>,
    /// Break down by any of prompt, version, label, model, arm (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub group_by: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Send the events of an NDJSON file (one event per line) in batches. Prints how many
    /// were stored, were duplicates (already stored: re-running is safe with event ids) or
    /// were rejected, with the first errors and their line numbers; exits 1 if any line
    /// was rejected.
    Import {
        #[command(flatten)]
        client: ClientArgs,
        /// The NDJSON file (`-` for standard input).
        file: PathBuf,
        /// Events per request.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=50_000))]
        batch: u32,
    },
}

#[derive(Debug, Subcommand)]
pub enum PricesCommand {
    /// The project's prices and the shipped defaults.
    List {
        #[command(flatten)]
        client: ClientArgs,
        /// Only models whose name contains this.
        #[arg(long)]
        model: Option<String>,
    },
    /// Set a model's price in USD per million tokens (a new entry from --from on).
    Set {
        #[command(flatten)]
        client: ClientArgs,
        model: String,
        /// USD per million input tokens.
        #[arg(long)]
        input: f64,
        /// USD per million output tokens.
        #[arg(long)]
        output: f64,
        /// USD per million cached input tokens (default: the input price).
        #[arg(long)]
        cached_input: Option<f64>,
        /// In force from (RFC 3339; default now).
        #[arg(long)]
        from: Option<String>,
    },
    /// Remove the project's entries for a model (its default price, if any, applies again).
    Delete {
        #[command(flatten)]
        client: ClientArgs,
        model: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AlertsCommand {
    /// Every rule with its current state.
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Create a rule: fire when METRIC over the last --window minutes compares to
    /// --threshold, once --min-sample events are in the window.
    Create {
        #[command(flatten)]
        client: ClientArgs,
        name: String,
        /// error_rate, latency_p50_ms, latency_p95_ms, latency_p99_ms, cost, cost_per_day,
        /// score_mean:<name>, negative_feedback_rate, count.
        #[arg(long)]
        metric: String,
        /// gt, gte, lt or lte.
        #[arg(long, default_value = "gt")]
        comparison: String,
        #[arg(long, allow_negative_numbers = true)]
        threshold: f64,
        /// Window in minutes.
        #[arg(long, default_value_t = 60)]
        window: u32,
        /// Fewest events in the window for the rule to decide.
        #[arg(long, default_value_t = 0)]
        min_sample: u64,
        /// Only this prompt (default: the whole project).
        #[arg(long)]
        prompt: Option<String>,
        /// Only events with this label (with --prompt).
        #[arg(long, requires = "prompt")]
        label: Option<String>,
        /// Create it switched off.
        #[arg(long)]
        disabled: bool,
    },
    /// Delete a rule by id.
    Delete {
        #[command(flatten)]
        client: ClientArgs,
        id: i64,
    },
    /// Firing/resolved transitions, newest first.
    History {
        #[command(flatten)]
        client: ClientArgs,
        /// Only this rule.
        #[arg(long)]
        rule: Option<i64>,
        /// At most this many (default 50).
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Directory holding the database file (promptstore.db); created when missing.
    #[arg(long, env = "PROMPTSTORE_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Address to listen on.
    #[arg(long, env = "PROMPTSTORE_BIND", default_value = "127.0.0.1")]
    pub bind: String,
    /// Port to listen on; 0 picks a free one (the chosen port is printed).
    #[arg(long, env = "PROMPTSTORE_PORT", default_value_t = 5110)]
    pub port: u16,
    /// Largest request body accepted, e.g. 1MiB, 512KiB, 2000000.
    #[arg(long, env = "PROMPTSTORE_BODY_LIMIT", default_value = "1MiB")]
    pub body_limit: String,
    /// Largest event batch `POST /api/v1/events` accepts, e.g. 16MiB.
    #[arg(long, env = "PROMPTSTORE_INGEST_BODY_LIMIT", default_value = "16MiB")]
    pub ingest_body_limit: String,
    /// Memory for render answers kept to answer a repeated render request (same prompt,
    /// label or version, variables and unit id) without rendering it again, e.g. 8MiB;
    /// 0 turns it off. Answers are dropped as soon as anything they depend on changes.
    #[arg(long, env = "PROMPTSTORE_RENDER_CACHE", default_value = "8MiB")]
    pub render_cache: String,
    /// Raw events older than this many days are pruned in the background (the aggregates
    /// behind summaries and time series are kept).
    #[arg(long, env = "PROMPTSTORE_EVENTS_RETENTION_DAYS", default_value_t = 30,
        value_parser = clap::value_parser!(u32).range(1..=36_500))]
    pub events_retention_days: u32,
    /// Seconds between two evaluations of the alert rules.
    #[arg(long, env = "PROMPTSTORE_ALERT_INTERVAL_SECS", default_value_t = 30,
        value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub alert_interval_secs: u64,
    /// Seconds between two runs of the experiment decision worker (automatic conclusion,
    /// promotion of winners, guardrail stops).
    #[arg(long, env = "PROMPTSTORE_EXPERIMENT_INTERVAL_SECS", default_value_t = 60,
        value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub experiment_interval_secs: u64,
    /// Log filter (tracing syntax), e.g. info, debug, promptstore_server=debug.
    #[arg(long, env = "PROMPTSTORE_LOG", default_value = "info,sqlx=warn")]
    pub log: String,
    /// Log format.
    #[arg(long, env = "PROMPTSTORE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// How client commands reach the server.
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// Server URL.
    #[arg(long, env = "PROMPTSTORE_URL", default_value = "http://127.0.0.1:5110")]
    pub url: String,
    /// API key (`ps_<id>_<secret>`).
    #[arg(
        long,
        env = "PROMPTSTORE_API_KEY",
        hide_env_values = true,
        default_value = ""
    )]
    pub api_key: String,
    /// Print machine-readable JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum PromptCommand {
    /// List prompts, optionally filtered or searched.
    List {
        #[command(flatten)]
        client: ClientArgs,
        /// Only prompts with this tag.
        #[arg(long)]
        tag: Option<String>,
        /// Only prompts that have this label.
        #[arg(long)]
        label: Option<String>,
        /// Only prompts in this status (draft, active, deprecated, archived).
        #[arg(long)]
        status: Option<String>,
        /// Only names starting with this, e.g. `support/`.
        #[arg(long)]
        prefix: Option<String>,
        /// Full-text search over names, descriptions, templates and tags.
        #[arg(long, short = 's')]
        search: Option<String>,
        /// At most this many prompts (default: all).
        #[arg(long)]
        limit: Option<u32>,
    },
    /// Show a prompt's metadata, labels and one version (default: latest).
    Show {
        #[command(flatten)]
        client: ClientArgs,
        name: String,
        #[command(flatten)]
        at: VersionSelector,
    },
    /// List a prompt's versions, newest first.
    Versions {
        #[command(flatten)]
        client: ClientArgs,
        name: String,
    },
    /// Create a prompt with its version 1, from a file or a quick text.
    Create {
        #[command(flatten)]
        client: ClientArgs,
        name: String,
        #[command(flatten)]
        source: TemplateSource,
        /// Description (overrides the file's).
        #[arg(long, short = 'd')]
        description: Option<String>,
        /// Tag; repeat for several (overrides the file's).
        #[arg(long = "tag", short = 't')]
        tags: Vec<String>,
        /// Commit message of version 1.
        #[arg(long, short = 'm')]
        message: Option<String>,
        /// Create it `active` instead of `draft`.
        #[arg(long)]
        active: bool,
    },
    /// Change a prompt's description or tags (metadata only; content changes are `push`).
    Edit {
        #[command(flatten)]
        client: ClientArgs,
        name: String,
        /// New description.
        #[arg(long, short = 'd')]
        description: Option<String>,
        /// New tags, replacing the old ones; repeat for several.
        #[arg(long = "tag", short = 't')]
        tags: Vec<String>,
        /// Remove every tag.
        #[arg(long, conflicts_with = "tags")]
        clear_tags: bool,
    },
    /// Save a new version of a prompt from a file.
    Push {
        #[command(flatten)]
        client: ClientArgs,
        name: String,
        #[command(flatten)]
        source: TemplateSource,
        /// Commit message.
        #[arg(long, short = 'm')]
        message: Option<String>,
        /// The version this edit started from: refused if it is no longer the newest.
        #[arg(long)]
        base: Option<u32>,
    },
    /// Show what changed between two versions.
    Diff {
        #[command(flatten)]
        client: ClientArgs,
        name: String,
        from: u32,
        to: u32,
    },
    /// Render a prompt with variables on the server.
    Render {
        #[command(flatten)]
        client: ClientArgs,
        name: String,
        #[command(flatten)]
        at: VersionSelector,
        /// A variable as key=value; the value is read as JSON when it parses (42, true,
        /// ["a"]), else as a string. Repeat for several.
        #[arg(long = "var", short = 'v', value_name = "KEY=VALUE")]
        vars: Vec<String>,
        /// A YAML or JSON file holding an object of variables (--var overrides it).
        #[arg(long)]
        vars_file: Option<PathBuf>,
        /// User or session id, for sticky experiment assignment.
        #[arg(long)]
        unit_id: Option<String>,
    },
    /// The deployment log: every label move of a prompt, newest first.
    History {
        #[command(flatten)]
        client: ClientArgs,
        name: String,
        /// Only this label's moves.
        #[arg(long)]
        label: Option<String>,
    },
    /// Move a prompt through its lifecycle (draft, active, deprecated, archived).
    Status {
        #[command(flatten)]
        client: ClientArgs,
        name: String,
        status: String,
        /// Archive even though labels point at it (they are removed).
        #[arg(long)]
        force: bool,
    },
    /// Delete a prompt and all its versions.
    Delete {
        #[command(flatten)]
        client: ClientArgs,
        name: String,
        /// Delete even though labels or other prompts depend on it.
        #[arg(long)]
        force: bool,
    },
}

/// Which version: `--version N` or `--label L` (default: the `latest` label).
#[derive(Debug, Clone, Args)]
#[group(multiple = false)]
pub struct VersionSelector {
    /// A version number.
    #[arg(long)]
    pub version: Option<u32>,
    /// A label, e.g. production.
    #[arg(long)]
    pub label: Option<String>,
}

/// Where a version's content comes from.
#[derive(Debug, Clone, Args)]
#[group(required = true, multiple = false)]
pub struct TemplateSource {
    /// YAML or JSON file with template (or messages), variables, model_config, description,
    /// tags; a .txt/.md/.j2/.jinja file is taken whole as a text template.
    #[arg(long, short = 'f')]
    pub file: Option<PathBuf>,
    /// The template text itself, for a quick text prompt.
    #[arg(long)]
    pub text: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum LabelCommand {
    /// Point LABEL of prompt NAME at VERSION (create or move it).
    Set {
        #[command(flatten)]
        client: ClientArgs,
        name: String,
        label: String,
        version: u32,
        /// Move a protected label even to a version that breaks the variable contract.
        #[arg(long)]
        allow_breaking: bool,
        /// Why, recorded in the deployment log.
        #[arg(long)]
        reason: Option<String>,
        /// Only move if the label points at this version now (0: must not exist yet).
        #[arg(long)]
        expected: Option<u32>,
    },
    /// Remove LABEL from prompt NAME.
    Remove {
        #[command(flatten)]
        client: ClientArgs,
        name: String,
        label: String,
    },
    /// Move LABEL back to where it pointed before its last move (or to --to).
    Rollback {
        #[command(flatten)]
        client: ClientArgs,
        name: String,
        label: String,
        /// Roll back to this version instead of the previous one.
        #[arg(long)]
        to: Option<u32>,
        /// Allow a version that breaks the variable contract.
        #[arg(long)]
        allow_breaking: bool,
        /// Why, recorded in the deployment log.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Show where LABEL of prompt NAME points, now or at a past time.
    Show {
        #[command(flatten)]
        client: ClientArgs,
        name: String,
        label: String,
        /// A past time (RFC 3339, e.g. 2026-01-02T14:02:00Z): where the label pointed then.
        #[arg(long)]
        as_of: Option<String>,
    },
    /// List the labels of prompt NAME.
    List {
        #[command(flatten)]
        client: ClientArgs,
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create a key; its secret is printed once.
    Create {
        #[command(flatten)]
        client: ClientArgs,
        /// A name saying what the key is for.
        name: String,
        /// admin, editor, viewer or runtime.
        #[arg(long, default_value = "runtime")]
        role: String,
    },
    /// List the project's keys (never their secrets).
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Revoke a key by its id.
    Revoke {
        #[command(flatten)]
        client: ClientArgs,
        id: String,
    },
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Directory to write into (created when missing); `support/triage` becomes
    /// DIR/support/triage.yaml.
    pub dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Directory to read (recursively).
    pub dir: PathBuf,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        // clap checks conflicting names, groups and defaults only when asked (or at run time).
        Cli::command().debug_assert();
    }

    #[test]
    fn version_selects_a_version_on_subcommands() {
        let cli = Cli::try_parse_from(["promptstore", "prompt", "show", "a/b", "--version", "3"])
            .unwrap();
        match cli.command {
            Command::Prompt(PromptCommand::Show { at, .. }) => assert_eq!(at.version, Some(3)),
            other => panic!("parsed {other:?}"),
        }
        let both = Cli::try_parse_from([
            "promptstore",
            "prompt",
            "show",
            "a",
            "--version",
            "3",
            "--label",
            "x",
        ]);
        assert!(both.is_err(), "--version and --label exclude each other");
    }
}
