//! Invitations: created with roles, sent (or their link handed over), resent, revoked, accepted
//! by a signed-in invitee or through sign-up by the link.

use async_graphql::{ComplexObject, Context, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Duration, Utc};

use crate::auth::token::{self, TokenKind};
use crate::domain;
use crate::domain::{Email, Name, Node};
use crate::graphql::access::lookups::{grant_node, org_node, usable_role};
use crate::graphql::access::{ApiPermission, Granted, authorize};
use crate::graphql::accounts::User;
use crate::graphql::check::revision_now;
use crate::graphql::context::{Acting, ContextExt, parse_id};
use crate::graphql::credentials::throttle;
use crate::graphql::error::{ApiError, Code};
use crate::graphql::nodes::Organization;
use crate::graphql::roles::{RoleGrantInput, ensure_bindable_at, ensure_no_escalation};
use crate::mail::Mail;
use crate::store::NewInvitation;

#[derive(async_graphql::Enum, Clone, Copy, PartialEq, Eq)]
pub enum InvitationStatus {
    Pending,
    Accepted,
    Revoked,
    Expired,
}

/// An invitation into an organization.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Invitation {
    pub id: ID,
    pub email: String,
    /// The invitee's name, as the inviter typed it.
    pub name: Option<String>,
    /// The inviter's message.
    pub message: Option<String>,
    pub status: InvitationStatus,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// When the email was last handed to the SMTP server (none: no email was sent).
    pub sent_at: Option<DateTime<Utc>>,
    /// The roles the invitee gets on acceptance.
    pub grants: Vec<InvitationGrant>,
    #[graphql(skip)]
    pub organization_id: uuid::Uuid,
}

/// A role an invitation grants at a node.
#[derive(SimpleObject)]
pub struct InvitationGrant {
    pub role_id: ID,
    /// The organization, a workspace or a project.
    pub node_id: ID,
}

#[ComplexObject]
impl Invitation {
    async fn organization_id(&self) -> ID {
        ID(self.organization_id.to_string())
    }
}

impl From<domain::Invitation> for Invitation {
    fn from(i: domain::Invitation) -> Self {
        Self {
            id: ID(i.id.to_string()),
            email: i.email,
            name: i.name,
            message: i.message,
            revoked_at: i.revoked_at,
            sent_at: i.sent_at,
            grants: i
                .grants
                .into_iter()
                .map(|g| InvitationGrant {
                    role_id: ID(g.role_id.to_string()),
                    node_id: ID(g.node_id.to_string()),
                })
                .collect(),
            status: match i.status {
                domain::InvitationStatus::Pending => InvitationStatus::Pending,
                domain::InvitationStatus::Accepted => InvitationStatus::Accepted,
                domain::InvitationStatus::Revoked => InvitationStatus::Revoked,
                domain::InvitationStatus::Expired => InvitationStatus::Expired,
            },
            created_at: i.created_at,
            expires_at: i.expires_at,
            accepted_at: i.accepted_at,
            organization_id: i.organization_id,
        }
    }
}

/// Longest message an invitation may carry.
const MAX_MESSAGE_CHARS: usize = 2000;

#[derive(InputObject)]
pub struct InviteMemberInput {
    pub organization_id: ID,
    pub email: String,
    /// The invitee's name, for the email and the members list.
    pub name: Option<String>,
    /// A message shown in the email.
    pub message: Option<String>,
    /// Roles granted on acceptance. Each needs what `grantRole` needs. When omitted, the
    /// profile's default role at the organization (which the inviter must be able to grant);
    /// an empty list gives no role at all.
    pub roles: Option<Vec<RoleGrantInput>>,
    /// Days the invitation can be accepted, 1 to 30; the deployment's default (7) when omitted.
    pub expires_in_days: Option<i32>,
}

/// A new (or resent) invitation. When the gateway has SMTP, the email carries the link and the
/// payload does not (`emailSent`); otherwise `acceptUrl` (and the bare `token`) are returned,
/// once, for the admin to hand over.
#[derive(SimpleObject)]
pub struct InvitationPayload {
    pub invitation: Invitation,
    pub email_sent: bool,
    /// Why the email could not be sent (the link is then returned instead).
    pub email_error: Option<String>,
    pub accept_url: Option<String>,
    pub token: Option<String>,
}

