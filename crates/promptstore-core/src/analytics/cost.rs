//! What a generation cost: the shipped default price table, a project's own prices over
//! it, the lookup of the price in force for a model at a time, and the cost formula.
//!
//! Model-name matching, in order (the first hit wins): the project's entries by exact
//! name, the project's entries ignoring ASCII case, the defaults by exact name, the
//! defaults ignoring case. Among a model's entries the one in force at time `t` is the
//! latest with `effective_from <= t`; when none of the project's entries is in force yet,
//! the defaults apply. There is no fuzzy matching (no prefix or date-suffix guessing): a
//! wrong price is worse than "unpriced", which analytics report as such, and a project can
//! add an entry for any name it uses.
//!
//! The defaults are list prices in USD per million tokens as providers published them at
//! the effective date (standard tier, shortest context band, no batch discount). They are a
//! starting point: a project sets its own entries for negotiated or changed prices.

use std::collections::HashMap;
use std::sync::OnceLock;

use promptstore_types::{CostSource, ErrorCode, ModelPrice, SetModelPrice};
use time::OffsetDateTime;
use time::macros::datetime;

use super::model::PriceRecord;
use crate::error::Error;

/// Longest model name accepted in a price entry or an event.
pub const MAX_MODEL_NAME_LEN: usize = 200;

/// A price in force: USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Price {
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
    /// Absent = the input price.
    pub cached_input_per_mtok: Option<f64>,
    pub effective_from: OffsetDateTime,
}

impl Price {
    /// Cost in USD: (input − cached)·in + cached·cached_in + output·out, per million tokens.
    /// Cached tokens are part of the input tokens; more cached than input counts as all
    /// input cached.
    pub fn cost(&self, input_tokens: u64, cached_input_tokens: u64, output_tokens: u64) -> f64 {
        let cached = cached_input_tokens.min(input_tokens);
        let fresh = input_tokens - cached;
        let cached_price = self.cached_input_per_mtok.unwrap_or(self.input_per_mtok);
        (fresh as f64 * self.input_per_mtok
            + cached as f64 * cached_price
            + output_tokens as f64 * self.output_per_mtok)
            / 1_000_000.0
    }
}

impl From<&PriceRecord> for Price {
    fn from(p: &PriceRecord) -> Self {
        Price {
            input_per_mtok: p.input_per_mtok,
            output_per_mtok: p.output_per_mtok,
            cached_input_per_mtok: p.cached_input_per_mtok,
            effective_from: p.effective_from,
        }
    }
}

/// Where a price came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PriceSource {
    Default,
    Project,
}

impl PriceSource {
    pub fn as_str(self) -> &'static str {
        match self {
            PriceSource::Default => "default",
            PriceSource::Project => "project",
        }
    }
}

/// One model's entries, sorted by `effective_from`.
#[derive(Debug, Clone, Default)]
struct Entries {
    model: String,
    prices: Vec<Price>,
}

impl Entries {
    fn at(&self, t: OffsetDateTime) -> Option<Price> {
        let n = self.prices.partition_point(|p| p.effective_from <= t);
        n.checked_sub(1).map(|i| self.prices[i])
    }
}

/// A price table indexed by exact and by lower-cased model name.
#[derive(Debug, Clone, Default)]
struct Table {
    exact: HashMap<String, Entries>,
    /// Lower-cased name → the exact names that lower-case to it (sorted, so the choice
    /// among names differing only in case is deterministic).
    folded: HashMap<String, Vec<String>>,
}

impl Table {
    fn build(rows: impl IntoIterator<Item = (String, Price)>) -> Table {
        let mut t = Table::default();
        for (model, price) in rows {
            t.exact
                .entry(model.clone())
                .or_insert_with(|| Entries {
                    model: model.clone(),
                    prices: Vec::new(),
                })
                .prices
                .push(price);
        }
        for entries in t.exact.values_mut() {
            entries.prices.sort_by_key(|p| p.effective_from);
            t.folded
                .entry(entries.model.to_ascii_lowercase())
                .or_default()
                .push(entries.model.clone());
        }
        for names in t.folded.values_mut() {
            names.sort();
        }
        t
    }

