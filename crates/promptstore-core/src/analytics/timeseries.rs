//! Time series: hour or day buckets in a UTC offset the caller chooses, built from hourly
//! cells. Offsets must be whole hours, because an hourly cell cannot be split between two
//! local days. Every bucket of the range is present (empty ones with zero counts), so a
//! chart has no holes.
//!
//! Alignment: for `hour` buckets the range is widened to whole hours (from down, to up);
//! for `day` buckets to whole local days (local midnight down and up), so that each day
//! bucket holds its whole day and not the slice of it inside the request.

use promptstore_types::{ErrorCode, TimeBucket, TimeSeries};
use time::{OffsetDateTime, UtcOffset};

use super::metrics::metrics;
use super::model::{CellKey, Granularity};
use super::range::{DAY, HOUR, Range};
use super::rollup::{Rollup, RollupDecodeError};
use crate::error::Error;

/// Most buckets one series may have (~417 days of hours, ~27 years of days).
pub const MAX_BUCKETS: i64 = 10_000;

fn invalid(field: &str, message: impl Into<String>) -> Error {
    Error::rejected(ErrorCode::InvalidRequest, message)
        .with_details(serde_json::json!({ "field": field }))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    Hour,
    Day,
}

impl Interval {
    pub fn parse(s: &str) -> Result<Interval, Error> {
        match s {
            "hour" => Ok(Interval::Hour),
            "day" => Ok(Interval::Day),
            other => Err(invalid(
                "interval",
                format!("interval must be 'hour' or 'day', got '{other}'"),
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Interval::Hour => "hour",
            Interval::Day => "day",
        }
    }

    pub fn seconds(self) -> i64 {
        match self {
            Interval::Hour => HOUR,
            Interval::Day => DAY,
        }
    }
}

/// Parse a UTC offset: `Z`, `+HH:MM` or `-HH:MM`, between −12:00 and +14:00 (the offsets
/// real time zones use), in whole hours.
pub fn parse_utc_offset(s: &str) -> Result<UtcOffset, Error> {
    let bad = || {
        invalid(
            "utc_offset",
            format!("utc_offset must be 'Z' or '+HH:MM' / '-HH:MM', got '{s}'"),
        )
    };
    if s == "Z" || s == "z" {
        return Ok(UtcOffset::UTC);
    }
    let b = s.as_bytes();
    if b.len() != 6 || b[3] != b':' || !matches!(b[0], b'+' | b'-') {
        return Err(bad());
    }
    let digits = |r: std::ops::Range<usize>| -> Option<i8> {
        let part = s.get(r)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    let (Some(h), Some(m)) = (digits(1..3), digits(4..6)) else {
        return Err(bad());
    };
    if m >= 60 {
        return Err(bad());
    }
    if m != 0 {
        return Err(invalid(
            "utc_offset",
            format!(
                "utc_offset '{s}' is not a whole number of hours: analytics are kept in hourly cells, which cannot be split at a half-hour; use a whole-hour offset"
            ),
        ));
    }
    let hours = if b[0] == b'-' { -h } else { h };
    if !(-12..=14).contains(&hours) {
        return Err(invalid(
            "utc_offset",
            format!("utc_offset '{s}' is out of range: use −12:00 to +14:00"),
        ));
    }
    UtcOffset::from_hms(hours, 0, 0).map_err(|_| bad())
}

/// `+HH:MM` form of an offset (UTC is `+00:00`).
pub fn format_utc_offset(offset: UtcOffset) -> String {
    let secs = offset.whole_seconds();
    let sign = if secs < 0 { '-' } else { '+' };
    let a = secs.unsigned_abs();
    format!("{sign}{:02}:{:02}", a / 3600, (a % 3600) / 60)
}

/// A planned series: the aligned UTC range to read cells from, and its buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeriesPlan {
    pub interval: Interval,
    pub offset: UtcOffset,
    /// Read cells whose bucket starts in this range.
    pub range: Range,
    pub buckets: usize,
}

impl SeriesPlan {
    /// Which cells to read: HOUR cells, or DAY cells for day buckets in UTC (a UTC day
    /// cell is exactly one bucket then, 24 times fewer rows).
    pub fn cell_granularity(&self) -> Granularity {
        if self.interval == Interval::Day && self.offset.whole_seconds() == 0 {
            Granularity::Day
        } else {
            Granularity::Hour
        }
    }
}

/// Align `[from, to)` for `interval` in `offset` and count the buckets (at most
/// [`MAX_BUCKETS`]).
pub fn plan_series(
    interval: Interval,
    offset: UtcOffset,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Result<SeriesPlan, Error> {
    if from >= to {
        return Err(invalid(
            "from",
            format!("'from' ({from}) must be before 'to' ({to})"),
        ));
    }
    let size = interval.seconds();
    // Bucket boundaries are at multiples of `size` in local time: shift by the offset,
    // floor/ceil, shift back.
    let off = i64::from(offset.whole_seconds());
    let f = (from.unix_timestamp() + off).div_euclid(size) * size - off;
    let t_local = to.unix_timestamp() + off;
    let t_exact = t_local.rem_euclid(size) == 0 && to.nanosecond() == 0;
    let t = if t_exact {
        t_local
    } else {
        (t_local.div_euclid(size) + 1) * size
    } - off;
    let n = (t - f) / size;
    if n > MAX_BUCKETS {
        return Err(invalid(
            "to",
            format!(
                "the range holds {n} {} buckets; at most {MAX_BUCKETS} are allowed: shorten the range or use a longer interval",
                interval.as_str()
            ),
        ));
    }
    let at = |u: i64| {
        OffsetDateTime::from_unix_timestamp(u)
            .map_err(|_| invalid("from", "the time range reaches beyond the supported dates"))
    };
    Ok(SeriesPlan {
        interval,
        offset,
        range: Range {
            from: at(f)?,
            to: at(t)?,
        },
        // n ≤ MAX_BUCKETS, so it fits.
        buckets: n as usize,
    })
}

/// The buckets of a planned series, filled one cell at a time (HOUR cells, or what
/// `cell_granularity` says); cells outside the range are ignored.
#[derive(Debug)]
pub struct SeriesFold<'p> {
    plan: &'p SeriesPlan,
    rollups: Vec<Rollup>,
}

impl<'p> SeriesFold<'p> {
    pub fn new(plan: &'p SeriesPlan) -> SeriesFold<'p> {
        SeriesFold {
            plan,
            rollups: vec![Rollup::default(); plan.buckets],
        }
    }

    fn slot(&mut self, key: &CellKey) -> Option<&mut Rollup> {
        let d = key.bucket - self.plan.range.from.unix_timestamp();
        if d < 0 {
            return None;
        }
        let i = usize::try_from(d / self.plan.interval.seconds()).ok()?;
        self.rollups.get_mut(i)
    }

    /// Merge a cell into its bucket.
    pub fn add(&mut self, key: &CellKey, rollup: &Rollup) {
        if let Some(slot) = self.slot(key) {
            slot.merge(rollup);
        }
    }

    /// Merge an encoded cell into its bucket (see `Rollup::merge_encoded`).
    pub fn add_encoded(&mut self, key: &CellKey, rollup: &[u8]) -> Result<(), RollupDecodeError> {
        match self.slot(key) {
            Some(slot) => slot.merge_encoded(rollup),
            None => Ok(()),
        }
    }

    pub fn finish(self) -> TimeSeries {
        let plan = self.plan;
        let size = plan.interval.seconds();
        let buckets = self
            .rollups
            .iter()
            .enumerate()
            .map(|(i, r)| TimeBucket {
                start: (plan.range.from + time::Duration::seconds(i as i64 * size))
                    .to_offset(plan.offset),
                metrics: metrics(r),
            })
            .collect();
        TimeSeries {
            interval: plan.interval.as_str().to_owned(),
            utc_offset: format_utc_offset(plan.offset),
            buckets,
        }
    }
}

/// Fill the planned buckets from cells (HOUR cells, or what `cell_granularity` says).
/// Cells outside the range are ignored.
pub fn build(plan: &SeriesPlan, cells: &[(CellKey, Rollup)]) -> TimeSeries {
    let mut fold = SeriesFold::new(plan);
    for (key, rollup) in cells {
        fold.add(key, rollup);
    }
    fold.finish()
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;
    use crate::analytics::testutil::event;

    #[test]
    fn offsets() {
        let ok = [
            ("Z", 0),
            ("+00:00", 0),
            ("+02:00", 2),
            ("-05:00", -5),
            ("+14:00", 14),
            ("-12:00", -12),
        ];
        for (s, h) in ok {
            assert_eq!(parse_utc_offset(s).unwrap().whole_hours(), h, "{s}");
        }
        let bad = [
            ("+05:30", "not a whole number of hours"),
            ("+05:45", "not a whole number of hours"),
            ("+15:00", "out of range"),
            ("-13:00", "out of range"),
            ("+2:00", "must be 'Z'"),
            ("02:00", "must be 'Z'"),
            ("+02:60", "must be 'Z'"),
            ("+0a:00", "must be 'Z'"),
            ("", "must be 'Z'"),
            ("+02:00:00", "must be 'Z'"),
        ];
        for (s, msg) in bad {
            let err = parse_utc_offset(s).unwrap_err();
            assert_eq!(err.code(), ErrorCode::InvalidRequest);
            assert!(err.to_string().contains(msg), "{s}: {err}");
        }
        assert_eq!(format_utc_offset(UtcOffset::UTC), "+00:00");
        assert_eq!(
            format_utc_offset(parse_utc_offset("-05:00").unwrap()),
            "-05:00"
        );
        assert!(Interval::parse("week").is_err());
    }

    /// Events at given UTC times; a day series in an offset; the expected local day starts
    /// and counts.
    #[test]
    fn day_buckets_across_midnight_in_offsets() {
        // Events at 2025-03-01 20:00, 22:00, 23:00 and 2025-03-02 01:00, 03:00, 05:00 UTC.
        let hours = [
            datetime!(2025-03-01 20:00 UTC),
            datetime!(2025-03-01 22:00 UTC),
            datetime!(2025-03-01 23:00 UTC),
            datetime!(2025-03-02 01:00 UTC),
            datetime!(2025-03-02 03:00 UTC),
            datetime!(2025-03-02 05:00 UTC),
        ];
        let cells: Vec<(CellKey, Rollup)> = hours
            .iter()
            .map(|t| {
                let key = CellKey {
                    bucket: t.unix_timestamp(),
                    prompt_id: "id".into(),
                    prompt: "a".into(),
                    version: 1,
                    label: String::new(),
                    model: String::new(),
                    experiment: String::new(),
                    arm: String::new(),
                };
                (key, Rollup::of([&event(t.unix_timestamp())]))
            })
            .collect();
        let from = datetime!(2025-03-01 18:00 UTC);
        let to = datetime!(2025-03-02 06:00 UTC);
        let cases: Vec<(&str, Vec<(OffsetDateTime, u64)>)> = vec![
            (
                "Z",
                vec![
                    (datetime!(2025-03-01 00:00 UTC), 3),
                    (datetime!(2025-03-02 00:00 UTC), 3),
                ],
            ),
            // +02:00: 20:00Z = 22:00 local on the 1st; 22:00Z = 00:00 local on the 2nd.
            (
                "+02:00",
                vec![
                    (datetime!(2025-03-01 00:00 +02:00), 1),
                    (datetime!(2025-03-02 00:00 +02:00), 5),
                ],
            ),
            // -05:00: all six are on the 1st or 2nd local: 20:00Z=15:00, 05:00Z=00:00 on the 2nd.
            (
                "-05:00",
                vec![
                    (datetime!(2025-03-01 00:00 -05:00), 5),
                    (datetime!(2025-03-02 00:00 -05:00), 1),
                ],
            ),
            // +14:00: 18:00Z is 08:00 on the 2nd; 20:00Z..05:00Z is 10:00 on the 2nd..19:00 on the 2nd.
            ("+14:00", vec![(datetime!(2025-03-02 00:00 +14:00), 6)]),
        ];
        for (offset, want) in cases {
            let o = parse_utc_offset(offset).unwrap();
            let plan = plan_series(Interval::Day, o, from, to).unwrap();
            let ts = build(&plan, &cells);
            let got: Vec<(OffsetDateTime, u64)> = ts
                .buckets
                .iter()
                .map(|b| (b.start, b.metrics.count))
                .collect();
            assert_eq!(got, want, "offset {offset}");
            for b in &ts.buckets {
                assert_eq!(b.start.offset(), o);
                assert_eq!((b.start.hour(), b.start.minute()), (0, 0));
            }
        }
        assert_eq!(
            plan_series(Interval::Day, UtcOffset::UTC, from, to)
                .unwrap()
                .cell_granularity(),
            Granularity::Day
        );
    }

    #[test]
    fn hour_buckets_have_no_holes() {
        let mk = |t: OffsetDateTime| {
            let key = CellKey {
                bucket: t.unix_timestamp(),
                prompt_id: "id".into(),
                prompt: "a".into(),
                version: 1,
                label: String::new(),
                model: String::new(),
                experiment: String::new(),
                arm: String::new(),
            };
            (key, Rollup::of([&event(t.unix_timestamp())]))
        };
        let cells = vec![
            mk(datetime!(2025-03-01 23:00 UTC)),
            mk(datetime!(2025-03-02 02:00 UTC)),
            // Outside the range: ignored.
            mk(datetime!(2025-03-02 09:00 UTC)),
        ];
        let o = parse_utc_offset("+02:00").unwrap();
        let plan = plan_series(
            Interval::Hour,
            o,
            datetime!(2025-03-01 22:30 UTC),
            datetime!(2025-03-02 02:10 UTC),
        )
        .unwrap();
        assert_eq!(plan.range.from, datetime!(2025-03-01 22:00 UTC));
        assert_eq!(plan.range.to, datetime!(2025-03-02 03:00 UTC));
        assert_eq!(plan.cell_granularity(), Granularity::Hour);
        let ts = build(&plan, &cells);
        assert_eq!(ts.utc_offset, "+02:00");
        let counts: Vec<u64> = ts.buckets.iter().map(|b| b.metrics.count).collect();
        assert_eq!(counts, vec![0, 1, 0, 0, 1]);
        assert_eq!(ts.buckets[0].start, datetime!(2025-03-02 00:00 +02:00));
        assert_eq!(ts.buckets[0].metrics.success_rate, None);
    }

    #[test]
    fn bucket_limit_and_bad_ranges() {
        let t = datetime!(2025-01-01 00:00 UTC);
        assert!(
            plan_series(
                Interval::Hour,
                UtcOffset::UTC,
                t,
                t + time::Duration::hours(10_000)
            )
            .is_ok()
        );
        let err = plan_series(
            Interval::Hour,
            UtcOffset::UTC,
            t,
            t + time::Duration::hours(10_001),
        )
        .unwrap_err();
        assert!(err.to_string().contains("at most 10000"), "{err}");
        assert!(plan_series(Interval::Day, UtcOffset::UTC, t, t).is_err());
    }
}
