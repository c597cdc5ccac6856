//! The daemon (`tocsin run`): the runtime around the pure core.
//!
//! Owns wiring: the tokio runtime, one aligned scheduler per rule group, the sources that
//! feed the series store (system, scrape, logs, query; push arrives through the HTTP API),
//! hot reload (directory watch, SIGHUP, `POST /-/reload`, a slow periodic re-read),
//! persistence of instance state and history in SQLite after every evaluation (on the
//! store thread, in order, kept in memory while the store fails), running admitted actions
//! (as tasks, after that commit), and graceful shutdown. It holds no alerting semantics:
//! evaluation is the core's `pipeline`, validation is `reload`/`check`, storage is `store`,
//! running actions is `actions`, HTTP is `http`.
//!
//! By job: [`state`] (what every task shares, the clock), [`ingest`] (samples into the
//! store), [`schedule`] (evaluations, the dispatch timer, performing effects), [`writer`]
//! (the store thread) and [`lifecycle`] (start, serve, signals, reload).

mod handle;
mod ingest;
mod lifecycle;
mod schedule;
mod state;
mod writer;

pub(crate) use lifecycle::{init_tracing, runtime, start};
pub use lifecycle::{reload_now, run};
pub use schedule::{acknowledge, evaluate};
pub use state::{Core, Loaded, Shared, load_config, now};
pub use writer::StoreWriter;
