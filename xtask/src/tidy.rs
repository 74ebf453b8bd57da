//! The house rules as ordinary tests, so `cargo test` alone enforces them (the rust-analyzer
//! "tidy" pattern). `cargo xtask tidy` runs just these.

mod deps;
mod source;
