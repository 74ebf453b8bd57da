//! Reservations: a node held for one sealed request, named by a single-use token. The type owns
//! its map behind methods (no guard leaves it); expired reservations are dropped as they are met.
//! What anybody may hold is bounded: per API key, per keyless client address, and keyless ones
//! together, so one client cannot lock out the others.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::service::secrets;
use crate::state::Reservation;

/// Open reservations one API key may hold at once.
pub const MAX_OPEN_PER_KEY: usize = 64;
/// Open reservations made without a key from one client address.
pub const MAX_OPEN_PER_ADDRESS: usize = 16;
/// Open reservations made without a key, all together (they are free to make, so bounded).
pub const MAX_OPEN_ANONYMOUS: usize = 4096;

/// Why a reservation was not held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReservationError {
    /// The key holds [`MAX_OPEN_PER_KEY`] already.
    #[error("this key holds too many open reservations; use or let some expire")]
    KeyFull,
    /// The keyless client address holds [`MAX_OPEN_PER_ADDRESS`] already.
    #[error("this address holds too many open keyless reservations; use or let some expire")]
    AddressFull,
    /// Keyless reservations are at [`MAX_OPEN_ANONYMOUS`].
    #[error("too many keyless reservations are open; retry shortly")]
    AnonymousFull,
}

/// Every open reservation, by token.
#[derive(Debug, Default)]
pub struct Reservations {
    open: Mutex<HashMap<String, Reservation>>,
}

impl Reservations {
    fn open(&self) -> MutexGuard<'_, HashMap<String, Reservation>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Holds `reservation` at `now_ms` within the bounds; returns its token.
    pub fn hold(&self, reservation: Reservation, now_ms: i64) -> Result<String, ReservationError> {
        let mut open = self.open();
        open.retain(|_, r| r.expires_at_ms > now_ms);
        let count = |same: &dyn Fn(&Reservation) -> bool| open.values().filter(|r| same(r)).count();
        match (reservation.api_key_id, reservation.address) {
            (Some(key), _) if count(&|r| r.api_key_id == Some(key)) >= MAX_OPEN_PER_KEY => {
                return Err(ReservationError::KeyFull);
            }
            (Some(_), _) => {}
            (None, address) => {
                let same_address = |r: &Reservation| r.api_key_id.is_none() && r.address == address;
                if address.is_some() && count(&same_address) >= MAX_OPEN_PER_ADDRESS {
                    return Err(ReservationError::AddressFull);
                }
                if count(&|r| r.api_key_id.is_none()) >= MAX_OPEN_ANONYMOUS {
                    return Err(ReservationError::AnonymousFull);
                }
            }
        }
        let token = format!("rsv_{}", secrets::random_b58(24));
        open.insert(token.clone(), reservation);
        Ok(token)
    }

    /// The live reservation `token` made by `owner` (`None`: made without a key), taken: it is
    /// single-use.
    pub fn take(&self, token: &str, owner: Option<i64>, now_ms: i64) -> Option<Reservation> {
        let mut open = self.open();
        let usable = open.get(token).is_some_and(|r| r.expires_at_ms > now_ms && r.api_key_id == owner);
        usable.then(|| open.remove(token)).flatten()
    }

    /// A copy of the live reservation `token` made by `owner`, left in place (to quote it).
    pub fn peek(&self, token: &str, owner: Option<i64>, now_ms: i64) -> Option<Reservation> {
        self.open().get(token).filter(|r| r.expires_at_ms > now_ms && r.api_key_id == owner).cloned()
    }
}
