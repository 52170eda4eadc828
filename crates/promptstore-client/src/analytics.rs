//! Typed calls of the analytics routes: event ingestion (JSON and NDJSON), late scores and
//! feedback, the aggregate queries, prices, alert rules and the Prometheus text
//! (docs/http-api.md, "Analytics routes").

use promptstore_types::{
    AlertEvent, AlertRule, AlertRuleIn, AttachToEvent, Event, EventIn, IngestReport, ModelPrice,
    Page, Recommendation, SetModelPrice, Summary, TimeSeries, TopEntry, VersionComparison,
};
use reqwest::Method;
use time::OffsetDateTime;

use crate::client::{Client, encode_body};
use crate::encode::{path_segment, query_string};
use crate::error::ClientError;
use crate::query::{PageRequest, rfc3339};

/// The content type of a newline-delimited batch of events.
pub const NDJSON: &str = "application/x-ndjson";

/// A time range and the filters every analytics query takes. Unset = the server's default
/// (the last 24 hours; every prompt, version, label, model and experiment).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AnalyticsQuery {
    pub from: Option<OffsetDateTime>,
    pub to: Option<OffsetDateTime>,
    pub prompt: Option<String>,
    pub version: Option<u32>,
    pub label: Option<String>,
    pub model: Option<String>,
    pub experiment: Option<String>,
}

impl AnalyticsQuery {
    /// The range and the filters as query pairs.
    fn pairs(&self) -> Result<Vec<(&'static str, Option<String>)>, ClientError> {
        Ok(vec![
            ("from", self.from.map(rfc3339).transpose()?),
            ("to", self.to.map(rfc3339).transpose()?),
            ("prompt", self.prompt.clone()),
            ("version", self.version.map(|v| v.to_string())),
            ("label", self.label.clone()),
            ("model", self.model.clone()),
            ("experiment", self.experiment.clone()),
        ])
    }

    /// Only the range, for queries that take no filters.
    fn range_pairs(&self) -> Result<Vec<(&'static str, Option<String>)>, ClientError> {
        Ok(vec![
            ("from", self.from.map(rfc3339).transpose()?),
            ("to", self.to.map(rfc3339).transpose()?),
        ])
    }
}

/// Bucket size of a time series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    Hour,
    Day,
}

impl Interval {
    pub fn as_str(self) -> &'static str {
        match self {
            Interval::Hour => "hour",
            Interval::Day => "day",
        }
    }
}

/// What a top list ranks prompts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopBy {
    Use,
    Cost,
    ErrorRate,
    WorstFeedback,
}

impl TopBy {
    pub fn as_str(self) -> &'static str {
        match self {
            TopBy::Use => "use",
            TopBy::Cost => "cost",
            TopBy::ErrorRate => "error_rate",
            TopBy::WorstFeedback => "worst_feedback",
        }
    }
}

fn event_path(id: i64) -> String {
    format!("/api/v1/events/{id}")
}

fn price_path(model: &str) -> Result<String, ClientError> {
    Ok(format!("/api/v1/prices/{}", path_segment("model", model)?))
}

fn alert_path(id: i64) -> String {
    format!("/api/v1/alerts/{id}")
}

impl Client {
    // --- events ---------------------------------------------------------------------

    /// Records a batch of events. Refused items are listed in `errors` (with their index)
    /// while the others are stored; the answer comes once the batch is durable.
    pub async fn ingest_events(&self, events: &[EventIn]) -> Result<IngestReport, ClientError> {
        self.send_json(Method::POST, "/api/v1/events", &events)
            .await
    }

    /// Records a batch given as NDJSON (one event per line); a line that is not an event is
    /// a refused item whose index is its line number minus one.
    pub async fn ingest_ndjson(&self, body: Vec<u8>) -> Result<IngestReport, ClientError> {
        self.call_with_body(Method::POST, "/api/v1/events", &[], Some((NDJSON, body)))
            .await?
            .ok()?
            .decode("/api/v1/events")
    }

