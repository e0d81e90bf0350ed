//! Sign-up, sign-in and sign-out; password reset and change; unlocking a locked member.

use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};

use crate::auth::{Accounts, SignedIn};
use crate::graphql::access::{ApiPermission, authorize};
use crate::graphql::context::{ContextExt, parse_id};
use crate::graphql::credentials::throttle;
use crate::graphql::sessions::count;
use crate::graphql::types::User;

#[derive(InputObject)]
pub struct SignUpInput {
    pub email: String,
    pub password: String,
    pub name: String,
}

#[derive(InputObject)]
pub struct SignInInput {
    pub email: String,
    pub password: String,
}

/// A new session: send `token` as `Authorization: Bearer <token>`. It is shown only once.
#[derive(SimpleObject)]
pub struct AuthPayload {
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub user: User,
}

impl From<SignedIn> for AuthPayload {
    fn from(s: SignedIn) -> Self {
        Self {
            token: s.token,
            expires_at: s.session.expires_at,
            user: s.user.into(),
        }
    }
}

#[derive(SimpleObject)]
pub struct SignOutPayload {
    pub signed_out: bool,
}

#[derive(InputObject)]
pub struct RequestPasswordResetInput {
    pub email: String,
}

/// The same whether or not the email names an account.
#[derive(SimpleObject)]
pub struct RequestPasswordResetPayload {
    /// Always true: if the email names an account, a reset link is on its way to it.
    pub requested: bool,
}

#[derive(InputObject)]
pub struct ResetPasswordInput {
    /// The token from the emailed link.
    pub token: String,
    pub new_password: String,
}

#[derive(SimpleObject)]
pub struct ResetPasswordPayload {
    /// Every session of the account was revoked: sign in with the new password.
    pub sessions_revoked: i32,
}

#[derive(InputObject)]
pub struct ChangePasswordInput {
    pub current_password: String,
    pub new_password: String,
}

#[derive(SimpleObject)]
pub struct ChangePasswordPayload {
    /// The caller's other sessions, now revoked (the current one stays).
    pub sessions_revoked: i32,
}

#[derive(InputObject)]
pub struct UnlockMemberInput {
    pub organization_id: ID,
    pub user_id: ID,
}

#[derive(SimpleObject)]
pub struct UnlockMemberPayload {
    pub user_id: ID,
    /// Whether the account was locked (it is not any more, and its failed attempts are
    /// forgotten).
    pub was_locked: bool,
}

/// The account flows with this instance's settings, mailer and metrics.
pub(super) fn accounts<'a>(ctx: &'a Context<'_>) -> Accounts<'a> {
    let s = ctx.services();
    Accounts::new(&s.auth, &s.config, &s.mailer, &s.metrics)
}

#[derive(Default)]
pub struct AuthMutation;

#[Object]
impl AuthMutation {
    /// Creates an account and signs it in. Public, unless sign-up is turned off
    /// (`IAM_ALLOW_SIGNUP=false`), then FORBIDDEN.
    async fn sign_up(&self, ctx: &Context<'_>, input: SignUpInput) -> Result<AuthPayload> {
        throttle(ctx, Some(&input.email))?;
        let actor = &ctx.request().actor;
        let signed_in = ctx
            .services()
            .auth
            .sign_up(&input.email, &input.name, &input.password, actor)
            .await?;
        // Sign-up proves nothing about the address: a link is emailed to prove it.
        accounts(ctx)
            .send_email_verification(&signed_in.user)
            .await?;
        Ok(signed_in.into())
    }

    /// Signs in with email and password. Public. After `lockout_threshold` failed attempts in
    /// a row the account is locked for `lockout_duration`: RATE_LIMITED, saying until when.
    async fn sign_in(&self, ctx: &Context<'_>, input: SignInInput) -> Result<AuthPayload> {
        throttle(ctx, Some(&input.email))?;
        let actor = &ctx.request().actor;
        let signed_in = accounts(ctx)
            .sign_in(&input.email, &input.password, actor)
            .await?;
        Ok(signed_in.into())
    }

    /// Emails a single-use password-reset link (valid `password_reset_ttl`) to the account
    /// with this email, if there is one; the answer is the same either way. Public.
    async fn request_password_reset(
        &self,
        ctx: &Context<'_>,
        input: RequestPasswordResetInput,
    ) -> Result<RequestPasswordResetPayload> {
        throttle(ctx, Some(&input.email))?;
        accounts(ctx)
            .request_password_reset(&input.email, &ctx.request().actor)
            .await?;
        Ok(RequestPasswordResetPayload { requested: true })
    }

    /// Sets a new password with the token of a reset link; revokes every session of the
    /// account and lifts its lock. Public: the token is the proof.
    async fn reset_password(
        &self,
        ctx: &Context<'_>,
        input: ResetPasswordInput,
    ) -> Result<ResetPasswordPayload> {
        throttle(ctx, None)?;
        let revoked = accounts(ctx)
            .reset_password(&input.token, &input.new_password, &ctx.request().actor)
            .await?;
        Ok(ResetPasswordPayload {
            sessions_revoked: count(revoked),
        })
    }

    /// Changes the caller's password, given the current one (a wrong one counts toward the
    /// lockout); keeps this session and revokes the others. Needs a session.
    async fn change_password(
        &self,
        ctx: &Context<'_>,
        input: ChangePasswordInput,
    ) -> Result<ChangePasswordPayload> {
        let (user, session) = ctx.account_wide()?;
        throttle(ctx, Some(&user.email))?;
        let revoked = accounts(ctx)
            .change_password(
                user,
                session,
                &input.current_password,
                &input.new_password,
                &ctx.request().actor,
            )
            .await?;
        Ok(ChangePasswordPayload {
            sessions_revoked: count(revoked),
        })
    }

    /// Unlocks a member's account locked by failed sign-ins. Needs `members:*:manage` at the
    /// organization; the user must be a member of it.
    async fn unlock_member(
        &self,
        ctx: &Context<'_>,
        input: UnlockMemberInput,
    ) -> Result<UnlockMemberPayload> {
        ctx.signed_in()?;
        let org_id = parse_id("organizationId", &input.organization_id)?;
        let user_id = parse_id("userId", &input.user_id)?;
        let org = super::org_node(ctx, org_id).await?;
        let granted = authorize(ctx, &org, ApiPermission::MEMBERS_MANAGE, "organization").await?;
        let was_locked = granted
            .store(ctx)
            .unlock_member(org_id, user_id, &ctx.request().actor)
            .await?;
        Ok(UnlockMemberPayload {
            user_id: input.user_id,
            was_locked,
        })
    }

    /// Ends the session the request was made with. Needs a session.
    async fn sign_out(&self, ctx: &Context<'_>) -> Result<SignOutPayload> {
        let (_, session) = ctx.signed_in()?;
        ctx.services()
            .auth
            .sign_out(session, &ctx.request().actor)
            .await?;
        Ok(SignOutPayload { signed_out: true })
    }
}
