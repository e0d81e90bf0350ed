//! The audit trail: one row per change, written inside the change's own transaction, and
//! read back a page at a time.
//!
//! An event of no organization about an account (its target, or else the person acting: a
//! password sign-in, a failed one, a lockout, a password or email change, a sign-out) is
//! written once for each organization the account is a member of, so that each one's admins see their members' account events in their own trail
//! (once, with no organization, for an account of none).

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, LikeExpr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use serde_json::Value;
use uuid::Uuid;

use entity::{audit_chain as audit_chains, audit_event};

use super::{Store, StoreError};
use crate::audit_chain;
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
    // The account an event of no organization is about: its target, or the person acting.
    let account = match (entry.target_type, entry.target_id) {
        ("user", Some(user)) => Some(user),
        _ => actor
            .user_id
            .filter(|_| actor.kind == crate::domain::ActorKind::User),
    };
    let organizations = match (entry.organization_id, account) {
        (None, Some(account)) => {
            // In one order, so that two of these never wait on each other's chain heads.
            let orgs: Vec<Option<Uuid>> = entity::membership::Entity::find()
                .filter(entity::membership::Column::UserId.eq(account))
                .order_by_asc(entity::membership::Column::OrganizationId)
                .all(conn)
                .await?
                .into_iter()
                .map(|m| Some(m.organization_id))
                .collect();
            if orgs.is_empty() { vec![None] } else { orgs }
        }
        (org, _) => vec![org],
    };
    let actor_kind = actor.user_id.map(|_| {
        if actor.impersonator_id.is_some() {
            "impersonation"
        } else {
            actor.kind.as_str()
        }
    });
    let target_id = entry.target_id.map(|id| id.to_string());
    for organization_id in organizations {
        let chain = audit_chain::chain_of(organization_id);
        let (seq, prev_hash) = advance(conn, chain).await?;
        // After the chain's head is held: ids and times grow along the chain.
        let id = Uuid::now_v7();
        // The system clock: when the row was written (its UUIDv7 id is from it too), not a
        // decision about time. Microseconds: what every database keeps, so what is hashed.
        let created_at = audit_chain::to_micros(Utc::now());
        let hash = audit_chain::Hashed {
            id,
            organization_id,
            actor_id: actor.user_id,
            actor_email: actor.email.as_deref(),
            actor_kind,
            actor_credential_id: actor.credential_id,
            impersonator_id: actor.impersonator_id,
            action: entry.action,
            target_type: entry.target_type,
            target_id: target_id.as_deref(),
            result,
            before: entry.before.as_ref(),
            after: entry.after.as_ref(),
            ip: actor.ip.as_deref(),
            user_agent: actor.user_agent.as_deref(),
            request_id: actor.request_id.as_deref(),
            created_at,
        }
        .hash(&prev_hash);
        audit_event::Entity::insert(audit_event::ActiveModel {
            id: Set(id),
            organization_id: Set(organization_id),
            actor_id: Set(actor.user_id),
            actor_email: Set(actor.email.clone()),
            actor_kind: Set(actor_kind.map(str::to_owned)),
            actor_credential_id: Set(actor.credential_id),
            impersonator_id: Set(actor.impersonator_id),
            action: Set(entry.action.to_owned()),
            target_type: Set(entry.target_type.to_owned()),
            target_id: Set(target_id.clone()),
            result: Set(result.to_owned()),
            before: Set(entry.before.clone()),
            after: Set(entry.after.clone()),
            ip: Set(actor.ip.clone()),
            user_agent: Set(actor.user_agent.clone()),
            request_id: Set(actor.request_id.clone()),
            created_at: Set(created_at),
            chain_id: Set(Some(chain)),
            seq: Set(Some(seq)),
            prev_hash: Set(Some(prev_hash)),
            hash: Set(Some(hash.clone())),
        })
        .exec_without_returning(conn)
        .await?;
        audit_chains::Entity::update_many()
            .col_expr(audit_chains::Column::Hash, Expr::value(hash))
            .filter(audit_chains::Column::ChainId.eq(chain))
            .exec(conn)
            .await?;
    }
    Ok(())
}

/// Takes the next place in `chain`, holding its head (a row lock until the transaction ends):
/// the new event's seq and the hash of the event before it. The head's hash is the new
/// event's once it is written.
async fn advance<C: ConnectionTrait>(conn: &C, chain: Uuid) -> Result<(i64, String), DbErr> {
    audit_chains::Entity::insert(audit_chains::ActiveModel {
        chain_id: Set(chain),
        seq: Set(1),
        hash: Set(audit_chain::GENESIS.to_owned()),
        // The system clock: when the head moved, not a decision about time.
        updated_at: Set(Utc::now()),
    })
    .on_conflict(
        OnConflict::column(audit_chains::Column::ChainId)
            .value(
                audit_chains::Column::Seq,
                Expr::col((audit_chains::Entity, audit_chains::Column::Seq)).add(1),
            )
            .update_column(audit_chains::Column::UpdatedAt)
            .to_owned(),
    )
    .exec_without_returning(conn)
    .await?;
    let head = audit_chains::Entity::find_by_id(chain)
        .one(conn)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("audit chain {chain}")))?;
    Ok((head.seq, head.hash))
}

