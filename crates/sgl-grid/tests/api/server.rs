//! `sgl_grid::server` over real loopback sockets: connection caps, the header and idle
//! timeouts, SSE and the peer address through it, and graceful shutdown. (The node WebSocket
//! through it is in `ws.rs`.)

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::response::sse::{Event, Sse};
use axum::routing::get;
use futures_util::StreamExt;
use futures_util::future::join_all;
use sgl_grid::metrics::{ConnectionStats, ConnectionTimeout, Refusal};
use sgl_grid::server::{ConnectionLimits, ServeOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout};

use crate::harness::Grid;

/// Idle sockets each test opens.
const N_IDLE: usize = 200;

/// The real grid served by `sgl_grid::server` on 127.0.0.1, with `toml` as its configuration.
struct Served {
    address: SocketAddr,
    grid: Grid,
    // Held so the server runs as long as the test.
    _stop: oneshot::Sender<()>,
}

impl Served {
    async fn start(toml: &str) -> Self {
        let grid = Grid::with_config(toml).await;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let state = grid.state().clone();
        tokio::spawn(sgl_grid::server::serve_grid(listener, state, async {
            let _ = stopped.await;
        }));
        Self { address, grid, _stop: stop }
    }

    fn stats(&self) -> &ConnectionStats {
        self.grid.state().metrics().connections()
    }
}

/// `n` connections to `address` that send nothing.
async fn open_idle(address: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut sockets = Vec::with_capacity(n);
    for _ in 0..n {
        sockets.push(TcpStream::connect(address).await.unwrap());
    }
    sockets
}

/// Whether the server closes `stream` within `within` (end of stream, or a reset), without
/// having sent anything.
async fn closed_by_server(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 256];
    match timeout(within, stream.read(&mut buf)).await {
        Ok(Ok(0)) => true,
        Ok(Err(error)) => error.kind() == std::io::ErrorKind::ConnectionReset,
        Ok(Ok(n)) => panic!("the server sent {:?} on an idle connection", String::from_utf8_lossy(&buf[..n])),
        Err(_elapsed) => false,
    }
}

/// How many of `sockets` the server closes within `within`, waiting on all at once.
async fn count_closed(sockets: &mut [TcpStream], within: Duration) -> usize {
    join_all(sockets.iter_mut().map(|socket| closed_by_server(socket, within))).await.into_iter().filter(|c| *c).count()
}

/// Sends `GET path` on `stream` and reads the response: status and body, or `None` when the
/// connection is closed first. Keeps the connection open for another request.
pub(crate) async fn get_on(stream: &mut TcpStream, path: &str) -> Option<(u16, String)> {
    let request = format!("GET {path} HTTP/1.1\r\nHost: grid\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = timeout(Duration::from_secs(10), stream.read(&mut buf)).await.ok()?.ok()?;
        if n == 0 {
            return None;
        }
        received.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&received[..head_end]).to_lowercase();
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let length: usize = head.lines().find_map(|l| l.strip_prefix("content-length: "))?.trim().parse().ok()?;
    while received.len() < head_end + length {
        let n = timeout(Duration::from_secs(10), stream.read(&mut buf)).await.ok()?.ok()?;
        if n == 0 {
            return None;
        }
        received.extend_from_slice(&buf[..n]);
    }
    Some((status, String::from_utf8_lossy(&received[head_end..head_end + length]).into_owned()))
}

/// `/healthz` over a fresh connection: its status, or `None` when the connection is closed.
pub(crate) async fn healthz(address: SocketAddr) -> Option<u16> {
    let mut stream = TcpStream::connect(address).await.ok()?;
    get_on(&mut stream, "/healthz").await.map(|(status, _)| status)
}

