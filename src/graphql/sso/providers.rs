//! Creating, changing and removing identity providers and their group mappings; testing a
//! connection; turning "enforce SSO" on and off.

use async_graphql::{Context, ID, Object, Result};
use uuid::Uuid;

use super::*;
use crate::domain::{DomainName, Node};
use crate::graphql::access::lookups::{node_by_id, usable_role};
use crate::graphql::access::{ApiPermission, Granted, authorize};
use crate::graphql::context::{ContextExt, parse_id};
use crate::graphql::error::{ApiError, Code};
use crate::graphql::roles::{ensure_bindable_at, ensure_no_escalation};
use crate::sso::{OidcSettings, Provider, ProviderSettings, SamlSettings};
use crate::store::{NewProvider, ProviderChange};

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
    ctx.authenticated()?;
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
    granted: &crate::graphql::access::Granted,
    id: Option<&ID>,
) -> Result<Option<Uuid>, ApiError> {
    let Some(id) = id else {
        return Ok(None);
    };
    let role = usable_role(ctx, org.organization_id(), id, "defaultRoleId").await?;
    ensure_bindable_at(&role, org, "defaultRoleId")?;
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
        ctx.authenticated()?;
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
            crate::sso::confirm_link(&services.sso, &input.code, user.id, &ctx.request().actor)
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
                crate::sso::oidc::start(&services.sso, &provider, return_to, Some(user.id)).await
            }
            ProviderSettings::Saml(_) => {
                crate::sso::saml::start(&services.sso, &provider, return_to, Some(user.id)).await
            }
        };
        let url = started.map_err(|e| {
            tracing::warn!(provider_id = %provider.id, error = ?e, "sso link could not start");
            ApiError::new(
                crate::graphql::error::Code::BadUserInput,
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
        let outcome = crate::sso::test_connection(&ctx.services().sso, &provider).await;
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
        ensure_bindable_at(&role, &node, "nodeId")?;
        ensure_no_escalation(granted.view(), &role, &node)?;
        let group = non_empty("group", &input.group)?;
        let mapping = granted
            .store(ctx)
            .add_group_mapping(&provider, &group, role.id, &node, &ctx.request().actor)
            .await?;
        Ok(mapping.into())
    }

    /// Maps an IdP group to a team of the organization: each sign-in through the provider
    /// puts the member into the team, or takes them out when the group is gone. Needs
    /// `sso:*:manage`, and what adding members to the team needs (granting its roles).
    async fn add_sso_team_mapping(
        &self,
        ctx: &Context<'_>,
        input: AddSsoTeamMappingInput,
    ) -> Result<SsoTeamMapping> {
        let (provider, _, granted) = managed_provider(ctx, &input.provider_id).await?;
        let team = granted
            .store(ctx)
            .team(parse_id("teamId", &input.team_id)?)
            .await?
            .filter(|t| t.organization_id == provider.organization_id)
            .ok_or_else(|| ApiError::not_found("team"))?;
        crate::graphql::teams::ensure_may_change_members(ctx, &granted, &team, false).await?;
        let group = non_empty("group", &input.group)?;
        let mapping = granted
            .store(ctx)
            .add_team_mapping(&provider, &group, team.id, &ctx.request().actor)
            .await?;
        Ok(mapping.into())
    }

    /// Removes a team mapping; members it added leave the team at their next sign-in. Needs
    /// `sso:*:manage`.
    async fn remove_sso_team_mapping(
        &self,
        ctx: &Context<'_>,
        input: RemoveSsoGroupMappingInput,
    ) -> Result<DeletedSsoProvider> {
        let (provider, _, granted) = managed_provider(ctx, &input.provider_id).await?;
        let id = parse_id("id", &input.id)?;
        granted
            .store(ctx)
            .remove_team_mapping(&provider, id, &ctx.request().actor)
            .await?;
        Ok(DeletedSsoProvider {
            deleted_id: ID(id.to_string()),
        })
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
        ctx.authenticated()?;
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