    fn at(&self, model: &str, t: OffsetDateTime) -> Option<Price> {
        if let Some(p) = self.exact.get(model).and_then(|e| e.at(t)) {
            return Some(p);
        }
        let names = self.folded.get(&model.to_ascii_lowercase())?;
        names
            .iter()
            .filter(|n| n.as_str() != model)
            .filter_map(|n| self.exact.get(n)?.at(t))
            .next()
    }
}

/// The prices a project's events are costed with: its own entries over the defaults.
/// Build one per project when its entries change and share it (it is immutable).
#[derive(Debug, Clone, Default)]
pub struct PriceBook {
    project: Table,
}

impl PriceBook {
    pub fn new(project_entries: &[PriceRecord]) -> PriceBook {
        PriceBook {
            project: Table::build(
                project_entries
                    .iter()
                    .map(|p| (p.model.clone(), Price::from(p))),
            ),
        }
    }

    /// The price in force for `model` at `t`, and where it came from.
    pub fn price(&self, model: &str, t: OffsetDateTime) -> Option<(Price, PriceSource)> {
        if let Some(p) = self.project.at(model, t) {
            return Some((p, PriceSource::Project));
        }
        defaults().at(model, t).map(|p| (p, PriceSource::Default))
    }

    /// An event's cost and its source: the reported cost when there is one; else computed
    /// from the price in force at `at`; else unpriced with no cost (never zero).
    pub fn event_cost(
        &self,
        reported: Option<f64>,
        model: &str,
        at: OffsetDateTime,
        input_tokens: u64,
        cached_input_tokens: u64,
        output_tokens: u64,
    ) -> (Option<f64>, CostSource) {
        if let Some(c) = reported {
            return (Some(c), CostSource::Reported);
        }
        match self.price(model, at) {
            Some((p, _)) => (
                Some(p.cost(input_tokens, cached_input_tokens, output_tokens)),
                CostSource::Computed,
            ),
            None => (None, CostSource::Unpriced),
        }
    }
}

/// The price list as the API shows it: the project's entries, then the shipped defaults,
/// each sorted by model and date.
pub fn price_list(project_entries: &[PriceRecord]) -> Vec<ModelPrice> {
    let mut project: Vec<ModelPrice> = project_entries
        .iter()
        .map(|p| ModelPrice {
            model: p.model.clone(),
            input_per_mtok: p.input_per_mtok,
            output_per_mtok: p.output_per_mtok,
            cached_input_per_mtok: p.cached_input_per_mtok,
            effective_from: p.effective_from,
            source: PriceSource::Project.as_str().to_owned(),
        })
        .collect();
    project.sort_by(|a, b| (&a.model, a.effective_from).cmp(&(&b.model, b.effective_from)));
    let mut defaults: Vec<ModelPrice> = DEFAULT_PRICES
        .iter()
        .map(|d| ModelPrice {
            model: d.model.to_owned(),
            input_per_mtok: d.input,
            output_per_mtok: d.output,
            cached_input_per_mtok: d.cached_input,
            effective_from: d.from,
            source: PriceSource::Default.as_str().to_owned(),
        })
        .collect();
    defaults.sort_by(|a, b| (&a.model, a.effective_from).cmp(&(&b.model, b.effective_from)));
    project.extend(defaults);
    project
}

/// Check a `PUT /prices/{model}` body and make the entry (`effective_from` defaults to
/// `now`).
pub fn validate_price(
    model: &str,
    body: &SetModelPrice,
    now: OffsetDateTime,
) -> Result<PriceRecord, Error> {
    validate_model_name(model)?;
    let check = |field: &str, v: f64| {
        if v.is_finite() && v >= 0.0 {
            Ok(v)
        } else {
            Err(Error::rejected(
                ErrorCode::InvalidRequest,
                format!("{field} must be a finite number ≥ 0 (USD per million tokens), got {v}"),
            )
            .with_details(serde_json::json!({ "field": field })))
        }
    };
    Ok(PriceRecord {
        model: model.to_owned(),
        input_per_mtok: check("input_per_mtok", body.input_per_mtok)?,
        output_per_mtok: check("output_per_mtok", body.output_per_mtok)?,
        cached_input_per_mtok: body
            .cached_input_per_mtok
            .map(|v| check("cached_input_per_mtok", v))
            .transpose()?,
        effective_from: body.effective_from.unwrap_or(now),
    })
}

