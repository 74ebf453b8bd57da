//! The served model file: its sha256, computed once when the engine starts and reported as the
//! served model's hash in signed results (the node agent hashes its own binary the same way).

use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

/// sha256 of the file at `path`, as 64 lowercase hex characters, read in 1 MiB pieces.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// The model name a node advertises when none is given: the file stem.
pub fn default_model_name(path: &Path) -> String {
    path.file_stem().map_or_else(|| "model".to_owned(), |stem| stem.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    //! Hashing and naming.

    use super::*;

    #[test]
    fn hashes_files_and_names_models_by_stem() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tiny-model.gguf");
        std::fs::write(&path, b"abc").unwrap();
        assert_eq!(sha256_file(&path).unwrap(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(default_model_name(&path), "tiny-model");
        assert!(sha256_file(&dir.path().join("missing")).is_err());
    }
}
