//! Authorization of the API itself, by the decision engine.
//!
//! Every resolver that reveals or changes organization data asks here, naming the node it
//! touches and the permission it needs (`resource:scope:action`, as SEMANTICS.md writes them;
//! docs/api.md has the table). Nothing else in `graphql/` reads organization data without such
//! a check, and a test walks the schema to show that no mutation escapes it.
//!
//! Who learns what: someone who is not a member of the organization, or who cannot read the
//! node, is told NOT_FOUND, so nothing of it leaks; someone who can read the node but lacks
//! the permission is told FORBIDDEN, naming the permission.

pub mod lookups;

use std::fmt;
use std::sync::Arc;

use async_graphql::Context;
use chrono::{DateTime, Utc};

use crate::clock::Clock;
use uuid::Uuid;

use crate::authz::{
    self, ActionIx, Authz, Catalog, Check, CompiledRoles, Decision, Explanation, Facts, TypeIx,
};
use crate::domain::Node;
use crate::graphql::context::ContextExt;
use crate::graphql::error::ApiError;
use crate::services::Services;
use crate::store::PrincipalFacts;

/// A permission the API needs: a resource type and an action of the catalog, at any scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiPermission {
    pub resource: &'static str,
    pub action: &'static str,
}

impl ApiPermission {
    pub const WORKSPACE_READ: Self = Self::new("workspace", "read");
    pub const WORKSPACE_WRITE: Self = Self::new("workspace", "write");
    pub const WORKSPACE_MANAGE: Self = Self::new("workspace", "manage");
    pub const MEMBERS_READ: Self = Self::new("members", "read");
    pub const MEMBERS_INVITE: Self = Self::new("members", "invite");
    pub const MEMBERS_REMOVE: Self = Self::new("members", "remove");
    /// Suspend, unsuspend, deactivate, reactivate, unlock, a member's sessions.
    pub const MEMBERS_MANAGE: Self = Self::new("members", "manage");
    pub const ROLES_READ: Self = Self::new("roles", "read");
    pub const ROLES_WRITE: Self = Self::new("roles", "write");
    pub const AUDIT_READ: Self = Self::new("audit", "read");
    pub const SSO_MANAGE: Self = Self::new("sso", "manage");
    pub const TEAMS_READ: Self = Self::new("teams", "read");
    pub const TEAMS_MANAGE: Self = Self::new("teams", "manage");
    pub const SERVICE_ACCOUNTS_READ: Self = Self::new("service_accounts", "read");
    pub const SERVICE_ACCOUNTS_MANAGE: Self = Self::new("service_accounts", "manage");
    pub const API_KEYS_READ: Self = Self::new("api_keys", "read");
    pub const API_KEYS_MANAGE: Self = Self::new("api_keys", "manage");
    pub const MEMBERS_IMPERSONATE: Self = Self::new("members", "impersonate");

    /// Every permission the API itself relies on: a deployment's catalog must contain them.
    pub const ALL: [Self; 18] = [
        Self::WORKSPACE_READ,
        Self::WORKSPACE_WRITE,
        Self::WORKSPACE_MANAGE,
        Self::MEMBERS_READ,
        Self::MEMBERS_INVITE,
        Self::MEMBERS_REMOVE,
        Self::MEMBERS_MANAGE,
        Self::ROLES_READ,
        Self::ROLES_WRITE,
        Self::AUDIT_READ,
        Self::SSO_MANAGE,
        Self::TEAMS_READ,
        Self::TEAMS_MANAGE,
        Self::SERVICE_ACCOUNTS_READ,
        Self::SERVICE_ACCOUNTS_MANAGE,
        Self::API_KEYS_READ,
        Self::API_KEYS_MANAGE,
        Self::MEMBERS_IMPERSONATE,
    ];

    const fn new(resource: &'static str, action: &'static str) -> Self {
        Self { resource, action }
    }
}

impl fmt::Display for ApiPermission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:*:{}", self.resource, self.action)
    }
}

/// Checks that `catalog` holds every permission the API needs (at start: a deployment's own
/// catalog must keep them).
pub fn require_api_permissions(catalog: &Catalog) -> Result<(), String> {
    for p in ApiPermission::ALL {
        catalog
            .resolve(p.resource, p.action)
            .map_err(|e| format!("the permission catalog lacks `{p}`, which the API needs: {e}"))?;
    }
    Ok(())
}

