//! The WebSocket job push (sgl-protocol.md §1.7b): jobs arrive the moment they are dispatched.
//! The token goes in the `X-Node-Auth` header; only a seed grid (one that does not announce
//! envelope v2) also gets it in the query string, where it would otherwise end up in proxy
//! logs (seed weakness S7). Reconnects back off from 1 s to 30 s.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use sgl_protocol::api::node::{HEADER_NODE_AUTH, NodeMessage, ServerMessage};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use super::{Shared, lock};
use crate::client::encode_segment;

/// The longest wait between reconnects.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

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
    let mut backoff = Duration::from_secs(1);
    loop {
        match connect(&shared).await {
            Ok(socket) => {
                backoff = Duration::from_secs(1);
                tracing::info!(target: "sgl::events::node", "websocket connected");
                session(&shared, socket).await;
                tracing::info!(target: "sgl::events::node", "websocket closed; reconnecting");
            }
            Err(error) => tracing::debug!(%error, "websocket connect failed"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
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
