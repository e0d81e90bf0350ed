//! Sign-up, sign-in and sign-out.

use async_graphql::{Context, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};

use crate::auth::SignedIn;
use crate::graphql::context::ContextExt;
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

#[derive(Default)]
pub struct AuthMutation;

#[Object]
impl AuthMutation {
    /// Creates an account and signs it in. Public, unless sign-up is turned off
    /// (`IAM_ALLOW_SIGNUP=false`), then FORBIDDEN.
    async fn sign_up(&self, ctx: &Context<'_>, input: SignUpInput) -> Result<AuthPayload> {
        let actor = &ctx.request().actor;
        let signed_in = ctx
            .services()
            .auth
            .sign_up(&input.email, &input.name, &input.password, actor)
            .await?;
        Ok(signed_in.into())
    }

    /// Signs in with email and password. Public.
    async fn sign_in(&self, ctx: &Context<'_>, input: SignInInput) -> Result<AuthPayload> {
        let actor = &ctx.request().actor;
        let signed_in = ctx
            .services()
            .auth
            .sign_in(&input.email, &input.password, actor)
            .await?;
        Ok(signed_in.into())
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
