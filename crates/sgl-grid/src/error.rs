//! The one mapping from failures to HTTP: every error leaves as the right status with OpenAI's
//! error body, and internal details go to the log, never to the client.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sgl_grid_store::StoreError;
use sgl_protocol::api::error::{ErrorBody, ErrorCode, ErrorType};

/// An HTTP error response.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: ErrorBody,
    retry_after_secs: Option<u64>,
}

impl ApiError {
    /// The OpenAI-shaped body this error answers.
    pub fn body(&self) -> &ErrorBody {
        &self.body
    }

    fn new(status: StatusCode, error_type: ErrorType, code: ErrorCode, message: impl Into<String>) -> Self {
        Self { status, body: ErrorBody::new(error_type, code, message), retry_after_secs: None }
    }

    /// 400: the request is malformed.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorType::InvalidRequestError, ErrorCode::InvalidRequest, message)
    }

    /// 400 naming the offending parameter.
    pub fn bad_param(param: &str, message: impl Into<String>) -> Self {
        let mut error = Self::bad_request(message);
        error.body = error.body.with_param(param);
        error
    }

    /// The same error, naming the parameter it is about.
    pub fn with_param(mut self, param: &str) -> Self {
        self.body.error.param = Some(param.to_owned());
        self
    }

    /// 401 for callers: no or an unknown API key.
    pub fn invalid_api_key(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, ErrorType::AuthenticationError, ErrorCode::InvalidApiKey, message)
    }

    /// 401 for nodes: no, an unknown or an expired node token.
    pub fn invalid_node_token() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            ErrorType::AuthenticationError,
            ErrorCode::InvalidNodeToken,
            "missing, unknown or expired X-Node-Auth token",
        )
    }

    /// 403: authenticated, but not allowed to do this.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, ErrorType::PermissionError, ErrorCode::InvalidRequest, message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorType::NotFoundError, ErrorCode::NotFound, message)
    }

    /// 404 for a model no node serves.
    pub fn model_not_found(model: &str) -> Self {
        let mut error = Self::new(
            StatusCode::NOT_FOUND,
            ErrorType::InvalidRequestError,
            ErrorCode::ModelNotFound,
            format!("no node serves model {model:?} right now; GET /v1/models lists what is served"),
        );
        error.body = error.body.with_param("model");
        error
    }

    /// 400 `price_cap_unmet`: the caller's cap `param` is below every provider.
    pub fn price_cap_unmet(param: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorType::InvalidRequestError, ErrorCode::PriceCapUnmet, message)
            .with_param(param)
    }

    /// 409.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, ErrorType::InvalidRequestError, ErrorCode::Conflict, message)
    }

    /// 400 for a signature that does not verify.
    pub fn invalid_signature(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorType::InvalidRequestError, ErrorCode::InvalidSignature, message)
    }

    /// A refused wallet signature, `params` naming where the request carried its nonce, its
    /// time and the signature.
    fn wallet_auth(error: crate::service::wallet_auth::WalletAuthError, params: [&str; 3]) -> Self {
        use crate::service::wallet_auth::WalletAuthError;
        let message = error.to_string();
        match error {
            WalletAuthError::NonceUsed => Self::conflict(message),
            WalletAuthError::BadNonce => Self::bad_param(params[0], message),
            WalletAuthError::Stale { .. } => Self::bad_param(params[1], message),
            WalletAuthError::BadSignature(_) => Self::invalid_signature(message).with_param(params[2]),
            WalletAuthError::Store(error) => Self::internal(&error),
        }
    }

    /// 402: payment or credits needed.
    pub fn payment_required(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYMENT_REQUIRED, ErrorType::PaymentRequiredError, code, message)
    }

    /// 503 with a machine-readable reason.
    pub fn unavailable(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, ErrorType::ServiceUnavailableError, code, message)
    }

    /// 500; `detail` is logged, the client sees a generic message.
    pub fn internal(detail: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorType::ServerError,
            ErrorCode::Internal,
            "internal error; the grid's log has the details",
        )
    }

    /// Any other status, typed by its class: what the HTTP stack itself answers (a body over the
    /// limit, a bad path parameter, a refused WebSocket upgrade) in OpenAI's shape.
    pub fn from_status(status: StatusCode, message: impl Into<String>) -> Self {
        let (error_type, code) = match status {
            StatusCode::UNAUTHORIZED => (ErrorType::AuthenticationError, ErrorCode::InvalidApiKey),
            StatusCode::PAYMENT_REQUIRED => (ErrorType::PaymentRequiredError, ErrorCode::PaymentRequired),
            StatusCode::FORBIDDEN => (ErrorType::PermissionError, ErrorCode::InvalidRequest),
            StatusCode::NOT_FOUND => (ErrorType::NotFoundError, ErrorCode::NotFound),
            StatusCode::CONFLICT => (ErrorType::InvalidRequestError, ErrorCode::Conflict),
            StatusCode::TOO_MANY_REQUESTS => (ErrorType::RateLimitError, ErrorCode::RateLimited),
            s if s.is_server_error() && s != StatusCode::INTERNAL_SERVER_ERROR => {
                (ErrorType::ServiceUnavailableError, ErrorCode::UpstreamFailed)
            }
            s if s.is_server_error() => (ErrorType::ServerError, ErrorCode::Internal),
            _ => (ErrorType::InvalidRequestError, ErrorCode::InvalidRequest),
        };
        Self::new(status, error_type, code, message)
    }

    /// 415: a body that should be JSON was sent as something else.
    pub fn not_json() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorType::InvalidRequestError,
            ErrorCode::InvalidRequest,
            "send the body as JSON with Content-Type: application/json",
        )
    }

    /// 413: a body over the grid's limit.
    pub fn too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorType::InvalidRequestError,
            ErrorCode::InvalidRequest,
            "request body too large",
        )
    }

    /// 429: too many requests from one address; `Retry-After` says when to try again.
    pub fn rate_limited(message: impl Into<String>, retry_after_secs: u64) -> Self {
        let mut error =
            Self::new(StatusCode::TOO_MANY_REQUESTS, ErrorType::RateLimitError, ErrorCode::RateLimited, message);
        error.retry_after_secs = Some(retry_after_secs.max(1));
        error
    }

    /// Adds `Retry-After`, in seconds.
    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs.max(1));
        self
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The status and the body, for a replica answering a post another replica took.
    pub fn into_parts(self) -> (StatusCode, ErrorBody) {
        (self.status, self.body)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.body.error.message, self.status)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body)).into_response();
        if let Some(secs) = self.retry_after_secs {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        response
    }
}

