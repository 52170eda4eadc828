//! The change stream (`GET /api/v1/changes`, server-sent events) as a `Stream` of
//! [`ChangeEvent`]s, so agents learn about moved labels within a second instead of a TTL.

use std::pin::Pin;

use eventsource_stream::{EventStreamError, Eventsource};
use futures_util::{Stream, StreamExt, future};
use promptstore_types::ChangeEvent;
use reqwest::header::{ACCEPT, AUTHORIZATION, CACHE_CONTROL};

use crate::client::Client;
use crate::error::ClientError;

/// A live change stream. It ends when the server closes the connection; an item that fails
/// to decode is reported as an error and the stream goes on.
pub type ChangeStream = Pin<Box<dyn Stream<Item = Result<ChangeEvent, ClientError>> + Send>>;

impl Client {
    /// Opens the change stream. Unlike other calls it has no overall timeout: it is meant
    /// to stay open. Reconnecting is the caller's job ([`crate::CachedClient::subscribe`]
    /// does it with backoff).
    pub async fn changes(&self) -> Result<ChangeStream, ClientError> {
        let mut request = self
            .http()
            .get(self.url("/api/v1/changes"))
            .header(ACCEPT, "text/event-stream")
            .header(CACHE_CONTROL, "no-cache");
        if let Some(auth) = self.auth_header() {
            request = request.header(AUTHORIZATION, auth.clone());
        }
        let response = request.send().await.map_err(ClientError::Transport)?;
        let status = response.status();
        if !status.is_success() {
            let body = response.bytes().await.map_err(ClientError::Transport)?;
            return Err(ClientError::from_response(status.as_u16(), &body));
        }
        let events = response.bytes_stream().eventsource().filter_map(|item| {
            future::ready(match item {
                // Events without data (a bare `event:` line) carry nothing to decode.
                Ok(event) if event.data.trim().is_empty() => None,
                Ok(event) => Some(decode_event(&event.event, &event.data)),
                Err(EventStreamError::Transport(e)) => Some(Err(ClientError::Transport(e))),
                Err(e) => Some(Err(ClientError::Decode(format!(
                    "the change stream is malformed: {e}"
                )))),
            })
        });
        Ok(Box::pin(events))
    }
}

/// Decodes one `data:` payload. The event name is the kind; when the JSON lacks a kind
/// (it should not) the name fills it in.
pub(crate) fn decode_event(name: &str, data: &str) -> Result<ChangeEvent, ClientError> {
    let mut event: ChangeEvent = serde_json::from_str(data).map_err(|e| {
        ClientError::Decode(format!("change event `{name}` is not a ChangeEvent: {e}"))
    })?;
    if event.kind.is_empty() && !name.is_empty() {
        event.kind = name.to_string();
    }
    Ok(event)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_change_events() {
        let event = decode_event(
            "label_moved",
            r#"{"kind":"label_moved","prompt":"support/triage","version":3,"label":"production","at":"2026-01-02T03:04:05Z"}"#,
        )
        .unwrap();
        assert_eq!(event.kind, "label_moved");
        assert_eq!(event.prompt.as_deref(), Some("support/triage"));
        assert_eq!(event.version, Some(3));
        assert!(decode_event("x", "not json").is_err());
        let filled = decode_event("resync", r#"{"kind":"","at":"2026-01-02T03:04:05Z"}"#).unwrap();
        assert_eq!(filled.kind, "resync");
    }
}
