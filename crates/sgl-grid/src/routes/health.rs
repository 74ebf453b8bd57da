//! `/healthz` and `/metrics`.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde_json::json;

use crate::error::ApiResult;
use crate::metrics::NodeCounts;
use crate::routes::AppJson;
use crate::state::AppState;

/// Liveness and the store's reachability.
#[utoipa::path(
    get, path = "/healthz", tag = "grid",
    responses(
        (status = 200, description = "Alive, and the store answers: `{\"status\": \"ok\", \"backend\": \"sqlite\"|\"postgres\"}`.", body = Object),
    ),
)]
pub(super) async fn healthz(State(state): State<AppState>) -> ApiResult<impl IntoResponse> {
    state.store().allowed_binaries().await?;
    Ok(AppJson(json!({"status": "ok", "backend": format!("{:?}", state.store().backend()).to_lowercase()})))
}

/// Prometheus text format.
#[utoipa::path(
    get, path = "/metrics", tag = "grid",
    responses(
        (status = 200, description = "Prometheus text format.", content_type = "text/plain", body = String),
    ),
)]
pub(super) async fn metrics(State(state): State<AppState>) -> ApiResult<impl IntoResponse> {
    let registered = state.store().list_nodes().await?;
    let live = state.registry().snapshot_by_id();
    let timeout_ms = state.config().node_timeout_ms();
    let now = state.now_ms();
    let mut counts = NodeCounts::default();
    for node in &registered {
        let online = live.get(&node.id).is_some_and(|l| l.is_online(now, timeout_ms));
        match (online, node.off_grid) {
            (true, false) => counts.online += 1,
            (true, true) => counts.off_grid += 1,
            (false, _) => counts.offline += 1,
        }
    }
    let mut body = state.metrics().render(counts, state.admission().waiting_total());
    if let Some(cluster) = state.cluster() {
        cluster.render_metrics(&mut body, now);
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body))
}
