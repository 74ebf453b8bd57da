//! Content-addressed blobs over HTTP: requesters upload bundle files and inputs and download
//! outputs (`/v1/blobs/{sha256}`, with an API key); nodes download bundles and upload outputs
//! (`/grid/blobs/{sha256}`, with their token). A blob is stored once, under the SHA-256 of its
//! bytes, up to the grid's size cap.

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use sgl_protocol::api::compute::BlobStored;
use sgl_protocol::compute::Digest;

use crate::error::{ApiError, ApiResult};
use crate::routes::{AppJson, CallerAuth, NodeAuth};
use crate::state::AppState;

fn digest(text: &str) -> Result<Digest, ApiError> {
    text.parse().map_err(|_| ApiError::bad_param("sha256", "the blob's name is its SHA-256: 64 lowercase hex digits"))
}

async fn put(state: &AppState, name: &str, body: Body) -> ApiResult<Response> {
    let digest = digest(name)?;
    let max = state.config().compute.max_blob_bytes;
    let bytes = axum::body::to_bytes(body, usize::try_from(max).unwrap_or(usize::MAX))
        .await
        .map_err(|_| ApiError::too_large().with_param("body"))?;
    let size = bytes.len() as u64;
    let blobs = state.blobs().clone();
    let created = tokio::task::spawn_blocking(move || blobs.put(&digest, &bytes))
        .await
        .map_err(|e| ApiError::internal(&e))?
        .map_err(crate::service::compute::WorkError::from)?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, AppJson(BlobStored { sha256: digest, size, created })).into_response())
}

async fn get(state: &AppState, name: &str) -> ApiResult<Response> {
    let digest = digest(name)?;
    let blobs = state.blobs().clone();
    let bytes = tokio::task::spawn_blocking(move || blobs.get(&digest))
        .await
        .map_err(|e| ApiError::internal(&e))?
        .map_err(crate::service::compute::WorkError::from)?
        .ok_or_else(|| ApiError::not_found("no such blob"))?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], Bytes::from(bytes)).into_response())
}

/// `PUT /v1/blobs/{sha256}`.
#[utoipa::path(
    put, path = "/v1/blobs/{sha256}", tag = "compute",
    params(("sha256" = sgl_protocol::compute::Digest, Path, description = "SHA-256 of the body, 64 lowercase hex digits.")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses(
        (status = 201, description = "Stored.", body = sgl_protocol::api::compute::BlobStored),
        (status = 200, description = "Already stored; nothing written.", body = sgl_protocol::api::compute::BlobStored),
        (status = 400, description = "The body does not hash to the name.", body = sgl_protocol::api::error::ErrorBody),
        (status = 401, description = "No API key, or an unknown one.", body = sgl_protocol::api::error::ErrorBody),
        (status = 413, description = "Larger than the grid's blob cap.", body = sgl_protocol::api::error::ErrorBody),
    ),
    security(("api_key" = []), ("x_api_key" = [])),
)]
pub(super) async fn put_caller(
    State(state): State<AppState>,
    _caller: CallerAuth,
    Path(name): Path<String>,
    body: Body,
) -> ApiResult<Response> {
    put(&state, &name, body).await
}

/// `GET /v1/blobs/{sha256}`.
#[utoipa::path(
    get, path = "/v1/blobs/{sha256}", tag = "compute",
    params(("sha256" = sgl_protocol::compute::Digest, Path, description = "SHA-256 of the blob.")),
    responses(
        (status = 200, description = "The bytes.", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 400, description = "Not a SHA-256.", body = sgl_protocol::api::error::ErrorBody),
        (status = 401, description = "No API key, or an unknown one.", body = sgl_protocol::api::error::ErrorBody),
        (status = 404, description = "No such blob.", body = sgl_protocol::api::error::ErrorBody),
    ),
    security(("api_key" = []), ("x_api_key" = [])),
)]
pub(super) async fn get_caller(
    State(state): State<AppState>,
    _caller: CallerAuth,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    get(&state, &name).await
}

/// `PUT /grid/blobs/{sha256}`: a node's output.
#[utoipa::path(
    put, path = "/grid/blobs/{sha256}", tag = "node",
    params(("sha256" = sgl_protocol::compute::Digest, Path, description = "SHA-256 of the body.")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses(
        (status = 201, description = "Stored.", body = sgl_protocol::api::compute::BlobStored),
        (status = 200, description = "Already stored.", body = sgl_protocol::api::compute::BlobStored),
        (status = 400, description = "The body does not hash to the name.", body = sgl_protocol::api::error::ErrorBody),
        (status = 413, description = "Larger than the grid's blob cap.", body = sgl_protocol::api::error::ErrorBody),
        crate::routes::openapi::NodeAuthErrors,
    ),
    security(("node_auth" = [])),
)]
pub(super) async fn put_node(
    State(state): State<AppState>,
    _node: NodeAuth,
    Path(name): Path<String>,
    body: Body,
) -> ApiResult<Response> {
    put(&state, &name, body).await
}

/// `GET /grid/blobs/{sha256}`: a bundle's file or input.
#[utoipa::path(
    get, path = "/grid/blobs/{sha256}", tag = "node",
    params(("sha256" = sgl_protocol::compute::Digest, Path, description = "SHA-256 of the blob.")),
    responses(
        (status = 200, description = "The bytes.", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 400, description = "Not a SHA-256.", body = sgl_protocol::api::error::ErrorBody),
        (status = 404, description = "No such blob.", body = sgl_protocol::api::error::ErrorBody),
        crate::routes::openapi::NodeAuthErrors,
    ),
    security(("node_auth" = [])),
)]
pub(super) async fn get_node(
    State(state): State<AppState>,
    _node: NodeAuth,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    get(&state, &name).await
}
