//! Persistence behind one trait per domain, so the domain and the proxy never see SQL and a
//! second backend (PostgreSQL) can be added beside `sqlite/` with the same file names. Each
//! trait method is one unit of work: methods that change a run write the step, its ledger
//! entries and their audit events in one transaction, so a crash can lose a whole step but
//! never half of one.

mod admin_tokens;
mod agents;
mod analytics;
mod gates;
mod holds;
mod keys;
mod policies;
pub mod postgres;
mod prices;
mod runs;
mod sessions;
mod sql;
pub mod sqlite;
mod webhooks;

use std::sync::Arc;

pub use admin_tokens::{AdminToken, AdminTokenStore, Scope};
pub use agents::{Agent, AgentStatus, AgentStore};
pub use analytics::{AnalyticsStore, FactFilter, RetentionCounts};
pub use gates::{GateFilter, GateReads, GateStore};
pub use holds::{ExpiredHolds, HoldStore, HourlyCheck, RateCheck, Reservation, Reserved};
pub use keys::{KeyStatus, ProviderKeyRecord, ProviderKeyStore};
pub use policies::PolicyStore;
pub use prices::{PriceStore, PriceTableRecord};
pub use runs::{AgentTotals, Crossing, RunFilter, RunReads, RunStore, StepRecord};
pub use sessions::{DashboardSession, SessionStore};
pub use webhooks::{Attempt, Delivery, DeliveryFilter, WebhookRecord, WebhookStore};

/// Why the store failed. Conflicts and missing rows are distinguished because the API maps
/// them to 409 and 404; everything else is a 500 with the detail kept in the log.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("corrupt row: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Engine(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A page of a list endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    pub limit: u32,
    pub offset: u32,
}

impl Default for Page {
    fn default() -> Self {
        Page {
            limit: 50,
            offset: 0,
        }
    }
}

/// Every store the gateway uses, each behind its domain trait.
#[derive(Clone)]
pub struct Stores {
    pub agents: Arc<dyn AgentStore>,
    pub keys: Arc<dyn ProviderKeyStore>,
    pub policies: Arc<dyn PolicyStore>,
    pub runs: Arc<dyn RunStore>,
    pub admin_tokens: Arc<dyn AdminTokenStore>,
    pub gates: Arc<dyn GateStore>,
    pub webhooks: Arc<dyn WebhookStore>,
    pub analytics: Arc<dyn AnalyticsStore>,
    pub sessions: Arc<dyn SessionStore>,
    pub prices: Arc<dyn PriceStore>,
}

impl Stores {
    pub fn from_backend<B>(backend: Arc<B>) -> Stores
    where
        B: AgentStore
            + ProviderKeyStore
            + PolicyStore
            + RunStore
            + AdminTokenStore
            + GateStore
            + WebhookStore
            + AnalyticsStore
            + SessionStore
            + PriceStore
            + 'static,
    {
        Stores {
            agents: backend.clone(),
            keys: backend.clone(),
            policies: backend.clone(),
            runs: backend.clone(),
            admin_tokens: backend.clone(),
            gates: backend.clone(),
            webhooks: backend.clone(),
            analytics: backend.clone(),
            sessions: backend.clone(),
            prices: backend,
        }
    }
}
