//! Roles: the built-in ones (the profile's: rows written at start by `profile.rs`, policies
//! from the profile, never changed through the API) and each organization's custom roles.

use std::collections::{HashMap, HashSet};

use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, TransactionTrait,
};
use serde_json::json;
use uuid::Uuid;

use entity::{role, role_binding, role_policy};

use super::audit::{self, Entry};
use super::revision::{self, Change};
use super::{Store, StoreError};
use crate::authz::{Effect, NodeKind, Policy, Profile};
use crate::domain::change::ChangeEvent;
use crate::domain::{Actor, InvalidInput, Name, Role};

/// How a role is used in an organization.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RoleCounts {
    /// Bindings, expired ones too.
    pub bindings: u64,
    /// Distinct principals with a live binding.
    pub members: u64,
}

/// A change to a custom role; `None` keeps the current value.
#[derive(Debug, Default)]
pub struct RoleChanges {
    pub name: Option<Name>,
    pub description: Option<String>,
    pub policies: Option<Vec<Policy>>,
    pub bindable_at: Option<Vec<NodeKind>>,
}

/// A role row with its policies: the built-in policies come from code, custom ones from rows.
fn to_role(m: role::Model, rows: &[role_policy::Model], profile: &Profile) -> Role {
    let policies = if m.builtin {
        profile
            .role_by_id(m.id)
            .map(|r| r.policies.clone())
            .unwrap_or_default()
    } else {
        let mut mine: Vec<&role_policy::Model> =
            rows.iter().filter(|p| p.role_id == m.id).collect();
        mine.sort_by_key(|p| p.position);
        mine.into_iter()
            .filter_map(|p| {
                Some(Policy {
                    effect: Effect::parse(&p.effect)?,
                    permission: p.permission.clone(),
                })
            })
            .collect()
    };
    Role {
        id: m.id,
        organization_id: m.organization_id,
        key: m.key,
        name: m.name,
        description: m.description,
        builtin: m.builtin,
        policies,
        bindable_at: NodeKind::load_set(m.bindable_at.as_deref()),
        created_at: m.created_at,
        updated_at: m.updated_at,
    }
}

pub(super) async fn load_roles<C: ConnectionTrait>(
    conn: &C,
    profile: &Profile,
    ids: impl IntoIterator<Item = Uuid>,
) -> Result<Vec<Role>, StoreError> {
    let ids: Vec<Uuid> = ids.into_iter().collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let roles = role::Entity::find()
        .filter(role::Column::Id.is_in(ids.clone()))
        .all(conn)
        .await?;
    let policies = role_policy::Entity::find()
        .filter(role_policy::Column::RoleId.is_in(ids))
        .all(conn)
        .await?;
    Ok(roles
        .into_iter()
        .map(|r| to_role(r, &policies, profile))
        .collect())
}

fn policies_json(policies: &[Policy]) -> serde_json::Value {
    json!(
        policies
            .iter()
            .map(|p| json!({ "effect": p.effect.as_str(), "permission": p.permission }))
            .collect::<Vec<_>>()
    )
}

