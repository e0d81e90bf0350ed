//! Configuration of an organization's single sign-on: identity providers (OIDC or SAML),
//! group → role mappings, "test connection", "enforce SSO" (`providers.rs`), and the email
//! domains the organization proves it owns (`domains.rs`). Everything here needs
//! `sso:*:manage` at the organization. Client secrets are encrypted at rest and never returned.
//!
//! This file: the objects, inputs and payloads.

mod domains;
mod providers;

pub use domains::{DomainMutation, OrganizationDomain, domains_of};
pub use providers::SsoMutation;

use async_graphql::{ComplexObject, Context, Enum, ID, InputObject, Result, SimpleObject};

use super::context::ContextExt;
use super::cost;
use crate::sso::{Provider, ProviderSettings, ServiceUrls};
use crate::store::GroupMapping;
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum SsoKind {
    Oidc,
    Saml,
}

#[derive(SimpleObject)]
pub struct OidcConfig {
    pub issuer_url: String,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub groups_claim: String,
}

#[derive(SimpleObject)]
pub struct SamlConfig {
    pub idp_metadata_url: Option<String>,
    pub idp_metadata_xml: Option<String>,
    pub idp_entity_id: Option<String>,
    pub idp_sso_url: Option<String>,
    pub idp_certificate: Option<String>,
    pub email_attribute: String,
    pub name_attribute: String,
    pub groups_attribute: String,
}

/// An identity provider of an organization, with the gateway's own addresses to configure at
/// the IdP. The client secret is never shown: only whether one is set.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct SsoProvider {
    pub id: ID,
    pub name: String,
    pub kind: SsoKind,
    pub enabled: bool,
    pub has_client_secret: bool,
    pub oidc: Option<OidcConfig>,
    pub saml: Option<SamlConfig>,
    /// The role (at the organization) of users none of whose groups is mapped.
    pub default_role_id: Option<ID>,
    /// The email domains it may create accounts for; null: any.
    pub jit_domains: Option<Vec<String>>,
    /// SAML: whether unsolicited (IdP-initiated) responses are accepted.
    pub allow_idp_initiated: bool,
    /// OIDC: the redirect URI to register at the IdP.
    pub redirect_uri: String,
    /// SAML: the SP entity id (audience).
    pub sp_entity_id: String,
    /// SAML: the assertion consumer service URL.
    pub acs_url: String,
    /// SAML: the SP metadata XML, to give the IdP.
    pub metadata_url: String,
    /// Where a browser starts signing in with this provider.
    pub login_url: String,
    #[graphql(skip)]
    inner: Provider,
}

#[derive(SimpleObject)]
pub struct SsoGroupMapping {
    pub id: ID,
    pub group: String,
    pub role_id: ID,
    /// The organization, a workspace or a project.
    pub node_id: ID,
}

impl From<GroupMapping> for SsoGroupMapping {
    fn from(m: GroupMapping) -> Self {
        Self {
            id: ID(m.id.to_string()),
            group: m.group,
            role_id: ID(m.role_id.to_string()),
            node_id: ID(m.node_id.to_string()),
        }
    }
}

/// An IdP group mapped to a team: each sign-in puts the member into it or takes them out.
#[derive(SimpleObject)]
pub struct SsoTeamMapping {
    pub id: ID,
    pub group: String,
    pub team_id: ID,
}

impl From<crate::store::TeamMapping> for SsoTeamMapping {
    fn from(m: crate::store::TeamMapping) -> Self {
        Self {
            id: ID(m.id.to_string()),
            group: m.group,
            team_id: ID(m.team_id.to_string()),
        }
    }
}

#[ComplexObject]
impl SsoProvider {
    /// IdP group → team mappings, applied at every sign-in.
    #[graphql(complexity = "cost::list(cost::UNPAGED, child_complexity)")]
    async fn team_mappings(&self, ctx: &Context<'_>) -> Result<Vec<SsoTeamMapping>> {
        // INVARIANT: its callers authorized for the organization first.
        let list = ctx.unchecked_store().team_mappings(&self.inner).await?;
        Ok(list.into_iter().map(Into::into).collect())
    }

    /// IdP group → role mappings, applied at every sign-in.
    #[graphql(complexity = "cost::list(cost::UNPAGED, child_complexity)")]
    async fn group_mappings(&self, ctx: &Context<'_>) -> Result<Vec<SsoGroupMapping>> {
        // INVARIANT: its callers authorized for the organization first.
        let list = ctx.unchecked_store().group_mappings(&self.inner).await?;
        Ok(list.into_iter().map(Into::into).collect())
    }
}

