//! Read-mostly caches in front of the store for what every proxied call looks up: the agent
//! behind a token, the decrypted provider key to forward with, and pinned policy versions.
//! Each is a `RwLock<HashMap>` read without contention on the hot path; the admin API calls the
//! `forget_*` methods after every change, so a disabled agent or rotated key takes effect on the
//! next call. Policy versions are immutable and never need forgetting.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::policy::PolicyVersion;
use crate::providers::Provider;
use crate::providers::pricing::KeyPrices;
use crate::security::{MasterKey, Secret, TokenHash, hash_token};
use crate::store::{Agent, KeyStatus, Page, StoreError, StoreResult, Stores};

/// Where to send a call and with which credential.
#[derive(Clone, Debug)]
pub struct Route {
    pub provider: Provider,
    /// Parsed once when the route is cached: forwarding only swaps in the path.
    pub base_url: Arc<reqwest::Url>,
    pub api_key: Option<Arc<Secret<String>>>,
    /// The provider key id, or `demo:<provider>` for the built-in provider.
    pub key_id: Arc<str>,
    /// The key's own prices, which beat the price table and the config's.
    pub pricing: Option<Arc<KeyPrices>>,
}

impl Route {
    pub fn is_demo(&self) -> bool {
        self.key_id.starts_with("demo")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    #[error("no active {provider} provider key is configured; add one with `rungate keys add`")]
    NoKey { provider: &'static str },
    #[error("provider key {key_id} cannot be used: {reason}")]
    BadKey { key_id: String, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct Directory {
    stores: Stores,
    master_key: MasterKey,
    demo_base_url: Option<Arc<str>>,
    agents: RwLock<HashMap<TokenHash, Arc<Agent>>>,
    keys: RwLock<HashMap<String, Route>>,
    default_keys: RwLock<HashMap<Provider, Option<Route>>>,
    /// Provider key names (as a model prefix or a routing chain entry names them) → id.
    key_names: RwLock<HashMap<String, Option<String>>>,
    policies: RwLock<HashMap<(String, i64), Arc<PolicyVersion>>>,
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Directory {
    pub fn new(stores: Stores, master_key: MasterKey, demo_base_url: Option<String>) -> Directory {
        Directory {
            stores,
            master_key,
            demo_base_url: demo_base_url.map(Arc::from),
            agents: RwLock::default(),
            keys: RwLock::default(),
            default_keys: RwLock::default(),
            key_names: RwLock::default(),
            policies: RwLock::default(),
        }
    }

    pub fn master_key(&self) -> &MasterKey {
        &self.master_key
    }

    pub fn demo_base_url(&self) -> Option<&str> {
        self.demo_base_url.as_deref()
    }

    /// The agent holding `token`, or `None` for an unknown token.
    pub async fn agent_by_token(&self, token: &str) -> StoreResult<Option<Arc<Agent>>> {
        let hash = hash_token(token);
        if let Some(agent) = read(&self.agents).get(&hash) {
            return Ok(Some(agent.clone()));
        }
        match self.stores.agents.agent_by_token(&hash).await {
            Ok(agent) => {
                let agent = Arc::new(agent);
                write(&self.agents).insert(hash, agent.clone());
                Ok(Some(agent))
            }
            Err(StoreError::NotFound) => Ok(None),
            Err(err) => Err(err),
        }
    }

    pub fn forget_agent(&self, agent_id: &str) {
        write(&self.agents).retain(|_, agent| agent.id != agent_id);
    }

    pub fn forget_keys(&self) {
        write(&self.keys).clear();
        write(&self.default_keys).clear();
        write(&self.key_names).clear();
    }

    /// The route of the active provider key called `name`; `None` when no key has that name.
    pub async fn route_by_key_name(&self, name: &str) -> Result<Option<Route>, RouteError> {
        let cached = read(&self.key_names).get(name).cloned();
        let id = match cached {
            Some(id) => id,
            None => {
                let id = match self.stores.keys.key_by_name(name).await {
                    Ok(key) => Some(key.id),
                    Err(StoreError::NotFound) => None,
                    Err(err) => return Err(err.into()),
                };
                write(&self.key_names).insert(name.to_owned(), id.clone());
                id
            }
        };
        match id {
            Some(id) => self.key_route(&id).await.map(Some),
            None => Ok(None),
        }
    }

    /// Does `agent` reach `provider` with a real key (its own mapping or a default key), as
    /// opposed to the demo provider or nothing?
    pub async fn has_real_route(&self, agent: &Agent, provider: Provider) -> bool {
        self.route(agent, provider)
            .await
            .is_ok_and(|route| !route.is_demo())
    }

    /// The route for `agent` to `provider`: its mapped key, else the newest active key of that
    /// provider, else the built-in demo provider when enabled.
    pub async fn route(&self, agent: &Agent, provider: Provider) -> Result<Route, RouteError> {
        if let Some(key_id) = agent.provider_keys.get(provider.name()) {
            return self.key_route(key_id).await;
        }
        if let Some(cached) = read(&self.default_keys).get(&provider) {
            return cached.clone().ok_or(RouteError::NoKey {
                provider: provider.name(),
            });
        }
        let (keys, _) = self
            .stores
            .keys
            .list_keys(
                Some(provider.name()),
                Some(KeyStatus::Active),
                Page {
                    limit: 1,
                    offset: 0,
                },
            )
            .await?;
        let route = match keys.first() {
            Some(key) => Some(self.key_route(&key.id).await?),
            None => self
                .demo_base_url
                .as_ref()
                .and_then(|base_url| reqwest::Url::parse(base_url).ok())
                .map(|base_url| Route {
                    provider,
                    base_url: Arc::new(base_url),
                    api_key: None,
                    // One breaker per demo provider, as for real keys.
                    key_id: Arc::from(format!("demo:{}", provider.name())),
                    pricing: None,
                }),
        };
        write(&self.default_keys).insert(provider, route.clone());
        route.ok_or(RouteError::NoKey {
            provider: provider.name(),
        })
    }

    async fn key_route(&self, key_id: &str) -> Result<Route, RouteError> {
        if let Some(route) = read(&self.keys).get(key_id) {
            return Ok(route.clone());
        }
        let bad = |reason: &str| RouteError::BadKey {
            key_id: key_id.to_owned(),
            reason: reason.to_owned(),
        };
        let record = match self.stores.keys.get_key(key_id).await {
            Err(StoreError::NotFound) => return Err(bad("it does not exist")),
            other => other?,
        };
        if record.status != KeyStatus::Active {
            return Err(bad("it is disabled"));
        }
        let provider = Provider::parse(&record.provider).ok_or_else(|| bad("unknown provider"))?;
        let secret = self
            .master_key
            .decrypt(&record.encrypted_key)
            .map_err(|e| bad(&e.to_string()))?;
        let base_url = match (&record.base_url, provider.default_base_url()) {
            (Some(base_url), _) => base_url.clone(),
            (None, Some(public)) => public.to_owned(),
            (None, None) => return Err(bad("it has no base_url, which this provider needs")),
        };
        let base_url = reqwest::Url::parse(&base_url)
            .map_err(|e| bad(&format!("its base_url {base_url:?} is not a URL: {e}")))?;
        let route = Route {
            provider,
            base_url: Arc::new(base_url),
            api_key: Some(Arc::new(secret)),
            key_id: Arc::from(record.id.as_str()),
            pricing: KeyPrices::new(&record.id, &record.pricing).map(Arc::new),
        };
        write(&self.keys).insert(key_id.to_owned(), route.clone());
        Ok(route)
    }

    /// A pinned policy version; `None` id means "no policy".
    pub async fn policy(&self, policy_id: &str, version: i64) -> StoreResult<Arc<PolicyVersion>> {
        let key = (policy_id.to_owned(), version);
        if let Some(policy) = read(&self.policies).get(&key) {
            return Ok(policy.clone());
        }
        let policy = Arc::new(
            self.stores
                .policies
                .policy_version(policy_id, version)
                .await?,
        );
        write(&self.policies).insert(key, policy.clone());
        Ok(policy)
    }
}
