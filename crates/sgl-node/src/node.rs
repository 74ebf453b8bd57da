//! A registered node on disk: `node.json`, `keypair.json` and the payout key, loaded with
//! their permissions checked, and the grid to talk to (the stored one unless told otherwise,
//! seed weakness S7).

use std::path::{Path, PathBuf};

use sgl_protocol::identity::NodeIdentity;
use sgl_protocol::keyfile::{KeyFileError, NodeFile, load_keypair, load_node_file, load_payout_key};

use crate::client::{GridClient, GridUrlError};
use crate::init::{KEYPAIR_FILE, NODE_FILE, PAYOUT_KEY_FILE};

/// A node could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// No `node.json`.
    #[error("{0} does not exist: this machine is not registered yet (run sgl init first)")]
    NotRegistered(PathBuf),
    /// A key file is unreadable or unsafe.
    #[error("{0} (run sgl init first)")]
    Keys(#[from] KeyFileError),
    /// The grid URL may not be used.
    #[error(transparent)]
    Url(#[from] GridUrlError),
}

/// A registered node.
#[derive(Debug)]
pub struct LocalNode {
    /// Its registration.
    pub file: NodeFile,
    /// Its identity key.
    pub identity: NodeIdentity,
    /// Where its files live.
    pub config_dir: PathBuf,
    /// Its grid.
    pub client: GridClient,
}

impl LocalNode {
    /// Loads the node in `config_dir`, talking to `grid_url` or else the stored grid.
    pub fn load(config_dir: &Path, grid_url: Option<&str>) -> Result<Self, NodeError> {
        let path = config_dir.join(NODE_FILE);
        if !path.exists() {
            return Err(NodeError::NotRegistered(path));
        }
        let (file, _) = load_node_file(&path)?;
        // A relative keypair path (hand-edited files) means the one beside node.json.
        let keypair_path =
            if file.keypair_path.is_absolute() { file.keypair_path.clone() } else { config_dir.join(KEYPAIR_FILE) };
        let (identity, _) = load_keypair(&keypair_path)?;
        let client = GridClient::new(grid_url.unwrap_or(&file.orchestrator_url))?;
        Ok(Self { file, identity, config_dir: config_dir.to_owned(), client })
    }

    /// The EIP-55 address earnings are paid to, if the node has a payout key.
    pub fn payout_address(&self) -> Option<String> {
        let path = self.config_dir.join(PAYOUT_KEY_FILE);
        path.exists().then(|| load_payout_key(&path).ok()).flatten().map(|(key, _)| key.address().to_checksummed())
    }
}
