//! Shared helpers of the end-to-end tests.
//!
//! Every test here runs against the real local stack started by `stack/up` (MariaDB with the binlog
//! on, Kafka in KRaft mode, Apicurio Registry). Addresses come from the environment that
//! `stack/env` prints; each variable falls back to the stack's default, so a stack started with
//! default ports needs no environment at all. Tests never skip when a service is missing: they fail
//! and say to run `stack/up`.
//!
//! Isolation: every test creates its own database (`unique_name`) and its own topics, so tests can run
//! in parallel against one stack.

pub use cdc_testkit::{kafka, next_counter, unique_name, Stack};

pub mod fixtures;
pub mod pipeline;
pub mod private;
pub mod process;
pub mod source;
pub mod tcp_proxy;
pub mod writers;
pub mod tls_proxy;
pub mod sink;
