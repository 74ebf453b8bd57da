//! `sgl-cloud chat`: one-shot with a prompt argument, from piped stdin, or an interactive loop
//! that keeps the conversation. Sealed and verified by default, streamed by default; a sealed
//! answer ends with a footer on stderr naming the node, the model hash and the signed usage.

use std::io::{IsTerminal as _, Read as _, Write as _};

use anyhow::{Context as _, bail};
use clap::Args;
use serde_json::json;
use sgl_client::{ChatRequest, Client, Verification};
use sgl_protocol::api::inference::Usage;
use sgl_protocol::api::openai::{ChatMessage, StreamOptions};

/// `chat` options.
#[derive(Debug, Args)]
pub(crate) struct ChatArgs {
    /// The model (default: the first one `/v1/models` lists).
    #[arg(long)]
    model: Option<String>,
    /// Send plain OpenAI JSON: the grid sees the prompt and nothing is verified.
    #[arg(long)]
    plain: bool,
    /// Wait for the whole answer instead of streaming it.
    #[arg(long)]
    no_stream: bool,
    /// Completion cap.
    #[arg(long)]
    max_tokens: Option<u64>,
    /// Sampling temperature, 0 to 2.
    #[arg(long)]
    temperature: Option<f64>,
    /// A system message.
    #[arg(long)]
    system: Option<String>,
    /// The prompt; without one, stdin is read (or a conversation starts on a terminal).
    prompt: Vec<String>,
}

/// One answered turn.
struct Turn {
    content: String,
    usage: Option<Usage>,
    verification: Option<Verification>,
}

/// The first model the grid lists.
pub(crate) async fn default_model(client: &Client) -> anyhow::Result<String> {
    let models = client.models().await?;
    match models.data.into_iter().next() {
        Some(model) => Ok(model.id),
        None => bail!("the grid lists no models: no node is serving right now"),
    }
}

pub(crate) async fn run(client: &Client, args: ChatArgs, json: bool) -> anyhow::Result<()> {
    if !client.has_api_key() {
        return Err(sgl_client::Error::MissingApiKey.into());
    }
    let model = match &args.model {
        Some(model) => model.clone(),
        None => default_model(client).await?,
    };
    let mut messages: Vec<ChatMessage> = args.system.iter().map(|s| ChatMessage::text("system", s)).collect();
    let prompt = args.prompt.join(" ");
    if !prompt.trim().is_empty() {
        messages.push(ChatMessage::text("user", prompt));
        return one_turn(client, &args, &model, &messages, json).await.map(|_| ());
    }
    if std::io::stdin().is_terminal() {
        return interactive(client, &args, &model, messages, json).await;
    }
    let piped = tokio::task::spawn_blocking(|| {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).map(|_| text)
    })
    .await
    .context("reading stdin")?
    .context("reading the prompt from stdin")?;
    if piped.trim().is_empty() {
        bail!("empty prompt: pass it as an argument or on stdin");
    }
    messages.push(ChatMessage::text("user", piped.trim_end()));
    one_turn(client, &args, &model, &messages, json).await.map(|_| ())
}

/// A read-eval loop on a terminal; `/exit` or end of input leaves.
async fn interactive(
    client: &Client,
    args: &ChatArgs,
    model: &str,
    mut messages: Vec<ChatMessage>,
    json: bool,
) -> anyhow::Result<()> {
    let mode = if args.plain { "plain (the grid can read it)" } else { "sealed to a verified node" };
    eprintln!("chatting with {model}, {mode}; /exit or Ctrl-D to leave");
    loop {
        eprint!("you> ");
        std::io::stderr().flush().ok();
        let line = tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).map(|n| (n, line))
        })
        .await
        .context("reading stdin")?
        .context("reading stdin")?;
        let (n_read, line) = line;
        let line = line.trim();
        if n_read == 0 || line == "/exit" || line == "/quit" {
            eprintln!();
            return Ok(());
        }
        if line.is_empty() {
            continue;
        }
        messages.push(ChatMessage::text("user", line));
        match one_turn(client, args, model, &messages, json).await {
            Ok(turn) => messages.push(ChatMessage::text("assistant", turn.content)),
            Err(error) => {
                messages.pop();
                let (message, code) = crate::describe(&error);
                eprintln!("error: {message}");
                if code == 1 {
                    eprintln!("(the answer failed verification and was discarded)");
                }
            }
        }
    }
}

