//! Step 3 of the pipeline: the pinned policy's verdict on a call before anything is forwarded
//! — allowed models, unpriced models, and the run's budget. Admission returns the call's
//! [`Hold`]: the response side must settle it (or drop it, which releases it).

use serde_json::{Value, json};

use super::live::LiveRun;
use super::shared::SharedBooks;
use crate::api::error::{ApiError, Block, BlockCode};
use crate::budget::{self, CallEstimate, Hold, HourlySpend, Refusal};
use crate::money::UsdNanos;
use crate::policy::{self, Denial, PolicyVersion, RateRefusal, RateWindow};
use crate::providers::pricing::Price;
use crate::providers::{Provider, tokenizer};
use crate::run::RunId;
use crate::store::{HourlyCheck, RateCheck, Reservation, Reserved};
use rungate_wire::RequestFacts;

/// Checks the tools a non-streaming answer proposes against `blocked_tools` and `tool_limits`.
/// Proposals count toward a tool's limit together with the steps that report it.
pub async fn check_proposals(
    gw: &crate::app::Gateway,
    run: &LiveRun,
    dialect: rungate_wire::Dialect,
    answer: &[u8],
) -> Result<(), ApiError> {
    let Some(policy) = &run.policy else {
        return Ok(());
    };
    let doc = &policy.document;
    if doc.blocked_tools.is_none() && doc.tool_limits.is_none() {
        return Ok(());
    }
    let proposed = rungate_wire::proposed_tools(dialect, answer);
    let blocked = doc.blocked_tools.as_deref().unwrap_or_default();
    if let Some(tool) = proposed.iter().find(|t| blocked.contains(t)) {
        return Err(tool_blocked(&run.id, policy, tool, ToolUse::Proposed));
    }
    let mut distinct = proposed.clone();
    distinct.sort_unstable();
    distinct.dedup();
    for tool in &distinct {
        let Some(limit) = tool_limit(policy, tool) else {
            continue;
        };
        let count = proposed.iter().filter(|t| *t == tool).count() as u64;
        let reported = gw.stores.runs.tool_steps(&run.id, tool).await?;
        let before = super::shared::record_proposals(gw, run, tool, count).await?;
        if reported + before + count > limit {
            return Err(tool_limit_reached(
                &run.id,
                policy,
                tool,
                reported + before,
                limit,
            ));
        }
    }
    Ok(())
}

/// How a tool came to be checked: declared in a request, proposed by the model, or reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ToolUse {
    Declared,
    Proposed,
    Reported,
}

/// A tool's `tool_limits` entry in the policy.
pub fn tool_limit(policy: &PolicyVersion, tool: &str) -> Option<u64> {
    policy
        .document
        .tool_limits
        .as_ref()?
        .get(tool)
        .copied()
        .map(u64::from)
}

/// 403 `tool_blocked`, for a tool however it was used.
pub fn tool_blocked(run_id: &RunId, policy: &PolicyVersion, tool: &str, used: ToolUse) -> ApiError {
    let (message, recover) = match used {
        ToolUse::Declared => (
            format!("Tool {tool} is blocked by policy {}", policy.name),
            "remove the tool from the request's `tools`",
        ),
        ToolUse::Proposed => (
            format!(
                "The model proposed tool {tool}, which policy {} blocks",
                policy.name
            ),
            "remove the tool from the conversation",
        ),
        ToolUse::Reported => (
            format!("Tool {tool} is blocked by policy {}", policy.name),
            "do not call this tool in this run",
        ),
    };
    block(
        run_id,
        policy,
        BlockCode::ToolBlocked,
        message,
        json!({"tool": tool, "use": format!("{used:?}").to_lowercase()}),
        json!({"rule": "blocked_tools", "tool": tool, "how_to_recover": recover}),
    )
}

/// 403 `tool_limit_reached`: `used` counts reported steps and proposals so far.
pub fn tool_limit_reached(
    run_id: &RunId,
    policy: &PolicyVersion,
    tool: &str,
    used: u64,
    limit: u64,
) -> ApiError {
    block(
        run_id,
        policy,
        BlockCode::ToolLimitReached,
        format!("Tool {tool} may be used {limit} times per run"),
        json!({"tool": tool, "used": used, "limit": limit}),
        json!({"rule": "tool_limits", "tool": tool, "used": used.to_string(), "limit": limit.to_string(),
               "how_to_recover": "start a new run or raise the tool's limit"}),
    )
}

/// The agent-wide windows a call is checked against.
pub struct AgentWindows<'a> {
    pub agent_id: &'a str,
    /// Present when the run's policy sets `rate_limits`.
    pub rate: Option<&'a RateWindow>,
    /// Present when the run's policy sets `agent_hourly_limit_usd`.
    pub hour: Option<&'a HourlySpend>,
}

