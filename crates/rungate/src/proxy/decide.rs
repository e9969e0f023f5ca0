//! Step 3 of the pipeline: the pinned policy's verdict on a call before anything is forwarded
//! — allowed models, unpriced models, and the run's budget. Admission returns the call's
//! [`Hold`]: the response side must settle it (or drop it, which releases it).

use serde_json::{Value, json};

use super::live::LiveRun;
use crate::api::error::{ApiError, Block, BlockCode};
use crate::budget::{self, CallEstimate, Hold, Refusal};
use crate::policy::{self, Denial, PolicyVersion};
use crate::providers::Provider;
use crate::providers::pricing::Price;
use rungate_wire::RequestFacts;

/// Checks the call against the run's policy and reserves its projected cost.
pub fn admit(
    run: &LiveRun,
    provider: Provider,
    facts: &RequestFacts,
    price: Option<Price>,
) -> Result<Hold, ApiError> {
    if let Some(policy) = &run.policy {
        if let Err(Denial::ModelNotAllowed { model, allowed }) =
            policy::check_model(&policy.document, provider.name(), &facts.model)
        {
            return Err(block(
                run,
                policy,
                BlockCode::ModelNotAllowed,
                format!("Model {model} is not allowed by policy {}", policy.name),
                json!({"model": model, "allowed_models": allowed}),
                json!({"rule": "allowed_models", "how_to_recover": "use one of the allowed models"}),
            ));
        }
        let capped = run.caps.usd.is_some();
        let uncounted_ok = policy
            .document
            .budget
            .as_ref()
            .and_then(|b| b.unpriced_models.as_deref())
            == Some("allow_uncounted");
        if capped && price.is_none() && !uncounted_ok {
            return Err(block(
                run,
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
    let estimate = CallEstimate {
        input_tokens: budget::estimate_input_tokens(facts.prompt_chars),
        max_output: facts.max_output_tokens,
        price,
    };
    run.books
        .admit(&run.caps, &estimate)
        .map_err(|refusal| match &run.policy {
            Some(policy) => budget_block(run, policy, refusal, &facts.model),
            None => ApiError::Internal("a run without a policy has no caps to refuse on".into()),
        })
}

fn budget_block(run: &LiveRun, policy: &PolicyVersion, refusal: Refusal, model: &str) -> ApiError {
    let tripped = format!("llm.{model}");
    let recover = "start a new run with x-rungate-new-run: true or raise the cap";
    match refusal {
        Refusal::Usd {
            spend,
            reserved,
            estimate,
            limit,
        } => block(
            run,
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
            run,
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
    match run.caps.enforcement {
        budget::Enforcement::Projected => "projected",
        budget::Enforcement::Crossed => "crossed",
    }
}

/// A refusal carrying both shapes of SPEC §5; `context` gains the run and policy identity.
fn block(
    run: &LiveRun,
    policy: &PolicyVersion,
    code: BlockCode,
    message: String,
    details: Value,
    mut context: Value,
) -> ApiError {
    if let Some(object) = context.as_object_mut() {
        object.insert("run_id".into(), json!(run.id));
        object.insert("policy_id".into(), json!(policy.policy_id));
        object.insert("policy_name".into(), json!(policy.name));
        object.insert("policy_version".into(), json!(policy.version));
    }
    ApiError::blocked(Block {
        code,
        message,
        run_id: Some(run.id.to_string()),
        details,
        context,
    })
}
