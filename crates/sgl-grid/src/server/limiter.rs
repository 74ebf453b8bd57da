//! Counting open connections per client and in total, so that one client, or all of them
//! together, can hold only so many.
//!
//! A connection is let in by [`ConnectionLimiter::try_admit`], which hands back a
//! [`ConnectionSlot`]; the slot gives its place back when dropped, however the connection ends
//! (closed, timed out, or upgraded to a WebSocket that later closes).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::metrics::{ConnectionStats, Refusal};

/// Who a connection is counted against: an IPv4 address, or an IPv6 /64 network (the smallest
/// block a subscriber is usually given, so one client cannot dodge its cap by changing the low
/// bits of its address). IPv4-mapped IPv6 addresses count as their IPv4 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum ClientKey {
    /// One IPv4 address.
    V4(std::net::Ipv4Addr),
    /// The first 64 bits of an IPv6 address.
    V6Network(u64),
}

impl From<IpAddr> for ClientKey {
    fn from(address: IpAddr) -> Self {
        match address.to_canonical() {
            IpAddr::V4(v4) => Self::V4(v4),
            IpAddr::V6(v6) => Self::V6Network((v6.to_bits() >> 64) as u64),
        }
    }
}

/// The caps a [`ConnectionLimiter`] enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Caps {
    /// Open connections at most, from everyone.
    pub(super) total: usize,
    /// Open connections at most, from one [`ClientKey`].
    pub(super) per_client: usize,
}

/// Open connections by client and in total.
#[derive(Debug)]
pub(super) struct ConnectionLimiter {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    caps: Caps,
    counts: Mutex<Counts>,
    stats: Arc<ConnectionStats>,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    /// Only clients with at least one open connection, so the map never outgrows the caps.
    by_client: HashMap<ClientKey, usize>,
}

/// One admitted connection's place; dropping it frees the place.
#[derive(Debug)]
pub(super) struct ConnectionSlot {
    inner: Arc<Inner>,
    client: ClientKey,
}

impl ConnectionLimiter {
    /// A limiter with nothing open, reporting its open count and refusals to `stats`.
    pub(super) fn new(caps: Caps, stats: Arc<ConnectionStats>) -> Self {
        Self { inner: Arc::new(Inner { caps, counts: Mutex::default(), stats }) }
    }

    /// Admits one more connection from `client`, or says which cap it would break (and counts
    /// the refusal). The per-client cap is checked first: a client at its own cap is told so
    /// even when the grid as a whole is full too.
    pub(super) fn try_admit(&self, client: impl Into<ClientKey>) -> Result<ConnectionSlot, Refusal> {
        let client = client.into();
        let mut counts = self.inner.counts();
        let from_client = counts.by_client.get(&client).copied().unwrap_or(0);
        let refusal = if from_client >= self.inner.caps.per_client {
            Some(Refusal::PerAddress)
        } else if counts.total >= self.inner.caps.total {
            Some(Refusal::Total)
        } else {
            None
        };
        if let Some(refusal) = refusal {
            self.inner.stats.refused(refusal);
            return Err(refusal);
        }
        counts.total += 1;
        *counts.by_client.entry(client).or_insert(0) += 1;
        self.inner.stats.set_open(counts.total);
        Ok(ConnectionSlot { inner: Arc::clone(&self.inner), client })
    }

    /// Connections open now.
    #[cfg(test)]
    pub(super) fn open(&self) -> usize {
        self.inner.counts().total
    }

    /// Connections open now from `client`.
    #[cfg(test)]
    pub(super) fn open_from(&self, client: impl Into<ClientKey>) -> usize {
        self.inner.counts().by_client.get(&client.into()).copied().unwrap_or(0)
    }

    /// Clients with at least one open connection.
    #[cfg(test)]
    pub(super) fn clients(&self) -> usize {
        self.inner.counts().by_client.len()
    }
}

impl Inner {
    fn counts(&self) -> MutexGuard<'_, Counts> {
        // The counts are updated in single statements, so a panic elsewhere cannot leave them
        // half-written.
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut counts = self.inner.counts();
        counts.total = counts.total.saturating_sub(1);
        if let Some(count) = counts.by_client.get_mut(&self.client) {
            *count -= 1;
            if *count == 0 {
                counts.by_client.remove(&self.client);
            }
        }
        self.inner.stats.set_open(counts.total);
    }
}

#[cfg(test)]
mod tests;
