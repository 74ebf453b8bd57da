//! When and how long to wait before retrying: exponential backoff with jitter, overridden by the
//! grid's `Retry-After` when it sends one.
//!
//! What may be retried is decided by the caller of [`RetryPolicy::delay`]: idempotent calls and
//! reservations on 429 and 503; a chat request only when the grid refused it before doing any
//! work (never once a response has started, which could bill twice).

use std::time::Duration;

use rand_core::{OsRng, RngCore};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use sgl_protocol::api::error::ErrorCode;

/// How many times and how patiently to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0 disables retrying).
    pub max_retries: u32,
    /// The first backoff; each retry doubles it.
    pub base_delay: Duration,
    /// The longest wait, for backoff and for `Retry-After` alike.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { max_retries: 3, base_delay: Duration::from_millis(500), max_delay: Duration::from_secs(20) }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        Self { max_retries: 0, ..Self::default() }
    }

    /// The wait before retry number `attempt` (0 for the first retry): `Retry-After` when the
    /// grid sent a usable one, else `base × 2^attempt` with up to 25 % jitter; both capped.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(wait) = retry_after {
            return wait.min(self.max_delay);
        }
        let backoff = self.base_delay.saturating_mul(2u32.saturating_pow(attempt)).min(self.max_delay);
        let jitter_ms = u64::from(OsRng.next_u32()) % (backoff.as_millis() as u64 / 4 + 1);
        (backoff + Duration::from_millis(jitter_ms)).min(self.max_delay)
    }
}

/// Statuses worth retrying: too many requests, or no capacity right now.
pub(crate) fn is_retryable_status(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE
}

/// Whether a refused chat request may be sent again: when the grid refused it before
/// dispatching any work (rate limited, or no node free), and, for a sealed request, when its
/// node failed before any output (503 `upstream_failed`: the grid released the hold, nothing
/// was billed). A sealed request is bound to one node's key, so only the caller can send it to
/// another node (with a fresh reservation); a plain request the grid re-dispatches itself, so
/// its `upstream_failed` means every node failed and is final.
pub(crate) fn chat_may_retry(status: StatusCode, code: Option<ErrorCode>, sealed: bool) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS
        || (status == StatusCode::SERVICE_UNAVAILABLE
            && (matches!(code, Some(ErrorCode::NoCapacity | ErrorCode::RateLimited))
                || (sealed && code == Some(ErrorCode::UpstreamFailed))))
}

/// `Retry-After` in seconds (the HTTP-date form is ignored; backoff applies instead).
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    value.parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    //! Backoff growth, caps, `Retry-After`, and which refusals a chat may retry.

    use reqwest::header::HeaderValue;

    use super::*;

    #[test]
    fn backoff_doubles_within_jitter_and_is_capped() {
        let policy = RetryPolicy::default();
        for attempt in 0..3 {
            let base = Duration::from_millis(500 * 2u64.pow(attempt));
            let delay = policy.delay(attempt, None);
            assert!(delay >= base && delay <= base + base / 4, "attempt {attempt}: {delay:?}");
        }
        assert_eq!(policy.delay(30, None), policy.max_delay);
    }

    #[test]
    fn retry_after_wins_but_is_capped() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("3"));
        let policy = RetryPolicy::default();
        assert_eq!(policy.delay(0, retry_after(&headers)), Duration::from_secs(3));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("3600"));
        assert_eq!(policy.delay(0, retry_after(&headers)), policy.max_delay);
        headers.insert(RETRY_AFTER, HeaderValue::from_static("Wed, 21 Oct 2026 07:28:00 GMT"));
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn chat_retries_only_refusals_made_before_any_work() {
        for sealed in [true, false] {
            assert!(chat_may_retry(StatusCode::TOO_MANY_REQUESTS, None, sealed));
            assert!(chat_may_retry(StatusCode::SERVICE_UNAVAILABLE, Some(ErrorCode::NoCapacity), sealed));
            assert!(!chat_may_retry(StatusCode::SERVICE_UNAVAILABLE, None, sealed));
            assert!(!chat_may_retry(StatusCode::BAD_GATEWAY, None, sealed));
        }
        // A sealed request whose node failed before output goes to another node; a plain one
        // the grid already re-dispatched.
        assert!(chat_may_retry(StatusCode::SERVICE_UNAVAILABLE, Some(ErrorCode::UpstreamFailed), true));
        assert!(!chat_may_retry(StatusCode::SERVICE_UNAVAILABLE, Some(ErrorCode::UpstreamFailed), false));
        assert!(is_retryable_status(StatusCode::SERVICE_UNAVAILABLE) && !is_retryable_status(StatusCode::BAD_REQUEST));
    }
}
