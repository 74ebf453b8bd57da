//! Memory, CPU time, processes and the wall clock each end a job with their own error, and the
//! job's cgroup is gone after every run, however it ended.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use sgl_sandbox::SandboxError;
use sgl_sandbox::native::{Limit, NativeLimits, NativeReport, NativeRun};

use crate::{JobDirs, enforced, python, sandbox, shell};

#[test]
fn allocating_past_the_memory_limit_kills_the_job() {
    if !enforced(Limit::Memory) {
        return;
    }
    let dirs = JobDirs::new();
    let (input, output) = (dirs.input(), dirs.output());
    // Touches every page of 300 MiB (a bytearray is zeroed, so the pages are really used).
    let mut run = python("data = bytearray(300 << 20); print(len(data))", &input, &output);
    run.limits = NativeLimits { memory_bytes: 64 << 20, ..NativeLimits::default() };
    match sandbox().run(&run) {
        Err(SandboxError::CgroupMemoryLimit { limit_bytes }) => assert_eq!(limit_bytes, 64 << 20),
        other => panic!("expected CgroupMemoryLimit, got {other:?}"),
    }

    // The twin: 20 MiB fits, and the peak is measured over it.
    let mut run = python("data = bytearray(20 << 20); print(len(data))", &input, &output);
    run.limits = NativeLimits { memory_bytes: 64 << 20, ..NativeLimits::default() };
    let report = sandbox().run(&run).expect("20 MiB fits in 64");
    assert_eq!(report.stdout, format!("{}\n", 20 << 20).as_bytes());
    assert!(report.peak_memory_bytes >= 20 << 20, "peak {} bytes", report.peak_memory_bytes);
    assert!(report.peak_memory_bytes <= 64 << 20, "peak {} bytes", report.peak_memory_bytes);
}

#[test]
fn a_busy_loop_is_stopped_by_its_cpu_time_limit() {
    let dirs = JobDirs::new();
    let (input, output) = (dirs.input(), dirs.output());
    let mut run = shell("while :; do :; done", &input, &output);
    run.limits = NativeLimits { cpu_seconds: 1, wall_clock: Duration::from_secs(60), ..NativeLimits::default() };
    match sandbox().run(&run) {
        Err(SandboxError::CpuLimit { cpu_seconds }) => assert_eq!(cpu_seconds, 1),
        other => panic!("expected CpuLimit, got {other:?}"),
    }
}

#[test]
fn a_sleeping_job_is_killed_at_its_deadline() {
    let dirs = JobDirs::new();
    let (input, output) = (dirs.input(), dirs.output());
    let mut run = shell("sleep 60", &input, &output);
    run.limits = NativeLimits { wall_clock: Duration::from_secs(1), ..NativeLimits::default() };
    let started = Instant::now();
    let result = sandbox().run(&run);
    let elapsed = started.elapsed();
    match result {
        Err(SandboxError::DeadlineExceeded { wall_clock }) => assert_eq!(wall_clock, Duration::from_secs(1)),
        other => panic!("expected DeadlineExceeded, got {other:?}"),
    }
    assert!(elapsed >= Duration::from_secs(1), "stopped after {elapsed:?}, before its deadline");
    assert!(elapsed < Duration::from_secs(15), "stopped only after {elapsed:?}");
}

#[test]
fn a_fork_bomb_is_held_to_the_process_limit() {
    if !enforced(Limit::Pids) {
        return;
    }
    // Starts 30 sleepers; dash gives up at the first fork that fails.
    let script = "for i in $(seq 30); do sleep 5 & done; echo started all";
    let run_with = |pids| {
        let dirs = JobDirs::new();
        let (input, output) = (dirs.input(), dirs.output());
        let mut run = shell(script, &input, &output);
        run.limits = NativeLimits { pids, ..NativeLimits::default() };
        sandbox().run(&run).expect("the job runs")
    };
    let held = run_with(8);
    assert_eq!(held.stdout, b"", "the loop did not finish");
    assert!(
        String::from_utf8_lossy(&held.stderr).contains("Cannot fork"),
        "{:?}",
        String::from_utf8_lossy(&held.stderr)
    );
    assert_ne!(held.exit_code, 0);
    // The twin: room for all of them.
    let roomy = run_with(64);
    assert_eq!(roomy.stdout, b"started all\n", "{}", String::from_utf8_lossy(&roomy.stderr));
}

/// Runs `run` on another thread; while it runs, finds the job's process (by a marker in its
/// arguments) and its cgroup directories. Returns the run's result and those directories.
fn run_and_find_cgroup(run: &NativeRun<'_>, marker: &str) -> (Result<NativeReport, SandboxError>, Vec<PathBuf>) {
    std::thread::scope(|scope| {
        let running = scope.spawn(|| sandbox().run(run));
        let give_up = Instant::now() + Duration::from_secs(20);
        let mut dirs = Vec::new();
        while dirs.is_empty() && !running.is_finished() && Instant::now() < give_up {
            dirs = find_cgroup_dirs(marker);
            std::thread::sleep(Duration::from_millis(20));
        }
        (running.join().expect("the run's thread"), dirs)
    })
}

/// The existing cgroup directories of the process whose command line holds `marker`.
fn find_cgroup_dirs(marker: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    for entry in entries.flatten() {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if !String::from_utf8_lossy(&cmdline).contains(marker) {
            continue;
        }
        let cgroups = std::fs::read_to_string(entry.path().join("cgroup")).unwrap_or_default();
        return cgroups
            .lines()
            .filter(|line| line.contains("/sgl-job-"))
            .filter_map(|line| {
                let mut parts = line.splitn(3, ':');
                let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
                let hierarchy = if controllers.is_empty() { String::new() } else { format!("/{controllers}") };
                Some(PathBuf::from(format!("/sys/fs/cgroup{hierarchy}{path}")))
            })
            .filter(|dir| dir.is_dir())
            .collect();
    }
    Vec::new()
}

#[test]
fn the_cgroup_is_removed_after_a_normal_end_a_kill_and_an_oom() {
    if !enforced(Limit::Memory) {
        return;
    }
    let cases: [(&str, &str, NativeLimits); 3] = [
        ("end", "sleep 1; exit 3", NativeLimits::default()),
        ("kill", "sleep 60", NativeLimits { wall_clock: Duration::from_secs(2), ..NativeLimits::default() }),
        (
            "oom",
            "sleep 1; python3 -c 'bytearray(300 << 20)'",
            NativeLimits { memory_bytes: 64 << 20, ..NativeLimits::default() },
        ),
    ];
    for (case, script, limits) in cases {
        let job_dirs = JobDirs::new();
        let (input, output) = (job_dirs.input(), job_dirs.output());
        let marker = format!("cgroup-marker-{case}-{}", std::process::id());
        let mut run = shell(script, &input, &output);
        run.args.push(marker.clone());
        run.limits = limits;
        let (result, cgroup_dirs) = run_and_find_cgroup(&run, &marker);
        match (case, &result) {
            ("end", Ok(report)) => assert_eq!(report.exit_code, 3),
            ("kill", Err(SandboxError::DeadlineExceeded { .. })) => {}
            ("oom", Err(SandboxError::CgroupMemoryLimit { .. })) => {}
            _ => panic!("{case}: unexpected {result:?}"),
        }
        assert!(!cgroup_dirs.is_empty(), "{case}: the job ran in a cgroup of its own");
        for dir in cgroup_dirs {
            assert!(!dir.exists(), "{case}: {dir:?} is left behind");
        }
    }
}
