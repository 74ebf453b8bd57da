//! The contracts on a real anvil (npm `@foundry-rs/anvil`; `.ci/run` exports `SGL_ANVIL`):
//! deployed from the committed bytecode, then every call the grid and an operator make, with
//! balances checked to the unit and the gas each used printed (`--nocapture`).

use std::path::{Path, PathBuf};

use alloy::primitives::{Address, B256, U256, keccak256};
use alloy::providers::Provider as _;
use alloy::signers::SignerSync as _;
use alloy::sol_types::{SolStruct as _, eip712_domain};
use sgl_chain::anvil::{LocalChain, LocalChainOptions, find_binary};
use sgl_chain::deploy::{DeployOptions, deploy};
use sgl_chain::{Authorization, Chain, Mined, StakeEventKind};

alloy::sol! {
    struct TransferWithAuthorization {
        address from;
        address to;
        uint256 value;
        uint256 validAfter;
        uint256 validBefore;
        bytes32 nonce;
    }
}

/// The anvil binary, required under `CI=true`, else the test skips with a note.
fn anvil_binary() -> Option<PathBuf> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let found = find_binary(Some(&repo));
    if found.is_none() {
        assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "CI=true but no anvil (SGL_ANVIL)");
        eprintln!("note: no anvil (cargo xtask contracts installs it under contracts/node_modules); skipping");
    }
    found
}

fn units(n: u64) -> U256 {
    U256::from(n)
}

fn gas(what: &str, mined: &Mined) {
    println!("gas {what}: {}", mined.gas_used);
}

async fn advance(chain: &Chain, secs: u64) {
    let provider = chain.provider();
    let _: serde_json::Value = provider.raw_request("evm_increaseTime".into(), (secs,)).await.unwrap();
    let _: serde_json::Value = provider.raw_request("evm_mine".into(), ()).await.unwrap();
}

struct World {
    _anvil: LocalChain,
    grid: Chain,
    operator: Chain,
    payer: alloy::signers::local::PrivateKeySigner,
    treasury: Address,
}

async fn world() -> Option<World> {
    let anvil = LocalChain::start(LocalChainOptions { binary: anvil_binary()?, ..Default::default() }).await.unwrap();
    let url = anvil.endpoint();
    let treasury = anvil.addresses()[9];
    let options = DeployOptions { treasury, min_bond: units(5_000_000) };
    let contracts = deploy(&url, anvil.signer(0).unwrap(), options).await.unwrap();
    let grid = Chain::connect(&url, anvil.signer(0).unwrap(), contracts).unwrap();
    grid.check().await.unwrap();
    let operator = Chain::connect(&url, anvil.signer(1).unwrap(), contracts).unwrap();
    let payer = anvil.signer(2).unwrap();
    Some(World { _anvil: anvil, grid, operator, payer, treasury })
}

#[tokio::test]
async fn stake_bond_slash_and_their_events() {
    let Some(w) = world().await else { return };
    let op = w.operator.address();
    w.grid.mint_stake_token(op, units(200_000_000)).await.unwrap();
    gas("stake (with approve)", &w.operator.stake(units(100_000_000)).await.unwrap());
    gas("requestUnstake", &w.operator.request_unstake(units(40_000_000)).await.unwrap());
    let now = w.grid.now().await.unwrap();
    let stake = w.grid.stake_of(op).await.unwrap();
    assert_eq!((stake.active, stake.pending), (units(60_000_000), units(40_000_000)));
    assert_eq!(stake.unlock_at, now + 7 * 24 * 3600);
    gas("register (with approve)", &w.operator.register(units(10_000_000), B256::repeat_byte(7)).await.unwrap());
    let bond = w.grid.bond_of(op).await.unwrap();
    assert!(bond.registered);
    assert_eq!((bond.amount, bond.metadata), (units(10_000_000), B256::repeat_byte(7)));

    // Slashing takes the active stake first, then the unstaking, to the treasury.
    let evidence = keccak256(b"forged result of job j1");
    gas("slash stake", &w.grid.slash_stake(op, units(70_000_000), evidence).await.unwrap());
    let stake = w.grid.stake_of(op).await.unwrap();
    assert_eq!((stake.active, stake.pending), (U256::ZERO, units(30_000_000)));
    gas("slash bond", &w.grid.slash_bond(op, units(4_000_000), evidence).await.unwrap());
    assert_eq!(w.grid.bond_of(op).await.unwrap().amount, units(6_000_000));
    assert_eq!(w.grid.stake_token_balance(w.treasury).await.unwrap(), units(74_000_000));
    // An operator cannot slash.
    assert!(w.operator.slash_stake(op, units(1), evidence).await.is_err());

    // The unstaked tokens leave after seven days, not a second before.
    advance(&w.grid, 7 * 24 * 3600 - 2).await;
    assert!(w.operator.withdraw_stake().await.is_err());
    advance(&w.grid, 2).await;
    gas("withdraw stake", &w.operator.withdraw_stake().await.unwrap());
    assert_eq!(
        w.grid.stake_token_balance(op).await.unwrap(),
        units(200_000_000 - 100_000_000 - 10_000_000 + 30_000_000)
    );

    let events =
        w.grid.stake_events(w.grid.contracts().deployed_block, w.grid.block_number().await.unwrap()).await.unwrap();
    let kinds: Vec<_> = events.iter().map(|e| (e.kind, e.amount)).collect();
    assert_eq!(
        kinds,
        vec![
            (StakeEventKind::Staked, units(100_000_000)),
            (
                StakeEventKind::UnstakeRequested { pending: units(40_000_000), unlock_at: now + 7 * 24 * 3600 },
                units(40_000_000)
            ),
            (StakeEventKind::Registered, units(10_000_000)),
            (StakeEventKind::Slashed { evidence }, units(70_000_000)),
            (StakeEventKind::BondSlashed { evidence }, units(4_000_000)),
            (StakeEventKind::Withdrawn, units(30_000_000)),
        ]
    );
    assert!(events.iter().all(|e| e.operator == op));
    assert_eq!(events.iter().map(|e| e.key()).collect::<std::collections::BTreeSet<_>>().len(), events.len());
}

