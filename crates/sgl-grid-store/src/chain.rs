//! The chain's stake and bond events as the grid books them. The chain is the truth for stake
//! and bonds when a grid runs on one; the ledger follows it: each event is applied once (its
//! `chain:{tx}:{log}` key), in one database transaction with the ledger movement it causes, so
//! `standing` and the operator's views read the ledger as before. Bonds are not grid money and
//! have no ledger account: their last state is kept in `chain_bonds`.

pub mod payouts;

use sqlx::Row;

use crate::ledger::{Account, Asset, NewTransaction, PostError, Posted, TransactionKind, balance_in};
use crate::{Store, StoreError};

/// What happened, as the grid books it (amounts in micro-SGL: the stake token has 6 decimals).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StakeEvent {
    /// Stake added: chain → stake.
    Staked,
    /// Stake moved to unstaking; everything unstaking is `pending`, withdrawable from
    /// `available_at_ms`.
    UnstakeRequested {
        /// Micro-SGL unstaking in all.
        pending: i64,
        /// Unix ms.
        available_at_ms: i64,
    },
    /// Unstaked stake taken out: unbonding → chain.
    Withdrawn,
    /// Stake taken to the treasury, active first, then unstaking.
    Slashed {
        /// The evidence hash, `0x…`.
        evidence: [u8; 32],
    },
    /// A bond registered.
    Registered,
    /// A bond topped up.
    BondToppedUp,
    /// A bond on its way out, from `available_at_ms`.
    DeregisterRequested {
        /// Unix ms.
        available_at_ms: i64,
    },
    /// A bond withdrawn.
    Deregistered,
    /// Bond taken to the treasury.
    BondSlashed {
        /// The evidence hash.
        evidence: [u8; 32],
    },
}

impl StakeEvent {
    fn name(&self) -> &'static str {
        match self {
            Self::Staked => "staked",
            Self::UnstakeRequested { .. } => "unstake_requested",
            Self::Withdrawn => "withdrawn",
            Self::Slashed { .. } => "slashed",
            Self::Registered => "registered",
            Self::BondToppedUp => "bond_topped_up",
            Self::DeregisterRequested { .. } => "deregister_requested",
            Self::Deregistered => "deregistered",
            Self::BondSlashed { .. } => "bond_slashed",
        }
    }
}

/// One event to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainEventRecord {
    /// `chain:{tx}:{log index}`.
    pub key: String,
    /// Its block.
    pub block: i64,
    /// The operator wallet, checksummed.
    pub wallet: String,
    /// What happened.
    pub event: StakeEvent,
    /// Micro-SGL moved.
    pub amount: i64,
}

/// An operator's bond as the chain's events left it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChainBond {
    /// Micro-SGL bonded.
    pub bond: i64,
    /// Registered and not withdrawn.
    pub registered: bool,
    /// When a requested exit may withdraw the bond (0: none requested).
    pub unlock_at_ms: i64,
}

/// A slash the grid sent, booked already in its ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentSlash {
    /// `0x…` of the evidence's keccak-256.
    pub evidence_hash: String,
    /// The wallet.
    pub wallet: String,
    /// Micro-SGL of stake taken.
    pub stake_amount: i64,
    /// Micro-SGL of bond taken.
    pub bond_amount: i64,
}

fn hex32(bytes: &[u8; 32]) -> String {
    let mut text = String::with_capacity(66);
    text.push_str("0x");
    for byte in bytes {
        text.push_str(&format!("{byte:02x}"));
    }
    text
}

