//! In-process HTTP tests of the coordinator: the real router over a real SQLite file, driven by
//! a scripted node built from `sgl-protocol`, with a clock the tests move.

mod account;
mod admission;
mod balancer;
mod chat;
mod compute;
mod dashboard;
mod discovery;
mod embeddings;
mod harness;
mod machines;
mod market;
mod nodes;
mod operators;
mod payments;
mod replicas;
mod review;
mod server;
mod ws;
