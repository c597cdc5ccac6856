//! tocsin: a rule-driven alert engine.
//!
//! This crate is the shells: the daemon and its sources, store, outbox, HTTP API and
//! action runner, and the command line. What they run is the pure core crate,
//! `tocsin-core` (policy files, rules, the engine, routing, rendering, the pipeline,
//! `check` and `test`), re-exported here under its own module names. See ARCHITECTURE.md
//! for the map.

pub use tocsin_core::{
    alert, check, config, diag, engine, expr, history, import, message, pipeline, policy, receivers, route, rules,
    ruletest, series, silence, template, time,
};

pub mod acks;
pub mod actions;
pub mod backtest;
pub mod cli;
pub mod client;
pub mod daemon;
pub mod datasource;
pub mod eval;
pub mod http;
pub mod http_client;
pub mod listener;
pub mod memory;
pub mod outbox;
pub mod reload;
pub mod remote_write;
pub mod sources;
pub mod store;
