//! How an ending is classified, how logs are capped, and which rlimits a job gets.

use super::*;

fn ending(exit_code: i32, cpu_millis: u64) -> Ending {
    Ending { timed_out: false, exit_code, cpu_time: Duration::from_millis(cpu_millis), oom_kills: 0 }
}

fn limits() -> NativeLimits {
    NativeLimits {
        cpu_seconds: 2,
        wall_clock: Duration::from_secs(9),
        memory_bytes: 1 << 20,
        ..NativeLimits::default()
    }
}

#[test]
fn a_normal_exit_is_no_error_whatever_its_code() {
    for code in [0, 1, 2, 137, 152] {
        assert!(classify(&ending(code, 100), &limits()).is_ok(), "exit {code} with little CPU");
    }
}

#[test]
fn the_deadline_comes_first_then_memory_then_cpu() {
    let everything = Ending { timed_out: true, exit_code: 137, cpu_time: Duration::from_secs(5), oom_kills: 1 };
    assert!(matches!(
        classify(&everything, &limits()),
        Err(SandboxError::DeadlineExceeded { wall_clock }) if wall_clock == Duration::from_secs(9)
    ));
    let oom_and_cpu = Ending { timed_out: false, ..everything };
    assert!(matches!(
        classify(&oom_and_cpu, &limits()),
        Err(SandboxError::CgroupMemoryLimit { limit_bytes }) if limit_bytes == 1 << 20
    ));
}

#[test]
fn the_cpu_limit_needs_its_signal_and_the_time_used() {
    for code in [152, 137] {
        for cpu_millis in [1800, 2000, 3000] {
            assert!(matches!(
                classify(&ending(code, cpu_millis), &limits()),
                Err(SandboxError::CpuLimit { cpu_seconds: 2 })
            ));
        }
        assert!(classify(&ending(code, 1799), &limits()).is_ok(), "exit {code} well before the limit is the job's own");
    }
    assert!(classify(&ending(1, 5000), &limits()).is_ok(), "a plain failure after a long computation");
}

#[test]
fn logs_keep_the_first_bytes_and_say_when_more_came() {
    let long = vec![b'x'; 20_000];
    assert_eq!(read_capped(Some(&long[..]), 10_000), (vec![b'x'; 10_000], true));
    assert_eq!(read_capped(Some(&long[..]), 20_000), (long.clone(), false), "exactly at the cap");
    assert_eq!(read_capped(None::<&[u8]>, 5), (Vec::new(), false));
}

#[test]
fn rlimits_cover_cpu_files_size_and_cores_and_processes_only_when_asked() {
    let limits =
        NativeLimits { cpu_seconds: 3, open_files: 64, output_bytes: 1000, pids: 8, ..NativeLimits::default() };
    let settings = rlimits(&limits, false);
    let wanted = |resource| settings.iter().find(|setting| setting.resource == resource).map(|s| (s.soft, s.hard));
    assert_eq!(wanted(Resource::Cpu), Some((3, 4)), "SIGXCPU at the limit, SIGKILL a second later");
    assert_eq!(wanted(Resource::Nofile), Some((64, 64)));
    assert_eq!(wanted(Resource::Fsize), Some((1001, 1001)));
    assert_eq!(wanted(Resource::Core), Some((0, 0)));
    assert_eq!(wanted(Resource::Nproc), None);
    let with_nproc = rlimits(&limits, true);
    assert!(with_nproc.iter().any(|setting| setting.resource == Resource::Nproc && setting.hard == 8));
}
