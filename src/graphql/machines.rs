//! Machine identities: service accounts and API keys.
//!
//! Who may do what, and why (SEMANTICS "Bindings", "The decision" step 5, "Changing access"):
//! - Service accounts: listed with `service_accounts:*:read`, written with
//!   `service_accounts:*:manage` at the organization. Disabling, enabling or deleting one
//!   takes away or gives back every binding it holds, so the caller must be able to grant
//!   each of them (no escalation, as for revoking them one by one).
//! - A personal key: any active member, for themself, in one organization; it never holds
//!   more than its owner at the moment of each check.
//! - A service account's key: `api_keys:*:manage`, and the caller must hold what the key
//!   carries: its scopes (at the organization), or (a key without scopes) everything the
//!   account holds. Whoever
//!   holds the secret holds that power, so rotating such a key is held to the same rule, and
//!   nobody rotates another person's personal key.
//! - Keys are listed: one's own always, everyone's with `api_keys:*:read`; revoked: one's own
//!   always, anyone's with `api_keys:*:manage`.
//! - An API key cannot create or rotate keys (a leaked key must not mint lasting ones).

use async_graphql::{ComplexObject, Context, Enum, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::authz::{CompiledRole, Policy};
use crate::domain::{self, KeyOwner, Name};
use crate::graphql::access::lookups::org_node;
use crate::graphql::access::{ApiPermission, Granted, OrgView, authorize, member_view};
use crate::graphql::context::{Acting, ContextExt, parse_id};
use crate::graphql::cost;
use crate::graphql::error::ApiError;
use crate::graphql::roles::{RoleBinding, dress_bindings};
use crate::store::{NewApiKey, ServiceAccountChange};

/// At most this many scopes and networks on one key.
const MAX_SCOPES: usize = 50;
const MAX_CIDRS: usize = 20;
/// At most this many working keys per owner.
const MAX_LIVE_KEYS: usize = 100;
/// The longest overlap of a rotated key with its replacement.
const MAX_OVERLAP_HOURS: i32 = 720;

/// A principal of the organization that is no person: an agent, a pipeline, a CI job.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct ServiceAccount {
    pub id: ID,
    pub organization_id: ID,
    pub name: String,
    pub description: Option<String>,
    /// A disabled account, and every key of it, is denied everything.
    pub disabled: bool,
    pub created_by: Option<ID>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[graphql(skip)]
    uuid: Uuid,
    #[graphql(skip)]
    org: Uuid,
}

impl From<domain::ServiceAccount> for ServiceAccount {
    fn from(a: domain::ServiceAccount) -> Self {
        Self {
            id: ID(a.id.to_string()),
            organization_id: ID(a.organization_id.to_string()),
            name: a.name,
            description: a.description,
            disabled: a.disabled,
            created_by: a.created_by.map(|u| ID(u.to_string())),
            created_at: a.created_at,
            updated_at: a.updated_at,
            uuid: a.id,
            org: a.organization_id,
        }
    }
}

// INVARIANT: a `ServiceAccount` object is made only by resolvers that checked
// `service_accounts:*:read` (or `:manage`) at its organization.
#[ComplexObject]
impl ServiceAccount {
    /// The roles bound to the account itself, oldest first (expired ones included).
    #[graphql(complexity = "cost::list(cost::UNPAGED, child_complexity)")]
    async fn role_bindings(&self, ctx: &Context<'_>) -> Result<Vec<RoleBinding>> {
        let bindings = ctx
            .unchecked_store()
            .bindings_of(self.org, self.uuid)
            .await?;
        Ok(dress_bindings(ctx, self.org, bindings).await?)
    }

