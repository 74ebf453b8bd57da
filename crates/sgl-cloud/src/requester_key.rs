//! The requester's ed25519 key, which signs bundles: `--key PATH`, else `SGL_CLOUD_KEY`, else
//! `$XDG_CONFIG_HOME/sgl-cloud/requester.json`, else `~/.config/sgl-cloud/requester.json`.
//! Created on first use as a `keypair.json`-style file, 0600 in a 0700 directory.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use rand_core::OsRng;
use sgl_protocol::identity::NodeIdentity;
use sgl_protocol::keyfile::{PermissionFix, load_keypair, save_keypair};

/// Where to look for the key, gathered from the flag (or `SGL_CLOUD_KEY`, which clap reads
/// into it) and the environment by `main`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct KeyLookup {
    /// `--key` or `SGL_CLOUD_KEY`.
    pub(crate) explicit: Option<PathBuf>,
    /// `XDG_CONFIG_HOME`.
    pub(crate) xdg_config_home: Option<PathBuf>,
    /// `HOME`.
    pub(crate) home: Option<PathBuf>,
}

impl KeyLookup {
    /// The key file's path.
    pub(crate) fn path(&self) -> anyhow::Result<PathBuf> {
        if let Some(path) = &self.explicit {
            return Ok(path.clone());
        }
        let config = match (&self.xdg_config_home, &self.home) {
            (Some(xdg), _) if xdg.is_absolute() => xdg.clone(),
            (_, Some(home)) => home.join(".config"),
            _ => bail!("no place for the requester key: pass --key PATH, or set SGL_CLOUD_KEY or HOME"),
        };
        Ok(config.join("sgl-cloud").join("requester.json"))
    }
}

/// The loaded (or newly made) key.
#[derive(Debug)]
pub(crate) struct RequesterKey {
    /// The signing identity.
    pub(crate) identity: NodeIdentity,
    /// Where it lives.
    pub(crate) path: PathBuf,
    /// Whether this call created it.
    pub(crate) created: bool,
}

/// Loads the key at `path`, or creates it there if there is none. Loose permissions are
/// tightened (with a note on stderr) or the key is refused.
pub(crate) fn load_or_create(path: &Path) -> anyhow::Result<RequesterKey> {
    if path.exists() {
        let (identity, fix) =
            load_keypair(path).with_context(|| format!("loading the requester key {}", path.display()))?;
        if let PermissionFix::Tightened { previous_mode } = fix {
            eprintln!("note: {} was mode {previous_mode:o}; tightened to 600", path.display());
        }
        return Ok(RequesterKey { identity, path: path.to_owned(), created: false });
    }
    let identity = NodeIdentity::generate(&mut OsRng);
    save_keypair(path, &identity).with_context(|| format!("creating the requester key {}", path.display()))?;
    Ok(RequesterKey { identity, path: path.to_owned(), created: true })
}

#[cfg(test)]
mod tests;