/// The catalog indexes of a permission the API needs (present: checked at start).
fn resolve(authz: &Authz, p: ApiPermission) -> Result<(TypeIx, ActionIx), ApiError> {
    authz
        .catalog
        .resolve(p.resource, p.action)
        .map_err(|e| ApiError::internal(&e))
}

/// The engine's view of one principal in one organization: decides many checks from facts
/// loaded once.
pub struct OrgView {
    pub facts: Arc<PrincipalFacts>,
    compiled: Arc<CompiledRoles>,
    authz: Arc<Authz>,
    metrics: Arc<crate::metrics::Metrics>,
    /// What "now" is for expiries (the instance's clock).
    clock: Clock,
    /// The scopes of the API key the principal acts with, if any: every decision of the view
    /// is narrowed by them (SEMANTICS "The decision", step 5).
    pub scopes: Option<Arc<[authz::Permission]>>,
    /// For an impersonation: the impersonator's view. A decision allows only what both the
    /// subject and the impersonator are allowed (SEMANTICS "Sessions and credentials").
    pub cap: Option<Box<OrgView>>,
}

impl OrgView {
    /// Loads the facts of `principal_id` in `organization_id`; NOT_FOUND (as `what`) when the
    /// organization does not exist.
    pub async fn load(
        ctx: &Context<'_>,
        organization_id: Uuid,
        principal_id: Uuid,
        what: &str,
    ) -> Result<Self, ApiError> {
        Self::load_at_least(ctx, organization_id, principal_id, 0, what).await
    }

    /// As [`OrgView::load`], from facts read at revision `at_least` or later.
    pub async fn load_at_least(
        ctx: &Context<'_>,
        organization_id: Uuid,
        principal_id: Uuid,
        at_least: i64,
        what: &str,
    ) -> Result<Self, ApiError> {
        Self::load_with(
            ctx.services(),
            organization_id,
            principal_id,
            at_least,
            what,
        )
        .await
    }

    /// As [`OrgView::load_at_least`], for a caller outside the executor.
    // INVARIANT: this is the engine check's own input: the facts it decides on.
    #[allow(clippy::disallowed_methods)]
    pub async fn load_with(
        services: &Services,
        organization_id: Uuid,
        principal_id: Uuid,
        at_least: i64,
        what: &str,
    ) -> Result<Self, ApiError> {
        let facts = services
            .cache
            .facts(services.store(), organization_id, principal_id, at_least)
            .await?
            .ok_or_else(|| ApiError::not_found(what))?;
        tracing::Span::current().record("org_id", tracing::field::display(organization_id));
        let authz = services.authz.clone();
        let compiled = facts
            .compiled
            .get_or_init(|| authz.compile(facts.custom_roles_to_compile()))
            .clone();
        Ok(Self {
            facts,
            compiled,
            authz,
            metrics: services.metrics.clone(),
            clock: services.clock().clone(),
            scopes: None,
            cap: None,
        })
    }

    /// Whether the principal is an active member (and nothing stops the engine from deciding).
    pub fn active(&self) -> bool {
        self.facts.active && !self.compiled.broken
    }