fn authorization(w: &World, value: u64, nonce: B256, valid_before: u64) -> Authorization {
    let message = TransferWithAuthorization {
        from: w.payer.address(),
        to: w.grid.address(),
        value: units(value),
        validAfter: U256::ZERO,
        validBefore: units(valid_before),
        nonce,
    };
    let domain = eip712_domain! {
        name: "USD Coin",
        version: "2",
        chain_id: 31_337,
        verifying_contract: w.grid.contracts().usdc,
    };
    let signature = w.payer.sign_hash_sync(&message.eip712_signing_hash(&domain)).unwrap();
    Authorization {
        from: message.from,
        to: message.to,
        value: message.value,
        valid_after: message.validAfter,
        valid_before: message.validBefore,
        nonce,
        signature,
    }
}

#[tokio::test]
async fn x402_authorizations_settle_once_on_chain() {
    let Some(w) = world().await else { return };
    let payer = w.payer.address();
    w.grid.mint_usdc(payer, units(5_000_000)).await.unwrap();
    let deadline = w.grid.now().await.unwrap() + 300;
    let auth = authorization(&w, 1_500_000, B256::repeat_byte(0x42), deadline);
    assert!(!w.grid.authorization_used(payer, auth.nonce).await.unwrap());
    gas("transferWithAuthorization", &w.grid.transfer_with_authorization(&auth).await.unwrap());
    assert_eq!(w.grid.usdc_balance(payer).await.unwrap(), units(3_500_000));
    assert_eq!(w.grid.usdc_balance(w.grid.address()).await.unwrap(), units(1_500_000));
    assert!(w.grid.authorization_used(payer, auth.nonce).await.unwrap());
    // The same authorization again moves nothing; nor does an expired one.
    assert!(w.grid.transfer_with_authorization(&auth).await.is_err());
    let expired = authorization(&w, 1, B256::repeat_byte(0x43), w.grid.now().await.unwrap() - 1);
    assert!(w.grid.transfer_with_authorization(&expired).await.is_err());
    assert_eq!(w.grid.usdc_balance(payer).await.unwrap(), units(3_500_000));
}

#[tokio::test]
async fn payouts_go_in_batches_once() {
    let Some(w) = world().await else { return };
    w.grid.mint_usdc(w.grid.address(), units(1_000_000)).await.unwrap();
    let to: Vec<(Address, U256)> =
        (0..10).map(|i| (Address::repeat_byte(0x10 + i), units(1_000 * (u64::from(i) + 1)))).collect();
    let batch = keccak256(b"payout batch 1");
    gas("payBatch of 10 (with approve)", &w.grid.pay_batch(batch, &to).await.unwrap());
    for (address, amount) in &to {
        assert_eq!(w.grid.usdc_balance(*address).await.unwrap(), *amount);
    }
    assert_eq!(w.grid.usdc_balance(w.grid.address()).await.unwrap(), units(1_000_000 - 55_000));
    assert!(w.grid.pay_batch(batch, &to).await.is_err(), "a batch is paid once");
    gas("payBatch of 10", &w.grid.pay_batch(keccak256(b"payout batch 2"), &to).await.unwrap());
}

async fn block_time(chain: &Chain, mined: &Mined) -> u64 {
    let block = chain.provider().get_block_by_number(mined.block.into()).await.unwrap().unwrap();
    block.header.timestamp
}

#[tokio::test]
async fn a_stream_pays_by_the_second_less_the_fee_and_refunds_the_rest() {
    let Some(w) = world().await else { return };
    let provider = w.operator.address();
    w.grid.mint_usdc(w.grid.address(), units(10_000_000)).await.unwrap();
    // 3,600,000 units over an hour: 1,000 a second.
    let (id, opened) = w.grid.open_stream(provider, units(3_600_000), units(1_000)).await.unwrap();
    gas("openStream (with approve)", &opened);
    let start = w.grid.stream(id).await.unwrap().start;
    assert_eq!(start, block_time(&w.grid, &opened).await);
    advance(&w.grid, 100).await;
    let withdrawn = w.grid.withdraw_stream(id).await.unwrap();
    gas("withdraw (stream)", &withdrawn);
    let first = 1_000 * (block_time(&w.grid, &withdrawn).await - start);
    assert_eq!(w.grid.usdc_balance(provider).await.unwrap(), units(first - first / 100));
    assert_eq!(w.grid.usdc_balance(w.treasury).await.unwrap(), units(first / 100));
    advance(&w.grid, 50).await;
    let closed = w.grid.close_stream(id).await.unwrap();
    gas("close (stream)", &closed);
    assert!(w.grid.stream(id).await.unwrap().closed);
    let total = 1_000 * (block_time(&w.grid, &closed).await - start);
    let fees = first / 100 + (total - first) / 100;
    assert_eq!(w.grid.usdc_balance(provider).await.unwrap(), units(total - fees));
    assert_eq!(w.grid.usdc_balance(w.treasury).await.unwrap(), units(fees));
    assert_eq!(w.grid.usdc_balance(w.grid.address()).await.unwrap(), units(10_000_000 - total), "the rest came back");
    assert!(w.grid.close_stream(id).await.is_err(), "closed once");
}
