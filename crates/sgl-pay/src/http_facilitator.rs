//! A [`Facilitator`] that is a client of a remote x402 facilitator over HTTP: `POST {base}/verify`,
//! `POST {base}/settle` with the body `{x402Version, paymentPayload, paymentRequirements}`, and
//! `GET {base}/supported`, cached for a while because it rarely changes.
//!
//! Like the reference clients, any answer other than 2xx is an error, even when its body looks
//! like a refusal; a refused payment arrives as a 200 carrying `isValid: false` or
//! `success: false`. Bodies are read up to [`MAX_RESPONSE_BYTES`].
//!
//! Static headers (typically `Authorization: Bearer …`) go with every request. They are
//! marked sensitive and never appear in errors or `Debug` output; neither does the base URL,
//! which may carry credentials of its own.

#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Client, Response, StatusCode, Url};
use serde::de::DeserializeOwned;

use crate::facilitator::Facilitator;
use crate::wire::{FacilitatorRequest, SettleResponse, SupportedResponse, VerifyResponse};

/// Default limit on one whole request, connection included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Default time a `/supported` answer is reused before it is fetched again.
pub const DEFAULT_SUPPORTED_TTL: Duration = Duration::from_secs(600);

/// Largest response body read from the facilitator.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// Most bytes of an error answer's body kept in [`HttpFacilitatorError::Status`].
pub const ERROR_SNIPPET_BYTES: usize = 512;

/// One of the three facilitator endpoints, named in errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST /verify`.
    Verify,
    /// `POST /settle`.
    Settle,
    /// `GET /supported`.
    Supported,
}

impl Endpoint {
    /// The path segment, relative to the base URL.
    pub fn path(self) -> &'static str {
        match self {
            Self::Verify => "verify",
            Self::Settle => "settle",
            Self::Supported => "supported",
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/{}", self.path())
    }
}

/// Why an [`HttpFacilitator`] could not be configured.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpFacilitatorConfigError {
    /// The base URL does not parse (it is not shown: it may carry credentials).
    #[error("facilitator base URL does not parse")]
    BaseUrl,
    /// The base URL is not `http` or `https`, or has a query or fragment.
    #[error("facilitator base URL must be http(s) without query or fragment")]
    BaseUrlShape,
    /// A header name is not a valid HTTP header name.
    #[error("invalid header name {0:?}")]
    HeaderName(String),
    /// A header value is not a valid HTTP header value (the value itself is not shown).
    #[error("invalid value for header {0:?}")]
    HeaderValue(String),
    /// The HTTP client could not be built (TLS setup).
    #[error("could not build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
}

/// The facilitator could not be asked, or its answer could not be read. A refused payment is
/// not an error: it is a `VerifyResponse` / `SettleResponse` saying so.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpFacilitatorError {
    /// Connecting, sending, timing out or reading failed.
    #[error("facilitator {endpoint} request failed: {source}")]
    Transport {
        /// Which endpoint.
        endpoint: Endpoint,
        /// The transport error, without the URL.
        #[source]
        source: reqwest::Error,
    },
    /// The facilitator answered with a status other than 2xx.
    #[error("facilitator {endpoint} answered {status}: {body}")]
    Status {
        /// Which endpoint.
        endpoint: Endpoint,
        /// The HTTP status.
        status: StatusCode,
        /// The start of the answer's body (at most [`ERROR_SNIPPET_BYTES`], lossy UTF-8).
        body: String,
    },
    /// The answer's body is larger than [`MAX_RESPONSE_BYTES`].
    #[error("facilitator {endpoint} answer exceeds {limit} bytes")]
    TooLarge {
        /// Which endpoint.
        endpoint: Endpoint,
        /// The limit.
        limit: usize,
    },
    /// The answer is not the expected JSON.
    #[error("facilitator {endpoint} answer is not the expected JSON: {source}")]
    Decode {
        /// Which endpoint.
        endpoint: Endpoint,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// The request body could not be written as JSON.
    #[error("facilitator {endpoint} request could not be encoded: {source}")]
    Encode {
        /// Which endpoint.
        endpoint: Endpoint,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
}

/// Settings for an [`HttpFacilitator`], from [`HttpFacilitator::builder`].
pub struct HttpFacilitatorBuilder {
    base: Result<Url, HttpFacilitatorConfigError>,
    timeout: Duration,
    supported_ttl: Duration,
    headers: Result<HeaderMap, HttpFacilitatorConfigError>,
}

impl fmt::Debug for HttpFacilitatorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpFacilitatorBuilder")
            .field("timeout", &self.timeout)
            .field("supported_ttl", &self.supported_ttl)
            .finish_non_exhaustive()
    }
}

