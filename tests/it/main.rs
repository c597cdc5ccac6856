//! The integration suite, one binary: the daemon, the CLI and the core driven from outside,
//! against real servers on 127.0.0.1, real SQLite files and the peers from Debian. One
//! binary links once; `common` is the one harness every module shares. The allocation tests
//! (`tests/engine_alloc.rs`, `tests/expr_alloc.rs`) stay binaries of their own: each installs
//! a counting global allocator, which must see no other test's allocations.

mod common;

mod acks;
mod actions;
mod backtest;
mod browser;
mod cli;
mod client;
mod config;
mod config_props;
mod daemon;
mod daemon_actions;
mod delivery;
mod docs;
mod editor;
mod engine_joins;
mod engine_persist;
mod engine_state_props;
mod external;
mod faults;
mod friction;
mod identity;
mod import;
mod ingest;
mod intervals;
mod layers;
mod listener;
mod outbox;
mod policy;
mod receivers_tls;
mod receivers_vendor;
mod scale;
mod schemas;
mod series_sweep;
mod silences;
mod sources_props;
mod store;
mod view_api;
