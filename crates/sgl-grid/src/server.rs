//! The grid's HTTP server: its own accept loop over hyper, so that idle or slow sockets cannot
//! make the grid unreachable (issue 13).
//!
//! - A connection must send a complete request head within `header_read_timeout` of opening
//!   (or of the first byte of a later request), and a keep-alive connection must begin its
//!   next request within `idle_timeout` of the previous response (see the `clock` module). A request being
//!   served has no time limit: chat streams and WebSockets last minutes.
//! - At most `max_connections_per_address` connections are open from one client and
//!   `max_connections` in total, never more than the open-file limit minus a reserve
//!   (the `fd_limit` module). A connection over a cap is closed as soon as it is accepted, counted in
//!   `sgl_connections_refused_total`, and logged at most once a second.
//! - Every request carries its peer's address as axum's `ConnectInfo<SocketAddr>`.
//! - Stopping stops accepting, lets requests in flight finish, and closes idle connections,
//!   as `axum::serve(..).with_graceful_shutdown(..)` does.
//!
//! HTTP/1.1 only, as the grid has always served (axum's `http2` feature is off): hyper's
//! HTTP/1 connection directly, with upgrades for the node WebSocket.

mod clock;
mod connection;
mod fd_limit;
mod limiter;
mod proxy;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::metrics::ConnectionStats;
use crate::state::AppState;
use clock::Timeouts;
use connection::{Accepted, Shared};
use limiter::{Caps, ConnectionLimiter};
pub use proxy::header as proxy_v2_header;

/// How long connections may stay silent, and how many may be open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// A request head must be complete this soon after the connection opens or after the
    /// first byte of a later request.
    pub header_read_timeout: Duration,
    /// A keep-alive connection must begin its next request this soon after a response.
    pub idle_timeout: Duration,
    /// Open connections at most, in total (lowered to the open-file limit minus a reserve).
    pub max_connections: usize,
    /// Open connections at most from one IPv4 address or IPv6 /64 network.
    pub max_connections_per_address: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 8_192,
            max_connections_per_address: 256,
        }
    }
}

/// How [`serve`] limits connections and where it counts them.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Timeouts and caps.
    pub limits: ConnectionLimits,
    /// Open, refused and timed-out connections, for `/metrics`.
    pub stats: Arc<ConnectionStats>,
    /// Load balancers: their connections open with a PROXY v2 header, and the client it names
    /// is the one admitted, capped and seen by the handlers.
    pub proxied_by: Vec<std::net::IpAddr>,
}

/// Serves the grid for `state` (its router, its configured limits, its metrics) until
/// `shutdown` completes, then as [`serve`] does.
pub async fn serve_grid(listener: TcpListener, state: AppState, shutdown: impl Future<Output = ()>) -> io::Result<()> {
    let options = ServeOptions {
        limits: state.config().connections,
        stats: Arc::clone(state.metrics().connections()),
        proxied_by: state.config().proxy_protocol_from.clone(),
    };
    serve(listener, crate::routes::router(state), options, shutdown).await
}

/// Serves `router` on `listener` until `shutdown` completes; then stops accepting, lets
/// requests in flight finish, and returns once every connection has closed (upgraded
/// connections are their handlers' and are not waited for). Accept errors are retried, so
/// like `axum::serve` it does not fail today; the `io::Result` leaves room to.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let ServeOptions { limits, stats, proxied_by } = options;
    let caps = Caps {
        total: fd_limit::connection_ceiling(limits.max_connections),
        per_client: limits.max_connections_per_address,
    };
    tracing::info!(?limits, effective_max_connections = caps.total, "accepting connections");
    let limiter = Arc::new(ConnectionLimiter::new(caps, Arc::clone(&stats)));
    let (stop, stopping) = watch::channel(());
    let timeouts = Timeouts { header_read: limits.header_read_timeout, idle: limits.idle_timeout };
    let shared = Shared { router, timeouts, stats, stopping };
    let mut connections = JoinSet::new();
    let mut refusals = LogThrottle::default();
    let mut accept_errors = LogThrottle::default();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            // Reaps connections as they end; only a panic fails one (none is ever aborted).
            Some(ended) = connections.join_next(), if !connections.is_empty() => {
                if let Err(error) = ended {
                    tracing::error!(%error, "a connection task panicked");
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, balancer)) if proxied_by.contains(&balancer.ip()) => {
                    connections.spawn(proxied(stream, balancer, Arc::clone(&limiter), shared.clone()));
                }
                Ok((stream, peer)) => match limiter.try_admit(peer.ip()) {
                    Ok(slot) => {
                        connections.spawn(connection::serve(Accepted { stream, peer, slot }, shared.clone()));
                    }
                    Err(refusal) => refuse(stream, peer, refusal, &mut refusals),
                },
                Err(error) => back_off(&error, &mut accept_errors).await,
            },
        }
    }
    drop(listener);
    let _ = stop.send(());
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// A load balancer's connection: its PROXY header first (within the header timeout), then the
/// client it names is admitted and served as if it had connected itself. A connection without
/// a good header is closed.
async fn proxied(mut stream: TcpStream, balancer: SocketAddr, limiter: Arc<ConnectionLimiter>, shared: Shared) {
    let header = tokio::time::timeout(shared.timeouts.header_read, proxy::read_header(&mut stream)).await;
    let client = match header {
        Ok(Ok(client)) => client.unwrap_or(balancer),
        Ok(Err(error)) => {
            tracing::warn!(%balancer, %error, "closed a balancer's connection without a good PROXY header");
            return;
        }
        Err(_elapsed) => {
            shared.stats.timed_out(crate::metrics::ConnectionTimeout::HeaderRead);
            return;
        }
    };
    match limiter.try_admit(client.ip()) {
        Ok(slot) => connection::serve(Accepted { stream, peer: client, slot }, shared).await,
        Err(refusal) => tracing::debug!(%client, ?refusal, "refused a proxied connection over a cap"),
    }
}

/// Closes a connection over a cap at once; logs at most once a second.
fn refuse(stream: TcpStream, peer: SocketAddr, refusal: crate::metrics::Refusal, log: &mut LogThrottle) {
    drop(stream);
    if let Some(held_back) = log.ready(Instant::now()) {
        tracing::warn!(%peer, ?refusal, n_refused_unlogged = held_back, "refused a connection over a cap");
    }
}

/// After a failed accept: at once for errors of that one connection, else (out of file
/// descriptors, of memory) after a short pause, so the loop neither spins nor stops.
async fn back_off(error: &io::Error, log: &mut LogThrottle) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(error.kind(), ConnectionAborted | ConnectionRefused | ConnectionReset) {
        return;
    }
    if let Some(held_back) = log.ready(Instant::now()) {
        tracing::error!(%error, n_failures_unlogged = held_back, "accepting a connection failed; retrying");
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
}

/// Says when to log a repeated event: at most once a second, with how many were held back.
#[derive(Debug, Default)]
struct LogThrottle {
    last: Option<Instant>,
    held_back: u64,
}

impl LogThrottle {
    /// `Some(events held back since the last log)` when this event should be logged.
    fn ready(&mut self, now: Instant) -> Option<u64> {
        if self.last.is_some_and(|last| now.duration_since(last) < Duration::from_secs(1)) {
            self.held_back += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.held_back))
    }
}

#[cfg(test)]
mod tests;
