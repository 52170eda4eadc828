//! The aggregate queries: summary and breakdowns, time series by hour and day in UTC
//! offsets, version comparison, top lists, recommendations, and their parameter errors.

use promptstore_client::types::EventIn;
use promptstore_client::{AnalyticsQuery, ErrorCode, Interval, TopBy};
use time::{Date, Duration, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

use crate::analytics_support::*;
use crate::harness::*;

/// Three days ago (UTC), at `h:m`.
fn day_at(day: Date, h: u8, m: u8) -> OffsetDateTime {
    PrimitiveDateTime::new(day, Time::from_hms(h, m, 0).unwrap()).assume_utc()
}

fn at(prompt: &str, t: OffsetDateTime) -> EventIn {
    EventIn {
        timestamp: Some(t),
        ..ev(prompt)
    }
}

fn between(from: OffsetDateTime, to: OffsetDateTime) -> AnalyticsQuery {
    AnalyticsQuery {
        from: Some(from),
        to: Some(to),
        ..AnalyticsQuery::default()
    }
}

#[tokio::test]
async fn summary_breakdowns_and_percentiles() {
    let s = server_with(&["a", "b"], 2).await;
    let mut batch = Vec::new();
    for i in 1..=100 {
        batch.push(EventIn {
            version: Some(if i <= 60 { 1 } else { 2 }),
            model: Some(if i <= 60 { "m1" } else { "m2" }.to_owned()),
            latency_ms: Some(f64::from(i)),
            input_tokens: Some(10),
            output_tokens: Some(5),
            success: Some(i % 10 != 0),
            error_type: (i % 10 == 0).then(|| "timeout".to_owned()),
            ..ev("a")
        });
    }
    batch.push(ev("b"));
    let report = s.admin.ingest_events(&batch).await.unwrap();
    assert_eq!(report.accepted, 101);

    let summary = s
        .admin
        .summary(&last_hours(24, Some("a")), &[])
        .await
        .unwrap();
    let m = &summary.metrics;
    assert_eq!((m.count, m.successes, m.errors), (100, 90, 10));
    assert_eq!(m.success_rate, Some(0.9));
    assert_eq!(m.error_types["timeout"], 10);
    assert_eq!((m.input_tokens, m.output_tokens), (1000, 500));
    let latency = &m.latency_ms;
    assert_eq!(latency.count, 100);
    assert!(latency.relative_error > 0.0 && latency.relative_error <= 0.05);
    // Exact p50 = 50, p95 = 95, p99 = 99; the sketch is within its stated relative error
    // (and one rank).
    for (got, exact) in [
        (latency.p50, 50.0),
        (latency.p95, 95.0),
        (latency.p99, 99.0),
    ] {
        let got = got.unwrap();
        let tolerance = exact * latency.relative_error + 1.0;
        assert!((got - exact).abs() <= tolerance, "{got} vs {exact}");
    }
    assert_eq!((latency.min, latency.max), (Some(1.0), Some(100.0)));
    assert!(summary.groups.is_empty());
    // The range is whole hours.
    assert_eq!(summary.from.minute(), 0);
    assert_eq!(summary.to.minute(), 0);

    let grouped = s
        .admin
        .summary(&last_hours(24, None), &["version", "model"])
        .await
        .unwrap();
    assert_eq!(grouped.metrics.count, 101);
    let keys: Vec<(String, String, String, u64)> = grouped
        .groups
        .iter()
        .map(|g| {
            (
                g.key["prompt"].clone(),
                g.key["version"].clone(),
                g.key["model"].clone(),
                g.metrics.count,
            )
        })
        .collect();
    assert_eq!(
        keys,
        vec![
            ("a".into(), "1".into(), "m1".into(), 60),
            ("a".into(), "2".into(), "m2".into(), 40),
            ("b".into(), "2".into(), String::new(), 1),
        ]
    );

    // Filters: one version of one prompt.
    let v2 = AnalyticsQuery {
        version: Some(2),
        ..last_hours(24, Some("a"))
    };
    assert_eq!(s.admin.summary(&v2, &[]).await.unwrap().metrics.count, 40);
}

#[tokio::test]
async fn time_series_by_hour_and_by_day_in_utc_offsets() {
    let s = server_with(&["p"], 1).await;
    let day = (OffsetDateTime::now_utc() - Duration::days(3)).date();
    let next = day.next_day().unwrap();
    s.admin
        .ingest_events(&[
            at("p", day_at(day, 10, 15)),
            at("p", day_at(day, 10, 45)),
            at("p", day_at(day, 11, 5)),
            // 23:30 and 00:30 the next day at +02:00: one UTC day, two local days.
            at("p", day_at(day, 21, 30)),
            at("p", day_at(day, 22, 30)),
        ])
        .await
        .unwrap();

    let hours = s
        .admin
        .timeseries(
            &between(day_at(day, 10, 0), day_at(day, 12, 0)),
            Interval::Hour,
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        (hours.interval.as_str(), hours.utc_offset.as_str()),
        ("hour", "+00:00")
    );
    let counts: Vec<(OffsetDateTime, u64)> = hours
        .buckets
        .iter()
        .map(|b| (b.start, b.metrics.count))
        .collect();
    assert_eq!(
        counts,
        vec![(day_at(day, 10, 0), 2), (day_at(day, 11, 0), 1)]
    );

    let utc_days = s
        .admin
        .timeseries(
            &between(day_at(day, 0, 0), day_at(next.next_day().unwrap(), 0, 0)),
            Interval::Day,
            Some("Z"),
        )
        .await
        .unwrap();
    let counts: Vec<u64> = utc_days.buckets.iter().map(|b| b.metrics.count).collect();
    assert_eq!(counts, vec![5, 0]);

    let plus_two = UtcOffset::from_hms(2, 0, 0).unwrap();
    let local_midnight =
        |d: Date| PrimitiveDateTime::new(d, Time::MIDNIGHT).assume_offset(plus_two);
    let local_days = s
        .admin
        .timeseries(
            &between(
                local_midnight(day),
                local_midnight(next.next_day().unwrap()),
            ),
            Interval::Day,
            Some("+02:00"),
        )
        .await
        .unwrap();
    assert_eq!(local_days.utc_offset, "+02:00");
    let buckets: Vec<(OffsetDateTime, UtcOffset, u64)> = local_days
        .buckets
        .iter()
        .map(|b| (b.start, b.start.offset(), b.metrics.count))
        .collect();
    assert_eq!(
        buckets,
        vec![
            (local_midnight(day), plus_two, 4),
            (local_midnight(next), plus_two, 1),
        ]
    );

    // Half-hour offsets cannot be answered from hourly cells: refused, naming the parameter.
    let (status, body) = api_error(
        s.admin
            .timeseries(
                &between(day_at(day, 0, 0), day_at(next, 0, 0)),
                Interval::Day,
                Some("+05:30"),
            )
            .await,
    );
    assert_eq!((status, body.code), (400, ErrorCode::InvalidRequest));
    assert_eq!(body.details["field"], "utc_offset", "{body}");
}

#[tokio::test]
async fn query_parameters_are_validated_by_name() {
    let s = server_with(&["p"], 1).await;
    for (path, field) in [
        ("/api/v1/analytics/summary?from=yesterday", "from"),
        ("/api/v1/analytics/summary?to=2026-13-01T00:00:00Z", "to"),
        (
            "/api/v1/analytics/summary?group_by=prompt,colour",
            "group_by",
        ),
        ("/api/v1/analytics/summary?version=two", "version"),
        (
            "/api/v1/analytics/summary?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z",
            "from",
        ),
        ("/api/v1/analytics/timeseries?interval=week", "interval"),
        (
            "/api/v1/analytics/timeseries?utc_offset=%2B05%3A30",
            "utc_offset",
        ),
        (
            "/api/v1/analytics/timeseries?utc_offset=%2B15%3A00",
            "utc_offset",
        ),
        ("/api/v1/analytics/compare?a=1&b=2", "prompt"),
        ("/api/v1/analytics/compare?prompt=p&b=2", "a"),
        ("/api/v1/analytics/compare?prompt=p&a=1&b=x", "b"),
        ("/api/v1/analytics/top?by=popularity", "by"),
        ("/api/v1/analytics/top?limit=0", "limit"),
        ("/api/v1/analytics/top?limit=1000", "limit"),
        ("/api/v1/analytics/recommendations?to=soon", "to"),
        ("/api/v1/events?from=nope", "from"),
    ] {
        let r = s
            .admin
            .raw(promptstore_client::Method::GET, path, &[], None)
            .await
            .unwrap();
        assert_eq!(r.status, 400, "{path}: {}", r.text());
        let body = r.error().unwrap();
        assert_eq!(body.code, ErrorCode::InvalidRequest, "{path}");
        assert_eq!(body.details["field"], field, "{path}: {body}");
    }
}

#[tokio::test]
async fn comparison_shows_a_significant_difference_on_clearly_different_data() {
    let s = server_with(&["cmp"], 2).await;
    let mut batch = Vec::new();
    for i in 0..200u32 {
        let v2 = i % 2 == 1;
        let failed = if v2 { i % 5 < 2 } else { i % 40 == 0 };
        batch.push(EventIn {
            version: Some(if v2 { 2 } else { 1 }),
            latency_ms: Some(if v2 { 300.0 } else { 100.0 } + f64::from(i % 10)),
            success: Some(!failed),
            ..ev("cmp")
        });
    }
    s.admin.ingest_events(&batch).await.unwrap();
    let cmp = s
        .admin
        .compare_versions("cmp", 1, 2, &last_hours(24, None))
        .await
        .unwrap();
    assert_eq!((cmp.a, cmp.b), (1, 2));
    assert_eq!((cmp.metrics_a.count, cmp.metrics_b.count), (100, 100));
    let diff = |name: &str| {
        cmp.differences
            .iter()
            .find(|d| d.metric == name)
            .unwrap_or_else(|| panic!("{name} missing: {:?}", cmp.differences))
    };
    let success = diff("success_rate");
    assert!(success.significant, "{success:?}");
    assert!(success.difference.unwrap() < 0.0);
    assert_eq!(success.test.as_deref(), Some("two_proportion_z"));
    let latency = diff("latency_ms_mean");
    assert!(
        latency.significant && latency.difference.unwrap() > 150.0,
        "{latency:?}"
    );

    // The same version against itself is not a difference.
    let same = s
        .admin
        .compare_versions("cmp", 1, 1, &last_hours(24, None))
        .await
        .unwrap();
    assert!(
        same.differences.iter().all(|d| !d.significant),
        "{:?}",
        same.differences
    );
}

#[tokio::test]
async fn top_lists_rank_prompts() {
    let s = server_with(&["busy", "dear", "flaky"], 1).await;
    let mut batch = Vec::new();
    batch.extend((0..30).map(|_| ev("busy")));
    batch.extend((0..10).map(|_| EventIn {
        cost: Some(1.0),
        ..ev("dear")
    }));
    batch.extend((0..25).map(|i| EventIn {
        success: Some(i >= 20),
        ..ev("flaky")
    }));
    s.admin.ingest_events(&batch).await.unwrap();
    let range = last_hours(24, None);
    let names = |entries: &[promptstore_client::types::TopEntry]| {
        entries
            .iter()
            .map(|e| (e.prompt.clone(), e.value))
            .collect::<Vec<_>>()
    };
    let by_use = s.admin.top(TopBy::Use, None, &range).await.unwrap();
    assert_eq!(
        names(&by_use),
        vec![
            ("busy".into(), 30.0),
            ("flaky".into(), 25.0),
            ("dear".into(), 10.0)
        ]
    );
    let by_cost = s.admin.top(TopBy::Cost, None, &range).await.unwrap();
    assert_eq!(
        names(&by_cost),
        vec![("dear".into(), 10.0)],
        "only priced prompts rank by cost"
    );
    let by_errors = s
        .admin
        .top(TopBy::ErrorRate, Some(1), &range)
        .await
        .unwrap();
    assert_eq!(names(&by_errors), vec![("flaky".into(), 0.8)]);
    assert_eq!(by_errors[0].metrics.errors, 20);
}

#[tokio::test]
async fn a_cheaper_model_with_equal_success_is_recommended() {
    let s = server_with(&["rec/p", "rec/q"], 1).await;
    let mut batch = Vec::new();
    for i in 0..40u64 {
        for model in ["gpt-4.1", "gpt-4o-mini"] {
            batch.push(EventIn {
                model: Some(model.to_owned()),
                input_tokens: Some(900 + i * 5),
                output_tokens: Some(400 + i * 3),
                ..ev("rec/p")
            });
        }
        // One model only: nothing to recommend for this prompt.
        batch.push(EventIn {
            model: Some("gpt-4.1".to_owned()),
            input_tokens: Some(900 + i),
            ..ev("rec/q")
        });
    }
    s.admin.ingest_events(&batch).await.unwrap();
    let recs = s
        .admin
        .recommendations(&last_hours(24, None))
        .await
        .unwrap();
    let cheaper: Vec<_> = recs
        .iter()
        .filter(|r| r.kind == "cheaper_model_equal_success")
        .collect();
    assert_eq!(cheaper.len(), 1, "{recs:#?}");
    let rec = cheaper[0];
    assert_eq!(rec.prompt, "rec/p");
    assert!(rec.rationale.contains("gpt-4o-mini"), "{}", rec.rationale);
    assert!(rec.evidence.is_object() && !rec.evidence.as_object().unwrap().is_empty());
    assert!(!rec.title.is_empty());
}
