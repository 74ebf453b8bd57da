//! Reporting job outcomes to the grid with retries (seed weakness R3: one attempt, then
//! silence). A call is retried with backoff while the grid is unreachable, overloaded or
//! failing; a refusal (4xx) is final. Retries are safe: the grid accepts a repeated chunk that
//! it already took, and a completion or failure repeated after the job finished answers 404,
//! which here means "already done".

use std::future::Future;
use std::time::Duration;

use sgl_protocol::ids::JobId;

use crate::client::ClientError;

/// Waits between attempts: five retries over about eight seconds.
const BACKOFF_MS: [u64; 5] = [250, 500, 1_000, 2_000, 4_000];

/// Calls `attempt` until it succeeds, fails for good, or the retries run out. `gone` is the
/// answer to use when a retry finds the job already finished (404 after a first attempt whose
/// answer was lost).
pub(crate) async fn with_retries<T, F, Fut>(
    what: &str,
    job_id: &JobId,
    gone: T,
    mut attempt: F,
) -> Result<T, ClientError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ClientError>>,
{
    let mut tries = 0usize;
    loop {
        match attempt().await {
            Ok(answer) => return Ok(answer),
            Err(error) if tries > 0 && error.status() == Some(404) => {
                tracing::info!(job_id = %job_id, what, "the grid had already finished this job");
                return Ok(gone);
            }
            Err(error) if error.is_retryable() && tries < BACKOFF_MS.len() => {
                tracing::warn!(job_id = %job_id, what, %error, attempt = tries + 1, "retrying");
                tokio::time::sleep(Duration::from_millis(BACKOFF_MS[tries])).await;
                tries += 1;
            }
            Err(error) => return Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    //! Which errors are retried, and the lost-answer case.

    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn api(status: u16) -> ClientError {
        ClientError::Api { status, message: String::new() }
    }

    #[tokio::test(start_paused = true)]
    async fn retries_server_errors_then_succeeds() {
        let calls = AtomicUsize::new(0);
        let job: JobId = "job-1".parse().unwrap();
        let answer = with_retries("complete", &job, 0, || async {
            if calls.fetch_add(1, Ordering::SeqCst) < 2 { Err(api(503)) } else { Ok(7) }
        })
        .await;
        assert_eq!(answer.unwrap(), 7);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_refusal_is_final_and_a_late_404_means_done() {
        let job: JobId = "job-2".parse().unwrap();
        let calls = AtomicUsize::new(0);
        let refused = with_retries("fail", &job, 0, || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err::<i32, _>(api(400))
        })
        .await;
        assert_eq!((refused.unwrap_err().status(), calls.load(Ordering::SeqCst)), (Some(400), 1));
        // A first-attempt 404 is an error; after a lost answer it means the job is done.
        assert!(with_retries("fail", &job, 0, || async { Err::<i32, _>(api(404)) }).await.is_err());
        let calls = AtomicUsize::new(0);
        let late = with_retries("complete", &job, -1, || async {
            if calls.fetch_add(1, Ordering::SeqCst) == 0 { Err(api(502)) } else { Err(api(404)) }
        })
        .await;
        assert_eq!(late.unwrap(), -1);
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_after_the_last_retry() {
        let job: JobId = "job-3".parse().unwrap();
        let calls = AtomicUsize::new(0);
        let result = with_retries("chunk", &job, 0, || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err::<i32, _>(api(500))
        })
        .await;
        assert!(result.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), BACKOFF_MS.len() + 1);
    }
}
