//! Where a call goes: the model name an agent sent becomes a provider and a bare model
//! ([`resolve_target`]), and the run's `routing` policy turns that into the ordered list of
//! provider keys the call may be tried on ([`plan`]). Both are decided before anything is
//! sent, so the attempt loop only walks a list.
//!
//! Model names, first match wins:
//! 1. an alias from the config (`model_aliases`) is replaced by what it stands for;
//! 2. `provider/model` (a provider kind, or the name of a provider key) goes to that provider;
//! 3. a bare name of a known family (`gpt-*`, `claude-*`, `gemini-*`) goes to that family's
//!    provider when the agent maps it or a real key of it exists — never to the demo provider
//!    behind the operator's back;
//! 4. anything else goes to the provider of the endpoint it was sent to — or, for OpenAI-format
//!    calls of an agent that maps an `openai_compatible` key and no `openai` one, to that key
//!    (a self-hosted model).

use std::sync::Arc;

use super::directory::{Route, RouteError};
use crate::app::Gateway;
use crate::policy::Routing;
use crate::providers::Provider;
use crate::store::Agent;

/// The provider (or key) and bare model a call asks for.
#[derive(Clone, Debug)]
pub struct Target {
    pub provider: Provider,
    /// The model name the provider knows (prefix and alias resolved).
    pub model: String,
    /// The key a `key-name/model` prefix chose, if any.
    pub key: Option<Route>,
}

/// One provider key a call may be tried on, with the model name to ask it for.
#[derive(Clone, Debug)]
pub struct Candidate {
    pub route: Route,
    pub model: String,
    /// How the chain named it (`anthropic`, `my-vllm`), for audit and error details.
    pub label: Arc<str>,
}

impl Candidate {
    pub fn provider(&self) -> Provider {
        self.route.provider
    }
}

/// The candidates in order, and the chain entries left out (with why), for the audit.
#[derive(Debug, Default)]
pub struct Plan {
    pub candidates: Vec<Candidate>,
    pub left_out: Vec<(String, String)>,
}

pub async fn resolve_target(
    gw: &Gateway,
    agent: &Agent,
    ingress: Provider,
    requested: &str,
) -> Result<Target, RouteError> {
    let name = gw
        .config
        .model_aliases
        .get(requested)
        .map_or(requested, String::as_str);
    if let Some((prefix, model)) = name.split_once('/') {
        if let Some(provider) = Provider::parse(prefix) {
            return Ok(Target {
                provider,
                model: model.to_owned(),
                key: None,
            });
        }
        if let Some(route) = gw.directory.route_by_key_name(prefix).await? {
            return Ok(Target {
                provider: route.provider,
                model: model.to_owned(),
                key: Some(route),
            });
        }
    }
    let provider = match Provider::of_model(name) {
        Some(family) if family == ingress => ingress,
        Some(family)
            if agent.provider_keys.contains_key(family.name())
                || gw.directory.has_real_route(agent, family).await =>
        {
            family
        }
        // An agent whose OpenAI-format traffic goes to a self-hosted endpoint.
        _ if ingress == Provider::OpenAi
            && !agent.provider_keys.contains_key(Provider::OpenAi.name())
            && agent
                .provider_keys
                .contains_key(Provider::OpenAiCompatible.name()) =>
        {
            Provider::OpenAiCompatible
        }
        _ => ingress,
    };
    Ok(Target {
        provider,
        model: name.to_owned(),
        key: None,
    })
}

/// The key the target names, or the agent's route to the target's provider.
pub async fn target_route(
    gw: &Gateway,
    agent: &Agent,
    target: &Target,
) -> Result<Route, RouteError> {
    match &target.key {
        Some(route) => Ok(route.clone()),
        None => gw.directory.route(agent, target.provider).await,
    }
}

/// The keys to try: first the target's own (`first`, from [`target_route`]), then the
/// policy's `default_chain` entries that reach a different key and know the model (through
/// `model_map`, or because the entry is of the model's own family). An entry that cannot be routed (no key, a disabled key) is
/// left out, the target's own included when the chain has another; with no candidate at all,
/// the target's route error is the caller's.
pub async fn plan(
    gw: &Gateway,
    agent: &Agent,
    target: &Target,
    first: Result<Route, RouteError>,
    routing: Option<&Routing>,
) -> Result<Plan, RouteError> {
    let mut plan = Plan::default();
    let first_error = match first {
        Ok(route) => {
            plan.candidates.push(Candidate {
                route,
                model: target.model.clone(),
                label: Arc::from(target.provider.name()),
            });
            None
        }
        Err(RouteError::Store(err)) => return Err(RouteError::Store(err)),
        Err(err) => Some(err),
    };
    let Some(routing) = routing else {
        return match first_error {
            Some(err) => Err(err),
            None => Ok(plan),
        };
    };
    if let Some(err) = &first_error {
        plan.left_out
            .push((target.provider.name().to_owned(), err.to_string()));
    }
    for entry in &routing.default_chain {
        let route = match Provider::parse(entry) {
            Some(provider) => gw.directory.route(agent, provider).await.map(Some),
            None => gw.directory.route_by_key_name(entry).await,
        };
        let route = match route {
            Ok(Some(route)) => route,
            Ok(None) => {
                plan.left_out
                    .push((entry.clone(), "no provider or key has this name".into()));
                continue;
            }
            Err(err) => {
                plan.left_out.push((entry.clone(), err.to_string()));
                continue;
            }
        };
        if plan
            .candidates
            .iter()
            .any(|c| c.route.key_id == route.key_id)
        {
            continue;
        }
        let mapped = routing
            .mapped_model(&target.model, entry)
            .or_else(|| routing.mapped_model(&target.model, route.provider.name()))
            .map(str::to_owned);
        let same_family = Provider::of_model(&target.model).is_none_or(|f| f == route.provider)
            && route.provider == target.provider;
        let model = match (mapped, same_family) {
            (Some(model), _) => model,
            (None, true) => target.model.clone(),
            (None, false) => {
                plan.left_out.push((
                    entry.clone(),
                    format!(
                        "routing.model_map has no {entry} model for {}",
                        target.model
                    ),
                ));
                continue;
            }
        };
        plan.candidates.push(Candidate {
            route,
            model,
            label: Arc::from(entry.as_str()),
        });
    }
    match (plan.candidates.is_empty(), first_error) {
        (true, Some(err)) => Err(err),
        (true, None) => Err(RouteError::NoKey {
            provider: target.provider.name(),
        }),
        (false, _) => Ok(plan),
    }
}
