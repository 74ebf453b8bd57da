//! Settling a verified MPP payment into a [`PaymentLedger`], and the `Payment-Receipt` the
//! server answers a settled payment with.

use alloy_primitives::{B256, U256};
use serde::{Deserialize, Serialize};

use super::{METHOD_EVM, ProblemDetails, ProblemType, VerifiedMppPayment, base64url, jcs};
use crate::header::{HeaderError, decode_header};
use crate::ledger::{LedgerOutcome, PaymentLedger};
use sgl_protocol::rfc3339::format as format_rfc3339;

/// The `Payment-Receipt` of a settled payment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// Always `success` (receipts are only sent on 2xx).
    pub status: String,
    /// The payment method, `evm`.
    pub method: String,
    /// When it was settled (RFC 3339, UTC).
    pub timestamp: String,
    /// The settlement's reference: the transaction hash (here the EIP-712 digest).
    pub reference: String,
}

impl Receipt {
    /// A success receipt for the settlement `reference` at `now` (Unix seconds).
    pub fn success(reference: B256, now: u64) -> Self {
        Self {
            status: "success".to_owned(),
            method: METHOD_EVM.to_owned(),
            timestamp: format_rfc3339(now),
            reference: reference.to_string(),
        }
    }

    /// The `Payment-Receipt` value: base64url, no padding, of the JCS JSON.
    pub fn header_value(&self) -> String {
        let json = serde_json::to_value(self).expect("a receipt is plain JSON");
        base64url(jcs::canonicalize(&json).as_bytes())
    }

    /// Reads a `Payment-Receipt` value (either base64 alphabet, padding optional).
    pub fn from_header_value(value: &str) -> Result<Self, HeaderError> {
        decode_header(value)
    }
}

/// What [`settle_payment`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MppSettlement {
    /// The amount moved; answer 200 with this receipt.
    Settled(Receipt),
    /// This very authorization was settled before and nothing moved now: the credential is a
    /// replay. Do not deliver the resource again.
    AlreadySettled {
        /// The reference of the earlier settlement.
        reference: B256,
    },
    /// The nonce was used by a different authorization; nothing moved.
    NonceUsed,
    /// The payer's balance is below the amount; nothing moved.
    InsufficientBalance {
        /// What the payer holds.
        balance: U256,
        /// What the payment moves.
        value: U256,
    },
}

impl MppSettlement {
    /// The receipt when the payment moved.
    pub fn receipt(&self) -> Option<&Receipt> {
        match self {
            Self::Settled(receipt) => Some(receipt),
            _ => None,
        }
    }

    /// The problem details when it did not (`verification-failed`).
    pub fn problem(&self) -> Option<ProblemDetails> {
        let detail = match self {
            Self::Settled(_) => return None,
            Self::AlreadySettled { .. } => "the credential has already been used".to_owned(),
            Self::NonceUsed => "the authorization's nonce is already used".to_owned(),
            Self::InsufficientBalance { balance, value } => format!("balance {balance} is below {value}"),
        };
        Some(ProblemDetails::new(ProblemType::VerificationFailed, detail))
    }
}

/// Settles `payment` in `ledger` at `now` (Unix seconds), atomically: debit the payer, credit
/// the recipient, use up the nonce. `Err` only when the ledger itself fails.
pub async fn settle_payment<L: PaymentLedger>(
    ledger: &L,
    payment: &VerifiedMppPayment,
    now: u64,
) -> Result<MppSettlement, L::Error> {
    Ok(match ledger.settle(&payment.ledger_transfer()).await? {
        LedgerOutcome::Settled => MppSettlement::Settled(Receipt::success(payment.digest, now)),
        LedgerOutcome::AlreadySettled => MppSettlement::AlreadySettled { reference: payment.digest },
        LedgerOutcome::NonceUsed => MppSettlement::NonceUsed,
        LedgerOutcome::InsufficientBalance { balance } => {
            MppSettlement::InsufficientBalance { balance, value: payment.value }
        }
    })
}
