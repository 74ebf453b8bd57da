//! The WebSocket push over a real socket, and what a node hears when its caller leaves.

use axum::http::StatusCode;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use sgl_protocol::api::inference::Usage;
use sgl_protocol::api::node::ServerMessage;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use sgl_protocol::envelope::EnvelopeVersion;

use crate::harness::{Grid, Node, post_chunk};

/// Serves the grid on 127.0.0.1:0 through `sgl_grid::server`, as `sgl-grid serve` does, and
/// returns its address.
async fn serve(grid: &Grid) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let state = grid.state().clone();
    tokio::spawn(async move { sgl_grid::server::serve_grid(listener, state, std::future::pending()).await.unwrap() });
    address
}

async fn connect(
    address: std::net::SocketAddr,
    node: &Node,
    token_in_query: bool,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let mut url = format!("ws://{address}/grid/nodes/{}/ws", node.node_id);
    if token_in_query {
        url.push_str(&format!("?auth_token={}", node.token));
    }
    let mut request = url.into_client_request().unwrap();
    if !token_in_query {
        request.headers_mut().insert("X-Node-Auth", node.token.parse().unwrap());
    }
    tokio_tungstenite::connect_async(request).await.unwrap().0
}

#[tokio::test]
async fn jobs_are_pushed_over_the_socket_with_the_token_in_a_header_or_the_query() {
    let grid = Grid::new().await;
    let address = serve(&grid).await;
    for (seed, token_in_query) in [(60, false), (61, true)] {
        // A model per node, so that each request can only go to the node under test.
        let model = format!("m{seed}");
        let node = grid.node(&format!("0x{seed}"), seed).await;
        node.beat(&grid, &[&model]).await;
        let mut socket = connect(address, &node, token_in_query).await;
        let (_, api_key) = grid.api_key(1.0).await;
        let body = json!({"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4});
        let caller = grid.spawn_call("/v1/chat/completions", &api_key, body);
        let pushed = loop {
            let Some(Ok(Message::Text(text))) = socket.next().await else { panic!("socket closed") };
            match serde_json::from_str::<ServerMessage>(&text).unwrap() {
                ServerMessage::Job { job } => break job,
                ServerMessage::Ping => socket.send(Message::Text(r#"{"type":"pong"}"#.into())).await.unwrap(),
                other => panic!("unexpected {other:?}"),
            }
        };
        let job = node.open(&pushed);
        node.complete(&grid, &job, "pushed", Usage::new(1, 1)).await;
        let (status, answer) = caller.await.unwrap();
        assert_eq!((status, answer["choices"][0]["message"]["content"].as_str()), (StatusCode::OK, Some("pushed")));
    }
}

#[tokio::test]
async fn a_socket_outlives_the_header_and_idle_timeouts_and_holds_its_connection_slot() {
    let grid =
        Grid::with_config("header_read_timeout_secs = 1\nidle_timeout_secs = 1\nmax_connections_per_address = 1\n")
            .await;
    let address = serve(&grid).await;
    let node = grid.node("0x65", 65).await;
    node.beat(&grid, &["m65"]).await;
    let mut socket = connect(address, &node, false).await;
    // The socket is this address's one connection: another is closed unanswered.
    assert_eq!(crate::server::healthz(address).await, None);
    // Quiet for longer than both timeouts, the socket still carries a job.
    tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
    let (_, api_key) = grid.api_key(1.0).await;
    let body = json!({"model": "m65", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4});
    let caller = grid.spawn_call("/v1/chat/completions", &api_key, body);
    let pushed = loop {
        let Some(Ok(Message::Text(text))) = socket.next().await else { panic!("socket closed") };
        if let ServerMessage::Job { job } = serde_json::from_str::<ServerMessage>(&text).unwrap() {
            break job;
        }
    };
    node.complete(&grid, &node.open(&pushed), "late", Usage::new(1, 1)).await;
    assert_eq!(caller.await.unwrap().0, StatusCode::OK);
    // Closing the socket frees its slot.
    socket.close(None).await.unwrap();
    drop(socket);
    assert!(crate::server::healthz_answers_within(address, std::time::Duration::from_secs(5)).await);
}

#[tokio::test]
async fn a_socket_with_another_nodes_token_is_refused() {
    let grid = Grid::new().await;
    let address = serve(&grid).await;
    let node = grid.node("0xa", 62).await;
    let other = grid.node("0xb", 63).await;
    let url = format!("ws://{address}/grid/nodes/{}/ws?auth_token={}", node.node_id, other.token);
    let error = tokio_tungstenite::connect_async(url).await.unwrap_err();
    assert!(error.to_string().contains("403"), "{error}");
    let url = format!("ws://{address}/grid/nodes/{}/ws", node.node_id);
    let error = tokio_tungstenite::connect_async(url).await.unwrap_err();
    assert!(error.to_string().contains("401"), "{error}");
}

#[tokio::test]
async fn a_caller_leaving_mid_stream_tells_the_node_to_stop_and_bills_only_what_was_delivered() {
    let grid = Grid::new().await;
    let address = serve(&grid).await;
    let node = grid.node("0xop", 64).await;
    node.beat(&grid, &["m"]).await;
    let (key_id, api_key) = grid.api_key(1.0).await;
    // A real HTTP caller that reads the start of the stream and hangs up.
    let body =
        json!({"model": "m", "messages": [{"role": "user", "content": "count"}], "max_tokens": 64, "stream": true});
    let client = tokio::spawn(async move {
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        let text = body.to_string();
        let request = format!(
            "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nx-api-key: {api_key}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{text}",
            text.len()
        );
        tokio::io::AsyncWriteExt::write_all(&mut stream, request.as_bytes()).await.unwrap();
        let mut buffer = vec![0u8; 4096];
        let mut seen = String::new();
        while !seen.contains("data:") {
            let n = tokio::io::AsyncReadExt::read(&mut stream, &mut buffer).await.unwrap();
            assert!(n > 0, "the stream ended early: {seen}");
            seen.push_str(&String::from_utf8_lossy(&buffer[..n]));
        }
        drop(stream);
        seen
    });
    let job = node.open(&node.wait_job(&grid, "m").await);
    let nonce = job.request.nonce.clone().unwrap();
    let mut sealer = job.reply.stream(&nonce, &mut rand_core::OsRng).unwrap();
    let mut closed = false;
    let mut n_sent = 0;
    while !closed && n_sent < 200 {
        let chunk = sealer.seal_chunk(b"tok ", false, &mut rand_core::OsRng).unwrap();
        let (status, reply) = post_chunk(&grid, &node, &job, &chunk, None, EnvelopeVersion::V2).await;
        assert_eq!(status, StatusCode::OK, "{reply}");
        closed = reply["closed"] == true;
        n_sent += 1;
        tokio::task::yield_now().await;
    }
    assert!(closed, "the node was never told the caller left");
    assert!(client.await.unwrap().contains("data:"));
    // The node settles what it emitted (seed §3.9), completion tokens only, and the caller pays
    // for what reached it: one token a chunk, less the chunk answered `closed`.
    let chunk = sealer.seal_chunk(b"", true, &mut rand_core::OsRng).unwrap();
    let (status, _) = post_chunk(&grid, &node, &job, &chunk, Some(Usage::new(0, n_sent)), EnvelopeVersion::V2).await;
    assert_eq!(status, StatusCode::OK);
    let billed = sgl_grid::service::pricing::cost_micros(
        sgl_grid::config::ReferencePrice { input_per_m: 0.1, output_per_m: 0.4 },
        0,
        n_sent - 1,
    );
    assert_eq!(grid.credits(key_id).await, 1_000_000 - billed);
    grid.assert_ledger_balanced().await;
}
