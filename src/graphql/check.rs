//! The questions a frontend or service asks: may I (or may they) do this here?
//!
//! A check about oneself needs a membership of the node's organization (a suspended member is
//! answered "deny" with its reason); a check about someone else needs `members:*:read` at the
//! organization, and `explain` about someone else `roles:*:read` too. Decisions carry the
//! organization revision their facts were read at, as an opaque token.

use std::collections::HashMap;

use async_graphql::{ComplexObject, Context, Enum, ID, InputObject, Object, Result, SimpleObject};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use uuid::Uuid;

use super::access::{ApiPermission, OrgView, RoleNames, authorize};
use super::context::{ContextExt, parse_id};
use super::cost;
use super::error::ApiError;
use super::roles::{Effect, NodeKind};
use crate::app::Services;
use crate::authz::{self, BindingStatus, Decision as AuthzDecision, Reason};
use crate::domain;
use crate::domain::Session;
use crate::graphql::access::lookups::dress;
use crate::graphql::nodes::Node;

/// A node's path, root (the organization) first.
type Path = std::sync::Arc<[Uuid]>;

fn org_of(path: &Path) -> Uuid {
    path.first().copied().unwrap_or_default()
}

/// Most checks one `checkMany` may ask.
const MAX_BATCH: usize = 500;

/// The opaque token of an organization revision.
pub fn revision_token(organization_id: Uuid, revision: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("{organization_id}:{revision}"))
}

/// The organization's revision token now, after a change this request made: pass it as
/// `atLeast` to see the change from any instance.
///
/// The instance applied the change's event before the mutation returned, so its epochs know a
/// revision at least that new; the store is asked only when they know nothing of the
/// organization.
pub async fn revision_now(ctx: &Context<'_>, organization_id: Uuid) -> Result<String, ApiError> {
    let services = ctx.services();
    let rev = match services.bus.epochs().latest(organization_id) {
        Some(rev) => rev,
        // INVARIANT: only the revision counter, for a resolver that authorized for the
        // organization (or changed it) first.
        None => ctx
            .unchecked_store()
            .revision(organization_id)
            .await?
            .unwrap_or(0),
    };
    Ok(revision_token(organization_id, rev))
}

/// Reads a revision token back; BAD_USER_INPUT when it is not one, or names another
/// organization than `organization_id`.
pub fn read_revision_token(token: &str, organization_id: Uuid) -> Result<i64, ApiError> {
    let bad = || {
        ApiError::bad_input(
            "atLeast",
            "`atLeast` is not a revision token of this organization",
        )
    };
    let raw = URL_SAFE_NO_PAD.decode(token.trim()).map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let (org, rev) = text.split_once(':').ok_or_else(bad)?;
    if Uuid::parse_str(org).map_err(|_| bad())? != organization_id {
        return Err(bad());
    }
    rev.parse::<i64>().map_err(|_| bad())
}

#[derive(InputObject, Clone)]
pub struct CheckInput {
    /// Whom the check is about; the caller when omitted.
    pub principal_id: Option<ID>,
    /// An action of the resource type, e.g. `read`.
    pub action: String,
    /// A resource type of the catalog, e.g. `apps`.
    pub resource_type: String,
    /// The organization, workspace or project the resource lives in.
    pub node_id: ID,
    /// One resource, for permissions scoped to it.
    pub resource_id: Option<ID>,
    /// A revision token (from a mutation or an earlier decision): the answer then reflects
    /// state at least that new, whatever the caches hold.
    pub at_least: Option<String>,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum ReasonKind {
    /// The principal is not an active member of the organization.
    Inactive,
    NoPolicyMatched,
    /// A policy of a bound role decided.
    Policy,
}

/// Why a decision came out as it did.
#[derive(SimpleObject)]
pub struct DecisionReason {
    pub kind: ReasonKind,
    pub binding_id: Option<ID>,
    pub role_id: Option<ID>,
    pub role_name: Option<String>,
    /// Where the deciding role is bound (the checked node or an ancestor).
    pub node_id: Option<ID>,
    pub policy_index: Option<i32>,
    pub permission: Option<String>,
    pub effect: Option<Effect>,
    /// The reason in words.
    pub message: String,
}

#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Decision {
    pub allowed: bool,
    /// The engine's reasons, written out only when asked for.
    #[graphql(skip)]
    raw_reasons: Vec<Reason>,
    #[graphql(skip)]
    names: RoleNames,
    #[graphql(skip)]
    organization_id: Uuid,
    #[graphql(skip)]
    revision_number: i64,
}