impl HttpFacilitatorBuilder {
    /// Limit on each whole request (default [`DEFAULT_TIMEOUT`]).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long a `/supported` answer is reused (default [`DEFAULT_SUPPORTED_TTL`]); zero
    /// disables the cache.
    pub fn supported_cache_ttl(mut self, ttl: Duration) -> Self {
        self.supported_ttl = ttl;
        self
    }

    /// Adds a header sent with every request, e.g. `("Authorization", "Bearer …")`. The
    /// value is marked sensitive. An invalid name or value surfaces from
    /// [`build`](Self::build).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        if let Ok(headers) = &mut self.headers {
            match (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value)) {
                (Err(_), _) => self.headers = Err(HttpFacilitatorConfigError::HeaderName(name.to_owned())),
                (_, Err(_)) => self.headers = Err(HttpFacilitatorConfigError::HeaderValue(name.to_owned())),
                (Ok(name), Ok(mut value)) => {
                    value.set_sensitive(true);
                    headers.append(name, value);
                }
            }
        }
        self
    }

    /// The facilitator client.
    pub fn build(self) -> Result<HttpFacilitator, HttpFacilitatorConfigError> {
        let base = self.base?;
        let headers = self.headers?;
        let client = Client::builder()
            .timeout(self.timeout)
            .default_headers(headers)
            .build()
            .map_err(|error| HttpFacilitatorConfigError::Client(error.without_url()))?;
        Ok(HttpFacilitator { client, base, supported_ttl: self.supported_ttl, supported: Mutex::new(None) })
    }
}

/// A remote x402 facilitator, reached over HTTP.
pub struct HttpFacilitator {
    client: Client,
    /// The base URL; endpoints are appended to its path, whether or not it ends in `/`.
    base: Url,
    supported_ttl: Duration,
    supported: Mutex<Option<(Instant, SupportedResponse)>>,
}

impl fmt::Debug for HttpFacilitator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpFacilitator")
            .field("host", &self.base.host_str())
            .field("supported_ttl", &self.supported_ttl)
            .finish_non_exhaustive()
    }
}

impl HttpFacilitator {
    /// A client for the facilitator at `base_url` (e.g. `https://x402.org/facilitator`, with
    /// or without a trailing `/`) with the default settings.
    pub fn new(base_url: &str) -> Result<Self, HttpFacilitatorConfigError> {
        Self::builder(base_url).build()
    }

    /// Settings for a client of the facilitator at `base_url`.
    pub fn builder(base_url: &str) -> HttpFacilitatorBuilder {
        let base = Url::parse(base_url).map_err(|_| HttpFacilitatorConfigError::BaseUrl).and_then(check_base);
        HttpFacilitatorBuilder {
            base,
            timeout: DEFAULT_TIMEOUT,
            supported_ttl: DEFAULT_SUPPORTED_TTL,
            headers: Ok(HeaderMap::new()),
        }
    }

