//! One-time root passwords at rest: sealed with XChaCha20-Poly1305 under a key in the grid's
//! data directory (`machines.key`, 32 random bytes, owner-only, made on first use), so the
//! database alone never reveals one. Replicas sharing a PostgreSQL database need the same file.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::OnceLock;

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sgl_machines::backend::Password;
use zeroize::Zeroizing;

use crate::service::secrets::random_bytes;

/// The password key or a sealed password is unusable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PasswordError {
    /// The key file could not be read or made.
    #[error("the key file {}: {source}", .path.display())]
    Key {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A sealed password did not open (another key, or damaged).
    #[error("a sealed password does not open with this grid's machines.key")]
    Open,
}

/// Seals and opens passwords with the grid's key.
#[derive(Debug)]
pub(super) struct Sealer {
    path: PathBuf,
    key: OnceLock<Zeroizing<[u8; 32]>>,
}

impl Sealer {
    pub(super) fn new(path: PathBuf) -> Self {
        Self { path, key: OnceLock::new() }
    }

    fn cipher(&self) -> Result<XChaCha20Poly1305, PasswordError> {
        if let Some(key) = self.key.get() {
            return Ok(XChaCha20Poly1305::new(key.as_ref().into()));
        }
        let key = self.load_or_make().map_err(|source| PasswordError::Key { path: self.path.clone(), source })?;
        let key = self.key.get_or_init(|| key);
        Ok(XChaCha20Poly1305::new(key.as_ref().into()))
    }

    fn load_or_make(&self) -> std::io::Result<Zeroizing<[u8; 32]>> {
        let mut key = Zeroizing::new([0u8; 32]);
        match std::fs::read(&self.path) {
            Ok(bytes) if bytes.len() == 32 => key.copy_from_slice(&bytes),
            Ok(_) => return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "not 32 bytes")),
            Err(missing) if missing.kind() == std::io::ErrorKind::NotFound => {
                key.copy_from_slice(&random_bytes(32));
                let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&self.path)?;
                file.write_all(key.as_ref())?;
            }
            Err(other) => return Err(other),
        }
        Ok(key)
    }

    /// `base64(nonce ‖ ciphertext)`.
    pub(super) fn seal(&self, password: &Password) -> Result<String, PasswordError> {
        let nonce = random_bytes(24);
        let sealed = self
            .cipher()?
            .encrypt(XNonce::from_slice(&nonce), password.expose().as_bytes())
            .map_err(|_| PasswordError::Open)?;
        Ok(base64::engine::general_purpose::STANDARD.encode([nonce, sealed].concat()))
    }

    pub(super) fn open(&self, sealed: &str) -> Result<Password, PasswordError> {
        let bytes = base64::engine::general_purpose::STANDARD.decode(sealed).map_err(|_| PasswordError::Open)?;
        let (nonce, body) = bytes.split_at_checked(24).ok_or(PasswordError::Open)?;
        let plain = self.cipher()?.decrypt(XNonce::from_slice(nonce), body).map_err(|_| PasswordError::Open)?;
        String::from_utf8(plain).map(Password::new).map_err(|_| PasswordError::Open)
    }
}

#[cfg(test)]
mod tests {
    //! A sealed password opens with the same key file only, and the file is made owner-only.

    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn passwords_open_with_their_key_only() {
        let dir = tempfile::tempdir().unwrap();
        let sealer = Sealer::new(dir.path().join("machines.key"));
        let sealed = sealer.seal(&Password::new("correct horse".into())).unwrap();
        assert!(!sealed.contains("horse"));
        let mode = std::fs::metadata(dir.path().join("machines.key")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = Sealer::new(dir.path().join("machines.key"));
        assert_eq!(again.open(&sealed).unwrap().expose(), "correct horse");
        let other = Sealer::new(dir.path().join("other.key"));
        assert!(matches!(other.open(&sealed), Err(PasswordError::Open)));
    }
}
