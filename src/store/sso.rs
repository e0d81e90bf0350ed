//! Identity providers, their group mappings, and "enforce SSO" (sign-in state and group sync:
//! `sso_signins.rs`).

use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, TransactionTrait,
    sea_query::Expr,
};
use serde_json::json;
use uuid::Uuid;

use entity::{membership, organization, role_binding, sso_group_mapping, sso_provider};

use super::audit::{self, Entry};
use super::{Store, StoreError};
use crate::domain::sso::{Provider, ProviderSettings};
use crate::domain::{Actor, InvalidInput, Node};

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

/// A provider's group mapped to a team of its organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamMapping {
    pub id: Uuid,
    pub provider_id: Uuid,
    pub group: String,
    pub team_id: Uuid,
}

impl From<entity::sso_team_mapping::Model> for TeamMapping {
    fn from(m: entity::sso_team_mapping::Model) -> Self {
        Self {
            id: m.id,
            provider_id: m.provider_id,
            group: m.group_name,
            team_id: m.team_id,
        }
    }
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
        let now = self.clock.now();
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
        model.updated_at = Set(self.clock.now());
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
        let admin = self.profile.admin_role().id;
        let now = self.clock.now();
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
            created_at: Set(self.clock.now()),
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

    /// Maps a provider's group to a team of its organization: each sign-in through the
    /// provider then puts the member into the team, or takes them out.
    pub async fn add_team_mapping(
        &self,
        provider: &Provider,
        group: &str,
        team_id: Uuid,
        actor: &Actor,
    ) -> Result<TeamMapping, StoreError> {
        use entity::sso_team_mapping;
        let txn = self.db.begin().await?;
        let team = super::teams::team_in(&txn, provider.organization_id, team_id)
            .await?
            .ok_or(StoreError::NotFound("team"))?;
        let id = Uuid::now_v7();
        let created = sso_team_mapping::Entity::insert(sso_team_mapping::ActiveModel {
            id: Set(id),
            provider_id: Set(provider.id),
            group_name: Set(group.to_owned()),
            team_id: Set(team.id),
            created_at: Set(self.clock.now()),
        })
        .exec_with_returning(&txn)
        .await
        .map_err(|e| {
            StoreError::unique_or_db(e, || {
                format!("group `{group}` is already mapped to team `{}`", team.name)
            })
        })?;
        audit::record(
            &txn,
            actor,
            Entry {
                organization_id: Some(provider.organization_id),
                action: "sso.team_mapping_add",
                target_type: "sso_team_mapping",
                target_id: Some(id),
                before: None,
                after: Some(
                    json!({ "provider_id": provider.id, "group": group, "team_id": team.id }),
                ),
            },
        )
        .await?;
        txn.commit().await?;
        Ok(created.into())
    }

    /// Removes a team mapping. Members it added leave the team at their next SSO sign-in.
    pub async fn remove_team_mapping(
        &self,
        provider: &Provider,
        id: Uuid,
        actor: &Actor,
    ) -> Result<(), StoreError> {
        use entity::sso_team_mapping;
        let txn = self.db.begin().await?;
        let found = sso_team_mapping::Entity::find_by_id(id)
            .filter(sso_team_mapping::Column::ProviderId.eq(provider.id))
            .one(&txn)
            .await?
            .ok_or(StoreError::NotFound("team mapping"))?;
        sso_team_mapping::Entity::delete_by_id(id)
            .exec(&txn)
            .await?;
        audit::record(
            &txn,
            actor,
            Entry {
                organization_id: Some(provider.organization_id),
                action: "sso.team_mapping_remove",
                target_type: "sso_team_mapping",
                target_id: Some(id),
                before: Some(json!({ "group": found.group_name, "team_id": found.team_id })),
                after: None,
            },
        )
        .await?;
        txn.commit().await?;
        Ok(())
    }

    pub async fn team_mappings(&self, provider: &Provider) -> Result<Vec<TeamMapping>, StoreError> {
        use entity::sso_team_mapping;
        Ok(sso_team_mapping::Entity::find()
            .filter(sso_team_mapping::Column::ProviderId.eq(provider.id))
            .order_by_asc(sso_team_mapping::Column::CreatedAt)
            .all(&self.db)
            .await?
            .into_iter()
            .map(Into::into)
            .collect())
    }
}