/// A model name in a price entry: 1..=200 characters, no control characters.
pub fn validate_model_name(model: &str) -> Result<(), Error> {
    let problem = if model.trim().is_empty() {
        Some("must not be empty")
    } else if model.chars().count() > MAX_MODEL_NAME_LEN {
        Some("must be at most 200 characters")
    } else if model.chars().any(char::is_control) {
        Some("must not contain control characters")
    } else {
        None
    };
    match problem {
        Some(p) => Err(
            Error::rejected(ErrorCode::InvalidRequest, format!("model name {p}"))
                .with_details(serde_json::json!({ "field": "model" })),
        ),
        None => Ok(()),
    }
}

/// One row of the shipped table.
#[derive(Debug, Clone, Copy)]
pub struct DefaultPrice {
    pub model: &'static str,
    pub input: f64,
    pub output: f64,
    pub cached_input: Option<f64>,
    pub from: OffsetDateTime,
}

const fn p(
    model: &'static str,
    input: f64,
    cached_input: Option<f64>,
    output: f64,
    from: OffsetDateTime,
) -> DefaultPrice {
    DefaultPrice {
        model,
        input,
        output,
        cached_input,
        from,
    }
}

// Effective dates: the model's release or the provider's price change.
const D_2023_11: OffsetDateTime = datetime!(2023-11-06 00:00 UTC);
const D_2024_01: OffsetDateTime = datetime!(2024-01-25 00:00 UTC);
const D_2024_03: OffsetDateTime = datetime!(2024-03-04 00:00 UTC);
const D_2024_04: OffsetDateTime = datetime!(2024-04-09 00:00 UTC);
const D_2024_05: OffsetDateTime = datetime!(2024-05-13 00:00 UTC);
const D_2024_06: OffsetDateTime = datetime!(2024-06-20 00:00 UTC);
const D_2024_07: OffsetDateTime = datetime!(2024-07-18 00:00 UTC);
const D_2024_07_23: OffsetDateTime = datetime!(2024-07-23 00:00 UTC);
const D_2024_10: OffsetDateTime = datetime!(2024-10-01 00:00 UTC);
const D_2024_10_02: OffsetDateTime = datetime!(2024-10-02 00:00 UTC);
const D_2024_10_22: OffsetDateTime = datetime!(2024-10-22 00:00 UTC);
const D_2024_11: OffsetDateTime = datetime!(2024-11-04 00:00 UTC);
const D_2024_12: OffsetDateTime = datetime!(2024-12-17 00:00 UTC);
const D_2024_12_26: OffsetDateTime = datetime!(2024-12-26 00:00 UTC);
const D_2025_01: OffsetDateTime = datetime!(2025-01-20 00:00 UTC);
const D_2025_01_31: OffsetDateTime = datetime!(2025-01-31 00:00 UTC);
const D_2025_02: OffsetDateTime = datetime!(2025-02-05 00:00 UTC);
const D_2025_02_24: OffsetDateTime = datetime!(2025-02-24 00:00 UTC);
const D_2025_03: OffsetDateTime = datetime!(2025-03-25 00:00 UTC);
const D_2025_04: OffsetDateTime = datetime!(2025-04-14 00:00 UTC);
const D_2025_04_16: OffsetDateTime = datetime!(2025-04-16 00:00 UTC);
const D_2025_05: OffsetDateTime = datetime!(2025-05-07 00:00 UTC);
const D_2025_05_22: OffsetDateTime = datetime!(2025-05-22 00:00 UTC);
const D_2025_06: OffsetDateTime = datetime!(2025-06-10 00:00 UTC);
const D_2025_06_17: OffsetDateTime = datetime!(2025-06-17 00:00 UTC);
const D_2025_07: OffsetDateTime = datetime!(2025-07-22 00:00 UTC);
const D_2025_08: OffsetDateTime = datetime!(2025-08-05 00:00 UTC);
const D_2025_08_07: OffsetDateTime = datetime!(2025-08-07 00:00 UTC);
const D_2025_09: OffsetDateTime = datetime!(2025-09-29 00:00 UTC);
const D_2025_10: OffsetDateTime = datetime!(2025-10-15 00:00 UTC);
const D_2025_11: OffsetDateTime = datetime!(2025-11-24 00:00 UTC);

