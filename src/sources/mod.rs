//! Sources: everything that produces samples.
//!
//! Owns the I/O collectors the daemon polls: host metrics and log tailing ([`host`]), HTTP
//! scraping ([`scrape`]) and PromQL results of a datasource ([`query`]). The parsers of the
//! Prometheus text exposition and JSON push formats they use ([`exposition`],
//! [`push_json`]) are pure and live in the core crate. Sources only produce
//! samples; storing them (and timestamps, cardinality, staleness) is the series store's
//! and the daemon's business.

pub mod host;
pub mod query;
pub mod scrape;

pub use tocsin_core::{exposition, push_json};

pub use exposition::{LineError, ParsedSample};
