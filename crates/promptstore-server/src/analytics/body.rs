//! Reading an event batch: a JSON array (`application/json`) or one event per line
//! (`application/x-ndjson`). An item that is not a valid `EventIn` is a per-item error with
//! its index — the rest of the batch still counts; only a body that cannot be read as a
//! batch at all (not an array, not UTF-8 lines) is refused whole.

use promptstore_types::{ErrorCode, EventIn, ItemError};

use crate::error::ApiError;

/// Content types read as NDJSON.
const NDJSON_TYPES: &[&str] = &[
    "application/x-ndjson",
    "application/ndjson",
    "application/jsonl",
    "application/x-jsonlines",
    "application/json-lines",
];

/// One item of a batch: the event, or why it cannot be read.
pub type Item = Result<EventIn, ItemError>;

/// How the body is encoded, from its `Content-Type` (none = JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Ndjson,
}

pub fn format_of(content_type: Option<&str>) -> Result<Format, ApiError> {
    let Some(raw) = content_type else {
        return Ok(Format::Json);
    };
    let essence = raw
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if essence == "application/json" {
        Ok(Format::Json)
    } else if NDJSON_TYPES.contains(&essence.as_str()) {
        Ok(Format::Ndjson)
    } else {
        Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            format!(
                "events are sent as 'application/json' (an array) or 'application/x-ndjson' (one per line), not '{raw}'"
            ),
        ))
    }
}

/// Split a body into items, in order.
pub fn items(format: Format, body: &[u8]) -> Result<Vec<Item>, ApiError> {
    match format {
        Format::Json => json_items(body),
        Format::Ndjson => ndjson_items(body),
    }
}

fn item_error(index: usize, message: String) -> ItemError {
    ItemError {
        index,
        code: ErrorCode::InvalidJson,
        message,
        field: None,
    }
}

fn json_items(body: &[u8]) -> Result<Vec<Item>, ApiError> {
    // The common case, a fully valid batch, is decoded in one pass.
    if let Ok(events) = serde_json::from_slice::<Vec<EventIn>>(body) {
        return Ok(events.into_iter().map(Ok).collect());
    }
    let values: Vec<serde_json::Value> = match serde_json::from_slice(body) {
        Ok(values) => values,
        Err(e) => {
            let message = if serde_json::from_slice::<serde_json::Value>(body).is_ok() {
                "the body must be a JSON array of events".to_owned()
            } else {
                format!("the body is not valid JSON: {e}")
            };
            return Err(ApiError::new(ErrorCode::InvalidJson, message));
        }
    };
    Ok(values
        .into_iter()
        .enumerate()
        .map(|(index, value)| {
            serde_json::from_value::<EventIn>(value)
                .map_err(|e| item_error(index, format!("item {index} is not a valid event: {e}")))
        })
        .collect())
}

fn ndjson_items(body: &[u8]) -> Result<Vec<Item>, ApiError> {
    let text = std::str::from_utf8(body).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidJson,
            format!("the NDJSON body is not UTF-8: {e}"),
        )
    })?;
    // Trailing blank lines (a final newline) are not items; a blank line in the middle is
    // refused as an item, so that every index stays the line number minus one.
    let content = text.trim_end_matches(['\n', '\r', ' ', '\t']);
    if content.is_empty() {
        return Ok(Vec::new());
    }
    Ok(content
        .split('\n')
        .enumerate()
        .map(|(index, line)| {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.trim().is_empty() {
                return Err(item_error(index, format!("line {} is empty", index + 1)));
            }
            serde_json::from_str::<EventIn>(line).map_err(|e| {
                item_error(
                    index,
                    format!("line {} is not a valid event: {e}", index + 1),
                )
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(items: &[Item]) -> Vec<Result<String, usize>> {
        items
            .iter()
            .map(|i| match i {
                Ok(e) => Ok(e.prompt.clone()),
                Err(e) => Err(e.index),
            })
            .collect()
    }

    #[test]
    fn content_types_choose_the_format() {
        assert_eq!(format_of(None).unwrap(), Format::Json);
        assert_eq!(
            format_of(Some("application/json; charset=utf-8")).unwrap(),
            Format::Json
        );
        assert_eq!(
            format_of(Some("application/x-ndjson")).unwrap(),
            Format::Ndjson
        );
        assert_eq!(
            format_of(Some("Application/JSONL")).unwrap(),
            Format::Ndjson
        );
        assert_eq!(
            format_of(Some("text/csv")).unwrap_err().0.code,
            ErrorCode::UnsupportedMediaType
        );
    }

    #[test]
    fn json_arrays_keep_good_items_and_index_bad_ones() {
        let body = br#"[{"prompt":"a"},{"prompt":5},{"prompt":"c","bogus":1},{"prompt":"d"}]"#;
        let got = items(Format::Json, body).unwrap();
        assert_eq!(
            shape(&got),
            vec![Ok("a".into()), Err(1), Err(2), Ok("d".into())]
        );
        let Err(e) = &got[2] else { panic!() };
        assert!(e.message.contains("bogus"), "{}", e.message);
    }

    #[test]
    fn unreadable_json_bodies_are_refused_whole() {
        for body in [&b"{\"prompt\":\"a\"}"[..], b"[{", b"", b"nope"] {
            let err = items(Format::Json, body).unwrap_err();
            assert_eq!(
                err.0.code,
                ErrorCode::InvalidJson,
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
        assert_eq!(items(Format::Json, b"[]").unwrap().len(), 0);
    }

    #[test]
    fn ndjson_indexes_are_line_numbers_minus_one() {
        let body = b"{\"prompt\":\"a\"}\r\nnot json\n\n{\"prompt\":\"d\"}\n\n";
        let got = items(Format::Ndjson, body).unwrap();
        assert_eq!(
            shape(&got),
            vec![Ok("a".into()), Err(1), Err(2), Ok("d".into())]
        );
        assert_eq!(items(Format::Ndjson, b"\n\n").unwrap().len(), 0);
        assert!(items(Format::Ndjson, &[0xff, 0xfe]).is_err());
    }
}
