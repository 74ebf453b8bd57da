//! General compute over HTTP: the requester's job API (`/v1/jobs`) and the node's side
//! (`/grid/compute/...`). Handlers extract, call [`crate::service::compute`] and map.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use serde::Deserialize;
use sgl_grid_store::api_keys::ApiKeyRecord;
use sgl_protocol::api::compute::{
    AttemptAck, AttemptFailure, AttemptSecrets, JobList, JobResult, JobView, LeaseRequest, LeaseResponse, ReceiptPost,
    SubmitJobRequest,
};

use crate::error::{ApiError, ApiResult};
use crate::payments::{self, Charge};
use crate::routes::{AppJson, CallerAuth, MaybeCaller, NodeAuth};
use crate::service::compute::{lease, report, secrets, submit, views};
use crate::state::AppState;

/// `POST /v1/jobs`: a signed bundle whose files and inputs are blobs. Paid from the key's
/// credits, or without a key by x402 or MPP for the whole escrow.
#[utoipa::path(
    post, path = "/v1/jobs", tag = "compute",
    request_body = sgl_protocol::api::compute::SubmitJobRequest,
    responses(
        (status = 200, description = "Queued; its escrow is held.", body = sgl_protocol::api::compute::JobView),
        (status = 400, description = "A bad bundle: signature, manifest, limits, missing blobs or price cap.", body = sgl_protocol::api::error::ErrorBody),
        (status = 401, description = "An unknown or revoked API key.", body = sgl_protocol::api::error::ErrorBody),
        (status = 402, description = "Credits short of the escrow, or the x402 price of it.", body = sgl_protocol::api::error::ErrorBody),
        (status = 413, description = "The body is larger than the grid's limit.", body = sgl_protocol::api::error::ErrorBody),
        (status = 415, description = "The body was not sent as JSON.", body = sgl_protocol::api::error::ErrorBody),
    ),
    security((), ("api_key" = []), ("x_api_key" = [])),
)]
pub(super) async fn submit(
    State(state): State<AppState>,
    MaybeCaller(caller): MaybeCaller,
    headers: HeaderMap,
    AppJson(request): AppJson<SubmitJobRequest>,
) -> Response {
    match submit_inner(&state, caller, &headers, request).await {
        Ok(response) | Err(response) => response,
    }
}

async fn submit_inner(
    state: &AppState,
    caller: Option<ApiKeyRecord>,
    headers: &HeaderMap,
    request: SubmitJobRequest,
) -> Result<Response, Response> {
    let fail = |error: ApiError| error.into_response();
    let plan = submit::check(state, request).await.map_err(|e| fail(e.into()))?;
    let (payer, paid) = match caller {
        Some(key) => (key, None),
        None => {
            let description = format!("A compute job of {} slice(s)", plan.bundle.manifest.slices.len());
            let charge = Charge::new(plan.escrow_micros, headers, "/v1/jobs", &description);
            let paid = payments::take(state, headers, &charge).await?;
            (paid.key.clone(), Some(paid))
        }
    };
    let id = submit::enqueue(state, &plan, &payer).await.map_err(|e| fail(e.into()))?;
    let mut view = views::job(state, &payer, &id).await.map_err(|e| fail(e.into()))?;
    if paid.is_some() {
        // The payer has no key: one of its wallet's account, to follow the job.
        match state.accounts().create(&payer, Some(format!("job {id}")), None).await {
            Ok(created) => view.management_api_key = Some(created.api_key),
            Err(error) => tracing::warn!(%error, job = %id, "no management key for a paid job"),
        }
    }
    let response = AppJson(view).into_response();
    Ok(match paid {
        Some(paid) => paid.stamp(response),
        None => response,
    })
}

/// `GET /v1/jobs`.
#[utoipa::path(
    get, path = "/v1/jobs", tag = "compute",
    responses(
        (status = 200, description = "The account's jobs, newest first (at most 100).", body = sgl_protocol::api::compute::JobList),
        (status = 401, description = "No API key, or an unknown one.", body = sgl_protocol::api::error::ErrorBody),
    ),
    security(("api_key" = []), ("x_api_key" = [])),
)]
pub(super) async fn list(State(state): State<AppState>, CallerAuth(caller): CallerAuth) -> ApiResult<AppJson<JobList>> {
    Ok(AppJson(views::list(&state, &caller).await?))
}

