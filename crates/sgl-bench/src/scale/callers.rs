//! Concurrent callers: each task POSTs a small plain, non-stream `/v1/chat/completions` with
//! the API key over one keep-alive client, again and again. After a warm-up, every request's
//! latency is kept and every answer counted by status; failures are reported, never dropped.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use sgl_protocol::api::caller::HEADER_API_KEY;
use sgl_protocol::api::openai::{ChatCompletion, ChatCompletionRequest, ChatMessage};
use tokio::task::JoinSet;

/// Completion tokens each request asks for.
const MAX_TOKENS: u64 = 4;

/// What the callers saw in the measured window.
#[derive(Debug, Default)]
pub(crate) struct CallerReport {
    /// Latency of each 200, milliseconds.
    pub(crate) latencies_ms: Vec<f64>,
    /// Answers other than 200 by status (`"503"`), transport errors as `"transport"`, and 200s
    /// whose body was not a completion as `"bad_body"`.
    pub(crate) failures: BTreeMap<String, u64>,
    /// The measured window's real length.
    pub(crate) window: Duration,
}

/// What every caller sends.
#[derive(Debug)]
struct Target {
    http: reqwest::Client,
    url: String,
    api_key: String,
    body: Vec<u8>,
}

/// Runs `n_callers` callers for `warmup` then `seconds`, and reports the measured part.
pub(crate) async fn run(
    base_url: &str,
    api_key: &str,
    model: &str,
    n_callers: usize,
    warmup: Duration,
    seconds: Duration,
) -> anyhow::Result<CallerReport> {
    let request = ChatCompletionRequest {
        model: model.to_owned(),
        messages: vec![ChatMessage::text("user", "Say ok.")],
        max_tokens: Some(MAX_TOKENS),
        ..ChatCompletionRequest::default()
    };
    let target = Arc::new(Target {
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(n_callers.max(1))
            .timeout(Duration::from_secs(60))
            .build()
            .context("the callers' HTTP client")?,
        url: format!("{base_url}/v1/chat/completions"),
        api_key: api_key.to_owned(),
        body: serde_json::to_vec(&request)?,
    });
    let start = Instant::now();
    let measure_from = start + warmup;
    let stop_at = measure_from + seconds;
    let mut tasks = JoinSet::new();
    for _ in 0..n_callers {
        tasks.spawn(caller(Arc::clone(&target), measure_from, stop_at));
    }
    let mut report = CallerReport::default();
    while let Some(joined) = tasks.join_next().await {
        let one = joined.context("a caller task")?;
        report.latencies_ms.extend(one.latencies_ms);
        for (status, n) in one.failures {
            *report.failures.entry(status).or_default() += n;
        }
    }
    report.window = Instant::now().min(stop_at).saturating_duration_since(measure_from);
    Ok(report)
}

/// One caller's loop; only requests started inside the window count.
async fn caller(target: Arc<Target>, measure_from: Instant, stop_at: Instant) -> CallerReport {
    let mut report = CallerReport::default();
    loop {
        let started = Instant::now();
        if started >= stop_at {
            return report;
        }
        let outcome = call(&target).await;
        if started < measure_from || Instant::now() > stop_at {
            continue;
        }
        match outcome {
            Ok(()) => report.latencies_ms.push(started.elapsed().as_secs_f64() * 1000.0),
            Err(failure) => *report.failures.entry(failure.label()).or_default() += 1,
        }
    }
}

/// Why a call did not count as a completion.
#[derive(Debug, Clone, Copy)]
enum Failure {
    /// No answer (connection, timeout, cut-off body).
    Transport,
    /// An answer other than 2xx.
    Status(u16),
    /// A 2xx whose body was not a completion.
    BadBody,
}

impl Failure {
    /// The report's key: `transport`, the status code, or `bad_body`.
    fn label(self) -> String {
        match self {
            Self::Transport => "transport".to_owned(),
            Self::Status(code) => code.to_string(),
            Self::BadBody => "bad_body".to_owned(),
        }
    }
}

/// One request.
async fn call(target: &Target) -> Result<(), Failure> {
    let response = target
        .http
        .post(&target.url)
        .header(HEADER_API_KEY, &target.api_key)
        .header("content-type", "application/json")
        .body(target.body.clone())
        .send()
        .await
        .map_err(|_| Failure::Transport)?;
    let status = response.status();
    let body = response.bytes().await.map_err(|_| Failure::Transport)?;
    if !status.is_success() {
        return Err(Failure::Status(status.as_u16()));
    }
    serde_json::from_slice::<ChatCompletion>(&body).map(drop).map_err(|_| Failure::BadBody)
}
