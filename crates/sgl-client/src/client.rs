//! The [`Client`]: one method per caller endpoint, the HTTP plumbing (auth headers, error
//! bodies, retries), discovery, reservations and the account. Chat lives in [`crate::chat`].

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sgl_protocol::api::account::{CreateKeyRequest, CreatedKey, CreditsBalance, KeyList, RevokedKey};
use sgl_protocol::api::caller::{
    CapacityResponse, GridModelsResponse, HEADER_API_KEY, PricingResponse, ProvidersQuery, ProvidersResponse,
    ReserveRequest, ReserveResponse,
};
use sgl_protocol::api::error::ErrorBody;
use sgl_protocol::api::openai::ModelList;
use sgl_protocol::ids::ApiKey;

use crate::error::Error;
use crate::retry::{RetryPolicy, is_retryable_status, retry_after};
use crate::verify::VerifiedNode;

/// How long to wait for a TCP (and TLS) connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Whole-request timeout of discovery and account calls (never applied to chat).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest silence tolerated inside a stream; the grid sends keep-alives every 15 s.
pub const DEFAULT_STREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// Whole-request timeout of a blob upload or download (blobs run to hundreds of MiB).
pub const DEFAULT_BLOB_TIMEOUT: Duration = Duration::from_secs(600);

/// Builds a [`Client`] with non-default timeouts or retries.
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    base_url: String,
    api_key: Option<ApiKey>,
    connect_timeout: Duration,
    request_timeout: Duration,
    stream_idle_timeout: Duration,
    blob_timeout: Duration,
    retry: RetryPolicy,
}

impl ClientBuilder {
    /// The API key (`x402c_…`), sent as `Authorization: Bearer` and `X-API-Key`.
    pub fn api_key(mut self, api_key: ApiKey) -> Self {
        self.api_key = Some(api_key);
        self
    }

    /// TCP/TLS connect timeout (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Whole-request timeout of discovery and account calls (default 60 s). Chat has no total
    /// timeout: a long answer is not an error.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Longest silence inside a stream before it is abandoned (default 120 s).
    pub fn stream_idle_timeout(mut self, timeout: Duration) -> Self {
        self.stream_idle_timeout = timeout;
        self
    }

    /// Whole-request timeout of a blob upload or download (default 10 min).
    pub fn blob_timeout(mut self, timeout: Duration) -> Self {
        self.blob_timeout = timeout;
        self
    }

    /// The retry policy for 429 and 503 answers.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Builds the client.
    pub fn build(self) -> Result<Client, Error> {
        let base_url = self.base_url.trim().trim_end_matches('/').to_owned();
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(Error::InvalidRequest(format!(
                "the grid URL must start with http:// or https://: {base_url:?}"
            )));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .user_agent(concat!("sgl-client/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(Error::Transport)?;
        Ok(Client {
            http,
            base_url,
            api_key: self.api_key,
            request_timeout: self.request_timeout,
            stream_idle_timeout: self.stream_idle_timeout,
            blob_timeout: self.blob_timeout,
            retry: self.retry,
        })
    }
}

/// A caller of one grid. Cheap to clone; share one per process.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base_url: String,
    api_key: Option<ApiKey>,
    request_timeout: Duration,
    stream_idle_timeout: Duration,
    blob_timeout: Duration,
    pub(crate) retry: RetryPolicy,
}

/// Whether a call may be sent again after a 429 or 503 (or a failed connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    Yes,
    No,
}

impl Client {
    /// A client with default timeouts and retries.
    pub fn new(base_url: &str, api_key: Option<ApiKey>) -> Result<Self, Error> {
        let mut builder = Self::builder(base_url);
        builder.api_key = api_key;
        builder.build()
    }

    /// A builder, for non-default timeouts or retries.
    pub fn builder(base_url: &str) -> ClientBuilder {
        ClientBuilder {
            base_url: base_url.to_owned(),
            api_key: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            stream_idle_timeout: DEFAULT_STREAM_IDLE_TIMEOUT,
            blob_timeout: DEFAULT_BLOB_TIMEOUT,
            retry: RetryPolicy::default(),
        }
    }

    /// The grid's base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Whether an API key is configured.
    pub fn has_api_key(&self) -> bool {
        self.api_key.is_some()
    }

    pub(crate) fn stream_idle_timeout(&self) -> Duration {
        self.stream_idle_timeout
    }

