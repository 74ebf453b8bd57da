//! Paths: a job id is one path segment whatever it holds.

use super::*;

#[test]
fn a_job_id_is_one_encoded_path_segment() {
    let plain: JobId = "0f6c9a3e-7d1b-4e8a-9c2f-1a2b3c4d5e6f".parse().unwrap();
    assert_eq!(job_path(&plain, "/logs"), "/v1/jobs/0f6c9a3e-7d1b-4e8a-9c2f-1a2b3c4d5e6f/logs");
    let odd: JobId = "a/../b?c#d%".parse().unwrap();
    assert_eq!(job_path(&odd, ""), "/v1/jobs/a%2F..%2Fb%3Fc%23d%25");
}
