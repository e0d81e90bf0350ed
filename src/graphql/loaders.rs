//! Batched node lookups: async-graphql's `DataLoader` over the store, so that the siblings at
//! one level of a query (the 30 projects of a workspace each asking for its workspace, the
//! organizations of `me` each listing its workspaces) cost one store query together, not one
//! each.
//!
//! The loader only reads facts of the hierarchy (nodes and their children); it decides
//! nothing. Every resolver still authorizes what it shows, after the lookup, exactly as before.
//! It caches nothing either: each batch is a fresh read, so a mutation's result and a later
//! query see the committed state.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;

use async_graphql::Context;
use async_graphql::dataloader::{DataLoader, Loader};
use uuid::Uuid;

use super::error::ApiError;
use crate::domain::{Organization, Project, Workspace};
use crate::services::Services;
use crate::store::{Store, StoreError};

/// The store queries behind the lookups. Resolvers' lookups are counted in
/// `iam_node_lookups_total`, the queries that answer them in `iam_node_batches_total`.
pub struct NodeLoader {
    store: Store,
    metrics: Arc<crate::metrics::Metrics>,
}

/// The schema's loader: one per schema, shared by its requests (it holds no data).
pub type Nodes = DataLoader<NodeLoader>;

/// The loader over `services`' store.
// INVARIANT: what the loader reads is shown only after `access::can_see` or an engine check
// passed for it (its callers are the visibility rule and authorized resolvers).
#[allow(clippy::disallowed_methods)]
pub fn nodes(services: &Services) -> Nodes {
    DataLoader::new(
        NodeLoader {
            store: services.store().clone(),
            metrics: services.metrics.clone(),
        },
        tokio::spawn,
    )
}

/// An organization by id.
#[derive(Clone, Copy, Hash, PartialEq, Eq)]
struct OrganizationId(Uuid);
/// A workspace by id.
#[derive(Clone, Copy, Hash, PartialEq, Eq)]
struct WorkspaceId(Uuid);
/// The workspaces of an organization.
#[derive(Clone, Copy, Hash, PartialEq, Eq)]
struct WorkspacesOf(Uuid);
/// The projects of a workspace.
#[derive(Clone, Copy, Hash, PartialEq, Eq)]
struct ProjectsOf(Uuid);
/// The projects of an organization.
#[derive(Clone, Copy, Hash, PartialEq, Eq)]
struct ProjectsOfOrg(Uuid);

/// A failed batch, shared by every lookup in it.
type Failed = Arc<StoreError>;

impl NodeLoader {
    /// Counts a batch of `keys`, reads it with `read`, and files each row under its key.
    async fn batch<K, V, F>(
        &self,
        keys: &[K],
        id: impl Fn(&K) -> Uuid,
        read: impl FnOnce(Vec<Uuid>) -> F,
        key_of: impl Fn(&V) -> K,
    ) -> Result<Vec<(K, V)>, Failed>
    where
        K: Copy + Hash + Eq,
        F: Future<Output = Result<Vec<V>, StoreError>>,
    {
        self.metrics.node_batches.inc();
        let rows = read(keys.iter().map(id).collect())
            .await
            .map_err(Arc::new)?;
        Ok(rows.into_iter().map(|v| (key_of(&v), v)).collect())
    }
}

/// One value per key (nodes by id).
fn by_key<K: Hash + Eq, V>(rows: Vec<(K, V)>) -> HashMap<K, V> {
    rows.into_iter().collect()
}

/// Every key with its rows, in the order read (children by slug); keys without rows get none.
fn grouped<K: Copy + Hash + Eq, V>(keys: &[K], rows: Vec<(K, V)>) -> HashMap<K, Vec<V>> {
    let mut map: HashMap<K, Vec<V>> = keys.iter().map(|k| (*k, Vec::new())).collect();
    for (k, v) in rows {
        map.entry(k).or_default().push(v);
    }
    map
}

impl Loader<OrganizationId> for NodeLoader {
    type Value = Organization;
    type Error = Failed;

    async fn load(
        &self,
        keys: &[OrganizationId],
    ) -> Result<HashMap<OrganizationId, Organization>, Failed> {
        let store = &self.store;
        let rows = self
            .batch(
                keys,
                |k| k.0,
                |ids| async move { store.organizations_by_ids(&ids).await },
                |o: &Organization| OrganizationId(o.id),
            )
            .await?;
        Ok(by_key(rows))
    }
}