/// `GET /v1/jobs/{id}`.
#[utoipa::path(
    get, path = "/v1/jobs/{id}", tag = "compute",
    params(("id" = String, Path, description = "The job id.")),
    responses(
        (status = 200, description = "The job, per slice and attempt.", body = sgl_protocol::api::compute::JobView),
        (status = 401, description = "No API key, or an unknown one.", body = sgl_protocol::api::error::ErrorBody),
        (status = 404, description = "No such job in this account.", body = sgl_protocol::api::error::ErrorBody),
    ),
    security(("api_key" = []), ("x_api_key" = [])),
)]
pub(super) async fn job(
    State(state): State<AppState>,
    CallerAuth(caller): CallerAuth,
    Path(id): Path<String>,
) -> ApiResult<AppJson<JobView>> {
    Ok(AppJson(views::job(&state, &caller, &id).await?))
}

/// `DELETE /v1/jobs/{id}`.
#[utoipa::path(
    delete, path = "/v1/jobs/{id}", tag = "compute",
    params(("id" = String, Path, description = "The job id.")),
    responses(
        (status = 200, description = "Cancelled; the unused escrow went back.", body = sgl_protocol::api::compute::JobView),
        (status = 401, description = "No API key, or an unknown one.", body = sgl_protocol::api::error::ErrorBody),
        (status = 404, description = "No such job in this account.", body = sgl_protocol::api::error::ErrorBody),
        (status = 409, description = "The job already ended.", body = sgl_protocol::api::error::ErrorBody),
    ),
    security(("api_key" = []), ("x_api_key" = [])),
)]
pub(super) async fn cancel(
    State(state): State<AppState>,
    CallerAuth(caller): CallerAuth,
    Path(id): Path<String>,
) -> ApiResult<AppJson<JobView>> {
    Ok(AppJson(views::cancel(&state, &caller, &id).await?))
}

/// `GET /v1/jobs/{id}/result`.
#[utoipa::path(
    get, path = "/v1/jobs/{id}/result", tag = "compute",
    params(("id" = String, Path, description = "The job id.")),
    responses(
        (status = 200, description = "Each slice's verified outputs and the receipts that agreed.", body = sgl_protocol::api::compute::JobResult),
        (status = 401, description = "No API key, or an unknown one.", body = sgl_protocol::api::error::ErrorBody),
        (status = 404, description = "No such job in this account.", body = sgl_protocol::api::error::ErrorBody),
        (status = 409, description = "The job is not done.", body = sgl_protocol::api::error::ErrorBody),
    ),
    security(("api_key" = []), ("x_api_key" = [])),
)]
pub(super) async fn result(
    State(state): State<AppState>,
    CallerAuth(caller): CallerAuth,
    Path(id): Path<String>,
) -> ApiResult<AppJson<JobResult>> {
    Ok(AppJson(views::result(&state, &caller, &id).await?))
}

/// The query of `GET /v1/jobs/{id}/logs`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct LogsQuery {
    /// Follow with server-sent events until the job ends.
    #[serde(default)]
    follow: bool,
}

/// `GET /v1/jobs/{id}/logs`.
#[utoipa::path(
    get, path = "/v1/jobs/{id}/logs", tag = "compute",
    params(("id" = String, Path, description = "The job id."), LogsQuery),
    responses(
        (status = 200, description = "The attempts' logs: a JSON list, or with `follow=true` SSE events `log` (a JobLog), `state` (the job) and `done`.", body = Vec<sgl_protocol::api::compute::JobLog>),
        (status = 401, description = "No API key, or an unknown one.", body = sgl_protocol::api::error::ErrorBody),
        (status = 404, description = "No such job in this account.", body = sgl_protocol::api::error::ErrorBody),
    ),
    security(("api_key" = []), ("x_api_key" = [])),
)]
pub(super) async fn logs(
    State(state): State<AppState>,
    CallerAuth(caller): CallerAuth,
    Path(id): Path<String>,
    Query(query): Query<LogsQuery>,
) -> ApiResult<Response> {
    let (logs, _) = views::logs(&state, &caller, &id).await?;
    if !query.follow {
        return Ok(AppJson(logs).into_response());
    }
    Ok(follow(state, caller, id).keep_alive(KeepAlive::default()).into_response())
}

/// How often a followed job is looked at again.
const FOLLOW_POLL: Duration = Duration::from_millis(500);

