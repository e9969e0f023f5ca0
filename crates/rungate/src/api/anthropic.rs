//! Anthropic-dialect routes: Messages (governed; also at `/v1/v1/messages`, which some SDK
//! configurations produce) and token counting (forwarded, never charged).

use axum::extract::{Request, State};
use axum::response::Response;

use super::call::{Charging, proxied};
use crate::app::AppState;
use crate::proxy::Ingress;

/// `POST /v1/messages`
#[utoipa::path(post, path = "/v1/messages", tag = "proxy",
    responses((status = 200, description = "The provider's answer, JSON or SSE, with x-rungate-* headers"),
              (status = 400, description = "invalid_request"), (status = 401, description = "invalid_api_key"),
              (status = 403, description = "governance block"), (status = 409, description = "run_closed / run_id_taken"),
              (status = 502, description = "provider_error"), (status = 504, description = "provider_timeout")))]
pub async fn post_messages(State(gw): State<AppState>, request: Request) -> Response {
    proxied(
        gw,
        Ingress::Messages,
        "messages",
        Charging::Charged,
        request,
    )
    .await
}

/// `POST /v1/messages/count_tokens`
#[utoipa::path(post, path = "/v1/messages/count_tokens", tag = "proxy", responses((status = 200, description = "The provider's token count")))]
pub async fn post_count_tokens(State(gw): State<AppState>, request: Request) -> Response {
    proxied(
        gw,
        Ingress::Messages,
        "count_tokens",
        Charging::Uncharged,
        request,
    )
    .await
}
