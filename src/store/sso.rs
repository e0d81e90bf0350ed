//! Identity providers, group mappings, pending SSO sign-ins, SAML replay protection, and the
//! just-in-time account and binding synchronisation that ends an SSO sign-in.

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, TransactionTrait,
    sea_query::Expr,
};
use serde_json::json;
use uuid::Uuid;

use entity::{
    membership, organization, role, role_binding, sso_assertion, sso_group_mapping, sso_provider,
    sso_request,
};

use super::audit::{self, Entry};
use super::revision::{self, Change};
use super::{Store, StoreError};
use crate::domain::{Actor, InvalidInput, MemberStatus, Node, User};
use crate::sso::{Identity, Provider, ProviderSettings};

/// A provider as an admin creates it. The secret comes already encrypted.
pub struct NewProvider {
    pub organization_id: Uuid,
    pub name: String,
    pub enabled: bool,
    pub settings: ProviderSettings,
    pub secret_ciphertext: Option<String>,
    pub default_role_id: Option<Uuid>,
    /// The email domains it may create accounts for; `None`: any.
    pub jit_domains: Option<Vec<String>>,
    pub allow_idp_initiated: bool,
}

/// A change to a provider; `None` leaves a field as it is.
#[derive(Default)]
pub struct ProviderChange {
    pub name: Option<String>,
    pub enabled: Option<bool>,
    pub settings: Option<ProviderSettings>,
    pub secret_ciphertext: Option<String>,
    /// `Some(None)` clears the default role.
    pub default_role_id: Option<Option<Uuid>>,
    /// `Some(None)`: any domain again.
    pub jit_domains: Option<Option<Vec<String>>>,
    pub allow_idp_initiated: Option<bool>,
}

/// A group mapping of a provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMapping {
    pub id: Uuid,
    pub provider_id: Uuid,
    pub group: String,
    pub role_id: Uuid,
    /// The organization, a workspace or a project.
    pub node_id: Uuid,
}

/// A sign-in sent to an IdP, waiting for its answer.
pub struct SsoRequest {
    pub id: String,
    pub provider_id: Uuid,
    pub nonce: Option<String>,
    pub verifier_ciphertext: Option<String>,
    pub return_to: Option<String>,
    /// The signed-in account this round trip links the identity to, instead of signing in.
    pub link_user_id: Option<Uuid>,
}

fn provider_of(m: sso_provider::Model) -> Result<Provider, StoreError> {
    let settings: ProviderSettings = serde_json::from_value(m.settings).map_err(|e| {
        StoreError::Db(sea_orm::DbErr::Custom(format!(
            "sso provider {} settings: {e}",
            m.id
        )))
    })?;
    Ok(Provider {
        id: m.id,
        organization_id: m.organization_id,
        name: m.name,
        enabled: m.enabled,
        settings,
        has_secret: m.secret_ciphertext.is_some(),
        default_role_id: m.default_role_id,
        jit_domains: m
            .jit_domains
            .and_then(|j| serde_json::from_value::<Vec<String>>(j).ok()),
        allow_idp_initiated: m.allow_idp_initiated,
        created_at: m.created_at,
        updated_at: m.updated_at,
    })
}

fn mapping_of(m: sso_group_mapping::Model, organization_id: Uuid) -> GroupMapping {
    GroupMapping {
        id: m.id,
        provider_id: m.provider_id,
        group: m.group_name,
        role_id: m.role_id,
        node_id: m.project_id.or(m.workspace_id).unwrap_or(organization_id),
    }
}

fn settings_json(s: &ProviderSettings) -> Result<serde_json::Value, StoreError> {
    serde_json::to_value(s).map_err(|e| StoreError::Db(sea_orm::DbErr::Custom(e.to_string())))
}