    pub(crate) fn blob_timeout(&self) -> Duration {
        self.blob_timeout
    }

    /// Fails locally, before any request, when the client has no API key.
    pub(crate) fn require_key(&self) -> Result<(), Error> {
        if self.api_key.is_none() {
            return Err(Error::MissingApiKey);
        }
        Ok(())
    }

    /// `GET /v1/models`: the models some live node serves.
    pub async fn models(&self) -> Result<ModelList, Error> {
        self.get_json("/v1/models", &[], false).await
    }

    /// `GET /grid/models`: the models with node counts, tiers and reference prices.
    pub async fn grid_models(&self) -> Result<GridModelsResponse, Error> {
        self.get_json("/grid/models", &[], false).await
    }

    /// `GET /v1/providers?model=…`: the nodes serving `model`, cheapest first.
    pub async fn providers(&self, model: &str) -> Result<ProvidersResponse, Error> {
        self.providers_with(&ProvidersQuery { model: model.to_owned(), cluster: None, max_price: None, job_type: None })
            .await
    }

    /// `GET /v1/providers` with a cluster or a price cap.
    pub async fn providers_with(&self, query: &ProvidersQuery) -> Result<ProvidersResponse, Error> {
        let mut pairs = vec![("model", query.model.clone())];
        pairs.extend(query.cluster.clone().map(|c| ("cluster", c)));
        pairs.extend(query.max_price.map(|p| ("max_price", p.to_string())));
        self.get_json("/v1/providers", &pairs, false).await
    }

    /// `GET /grid/capacity`: node counts, overall and per tier.
    pub async fn capacity(&self) -> Result<CapacityResponse, Error> {
        self.get_json("/grid/capacity", &[], false).await
    }

    /// `GET /grid/pricing`: reference prices per model.
    pub async fn pricing(&self) -> Result<PricingResponse, Error> {
        self.get_json("/grid/pricing", &[], false).await
    }

    /// `POST /v1/reserve` for `model`, then verifies the node's keybind. A node without a
    /// valid binding is refused ([`crate::VerifyError::MissingKeybind`] or
    /// [`crate::VerifyError::BadKeybind`]).
    pub async fn reserve(&self, model: &str) -> Result<VerifiedNode, Error> {
        let request = ReserveRequest {
            model: model.to_owned(),
            cluster: None,
            node: None,
            max_price: None,
            pay_in_coin: None,
            job_type: None,
        };
        self.reserve_with(&request).await
    }

    /// `POST /v1/reserve` with a cluster, a node or a price cap, then verifies the keybind.
    pub async fn reserve_with(&self, request: &ReserveRequest) -> Result<VerifiedNode, Error> {
        let response: ReserveResponse = self.send_json(Method::POST, "/v1/reserve", Some(request), Retry::Yes).await?;
        Ok(VerifiedNode::from_reservation(&request.model, &response)?)
    }

    /// `GET /compute/credits/balance`: the calling key's credits.
    pub async fn credits_balance(&self) -> Result<CreditsBalance, Error> {
        self.get_json("/compute/credits/balance", &[], true).await
    }

    /// `POST /v1/keys`: a new key in the caller's account, optionally funded with part of the
    /// caller's credits. Not retried: a second attempt could create (and fund) a second key.
    pub async fn keys_create(&self, label: Option<&str>, credits_usd: Option<f64>) -> Result<CreatedKey, Error> {
        let body = CreateKeyRequest { label: label.map(str::to_owned), credits_usd };
        self.send_json(Method::POST, "/v1/keys", Some(&body), Retry::No).await
    }

    /// `GET /v1/keys`: the account's keys, revoked ones included.
    pub async fn keys_list(&self) -> Result<KeyList, Error> {
        self.get_json("/v1/keys", &[], true).await
    }

    /// `DELETE /v1/keys/{id}`: revokes a key of the account.
    pub async fn keys_revoke(&self, id: i64) -> Result<RevokedKey, Error> {
        self.send_json::<(), _>(Method::DELETE, &format!("/v1/keys/{id}"), None, Retry::Yes).await
    }

