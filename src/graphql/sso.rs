//! Configuration of an organization's single sign-on: identity providers (OIDC or SAML),
//! group → role mappings, "test connection", and "enforce SSO". Everything here needs
//! `sso:*:manage` at the organization. Client secrets are encrypted at rest and never returned.

use async_graphql::{ComplexObject, Context, Enum, ID, InputObject, Object, Result, SimpleObject};
use uuid::Uuid;

use super::access::lookups::{node_by_id, usable_role};
use super::access::{ApiPermission, Granted, authorize};
use super::context::{ContextExt, parse_id};
use super::cost;
use super::error::{ApiError, Code};
use super::roles::ensure_no_escalation;
use crate::domain::{DomainName, Node};
use crate::sso::{OidcSettings, Provider, ProviderSettings, SamlSettings, ServiceUrls};
use crate::store::{GroupMapping, NewProvider, ProviderChange};

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

#[ComplexObject]
impl SsoProvider {
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

fn http_url(field: &'static str, url: &str) -> Result<String, ApiError> {
    let trimmed = url.trim();
    let ok = url::Url::parse(trimmed)
        .is_ok_and(|u| matches!(u.scheme(), "https" | "http") && u.host_str().is_some());
    if ok {
        Ok(trimmed.trim_end_matches('/').to_owned())
    } else {
        Err(ApiError::bad_input(
            field,
            format!("`{trimmed}` is not an http(s) URL"),
        ))
    }
}

fn non_empty(field: &'static str, value: &str) -> Result<String, ApiError> {
    let v = value.trim();
    if v.is_empty() || v.chars().count() > 2000 {
        return Err(ApiError::bad_input(
            field,
            format!("`{field}` must be 1 to 2000 characters"),
        ));
    }
    Ok(v.to_owned())
}

fn optional(field: &'static str, value: Option<&str>) -> Result<Option<String>, ApiError> {
    value
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(|v| {
            if v.len() > 200_000 {
                Err(ApiError::bad_input(field, format!("`{field}` is too long")))
            } else {
                Ok(v.to_owned())
            }
        })
        .transpose()
}

fn oidc_settings(i: &OidcInput) -> Result<OidcSettings, ApiError> {
    let scopes = i
        .scopes
        .clone()
        .unwrap_or_else(|| vec!["openid".into(), "profile".into(), "email".into()]);
    if !scopes.iter().any(|s| s == "openid") {
        return Err(ApiError::bad_input(
            "scopes",
            "the scopes must include `openid`",
        ));
    }
    Ok(OidcSettings {
        issuer_url: http_url("issuerUrl", &i.issuer_url)?,
        client_id: non_empty("clientId", &i.client_id)?,
        scopes,
        groups_claim: non_empty("groupsClaim", i.groups_claim.as_deref().unwrap_or("groups"))?,
    })
}

fn saml_settings(i: &SamlInput) -> Result<SamlSettings, ApiError> {
    let s = SamlSettings {
        idp_metadata_url: i
            .idp_metadata_url
            .as_deref()
            .filter(|u| !u.trim().is_empty())
            .map(|u| http_url("idpMetadataUrl", u))
            .transpose()?,
        idp_metadata_xml: optional("idpMetadataXml", i.idp_metadata_xml.as_deref())?,
        idp_entity_id: optional("idpEntityId", i.idp_entity_id.as_deref())?,
        idp_sso_url: i
            .idp_sso_url
            .as_deref()
            .filter(|u| !u.trim().is_empty())
            .map(|u| http_url("idpSsoUrl", u))
            .transpose()?,
        idp_certificate: optional("idpCertificate", i.idp_certificate.as_deref())?,
        email_attribute: non_empty(
            "emailAttribute",
            i.email_attribute.as_deref().unwrap_or("email"),
        )?,
        name_attribute: non_empty(
            "nameAttribute",
            i.name_attribute.as_deref().unwrap_or("name"),
        )?,
        groups_attribute: non_empty(
            "groupsAttribute",
            i.groups_attribute.as_deref().unwrap_or("groups"),
        )?,
    };
    let by_hand =
        s.idp_entity_id.is_some() && s.idp_sso_url.is_some() && s.idp_certificate.is_some();
    if s.idp_metadata_url.is_none() && s.idp_metadata_xml.is_none() && !by_hand {
        return Err(ApiError::bad_input(
            "saml",
            "give the IdP's metadata (URL or XML), or its entity id, SSO URL and signing certificate",
        ));
    }
    Ok(s)
}

/// Refuses an issuer or metadata URL at an address this server does not fetch from (a private
/// network, unless the operator allows them): named by an organization admin, it must not
/// reach the gateway's own network. Every fetch checks again, hop by hop.
async fn check_destination(ctx: &Context<'_>, settings: &ProviderSettings) -> Result<(), ApiError> {
    let (field, url) = match settings {
        ProviderSettings::Oidc(o) => ("issuerUrl", Some(o.issuer_url.as_str())),
        ProviderSettings::Saml(s) => ("idpMetadataUrl", s.idp_metadata_url.as_deref()),
    };
    match url {
        Some(url) => ctx
            .services()
            .outbound
            .check_url(url)
            .await
            .map_err(|e| ApiError::bad_input(field, e.to_string())),
        None => Ok(()),
    }
}

/// The provider with this id and its organization node, after checking `sso:*:manage` there.
async fn managed_provider(
    ctx: &Context<'_>,
    id: &ID,
) -> Result<(Provider, Node, Granted), ApiError> {
    ctx.signed_in()?;
    // INVARIANT: looked up to be checked; nothing is answered before the check.
    let provider = ctx
        .unchecked_store()
        .provider(parse_id("id", id)?)
        .await?
        .ok_or_else(|| ApiError::not_found("identity provider"))?;
    let org = crate::graphql::access::lookups::org_node(ctx, provider.organization_id).await?;
    let granted = authorize(ctx, &org, ApiPermission::SSO_MANAGE, "identity provider").await?;
    Ok((provider, org, granted))
}

fn encrypt_secret(ctx: &Context<'_>, secret: &str) -> Result<String, ApiError> {
    let secret = non_empty("clientSecret", secret)?;
    ctx.services().secrets.encrypt(&secret).map_err(|e| match e {
        crate::crypto::CryptoError::NoKey => ApiError::bad_input(
            "clientSecret",
            "this server has no secret key (IAM_SECRET_KEY) to store client secrets encrypted; ask its operator",
        ),
        other => ApiError::internal(&other),
    })
}

async fn default_role(
    ctx: &Context<'_>,
    org: &Node,
    granted: &super::access::Granted,
    id: Option<&ID>,
) -> Result<Option<Uuid>, ApiError> {
    let Some(id) = id else {
        return Ok(None);
    };
    let role = usable_role(ctx, org.organization_id(), id, "defaultRoleId").await?;
    ensure_no_escalation(granted.view(), &role, org)?;
    Ok(Some(role.id))
}

#[derive(Default)]
pub struct SsoMutation;

#[Object]
impl SsoMutation {
    /// Adds an identity provider to an organization (disabled unless `enabled`). Needs
    /// `sso:*:manage` at the organization; a default role also needs what granting it needs.
    async fn create_sso_provider(
        &self,
        ctx: &Context<'_>,
        input: CreateSsoProviderInput,
    ) -> Result<SsoProvider> {
        ctx.signed_in()?;
        let org_id = parse_id("organizationId", &input.organization_id)?;
        let org = crate::graphql::access::lookups::org_node(ctx, org_id).await?;
        let granted = authorize(ctx, &org, ApiPermission::SSO_MANAGE, "organization").await?;
        let name = crate::domain::Name::parse("name", &input.name)?;
        let (settings, secret) = match (&input.oidc, &input.saml) {
            (Some(o), None) => {
                let secret = o.client_secret.as_deref().ok_or_else(|| {
                    ApiError::bad_input("clientSecret", "an OIDC provider needs its client secret")
                })?;
                (
                    ProviderSettings::Oidc(oidc_settings(o)?),
                    Some(encrypt_secret(ctx, secret)?),
                )
            }
            (None, Some(s)) => (ProviderSettings::Saml(saml_settings(s)?), None),
            _ => {
                return Err(
                    ApiError::bad_input("oidc", "give exactly one of `oidc` and `saml`").into(),
                );
            }
        };
        check_destination(ctx, &settings).await?;
        let default_role_id =
            default_role(ctx, &org, &granted, input.default_role_id.as_ref()).await?;
        let created = granted
            .store(ctx)
            .create_provider(
                NewProvider {
                    organization_id: org_id,
                    name: name.as_str().to_owned(),
                    enabled: input.enabled,
                    settings,
                    secret_ciphertext: secret,
                    default_role_id,
                    jit_domains: input
                        .jit_domains
                        .as_deref()
                        .map(jit_domains)
                        .transpose()?
                        .filter(|d| !d.is_empty()),
                    allow_idp_initiated: input.allow_idp_initiated,
                },
                &ctx.request().actor,
            )
            .await?;
        Ok(dress(ctx, created))
    }

