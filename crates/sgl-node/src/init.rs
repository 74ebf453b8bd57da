//! `sgl init` and `sgl login --code --wallet`: create the node's identity, register it with a
//! grid, and store the registration. Keys are written before any network call (as the seed
//! does), with 0600 files in a 0700 directory; the grid URL is stored with the registration
//! and used from then on (seed weakness S7).

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use rand_core::OsRng;
use sgl_protocol::api::node::{RegisterNodeRequest, WalletProof, registration_message};
use sgl_protocol::identity::NodeIdentity;
use sgl_protocol::ids::{NodeId, RegistrationCode};
use sgl_protocol::keyfile::{KeyFileError, NodeFile, save_keypair, save_node_file, save_payout_key};
use sgl_protocol::manifest::{CapabilityManifest, CpuInfo, GpuInfo};
use sgl_protocol::payout::PayoutKey;

use crate::client::{ClientError, GridClient, GridUrlError};
use crate::detect::{Hardware, detect};
use crate::wallet_key::{WalletKey, WalletKeyError};

/// The registration file's name in the config directory.
pub const NODE_FILE: &str = "node.json";
/// The identity key file's name in the config directory.
pub const KEYPAIR_FILE: &str = "keypair.json";
/// The EVM payout key file's name in the config directory: earnings are paid to its address.
pub const PAYOUT_KEY_FILE: &str = "payout.key";

/// What `init` needs.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// The grid.
    pub grid_url: String,
    /// Where `keypair.json` and `node.json` go.
    pub config_dir: PathBuf,
    /// The operator's staked wallet.
    pub wallet: String,
    /// A single-use registration code from the grid operator or the device login.
    pub registration_code: Option<String>,
    /// The tier to declare; detected when not given.
    pub tee_type: Option<String>,
    /// Models the node intends to serve.
    pub models: Vec<String>,
    /// The wallet's key, to prove the wallet consents instead of a registration code.
    pub wallet_key: Option<WalletKey>,
}

/// A registered node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    /// The id the grid issued.
    pub node_id: NodeId,
    /// The node's base58 identity key.
    pub public_key: String,
    /// Where the registration was stored.
    pub node_file: PathBuf,
}

/// Registration failed; nothing was registered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InitError {
    /// This config directory already holds a registration.
    #[error("{0} already exists: this machine is registered (use another --config-dir for a second node)")]
    AlreadyRegistered(PathBuf),
    /// The wallet is empty.
    #[error("--wallet must not be empty")]
    EmptyWallet,
    /// The grid URL may not be used.
    #[error(transparent)]
    Url(#[from] GridUrlError),
    /// The keys could not be written.
    #[error(transparent)]
    Keys(#[from] KeyFileError),
    /// The grid refused or could not be reached.
    #[error(transparent)]
    Grid(#[from] ClientError),
    /// The wallet key given is not the wallet's.
    #[error(transparent)]
    WalletKey(#[from] WalletKeyError),
}

fn manifest(hardware: &Hardware, wallet: &str, tee_type: &str, identity: &NodeIdentity) -> CapabilityManifest {
    let mut manifest = CapabilityManifest {
        node_id: None,
        wallet: wallet.to_owned(),
        public_key: String::new(),
        hardware_tier: tee_type.to_owned(),
        cpu: CpuInfo {
            model: hardware.cpu_model.clone(),
            cores: hardware.cpu_cores,
            ram_mb: (hardware.memory_gb * 1024.0) as u64,
        },
        gpus: hardware
            .gpus
            .iter()
            .map(|gpu| GpuInfo { name: gpu.name.clone(), backend: gpu.backend.clone(), vram_mb: gpu.vram_mb })
            .collect(),
        region: None,
        workload_classes: workload_classes(),
        max_parallel_subtasks: 1,
        client_version: env!("CARGO_PKG_VERSION").into(),
        signature: String::new(),
    };
    manifest.sign(identity);
    manifest
}

/// What the signed manifest says the node can run: chat (`llm-inference`), then every
/// general-compute class whose engine this machine has, with the engine and its version
/// (`image onnxruntime 1.32.0`). The live classes travel in every heartbeat.
fn workload_classes() -> Vec<String> {
    let (_, reports) = crate::agent::compute::engines::detect(&crate::agent::compute::engines::EnginePaths {
        has_model: true,
        ..Default::default()
    });
    let available = reports.into_iter().filter(|r| r.unavailable.is_none());
    let classes = available.map(|r| match r.engine {
        Some(engine) => format!("{} {engine}", r.class),
        None => r.class.to_string(),
    });
    std::iter::once("llm-inference".to_owned()).chain(classes).collect()
}

/// Creates keys, registers, and stores the registration.
pub async fn init(options: InitOptions) -> Result<Registered, InitError> {
    let node_file = options.config_dir.join(NODE_FILE);
    if node_file.exists() {
        return Err(InitError::AlreadyRegistered(node_file));
    }
    let wallet = options.wallet.trim().to_owned();
    if wallet.is_empty() {
        return Err(InitError::EmptyWallet);
    }
    if let Some(key) = &options.wallet_key {
        key.ensure_controls(&wallet)?;
    }
    let client = GridClient::new(&options.grid_url)?;
    let hardware = tokio::task::spawn_blocking(detect).await.unwrap_or_else(|_| detect());
    let tee_type = options.tee_type.clone().unwrap_or_else(|| hardware.tee_type.clone());
    let identity = NodeIdentity::generate(&mut OsRng);
    let keypair_path = options.config_dir.join(KEYPAIR_FILE);
    save_keypair(&keypair_path, &identity)?;
    let payout_path = options.config_dir.join(PAYOUT_KEY_FILE);
    if !payout_path.exists() {
        save_payout_key(&payout_path, &PayoutKey::generate(&mut OsRng))?;
    }
    let request = RegisterNodeRequest {
        wallet_address: wallet.clone(),
        registration_code: options.registration_code.map(RegistrationCode::new),
        tee_type: tee_type.clone(),
        available_models: options.models,
        public_key: identity.public_key().to_b58(),
        cpu_cores: hardware.cpu_cores,
        ram_gb: hardware.memory_gb,
        gpu_model: hardware.gpus.first().map_or_else(|| "none".to_owned(), |gpu| gpu.name.clone()),
        supported_runtimes: vec!["llama.cpp".into()],
        capability_manifest: Some(manifest(&hardware, &wallet, &tee_type, &identity)),
        wallet_proof: options.wallet_key.as_ref().map(|key| {
            let signed_at = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
            let message = registration_message(&wallet, &identity.public_key().to_b58(), signed_at);
            WalletProof { signed_at, signature: key.sign(message.as_bytes()) }
        }),
    };
    let response = client.register(&request).await?;
    let record = NodeFile {
        node_id: response.node_id,
        auth_token: response.auth_token,
        wallet_address: wallet,
        tee_type,
        orchestrator_url: client.base().to_owned(),
        keypair_path,
    };
    save_node_file(&node_file, &record)?;
    Ok(Registered { node_id: response.node_id, public_key: identity.public_key().to_b58(), node_file })
}
