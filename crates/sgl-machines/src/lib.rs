//! Machines rented by the hour (issue 18): the core the grid builds the product on, and the
//! places machines come from.
//!
//! - [`price`]: hourly rates, prepaid hours, extensions and resizes in integer micro-dollars and
//!   milliseconds (a resize keeps the prepaid value left, to the millisecond);
//! - [`backend`]: the trait every place machines come from implements, and [`ssh_probe`], the
//!   one test of "reachable by SSH";
//! - [`lifecycle`]: pending → active → expiring → expired → destroyed, the end reasons, and what
//!   the leader owes a machine at a given moment;
//! - the backends: [`local`] (systemd-nspawn containers on the grid's own host), [`qemu`]
//!   (QEMU virtual machines on the same host, where [`kvm`] allows or the operator accepts
//!   software emulation), and the clouds
//!   [`vultr`] and [`digitalocean`] over [`retry`] (timeouts, 429 and 5xx handling) with the
//!   operator's token held as a [`secret::ProviderToken`].
//!
//! `price` and `lifecycle` do no I/O and read no clock: the moment is always passed in. The
//! grid's store, service and routes build the product on this crate
//! (`docs/research/machines-plan.md`).
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod backend;
mod cloud;
pub mod digitalocean;
pub mod kvm;
pub mod lifecycle;
pub mod local;
mod machine_id;
pub mod price;
pub mod qemu;
pub mod retry;
pub mod secret;
pub mod ssh_probe;
pub mod vultr;