#[ComplexObject]
impl Decision {
    /// Why the decision came out as it did.
    async fn reasons(&self) -> Vec<DecisionReason> {
        reasons(&self.names, &self.raw_reasons)
    }

    /// The organization revision the decision reflects (opaque).
    async fn revision(&self) -> String {
        self.revision_token()
    }
}

impl Decision {
    /// The token of the organization revision the decision reflects.
    pub fn revision_token(&self) -> String {
        revision_token(self.organization_id, self.revision_number)
    }
}

/// Decides a `check` of the signed-in `caller` about themself, outside the executor (the
/// prepared path of `http/prepared.rs`). `None` when the executor must answer instead: for a
/// check about someone else, and on any error, which the executor then reports as usual.
pub async fn own_check(
    services: &Services,
    caller: &Session,
    input: &CheckInput,
) -> Option<Decision> {
    let timer = services.metrics.check_latency.start_timer();
    match Checker::about(services, caller.user_id, caller.organization_id)
        .decide(input)
        .await
    {
        Ok(decision) => Some(decision),
        Err(_) => {
            timer.stop_and_discard();
            None
        }
    }
}

#[derive(SimpleObject)]
pub struct EffectivePermission {
    pub resource_type: String,
    pub action: String,
    /// `resource:*:action`.
    pub permission: String,
}

#[derive(SimpleObject)]
pub struct NodePage {
    pub nodes: Vec<Node>,
    /// Pass as `after` for the next page.
    pub end_cursor: Option<String>,
    pub has_next_page: bool,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum BindingUse {
    /// On the checked node or an ancestor, unexpired: its policies were considered.
    Applies,
    Expired,
    /// Bound elsewhere in the organization (a sibling, or below the checked node).
    NotOnPath,
    UnknownRole,
}

#[derive(SimpleObject)]
pub struct MatchedPolicy {
    pub policy_index: i32,
    pub permission: String,
    pub effect: Effect,
}

/// One binding as `explain` considered it.
#[derive(SimpleObject)]
pub struct ExplainedBinding {
    pub binding_id: ID,
    pub role_id: ID,
    pub role_name: Option<String>,
    pub node_id: ID,
    /// Where the binding is, relative to the checked node's path (none when not on it).
    pub inherited_from: Option<NodeKind>,
    pub status: BindingUse,
    pub matched: Vec<MatchedPolicy>,
}

#[derive(SimpleObject)]
pub struct Explanation {
    pub allowed: bool,
    pub reasons: Vec<DecisionReason>,
    pub revision: String,
    /// Every binding of the principal in the organization, and what became of it.
    pub bindings: Vec<ExplainedBinding>,
    /// `DENY` when a deny decided (it wins over any allow), `ALLOW` when an allow did, none
    /// when nothing matched.
    pub decided_by: Option<Effect>,
}

/// A reason that names no policy: the principal is inactive, or nothing matched.
fn denial(kind: ReasonKind, message: &str) -> DecisionReason {
    DecisionReason {
        kind,
        binding_id: None,
        role_id: None,
        role_name: None,
        node_id: None,
        policy_index: None,
        permission: None,
        effect: Some(Effect::Deny),
        message: message.to_owned(),
    }
}

fn reasons(names: &RoleNames, raw: &[Reason]) -> Vec<DecisionReason> {
    raw.iter().map(|r| reason(names, r)).collect()
}

fn reason(names: &RoleNames, r: &Reason) -> DecisionReason {
    match r {
        Reason::Inactive => denial(
            ReasonKind::Inactive,
            "deny: the principal is not an active member of the organization",
        ),
        Reason::NoPolicyMatched => denial(ReasonKind::NoPolicyMatched, "deny: no policy matched"),
        Reason::Policy {
            binding_id,
            role_id,
            node_id,
            policy_index,
            effect,
        } => {
            let role_name = names.role_name(*role_id).map(str::to_owned);
            let permission = names.policy_text(*role_id, *policy_index);
            DecisionReason {
                kind: ReasonKind::Policy,
                binding_id: Some(ID(binding_id.to_string())),
                role_id: Some(ID(role_id.to_string())),
                node_id: Some(ID(node_id.to_string())),
                policy_index: i32::try_from(*policy_index).ok(),
                effect: Some((*effect).into()),
                message: format!(
                    "{}: `{}` of role `{}` bound at {}",
                    effect.as_str(),
                    permission.as_deref().unwrap_or("?"),
                    role_name.as_deref().unwrap_or("?"),
                    node_id
                ),
                permission,
                role_name,
            }
        }
    }
}

fn decision(view: &OrgView, d: AuthzDecision) -> Decision {
    Decision {
        allowed: d.allowed,
        raw_reasons: d.reasons,
        names: view.names(),
        organization_id: view.facts.organization_id,
        revision_number: view.facts.revision,
    }
}

/// Resolves the pieces of checks, remembering nodes and views across a batch.
struct Checker<'c, 'ctx> {
    services: &'c Services,
    /// The executor's context; only checks about someone else need it (to authorize them).
    ctx: Option<&'c Context<'ctx>>,
    caller: Uuid,
    /// The one organization the caller's session acts in (an SSO session), if bound.
    bound_to: Option<Uuid>,
    nodes: HashMap<Uuid, Path>,
    views: HashMap<(Uuid, Uuid), OrgView>,
    /// Whether `explain` is asked (it reveals role contents too).
    explaining: bool,
}

impl<'c, 'ctx> Checker<'c, 'ctx> {
    fn new(ctx: &'c Context<'ctx>, explaining: bool) -> Result<Self, ApiError> {
        let (user, session) = ctx.signed_in()?;
        let mut checker = Self::about(ctx.services(), user.id, session.organization_id);
        checker.ctx = Some(ctx);
        checker.explaining = explaining;
        Ok(checker)
    }

