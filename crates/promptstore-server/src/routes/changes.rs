//! The change stream: server-sent events of every committed write in the key's project, so
//! that cached prompts in agents are invalidated within a second.

use std::convert::Infallible;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::{Stream, StreamExt};
use promptstore_types::{ChangeEvent, ErrorBody, Role};
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use crate::auth::Auth;
use crate::error::ApiResult;
use crate::state::AppState;

fn event_of(change: &ChangeEvent) -> Event {
    match Event::default()
        .event(change.kind.clone())
        .json_data(change)
    {
        Ok(e) => e,
        // Serialising a plain struct cannot fail; keep the stream alive if it ever did.
        Err(_) => Event::default().event("resync").data("{}"),
    }
}

/// The SSE events of a subscription: one per change, `resync` after missed changes, ending
/// when `shutdown` resolves.
fn event_stream(
    receiver: tokio::sync::broadcast::Receiver<ChangeEvent>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> impl Stream<Item = Result<Event, Infallible>> + Send + 'static {
    BroadcastStream::new(receiver)
        .map(|item| {
            let event = match item {
                Ok(change) => event_of(&change),
                Err(BroadcastStreamRecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "change stream subscriber lagged; sending resync");
                    event_of(&resync())
                }
            };
            Ok(event)
        })
        .take_until(shutdown)
}

fn resync() -> ChangeEvent {
    ChangeEvent {
        kind: "resync".to_owned(),
        prompt: None,
        version: None,
        label: None,
        at: time::OffsetDateTime::now_utc(),
    }
}

#[utoipa::path(get, path = "/api/v1/changes", tag = "runtime",
    responses((status = 200, description = "text/event-stream of ChangeEvent JSON; event name = kind", body = ChangeEvent, content_type = "text/event-stream"),
        (status = 401, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn changes(
    State(state): State<AppState>,
    auth: Auth,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let actor = auth.require(Role::Runtime)?;
    let runtime = state.runtime(&actor.project).await?;
    let stream = event_stream(runtime.subscribe(), state.shutdown_signal());
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(state.config().sse_keep_alive)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(kind: &str) -> ChangeEvent {
        ChangeEvent {
            kind: kind.to_owned(),
            prompt: Some("p".into()),
            version: Some(1),
            label: None,
            at: time::OffsetDateTime::now_utc(),
        }
    }

    /// The SSE wire text of the next event.
    async fn next_text<S: Stream<Item = Result<Event, Infallible>> + Unpin>(
        stream: &mut S,
    ) -> Option<String> {
        let event = stream.next().await?.ok()?;
        let body = Sse::new(futures_util::stream::iter([Ok::<_, Infallible>(event)]));
        let response = axum::response::IntoResponse::into_response(body);
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .ok()?;
        Some(String::from_utf8_lossy(&bytes).into_owned())
    }

    #[tokio::test]
    async fn a_lagging_subscriber_gets_resync_then_the_newest_changes() {
        let (tx, rx) = tokio::sync::broadcast::channel(2);
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let mut stream = Box::pin(event_stream(rx, async move {
            let _ = stop_rx.await;
        }));
        for kind in [
            "prompt_created",
            "version_created",
            "label_moved",
            "label_removed",
        ] {
            tx.send(change(kind)).unwrap();
        }
        let first = next_text(&mut stream).await.unwrap();
        assert!(first.starts_with("event: resync"), "{first}");
        let second = next_text(&mut stream).await.unwrap();
        assert!(second.starts_with("event: label_moved"), "{second}");
        assert!(second.contains(r#""kind":"label_moved""#), "{second}");
        let third = next_text(&mut stream).await.unwrap();
        assert!(third.starts_with("event: label_removed"), "{third}");
        stop_tx.send(()).unwrap();
        assert!(stream.next().await.is_none(), "shutdown ends the stream");
    }
}
