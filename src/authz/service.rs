//! The engine as a service: the profile (catalog and built-in roles) with the built-in roles
//! compiled against it once, shared by every request, and the compilation of custom roles on
//! top.

use std::sync::Arc;

use uuid::Uuid;

use super::profile::Profile;
use super::{Catalog, CompiledRole, CompiledRoles, Policy, RoleSet};

/// The profile and its compiled built-in roles.
pub struct Authz {
    /// The profile's catalog (a copy of `profile.catalog`, reached on every check).
    pub catalog: Catalog,
    pub profile: Arc<Profile>,
    /// The built-in roles alone: the compiled roles of every principal without custom roles,
    /// and what the others' sets start from (the roles themselves shared, never copied).
    builtin: Arc<CompiledRoles>,
}

impl Authz {
    /// Compiles the profile's built-in roles (validated when it loaded, so this fails only
    /// for a profile built by hand).
    pub fn new(profile: Arc<Profile>) -> Result<Self, String> {
        let catalog = profile.catalog.clone();
        let mut builtin = RoleSet::new();
        for role in &profile.roles {
            let compiled = CompiledRole::compile(&catalog, role.id, &role.name, &role.policies)
                .map_err(|(i, e)| {
                    format!(
                        "built-in role `{}` policy {} does not fit the catalog: {e}",
                        role.key,
                        i + 1
                    )
                })?;
            builtin.insert(compiled);
        }
        let builtin = Arc::new(CompiledRoles {
            roles: builtin,
            broken: false,
        });
        Ok(Self {
            catalog,
            profile,
            builtin,
        })
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
