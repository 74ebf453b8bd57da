//! Vultr (API v2) as a machine backend.
//!
//! - Plans are Vultr's (`vc2-1c-1gb`, `vcg-…`), read with cursor paging, 500 a page; a plan's
//!   `monthly_cost` is read from the number's text, never through `f64`.
//! - Regions are Vultr's ids (`ewr`).
//! - Create registers the renter's key (`POST /ssh-keys`), makes the instance with it, the
//!   `sgl-machine:{id}` tag and no activation e-mail, then deletes the key from the account.
//!   Without a key, the root password of the create answer is the renter's (Vultr shows it in
//!   that answer only, never in a later read).
//! - Running only when `status=active`, `server_status=ok` and `main_ip` is not `0.0.0.0`.
//! - Stop and start are `POST /instances/{id}/halt` and `/start` (both 204 in the reference).
//! - Resize only to a plan `GET /instances/{id}/upgrades` offers: Vultr cannot downgrade.

mod client;
mod wire;

pub use client::{DEFAULT_API_URL, DEFAULT_OS_ID, VultrClient, VultrConfig};
