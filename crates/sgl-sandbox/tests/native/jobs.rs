//! A job reads `/in`, writes `/out`, and the report says what happened: exit code, logs,
//! output, usage; the job sees only the environment it was given; its logs are capped.

use sgl_sandbox::OutputUsage;
use sgl_sandbox::native::{Measured, NativeLimits, ReadOnlyBind};

use crate::{JobDirs, job, sandbox, shell};

#[test]
fn a_job_reads_in_writes_out_and_the_report_is_right() {
    let dirs = JobDirs::new();
    let (input, output) = (dirs.input(), dirs.output());
    std::fs::write(input.join("data.txt"), "hello sandbox").expect("write input");
    let script = "tr a-z A-Z < /in/data.txt > /out/result.txt && mkdir /out/sub && echo done && echo warn >&2; exit 7";
    let report = sandbox().run(&shell(script, &input, &output)).expect("the job runs");

    assert_eq!(report.exit_code, 7);
    assert_eq!(report.stdout, b"done\n");
    assert_eq!(report.stderr, b"warn\n");
    assert!(!report.stdout_truncated && !report.stderr_truncated);
    assert_eq!(std::fs::read_to_string(output.join("result.txt")).expect("the job wrote /out"), "HELLO SANDBOX");
    assert_eq!(report.output, OutputUsage { bytes: 13, files: 2 }, "result.txt and sub/");
    assert!(report.peak_memory_bytes > 0, "a shell uses some memory");
    assert!(report.wall_time > std::time::Duration::ZERO);
    let capabilities = sandbox().capabilities();
    let expected_cpu = if capabilities.cpu_usage_cgroup.is_some() { Measured::Cgroup } else { Measured::Rusage };
    assert_eq!(report.cpu_measured_by, expected_cpu);
    let expected_memory = if capabilities.memory_cgroup.is_some() { Measured::Cgroup } else { Measured::Rusage };
    assert_eq!(report.peak_memory_measured_by, expected_memory);
    assert_eq!(std::fs::read_to_string(input.join("data.txt")).expect("input intact"), "hello sandbox");
}

#[test]
fn the_job_sees_exactly_the_environment_it_was_given_and_starts_in_tmp() {
    let dirs = JobDirs::new();
    let (input, output) = (dirs.input(), dirs.output());
    let mut run = job("/usr/bin/env", &[], &input, &output);
    run.env.push(("GREETING".to_owned(), "hi there".to_owned()));
    let report = sandbox().run(&run).expect("the job runs");
    assert_eq!(report.exit_code, 0);
    // bwrap sets PWD when it changes to the working directory.
    assert_eq!(String::from_utf8_lossy(&report.stdout), "PATH=/usr/bin:/bin\nGREETING=hi there\nPWD=/tmp\n");
}

#[test]
fn a_read_only_bind_is_visible_and_read_only() {
    let dirs = JobDirs::new();
    let (input, output) = (dirs.input(), dirs.output());
    let extra = dirs.root.path().join("model");
    std::fs::create_dir(&extra).expect("mkdir");
    std::fs::write(extra.join("weights.bin"), "weights").expect("write");
    let mut run =
        shell("cat /opt/model/weights.bin; echo x > /opt/model/new 2>/dev/null; echo \" $?\"", &input, &output);
    run.read_only_binds.push(ReadOnlyBind { host_path: extra.clone(), sandbox_path: "/opt/model".into() });
    let report = sandbox().run(&run).expect("the job runs");
    assert_eq!(String::from_utf8_lossy(&report.stdout), "weights 2\n", "read works, the write fails");
    assert!(!extra.join("new").exists());
}

#[test]
fn logs_past_the_cap_are_cut_and_marked_while_the_job_carries_on() {
    let dirs = JobDirs::new();
    let (input, output) = (dirs.input(), dirs.output());
    let mut run = shell("head -c 100000 /dev/zero; echo ok >&2", &input, &output);
    run.limits = NativeLimits { log_bytes: 1000, ..NativeLimits::default() };
    let report = sandbox().run(&run).expect("the job runs");
    assert_eq!(report.exit_code, 0, "every write succeeded");
    assert_eq!(report.stdout, vec![0u8; 1000]);
    assert!(report.stdout_truncated);
    assert_eq!(report.stderr, b"ok\n");
    assert!(!report.stderr_truncated);
}

#[test]
fn a_missing_input_directory_or_bind_is_an_io_error_naming_it() {
    let dirs = JobDirs::new();
    let (missing, output) = (dirs.root.path().join("nowhere"), dirs.output());
    match sandbox().run(&shell("true", &missing, &output)) {
        Err(sgl_sandbox::SandboxError::Io { path, .. }) => assert_eq!(path, missing),
        other => panic!("expected Io, got {other:?}"),
    }
    let input = dirs.input();
    let mut run = shell("true", &input, &output);
    run.read_only_binds.push(ReadOnlyBind { host_path: missing.clone(), sandbox_path: "/opt/x".into() });
    match sandbox().run(&run) {
        Err(sgl_sandbox::SandboxError::Io { path, .. }) => assert_eq!(path, missing),
        other => panic!("expected Io, got {other:?}"),
    }
}
