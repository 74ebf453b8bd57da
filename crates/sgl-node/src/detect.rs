//! What this machine is, read for real rather than assumed (the seed node reports 16 GiB and
//! `apple_metal` on every Linux machine, R4/S5): CPU, cores, memory, GPUs, TEE devices, kernel
//! lockdown, OS, and the running binary's sha256.
//!
//! Parsing is separate from reading, so the parsers are tested on fixed text.

use std::path::Path;
use std::process::Command;

use serde::Serialize;

/// A GPU this machine offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Gpu {
    /// Model name.
    pub name: String,
    /// `cuda`, `metal`.
    pub backend: String,
    /// Video memory in MiB (0 when unknown, as for Apple's unified memory).
    pub vram_mb: u64,
}

/// Trusted-execution features visible to this OS.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TeeCapabilities {
    /// Intel TDX guest device (`/dev/tdx_guest`).
    pub tdx: bool,
    /// AMD SEV-SNP guest device (`/dev/sev-guest`).
    pub sev_snp: bool,
    /// Intel SGX enclave device (`/dev/sgx_enclave`).
    pub sgx: bool,
    /// Apple Secure Enclave.
    pub secure_enclave: bool,
}

/// Everything `sgl detect` reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hardware {
    /// CPU model name.
    pub cpu_model: String,
    /// Logical CPUs available to this process.
    pub cpu_cores: u32,
    /// Physical memory in GiB.
    pub memory_gb: f64,
    /// GPUs found.
    pub gpus: Vec<Gpu>,
    /// TEE devices found.
    pub tee: TeeCapabilities,
    /// The tier this machine can honestly claim: `tdx_cc` with a confidential-computing guest
    /// device, `apple_se` on a Mac with a Secure Enclave, otherwise `linux_se` / `none`.
    pub tee_type: String,
    /// Kernel lockdown mode (Linux) or SIP state (macOS), when readable.
    pub lockdown: Option<String>,
    /// OS name and version.
    pub os: String,
    /// Kernel release.
    pub kernel: String,
}

/// The model name and processor count in `/proc/cpuinfo`.
pub fn parse_cpuinfo(text: &str) -> (Option<String>, usize) {
    let model = text.lines().find_map(|line| {
        line.strip_prefix("model name").map(|rest| rest.trim_start_matches([' ', '\t', ':']).trim().to_owned())
    });
    let n_processors = text.lines().filter(|line| line.starts_with("processor")).count();
    (model, n_processors)
}

/// `MemTotal` from `/proc/meminfo`, in KiB.
pub fn parse_meminfo(text: &str) -> Option<u64> {
    text.lines().find_map(|line| line.strip_prefix("MemTotal:"))?.trim().trim_end_matches("kB").trim().parse().ok()
}

/// The selected mode in `/sys/kernel/security/lockdown`, e.g. `none` from
/// `[none] integrity confidentiality`.
pub fn parse_lockdown(text: &str) -> Option<String> {
    let start = text.find('[')? + 1;
    let end = start + text[start..].find(']')?;
    Some(text[start..end].to_owned())
}

/// GPUs from `nvidia-smi --query-gpu=name,memory.total --format=csv,noheader,nounits`.
pub fn parse_nvidia_smi(csv: &str) -> Vec<Gpu> {
    csv.lines()
        .filter_map(|line| {
            let (name, memory) = line.rsplit_once(',')?;
            Some(Gpu { name: name.trim().to_owned(), backend: "cuda".into(), vram_mb: memory.trim().parse().ok()? })
        })
        .collect()
}

/// `PRETTY_NAME` from `/etc/os-release`.
pub fn parse_os_release(text: &str) -> Option<String> {
    text.lines().find_map(|line| line.strip_prefix("PRETTY_NAME=")).map(|v| v.trim_matches('"').to_owned())
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

fn output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Reads this machine.
pub fn detect() -> Hardware {
    let cpu_cores = std::thread::available_parallelism().map_or(1, |n| u32::try_from(n.get()).unwrap_or(u32::MAX));
    let tee = TeeCapabilities {
        tdx: Path::new("/dev/tdx_guest").exists(),
        sev_snp: Path::new("/dev/sev-guest").exists(),
        sgx: Path::new("/dev/sgx_enclave").exists(),
        secure_enclave: cfg!(target_os = "macos") && cfg!(target_arch = "aarch64"),
    };
    let tee_type = if tee.tdx || tee.sev_snp {
        "tdx_cc"
    } else if tee.secure_enclave {
        "apple_se"
    } else if cfg!(target_os = "linux") {
        "linux_se"
    } else {
        "none"
    };
    let mut gpus = output("nvidia-smi", &["--query-gpu=name,memory.total", "--format=csv,noheader,nounits"])
        .map(|csv| parse_nvidia_smi(&csv))
        .unwrap_or_default();
    if cfg!(target_os = "macos") {
        gpus.push(Gpu { name: "Apple GPU".into(), backend: "metal".into(), vram_mb: 0 });
    }
    let (cpu_model, memory_gb, lockdown, os) = platform();
    Hardware {
        cpu_model: cpu_model.unwrap_or_else(|| "unknown CPU".into()),
        cpu_cores,
        memory_gb,
        gpus,
        tee,
        tee_type: tee_type.into(),
        lockdown,
        os: os.unwrap_or_else(|| std::env::consts::OS.into()),
        kernel: output("uname", &["-r"]).unwrap_or_default(),
    }
}

/// CPU model, memory (GiB), lockdown/SIP and OS name for this platform.
fn platform() -> (Option<String>, f64, Option<String>, Option<String>) {
    if cfg!(target_os = "macos") {
        let memory = output("sysctl", &["-n", "hw.memsize"]).and_then(|b| b.parse::<u64>().ok()).unwrap_or(0);
        let sip = output("csrutil", &["status"])
            .map(|s| if s.contains("enabled") { "sip enabled" } else { "sip disabled" }.to_owned());
        let os = output("sw_vers", &["-productVersion"]).map(|v| format!("macOS {v}"));
        (output("sysctl", &["-n", "machdep.cpu.brand_string"]), memory as f64 / 1_073_741_824.0, sip, os)
    } else {
        let (model, _) = read("/proc/cpuinfo").map(|t| parse_cpuinfo(&t)).unwrap_or((None, 0));
        let memory_kib = read("/proc/meminfo").and_then(|t| parse_meminfo(&t)).unwrap_or(0);
        let lockdown = read("/sys/kernel/security/lockdown").and_then(|t| parse_lockdown(&t));
        (model, memory_kib as f64 / 1_048_576.0, lockdown, read("/etc/os-release").and_then(|t| parse_os_release(&t)))
    }
}

/// sha256 hex of the running executable, as reported to the grid's allowlist.
pub fn binary_sha256() -> std::io::Result<String> {
    sgl_engine::model_file::sha256_file(&std::env::current_exe()?)
}

#[cfg(test)]
mod tests;
