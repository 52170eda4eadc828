//! `promptstore stats`: the usage summary of a time range as a table — one row overall, or
//! one row per group with `--group-by`, then the total.

use std::collections::BTreeMap;

use promptstore_client::AnalyticsQuery;
use promptstore_client::types::{Metrics, Summary};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use super::connect;
use crate::cli::StatsArgs;
use crate::failure::Failure;
use crate::output::{Table, print_json, when};

/// Key columns a breakdown can have, in display order (the API adds `prompt` to `version`
/// and `experiment` to `arm`, since those only mean something within their parent).
const KEY_COLUMNS: &[&str] = &["prompt", "version", "label", "model", "experiment", "arm"];

const METRIC_COLUMNS: &[&str] = &[
    "count",
    "success",
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "tokens in",
    "tokens out",
    "cost usd",
    "unpriced",
    "scores",
    "feedback",
];

/// A time given on the command line: RFC 3339, or an age before `now` such as `7d`, `24h`,
/// `90m`.
pub fn parse_when(flag: &str, raw: &str, now: OffsetDateTime) -> Result<OffsetDateTime, Failure> {
    let text = raw.trim();
    if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(t);
    }
    let age = text
        .char_indices()
        .last()
        .and_then(|(i, unit)| {
            let n: i64 = text[..i].parse().ok().filter(|n| *n >= 0)?;
            match unit {
                'd' => Some(Duration::days(n)),
                'h' => Some(Duration::hours(n)),
                'm' => Some(Duration::minutes(n)),
                _ => None,
            }
        })
        .and_then(|age| now.checked_sub(age));
    age.ok_or_else(|| {
        Failure::usage(format!(
            "invalid {flag} `{raw}`: use an RFC 3339 time (2026-01-02T14:00:00Z) or an age such as 7d, 24h, 90m"
        ))
    })
}

pub async fn run(args: StatsArgs) -> Result<(), Failure> {
    let now = OffsetDateTime::now_utc();
    let query = AnalyticsQuery {
        from: args
            .from
            .as_deref()
            .map(|f| parse_when("--from", f, now))
            .transpose()?,
        to: args
            .to
            .as_deref()
            .map(|t| parse_when("--to", t, now))
            .transpose()?,
        prompt: args.prompt.clone(),
        version: args.version,
        label: args.label.clone(),
        model: args.model.clone(),
        experiment: None,
    };
    let group_by: Vec<&str> = args
        .group_by
        .iter()
        .map(|g| g.trim())
        .filter(|g| !g.is_empty())
        .collect();
    let api = connect(&args.client)?;
    let summary = api.summary(&query, &group_by).await?;
    if args.client.json {
        return Ok(print_json(&summary)?);
    }
    out!("{}", render(&summary, args.prompt.as_deref()));
    Ok(())
}

/// The whole printed report.
fn render(summary: &Summary, prompt: Option<&str>) -> String {
    let scope = prompt.map_or_else(|| "all prompts".to_owned(), |p| format!("prompt {p}"));
    let mut out = format!("{scope}, {} to {}\n", when(summary.from), when(summary.to));
    if summary.metrics.count == 0 {
        out.push_str("no events in this range\n");
        return out;
    }
    let keys: Vec<&'static str> = KEY_COLUMNS
        .iter()
        .copied()
        .filter(|k| summary.groups.iter().any(|g| g.key.contains_key(*k)))
        .collect();
    let mut header = keys.clone();
    header.extend_from_slice(METRIC_COLUMNS);
    let mut table = Table::new(&header);
    for group in &summary.groups {
        let mut row: Vec<String> = keys
            .iter()
            .map(|k| match group.key.get(*k).map(String::as_str) {
                None | Some("") => "-".to_owned(),
                Some(v) => v.to_owned(),
            })
            .collect();
        row.extend(metric_cells(&group.metrics));
        table.row(row);
    }
    if !summary.groups.is_empty() && !keys.is_empty() {
        let mut total = vec![String::new(); keys.len()];
        total[0] = "TOTAL".to_owned();
        total.extend(metric_cells(&summary.metrics));
        table.row(total);
    } else {
        table.row(metric_cells(&summary.metrics));
    }
    out.push_str(&table.render());
    let m = &summary.metrics;
    if !m.unpriced_models.is_empty() {
        out.push_str(&format!(
            "unpriced models (cost unknown, not zero): {} — add a price with `promptstore prices set`\n",
            m.unpriced_models.join(", ")
        ));
    }
    if !m.error_types.is_empty() {
        let errors: Vec<String> = m
            .error_types
            .iter()
            .map(|(kind, n)| format!("{kind} {n}"))
            .collect();
        out.push_str(&format!("errors by type: {}\n", errors.join(", ")));
    }
    out.push_str(&format!(
        "percentiles within {:.1}% of the exact values\n",
        m.latency_ms.relative_error * 100.0
    ));
    out
}