impl From<crate::service::limits::Limited> for ApiError {
    fn from(limited: crate::service::limits::Limited) -> Self {
        Self::rate_limited(limited.to_string(), limited.retry_after_secs)
    }
}

impl From<crate::service::accounts::AccountError> for ApiError {
    fn from(error: crate::service::accounts::AccountError) -> Self {
        use crate::service::accounts::AccountError;
        let message = error.to_string();
        match error {
            AccountError::BadLabel => Self::bad_param("label", message),
            AccountError::BadCredits => Self::bad_param("credits_usd", message),
            AccountError::BadAmount => Self::bad_param("amount_usd", message),
            AccountError::SameKey => Self::bad_param("to_key_id", message),
            AccountError::BadDays => Self::bad_param("days", message),
            AccountError::TooManyKeys | AccountError::AlreadyRevoked => Self::conflict(message),
            AccountError::InsufficientCredits { .. } => Self::payment_required(ErrorCode::InsufficientCredits, message),
            AccountError::NoSuchKey => Self::not_found(message),
            AccountError::Store(error) => Self::internal(&error),
            AccountError::Ledger(error) => Self::internal(&error),
            AccountError::Wallet(error) => Self::wallet_auth(error, ["nonce", "signed_at", "signature"]),
        }
    }
}

impl From<crate::service::earnings::EarningsError> for ApiError {
    fn from(error: crate::service::earnings::EarningsError) -> Self {
        use crate::service::earnings::EarningsError;
        match error {
            EarningsError::BadDays => Self::bad_param("days", error.to_string()),
            EarningsError::Store(error) => Self::internal(&error),
        }
    }
}

