//! Roles: named sets of policies, compiled once against the catalog for the engine.
//!
//! A [`Policy`] is what the store keeps (an effect and the permission as text); a
//! [`CompiledRole`] holds the same policies parsed, in the same order, so that a policy index
//! in a decision's reason points at the stored policy it came from. This module also holds the
//! [`RoleSet`] the engine looks roles up in; the built-in roles come from the profile
//! (`profile.rs`).

use std::collections::HashMap;
use std::sync::Arc;

use uuid::Uuid;

use super::catalog::{ActionIx, Catalog, TypeIx};
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompiledPolicy {
    pub effect: Effect,
    pub permission: Permission,
    /// The index of the stored policy this comes from: a policy naming a platform permission
    /// with aliases (see [`super::Alias`]) compiles to itself and one entry per gateway
    /// permission it also means, all with its index.
    pub index: usize,
}

/// A role ready for the engine.
#[derive(Debug, Clone)]
pub struct CompiledRole {
    pub id: Uuid,
    pub name: String,
    // INVARIANT: in stored order, each entry's `index` naming the stored policy it comes from,
    // so that reasons cite it.
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
        let mut compiled = Vec::with_capacity(policies.len());
        for (index, p) in policies.iter().enumerate() {
            let permission = catalog
                .parse_permission(&p.permission)
                .map_err(|e| (index, e))?;
            // The stored policy first, then the gateway permissions it also means.
            let aliased = alias_targets(catalog, &permission);
            let scope = permission.scope.clone();
            compiled.push(CompiledPolicy {
                effect: p.effect,
                permission,
                index,
            });
            for (resource, action) in aliased {
                compiled.push(CompiledPolicy {
                    effect: p.effect,
                    permission: Permission {
                        resource: Some(resource),
                        scope: scope.clone(),
                        action: Some(action),
                    },
                    index,
                });
            }
        }
        let policies = compiled;
        Ok(CompiledRole {
            id,
            name: name.to_owned(),
            policies,
        })
    }
}

/// The gateway permissions that `p` also carries through the catalog's aliases: the targets
/// of every alias whose platform permission `p` covers, less those `p` covers itself.
fn alias_targets(catalog: &Catalog, p: &Permission) -> Vec<(TypeIx, ActionIx)> {
    let covers = |(t, a): (TypeIx, ActionIx)| {
        p.resource.is_none_or(|r| r == t) && p.action.is_none_or(|x| x == a)
    };
    let mut targets = Vec::new();
    for alias in catalog.aliases() {
        if !covers(alias.from) {
            continue;
        }
        for &target in &alias.to {
            if !covers(target) && !targets.contains(&target) {
                targets.push(target);
            }
        }
    }
    targets
}

/// The keys of the default profile's built-in roles, in the order they are listed.
pub const BUILTIN_ROLE_KEYS: [&str; 4] = ["admin", "developer", "operator", "viewer"];

/// The policies of a built-in role of the default profile (`profiles/mechamental.toml`), as
/// SEMANTICS.md lists them.
pub fn builtin_policies(key: &str) -> Option<Vec<Policy>> {
    super::profile::Profile::mechamental()
        .role(key)
        .map(|r| r.policies.clone())
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