pub fn dress(ctx: &Context<'_>, p: Provider) -> SsoProvider {
    let urls = ServiceUrls::of(&ctx.services().config.public_url, &p);
    let (kind, oidc, saml) = match &p.settings {
        ProviderSettings::Oidc(o) => (
            SsoKind::Oidc,
            Some(OidcConfig {
                issuer_url: o.issuer_url.clone(),
                client_id: o.client_id.clone(),
                scopes: o.scopes.clone(),
                groups_claim: o.groups_claim.clone(),
            }),
            None,
        ),
        ProviderSettings::Saml(s) => (
            SsoKind::Saml,
            None,
            Some(SamlConfig {
                idp_metadata_url: s.idp_metadata_url.clone(),
                idp_metadata_xml: s.idp_metadata_xml.clone(),
                idp_entity_id: s.idp_entity_id.clone(),
                idp_sso_url: s.idp_sso_url.clone(),
                idp_certificate: s.idp_certificate.clone(),
                email_attribute: s.email_attribute.clone(),
                name_attribute: s.name_attribute.clone(),
                groups_attribute: s.groups_attribute.clone(),
            }),
        ),
    };
    SsoProvider {
        id: ID(p.id.to_string()),
        name: p.name.clone(),
        kind,
        enabled: p.enabled,
        has_client_secret: p.has_secret,
        oidc,
        saml,
        default_role_id: p.default_role_id.map(|r| ID(r.to_string())),
        jit_domains: p.jit_domains.clone(),
        allow_idp_initiated: p.allow_idp_initiated,
        redirect_uri: urls.redirect_uri,
        sp_entity_id: urls.sp_entity_id,
        acs_url: urls.acs_url,
        metadata_url: urls.metadata_url,
        login_url: urls.login_url,
        inner: p,
    }
}

#[derive(InputObject)]
pub struct OidcInput {
    pub issuer_url: String,
    pub client_id: String,
    /// Required when creating; on update, omitted keeps the stored one.
    pub client_secret: Option<String>,
    /// `openid profile email` when omitted.
    pub scopes: Option<Vec<String>>,
    /// `groups` when omitted.
    pub groups_claim: Option<String>,
}

#[derive(InputObject)]
pub struct SamlInput {
    pub idp_metadata_url: Option<String>,
    pub idp_metadata_xml: Option<String>,
    pub idp_entity_id: Option<String>,
    pub idp_sso_url: Option<String>,
    pub idp_certificate: Option<String>,
    /// `email` when omitted (the NameID is used when it is an email and the attribute is absent).
    pub email_attribute: Option<String>,
    /// `name` when omitted.
    pub name_attribute: Option<String>,
    /// `groups` when omitted.
    pub groups_attribute: Option<String>,
}

#[derive(InputObject)]
pub struct CreateSsoProviderInput {
    pub organization_id: ID,
    pub name: String,
    /// Exactly one of `oidc` and `saml`.
    pub oidc: Option<OidcInput>,
    pub saml: Option<SamlInput>,
    /// Off until turned on (test the connection first).
    #[graphql(default)]
    pub enabled: bool,
    pub default_role_id: Option<ID>,
    /// The email domains it may create accounts for (just in time); omitted: any.
    pub jit_domains: Option<Vec<String>>,
    /// SAML: accept unsolicited (IdP-initiated) responses. Off by default: such a response
    /// answers no request of this browser.
    #[graphql(default)]
    pub allow_idp_initiated: bool,
}

#[derive(InputObject)]
pub struct UpdateSsoProviderInput {
    pub id: ID,
    pub name: Option<String>,
    pub enabled: Option<bool>,
    pub oidc: Option<OidcInput>,
    pub saml: Option<SamlInput>,
    pub default_role_id: Option<ID>,
    /// Removes the default role.
    #[graphql(default)]
    pub clear_default_role: bool,
    /// Replaces the domains it may create accounts for; an empty list: any domain.
    pub jit_domains: Option<Vec<String>>,
    pub allow_idp_initiated: Option<bool>,
}

#[derive(InputObject)]
pub struct StartSsoLinkInput {
    pub provider_id: ID,
    /// A path on this site to hand back to the landing page.
    pub return_to: Option<String>,
}

#[derive(SimpleObject)]
pub struct SsoLinkStart {
    /// Where the browser goes to sign in at the identity provider.
    pub url: String,
}

#[derive(InputObject)]
pub struct ConfirmSsoLinkInput {
    /// The `link_code` the landing page was handed after the round trip.
    pub code: String,
}

#[derive(SimpleObject)]
pub struct SsoLinkConfirmed {
    /// The provider whose identity now signs in to this account.
    pub provider_id: ID,
}

#[derive(InputObject)]
pub struct SsoProviderIdInput {
    pub id: ID,
}

#[derive(InputObject)]
pub struct AddSsoGroupMappingInput {
    pub provider_id: ID,
    /// The group name exactly as the IdP sends it.
    pub group: String,
    pub role_id: ID,
    pub node_id: ID,
}

#[derive(InputObject)]
pub struct AddSsoTeamMappingInput {
    pub provider_id: ID,
    /// The group name exactly as the IdP sends it.
    pub group: String,
    pub team_id: ID,
}

/// Which mapping of a provider (a group → role or a group → team mapping).
#[derive(InputObject)]
pub struct RemoveSsoGroupMappingInput {
    pub provider_id: ID,
    pub id: ID,
}

#[derive(InputObject)]
pub struct SetEnforceSsoInput {
    pub organization_id: ID,
    pub enforce: bool,
}

#[derive(SimpleObject)]
pub struct SsoConnectionTest {
    pub ok: bool,
    /// What was found, or what is wrong, in plain words.
    pub message: String,
}

#[derive(SimpleObject)]
pub struct DeletedSsoProvider {
    pub deleted_id: ID,
}

#[derive(SimpleObject)]
pub struct EnforceSsoPayload {
    pub organization_id: ID,
    pub enforce_sso: bool,
}
