//! The one error type of the HTTP surface and the only place that maps errors to status codes
//! and stable `code`s (SPEC §5). Each variant renders in the caller's dialect: OpenAI callers get
//! `{"error":{...}}`, Anthropic callers `{"type":"error","error":{...}}`, so the official SDKs
//! raise their usual exception types with our message.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use rungate_wire::Dialect;
use serde_json::{Value, json};

use crate::store::StoreError;

/// A governance refusal: the stable codes of SPEC §5.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockCode {
    ModelNotAllowed,
    ModelUnpriced,
    ToolBlocked,
    ToolLimitReached,
    RunawayPrevention,
    RateLimited,
    HourlyCostExceeded,
    AgentDisabled,
    RunForceStopped,
    RunClosed,
    RunIdTaken,
    BudgetExceeded,
    TokenBudgetExceeded,
    ApprovalRejected,
    ApprovalExpired,
}

impl BlockCode {
    pub fn as_str(self) -> &'static str {
        match self {
            BlockCode::ModelNotAllowed => "model_not_allowed",
            BlockCode::ModelUnpriced => "model_unpriced",
            BlockCode::ToolBlocked => "tool_blocked",
            BlockCode::ToolLimitReached => "tool_limit_reached",
            BlockCode::RunawayPrevention => "runaway_prevention",
            BlockCode::RateLimited => "rate_limited",
            BlockCode::HourlyCostExceeded => "hourly_cost_exceeded",
            BlockCode::AgentDisabled => "agent_disabled",
            BlockCode::RunForceStopped => "run_force_stopped",
            BlockCode::RunClosed => "run_closed",
            BlockCode::RunIdTaken => "run_id_taken",
            BlockCode::BudgetExceeded => "budget_exceeded",
            BlockCode::TokenBudgetExceeded => "token_budget_exceeded",
            BlockCode::ApprovalRejected => "approval_rejected",
            BlockCode::ApprovalExpired => "approval_expired",
        }
    }

    /// Status and `error.type`; exhaustive so a new code forces a decision.
    fn status_and_type(self) -> (StatusCode, &'static str) {
        match self {
            BlockCode::ModelNotAllowed
            | BlockCode::ModelUnpriced
            | BlockCode::ToolBlocked
            | BlockCode::ToolLimitReached
            | BlockCode::RunawayPrevention
            | BlockCode::AgentDisabled
            | BlockCode::RunForceStopped
            | BlockCode::ApprovalRejected
            | BlockCode::ApprovalExpired => (StatusCode::FORBIDDEN, "governance_block"),
            BlockCode::BudgetExceeded
            | BlockCode::TokenBudgetExceeded
            | BlockCode::HourlyCostExceeded => (StatusCode::PAYMENT_REQUIRED, "governance_block"),
            BlockCode::RunClosed | BlockCode::RunIdTaken => (StatusCode::CONFLICT, "conflict"),
            BlockCode::RateLimited => (StatusCode::TOO_MANY_REQUESTS, "governance_block"),
        }
    }
}

/// A refusal with everything the caller needs to understand and recover.
#[derive(Clone, Debug, PartialEq)]
pub struct Block {
    pub code: BlockCode,
    pub message: String,
    pub run_id: Option<String>,
    /// SDK shape (compat).
    pub details: Value,
    /// Website shape: rule, policy, how to recover.
    pub context: Value,
    /// Seconds until a retry can succeed (`Retry-After`), for rate limits.
    pub retry_after_s: Option<u64>,
}

/// One provider's failure, listed in a 502.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ProviderFailure {
    pub provider: String,
    pub status: Option<u16>,
    pub message: String,
}

