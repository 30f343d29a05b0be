//! # cdc-testkit: what the end-to-end tests and the bench share
//!
//! - [`Stack`]: where the local stack (`stack/up`) listens and its accounts, from the environment
//!   `stack/env` prints; admin connections over TCP.
//! - [`unique_name`]: names of databases and topics of one test or run, so runs can share a stack.
//! - [`kafka`]: reading a topic as a `read_committed` consumer does (to a count, or to its end).
//! - [`free_port`]: a loopback port nobody listens on.
//! - [`config::source_config_head`]: the lines of a `cdc-source` config every run writes alike.
//!
//! The tests' own helpers (`cdc-tests`: pipelines, writers, proxies) and the bench's workloads
//! (`cdc-bench`) build on these.

pub mod config;
pub mod kafka;
mod stack;

pub use stack::{next_counter, unique_name, Stack};

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}
