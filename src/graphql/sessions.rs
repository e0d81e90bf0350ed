//! Active sessions: one's own (list, revoke one, revoke all others) and a member's, for an
//! organization's administrators (list, sign out everywhere).
//!
//! A revocation commits, then is announced on the bus: the session cache refuses the session
//! at once on this instance and within the propagation bound on the others.

use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::access::{ApiPermission, authorize};
use super::context::{ContextExt, parse_id};
use super::cost;
use crate::domain;
use crate::graphql::access::lookups::org_node;

/// A live session of an account (never its token).
#[derive(SimpleObject)]
pub struct ActiveSession {
    pub id: ID,
    /// Browser and system read from the user agent, e.g. `Firefox on Linux`; `Unknown device`
    /// when it tells neither.
    pub device: String,
    /// How it was opened: `password`, `bootstrap`, ...
    pub method: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub signed_in_at: DateTime<Utc>,
    pub last_active_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// Whether this is the session of the request asking.
    pub current: bool,
    /// An impersonation: who acts as the account through this session, and why.
    pub impersonator_id: Option<ID>,
    pub impersonation_reason: Option<String>,
}

impl ActiveSession {
    fn new(s: domain::Session, current: Uuid) -> Self {
        Self {
            id: ID(s.id.to_string()),
            device: device(s.user_agent.as_deref()),
            current: s.id == current,
            impersonator_id: s.impersonator_id.map(|u| ID(u.to_string())),
            impersonation_reason: s.impersonation_reason,
            method: s.method,
            ip: s.ip,
            user_agent: s.user_agent,
            signed_in_at: s.created_at,
            last_active_at: s.last_active_at,
            expires_at: s.expires_at,
        }
    }
}

/// `sessions` (most recently active first) as the API shows them to the holder of session
/// `current`: that one pinned first.
fn listed(sessions: Vec<domain::Session>, current: Uuid) -> Vec<ActiveSession> {
    let mut listed: Vec<ActiveSession> = sessions
        .into_iter()
        .map(|s| ActiveSession::new(s, current))
        .collect();
    // A stable sort keeps the store's order among the others.
    listed.sort_by_key(|s| !s.current);
    listed
}

/// A readable device from a user agent: `Browser on System`, either alone, or
/// `Unknown device`.
pub fn device(user_agent: Option<&str>) -> String {
    let known =
        |v: &str| (!v.is_empty() && v != woothee::woothee::VALUE_UNKNOWN).then(|| v.to_owned());
    let parsed = user_agent.and_then(|ua| woothee::parser::Parser::new().parse(ua));
    let (browser, os) = match &parsed {
        Some(r) => (known(r.name), known(r.os)),
        None => (None, None),
    };
    match (browser, os) {
        (Some(b), Some(o)) => format!("{b} on {o}"),
        (Some(one), None) | (None, Some(one)) => one,
        (None, None) => "Unknown device".to_owned(),
    }
}

#[derive(Default)]
pub struct SessionQuery;

#[Object]
impl SessionQuery {
    /// The caller's live sessions: the current one first, then the most recently active
    /// (impersonations of the account among them, naming who and why). Needs a session of the
    /// account's own (not an impersonation).
    #[graphql(complexity = "cost::list(cost::UNPAGED, child_complexity)")]
    async fn my_sessions(&self, ctx: &Context<'_>) -> Result<Vec<ActiveSession>> {
        let (user, session) = ctx.signed_in()?;
        ctx.not_impersonating()?;
        // INVARIANT: the caller's own account or memberships, of no organization.
        let mut sessions = ctx
            .unchecked_store()
            .live_sessions(user.id, ctx.services().clock().now())
            .await?;
        // An SSO session sees no sessions opened elsewhere.
        if let Some(own) = session.organization_id {
            sessions.retain(|s| s.organization_id == Some(own));
        }
        Ok(listed(sessions, session.id))
    }

    /// A member's live sessions, most recently active first. Needs `members:*:manage` at the
    /// organization; the user must be a member of it.
    #[graphql(complexity = "cost::list(cost::UNPAGED, child_complexity)")]
    async fn member_sessions(
        &self,
        ctx: &Context<'_>,
        organization_id: ID,
        user_id: ID,
    ) -> Result<Vec<ActiveSession>> {
        let (_, session) = ctx.signed_in()?;
        let org_id = parse_id("organizationId", &organization_id)?;
        let user_id = parse_id("userId", &user_id)?;
        let org = org_node(ctx, org_id).await?;
        let granted = authorize(ctx, &org, ApiPermission::MEMBERS_MANAGE, "organization").await?;
        let sessions = granted
            .store(ctx)
            .member_sessions(org_id, user_id, ctx.services().clock().now())
            .await?;
        Ok(listed(sessions, session.id))
    }
}