impl Store {
    pub async fn create_provider(
        &self,
        new: NewProvider,
        actor: &Actor,
    ) -> Result<Provider, StoreError> {
        let txn = self.db.begin().await?;
        let now = Utc::now();
        let id = Uuid::now_v7();
        let created = sso_provider::Entity::insert(sso_provider::ActiveModel {
            id: Set(id),
            organization_id: Set(new.organization_id),
            kind: Set(new.settings.kind().to_owned()),
            name: Set(new.name),
            enabled: Set(new.enabled),
            settings: Set(settings_json(&new.settings)?),
            secret_ciphertext: Set(new.secret_ciphertext),
            default_role_id: Set(new.default_role_id),
            jit_domains: Set(new.jit_domains.map(|d| json!(d))),
            allow_idp_initiated: Set(new.allow_idp_initiated),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .exec_with_returning(&txn)
        .await?;
        audit::record(
            &txn,
            actor,
            Entry {
                organization_id: Some(new.organization_id),
                action: "sso.provider_create",
                target_type: "sso_provider",
                target_id: Some(id),
                before: None,
                // Never the secret.
                after: Some(json!({ "name": created.name, "kind": created.kind, "enabled": created.enabled, "settings": created.settings })),
            },
        )
        .await?;
        txn.commit().await?;
        provider_of(created)
    }

    pub async fn update_provider(
        &self,
        id: Uuid,
        change: ProviderChange,
        actor: &Actor,
    ) -> Result<Provider, StoreError> {
        let txn = self.db.begin().await?;
        let found = sso_provider::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or(StoreError::NotFound("identity provider"))?;
        let before = json!({ "name": found.name, "enabled": found.enabled, "settings": found.settings, "default_role_id": found.default_role_id });
        let mut model: sso_provider::ActiveModel = found.clone().into();
        if let Some(name) = change.name {
            model.name = Set(name);
        }
        if let Some(enabled) = change.enabled {
            model.enabled = Set(enabled);
        }
        if let Some(settings) = &change.settings {
            if settings.kind() != found.kind {
                return Err(StoreError::Invalid(InvalidInput::new(
                    "settings",
                    "a provider's kind (OIDC or SAML) cannot change; create another provider",
                )));
            }
            model.settings = Set(settings_json(settings)?);
        }
        let secret_changed = change.secret_ciphertext.is_some();
        if let Some(secret) = change.secret_ciphertext {
            model.secret_ciphertext = Set(Some(secret));
        }
        if let Some(domains) = change.jit_domains {
            model.jit_domains = Set(domains.map(|d| json!(d)));
        }
        if let Some(allow) = change.allow_idp_initiated {
            model.allow_idp_initiated = Set(allow);
        }
        if let Some(role) = change.default_role_id {
            model.default_role_id = Set(role);
        }
        model.updated_at = Set(Utc::now());
        let updated = sso_provider::Entity::update(model).exec(&txn).await?;
        audit::record(
            &txn,
            actor,
            Entry {
                organization_id: Some(found.organization_id),
                action: "sso.provider_update",
                target_type: "sso_provider",
                target_id: Some(id),
                before: Some(before),
                after: Some(json!({ "name": updated.name, "enabled": updated.enabled, "settings": updated.settings, "default_role_id": updated.default_role_id, "secret_changed": secret_changed })),
            },
        )
        .await?;
        txn.commit().await?;
        provider_of(updated)
    }

    /// Deletes a provider, its mappings and pending sign-ins. Bindings it made stay (they are
    /// the organization's to revoke) but no longer follow any IdP group.
    pub async fn delete_provider(&self, id: Uuid, actor: &Actor) -> Result<(), StoreError> {
        let txn = self.db.begin().await?;
        let found = sso_provider::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or(StoreError::NotFound("identity provider"))?;
        sso_provider::Entity::delete_by_id(id).exec(&txn).await?;
        audit::record(
            &txn,
            actor,
            Entry {
                organization_id: Some(found.organization_id),
                action: "sso.provider_delete",
                target_type: "sso_provider",
                target_id: Some(id),
                before: Some(json!({ "name": found.name, "kind": found.kind })),
                after: None,
            },
        )
        .await?;
        txn.commit().await?;
        Ok(())
    }

    pub async fn provider(&self, id: Uuid) -> Result<Option<Provider>, StoreError> {
        sso_provider::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .map(provider_of)
            .transpose()
    }

    pub async fn providers(&self, organization_id: Uuid) -> Result<Vec<Provider>, StoreError> {
        sso_provider::Entity::find()
            .filter(sso_provider::Column::OrganizationId.eq(organization_id))
            .order_by_asc(sso_provider::Column::CreatedAt)
            .all(&self.db)
            .await?
            .into_iter()
            .map(provider_of)
            .collect()
    }

    /// The provider's client secret, encrypted as stored.
    pub async fn provider_secret(&self, id: Uuid) -> Result<Option<String>, StoreError> {
        Ok(sso_provider::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .and_then(|m| m.secret_ciphertext))
    }

    /// Turns "enforce SSO" on or off for an organization.
    pub async fn set_enforce_sso(
        &self,
        organization_id: Uuid,
        enforce: bool,
        actor: &Actor,
    ) -> Result<(), StoreError> {
        let txn = self.db.begin().await?;
        let found = organization::Entity::find_by_id(organization_id)
            .one(&txn)
            .await?
            .ok_or(StoreError::NotFound("organization"))?;
        organization::Entity::update_many()
            .col_expr(organization::Column::EnforceSso, Expr::value(enforce))
            .filter(organization::Column::Id.eq(organization_id))
            .exec(&txn)
            .await?;
        audit::record(
            &txn,
            actor,
            Entry {
                organization_id: Some(organization_id),
                action: "sso.enforce",
                target_type: "organization",
                target_id: Some(organization_id),
                before: Some(json!({ "enforce_sso": found.enforce_sso })),
                after: Some(json!({ "enforce_sso": enforce })),
            },
        )
        .await?;
        txn.commit().await?;
        Ok(())
    }

    pub async fn enforce_sso(&self, organization_id: Uuid) -> Result<bool, StoreError> {
        Ok(organization::Entity::find_by_id(organization_id)
            .one(&self.db)
            .await?
            .is_some_and(|o| o.enforce_sso))
    }

    /// An organization that requires SSO of this user: one where they are a member and that
    /// enforces SSO, unless they hold Admin at that organization (the break-glass path).
    pub async fn sso_required_by(&self, user_id: Uuid) -> Result<Option<String>, StoreError> {
        let memberships = membership::Entity::find()
            .filter(membership::Column::UserId.eq(user_id))
            .all(&self.db)
            .await?;
        let admin = super::memberships::builtin_role_id("admin");
        let now = Utc::now();
        for m in memberships {
            let Some(org) = organization::Entity::find_by_id(m.organization_id)
                .one(&self.db)
                .await?
            else {
                continue;
            };
            if !org.enforce_sso {
                continue;
            }
            let is_admin = role_binding::Entity::find()
                .filter(role_binding::Column::OrganizationId.eq(org.id))
                .filter(role_binding::Column::PrincipalId.eq(user_id))
                .filter(role_binding::Column::RoleId.eq(admin))
                .filter(role_binding::Column::WorkspaceId.is_null())
                .filter(role_binding::Column::ProjectId.is_null())
                .all(&self.db)
                .await?
                .iter()
                .any(|b| b.expires_at.is_none_or(|e| e > now));
            if !is_admin {
                return Ok(Some(org.slug));
            }
        }
        Ok(None)
    }

    pub async fn add_group_mapping(
        &self,
        provider: &Provider,
        group: &str,
        role_id: Uuid,
        node: &Node,
        actor: &Actor,
    ) -> Result<GroupMapping, StoreError> {
        let txn = self.db.begin().await?;
        let (workspace_id, project_id) = super::node_columns(node);
        let id = Uuid::now_v7();
        let created = sso_group_mapping::Entity::insert(sso_group_mapping::ActiveModel {
            id: Set(id),
            provider_id: Set(provider.id),
            group_name: Set(group.to_owned()),
            role_id: Set(role_id),
            workspace_id: Set(workspace_id),
            project_id: Set(project_id),
            created_at: Set(Utc::now()),
        })
        .exec_with_returning(&txn)
        .await?;
        audit::record(
            &txn,
            actor,
            Entry {
                organization_id: Some(provider.organization_id),
                action: "sso.mapping_add",
                target_type: "sso_group_mapping",
                target_id: Some(id),
                before: None,
                after: Some(json!({ "provider_id": provider.id, "group": group, "role_id": role_id, "node_id": node.id() })),
            },
        )
        .await?;
        txn.commit().await?;
        Ok(mapping_of(created, provider.organization_id))
    }

    /// Removes a mapping. Bindings it made are revoked at the member's next SSO sign-in.
    pub async fn remove_group_mapping(
        &self,
        provider: &Provider,
        id: Uuid,
        actor: &Actor,
    ) -> Result<(), StoreError> {
        let txn = self.db.begin().await?;
        let found = sso_group_mapping::Entity::find_by_id(id)
            .filter(sso_group_mapping::Column::ProviderId.eq(provider.id))
            .one(&txn)
            .await?
            .ok_or(StoreError::NotFound("group mapping"))?;
        sso_group_mapping::Entity::delete_by_id(id)
            .exec(&txn)
            .await?;
        audit::record(
            &txn,
            actor,
            Entry {
                organization_id: Some(provider.organization_id),
                action: "sso.mapping_remove",
                target_type: "sso_group_mapping",
                target_id: Some(id),
                before: Some(json!({ "group": found.group_name, "role_id": found.role_id })),
                after: None,
            },
        )
        .await?;
        txn.commit().await?;
        Ok(())
    }

    pub async fn group_mappings(
        &self,
        provider: &Provider,
    ) -> Result<Vec<GroupMapping>, StoreError> {
        Ok(sso_group_mapping::Entity::find()
            .filter(sso_group_mapping::Column::ProviderId.eq(provider.id))
            .order_by_asc(sso_group_mapping::Column::CreatedAt)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|m| mapping_of(m, provider.organization_id))
            .collect())
    }

    /// Remembers a sign-in sent to an IdP for `ttl`.
    pub async fn create_sso_request(
        &self,
        request: SsoRequest,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        self.insert_sso_request(request, None, ttl).await
    }

    async fn insert_sso_request(
        &self,
        request: SsoRequest,
        pending_identity: Option<String>,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let now = Utc::now();
        sso_request::Entity::insert(sso_request::ActiveModel {
            id: Set(request.id),
            provider_id: Set(request.provider_id),
            nonce: Set(request.nonce),
            verifier_ciphertext: Set(request.verifier_ciphertext),
            return_to: Set(request.return_to),
            link_user_id: Set(request.link_user_id),
            pending_identity: Set(pending_identity),
            created_at: Set(now),
            expires_at: Set(now + ttl),
            used_at: Set(None),
        })
        .exec_without_returning(&self.db)
        .await?;
        Ok(())
    }

    /// Parks the identity a link round trip proved until account `user_id` confirms it with
    /// the code whose hash is `code_hash` (see [`Store::take_sso_link`]).
    pub async fn park_sso_link(
        &self,
        provider_id: Uuid,
        user_id: Uuid,
        code_hash: String,
        identity_json: String,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let request = SsoRequest {
            id: code_hash,
            provider_id,
            nonce: None,
            verifier_ciphertext: None,
            return_to: None,
            link_user_id: Some(user_id),
        };
        self.insert_sso_request(request, Some(identity_json), ttl)
            .await
    }

    /// Takes a parked link for account `user_id` by its code's hash, once: the provider and the
    /// identity (JSON). `None` for an unknown, used or expired code, or another account's.
    pub async fn take_sso_link(
        &self,
        code_hash: &str,
        user_id: Uuid,
    ) -> Result<Option<(Uuid, String)>, StoreError> {
        let txn = self.db.begin().await?;
        let now = Utc::now();
        let taken = sso_request::Entity::update_many()
            .col_expr(sso_request::Column::UsedAt, Expr::value(now))
            .filter(sso_request::Column::Id.eq(code_hash))
            .filter(sso_request::Column::UsedAt.is_null())
            .filter(sso_request::Column::PendingIdentity.is_not_null())
            .filter(sso_request::Column::LinkUserId.eq(user_id))
            .filter(sso_request::Column::ExpiresAt.gt(now))
            .exec(&txn)
            .await?;
        if taken.rows_affected != 1 {
            return Ok(None);
        }
        let row = sso_request::Entity::find_by_id(code_hash.to_owned())
            .one(&txn)
            .await?;
        txn.commit().await?;
        Ok(row.and_then(|r| Some((r.provider_id, r.pending_identity?))))
    }

    /// Whether the pending (unused, unexpired) request `id` was started to link an identity
    /// to an account (`startSsoLink`) rather than to sign in.
    pub async fn sso_request_links(&self, id: &str) -> Result<bool, StoreError> {
        let row = sso_request::Entity::find_by_id(id.to_owned())
            .filter(sso_request::Column::UsedAt.is_null())
            .filter(sso_request::Column::PendingIdentity.is_null())
            .filter(sso_request::Column::ExpiresAt.gt(Utc::now()))
            .one(&self.db)
            .await?;
        Ok(row.is_some_and(|r| r.link_user_id.is_some()))
    }

    /// Takes a pending sign-in of `provider_id` (any provider when `None`): it is marked used,
    /// so a second take of the same id, like an expired or unknown one, gives `None`. One
    /// conditional update decides, so concurrent callbacks cannot both win.
    pub async fn take_sso_request(
        &self,
        id: &str,
        provider_id: Option<Uuid>,
    ) -> Result<Option<SsoRequest>, StoreError> {
        let txn = self.db.begin().await?;
        let now = Utc::now();
        let mut q = sso_request::Entity::update_many()
            .col_expr(sso_request::Column::UsedAt, Expr::value(now))
            .filter(sso_request::Column::Id.eq(id))
            .filter(sso_request::Column::UsedAt.is_null())
            .filter(sso_request::Column::PendingIdentity.is_null())
            .filter(sso_request::Column::ExpiresAt.gt(now));
        if let Some(p) = provider_id {
            q = q.filter(sso_request::Column::ProviderId.eq(p));
        }
        let taken = q.exec(&txn).await?;
        if taken.rows_affected != 1 {
            return Ok(None);
        }
        let row = sso_request::Entity::find_by_id(id.to_owned())
            .one(&txn)
            .await?;
        txn.commit().await?;
        Ok(row.map(|r| SsoRequest {
            id: r.id,
            provider_id: r.provider_id,
            nonce: r.nonce,
            verifier_ciphertext: r.verifier_ciphertext,
            return_to: r.return_to,
            link_user_id: r.link_user_id,
        }))
    }

    /// Records a SAML assertion id as used; `false` when it was already (a replay). Ids whose
    /// assertions have expired are forgotten on the way.
    pub async fn remember_assertion(
        &self,
        provider_id: Uuid,
        assertion_id: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let now = Utc::now();
        sso_assertion::Entity::delete_many()
            .filter(sso_assertion::Column::ExpiresAt.lt(now))
            .exec(&self.db)
            .await?;
        let inserted = sso_assertion::Entity::insert(sso_assertion::ActiveModel {
            provider_id: Set(provider_id),
            id: Set(assertion_id.to_owned()),
            expires_at: Set(expires_at),
        })
        .exec_without_returning(&self.db)
        .await;
        match inserted {
            Ok(_) => Ok(true),
            Err(e) => match StoreError::unique_or_db(e, String::new) {
                StoreError::Conflict(_) => Ok(false),
                other => Err(other),
            },
        }
    }

    /// Makes `user` an active member of the provider's organization (refusing a suspended or
    /// inactive one) and synchronises their SSO bindings from this provider with the mapped
    /// groups in `identity`. Changes are audited and bump the organization revision.
    pub async fn sso_sync(
        &self,
        provider: &Provider,
        user: &User,
        identity: &Identity,
        actor: &Actor,
    ) -> Result<(), StoreError> {
        let organization_id = provider.organization_id;
        let txn = self.db.begin().await?;
        let now = Utc::now();
        // The revision bump locks the organization row first, as every change does.
        let event = revision::bump(
            &txn,
            Change {
                organization_id,
                kind: crate::events::ChangeKind::SsoSync,
                principal_id: Some(user.id),
                node_id: Some(organization_id),
                role_id: None,
                actor_id: Some(user.id),
            },
        )
        .await?;
        let membership = membership::Entity::find()
            .filter(membership::Column::OrganizationId.eq(organization_id))
            .filter(membership::Column::UserId.eq(user.id))
            .one(&txn)
            .await?;
        let joined = match membership {
            Some(m) => match MemberStatus::from_stored(&m.status) {
                MemberStatus::Active => false,
                status => {
                    return Err(StoreError::Invalid(InvalidInput::new(
                        "membership",
                        format!(
                            "your membership of this organization is {}; ask an administrator",
                            status.as_str()
                        ),
                    )));
                }
            },
            None => {
                membership::Entity::insert(membership::ActiveModel {
                    id: Set(Uuid::now_v7()),
                    organization_id: Set(organization_id),
                    user_id: Set(user.id),
                    status: Set(MemberStatus::Active.as_str().to_owned()),
                    created_at: Set(now),
                    updated_at: Set(now),
                })
                .exec_without_returning(&txn)
                .await?;
                true
            }
        };
        let groups: HashSet<&str> = identity.groups.iter().map(String::as_str).collect();
        let mappings = sso_group_mapping::Entity::find()
            .filter(sso_group_mapping::Column::ProviderId.eq(provider.id))
            .all(&txn)
            .await?;
        // (role, workspace, project) the member should hold through this provider.
        let mut wanted: Vec<(Uuid, Option<Uuid>, Option<Uuid>)> = mappings
            .iter()
            .filter(|m| groups.contains(m.group_name.as_str()))
            .map(|m| (m.role_id, m.workspace_id, m.project_id))
            .collect();
        if wanted.is_empty()
            && let Some(default) = provider.default_role_id
        {
            wanted.push((default, None, None));
        }
        wanted.sort();
        wanted.dedup();
        // A mapped role or node deleted since is skipped.
        let mut usable = Vec::with_capacity(wanted.len());
        for w in wanted {
            let role_ok = role::Entity::find_by_id(w.0)
                .one(&txn)
                .await?
                .is_some_and(|r| r.builtin || r.organization_id == Some(organization_id));
            if role_ok {
                usable.push(w);
            }
        }
        let held = role_binding::Entity::find()
            .filter(role_binding::Column::OrganizationId.eq(organization_id))
            .filter(role_binding::Column::PrincipalId.eq(user.id))
            .filter(role_binding::Column::Source.eq("sso"))
            .filter(role_binding::Column::SsoProviderId.eq(provider.id))
            .all(&txn)
            .await?;
        let key = |b: &role_binding::Model| (b.role_id, b.workspace_id, b.project_id);
        let revoke: Vec<&role_binding::Model> =
            held.iter().filter(|b| !usable.contains(&key(b))).collect();
        let grant: Vec<_> = usable
            .iter()
            .filter(|w| !held.iter().any(|b| key(b) == **w))
            .collect();
        if !joined && revoke.is_empty() && grant.is_empty() {
            // Nothing changed: no revision, no event (the bump is rolled back).
            txn.rollback().await?;
            return Ok(());
        }
        if !revoke.is_empty() {
            role_binding::Entity::delete_many()
                .filter(role_binding::Column::Id.is_in(revoke.iter().map(|b| b.id)))
                .exec(&txn)
                .await?;
        }
        for (role_id, workspace_id, project_id) in &grant {
            role_binding::Entity::insert(role_binding::ActiveModel {
                id: Set(Uuid::now_v7()),
                organization_id: Set(organization_id),
                workspace_id: Set(*workspace_id),
                project_id: Set(*project_id),
                principal_type: Set("user".to_owned()),
                principal_id: Set(user.id),
                role_id: Set(*role_id),
                granted_by: Set(None),
                granted_at: Set(now),
                expires_at: Set(None),
                source: Set("sso".to_owned()),
                sso_provider_id: Set(Some(provider.id)),
            })
            .exec_without_returning(&txn)
            .await?;
        }
        let describe = |r: &Uuid, w: &Option<Uuid>, p: &Option<Uuid>| json!({ "role_id": r, "node_id": p.or(*w).unwrap_or(organization_id) });
        audit::record(
            &txn,
            actor,
            Entry {
                organization_id: Some(organization_id),
                action: "sso.sync",
                target_type: "user",
                target_id: Some(user.id),
                before: None,
                after: Some(json!({
                    "source": "sso",
                    "provider_id": provider.id,
                    "groups_seen": identity.groups,
                    "joined": joined,
                    "granted": grant.iter().map(|(r, w, p)| describe(r, w, p)).collect::<Vec<_>>(),
                    "revoked": revoke.iter().map(|b| describe(&b.role_id, &b.workspace_id, &b.project_id)).collect::<Vec<_>>(),
                })),
            },
        )
        .await?;
        txn.commit().await?;
        self.publish(std::slice::from_ref(&event));
        Ok(())
    }
}