/// `/healthz` over fresh connections until it answers 200, for at most `within`.
pub(crate) async fn healthz_answers_within(address: SocketAddr, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if healthz(address).await == Some(200) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn connections_over_the_per_address_cap_are_closed_at_once_and_room_returns_as_they_close() {
    let served = Served::start("max_connections_per_address = 20\nheader_read_timeout_secs = 60\n").await;
    let mut idle = open_idle(served.address, N_IDLE).await;
    // The 180 over the cap are closed as soon as they are accepted; the 20 under it stay open
    // (their header timeout is a minute away).
    assert_eq!(count_closed(&mut idle, Duration::from_secs(3)).await, N_IDLE - 20);
    assert_eq!(served.stats().refused_count(Refusal::PerAddress), (N_IDLE - 20) as u64);
    assert_eq!(served.stats().open(), 20);
    // This client is at its cap: a fresh connection is closed too, unanswered.
    assert_eq!(healthz(served.address).await, None);
    drop(idle);
    assert!(healthz_answers_within(served.address, Duration::from_secs(5)).await);
    let (status, metrics) = get_on(&mut TcpStream::connect(served.address).await.unwrap(), "/metrics").await.unwrap();
    assert_eq!(status, 200);
    // The 180, the /healthz above, and any tries of `healthz_answers_within` before the
    // server saw the idle sockets close.
    let refused = served.stats().refused_count(Refusal::PerAddress);
    assert!(refused > (N_IDLE - 20) as u64, "{refused}");
    assert!(
        metrics.contains(&format!("sgl_connections_refused_total{{reason=\"per_address\"}} {refused}")),
        "{metrics}"
    );
}

#[tokio::test]
async fn connections_over_the_total_cap_are_closed_at_once() {
    let served =
        Served::start("max_connections = 20\nmax_connections_per_address = 1000\nheader_read_timeout_secs = 60\n")
            .await;
    let mut idle = open_idle(served.address, N_IDLE).await;
    assert_eq!(count_closed(&mut idle, Duration::from_secs(3)).await, N_IDLE - 20);
    assert_eq!(served.stats().refused_count(Refusal::Total), (N_IDLE - 20) as u64);
    assert_eq!(served.stats().refused_count(Refusal::PerAddress), 0);
    assert_eq!(healthz(served.address).await, None);
    drop(idle);
    assert!(healthz_answers_within(served.address, Duration::from_secs(5)).await);
}

#[tokio::test]
async fn healthz_answers_beside_idle_sockets_which_are_closed_after_the_header_timeout() {
    let served = Served::start("max_connections_per_address = 1000\nheader_read_timeout_secs = 1\n").await;
    let opened = Instant::now();
    let mut idle = open_idle(served.address, N_IDLE).await;
    assert_eq!(timeout(Duration::from_secs(5), healthz(served.address)).await, Ok(Some(200)));
    assert_eq!(count_closed(&mut idle, Duration::from_secs(6)).await, N_IDLE, "every idle socket is closed");
    assert!(opened.elapsed() >= Duration::from_millis(900), "not before the timeout: {:?}", opened.elapsed());
    assert_eq!(served.stats().timed_out_count(ConnectionTimeout::HeaderRead), N_IDLE as u64);
    assert_eq!(served.stats().refused_count(Refusal::PerAddress), 0);
}

#[tokio::test]
async fn half_a_request_head_is_cut_off_at_the_header_timeout() {
    let served = Served::start("header_read_timeout_secs = 1\nidle_timeout_secs = 30\n").await;
    let mut stream = TcpStream::connect(served.address).await.unwrap();
    let sent = Instant::now();
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: grid\r\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Trickling more of the head does not buy time.
    stream.write_all(b"X-Slow: 1\r\n").await.unwrap();
    assert!(closed_by_server(&mut stream, Duration::from_secs(5)).await);
    assert!(sent.elapsed() >= Duration::from_millis(900), "{:?}", sent.elapsed());
}

#[tokio::test]
async fn a_keep_alive_connection_outlives_the_header_timeout_but_not_the_idle_timeout() {
    let served = Served::start("header_read_timeout_secs = 1\nidle_timeout_secs = 3\n").await;
    let mut stream = TcpStream::connect(served.address).await.unwrap();
    assert_eq!(get_on(&mut stream, "/healthz").await.map(|(status, _)| status), Some(200));
    // Idle for twice the header timeout: still open, and serves the next request.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(get_on(&mut stream, "/healthz").await.map(|(status, _)| status), Some(200));
    let answered = Instant::now();
    assert!(closed_by_server(&mut stream, Duration::from_secs(8)).await);
    assert!(answered.elapsed() >= Duration::from_millis(2_800), "{:?}", answered.elapsed());
    assert_eq!(served.stats().timed_out_count(ConnectionTimeout::Idle), 1);
}

#[tokio::test]
async fn stopping_lets_the_request_in_flight_finish_and_closes_the_rest() {
    let release = Arc::new(Notify::new());
    let entered = Arc::new(Notify::new());
    let (held, started) = (Arc::clone(&release), Arc::clone(&entered));
    let router = Router::new().route(
        "/slow",
        get(|| async move {
            started.notify_one();
            held.notified().await;
            "finished"
        }),
    );
    let (address, stop, mut server) = serve_router(router, ConnectionLimits::default()).await;
    let mut idle_keep_alive = TcpStream::connect(address).await.unwrap();
    let mut slow = TcpStream::connect(address).await.unwrap();
    let in_flight = tokio::spawn(async move { get_on(&mut slow, "/slow").await });
    entered.notified().await;
    stop.send(()).unwrap();
    // The idle connection is closed, the request in flight holds the server open...
    assert!(closed_by_server(&mut idle_keep_alive, Duration::from_secs(5)).await);
    assert!(timeout(Duration::from_millis(300), &mut server).await.is_err(), "serve returned with a request in flight");
    // ...and no new connection is accepted.
    assert_eq!(healthz(address).await, None);
    release.notify_one();
    assert_eq!(in_flight.await.unwrap(), Some((200, "finished".to_owned())));
    timeout(Duration::from_secs(5), server)
        .await
        .expect("serve returns once the request has finished")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn sse_events_arrive_as_sent_and_every_request_knows_its_peer() {
    let (send, receive) = tokio::sync::mpsc::channel::<&'static str>(1);
    let receive = Arc::new(std::sync::Mutex::new(Some(receive)));
    let events = get(move || async move {
        let receive = receive.lock().unwrap().take().unwrap();
        let texts = futures_util::stream::unfold(receive, |mut r| async move { r.recv().await.map(|t| (t, r)) });
        Sse::new(texts.map(|text| Ok::<_, Infallible>(Event::default().data(text))))
    });
    let peer = get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() });
    let router = Router::new().route("/events", events).route("/peer", peer);
    let (address, _stop, _server) = serve_router(router, ConnectionLimits::default()).await;
    let mut stream = TcpStream::connect(address).await.unwrap();
    let (status, peer) = get_on(&mut stream, "/peer").await.unwrap();
    assert_eq!((status, peer), (200, stream.local_addr().unwrap().to_string()));
    stream.write_all(b"GET /events HTTP/1.1\r\nHost: grid\r\n\r\n").await.unwrap();
    send.send("first").await.unwrap();
    // The first event arrives while its stream is still open: nothing holds it back.
    assert!(read_until(&mut stream, "data: first").await);
    send.send("second").await.unwrap();
    assert!(read_until(&mut stream, "data: second").await);
}

