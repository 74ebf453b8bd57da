//! The node's link to its grid over HTTP: HTTPS unless the grid is on this machine (the seed's
//! rule, with the host parsed properly), 10 s to connect and 30 s per request, every response
//! body capped at 8 MiB (the seed caps only two), ids percent-encoded in paths, errors typed and
//! classified as retryable or not.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use sgl_protocol::api::error::ErrorBody;
use sgl_protocol::api::node::{
    AllowedBinariesResponse, ChallengeResponse, ChunkPost, ChunkResponse, CompleteJobRequest, DevicePollRequest,
    DevicePollResponse, DeviceStartRequest, DeviceStartResponse, EarningsResponse, FailJobRequest, HEADER_NODE_AUTH,
    HEADER_NODE_ID, HeartbeatRequest, HeartbeatResponse, NodePricesResponse, NodeStatusResponse, OffGridRequest,
    RegisterNodeRequest, RegisterNodeResponse, SetPriceRequest, VerifyAttestationRequest, VerifyAttestationResponse,
};
use sgl_protocol::api::operator::{OperatorActionResponse, SignedOperatorRequest, StakeStatus};
use sgl_protocol::ids::{AuthToken, JobId, NodeId};

mod compute;
mod market;

pub use compute::MAX_BLOB_BYTES;
/// The largest response body read from a grid.
pub const MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;

/// A grid URL that may not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GridUrlError {
    /// Plain HTTP to a host other than this machine would expose the node's token.
    #[error("{0}: the grid must be reached over https:// unless it runs on this machine (localhost, 127.0.0.1, ::1)")]
    NotHttps(String),
    /// Not an http(s) URL at all.
    #[error("{0}: not an http:// or https:// URL")]
    NotAUrl(String),
}

/// A grid call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The grid answered with an error.
    #[error("the grid refused ({status}): {message}")]
    Api {
        /// The HTTP status.
        status: u16,
        /// The grid's message.
        message: String,
    },
    /// The grid could not be reached.
    #[error("talking to the grid: {0}")]
    Transport(#[from] reqwest::Error),
    /// The grid answered 2xx with a body that is not the expected JSON.
    #[error("the grid's answer did not parse: {0}")]
    Decode(#[from] serde_json::Error),
    /// The grid's answer exceeded [`MAX_RESPONSE_BYTES`].
    #[error("the grid's answer exceeded {MAX_RESPONSE_BYTES} bytes")]
    TooLarge,
}

impl ClientError {
    /// The HTTP status the grid answered with, if it answered with an error.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Worth trying again: the grid was unreachable, overloaded (429) or failed (5xx).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Api { status, .. } => *status == 429 || *status >= 500,
            Self::Transport(_) => true,
            Self::Decode(_) | Self::TooLarge => false,
        }
    }
}

