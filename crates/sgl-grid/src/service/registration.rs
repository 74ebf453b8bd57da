//! A node joining the grid: its registration checked (fields, the signed capability manifest,
//! the wallet's stake and consent) and recorded with its first token. No HTTP here: a refusal is
//! a [`RegistrationError`].

use sgl_grid_store::StoreError;
use sgl_grid_store::nodes::NewNode;
use sgl_grid_store::registration::ConsumeCodeError;
use sgl_protocol::api::node::{RegisterNodeRequest, RegisterNodeResponse, WalletProof, registration_message};
use sgl_protocol::identity::NodePublicKey;
use sgl_protocol::ids::{AuthToken, NodeId};
use sgl_protocol::wallet::verify_wallet_signature;

use crate::service::{heartbeat, secrets};
use crate::state::AppState;

/// Why a registration was refused.
#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    /// A field is malformed.
    #[error("{field} {problem}")]
    BadField {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// The capability manifest does not verify.
    #[error("capability manifest does not verify: {0}")]
    BadManifest(String),
    /// The key is registered already.
    #[error("a node with this public_key is already registered")]
    AlreadyRegistered,
    /// The wallet lacks stake.
    #[error("wallet {wallet} has {staked_sgl} SGL staked; registering a node needs {needed_sgl} SGL")]
    NotStaked {
        /// The wallet.
        wallet: String,
        /// Its stake, SGL.
        staked_sgl: i64,
        /// The minimum, SGL.
        needed_sgl: u64,
    },
    /// The registration code is unknown, used, expired or bound to another wallet.
    #[error("{0}")]
    CodeRefused(String),
    /// The wallet proof was signed too far from the grid's clock.
    #[error("wallet_proof was signed {skew} s from the grid's clock; sign within {MAX_PROOF_SKEW_SECS} s")]
    StaleProof {
        /// Seconds off.
        skew: i64,
    },
    /// The wallet proof does not verify.
    #[error("wallet_proof does not prove the wallet: {0}")]
    BadProof(String),
    /// Neither a code nor a proof, on a grid that wants one.
    #[error(
        "registration needs the wallet's consent: a single-use registration code from the grid operator \
         (sgl-grid admin registration-code --wallet W), the device login (sgl login), or the wallet's own \
         signature (sgl init --wallet W --wallet-key FILE, with W's key)"
    )]
    NeedsConsent,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A text field of 1 to `max_len` printable characters.
pub(crate) fn text_field(field: &'static str, value: &str, max_len: usize) -> Result<(), RegistrationError> {
    if value.trim().is_empty() || value.chars().count() > max_len || value.chars().any(char::is_control) {
        return Err(RegistrationError::BadField {
            field,
            problem: format!("must be 1 to {max_len} printable characters"),
        });
    }
    Ok(())
}

/// Registers the node `request` describes: its fields and signed manifest checked, its
/// wallet's stake and consent (a registration code, the wallet's own signature, or a grid that
/// allows neither) required. Returns its id and first token.
pub async fn register(
    state: &AppState,
    request: &RegisterNodeRequest,
) -> Result<RegisterNodeResponse, RegistrationError> {
    let manifest = checked_fields(request)?;
    if state.store().public_key_registered(&request.public_key).await? {
        return Err(RegistrationError::AlreadyRegistered);
    }
    let (staked, balance) = crate::service::stake::may_work(state, &request.wallet_address).await?;
    if !staked {
        return Err(RegistrationError::NotStaked {
            wallet: request.wallet_address.clone(),
            staked_sgl: balance / 1_000_000,
            needed_sgl: state.config().min_stake_sgl,
        });
    }
    let consent = consent(state, request)?;
    let node_id = NodeId::random();
    let now = state.now_ms();
    let token = secrets::node_token();
    let id_text = node_id.to_string();
    let new_node = NewNode {
        id: &id_text,
        public_key: &request.public_key,
        wallet: &request.wallet_address,
        tee_type: &request.tee_type,
        token_hash: &secrets::hash(&token),
        token_expires_at: now.saturating_add(state.config().token_ttl_ms()),
        cpu_cores: i64::from(request.cpu_cores),
        ram_gb: request.ram_gb,
        gpu_model: &request.gpu_model,
        manifest: manifest.as_deref(),
    };
    match consent {
        // The code is used up only if the node is recorded, in one transaction.
        Consent::Code(hash) => {
            state.store().insert_node_with_code(&new_node, &hash, now).await.map_err(|error| match error {
                ConsumeCodeError::Store(store) => RegistrationError::Store(store),
                refused => RegistrationError::CodeRefused(refused.to_string()),
            })?;
        }
        Consent::Given => {
            state.store().insert_node(&new_node, now).await?;
        }
    }
    state.metrics().registrations.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    tracing::info!(target: "sgl::events::node", node_id = %node_id, wallet = %request.wallet_address, "node registered");
    Ok(RegisterNodeResponse {
        node_id,
        auth_token: AuthToken::new(token),
        accepted_envelope_versions: heartbeat::accepted_envelope_versions(),
    })
}