/// What a page of the trail is narrowed to; every field given must match.
#[derive(Debug, Default, Clone)]
pub struct AuditFilter {
    /// Written at or after.
    pub from: Option<DateTime<Utc>>,
    /// Written before.
    pub to: Option<DateTime<Utc>>,
    pub actor_id: Option<Uuid>,
    /// The actor's email as it was (lowercased).
    pub actor_email: Option<String>,
    pub action: Option<String>,
    /// Actions that start with this (`member.`).
    pub action_prefix: Option<String>,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    /// `success` or `failure`.
    pub result: Option<String>,
}

/// A page of the trail, newest first.
#[derive(Debug)]
pub struct AuditPage {
    pub events: Vec<AuditEvent>,
    /// Whether older events match too (ask again `after` the last id).
    pub has_next: bool,
}

/// `value` for a LIKE pattern that matches it literally, then anything.
fn prefix_pattern(value: &str) -> String {
    let mut pattern = String::with_capacity(value.len() + 1);
    for c in value.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

impl Store {
    /// A page of `organization_id`'s trail matching `filter`, newest first: at most `first`
    /// events older than the event `after` (the last of the previous page).
    pub async fn audit_page(
        &self,
        organization_id: Uuid,
        filter: &AuditFilter,
        first: u64,
        after: Option<Uuid>,
    ) -> Result<AuditPage, StoreError> {
        use audit_event::Column as C;
        let mut q = audit_event::Entity::find().filter(C::OrganizationId.eq(organization_id));
        if let Some(after) = after {
            q = q.filter(C::Id.lt(after));
        }
        if let Some(from) = filter.from {
            q = q.filter(C::CreatedAt.gte(from));
        }
        if let Some(to) = filter.to {
            q = q.filter(C::CreatedAt.lt(to));
        }
        if let Some(actor) = filter.actor_id {
            q = q.filter(C::ActorId.eq(actor));
        }
        if let Some(email) = &filter.actor_email {
            q = q.filter(C::ActorEmail.eq(email.as_str()));
        }
        if let Some(action) = &filter.action {
            q = q.filter(C::Action.eq(action.as_str()));
        }
        if let Some(prefix) = &filter.action_prefix {
            let like = LikeExpr::new(prefix_pattern(prefix)).escape('\\');
            q = q.filter(C::Action.like(like));
        }
        if let Some(t) = &filter.target_type {
            q = q.filter(C::TargetType.eq(t.as_str()));
        }
        if let Some(t) = &filter.target_id {
            q = q.filter(C::TargetId.eq(t.as_str()));
        }
        if let Some(result) = &filter.result {
            q = q.filter(C::Result.eq(result.as_str()));
        }
        let mut rows = q
            .order_by_desc(C::Id)
            .limit(first.saturating_add(1))
            .all(&self.db)
            .await?;
        let has_next = rows.len() as u64 > first;
        rows.truncate(usize::try_from(first).unwrap_or(usize::MAX));
        Ok(AuditPage {
            events: rows.into_iter().map(AuditEvent::from).collect(),
            has_next,
        })
    }

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

/// How an organization's chain verified, as `audit verify` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    pub organization_id: Uuid,
    pub slug: String,
    pub verdict: audit_chain::Verdict,
}

impl Store {
    /// Verifies the audit chain of the organization with this slug against its head.
    /// NOT_FOUND (`organization`) for an unknown slug. Reads the whole chain into memory.
    pub async fn verify_audit_chain(&self, slug: &str) -> Result<ChainReport, StoreError> {
        let org = entity::organization::Entity::find()
            .filter(entity::organization::Column::Slug.eq(slug))
            .one(&self.db)
            .await?
            .ok_or(StoreError::NotFound("organization"))?;
        let mut rows = audit_event::Entity::find()
            .filter(audit_event::Column::OrganizationId.eq(org.id))
            .all(&self.db)
            .await?;
        rows.sort_by_key(|r| (r.seq.is_some(), r.seq, r.id));
        let head = audit_chains::Entity::find_by_id(audit_chain::chain_of(Some(org.id)))
            .one(&self.db)
            .await?
            .map(|h| h.seq);
        let links: Vec<audit_chain::Link<'_>> = rows
            .iter()
            .map(|r| audit_chain::Link {
                seq: r.seq,
                event: audit_chain::Hashed {
                    id: r.id,
                    organization_id: r.organization_id,
                    actor_id: r.actor_id,
                    actor_email: r.actor_email.as_deref(),
                    actor_kind: r.actor_kind.as_deref(),
                    actor_credential_id: r.actor_credential_id,
                    impersonator_id: r.impersonator_id,
                    action: &r.action,
                    target_type: &r.target_type,
                    target_id: r.target_id.as_deref(),
                    result: &r.result,
                    before: r.before.as_ref(),
                    after: r.after.as_ref(),
                    ip: r.ip.as_deref(),
                    user_agent: r.user_agent.as_deref(),
                    request_id: r.request_id.as_deref(),
                    created_at: r.created_at,
                },
                prev_hash: r.prev_hash.as_deref(),
                hash: r.hash.as_deref(),
            })
            .collect();
        Ok(ChainReport {
            organization_id: org.id,
            slug: org.slug.clone(),
            verdict: audit_chain::verify(&links, head),
        })
    }
}
