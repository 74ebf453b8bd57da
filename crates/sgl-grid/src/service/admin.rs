//! The grid operator's overview behind the admin token: capacity by model and queue depth (the
//! capacity snapshot), jobs finished and their rate and request latency percentiles (the same
//! counters and histogram `/metrics` exposes), the ledger audit, and the newest tamper events and
//! slashes. The audit reads the whole ledger, so it is kept for [`AUDIT_KEPT_MS`] and shared by
//! every caller meanwhile.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

use sgl_grid_store::StoreError;
use sgl_protocol::api::admin::{AdminOverview, JobRates, LedgerStatus, TamperEvent, WalletSlash};
use sgl_protocol::api::operator::SlashInfo;

use crate::service::{capacity, rfc3339, secrets};
use crate::state::AppState;

/// How long one ledger audit is shown before it is run again.
pub const AUDIT_KEPT_MS: i64 = 30_000;
/// The window of the jobs-per-second rate.
pub const RATE_WINDOW_MS: i64 = 60_000;
/// How many tamper events and slashes the overview lists.
pub const RECENT_EVENTS: i64 = 20;

/// Why the overview was refused.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The grid has no admin token configured: its admin routes do not exist.
    #[error("this grid has no admin token configured (admin_token, SGL_ADMIN_TOKEN)")]
    Disabled,
    /// No token was sent, or the wrong one.
    #[error("a valid admin token is required (X-Admin-Token or Authorization: Bearer)")]
    BadToken,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the overview remembers between calls: the last audit and samples of the jobs
/// counter, from which the rate is read.
#[derive(Debug, Default)]
pub struct Admin {
    audit: Mutex<Option<(i64, LedgerStatus)>>,
    samples: Mutex<VecDeque<(i64, u64)>>,
}

impl Admin {
    /// Checks `presented` against the configured token's hash (comparing hashes, so the time
    /// taken says nothing about the token).
    pub fn authorize(state: &AppState, presented: Option<&str>) -> Result<(), AdminError> {
        let expected = state.config().admin_token_hash.as_deref().ok_or(AdminError::Disabled)?;
        let presented = presented.map(str::trim).filter(|t| !t.is_empty()).ok_or(AdminError::BadToken)?;
        let given = secrets::hash(presented);
        let same = given.len() == expected.len()
            && given.bytes().zip(expected.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
        if same { Ok(()) } else { Err(AdminError::BadToken) }
    }

    /// The overview now.
    pub async fn overview(&self, state: &AppState) -> Result<AdminOverview, AdminError> {
        let now = state.now_ms();
        let (completed, failed) = state.metrics().jobs_finished();
        let store = state.store();
        let tamper_events = store
            .recent_tamper_events(RECENT_EVENTS)
            .await?
            .into_iter()
            .map(|t| TamperEvent {
                at: rfc3339::format(t.created_at),
                node_id: t.node_id,
                job_id: t.job_id,
                reason: t.kind,
            })
            .collect();
        let slashes = store
            .recent_slashes(RECENT_EVENTS)
            .await?
            .into_iter()
            .map(|slash| WalletSlash {
                slash: SlashInfo {
                    at: rfc3339::format(slash.created_at),
                    reason: slash.reason,
                    amount_micros: slash.amount,
                    node_id: slash.node_id,
                    job_id: slash.job_id,
                    evidence_hash: Some(format!("{:#x}", crate::chain::slash::evidence_hash(&slash.evidence))),
                },
                wallet: slash.wallet,
            })
            .collect();
        Ok(AdminOverview {
            at: rfc3339::format(now),
            capacity: capacity::snapshot(state).await?,
            jobs: JobRates {
                completed_total: completed,
                failed_total: failed,
                per_second_last_minute: self.rate(now, completed + failed),
            },
            latency: state.metrics().latency(),
            ledger: self.ledger(state, now).await?,
            tamper_events,
            slashes,
        })
    }

    /// Jobs per second over the samples of the last [`RATE_WINDOW_MS`], this one included.
    fn rate(&self, now: i64, finished: u64) -> f64 {
        let mut samples = self.samples.lock().unwrap_or_else(PoisonError::into_inner);
        samples.push_back((now, finished));
        while samples.front().is_some_and(|(at, _)| now - at > RATE_WINDOW_MS) {
            samples.pop_front();
        }
        jobs_per_second(samples.front().copied(), (now, finished))
    }

    /// The ledger audit, run again once the last is older than [`AUDIT_KEPT_MS`].
    async fn ledger(&self, state: &AppState, now: i64) -> Result<LedgerStatus, StoreError> {
        if let Some((at, status)) = self.audit.lock().unwrap_or_else(PoisonError::into_inner).clone()
            && now - at < AUDIT_KEPT_MS
        {
            return Ok(status);
        }
        let audit = state.store().audit_ledger().await?;
        let status =
            LedgerStatus { sound: audit.is_sound(), transactions: audit.transactions, problems: audit.problems };
        *self.audit.lock().unwrap_or_else(PoisonError::into_inner) = Some((now, status.clone()));
        Ok(status)
    }
}

/// The rate between two samples of the finished-jobs counter (0 when they are the same moment).
pub fn jobs_per_second(first: Option<(i64, u64)>, last: (i64, u64)) -> f64 {
    match first {
        Some((at, n)) if last.0 > at => last.1.saturating_sub(n) as f64 * 1000.0 / (last.0 - at) as f64,
        _ => 0.0,
    }
}

#[cfg(test)]
mod tests;
