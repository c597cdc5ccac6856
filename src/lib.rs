//! tocsin: a rule-driven alert engine.
//!
//! See ARCHITECTURE.md for the map. The core (`series`, `expr`, `config`, `rules`, `engine`)
//! is sans-IO: it takes time and samples as arguments and returns events.

pub mod config;
pub mod diag;
pub mod series;