    /// Changes a provider: name, settings (of its own kind), secret, default role, enabled.
    /// Needs `sso:*:manage` at its organization.
    async fn update_sso_provider(
        &self,
        ctx: &Context<'_>,
        input: UpdateSsoProviderInput,
    ) -> Result<SsoProvider> {
        let (provider, org, granted) = managed_provider(ctx, &input.id).await?;
        let mut change = ProviderChange {
            name: input
                .name
                .as_deref()
                .map(|n| crate::domain::Name::parse("name", n).map(|n| n.as_str().to_owned()))
                .transpose()?,
            enabled: input.enabled,
            jit_domains: input
                .jit_domains
                .as_deref()
                .map(|d| jit_domains(d).map(|d| Some(d).filter(|d| !d.is_empty())))
                .transpose()?,
            allow_idp_initiated: input.allow_idp_initiated,
            ..ProviderChange::default()
        };
        match (&input.oidc, &input.saml, &provider.settings) {
            (None, None, _) => {}
            (Some(o), None, ProviderSettings::Oidc(before)) => {
                let settings = oidc_settings(o)?;
                match o.client_secret.as_deref() {
                    Some(secret) => change.secret_ciphertext = Some(encrypt_secret(ctx, secret)?),
                    // INVARIANT: the stored secret only ever goes to the issuer it was given
                    // for; the token endpoint is discovered from the issuer.
                    None if !same_issuer(&before.issuer_url, &settings.issuer_url) => {
                        return Err(ApiError::bad_input(
                            "clientSecret",
                            "a new `issuerUrl` would receive the stored client secret: send `clientSecret` again with it",
                        )
                        .into());
                    }
                    None => {}
                }
                change.settings = Some(ProviderSettings::Oidc(settings));
            }
            (None, Some(s), ProviderSettings::Saml(_)) => {
                change.settings = Some(ProviderSettings::Saml(saml_settings(s)?));
            }
            _ => {
                return Err(ApiError::bad_input(
                    "oidc",
                    "a provider keeps its kind: give `oidc` for an OIDC provider, `saml` for a SAML one",
                )
                .into());
            }
        }
        if let Some(settings) = &change.settings {
            check_destination(ctx, settings).await?;
        }
        if input.clear_default_role {
            change.default_role_id = Some(None);
        } else if input.default_role_id.is_some() {
            change.default_role_id =
                Some(default_role(ctx, &org, &granted, input.default_role_id.as_ref()).await?);
        }
        let updated = granted
            .store(ctx)
            .update_provider(provider.id, change, &ctx.request().actor)
            .await?;
        Ok(dress(ctx, updated))
    }

