//! The audit trail: one row per change, written inside the change's own transaction.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use serde_json::Value;
use uuid::Uuid;

use entity::audit_event;

use super::{Store, StoreError};
use crate::domain::Actor;

/// What one audited change was about; the actor comes from the request.
pub(crate) struct Entry {
    pub organization_id: Option<Uuid>,
    pub action: &'static str,
    pub target_type: &'static str,
    pub target_id: Option<Uuid>,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

/// An audit event as it is read back.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    pub id: Uuid,
    pub organization_id: Option<Uuid>,
    pub actor_id: Option<Uuid>,
    /// The acting person's email when the event was written.
    pub actor_email: Option<String>,
    /// `user`, `service_account`, `impersonation`; `None` on older rows.
    pub actor_kind: Option<String>,
    /// The API key or impersonation session the actor acted through.
    pub actor_credential_id: Option<Uuid>,
    /// Who acted as `actor_id`, for an impersonation.
    pub impersonator_id: Option<Uuid>,
    pub action: String,
    pub target_type: String,
    pub target_id: Option<String>,
    pub result: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<audit_event::Model> for AuditEvent {
    fn from(m: audit_event::Model) -> Self {
        Self {
            id: m.id,
            organization_id: m.organization_id,
            actor_id: m.actor_id,
            actor_email: m.actor_email,
            actor_kind: m.actor_kind,
            actor_credential_id: m.actor_credential_id,
            impersonator_id: m.impersonator_id,
            action: m.action,
            target_type: m.target_type,
            target_id: m.target_id,
            result: m.result,
            before: m.before,
            after: m.after,
            ip: m.ip,
            user_agent: m.user_agent,
            request_id: m.request_id,
            created_at: m.created_at,
        }
    }
}

/// Writes one successful change on `conn`, which must be the change's transaction.
pub(crate) async fn record<C: ConnectionTrait>(
    conn: &C,
    actor: &Actor,
    entry: Entry,
) -> Result<(), DbErr> {
    write(conn, actor, entry, "success").await
}

/// Writes one refused attempt on `conn` (its own transaction: nothing else changed).
pub(crate) async fn record_failure<C: ConnectionTrait>(
    conn: &C,
    actor: &Actor,
    entry: Entry,
) -> Result<(), DbErr> {
    write(conn, actor, entry, "failure").await
}

async fn write<C: ConnectionTrait>(
    conn: &C,
    actor: &Actor,
    entry: Entry,
    result: &str,
) -> Result<(), DbErr> {
    audit_event::Entity::insert(audit_event::ActiveModel {
        id: Set(Uuid::now_v7()),
        organization_id: Set(entry.organization_id),
        actor_id: Set(actor.user_id),
        actor_email: Set(actor.email.clone()),
        actor_kind: Set(actor.user_id.map(|_| {
            if actor.impersonator_id.is_some() {
                "impersonation".to_owned()
            } else {
                actor.kind.as_str().to_owned()
            }
        })),
        actor_credential_id: Set(actor.credential_id),
        impersonator_id: Set(actor.impersonator_id),
        action: Set(entry.action.to_owned()),
        target_type: Set(entry.target_type.to_owned()),
        target_id: Set(entry.target_id.map(|id| id.to_string())),
        result: Set(result.to_owned()),
        before: Set(entry.before),
        after: Set(entry.after),
        ip: Set(actor.ip.clone()),
        user_agent: Set(actor.user_agent.clone()),
        request_id: Set(actor.request_id.clone()),
        // The system clock: when the row was written (its UUIDv7 id is from it too), not a
        // decision about time.
        created_at: Set(Utc::now()),
    })
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

impl Store {
    /// The newest audit events, newest first; of one organization, or of everything when `None`.
    pub async fn audit_events(
        &self,
        organization_id: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        let mut q = audit_event::Entity::find();
        if let Some(org) = organization_id {
            q = q.filter(audit_event::Column::OrganizationId.eq(org));
        }
        let rows = q
            .order_by_desc(audit_event::Column::CreatedAt)
            .order_by_desc(audit_event::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(AuditEvent::from).collect())
    }
}