async fn insert_policies<C: ConnectionTrait>(
    conn: &C,
    role_id: Uuid,
    policies: &[Policy],
) -> Result<(), StoreError> {
    if policies.is_empty() {
        return Ok(());
    }
    let rows = policies
        .iter()
        .enumerate()
        .map(|(i, p)| role_policy::ActiveModel {
            id: Set(Uuid::now_v7()),
            role_id: Set(role_id),
            position: Set(i32::try_from(i).unwrap_or(i32::MAX)),
            effect: Set(p.effect.as_str().to_owned()),
            permission: Set(p.permission.clone()),
        });
    role_policy::Entity::insert_many(rows)
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// Refuses a custom role name that another role of the organization (or a built-in role)
/// already has, ignoring case.
async fn ensure_name_free<C: ConnectionTrait>(
    conn: &C,
    organization_id: Uuid,
    name: &Name,
    except: Option<Uuid>,
) -> Result<(), StoreError> {
    let taken = role::Entity::find()
        .filter(
            Condition::any()
                .add(role::Column::OrganizationId.eq(organization_id))
                .add(role::Column::Builtin.eq(true)),
        )
        .all(conn)
        .await?
        .into_iter()
        .any(|r| Some(r.id) != except && r.name.eq_ignore_ascii_case(name.as_str()));
    if taken {
        return Err(StoreError::conflict(format!(
            "a role named `{}` already exists in this organization",
            name.as_str()
        )));
    }
    Ok(())
}

fn builtin_is_immutable(r: &role::Model) -> StoreError {
    StoreError::Invalid(InvalidInput::new(
        "id",
        format!(
            "`{}` is a built-in role and cannot be changed or deleted",
            r.name
        ),
    ))
}

/// Loads custom role `id` for a change of `kind`, refusing built-in roles, and bumps its
/// organization's revision (which also takes the organization's row lock).
async fn lock_custom_role<C: ConnectionTrait>(
    txn: &C,
    id: Uuid,
    kind: crate::domain::change::ChangeKind,
    actor: &Actor,
) -> Result<(role::Model, Uuid, ChangeEvent), StoreError> {
    let current = role::Entity::find_by_id(id)
        .one(txn)
        .await?
        .ok_or(StoreError::NotFound("role"))?;
    if current.builtin {
        return Err(builtin_is_immutable(&current));
    }
    let organization_id = current
        .organization_id
        .ok_or(StoreError::NotFound("role"))?;
    let event = revision::bump(
        txn,
        Change {
            organization_id,
            kind,
            principal_id: None,
            node_id: None,
            role_id: Some(id),
            actor_id: actor.user_id,
        },
    )
    .await?;
    Ok((current, organization_id, event))
}

impl Store {
    /// The roles usable in an organization: the built-in ones first, then its own by name.
    pub async fn roles(&self, organization_id: Uuid) -> Result<Vec<Role>, StoreError> {
        let rows = role::Entity::find()
            .filter(
                Condition::any()
                    .add(role::Column::OrganizationId.eq(organization_id))
                    .add(role::Column::Builtin.eq(true)),
            )
            .order_by_desc(role::Column::Builtin)
            .order_by_asc(role::Column::Name)
            .all(&self.db)
            .await?;
        let mut roles = load_roles(&self.db, &self.profile, rows.iter().map(|r| r.id)).await?;
        // Built-in roles in their canonical order, then custom roles by name.
        roles.sort_by_key(|r| {
            let builtin_rank = self
                .profile
                .roles
                .iter()
                .position(|b| r.builtin && b.id == r.id)
                .unwrap_or(usize::MAX);
            (builtin_rank, r.name.to_lowercase())
        });
        Ok(roles)
    }

    pub async fn role(&self, id: Uuid) -> Result<Option<Role>, StoreError> {
        Ok(load_roles(&self.db, &self.profile, [id])
            .await?
            .into_iter()
            .next())
    }

    /// How many bindings of the organization use each role, and how many distinct
    /// principals hold it through a live one.
    pub async fn role_counts(
        &self,
        organization_id: Uuid,
    ) -> Result<HashMap<Uuid, RoleCounts>, StoreError> {
        let now = self.clock.now();
        let mut counts: HashMap<Uuid, RoleCounts> = HashMap::new();
        let mut holders: HashMap<Uuid, HashSet<Uuid>> = HashMap::new();
        for b in role_binding::Entity::find()
            .filter(role_binding::Column::OrganizationId.eq(organization_id))
            .all(&self.db)
            .await?
        {
            counts.entry(b.role_id).or_default().bindings += 1;
            if b.expires_at.is_none_or(|at| at > now) {
                holders.entry(b.role_id).or_default().insert(b.principal_id);
            }
        }
        for (role, principals) in holders {
            counts.entry(role).or_default().members = principals.len() as u64;
        }
        Ok(counts)
    }

    /// Creates a custom role. `policies` must already be valid for the permission catalog.
    pub async fn create_role(
        &self,
        organization_id: Uuid,
        name: &Name,
        description: &str,
        policies: &[Policy],
        bindable_at: &[NodeKind],
        actor: &Actor,
    ) -> Result<Role, StoreError> {
        let txn = self.db.begin().await?;
        let now = self.clock.now();
        let id = Uuid::now_v7();
        // The bump comes first: it locks the organization row, so concurrent role changes of
        // one organization queue here and the name check below sees the winner's row.
        let event = revision::bump(
            &txn,
            Change {
                organization_id,
                kind: crate::domain::change::ChangeKind::RoleCreated,
                principal_id: None,
                node_id: None,
                role_id: Some(id),
                actor_id: actor.user_id,
            },
        )
        .await?;
        ensure_name_free(&txn, organization_id, name, None).await?;
        role::Entity::insert(role::ActiveModel {
            id: Set(id),
            organization_id: Set(Some(organization_id)),
            key: Set(None),
            name: Set(name.as_str().to_owned()),
            description: Set(description.to_owned()),
            builtin: Set(false),
            bindable_at: Set(NodeKind::store_set(bindable_at)),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .exec_without_returning(&txn)
        .await?;
        insert_policies(&txn, id, policies).await?;
        audit::record(
            &txn,
            actor,
            Entry {
                organization_id: Some(organization_id),
                action: "role.create",
                target_type: "role",
                target_id: Some(id),
                before: None,
                after: Some(json!({
                    "name": name.as_str(),
                    "description": description,
                    "policies": policies_json(policies),
                    "bindable_at": kinds_json(bindable_at),
                })),
            },
        )
        .await?;
        let created = load_roles(&txn, &self.profile, [id])
            .await?
            .into_iter()
            .next()
            .ok_or(StoreError::NotFound("role"))?;
        txn.commit().await?;
        self.publish(std::slice::from_ref(&event));
        Ok(created)
    }

    /// Changes a custom role; built-in roles are refused.
    pub async fn update_role(
        &self,
        id: Uuid,
        changes: RoleChanges,
        actor: &Actor,
    ) -> Result<Role, StoreError> {
        let txn = self.db.begin().await?;
        let (current, organization_id, event) = lock_custom_role(
            &txn,
            id,
            crate::domain::change::ChangeKind::RoleUpdated,
            actor,
        )
        .await?;
        let before = load_roles(&txn, &self.profile, [id])
            .await?
            .into_iter()
            .next();
        if let Some(name) = &changes.name {
            ensure_name_free(&txn, organization_id, name, Some(id)).await?;
        }
        let current_name = current.name.clone();
        let mut model: role::ActiveModel = current.into();
        if let Some(name) = &changes.name {
            model.name = Set(name.as_str().to_owned());
        }
        if let Some(description) = &changes.description {
            model.description = Set(description.clone());
        }
        if let Some(kinds) = &changes.bindable_at {
            ensure_bound_only_at(&txn, id, &current_name, kinds).await?;
            model.bindable_at = Set(NodeKind::store_set(kinds));
        }
        model.updated_at = Set(self.clock.now());
        role::Entity::update(model).exec(&txn).await?;
        if let Some(policies) = &changes.policies {
            role_policy::Entity::delete_many()
                .filter(role_policy::Column::RoleId.eq(id))
                .exec(&txn)
                .await?;
            insert_policies(&txn, id, policies).await?;
        }
        let updated = load_roles(&txn, &self.profile, [id])
            .await?
            .into_iter()
            .next()
            .ok_or(StoreError::NotFound("role"))?;
        let snapshot = |r: &Role| json!({ "name": r.name, "description": r.description, "policies": policies_json(&r.policies), "bindable_at": kinds_json(&r.bindable_at) });
        audit::record(
            &txn,
            actor,
            Entry {
                organization_id: Some(organization_id),
                action: "role.update",
                target_type: "role",
                target_id: Some(id),
                before: before.as_ref().map(snapshot),
                after: Some(snapshot(&updated)),
            },
        )
        .await?;
        txn.commit().await?;
        self.publish(std::slice::from_ref(&event));
        Ok(updated)
    }

    /// Deletes a custom role. While it is bound this is a conflict, unless `force`, which
    /// removes its bindings too.
    pub async fn delete_role(
        &self,
        id: Uuid,
        force: bool,
        actor: &Actor,
    ) -> Result<(), StoreError> {
        let txn = self.db.begin().await?;
        let (current, organization_id, event) = lock_custom_role(
            &txn,
            id,
            crate::domain::change::ChangeKind::RoleDeleted,
            actor,
        )
        .await?;
        let bound = role_binding::Entity::find()
            .filter(role_binding::Column::RoleId.eq(id))
            .all(&txn)
            .await?;
        if !bound.is_empty() && !force {
            return Err(StoreError::conflict(format!(
                "role `{}` is bound {} time(s); revoke those bindings first, or delete with `force: true` to remove them too",
                current.name,
                bound.len()
            )));
        }
        let before = load_roles(&txn, &self.profile, [id])
            .await?
            .into_iter()
            .next();
        // The bindings go with the role (the foreign key cascades).
        role::Entity::delete_by_id(id).exec(&txn).await?;
        audit::record(
            &txn,
            actor,
            Entry {
                organization_id: Some(organization_id),
                action: "role.delete",
                target_type: "role",
                target_id: Some(id),
                before: before.map(|r| {
                    json!({ "name": r.name, "policies": policies_json(&r.policies), "bindings_removed": bound.len() })
                }),
                after: None,
            },
        )
        .await?;
        txn.commit().await?;
        self.publish(std::slice::from_ref(&event));
        Ok(())
    }
}

/// Where a role may be bound, as the audit trail records it.
fn kinds_json(kinds: &[NodeKind]) -> serde_json::Value {
    kinds.iter().map(|k| k.as_str()).collect()
}

/// Refuses to narrow where a role may be bound while it is bound elsewhere.
async fn ensure_bound_only_at<C: ConnectionTrait>(
    conn: &C,
    role_id: Uuid,
    role_name: &str,
    kinds: &[NodeKind],
) -> Result<(), StoreError> {
    let bindings = role_binding::Entity::find()
        .filter(role_binding::Column::RoleId.eq(role_id))
        .all(conn)
        .await?;
    let outside = bindings
        .iter()
        .filter(|b| {
            let kind = if b.project_id.is_some() {
                NodeKind::Project
            } else if b.workspace_id.is_some() {
                NodeKind::Workspace
            } else {
                NodeKind::Organization
            };
            !kinds.contains(&kind)
        })
        .count();
    if outside > 0 {
        return Err(StoreError::conflict(format!(
            "role `{role_name}` is bound {outside} time(s) at nodes of a kind it would no longer allow; revoke those bindings first"
        )));
    }
    Ok(())
}