    /// Removes a provider and its mappings. Bindings it made stay until revoked. Needs
    /// `sso:*:manage`.
    async fn delete_sso_provider(
        &self,
        ctx: &Context<'_>,
        input: SsoProviderIdInput,
    ) -> Result<DeletedSsoProvider> {
        let (provider, _, granted) = managed_provider(ctx, &input.id).await?;
        granted
            .store(ctx)
            .delete_provider(provider.id, &ctx.request().actor)
            .await?;
        Ok(DeletedSsoProvider {
            deleted_id: ID(provider.id.to_string()),
        })
    }

    /// Confirms the link a `startSsoLink` round trip prepared: `code` is the `link_code` the
    /// landing page got. Needs the password session of the account that started the link (a
    /// link that someone else's browser completed is refused, and so never made).
    async fn confirm_sso_link(
        &self,
        ctx: &Context<'_>,
        input: ConfirmSsoLinkInput,
    ) -> Result<SsoLinkConfirmed> {
        let (user, _) = ctx.account_wide()?;
        let services = ctx.services();
        let provider =
            crate::sso::confirm_link(services, &input.code, user.id, &ctx.request().actor)
                .await
                .map_err(|e| match e {
                    crate::sso::SsoError::Refused(why) => ApiError::bad_input("code", why),
                    other => {
                        tracing::warn!(error = ?other, "sso link could not be confirmed");
                        ApiError::internal(&other)
                    }
                })?;
        Ok(SsoLinkConfirmed {
            provider_id: ID(provider.id.to_string()),
        })
    }

    /// Starts linking an identity of a provider to the caller's account: open `url` in the
    /// browser and sign in at the IdP; the landing page then gets `#link_code=…`, which this
    /// account confirms with `confirmSsoLink`. Later sign-ins of that identity reach this
    /// account. Needs a password session (not one opened through SSO); the provider must be
    /// enabled.
    async fn start_sso_link(
        &self,
        ctx: &Context<'_>,
        input: StartSsoLinkInput,
    ) -> Result<SsoLinkStart> {
        let (user, _) = ctx.account_wide()?;
        let services = ctx.services();
        // INVARIANT: the caller's own account or memberships, of no organization.
        let provider = ctx
            .unchecked_store()
            .provider(parse_id("providerId", &input.provider_id)?)
            .await?
            .filter(|p| p.enabled)
            .ok_or_else(|| ApiError::not_found("identity provider"))?;
        let return_to = input
            .return_to
            .map(|r| {
                crate::sso::safe_return_to(&r).ok_or_else(|| {
                    ApiError::bad_input("returnTo", crate::sso::saml::RETURN_TO_SHAPE)
                })
            })
            .transpose()?;
        let started = match &provider.settings {
            ProviderSettings::Oidc(_) => {
                crate::sso::oidc::start(services, &provider, return_to, Some(user.id)).await
            }
            ProviderSettings::Saml(_) => {
                crate::sso::saml::start(services, &provider, return_to, Some(user.id)).await
            }
        };
        let url = started.map_err(|e| {
            tracing::warn!(provider_id = %provider.id, error = ?e, "sso link could not start");
            ApiError::new(
                super::error::Code::BadUserInput,
                format!("the link could not start: {e}"),
            )
        })?;
        Ok(SsoLinkStart {
            url: url.to_string(),
        })
    }

