//! Process hardening for every `sgl` command, and memory for key bytes that stays out of swap
//! and core dumps (protocol §5.7, S9).
//!
//! [`harden_process`] makes the process non-dumpable and non-attachable where the OS allows: on
//! Linux `prctl(PR_SET_DUMPABLE, 0)` (no ptrace by same-user processes, no core, `/proc/<pid>/mem`
//! closed) and `RLIMIT_CORE = 0`; on macOS `ptrace(PT_DENY_ATTACH)` and `RLIMIT_CORE = 0`. It
//! reports what applied instead of failing, so `sgl status` and the log can say it. Like the seed
//! it covers this process only: a llama-server child must harden itself.
//!
//! [`LockedSecret`] holds key bytes in their own anonymous mapping, `mlock`ed (and
//! `MADV_DONTDUMP` on Linux), zeroised and unlocked on drop. Locking can fail under a small
//! `RLIMIT_MEMLOCK`; that is reported by [`LockedSecret::protection`], not fatal.

// This module is the node's only use of `unsafe`: each block is one libc call or the raw-slice
// view of the mapping this module owns, with its invariant written next to it.
#![allow(unsafe_code)]

use std::ptr::NonNull;

use serde::Serialize;
use zeroize::Zeroize;

/// One hardening measure and whether it took effect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HardeningMeasure {
    /// What was attempted, e.g. `prctl(PR_SET_DUMPABLE, 0)`.
    pub name: &'static str,
    /// Whether the call succeeded.
    pub applied: bool,
    /// The OS error when it did not.
    pub error: Option<String>,
}

/// What [`harden_process`] did, for `sgl status` and the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HardeningReport {
    /// The OS family the measures were chosen for (`linux`, `macos`, ...).
    pub os: &'static str,
    /// Each measure attempted, in order; empty where the OS has none we know.
    pub measures: Vec<HardeningMeasure>,
}

impl HardeningReport {
    /// True when at least one measure was attempted and all of them applied.
    pub fn fully_applied(&self) -> bool {
        !self.measures.is_empty() && self.measures.iter().all(|m| m.applied)
    }
}

/// Harden this process: call first thing in `main`, for every subcommand.
pub fn harden_process() -> HardeningReport {
    let mut measures = Vec::new();
    #[cfg(target_os = "linux")]
    {
        // SAFETY: PR_SET_DUMPABLE takes one integer argument and touches no memory of ours.
        let rc = unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0 as libc::c_ulong, 0, 0, 0) };
        measures.push(measure("prctl(PR_SET_DUMPABLE, 0)", rc));
    }
    #[cfg(target_os = "macos")]
    {
        // SAFETY: PT_DENY_ATTACH ignores pid, addr and data; a null addr is what Apple documents.
        let rc = unsafe { libc::ptrace(libc::PT_DENY_ATTACH, 0, std::ptr::null_mut(), 0) };
        measures.push(measure("ptrace(PT_DENY_ATTACH)", rc));
    }
    #[cfg(unix)]
    {
        let zero = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: `zero` is a valid rlimit that outlives the call, which only reads it.
        let rc = unsafe { libc::setrlimit(libc::RLIMIT_CORE, &zero) };
        measures.push(measure("setrlimit(RLIMIT_CORE, 0)", rc));
    }
    HardeningReport { os: std::env::consts::OS, measures }
}

/// Whether this process is dumpable (`prctl(PR_GET_DUMPABLE)`), i.e. [`harden_process`] has not
/// applied or something re-enabled it. `None` off Linux or when the call fails.
pub fn is_dumpable() -> Option<bool> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: PR_GET_DUMPABLE takes no arguments and returns the flag.
        let rc = unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) };
        if rc >= 0 {
            return Some(rc != 0);
        }
    }
    None
}

/// The real user id of this process (for `launchctl` domains such as `gui/<uid>`).
#[cfg(unix)]
pub fn current_uid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

#[cfg(unix)]
fn measure(name: &'static str, rc: libc::c_int) -> HardeningMeasure {
    let error = (rc != 0).then(|| std::io::Error::last_os_error().to_string());
    HardeningMeasure { name, applied: rc == 0, error }
}

/// How well a [`LockedSecret`]'s memory is protected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemoryProtection {
    /// `mlock` succeeded: the bytes are not swapped out.
    pub locked: bool,
    /// `madvise(MADV_DONTDUMP)` succeeded (Linux only): the bytes are left out of core dumps.
    pub excluded_from_core_dumps: bool,
    /// Why locking or the advice failed, when one did.
    pub error: Option<String>,
}

/// Allocating a [`LockedSecret`] failed (mapping memory, not locking it, which is best effort).
#[derive(Debug, thiserror::Error)]
#[error("cannot map {len} bytes for a secret: {source}")]
pub struct LockedSecretError {
    /// Bytes requested.
    pub len: usize,
    /// The OS error.
    #[source]
    pub source: std::io::Error,
}

/// Key bytes in their own page-aligned anonymous mapping, locked in RAM where allowed, kept out
/// of core dumps on Linux, and zeroised, unlocked and unmapped on drop.
pub struct LockedSecret {
    ptr: NonNull<u8>,
    len: usize,
    mapped: usize,
    protection: MemoryProtection,
}