/// The run policy's per-agent hourly USD cap.
pub fn agent_hourly_limit(policy: &PolicyVersion) -> Option<UsdNanos> {
    policy
        .document
        .budget
        .as_ref()?
        .agent_hourly_limit_usd
        .and_then(UsdNanos::from_usd)
}

/// Checks the call against the run's policy and reserves its projected cost — in this
/// process's books, or in the shared books when several gateways serve the run.
#[allow(clippy::too_many_arguments)]
pub async fn admit(
    shared: Option<&SharedBooks>,
    run: &LiveRun,
    agent: &AgentWindows<'_>,
    provider: Provider,
    facts: &RequestFacts,
    body: &[u8],
    price: Option<Price>,
    now_ms: i64,
) -> Result<Hold, ApiError> {
    if let Some(policy) = &run.policy {
        if let Err(Denial::ModelNotAllowed { model, allowed }) =
            policy::check_model(&policy.document, provider.name(), &facts.model)
        {
            return Err(block(
                &run.id,
                policy,
                BlockCode::ModelNotAllowed,
                format!("Model {model} is not allowed by policy {}", policy.name),
                json!({"model": model, "allowed_models": allowed}),
                json!({"rule": "allowed_models", "how_to_recover": "use one of the allowed models"}),
            ));
        }
        let blocked = policy.document.blocked_tools.as_deref().unwrap_or_default();
        if let Some(tool) = facts.declared_tools.iter().find(|t| blocked.contains(t)) {
            return Err(tool_blocked(&run.id, policy, tool, ToolUse::Declared));
        }
        let caps = run.caps();
        let capped = caps.usd.is_some();
        let uncounted_ok = policy
            .document
            .budget
            .as_ref()
            .and_then(|b| b.unpriced_models.as_deref())
            == Some("allow_uncounted");
        if capped && price.is_none() && !uncounted_ok {
            return Err(block(
                &run.id,
                policy,
                BlockCode::ModelUnpriced,
                format!(
                    "Model {} has no price, so a USD cap cannot be enforced on it",
                    facts.model
                ),
                json!({"model": facts.model}),
                json!({"rule": "unpriced_models", "how_to_recover": "add the model to `pricing` in the gateway config, or set budget.unpriced_models: allow_uncounted"}),
            ));
        }
    }
    let input_tokens = budget::estimate_input_tokens(facts.prompt_chars);
    let rate_tokens = input_tokens + facts.max_output_tokens.unwrap_or(0);
    if let Some(policy) = &run.policy {
        if let Some(limits) = policy
            .document
            .rate_limits
            .as_ref()
            .filter(|_| shared.is_none())
        {
            let tokens = rate_tokens;
            run.rate
                .admit(limits, now_ms, tokens)
                .map_err(|r| rate_limited(run, policy, "run", r))?;
            if let Some(window) = agent.rate {
                window
                    .admit(limits, now_ms, tokens)
                    .map_err(|r| rate_limited(run, policy, "agent", r))?;
            }
        }
        if let (Some(limit), Some(hour)) = (agent_hourly_limit(policy), agent.hour) {
            let spent = hour.spent(now_ms);
            let estimate = budget::projected_cost(price, input_tokens, facts.max_output_tokens);
            if spent.saturating_add(estimate) > limit {
                return Err(hourly_block(run, policy, spent, limit, estimate));
            }
        }
    }
    let estimate = CallEstimate {
        input_tokens,
        max_output: facts.max_output_tokens,
        price,
    };
    if let Some(shared) = shared {
        let rates = shared_rate_checks(run, agent, rate_tokens);
        let hourly = run
            .policy
            .as_deref()
            .and_then(agent_hourly_limit)
            .map(|limit| HourlyCheck {
                agent_id: agent.agent_id.to_owned(),
                limit,
                estimate: budget::projected_cost(price, input_tokens, facts.max_output_tokens),
            });
        let asked = Asked {
            rates,
            hourly,
            estimate,
            now_ms,
        };
        return admit_shared(shared, run, asked, provider, facts, body).await;
    }
    let caps = run.caps();
    let refused = match run.books.admit(&caps, &estimate) {
        Ok(hold) => return Ok(hold),
        Err(refusal) => refusal,
    };
    // The cheap estimate errs high. Near the cap, count the real input tokens where the
    // model's tokenizer is known and judge the call on that figure instead.
    let exact = exact_input(provider, &refused, facts, body, input_tokens);
    let outcome = match exact {
        Some(input_tokens) => run.books.admit(
            &caps,
            &CallEstimate {
                input_tokens,
                ..estimate
            },
        ),
        None => Err(refused),
    };
    outcome.map_err(|refusal| match &run.policy {
        Some(policy) => budget_block(run, policy, refusal, &facts.model),
        None => ApiError::Internal("a run without a policy has no caps to refuse on".into()),
    })
}