    /// The engine's facts: this view's bindings and roles.
    fn engine_facts(&self) -> Facts<'_> {
        Facts {
            principal_active: self.active(),
            scopes: self.scopes.as_deref(),
            bindings: &self.facts.bindings,
            roles: &self.compiled.roles,
        }
    }

    /// Decides one check at the node whose path (root first) is `path`.
    pub fn decide(
        &self,
        path: &[Uuid],
        resource_type: TypeIx,
        action: ActionIx,
        resource_id: Option<&str>,
    ) -> Decision {
        self.metrics.evaluations.inc();
        let decision = authz::decide(
            &self.engine_facts(),
            &check(
                &self.authz.catalog,
                path,
                resource_type,
                action,
                resource_id,
                self.clock.now(),
            ),
        );
        self.capped(decision, path, resource_type, action, resource_id)
    }

    /// An allow stands for an impersonation only if the impersonator is allowed too.
    fn capped(
        &self,
        decision: Decision,
        path: &[Uuid],
        resource_type: TypeIx,
        action: ActionIx,
        resource_id: Option<&str>,
    ) -> Decision {
        match &self.cap {
            Some(cap)
                if decision.allowed
                    && !cap.decide(path, resource_type, action, resource_id).allowed =>
            {
                Decision {
                    allowed: false,
                    reasons: vec![authz::Reason::ImpersonatorLacks],
                }
            }
            _ => decision,
        }
    }

    /// The full trace of one check.
    pub fn explain(
        &self,
        path: &[Uuid],
        resource_type: TypeIx,
        action: ActionIx,
        resource_id: Option<&str>,
    ) -> Explanation {
        let mut explanation = authz::explain(
            &self.engine_facts(),
            &check(
                &self.authz.catalog,
                path,
                resource_type,
                action,
                resource_id,
                self.clock.now(),
            ),
        );
        explanation.decision = self.capped(
            explanation.decision,
            path,
            resource_type,
            action,
            resource_id,
        );
        explanation
    }

    /// Whether `permission` holds at the node with `path`.
    pub fn allows(&self, path: &[Uuid], permission: ApiPermission) -> Result<bool, ApiError> {
        let (t, a) = resolve(&self.authz, permission)?;
        Ok(self.decide(path, t, a, None).allowed)
    }

    /// What reasons need to name this view's roles and policies, to keep beyond the view.
    pub fn names(&self) -> RoleNames {
        RoleNames {
            compiled: self.compiled.clone(),
            authz: self.authz.clone(),
        }
    }

    /// The principal's live bindings (own and through teams) with their roles' policies.
    pub fn live_bindings(
        &self,
    ) -> impl Iterator<Item = (&authz::BindingFact, &[authz::CompiledPolicy])> {
        let now = self.clock.now();
        self.facts
            .bindings
            .iter()
            .filter(move |b| !b.is_expired(now))
            .filter_map(|b| {
                self.compiled
                    .roles
                    .get(b.role_id)
                    .map(|r| (b, r.policies.as_slice()))
            })
    }

    /// The name of a role the view knows (for reasons and traces).
    pub fn role_name(&self, id: Uuid) -> Option<&str> {
        role_name(&self.compiled, id)
    }

    pub fn catalog(&self) -> &Catalog {
        &self.authz.catalog
    }

    /// The first permission this principal lacks to hand out `policies` through a binding at
    /// the node with `path` (on one resource, when given: its type and id), if any (no
    /// escalation).
    pub fn first_lacking(
        &self,
        policies: &[authz::CompiledPolicy],
        path: &[Uuid],
        resource: Option<(TypeIx, &str)>,
    ) -> Option<authz::Lacking> {
        authz::first_lacking(
            &self.authz.catalog,
            &self.engine_facts(),
            policies,
            path,
            resource,
            self.clock.now(),
        )
        .or_else(|| {
            self.cap
                .as_ref()
                .and_then(|cap| cap.first_lacking(policies, path, resource))
        })
    }
}

/// Names the roles and policies of a view's decisions, so that reasons can be written out
/// only when a client asks for them.
#[derive(Clone)]
pub struct RoleNames {
    compiled: Arc<CompiledRoles>,
    authz: Arc<Authz>,
}

impl RoleNames {
    pub fn role_name(&self, id: Uuid) -> Option<&str> {
        role_name(&self.compiled, id)
    }

    /// The text of a role's policy, e.g. `apps:*:read`.
    pub fn policy_text(&self, role_id: Uuid, index: usize) -> Option<String> {
        // The stored policy `index` compiles first, before any alias it carries.
        let policy = self
            .compiled
            .roles
            .get(role_id)?
            .policies
            .iter()
            .find(|p| p.index == index)?;
        Some(self.authz.catalog.format_permission(&policy.permission))
    }
}

fn role_name(compiled: &CompiledRoles, id: Uuid) -> Option<&str> {
    compiled.roles.get(id).map(|r| r.name.as_str())
}

/// A check at `path`, at `now`.
fn check<'a>(
    catalog: &'a Catalog,
    path: &'a [Uuid],
    resource_type: TypeIx,
    action: ActionIx,
    resource_id: Option<&'a str>,
    now: DateTime<Utc>,
) -> Check<'a> {
    Check {
        resource_type,
        resource_type_name: catalog.type_name(resource_type),
        action,
        path,
        resource_id,
        now,
    }
}

/// Proof that the caller passed an engine check in one organization: made only here, by
/// [`member_view`] and [`authorize`]; it carries the view for further checks and is the
/// resolvers' way to the store.
pub struct Granted {
    principal_id: Uuid,
    view: OrgView,
}

impl Granted {
    /// The principal who was granted: the signed-in person, or an API key's owner.
    pub fn principal_id(&self) -> Uuid {
        self.principal_id
    }

    /// The caller's view of the organization, for further checks (narrowed by the scopes of
    /// the API key the caller acts with).
    pub fn view(&self) -> &OrgView {
        &self.view
    }

