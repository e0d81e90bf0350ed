//! The vocabulary of changes: what a committed change did, and whose decisions it can alter.
//! The store writes these, the events carry them between instances, the caches apply them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What a committed change did. Stored and sent by its name (`binding.granted`, ...); a name
/// this build does not know is an error where it is read, never a guess.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ChangeKind {
    #[serde(rename = "organization.created")]
    OrganizationCreated,
    #[serde(rename = "workspace.created")]
    WorkspaceCreated,
    #[serde(rename = "workspace.deleted")]
    WorkspaceDeleted,
    #[serde(rename = "project.created")]
    ProjectCreated,
    #[serde(rename = "project.deleted")]
    ProjectDeleted,
    #[serde(rename = "binding.granted")]
    BindingGranted,
    #[serde(rename = "binding.revoked")]
    BindingRevoked,
    /// A member's roles were replaced (`setMemberRoles`).
    #[serde(rename = "member.roles")]
    MemberRoles,
    #[serde(rename = "membership.added")]
    MembershipAdded,
    #[serde(rename = "membership.status")]
    MembershipStatus,
    #[serde(rename = "membership.removed")]
    MembershipRemoved,
    /// An SSO sign-in synchronised a member's membership and group bindings.
    #[serde(rename = "sso.sync")]
    SsoSync,
    #[serde(rename = "role.created")]
    RoleCreated,
    #[serde(rename = "role.updated")]
    RoleUpdated,
    #[serde(rename = "role.deleted")]
    RoleDeleted,
    #[serde(rename = "team.created")]
    TeamCreated,
    /// A team's name or description changed.
    #[serde(rename = "team.updated")]
    TeamUpdated,
    /// A team and its bindings are gone (`principal_id` names the team).
    #[serde(rename = "team.deleted")]
    TeamDeleted,
    /// A principal joined or left a team (`principal_id` names the member).
    #[serde(rename = "team.members")]
    TeamMembers,
    #[serde(rename = "service_account.created")]
    ServiceAccountCreated,
    /// Renamed, enabled or disabled (`principal_id` names the account).
    #[serde(rename = "service_account.updated")]
    ServiceAccountUpdated,
    /// The account, its keys, team memberships and bindings are gone.
    #[serde(rename = "service_account.deleted")]
    ServiceAccountDeleted,
    #[serde(rename = "api_key.created")]
    ApiKeyCreated,
    /// `principal_id` names the key.
    #[serde(rename = "api_key.revoked")]
    ApiKeyRevoked,
    /// The key was replaced, or its overlap with its replacement ended (`principal_id`
    /// names the replaced key).
    #[serde(rename = "api_key.rotated")]
    ApiKeyRotated,
}