impl From<crate::service::admin::AdminError> for ApiError {
    fn from(error: crate::service::admin::AdminError) -> Self {
        use crate::service::admin::AdminError;
        match error {
            // A grid without a token has no admin routes, as far as anyone can tell.
            AdminError::Disabled => Self::not_found("no such endpoint"),
            AdminError::BadToken => Self::invalid_api_key(error.to_string()),
            AdminError::Store(error) => Self::internal(&error),
        }
    }
}

impl From<crate::service::embeddings::EmbeddingError> for ApiError {
    fn from(error: crate::service::embeddings::EmbeddingError) -> Self {
        use crate::service::embeddings::EmbeddingError;
        let message = error.to_string();
        match error {
            EmbeddingError::NoModel | EmbeddingError::ChatModel(_) => Self::bad_param("model", message),
            EmbeddingError::UnknownModel(model) => Self::model_not_found(&model),
            EmbeddingError::Dimensions { .. } => Self::bad_param("dimensions", message),
            EmbeddingError::TokenInput
            | EmbeddingError::NoInputs
            | EmbeddingError::TooManyInputs(_)
            | EmbeddingError::EmptyInput(_)
            | EmbeddingError::InputTooLong { .. } => Self::bad_param("input", message),
        }
    }
}

impl From<crate::service::heartbeat::HeartbeatError> for ApiError {
    fn from(error: crate::service::heartbeat::HeartbeatError) -> Self {
        use crate::service::heartbeat::HeartbeatError;
        let message = error.to_string();
        match error {
            HeartbeatError::OtherNode => Self::forbidden(message),
            HeartbeatError::BadEncryptionKey => Self::bad_param("encryption_public_key", message),
            HeartbeatError::BadKeybind => Self::invalid_signature(message),
            HeartbeatError::BadCluster => Self::bad_param("cluster", message),
            HeartbeatError::BadModelHash => Self::bad_param("model_sha256", message),
            HeartbeatError::BadEngines => Self::bad_param("engines", message),
            HeartbeatError::BadEmbeddingModels => Self::bad_param("embedding_models", message),
            HeartbeatError::CorruptRecord(_) | HeartbeatError::Store(_) => Self::internal(&error),
            HeartbeatError::Jobs(error) => error.into(),
        }
    }
}

impl From<crate::service::operators::OperatorError> for ApiError {
    fn from(error: crate::service::operators::OperatorError) -> Self {
        use crate::service::operators::OperatorError;
        use sgl_grid_store::stake::StakeError;
        let message = error.to_string();
        match error {
            OperatorError::BadNonce => Self::bad_param("nonce", message),
            OperatorError::Stale { .. } => Self::bad_param("signed_at", message),
            OperatorError::BadSignature(_) => Self::invalid_signature(message),
            OperatorError::NonceUsed => Self::conflict(message),
            OperatorError::BadPayoutAddress => Self::bad_param("to", message),
            OperatorError::NoPaymentNetwork => Self::bad_request(message),
            OperatorError::RemoteFacilitator => Self::unavailable(ErrorCode::UpstreamFailed, message),
            OperatorError::NothingToPayOut { .. } | OperatorError::EarningsShort { .. } => {
                Self::bad_param("amount_micros", message)
            }
            OperatorError::Stake(StakeError::AlreadyUnstaking) => {
                Self::conflict("an unstake is already cooling down for this wallet")
            }
            OperatorError::Stake(StakeError::NotEnoughStake { staked, asked }) => Self::bad_param(
                "amount_micros",
                format!("the wallet has {staked} micro-SGL staked; cannot unstake {asked}"),
            ),
            OperatorError::Stake(StakeError::NoUnstake) => {
                Self::conflict("no unstake is open for this wallet; unstake first")
            }
            OperatorError::Stake(StakeError::CoolingDown { available_at }) => Self::conflict(format!(
                "the unstaked amount may be withdrawn from {}",
                crate::service::rfc3339::format(available_at)
            )),
            OperatorError::Stake(other) => Self::internal(&other),
            OperatorError::Store(error) => Self::internal(&error),
            OperatorError::Ledger(error) => Self::internal(&error),
        }
    }
}

