//! Sources: everything that produces samples.
//!
//! Owns the sans-IO parsers of the Prometheus text exposition and JSON push formats
//! ([`exposition`], [`push_json`]), and the I/O collectors the daemon polls: host metrics
//! and log tailing ([`host`]), HTTP scraping ([`scrape`]) and PromQL results of a
//! datasource ([`query`]). Sources only produce
//! samples; storing them (and timestamps, cardinality, staleness) is the series store's
//! and the daemon's business.

pub mod exposition;
pub mod host;
pub mod push_json;
pub mod query;
pub mod scrape;

pub use exposition::{LineError, ParsedSample};