    /// The organization the check was made in.
    pub fn organization_id(&self) -> Uuid {
        self.view.facts.organization_id
    }

    /// The store, reached with a check in hand.
    #[allow(clippy::disallowed_methods)]
    pub fn store<'c>(&self, ctx: &'c Context<'_>) -> &'c crate::store::Store {
        ctx.services().store()
    }
}

/// The caller's view of an organization; NOT_FOUND unless they are an active member (an API
/// key: of its own organization, its owner active).
pub async fn member_view(
    ctx: &Context<'_>,
    organization_id: Uuid,
    what: &str,
) -> Result<Granted, ApiError> {
    let acting = ctx.acting()?;
    // INVARIANT: an SSO session or an API key authorizes only in its organization.
    if !acting.reaches(organization_id) {
        return Err(ApiError::not_found(what));
    }
    let principal_id = acting.principal_id();
    let mut view = OrgView::load(ctx, organization_id, principal_id, what).await?;
    view.scopes = acting.scopes(&view.authz.catalog);
    if let Some(impersonator) = acting.impersonator() {
        view.cap = Some(Box::new(
            impersonator_view(ctx.services(), organization_id, impersonator).await?,
        ));
    }
    if !view.active() {
        return Err(ApiError::not_found(what));
    }
    Ok(Granted { principal_id, view })
}

/// The impersonator's view, which caps an impersonation session's: FORBIDDEN once the
/// impersonator is no active member of the organization.
pub async fn impersonator_view(
    services: &Services,
    organization_id: Uuid,
    impersonator: Uuid,
) -> Result<OrgView, ApiError> {
    let cap =
        OrgView::load_with(services, organization_id, impersonator, 0, "organization").await?;
    if !cap.active() {
        return Err(ApiError::forbidden(
            "the person impersonating is no longer an active member here: the impersonation has ended",
        ));
    }
    Ok(cap)
}

/// Allows the signed-in caller `permission` at `node`, or explains why not.
/// `what` names the node for a NOT_FOUND answer (`organization`, `workspace`, ...).
pub async fn authorize(
    ctx: &Context<'_>,
    node: &Node,
    permission: ApiPermission,
    what: &str,
) -> Result<Granted, ApiError> {
    authorize_any(ctx, node, &[permission], what).await
}

/// Allows when the caller holds any of `permissions` at `node`.
pub async fn authorize_any(
    ctx: &Context<'_>,
    node: &Node,
    permissions: &[ApiPermission],
    what: &str,
) -> Result<Granted, ApiError> {
    let granted = member_view(ctx, node.organization_id(), what).await?;
    let path = node.path_ids();
    for p in permissions {
        if granted.view.allows(&path, *p)? {
            return Ok(granted);
        }
    }
    if sees(ctx, &granted.view, node).await? {
        let names: Vec<String> = permissions.iter().map(|p| format!("`{p}`")).collect();
        return Err(ApiError::forbidden(format!(
            "you need the {} permission here to do this",
            names.join(" or ")
        )));
    }
    Err(ApiError::not_found(what))
}

/// THE visibility rule, for every resolver: an organization is seen by its active members; a
/// workspace or project by whoever holds `workspace:*:read` at it or at a node `under` it (so
/// the path to what they may use stays navigable). Whoever cannot see a node is told
/// NOT_FOUND about it; whoever can see it but lacks a permission there, FORBIDDEN.
pub fn can_see(view: &OrgView, node: &Node, under: &[Node]) -> Result<bool, ApiError> {
    if !view.active() {
        return Ok(false);
    }
    if matches!(node, Node::Organization(_)) {
        return Ok(true);
    }
    if view.allows(&node.path_ids(), ApiPermission::WORKSPACE_READ)? {
        return Ok(true);
    }
    for n in under {
        if view.allows(&n.path_ids(), ApiPermission::WORKSPACE_READ)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// [`can_see`], reading what lies under `node` when it is needed (a workspace's projects,
/// batched).
pub async fn sees(ctx: &Context<'_>, view: &OrgView, node: &Node) -> Result<bool, ApiError> {
    if can_see(view, node, &[])? {
        return Ok(true);
    }
    let under: Vec<Node> = match node {
        Node::Workspace(w) => crate::graphql::loaders::projects_of(ctx, w.id)
            .await?
            .into_iter()
            .map(Node::Project)
            .collect(),
        _ => return Ok(false),
    };
    can_see(view, node, &under)
}