impl Loader<WorkspaceId> for NodeLoader {
    type Value = Workspace;
    type Error = Failed;

    async fn load(&self, keys: &[WorkspaceId]) -> Result<HashMap<WorkspaceId, Workspace>, Failed> {
        let store = &self.store;
        let rows = self
            .batch(
                keys,
                |k| k.0,
                |ids| async move { store.workspaces_by_ids(&ids).await },
                |w: &Workspace| WorkspaceId(w.id),
            )
            .await?;
        Ok(by_key(rows))
    }
}

impl Loader<WorkspacesOf> for NodeLoader {
    type Value = Vec<Workspace>;
    type Error = Failed;

    async fn load(
        &self,
        keys: &[WorkspacesOf],
    ) -> Result<HashMap<WorkspacesOf, Vec<Workspace>>, Failed> {
        let store = &self.store;
        let rows = self
            .batch(
                keys,
                |k| k.0,
                |ids| async move { store.workspaces_of_orgs(&ids).await },
                |w: &Workspace| WorkspacesOf(w.organization_id),
            )
            .await?;
        Ok(grouped(keys, rows))
    }
}

impl Loader<ProjectsOf> for NodeLoader {
    type Value = Vec<Project>;
    type Error = Failed;

    async fn load(&self, keys: &[ProjectsOf]) -> Result<HashMap<ProjectsOf, Vec<Project>>, Failed> {
        let store = &self.store;
        let rows = self
            .batch(
                keys,
                |k| k.0,
                |ids| async move { store.projects_of_workspaces(&ids).await },
                |p: &Project| ProjectsOf(p.workspace_id),
            )
            .await?;
        Ok(grouped(keys, rows))
    }
}

impl Loader<ProjectsOfOrg> for NodeLoader {
    type Value = Vec<Project>;
    type Error = Failed;

    async fn load(
        &self,
        keys: &[ProjectsOfOrg],
    ) -> Result<HashMap<ProjectsOfOrg, Vec<Project>>, Failed> {
        let store = &self.store;
        let rows = self
            .batch(
                keys,
                |k| k.0,
                |ids| async move { store.projects_of_orgs(&ids).await },
                |p: &Project| ProjectsOfOrg(p.organization_id),
            )
            .await?;
        Ok(grouped(keys, rows))
    }
}

/// A failed batch as the client sees it (the detail goes to the log).
fn failed(e: &Failed) -> ApiError {
    ApiError::internal(&**e)
}

/// The schema's loader (`build_schema_with` gives every schema with services one), counting
/// the lookup.
fn loader<'a>(ctx: &'a Context<'_>) -> Result<&'a Nodes, ApiError> {
    let services = ctx.data::<Services>().map_err(|e| ApiError::internal(&e))?;
    services.metrics.node_lookups.inc();
    ctx.data::<Nodes>().map_err(|e| ApiError::internal(&e))
}

/// The organization with this id.
pub async fn organization(ctx: &Context<'_>, id: Uuid) -> Result<Option<Organization>, ApiError> {
    loader(ctx)?
        .load_one(OrganizationId(id))
        .await
        .map_err(|e| failed(&e))
}

/// The workspace with this id.
pub async fn workspace(ctx: &Context<'_>, id: Uuid) -> Result<Option<Workspace>, ApiError> {
    loader(ctx)?
        .load_one(WorkspaceId(id))
        .await
        .map_err(|e| failed(&e))
}

/// The workspaces of an organization, by slug.
pub async fn workspaces_of(
    ctx: &Context<'_>,
    organization_id: Uuid,
) -> Result<Vec<Workspace>, ApiError> {
    Ok(loader(ctx)?
        .load_one(WorkspacesOf(organization_id))
        .await
        .map_err(|e| failed(&e))?
        .unwrap_or_default())
}

/// The projects of a workspace, by slug.
pub async fn projects_of(ctx: &Context<'_>, workspace_id: Uuid) -> Result<Vec<Project>, ApiError> {
    Ok(loader(ctx)?
        .load_one(ProjectsOf(workspace_id))
        .await
        .map_err(|e| failed(&e))?
        .unwrap_or_default())
}

/// Every project of an organization, by slug.
pub async fn projects_of_org(
    ctx: &Context<'_>,
    organization_id: Uuid,
) -> Result<Vec<Project>, ApiError> {
    Ok(loader(ctx)?
        .load_one(ProjectsOfOrg(organization_id))
        .await
        .map_err(|e| failed(&e))?
        .unwrap_or_default())
}
