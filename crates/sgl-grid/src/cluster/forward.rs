//! A node posts about its jobs to whichever replica the load balancer picks; only the replica
//! that dispatched a job holds its caller and its live state. A post for a job held elsewhere
//! is sent to that replica on the bus, which answers it exactly as it would have answered the
//! node itself; the answer comes back the same way and goes to the node unchanged.

use std::time::Duration;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sgl_grid_store::StoreError;
use sgl_grid_store::replicas::JobHome;
use sgl_protocol::api::error::ErrorCode;
use sgl_protocol::api::node::{ChunkPost, CompleteJobRequest, FailJobRequest};
use sgl_protocol::ids::JobId;

use super::{Message, locked};
use crate::error::ApiError;
use crate::service::results::{self, ResultError};
use crate::state::AppState;

/// How long a replica waits for the one holding a job to answer a forwarded post.
pub const FORWARD_WAIT: Duration = Duration::from_secs(10);

/// What a node posted.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "what", content = "body", rename_all = "snake_case")]
pub enum NodePost {
    /// `POST /grid/jobs/{id}/complete`.
    Complete(CompleteJobRequest),
    /// `POST /grid/jobs/{id}/chunk`.
    Chunk(ChunkPost),
    /// `POST /grid/jobs/{id}/fail`.
    Fail(FailJobRequest),
}

/// A node's post, forwarded to the replica holding the job.
#[derive(Debug, Serialize, Deserialize)]
pub struct Post {
    /// The replica that took it (and waits for the answer).
    pub from: String,
    /// The replica holding the job.
    pub to: String,
    /// Matches the reply to the waiting request.
    pub corr: u64,
    /// The node, authenticated by its token where it posted.
    pub node_id: String,
    /// The job, as in the path.
    pub job_id: String,
    /// The body.
    pub post: NodePost,
}

/// The holding replica's answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct Reply {
    /// The replica waiting for it.
    pub to: String,
    /// See [`Post::corr`].
    pub corr: u64,
    /// The HTTP status for the node.
    pub status: u16,
    /// The body for the node.
    pub body: Value,
}

/// Where a node's post about a job is answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    /// Here: the job is live here, or it is live nowhere (and here says so).
    Here,
    /// By this other replica.
    Replica(String),
}

/// A replica silent for this long is not waited for: a post about one of its jobs is refused
/// at once (the leader ends the job soon after).
const SILENT_HOLDER_MS: i64 = 3_000;

/// Finds who answers a post about job `id`: this replica unless another one, alive, dispatched
/// the job and it is still running.
pub async fn holder(state: &AppState, id: &str) -> Result<Holder, StoreError> {
    let Some(cluster) = state.cluster() else { return Ok(Holder::Here) };
    let here = id.parse::<JobId>().is_ok_and(|job_id| state.jobs().lock().contains_key(&job_id));
    if here {
        return Ok(Holder::Here);
    }
    let alive_since = state.now_ms() - SILENT_HOLDER_MS;
    Ok(match state.store().job_home(id).await? {
        Some(JobHome { replica: Some(replica), live: true, replica_seen_at: Some(seen) })
            if replica != cluster.id() && seen >= alive_since =>
        {
            Holder::Replica(replica)
        }
        _ => Holder::Here,
    })
}

/// Sends `post` about job `id` from `node_id` to replica `to` and waits for its answer, which
/// becomes this replica's answer to the node. A holder that does not answer in time (it died;
/// the leader will release the job) gets the node a retryable 503.
pub async fn post(state: &AppState, to: String, node_id: &str, id: &str, post: NodePost) -> Response {
    let Some(cluster) = state.cluster() else { return ApiError::from(ResultError::NotLive).into_response() };
    let corr = cluster.next_corr.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (sender, receiver) = tokio::sync::oneshot::channel();
    locked(&cluster.waiting).insert(corr, sender);
    let from = cluster.id().to_owned();
    let job_id = id.to_owned();
    cluster.send(Message::Post(Box::new(Post { from, to, corr, node_id: node_id.to_owned(), job_id, post })));
    cluster.stats.forwarded.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let reply = tokio::time::timeout(FORWARD_WAIT, receiver).await;
    locked(&cluster.waiting).remove(&corr);
    if reply.is_err() {
        cluster.stats.forward_timeouts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    match reply {
        Ok(Ok(reply)) => {
            let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::BAD_GATEWAY);
            (status, Json(reply.body)).into_response()
        }
        _ => ApiError::unavailable(
            ErrorCode::UpstreamFailed,
            "the coordinator replica holding this job did not answer; retry the post",
        )
        .with_retry_after(1)
        .into_response(),
    }
}

/// Answers a post another replica forwarded here, as if the node had posted it here.
pub(super) fn serve(state: &AppState, post: Post) {
    let state = state.clone();
    tokio::spawn(async move {
        let (status, body) = match answer(&state, &post.node_id, &post.job_id, post.post).await {
            Ok(body) => (StatusCode::OK, body),
            Err(error) => {
                let (status, body) = error.into_parts();
                (status, serde_json::to_value(body).unwrap_or(Value::Null))
            }
        };
        if let Some(cluster) = state.cluster() {
            cluster.send(Message::Reply(Reply { to: post.from, corr: post.corr, status: status.as_u16(), body }));
        }
    });
}

async fn answer(state: &AppState, node_id: &str, id: &str, post: NodePost) -> Result<Value, ApiError> {
    let node = state.store().node(node_id).await?.ok_or_else(ApiError::invalid_node_token)?;
    Ok(match post {
        NodePost::Complete(body) => {
            results::complete(state, &node, id, body).await?;
            json!({"ok": true})
        }
        NodePost::Chunk(body) => serde_json::to_value(results::chunk(state, &node, id, body).await?)
            .map_err(|error| ApiError::internal(&error))?,
        NodePost::Fail(body) => {
            results::fail(state, &node, id, body).await?;
            json!({"ok": true})
        }
    })
}
