//! The authorization questions of the API: check, checkMany, explain, effectivePermissions,
//! accessibleNodes.

use super::checker::Checker;
use super::*;
use crate::authz::{BindingStatus, Reason};
use crate::domain;
use crate::graphql::access::lookups::dress;
use crate::graphql::context::{ContextExt, parse_id};
use crate::graphql::cost;
use crate::graphql::error::ApiError;
use crate::graphql::roles::{Effect, NodeKind};
use async_graphql::{Context, ID, Object, Result};
use uuid::Uuid;

/// so a rename here fails it instead of silently turning the prepared path off.
/// The names the API gives `check`, its argument and the `Decision` fields the prepared path
/// (`http/prepared.rs`) answers. async-graphql derives them from the resolvers below and does
/// not expose them as constants; a test (`prepared::tests`) reads them back from the schema,
pub mod wire {
    pub const CHECK: &str = "check";
    pub const CHECK_INPUT_ARGUMENT: &str = "input";
    pub const ALLOWED: &str = "allowed";
    pub const REVISION: &str = "revision";
    pub const CHECK_MANY: &str = "checkMany";
    pub const CHECK_MANY_ARGUMENT: &str = "inputs";
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
        Ok(Checker::new(ctx, false)?.decide_all(&inputs).await?)
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
        let e = view.explain(&path, p.resource_type, p.action, p.resource_id.as_deref());
        let catalog = view.catalog();
        let team_names: std::collections::HashMap<uuid::Uuid, String> =
            if e.bindings.iter().any(|b| b.team.is_some()) {
                // INVARIANT: the checker authorized this explanation of the organization.
                ctx.unchecked_store()
                    .teams(view.facts.organization_id)
                    .await?
                    .into_iter()
                    .map(|t| (t.id, t.name))
                    .collect()
            } else {
                std::collections::HashMap::new()
            };
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
                    BindingStatus::OtherResource => BindingUse::OtherResource,
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
                resource_type: b.resource.as_ref().map(|r| r.resource_type.clone()),
                resource_id: b.resource.as_ref().map(|r| ID(r.id.clone())),
                team_id: b.team.map(|t| ID(t.to_string())),
                team_name: b.team.and_then(|t| team_names.get(&t).cloned()),
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
        let granted = crate::graphql::access::member_view(ctx, org_id, "organization").await?;
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
