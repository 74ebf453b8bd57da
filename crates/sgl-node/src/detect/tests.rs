//! Parsers on fixed text, and a real reading of this machine.

use super::*;

#[test]
fn cpuinfo_meminfo_and_os_release() {
    let cpuinfo =
        "processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t: avx2\n\nprocessor\t: 1\nmodel name\t: AMD EPYC 7B13\n";
    assert_eq!(parse_cpuinfo(cpuinfo), (Some("AMD EPYC 7B13".to_owned()), 2));
    assert_eq!(parse_meminfo("MemTotal:       24563208 kB\nMemFree: 1 kB\n"), Some(24_563_208));
    assert_eq!(parse_meminfo("nothing"), None);
    let os = "NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n";
    assert_eq!(parse_os_release(os).as_deref(), Some("Debian GNU/Linux 12 (bookworm)"));
}

#[test]
fn lockdown_and_nvidia_smi() {
    assert_eq!(parse_lockdown("none [integrity] confidentiality\n").as_deref(), Some("integrity"));
    assert_eq!(parse_lockdown("garbage"), None);
    let gpus = parse_nvidia_smi("NVIDIA GeForce RTX 4090, 24564\nNVIDIA A100-SXM4-80GB, 81920\nbroken line\n");
    assert_eq!(gpus.len(), 2);
    assert_eq!(gpus[0], Gpu { name: "NVIDIA GeForce RTX 4090".into(), backend: "cuda".into(), vram_mb: 24_564 });
}

#[test]
fn this_machine_is_read_not_assumed() {
    let hardware = detect();
    let cores = std::thread::available_parallelism().unwrap().get() as u32;
    assert_eq!(hardware.cpu_cores, cores);
    assert!(hardware.memory_gb > 0.5, "{hardware:?}");
    if cfg!(target_os = "linux") {
        assert_ne!(hardware.cpu_model, "unknown CPU");
        assert!(!hardware.kernel.is_empty());
        assert!(hardware.gpus.iter().all(|gpu| gpu.backend != "metal"), "no fake apple_metal on Linux");
    }
    assert_eq!(binary_sha256().unwrap().len(), 64);
}