    /// The full URL of `endpoint`.
    pub fn endpoint_url(&self, endpoint: Endpoint) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut().expect("http(s) base URLs have a path").pop_if_empty().push(endpoint.path());
        url
    }

    async fn post<T: DeserializeOwned>(
        &self,
        endpoint: Endpoint,
        request: &FacilitatorRequest,
    ) -> Result<T, HttpFacilitatorError> {
        let body = serde_json::to_vec(request).map_err(|source| HttpFacilitatorError::Encode { endpoint, source })?;
        let sent = self
            .client
            .post(self.endpoint_url(endpoint))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await;
        read_json(endpoint, sent).await
    }

    async fn fetch_supported(&self) -> Result<SupportedResponse, HttpFacilitatorError> {
        let endpoint = Endpoint::Supported;
        let sent = self.client.get(self.endpoint_url(endpoint)).send().await;
        read_json(endpoint, sent).await
    }

    fn cached_supported(&self) -> Option<SupportedResponse> {
        let cache = self.supported.lock().unwrap_or_else(PoisonError::into_inner);
        let (fetched_at, supported) = cache.as_ref()?;
        (fetched_at.elapsed() < self.supported_ttl).then(|| supported.clone())
    }
}

impl Facilitator for HttpFacilitator {
    type Error = HttpFacilitatorError;

    async fn verify(&self, request: &FacilitatorRequest) -> Result<VerifyResponse, HttpFacilitatorError> {
        self.post(Endpoint::Verify, request).await
    }

    async fn settle(&self, request: &FacilitatorRequest) -> Result<SettleResponse, HttpFacilitatorError> {
        self.post(Endpoint::Settle, request).await
    }

    /// The facilitator's `/supported`, reused for the configured time. Concurrent callers on
    /// an empty cache may each fetch it once.
    async fn supported(&self) -> Result<SupportedResponse, HttpFacilitatorError> {
        if let Some(supported) = self.cached_supported() {
            return Ok(supported);
        }
        let supported = self.fetch_supported().await?;
        if !self.supported_ttl.is_zero() {
            let mut cache = self.supported.lock().unwrap_or_else(PoisonError::into_inner);
            *cache = Some((Instant::now(), supported.clone()));
        }
        Ok(supported)
    }
}

/// Checks that endpoints can be joined onto the base URL's path.
fn check_base(base: Url) -> Result<Url, HttpFacilitatorConfigError> {
    let http = matches!(base.scheme(), "http" | "https");
    if !http || base.cannot_be_a_base() || base.query().is_some() || base.fragment().is_some() {
        return Err(HttpFacilitatorConfigError::BaseUrlShape);
    }
    Ok(base)
}

/// The 2xx answer's body as `T`, or why not.
async fn read_json<T: DeserializeOwned>(
    endpoint: Endpoint,
    sent: Result<Response, reqwest::Error>,
) -> Result<T, HttpFacilitatorError> {
    let transport = |error: reqwest::Error| HttpFacilitatorError::Transport { endpoint, source: error.without_url() };
    let response = sent.map_err(transport)?;
    let status = response.status();
    let body = read_capped(endpoint, response).await?;
    if !status.is_success() {
        let snippet = &body[..body.len().min(ERROR_SNIPPET_BYTES)];
        let body = String::from_utf8_lossy(snippet).trim().to_owned();
        return Err(HttpFacilitatorError::Status { endpoint, status, body });
    }
    serde_json::from_slice(&body).map_err(|source| HttpFacilitatorError::Decode { endpoint, source })
}

/// Reads the whole body, refusing more than [`MAX_RESPONSE_BYTES`].
async fn read_capped(endpoint: Endpoint, mut response: Response) -> Result<Vec<u8>, HttpFacilitatorError> {
    let too_large = HttpFacilitatorError::TooLarge { endpoint, limit: MAX_RESPONSE_BYTES };
    if response.content_length().is_some_and(|length| length > MAX_RESPONSE_BYTES as u64) {
        return Err(too_large);
    }
    let mut body = Vec::new();
    loop {
        let chunk = response
            .chunk()
            .await
            .map_err(|error| HttpFacilitatorError::Transport { endpoint, source: error.without_url() })?;
        let Some(chunk) = chunk else { return Ok(body) };
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(too_large);
        }
        body.extend_from_slice(&chunk);
    }
}