/// SSE: every log as it arrives, the job whenever its state changes, then `done`.
fn follow(state: AppState, caller: ApiKeyRecord, id: String) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    struct Follow {
        /// (slice, attempt, stream) of every log sent: logs are listed by slice and attempt,
        /// so one that arrives late lands among those already sent.
        sent_logs: std::collections::HashSet<(u32, u32, bool)>,
        last_state: Option<String>,
        finished: bool,
    }
    let start = Follow { sent_logs: std::collections::HashSet::new(), last_state: None, finished: false };
    let stream = futures_util::stream::unfold(start, move |mut seen| {
        let (state, caller, id) = (state.clone(), caller.clone(), id.clone());
        async move {
            if seen.finished {
                return None;
            }
            loop {
                let mut events = Vec::new();
                let (logs, ended) = match views::logs(&state, &caller, &id).await {
                    Ok(found) => found,
                    Err(error) => {
                        seen.finished = true;
                        let event = Event::default().event("error").data(error.to_string());
                        return Some((futures_util::stream::iter(vec![Ok(event)]), seen));
                    }
                };
                for log in logs {
                    let key = (log.slice, log.attempt, log.stream == sgl_protocol::api::compute::LogStream::Stdout);
                    if seen.sent_logs.insert(key) {
                        events.push(json_event("log", &log));
                    }
                }
                if let Ok(view) = views::job(&state, &caller, &id).await {
                    let summary = format!("{:?}/{}", view.state, view.slices_done);
                    if seen.last_state.as_deref() != Some(&summary) {
                        seen.last_state = Some(summary);
                        events.push(json_event("state", &view));
                    }
                }
                if ended {
                    seen.finished = true;
                    events.push(Ok(Event::default().event("done").data("{}")));
                }
                if !events.is_empty() {
                    return Some((futures_util::stream::iter(events), seen));
                }
                tokio::time::sleep(FOLLOW_POLL).await;
            }
        }
    });
    Sse::new(futures_util::StreamExt::flatten(stream))
}

fn json_event(name: &str, value: &impl serde::Serialize) -> Result<Event, Infallible> {
    Ok(Event::default().event(name).data(serde_json::to_string(value).unwrap_or_default()))
}

/// `POST /grid/compute/lease`: a node asks for slices.
#[utoipa::path(
    post, path = "/grid/compute/lease", tag = "node",
    request_body = sgl_protocol::api::compute::LeaseRequest,
    responses(
        (status = 200, description = "The slices leased, possibly none.", body = sgl_protocol::api::compute::LeaseResponse),
        (status = 409, description = "The node is not live or not eligible, or announced none of the classes.", body = sgl_protocol::api::error::ErrorBody),
        crate::routes::openapi::BodyErrors, crate::routes::openapi::NodeAuthErrors,
    ),
    security(("node_auth" = [])),
)]
pub(super) async fn lease(
    State(state): State<AppState>,
    NodeAuth(node): NodeAuth,
    AppJson(request): AppJson<LeaseRequest>,
) -> ApiResult<AppJson<LeaseResponse>> {
    Ok(AppJson(lease::lease(&state, &node, request).await?))
}

/// `POST /grid/compute/attempts/{id}/start`.
#[utoipa::path(
    post, path = "/grid/compute/attempts/{id}/start", tag = "node",
    params(("id" = i64, Path, description = "The attempt id from the lease.")),
    responses(
        (status = 200, description = "Running.", body = sgl_protocol::api::compute::AttemptAck),
        (status = 400, description = "The id is not an attempt id.", body = sgl_protocol::api::error::ErrorBody),
        (status = 409, description = "The attempt is not leased to this node any more.", body = sgl_protocol::api::error::ErrorBody),
        crate::routes::openapi::NodeAuthErrors,
    ),
    security(("node_auth" = [])),
)]
pub(super) async fn start(
    State(state): State<AppState>,
    NodeAuth(node): NodeAuth,
    Path(id): Path<i64>,
) -> ApiResult<AppJson<AttemptAck>> {
    if state.store().start_compute_attempt(id, &node.id).await.map_err(crate::service::compute::WorkError::from)? {
        return Ok(AppJson(AttemptAck { state: sgl_protocol::api::compute::AttemptState::Running }));
    }
    Err(ApiError::conflict("the attempt is not leased to this node any more; drop it"))
}

/// `POST /grid/compute/attempts/{id}/receipt`.
#[utoipa::path(
    post, path = "/grid/compute/attempts/{id}/receipt", tag = "node",
    params(("id" = i64, Path, description = "The attempt id from the lease.")),
    request_body = sgl_protocol::api::compute::ReceiptPost,
    responses(
        (status = 200, description = "Taken; the attempt's state after it.", body = sgl_protocol::api::compute::AttemptAck),
        (status = 404, description = "No such attempt for this node.", body = sgl_protocol::api::error::ErrorBody),
        (status = 409, description = "The attempt expired, was cancelled or was reported already.", body = sgl_protocol::api::error::ErrorBody),
        crate::routes::openapi::BodyErrors, crate::routes::openapi::NodeAuthErrors,
    ),
    security(("node_auth" = [])),
)]
pub(super) async fn receipt(
    State(state): State<AppState>,
    NodeAuth(node): NodeAuth,
    Path(id): Path<i64>,
    AppJson(post): AppJson<ReceiptPost>,
) -> ApiResult<AppJson<AttemptAck>> {
    Ok(AppJson(report::receipt(&state, &node, id, post).await?))
}