/// A run paused behind approval gates: the 202 of SPEC §5/§6. Not a failure — the agent retries
/// the same request after `Retry-After` — but it leaves the pipeline the same way a refusal does.
#[derive(Clone, Debug, PartialEq)]
pub struct AwaitingApproval {
    pub run_id: String,
    pub message: String,
    /// `{"id","tool"}` per gate (SDK shape).
    pub approval_requests: Value,
    /// The first gate as the website shape shows it.
    pub context: Value,
    pub retry_after_s: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{}", .0.message)]
    AwaitingApproval(Box<AwaitingApproval>),
    #[error("{message}")]
    InvalidRequest { message: String },
    #[error("Invalid API key")]
    Unauthorized,
    #[error("Authentication required")]
    AdminUnauthorized,
    #[error("Insufficient scope. Required: {required}")]
    Forbidden { required: &'static str },
    /// A cookie-authenticated request that changes state, or a dashboard login, without
    /// `x-rungate-dashboard: 1` (see `api::auth`).
    #[error(
        "Requests authenticated by the dashboard session cookie must send the header `x-rungate-dashboard: 1` to change anything (a cross-site form cannot set it)"
    )]
    CsrfHeaderMissing,
    #[error("{}", .0.message)]
    Blocked(Box<Block>),
    #[error("{what} not found")]
    NotFound { what: String },
    #[error("{message}")]
    Conflict { message: String },
    #[error("request body exceeds the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("{message}")]
    Provider {
        message: String,
        failures: Vec<ProviderFailure>,
    },
    #[error("{message}")]
    ProviderTimeout { message: String, provider: String },
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::InvalidRequest {
            message: message.into(),
        }
    }

    pub fn not_found(what: impl Into<String>) -> ApiError {
        ApiError::NotFound { what: what.into() }
    }

    pub fn blocked(block: Block) -> ApiError {
        ApiError::Blocked(Box::new(block))
    }

    /// Status, stable code and error type, in one exhaustive match.
    fn classify(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            ApiError::AwaitingApproval(_) => (
                StatusCode::ACCEPTED,
                "awaiting_approval",
                "awaiting_approval",
            ),
            ApiError::InvalidRequest { .. } => (
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "invalid_request_error",
            ),
            ApiError::Unauthorized | ApiError::AdminUnauthorized => {
                (StatusCode::UNAUTHORIZED, "invalid_api_key", "unauthorized")
            }
            ApiError::Forbidden { .. } => (StatusCode::FORBIDDEN, "forbidden", "forbidden"),
            ApiError::CsrfHeaderMissing => {
                (StatusCode::FORBIDDEN, "csrf_header_missing", "forbidden")
            }
            ApiError::Blocked(block) => {
                let (status, kind) = block.code.status_and_type();
                (status, block.code.as_str(), kind)
            }
            ApiError::NotFound { .. } => (StatusCode::NOT_FOUND, "not_found", "not_found"),
            ApiError::Conflict { .. } => (StatusCode::CONFLICT, "conflict", "conflict"),
            ApiError::PayloadTooLarge { .. } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "invalid_request_error",
            ),
            ApiError::Provider { .. } => {
                (StatusCode::BAD_GATEWAY, "provider_error", "provider_error")
            }
            ApiError::ProviderTimeout { .. } => (
                StatusCode::GATEWAY_TIMEOUT,
                "provider_timeout",
                "provider_timeout",
            ),
            ApiError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "api_error",
            ),
        }
    }

    pub fn status(&self) -> StatusCode {
        self.classify().0
    }

    pub fn code(&self) -> &'static str {
        self.classify().1
    }

    /// The `error` object, without the dialect envelope.
    fn error_object(&self) -> Value {
        let (_, code, kind) = self.classify();
        let message = match self {
            ApiError::Internal(_) => "internal error; see the gateway log".to_owned(),
            other => other.to_string(),
        };
        let mut error = json!({"type": kind, "code": code, "message": message});
        match self {
            ApiError::Blocked(block) => {
                error["run_id"] = json!(block.run_id);
                error["details"] = block.details.clone();
                error["context"] = block.context.clone();
            }
            ApiError::Provider { failures, .. } => error["details"] = json!(failures),
            ApiError::ProviderTimeout { provider, .. } => {
                error["details"] = json!({"provider": provider})
            }
            _ => {}
        }
        error
    }

    /// Renders the error for a caller speaking `dialect`.
    pub fn into_dialect_response(self, dialect: Dialect) -> Response {
        let status = self.status();
        if let ApiError::AwaitingApproval(waiting) = &self {
            return waiting.render(status);
        }
        let error = self.error_object();
        let body = match dialect {
            // Responses callers use the OpenAI SDKs, which read OpenAI's envelope; no agent
            // calls Rungate in Gemini's dialect, but a Gemini client would find `error` too.
            Dialect::OpenAi | Dialect::Responses | Dialect::Gemini => json!({"error": error}),
            Dialect::Anthropic => json!({"type": "error", "error": error}),
        };
        let mut response = (status, axum::Json(body)).into_response();
        if let ApiError::Blocked(block) = &self {
            let headers = response.headers_mut();
            headers.insert("x-rungate-governance", HeaderValue::from_static("blocked"));
            if let Some(seconds) = block.retry_after_s {
                headers.insert(http::header::RETRY_AFTER, HeaderValue::from(seconds));
            }
        }
        response
    }
}

