//! The facts the decision engine needs about one principal in one organization, read in one
//! statement (so in one snapshot) and tagged with the organization revision they reflect.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Condition, Expr, ExprTrait, JoinType, Order, Query, UnionType};
use sea_orm::{ConnectionTrait, QueryResult};
use uuid::Uuid;

use entity::{
    membership, organization, role, role_binding, role_policy, service_account, team_member, user,
};

use super::{Store, StoreError};
use crate::authz::{BindingFact, CompiledRoles, Effect, Policy};
use crate::domain::{MemberStatus, Role};

/// What the engine is told about a principal in an organization.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PrincipalFacts {
    pub organization_id: Uuid,
    pub principal_id: Uuid,
    /// The organization revision this snapshot reflects.
    pub revision: i64,
    /// An active member whose account is not deleted, or a service account not disabled.
    pub active: bool,
    /// A member at all, whatever the status (a suspended member may ask about themselves).
    #[serde(default)]
    pub member: bool,
    /// The principal's own bindings and those of its teams (each saying which team).
    pub bindings: Vec<BindingFact>,
    /// Every team the principal belongs to in the organization, with bindings or not (their
    /// epochs decide whether these facts are still valid), sorted.
    #[serde(default)]
    pub teams: Vec<Uuid>,
    /// The custom roles named by `bindings` (built-in roles come from code).
    pub custom_roles: Vec<Role>,
    /// The roles compiled against the catalog, made once per loaded snapshot by the first
    /// request that needs them (the snapshot never changes; a change brings a new one).
    #[serde(skip)]
    pub compiled: OnceLock<Arc<CompiledRoles>>,
}

impl PrincipalFacts {
    /// The custom roles as the engine compiles them: `(id, name, policies)`.
    pub fn custom_roles_to_compile(
        &self,
    ) -> impl Iterator<Item = (Uuid, &str, &[crate::authz::Policy])> {
        self.custom_roles
            .iter()
            .map(|r| (r.id, r.name.as_str(), r.policies.as_slice()))
    }
}

impl Store {
    /// The principal's facts in the organization, or `None` when the organization does not
    /// exist.
    ///
    /// One statement reads everything: the organization's revision, the membership, the
    /// account, the principal's teams, the bindings of the principal and of those teams, and
    /// the policies of the custom roles they name. A single statement
    /// sees a single snapshot on both PostgreSQL and SQLite, so the revision and the rest agree,
    /// and a cold load costs one round trip.
    pub async fn principal_facts(
        &self,
        organization_id: Uuid,
        principal_id: Uuid,
    ) -> Result<Option<PrincipalFacts>, StoreError> {
        let query = facts_query(organization_id, principal_id);
        let rows = self.db.query_all(&query).await?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let revision: i64 = first.try_get("", "revision")?;
        let status = first
            .try_get::<Option<String>>("", "member_status")?
            .map(|s| MemberStatus::from_stored(&s));
        let live_user = first.try_get::<Option<Uuid>>("", "live_user")?.is_some();
        let service_account = first
            .try_get::<Option<Uuid>>("", "service_account")?
            .is_some();
        let account_disabled = first
            .try_get::<Option<bool>>("", "account_disabled")?
            .unwrap_or(true);

        let mut bindings: Vec<BindingFact> = Vec::new();
        let mut teams: Vec<Uuid> = Vec::new();
        let mut roles: HashMap<Uuid, (Uuid, Role)> = HashMap::new();
        for row in &rows {
            if let Some(team) = row.try_get::<Option<Uuid>>("", "via_team")? {
                teams.push(team);
            }
            let Some(binding) = binding_of(row, organization_id)? else {
                continue;
            };
            let binding_id = binding.id;
            if bindings.last().is_none_or(|b| b.id != binding_id) {
                bindings.push(binding);
            }
            collect_custom_role(row, binding_id, &mut roles)?;
        }
        let mut custom_roles: Vec<Role> = roles.into_values().map(|(_, r)| r).collect();
        custom_roles.sort_by_key(|r| r.id);
        teams.sort_unstable();
        teams.dedup();
        Ok(Some(PrincipalFacts {
            organization_id,
            principal_id,
            revision,
            active: (status == Some(MemberStatus::Active) && live_user)
                || (service_account && !account_disabled),
            member: (status.is_some() && live_user) || service_account,
            bindings,
            teams,
            custom_roles,
            compiled: OnceLock::new(),
        }))
    }
}

