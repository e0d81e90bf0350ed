//! The decision: facts about one principal in one organization, plus one check, give allow or
//! deny with the reasons, exactly as SEMANTICS.md "The decision" says.
//!
//! [`decide`] is the hot path: it walks the principal's bindings, keeps those bound on the
//! checked node's path and not expired, and compares each compiled policy with the check
//! using integers and UUIDs only. It allocates nothing but the returned reasons. [`explain`]
//! walks the same rules and records every step for the `explain` query; its decision is built
//! by the same final rule ([`Tally`]) and always equals `decide`'s.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::catalog::{ActionIx, TypeIx};
use super::permission::{Effect, Permission, Scope};
use super::role::{CompiledRole, RoleSet};

/// A role bound to the principal at a node, as the store knows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BindingFact {
    pub id: Uuid,
    pub role_id: Uuid,
    pub node_id: Uuid,
    pub expires_at: Option<DateTime<Utc>>,
    /// The team the principal holds the binding through; `None` for its own binding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<Uuid>,
    /// The one resource the binding names, if any: it then applies only to checks of that
    /// very resource (type and id) at its node or below.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<BoundResource>,
}

/// The resource a binding names.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BoundResource {
    /// A type of the catalog, by name (the cache outlives a catalog's indexes).
    pub resource_type: String,
    /// In the gateway's spelling (see [`super::resource_id`]).
    pub id: String,
}

impl BoundResource {
    /// Whether a check names this very resource.
    pub fn is_checked_by(&self, check: &Check<'_>) -> bool {
        check.resource_id == Some(self.id.as_str())
            && check.resource_type_name == self.resource_type
    }
}

impl BindingFact {
    /// A binding whose `expires_at` is at or before `now` applies to nothing.
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}

/// Everything the engine needs about one principal in one organization.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// Whether the principal is an active member of the organization (step 1).
    pub principal_active: bool,
    /// The principal's bindings; bindings on nodes outside the checked path are ignored.
    pub bindings: &'a [BindingFact],
    pub roles: &'a RoleSet,
    /// For a check made with an API key that has scopes: the key allows only what one of
    /// them matches (step 5), whatever its owner holds. `None`: no narrowing.
    pub scopes: Option<&'a [Permission]>,
}

/// One check. `path` is the checked node's ancestors and itself, ROOT (organization) FIRST,
/// ending at the checked node: `[org]`, `[org, ws]` or `[org, ws, project]`.
///
/// `(resource_type, action)` should come from [`super::Catalog::resolve`]: the engine compares
/// indexes and does not check that the pair exists.
#[derive(Debug, Clone, Copy)]
pub struct Check<'a> {
    pub resource_type: TypeIx,
    /// The name of `resource_type` (what a resource binding names).
    pub resource_type_name: &'a str,
    pub action: ActionIx,
    pub path: &'a [Uuid],
    /// One resource, in the gateway's spelling (see [`super::resource_id`]).
    pub resource_id: Option<&'a str>,
    pub now: DateTime<Utc>,
}

/// Why a decision came out as it did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// Step 1: the principal is not an active member.
    Inactive,
    /// Step 5: the owner is allowed, but none of the API key's scopes matches the check.
    OutsideKeyScopes,
    /// An impersonation: the subject is allowed, the impersonator is not (never more than
    /// the impersonator holds).
    ImpersonatorLacks,
    /// No kept policy allows or denies (including: no binding applies).
    NoPolicyMatched,
    /// A policy that decided: for a deny, every matching deny policy; for an allow, every
    /// matching allow policy.
    Policy {
        binding_id: Uuid,
        role_id: Uuid,
        node_id: Uuid,
        policy_index: usize,
        effect: Effect,
    },
}

/// The answer to a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    // INVARIANT: never empty. Exactly `[Inactive]`, `[OutsideKeyScopes]` or `[NoPolicyMatched]`, or only
    // `Policy` reasons, all with the effect the decision has, in binding then policy order.
    pub reasons: Vec<Reason>,
}

impl Decision {
    fn inactive() -> Self {
        Decision {
            allowed: false,
            reasons: vec![Reason::Inactive],
        }
    }

    /// Step 5: an allow stands only if one of the key's scopes matches the check.
    fn narrowed(self, scopes: Option<&[Permission]>, check: &Check<'_>) -> Self {
        match scopes {
            Some(scopes)
                if self.allowed && !scopes.iter().any(|p| permission_matches(p, check)) =>
            {
                Decision {
                    allowed: false,
                    reasons: vec![Reason::OutsideKeyScopes],
                }
            }
            _ => self,
        }
    }
}

/// Decides exactly as SEMANTICS.md "The decision" says:
/// 1. an inactive principal is denied;
/// 2. bindings at the checked node or an ancestor (`check.path`) count, expired ones
///    (`expires_at <= now`) do not, nor do bindings that name another resource than the
///    checked one, nor bindings whose role is not in the [`RoleSet`];
/// 3. a policy matches when its type is the checked type or `*`, its action the checked
///    action or `*`, and its scope `*`, a node of `check.path` or `check.resource_id`;
/// 4. any matching deny denies; otherwise any matching allow allows; otherwise deny;
/// 5. with an API key's scopes, an allow stands only if one of them matches the check.
pub fn decide(facts: &Facts<'_>, check: &Check<'_>) -> Decision {
    if !facts.principal_active {
        return Decision::inactive();
    }
    let mut tally = Tally::default();
    for binding in facts.bindings {
        let Some(role) = applicable_role(facts.roles, binding, check) else {
            continue;
        };
        for policy in &role.policies {
            if permission_matches(&policy.permission, check) {
                tally.add(binding, policy.index, policy.effect);
            }
        }
    }
    tally.finish().narrowed(facts.scopes, check)
}