    /// A checker of `caller`'s checks about themself, outside the executor: checks about
    /// anyone else fail.
    fn about(services: &'c Services, caller: Uuid, bound_to: Option<Uuid>) -> Self {
        Self {
            services,
            ctx: None,
            caller,
            bound_to,
            nodes: HashMap::new(),
            views: HashMap::new(),
            explaining: false,
        }
    }

    /// The path (root first) of the node with this id.
    // INVARIANT: the path is the engine's input for the check being made; nothing of the node
    // is answered but the decision.
    #[allow(clippy::disallowed_methods)]
    async fn node(&mut self, id: Uuid) -> Result<Path, ApiError> {
        if let Some(n) = self.nodes.get(&id) {
            return Ok(n.clone());
        }
        let services = self.services;
        let path = services
            .nodes
            .path(services.store(), id)
            .await?
            .filter(|p| !p.is_empty())
            .ok_or_else(|| ApiError::not_found("node"))?;
        self.nodes.insert(id, path.clone());
        Ok(path)
    }

    /// The view of `principal` in the node's organization, after checking the caller may ask.
    async fn view(
        &mut self,
        node: &Path,
        principal: Uuid,
        at_least: i64,
    ) -> Result<&OrgView, ApiError> {
        let org_id = org_of(node);
        if self.bound_to.is_some_and(|own| own != org_id) {
            return Err(ApiError::not_found("node"));
        }
        let key = (org_id, principal);
        let fresh_enough = self
            .views
            .get(&key)
            .is_some_and(|v| v.facts.revision >= at_least);
        if !fresh_enough {
            if principal != self.caller {
                let Some(ctx) = self.ctx else {
                    return Err(ApiError::not_found("node"));
                };
                let org = crate::graphql::access::lookups::org_node(ctx, org_id).await?;
                authorize(ctx, &org, ApiPermission::MEMBERS_READ, "node").await?;
                if self.explaining {
                    authorize(ctx, &org, ApiPermission::ROLES_READ, "node").await?;
                }
            }
            let view =
                OrgView::load_with(self.services, org_id, principal, at_least, "node").await?;
            // About oneself: members only (whatever their status); others learn nothing.
            if principal == self.caller && !view.facts.member {
                return Err(ApiError::not_found("node"));
            }
            self.views.insert(key, view);
        }
        self.views
            .get(&key)
            .ok_or_else(|| ApiError::not_found("node"))
    }

    /// Decides one check.
    async fn decide(&mut self, input: &CheckInput) -> Result<Decision, ApiError> {
        let p = self.prepare(input).await?;
        let view = self.view(&p.node, p.principal, p.at_least).await?;
        let d = view.decide(&p.node, p.resource_type, p.action, p.resource_id);
        Ok(decision(view, d))
    }

