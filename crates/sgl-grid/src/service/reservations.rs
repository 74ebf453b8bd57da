//! Reservations: a node held for one sealed request, named by a single-use token. The type owns
//! its map behind methods (no guard leaves it); expired reservations are dropped as they are met.
//! What anybody may hold is bounded: per API key, per keyless client address, and keyless ones
//! together, so one client cannot lock out the others. On PostgreSQL they are rows every replica
//! shares.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use sgl_grid_store::reservations::{OpenCounts, ReservationRow};
use sgl_grid_store::{Backend, Store, StoreError};

use crate::config::ReferencePrice;
use crate::service::secrets;
use crate::state::Reservation;

/// Open reservations one API key may hold at once.
pub const MAX_OPEN_PER_KEY: usize = 64;
/// Open reservations made without a key from one client address.
pub const MAX_OPEN_PER_ADDRESS: usize = 16;
/// Open reservations made without a key, all together (they are free to make, so bounded).
pub const MAX_OPEN_ANONYMOUS: usize = 4096;

/// Why a reservation was not held.
#[derive(Debug, thiserror::Error)]
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
    /// The shared store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Every open reservation, by token: in this process's memory, or, on PostgreSQL, in a table
/// every replica shares (so a request may reach another replica than the one that reserved).
#[derive(Debug)]
pub struct Reservations {
    open: Mutex<HashMap<String, Reservation>>,
    shared: Option<Store>,
}

/// How many reservations a holder has open, against the bounds.
fn check_bounds(reservation: &Reservation, counts: OpenCounts) -> Result<(), ReservationError> {
    let too_many = |count: i64, max: usize| usize::try_from(count).unwrap_or(usize::MAX) >= max;
    match (reservation.api_key_id, reservation.address) {
        (Some(_), _) if too_many(counts.same_key, MAX_OPEN_PER_KEY) => Err(ReservationError::KeyFull),
        (Some(_), _) => Ok(()),
        (None, address) if address.is_some() && too_many(counts.same_address, MAX_OPEN_PER_ADDRESS) => {
            Err(ReservationError::AddressFull)
        }
        (None, _) if too_many(counts.anonymous, MAX_OPEN_ANONYMOUS) => Err(ReservationError::AnonymousFull),
        (None, _) => Ok(()),
    }
}

impl Reservations {
    /// Reservations for a grid on `store`: shared through it on PostgreSQL, in memory on SQLite.
    pub fn new(store: &Store) -> Self {
        let shared = (store.backend() == Backend::Postgres).then(|| store.clone());
        Self { open: Mutex::default(), shared }
    }

    fn open(&self) -> MutexGuard<'_, HashMap<String, Reservation>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Holds `reservation` at `now_ms` within the bounds; returns its token.
    pub async fn hold(&self, reservation: Reservation, now_ms: i64) -> Result<String, ReservationError> {
        let token = format!("rsv_{}", secrets::random_b58(24));
        if let Some(store) = &self.shared {
            let address = reservation.address.map(|a| a.to_string());
            let counts = store.open_reservations(reservation.api_key_id, address.as_deref(), now_ms).await?;
            check_bounds(&reservation, counts)?;
            store.insert_reservation(&row(&token, &reservation)).await?;
            return Ok(token);
        }
        let mut open = self.open();
        open.retain(|_, r| r.expires_at_ms > now_ms);
        let count = |same: &dyn Fn(&Reservation) -> bool| i64::try_from(open.values().filter(|r| same(r)).count());
        let counts = OpenCounts {
            same_key: count(&|r| r.api_key_id.is_some() && r.api_key_id == reservation.api_key_id).unwrap_or(i64::MAX),
            same_address: count(&|r| r.api_key_id.is_none() && r.address == reservation.address).unwrap_or(i64::MAX),
            anonymous: count(&|r| r.api_key_id.is_none()).unwrap_or(i64::MAX),
        };
        check_bounds(&reservation, counts)?;
        open.insert(token.clone(), reservation);
        Ok(token)
    }

    /// The live reservation `token` made by `owner` (`None`: made without a key), taken: it is
    /// single-use, on every replica.
    pub async fn take(&self, token: &str, owner: Option<i64>, now_ms: i64) -> Result<Option<Reservation>, StoreError> {
        if let Some(store) = &self.shared {
            return Ok(store.take_reservation(token, owner, now_ms).await?.and_then(reservation));
        }
        let mut open = self.open();
        let usable = open.get(token).is_some_and(|r| r.expires_at_ms > now_ms && r.api_key_id == owner);
        Ok(usable.then(|| open.remove(token)).flatten())
    }

    /// A copy of the live reservation `token` made by `owner`, left in place (to quote it).
    pub async fn peek(&self, token: &str, owner: Option<i64>, now_ms: i64) -> Result<Option<Reservation>, StoreError> {
        if let Some(store) = &self.shared {
            return Ok(store.peek_reservation(token, owner, now_ms).await?.and_then(reservation));
        }
        Ok(self.open().get(token).filter(|r| r.expires_at_ms > now_ms && r.api_key_id == owner).cloned())
    }
}

/// The row that stores `reservation` under `token`.
fn row(token: &str, reservation: &Reservation) -> ReservationRow {
    ReservationRow {
        token: token.to_owned(),
        node_id: reservation.node_id.to_string(),
        model: reservation.model.clone(),
        input_per_m: reservation.price.input_per_m,
        output_per_m: reservation.price.output_per_m,
        api_key_id: reservation.api_key_id,
        address: reservation.address.map(|address| address.to_string()),
        expires_at: reservation.expires_at_ms,
    }
}

/// The reservation a row stores (`None` if the row is corrupt).
fn reservation(row: ReservationRow) -> Option<Reservation> {
    Some(Reservation {
        node_id: row.node_id.parse().ok()?,
        model: row.model,
        price: ReferencePrice { input_per_m: row.input_per_m, output_per_m: row.output_per_m },
        api_key_id: row.api_key_id,
        expires_at_ms: row.expires_at,
        address: row.address.and_then(|address| address.parse().ok()),
    })
}
