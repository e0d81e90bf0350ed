//! The profile in the database: which profile first served it, and the rows of its built-in
//! roles (bindings point at them).

use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, TransactionTrait,
};

use entity::{deployment_setting, organization, role, role_binding};

use super::Store;
use crate::authz::NodeKind;

/// The key of the setting that names the profile.
const PROFILE: &str = "profile";

/// The profile a database served before profiles were recorded.
const BEFORE_PROFILES: &str = "mechamental";

impl Store {
    /// Records the profile in a new database, or refuses one first served with another
    /// profile; then writes the profile's built-in roles (names, descriptions, where they may
    /// be bound) and removes built-in roles the profile no longer has, unless they are bound.
    /// The error is written for the operator.
    pub async fn install_profile(&self) -> Result<(), String> {
        let txn = self.db.begin().await.map_err(|e| e.to_string())?;
        let name = self.profile.name.as_str();
        let recorded = deployment_setting::Entity::find_by_id(PROFILE)
            .one(&txn)
            .await
            .map_err(|e| e.to_string())?;
        match recorded {
            Some(row) if row.value != name => {
                return Err(format!(
                    "the database was first served with profile `{}`, and this instance is started with `{name}`; start it with IAM_PROFILE={} (a database cannot change profile: its roles and bindings mean that profile's permissions)",
                    row.value, row.value
                ));
            }
            Some(_) => {}
            None => {
                // A database with organizations but no record was served before profiles
                // existed, with the default one.
                let served = organization::Entity::find()
                    .count(&txn)
                    .await
                    .map_err(|e| e.to_string())?
                    > 0;
                if served && name != BEFORE_PROFILES {
                    return Err(format!(
                        "the database was served before profiles existed, with the default profile `{BEFORE_PROFILES}`, and this instance is started with `{name}`; start it with IAM_PROFILE={BEFORE_PROFILES}"
                    ));
                }
                deployment_setting::Entity::insert(deployment_setting::ActiveModel {
                    key: Set(PROFILE.to_owned()),
                    value: Set(name.to_owned()),
                    updated_at: Set(self.clock.now()),
                })
                .exec_without_returning(&txn)
                .await
                .map_err(|e| e.to_string())?;
            }
        }

        let now = self.clock.now();
        let existing = role::Entity::find()
            .filter(role::Column::Builtin.eq(true))
            .all(&txn)
            .await
            .map_err(|e| e.to_string())?;
        for r in &self.profile.roles {
            let bindable_at = NodeKind::store_set(&r.bindable_at);
            match existing.iter().find(|e| e.id == r.id) {
                Some(row)
                    if row.key.as_deref() == Some(r.key.as_str())
                        && row.name == r.name
                        && row.description == r.description
                        && row.bindable_at == bindable_at => {}
                Some(row) => {
                    let mut model: role::ActiveModel = row.clone().into();
                    model.key = Set(Some(r.key.clone()));
                    model.name = Set(r.name.clone());
                    model.description = Set(r.description.clone());
                    model.bindable_at = Set(bindable_at);
                    model.updated_at = Set(now);
                    role::Entity::update(model)
                        .exec(&txn)
                        .await
                        .map_err(|e| e.to_string())?;
                }
                None => {
                    role::Entity::insert(role::ActiveModel {
                        id: Set(r.id),
                        organization_id: Set(None),
                        key: Set(Some(r.key.clone())),
                        name: Set(r.name.clone()),
                        description: Set(r.description.clone()),
                        builtin: Set(true),
                        bindable_at: Set(bindable_at),
                        created_at: Set(now),
                        updated_at: Set(now),
                    })
                    .exec_without_returning(&txn)
                    .await
                    .map_err(|e| e.to_string())?;
                }
            }
        }
        for gone in existing
            .iter()
            .filter(|e| self.profile.role_by_id(e.id).is_none())
        {
            let bound = role_binding::Entity::find()
                .filter(role_binding::Column::RoleId.eq(gone.id))
                .count(&txn)
                .await
                .map_err(|e| e.to_string())?;
            if bound > 0 {
                return Err(format!(
                    "profile `{name}` no longer has the built-in role `{}` ({}), which is bound {bound} time(s); put the role back in the profile, or revoke those bindings with the previous profile first",
                    gone.key.as_deref().unwrap_or(&gone.name),
                    gone.id
                ));
            }
            role::Entity::delete_by_id(gone.id)
                .exec(&txn)
                .await
                .map_err(|e| e.to_string())?;
        }
        txn.commit().await.map_err(|e| e.to_string())
    }
}