    /// Reads one check input into its node path, types and principal.
    async fn prepare(&mut self, input: &CheckInput) -> Result<CheckRequest, ApiError> {
        let principal = match &input.principal_id {
            Some(p) => parse_id("principalId", p)?,
            None => self.caller,
        };
        let node = self.node(parse_id("nodeId", &input.node_id)?).await?;
        let resource_id = input
            .resource_id
            .as_ref()
            .map(|r| parse_id("resourceId", r))
            .transpose()?;
        let (t, a) = self
            .services
            .authz
            .catalog
            .resolve(input.resource_type.trim(), input.action.trim())
            .map_err(|e| ApiError::bad_input("resourceType", e.to_string()))?;
        let at_least = input
            .at_least
            .as_deref()
            .map(|token| read_revision_token(token, org_of(&node)))
            .transpose()?
            .unwrap_or(0);
        Ok(CheckRequest {
            principal,
            node,
            resource_type: t,
            action: a,
            resource_id,
            at_least,
        })
    }
}

struct CheckRequest {
    principal: Uuid,
    node: Path,
    resource_type: authz::TypeIx,
    action: authz::ActionIx,
    resource_id: Option<Uuid>,
    at_least: i64,
}

/// The names the API gives `check`, its argument and the `Decision` fields the prepared path
/// (`http/prepared.rs`) answers. async-graphql derives them from the resolvers below and does
/// not expose them as constants; a test (`prepared::tests`) reads them back from the schema,
/// so a rename here fails it instead of silently turning the prepared path off.
pub mod wire {
    pub const CHECK: &str = "check";
    pub const CHECK_INPUT_ARGUMENT: &str = "input";
    pub const ALLOWED: &str = "allowed";
    pub const REVISION: &str = "revision";
}

#[derive(Default)]
pub struct CheckQuery;

#[Object]
impl CheckQuery {
    /// Decides one check. About oneself: needs a membership of the organization. About another
    /// principal: needs `members:*:read` at the organization.
    async fn check(&self, ctx: &Context<'_>, input: CheckInput) -> Result<Decision> {
        let _timer = ctx.services().metrics.check_latency.start_timer();
        Ok(Checker::new(ctx, false)?.decide(&input).await?)
    }

    /// Decides many checks (at most 500) in order, loading each organization's facts once.
    /// Each check needs what `check` needs.
    // Priced at its most inputs: counting them would parse every input once more on the
    // hottest path, and what a decision selects is cheap.
    #[graphql(complexity = "cost::list(MAX_BATCH, child_complexity)")]
    async fn check_many(
        &self,
        ctx: &Context<'_>,
        inputs: Vec<CheckInput>,
    ) -> Result<Vec<Decision>> {
        if inputs.len() > MAX_BATCH {
            return Err(ApiError::bad_input(
                "inputs",
                format!("at most {MAX_BATCH} checks per request"),
            )
            .into());
        }
        let _timer = ctx.services().metrics.check_latency.start_timer();
        let mut checker = Checker::new(ctx, false)?;
        let mut out = Vec::with_capacity(inputs.len());
        for (i, input) in inputs.iter().enumerate() {
            let p = checker.prepare(input).await.map_err(|e| ApiError {
                message: format!("inputs[{i}]: {}", e.message),
                ..e
            })?;
            let view = checker.view(&p.node, p.principal, p.at_least).await?;
            let d = view.decide(&p.node, p.resource_type, p.action, p.resource_id);
            out.push(decision(view, d));
        }
        Ok(out)
    }

    /// The full trace of one check: every binding of the principal in the organization, where
    /// it is bound relative to the checked node, which policies matched, which effect won.
    /// About oneself: needs a membership. About another principal: `members:*:read` and
    /// `roles:*:read` at the organization.
    async fn explain(&self, ctx: &Context<'_>, input: CheckInput) -> Result<Explanation> {
        let mut checker = Checker::new(ctx, true)?;
        let p = checker.prepare(&input).await?;
        let path = p.node.clone();
        let view = checker.view(&p.node, p.principal, p.at_least).await?;
        let e = view.explain(&path, p.resource_type, p.action, p.resource_id);
        let catalog = view.catalog();
        let bindings = e
            .bindings
            .iter()
            .map(|b| ExplainedBinding {
                binding_id: ID(b.binding_id.to_string()),
                role_id: ID(b.role_id.to_string()),
                role_name: view.role_name(b.role_id).map(str::to_owned),
                node_id: ID(b.node_id.to_string()),
                inherited_from: b.depth.map(|d| match d {
                    0 => NodeKind::Organization,
                    1 => NodeKind::Workspace,
                    _ => NodeKind::Project,
                }),
                status: match b.status {
                    BindingStatus::Applies => BindingUse::Applies,
                    BindingStatus::Expired => BindingUse::Expired,
                    BindingStatus::NotOnPath => BindingUse::NotOnPath,
                    BindingStatus::UnknownRole => BindingUse::UnknownRole,
                },
                matched: b
                    .matched
                    .iter()
                    .map(|m| MatchedPolicy {
                        policy_index: i32::try_from(m.policy_index).unwrap_or(i32::MAX),
                        permission: catalog.format_permission(&m.permission),
                        effect: m.effect.into(),
                    })
                    .collect(),
            })
            .collect();
        let decided_by = e.decision.reasons.iter().find_map(|r| match r {
            Reason::Policy { effect, .. } => Some(Effect::from(*effect)),
            _ => None,
        });
        Ok(Explanation {
            allowed: e.decision.allowed,
            reasons: reasons(&view.names(), &e.decision.reasons),
            revision: revision_token(view.facts.organization_id, view.facts.revision),
            bindings,
            decided_by,
        })
    }