impl ChangeKind {
    pub const ALL: [Self; 25] = [
        Self::OrganizationCreated,
        Self::WorkspaceCreated,
        Self::WorkspaceDeleted,
        Self::ProjectCreated,
        Self::ProjectDeleted,
        Self::BindingGranted,
        Self::BindingRevoked,
        Self::MemberRoles,
        Self::MembershipAdded,
        Self::MembershipStatus,
        Self::MembershipRemoved,
        Self::SsoSync,
        Self::RoleCreated,
        Self::RoleUpdated,
        Self::RoleDeleted,
        Self::TeamCreated,
        Self::TeamUpdated,
        Self::TeamDeleted,
        Self::TeamMembers,
        Self::ServiceAccountCreated,
        Self::ServiceAccountUpdated,
        Self::ServiceAccountDeleted,
        Self::ApiKeyCreated,
        Self::ApiKeyRevoked,
        Self::ApiKeyRotated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::OrganizationCreated => "organization.created",
            Self::WorkspaceCreated => "workspace.created",
            Self::WorkspaceDeleted => "workspace.deleted",
            Self::ProjectCreated => "project.created",
            Self::ProjectDeleted => "project.deleted",
            Self::BindingGranted => "binding.granted",
            Self::BindingRevoked => "binding.revoked",
            Self::MemberRoles => "member.roles",
            Self::MembershipAdded => "membership.added",
            Self::MembershipStatus => "membership.status",
            Self::MembershipRemoved => "membership.removed",
            Self::SsoSync => "sso.sync",
            Self::RoleCreated => "role.created",
            Self::RoleUpdated => "role.updated",
            Self::RoleDeleted => "role.deleted",
            Self::TeamCreated => "team.created",
            Self::TeamUpdated => "team.updated",
            Self::TeamDeleted => "team.deleted",
            Self::TeamMembers => "team.members",
            Self::ServiceAccountCreated => "service_account.created",
            Self::ServiceAccountUpdated => "service_account.updated",
            Self::ServiceAccountDeleted => "service_account.deleted",
            Self::ApiKeyCreated => "api_key.created",
            Self::ApiKeyRevoked => "api_key.revoked",
            Self::ApiKeyRotated => "api_key.rotated",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// Whether the change can make or end the principal's membership.
    pub fn is_membership(self) -> bool {
        matches!(
            self,
            Self::MembershipAdded
                | Self::MembershipStatus
                | Self::MembershipRemoved
                | Self::SsoSync
        )
    }
}

/// One committed change of an organization, at the revision it committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeEvent {
    pub organization_id: Uuid,
    pub revision: i64,
    pub kind: ChangeKind,
    pub principal_id: Option<Uuid>,
    pub node_id: Option<Uuid>,
    pub role_id: Option<Uuid>,
    pub actor_id: Option<Uuid>,
    pub at: DateTime<Utc>,
}

/// Whose decisions a change can alter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// One principal's (their bindings or membership changed). A team is a principal: its
    /// members' facts name it, so a change of the team's bindings reaches them all.
    Principal(Uuid),
    /// The holders of one role (its policies changed, or it is gone).
    Role(Uuid),
    /// Anyone's in the organization (a node and the bindings on it are gone).
    Organization,
    /// No decision (a new node, a new unbound role).
    Nothing,
}

impl ChangeEvent {
    /// The narrowest set of decisions the change can alter. Exhaustive on the kind: a new kind
    /// must say its reach here. An event that lacks the id its kind names (never written so)
    /// reaches the whole organization rather than nobody.
    pub fn reach(&self) -> Reach {
        let principal = || {
            self.principal_id
                .map_or(Reach::Organization, Reach::Principal)
        };
        match self.kind {
            // New nodes and unbound roles alter no decision: nothing was bound on them yet.
            // Nor do a new team (no members, no bindings) and a team's new name.
            ChangeKind::WorkspaceCreated
            | ChangeKind::ProjectCreated
            | ChangeKind::RoleCreated
            | ChangeKind::TeamCreated
            | ChangeKind::TeamUpdated => Reach::Nothing,
            // A new account holds nothing yet; a new key's secret was never cached.
            ChangeKind::ServiceAccountCreated | ChangeKind::ApiKeyCreated => Reach::Nothing,
            // The account as a principal, or the key (cached keys are checked against the
            // epoch of their own id).
            ChangeKind::ServiceAccountUpdated
            | ChangeKind::ServiceAccountDeleted
            | ChangeKind::ApiKeyRevoked
            | ChangeKind::ApiKeyRotated => principal(),
            // The creator's Admin binding is the only binding of a new organization.
            ChangeKind::OrganizationCreated => principal(),
            ChangeKind::BindingGranted
            | ChangeKind::BindingRevoked
            | ChangeKind::MemberRoles
            | ChangeKind::MembershipAdded
            | ChangeKind::MembershipStatus
            | ChangeKind::MembershipRemoved
            | ChangeKind::SsoSync
            | ChangeKind::TeamDeleted
            | ChangeKind::TeamMembers => principal(),
            ChangeKind::RoleUpdated | ChangeKind::RoleDeleted => {
                self.role_id.map_or(Reach::Organization, Reach::Role)
            }
            // A node and every binding on it and below are gone.
            ChangeKind::WorkspaceDeleted | ChangeKind::ProjectDeleted => Reach::Organization,
        }
    }
}
