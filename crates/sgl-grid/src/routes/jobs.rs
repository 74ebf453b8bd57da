//! What nodes post about jobs, over HTTP: results, stream chunks and failures; the rules are in
//! [`crate::service::results`]. A post about a job another replica holds is answered by that
//! replica ([`crate::cluster::forward`]).

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use sgl_protocol::api::node::{ChunkPost, CompleteJobRequest, FailJobRequest};

use crate::cluster::forward::{self, Holder, NodePost};
use crate::error::ApiResult;
use crate::routes::{AppJson, JobNodeAuth};
use crate::service::results;
use crate::state::AppState;

/// `POST /grid/jobs/{id}/complete`.
#[utoipa::path(
    post, path = "/grid/jobs/{id}/complete", tag = "node",
    params(("id" = String, Path, description = "The job id.")),
    request_body = sgl_protocol::api::node::CompleteJobRequest,
    responses(
        (status = 200, description = "Accepted and billed.", body = Object),
        (status = 404, description = "No such live job.", body = sgl_protocol::api::error::ErrorBody),
        (status = 409, description = "The job is a stream, or already answered.", body = sgl_protocol::api::error::ErrorBody),
        crate::routes::openapi::BodyErrors, crate::routes::openapi::NodeAuthErrors,
    ),
    security(("node_auth" = [])),
)]
pub(super) async fn complete(
    State(state): State<AppState>,
    auth: JobNodeAuth,
    Path(id): Path<String>,
    AppJson(body): AppJson<CompleteJobRequest>,
) -> ApiResult<Response> {
    if let Holder::Replica(to) = forward::holder(&state, &id).await? {
        return Ok(forward::post(&state, to, &auth.0.id, &id, NodePost::Complete(body)).await);
    }
    results::complete(&state, &auth.0, &id, body).await?;
    Ok(AppJson(json!({"ok": true})).into_response())
}

/// `POST /grid/jobs/{id}/chunk`: a sealed stream chunk, or `{"error": true}`.
#[utoipa::path(
    post, path = "/grid/jobs/{id}/chunk", tag = "node",
    params(("id" = String, Path, description = "The job id.")),
    request_body = sgl_protocol::api::node::ChunkPost,
    responses(
        (status = 200, description = "Relayed; `closed` tells the node the caller left.", body = sgl_protocol::api::node::ChunkResponse),
        (status = 404, description = "No such live job.", body = sgl_protocol::api::error::ErrorBody),
        (status = 409, description = "Not a stream, or a chunk out of order.", body = sgl_protocol::api::error::ErrorBody),
        crate::routes::openapi::BodyErrors, crate::routes::openapi::NodeAuthErrors,
    ),
    security(("node_auth" = [])),
)]
pub(super) async fn chunk(
    State(state): State<AppState>,
    auth: JobNodeAuth,
    Path(id): Path<String>,
    AppJson(body): AppJson<ChunkPost>,
) -> ApiResult<Response> {
    if let Holder::Replica(to) = forward::holder(&state, &id).await? {
        return Ok(forward::post(&state, to, &auth.0.id, &id, NodePost::Chunk(body)).await);
    }
    Ok(AppJson(results::chunk(&state, &auth.0, &id, body).await?).into_response())
}

/// `POST /grid/jobs/{id}/fail`.
#[utoipa::path(
    post, path = "/grid/jobs/{id}/fail", tag = "node",
    params(("id" = String, Path, description = "The job id.")),
    request_body = sgl_protocol::api::node::FailJobRequest,
    responses(
        (status = 200, description = "Recorded; the job goes to another node or fails.", body = Object),
        (status = 404, description = "No such live job.", body = sgl_protocol::api::error::ErrorBody),
        crate::routes::openapi::BodyErrors, crate::routes::openapi::NodeAuthErrors,
    ),
    security(("node_auth" = [])),
)]
pub(super) async fn fail(
    State(state): State<AppState>,
    auth: JobNodeAuth,
    Path(id): Path<String>,
    AppJson(body): AppJson<FailJobRequest>,
) -> ApiResult<Response> {
    if let Holder::Replica(to) = forward::holder(&state, &id).await? {
        return Ok(forward::post(&state, to, &auth.0.id, &id, NodePost::Fail(body)).await);
    }
    results::fail(&state, &auth.0, &id, body).await?;
    Ok(AppJson(json!({"ok": true})).into_response())
}
