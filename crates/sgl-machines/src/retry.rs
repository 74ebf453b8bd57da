//! Every call the cloud backends make, with one retry rule: each attempt has a timeout (30 s);
//! a 429 is waited out (its `Retry-After` seconds when given, else `base × 2ⁿ`) and tried again,
//! for any call, since the provider did nothing; a 5xx or a transport failure (timeout, refused
//! connection) is retried the same way only for calls that may run twice (GET, DELETE), never
//! for a create. After the last try a 429 is [`BackendError::RateLimited`]; a 5xx is answered
//! as it came, for the client to turn into [`BackendError::Unavailable`].
//!
//! The token goes only in the `Authorization` header; the path and query hold nothing secret,
//! and errors name the method and path, never the URL's host or the headers.

use std::fmt;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use reqwest::{Method, redirect};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::backend::BackendError;
use crate::secret::ProviderToken;

/// How the backends retry and how long they wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (5).
    pub tries: u32,
    /// The first backoff; each next one doubles it (500 ms).
    pub base: Duration,
    /// The timeout of one attempt (30 s).
    pub timeout: Duration,
    /// The longest single wait, whatever `Retry-After` asks (60 s).
    pub max_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            tries: 5,
            base: Duration::from_millis(500),
            timeout: Duration::from_secs(30),
            max_wait: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1`, after `attempt` failed ones: `base × 2^(attempt−1)`.
    fn backoff(&self, attempt: u32) -> Duration {
        let doubled = self.base.saturating_mul(1 << attempt.saturating_sub(1).min(16));
        doubled.min(self.max_wait)
    }
}

/// One request to a provider: method, path under the API base, query and JSON body.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    method: Method,
    path: String,
    query: Vec<(&'static str, String)>,
    body: Option<Vec<u8>>,
}

impl Request {
    pub(crate) fn get(path: impl Into<String>) -> Self {
        Self { method: Method::GET, path: path.into(), query: Vec::new(), body: None }
    }

    pub(crate) fn delete(path: impl Into<String>) -> Self {
        Self { method: Method::DELETE, ..Self::get(path) }
    }

    /// A POST, with `body` as JSON when given.
    pub(crate) fn post(path: impl Into<String>, body: Option<&impl Serialize>) -> Result<Self, BackendError> {
        Ok(Self { method: Method::POST, body: body.map(json).transpose()?, ..Self::get(path) })
    }

    pub(crate) fn patch(path: impl Into<String>, body: &impl Serialize) -> Result<Self, BackendError> {
        Ok(Self { method: Method::PATCH, body: Some(json(body)?), ..Self::get(path) })
    }

    pub(crate) fn query(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.query.push((name, value.into()));
        self
    }

    /// Whether running it twice does no harm, so a 5xx or a lost answer may be retried.
    fn idempotent(&self) -> bool {
        self.method == Method::GET || self.method == Method::DELETE
    }
}

fn json(body: &impl Serialize) -> Result<Vec<u8>, BackendError> {
    serde_json::to_vec(body).map_err(|e| BackendError::Unavailable(format!("could not encode a request: {e}")))
}

/// What a provider answered.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
    retry_after: Option<Duration>,
}

impl Answer {
    /// The body as `T`, or [`BackendError::Unavailable`] naming the provider's surprise.
    pub(crate) fn decode<T: DeserializeOwned>(&self, what: &str) -> Result<T, BackendError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| BackendError::Unavailable(format!("unexpected answer to {what}: {e}")))
    }
}

/// An HTTP client bound to one provider's API base and token.
pub(crate) struct Api {
    http: reqwest::Client,
    base: String,
    token: ProviderToken,
    policy: RetryPolicy,
}

impl fmt::Debug for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Api")
            .field("base", &self.base)
            .field("token", &self.token)
            .field("policy", &self.policy)
            .finish()
    }
}

impl Api {
    /// A client for the API at `base` (no trailing slash needed).
    pub(crate) fn new(base: &str, token: ProviderToken, policy: RetryPolicy) -> Result<Self, BackendError> {
        // Never follow a redirect: the token must not travel to a host the grid did not name.
        let http = reqwest::Client::builder()
            .timeout(policy.timeout)
            .redirect(redirect::Policy::none())
            .build()
            .map_err(|e| BackendError::Unavailable(format!("could not build an HTTP client: {e}")))?;
        Ok(Self { http, base: base.trim_end_matches('/').to_owned(), token, policy })
    }

    /// Sends `request` under the retry rule (module docs) and returns the final answer, whatever
    /// its status, except a 429 after the last try.
    pub(crate) async fn call(&self, request: &Request) -> Result<Answer, BackendError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let last = attempt >= self.policy.tries;
            let wait = match self.once(request).await {
                Ok(answer) if answer.status == 429 => {
                    if last {
                        return Err(BackendError::RateLimited);
                    }
                    answer.retry_after.unwrap_or_else(|| self.policy.backoff(attempt)).min(self.policy.max_wait)
                }
                Ok(answer) if answer.status >= 500 && request.idempotent() && !last => self.policy.backoff(attempt),
                Ok(answer) => return Ok(answer),
                Err(reason) if request.idempotent() && !last => {
                    tracing::debug!(method = %request.method, path = %request.path, %reason, "provider call failed");
                    self.policy.backoff(attempt)
                }
                Err(reason) => return Err(reason),
            };
            tracing::debug!(method = %request.method, path = %request.path, attempt, ?wait, "retrying a provider call");
            tokio::time::sleep(wait).await;
        }
    }

    /// One attempt; `Err` is a transport failure ([`BackendError::Unavailable`]), described
    /// without the URL.
    async fn once(&self, request: &Request) -> Result<Answer, BackendError> {
        let url = format!("{}{}", self.base, request.path);
        let mut builder =
            self.http.request(request.method.clone(), url).header(AUTHORIZATION, self.token.authorization());
        if !request.query.is_empty() {
            builder = builder.query(&request.query);
        }
        if let Some(body) = &request.body {
            builder = builder.header(CONTENT_TYPE, HeaderValue::from_static("application/json")).body(body.clone());
        }
        let describe = |e: reqwest::Error| {
            let kind = if e.is_timeout() { "timed out" } else { "failed" };
            BackendError::Unavailable(format!("{} {} {kind}: {}", request.method, request.path, e.without_url()))
        };
        let response = builder.send().await.map_err(describe)?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = response.bytes().await.map_err(describe)?.to_vec();
        Ok(Answer { status, body, retry_after })
    }
}

/// `answer` when it is a success; otherwise the error its status means, with the provider's
/// message as `message` reads it from the body: 404 → [`BackendError::NotFound`], other 4xx →
/// [`BackendError::Rejected`], 5xx (after the retries) → [`BackendError::Unavailable`].
pub(crate) fn success(answer: Answer, message: fn(&[u8]) -> Option<String>) -> Result<Answer, BackendError> {
    let text = || message(&answer.body).unwrap_or_else(|| format!("HTTP {} without a message", answer.status));
    match answer.status {
        200..=299 => Ok(answer),
        404 => Err(BackendError::NotFound),
        status @ 400..=499 => Err(BackendError::Rejected { status, message: text() }),
        status => Err(BackendError::Unavailable(format!("HTTP {status}: {}", text()))),
    }
}

#[cfg(test)]
mod tests {
    //! Backoff doubles from the base and stops at the longest wait.

    use super::*;

    #[test]
    fn backoff_doubles_from_the_base_and_is_capped() {
        let policy = RetryPolicy::default();
        let waits: Vec<_> = (1..=5).map(|a| policy.backoff(a).as_millis()).collect();
        assert_eq!(waits, [500, 1000, 2000, 4000, 8000]);
        assert_eq!(policy.backoff(40), Duration::from_secs(60));
        assert!(Request::get("/x").idempotent() && Request::delete("/x").idempotent());
        assert!(!Request::post("/x", None::<&()>).unwrap().idempotent());
    }
}
