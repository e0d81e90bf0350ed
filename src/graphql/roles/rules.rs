//! Who may grant, revoke and write which roles (SEMANTICS "Changing access").

use async_graphql::Result;
use uuid::Uuid;

use crate::authz::{BoundResource, CompiledRole, Effect as AuthzEffect, Policy as AuthzPolicy};
use crate::domain;
use crate::domain::Node;
use crate::graphql::access::OrgView;
use crate::graphql::error::ApiError;

/// Refuses to grant or revoke `role` at `node` unless `view` may hand out its policies there
/// (SEMANTICS "Grant" and "Revoke": every permission the role allows, and every permission its
/// denies cover, must be allowed to the caller at the node; see [`crate::authz::first_lacking`]).
pub(crate) fn ensure_no_escalation(
    view: &OrgView,
    role: &domain::Role,
    node: &Node,
) -> Result<(), ApiError> {
    ensure_no_escalation_on(view, role, node, None)
}

/// As [`ensure_no_escalation`], for a binding that names one resource (`None`: the whole
/// node): only what the role can do to that resource is handed out, so that is what the
/// caller must hold, on that resource.
pub(crate) fn ensure_no_escalation_on(
    view: &OrgView,
    role: &domain::Role,
    node: &Node,
    resource: Option<&BoundResource>,
) -> Result<(), ApiError> {
    let catalog = view.catalog();
    let compiled = CompiledRole::compile(catalog, role.id, &role.name, &role.policies)
        .map_err(|(_, e)| ApiError::internal(&e))?;
    let resource = match resource {
        None => None,
        Some(r) => Some((
            catalog
                .type_ix(&r.resource_type)
                .ok_or_else(|| ApiError::internal(&"a bound resource type left the catalog"))?,
            r.id.as_str(),
        )),
    };
    let Some(lack) = view.first_lacking(&compiled.policies, &node.path_ids(), resource) else {
        return Ok(());
    };
    Err(lacking_error(view, &lack, &role.name, "grant or revoke"))
}

/// Refuses to bind `role` at `node` when the role says it may be bound only at other kinds of
/// node (SEMANTICS "Roles and policies"); `field` names the input at fault.
pub(crate) fn ensure_bindable_at(
    role: &domain::Role,
    node: &Node,
    field: &'static str,
) -> Result<(), ApiError> {
    if role.bindable_at.contains(&node.kind()) {
        return Ok(());
    }
    let kinds: Vec<&str> = role.bindable_at.iter().map(|k| k.as_str()).collect();
    Err(ApiError::bad_input(
        field,
        format!(
            "role `{}` can be bound only at {} (not at {})",
            role.name,
            plural_kinds(&kinds),
            with_article(node.kind().as_str())
        ),
    ))
}

/// "an organization", "a workspace".
fn with_article(kind: &str) -> String {
    let article = if kind.starts_with('o') { "an" } else { "a" };
    format!("{article} {kind}")
}

/// "an organization", "a workspace or a project"…
fn plural_kinds(kinds: &[&str]) -> String {
    let with_article: Vec<String> = kinds.iter().map(|k| with_article(k)).collect();
    match with_article.split_last() {
        None => "no node".to_owned(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

/// Refuses unless `view` may hand out `policies` at the node with `path`; the message names the
/// role, what it would do and the permission the caller lacks.
pub(crate) fn ensure_may_hand_out(
    view: &OrgView,
    policies: &[crate::authz::CompiledPolicy],
    path: &[Uuid],
    role_name: &str,
    doing: &str,
) -> Result<(), ApiError> {
    let Some(lack) = view.first_lacking(policies, path, None) else {
        return Ok(());
    };
    Err(lacking_error(view, &lack, role_name, doing))
}

/// "role `X` allows `apps:*:write`, which you do not hold here; ...".
fn lacking_error(
    view: &OrgView,
    lack: &crate::authz::Lacking,
    role_name: &str,
    doing: &str,
) -> ApiError {
    let verb = match lack.effect {
        AuthzEffect::Allow => "allows",
        AuthzEffect::Deny => "denies",
    };
    ApiError::forbidden(format!(
        "role `{}` {verb} `{}`, which you do not hold here; you can only {doing} roles within your own permissions",
        role_name,
        view.catalog().format_permission(&lack.permission),
    ))
}

/// Refuses to write a role of the organization `org` with `policies` unless `view` may hand
/// them all out at the organization (SEMANTICS "Create or change a role"). A role already bound
/// changes what its holders have; being within the caller's permissions at the organization
/// covers every node it could be bound at.
pub(crate) fn ensure_role_within_caller(
    view: &OrgView,
    org: &Node,
    name: &str,
    policies: &[AuthzPolicy],
) -> Result<(), ApiError> {
    let compiled = CompiledRole::compile(view.catalog(), Uuid::nil(), name, policies)
        .map_err(|(_, e)| ApiError::internal(&e))?;
    ensure_may_hand_out(view, &compiled.policies, &org.path_ids(), name, "write")
}

/// Refuses when a binding of `role` is held by the caller (`held`: theirs, or a team's they
/// are in) and the role denies anything: nobody removes or replaces a restriction placed on
/// themselves (SEMANTICS "Revoke").
pub(crate) fn ensure_not_own_restriction(held: bool, role: &domain::Role) -> Result<(), ApiError> {
    if held && role.policies.iter().any(|p| p.effect == AuthzEffect::Deny) {
        return Err(ApiError::forbidden(format!(
            "role `{}` restricts you; you cannot remove or replace a binding whose denies apply to yourself",
            role.name
        )));
    }
    Ok(())
}