impl From<crate::service::results::ResultError> for ApiError {
    fn from(error: crate::service::results::ResultError) -> Self {
        use crate::service::results::ResultError;
        let message = error.to_string();
        match error {
            ResultError::UnknownJob | ResultError::NotLive | ResultError::Finished => Self::not_found(message),
            ResultError::OtherNode => Self::forbidden(message),
            ResultError::PlainAnswer | ResultError::UnreadableResult(_) | ResultError::UnreadableChunk(_) => {
                Self::bad_request(message)
            }
            ResultError::NotAStream | ResultError::OutOfOrder { .. } => Self::conflict(message),
            ResultError::BadEnvelopeVersion(_) => Self::bad_param("result_envelope_version", message),
            ResultError::BadSignature(_) => Self::invalid_signature(message),
            ResultError::Jobs(error) => error.into(),
            ResultError::CorruptRecord(_) | ResultError::Stake(_) | ResultError::Store(_) => Self::internal(&error),
        }
    }
}

impl From<crate::service::registration::RegistrationError> for ApiError {
    fn from(error: crate::service::registration::RegistrationError) -> Self {
        use crate::service::registration::RegistrationError;
        let message = error.to_string();
        match error {
            RegistrationError::BadField { field, .. } => Self::bad_param(field, message),
            RegistrationError::BadManifest(_) => Self::invalid_signature(message),
            RegistrationError::AlreadyRegistered => Self::conflict(message),
            RegistrationError::NotStaked { .. }
            | RegistrationError::CodeRefused(_)
            | RegistrationError::NeedsConsent => Self::forbidden(message),
            RegistrationError::StaleProof { .. } => Self::bad_param("wallet_proof", message),
            RegistrationError::BadProof(_) => Self::invalid_signature(message).with_param("wallet_proof"),
            RegistrationError::Store(error) => Self::internal(&error),
        }
    }
}

impl From<crate::service::reservations::ReservationError> for ApiError {
    fn from(error: crate::service::reservations::ReservationError) -> Self {
        use crate::service::reservations::ReservationError;
        match error {
            ReservationError::KeyFull | ReservationError::AddressFull => Self::rate_limited(error.to_string(), 60),
            ReservationError::AnonymousFull => Self::unavailable(ErrorCode::NoCapacity, error.to_string()),
            ReservationError::Store(error) => Self::internal(&error),
        }
    }
}

impl From<crate::service::attestation::AttestationError> for ApiError {
    fn from(error: crate::service::attestation::AttestationError) -> Self {
        use crate::service::attestation::AttestationError;
        match error {
            AttestationError::NoChallenge => Self::bad_request(error.to_string()),
            other => Self::internal(&other),
        }
    }
}

impl From<crate::jobs::JobError> for ApiError {
    fn from(error: crate::jobs::JobError) -> Self {
        match error {
            crate::jobs::JobError::InsufficientCredits { .. } => {
                Self::payment_required(ErrorCode::InsufficientCredits, error.to_string())
            }
            other => Self::internal(&other),
        }
    }
}

impl From<sgl_grid_store::ledger::PostError> for ApiError {
    fn from(error: sgl_grid_store::ledger::PostError) -> Self {
        Self::internal(&error)
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        Self::internal(&error)
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::MissingJsonContentType(_) => Self::not_json(),
            JsonRejection::BytesRejection(_) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Self::too_large()
            }
            other => Self::bad_request(other.body_text()),
        }
    }
}

/// The result type of every handler.
pub type ApiResult<T> = Result<T, ApiError>;