#[derive(InputObject)]
pub struct InvitationIdInput {
    pub id: ID,
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

#[derive(InputObject)]
pub struct SignUpWithInvitationInput {
    pub token: String,
    pub name: String,
    pub password: String,
}

/// A new account that joined through an invitation, signed in: send `token` as
/// `Authorization: Bearer <token>`.
#[derive(SimpleObject)]
pub struct SignUpWithInvitationPayload {
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub user: User,
    pub invitation: Invitation,
    pub organization: Organization,
    pub revision: String,
}

fn accept_url(ctx: &Context<'_>, token: &str) -> String {
    format!(
        "{}/invitations/accept?token={token}",
        ctx.services().config.public_url.trim_end_matches('/')
    )
}

/// Emails the invitation when SMTP is configured; otherwise (or when sending fails) the payload
/// carries the link.
async fn deliver(
    ctx: &Context<'_>,
    invitation: domain::Invitation,
    organization: &domain::Organization,
    token: String,
) -> Result<InvitationPayload, ApiError> {
    let services = ctx.services();
    let url = accept_url(ctx, &token);
    let (inviter_name, inviter_email) = match ctx.acting()? {
        Acting::Person { user, .. } => (user.name.clone(), user.email.clone()),
        Acting::Key(key) => match &key.user {
            Some(user) => (user.name.clone(), user.email.clone()),
            None => (
                "A service account".to_owned(),
                format!("through API key {}", key.key.display_prefix),
            ),
        },
    };
    let email = Email::parse("email", &invitation.email)?;
    let greeting = invitation
        .name
        .as_deref()
        .map(|n| format!("Hello {n},\n\n"))
        .unwrap_or_default();
    let note = invitation
        .message
        .as_deref()
        .map(|m| format!("\n{inviter_name} wrote:\n\n{m}\n"))
        .unwrap_or_default();
    let body = format!(
        "{greeting}{} ({}) invited you to join {} on iam-gateway.\n{note}\nAccept the invitation: {url}\n\nThe link works once, until {}.\n",
        inviter_name,
        inviter_email,
        organization.name,
        invitation.expires_at.format("%Y-%m-%d %H:%M UTC"),
    );
    let sent = services
        .mailer
        .send(Mail {
            to: &email,
            to_name: invitation.name.as_deref(),
            subject: format!("You are invited to join {}", organization.name),
            body,
        })
        .await;
    match sent {
        Ok(true) => {
            // INVARIANT: its callers authorized for the organization first.
            ctx.unchecked_store()
                .invitation_sent(
                    invitation.organization_id,
                    invitation.id,
                    &ctx.request().actor,
                )
                .await?;
            // INVARIANT: its callers authorized for the organization first.
            let refreshed = ctx
                .unchecked_store()
                .invitation(invitation.organization_id, invitation.id)
                .await?
                .unwrap_or(invitation);
            Ok(InvitationPayload {
                invitation: refreshed.into(),
                email_sent: true,
                email_error: None,
                accept_url: None,
                token: None,
            })
        }
        Ok(false) => Ok(InvitationPayload {
            invitation: invitation.into(),
            email_sent: false,
            email_error: None,
            accept_url: Some(url),
            token: Some(token),
        }),
        Err(e) => {
            tracing::warn!(error = %e, invitation = %invitation.id, "invitation email not sent");
            Ok(InvitationPayload {
                invitation: invitation.into(),
                email_sent: false,
                email_error: Some(e.public_message().to_owned()),
                accept_url: Some(url),
                token: Some(token),
            })
        }
    }
}

/// The invitation with this id and its organization, after checking `members:*:invite` there.
async fn invitation_for_admin(
    ctx: &Context<'_>,
    id: &ID,
) -> Result<(domain::Invitation, domain::Organization, Granted), ApiError> {
    ctx.authenticated()?;
    // INVARIANT: looked up to be checked; nothing is answered before the check.
    let store = ctx.unchecked_store();
    let invitation = store
        .invitation_any(parse_id("id", id)?)
        .await?
        .ok_or_else(|| ApiError::not_found("invitation"))?;
    let org = org_node(ctx, invitation.organization_id).await?;
    let granted = authorize(ctx, &org, ApiPermission::MEMBERS_INVITE, "invitation").await?;
    let Node::Organization(organization) = org else {
        return Err(ApiError::not_found("invitation"));
    };
    Ok((invitation, organization, granted))
}

#[derive(Default)]
pub struct InvitationMutation;

#[Object]
impl InvitationMutation {
    /// Invites an email address into an organization, with the roles it will get. Needs
    /// `members:*:invite` at the organization, and for each role what `grantRole` needs.
    async fn invite_member(
        &self,
        ctx: &Context<'_>,
        input: InviteMemberInput,
    ) -> Result<InvitationPayload> {
        ctx.authenticated()?;
        let org_id = parse_id("organizationId", &input.organization_id)?;
        let org = org_node(ctx, org_id).await?;
        let granted = authorize(ctx, &org, ApiPermission::MEMBERS_INVITE, "organization").await?;
        let email = Email::parse("email", &input.email)?;
        let name = input
            .name
            .as_deref()
            .filter(|n| !n.trim().is_empty())
            .map(|n| Name::parse("name", n))
            .transpose()?;
        let message = input
            .message
            .as_deref()
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .map(str::to_owned);
        if message
            .as_deref()
            .is_some_and(|m| m.chars().count() > MAX_MESSAGE_CHARS)
        {
            return Err(ApiError::bad_input(
                "message",
                format!("the message may have at most {MAX_MESSAGE_CHARS} characters"),
            )
            .into());
        }
        let services = ctx.services();
        let ttl = match input.expires_in_days {
            None => Duration::from_std(services.config.invitation_ttl)
                .map_err(|e| ApiError::internal(&e))?,
            Some(days @ 1..=30) => Duration::days(i64::from(days)),
            Some(_) => {
                return Err(ApiError::bad_input(
                    "expiresInDays",
                    "an invitation expires after 1 to 30 days",
                )
                .into());
            }
        };
        let mut nodes = Vec::new();
        for grant in input.roles.iter().flatten() {
            let node = grant_node(ctx, org_id, grant).await?;
            let role = usable_role(ctx, org_id, &grant.role_id, "roleId").await?;
            ensure_bindable_at(&role, &node, "roles")?;
            ensure_no_escalation(granted.view(), &role, &node)?;
            nodes.push((role.id, node));
        }
        if input.roles.is_none() {
            // The profile's default role, at the organization, handed out like any other.
            let default = ID(services.authz.profile.default_role().id.to_string());
            let role = usable_role(ctx, org_id, &default, "roles").await?;
            ensure_no_escalation(granted.view(), &role, &org).map_err(|e| {
                ApiError::forbidden(format!(
                    "an invitation without roles gives the default role `{}` at the organization, which you cannot hand out ({}); name the roles to give",
                    role.name, e.message
                ))
            })?;
            nodes.push((role.id, org.clone()));
        }
        let minted = token::mint(TokenKind::Invitation).map_err(|e| ApiError::internal(&e))?;
        let invitation = granted
            .store(ctx)
            .create_invitation(
                NewInvitation {
                    organization_id: org_id,
                    email: &email,
                    name: name.map(|n| n.as_str().to_owned()),
                    message,
                    grants: nodes.iter().map(|(r, n)| (*r, n)).collect(),
                    token_hash: minted.hash,
                    ttl,
                },
                &ctx.request().actor,
            )
            .await?;
        let Node::Organization(organization) = org else {
            return Err(ApiError::not_found("organization").into());
        };
        Ok(deliver(ctx, invitation, &organization, minted.plaintext).await?)
    }