fn ms(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:.0}"))
}

fn metric_cells(m: &Metrics) -> Vec<String> {
    let success = m
        .success_rate
        .map_or_else(|| "-".to_owned(), |r| format!("{:.1}%", r * 100.0));
    let cost = if m.priced_events == 0 {
        "-".to_owned()
    } else {
        format!("{:.4}", m.cost)
    };
    vec![
        m.count.to_string(),
        success,
        ms(m.latency_ms.p50),
        ms(m.latency_ms.p95),
        ms(m.latency_ms.p99),
        m.input_tokens.to_string(),
        m.output_tokens.to_string(),
        cost,
        m.unpriced_events.to_string(),
        scores(&m.scores),
        feedback(m),
    ]
}

fn scores(scores: &BTreeMap<String, promptstore_client::types::ScoreSummary>) -> String {
    if scores.is_empty() {
        return "-".to_owned();
    }
    scores
        .iter()
        .map(|(name, s)| format!("{name}={:.3} (n={})", s.mean, s.count))
        .collect::<Vec<_>>()
        .join(" ")
}

fn feedback(m: &Metrics) -> String {
    let f = &m.feedback;
    let mut parts = Vec::new();
    if f.thumbs_up + f.thumbs_down > 0 {
        parts.push(format!("up {} / down {}", f.thumbs_up, f.thumbs_down));
    }
    if let Some(mean) = f.mean_rating {
        let n: u64 = f.ratings.iter().sum();
        parts.push(format!("rating {mean:.2} (n={n})"));
    }
    if parts.is_empty() {
        "-".to_owned()
    } else {
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use promptstore_client::types::{GroupMetrics, Metrics};
    use time::macros::datetime;

    use super::*;

    #[test]
    fn times_are_rfc3339_or_ages() {
        let now = datetime!(2026-01-10 12:00 UTC);
        let check = |raw: &str, expected: OffsetDateTime| {
            assert_eq!(parse_when("--from", raw, now).unwrap(), expected, "{raw}");
        };
        check("2026-01-02T03:04:05Z", datetime!(2026-01-02 03:04:05 UTC));
        check("7d", datetime!(2026-01-03 12:00 UTC));
        check("24h", datetime!(2026-01-09 12:00 UTC));
        check("90m", datetime!(2026-01-10 10:30 UTC));
        for bad in ["", "yesterday", "7w", "-3d", "d", "2026-01-02"] {
            let err = parse_when("--from", bad, now).unwrap_err();
            assert!(err.one_line().contains("--from"), "{bad}");
        }
    }

    #[test]
    fn grouped_reports_have_key_columns_and_a_total() {
        let metrics = |count: u64| Metrics {
            count,
            successes: count,
            success_rate: Some(1.0),
            ..Metrics::default()
        };
        let group = |version: &str, count: u64| GroupMetrics {
            key: [
                ("prompt".to_owned(), "a".to_owned()),
                ("version".to_owned(), version.to_owned()),
            ]
            .into(),
            metrics: metrics(count),
        };
        let summary = Summary {
            from: datetime!(2026-01-01 00:00 UTC),
            to: datetime!(2026-01-02 00:00 UTC),
            metrics: metrics(5),
            groups: vec![group("2", 3), group("1", 2)],
        };
        let text = render(&summary, Some("a"));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "prompt a, 2026-01-01T00:00:00Z to 2026-01-02T00:00:00Z"
        );
        assert!(
            lines[1].starts_with("PROMPT  VERSION  COUNT  SUCCESS"),
            "{text}"
        );
        assert!(
            lines[2].starts_with("a       2        3      100.0%"),
            "{text}"
        );
        assert!(lines[4].starts_with("TOTAL            5"), "{text}");
        let empty = Summary {
            metrics: Metrics::default(),
            groups: vec![],
            ..summary
        };
        assert!(render(&empty, None).contains("no events in this range"));
    }
}
