//! The audit trail as the API shows it: one object per audited change, and `auditEvents`,
//! an organization's trail a page at a time, narrowed by filters.

use async_graphql::{ComplexObject, Context, Enum, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};

use super::access::lookups::org_node;
use super::access::{ApiPermission, authorize};
use super::context::parse_id;
use super::cost;
use super::error::ApiError;

/// The largest page of `auditEvents`.
const MAX_PAGE: i32 = 500;

/// One audited change.
#[derive(SimpleObject)]
#[graphql(complex)]
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

#[ComplexObject]
impl AuditEvent {
    /// The device, read from the user agent (`Browser on System`, or `Unknown device`).
    async fn device(&self) -> String {
        super::sessions::device(self.user_agent.as_deref())
    }
}

/// Whether an audited attempt did what it set out to.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum AuditResult {
    Success,
    Failure,
}

impl AuditResult {
    fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
        }
    }
}

/// What a page of the trail is narrowed to; every field given must match.
#[derive(InputObject, Default)]
pub struct AuditEventFilter {
    /// Written at or after.
    pub from: Option<DateTime<Utc>>,
    /// Written before.
    pub to: Option<DateTime<Utc>>,
    pub actor_id: Option<ID>,
    /// The actor's email as it was when the event was written.
    pub actor_email: Option<String>,
    /// One action, e.g. `member.remove`.
    pub action: Option<String>,
    /// Actions that start with this, e.g. `member.` or `auth.sign_in`.
    pub action_prefix: Option<String>,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub result: Option<AuditResult>,
}

/// A page of the trail, newest first.
#[derive(SimpleObject)]
pub struct AuditEventPage {
    pub events: Vec<AuditEvent>,
    /// Pass as `after` for the next page.
    pub end_cursor: Option<String>,
    pub has_next_page: bool,
}

#[derive(Default)]
pub struct AuditQuery;

#[Object]
impl AuditQuery {
    /// The organization's trail, newest first, narrowed by `filter`: `first` events (1 to
    /// 500, default 50) after the cursor `after`. The account events of its members
    /// (sign-ins, failed ones, lockouts, password and email changes) are in it too. Needs
    /// `audit:*:read`.
    #[graphql(complexity = "cost::list(cost::page(first, 50, MAX_PAGE), child_complexity)")]
    async fn audit_events(
        &self,
        ctx: &Context<'_>,
        organization_id: ID,
        filter: Option<AuditEventFilter>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<AuditEventPage> {
        let org = org_node(ctx, parse_id("organizationId", &organization_id)?).await?;
        let granted = authorize(ctx, &org, ApiPermission::AUDIT_READ, "organization").await?;
        let first = first.unwrap_or(50);
        if !(1..=MAX_PAGE).contains(&first) {
            return Err(ApiError::bad_input(
                "first",
                format!("`first` must be between 1 and {MAX_PAGE}"),
            )
            .into());
        }
        let after = after
            .map(|cursor| {
                uuid::Uuid::parse_str(cursor.trim()).map_err(|_| {
                    ApiError::bad_input("after", "`after` is not a cursor of this list")
                })
            })
            .transpose()?;
        let filter = store_filter(filter.unwrap_or_default())?;
        let page = granted
            .store(ctx)
            .audit_page(org.id(), &filter, u64::try_from(first).unwrap_or(50), after)
            .await?;
        Ok(AuditEventPage {
            end_cursor: page.events.last().map(|e| e.id.to_string()),
            has_next_page: page.has_next,
            events: page.events.into_iter().map(AuditEvent::from).collect(),
        })
    }
}

/// The longest text a filter field takes.
const MAX_FILTER_CHARS: usize = 320;

/// The store's filter for `f`; BAD_USER_INPUT for a malformed field.
fn store_filter(f: AuditEventFilter) -> Result<crate::store::AuditFilter, ApiError> {
    let text = |field: &'static str, v: Option<String>| -> Result<Option<String>, ApiError> {
        match v.map(|v| v.trim().to_owned()) {
            Some(v) if v.is_empty() || v.chars().count() > MAX_FILTER_CHARS => {
                Err(ApiError::bad_input(
                    field,
                    format!("give 1 to {MAX_FILTER_CHARS} characters, or leave it out"),
                ))
            }
            other => Ok(other),
        }
    };
    if let (Some(from), Some(to)) = (f.from, f.to)
        && from >= to
    {
        return Err(ApiError::bad_input("to", "`to` must be later than `from`"));
    }
    Ok(crate::store::AuditFilter {
        from: f.from,
        to: f.to,
        actor_id: f.actor_id.map(|id| parse_id("actorId", &id)).transpose()?,
        actor_email: text("actorEmail", f.actor_email)?.map(|e| e.to_lowercase()),
        action: text("action", f.action)?,
        action_prefix: text("actionPrefix", f.action_prefix)?,
        target_type: text("targetType", f.target_type)?,
        target_id: text("targetId", f.target_id)?,
        result: f.result.map(|r| r.as_str().to_owned()),
    })
}
