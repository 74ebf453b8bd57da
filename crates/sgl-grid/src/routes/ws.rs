//! The node's WebSocket at `/grid/nodes/{id}/ws`: jobs are pushed here the moment they are
//! dispatched (heartbeats re-deliver anything unacknowledged). The token is read from the
//! `X-Node-Auth` header, or, for seed nodes, from `?auth_token=`.

use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use sgl_protocol::api::node::{HEADER_NODE_AUTH, NodeMessage, ServerMessage};
use sgl_protocol::ids::NodeId;
use tokio::sync::mpsc;

use crate::error::{ApiError, ApiResult};
use crate::service::secrets;
use crate::state::AppState;

/// Messages queued for one node's socket.
const SESSION_BUFFER: usize = 256;
/// How often the grid pings an idle socket.
const PING_EVERY: Duration = Duration::from_secs(20);
/// The socket's initial read buffer. Nodes only send pongs, and tungstenite zero-fills its
/// whole read buffer (128 KiB by default), which made it most of a connected node's memory;
/// a larger message still grows the buffer as needed.
const READ_BUFFER_BYTES: usize = 4 * 1024;

#[derive(Debug, Deserialize)]
pub(super) struct WsQuery {
    auth_token: Option<String>,
}

/// Upgrades after checking the token belongs to the node in the path.
#[utoipa::path(
    get, path = "/grid/nodes/{id}/ws", tag = "node",
    params(("id" = String, Path, description = "The node id."), ("auth_token" = Option<String>, Query, description = "The token, for seed nodes that cannot set a header.")),
    responses(
        (status = 101, description = "Upgraded: the grid pushes `ServerMessage`s as JSON text frames."),
        (status = 400, description = "Not a WebSocket upgrade request.", body = sgl_protocol::api::error::ErrorBody),
        (status = 401, description = "No node token, or an unknown one.", body = sgl_protocol::api::error::ErrorBody),
        (status = 403, description = "The token belongs to another node.", body = sgl_protocol::api::error::ErrorBody),
        (status = 426, description = "Upgrade required.", body = sgl_protocol::api::error::ErrorBody),
    ),
    security(("node_auth" = []), ()),
)]
pub(super) async fn connect(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<WsQuery>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> ApiResult<Response> {
    let token = headers
        .get(HEADER_NODE_AUTH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or(query.auth_token)
        .ok_or_else(ApiError::invalid_node_token)?;
    let node = state
        .store()
        .node_by_token(&secrets::hash(&token), state.now_ms())
        .await?
        .ok_or_else(ApiError::invalid_node_token)?;
    if node.id != id {
        return Err(ApiError::forbidden("this node token belongs to another node"));
    }
    let node_id: NodeId = node.id.parse().map_err(|e| ApiError::internal(&e))?;
    Ok(upgrade.read_buffer_size(READ_BUFFER_BYTES).on_upgrade(move |socket| session(state, node_id, socket)))
}

async fn session(state: AppState, node_id: NodeId, socket: WebSocket) {
    let (tx, mut rx) = mpsc::channel(SESSION_BUFFER);
    // Jobs that were waiting for this node go out first.
    let now = state.now_ms();
    for job in state.jobs().lock().values_mut().filter(|job| job.node_id == node_id && !job.acked) {
        job.delivered_at.get_or_insert(now);
        let _ = tx.try_send(ServerMessage::Job { job: Box::new(job.pending.clone()) });
    }
    state.jobs().sessions().insert(node_id, tx.clone());
    tracing::info!(target: "sgl::events::node", node_id = %node_id, "websocket connected");
    let (mut sink, mut stream) = socket.split();
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    loop {
        tokio::select! {
            outgoing = rx.recv() => {
                let Some(message) = outgoing else { break };
                let Ok(text) = serde_json::to_string(&message) else { continue };
                if sink.send(Message::Text(text.into())).await.is_err() {
                    break;
                }
            }
            incoming = stream.next() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    // Only `pong` is defined; anything else is ignored.
                    let _ = serde_json::from_str::<NodeMessage>(&text);
                }
                Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
            _ = ping.tick() => {
                let Ok(text) = serde_json::to_string(&ServerMessage::Ping) else { continue };
                if sink.send(Message::Text(text.into())).await.is_err() {
                    break;
                }
            }
        }
    }
    let mut sessions = state.jobs().sessions();
    if sessions.get(&node_id).is_some_and(|current| current.same_channel(&tx)) {
        sessions.remove(&node_id);
    }
    tracing::info!(target: "sgl::events::node", node_id = %node_id, "websocket closed");
}
