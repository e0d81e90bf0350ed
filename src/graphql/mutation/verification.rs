//! Proving an account's email: `verifyEmail` with the emailed link's token, and
//! `resendEmailVerification`.

use async_graphql::{Context, InputObject, Object, Result, SimpleObject};

use super::auth::accounts;
use crate::graphql::context::ContextExt;
use crate::graphql::credentials::throttle;
use crate::graphql::error::{ApiError, Code};
use crate::graphql::types::User;

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
