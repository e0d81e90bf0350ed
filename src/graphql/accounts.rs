//! Accounts: the caller (`me`), sign-up, sign-in and sign-out, passwords (reset and change),
//! and proving an email (`verifyEmail`, `resendEmailVerification`).

use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};

use super::context::ContextExt;
use super::cost;
use super::credentials::throttle;
use super::error::{ApiError, Code};
use super::nodes::Organization;
use super::sessions::count;
use crate::auth::{Accounts, SignedIn};
use crate::domain;

/// An account as others see it.
#[derive(SimpleObject, Clone)]
pub struct User {
    pub id: ID,
    pub email: String,
    pub name: String,
    /// Whether the owner proved they read `email` (an emailed link or invitation, a password
    /// reset); identity providers never reach an account without it.
    pub email_verified: bool,
    pub created_at: DateTime<Utc>,
}

impl From<domain::User> for User {
    fn from(u: domain::User) -> Self {
        Self {
            id: ID(u.id.to_string()),
            email: u.email,
            name: u.name,
            email_verified: u.email_verified,
            created_at: u.created_at,
        }
    }
}

/// The signed-in caller.
pub struct Me {
    pub user: domain::User,
    pub session: domain::Session,
}

#[Object]
impl Me {
    async fn id(&self) -> ID {
        ID(self.user.id.to_string())
    }

    async fn email(&self) -> &str {
        &self.user.email
    }

    async fn name(&self) -> &str {
        &self.user.name
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.user.created_at
    }

    /// Whether the email is proven (read now: the signed-in user may be a cached copy).
    async fn email_verified(&self, ctx: &Context<'_>) -> Result<bool> {
        // INVARIANT: the caller's own account or memberships, of no organization.
        let fresh = ctx.unchecked_store().user(self.user.id).await?;
        Ok(fresh.is_some_and(|u| u.email_verified))
    }

    /// The session this request was made with.
    async fn session(&self) -> Session {
        self.session.clone().into()
    }

    /// The organizations where the caller is an active member.
    #[graphql(complexity = "cost::list(cost::UNPAGED, child_complexity)")]
    async fn organizations(&self, ctx: &Context<'_>) -> Result<Vec<Organization>> {
        // INVARIANT: the caller's own account or memberships, of no organization.
        let mut orgs = ctx.unchecked_store().organizations_of(self.user.id).await?;
        // An SSO session sees only its own organization.
        orgs.retain(|o| self.session.reaches(o.id));
        Ok(orgs.into_iter().map(Organization).collect())
    }
}

/// A signed-in session (its token is never shown again after sign-in).
#[derive(SimpleObject)]
pub struct Session {
    pub id: ID,
    pub method: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_active_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl From<domain::Session> for Session {
    fn from(s: domain::Session) -> Self {
        Self {
            id: ID(s.id.to_string()),
            method: s.method,
            ip: s.ip,
            user_agent: s.user_agent,
            created_at: s.created_at,
            last_active_at: s.last_active_at,
            expires_at: s.expires_at,
        }
    }
}

#[derive(Default)]
pub struct AccountQuery;

#[Object]
impl AccountQuery {
    /// The signed-in caller. Needs a session.
    async fn me(&self, ctx: &Context<'_>) -> Result<Me> {
        let (user, session) = ctx.signed_in()?;
        Ok(Me {
            user: user.clone(),
            session: session.clone(),
        })
    }
}

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

#[derive(InputObject)]
pub struct VerifyEmailInput {
    /// The token from the emailed link.
    pub token: String,
}

#[derive(SimpleObject)]
pub struct VerifyEmailPayload {
    pub user: User,
}

#[derive(SimpleObject)]
pub struct ResendEmailVerificationPayload {
    /// Whether a link was sent (not when the email is already verified).
    pub sent: bool,
}

#[derive(Default)]
pub struct VerificationMutation;

#[Object]
impl VerificationMutation {
    /// Verifies the email of the account the link was sent to. Public: the token is the
    /// proof; it works once, before it expires.
    async fn verify_email(
        &self,
        ctx: &Context<'_>,
        input: VerifyEmailInput,
    ) -> Result<VerifyEmailPayload> {
        throttle(ctx, None)?;
        let user = accounts(ctx)
            .verify_email(&input.token, &ctx.request().actor)
            .await?;
        Ok(VerifyEmailPayload { user: user.into() })
    }

    /// Emails the caller a new verification link (older ones stop working). Needs a session
    /// that is not bound to one organization; BAD_USER_INPUT when no SMTP server is set up.
    async fn resend_email_verification(
        &self,
        ctx: &Context<'_>,
    ) -> Result<ResendEmailVerificationPayload> {
        let (user, _) = ctx.account_wide()?;
        let services = ctx.services();
        if !services.mailer.configured() {
            return Err(ApiError::new(
                Code::BadUserInput,
                "this server sends no email, so it cannot verify addresses; ask its operator",
            )
            .into());
        }
        // INVARIANT: the caller's own account or memberships, of no organization.
        let fresh = ctx
            .unchecked_store()
            .user(user.id)
            .await?
            .ok_or_else(|| ApiError::not_found("account"))?;
        let sent = accounts(ctx).send_email_verification(&fresh).await?;
        Ok(ResendEmailVerificationPayload { sent })
    }
}