/// The shipped default prices (USD per million tokens: input, cached input, output).
pub const DEFAULT_PRICES: &[DefaultPrice] = &[
    // OpenAI. gpt-4o's price dropped when the alias moved to the 2024-08-06 snapshot.
    p("gpt-4o", 5.00, None, 15.00, D_2024_05),
    p("gpt-4o", 2.50, Some(1.25), 10.00, D_2024_10_02),
    p("gpt-4o-2024-05-13", 5.00, None, 15.00, D_2024_05),
    p("gpt-4o-2024-08-06", 2.50, Some(1.25), 10.00, D_2024_10_02),
    p("gpt-4o-2024-11-20", 2.50, Some(1.25), 10.00, D_2024_10_02),
    p("gpt-4o-mini", 0.15, Some(0.075), 0.60, D_2024_07),
    p("gpt-4o-mini-2024-07-18", 0.15, Some(0.075), 0.60, D_2024_07),
    p("gpt-4.1", 2.00, Some(0.50), 8.00, D_2025_04),
    p("gpt-4.1-mini", 0.40, Some(0.10), 1.60, D_2025_04),
    p("gpt-4.1-nano", 0.10, Some(0.025), 0.40, D_2025_04),
    p("gpt-5", 1.25, Some(0.125), 10.00, D_2025_08_07),
    p("gpt-5-mini", 0.25, Some(0.025), 2.00, D_2025_08_07),
    p("gpt-5-nano", 0.05, Some(0.005), 0.40, D_2025_08_07),
    p("o1", 15.00, Some(7.50), 60.00, D_2024_12),
    p("o3-mini", 1.10, Some(0.55), 4.40, D_2025_01_31),
    // o3's price was cut by 80% on 2025-06-10.
    p("o3", 10.00, Some(2.50), 40.00, D_2025_04_16),
    p("o3", 2.00, Some(0.50), 8.00, D_2025_06),
    p("o4-mini", 1.10, Some(0.275), 4.40, D_2025_04_16),
    p("gpt-4-turbo", 10.00, None, 30.00, D_2024_04),
    p("gpt-3.5-turbo", 0.50, None, 1.50, D_2024_01),
    p("text-embedding-3-small", 0.02, None, 0.0, D_2024_01),
    p("text-embedding-3-large", 0.13, None, 0.0, D_2024_01),
    // Anthropic: API ids with and without the snapshot date; cached = cache reads.
    p("claude-3-haiku-20240307", 0.25, Some(0.03), 1.25, D_2024_03),
    p(
        "claude-3-opus-20240229",
        15.00,
        Some(1.50),
        75.00,
        D_2024_03,
    ),
    p("claude-3-opus-latest", 15.00, Some(1.50), 75.00, D_2024_03),
    p(
        "claude-3-5-sonnet-20240620",
        3.00,
        Some(0.30),
        15.00,
        D_2024_06,
    ),
    p(
        "claude-3-5-sonnet-20241022",
        3.00,
        Some(0.30),
        15.00,
        D_2024_10_22,
    ),
    p(
        "claude-3-5-sonnet-latest",
        3.00,
        Some(0.30),
        15.00,
        D_2024_06,
    ),
    p(
        "claude-3-5-haiku-20241022",
        0.80,
        Some(0.08),
        4.00,
        D_2024_11,
    ),
    p("claude-3-5-haiku-latest", 0.80, Some(0.08), 4.00, D_2024_11),
    p(
        "claude-3-7-sonnet-20250219",
        3.00,
        Some(0.30),
        15.00,
        D_2025_02_24,
    ),
    p(
        "claude-3-7-sonnet-latest",
        3.00,
        Some(0.30),
        15.00,
        D_2025_02_24,
    ),
    p(
        "claude-sonnet-4-20250514",
        3.00,
        Some(0.30),
        15.00,
        D_2025_05_22,
    ),
    p("claude-sonnet-4-0", 3.00, Some(0.30), 15.00, D_2025_05_22),
    p(
        "claude-opus-4-20250514",
        15.00,
        Some(1.50),
        75.00,
        D_2025_05_22,
    ),
    p("claude-opus-4-0", 15.00, Some(1.50), 75.00, D_2025_05_22),
    p(
        "claude-opus-4-1-20250805",
        15.00,
        Some(1.50),
        75.00,
        D_2025_08,
    ),
    p("claude-opus-4-1", 15.00, Some(1.50), 75.00, D_2025_08),
    p(
        "claude-sonnet-4-5-20250929",
        3.00,
        Some(0.30),
        15.00,
        D_2025_09,
    ),
    p("claude-sonnet-4-5", 3.00, Some(0.30), 15.00, D_2025_09),
    p(
        "claude-haiku-4-5-20251001",
        1.00,
        Some(0.10),
        5.00,
        D_2025_10,
    ),
    p("claude-haiku-4-5", 1.00, Some(0.10), 5.00, D_2025_10),
    p(
        "claude-opus-4-5-20251101",
        5.00,
        Some(0.50),
        25.00,
        D_2025_11,
    ),
    p("claude-opus-4-5", 5.00, Some(0.50), 25.00, D_2025_11),
    // Google Gemini (prompts up to 128k / 200k tokens). 1.5 Pro's price was cut on 2024-10-01.
    p("gemini-1.5-pro", 3.50, Some(0.875), 10.50, D_2024_05),
    p("gemini-1.5-pro", 1.25, Some(0.3125), 5.00, D_2024_10),
    p("gemini-1.5-flash", 0.075, Some(0.01875), 0.30, D_2024_10),
    p("gemini-1.5-flash-8b", 0.0375, Some(0.01), 0.15, D_2024_10),
    p("gemini-2.0-flash", 0.10, Some(0.025), 0.40, D_2025_02),
    p("gemini-2.0-flash-lite", 0.075, None, 0.30, D_2025_02),
    p("gemini-2.5-pro", 1.25, Some(0.31), 10.00, D_2025_03),
    p("gemini-2.5-flash", 0.30, Some(0.075), 2.50, D_2025_06_17),
    p("gemini-2.5-flash-lite", 0.10, Some(0.025), 0.40, D_2025_07),
    // Mistral (La Plateforme).
    p("mistral-large-latest", 2.00, None, 6.00, D_2024_07_23),
    p("mistral-medium-latest", 0.40, None, 2.00, D_2025_05),
    p("mistral-small-latest", 0.10, None, 0.30, D_2025_01),
    p("codestral-latest", 0.30, None, 0.90, D_2025_01),
    p("open-mistral-nemo", 0.15, None, 0.15, D_2024_07),
    p("ministral-8b-latest", 0.10, None, 0.10, D_2024_10),
    // Llama and open models on common hosts (Groq, Together), and DeepSeek's own API.
    p("llama-3.3-70b-versatile", 0.59, None, 0.79, D_2024_12),
    p("llama-3.1-8b-instant", 0.05, None, 0.08, D_2024_07_23),
    p(
        "meta-llama/Llama-3.3-70B-Instruct-Turbo",
        0.88,
        None,
        0.88,
        D_2024_12,
    ),
    p(
        "meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo",
        0.18,
        None,
        0.18,
        D_2024_07_23,
    ),
    p(
        "meta-llama/Meta-Llama-3.1-70B-Instruct-Turbo",
        0.88,
        None,
        0.88,
        D_2024_07_23,
    ),
    p(
        "meta-llama/Meta-Llama-3.1-405B-Instruct-Turbo",
        3.50,
        None,
        3.50,
        D_2024_07_23,
    ),
    p("deepseek-chat", 0.27, Some(0.07), 1.10, D_2024_12_26),
    p("deepseek-reasoner", 0.55, Some(0.14), 2.19, D_2025_01),
    p("gpt-4", 30.00, None, 60.00, D_2023_11),
];

