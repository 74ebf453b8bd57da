//! The proof that a QEMU machine is gone, looked up where the kernel shows it rather than in the
//! backend's own records: a process whose command line names the machine (`-name sgl-…` in
//! `/proc/*/cmdline`), and its folder. Nothing else of a machine is ever on the host: its disk,
//! socket and logs are in the folder, its network is QEMU's own, and the overlay its disk was
//! made from was mounted only in a namespace that ended with the build.

use std::fs;
use std::path::Path;

use crate::backend::Leftover;

/// Everything of the machine named `name` with the folder `dir` still on the host.
pub(crate) fn scan(name: &str, dir: &Path) -> Vec<Leftover> {
    let mut found: Vec<Leftover> = processes_named(name)
        .into_iter()
        .map(|pid| Leftover { kind: "process", what: format!("{pid} (-name {name})") })
        .collect();
    if dir.exists() {
        found.push(Leftover { kind: "directory", what: dir.display().to_string() });
    }
    found
}

/// The processes whose command line has the arguments `-name NAME`.
pub(crate) fn processes_named(name: &str) -> Vec<i32> {
    let Ok(entries) = fs::read_dir("/proc") else { return Vec::new() };
    let pids = entries.flatten().filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok());
    pids.filter(|pid| fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmdline| names_vm(&cmdline, name))).collect()
}

/// Whether a NUL-separated command line has `-name` immediately followed by `name`.
pub(crate) fn names_vm(cmdline: &[u8], name: &str) -> bool {
    let args: Vec<&[u8]> = cmdline.split(|byte| *byte == 0).collect();
    args.windows(2).any(|pair| pair[0] == b"-name" && pair[1] == name.as_bytes())
}
