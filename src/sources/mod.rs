//! Metric sources: sans-IO parsers of the exposition text and JSON push formats (SPEC §6).

pub mod exposition;
pub mod push_json;

pub use exposition::{LineError, ParsedSample};
