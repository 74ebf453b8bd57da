//! Keys at rest: `keypair.json` in the seed's 64-integer layout, `node.json` (the registration
//! and its bearer token) and the payout key file, with the seed's permission rules (directories
//! 0700, files 0600, looser files tightened or refused).
//!
//! This is the crate's only file-system code. It is here, not in the node agent, because the
//! byte layout and the permission rules are both part of the key-custody contract that every
//! tool touching a node's keys (`sgl`, test fixtures, migration scripts) must share.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::identity::NodeIdentity;
use crate::ids::{AuthToken, NodeId};
use crate::payout::{PayoutKey, PayoutKeyError};

/// A key file could not be read, written or understood.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyFileError {
    /// Reading, writing or changing the mode of `path` failed.
    #[error("{action} {path}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// `keypair.json` is not a JSON array of exactly 64 integers in 0..=255.
    #[error("{path} is not a keypair file (a JSON array of 64 bytes)")]
    Malformed {
        /// The file concerned.
        path: PathBuf,
    },
    /// Bytes 32..64 are not the public key of the seed in bytes 0..32.
    #[error("{path}: the public key does not match the secret seed")]
    PublicKeyMismatch {
        /// The file concerned.
        path: PathBuf,
    },
    /// `node.json` is not the expected JSON object.
    #[error("{path} is not a node file: {source}")]
    NodeFile {
        /// The file concerned.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// The payout key file does not hold a valid secp256k1 secret.
    #[error("{path}: {source}")]
    PayoutKey {
        /// The file concerned.
        path: PathBuf,
        /// Why the key was refused.
        #[source]
        source: PayoutKeyError,
    },
}

/// What loading had to do about a key file's permissions, so the caller can warn the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PermissionFix {
    /// The file was already private to its owner.
    AlreadyPrivate,
    /// Group or other bits were set; the file was tightened to 0600.
    Tightened {
        /// The mode bits the file had.
        previous_mode: u32,
    },
}

/// `node.json`: the node's registration, written pretty-printed as the seed does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeFile {
    /// The id the grid issued.
    pub node_id: NodeId,
    /// The bearer token (rotates; rewrite the file before using a new one).
    pub auth_token: AuthToken,
    /// The operator's wallet.
    pub wallet_address: String,
    /// The declared tier.
    pub tee_type: String,
    /// The grid this node registered with; the node talks to no other unless told to.
    pub orchestrator_url: String,
    /// Where `keypair.json` is.
    pub keypair_path: PathBuf,
}

/// Writes `node.json`, 0600 in a 0700 directory.
pub fn save_node_file(path: &Path, node: &NodeFile) -> Result<(), KeyFileError> {
    let text = Zeroizing::new(serde_json::to_string_pretty(node).expect("a node file always serialises"));
    write_private_file(path, text.as_bytes())
}

/// Loads `node.json`, tightening loose permissions first (refusing if that fails).
pub fn load_node_file(path: &Path) -> Result<(NodeFile, PermissionFix), KeyFileError> {
    let (bytes, fix) = read_private_file(path)?;
    let node =
        serde_json::from_slice(&bytes).map_err(|source| KeyFileError::NodeFile { path: path.to_owned(), source })?;
    Ok((node, fix))
}

/// The `keypair.json` text for `identity`: 64 integers, seed then public key (the Solana CLI
/// layout).
pub fn encode_keypair_json(identity: &NodeIdentity) -> Zeroizing<String> {
    let seed = identity.seed();
    let public = identity.public_key().to_bytes();
    let mut bytes = Zeroizing::new(Vec::with_capacity(64));
    bytes.extend_from_slice(seed.as_slice());
    bytes.extend_from_slice(&public);
    let numbers: Vec<String> = bytes.iter().map(u8::to_string).collect();
    Zeroizing::new(format!("[{}]", numbers.join(",")))
}

/// Parses `keypair.json` text. Only the seed is used; the public key half must match it.
pub fn decode_keypair_json(text: &str, path: &Path) -> Result<NodeIdentity, KeyFileError> {
    let malformed = || KeyFileError::Malformed { path: path.to_owned() };
    let numbers: Zeroizing<Vec<u8>> = Zeroizing::new(serde_json::from_str(text).map_err(|_| malformed())?);
    if numbers.len() != 64 {
        return Err(malformed());
    }
    let mut seed = Zeroizing::new([0u8; 32]);
    seed.copy_from_slice(&numbers[..32]);
    let identity = NodeIdentity::from_seed(&seed);
    if identity.public_key().to_bytes() != numbers[32..] {
        return Err(KeyFileError::PublicKeyMismatch { path: path.to_owned() });
    }
    Ok(identity)
}

