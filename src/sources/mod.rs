//! Sources (SPEC §6): the I/O side that produces samples for the daemon to timestamp and store.

pub mod host;