/// The 402 of `agent_hourly_limit_usd`.
fn hourly_block(
    run: &LiveRun,
    policy: &PolicyVersion,
    spent: UsdNanos,
    limit: UsdNanos,
    estimate: UsdNanos,
) -> ApiError {
    block(
        &run.id,
        policy,
        BlockCode::HourlyCostExceeded,
        "Agent hourly cost limit reached.".to_owned(),
        json!({"cost_usd": spent.as_usd(), "agent_hourly_limit_usd": limit.as_usd(), "estimated_cost_usd": estimate.as_usd()}),
        json!({"rule": "agent_hourly_limit_usd", "agent_spend_last_hour_usd": spent.to_header(),
               "estimated_cost_usd": estimate.to_header(), "limit_usd": limit.to_header(),
               "how_to_recover": "wait for earlier spend to leave the one-hour window, or raise the limit"}),
    )
}

/// The real input tokens of a call refused near the cap, where the model's tokenizer is known
/// and counts fewer than the estimate.
fn exact_input(
    provider: Provider,
    refused: &Refusal,
    facts: &RequestFacts,
    body: &[u8],
    estimated: u64,
) -> Option<u64> {
    match (provider, refused) {
        (Provider::OpenAi, Refusal::Usd { .. } | Refusal::Tokens { .. }) => {
            tokenizer::count_openai_input(&facts.model, body).filter(|exact| *exact < estimated)
        }
        _ => None,
    }
}

/// What a call asks of the shared books.
struct Asked {
    rates: Vec<RateCheck>,
    hourly: Option<HourlyCheck>,
    estimate: CallEstimate,
    now_ms: i64,
}

/// The run's and the agent's `rate_limits` windows, as keys of the shared books.
fn shared_rate_checks(run: &LiveRun, agent: &AgentWindows<'_>, tokens: u64) -> Vec<RateCheck> {
    let Some(limits) = run
        .policy
        .as_ref()
        .and_then(|p| p.document.rate_limits.as_ref())
    else {
        return Vec::new();
    };
    vec![
        RateCheck {
            key: format!("run:{}", run.id),
            scope: "run",
            limits: limits.clone(),
            tokens,
        },
        RateCheck {
            key: format!("agent:{}", agent.agent_id),
            scope: "agent",
            limits: limits.clone(),
            tokens,
        },
    ]
}

/// Admission in the shared books: judged under the run's row lock (see
/// `store::postgres::writer`), retried once with the exact input count when the estimate is
/// what refused it.
async fn admit_shared(
    shared: &SharedBooks,
    run: &LiveRun,
    asked: Asked,
    provider: Provider,
    facts: &RequestFacts,
    body: &[u8],
) -> Result<Hold, ApiError> {
    let Asked {
        rates,
        hourly,
        estimate,
        now_ms,
    } = asked;
    let caps = run.caps();
    let nothing_to_hold = caps.usd.is_none() && caps.tokens.is_none() && caps.max_steps.is_none();
    if nothing_to_hold && rates.is_empty() && hourly.is_none() {
        // Nothing to reserve: one read tells whether another gateway closed the run, and the
        // local books (which refuse nothing without caps) hold the call.
        if let Some(refused) = shared.store.refusal(&run.id).await? {
            return Err(super::resolve::refusal(&run.id, refused));
        }
        return run
            .books
            .admit(&caps, &estimate)
            .map_err(|_| ApiError::Internal("uncapped books refused a call".into()));
    }
    let hold_id = format!("hold_{}", uuid::Uuid::now_v7().simple());
    let reservation = Reservation {
        run_id: run.id.clone(),
        hold_id: hold_id.clone(),
        gateway_id: shared.gateway_id.clone(),
        caps,
        call: estimate,
        rates,
        hourly,
        now_ms,
        expires_at_ms: shared.expiry(now_ms),
    };
    let mut answer = shared.store.reserve(reservation.clone()).await?;
    if let Reserved::Refused(refused) = &answer {
        if let Some(input_tokens) =
            exact_input(provider, refused, facts, body, estimate.input_tokens)
        {
            let exact = CallEstimate {
                input_tokens,
                ..estimate
            };
            answer = shared
                .store
                .reserve(Reservation {
                    call: exact,
                    ..reservation.clone()
                })
                .await?;
        }
    }
    match answer {
        Reserved::Admitted(admission) => Ok(Hold::shared(
            admission,
            shared.release.clone(),
            run.id.0.clone(),
            hold_id,
        )),
        Reserved::Refused(refusal) => Err(match &run.policy {
            Some(policy) => budget_block(run, policy, refusal, &facts.model),
            None => ApiError::Internal("a run without a policy has no caps to refuse on".into()),
        }),
        Reserved::RateLimited { scope, refusal } => Err(match &run.policy {
            Some(policy) => rate_limited(run, policy, scope, refusal),
            None => ApiError::Internal("a run without a policy has no rate limits".into()),
        }),
        Reserved::HourlyExceeded { spent } => Err(match (&run.policy, &reservation.hourly) {
            (Some(policy), Some(hourly)) => {
                hourly_block(run, policy, spent, hourly.limit, hourly.estimate)
            }
            _ => ApiError::Internal("an hourly refusal without an hourly limit".into()),
        }),
        Reserved::Closed(refused) => Err(super::resolve::refusal(&run.id, refused)),
    }
}

