//! Live views for the dashboard's pages: an SSE stream that reads a view every
//! [`LIVE_POLL`] and sends it as one `snapshot` event whenever it differs from the last one
//! sent (the first at once), with keep-alive comments between. The view is the same JSON the
//! matching GET route answers, so a page renders both the same way. A failed read ends the
//! stream with an `error` event carrying the API's error body; the page then reconnects.

use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;

use crate::error::ApiError;

/// How often a live view is read again.
pub(super) const LIVE_POLL: Duration = Duration::from_secs(2);

/// The SSE response of a live view that `read` produces.
pub(super) fn stream<T, F, Fut>(read: F) -> Response
where
    T: serde::Serialize + Send + 'static,
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<T, ApiError>> + Send + 'static,
{
    Sse::new(events(read)).keep_alive(KeepAlive::default()).into_response()
}

fn events<T, F, Fut>(read: F) -> impl Stream<Item = Result<Event, Infallible>>
where
    T: serde::Serialize + Send + 'static,
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<T, ApiError>> + Send + 'static,
{
    // (the last JSON sent, whether the stream ended)
    futures_util::stream::unfold((read, None::<String>, false), |(read, mut last, ended)| async move {
        if ended {
            return None;
        }
        loop {
            match read().await {
                Ok(view) => {
                    let json = serde_json::to_string(&view).unwrap_or_default();
                    if last.as_deref() != Some(json.as_str()) {
                        last = Some(json.clone());
                        return Some((Ok(Event::default().event("snapshot").data(json)), (read, last, false)));
                    }
                }
                Err(error) => {
                    let body = serde_json::to_string(&error.body()).unwrap_or_default();
                    return Some((Ok(Event::default().event("error").data(body)), (read, last, true)));
                }
            }
            tokio::time::sleep(LIVE_POLL).await;
        }
    })
}
