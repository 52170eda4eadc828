//! Builders shared by the analytics tests: events, prompts with versions, time ranges.

use promptstore_client::AnalyticsQuery;
use promptstore_client::types::{EventIn, Metrics};
use time::{Duration, OffsetDateTime};

use crate::harness::*;

/// An event of `prompt` with nothing else set (the server fills in the rest).
pub fn ev(prompt: &str) -> EventIn {
    EventIn {
        prompt: prompt.to_owned(),
        ..EventIn::default()
    }
}

/// An event with a client id.
pub fn ev_id(prompt: &str, id: &str) -> EventIn {
    EventIn {
        id: Some(id.to_owned()),
        ..ev(prompt)
    }
}

/// A server with prompts `names`, each with `versions` versions.
pub async fn server_with(names: &[&str], versions: u32) -> TestServer {
    let s = TestServer::start().await;
    add_prompts(&s, names, versions).await;
    s
}

pub async fn add_prompts(s: &TestServer, names: &[&str], versions: u32) {
    for name in names {
        s.admin
            .create_prompt(&new_prompt(name, text("v1 of the prompt"), vec![]))
            .await
            .unwrap();
        for n in 2..=versions {
            s.admin
                .create_version(
                    name,
                    &new_version(text(&format!("v{n} of the prompt")), vec![]),
                )
                .await
                .unwrap();
        }
    }
}

/// A query over the last `hours` hours (to now), optionally for one prompt.
pub fn last_hours(hours: i64, prompt: Option<&str>) -> AnalyticsQuery {
    let now = OffsetDateTime::now_utc();
    AnalyticsQuery {
        from: Some(now - Duration::hours(hours)),
        to: Some(now + Duration::minutes(1)),
        prompt: prompt.map(str::to_owned),
        ..AnalyticsQuery::default()
    }
}

/// The summary metrics of the last 24 hours.
pub async fn summary_now(s: &promptstore_client::Client, prompt: Option<&str>) -> Metrics {
    s.summary(&last_hours(24, prompt), &[])
        .await
        .unwrap()
        .metrics
}

pub fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}