/// `organizations ⋈ holders ⟕ memberships ⟕ users ⟕ service_accounts ⟕ role_bindings ⟕ roles (custom) ⟕
/// role_policies`, where `holders` is the principal itself and each team it belongs to in the
/// organization: one row per (holder, binding, policy of its custom role), a holder without
/// bindings giving one row too (so that every team is read). Ordered so that a binding's rows
/// are adjacent and a role's policies come in their order.
fn facts_query(organization_id: Uuid, principal_id: Uuid) -> sea_orm::sea_query::SelectStatement {
    use membership::Column as M;
    use organization::Column as O;
    use role::Column as R;
    use role_binding::Column as B;
    use role_policy::Column as P;
    use service_account::Column as S;
    use user::Column as U;
    let holders = holders_query(organization_id, principal_id);
    let sa = service_account::Entity;
    let (org, mem, usr, bnd, rol, pol) = (
        organization::Entity,
        membership::Entity,
        user::Entity,
        role_binding::Entity,
        role::Entity,
        role_policy::Entity,
    );
    Query::select()
        .from(org)
        .expr_as(Expr::col((org, O::Revision)), "revision")
        .expr_as(Expr::col((mem, M::Status)), "member_status")
        .expr_as(Expr::col((usr, U::Id)), "live_user")
        .expr_as(Expr::col((sa, S::Id)), "service_account")
        .expr_as(Expr::col((sa, S::Disabled)), "account_disabled")
        .expr_as(Expr::col((Holders::Table, Holders::ViaTeam)), "via_team")
        .expr_as(Expr::col((bnd, B::Id)), "binding_id")
        .expr_as(Expr::col((bnd, B::RoleId)), "binding_role")
        .expr_as(Expr::col((bnd, B::WorkspaceId)), "binding_workspace")
        .expr_as(Expr::col((bnd, B::ProjectId)), "binding_project")
        .expr_as(Expr::col((bnd, B::ExpiresAt)), "binding_expires")
        .expr_as(Expr::col((bnd, B::ResourceType)), "binding_resource_type")
        .expr_as(Expr::col((bnd, B::ResourceId)), "binding_resource_id")
        .expr_as(Expr::col((rol, R::Id)), "role_id")
        .expr_as(Expr::col((rol, R::OrganizationId)), "role_org")
        .expr_as(Expr::col((rol, R::Key)), "role_key")
        .expr_as(Expr::col((rol, R::Name)), "role_name")
        .expr_as(Expr::col((rol, R::Description)), "role_description")
        .expr_as(Expr::col((rol, R::CreatedAt)), "role_created")
        .expr_as(Expr::col((rol, R::UpdatedAt)), "role_updated")
        .expr_as(Expr::col((pol, P::Effect)), "policy_effect")
        .expr_as(Expr::col((pol, P::Permission)), "policy_permission")
        .left_join(
            mem,
            Condition::all()
                .add(Expr::col((mem, M::OrganizationId)).equals((org, O::Id)))
                .add(Expr::col((mem, M::UserId)).eq(principal_id)),
        )
        .left_join(
            usr,
            Condition::all()
                .add(Expr::col((usr, U::Id)).eq(principal_id))
                .add(Expr::col((usr, U::DeletedAt)).is_null()),
        )
        .left_join(
            sa,
            Condition::all()
                .add(Expr::col((sa, S::Id)).eq(principal_id))
                .add(Expr::col((sa, S::OrganizationId)).equals((org, O::Id))),
        )
        .join_subquery(
            JoinType::InnerJoin,
            holders,
            Holders::Table,
            Expr::col((Holders::Table, Holders::OrganizationId)).equals((org, O::Id)),
        )
        .left_join(
            bnd,
            Condition::all()
                .add(Expr::col((bnd, B::OrganizationId)).equals((org, O::Id)))
                .add(Expr::col((bnd, B::PrincipalId)).equals((Holders::Table, Holders::Holder))),
        )
        .left_join(
            rol,
            Condition::all()
                .add(Expr::col((rol, R::Id)).equals((bnd, B::RoleId)))
                .add(Expr::col((rol, R::Builtin)).eq(false)),
        )
        .left_join(pol, Expr::col((pol, P::RoleId)).equals((rol, R::Id)))
        .and_where(Expr::col((org, O::Id)).eq(organization_id))
        .order_by((bnd, B::Id), Order::Asc)
        .order_by((pol, P::Position), Order::Asc)
        .to_owned()
}