#[tokio::test]
async fn a_balancers_connections_are_capped_and_seen_as_the_clients_its_proxy_headers_name() {
    let peer = get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() });
    let router = Router::new().route("/peer", peer);
    let limits = ConnectionLimits { max_connections_per_address: 1, ..ConnectionLimits::default() };
    let options = ServeOptions { limits, stats: Arc::default(), proxied_by: vec!["127.0.0.1".parse().unwrap()] };
    let (address, _stop, _server) = serve_with(router, options).await;
    let proxied = |client: &'static str| async move {
        let mut stream = TcpStream::connect(address).await.unwrap();
        stream.write_all(&sgl_grid::server::proxy_v2_header(client.parse().unwrap(), address)).await.unwrap();
        stream
    };
    // The handlers see the client the header names, not the balancer.
    let mut first = proxied("203.0.113.7:40000").await;
    assert_eq!(get_on(&mut first, "/peer").await.unwrap(), (200, "203.0.113.7:40000".to_owned()));
    // The per-address cap counts that client: its second connection is closed, another
    // client's is served.
    let mut second = proxied("203.0.113.7:40001").await;
    assert!(closed_by_server(&mut second, Duration::from_secs(5)).await, "over the client's cap");
    let mut other = proxied("198.51.100.9:40000").await;
    assert_eq!(get_on(&mut other, "/peer").await.unwrap(), (200, "198.51.100.9:40000".to_owned()));
    // From a balancer's address, a connection without the header is closed unanswered.
    let mut bare = TcpStream::connect(address).await.unwrap();
    bare.write_all(b"GET /peer HTTP/1.1\r\nHost: grid\r\n\r\n").await.unwrap();
    assert!(closed_by_server(&mut bare, Duration::from_secs(5)).await, "no PROXY header");
}

/// Serves `router` with `limits` on 127.0.0.1: its address, the stop signal, and the server.
async fn serve_router(
    router: Router,
    limits: ConnectionLimits,
) -> (SocketAddr, oneshot::Sender<()>, JoinHandle<std::io::Result<()>>) {
    serve_with(router, ServeOptions { limits, stats: Arc::default(), proxied_by: Vec::new() }).await
}

/// Serves `router` with `options` on 127.0.0.1: its address, the stop signal, and the server.
async fn serve_with(
    router: Router,
    options: ServeOptions,
) -> (SocketAddr, oneshot::Sender<()>, JoinHandle<std::io::Result<()>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(sgl_grid::server::serve(listener, router, options, async {
        let _ = stopped.await;
    }));
    (address, stop, server)
}

/// Reads `stream` until `text` has arrived (true), or it ends or 10 s pass (false).
pub(crate) async fn read_until(stream: &mut TcpStream, text: &str) -> bool {
    let mut received = Vec::new();
    let mut buf = [0u8; 1024];
    let deadline = Instant::now() + Duration::from_secs(10);
    while !String::from_utf8_lossy(&received).contains(text) {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => received.extend_from_slice(&buf[..n]),
            _ => return false,
        }
    }
    true
}