fn budget_block(run: &LiveRun, policy: &PolicyVersion, refusal: Refusal, model: &str) -> ApiError {
    let tripped = format!("llm.{model}");
    let recover = "start a new run with x-rungate-new-run: true or raise the cap";
    match refusal {
        Refusal::Steps { steps, limit } => block(
            &run.id,
            policy,
            BlockCode::RunawayPrevention,
            format!("Run reached its limit of {limit} steps"),
            json!({"steps": steps, "max_steps": limit}),
            json!({"rule": "max_steps", "steps": steps.to_string(), "max_steps": limit.to_string(),
                   "step_that_tripped": tripped, "how_to_recover": "start a new run with x-rungate-new-run: true or raise max_steps"}),
        ),
        Refusal::Usd {
            spend,
            reserved,
            estimate,
            limit,
        } => block(
            &run.id,
            policy,
            BlockCode::BudgetExceeded,
            "Run budget ceiling reached.".to_owned(),
            json!({"cost_usd": spend.as_usd(), "hard_limit_usd": limit.as_usd(), "reserved_usd": reserved.as_usd(), "estimated_cost_usd": estimate.as_usd()}),
            json!({"rule": "stop_on_budget", "cumulative_spend_usd": spend.to_header(), "reserved_usd": reserved.to_header(),
                   "estimated_cost_usd": estimate.to_header(), "limit_usd": limit.to_header(),
                   "enforcement": enforcement(run), "step_that_tripped": tripped, "how_to_recover": recover}),
        ),
        Refusal::Tokens {
            used,
            reserved,
            estimate,
            limit,
        } => block(
            &run.id,
            policy,
            BlockCode::TokenBudgetExceeded,
            "Run token budget reached.".to_owned(),
            json!({"tokens_used": used, "hard_limit_tokens": limit, "reserved_tokens": reserved, "estimated_tokens": estimate}),
            json!({"rule": "stop_on_token_budget", "cumulative_tokens": used.to_string(), "reserved_tokens": reserved.to_string(),
                   "estimated_tokens": estimate.to_string(), "limit_tokens": limit.to_string(),
                   "enforcement": enforcement(run), "step_that_tripped": tripped, "how_to_recover": recover}),
        ),
    }
}

fn enforcement(run: &LiveRun) -> &'static str {
    match run.caps().enforcement {
        budget::Enforcement::Projected => "projected",
        budget::Enforcement::Crossed => "crossed",
    }
}

/// A refusal carrying both shapes of SPEC §5; `context` gains the run and policy identity.
pub fn block(
    run_id: &RunId,
    policy: &PolicyVersion,
    code: BlockCode,
    message: String,
    details: Value,
    mut context: Value,
) -> ApiError {
    if let Some(object) = context.as_object_mut() {
        object.insert("run_id".into(), json!(run_id));
        object.insert("policy_id".into(), json!(policy.policy_id));
        object.insert("policy_name".into(), json!(policy.name));
        object.insert("policy_version".into(), json!(policy.version));
    }
    ApiError::blocked(Block {
        code,
        message,
        run_id: Some(run_id.to_string()),
        details,
        context,
        retry_after_s: None,
    })
}

/// The 429 of `rate_limits`, with the wait in `Retry-After`.
fn rate_limited(
    run: &LiveRun,
    policy: &PolicyVersion,
    scope: &str,
    refusal: RateRefusal,
) -> ApiError {
    let error = block(
        &run.id,
        policy,
        BlockCode::RateLimited,
        format!("Rate limit {} reached for this {scope}", refusal.limit),
        json!({"limit": refusal.limit, "scope": scope, "retry_after_s": refusal.retry_after_s}),
        json!({"rule": format!("rate_limits.{}", refusal.limit), "scope": scope,
               "retry_after_s": refusal.retry_after_s.to_string(), "how_to_recover": "retry after Retry-After seconds"}),
    );
    match error {
        ApiError::Blocked(mut block) => {
            block.retry_after_s = Some(refusal.retry_after_s);
            ApiError::Blocked(block)
        }
        other => other,
    }
}
