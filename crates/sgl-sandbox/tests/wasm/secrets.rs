//! The job's secrets: a read-only `/secrets` preopen (descriptor 5) only when the run has one,
//! read by the example `secret-xor` guest.

use sgl_sandbox::WasmRun;

use super::{JobDirs, job, sandbox};

const SECRET_XOR: &str =
    include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/wasm/secret-xor/secret-xor.wat"));

#[test]
fn a_run_with_secrets_reads_them_under_slash_secrets() {
    let dirs = JobDirs::new();
    let secrets = tempfile::tempdir().unwrap();
    std::fs::write(secrets.path().join("token"), b"s3cret").unwrap();
    let (input, output) = (dirs.input(), dirs.output());
    let run = WasmRun { secrets_dir: Some(secrets.path()), ..job(SECRET_XOR.as_bytes(), &input, &output) };
    let report = sandbox().run(&run).unwrap();
    assert_eq!(report.exit_code, 0);
    let written = std::fs::read(dirs.output().join("token.xor")).unwrap();
    assert_eq!(written.iter().map(|b| b ^ 0xff).collect::<Vec<u8>>(), b"s3cret");
}

#[test]
fn a_run_without_secrets_has_no_slash_secrets() {
    let dirs = JobDirs::new();
    let report = sandbox().run(&job(SECRET_XOR.as_bytes(), &dirs.input(), &dirs.output())).unwrap();
    assert_eq!(report.exit_code, 10, "descriptor 5 does not exist");
}