impl AwaitingApproval {
    /// The same body in both dialects: it is Rungate's own answer, which the rungate SDK turns
    /// into `ApprovalRequiredError` and other clients read as a 202.
    fn render(&self, status: StatusCode) -> Response {
        let body = json!({
            "status": "awaiting_approval",
            "run_id": self.run_id,
            "message": self.message,
            "approval_requests": self.approval_requests,
            "context": self.context,
        });
        let mut response = (status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            "x-rungate-governance",
            HeaderValue::from_static("awaiting_approval"),
        );
        headers.insert(
            http::header::RETRY_AFTER,
            HeaderValue::from(self.retry_after_s),
        );
        response
    }
}

/// Admin API and plain routes answer in the OpenAI-style envelope `{"error":{...}}`.
impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(detail) = &self {
            tracing::error!(error = %detail, "internal error");
        }
        self.into_dialect_response(Dialect::OpenAi)
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> ApiError {
        match err {
            StoreError::NotFound => ApiError::not_found("resource"),
            StoreError::Conflict(message) => ApiError::Conflict { message },
            StoreError::Database(e) => ApiError::Internal(format!("database: {e}")),
            StoreError::Corrupt(e) => ApiError::Internal(format!("corrupt row: {e}")),
            StoreError::Engine(e) => ApiError::Internal(format!("database: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_has_a_stable_status_and_code() {
        let check = |err: ApiError, status: u16, code: &str| {
            assert_eq!((err.status().as_u16(), err.code()), (status, code));
        };
        check(ApiError::invalid("x"), 400, "invalid_request");
        check(ApiError::Unauthorized, 401, "invalid_api_key");
        check(ApiError::Forbidden { required: "write" }, 403, "forbidden");
        check(ApiError::CsrfHeaderMissing, 403, "csrf_header_missing");
        check(ApiError::not_found("run"), 404, "not_found");
        check(
            ApiError::PayloadTooLarge { limit: 1 },
            413,
            "payload_too_large",
        );
        check(
            ApiError::Provider {
                message: "x".into(),
                failures: vec![],
            },
            502,
            "provider_error",
        );
        check(
            ApiError::ProviderTimeout {
                message: "x".into(),
                provider: "openai".into(),
            },
            504,
            "provider_timeout",
        );
        let block = |code| {
            ApiError::blocked(Block {
                code,
                message: "m".into(),
                run_id: None,
                details: json!({}),
                context: json!({}),
                retry_after_s: None,
            })
        };
        check(block(BlockCode::ModelNotAllowed), 403, "model_not_allowed");
        check(block(BlockCode::BudgetExceeded), 402, "budget_exceeded");
        check(block(BlockCode::RunClosed), 409, "run_closed");
        check(block(BlockCode::RunIdTaken), 409, "run_id_taken");
        check(block(BlockCode::ApprovalRejected), 403, "approval_rejected");
        check(block(BlockCode::ApprovalExpired), 403, "approval_expired");
    }

    #[test]
    fn anthropic_callers_get_the_anthropic_envelope() {
        let response = ApiError::Unauthorized.into_dialect_response(Dialect::Anthropic);
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
}
