//! Account administration: a person's own account (`updateMe`, `changeMyEmail`, `deleteMe`)
//! and an admin's password reset for an account their organization manages
//! (`resetMemberPassword`).
//!
//! - The caller's own changes need a session of their own that is not bound to one
//!   organization (no API key, no SSO or impersonation session); changing the email and
//!   deleting the account also need the current password, which counts toward the lockout.
//! - `resetMemberPassword` needs `members:*:impersonate` (a reset link lets its holder act as
//!   the member, without a time bound), every permission the member holds there, and an
//!   account the organization manages: created through its invitation or SSO, and a member of
//!   no other organization. So one organization's admin never takes over an account another
//!   organization also trusts.

use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};

use super::accounts::{User, accounts};
use super::context::ContextExt;
use super::credentials::throttle;
use super::error::ApiError;
use crate::domain::Name;
use crate::graphql::impersonation::{ForMember, for_member};
use crate::graphql::machines::ensure_holds_power_of;

#[derive(InputObject)]
pub struct UpdateMeInput {
    pub name: String,
}

#[derive(SimpleObject)]
pub struct UpdateMePayload {
    pub user: User,
}

#[derive(InputObject)]
pub struct ChangeMyEmailInput {
    pub new_email: String,
    /// The current password: a session alone does not change where password resets go.
    pub password: String,
}

/// The new email takes effect when the link sent to it is used (`verifyEmail`).
#[derive(SimpleObject)]
pub struct ChangeMyEmailPayload {
    pub pending_email: String,
    /// When the link stops working.
    pub expires_at: DateTime<Utc>,
}

#[derive(InputObject)]
pub struct DeleteMeInput {
    /// The current password.
    pub password: String,
}

#[derive(SimpleObject)]
pub struct DeleteMePayload {
    pub deleted: bool,
    /// The organizations the account left.
    pub memberships_removed: i32,
    pub sessions_revoked: i32,
}

#[derive(InputObject)]
pub struct ResetMemberPasswordInput {
    pub organization_id: ID,
    pub user_id: ID,
}

#[derive(SimpleObject)]
pub struct ResetMemberPasswordPayload {
    /// Whether the link was emailed to the member (then `link` is null).
    pub emailed: bool,
    /// The single-use link to hand to the member, when this server sends no email.
    pub link: Option<String>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Default)]
pub struct AccountAdminMutation;

#[Object]
impl AccountAdminMutation {
    /// Renames the caller's account. Needs a session of the caller's own, not bound to one
    /// organization.
    async fn update_me(&self, ctx: &Context<'_>, input: UpdateMeInput) -> Result<UpdateMePayload> {
        let (user, _) = ctx.account_wide()?;
        let name = Name::parse("name", &input.name)?;
        // INVARIANT: the caller's own account or memberships, of no organization.
        let user = ctx
            .unchecked_store()
            .rename_user(user.id, &name, &ctx.request().actor)
            .await?;
        Ok(UpdateMePayload { user: user.into() })
    }

    /// Emails a link to `newEmail` that makes it the caller's email when used (`verifyEmail`);
    /// the current address is told. Needs the current password and a session of the caller's
    /// own, not bound to one organization; BAD_USER_INPUT when no SMTP server is set up;
    /// CONFLICT when another account has the address.
    async fn change_my_email(
        &self,
        ctx: &Context<'_>,
        input: ChangeMyEmailInput,
    ) -> Result<ChangeMyEmailPayload> {
        let (user, _) = ctx.account_wide()?;
        throttle(ctx, Some(&user.email))?;
        let (pending, expires_at) = accounts(ctx)
            .request_email_change(
                user,
                &input.password,
                &input.new_email,
                &ctx.request().actor,
            )
            .await?;
        Ok(ChangeMyEmailPayload {
            pending_email: pending.as_str().to_owned(),
            expires_at,
        })
    }

    /// Deletes the caller's account: it leaves every organization, its sessions and API keys
    /// are revoked; audit events keep its id and email. Needs the current password and a
    /// session of the caller's own, not bound to one organization; CONFLICT while the caller
    /// is an organization's last effective admin.
    async fn delete_me(&self, ctx: &Context<'_>, input: DeleteMeInput) -> Result<DeleteMePayload> {
        let (user, _) = ctx.account_wide()?;
        throttle(ctx, Some(&user.email))?;
        let deleted = accounts(ctx)
            .delete_account(user, &input.password, &ctx.request().actor)
            .await?;
        Ok(DeleteMePayload {
            deleted: true,
            memberships_removed: i32::try_from(deleted.memberships_removed).unwrap_or(i32::MAX),
            sessions_revoked: i32::try_from(deleted.sessions_revoked).unwrap_or(i32::MAX),
        })
    }

    /// Issues a single-use password-reset link for a member whose account the organization
    /// manages: emailed to them when this server sends email, else answered to hand over.
    /// Needs `members:*:impersonate`, a person's own session, and every permission the member
    /// holds there; FORBIDDEN for an account the organization does not manage alone.
    async fn reset_member_password(
        &self,
        ctx: &Context<'_>,
        input: ResetMemberPasswordInput,
    ) -> Result<ResetMemberPasswordPayload> {
        let ForMember {
            caller,
            org,
            granted,
            subject,
        } = for_member(
            ctx,
            &input.organization_id,
            &input.user_id,
            "this is your own account: use changePassword (or requestPasswordReset)",
        )
        .await?;
        let store = granted.store(ctx);
        if store.membership(org.id(), subject).await?.is_none() {
            return Err(ApiError::not_found("member").into());
        }
        ensure_holds_power_of(ctx, &granted, subject, "reset members' passwords").await?;
        let Some(member) = store.managed_account(org.id(), subject).await? else {
            return Err(ApiError::forbidden(
                "this organization does not manage this account (it was not created through its invitation or SSO, or it belongs to another organization too): the member resets their own password",
            )
            .into());
        };
        let issued = accounts(ctx)
            .issue_member_reset(&member, org.id(), caller, &ctx.request().actor)
            .await?;
        Ok(ResetMemberPasswordPayload {
            emailed: issued.link.is_none(),
            link: issued.link,
            expires_at: issued.expires_at,
        })
    }
}
