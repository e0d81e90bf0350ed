//! The engine as a service: the permission catalog with the built-in roles compiled against
//! it once, shared by every request, and the compilation of custom roles on top.

use std::sync::Arc;

use uuid::Uuid;

use super::{Catalog, CompiledRole, CompiledRoles, Policy, RoleSet, builtin_policies};

/// The permission catalog and the compiled built-in roles.
pub struct Authz {
    pub catalog: Catalog,
    /// The built-in roles alone: the compiled roles of every principal without custom roles,
    /// and what the others' sets start from (the roles themselves shared, never copied).
    builtin: Arc<CompiledRoles>,
}

impl Authz {
    /// Compiles the built-in roles (`(id, key, name)` each) against `catalog`. Built-in roles
    /// hold only allow policies, so a policy naming a type or action this catalog lacks is
    /// left out: it could only have granted something.
    pub fn new<'a>(
        catalog: Catalog,
        builtin_roles: impl IntoIterator<Item = (Uuid, &'a str, &'a str)>,
    ) -> Result<Self, String> {
        let mut builtin = RoleSet::new();
        for (id, key, name) in builtin_roles {
            let policies: Vec<_> = builtin_policies(key)
                .unwrap_or_default()
                .into_iter()
                .filter(|p| match catalog.parse_permission(&p.permission) {
                    Ok(_) => true,
                    Err(e) => {
                        tracing::warn!(role = name, permission = %p.permission, error = %e, "built-in policy left out: the catalog lacks it");
                        false
                    }
                })
                .collect();
            let role = CompiledRole::compile(&catalog, id, name, &policies).map_err(|(i, e)| {
                format!("built-in role `{name}` policy {i} does not fit the catalog: {e}")
            })?;
            builtin.insert(role);
        }
        let builtin = Arc::new(CompiledRoles {
            roles: builtin,
            broken: false,
        });
        Ok(Self { catalog, builtin })
    }

    /// The built-in roles and `custom` roles (`(id, name, policies)` each), compiled against
    /// the catalog. Without custom roles, everyone shares one compiled set. A custom role that
    /// no longer fits the catalog marks the set broken: its holder is denied everything.
    pub fn compile<'a>(
        &self,
        custom: impl IntoIterator<Item = (Uuid, &'a str, &'a [Policy])>,
    ) -> Arc<CompiledRoles> {
        let mut custom = custom.into_iter().peekable();
        if custom.peek().is_none() {
            return self.builtin.clone();
        }
        let mut roles = self.builtin.roles.clone();
        let mut broken = false;
        for (id, name, policies) in custom {
            match CompiledRole::compile(&self.catalog, id, name, policies) {
                Ok(compiled) => roles.insert(compiled),
                Err((index, e)) => {
                    tracing::error!(role = %id, index, error = %e, "custom role does not fit the catalog; denying");
                    broken = true;
                }
            }
        }
        Arc::new(CompiledRoles { roles, broken })
    }
}
