//! The node's side of general compute: leasing slices, fetching and storing blobs, reporting
//! attempts (`docs/protocol.md`, the job API).

use sgl_protocol::api::compute::{
    AttemptAck, AttemptFailure, AttemptSecrets, BlobStored, LeaseRequest, LeaseResponse, ReceiptPost,
};
use sgl_protocol::api::node::HEADER_NODE_AUTH;
use sgl_protocol::compute::Digest;
use sgl_protocol::ids::AuthToken;

use super::{ClientError, GridClient, read};

/// The largest blob a node downloads.
pub const MAX_BLOB_BYTES: usize = 1 << 30;

impl GridClient {
    /// `POST /grid/compute/lease`.
    pub async fn lease(&self, token: &AuthToken, request: &LeaseRequest) -> Result<LeaseResponse, ClientError> {
        self.post("/grid/compute/lease", Some(token), request).await
    }

    /// `POST /grid/compute/attempts/{id}/start`.
    pub async fn start_attempt(&self, token: &AuthToken, attempt_id: i64) -> Result<AttemptAck, ClientError> {
        self.post(&format!("/grid/compute/attempts/{attempt_id}/start"), Some(token), &serde_json::json!({})).await
    }

    /// `POST /grid/compute/attempts/{id}/receipt`.
    pub async fn post_receipt(
        &self,
        token: &AuthToken,
        attempt_id: i64,
        post: &ReceiptPost,
    ) -> Result<AttemptAck, ClientError> {
        self.post(&format!("/grid/compute/attempts/{attempt_id}/receipt"), Some(token), post).await
    }

    /// `POST /grid/compute/attempts/{id}/fail`.
    pub async fn fail_attempt(
        &self,
        token: &AuthToken,
        attempt_id: i64,
        failure: &AttemptFailure,
    ) -> Result<AttemptAck, ClientError> {
        self.post(&format!("/grid/compute/attempts/{attempt_id}/fail"), Some(token), failure).await
    }

    /// `GET /grid/compute/attempts/{id}/secrets`: the sealed secrets, none until given.
    pub async fn attempt_secrets(&self, token: &AuthToken, attempt_id: i64) -> Result<AttemptSecrets, ClientError> {
        self.get(&format!("/grid/compute/attempts/{attempt_id}/secrets"), Some(token)).await
    }

    /// `GET /grid/blobs/{sha256}`: the bytes, refused unless they hash to their name.
    pub async fn get_blob(&self, token: &AuthToken, digest: &Digest) -> Result<Vec<u8>, ClientError> {
        let request =
            self.http.get(format!("{}/grid/blobs/{digest}", self.base)).header(HEADER_NODE_AUTH, token.expose_secret());
        let mut response = request.send().await?;
        if !response.status().is_success() {
            return read::<serde_json::Value>(response).await.map(|_| Vec::new());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            if body.len() + chunk.len() > MAX_BLOB_BYTES {
                return Err(ClientError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        if Digest::of(&body) != *digest {
            return Err(ClientError::Api { status: 200, message: format!("blob {digest} arrived with other bytes") });
        }
        Ok(body)
    }

    /// `PUT /grid/blobs/{sha256}`.
    pub async fn put_blob(&self, token: &AuthToken, bytes: Vec<u8>) -> Result<BlobStored, ClientError> {
        let digest = Digest::of(&bytes);
        let request = self
            .http
            .put(format!("{}/grid/blobs/{digest}", self.base))
            .header(HEADER_NODE_AUTH, token.expose_secret())
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(bytes);
        read(request.send().await?).await
    }
}
