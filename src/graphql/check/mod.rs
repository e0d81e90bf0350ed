//! The questions a frontend or service asks: may I (or may they) do this here?
//!
//! A check about oneself needs a membership of the node's organization (a suspended member is
//! answered "deny" with its reason); a check about someone else needs `members:*:read` at the
//! organization, and `explain` about someone else `roles:*:read` too. Decisions carry the
//! organization revision their facts were read at, as an opaque token.
//!
//! Here: revision tokens, the inputs and objects; `checker.rs` decides (facts loaded once per
//! organization and principal for a whole batch); `query.rs` is the API.

mod checker;
mod query;

use checker::Checker;
pub use query::{CheckQuery, wire};

use crate::authz::{Decision as AuthzDecision, Reason};
use crate::graphql::access::{OrgView, RoleNames};
use crate::graphql::context::Acting;
use crate::graphql::context::ContextExt;
use crate::graphql::error::ApiError;
use crate::graphql::nodes::Node;
use crate::graphql::roles::{Effect, NodeKind};
use crate::services::Services;
use async_graphql::{ComplexObject, Context, Enum, ID, InputObject, Result, SimpleObject};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use uuid::Uuid;

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
    /// One resource, in the application's own words (`chain-42`, `OPENAI_API_KEY`, a UUID):
    /// 1 to 200 printable characters without `:` or spaces. Permissions scoped to it, and
    /// bindings made on it, apply.
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
    /// The API key's owner is allowed, but none of the key's scopes covers the check.
    OutsideKeyScopes,
    /// An impersonation session: the subject is allowed, the impersonator is not.
    ImpersonatorLacks,
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

/// Decides a `check` of the signed-in `caller` (about themself, or about someone else when
/// the caller may ask), outside the executor (the prepared path of `http/prepared.rs`). `None`
/// on any error, which the executor then reports as usual.
pub async fn own_check(
    services: &Services,
    caller: &Acting<'_>,
    input: &CheckInput,
) -> Option<Decision> {
    let timer = services.metrics.check_latency.start_timer();
    match Checker::about(
        services,
        caller.principal_id(),
        caller.bound_to(),
        caller.scopes(&services.authz.catalog),
        caller.impersonator(),
    )
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

/// Decides a `checkMany` of the signed-in `caller` outside the executor, as [`own_check`]
/// decides a `check`: `None` on any error and for more than the batch allows, which the
/// executor then reports as usual.
pub async fn own_checks(
    services: &Services,
    caller: &Acting<'_>,
    inputs: &[CheckInput],
) -> Option<Vec<Decision>> {
    if inputs.len() > MAX_BATCH {
        return None;
    }
    let timer = services.metrics.check_latency.start_timer();
    match Checker::about(
        services,
        caller.principal_id(),
        caller.bound_to(),
        caller.scopes(&services.authz.catalog),
        caller.impersonator(),
    )
    .decide_all(inputs)
    .await
    {
        Ok(decisions) => Some(decisions),
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
    /// Bound on one resource, and the check is about another (or none).
    OtherResource,
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
    /// The one resource the binding is on (null for the whole node).
    pub resource_type: Option<String>,
    pub resource_id: Option<ID>,
    /// The team the principal holds the binding through (null for their own binding).
    pub team_id: Option<ID>,
    pub team_name: Option<String>,
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
        Reason::ImpersonatorLacks => denial(
            ReasonKind::ImpersonatorLacks,
            "deny: an impersonation never holds more than the person impersonating, who lacks this",
        ),
        Reason::OutsideKeyScopes => denial(
            ReasonKind::OutsideKeyScopes,
            "deny: the API key's scopes do not cover this check (its owner's would)",
        ),
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
