//! A price quote for one request and everything derived from it: the dual 402 answer (a v2
//! `PAYMENT-REQUIRED` header plus a v1 JSON body, so both client generations can pay), and the
//! pairing of an incoming payment with the requirement regenerated from the same quote.
//!
//! The server never trusts the requirement a client echoes: it recomputes the quote for the
//! same request and checks the payment against that.

#[cfg(test)]
mod tests;

use alloy_primitives::{Address, U256};

use crate::header::{HeaderError, IncomingPayment, PAYMENT_REQUIRED, encode_header};
use crate::network::NetworkConfig;
use crate::wire::{
    DecimalU256, FacilitatorRequest, FacilitatorRequestV1, FacilitatorRequestV2, PaymentRequiredV1, PaymentRequiredV2,
    PaymentRequirementsV1, PaymentRequirementsV2, ResourceInfo, SCHEME_EXACT, V1, V2,
};

/// The v1 `error` text the reference servers send with an unpaid request.
pub const PAYMENT_HEADER_REQUIRED: &str = "X-PAYMENT header is required";

/// What one request costs and how it is paid.
#[derive(Clone, Debug, PartialEq)]
pub struct PaymentQuote {
    /// Price in the asset's atomic units (USDC: 6 decimals, `10_000` = $0.01).
    pub amount: U256,
    /// Recipient.
    pub pay_to: Address,
    /// Network and asset.
    pub network: NetworkConfig,
    /// The resource being sold.
    pub resource: ResourceInfo,
    /// Lifetime the client gives its authorization; keep it well above the 6 s settlement
    /// buffer (60 s or more).
    pub max_timeout_seconds: u64,
}

/// A 402 answer for both protocol versions at once.
#[derive(Clone, Debug, PartialEq)]
pub struct Dual402 {
    /// The value of the `PAYMENT-REQUIRED` header (v2 clients read only this).
    pub payment_required: String,
    /// The v2 object that `payment_required` encodes.
    pub v2: PaymentRequiredV2,
    /// The JSON body (v1 clients read only this).
    pub body: PaymentRequiredV1,
}

impl Dual402 {
    /// The header to add to the 402 answer, as `(name, value)`.
    pub fn header(&self) -> (&'static str, &str) {
        (PAYMENT_REQUIRED, &self.payment_required)
    }
}

impl PaymentQuote {
    /// The v2 requirement for this quote.
    pub fn requirements_v2(&self) -> PaymentRequirementsV2 {
        PaymentRequirementsV2 {
            scheme: SCHEME_EXACT.to_owned(),
            network: self.network.caip2.to_string(),
            amount: DecimalU256(self.amount),
            asset: self.network.asset.to_checksum(None),
            pay_to: self.pay_to.to_checksum(None),
            max_timeout_seconds: self.max_timeout_seconds,
            extra: Some(self.network.extra()),
        }
    }

    /// The v1 requirement for this quote, if v1 clients can name its network.
    pub fn requirements_v1(&self) -> Option<PaymentRequirementsV1> {
        let v1_name = self.network.v1_name.as_deref()?;
        Some(PaymentRequirementsV1 {
            scheme: SCHEME_EXACT.to_owned(),
            network: v1_name.to_owned(),
            max_amount_required: DecimalU256(self.amount),
            asset: self.network.asset.to_checksum(None),
            pay_to: self.pay_to.to_checksum(None),
            resource: self.resource.url.clone(),
            description: self.resource.description.clone().unwrap_or_default(),
            mime_type: self.resource.mime_type.clone(),
            output_schema: None,
            max_timeout_seconds: self.max_timeout_seconds,
            extra: Some(self.network.extra()),
        })
    }

    /// The 402 answer for both versions. `error` is the human-readable reason; `None` uses
    /// [`PAYMENT_HEADER_REQUIRED`] in the v1 body and omits it from the v2 header. When the
    /// network has no v1 name, the v1 body lists no way to pay.
    pub fn dual_402(&self, error: Option<&str>) -> Result<Dual402, HeaderError> {
        let v2 = PaymentRequiredV2 {
            x402_version: V2,
            error: error.map(str::to_owned),
            resource: self.resource.clone(),
            accepts: vec![self.requirements_v2()],
            extensions: None,
        };
        let body = PaymentRequiredV1 {
            x402_version: V1,
            error: error.unwrap_or(PAYMENT_HEADER_REQUIRED).to_owned(),
            accepts: self.requirements_v1().into_iter().collect(),
        };
        Ok(Dual402 { payment_required: encode_header(&v2)?, v2, body })
    }

    /// Whether `payment` was made for this quote: for v2, the echoed `accepted` equals this
    /// quote's requirement field by field (addresses case-insensitively; `extra` is ignored
    /// because clients may fill it in); for v1, scheme and network match.
    pub fn matches(&self, payment: &IncomingPayment) -> bool {
        match payment {
            IncomingPayment::V1(payload) => {
                payload.scheme == SCHEME_EXACT && self.network.v1_name.as_deref() == Some(payload.network.as_str())
            }
            IncomingPayment::V2(payload) => {
                let accepted = &payload.accepted;
                accepted.scheme == SCHEME_EXACT
                    && accepted.network == self.network.caip2
                    && accepted.amount.0 == self.amount
                    && same_address(&accepted.asset, self.network.asset)
                    && same_address(&accepted.pay_to, self.pay_to)
                    && accepted.max_timeout_seconds == self.max_timeout_seconds
            }
        }
    }

    /// The facilitator request pairing `payment` with this quote's own requirement of the
    /// same version; `None` for a v1 payment when the network has no v1 name.
    pub fn facilitator_request(&self, payment: IncomingPayment) -> Option<FacilitatorRequest> {
        Some(match payment {
            IncomingPayment::V1(payment_payload) => FacilitatorRequest::V1(FacilitatorRequestV1 {
                x402_version: V1,
                payment_payload,
                payment_requirements: self.requirements_v1()?,
            }),
            IncomingPayment::V2(payment_payload) => FacilitatorRequest::V2(FacilitatorRequestV2 {
                x402_version: V2,
                payment_payload,
                payment_requirements: self.requirements_v2(),
            }),
        })
    }
}

/// Whether the text `address` is `expected`, in any letter case.
fn same_address(address: &str, expected: Address) -> bool {
    address.parse::<Address>().is_ok_and(|parsed| parsed == expected)
}