#[derive(InputObject)]
pub struct RevokeSessionInput {
    pub session_id: ID,
}

#[derive(SimpleObject)]
pub struct RevokeSessionPayload {
    pub session_id: ID,
    /// The revoked session was the one of this request: the caller is signed out.
    pub signed_out: bool,
}

#[derive(SimpleObject)]
pub struct RevokeSessionsPayload {
    pub revoked_count: i32,
}

#[derive(InputObject)]
pub struct SignOutMemberEverywhereInput {
    pub organization_id: ID,
    pub user_id: ID,
}

#[derive(Default)]
pub struct SessionMutation;

#[Object]
impl SessionMutation {
    /// Revokes one of the caller's own live sessions (the current one signs the caller out);
    /// anyone else's is NOT_FOUND. Needs a session.
    async fn revoke_session(
        &self,
        ctx: &Context<'_>,
        input: RevokeSessionInput,
    ) -> Result<RevokeSessionPayload> {
        let (user, current) = ctx.account_wide()?;
        let session_id = parse_id("sessionId", &input.session_id)?;
        // INVARIANT: the caller's own account or memberships, of no organization.
        ctx.unchecked_store()
            .revoke_own_session(user.id, session_id, &ctx.request().actor)
            .await?;
        Ok(RevokeSessionPayload {
            session_id: input.session_id,
            signed_out: session_id == current.id,
        })
    }

    /// Revokes every live session of the caller but the current one. Needs a session.
    async fn revoke_other_sessions(&self, ctx: &Context<'_>) -> Result<RevokeSessionsPayload> {
        let (user, current) = ctx.account_wide()?;
        // INVARIANT: the caller's own account or memberships, of no organization.
        let revoked = ctx
            .unchecked_store()
            .revoke_other_sessions(user.id, current.id, &ctx.request().actor)
            .await?;
        Ok(RevokeSessionsPayload {
            revoked_count: count(revoked),
        })
    }

    /// Revokes every live session of a member, wherever they signed in. Needs
    /// `members:*:manage` at the organization; the user must be a member of it.
    async fn sign_out_member_everywhere(
        &self,
        ctx: &Context<'_>,
        input: SignOutMemberEverywhereInput,
    ) -> Result<RevokeSessionsPayload> {
        ctx.authenticated()?;
        let org_id = parse_id("organizationId", &input.organization_id)?;
        let user_id = parse_id("userId", &input.user_id)?;
        let org = org_node(ctx, org_id).await?;
        let granted = authorize(ctx, &org, ApiPermission::MEMBERS_MANAGE, "organization").await?;
        let revoked = granted
            .store(ctx)
            .revoke_member_sessions(org_id, user_id, &ctx.request().actor)
            .await?;
        Ok(RevokeSessionsPayload {
            revoked_count: count(revoked),
        })
    }
}

/// A count for the API (session counts are far below `i32::MAX`).
pub(crate) fn count(n: u64) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_are_read_from_user_agents() {
        assert_eq!(
            device(Some(
                "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
            )),
            "Firefox on Linux"
        );
        assert_eq!(device(Some("iam-gateway-tests/1.0")), "Unknown device");
        assert_eq!(device(Some("")), "Unknown device");
        assert_eq!(device(None), "Unknown device");
    }

    #[test]
    fn the_current_session_comes_first() {
        let now = Utc::now();
        let session = |n: u128| domain::Session {
            id: Uuid::from_u128(n),
            user_id: Uuid::nil(),
            method: "password".to_owned(),
            organization_id: None,
            ip: None,
            user_agent: None,
            created_at: now,
            last_active_at: now,
            expires_at: now,
            impersonator_id: None,
            impersonation_reason: None,
        };
        let ids: Vec<String> = listed(vec![session(1), session(2), session(3)], Uuid::from_u128(2))
            .into_iter()
            .map(|s| s.id.to_string())
            .collect();
        assert_eq!(
            ids,
            [2, 1, 3].map(|n| Uuid::from_u128(n).to_string()).to_vec()
        );
    }
}
