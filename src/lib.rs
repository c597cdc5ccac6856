//! tocsin: a rule-driven alert engine.
//!
//! See ARCHITECTURE.md for the map. The core (`series`, `expr`, `config`, `rules`,
//! `engine`, `template`) is sans-IO: it takes time and samples as arguments and returns
//! events. `check`, `ruletest` and `cli` are thin shells around it.

pub mod actions;
pub mod api;
pub mod check;
pub mod cli;
pub mod client;
pub mod config;
pub mod daemon;
pub mod diag;
pub mod engine;
pub mod expr;
pub mod import;
pub mod listener;
pub mod message;
pub mod outbox;
pub mod receivers;
pub mod reload;
pub mod route;
pub mod rules;
pub mod ruletest;
pub mod series;
pub mod silence;
pub mod sources;
pub mod store;
pub mod template;
