//! Time ranges of aggregate queries: aligned to whole hours (hourly cells are the finest
//! grain), and split into the UTC days that DAY cells cover whole plus the hours at the
//! edges that only HOUR cells can answer. A 30-day summary thus reads ~30 day cells and at
//! most 46 hour cells per series instead of 720 hour cells.

use promptstore_types::ErrorCode;
use time::OffsetDateTime;

use crate::error::Error;

pub const HOUR: i64 = 3_600;
pub const DAY: i64 = 86_400;

/// A half-open UTC range `[from, to)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub from: OffsetDateTime,
    pub to: OffsetDateTime,
}

fn at(unix: i64) -> Result<OffsetDateTime, Error> {
    OffsetDateTime::from_unix_timestamp(unix).map_err(|_| {
        Error::rejected(
            ErrorCode::InvalidRequest,
            "the time range reaches beyond the supported dates",
        )
    })
}

/// Round `from` down and `to` up to whole UTC hours; refuse an empty or inverted range.
pub fn align_to_hours(from: OffsetDateTime, to: OffsetDateTime) -> Result<Range, Error> {
    if from >= to {
        return Err(Error::rejected(
            ErrorCode::InvalidRequest,
            format!("'from' ({from}) must be before 'to' ({to})"),
        )
        .with_details(serde_json::json!({ "field": "from" })));
    }
    let f = from.unix_timestamp().div_euclid(HOUR) * HOUR;
    let t_secs = to.unix_timestamp();
    // A `to` with sub-second nanos still belongs to its second's hour unless exactly aligned.
    let exact = t_secs.rem_euclid(HOUR) == 0 && to.nanosecond() == 0;
    let t = if exact {
        t_secs
    } else {
        (t_secs.div_euclid(HOUR) + 1) * HOUR
    };
    Ok(Range {
        from: at(f)?,
        to: at(t)?,
    })
}

/// Which cells answer an hour-aligned range: the whole UTC days inside it (DAY cells), and
/// the partial days at its edges (HOUR cells).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangePlan {
    /// Read DAY cells whose bucket starts in this range (absent when no whole day fits).
    pub days: Option<Range>,
    /// Read HOUR cells whose bucket starts in these ranges (0, 1 or 2 of them).
    pub hours: Vec<Range>,
}

/// Split an hour-aligned range (see [`align_to_hours`]) into day and hour reads that
/// together cover it exactly once.
pub fn plan(range: Range) -> RangePlan {
    let from = range.from.unix_timestamp();
    let to = range.to.unix_timestamp();
    let first_day = (from + DAY - 1).div_euclid(DAY) * DAY;
    let last_day = to.div_euclid(DAY) * DAY;
    let (Ok(fd), Ok(ld)) = (at(first_day), at(last_day)) else {
        return RangePlan {
            days: None,
            hours: vec![range],
        };
    };
    if first_day >= last_day {
        return RangePlan {
            days: None,
            hours: vec![range],
        };
    }
    let mut hours = Vec::new();
    if from < first_day {
        hours.push(Range {
            from: range.from,
            to: fd,
        });
    }
    if last_day < to {
        hours.push(Range {
            from: ld,
            to: range.to,
        });
    }
    RangePlan {
        days: Some(Range { from: fd, to: ld }),
        hours,
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn alignment() {
        let cases = [
            (
                datetime!(2025-01-01 10:30 UTC),
                datetime!(2025-01-01 11:10 UTC),
                datetime!(2025-01-01 10:00 UTC),
                datetime!(2025-01-01 12:00 UTC),
            ),
            (
                datetime!(2025-01-01 10:00 UTC),
                datetime!(2025-01-01 11:00 UTC),
                datetime!(2025-01-01 10:00 UTC),
                datetime!(2025-01-01 11:00 UTC),
            ),
            (
                datetime!(2025-01-01 23:59:59 UTC),
                datetime!(2025-01-02 00:00:00.5 UTC),
                datetime!(2025-01-01 23:00 UTC),
                datetime!(2025-01-02 01:00 UTC),
            ),
            // An offset input is the same instant.
            (
                datetime!(2025-01-01 12:30 +02:00),
                datetime!(2025-01-01 13:00 +02:00),
                datetime!(2025-01-01 10:00 UTC),
                datetime!(2025-01-01 11:00 UTC),
            ),
        ];
        for (f, t, ef, et) in cases {
            let r = align_to_hours(f, t).unwrap();
            assert_eq!((r.from, r.to), (ef, et), "{f} .. {t}");
        }
        let t = datetime!(2025-01-01 10:00 UTC);
        assert!(align_to_hours(t, t).is_err());
        assert!(align_to_hours(t + time::Duration::hours(1), t).is_err());
    }

    fn r(from: OffsetDateTime, to: OffsetDateTime) -> Range {
        Range { from, to }
    }

    #[test]
    fn splitting_into_days_and_hours() {
        let cases: Vec<(Range, Option<Range>, Vec<Range>)> = vec![
            // Inside one day: hours only.
            (
                r(
                    datetime!(2025-01-01 10:00 UTC),
                    datetime!(2025-01-01 20:00 UTC),
                ),
                None,
                vec![r(
                    datetime!(2025-01-01 10:00 UTC),
                    datetime!(2025-01-01 20:00 UTC),
                )],
            ),
            // Crossing midnight without a whole day: hours only.
            (
                r(
                    datetime!(2025-01-01 22:00 UTC),
                    datetime!(2025-01-02 03:00 UTC),
                ),
                None,
                vec![r(
                    datetime!(2025-01-01 22:00 UTC),
                    datetime!(2025-01-02 03:00 UTC),
                )],
            ),
            // Exactly whole days: days only.
            (
                r(
                    datetime!(2025-01-01 00:00 UTC),
                    datetime!(2025-01-03 00:00 UTC),
                ),
                Some(r(
                    datetime!(2025-01-01 00:00 UTC),
                    datetime!(2025-01-03 00:00 UTC),
                )),
                vec![],
            ),
            // Partial edges on both sides.
            (
                r(
                    datetime!(2025-01-01 05:00 UTC),
                    datetime!(2025-01-04 07:00 UTC),
                ),
                Some(r(
                    datetime!(2025-01-02 00:00 UTC),
                    datetime!(2025-01-04 00:00 UTC),
                )),
                vec![
                    r(
                        datetime!(2025-01-01 05:00 UTC),
                        datetime!(2025-01-02 00:00 UTC),
                    ),
                    r(
                        datetime!(2025-01-04 00:00 UTC),
                        datetime!(2025-01-04 07:00 UTC),
                    ),
                ],
            ),
            // One whole day with a leading edge only.
            (
                r(
                    datetime!(2024-12-31 23:00 UTC),
                    datetime!(2025-01-02 00:00 UTC),
                ),
                Some(r(
                    datetime!(2025-01-01 00:00 UTC),
                    datetime!(2025-01-02 00:00 UTC),
                )),
                vec![r(
                    datetime!(2024-12-31 23:00 UTC),
                    datetime!(2025-01-01 00:00 UTC),
                )],
            ),
        ];
        for (range, days, hours) in cases {
            let p = plan(range);
            assert_eq!(p.days, days, "{range:?}");
            assert_eq!(p.hours, hours, "{range:?}");
            // The pieces tile the range exactly.
            let covered: i64 = p
                .days
                .iter()
                .chain(&p.hours)
                .map(|x| (x.to - x.from).whole_seconds())
                .sum();
            assert_eq!(covered, (range.to - range.from).whole_seconds());
        }
    }
}
