//! The node's link to its grid over HTTP: HTTPS unless the grid is on this machine (the seed's
//! rule, with the host parsed properly), 10 s to connect and 30 s per request, errors typed.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use sgl_protocol::api::error::ErrorBody;
use sgl_protocol::api::node::{
    ChallengeResponse, HEADER_NODE_AUTH, RegisterNodeRequest, RegisterNodeResponse, VerifyAttestationRequest,
    VerifyAttestationResponse,
};
use sgl_protocol::ids::{AuthToken, NodeId};

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
    /// The grid could not be reached or answered nonsense.
    #[error("talking to the grid: {0}")]
    Transport(#[from] reqwest::Error),
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
        let response = request.send().await?;
        let status = response.status();
        if status.is_success() {
            return Ok(response.json().await?);
        }
        let text = response.text().await.unwrap_or_default();
        let message = serde_json::from_str::<ErrorBody>(&text).map_or(text, |body| body.error.message);
        Err(ClientError::Api { status: status.as_u16(), message })
    }

    /// `POST /grid/nodes/register`.
    pub async fn register(&self, request: &RegisterNodeRequest) -> Result<RegisterNodeResponse, ClientError> {
        self.post("/grid/nodes/register", None, request).await
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
}