/// Sends one request and prints the answer (streamed as it arrives, unless `--json`).
async fn one_turn(
    client: &Client,
    args: &ChatArgs,
    model: &str,
    messages: &[ChatMessage],
    json: bool,
) -> anyhow::Result<Turn> {
    let request = ChatRequest {
        max_tokens: args.max_tokens,
        temperature: args.temperature,
        ..ChatRequest::new(model, messages.to_vec())
    };
    let print_live = !json;
    let turn = match (args.plain, args.no_stream) {
        (false, true) => {
            let answer = client.chat(&request).await?;
            let content = answer.content().to_owned();
            if print_live {
                println!("{content}");
            }
            Turn { content, usage: answer.usage(), verification: Some(answer.verification) }
        }
        (false, false) => {
            let mut stream = client.chat_stream(&request).await?;
            let mut content = String::new();
            while let Some(delta) = stream.next_delta().await? {
                if print_live {
                    print_delta(&delta);
                }
                content.push_str(&delta);
            }
            if print_live {
                println!();
            }
            let end = stream.end().context("the stream ended without its signed final chunk")?;
            Turn { content, usage: Some(end.usage), verification: Some(end.verification.clone()) }
        }
        (true, true) => {
            let completion = client.chat_plain(&request.to_openai(false)).await?;
            let content = completion.choices.first().and_then(|c| c.message.content.clone()).unwrap_or_default();
            if print_live {
                println!("{content}");
            }
            Turn { content, usage: completion.usage, verification: None }
        }
        (true, false) => {
            let openai = sgl_protocol::api::openai::ChatCompletionRequest {
                stream_options: Some(StreamOptions { include_usage: true }),
                ..request.to_openai(true)
            };
            let mut stream = client.chat_plain_stream(&openai).await?;
            let mut content = String::new();
            while let Some(delta) = stream.next_delta().await? {
                if print_live {
                    print_delta(&delta);
                }
                content.push_str(&delta);
            }
            if print_live {
                println!();
            }
            Turn { content, usage: stream.usage(), verification: None }
        }
    };
    if json {
        println!("{}", turn_json(&turn));
    } else {
        eprintln!("{}", footer(&turn));
    }
    Ok(turn)
}

fn print_delta(delta: &str) {
    print!("{delta}");
    std::io::stdout().flush().ok();
}

/// The one JSON object of `chat --json`.
fn turn_json(turn: &Turn) -> serde_json::Value {
    let verification = turn.verification.as_ref();
    json!({
        "content": turn.content,
        "usage": turn.usage,
        "node_id": verification.map(|v| v.node_id.to_string()),
        "model_sha256": verification.and_then(|v| v.model_sha256.clone()),
        "job_id": verification.map(|v| v.job_id.to_string()),
        "sealed": verification.is_some(),
        "verified": verification.is_some_and(|v| v.verified),
    })
}

/// `[node f617ee39 · model a5fd3b62230a · 14+6 tokens · verified]`, or a plain-mode note.
fn footer(turn: &Turn) -> String {
    let tokens = turn
        .usage
        .map_or_else(|| "usage unknown".to_owned(), |u| format!("{}+{} tokens", u.prompt_tokens, u.completion_tokens));
    match &turn.verification {
        Some(v) => {
            let node = v.node_id.to_string();
            let model = v.model_sha256.as_deref().map_or("unclaimed", |h| h.get(..12).unwrap_or(h));
            let verdict = if v.verified { "verified" } else { "NOT verified" };
            format!("[node {} · model {model} · {tokens} · {verdict}]", node.get(..8).unwrap_or(&node))
        }
        None => format!("[plain: not sealed, not verified · {tokens}]"),
    }
}
