//! OpenAPI schemas for the wire types whose JSON is not what `#[derive(ToSchema)]` would infer:
//! identifiers and secrets that travel as constrained strings, and the bodies with a hand-written
//! `Serialize`. Every other wire type derives its schema beside its definition, so the document
//! `sgl-grid` serves at `/openapi.json` cannot drift from the types.

use utoipa::openapi::schema::{
    AnyOfBuilder, ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, SchemaType, Type,
};
use utoipa::openapi::{KnownFormat, RefOr};
use utoipa::{PartialSchema, ToSchema};

use crate::api::account::TopupRequest;
use crate::api::inference::{InferenceRequest, JobPayload, SealedPayloadWire};
use crate::api::node::{PendingJob, PendingJobs, SetPriceRequest};
use crate::compute::Digest;
use crate::ids::{ApiKey, AuthToken, JobId, NodeId, RegistrationCode, ReservationToken};
use crate::payout::EvmAddress;

/// A string schema with a description and optional constraints.
fn string(description: &str) -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String).description(Some(description))
}

/// Implements `PartialSchema` and `ToSchema` from an expression building the schema.
macro_rules! schema {
    ($ty:ty, $build:expr) => {
        impl PartialSchema for $ty {
            fn schema() -> RefOr<Schema> {
                $build.into()
            }
        }
        impl ToSchema for $ty {}
    };
}

schema!(
    NodeId,
    string("A node id: a UUID, dashed or undashed.").format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
);
schema!(
    JobId,
    string("A job id: 1 to 128 printable ASCII characters without whitespace.")
        .min_length(Some(1))
        .max_length(Some(128))
        .pattern(Some("^[!-~]{1,128}$"))
);
schema!(Digest, string("A SHA-256 digest: 64 lowercase hex characters.").pattern(Some("^[0-9a-f]{64}$")));
schema!(ReservationToken, string("A single-use reservation token from `POST /v1/reserve`."));
schema!(AuthToken, string("A node's bearer token (`X-Node-Auth`); it rotates."));
schema!(ApiKey, string("A caller's API key (`x402c_…`)."));
schema!(RegistrationCode, string("A single-use registration code bound to one wallet."));
schema!(EvmAddress, string("An EVM address: 0x and 40 hex digits.").pattern(Some("^0x[0-9a-fA-F]{40}$")));
schema!(PendingJobs, ArrayBuilder::new().items(PendingJob::schema()));
schema!(
    SetPriceRequest,
    OneOfBuilder::new()
        .description(Some("Either `{\"model\", \"reset\": true}` or `{\"model\", \"input_per_m\", \"output_per_m\"}`."))
        .item(
            ObjectBuilder::new()
                .property("model", String::schema())
                .property("reset", ObjectBuilder::new().schema_type(Type::Boolean).enum_values(Some([true])))
                .required("model")
                .required("reset")
        )
        .item(
            ObjectBuilder::new()
                .property("model", String::schema())
                .property("input_per_m", f64::schema())
                .property("output_per_m", f64::schema())
                .required("model")
                .required("input_per_m")
                .required("output_per_m")
        )
);
schema!(
    JobPayload,
    OneOfBuilder::new()
        .description(Some("A sealed request (an object with `enc`) or a plain one."))
        .item(SealedPayloadWire::schema())
        .item(InferenceRequest::schema())
);

/// A top-up in dollars: more than nothing (at least one micro-dollar) and at most 10,000.
fn topup_amount(description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Number)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Double)))
        .minimum(Some(0.000001))
        .maximum(Some(10_000.0))
        .description(Some(description))
}

/// `TopupRequest` with `required` set to the field that carries the amount.
fn topup_with(required: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .property("amount_usd", topup_amount("Dollars to add (the payment is this many USDC)."))
        .property("amount", topup_amount("The seed's spelling of `amount_usd`."))
        .property(
            "network",
            string("The seed's payment network (`base-sepolia`, `eip155:84532`, …); must be the grid's.")
                .schema_type(SchemaType::from_iter([Type::String, Type::Null])),
        )
        .required(required)
}

schema!(
    TopupRequest,
    AnyOfBuilder::new()
        .description(Some(
            "A top-up: `amount_usd` (ours) or `amount` (the seed's); `amount_usd` wins when both are sent."
        ))
        .item(topup_with("amount_usd"))
        .item(topup_with("amount"))
);