// SAFETY: the mapping is owned exclusively by this value (like a `Box<[u8]>`); shared access only
// hands out `&[u8]`, mutation needs `&mut self`.
unsafe impl Send for LockedSecret {}
// SAFETY: as above; `&LockedSecret` only allows reads.
unsafe impl Sync for LockedSecret {}

impl LockedSecret {
    /// `len` zero bytes, locked where the OS allows (see [`LockedSecret::protection`]).
    pub fn zeroed(len: usize) -> Result<Self, LockedSecretError> {
        let mapped = round_up_to_page(len.max(1));
        // SAFETY: an anonymous private mapping with no address hint; the result is checked below.
        let raw = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                mapped,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANON,
                -1,
                0,
            )
        };
        if raw == libc::MAP_FAILED {
            return Err(LockedSecretError { len, source: std::io::Error::last_os_error() });
        }
        let ptr = NonNull::new(raw.cast::<u8>())
            .ok_or_else(|| LockedSecretError { len, source: std::io::Error::other("mmap returned null") })?;
        let protection = protect(raw, mapped);
        Ok(Self { ptr, len, mapped, protection })
    }

    /// A locked copy of `bytes`. The caller should zeroise its own copy afterwards.
    pub fn copy_from(bytes: &[u8]) -> Result<Self, LockedSecretError> {
        let mut secret = Self::zeroed(bytes.len())?;
        secret.as_mut_slice().copy_from_slice(bytes);
        Ok(secret)
    }

    /// The secret bytes.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `ptr` points at `mapped >= len` readable bytes owned by `self` until drop.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// The secret bytes, writable.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_slice`, and `&mut self` makes this the only view.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }

    /// Whether the memory is locked and kept out of core dumps, and why not when it is not.
    pub fn protection(&self) -> &MemoryProtection {
        &self.protection
    }
}

impl std::fmt::Debug for LockedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockedSecret").field("len", &self.len).field("protection", &self.protection).finish()
    }
}

impl Drop for LockedSecret {
    fn drop(&mut self) {
        let raw = self.ptr.as_ptr().cast::<libc::c_void>();
        // SAFETY: the whole mapping is ours and still mapped read-write.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.mapped) }.zeroize();
        if self.protection.locked {
            // SAFETY: unlocks exactly the range locked in `zeroed`.
            unsafe { libc::munlock(raw, self.mapped) };
        }
        // SAFETY: unmaps exactly the mapping created in `zeroed`; no view of it outlives `self`.
        unsafe { libc::munmap(raw, self.mapped) };
    }
}

/// Locks the pages holding `value` in RAM and, on Linux, leaves them out of core dumps: for
/// key material that lives as long as the process (the running node's identity), where the
/// key types keep their bytes inline. The pages are never unlocked; they may hold neighbouring
/// data too, which is harmless. Best effort, like [`LockedSecret`].
pub fn lock_in_place<T>(value: &T) -> MemoryProtection {
    let page = page_size();
    let start = std::ptr::from_ref(value) as usize;
    let end = start + std::mem::size_of::<T>().max(1);
    let aligned = start - start % page;
    let len = round_up_to_page(end - aligned);
    protect(aligned as *mut libc::c_void, len)
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(page).ok().filter(|p| *p > 0).unwrap_or(4096)
}

fn round_up_to_page(len: usize) -> usize {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    let page = usize::try_from(page).ok().filter(|p| *p > 0).unwrap_or(4096);
    len.div_ceil(page) * page
}

fn protect(raw: *mut libc::c_void, mapped: usize) -> MemoryProtection {
    let mut errors = Vec::new();
    // SAFETY: `raw..raw + mapped` is live, page-aligned memory of this process; mlock only
    // pins it.
    let locked = unsafe { libc::mlock(raw, mapped) } == 0;
    if !locked {
        errors.push(format!("mlock: {}", std::io::Error::last_os_error()));
    }
    let excluded_from_core_dumps = exclude_from_core_dumps(raw, mapped, &mut errors);
    let error = (!errors.is_empty()).then(|| errors.join("; "));
    MemoryProtection { locked, excluded_from_core_dumps, error }
}

/// `madvise(MADV_DONTDUMP)` over the mapping; Linux only.
#[cfg(target_os = "linux")]
fn exclude_from_core_dumps(raw: *mut libc::c_void, mapped: usize, errors: &mut Vec<String>) -> bool {
    // SAFETY: `raw..raw + mapped` is a live mapping owned by the caller; MADV_DONTDUMP only
    // changes how the range is dumped.
    let excluded = unsafe { libc::madvise(raw, mapped, libc::MADV_DONTDUMP) } == 0;
    if !excluded {
        errors.push(format!("madvise(MADV_DONTDUMP): {}", std::io::Error::last_os_error()));
    }
    excluded
}

/// No per-range dump exclusion off Linux (`RLIMIT_CORE = 0` from [`harden_process`] covers it).
#[cfg(not(target_os = "linux"))]
fn exclude_from_core_dumps(_raw: *mut libc::c_void, _mapped: usize, _errors: &mut Vec<String>) -> bool {
    false
}

#[cfg(test)]
mod tests;
