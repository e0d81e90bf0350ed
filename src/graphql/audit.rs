//! The audit trail as the API shows it: one object per audited change.

use async_graphql::{ID, SimpleObject};
use chrono::{DateTime, Utc};

/// One audited change.
#[derive(SimpleObject)]
pub struct AuditEvent {
    pub id: ID,
    pub actor_id: Option<ID>,
    /// The acting person's email when the event was written (kept after the account changes
    /// its email or is deleted).
    pub actor_email: Option<String>,
    /// `user`, `service_account` or `impersonation`; null on events older than these kinds.
    pub actor_kind: Option<String>,
    /// The API key (or impersonation session) the actor acted through.
    pub actor_credential_id: Option<ID>,
    /// Who acted as `actorId` through an impersonation.
    pub impersonator_id: Option<ID>,
    pub action: String,
    pub target_type: String,
    pub target_id: Option<String>,
    pub result: String,
    pub before: Option<async_graphql::Json<serde_json::Value>>,
    pub after: Option<async_graphql::Json<serde_json::Value>>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<crate::store::AuditEvent> for AuditEvent {
    fn from(e: crate::store::AuditEvent) -> Self {
        Self {
            id: ID(e.id.to_string()),
            actor_id: e.actor_id.map(|a| ID(a.to_string())),
            actor_email: e.actor_email,
            actor_kind: e.actor_kind,
            actor_credential_id: e.actor_credential_id.map(|a| ID(a.to_string())),
            impersonator_id: e.impersonator_id.map(|a| ID(a.to_string())),
            action: e.action,
            target_type: e.target_type,
            target_id: e.target_id,
            result: e.result,
            before: e.before.map(async_graphql::Json),
            after: e.after.map(async_graphql::Json),
            ip: e.ip,
            user_agent: e.user_agent,
            request_id: e.request_id,
            created_at: e.created_at,
        }
    }
}