    /// One page of raw events, newest first.
    pub async fn list_events(
        &self,
        query: &AnalyticsQuery,
        page: &PageRequest,
    ) -> Result<Page<Event>, ClientError> {
        let mut pairs = query.pairs()?;
        pairs.extend(page.pairs());
        self.get_json(&format!("/api/v1/events{}", query_string(pairs)))
            .await
    }

    /// One event by its server id.
    pub async fn get_event(&self, id: i64) -> Result<Event, ClientError> {
        self.get_json(&event_path(id)).await
    }

    /// Attaches late scores and/or feedback to an event named by its server id.
    pub async fn attach_to_event(
        &self,
        id: i64,
        request: &AttachToEvent,
    ) -> Result<Event, ClientError> {
        self.send_json(Method::POST, &format!("{}/attach", event_path(id)), request)
            .await
    }

    /// Attaches late scores and/or feedback to an event named by the client's event id.
    pub async fn attach_by_client_id(
        &self,
        client_id: &str,
        request: &AttachToEvent,
    ) -> Result<Event, ClientError> {
        let path = format!(
            "/api/v1/events/by-client-id/{}/attach",
            path_segment("client event id", client_id)?
        );
        self.send_json(Method::POST, &path, request).await
    }

    // --- aggregate queries ----------------------------------------------------------

    /// Metrics of the range, broken down by `group_by` (any of `prompt`, `version`,
    /// `label`, `model`, `arm`) when it is not empty.
    pub async fn summary(
        &self,
        query: &AnalyticsQuery,
        group_by: &[&str],
    ) -> Result<Summary, ClientError> {
        let mut pairs = query.pairs()?;
        pairs.push((
            "group_by",
            (!group_by.is_empty()).then(|| group_by.join(",")),
        ));
        self.get_json(&format!("/api/v1/analytics/summary{}", query_string(pairs)))
            .await
    }

    /// Metrics per hour or day; `utc_offset` (`+02:00`, whole hours) aligns the buckets.
    pub async fn timeseries(
        &self,
        query: &AnalyticsQuery,
        interval: Interval,
        utc_offset: Option<&str>,
    ) -> Result<TimeSeries, ClientError> {
        let mut pairs = query.pairs()?;
        pairs.push(("interval", Some(interval.as_str().to_string())));
        pairs.push(("utc_offset", utc_offset.map(str::to_string)));
        self.get_json(&format!(
            "/api/v1/analytics/timeseries{}",
            query_string(pairs)
        ))
        .await
    }

    /// How version `b` of `prompt` differs from version `a`, and whether beyond noise.
    pub async fn compare_versions(
        &self,
        prompt: &str,
        a: u32,
        b: u32,
        range: &AnalyticsQuery,
    ) -> Result<VersionComparison, ClientError> {
        let mut pairs = vec![
            ("prompt", Some(prompt.to_string())),
            ("a", Some(a.to_string())),
            ("b", Some(b.to_string())),
        ];
        pairs.extend(range.range_pairs()?);
        self.get_json(&format!("/api/v1/analytics/compare{}", query_string(pairs)))
            .await
    }

    /// The prompts ranked by use, cost, error rate or negative feedback.
    pub async fn top(
        &self,
        by: TopBy,
        limit: Option<u32>,
        range: &AnalyticsQuery,
    ) -> Result<Vec<TopEntry>, ClientError> {
        let mut pairs = vec![
            ("by", Some(by.as_str().to_string())),
            ("limit", limit.map(|l| l.to_string())),
        ];
        pairs.extend(range.range_pairs()?);
        self.get_json(&format!("/api/v1/analytics/top{}", query_string(pairs)))
            .await
    }

    /// Rule-based suggestions over the range, each with its rationale and numbers.
    pub async fn recommendations(
        &self,
        range: &AnalyticsQuery,
    ) -> Result<Vec<Recommendation>, ClientError> {
        self.get_json(&format!(
            "/api/v1/analytics/recommendations{}",
            query_string(range.range_pairs()?)
        ))
        .await
    }

    // --- prices ---------------------------------------------------------------------

    /// The project's price entries and the shipped defaults.
    pub async fn list_prices(&self) -> Result<Vec<ModelPrice>, ClientError> {
        self.get_json("/api/v1/prices").await
    }

