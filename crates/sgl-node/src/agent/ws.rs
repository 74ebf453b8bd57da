//! The WebSocket job push (sgl-protocol.md §1.7b): jobs arrive the moment they are dispatched.
//! The token goes in the `X-Node-Auth` header; only a seed grid (one that does not announce
//! envelope v2) also gets it in the query string, where it would otherwise end up in proxy
//! logs (seed weakness S7). Reconnects back off from 1 s to 30 s, each wait drawn at random
//! from its upper half, so that the thousands of nodes of a coordinator that died do not all
//! knock on its successor in the same second.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rand_core::{OsRng, RngCore};
use sgl_protocol::api::node::{HEADER_NODE_AUTH, NodeMessage, ServerMessage};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use super::{Shared, lock};
use crate::client::encode_segment;

/// The longest wait between reconnects.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// The first wait.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);

/// Waits between reconnects: doubling from [`FIRST_BACKOFF`] to [`MAX_BACKOFF`], each wait
/// drawn uniformly from the upper half of the current step ("equal jitter").
#[derive(Debug)]
struct Backoff {
    step: Duration,
}

impl Backoff {
    fn new() -> Self {
        Self { step: FIRST_BACKOFF }
    }

    /// Back to the first step, after a connection held.
    fn reset(&mut self) {
        self.step = FIRST_BACKOFF;
    }

    /// The next wait, given a random 64-bit draw; the step doubles.
    fn next(&mut self, draw: u64) -> Duration {
        let half = self.step / 2;
        let spread = u64::try_from(half.as_millis()).unwrap_or(u64::MAX).max(1);
        let wait = half + Duration::from_millis(draw % spread);
        self.step = (self.step * 2).min(MAX_BACKOFF);
        wait
    }
}

/// Starts the WebSocket task.
pub(super) fn start(shared: &Arc<Shared>) {
    let task = tokio::spawn(run(Arc::clone(shared)));
    *lock(&shared.ws_task) = Some(task.abort_handle());
}

/// Stops it.
pub(super) fn stop(shared: &Shared) {
    if let Some(task) = lock(&shared.ws_task).take() {
        task.abort();
    }
}

/// A connection could not be opened.
#[derive(Debug, thiserror::Error)]
enum ConnectError {
    #[error(transparent)]
    Ws(#[from] tokio_tungstenite::tungstenite::Error),
    #[error("the node token is not a valid header value")]
    Header,
}

async fn run(shared: Arc<Shared>) {
    let mut backoff = Backoff::new();
    loop {
        match connect(&shared).await {
            Ok(socket) => {
                backoff.reset();
                tracing::info!(target: "sgl::events::node", "websocket connected");
                session(&shared, socket).await;
                tracing::info!(target: "sgl::events::node", "websocket closed; reconnecting");
            }
            Err(error) => tracing::debug!(%error, "websocket connect failed"),
        }
        tokio::time::sleep(backoff.next(OsRng.next_u64())).await;
    }
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(shared: &Shared) -> Result<Socket, ConnectError> {
    let token = shared.token();
    let mut url = shared.client.ws_url(&shared.node_id);
    if shared.seed_grid.load(Ordering::SeqCst) {
        url = format!("{url}?auth_token={}", encode_segment(token.expose_secret()));
    }
    let mut request = url.into_client_request()?;
    let header = HeaderValue::from_str(token.expose_secret()).map_err(|_| ConnectError::Header)?;
    request.headers_mut().insert(HEADER_NODE_AUTH, header);
    let (socket, _) = tokio_tungstenite::connect_async(request).await?;
    Ok(socket)
}

async fn session(shared: &Arc<Shared>, socket: Socket) {
    let (mut sink, mut stream) = socket.split();
    while let Some(message) = stream.next().await {
        match message {
            Ok(Message::Text(text)) => match serde_json::from_str::<ServerMessage>(&text) {
                Ok(ServerMessage::Job { job }) => shared.offer(*job, "websocket"),
                Ok(ServerMessage::Ping) => {
                    let Ok(pong) = serde_json::to_string(&NodeMessage::Pong) else { continue };
                    if sink.send(Message::Text(pong.into())).await.is_err() {
                        return;
                    }
                }
                Ok(ServerMessage::TokenRotated { new_auth_token, .. }) => shared.rotate(new_auth_token),
                Ok(ServerMessage::Cancel { job_id }) => shared.cancel(&job_id, "websocket"),
                Ok(_) => {}
                Err(_) => tracing::debug!("skipping an unparseable websocket frame"),
            },
            Ok(Message::Ping(payload)) => {
                if sink.send(Message::Pong(payload)).await.is_err() {
                    return;
                }
            }
            Ok(Message::Close(_)) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    //! The reconnect waits.

    use super::*;

    #[test]
    fn reconnect_waits_double_to_the_cap_and_spread_over_the_upper_half_of_each_step() {
        let mut lowest = Backoff::new();
        let low: Vec<u64> = (0..7).map(|_| lowest.next(0).as_millis() as u64).collect();
        assert_eq!(low, [500, 1_000, 2_000, 4_000, 8_000, 15_000, 15_000]);
        let mut highest = Backoff::new();
        let high: Vec<u64> = (0..7).map(|_| highest.next(u64::MAX - 1).as_millis() as u64).collect();
        assert!(high.iter().zip(&low).all(|(high, low)| high >= low && *high < low * 2), "{high:?}");
        // Two nodes drawing differently wait differently: no lockstep.
        let (mut a, mut b) = (Backoff::new(), Backoff::new());
        assert_ne!(a.next(17), b.next(400));
        highest.reset();
        assert!(highest.next(0) == Duration::from_millis(500), "a held connection starts over");
    }
}
