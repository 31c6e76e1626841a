//! The audit trail: who changed what, when, from what to what, and why.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::auth::Actor;

mod store;

pub use store::AuditStore;

/// A change of state about to be written, with its audit entry. Built by services, written by
/// stores in the same transaction as the change itself.
#[derive(Clone, Debug)]
pub struct Change {
    pub at: DateTime<Utc>,
    pub actor: String,
    /// A dotted verb such as `key.create` or `flag.update`.
    pub action: String,
    pub target_type: String,
    pub target_id: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub reason: Option<String>,
}

impl Change {
    pub fn new(actor: &Actor, action: &str, target_type: &str, target_id: &str) -> Self {
        Self {
            at: Utc::now(),
            actor: actor.to_string(),
            action: action.to_owned(),
            target_type: target_type.to_owned(),
            target_id: target_id.to_owned(),
            before: None,
            after: None,
            reason: None,
        }
    }

    pub fn before(mut self, value: Value) -> Self {
        self.before = Some(value);
        self
    }

    pub fn after(mut self, value: Value) -> Self {
        self.after = Some(value);
        self
    }

    pub fn reason(mut self, reason: Option<String>) -> Self {
        self.reason = reason.filter(|r| !r.trim().is_empty());
        self
    }
}

/// One written audit entry.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    pub at: DateTime<Utc>,
    /// `user:NAME`, `key:NAME` or `system`.
    pub actor: String,
    pub action: String,
    pub target_type: String,
    pub target_id: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub reason: Option<String>,
}

/// Filters for reading the audit trail; results are newest first.
#[derive(Clone, Debug, Default)]
pub struct AuditQuery {
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub actor: Option<String>,
    /// Only entries with an id below this one (cursor for paging backwards).
    pub before_id: Option<i64>,
    pub limit: u32,
}

impl AuditQuery {
    pub const MAX_LIMIT: u32 = 1000;
    pub const DEFAULT_LIMIT: u32 = 100;
}

/// Reads the audit trail (every change writes its own entry through the stores' ports).
#[derive(Clone)]
pub struct AuditService {
    store: std::sync::Arc<dyn AuditStore>,
}

impl AuditService {
    pub fn new(store: std::sync::Arc<dyn AuditStore>) -> Self {
        Self { store }
    }

    /// Entries matching the query, newest first.
    pub async fn list(
        &self,
        query: &AuditQuery,
    ) -> Result<Vec<AuditEntry>, crate::store::StoreError> {
        self.store.list_audit(query).await
    }
}
