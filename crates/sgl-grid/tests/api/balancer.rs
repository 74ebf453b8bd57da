//! `deploy/haproxy.cfg`, run as it is by the real HAProxy (Debian's `haproxy` package) in front
//! of `sgl_grid::server` on real sockets: its health checks pass, a client is seen as itself
//! (the PROXY v2 header), server-sent events come through as they are sent, and a WebSocket
//! upgrades through it. Outside CI a machine without HAProxy skips with a note.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::extract::ws::{Message as AxumMessage, WebSocketUpgrade};
use axum::response::sse::{Event, Sse};
use axum::routing::get;
use futures_util::{SinkExt, StreamExt};
use sgl_grid::server::{ConnectionLimits, ServeOptions};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

use crate::server::{get_on, read_until};

/// The address the balancer connects from; the server trusts PROXY headers from it only.
const BALANCER_SOURCE: &str = "127.0.0.2";

fn haproxy() -> Option<PathBuf> {
    let found = ["/usr/sbin/haproxy", "/usr/bin/haproxy"].into_iter().map(PathBuf::from).find(|path| path.exists());
    if found.is_none() {
        let in_ci = std::env::var("CI").is_ok_and(|v| v == "true");
        assert!(!in_ci, "CI=true but HAProxy is missing (apt-get install haproxy)");
        eprintln!("note: skipping the load balancer test: no haproxy (apt-get install haproxy)");
    }
    found
}

/// The server's test routes: who the client is, a stream fed by `events`, and a WebSocket echo.
fn router(events: mpsc::Receiver<&'static str>) -> Router {
    let events = Arc::new(Mutex::new(Some(events)));
    let stream = get(move || async move {
        let receiver = events.lock().unwrap().take().unwrap();
        let texts = futures_util::stream::unfold(receiver, |mut r| async move { r.recv().await.map(|t| (t, r)) });
        Sse::new(texts.map(|text| Ok::<_, Infallible>(Event::default().data(text))))
    });
    let echo = get(|upgrade: WebSocketUpgrade| async move {
        upgrade.on_upgrade(|mut socket| async move {
            while let Some(Ok(AxumMessage::Text(text))) = socket.recv().await {
                let _ = socket.send(AxumMessage::Text(text)).await;
            }
        })
    });
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/peer", get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }))
        .route("/events", stream)
        .route("/echo", echo)
}

#[tokio::test]
async fn haproxy_with_the_deployed_config_shows_clients_as_themselves_streams_as_sent_and_upgrades_websockets() {
    let Some(haproxy) = haproxy() else { return };
    let (send, receive) = mpsc::channel(1);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = listener.local_addr().unwrap();
    let options = ServeOptions {
        limits: ConnectionLimits::default(),
        stats: Arc::default(),
        proxied_by: vec![BALANCER_SOURCE.parse().unwrap()],
    };
    let (_stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(sgl_grid::server::serve(listener, router(receive), options, async {
        let _ = stopped.await;
    }));
    let bind = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/haproxy.cfg");
    let mut balancer = tokio::process::Command::new(haproxy)
        .args(["-f", config, "-db"])
        .env("SGL_LB_BIND", bind.to_string())
        .env("SGL_LB_SOURCE", BALANCER_SOURCE)
        .envs((1..=3).map(|n| (format!("SGL_REPLICA_{n}"), server.to_string())))
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("starting haproxy");

    // Up once its health checks (PROXY LOCAL) pass; each request carries its client's address.
    let mut client = connect_when_up(bind).await;
    let (status, peer) = get_on(&mut client, "/peer").await.unwrap();
    assert_eq!((status, peer), (200, client.local_addr().unwrap().to_string()), "the client, not the balancer");

    // Events come through as they are sent, the stream still open.
    let mut stream = TcpStream::connect(bind).await.unwrap();
    stream.write_all(b"GET /events HTTP/1.1\r\nHost: grid\r\n\r\n").await.unwrap();
    send.send("first").await.unwrap();
    assert!(read_until(&mut stream, "data: first").await, "the first event, unbuffered");
    send.send("second").await.unwrap();
    assert!(read_until(&mut stream, "data: second").await);

    // A WebSocket upgrades through it and echoes.
    let (mut socket, _) = tokio_tungstenite::connect_async(format!("ws://{bind}/echo")).await.expect("upgraded");
    socket.send(Message::Text("ping".into())).await.unwrap();
    let echoed = tokio::time::timeout(Duration::from_secs(10), socket.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(echoed, Message::Text("ping".into()));
    balancer.kill().await.unwrap();
}

/// A connection through the balancer once it serves (`/healthz` answered 200 through it).
async fn connect_when_up(bind: SocketAddr) -> TcpStream {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(mut stream) = TcpStream::connect(bind).await
            && get_on(&mut stream, "/healthz").await.is_some_and(|(status, _)| status == 200)
        {
            return stream;
        }
        assert!(tokio::time::Instant::now() < deadline, "haproxy did not serve within 20 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
