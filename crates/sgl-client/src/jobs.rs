//! General compute: content-addressed blobs and the job API (`/v1/blobs`, `/v1/jobs`), one
//! method per endpoint, plus [`JobEvents`], a followed job's typed events.
//!
//! What comes back is checked where the caller can check it: a blob must hash to its name and
//! a result's receipts must hold together ([`crate::job_verify`]); a failure is
//! [`Error::JobVerification`] and is never retried.

use reqwest::Method;
use reqwest::header::CONTENT_TYPE;
use sgl_protocol::api::compute::{AttemptSecrets, BlobStored, JobList, JobLog, JobResult, JobView, SubmitJobRequest};
use sgl_protocol::compute::Digest;
use sgl_protocol::ids::JobId;

use crate::client::{Client, Retry, decode, is_event_stream};
use crate::error::Error;
use crate::job_verify::{check_blob, check_job_result};
use crate::stream::{EventSource, aborted};

/// One event of a followed job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobEvent {
    /// An attempt's captured output.
    Log(JobLog),
    /// The job, whenever its state or its count of finished slices changed (without slices).
    State(Box<JobView>),
    /// The job ended; nothing follows.
    Done,
}

/// A followed job (`GET /v1/jobs/{id}/logs?follow=true`): every log as it arrives, the job on
/// each change, then [`JobEvent::Done`]. Pull with [`Self::next`] until it returns `None`.
#[derive(Debug)]
pub struct JobEvents {
    source: EventSource,
    done: bool,
}

impl JobEvents {
    /// The next event, or `None` after [`JobEvent::Done`]. A stream cut before `done` is
    /// [`Error::JobStreamTruncated`]; an `error` event is [`Error::StreamAborted`].
    pub async fn next(&mut self) -> Result<Option<JobEvent>, Error> {
        while !self.done {
            let Some(event) = self.source.next().await? else { return Err(Error::JobStreamTruncated) };
            let bad = |e: serde_json::Error| Error::UnexpectedResponse(format!("a job event is malformed: {e}"));
            match event.event.as_deref() {
                Some("log") => return Ok(Some(JobEvent::Log(serde_json::from_str(&event.data).map_err(bad)?))),
                Some("state") => return Ok(Some(JobEvent::State(serde_json::from_str(&event.data).map_err(bad)?))),
                Some("done") => {
                    self.done = true;
                    return Ok(Some(JobEvent::Done));
                }
                Some("error") => return Err(aborted(&event.data)),
                // Events a newer grid may add are skipped, not fatal.
                _ => {}
            }
        }
        Ok(None)
    }
}

impl Client {
    /// `PUT /v1/blobs/{sha256}`: stores `bytes` under their SHA-256. Idempotent: storing a blob
    /// the grid has is answered with `created: false` and writes nothing.
    pub async fn put_blob(&self, bytes: &[u8]) -> Result<BlobStored, Error> {
        self.require_key()?;
        let name = Digest::of(bytes);
        let path = format!("/v1/blobs/{name}");
        let build = || {
            self.request(Method::PUT, &path)
                .timeout(self.blob_timeout())
                .header(CONTENT_TYPE, "application/octet-stream")
                .body(bytes.to_vec())
        };
        let stored: BlobStored = decode(self.send_with_retry(build, Retry::Yes).await?).await?;
        if stored.sha256 != name {
            return Err(Error::UnexpectedResponse(format!("stored blob {name} as {}", stored.sha256)));
        }
        Ok(stored)
    }

    /// `GET /v1/blobs/{sha256}`: the bytes named `name`, refused
    /// ([`crate::JobVerifyError::BlobMismatch`]) unless they hash to it.
    pub async fn get_blob(&self, name: &Digest) -> Result<Vec<u8>, Error> {
        self.require_key()?;
        let path = format!("/v1/blobs/{name}");
        let build = || self.request(Method::GET, &path).timeout(self.blob_timeout());
        let response = self.send_with_retry(build, Retry::Yes).await?;
        let bytes = response.bytes().await.map_err(Error::Transport)?;
        check_blob(name, &bytes)?;
        Ok(bytes.to_vec())
    }

    /// `POST /v1/jobs`: submits a signed bundle whose files and inputs are already blobs; its
    /// escrow is held from the key's credits. Not retried: a second attempt would submit (and
    /// hold escrow for) a second job.
    pub async fn submit_job(&self, request: &SubmitJobRequest) -> Result<JobView, Error> {
        self.send_json(Method::POST, "/v1/jobs", Some(request), Retry::No).await
    }

    /// `GET /v1/jobs/{id}`: the job, per slice and attempt.
    pub async fn job(&self, id: &JobId) -> Result<JobView, Error> {
        self.get_json(&job_path(id, ""), &[], true).await
    }

    /// `GET /v1/jobs`: the account's jobs, newest first (without slices).
    pub async fn jobs(&self) -> Result<JobList, Error> {
        self.get_json("/v1/jobs", &[], true).await
    }

    /// `GET /v1/jobs/{id}/result`: each slice's accepted outputs and the receipts that agreed,
    /// checked with [`crate::job_verify::check_job_result`]. A job that is not done is a 409.
    pub async fn job_result(&self, id: &JobId) -> Result<JobResult, Error> {
        let result: JobResult = self.get_json(&job_path(id, "/result"), &[], true).await?;
        check_job_result(id, &result)?;
        Ok(result)
    }

    /// `GET /v1/jobs/{id}/logs`: every attempt's captured output so far.
    pub async fn job_logs(&self, id: &JobId) -> Result<Vec<JobLog>, Error> {
        self.get_json(&job_path(id, "/logs"), &[], true).await
    }

    /// `GET /v1/jobs/{id}/logs?follow=true`: the job's events until it ends.
    pub async fn follow_job(&self, id: &JobId) -> Result<JobEvents, Error> {
        self.require_key()?;
        let path = job_path(id, "/logs");
        let build = || self.request(Method::GET, &path).query(&[("follow", "true")]);
        let response = self.send_with_retry(build, Retry::Yes).await?;
        if !is_event_stream(&response) {
            return Err(Error::UnexpectedResponse("following a job did not answer with an event stream".into()));
        }
        Ok(JobEvents { source: EventSource::new(response, self.stream_idle_timeout()), done: false })
    }

    /// `POST /v1/jobs/{id}/attempts/{attempt_id}/secrets`: an attempt's secrets, sealed to its
    /// node (see `sgl_protocol::compute::secrets::seal_secret`). Given once per attempt.
    pub async fn give_secrets(&self, id: &JobId, attempt_id: i64, secrets: &AttemptSecrets) -> Result<(), Error> {
        let path = job_path(id, &format!("/attempts/{attempt_id}/secrets"));
        self.send_json::<_, serde_json::Value>(Method::POST, &path, Some(secrets), Retry::No).await.map(|_| ())
    }

    /// `DELETE /v1/jobs/{id}`: cancels the job; the escrow not yet paid out goes back. A job
    /// that already ended is a 409.
    pub async fn cancel_job(&self, id: &JobId) -> Result<JobView, Error> {
        self.send_json::<(), _>(Method::DELETE, &job_path(id, ""), None, Retry::Yes).await
    }
}

/// `/v1/jobs/{id}{suffix}`, the id percent-encoded (a job id may hold any printable ASCII).
fn job_path(id: &JobId, suffix: &str) -> String {
    let mut path = String::from("/v1/jobs/");
    for byte in id.as_str().bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            path.push(char::from(byte));
        } else {
            path.push_str(&format!("%{byte:02X}"));
        }
    }
    path.push_str(suffix);
    path
}

#[cfg(test)]
mod tests;