    /// Gives a pending (or expired) invitation a new link, valid for the deployment's default
    /// time, and sends it again; the old link stops working. Needs `members:*:invite`.
    async fn resend_invitation(
        &self,
        ctx: &Context<'_>,
        input: InvitationIdInput,
    ) -> Result<InvitationPayload> {
        let (invitation, organization, granted) = invitation_for_admin(ctx, &input.id).await?;
        let services = ctx.services();
        let ttl = Duration::from_std(services.config.invitation_ttl)
            .map_err(|e| ApiError::internal(&e))?;
        let minted = token::mint(TokenKind::Invitation).map_err(|e| ApiError::internal(&e))?;
        let resent = granted
            .store(ctx)
            .resend_invitation(
                organization.id,
                invitation.id,
                minted.hash,
                ttl,
                &ctx.request().actor,
            )
            .await?;
        Ok(deliver(ctx, resent, &organization, minted.plaintext).await?)
    }

    /// Revokes a pending invitation: its link stops working. Needs `members:*:invite`.
    async fn revoke_invitation(
        &self,
        ctx: &Context<'_>,
        input: InvitationIdInput,
    ) -> Result<Invitation> {
        let (invitation, organization, granted) = invitation_for_admin(ctx, &input.id).await?;
        let revoked = granted
            .store(ctx)
            .revoke_invitation(organization.id, invitation.id, &ctx.request().actor)
            .await?;
        Ok(revoked.into())
    }

    /// Accepts an invitation: the caller becomes an active member of its organization, with
    /// the invitation's roles. Needs a session whose email is the invited one.
    async fn accept_invitation(
        &self,
        ctx: &Context<'_>,
        input: AcceptInvitationInput,
    ) -> Result<AcceptInvitationPayload> {
        let (user, _) = ctx.account_wide()?;
        throttle(ctx, Some(&user.email))?;
        let hash = token::hash(input.token.trim());
        // INVARIANT: the token is the proof; the inviter's power is checked first.
        if let Some(pending) = ctx.unchecked_store().invitation_by_token(&hash).await?
            && pending.status == domain::InvitationStatus::Pending
        {
            inviter_may_still_grant(ctx, &pending).await?;
        }
        // INVARIANT: the token is the proof; the inviter's power is checked first.
        let (invitation, org) = ctx
            .unchecked_store()
            .accept_invitation(&hash, user, &ctx.request().actor)
            .await?;
        Ok(AcceptInvitationPayload {
            revision: revision_now(ctx, org.id).await?,
            invitation: invitation.into(),
            organization: Organization(org),
        })
    }