/// Percent-encodes one path segment (RFC 3986 unreserved characters pass), as the seed does.
pub fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Reads a response body of at most [`MAX_RESPONSE_BYTES`] and parses it, or the grid's error.
async fn read<R: DeserializeOwned>(mut response: reqwest::Response) -> Result<R, ClientError> {
    let status = response.status();
    if response.content_length().is_some_and(|n| n > MAX_RESPONSE_BYTES as u64) {
        return Err(ClientError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(ClientError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    if status.is_success() {
        return Ok(serde_json::from_slice(&body)?);
    }
    let text = String::from_utf8_lossy(&body).into_owned();
    let message = serde_json::from_str::<ErrorBody>(&text).map_or(text, |body| body.error.message);
    Err(ClientError::Api { status: status.as_u16(), message })
}

/// The host of `url`: after `://`, before the first `/`, `?` or `#`, without user info, port or
/// IPv6 brackets.
fn host(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if let Some(bracketed) = host_port.strip_prefix('[') {
        return bracketed.split_once(']').map(|(h, _)| h);
    }
    Some(host_port.split(':').next().unwrap_or(host_port))
}

/// Checks the seed's rule and trims a trailing `/`.
pub fn check_grid_url(url: &str) -> Result<String, GridUrlError> {
    let trimmed = url.trim().trim_end_matches('/').to_owned();
    if trimmed.starts_with("https://") {
        return Ok(trimmed);
    }
    if !trimmed.starts_with("http://") {
        return Err(GridUrlError::NotAUrl(url.to_owned()));
    }
    match host(&trimmed) {
        Some("localhost" | "127.0.0.1" | "::1") => Ok(trimmed),
        _ => Err(GridUrlError::NotHttps(url.to_owned())),
    }
}

/// A client for one grid.
#[derive(Debug, Clone)]
pub struct GridClient {
    base: String,
    http: reqwest::Client,
}

impl GridClient {
    /// A client for `base`, which must pass [`check_grid_url`].
    pub fn new(base: &str) -> Result<Self, GridUrlError> {
        let base = check_grid_url(base)?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("sgl-node/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("a client with fixed settings always builds");
        Ok(Self { base, http })
    }

    /// The grid's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    async fn post<B: Serialize, R: DeserializeOwned>(
        &self,
        path: &str,
        token: Option<&AuthToken>,
        body: &B,
    ) -> Result<R, ClientError> {
        let mut request = self.http.post(format!("{}{path}", self.base)).json(body);
        if let Some(token) = token {
            request = request.header(HEADER_NODE_AUTH, token.expose_secret());
        }
        read(request.send().await?).await
    }

    async fn get<R: DeserializeOwned>(&self, path: &str, token: Option<&AuthToken>) -> Result<R, ClientError> {
        let mut request = self.http.get(format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.header(HEADER_NODE_AUTH, token.expose_secret());
        }
        read(request.send().await?).await
    }

    /// The WebSocket URL for `node_id`: the base with `ws(s)://`, the node id encoded. The
    /// token goes in the `X-Node-Auth` header, not the query (seed weakness S7).
    pub fn ws_url(&self, node_id: &NodeId) -> String {
        let base = self.base.replacen("https://", "wss://", 1).replacen("http://", "ws://", 1);
        format!("{base}/grid/nodes/{}/ws", encode_segment(&node_id.to_string()))
    }

    /// `POST /grid/auth/device/start`.
    pub async fn device_start(&self) -> Result<DeviceStartResponse, ClientError> {
        self.post("/grid/auth/device/start", None, &DeviceStartRequest {}).await
    }

    /// `POST /grid/auth/device/poll`.
    pub async fn device_poll(&self, device_code: &str) -> Result<DevicePollResponse, ClientError> {
        self.post("/grid/auth/device/poll", None, &DevicePollRequest { device_code: device_code.to_owned() }).await
    }

    /// `POST /grid/nodes/heartbeat`, with the node id header.
    pub async fn heartbeat(
        &self,
        node_id: &NodeId,
        token: &AuthToken,
        beat: &HeartbeatRequest,
    ) -> Result<HeartbeatResponse, ClientError> {
        let request = self
            .http
            .post(format!("{}/grid/nodes/heartbeat", self.base))
            .header(HEADER_NODE_AUTH, token.expose_secret())
            .header(HEADER_NODE_ID, node_id.to_string())
            .json(beat);
        read(request.send().await?).await
    }

    /// `POST /grid/jobs/{id}/complete`.
    pub async fn complete(
        &self,
        job_id: &JobId,
        token: &AuthToken,
        body: &CompleteJobRequest,
    ) -> Result<serde_json::Value, ClientError> {
        self.post(&format!("/grid/jobs/{}/complete", encode_segment(job_id.as_str())), Some(token), body).await
    }

    /// `POST /grid/jobs/{id}/chunk`.
    pub async fn chunk(
        &self,
        job_id: &JobId,
        token: &AuthToken,
        body: &ChunkPost,
    ) -> Result<ChunkResponse, ClientError> {
        self.post(&format!("/grid/jobs/{}/chunk", encode_segment(job_id.as_str())), Some(token), body).await
    }

    /// `POST /grid/jobs/{id}/fail`.
    pub async fn fail(
        &self,
        job_id: &JobId,
        token: &AuthToken,
        body: &FailJobRequest,
    ) -> Result<serde_json::Value, ClientError> {
        self.post(&format!("/grid/jobs/{}/fail", encode_segment(job_id.as_str())), Some(token), body).await
    }

    /// `GET /grid/nodes/{id}`: the grid's view of this node.
    pub async fn node_status(&self, node_id: &NodeId, token: &AuthToken) -> Result<NodeStatusResponse, ClientError> {
        self.get(&format!("/grid/nodes/{}", encode_segment(&node_id.to_string())), Some(token)).await
    }

    /// `GET /grid/nodes/{id}/earnings`: the operator wallet's earnings.
    pub async fn earnings(&self, node_id: &NodeId, token: &AuthToken) -> Result<EarningsResponse, ClientError> {
        self.get(&format!("/grid/nodes/{}/earnings", encode_segment(&node_id.to_string())), Some(token)).await
    }

    /// `POST /grid/nodes/{id}/status`: off-grid (maintenance) or back on.
    pub async fn set_off_grid(
        &self,
        node_id: &NodeId,
        token: &AuthToken,
        off_grid: bool,
    ) -> Result<serde_json::Value, ClientError> {
        let path = format!("/grid/nodes/{}/status", encode_segment(&node_id.to_string()));
        self.post(&path, Some(token), &OffGridRequest { off_grid }).await
    }

    /// `GET /grid/nodes/{id}/prices` (public).
    pub async fn prices(&self, node_id: &NodeId) -> Result<NodePricesResponse, ClientError> {
        self.get(&format!("/grid/nodes/{}/prices", encode_segment(&node_id.to_string())), None).await
    }

    /// `POST /grid/nodes/{id}/prices`: set or reset a price.
    pub async fn set_price(
        &self,
        node_id: &NodeId,
        token: &AuthToken,
        request: &SetPriceRequest,
    ) -> Result<serde_json::Value, ClientError> {
        let path = format!("/grid/nodes/{}/prices", encode_segment(&node_id.to_string()));
        self.post(&path, Some(token), request).await
    }

    /// `GET /grid/allowed-binaries` (public).
    pub async fn allowed_binaries(&self) -> Result<AllowedBinariesResponse, ClientError> {
        self.get("/grid/allowed-binaries", None).await
    }

    /// `POST /grid/nodes/register`.
    pub async fn register(&self, request: &RegisterNodeRequest) -> Result<RegisterNodeResponse, ClientError> {
        self.post("/grid/nodes/register", None, request).await
    }

    /// `GET /grid/chain` (public): the chain the grid's stake and bonds live on, if any.
    pub async fn chain_info(&self) -> Result<sgl_protocol::api::chain::ChainInfo, ClientError> {
        self.get("/grid/chain", None).await
    }

    /// `GET /grid/operators/{wallet}/stake` (public): where the wallet's stake stands.
    pub async fn stake(&self, wallet: &str) -> Result<StakeStatus, ClientError> {
        self.get(&format!("/grid/operators/{}/stake", encode_segment(wallet)), None).await
    }

    /// `POST /grid/operators/{wallet}/actions`: an unstake, a stake withdrawal or a payout,
    /// signed by the wallet (see [`crate::wallet_key`]).
    pub async fn operator_action(
        &self,
        wallet: &str,
        request: &SignedOperatorRequest,
    ) -> Result<OperatorActionResponse, ClientError> {
        self.post(&format!("/grid/operators/{}/actions", encode_segment(wallet)), None, request).await
    }

    /// `POST /grid/nodes/{id}/challenge`.
    pub async fn challenge(&self, node_id: &NodeId, token: &AuthToken) -> Result<ChallengeResponse, ClientError> {
        self.post(&format!("/grid/nodes/{node_id}/challenge"), Some(token), &serde_json::json!({})).await
    }

    /// `POST /grid/nodes/{id}/verify-attestation`.
    pub async fn verify_attestation(
        &self,
        node_id: &NodeId,
        token: &AuthToken,
        request: &VerifyAttestationRequest,
    ) -> Result<VerifyAttestationResponse, ClientError> {
        self.post(&format!("/grid/nodes/{node_id}/verify-attestation"), Some(token), request).await
    }
}

#[cfg(test)]
mod tests {
    //! The seed's loopback rule, with hosts parsed properly.

    use super::*;

    #[test]
    fn plain_http_only_to_this_machine() {
        for ok in [
            "https://grid.example",
            "http://localhost:8080/",
            "http://127.0.0.1",
            "http://[::1]:9/x",
            "http://u:p@localhost",
        ] {
            assert!(check_grid_url(ok).is_ok(), "{ok}");
        }
        assert_eq!(check_grid_url("https://grid.example/").unwrap(), "https://grid.example");
        for bad in ["http://localhost.evil.test", "http://x/?u=localhost", "http://evil@x", "http://10.0.0.1"] {
            assert!(matches!(check_grid_url(bad), Err(GridUrlError::NotHttps(_))), "{bad}");
        }
        assert!(matches!(check_grid_url("ftp://x"), Err(GridUrlError::NotAUrl(_))));
    }

    #[test]
    fn path_segments_and_ws_urls_are_encoded() {
        assert_eq!(encode_segment("job-1_a.b~c"), "job-1_a.b~c");
        assert_eq!(encode_segment("a/b?c d"), "a%2Fb%3Fc%20d");
        let node_id: NodeId = "f617ee39-17e3-4904-9474-112446c9326a".parse().unwrap();
        let ws = GridClient::new("https://grid.example/").unwrap().ws_url(&node_id);
        assert_eq!(ws, "wss://grid.example/grid/nodes/f617ee39-17e3-4904-9474-112446c9326a/ws");
        assert!(GridClient::new("http://127.0.0.1:9").unwrap().ws_url(&node_id).starts_with("ws://127.0.0.1:9/"));
    }

    #[test]
    fn only_unreachable_overloaded_or_failing_grids_are_retried() {
        let api = |status| ClientError::Api { status, message: String::new() };
        assert!(api(503).is_retryable() && api(429).is_retryable() && api(500).is_retryable());
        assert!(!api(404).is_retryable() && !api(409).is_retryable() && !api(400).is_retryable());
        assert!(!ClientError::TooLarge.is_retryable());
    }
}
