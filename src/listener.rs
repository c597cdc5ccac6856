//! The HTTP listener: the accept loop in front of the API, bounding what clients can hold.
//!
//! Owns connection admission and per-connection time limits (docs: ARCHITECTURE.md,
//! `daemon`, `api`): at most `max_connections` connections are served at once, further
//! ones are accepted and closed at once (so the process never runs out of file descriptors
//! because of clients); request headers must arrive within [`HEADER_TIMEOUT`], which also
//! closes a keep-alive connection idle for that long (well within the 60 s idle bound);
//! accept errors (EMFILE and the like) back off and are logged at most once per
//! [`LOG_EVERY`]. `axum::serve` hides connections, hence hyper's HTTP/1 server here.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

/// How long a client may take to send a request's headers, counted from the moment the
/// server waits for them: on a new connection, and after each response on a kept-alive one.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// At most one log line per this period for refused connections and for accept errors.
pub const LOG_EVERY: Duration = Duration::from_secs(10);
/// Longest pause after an accept error (the pause doubles from 10 ms up to this).
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Counts events and says when one may be logged: at most once per [`LOG_EVERY`], with
/// how many were not logged since.
#[derive(Debug, Default)]
struct Throttle {
    last: Option<Instant>,
    unlogged: u64,
}

impl Throttle {
    /// `Some(n)` when this event should be logged, `n` being the events swallowed before it.
    fn hit(&mut self, now: Instant) -> Option<u64> {
        if self.last.is_some_and(|l| now.duration_since(l) < LOG_EVERY) {
            self.unlogged += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.unlogged))
    }
}

/// Serves `app` on `listener` until `stop` turns true, then stops accepting, asks every
/// connection to finish its request in flight and close, and returns once they have or
/// `grace` has passed (whether they all finished).
pub async fn serve(
    listener: TcpListener,
    app: axum::Router,
    max_connections: usize,
    mut stop: watch::Receiver<bool>,
    grace: Duration,
) -> bool {
    let slots = Arc::new(Semaphore::new(max_connections));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT);
    let http = Arc::new(http);
    let (mut refused, mut failed) = (Throttle::default(), Throttle::default());
    let mut backoff = Duration::ZERO;
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            () = stopped(&mut stop) => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => {
                backoff = Duration::ZERO;
                stream
            }
            Err(e) => {
                // Out of descriptors (EMFILE, ENFILE) or memory: retrying at once would spin
                // the runtime thread; wait, doubling the pause while it lasts.
                backoff = (backoff * 2).clamp(Duration::from_millis(10), MAX_BACKOFF);
                if let Some(n) = failed.hit(Instant::now()) {
                    tracing::error!(error = %e, unlogged = n, retry_in = ?backoff, "accept failed");
                }
                tokio::time::sleep(backoff).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            if let Some(n) = refused.hit(Instant::now()) {
                tracing::warn!(
                    max_connections,
                    unlogged = n,
                    "connection limit reached; connection closed"
                );
            }
            drop(stream);
            continue;
        };
        let http = Arc::clone(&http);
        let service = TowerToHyperService::new(app.clone());
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let conn = http.serve_connection(TokioIo::new(stream), service);
            let mut conn = std::pin::pin!(conn);
            let res = tokio::select! {
                res = conn.as_mut() => res,
                () = stopped(&mut stop) => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = res {
                tracing::debug!("connection closed: {e}");
            }
            drop(permit);
        });
    }
    let all = u32::try_from(max_connections).unwrap_or(u32::MAX);
    tokio::time::timeout(grace, slots.acquire_many(all)).await.is_ok()
}

/// Resolves once `stop` is true, or once its sender is gone (the daemon is going away).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns must not live across an await (it is not `Send`).
    let _ = stop.wait_for(|s| *s).await.map(|_| ());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_logs_once_per_period_and_counts_the_rest() {
        let mut t = Throttle::default();
        let start = Instant::now();
        assert_eq!(t.hit(start), Some(0));
        assert_eq!(t.hit(start + Duration::from_secs(1)), None);
        assert_eq!(t.hit(start + Duration::from_secs(9)), None);
        assert_eq!(t.hit(start + LOG_EVERY), Some(2));
        assert_eq!(t.hit(start + LOG_EVERY), None);
    }
}