/// The request's fields, checked; its capability manifest, verified as signed by the node's
/// key, as stored.
fn checked_fields(request: &RegisterNodeRequest) -> Result<Option<String>, RegistrationError> {
    text_field("wallet_address", &request.wallet_address, 128)?;
    text_field("tee_type", &request.tee_type, 32)?;
    if request.gpu_model.len() > 128 {
        return Err(RegistrationError::BadField {
            field: "gpu_model",
            problem: "must be at most 128 characters".into(),
        });
    }
    let public_key = NodePublicKey::from_b58(&request.public_key).map_err(|_| RegistrationError::BadField {
        field: "public_key",
        problem: "must be a base58 ed25519 public key".into(),
    })?;
    if !request.ram_gb.is_finite() || request.ram_gb < 0.0 {
        return Err(RegistrationError::BadField { field: "ram_gb", problem: "must be a non-negative number".into() });
    }
    let Some(manifest) = &request.capability_manifest else { return Ok(None) };
    let signer = manifest.verify().map_err(|e| RegistrationError::BadManifest(e.to_string()))?;
    if signer != public_key {
        return Err(RegistrationError::BadManifest("it is signed by another key than public_key".into()));
    }
    Ok(Some(serde_json::to_string(manifest).map_err(|e| RegistrationError::BadManifest(e.to_string()))?))
}

/// How the wallet consented to this node joining.
enum Consent {
    /// A registration code (its hash), used up as the node is recorded.
    Code(String),
    /// The wallet's own signature, or a grid that asks for neither.
    Given,
}

/// The wallet's consent to this node joining: a registration code, the wallet's own signature,
/// or a grid that asks for neither.
fn consent(state: &AppState, request: &RegisterNodeRequest) -> Result<Consent, RegistrationError> {
    match (&request.registration_code, &request.wallet_proof) {
        (Some(code), _) => Ok(Consent::Code(secrets::hash(code.expose_secret()))),
        (None, Some(proof)) => check_wallet_proof(state, request, proof).map(|()| Consent::Given),
        (None, None) if state.config().allow_codeless_registration => Ok(Consent::Given),
        (None, None) => Err(RegistrationError::NeedsConsent),
    }
}

/// How far a registration proof's `signed_at` may be from the grid's clock.
const MAX_PROOF_SKEW_SECS: i64 = 300;

/// Checks that the wallet itself signed, recently, the registration of this node's key.
fn check_wallet_proof(
    state: &AppState,
    request: &RegisterNodeRequest,
    proof: &WalletProof,
) -> Result<(), RegistrationError> {
    let signed_at = i64::try_from(proof.signed_at).unwrap_or(i64::MAX);
    let skew = (state.now_ms() / 1000).saturating_sub(signed_at);
    if skew.abs() > MAX_PROOF_SKEW_SECS {
        return Err(RegistrationError::StaleProof { skew });
    }
    let message = registration_message(&request.wallet_address, &request.public_key, proof.signed_at);
    verify_wallet_signature(&request.wallet_address, message.as_bytes(), &proof.signature)
        .map_err(|error| RegistrationError::BadProof(error.to_string()))
}
