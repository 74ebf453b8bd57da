//! End-to-end: a real local grid (`sgl-grid up` with real `sgl` node processes and the real
//! model, on 127.0.0.1) driven as callers drive it. One grid runs at a time (two cores), each
//! scenario starting its own. See `src/lib.rs` for what the suite needs to run.
//!
//! - [`sealed`]: sealed chat and sealed stream, every signature verified by `sgl-client`.
//! - [`openai_compat`]: plain chat and stream through the official `openai` Python package.
//! - [`embeddings`]: embeddings through the same package, on the real all-MiniLM-L6-v2 model.
//! - [`faults`]: the coordinator SIGKILLed under load and restarted; a node that never answers.
//! - [`failover`]: a node stopped before its first token; another serves, billed once.
//! - [`sealed_failover`]: the same for a sealed request, which `sgl-client` resends.
//! - [`midstream`]: a node killed mid-stream; an explicit error, nothing billed beyond output.
//! - [`cancel`]: a caller leaving a whole answer stops the real node's generation; nothing billed.
//! - [`canary`]: a sealed prompt's canary appears in no database, WAL or log file.
//! - [`tamper`]: a man in the middle altering replies and keys; the client refuses each.
//! - [`dashboard`]: the web dashboard in Debian's Chromium through Playwright: sign in, keys,
//!   a chat sealed and verified in the page, usage, an operator's unattested node, the admin.
//! - [`openapi`]: `/openapi.json` is the checked-in document; schemathesis finds no departure.
//! - [`orphans`]: `sgl-grid up` killed with SIGKILL; its node processes die with it.
//! - [`replicas`]: three replicas on PostgreSQL behind HAProxy; one killed under load.
//! - [`machines`]: machines rented on the local backend: SSH, extend, resize, x402, a provider
//!   failure refunded, expiry through a moved clock; nothing left on the host.

mod canary;
mod cancel;
mod chain;
mod classes;
mod compute;
mod dashboard;
mod embeddings;
mod failover;
mod faults;
mod machines;
mod market_chain;
mod midstream;
mod openai_compat;
mod openapi;
mod orphans;
mod replicas;
mod sealed;
mod sealed_failover;
mod support;
mod tamper;
mod x402;
