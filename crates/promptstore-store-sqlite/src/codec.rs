//! Encodings between domain values and columns: times as integer milliseconds, JSON columns,
//! enum spellings, and opaque pagination cursors.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use promptstore_core::store::{Page, StoreError};
use serde::Serialize;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;

use crate::error::corrupt;

/// Milliseconds since the Unix epoch; sub-millisecond precision is dropped (floor).
pub(crate) fn to_ms(t: OffsetDateTime) -> i64 {
    let ms = t.unix_timestamp_nanos().div_euclid(1_000_000);
    i64::try_from(ms).unwrap_or(if ms < 0 { i64::MIN } else { i64::MAX })
}

pub(crate) fn from_ms(ms: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map_err(|e| corrupt("timestamp", e))
}

/// The current time, at the precision the store keeps, so that what a write returns equals
/// what a later read returns.
pub(crate) fn now_ms() -> i64 {
    to_ms(OffsetDateTime::now_utc())
}

pub(crate) fn to_json_text<T: Serialize>(what: &str, value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value)
        .map_err(|e| StoreError::Backend(format!("cannot encode {what}: {e}")))
}

pub(crate) fn from_json_text<T: DeserializeOwned>(what: &str, text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| corrupt(what, e))
}

pub(crate) fn to_u32(what: &str, n: i64) -> Result<u32, StoreError> {
    u32::try_from(n).map_err(|e| corrupt(what, e))
}

pub(crate) fn to_u64(what: &str, n: i64) -> Result<u64, StoreError> {
    u64::try_from(n).map_err(|e| corrupt(what, e))
}

/// Clamp a requested page size to 1..=200 and return it with one extra row to fetch, which
/// tells whether another page follows.
pub(crate) fn page_limit(limit: u32) -> (usize, i64) {
    let limit = limit.clamp(1, 200) as usize;
    (limit, limit as i64 + 1)
}

/// Turn the `limit + 1` rows of a page query into a page: the extra row only tells that
/// another page follows, and the cursor points after the last row kept.
pub(crate) fn into_page<R, T>(
    rows: Vec<R>,
    limit: usize,
    record: impl FnMut(R) -> Result<T, StoreError>,
    cursor: impl Fn(&T) -> String,
) -> Result<Page<T>, StoreError> {
    let mut items = rows
        .into_iter()
        .map(record)
        .collect::<Result<Vec<_>, _>>()?;
    let next_cursor = if items.len() > limit {
        items.truncate(limit);
        items.last().map(cursor)
    } else {
        None
    };
    Ok(Page { items, next_cursor })
}

/// The position a page ends at, per list. Cursors are this, tagged and base64url-encoded:
/// opaque to clients, and a cursor of one list is refused by another.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cursor {
    /// Prompts by name: the last name.
    Name(String),
    /// Prompts by relevance: the last score and name.
    Rank(f64, String),
    /// Versions newest first: the last number.
    Version(u32),
    /// Label moves or audit records newest first: the last id.
    Id(i64),
    /// Experiments newest first: the internal key of the last one.
    Experiment(i64),
    /// An experiment's history oldest first: the last entry id.
    HistoryEntry(i64),
}

impl Cursor {
    pub(crate) fn encode(&self) -> String {
        let raw = match self {
            Cursor::Name(name) => format!("n:{name}"),
            Cursor::Rank(score, name) => format!("r:{:016x}:{name}", score.to_bits()),
            Cursor::Version(n) => format!("v:{n}"),
            Cursor::Id(id) => format!("i:{id}"),
            Cursor::Experiment(pk) => format!("e:{pk}"),
            Cursor::HistoryEntry(id) => format!("h:{id}"),
        };
        URL_SAFE_NO_PAD.encode(raw)
    }

    pub(crate) fn decode(cursor: &str) -> Result<Cursor, StoreError> {
        let invalid = || {
            StoreError::InvalidCursor {
            message: "the cursor was not issued by this list; pass the `next_cursor` of the previous page"
                .to_owned(),
        }
        };
        let bytes = URL_SAFE_NO_PAD
            .decode(cursor.trim())
            .map_err(|_| invalid())?;
        let raw = String::from_utf8(bytes).map_err(|_| invalid())?;
        let (tag, rest) = raw.split_once(':').ok_or_else(invalid)?;
        match tag {
            "n" => Ok(Cursor::Name(rest.to_owned())),
            "r" => {
                let (bits, name) = rest.split_once(':').ok_or_else(invalid)?;
                let bits = u64::from_str_radix(bits, 16).map_err(|_| invalid())?;
                let score = f64::from_bits(bits);
                if score.is_nan() {
                    return Err(invalid());
                }
                Ok(Cursor::Rank(score, name.to_owned()))
            }
            "v" => rest.parse().map(Cursor::Version).map_err(|_| invalid()),
            "i" => rest.parse().map(Cursor::Id).map_err(|_| invalid()),
            "e" => rest.parse().map(Cursor::Experiment).map_err(|_| invalid()),
            "h" => rest
                .parse()
                .map(Cursor::HistoryEntry)
                .map_err(|_| invalid()),
            _ => Err(invalid()),
        }
    }
}

/// Decode an optional cursor that must be of the kind `pick` accepts.
pub(crate) fn decode_cursor<T>(
    cursor: Option<&str>,
    pick: impl FnOnce(Cursor) -> Option<T>,
) -> Result<Option<T>, StoreError> {
    let Some(cursor) = cursor else {
        return Ok(None);
    };
    let decoded = Cursor::decode(cursor)?;
    pick(decoded)
        .map(Some)
        .ok_or_else(|| StoreError::InvalidCursor {
            message: "the cursor belongs to another list or query".to_owned(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip() {
        for c in [
            Cursor::Name("support/triage".into()),
            Cursor::Rank(-1.25e-6, "a:b:c".into()),
            Cursor::Version(42),
            Cursor::Id(-7),
            Cursor::Experiment(12),
            Cursor::HistoryEntry(3),
        ] {
            assert_eq!(Cursor::decode(&c.encode()).unwrap(), c);
        }
    }

    #[test]
    fn garbage_cursors_are_refused_not_panicking() {
        for bad in [
            "",
            "!!!",
            &URL_SAFE_NO_PAD.encode("x:1"),
            &URL_SAFE_NO_PAD.encode("v:abc"),
        ] {
            assert!(
                matches!(Cursor::decode(bad), Err(StoreError::InvalidCursor { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn times_keep_milliseconds() {
        let t = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_789).unwrap();
        let back = from_ms(to_ms(t)).unwrap();
        assert_eq!(to_ms(back), 1_700_000_000_123);
        assert_eq!(page_limit(0), (1, 2));
        assert_eq!(page_limit(5000), (200, 201));
    }
}
