//! Which Blender a machine has: `blender --version`, parsed. The node offers the render class
//! only where this succeeds, and names the version in what it announces (a slice is verified
//! only against renders of the same Blender).

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A Blender release, as `blender --version` names it (`Blender 3.4.1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BlenderVersion {
    /// 3 in 3.4.1.
    pub major: u32,
    /// 4 in 3.4.1.
    pub minor: u32,
    /// 1 in 3.4.1; 0 when the version has two parts (2.79).
    pub patch: u32,
}

impl fmt::Display for BlenderVersion {
    /// `3.4.1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// Why [`detect`] found no usable Blender.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DetectError {
    /// The program could not be started (missing, not executable).
    #[error("could not run {}: {source}", path.display())]
    Spawn {
        /// The program.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `--version` exited with a failure.
    #[error("{} --version failed (exit code {code:?})", path.display())]
    Failed {
        /// The program.
        path: PathBuf,
        /// Its exit code, if it exited (not killed by a signal).
        code: Option<i32>,
    },
    /// The output has no `Blender X.Y[.Z]` line.
    #[error("not a Blender version: {first_line:?}")]
    Unrecognised {
        /// The output's first line.
        first_line: String,
    },
}

impl BlenderVersion {
    /// Reads the version from `blender --version`'s stdout: the first line `Blender X.Y[.Z]`,
    /// with anything after the number ignored (`Blender 4.2.0 LTS`, `Blender 2.79 (sub 0)`,
    /// the official builds' `build date` lines).
    pub fn parse(version_output: &str) -> Result<Self, DetectError> {
        version_output.lines().find_map(parse_line).ok_or_else(|| DetectError::Unrecognised {
            first_line: version_output.lines().next().unwrap_or_default().to_owned(),
        })
    }
}

/// Runs `blender --version` (stdin empty, stderr dropped) and parses what it prints.
pub fn detect(blender: &Path) -> Result<BlenderVersion, DetectError> {
    let output = Command::new(blender)
        .arg("--version")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map_err(|source| DetectError::Spawn { path: blender.to_owned(), source })?;
    if !output.status.success() {
        return Err(DetectError::Failed { path: blender.to_owned(), code: output.status.code() });
    }
    BlenderVersion::parse(&String::from_utf8_lossy(&output.stdout))
}

/// `Blender 3.4.1 ...` → 3.4.1; `None` for any other line.
fn parse_line(line: &str) -> Option<BlenderVersion> {
    let number = line.trim().strip_prefix("Blender ")?.split_whitespace().next()?;
    let mut parts = number.split('.').map(|part| part.parse::<u32>().ok());
    let (major, minor) = (parts.next()??, parts.next()??);
    let patch = match parts.next() {
        None => 0,
        Some(patch) => patch?,
    };
    parts.next().is_none().then_some(BlenderVersion { major, minor, patch })
}
