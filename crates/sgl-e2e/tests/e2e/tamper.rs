//! Scenario 6: a man in the middle between `sgl-client` and the grid. Unaltered, answers pass
//! through and verify; each alteration (the node's X25519 key at reservation, one character of
//! the sealed reply, its ephemeral key, its usage, one character of a stream chunk) is refused
//! with its own typed verification error.

use sgl_client::{ChatRequest, Client, Error, VerifyError};
use sgl_protocol::api::openai::ChatMessage;

use crate::support::grid::{GridOptions, LocalGrid};
use crate::support::proxy::{Tamper, TamperProxy};
use crate::support::{exclusive, test_env};

/// A sealed chat through the proxy, returning the verification error it must fail with.
async fn refused_chat(client: &Client, request: &ChatRequest) -> VerifyError {
    match client.chat(request).await {
        Err(Error::Verification(error)) => error,
        other => panic!("a tampered chat must fail verification, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_refuses_every_tampered_reply_and_key() {
    let Some(env) = test_env() else { return };
    let _turn = exclusive().await;
    let mut grid = LocalGrid::start(&env, GridOptions::nodes(1)).await.expect("a local grid");
    let proxy = TamperProxy::start(&grid.base_url).await;
    let client = grid.client_at(&proxy.base_url);
    let mut request = ChatRequest::new(&grid.model, vec![ChatMessage::text("user", "Name a colour.")]);
    request.max_tokens = Some(4);

    // Control: through the proxy, untouched, everything verifies.
    let chat = client.chat(&request).await.expect("an untouched reply verifies");
    assert!(chat.verification.verified);
    assert_eq!((proxy.chats(), proxy.tampered()), (1, 0));

    // The coordinator hands out its own X25519 key: refused before anything is sealed to it.
    proxy.set(Tamper::ReserveKey);
    let error = refused_chat(&client, &request).await;
    assert_eq!(error, VerifyError::BadKeybind);
    assert_eq!((proxy.chats(), proxy.tampered()), (1, 1), "no request was sealed to the swapped key");

    // One character of the sealed reply: the node's proof of execution and signature both
    // cover the ciphertext (the client checks the proof first).
    proxy.set(Tamper::ReplyCiphertext);
    let error = refused_chat(&client, &request).await;
    assert!(matches!(error, VerifyError::ProofMismatch | VerifyError::BadSignature), "{error:?}");
    assert_eq!((proxy.chats(), proxy.tampered()), (2, 2));

    // The usage, raised to overbill: the signature covers the usage too.
    proxy.set(Tamper::ReplyUsage);
    assert_eq!(refused_chat(&client, &request).await, VerifyError::BadSignature);
    assert_eq!((proxy.chats(), proxy.tampered()), (3, 3));

    // Another ephemeral key: signed bytes intact, but the reply no longer opens.
    proxy.set(Tamper::ReplyEphemeralKey);
    assert_eq!(refused_chat(&client, &request).await, VerifyError::Decrypt);
    assert_eq!((proxy.chats(), proxy.tampered()), (4, 4));

    // One character of a stream chunk: its proof and signature fail, and the stream with it.
    proxy.set(Tamper::StreamChunk);
    request.max_tokens = Some(8);
    let mut stream = client.chat_stream(&request).await.expect("the stream starts");
    let error = loop {
        match stream.next_delta().await {
            Ok(Some(_)) => {}
            Ok(None) => panic!("a stream with a tampered chunk must not end cleanly"),
            Err(error) => break error,
        }
    };
    let proof_or_signature = |e: &VerifyError| matches!(e, VerifyError::ProofMismatch | VerifyError::BadSignature);
    assert!(matches!(&error, Error::Verification(e) if proof_or_signature(e)), "{error:?}");
    assert_eq!((proxy.chats(), proxy.tampered()), (5, 5));

    // And untouched again: the grid and the node were never at fault.
    proxy.set(Tamper::Nothing);
    client.chat(&request).await.expect("an untouched reply verifies again");
    drop(proxy);
    grid.stop().await;
}
