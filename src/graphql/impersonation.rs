//! Impersonation: an admin acts as a member of one organization, for at most an hour, with a
//! reason (SEMANTICS "Sessions and credentials").
//!
//! - `startImpersonation` needs `members:*:impersonate` at the organization (Admin only by
//!   default), a session of the caller's own (not an API key, not an impersonation), and
//!   every permission the subject holds there: nobody impersonates their way to more power.
//! - The session it answers acts as the subject in that organization only, and every decision
//!   it gets is capped by the impersonator's current permissions (`OrgView::cap`): if the
//!   impersonator loses a role meanwhile, so does the impersonation.
//! - Every audit event it writes names both people (`actor_id` the subject,
//!   `impersonator_id` the impersonator); the subject sees the session in `mySessions`.

use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Duration, Utc};

use uuid::Uuid;

use crate::domain::Node;
use crate::graphql::access::lookups::org_node;
use crate::graphql::access::{ApiPermission, Granted, OrgView, authorize};
use crate::graphql::context::{ContextExt, parse_id};
use crate::graphql::error::ApiError;
use crate::graphql::machines::ensure_holds_power_of;

/// The longest impersonation.
const MAX_MINUTES: i32 = 60;
const MAX_REASON_CHARS: usize = 500;

#[derive(InputObject)]
pub struct StartImpersonationInput {
    pub organization_id: ID,
    /// The member to act as.
    pub user_id: ID,
    /// Why (recorded in the audit trail and shown to the member).
    pub reason: String,
    /// How long the session lasts: 1 to 60 minutes.
    pub minutes: i32,
}

#[derive(SimpleObject)]
pub struct ImpersonationPayload {
    /// A session token acting as the member, in this organization only.
    pub token: String,
    pub session_id: ID,
    pub expires_at: DateTime<Utc>,
}

#[derive(InputObject)]
pub struct EndImpersonationInput {
    /// The impersonation session to end, from the impersonator's own session; omitted: the
    /// impersonation session making the request.
    pub session_id: Option<ID>,
}

#[derive(SimpleObject)]
pub struct EndImpersonationPayload {
    pub session_id: ID,
    pub ended: bool,
}

/// A caller cleared to act for a member: with their own session (not an API key nor an
/// impersonation), holding `members:*:impersonate` at the organization, about another person.
pub(crate) struct ForMember {
    pub caller: Uuid,
    pub org: Node,
    pub granted: Granted,
    pub subject: Uuid,
}

/// The gate of [`ForMember`], shared by `startImpersonation` and `resetMemberPassword` (both
/// let the caller act as the member); `yourself` is the refusal when the member is the caller.
pub(crate) async fn for_member(
    ctx: &Context<'_>,
    organization_id: &ID,
    user_id: &ID,
    yourself: &str,
) -> Result<ForMember, ApiError> {
    let (caller, _) = ctx.signed_in()?;
    let caller = caller.id;
    ctx.not_impersonating()?;
    let org = org_node(ctx, parse_id("organizationId", organization_id)?).await?;
    let granted = authorize(
        ctx,
        &org,
        ApiPermission::MEMBERS_IMPERSONATE,
        "organization",
    )
    .await?;
    let subject = parse_id("userId", user_id)?;
    if subject == caller {
        return Err(ApiError::bad_input("userId", yourself));
    }
    Ok(ForMember {
        caller,
        org,
        granted,
        subject,
    })
}

#[derive(Default)]
pub struct ImpersonationMutation;

#[Object]
impl ImpersonationMutation {
    /// Opens a session acting as a member. Needs `members:*:impersonate` at the organization,
    /// a session of the caller's own, and every permission the member holds there.
    async fn start_impersonation(
        &self,
        ctx: &Context<'_>,
        input: StartImpersonationInput,
    ) -> Result<ImpersonationPayload> {
        let ForMember {
            caller,
            org,
            granted,
            subject,
        } = for_member(
            ctx,
            &input.organization_id,
            &input.user_id,
            "you cannot impersonate yourself",
        )
        .await?;
        if !(1..=MAX_MINUTES).contains(&input.minutes) {
            return Err(ApiError::bad_input(
                "minutes",
                format!("an impersonation lasts 1 to {MAX_MINUTES} minutes"),
            )
            .into());
        }
        let reason = input.reason.trim();
        if reason.is_empty() || reason.chars().count() > MAX_REASON_CHARS {
            return Err(ApiError::bad_input(
                "reason",
                format!("give a reason of 1 to {MAX_REASON_CHARS} characters"),
            )
            .into());
        }
        let theirs = OrgView::load(ctx, org.id(), subject, "member").await?;
        if !theirs.active() {
            return Err(ApiError::not_found("member").into());
        }
        ensure_holds_power_of(ctx, &granted, subject, "impersonate members").await?;
        let user = granted
            .store(ctx)
            .user(subject)
            .await?
            .ok_or_else(|| ApiError::not_found("member"))?;
        let signed_in = ctx
            .services()
            .auth
            .open_impersonation(
                user,
                org.id(),
                caller,
                reason,
                Duration::minutes(i64::from(input.minutes)),
                &ctx.request().actor,
            )
            .await
            .map_err(ApiError::from)?;
        Ok(ImpersonationPayload {
            token: signed_in.token,
            session_id: ID(signed_in.session.id.to_string()),
            expires_at: signed_in.session.expires_at,
        })
    }

    /// Ends an impersonation: the one making the request, or (`sessionId`, from the
    /// impersonator's own session) one the caller opened.
    async fn end_impersonation(
        &self,
        ctx: &Context<'_>,
        input: EndImpersonationInput,
    ) -> Result<EndImpersonationPayload> {
        let (_, session) = ctx.signed_in()?;
        let (impersonator, session_id) = match (&input.session_id, session.impersonator_id) {
            (None, Some(impersonator)) => (impersonator, session.id),
            (Some(id), None) => (session.user_id, parse_id("sessionId", id)?),
            (None, None) => {
                return Err(ApiError::bad_input(
                    "sessionId",
                    "this is no impersonation session: name the one to end",
                )
                .into());
            }
            (Some(_), Some(_)) => {
                return Err(
                    ApiError::forbidden("an impersonation session can only end itself").into(),
                );
            }
        };
        // INVARIANT: only a session the caller opened (or the caller's own) is ended.
        let ended = ctx
            .unchecked_store()
            .end_impersonation(impersonator, session_id, &ctx.request().actor)
            .await?;
        if !ended {
            return Err(ApiError::not_found("impersonation session").into());
        }
        Ok(EndImpersonationPayload {
            session_id: ID(session_id.to_string()),
            ended,
        })
    }
}