    /// Fetches the provider's discovery document or metadata and says what is wrong, in plain
    /// words. Needs `sso:*:manage`.
    async fn test_sso_connection(
        &self,
        ctx: &Context<'_>,
        input: SsoProviderIdInput,
    ) -> Result<SsoConnectionTest> {
        let (provider, _, _) = managed_provider(ctx, &input.id).await?;
        let outcome = crate::sso::test_connection(ctx.services(), &provider).await;
        Ok(match outcome {
            Ok(message) => SsoConnectionTest { ok: true, message },
            Err(message) => SsoConnectionTest { ok: false, message },
        })
    }

    /// Maps an IdP group to a role at a node, applied at each sign-in through the provider.
    /// Needs `sso:*:manage` and what granting the role there needs.
    async fn add_sso_group_mapping(
        &self,
        ctx: &Context<'_>,
        input: AddSsoGroupMappingInput,
    ) -> Result<SsoGroupMapping> {
        let (provider, _, granted) = managed_provider(ctx, &input.provider_id).await?;
        let node = node_by_id(ctx, "nodeId", &input.node_id).await?;
        if node.organization_id() != provider.organization_id {
            return Err(ApiError::not_found("node").into());
        }
        let role = usable_role(ctx, provider.organization_id, &input.role_id, "roleId").await?;
        ensure_no_escalation(granted.view(), &role, &node)?;
        let group = non_empty("group", &input.group)?;
        let mapping = granted
            .store(ctx)
            .add_group_mapping(&provider, &group, role.id, &node, &ctx.request().actor)
            .await?;
        Ok(mapping.into())
    }

    /// Removes a group mapping; the bindings it made are revoked at each member's next
    /// sign-in. Needs `sso:*:manage`.
    async fn remove_sso_group_mapping(
        &self,
        ctx: &Context<'_>,
        input: RemoveSsoGroupMappingInput,
    ) -> Result<DeletedSsoProvider> {
        let (provider, _, granted) = managed_provider(ctx, &input.provider_id).await?;
        let id = parse_id("id", &input.id)?;
        granted
            .store(ctx)
            .remove_group_mapping(&provider, id, &ctx.request().actor)
            .await?;
        Ok(DeletedSsoProvider {
            deleted_id: ID(id.to_string()),
        })
    }

    /// Turns "enforce SSO" on or off: when on, members sign in through an identity provider
    /// only; admins of the organization keep password sign-in (break-glass). Turning it on
    /// needs an enabled provider. Needs `sso:*:manage`.
    async fn set_enforce_sso(
        &self,
        ctx: &Context<'_>,
        input: SetEnforceSsoInput,
    ) -> Result<EnforceSsoPayload> {
        ctx.signed_in()?;
        let org_id = parse_id("organizationId", &input.organization_id)?;
        let org = crate::graphql::access::lookups::org_node(ctx, org_id).await?;
        let granted = authorize(ctx, &org, ApiPermission::SSO_MANAGE, "organization").await?;
        let store = granted.store(ctx);
        if input.enforce && !store.providers(org_id).await?.iter().any(|p| p.enabled) {
            return Err(ApiError::new(
                Code::Conflict,
                "enable an identity provider before enforcing SSO, or nobody but admins could sign in",
            )
            .into());
        }
        store
            .set_enforce_sso(org_id, input.enforce, &ctx.request().actor)
            .await?;
        Ok(EnforceSsoPayload {
            organization_id: ID(org_id.to_string()),
            enforce_sso: input.enforce,
        })
    }
}

/// Whether two issuer URLs name the same issuer (a trailing slash aside).
fn same_issuer(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

/// The domains a provider may create accounts for, validated (at most 100).
fn jit_domains(raw: &[String]) -> Result<Vec<String>, ApiError> {
    if raw.len() > 100 {
        return Err(ApiError::bad_input(
            "jitDomains",
            "at most 100 domains can be listed",
        ));
    }
    let mut out = raw
        .iter()
        .map(|d| DomainName::parse("jitDomains", d).map(|d| d.as_str().to_owned()))
        .collect::<Result<Vec<_>, _>>()?;
    out.sort();
    out.dedup();
    Ok(out)
}
