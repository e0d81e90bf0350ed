//! A deliberately naive evaluator for the property test: it works on the stored STRINGS,
//! re-splits every `resource:scope:action` each time it looks at it, finds ancestors by walking
//! parent links, and follows SEMANTICS.md "The decision" in the most literal way. It shares no
//! code with the engine and is slow on purpose.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// A reason as plain values, the effect as its stored text.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum RefReason {
    Inactive,
    NoPolicyMatched,
    OutsideKeyScopes,
    ImpersonatorLacks,
    Policy {
        binding_id: Uuid,
        role_id: Uuid,
        node_id: Uuid,
        policy_index: usize,
        effect: String,
    },
}

pub struct RefBinding {
    pub id: Uuid,
    /// Whom the role is bound to: a principal, or a team.
    pub holder: Uuid,
    pub role_id: Uuid,
    pub node_id: Uuid,
    pub expires_at: Option<DateTime<Utc>>,
    /// `(type, id)` of the one resource the binding names.
    pub resource: Option<(String, String)>,
}

pub struct RefWorld {
    /// child → parent; roots have no entry.
    pub parent: HashMap<Uuid, Uuid>,
    /// role id → `(effect, permission)` as stored, e.g. `("deny", "apps:*:read")`.
    pub roles: HashMap<Uuid, Vec<(String, String)>>,
    /// principal → the teams it belongs to.
    pub teams: HashMap<Uuid, Vec<Uuid>>,
}

pub struct RefCheck<'a> {
    pub resource_type: &'a str,
    pub action: &'a str,
    pub node: Uuid,
    pub resource_id: Option<&'a str>,
    pub now: DateTime<Utc>,
}

impl RefWorld {
    /// The node and its ancestors, walking up the parent links.
    fn node_and_ancestors(&self, node: Uuid) -> Vec<Uuid> {
        let mut out = vec![node];
        let mut at = node;
        while let Some(parent) = self.parent.get(&at) {
            out.push(*parent);
            at = *parent;
        }
        out
    }

    /// Returns (allowed, reasons).
    pub fn decide(
        &self,
        principal: Uuid,
        active: bool,
        bindings: &[RefBinding],
        key_scopes: Option<&[String]>,
        check: &RefCheck<'_>,
    ) -> (bool, Vec<RefReason>) {
        let (allowed, reasons) = self.decide_owner(principal, active, bindings, check);
        // 5. With an API key: allow only if one of its scopes matches as in step 3.
        if let Some(scopes) = key_scopes
            && allowed
        {
            let ancestors = self.node_and_ancestors(check.node);
            if !scopes.iter().any(|s| Self::matches(s, &ancestors, check)) {
                return (false, vec![RefReason::OutsideKeyScopes]);
            }
        }
        (allowed, reasons)
    }

    /// Step 3 for one `type:scope:action` text.
    fn matches(permission: &str, ancestors: &[Uuid], check: &RefCheck<'_>) -> bool {
        let parts: Vec<&str> = permission.split(':').collect();
        let (resource, scope, action) = (parts[0], parts[1], parts[2]);
        (resource == "*" || resource == check.resource_type)
            && (action == "*" || action == check.action)
            && (scope == "*"
                || ancestors.iter().any(|n| n.to_string() == scope)
                || check.resource_id == Some(scope))
    }

    /// Steps 1–4, for the principal itself.
    fn decide_owner(
        &self,
        principal: Uuid,
        active: bool,
        bindings: &[RefBinding],
        check: &RefCheck<'_>,
    ) -> (bool, Vec<RefReason>) {
        // 1. Not an active member: deny.
        if !active {
            return (false, vec![RefReason::Inactive]);
        }
        let ancestors = self.node_and_ancestors(check.node);

        // 2. Every policy of every role bound at the checked node or any of its ancestors,
        //    skipping expired bindings ("expires_at has passed": at or before now) and
        //    bindings that name another resource.
        //    Those bound to the principal, or to a team it belongs to.
        let teams = self.teams.get(&principal).cloned().unwrap_or_default();
        let mut gathered = Vec::new();
        for binding in bindings {
            if binding.holder != principal && !teams.contains(&binding.holder) {
                continue;
            }
            let bound_here_or_above = ancestors.contains(&binding.node_id);
            let expired = match binding.expires_at {
                Some(at) => at <= check.now,
                None => false,
            };
            if !bound_here_or_above || expired {
                continue;
            }
            // A binding on one resource counts only for a check of that very resource.
            if let Some((resource_type, id)) = &binding.resource
                && (resource_type != check.resource_type || check.resource_id != Some(id.as_str()))
            {
                continue;
            }
            if let Some(policies) = self.roles.get(&binding.role_id) {
                for (index, (effect, permission)) in policies.iter().enumerate() {
                    gathered.push((binding, index, effect.clone(), permission.clone()));
                }
            }
        }

        // 3. Keep the policies that match.
        let mut kept = Vec::new();
        for (binding, index, effect, permission) in gathered {
            let parts: Vec<&str> = permission.split(':').collect();
            let (resource, scope, action) = (parts[0], parts[1], parts[2]);
            let type_ok = resource == "*" || resource == check.resource_type;
            let action_ok = action == "*" || action == check.action;
            let scope_ok = scope == "*"
                || ancestors.iter().any(|n| n.to_string() == scope)
                || check.resource_id == Some(scope);
            if type_ok && action_ok && scope_ok {
                kept.push(RefReason::Policy {
                    binding_id: binding.id,
                    role_id: binding.role_id,
                    node_id: binding.node_id,
                    policy_index: index,
                    effect,
                });
            }
        }

        // 4. Any deny: deny. Otherwise any allow: allow. Otherwise deny.
        let with_effect = |wanted: &str| -> Vec<RefReason> {
            kept.iter()
                .filter(|r| matches!(r, RefReason::Policy { effect, .. } if effect == wanted))
                .cloned()
                .collect()
        };
        let denies = with_effect("deny");
        if !denies.is_empty() {
            return (false, denies);
        }
        let allows = with_effect("allow");
        if !allows.is_empty() {
            return (true, allows);
        }
        (false, vec![RefReason::NoPolicyMatched])
    }
}
