//! Sources: everything that produces samples.
//!
//! Owns the I/O collectors the daemon polls: host metrics and log tailing ([`host`]), HTTP
//! scraping ([`scrape`]) and PromQL results of a datasource ([`query`]). The parsers of the
//! Prometheus text exposition and JSON push formats they use ([`exposition`],
//! [`push_json`]) are pure and live in the core crate. Sources only produce
//! samples; storing them (and timestamps, cardinality, staleness) is the series store's
//! and the daemon's business.

pub mod host;
pub mod push;
pub mod query;
pub mod scrape;

pub use tocsin_core::{exposition, push_json};

pub use exposition::{LineError, ParsedSample};

use crate::series::Refusal;

/// What the daemon did with a batch of a source's samples (and, summed, with all of a
/// source's): how many it stored and how many the series store refused, and why.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ingested {
    /// Samples stored.
    pub accepted: u64,
    /// Samples refused, indexed by [`Refusal`] (`Refusal::ALL` order).
    pub refused: [u64; 3],
}

impl Ingested {
    /// Samples refused for any reason.
    pub fn refused_total(&self) -> u64 {
        self.refused.iter().sum()
    }

    /// How many were refused for `why`.
    pub fn refused_for(&self, why: Refusal) -> u64 {
        self.refused[why as usize]
    }

    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &Ingested) {
        self.accepted += other.accepted;
        for (a, b) in self.refused.iter_mut().zip(other.refused) {
            *a += b;
        }
    }
}
