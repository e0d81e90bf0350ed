//! An organization's email domains: added, verified by a DNS TXT record, removed. Its identity
//! providers speak for existing accounts only in its verified domains (`store/sso_identities`).
//! Each resolver needs `sso:*:manage` at the organization; `Organization.domains` too.

use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};

use crate::auth::token;
use crate::dns;
use crate::domain::{DomainName, OrganizationDomain as Record};
use crate::graphql::access::lookups::org_node;
use crate::graphql::access::{ApiPermission, Granted, authorize};
use crate::graphql::context::{ContextExt, parse_id};
use crate::graphql::error::ApiError;

/// An email domain of an organization.
#[derive(SimpleObject)]
pub struct OrganizationDomain {
    pub id: ID,
    pub domain: String,
    pub verified: bool,
    pub verified_at: Option<DateTime<Utc>>,
    /// Where to publish the TXT record that proves the domain.
    pub txt_record_name: String,
    /// The TXT record's value.
    pub txt_record_value: String,
    pub created_at: DateTime<Utc>,
}

impl From<Record> for OrganizationDomain {
    fn from(d: Record) -> Self {
        Self {
            id: ID(d.id.to_string()),
            txt_record_name: dns::record_name(&d.domain),
            txt_record_value: dns::record_value(&d.token),
            verified: d.verified_at.is_some(),
            verified_at: d.verified_at,
            domain: d.domain,
            created_at: d.created_at,
        }
    }
}

/// The organization's domains, for `Organization.domains`: needs `sso:*:manage`.
pub async fn domains_of(
    ctx: &Context<'_>,
    organization_id: uuid::Uuid,
) -> Result<Vec<OrganizationDomain>> {
    let org = org_node(ctx, organization_id).await?;
    let granted = authorize(ctx, &org, ApiPermission::SSO_MANAGE, "organization").await?;
    let list = granted.store(ctx).domains(organization_id).await?;
    Ok(list.into_iter().map(Into::into).collect())
}

#[derive(InputObject)]
pub struct AddOrganizationDomainInput {
    pub organization_id: ID,
    /// e.g. `corp.example`.
    pub domain: String,
}

#[derive(InputObject)]
pub struct OrganizationDomainIdInput {
    pub id: ID,
}

#[derive(SimpleObject)]
pub struct RemovedOrganizationDomain {
    pub removed_id: ID,
}

/// A domain of an organization the caller manages SSO of; NOT_FOUND otherwise.
async fn managed_domain(ctx: &Context<'_>, id: &ID) -> Result<(Record, Granted), ApiError> {
    ctx.authenticated()?;
    // INVARIANT: looked up to be checked; nothing is answered before the check.
    let domain = ctx
        .unchecked_store()
        .domain(parse_id("id", id)?)
        .await?
        .ok_or_else(|| ApiError::not_found("domain"))?;
    let org = org_node(ctx, domain.organization_id).await?;
    let granted = authorize(ctx, &org, ApiPermission::SSO_MANAGE, "domain").await?;
    Ok((domain, granted))
}

#[derive(Default)]
pub struct DomainMutation;

#[Object]
impl DomainMutation {
    /// Adds an email domain, unverified: publish the TXT record it names, then verify it.
    /// Needs `sso:*:manage` at the organization.
    async fn add_organization_domain(
        &self,
        ctx: &Context<'_>,
        input: AddOrganizationDomainInput,
    ) -> Result<OrganizationDomain> {
        ctx.authenticated()?;
        let org_id = parse_id("organizationId", &input.organization_id)?;
        let org = org_node(ctx, org_id).await?;
        let granted = authorize(ctx, &org, ApiPermission::SSO_MANAGE, "organization").await?;
        let domain = DomainName::parse("domain", &input.domain)?;
        let challenge =
            token::mint(token::TokenKind::DomainChallenge).map_err(|e| ApiError::internal(&e))?;
        let added = granted
            .store(ctx)
            .add_domain(
                org_id,
                domain.as_str(),
                challenge.plaintext,
                &ctx.request().actor,
            )
            .await?;
        Ok(added.into())
    }

    /// Verifies a domain: its TXT record must carry the domain's value now. A domain is
    /// verified by one organization at a time (CONFLICT otherwise). Needs `sso:*:manage`.
    async fn verify_organization_domain(
        &self,
        ctx: &Context<'_>,
        input: OrganizationDomainIdInput,
    ) -> Result<OrganizationDomain> {
        let (domain, granted) = managed_domain(ctx, &input.id).await?;
        if domain.verified_at.is_some() {
            return Ok(domain.into());
        }
        let name = dns::record_name(&domain.domain);
        let wanted = dns::record_value(&domain.token);
        let found = ctx
            .services()
            .dns
            .txt(&name)
            .await
            .map_err(|why| ApiError::new(crate::graphql::error::Code::Internal, why))?;
        // Tokens are not secret once published; a plain comparison is fine.
        if !found.iter().any(|v| v.trim() == wanted) {
            return Err(ApiError::bad_input(
                "id",
                format!("no TXT record `{wanted}` was found at `{name}`; publish it and try again (DNS changes can take a while to appear)"),
            )
            .into());
        }
        let verified = granted
            .store(ctx)
            .mark_domain_verified(&domain, &ctx.request().actor)
            .await?;
        Ok(verified.into())
    }

    /// Removes a domain: the organization's providers no longer speak for accounts in it
    /// (identities already linked stay linked). Needs `sso:*:manage`.
    async fn remove_organization_domain(
        &self,
        ctx: &Context<'_>,
        input: OrganizationDomainIdInput,
    ) -> Result<RemovedOrganizationDomain> {
        let (domain, granted) = managed_domain(ctx, &input.id).await?;
        granted
            .store(ctx)
            .remove_domain(&domain, &ctx.request().actor)
            .await?;
        Ok(RemovedOrganizationDomain {
            removed_id: input.id,
        })
    }
}