    pub(crate) async fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
        needs_key: bool,
    ) -> Result<T, Error> {
        if needs_key && self.api_key.is_none() {
            return Err(Error::MissingApiKey);
        }
        let build = || self.request(Method::GET, path).query(query).timeout(self.request_timeout);
        let response = self.send_with_retry(build, Retry::Yes).await?;
        decode(response).await
    }

    pub(crate) async fn send_json<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        retry: Retry,
    ) -> Result<T, Error> {
        if self.api_key.is_none() {
            return Err(Error::MissingApiKey);
        }
        let build = || {
            let request = self.request(method.clone(), path).timeout(self.request_timeout);
            match body {
                Some(body) => request.json(body),
                None => request,
            }
        };
        let response = self.send_with_retry(build, retry).await?;
        decode(response).await
    }

    /// A request to `path` with the auth headers.
    pub(crate) fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let mut request = self.http.request(method, format!("{}{path}", self.base_url));
        if let Some(key) = &self.api_key
            && let Ok(mut bearer) = HeaderValue::from_str(&format!("Bearer {}", key.expose_secret()))
            && let Ok(mut plain) = HeaderValue::from_str(key.expose_secret())
        {
            bearer.set_sensitive(true);
            plain.set_sensitive(true);
            request = request.header(AUTHORIZATION, bearer).header(HEADER_API_KEY, plain);
        }
        request
    }

    /// A chat POST with a JSON body, sent once: the caller decides on retries, because a chat
    /// may be retried only when the grid refused it before any work.
    pub(crate) async fn post_chat<B: Serialize>(&self, body: &B) -> Result<Response, Error> {
        self.post_once("/v1/chat/completions", body).await
    }

    /// Posts `body` to `path` once (never retried: the grid may have started work), with the key.
    pub(crate) async fn post_once<B: Serialize>(&self, path: &str, body: &B) -> Result<Response, Error> {
        if self.api_key.is_none() {
            return Err(Error::MissingApiKey);
        }
        let response = self.request(Method::POST, path).json(body).send().await;
        let response = response.map_err(Error::Transport)?;
        ensure_success(response).await
    }

    pub(crate) async fn send_with_retry(
        &self,
        build: impl Fn() -> RequestBuilder,
        retry: Retry,
    ) -> Result<Response, Error> {
        let mut attempt = 0;
        loop {
            let may_retry = retry == Retry::Yes && attempt < self.retry.max_retries;
            match build().send().await {
                Ok(response) if may_retry && is_retryable_status(response.status()) => {
                    let wait = self.retry.delay(attempt, retry_after(response.headers()));
                    tracing::debug!(status = %response.status(), ?wait, "retrying");
                    tokio::time::sleep(wait).await;
                }
                // Nothing reached the grid, so even a non-idempotent call is safe to resend;
                // still, only calls marked retryable are.
                Err(error) if may_retry && error.is_connect() => {
                    tokio::time::sleep(self.retry.delay(attempt, None)).await;
                }
                Ok(response) => return ensure_success(response).await,
                Err(error) => return Err(Error::Transport(error)),
            }
            attempt += 1;
        }
    }
}

/// Passes a 2xx response through; turns anything else into [`Error::Api`].
pub(crate) async fn ensure_success(response: Response) -> Result<Response, Error> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let retry_after = retry_after(response.headers());
    let text = response.text().await.unwrap_or_default();
    Err(api_error(status, &text, retry_after))
}

/// Reads an error body in either shape (OpenAI's object or the seed's string).
pub(crate) fn api_error(status: StatusCode, text: &str, retry_after: Option<Duration>) -> Error {
    match serde_json::from_str::<ErrorBody>(text) {
        Ok(body) => Error::Api {
            status: status.as_u16(),
            error_type: Some(body.error.error_type),
            code: body.error.code,
            message: body.error.message,
            retry_after,
        },
        Err(_) => {
            let shown: String = text.chars().take(200).collect();
            let message = if shown.trim().is_empty() { status.to_string() } else { shown };
            Error::Api { status: status.as_u16(), error_type: None, code: None, message, retry_after }
        }
    }
}

/// Decodes a 2xx JSON body.
pub(crate) async fn decode<T: DeserializeOwned>(response: Response) -> Result<T, Error> {
    let bytes = response.bytes().await.map_err(Error::Transport)?;
    serde_json::from_slice(&bytes).map_err(|e| Error::UnexpectedResponse(e.to_string()))
}

/// Whether a response is a server-sent-events stream.
pub(crate) fn is_event_stream(response: &Response) -> bool {
    response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("text/event-stream"))
}