/// `POST /grid/compute/attempts/{id}/fail`.
#[utoipa::path(
    post, path = "/grid/compute/attempts/{id}/fail", tag = "node",
    params(("id" = i64, Path, description = "The attempt id from the lease.")),
    request_body = sgl_protocol::api::compute::AttemptFailure,
    responses(
        (status = 200, description = "Taken; the slice goes back to the queue.", body = sgl_protocol::api::compute::AttemptAck),
        (status = 404, description = "No such attempt for this node.", body = sgl_protocol::api::error::ErrorBody),
        (status = 409, description = "The attempt is not live any more.", body = sgl_protocol::api::error::ErrorBody),
        crate::routes::openapi::BodyErrors, crate::routes::openapi::NodeAuthErrors,
    ),
    security(("node_auth" = [])),
)]
pub(super) async fn fail(
    State(state): State<AppState>,
    NodeAuth(node): NodeAuth,
    Path(id): Path<i64>,
    AppJson(failure): AppJson<AttemptFailure>,
) -> ApiResult<AppJson<AttemptAck>> {
    Ok(AppJson(report::fail(&state, &node, id, failure).await?))
}

/// `POST /v1/jobs/{id}/attempts/{attempt_id}/secrets`: the job's secrets for one attempt,
/// sealed to its node.
#[utoipa::path(
    post, path = "/v1/jobs/{id}/attempts/{attempt_id}/secrets", tag = "compute",
    params(("id" = String, Path, description = "The job id."), ("attempt_id" = i64, Path, description = "The attempt's id, from the job's view.")),
    request_body = sgl_protocol::api::compute::AttemptSecrets,
    responses(
        (status = 200, description = "Stored (ciphertext only) for the node.", body = Object),
        (status = 400, description = "Not exactly the secrets the manifest declares.", body = sgl_protocol::api::error::ErrorBody),
        (status = 401, description = "No API key, or an unknown one.", body = sgl_protocol::api::error::ErrorBody),
        (status = 404, description = "No such attempt of a job in this account.", body = sgl_protocol::api::error::ErrorBody),
        (status = 409, description = "The attempt is not live, or its secrets were given already.", body = sgl_protocol::api::error::ErrorBody),
        (status = 413, description = "The body is larger than the grid's limit.", body = sgl_protocol::api::error::ErrorBody),
        (status = 415, description = "The body was not sent as JSON.", body = sgl_protocol::api::error::ErrorBody),
    ),
    security(("api_key" = []), ("x_api_key" = [])),
)]
pub(super) async fn give_secrets(
    State(state): State<AppState>,
    CallerAuth(caller): CallerAuth,
    Path((id, attempt_id)): Path<(String, i64)>,
    AppJson(secrets): AppJson<AttemptSecrets>,
) -> ApiResult<AppJson<serde_json::Value>> {
    secrets::give(&state, &caller, &id, attempt_id, secrets).await?;
    Ok(AppJson(serde_json::json!({"ok": true})))
}

/// `GET /grid/compute/attempts/{id}/secrets`: the node's attempt's sealed secrets (an empty
/// list until the requester gives them).
#[utoipa::path(
    get, path = "/grid/compute/attempts/{id}/secrets", tag = "node",
    params(("id" = i64, Path, description = "The attempt id from the lease.")),
    responses(
        (status = 200, description = "The sealed secrets, or none yet.", body = sgl_protocol::api::compute::AttemptSecrets),
        (status = 400, description = "The id is not an attempt id.", body = sgl_protocol::api::error::ErrorBody),
        (status = 404, description = "No such attempt for this node.", body = sgl_protocol::api::error::ErrorBody),
        (status = 409, description = "The attempt is not live any more.", body = sgl_protocol::api::error::ErrorBody),
        crate::routes::openapi::NodeAuthErrors,
    ),
    security(("node_auth" = [])),
)]
pub(super) async fn fetch_secrets(
    State(state): State<AppState>,
    NodeAuth(node): NodeAuth,
    Path(id): Path<i64>,
) -> ApiResult<AppJson<AttemptSecrets>> {
    Ok(AppJson(secrets::fetch(&state, &node.id, id).await?))
}
