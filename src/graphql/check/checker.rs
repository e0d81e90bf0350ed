//! The checker: one request's checks, with the nodes and facts they need loaded once.

use super::*;
use crate::authz::{self};
use crate::graphql::access::{ApiPermission, OrgView};
use crate::graphql::context::{ContextExt, parse_id};
use crate::graphql::error::ApiError;
use crate::services::Services;
use async_graphql::{Context, Result};
use std::collections::HashMap;
use uuid::Uuid;

/// Resolves the pieces of checks, remembering nodes and views across a batch.
pub(super) struct Checker<'c> {
    services: &'c Services,
    pub(super) caller: Uuid,
    /// The one organization the caller's credential acts in (an SSO session, an API key).
    bound_to: Option<Uuid>,
    /// The scopes of the caller's API key: they narrow the caller's checks about themself.
    scopes: Option<std::sync::Arc<[authz::Permission]>>,
    /// For an impersonation session: the impersonator, whose view caps the caller's.
    impersonator: Option<Uuid>,
    nodes: HashMap<Uuid, Path>,
    views: HashMap<(Uuid, Uuid), OrgView>,
    /// Whether `explain` is asked (it reveals role contents too).
    explaining: bool,
}

impl<'c> Checker<'c> {
    pub(super) fn new(ctx: &'c Context<'_>, explaining: bool) -> Result<Self, ApiError> {
        let acting = ctx.acting()?;
        let services = ctx.services();
        let mut checker = Self::about(
            services,
            acting.principal_id(),
            acting.bound_to(),
            acting.scopes(&services.authz.catalog),
            acting.impersonator(),
        );
        checker.explaining = explaining;
        Ok(checker)
    }

    /// A checker of `caller`'s checks, inside the executor or outside it (the prepared path):
    /// checks about anyone else are authorized by [`Checker::authorize_asking`].
    pub(super) fn about(
        services: &'c Services,
        caller: Uuid,
        bound_to: Option<Uuid>,
        scopes: Option<std::sync::Arc<[authz::Permission]>>,
        impersonator: Option<Uuid>,
    ) -> Self {
        Self {
            services,
            caller,
            bound_to,
            scopes,
            impersonator,
            nodes: HashMap::new(),
            views: HashMap::new(),
            explaining: false,
        }
    }

    /// The path (root first) of the node with this id.
    // INVARIANT: the path is the engine's input for the check being made; nothing of the node
    // is answered but the decision.
    #[allow(clippy::disallowed_methods)]
    pub(super) async fn node(&mut self, id: Uuid) -> Result<Path, ApiError> {
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
    pub(super) async fn view(
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
                self.authorize_asking(org_id).await?;
            }
            let mut view =
                OrgView::load_with(self.services, org_id, principal, at_least, "node").await?;
            if principal == self.caller {
                view.scopes = self.scopes.clone();
                if let Some(impersonator) = self.impersonator {
                    view.cap = Some(Box::new(
                        crate::graphql::access::impersonator_view(
                            self.services,
                            org_id,
                            impersonator,
                        )
                        .await?,
                    ));
                }
            }
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

    /// Whether the caller may ask about others in the organization: `members:*:read` there
    /// (and `roles:*:read` to explain), decided with the caller's view as `member_view` makes
    /// it (the key's scopes, the impersonator's cap), at the organization node, whose path is
    /// itself: no store read, and no executor needed, so the prepared path answers it too.
    async fn authorize_asking(&self, org_id: Uuid) -> Result<(), ApiError> {
        let mut caller = OrgView::load_with(self.services, org_id, self.caller, 0, "node").await?;
        caller.scopes = self.scopes.clone();
        if let Some(impersonator) = self.impersonator {
            caller.cap = Some(Box::new(
                crate::graphql::access::impersonator_view(self.services, org_id, impersonator)
                    .await?,
            ));
        }
        if !caller.active() {
            return Err(ApiError::not_found("node"));
        }
        let mut needed = vec![ApiPermission::MEMBERS_READ];
        if self.explaining {
            needed.push(ApiPermission::ROLES_READ);
        }
        for p in needed {
            if !caller.allows(&[org_id], p)? {
                return Err(ApiError::forbidden(format!(
                    "you need the `{p}` permission here to do this"
                )));
            }
        }
        Ok(())
    }

    /// Decides one check.
    pub(super) async fn decide(&mut self, input: &CheckInput) -> Result<Decision, ApiError> {
        let p = self.prepare(input).await?;
        let view = self.view(&p.node, p.principal, p.at_least).await?;
        let d = view.decide(&p.node, p.resource_type, p.action, p.resource_id.as_deref());
        Ok(decision(view, d))
    }

    /// Decides checks in order (each organization's facts loaded once): `checkMany`. An input
    /// that cannot be read fails the whole batch, naming its index.
    pub(super) async fn decide_all(
        &mut self,
        inputs: &[CheckInput],
    ) -> Result<Vec<Decision>, ApiError> {
        let mut out = Vec::with_capacity(inputs.len());
        for (i, input) in inputs.iter().enumerate() {
            let p = self.prepare(input).await.map_err(|e| ApiError {
                message: format!("inputs[{i}]: {}", e.message),
                ..e
            })?;
            let view = self.view(&p.node, p.principal, p.at_least).await?;
            let d = view.decide(&p.node, p.resource_type, p.action, p.resource_id.as_deref());
            out.push(decision(view, d));
        }
        Ok(out)
    }

    /// Reads one check input into its node path, types and principal.
    pub(super) async fn prepare(&mut self, input: &CheckInput) -> Result<CheckRequest, ApiError> {
        let principal = match &input.principal_id {
            Some(p) => parse_id("principalId", p)?,
            None => self.caller,
        };
        let node = self.node(parse_id("nodeId", &input.node_id)?).await?;
        let resource_id = input
            .resource_id
            .as_ref()
            .map(|r| {
                authz::resource_id(r.as_str()).ok_or_else(|| {
                    ApiError::bad_input(
                        "resourceId",
                        "a resource id has 1 to 200 printable characters, without `:` or spaces",
                    )
                })
            })
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

pub(super) struct CheckRequest {
    pub(super) principal: Uuid,
    pub(super) node: Path,
    pub(super) resource_type: authz::TypeIx,
    pub(super) action: authz::ActionIx,
    pub(super) resource_id: Option<String>,
    pub(super) at_least: i64,
}
