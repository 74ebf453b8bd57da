//! Limits on what an unauthenticated client may make the grid do: a fixed-window counter per
//! client address, with bounded memory, so that one address cannot flood the store with device
//! logins or hold every keyless reservation.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// Addresses tracked at most; past this the oldest windows are dropped first.
const MAX_TRACKED: usize = 65_536;

/// A request over the limit, and when the address may try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many requests from this address; retry in {retry_after_secs} s")]
pub struct Limited {
    /// Whole seconds until the window ends (at least 1).
    pub retry_after_secs: u64,
}

/// At most `limit` events per address per `window_ms`.
#[derive(Debug)]
pub struct AddressLimiter {
    limit: u32,
    window_ms: i64,
    windows: Mutex<HashMap<IpAddr, (i64, u32)>>,
}

impl AddressLimiter {
    /// A limiter of `limit` events per `window_ms` milliseconds per address.
    pub fn new(limit: u32, window_ms: i64) -> Self {
        Self { limit, window_ms: window_ms.max(1), windows: Mutex::new(HashMap::new()) }
    }

    /// Counts one event from `address` at `now_ms`, or refuses it. Events without a known
    /// address (in-process callers) are not limited.
    pub fn check(&self, address: Option<IpAddr>, now_ms: i64) -> Result<(), Limited> {
        let Some(address) = address else { return Ok(()) };
        let mut windows = self.windows.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if windows.len() >= MAX_TRACKED && !windows.contains_key(&address) {
            let window_ms = self.window_ms;
            windows.retain(|_, (started, _)| now_ms - *started < window_ms);
            if windows.len() >= MAX_TRACKED {
                // Still full of live windows: refuse newcomers rather than grow without bound.
                return Err(Limited { retry_after_secs: secs(window_ms) });
            }
        }
        let (started, count) = windows.entry(address).or_insert((now_ms, 0));
        if now_ms - *started >= self.window_ms {
            (*started, *count) = (now_ms, 0);
        }
        if *count >= self.limit {
            return Err(Limited { retry_after_secs: secs(*started + self.window_ms - now_ms) });
        }
        *count += 1;
        Ok(())
    }
}

fn secs(ms: i64) -> u64 {
    u64::try_from(ms.max(1)).unwrap_or(1).div_ceil(1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_gets_its_own_window() {
        let limiter = AddressLimiter::new(3, 60_000);
        let (a, b) = (Some("10.0.0.1".parse().unwrap()), Some("10.0.0.2".parse().unwrap()));
        for _ in 0..3 {
            assert_eq!(limiter.check(a, 1_000), Ok(()));
        }
        assert_eq!(limiter.check(a, 1_500), Err(Limited { retry_after_secs: 60 }));
        assert_eq!(limiter.check(a, 60_500), Err(Limited { retry_after_secs: 1 }));
        assert_eq!(limiter.check(b, 1_500), Ok(()), "another address is not affected");
        assert_eq!(limiter.check(a, 61_000), Ok(()), "a new window");
        assert_eq!(limiter.check(None, 61_000), Ok(()));
    }

    #[test]
    fn memory_stays_bounded() {
        let limiter = AddressLimiter::new(1, 1_000);
        for n in 0..MAX_TRACKED as u32 {
            assert!(limiter.check(Some(IpAddr::from(n.to_be_bytes())), 0).is_ok());
        }
        let newcomer = Some(IpAddr::from([255, 255, 255, 255]));
        assert!(limiter.check(newcomer, 10).is_err(), "full of live windows");
        assert!(limiter.check(newcomer, 1_000).is_ok(), "expired windows make room");
        assert!(limiter.windows.lock().unwrap().len() <= MAX_TRACKED);
    }
}
