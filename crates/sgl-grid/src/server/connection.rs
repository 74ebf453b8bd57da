//! One accepted connection: HTTP/1.1 with upgrades (the node WebSocket) through hyper, the
//! peer's address in every request as axum's `ConnectInfo`, and a watchdog that closes the
//! connection when it sends no request in time (see [`super::clock`]).
//!
//! The connection's [`ConnectionSlot`] lives in its stream, so a connection upgraded to a
//! WebSocket keeps counting against its client's cap until the WebSocket closes.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::response::Response;
use futures_util::future::BoxFuture;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;
use tower::ServiceExt;

use super::clock::{self, Phase, Timeouts};
use super::limiter::ConnectionSlot;
use crate::metrics::ConnectionStats;

/// An accepted connection and the place it holds.
#[derive(Debug)]
pub(super) struct Accepted {
    pub(super) stream: TcpStream,
    pub(super) peer: SocketAddr,
    pub(super) slot: ConnectionSlot,
}

/// What every connection of one server shares.
#[derive(Debug, Clone)]
pub(super) struct Shared {
    pub(super) router: Router,
    pub(super) timeouts: Timeouts,
    pub(super) stats: Arc<ConnectionStats>,
    /// Changes once, when the server stops: each connection then finishes its request in
    /// flight and closes.
    pub(super) stopping: watch::Receiver<()>,
}

/// Serves one connection until the client closes it, a timeout closes it, it is upgraded, or
/// the server stops and its request in flight (if any) has finished.
pub(super) async fn serve(accepted: Accepted, shared: Shared) {
    let Accepted { stream, peer, slot } = accepted;
    let phase = Arc::new(PhaseCell(Mutex::new(Phase::opened(Instant::now()))));
    let io = TokioIo::new(PeerStream { stream, phase: Arc::clone(&phase), _slot: slot });
    let service = RequestService { router: shared.router, peer, phase: Arc::clone(&phase) };
    let mut builder = http1::Builder::new();
    // The watchdog below owns the header timeout: hyper's would also cut idle keep-alive
    // connections at the header timeout.
    builder.header_read_timeout(None);
    let mut connection = std::pin::pin!(builder.serve_connection(io, service).with_upgrades());
    let (timeouts, mut stopping, mut draining) = (shared.timeouts, shared.stopping, false);
    loop {
        let check_at = clock::next_check(phase.get(), timeouts, Instant::now());
        tokio::select! {
            served = connection.as_mut() => {
                if let Err(error) = served {
                    tracing::debug!(%peer, %error, "connection ended with an error");
                }
                return;
            }
            _ = stopping.changed(), if !draining => {
                draining = true;
                connection.as_mut().graceful_shutdown();
            }
            () = tokio::time::sleep_until(check_at) => {
                if let Some(timeout) = clock::expired(phase.get(), timeouts, Instant::now()) {
                    shared.stats.timed_out(timeout);
                    tracing::debug!(%peer, ?timeout, "closing a connection that sent no request in time");
                    return;
                }
            }
        }
    }
}

/// The connection's [`Phase`], moved by its stream and its service.
#[derive(Debug)]
struct PhaseCell(Mutex<Phase>);

impl PhaseCell {
    fn get(&self) -> Phase {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn update(&self, change: impl FnOnce(Phase) -> Phase) {
        let mut phase = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        *phase = change(*phase);
    }
}

/// The TCP stream, reporting bytes read to the phase and holding the connection's slot.
#[derive(Debug)]
struct PeerStream {
    stream: TcpStream,
    phase: Arc<PhaseCell>,
    _slot: ConnectionSlot,
}

impl AsyncRead for PeerStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.phase.update(|phase| phase.bytes_read(Instant::now()));
        }
        polled
    }
}

impl AsyncWrite for PeerStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// The router as a hyper service: adds the peer's address, and marks the connection busy
/// from a request's start until its response body is sent or dropped.
#[derive(Debug, Clone)]
struct RequestService {
    router: Router,
    peer: SocketAddr,
    phase: Arc<PhaseCell>,
}

impl hyper::service::Service<hyper::Request<Incoming>> for RequestService {
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn call(&self, mut request: hyper::Request<Incoming>) -> Self::Future {
        request.extensions_mut().insert(ConnectInfo(self.peer));
        let in_flight = InFlight::start(Arc::clone(&self.phase));
        let router = self.router.clone();
        Box::pin(async move {
            let response = router.oneshot(request.map(Body::new)).await?;
            Ok(response.map(|body| Body::new(TrackedBody { body, _in_flight: in_flight })))
        })
    }
}

/// One request in flight; dropping it (with its response body) ends it.
#[derive(Debug)]
struct InFlight(Arc<PhaseCell>);

impl InFlight {
    fn start(phase: Arc<PhaseCell>) -> Self {
        phase.update(Phase::request_started);
        Self(phase)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.update(|phase| phase.response_finished(Instant::now()));
    }
}

/// A response body that holds its request's [`InFlight`] until hyper has sent it all.
#[derive(Debug)]
struct TrackedBody {
    body: Body,
    _in_flight: InFlight,
}

impl hyper::body::Body for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