impl From<crate::service::compute::WorkError> for ApiError {
    fn from(error: crate::service::compute::WorkError) -> Self {
        use crate::blobs::BlobError;
        use crate::service::compute::WorkError;
        use sgl_protocol::compute::bundle::BundleError;
        let message = error.to_string();
        match error {
            WorkError::Bundle(BundleError::Signature(_)) => Self::invalid_signature(message).with_param("signature"),
            WorkError::Bundle(_) | WorkError::MissingBlob(_) => Self::bad_param("manifest", message),
            WorkError::Refused(_) => Self::bad_request(message),
            WorkError::PriceAboveCap { .. } => Self::price_cap_unmet("max_price_micros_per_gfuel", message),
            WorkError::InsufficientCredits { .. } => Self::payment_required(ErrorCode::InsufficientCredits, message),
            WorkError::NotFound => Self::not_found(message),
            WorkError::Conflict(_) => Self::conflict(message),
            WorkError::BadReceipt(_) => Self::invalid_signature(message).with_param("receipt"),
            WorkError::ReceiptMismatch(_) | WorkError::MissingOutput(_) => Self::bad_param("receipt", message),
            WorkError::Blob(BlobError::DigestMismatch { .. }) => Self::bad_request(message),
            WorkError::Blob(error) => Self::internal(&error),
            WorkError::Store(error) => Self::internal(&error),
            WorkError::Queue(error) => Self::internal(&error),
        }
    }
}

impl From<crate::service::machines::MachineError> for ApiError {
    fn from(error: crate::service::machines::MachineError) -> Self {
        use crate::service::machines::MachineError;
        use sgl_machines::backend::BackendError;
        let message = error.to_string();
        match error {
            MachineError::UnknownPlan(_) | MachineError::OtherBackend(_) | MachineError::Downgrade => {
                Self::bad_param("plan", message)
            }
            MachineError::UnknownRegion { .. } => Self::bad_param("region", message),
            MachineError::Duration(_) => Self::bad_param("prepaid_hours", message),
            MachineError::BadLabel(_) => Self::bad_param("label", message),
            MachineError::BadWebhook(_) => Self::bad_param("webhook_url", message),
            MachineError::BadSshKey(_) | MachineError::KeyRequired => Self::bad_param("ssh_public_key", message),
            MachineError::DiskResizeUnconfirmed(_) => Self::bad_param("confirm_disk_resize", message),
            MachineError::TooLittleLeft(_) => Self::conflict(message),
            MachineError::NotFound => Self::not_found("no such machine in this account"),
            MachineError::Conflict(_) | MachineError::NoPassword => Self::conflict(message),
            MachineError::InsufficientCredits { .. } => Self::payment_required(ErrorCode::InsufficientCredits, message),
            MachineError::NoCapacity(_) => Self::unavailable(ErrorCode::NoCapacity, message),
            MachineError::Backend(BackendError::Rejected { .. } | BackendError::Unsupported(_)) => {
                Self::bad_request(message)
            }
            MachineError::Backend(_) => Self::unavailable(ErrorCode::UpstreamFailed, message),
            MachineError::Wallet(error) => {
                Self::wallet_auth(error, ["x-wallet-nonce", "x-wallet-signed-at", "x-wallet-signature"])
            }
            MachineError::Password(error) => Self::internal(&error),
            MachineError::Store(error) => Self::internal(&error),
        }
    }
}

impl From<crate::service::market::MarketError> for ApiError {
    fn from(error: crate::service::market::MarketError) -> Self {
        use crate::service::market::MarketError;
        let message = error.to_string();
        match error {
            MarketError::BadField { field, .. } => Self::bad_param(field, message),
            MarketError::JobNotBindable(_) => Self::bad_param("job_id", message),
            MarketError::AboveMaximum { .. } => Self::bad_param("price_per_hour_micros", message),
            MarketError::InsufficientCredits { .. } => Self::payment_required(ErrorCode::InsufficientCredits, message),
            MarketError::NotFound(_) => Self::not_found(message),
            MarketError::Conflict(_) => Self::conflict(message),
            MarketError::NotEligible(_) | MarketError::DoesNotFit(_) | MarketError::OwnOrder => {
                Self::forbidden(message)
            }
            MarketError::Corrupt(_) => Self::internal(&error),
            MarketError::Store(error) => Self::internal(&error),
            MarketError::Chain(_) => {
                tracing::warn!(%message, "a lease's chain stream failed");
                Self::unavailable(ErrorCode::UpstreamFailed, message)
            }
        }
    }
}
