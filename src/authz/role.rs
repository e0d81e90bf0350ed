//! Roles: named sets of policies, compiled once against the catalog for the engine.
//!
//! A [`Policy`] is what the store keeps (an effect and the permission as text); a
//! [`CompiledRole`] holds the same policies parsed, in the same order, so that a policy index
//! in a decision's reason points at the stored policy it came from. This module also holds the
//! contents of the built-in roles of SEMANTICS.md and the [`RoleSet`] the engine looks roles up
//! in.

use std::collections::HashMap;
use std::sync::Arc;

use uuid::Uuid;

use super::catalog::Catalog;
use super::permission::{Effect, Permission, PermissionError};

/// A policy as stored: an effect and a permission in its text form.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Policy {
    pub effect: Effect,
    pub permission: String,
}

impl Policy {
    pub fn allow(permission: impl Into<String>) -> Self {
        Self {
            effect: Effect::Allow,
            permission: permission.into(),
        }
    }

    pub fn deny(permission: impl Into<String>) -> Self {
        Self {
            effect: Effect::Deny,
            permission: permission.into(),
        }
    }
}

/// A policy with its permission parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompiledPolicy {
    pub effect: Effect,
    pub permission: Permission,
}

/// A role ready for the engine.
#[derive(Debug, Clone)]
pub struct CompiledRole {
    pub id: Uuid,
    pub name: String,
    // INVARIANT: `policies[i]` is the stored policy `i`, so reasons can cite it by index.
    pub policies: Vec<CompiledPolicy>,
}

impl CompiledRole {
    /// Compiles (parses once) a role's policies, keeping their order. An error carries the
    /// index of the first bad policy.
    pub fn compile(
        catalog: &Catalog,
        id: Uuid,
        name: &str,
        policies: &[Policy],
    ) -> Result<CompiledRole, (usize, PermissionError)> {
        let policies = policies
            .iter()
            .enumerate()
            .map(|(i, p)| {
                catalog
                    .parse_permission(&p.permission)
                    .map(|permission| CompiledPolicy {
                        effect: p.effect,
                        permission,
                    })
                    .map_err(|e| (i, e))
            })
            .collect::<Result<_, _>>()?;
        Ok(CompiledRole {
            id,
            name: name.to_owned(),
            policies,
        })
    }
}

/// The keys of the built-in roles, in the order they are listed.
pub const BUILTIN_ROLE_KEYS: [&str; 4] = ["admin", "developer", "operator", "viewer"];

/// The policies of a built-in role, exactly as SEMANTICS.md lists them (allow policies only).
/// They name types of the built-in catalog; a deployment catalog without those types cannot
/// compile them.
pub fn builtin_policies(key: &str) -> Option<Vec<Policy>> {
    let permissions: &[&str] = match key {
        "admin" => &["*:*:*"],
        "developer" => &[
            "apps:*:read",
            "apps:*:write",
            "augmentations:*:read",
            "augmentations:*:write",
            "tools:*:read",
            "tools:*:write",
            "sources:*:read",
            "sources:*:write",
            "endpoints:*:read",
            "endpoints:*:write",
            "secrets:*:reference",
            "workspace:*:read",
            "models:*:read",
            "members:*:read",
            "roles:*:read",
        ],
        "operator" => &[
            "endpoints:*:trigger",
            "apps:*:read",
            "endpoints:*:read",
            "models:*:read",
            "augmentations:*:read",
            "augmentations:*:execute",
            "analytics:*:view",
            "audit:*:read",
        ],
        "viewer" => &[
            "apps:*:read",
            "endpoints:*:read",
            "models:*:read",
            "tools:*:read",
            "sources:*:read",
            "workspace:*:read",
            "analytics:*:view",
        ],
        _ => return None,
    };
    Some(permissions.iter().map(|p| Policy::allow(*p)).collect())
}

/// The roles of one principal's facts, compiled: the built-in roles and their custom ones.
#[derive(Debug, Clone)]
pub struct CompiledRoles {
    pub roles: RoleSet,
    /// A custom role no longer fits the catalog: whoever holds it is denied everything, since
    /// a deny policy that cannot be read must not turn into an allow.
    pub broken: bool,
}

/// The roles the engine may meet, by id. Roles are shared, not copied: the built-in ones are
/// compiled once and every principal's set points at them.
#[derive(Debug, Clone, Default)]
pub struct RoleSet {
    roles: HashMap<Uuid, Arc<CompiledRole>>,
}

impl RoleSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a role, replacing any role with the same id.
    pub fn insert(&mut self, role: impl Into<Arc<CompiledRole>>) {
        let role = role.into();
        self.roles.insert(role.id, role);
    }

    pub fn get(&self, id: Uuid) -> Option<&CompiledRole> {
        self.roles.get(&id).map(Arc::as_ref)
    }

    pub fn len(&self) -> usize {
        self.roles.len()
    }

    pub fn is_empty(&self) -> bool {
        self.roles.is_empty()
    }

    /// Every role, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &CompiledRole> {
        self.roles.values().map(Arc::as_ref)
    }
}

impl<R: Into<Arc<CompiledRole>>> FromIterator<R> for RoleSet {
    fn from_iter<I: IntoIterator<Item = R>>(iter: I) -> Self {
        let mut set = RoleSet::new();
        for role in iter {
            set.insert(role);
        }
        set
    }
}
