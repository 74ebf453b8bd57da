//! Local facilitator tests over the in-memory ledger: balances move once, settle is
//! idempotent, nonce reuse and overdrafts are refused with their reason strings.

use alloy_primitives::U256;

use super::*;
use crate::ledger::MemoryLedger;
use crate::test_payer::{NOW, SELLER, TestPayer, quote, v1_request, v2_request};
use crate::wire::ExactEvmPayload;

struct FixedClock;

impl Clock for FixedClock {
    fn now_unix_seconds(&self) -> u64 {
        NOW
    }
}

fn account(address: Address) -> AccountKey {
    let network = NetworkConfig::BASE_SEPOLIA;
    AccountKey { network: network.caip2.to_string(), asset: network.asset, address }
}

/// A facilitator on Base Sepolia and a payer holding `funds` there.
fn setup(funds: u64) -> (LocalFacilitator<MemoryLedger, FixedClock>, TestPayer) {
    let payer = TestPayer::random();
    let ledger = MemoryLedger::new();
    ledger.credit(account(payer.address), U256::from(funds));
    (LocalFacilitator::new(ledger, vec![NetworkConfig::BASE_SEPOLIA, NetworkConfig::BASE], FixedClock), payer)
}

async fn balance(facilitator: &LocalFacilitator<MemoryLedger, FixedClock>, address: Address) -> U256 {
    facilitator.ledger().balance(&account(address)).await.unwrap()
}

fn signed(payer: &TestPayer) -> ExactEvmPayload {
    let quote = quote();
    payer.sign(payer.authorization(&quote), &quote.network)
}

#[tokio::test]
async fn verify_then_settle_moves_the_amount_once() {
    let (facilitator, payer) = setup(25_000);
    let request = v2_request(&quote(), &signed(&payer));

    let verify = facilitator.verify(&request).await.unwrap();
    assert_eq!(verify, VerifyResponse { is_valid: true, invalid_reason: None, payer: Some(checksum(payer.address)) });
    assert_eq!(balance(&facilitator, payer.address).await, U256::from(25_000), "verify moves nothing");

    let settle = facilitator.settle(&request).await.unwrap();
    assert!(settle.success, "{settle:?}");
    assert_eq!(settle.network, "eip155:84532");
    assert_eq!(settle.amount, Some(U256::from(10_000).into()));
    assert_eq!(settle.payer, Some(checksum(payer.address)));
    assert_eq!(settle.transaction.len(), 66);
    assert!(settle.transaction.starts_with("0x"));
    assert_eq!(balance(&facilitator, payer.address).await, U256::from(15_000));
    assert_eq!(balance(&facilitator, SELLER).await, U256::from(10_000));

    // Once settled, the payment no longer verifies: a replayed header must not buy twice.
    let again = facilitator.verify(&request).await.unwrap();
    assert_eq!(again.invalid_reason.as_deref(), Some("invalid_exact_evm_nonce_already_used"));
}

#[tokio::test]
async fn settling_the_same_authorization_again_is_idempotent() {
    let (facilitator, payer) = setup(25_000);
    let request = v2_request(&quote(), &signed(&payer));
    let first = facilitator.execute(&request, NOW).await.unwrap().unwrap();
    let second = facilitator.execute(&request, NOW + 1).await.unwrap().unwrap();
    assert!(!first.replayed);
    assert!(second.replayed);
    assert_eq!(first.tx_hash, second.tx_hash);
    assert_eq!(first.tx_hash, first.payment.digest);
    assert_eq!(balance(&facilitator, payer.address).await, U256::from(15_000), "moved once");
    let wire = facilitator.settle(&request).await.unwrap();
    assert_eq!(wire.transaction, first.tx_hash.to_string());
}