/// Writes `keypair.json` at `path`, creating its directory 0700 and the file 0600.
pub fn save_keypair(path: &Path, identity: &NodeIdentity) -> Result<(), KeyFileError> {
    write_private_file(path, encode_keypair_json(identity).as_bytes())
}

/// Loads `keypair.json`, tightening loose permissions first (refusing if that fails).
pub fn load_keypair(path: &Path) -> Result<(NodeIdentity, PermissionFix), KeyFileError> {
    let (text, fix) = read_private_file(path)?;
    let text = Zeroizing::new(
        String::from_utf8(text.to_vec()).map_err(|_| KeyFileError::Malformed { path: path.to_owned() })?,
    );
    Ok((decode_keypair_json(&text, path)?, fix))
}

/// Writes the payout key (64 hex digits and a newline) at `path`, 0600 in a 0700 directory.
pub fn save_payout_key(path: &Path, key: &PayoutKey) -> Result<(), KeyFileError> {
    let mut text = key.to_hex();
    text.push('\n');
    write_private_file(path, text.as_bytes())
}

/// Loads the payout key, tightening loose permissions first (refusing if that fails).
pub fn load_payout_key(path: &Path) -> Result<(PayoutKey, PermissionFix), KeyFileError> {
    let (bytes, fix) = read_private_file(path)?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| KeyFileError::PayoutKey { path: path.to_owned(), source: PayoutKeyError::InvalidSecret })?;
    let key = PayoutKey::from_hex(text).map_err(|source| KeyFileError::PayoutKey { path: path.to_owned(), source })?;
    Ok((key, fix))
}

/// Creates `dir` and its missing parents, each new level with mode 0700, and restricts `dir`
/// itself to 0700 if it already existed (it holds secrets).
pub fn create_private_dir(dir: &Path) -> Result<(), KeyFileError> {
    let io_err = |action| move |source| KeyFileError::Io { action, path: dir.to_owned(), source };
    private_dir_builder().create(dir).map_err(io_err("creating directory"))?;
    set_mode(dir, 0o700).map_err(io_err("restricting directory"))
}

/// Writes `bytes` to `path` through a private temporary file and an atomic rename, so a crash
/// never leaves a half-written key and the secret never sits in a file with looser bits.
pub fn write_private_file(path: &Path, bytes: &[u8]) -> Result<(), KeyFileError> {
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        create_private_dir(dir)?;
    }
    let tmp = path.with_extension("tmp");
    // A stale temporary file (or a planted symlink) is removed, never followed: the new one is
    // created exclusively.
    match fs::remove_file(&tmp) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => {
            return Err(KeyFileError::Io { action: "removing stale", path: tmp, source: error });
        }
        _ => {}
    }
    let io_err = |action, at: &Path| {
        let at = at.to_owned();
        move |source| KeyFileError::Io { action, path: at, source }
    };
    let mut file = open_private(&tmp).map_err(io_err("creating", &tmp))?;
    file.write_all(bytes).map_err(io_err("writing", &tmp))?;
    file.sync_all().map_err(io_err("syncing", &tmp))?;
    drop(file);
    fs::rename(&tmp, path).map_err(io_err("renaming into place", path))
}

/// Reads a secret file, first tightening group/other permission bits to 0600. If the bits
/// cannot be tightened the file is refused rather than used.
pub fn read_private_file(path: &Path) -> Result<(Zeroizing<Vec<u8>>, PermissionFix), KeyFileError> {
    let io_err = |action| move |source| KeyFileError::Io { action, path: path.to_owned(), source };
    let fix = tighten(path).map_err(io_err("restricting"))?;
    let bytes = Zeroizing::new(fs::read(path).map_err(io_err("reading"))?);
    Ok((bytes, fix))
}

#[cfg(unix)]
fn open_private(path: &Path) -> io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)
}

#[cfg(not(unix))]
fn open_private(path: &Path) -> io::Result<fs::File> {
    fs::OpenOptions::new().write(true).create_new(true).open(path)
}

#[cfg(unix)]
fn private_dir_builder() -> fs::DirBuilder {
    use std::os::unix::fs::DirBuilderExt;
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true).mode(0o700);
    builder
}

#[cfg(not(unix))]
fn private_dir_builder() -> fs::DirBuilder {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    builder
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> io::Result<()> {
    Ok(())
}

#[cfg(unix)]
fn tighten(path: &Path) -> io::Result<PermissionFix> {
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(path)?.permissions().mode() & 0o777;
    if mode & 0o077 == 0 {
        return Ok(PermissionFix::AlreadyPrivate);
    }
    set_mode(path, 0o600)?;
    Ok(PermissionFix::Tightened { previous_mode: mode })
}

#[cfg(not(unix))]
fn tighten(path: &Path) -> io::Result<PermissionFix> {
    fs::metadata(path).map(|_| PermissionFix::AlreadyPrivate)
}

#[cfg(test)]
mod tests;