    /// Creates an account for the invited email through the invitation's link, accepts the
    /// invitation and signs the new account in. Public: the token is the proof. An email that
    /// already has an account signs in and uses `acceptInvitation` instead.
    async fn sign_up_with_invitation(
        &self,
        ctx: &Context<'_>,
        input: SignUpWithInvitationInput,
    ) -> Result<SignUpWithInvitationPayload> {
        throttle(ctx, None)?;
        let services = ctx.services();
        let actor = &ctx.request().actor;
        let hash = token::hash(input.token.trim());
        // INVARIANT: the token is the proof; the inviter's power is checked first.
        let invitation = ctx
            .unchecked_store()
            .invitation_by_token(&hash)
            .await?
            .ok_or_else(|| ApiError::not_found("invitation"))?;
        let refused = match invitation.status {
            domain::InvitationStatus::Pending => None,
            domain::InvitationStatus::Accepted => Some("this invitation has already been used"),
            domain::InvitationStatus::Revoked => Some("this invitation has been revoked"),
            domain::InvitationStatus::Expired => {
                // INVARIANT: the token is the proof; the inviter's power is checked first.
                ctx.unchecked_store()
                    .audit_expired_use(
                        invitation.organization_id,
                        invitation.id,
                        invitation.expires_at,
                        actor,
                    )
                    .await;
                Some("this invitation has expired; ask for a new one to be sent")
            }
        };
        if let Some(why) = refused {
            return Err(ApiError::bad_input("token", why).into());
        }
        inviter_may_still_grant(ctx, &invitation).await?;
        let email = Email::parse("email", &invitation.email)?;
        // INVARIANT: the token is the proof; the inviter's power is checked first.
        if ctx
            .unchecked_store()
            .user_with_password(&email)
            .await?
            .is_some()
        {
            return Err(ApiError::new(
                Code::Conflict,
                "an account with this email exists; sign in and accept the invitation",
            )
            .into());
        }
        // Nothing is created unless the password and name pass; the acceptance below is the
        // single-use gate (a concurrent acceptance makes it fail after the account exists,
        // which then simply has no membership).
        let user = services
            .auth
            .create_account(
                &invitation.email,
                &input.name,
                &input.password,
                // Created through the organization's invitation: it manages the account.
                Some(invitation.organization_id),
                actor,
            )
            .await?;
        let actor = actor.as_person(user.id, &user.email);
        // INVARIANT: the token is the proof; the inviter's power is checked first.
        let (accepted, org) = ctx
            .unchecked_store()
            .accept_invitation(&hash, &user, &actor)
            .await?;
        let signed_in = services
            .auth
            .open_session(user, "password", "auth.sign_up", &actor)
            .await?;
        Ok(SignUpWithInvitationPayload {
            revision: revision_now(ctx, org.id).await?,
            token: signed_in.token,
            expires_at: signed_in.session.expires_at,
            user: signed_in.user.into(),
            invitation: accepted.into(),
            organization: Organization(org),
        })
    }
}

/// An invitation's roles are granted by its inviter when it is accepted, so the inviter must
/// still be able to hand each of them out then (SEMANTICS "Grant", also through an invitation):
/// power taken from them since they invited does not live on in the invitation.
async fn inviter_may_still_grant(
    ctx: &Context<'_>,
    invitation: &domain::Invitation,
) -> Result<(), ApiError> {
    if invitation.grants.is_empty() {
        return Ok(());
    }
    let stale = || {
        ApiError::forbidden(
            "this invitation grants roles that the person who sent it can no longer hand out: ask an administrator for a new invitation",
        )
    };
    let Some(inviter) = invitation.invited_by else {
        return Err(stale());
    };
    let view = crate::graphql::access::OrgView::load(
        ctx,
        invitation.organization_id,
        inviter,
        "invitation",
    )
    .await?;
    if !view.active() {
        return Err(stale());
    }
    // INVARIANT: the token is the proof; the inviter's power is checked first.
    let store = ctx.unchecked_store();
    for grant in &invitation.grants {
        // A role or node deleted meanwhile is skipped at acceptance: nothing to hand out.
        let (Some(role), Some(node)) = (
            store.role(grant.role_id).await?,
            store.node(grant.node_id).await?,
        ) else {
            continue;
        };
        if node.organization_id() != invitation.organization_id
            || !role.bindable_at.contains(&node.kind())
            || ensure_no_escalation(&view, &role, &node).is_err()
        {
            return Err(stale());
        }
    }
    Ok(())
}