    /// The permissions the caller holds at a node (for any resource there), so a UI can show or
    /// hide what it offers. Needs a membership of the node's organization.
    #[graphql(complexity = "cost::list(cost::UNPAGED, child_complexity)")]
    async fn effective_permissions(
        &self,
        ctx: &Context<'_>,
        node_id: ID,
    ) -> Result<Vec<EffectivePermission>> {
        let mut checker = Checker::new(ctx, false)?;
        let node = checker.node(parse_id("nodeId", &node_id)?).await?;
        let caller = checker.caller;
        let view = checker.view(&node, caller, 0).await?;
        let path = node.clone();
        let catalog = view.catalog();
        Ok(catalog
            .pairs()
            .into_iter()
            .filter(|(t, a)| view.decide(&path, *t, *a, None).allowed)
            .map(|(t, a)| EffectivePermission {
                resource_type: catalog.type_name(t).to_owned(),
                action: catalog.action_name(a).to_owned(),
                permission: format!("{}:*:{}", catalog.type_name(t), catalog.action_name(a)),
            })
            .collect())
    }

    /// The workspaces and projects of an organization where the caller holds
    /// `resourceType:*:action`, in path order, a page at a time (`first` up to 200, `after` a
    /// cursor from the previous page). Needs a membership of the organization.
    #[graphql(complexity = "cost::list(cost::page(Some(first), 50, 200), child_complexity)")]
    async fn accessible_nodes(
        &self,
        ctx: &Context<'_>,
        organization_id: ID,
        resource_type: String,
        action: String,
        #[graphql(default = 50)] first: i32,
        after: Option<String>,
    ) -> Result<NodePage> {
        if !(1..=200).contains(&first) {
            return Err(ApiError::bad_input("first", "`first` must be between 1 and 200").into());
        }
        let org_id = parse_id("organizationId", &organization_id)?;
        let granted = super::access::member_view(ctx, org_id, "organization").await?;
        let view = &granted.view();
        let (t, a) = view
            .catalog()
            .resolve(resource_type.trim(), action.trim())
            .map_err(|e| ApiError::bad_input("resourceType", e.to_string()))?;
        let store = granted.store(ctx);
        let projects = store.projects_of_org(org_id).await?;
        // Path order: each workspace, then its projects.
        let mut ordered = Vec::new();
        for w in store.workspaces(org_id).await? {
            let wid = w.id;
            ordered.push(domain::Node::Workspace(w));
            ordered.extend(
                projects
                    .iter()
                    .filter(|p| p.workspace_id == wid)
                    .cloned()
                    .map(domain::Node::Project),
            );
        }
        let start = match after {
            None => 0,
            Some(cursor) => {
                let id = Uuid::parse_str(&cursor).map_err(|_| {
                    ApiError::bad_input("after", "`after` is not a cursor of this list")
                })?;
                ordered
                    .iter()
                    .position(|n| n.id() == id)
                    .map(|i| i + 1)
                    .ok_or_else(|| {
                        ApiError::bad_input("after", "`after` is not a cursor of this list")
                    })?
            }
        };
        let limit = usize::try_from(first).unwrap_or(50);
        let mut page = Vec::new();
        let mut has_next_page = false;
        for node in ordered.into_iter().skip(start) {
            if !view.decide(&node.path_ids(), t, a, None).allowed {
                continue;
            }
            if page.len() == limit {
                has_next_page = true;
                break;
            }
            page.push(node);
        }
        let end_cursor = page.last().map(|n| n.id().to_string());
        let mut nodes = Vec::with_capacity(page.len());
        for n in page {
            nodes.push(dress(ctx, n).await?);
        }
        Ok(NodePage {
            nodes,
            end_cursor,
            has_next_page,
        })
    }
}
