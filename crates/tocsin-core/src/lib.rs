//! tocsin's pure core: everything that decides, nothing that waits.
//!
//! Parsing and checking policy files, compiling rules and expressions, the series store,
//! the per-instance state machine and notification rules, routing and grouping, rendering
//! messages for each receiver kind, the pipeline that ties them together, and the two
//! shells that need nothing else: `check` and `ruletest`. Time, samples and file contents
//! are arguments; effects are return values. Cargo holds the line: this crate depends on
//! no runtime, HTTP, database, mail, watcher or host-metrics crate, and the layering test
//! (`tests/it/layers.rs` in the repository) fails on a `use` that points up ARCHITECTURE.md's
//! layers.

pub mod alert;
pub mod backtest;
pub mod check;
pub mod config;
pub mod diag;
pub mod engine;
pub mod exposition;
pub mod expr;
pub mod history;
pub mod import;
pub mod message;
pub mod pipeline;
pub mod policy;
pub mod promql;
pub mod push_json;
pub mod receivers;
pub mod route;
pub mod rules;
pub mod ruletest;
pub mod series;
pub mod silence;
pub mod template;
pub mod time;