#[tokio::test]
async fn a_different_authorization_reusing_a_nonce_is_refused() {
    let (facilitator, payer) = setup(100_000);
    let quote = quote();
    let first = payer.authorization(&quote);
    let request = v2_request(&quote, &payer.sign(first.clone(), &quote.network));
    assert!(facilitator.settle(&request).await.unwrap().success);

    let mut reuse = payer.authorization(&quote);
    reuse.nonce = first.nonce;
    reuse.valid_before = (NOW + 30).into();
    let replay = v2_request(&quote, &payer.sign(reuse, &quote.network));
    let settle = facilitator.settle(&replay).await.unwrap();
    assert!(!settle.success);
    assert_eq!(settle.error_reason.as_deref(), Some("invalid_exact_evm_nonce_already_used"));
    assert_eq!(settle.transaction, "");
    assert_eq!(settle.payer, Some(checksum(payer.address)));
    assert_eq!(balance(&facilitator, payer.address).await, U256::from(90_000));
}

#[tokio::test]
async fn a_payer_without_enough_funds_is_refused_at_verify_and_settle() {
    let (facilitator, payer) = setup(9_999);
    let request = v2_request(&quote(), &signed(&payer));
    let verify = facilitator.verify(&request).await.unwrap();
    assert_eq!(verify.invalid_reason.as_deref(), Some("insufficient_funds"));
    let settle = facilitator.settle(&request).await.unwrap();
    assert_eq!(settle.error_reason.as_deref(), Some("insufficient_funds"));
    assert_eq!(balance(&facilitator, payer.address).await, U256::from(9_999));
    // The refusal used no nonce: once funded, the same payment goes through.
    facilitator.ledger().credit(account(payer.address), U256::from(1));
    assert!(facilitator.settle(&request).await.unwrap().success);
}

#[tokio::test]
async fn v1_payments_settle_too_and_report_without_amount() {
    let (facilitator, payer) = setup(10_000);
    let request = v1_request(&quote(), &signed(&payer));
    let settle = facilitator.settle(&request).await.unwrap();
    assert!(settle.success, "{settle:?}");
    assert_eq!(settle.network, "base-sepolia");
    assert_eq!(settle.amount, None);
    assert_eq!(balance(&facilitator, SELLER).await, U256::from(10_000));
}

#[tokio::test]
async fn invalid_payments_report_the_verifier_reason_and_claimed_payer() {
    let (facilitator, payer) = setup(10_000);
    let quote = quote();
    let mut authorization = payer.authorization(&quote);
    authorization.valid_before = (NOW + 1).into();
    let request = v2_request(&quote, &payer.sign(authorization, &quote.network));
    let verify = facilitator.verify(&request).await.unwrap();
    assert!(!verify.is_valid);
    assert_eq!(verify.invalid_reason.as_deref(), Some("invalid_exact_evm_payload_authorization_valid_before"));
    assert_eq!(verify.payer, Some(checksum(payer.address)));

    let unconfigured = LocalFacilitator::new(MemoryLedger::new(), vec![NetworkConfig::BASE], FixedClock);
    let verify = unconfigured.verify(&v2_request(&quote, &signed(&payer))).await.unwrap();
    assert_eq!(verify.invalid_reason.as_deref(), Some("invalid_network"));
}

#[tokio::test]
async fn supported_lists_every_network_in_both_versions() {
    let (facilitator, _) = setup(0);
    let supported = facilitator.supported().await.unwrap();
    let kinds: Vec<(u8, &str, &str)> =
        supported.kinds.iter().map(|k| (k.x402_version, k.scheme.as_str(), k.network.as_str())).collect();
    assert_eq!(
        kinds,
        [(2, "exact", "eip155:84532"), (2, "exact", "eip155:8453"), (1, "exact", "base-sepolia"), (1, "exact", "base")]
    );
}

#[test]
fn the_system_clock_reads_a_plausible_time() {
    // 2024-01-01 as a floor: the clock is wired to the real time, not zero.
    assert!(SystemClock.now_unix_seconds() > 1_704_067_200);
}