/// The derived table of whose bindings a principal holds.
#[derive(sea_orm::DeriveIden)]
enum Holders {
    #[sea_orm(iden = "holders")]
    Table,
    OrganizationId,
    /// The principal, or one of its teams.
    Holder,
    /// The team, on a team's row; null on the principal's own.
    ViaTeam,
}

/// `SELECT org, principal, NULL UNION ALL SELECT org, team, team FROM team_members …`
fn holders_query(organization_id: Uuid, principal_id: Uuid) -> sea_orm::sea_query::SelectStatement {
    use team_member::Column as T;
    let teams = Query::select()
        .from(team_member::Entity)
        .expr_as(Expr::col(T::OrganizationId), Holders::OrganizationId)
        .expr_as(Expr::col(T::TeamId), Holders::Holder)
        .expr_as(Expr::col(T::TeamId), Holders::ViaTeam)
        .and_where(Expr::col(T::OrganizationId).eq(organization_id))
        .and_where(Expr::col(T::PrincipalId).eq(principal_id))
        .to_owned();
    Query::select()
        .expr_as(Expr::val(organization_id), Holders::OrganizationId)
        .expr_as(Expr::val(principal_id), Holders::Holder)
        .expr_as(Expr::val(Option::<Uuid>::None), Holders::ViaTeam)
        .union(UnionType::All, teams)
        .to_owned()
}

fn binding_of(row: &QueryResult, organization_id: Uuid) -> Result<Option<BindingFact>, StoreError> {
    let Some(id) = row.try_get::<Option<Uuid>>("", "binding_id")? else {
        return Ok(None);
    };
    let role_id: Uuid = row.try_get("", "binding_role")?;
    let workspace: Option<Uuid> = row.try_get("", "binding_workspace")?;
    let project: Option<Uuid> = row.try_get("", "binding_project")?;
    let expires_at: Option<DateTime<Utc>> = row.try_get("", "binding_expires")?;
    let resource_type: Option<String> = row.try_get("", "binding_resource_type")?;
    let resource_id: Option<String> = row.try_get("", "binding_resource_id")?;
    Ok(Some(BindingFact {
        id,
        team: row.try_get("", "via_team")?,
        role_id,
        node_id: project.or(workspace).unwrap_or(organization_id),
        expires_at,
        resource: match (resource_type, resource_id) {
            (Some(resource_type), Some(id)) => {
                Some(crate::authz::BoundResource { resource_type, id })
            }
            _ => None,
        },
    }))
}

/// Adds the row's custom role and its policy (if the row has one) to `roles`, which maps each
/// role to the first binding that named it: a role bound twice repeats its policies under the
/// second binding, and those rows are skipped.
fn collect_custom_role(
    row: &QueryResult,
    binding_id: Uuid,
    roles: &mut HashMap<Uuid, (Uuid, Role)>,
) -> Result<(), StoreError> {
    let Some(id) = row.try_get::<Option<Uuid>>("", "role_id")? else {
        return Ok(());
    };
    let (first_binding, role) = match roles.entry(id) {
        Entry::Occupied(e) => e.into_mut(),
        Entry::Vacant(e) => e.insert((
            binding_id,
            Role {
                id,
                organization_id: row.try_get("", "role_org")?,
                key: row.try_get("", "role_key")?,
                name: row.try_get("", "role_name")?,
                description: row.try_get("", "role_description")?,
                builtin: false,
                policies: Vec::new(),
                // Where a role may be bound matters when granting, not when deciding.
                bindable_at: crate::authz::NodeKind::all(),
                created_at: row.try_get("", "role_created")?,
                updated_at: row.try_get("", "role_updated")?,
            },
        )),
    };
    if *first_binding != binding_id {
        return Ok(());
    }
    let effect: Option<String> = row.try_get("", "policy_effect")?;
    let permission: Option<String> = row.try_get("", "policy_permission")?;
    if let (Some(effect), Some(permission)) = (effect, permission)
        && let Some(effect) = Effect::parse(&effect)
    {
        role.policies.push(Policy { effect, permission });
    }
    Ok(())
}