impl Store {
    /// The first block not yet read for the staking contract `staking`.
    pub async fn chain_cursor(&self, staking: &str) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query("SELECT next_block FROM chain_cursor WHERE staking = $1")
            .bind(staking)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(|r| r.try_get("next_block")).transpose()?)
    }

    /// Records that every block before `next_block` was read.
    pub async fn set_chain_cursor(&self, staking: &str, next_block: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO chain_cursor (staking, next_block) VALUES ($1, $2) \
             ON CONFLICT (staking) DO UPDATE SET next_block = excluded.next_block",
        )
        .bind(staking)
        .bind(next_block)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// `wallet`'s bond (none: never registered).
    pub async fn chain_bond(&self, wallet: &str) -> Result<Option<ChainBond>, StoreError> {
        let row = sqlx::query("SELECT bond, registered, unlock_at_ms FROM chain_bonds WHERE wallet = $1")
            .bind(wallet)
            .fetch_optional(self.pool())
            .await?;
        let bond = |row: &sqlx::any::AnyRow| -> Result<ChainBond, sqlx::Error> {
            Ok(ChainBond {
                bond: row.try_get("bond")?,
                registered: row.try_get::<i32, _>("registered")? != 0,
                unlock_at_ms: row.try_get("unlock_at_ms")?,
            })
        };
        Ok(row.as_ref().map(bond).transpose()?)
    }

    /// Every wallet the chain's events named, with its bond (if any).
    pub async fn chain_wallets(&self) -> Result<Vec<String>, StoreError> {
        let rows =
            sqlx::query("SELECT DISTINCT wallet FROM chain_events ORDER BY wallet").fetch_all(self.pool()).await?;
        Ok(rows.iter().map(|r| r.try_get("wallet")).collect::<Result<_, _>>()?)
    }

    /// Records a slash the grid is about to send, already booked in its ledger; false if one
    /// with this evidence was recorded before.
    pub async fn record_sent_slash(&self, slash: &SentSlash, now_ms: i64) -> Result<bool, StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO chain_slashes (evidence_hash, wallet, stake_amount, bond_amount, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (evidence_hash) DO NOTHING",
        )
        .bind(&slash.evidence_hash)
        .bind(&slash.wallet)
        .bind(slash.stake_amount)
        .bind(slash.bond_amount)
        .bind(now_ms)
        .execute(self.pool())
        .await?;
        Ok(inserted.rows_affected() == 1)
    }

    /// Applies one chain event with its ledger movement in one database transaction. False when
    /// it was applied before.
    pub async fn apply_chain_event(&self, record: &ChainEventRecord, now_ms: i64) -> Result<bool, PostError> {
        let mut tx = self.pool().begin().await.map_err(StoreError::from)?;
        let fresh = sqlx::query(
            "INSERT INTO chain_events (event_key, block, wallet, kind, amount, applied_at) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (event_key) DO NOTHING",
        )
        .bind(&record.key)
        .bind(record.block)
        .bind(&record.wallet)
        .bind(record.event.name())
        .bind(record.amount)
        .bind(now_ms)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from)?
        .rows_affected()
            == 1;
        if !fresh {
            return Ok(false);
        }
        if let Some(movement) = self.movement(&mut tx, record).await? {
            match self.post_in(&mut tx, &movement, now_ms).await? {
                Posted::Applied(_) | Posted::AlreadyApplied(_) => {}
            }
        }
        self.follow_records(&mut tx, record, now_ms).await.map_err(StoreError::from)?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(true)
    }

    /// The ledger movement `record` causes, if any.
    async fn movement(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        record: &ChainEventRecord,
    ) -> Result<Option<NewTransaction>, StoreError> {
        let wallet = record.wallet.clone();
        let (stake, unbonding) =
            (Account::Stake { wallet: wallet.clone() }, Account::Unbonding { wallet: wallet.clone() });
        let chain = Account::External { source: "chain".into(), asset: Asset::Sgl };
        let amount = record.amount;
        let (kind, memo, postings) = match record.event {
            StakeEvent::Staked => {
                (TransactionKind::StakeDeposit, "stake on chain", vec![(chain, -amount), (stake, amount)])
            }
            StakeEvent::UnstakeRequested { .. } => {
                (TransactionKind::Unstake, "unstake on chain", vec![(stake, -amount), (unbonding, amount)])
            }
            StakeEvent::Withdrawn => (
                TransactionKind::StakeWithdrawal,
                "unstaked stake withdrawn on chain",
                vec![(unbonding, -amount), (chain, amount)],
            ),
            StakeEvent::Slashed { evidence } => {
                let sent = sqlx::query("SELECT wallet FROM chain_slashes WHERE evidence_hash = $1")
                    .bind(hex32(&evidence))
                    .fetch_optional(&mut **tx)
                    .await?;
                if sent.is_some() {
                    // The grid's own slash, booked when it was sent.
                    return Ok(None);
                }
                let active = balance_in(tx, &stake.to_string()).await?.max(0);
                let from_stake = amount.min(active);
                let postings = vec![(stake, -from_stake), (unbonding, from_stake - amount), (Account::Slashed, amount)];
                (TransactionKind::Slash, "slash on chain", postings)
            }
            _ => return Ok(None),
        };
        let memo = format!("{memo} ({wallet})");
        let movement = NewTransaction::from_amounts(record.key.clone(), kind, memo, postings);
        Ok((!movement.postings.is_empty()).then_some(movement))
    }

    /// The rows besides the ledger that `record` changes: open unstakes and bonds.
    async fn follow_records(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        record: &ChainEventRecord,
        now_ms: i64,
    ) -> Result<(), sqlx::Error> {
        let wallet = &record.wallet;
        let bond = |sql: &'static str| sqlx::query(sql).bind(wallet.clone());
        match record.event {
            StakeEvent::UnstakeRequested { pending, available_at_ms } => {
                sqlx::query(
                    "INSERT INTO unstake_requests (wallet, amount, requested_at, available_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (wallet) DO UPDATE SET amount = excluded.amount, available_at = excluded.available_at",
                )
                .bind(wallet)
                .bind(pending)
                .bind(now_ms)
                .bind(available_at_ms)
                .execute(&mut **tx)
                .await?;
            }
            StakeEvent::Withdrawn => {
                sqlx::query("DELETE FROM unstake_requests WHERE wallet = $1").bind(wallet).execute(&mut **tx).await?;
            }
            StakeEvent::Registered => {
                bond(
                    "INSERT INTO chain_bonds (wallet, bond, registered, unlock_at_ms) VALUES ($1, $2, 1, 0) \
                      ON CONFLICT (wallet) DO UPDATE SET bond = excluded.bond, registered = 1, unlock_at_ms = 0",
                )
                .bind(record.amount)
                .execute(&mut **tx)
                .await?;
            }
            StakeEvent::BondToppedUp => {
                bond("UPDATE chain_bonds SET bond = bond + $2 WHERE wallet = $1")
                    .bind(record.amount)
                    .execute(&mut **tx)
                    .await?;
            }
            StakeEvent::BondSlashed { .. } => {
                bond("UPDATE chain_bonds SET bond = bond - $2 WHERE wallet = $1")
                    .bind(record.amount)
                    .execute(&mut **tx)
                    .await?;
            }
            StakeEvent::DeregisterRequested { available_at_ms } => {
                bond("UPDATE chain_bonds SET unlock_at_ms = $2 WHERE wallet = $1")
                    .bind(available_at_ms)
                    .execute(&mut **tx)
                    .await?;
            }
            StakeEvent::Deregistered => {
                bond("UPDATE chain_bonds SET bond = 0, registered = 0, unlock_at_ms = 0 WHERE wallet = $1")
                    .execute(&mut **tx)
                    .await?;
            }
            StakeEvent::Staked | StakeEvent::Slashed { .. } => {}
        }
        Ok(())
    }
}