fn defaults() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        Table::build(DEFAULT_PRICES.iter().map(|d| {
            (
                d.model.to_owned(),
                Price {
                    input_per_mtok: d.input,
                    output_per_mtok: d.output,
                    cached_input_per_mtok: d.cached_input,
                    effective_from: d.from,
                },
            )
        }))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(model: &str, input: f64, output: f64, from: OffsetDateTime) -> PriceRecord {
        PriceRecord {
            model: model.into(),
            input_per_mtok: input,
            output_per_mtok: output,
            cached_input_per_mtok: None,
            effective_from: from,
        }
    }

    const T: OffsetDateTime = datetime!(2025-09-01 12:00 UTC);

    /// (reported cost, model, time, input, cached, output, expected cost, expected source)
    type Case = (
        Option<f64>,
        &'static str,
        OffsetDateTime,
        u64,
        u64,
        u64,
        Option<f64>,
        CostSource,
    );

    #[test]
    fn event_costs() {
        let own = [
            record("gpt-4o", 1.0, 2.0, datetime!(2025-08-01 00:00 UTC)),
            record("my-model", 10.0, 20.0, datetime!(2025-01-01 00:00 UTC)),
            record("my-model", 5.0, 10.0, datetime!(2025-06-01 00:00 UTC)),
            record("future-only", 1.0, 1.0, datetime!(2030-01-01 00:00 UTC)),
        ];
        let book = PriceBook::new(&own);
        let cases: &[Case] = &[
            // Reported cost wins, even for an unknown model.
            (
                Some(0.5),
                "nobody-knows",
                T,
                10,
                0,
                10,
                Some(0.5),
                CostSource::Reported,
            ),
            (
                Some(0.0),
                "gpt-4o",
                T,
                10,
                0,
                10,
                Some(0.0),
                CostSource::Reported,
            ),
            // Default price: gpt-4o-mini 0.15 in / 0.075 cached / 0.60 out.
            (
                None,
                "gpt-4o-mini",
                T,
                1_000_000,
                0,
                1_000_000,
                Some(0.75),
                CostSource::Computed,
            ),
            (
                None,
                "gpt-4o-mini",
                T,
                1_000_000,
                400_000,
                0,
                Some(0.6 * 0.15 + 0.4 * 0.075),
                CostSource::Computed,
            ),
            // Case-insensitive fallback.
            (
                None,
                "GPT-4o-Mini",
                T,
                1_000_000,
                0,
                0,
                Some(0.15),
                CostSource::Computed,
            ),
            // The project's entry overrides the default from its effective date on...
            (
                None,
                "gpt-4o",
                T,
                1_000_000,
                0,
                1_000_000,
                Some(3.0),
                CostSource::Computed,
            ),
            // ...and before it the default applies (2.50 / 10.00 since 2024-10-02).
            (
                None,
                "gpt-4o",
                datetime!(2025-01-01 00:00 UTC),
                1_000_000,
                0,
                1_000_000,
                Some(12.5),
                CostSource::Computed,
            ),
            // A default that changed over time: gpt-4o before the cut.
            (
                None,
                "gpt-4o",
                datetime!(2024-06-01 00:00 UTC),
                1_000_000,
                0,
                0,
                Some(5.0),
                CostSource::Computed,
            ),
            // The project's own price changes over time.
            (
                None,
                "my-model",
                datetime!(2025-03-01 00:00 UTC),
                1_000_000,
                0,
                0,
                Some(10.0),
                CostSource::Computed,
            ),
            (
                None,
                "my-model",
                T,
                1_000_000,
                0,
                0,
                Some(5.0),
                CostSource::Computed,
            ),
            (
                None,
                "MY-MODEL",
                T,
                0,
                0,
                1_000_000,
                Some(10.0),
                CostSource::Computed,
            ),
            // Unknown models and prices not yet in force are unpriced: no cost, never zero.
            (
                None,
                "nobody-knows",
                T,
                10,
                0,
                10,
                None,
                CostSource::Unpriced,
            ),
            (None, "", T, 10, 0, 10, None, CostSource::Unpriced),
            (
                None,
                "my-model",
                datetime!(2024-01-01 00:00 UTC),
                10,
                0,
                10,
                None,
                CostSource::Unpriced,
            ),
            (
                None,
                "future-only",
                T,
                10,
                0,
                10,
                None,
                CostSource::Unpriced,
            ),
            (
                None,
                "gpt-4.1",
                datetime!(2025-01-01 00:00 UTC),
                10,
                0,
                10,
                None,
                CostSource::Unpriced,
            ),
        ];
        for &(reported, model, at, i, c, o, want, source) in cases {
            let (cost, got_source) = book.event_cost(reported, model, at, i, c, o);
            assert_eq!(got_source, source, "{model} at {at}");
            match (cost, want) {
                (Some(a), Some(b)) => assert!((a - b).abs() < 1e-12, "{model}: {a} vs {b}"),
                (a, b) => assert_eq!(a, b, "{model} at {at}"),
            }
        }
    }

    #[test]
    fn price_sources_are_reported() {
        let book = PriceBook::new(&[record("o3", 1.0, 1.0, datetime!(2025-01-01 00:00 UTC))]);
        assert_eq!(book.price("o3", T).map(|p| p.1), Some(PriceSource::Project));
        assert_eq!(
            book.price("o4-mini", T).map(|p| p.1),
            Some(PriceSource::Default)
        );
        let defaults_only = PriceBook::default();
        assert_eq!(
            defaults_only.price("o3", T).map(|p| p.0.input_per_mtok),
            Some(2.0)
        );
        assert_eq!(
            defaults_only
                .price("o3", datetime!(2025-05-01 00:00 UTC))
                .map(|p| p.0.input_per_mtok),
            Some(10.0)
        );
    }

    #[test]
    fn the_default_table_is_sane() {
        for d in DEFAULT_PRICES {
            assert!(d.input >= 0.0 && d.output >= 0.0, "{}", d.model);
            if let Some(c) = d.cached_input {
                assert!(c <= d.input, "{}: cached dearer than input", d.model);
            }
            assert!(validate_model_name(d.model).is_ok());
        }
        let list = price_list(&[record("x", 1.0, 1.0, T)]);
        assert_eq!(list[0].source, "project");
        assert_eq!(list.len(), DEFAULT_PRICES.len() + 1);
    }

    #[test]
    fn price_entries_are_validated() {
        let body = |i: f64, o: f64, c: Option<f64>| SetModelPrice {
            input_per_mtok: i,
            output_per_mtok: o,
            cached_input_per_mtok: c,
            effective_from: None,
        };
        let ok = validate_price("m", &body(1.0, 2.0, Some(0.5)), T).unwrap();
        assert_eq!(ok.effective_from, T);
        let bad: &[(&str, SetModelPrice, &str)] = &[
            (
                "m",
                body(-1.0, 2.0, None),
                "input_per_mtok must be a finite number",
            ),
            (
                "m",
                body(1.0, f64::NAN, None),
                "output_per_mtok must be a finite number",
            ),
            (
                "m",
                body(1.0, 1.0, Some(f64::INFINITY)),
                "cached_input_per_mtok must be",
            ),
            ("", body(1.0, 1.0, None), "model name must not be empty"),
            ("a\nb", body(1.0, 1.0, None), "control characters"),
        ];
        let long = "x".repeat(201);
        for (model, b, msg) in
            bad.iter()
                .chain([&(long.as_str(), body(1.0, 1.0, None), "at most 200")])
        {
            let err = validate_price(model, b, T).unwrap_err();
            assert_eq!(err.code(), ErrorCode::InvalidRequest);
            assert!(err.to_string().contains(msg), "{err}");
        }
    }
}