    /// The account's working keys, newest first. Needs `api_keys:*:read` as well.
    #[graphql(complexity = "cost::list(cost::UNPAGED, child_complexity)")]
    async fn api_keys(&self, ctx: &Context<'_>) -> Result<Vec<ApiKey>> {
        let org = org_node(ctx, self.org).await?;
        let granted = authorize(ctx, &org, ApiPermission::API_KEYS_READ, "organization").await?;
        Ok(granted
            .store(ctx)
            .api_keys(self.org, Some(KeyOwner::ServiceAccount(self.uuid)), false)
            .await?
            .into_iter()
            .map(|k| ApiKey::of(k, granted.store(ctx).clock().now()))
            .collect())
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum ApiKeyOwnerKind {
    User,
    ServiceAccount,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum ApiKeyState {
    Active,
    /// Replaced by rotation: it works until `overlapUntil` or its replacement's first use.
    Overlapping,
    Expired,
    Revoked,
    /// Replaced by rotation, and the overlap is over.
    Replaced,
}

/// An API key (never its secret).
#[derive(SimpleObject)]
pub struct ApiKey {
    pub id: ID,
    pub organization_id: ID,
    pub name: String,
    /// The first characters of the secret, to recognise it (`iam_k_` and 8 more).
    pub prefix: String,
    pub owner_kind: ApiKeyOwnerKind,
    /// The member (a personal key) or the service account the key acts as.
    pub owner_id: ID,
    /// `resource:scope:action` permissions the key is narrowed to; null: all its owner holds.
    pub scopes: Option<Vec<String>>,
    /// Networks requests must come from; null: any.
    pub allowed_cidrs: Option<Vec<String>>,
    pub state: ApiKeyState,
    pub expires_at: DateTime<Utc>,
    pub created_by: Option<ID>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// `revoked`, or `owner_removed` when its owner left the organization.
    pub revoked_reason: Option<String>,
    /// The key this one replaced by rotation.
    pub rotated_from: Option<ID>,
    pub overlap_until: Option<DateTime<Utc>>,
    /// When the key was last used (written once a minute at most).
    pub last_used_at: Option<DateTime<Utc>>,
    /// The last distinct client addresses it was used from, newest first (at most five).
    pub last_ips: Vec<String>,
}

impl ApiKey {
    fn of(k: domain::ApiKey, now: DateTime<Utc>) -> Self {
        let state = match k.refusal(now, None) {
            Some(domain::KeyRefusal::Revoked) => ApiKeyState::Revoked,
            Some(domain::KeyRefusal::Expired) => ApiKeyState::Expired,
            Some(domain::KeyRefusal::Replaced) => ApiKeyState::Replaced,
            _ if k.overlap_until.is_some() => ApiKeyState::Overlapping,
            _ => ApiKeyState::Active,
        };
        let (owner_kind, owner_id) = match k.owner {
            KeyOwner::User(id) => (ApiKeyOwnerKind::User, id),
            KeyOwner::ServiceAccount(id) => (ApiKeyOwnerKind::ServiceAccount, id),
        };
        Self {
            id: ID(k.id.to_string()),
            organization_id: ID(k.organization_id.to_string()),
            name: k.name,
            prefix: k.display_prefix,
            owner_kind,
            owner_id: ID(owner_id.to_string()),
            scopes: k.scopes,
            allowed_cidrs: k
                .allowed_cidrs
                .map(|c| c.iter().map(ToString::to_string).collect()),
            state,
            expires_at: k.expires_at,
            created_by: k.created_by.map(|u| ID(u.to_string())),
            created_at: k.created_at,
            revoked_at: k.revoked_at,
            revoked_reason: k.revoked_reason,
            rotated_from: k.rotated_from.map(|u| ID(u.to_string())),
            overlap_until: k.overlap_until,
            last_used_at: k.last_used_at,
            last_ips: k.last_ips,
        }
    }
}

#[derive(Default)]
pub struct MachineQuery;

#[Object]
impl MachineQuery {
    /// The organization's service accounts, by name. Needs `service_accounts:*:read`.
    #[graphql(complexity = "cost::list(cost::UNPAGED, child_complexity)")]
    async fn service_accounts(
        &self,
        ctx: &Context<'_>,
        organization_id: ID,
    ) -> Result<Vec<ServiceAccount>> {
        let org = org_node(ctx, parse_id("organizationId", &organization_id)?).await?;
        let granted = authorize(
            ctx,
            &org,
            ApiPermission::SERVICE_ACCOUNTS_READ,
            "organization",
        )
        .await?;
        Ok(granted
            .store(ctx)
            .service_accounts(org.id())
            .await?
            .into_iter()
            .map(ServiceAccount::from)
            .collect())
    }

    /// One service account. Needs `service_accounts:*:read` at its organization.
    async fn service_account(&self, ctx: &Context<'_>, id: ID) -> Result<ServiceAccount> {
        let (account, _) =
            account_for(ctx, &id, "id", ApiPermission::SERVICE_ACCOUNTS_READ).await?;
        Ok(account.into())
    }

    /// API keys of the organization, newest first: the caller's own personal keys; with
    /// `api_keys:*:read`, everyone's (`mine: false`), or one service account's
    /// (`serviceAccountId`). Revoked, expired and replaced keys only with `includeInactive`.
    #[graphql(complexity = "cost::list(cost::UNPAGED, child_complexity)")]
    async fn api_keys(
        &self,
        ctx: &Context<'_>,
        organization_id: ID,
        service_account_id: Option<ID>,
        #[graphql(default = true)] mine: bool,
        #[graphql(default = false)] include_inactive: bool,
    ) -> Result<Vec<ApiKey>> {
        let org = org_node(ctx, parse_id("organizationId", &organization_id)?).await?;
        let (granted, owner) = match service_account_id {
            Some(sa) => {
                let sa = parse_id("serviceAccountId", &sa)?;
                let granted =
                    authorize(ctx, &org, ApiPermission::API_KEYS_READ, "organization").await?;
                (granted, Some(KeyOwner::ServiceAccount(sa)))
            }
            None if mine => {
                let granted = member_view(ctx, org.id(), "organization").await?;
                let me = KeyOwner::User(granted.principal_id());
                (granted, Some(me))
            }
            None => (
                authorize(ctx, &org, ApiPermission::API_KEYS_READ, "organization").await?,
                None,
            ),
        };
        let now = granted.store(ctx).clock().now();
        let keys = granted
            .store(ctx)
            .api_keys(org.id(), owner, include_inactive)
            .await?;
        Ok(keys
            .into_iter()
            .map(|k| ApiKey::of(k, now))
            .filter(|k| {
                include_inactive
                    || matches!(k.state, ApiKeyState::Active | ApiKeyState::Overlapping)
            })
            .collect())
    }
}

/// The service account `id` names, if the caller holds `permission` at its organization.
async fn account_for(
    ctx: &Context<'_>,
    id: &ID,
    field: &'static str,
    permission: ApiPermission,
) -> Result<(domain::ServiceAccount, Granted), ApiError> {
    ctx.authenticated()?;
    // INVARIANT: looked up to be checked; nothing is answered before the check.
    let account = ctx
        .unchecked_store()
        .service_account(parse_id(field, id)?)
        .await?
        .ok_or_else(|| ApiError::not_found("service account"))?;
    let org = org_node(ctx, account.organization_id)
        .await
        .map_err(|_| ApiError::not_found("service account"))?;
    let granted = authorize(ctx, &org, permission, "service account").await?;
    Ok((account, granted))
}

/// Refuses unless the caller (`granted`) could grant every live binding `principal` holds
/// (its own and its teams'): what taking that power away, giving it back or handing out a
/// credential that carries it needs. `doing` says what, for the message.
pub(crate) async fn ensure_holds_power_of(
    ctx: &Context<'_>,
    granted: &Granted,
    principal: Uuid,
    doing: &str,
) -> Result<(), ApiError> {
    let org = granted.organization_id();
    let theirs = OrgView::load(ctx, org, principal, "principal").await?;
    let services = ctx.services();
    for (binding, policies) in theirs.live_bindings() {
        // INVARIANT: the path is the escalation check's own input.
        #[allow(clippy::disallowed_methods)]
        let path = services
            .nodes
            .path(services.store(), binding.node_id)
            .await?
            .ok_or_else(|| ApiError::not_found("node"))?;
        let resource = match &binding.resource {
            Some(r) => match theirs.catalog().type_ix(&r.resource_type) {
                Some(t) => Some((t, r.id.as_str())),
                None => continue,
            },
            None => None,
        };
        if let Some(lack) = granted.view().first_lacking(policies, &path, resource) {
            return Err(ApiError::forbidden(format!(
                "they hold `{}` (role `{}`), which you do not; you can only {doing} within your own permissions",
                theirs.catalog().format_permission(&lack.permission),
                theirs.role_name(binding.role_id).unwrap_or("?"),
            )));
        }
    }
    Ok(())
}

#[derive(InputObject)]
pub struct CreateServiceAccountInput {
    pub organization_id: ID,
    pub name: String,
    pub description: Option<String>,
}

#[derive(InputObject)]
pub struct UpdateServiceAccountInput {
    pub id: ID,
    pub name: Option<String>,
    /// The new description; an empty one clears it.
    pub description: Option<String>,
    /// Disabled, the account and every key of it are denied everything, at once everywhere.
    pub disabled: Option<bool>,
}

#[derive(InputObject)]
pub struct DeleteServiceAccountInput {
    pub id: ID,
}

#[derive(SimpleObject)]
pub struct ServiceAccountPayload {
    pub service_account: ServiceAccount,
    /// The organization revision after the change: pass it as `atLeast` to see it anywhere.
    pub revision: String,
}

#[derive(SimpleObject)]
pub struct DeleteServiceAccountPayload {
    pub deleted_id: ID,
    pub revision: String,
}

#[derive(InputObject)]
pub struct CreateApiKeyInput {
    pub organization_id: ID,
    /// The service account the key is for; a personal key of the caller when omitted.
    pub service_account_id: Option<ID>,
    pub name: String,
    /// Narrow the key to these `resource:scope:action` permissions (for a service account's key,
    /// each one you must hold); omitted: all its owner holds, at any time.
    pub scopes: Option<Vec<String>>,
    /// Required: at most `api_key_max_ttl` (366 days by default) from now.
    pub expires_at: DateTime<Utc>,
    /// Networks (`10.0.0.0/8`, `2001:db8::/32`, or one address) requests must come from.
    pub allowed_cidrs: Option<Vec<String>>,
}

#[derive(SimpleObject)]
pub struct CreatedApiKey {
    pub api_key: ApiKey,
    /// The secret, shown this once: send it as `Authorization: Bearer <secret>`.
    pub secret: String,
    pub revision: String,
}

#[derive(InputObject)]
pub struct RevokeApiKeyInput {
    pub id: ID,
}

#[derive(InputObject)]
pub struct RotateApiKeyInput {
    pub id: ID,
    /// How long the old secret keeps working (0–720 hours), unless the new one is used
    /// first: then it stops at once.
    pub overlap_hours: i32,
}

#[derive(SimpleObject)]
pub struct ApiKeyPayload {
    pub api_key: ApiKey,
    pub revision: String,
}

#[derive(SimpleObject)]
pub struct RotatedApiKey {
    /// The replaced key, working until `overlapUntil` or the new one's first use.
    pub previous: ApiKey,
    pub api_key: ApiKey,
    /// The new secret, shown this once.
    pub secret: String,
    pub revision: String,
}

/// Keys are minted by people in their own sessions: never by a key (a leaked key must not
/// mint lasting ones), never by an impersonation (it must not outlive its hour).
fn no_key_minting(ctx: &Context<'_>) -> Result<(), ApiError> {
    let acting = ctx.acting()?;
    if matches!(acting, Acting::Key(_)) {
        return Err(ApiError::forbidden(
            "an API key cannot create or rotate API keys: sign in to do this",
        ));
    }
    if acting.impersonator().is_some() {
        return Err(ApiError::forbidden(
            "an impersonation session cannot create or rotate API keys",
        ));
    }
    Ok(())
}

/// The scopes as stored (each in the canonical `resource:scope:action` form). For a key of
/// another principal (`handed_out`), refused unless the caller may hand each out at the
/// organization: the key carries them wherever its owner holds them. A personal key's
/// scopes only narrow what its owner holds at each check, so they hand out nothing.
fn read_scopes(
    granted: &Granted,
    scopes: &[String],
    handed_out: bool,
) -> Result<Vec<String>, ApiError> {
    if scopes.len() > MAX_SCOPES {
        return Err(ApiError::bad_input(
            "scopes",
            format!("a key may have at most {MAX_SCOPES} scopes"),
        ));
    }
    if scopes.is_empty() {
        return Err(ApiError::bad_input(
            "scopes",
            "give at least one scope, or leave `scopes` out for a key that holds all its owner holds",
        ));
    }
    let catalog = granted.view().catalog();
    let mut canonical = Vec::with_capacity(scopes.len());
    for (i, s) in scopes.iter().enumerate() {
        let p = catalog
            .parse_permission(s.trim())
            .map_err(|e| ApiError::bad_input("scopes", format!("scope {} (`{s}`): {e}", i + 1)))?;
        let text = catalog.format_permission(&p);
        if !canonical.contains(&text) {
            canonical.push(text);
        }
    }
    if !handed_out {
        return Ok(canonical);
    }
    let policies: Vec<Policy> = canonical.iter().map(Policy::allow).collect();
    let compiled = CompiledRole::compile(catalog, Uuid::nil(), "scopes", &policies)
        .map_err(|(i, e)| ApiError::bad_input("scopes", format!("scope {}: {e}", i + 1)))?;
    let org = [granted.organization_id()];
    if let Some(lack) = granted.view().first_lacking(&compiled.policies, &org, None) {
        return Err(ApiError::forbidden(format!(
            "scope `{}` needs `{}`, which you do not hold: a key's scopes can only be within your own permissions",
            canonical.get(lack.policy_index).map_or("?", String::as_str),
            catalog.format_permission(&lack.permission),
        )));
    }
    Ok(canonical)
}

fn read_cidrs(cidrs: &[String]) -> Result<Vec<ipnet::IpNet>, ApiError> {
    if cidrs.is_empty() || cidrs.len() > MAX_CIDRS {
        return Err(ApiError::bad_input(
            "allowedCidrs",
            format!("give 1 to {MAX_CIDRS} networks, or leave `allowedCidrs` out"),
        ));
    }
    cidrs
        .iter()
        .map(|c| {
            let c = c.trim();
            c.parse::<ipnet::IpNet>()
                .or_else(|_| c.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map(|n| n.trunc())
                .map_err(|_| {
                    ApiError::bad_input(
                        "allowedCidrs",
                        format!("`{c}` is not a network (`10.0.0.0/8`) or an address"),
                    )
                })
        })
        .collect()
}

fn read_expiry(ctx: &Context<'_>, at: DateTime<Utc>) -> Result<DateTime<Utc>, ApiError> {
    let now = ctx.services().clock().now();
    let max =
        Duration::from_std(ctx.services().config.api_key_max_ttl).unwrap_or(Duration::days(366));
    if at <= now {
        return Err(ApiError::bad_input("expiresAt", "must be in the future"));
    }
    if at > now + max {
        return Err(ApiError::bad_input(
            "expiresAt",
            format!(
                "a key may live at most {} days (api_key_max_ttl); choose an earlier expiry",
                max.num_days()
            ),
        ));
    }
    Ok(at)
}

/// The key `id` names with the caller's view of its organization, when the caller may act on
/// it: their own personal key, or anyone's with `permission`.
async fn key_for(
    ctx: &Context<'_>,
    id: &ID,
    permission: ApiPermission,
) -> Result<(domain::ApiKey, Granted), ApiError> {
    ctx.authenticated()?;
    // INVARIANT: looked up to be checked; nothing is answered before the check.
    let key = ctx
        .unchecked_store()
        .api_key(parse_id("id", id)?)
        .await?
        .ok_or_else(|| ApiError::not_found("API key"))?;
    let granted = member_view(ctx, key.organization_id, "API key").await?;
    if key.owner == KeyOwner::User(granted.principal_id()) {
        return Ok((key, granted));
    }
    let org = org_node(ctx, key.organization_id).await?;
    let granted = authorize(ctx, &org, permission, "API key").await?;
    Ok((key, granted))
}

#[derive(Default)]
pub struct MachineMutation;

#[Object]
impl MachineMutation {
    /// Creates a service account. Needs `service_accounts:*:manage` at the organization.
    async fn create_service_account(
        &self,
        ctx: &Context<'_>,
        input: CreateServiceAccountInput,
    ) -> Result<ServiceAccountPayload> {
        let org = org_node(ctx, parse_id("organizationId", &input.organization_id)?).await?;
        let granted = authorize(
            ctx,
            &org,
            ApiPermission::SERVICE_ACCOUNTS_MANAGE,
            "organization",
        )
        .await?;
        let name = Name::parse("name", &input.name)?;
        let description = description(input.description.as_deref())?;
        let account = granted
            .store(ctx)
            .create_service_account(org.id(), &name, description.flatten(), &ctx.request().actor)
            .await?;
        Ok(ServiceAccountPayload {
            revision: crate::graphql::check::revision_now(ctx, org.id()).await?,
            service_account: account.into(),
        })
    }

    /// Renames, describes, disables or enables a service account. Needs
    /// `service_accounts:*:manage`; disabling or enabling also needs every permission the
    /// account holds (it takes them away or gives them back).
    async fn update_service_account(
        &self,
        ctx: &Context<'_>,
        input: UpdateServiceAccountInput,
    ) -> Result<ServiceAccountPayload> {
        let (account, granted) =
            account_for(ctx, &input.id, "id", ApiPermission::SERVICE_ACCOUNTS_MANAGE).await?;
        let name = input
            .name
            .as_deref()
            .map(|n| Name::parse("name", n))
            .transpose()?;
        if input.disabled.is_some_and(|d| d != account.disabled) {
            ensure_holds_power_of(ctx, &granted, account.id, "disable or enable an account")
                .await?;
        }
        let description = description(input.description.as_deref())?;
        let updated = granted
            .store(ctx)
            .update_service_account(
                account.id,
                ServiceAccountChange {
                    name: name.as_ref(),
                    description,
                    disabled: input.disabled,
                },
                &ctx.request().actor,
            )
            .await?;
        Ok(ServiceAccountPayload {
            revision: crate::graphql::check::revision_now(ctx, account.organization_id).await?,
            service_account: updated.into(),
        })
    }

    /// Deletes a service account with its keys, team memberships and bindings. Needs
    /// `service_accounts:*:manage` and every permission the account holds.
    async fn delete_service_account(
        &self,
        ctx: &Context<'_>,
        input: DeleteServiceAccountInput,
    ) -> Result<DeleteServiceAccountPayload> {
        let (account, granted) =
            account_for(ctx, &input.id, "id", ApiPermission::SERVICE_ACCOUNTS_MANAGE).await?;
        ensure_holds_power_of(ctx, &granted, account.id, "delete an account").await?;
        granted
            .store(ctx)
            .delete_service_account(account.id, &ctx.request().actor)
            .await?;
        Ok(DeleteServiceAccountPayload {
            deleted_id: ID(account.id.to_string()),
            revision: crate::graphql::check::revision_now(ctx, account.organization_id).await?,
        })
    }

    /// Creates an API key and answers its secret, once. A personal key (no
    /// `serviceAccountId`): any active member, for themself. A service account's key:
    /// `api_keys:*:manage`, and the caller must hold the key's scopes at the organization (or,
    /// without scopes, everything the account holds).
    async fn create_api_key(
        &self,
        ctx: &Context<'_>,
        input: CreateApiKeyInput,
    ) -> Result<CreatedApiKey> {
        no_key_minting(ctx)?;
        let org = org_node(ctx, parse_id("organizationId", &input.organization_id)?).await?;
        let (granted, owner) = match &input.service_account_id {
            None => {
                let granted = member_view(ctx, org.id(), "organization").await?;
                let me = KeyOwner::User(granted.principal_id());
                (granted, me)
            }
            Some(sa) => {
                let sa = parse_id("serviceAccountId", sa)?;
                let granted =
                    authorize(ctx, &org, ApiPermission::API_KEYS_MANAGE, "organization").await?;
                granted
                    .store(ctx)
                    .service_account(sa)
                    .await?
                    .filter(|a| a.organization_id == org.id())
                    .ok_or_else(|| ApiError::not_found("service account"))?;
                (granted, KeyOwner::ServiceAccount(sa))
            }
        };
        let name = Name::parse("name", &input.name)?;
        let scopes = input
            .scopes
            .as_deref()
            .map(|s| read_scopes(&granted, s, matches!(owner, KeyOwner::ServiceAccount(_))))
            .transpose()?;
        if let (None, KeyOwner::ServiceAccount(sa)) = (&scopes, owner) {
            ensure_holds_power_of(ctx, &granted, sa, "create keys for an account").await?;
        }
        let allowed_cidrs = input.allowed_cidrs.as_deref().map(read_cidrs).transpose()?;
        let expires_at = read_expiry(ctx, input.expires_at)?;
        let live = granted
            .store(ctx)
            .api_keys(org.id(), Some(owner), false)
            .await?
            .len();
        if live >= MAX_LIVE_KEYS {
            return Err(ApiError::new(
                crate::graphql::error::Code::Conflict,
                format!("the owner already has {MAX_LIVE_KEYS} working keys; revoke some first"),
            )
            .into());
        }
        let minted = crate::auth::api_key_format::mint()
            .map_err(|e| ApiError::internal(&format!("no randomness: {e}")))?;
        let key = granted
            .store(ctx)
            .create_api_key(
                NewApiKey {
                    organization_id: org.id(),
                    owner,
                    name: name.as_str(),
                    token_hash: minted.hash,
                    display_prefix: minted.display_prefix,
                    scopes,
                    allowed_cidrs,
                    expires_at,
                },
                &ctx.request().actor,
            )
            .await?;
        let now = ctx.services().clock().now();
        Ok(CreatedApiKey {
            revision: crate::graphql::check::revision_now(ctx, org.id()).await?,
            api_key: ApiKey::of(key, now),
            secret: minted.secret,
        })
    }

    /// Revokes an API key at once, on every instance: one's own personal key, or any key
    /// with `api_keys:*:manage`. An API key may revoke itself.
    async fn revoke_api_key(
        &self,
        ctx: &Context<'_>,
        input: RevokeApiKeyInput,
    ) -> Result<ApiKeyPayload> {
        let (key, granted) = key_for(ctx, &input.id, ApiPermission::API_KEYS_MANAGE).await?;
        let revoked = granted
            .store(ctx)
            .revoke_api_key(key.id, &ctx.request().actor)
            .await?;
        let now = ctx.services().clock().now();
        Ok(ApiKeyPayload {
            revision: crate::graphql::check::revision_now(ctx, key.organization_id).await?,
            api_key: ApiKey::of(revoked, now),
        })
    }

    /// Replaces a key's secret: the new one works at once, the old one until `overlapHours`
    /// end or the new one is first used. One's own personal key, or a service account's key
    /// with `api_keys:*:manage` and the power the key carries.
    async fn rotate_api_key(
        &self,
        ctx: &Context<'_>,
        input: RotateApiKeyInput,
    ) -> Result<RotatedApiKey> {
        no_key_minting(ctx)?;
        if !(0..=MAX_OVERLAP_HOURS).contains(&input.overlap_hours) {
            return Err(ApiError::bad_input(
                "overlapHours",
                format!("must be 0 to {MAX_OVERLAP_HOURS}"),
            )
            .into());
        }
        let (key, granted) = key_for(ctx, &input.id, ApiPermission::API_KEYS_MANAGE).await?;
        match key.owner {
            KeyOwner::User(owner) if owner != granted.principal_id() => {
                return Err(ApiError::forbidden(
                    "only its owner can rotate a personal key (rotating answers its new secret); revoke it instead",
                )
                .into());
            }
            KeyOwner::User(_) => {}
            KeyOwner::ServiceAccount(sa) => match &key.scopes {
                Some(scopes) => {
                    read_scopes(&granted, scopes, true)?;
                }
                None => {
                    ensure_holds_power_of(ctx, &granted, sa, "rotate keys of an account").await?
                }
            },
        }
        let services = ctx.services();
        let now = services.clock().now();
        let max =
            Duration::from_std(services.config.api_key_max_ttl).unwrap_or(Duration::days(366));
        let minted = crate::auth::api_key_format::mint()
            .map_err(|e| ApiError::internal(&format!("no randomness: {e}")))?;
        let (previous, new) = granted
            .store(ctx)
            .rotate_api_key(
                key.id,
                minted.hash,
                minted.display_prefix,
                now + Duration::hours(i64::from(input.overlap_hours)),
                now + max,
                &ctx.request().actor,
            )
            .await?;
        Ok(RotatedApiKey {
            revision: crate::graphql::check::revision_now(ctx, key.organization_id).await?,
            previous: ApiKey::of(previous, now),
            api_key: ApiKey::of(new, now),
            secret: minted.secret,
        })
    }
}

/// A description as given: `None` leaves it, an empty one clears it (`Some(None)`).
fn description(given: Option<&str>) -> Result<Option<Option<&str>>, ApiError> {
    match given.map(str::trim) {
        None => Ok(None),
        Some("") => Ok(Some(None)),
        Some(d) if d.chars().count() > 1000 => Err(ApiError::bad_input(
            "description",
            "a description may have at most 1000 characters",
        )),
        Some(d) => Ok(Some(Some(d))),
    }
}
