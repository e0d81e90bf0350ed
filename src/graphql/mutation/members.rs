//! Invitations (basic form) and joining an organization.

use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};
use chrono::Duration;

use crate::auth::token::{self, TokenKind};
use crate::domain::Email;
use crate::graphql::access::{Permission, authorize};
use crate::graphql::context::{ContextExt, parse_id};
use crate::graphql::error::ApiError;
use crate::graphql::types::{Invitation, Organization};
use crate::store::NewInvitation;

#[derive(InputObject)]
pub struct InviteMemberInput {
    pub organization_id: ID,
    pub email: String,
}

/// A new invitation. `token` (and `acceptUrl`, which carries it) is shown only once: hand it to
/// the invitee, who accepts it while signed in with the invited email.
#[derive(SimpleObject)]
pub struct InviteMemberPayload {
    pub invitation: Invitation,
    pub token: String,
    pub accept_url: String,
}

#[derive(InputObject)]
pub struct AcceptInvitationInput {
    pub token: String,
}

#[derive(SimpleObject)]
pub struct AcceptInvitationPayload {
    pub invitation: Invitation,
    pub organization: Organization,
    /// The organization revision after joining (pass as `atLeast`).
    pub revision: String,
}

#[derive(Default)]
pub struct MemberMutation;

#[Object]
impl MemberMutation {
    /// Invites an email address into an organization. Needs `members:*:invite` at the
    /// organization.
    async fn invite_member(
        &self,
        ctx: &Context<'_>,
        input: InviteMemberInput,
    ) -> Result<InviteMemberPayload> {
        ctx.signed_in()?;
        let org_id = parse_id("organizationId", &input.organization_id)?;
        let org = super::nodes::org_node(ctx, org_id).await?;
        authorize(ctx, &org, Permission::MEMBERS_INVITE, "organization").await?;
        let email = Email::parse("email", &input.email)?;
        let services = ctx.services();
        let minted = token::mint(TokenKind::Invitation).map_err(|e| ApiError::internal(&e))?;
        let ttl = Duration::from_std(services.config.invitation_ttl)
            .map_err(|e| ApiError::internal(&e))?;
        let invitation = services
            .store
            .create_invitation(
                NewInvitation {
                    organization_id: org_id,
                    email: &email,
                    token_hash: minted.hash,
                    ttl,
                },
                &ctx.request().actor,
            )
            .await?;
        let accept_url = format!(
            "{}/invitations/accept?token={}",
            services.config.public_url.trim_end_matches('/'),
            minted.plaintext
        );
        Ok(InviteMemberPayload {
            invitation: invitation.into(),
            token: minted.plaintext,
            accept_url,
        })
    }

    /// Accepts an invitation: the caller becomes an active member of its organization. Needs a
    /// session whose email is the invited one.
    async fn accept_invitation(
        &self,
        ctx: &Context<'_>,
        input: AcceptInvitationInput,
    ) -> Result<AcceptInvitationPayload> {
        let (user, _) = ctx.signed_in()?;
        let (invitation, org) = ctx
            .services()
            .store
            .accept_invitation(&token::hash(input.token.trim()), user, &ctx.request().actor)
            .await?;
        Ok(AcceptInvitationPayload {
            revision: crate::graphql::check::revision_now(ctx, org.id).await?,
            invitation: invitation.into(),
            organization: Organization(org),
        })
    }
}
