//! DigitalOcean (API v2) as a machine backend.
//!
//! - Plans are sizes, `do:{slug}` (`do:s-1vcpu-1gb`), 200 a page; `price_monthly` is read from
//!   the number's text, never through `f64`. Regions are `do:{slug}` (`do:nyc3`).
//! - Create needs the renter's SSH key: without one DigitalOcean e-mails a root password to the
//!   account owner, the grid's operator, so a keyless create is `Unsupported("password")`. The
//!   key is registered, the droplet made with it and the `sgl-machine:{id}` tag (202), then the
//!   key is deleted from the account.
//! - Running when `status=active` and a public IPv4 address exists.
//! - Resize: power off, resize (`disk` = grow the disk, for good), power on, each action polled
//!   through `GET /v2/actions/{id}` until `completed`; `errored` is `Unavailable`. Stop and start
//!   are the power actions.

mod client;
mod wire;

pub use client::{DEFAULT_API_URL, DEFAULT_IMAGE, DigitalOceanClient, DigitalOceanConfig};
