//! The OpenAPI 3.1 document of every HTTP route, served at `/openapi.json` and checked in as
//! `docs/openapi.json` (`cargo xtask openapi` rewrites it; a test fails when it drifts).
//!
//! Schemas come from the wire types in `sgl-protocol` and `sgl-pay` (`#[derive(ToSchema)]`
//! beside each definition); each operation is described by `#[utoipa::path]` on its handler. The
//! error responses every operation shares are the [`IntoResponses`] sets below, each an
//! OpenAI-shaped [`ErrorBody`].

use axum::http::header;
use axum::response::IntoResponse;
use sgl_protocol::api::error::ErrorBody;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoResponses, Modify, OpenApi};

use super::{
    account, admin, blobs, chain, chat, compute, device, discovery, embeddings, facilitator, health, jobs, machines,
    market, nodes, operators, ws,
};

/// The whole document.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The document as pretty JSON with a trailing newline, exactly as checked in.
pub fn document_json() -> String {
    let mut text = document().to_pretty_json().expect("an OpenAPI document always serialises");
    text.push('\n');
    text
}

/// `GET /openapi.json`.
pub(super) async fn serve() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], document_json())
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "sgl-grid",
        description = "The SGL grid coordinator: an OpenAI-compatible chat API with sealed, signed \
            and verified inference, paid with credits, x402 or MPP; and the node API its operators' \
            nodes speak. Wire formats are specified in docs/protocol.md.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    modifiers(&SecuritySchemes),
    paths(
        chat::completions, embeddings::embeddings,
        discovery::models, discovery::model, discovery::grid_models, discovery::pricing,
        discovery::capacity, discovery::providers, discovery::reserve,
        account::list, account::create, account::revoke, account::wallet_sign_in, account::balance, account::topup,
        account::relabel, account::move_credits, account::usage, account::events,
        admin::overview, admin::overview_events,
        facilitator::verify, facilitator::settle, facilitator::supported,
        health::healthz, health::metrics, serve_doc,
        device::start, device::poll, device::approve, device::verify_page,
        nodes::register, nodes::heartbeat, nodes::status, nodes::challenge, nodes::verify_attestation,
        nodes::set_off_grid, nodes::prices, nodes::set_price, nodes::earnings, nodes::allowed_binaries,
        ws::connect,
        operators::stake, operators::nodes, operators::events, operators::earnings, operators::action,
        operators::payouts, chain::info,
        jobs::complete, jobs::chunk, jobs::fail,
        blobs::put_caller, blobs::get_caller, blobs::put_node, blobs::get_node,
        compute::submit, compute::list, compute::job, compute::cancel, compute::result, compute::logs,
        compute::lease, compute::start, compute::receipt, compute::fail, compute::give_secrets,
        compute::fetch_secrets,
        machines::plans, machines::regions, machines::provision, machines::list, machines::events, machines::show,
        machines::password, machines::extend, machines::resize, machines::destroy,
        market::place, market::list, market::show, market::cancel_order, market::lease, market::cancel_lease,
        market::complete_lease, market::open_orders, market::bid, market::bids, market::node_complete,
    ),
    tags(
        (name = "caller", description = "Inference and discovery, as OpenAI clients and the SGL SDKs call them."),
        (name = "account", description = "API keys and prepaid credits."),
        (name = "payments", description = "The grid's own x402 facilitator."),
        (name = "node", description = "The node API: registration, heartbeats, attestation, jobs."),
        (name = "compute", description = "General compute: blobs and signed jobs run by several nodes and verified."),
        (name = "machines", description = "Whole machines rented by the hour: plans, provision, extend, resize, destroy."),
        (name = "market", description = "The order book for work that lasts: orders, nodes' bids, leases paid by the second."),
        (name = "operator", description = "An operator's stake, earnings and signed actions."),
        (name = "grid", description = "Health, metrics and this document."),
        (name = "admin", description = "The grid operator's overview, behind the admin token."),
    ),
)]
struct ApiDoc;

/// Describes `GET /openapi.json` itself (the handler is [`serve`]).
#[utoipa::path(
    get, path = "/openapi.json", tag = "grid",
    responses((status = 200, description = "This document.", content_type = "application/json", body = Object))
)]
#[allow(dead_code)]
fn serve_doc() {}

/// The schemes named by operations' `security`.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).description(Some("A caller's API key."));
        components.add_security_scheme("api_key", SecurityScheme::Http(bearer.build()));
        components.add_security_scheme(
            "x_api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-Key",
                "A caller's API key, as the SGL SDKs send it.",
            ))),
        );
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Admin-Token",
                "The grid's admin token (admin_token, SGL_ADMIN_TOKEN); Authorization: Bearer works too.",
            ))),
        );
        components.add_security_scheme(
            "node_auth",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Node-Auth",
                "A node's bearer token from registration; it rotates on heartbeats.",
            ))),
        );
    }
}

/// Errors of an operation that takes a JSON body and nothing else.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub(super) enum BodyErrors {
    /// The body is not valid JSON for this operation, or a field is out of range.
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// The body is larger than the grid's limit.
    #[response(status = 413)]
    TooLarge(ErrorBody),
    /// The body was not sent as `application/json`.
    #[response(status = 415)]
    NotJson(ErrorBody),
}

/// Errors of an operation authenticated by `X-Node-Auth` for one node (with [`BodyErrors`]).
#[derive(IntoResponses)]
#[allow(dead_code)]
pub(super) enum NodeAuthErrors {
    /// No node token, or an unknown or expired one.
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// The token belongs to another node than the one named.
    #[response(status = 403)]
    Forbidden(ErrorBody),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checked_in_document_is_the_generated_one() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
        let checked_in = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            checked_in == document_json(),
            "docs/openapi.json is not what the routes generate; run `cargo xtask openapi` and commit it"
        );
    }
}