/// The role of a binding that applies to `check` (step 2), if any.
fn applicable_role<'r>(
    roles: &'r RoleSet,
    binding: &BindingFact,
    check: &Check<'_>,
) -> Option<&'r CompiledRole> {
    if !check.path.contains(&binding.node_id) || binding.is_expired(check.now) {
        return None;
    }
    if let Some(resource) = &binding.resource
        && !resource.is_checked_by(check)
    {
        return None;
    }
    roles.get(binding.role_id)
}

/// Step 3: whether a permission matches the check.
pub fn permission_matches(p: &Permission, check: &Check<'_>) -> bool {
    p.resource.is_none_or(|t| t == check.resource_type)
        && p.action.is_none_or(|a| a == check.action)
        && match &p.scope {
            Scope::Any => true,
            Scope::Target(t) => t.matches(check.path, check.resource_id),
        }
}

/// Step 4, fed one matching policy at a time.
#[derive(Default)]
struct Tally {
    denied: bool,
    /// Allow reasons until the first deny, deny reasons from then on.
    reasons: Vec<Reason>,
}

impl Tally {
    fn add(&mut self, binding: &BindingFact, policy_index: usize, effect: Effect) {
        match (effect, self.denied) {
            (Effect::Allow, true) => return,
            (Effect::Deny, false) => {
                self.denied = true;
                self.reasons.clear();
            }
            _ => {}
        }
        self.reasons.push(Reason::Policy {
            binding_id: binding.id,
            role_id: binding.role_id,
            node_id: binding.node_id,
            policy_index,
            effect,
        });
    }

    fn finish(self) -> Decision {
        if self.reasons.is_empty() {
            return Decision {
                allowed: false,
                reasons: vec![Reason::NoPolicyMatched],
            };
        }
        Decision {
            allowed: !self.denied,
            reasons: self.reasons,
        }
    }
}

/// The full trace of one check, for the `explain` query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// Always equal to what [`decide`] answers for the same facts and check.
    pub decision: Decision,
    /// One entry per binding of the facts, in their order.
    pub bindings: Vec<BindingTrace>,
}

/// What one binding contributed to a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingTrace {
    pub binding_id: Uuid,
    pub role_id: Uuid,
    pub node_id: Uuid,
    /// Where the binding's node is in the check's path (0 = organization), `None` when it is
    /// not on the path.
    pub depth: Option<usize>,
    pub status: BindingStatus,
    /// The policies of the role that match the check, both effects, in policy order; empty
    /// unless the status is `Applies`.
    pub matched: Vec<PolicyMatch>,
    /// The one resource the binding names, if any.
    pub resource: Option<BoundResource>,
    /// The team the principal holds the binding through, if any.
    pub team: Option<Uuid>,
}

/// Whether a binding took part in a check. When several apply, the first listed wins: a
/// binding off the path is `NotOnPath` even if it has also expired, an expired one `Expired`
/// even if it names another resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindingStatus {
    Applies,
    /// Its `expires_at` is at or before the check's `now`.
    Expired,
    /// Its node is neither the checked node nor one of its ancestors.
    NotOnPath,
    /// It names one resource, and the check is about another (or none).
    OtherResource,
    /// Its role is not in the [`RoleSet`]; it contributes nothing.
    UnknownRole,
}

/// One policy that matched a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyMatch {
    pub policy_index: usize,
    pub effect: Effect,
    pub permission: Permission,
}

/// The full trace of a check: each binding considered, where it is bound, why it was skipped
/// or which of its policies matched, and the final decision (equal to [`decide`]'s).
///
/// For an inactive principal the decision is deny with [`Reason::Inactive`]; the trace still
/// shows what each binding would contribute, which helps explain a suspended member's access.
pub fn explain(facts: &Facts<'_>, check: &Check<'_>) -> Explanation {
    let mut tally = Tally::default();
    let mut traces = Vec::with_capacity(facts.bindings.len());
    for binding in facts.bindings {
        let depth = check.path.iter().position(|n| *n == binding.node_id);
        let role = facts.roles.get(binding.role_id);
        let status = match (depth, role) {
            (None, _) => BindingStatus::NotOnPath,
            (Some(_), _) if binding.is_expired(check.now) => BindingStatus::Expired,
            (Some(_), _)
                if binding
                    .resource
                    .as_ref()
                    .is_some_and(|r| !r.is_checked_by(check)) =>
            {
                BindingStatus::OtherResource
            }
            (Some(_), None) => BindingStatus::UnknownRole,
            (Some(_), Some(_)) => BindingStatus::Applies,
        };
        let mut matched = Vec::new();
        if let (BindingStatus::Applies, Some(role)) = (status, role) {
            for policy in &role.policies {
                if permission_matches(&policy.permission, check) {
                    tally.add(binding, policy.index, policy.effect);
                    matched.push(PolicyMatch {
                        policy_index: policy.index,
                        effect: policy.effect,
                        permission: policy.permission.clone(),
                    });
                }
            }
        }
        traces.push(BindingTrace {
            binding_id: binding.id,
            role_id: binding.role_id,
            node_id: binding.node_id,
            depth,
            status,
            matched,
            resource: binding.resource.clone(),
            team: binding.team,
        });
    }
    let decision = if facts.principal_active {
        tally.finish().narrowed(facts.scopes, check)
    } else {
        Decision::inactive()
    };
    Explanation {
        decision,
        bindings: traces,
    }
}