    /// Adds a price entry for `model` (admin).
    pub async fn set_price(
        &self,
        model: &str,
        request: &SetModelPrice,
    ) -> Result<ModelPrice, ClientError> {
        self.send_json(Method::PUT, &price_path(model)?, request)
            .await
    }

    /// Removes the project's entries for `model` (admin); the shipped default, if any,
    /// applies again.
    pub async fn delete_price(&self, model: &str) -> Result<(), ClientError> {
        self.call(Method::DELETE, &price_path(model)?, &[], None)
            .await?
            .ok()?;
        Ok(())
    }

    // --- alerts ---------------------------------------------------------------------

    /// Every alert rule of the project with its current state.
    pub async fn list_alerts(&self) -> Result<Vec<AlertRule>, ClientError> {
        self.get_json("/api/v1/alerts").await
    }

    pub async fn create_alert(&self, rule: &AlertRuleIn) -> Result<AlertRule, ClientError> {
        self.send_json(Method::POST, "/api/v1/alerts", rule).await
    }

    pub async fn get_alert(&self, id: i64) -> Result<AlertRule, ClientError> {
        self.get_json(&alert_path(id)).await
    }

    pub async fn update_alert(
        &self,
        id: i64,
        rule: &AlertRuleIn,
    ) -> Result<AlertRule, ClientError> {
        self.send_json(Method::PUT, &alert_path(id), rule).await
    }

    pub async fn delete_alert(&self, id: i64) -> Result<(), ClientError> {
        self.call(Method::DELETE, &alert_path(id), &[], None)
            .await?
            .ok()?;
        Ok(())
    }

    /// Firing/resolved history, newest first; `rule = None` for every rule.
    pub async fn alert_events(
        &self,
        rule: Option<i64>,
        page: &PageRequest,
    ) -> Result<Page<AlertEvent>, ClientError> {
        let [cursor, limit] = page.pairs();
        let query = query_string([("rule", rule.map(|r| r.to_string())), cursor, limit]);
        self.get_json(&format!("/api/v1/alerts/events{query}"))
            .await
    }

    // --- server metrics -------------------------------------------------------------

    /// The server's Prometheus text (any key of viewer role or higher).
    pub async fn metrics_text(&self) -> Result<String, ClientError> {
        let answer = self.call(Method::GET, "/metrics", &[], None).await?.ok()?;
        String::from_utf8(answer.body)
            .map_err(|e| ClientError::Decode(format!("/metrics is not UTF-8 text: {e}")))
    }
}

/// Encodes events as an NDJSON body (one JSON object per line).
pub fn ndjson_body(events: &[EventIn]) -> Result<Vec<u8>, ClientError> {
    let mut body = Vec::new();
    for event in events {
        body.extend(encode_body(event)?);
        body.push(b'\n');
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn analytics_queries_encode_range_and_filters() {
        let query = AnalyticsQuery {
            from: Some(time::macros::datetime!(2026-01-02 03:00:00 UTC)),
            prompt: Some("support/triage".into()),
            version: Some(3),
            ..AnalyticsQuery::default()
        };
        assert_eq!(
            query_string(query.pairs().unwrap()),
            "?from=2026-01-02T03%3A00%3A00Z&prompt=support%2Ftriage&version=3"
        );
        assert_eq!(
            query_string(query.range_pairs().unwrap()),
            "?from=2026-01-02T03%3A00%3A00Z"
        );
    }

    #[test]
    fn price_paths_encode_model_names() {
        assert_eq!(
            price_path("openai/gpt-4o").unwrap(),
            "/api/v1/prices/openai%2Fgpt-4o"
        );
        assert!(price_path("").is_err());
    }

    #[test]
    fn ndjson_is_one_object_per_line() {
        let events = vec![
            EventIn {
                prompt: "a".into(),
                ..EventIn::default()
            },
            EventIn {
                prompt: "b".into(),
                ..EventIn::default()
            },
        ];
        let body = String::from_utf8(ndjson_body(&events).unwrap()).unwrap();
        assert_eq!(body, "{\"prompt\":\"a\"}\n{\"prompt\":\"b\"}\n");
    }
}
