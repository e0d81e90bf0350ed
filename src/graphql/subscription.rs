//! The subscription root: permission changes as they commit, over GraphQL over WebSocket
//! (`http/` serves the protocol at `GET /graphql`).
//!
//! Each subscription reads an ordered [`feed::Feed`]: the change bus for what happens now,
//! the change log for what happened before `since` or slipped by, so nothing is lost or seen
//! twice. A subscription is authorized when it starts and again whenever a change could have
//! taken that authorization away. The connection ends it with UNAUTHENTICATED when the
//! caller's session expires or is revoked (`http/ws.rs`).

pub mod feed;

use async_graphql::futures_util::Stream;
use async_graphql::{Context, ID, Result, SimpleObject, Subscription as SubscriptionRoot};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::access::{ApiPermission, OrgView, authorize_any};
use super::check::{read_revision_token, revision_token};
use super::context::{ContextExt, parse_id};
use super::error::ApiError;
use crate::domain;
use crate::events::{ChangeEvent, Reach};
use crate::store::Store;
use feed::{Feed, Next};

/// Either of these at the organization lets one follow its changes.
const READERS: [ApiPermission; 2] = [ApiPermission::MEMBERS_READ, ApiPermission::ROLES_READ];

/// One committed change that can alter decisions in an organization.
#[derive(SimpleObject, Debug, Clone)]
pub struct PermissionChange {
    pub organization_id: ID,
    /// The organization revision the change committed at, as an opaque token: pass it as
    /// `since` to resume after this change, or as `atLeast` to a check.
    pub revision: String,
    /// What changed: `binding.granted`, `binding.revoked`, `role.created`, `role.updated`,
    /// `role.deleted`, `member.roles`, `membership.added`, `membership.status`,
    /// `membership.removed`, `sso.sync`, `workspace.deleted`, ...
    pub kind: String,
    /// The principal whose bindings or membership changed.
    pub principal_id: Option<ID>,
    /// The organization, workspace or project concerned.
    pub node_id: Option<ID>,
    /// The role concerned.
    pub role_id: Option<ID>,
    /// Who made the change.
    pub actor_id: Option<ID>,
    pub at: DateTime<Utc>,
}

impl From<ChangeEvent> for PermissionChange {
    fn from(e: ChangeEvent) -> Self {
        let id = |u: Uuid| ID(u.to_string());
        Self {
            organization_id: id(e.organization_id),
            revision: revision_token(e.organization_id, e.revision),
            kind: e.kind.as_str().to_owned(),
            principal_id: e.principal_id.map(id),
            node_id: e.node_id.map(id),
            role_id: e.role_id.map(id),
            actor_id: e.actor_id.map(id),
            at: e.at,
        }
    }
}

#[derive(Default)]
pub struct Subscription;

#[SubscriptionRoot]
impl Subscription {
    /// Every committed change of an organization that can alter a decision, in revision
    /// order. With `since` (a revision token of this organization: a `check`'s `revision`, or
    /// a change's), the changes after it are replayed from the change log first, then live
    /// ones follow, with no gap and no duplicate; without it, only changes from now on. Needs
    /// `members:*:read` or `roles:*:read` (organization); the stream ends with NOT_FOUND or
    /// FORBIDDEN at the change that takes that away.
    async fn permission_changes(
        &self,
        ctx: &Context<'_>,
        organization_id: ID,
        since: Option<String>,
    ) -> Result<impl Stream<Item = Result<PermissionChange>>> {
        let (user, _) = ctx.signed_in()?;
        let org_id = parse_id("organizationId", &organization_id)?;
        let services = ctx.services();
        // INVARIANT (see feed.rs): subscribed to the bus before anything is read. The feed
        // reads this organization's change log only after the check below passed.
        let mut feed = Feed::new(ctx.unchecked_store().clone(), services.bus.subscribe());
        let node = crate::graphql::access::lookups::org_node(ctx, org_id).await?;
        let granted = authorize_any(ctx, &node, &READERS, "organization").await?;
        let domain::Node::Organization(org) = &node else {
            return Err(ApiError::not_found("organization").into());
        };
        match since {
            Some(token) => {
                let bad = |why: &str| ApiError::bad_input("since", why.to_owned());
                let since = read_revision_token(&token, org_id)
                    .map_err(|_| bad("`since` is not a revision token of this organization"))?;
                if since > org.revision {
                    return Err(bad("`since` is newer than the organization's revision").into());
                }
                feed.replay(org_id, since);
            }
            None => feed.follow(org_id, org.revision),
        }
        let watch = Watch::new(
            ctx,
            feed,
            user.id,
            Scope::Organization {
                id: org_id,
                authorized_at: granted.view().facts.revision,
            },
        );
        Ok(watch.into_stream())
    }

    /// The changes that can alter the caller's own permissions, live, in every organization
    /// where they are an active member: changes of their own bindings and membership (joining
    /// an organization included), and every change of a role or of the tree there. That is a
    /// superset: a change of a role they do not hold, or of a node they have no binding under,
    /// comes too; a grant to someone else never does. Needs a session.
    async fn my_permission_changes(
        &self,
        ctx: &Context<'_>,
    ) -> Result<impl Stream<Item = Result<PermissionChange>>> {
        let (user, session) = ctx.signed_in()?;
        let services = ctx.services();
        // INVARIANT (see feed.rs): subscribed to the bus before anything is read. The feed
        // follows only organizations the caller is an active member of (below).
        let mut feed = Feed::new(ctx.unchecked_store().clone(), services.bus.subscribe());
        // INVARIANT: the caller's own account or memberships, of no organization.
        for org in ctx.unchecked_store().organizations_of(user.id).await? {
            // An SSO session hears only of its own organization.
            if !session.reaches(org.id) {
                continue;
            }
            feed.follow(org.id, org.revision);
        }
        let watch = Watch::new(ctx, feed, user.id, Scope::Mine);
        Ok(watch.into_stream())
    }
}

/// Whose changes a subscription passes on.
enum Scope {
    /// All of one organization's, for as long as the caller may read them.
    Organization {
        id: Uuid,
        /// The revision up to which the caller is known to hold [`READERS`].
        authorized_at: i64,
    },
    /// Those that can alter the caller's own permissions.
    Mine,
}

/// One live subscription: its feed, its caller, and what ends it.
struct Watch<'a, 'b> {
    ctx: &'a Context<'b>,
    feed: Feed<Store>,
    me: Uuid,
    scope: Scope,
    /// Changes of organizations the caller does not follow (yet) that were passed on: the
    /// bus may repeat them.
    others_seen: std::collections::HashMap<Uuid, i64>,
    /// The teams the caller is in (a change of a team's bindings reaches its members), read
    /// again whenever their team memberships change.
    teams: Option<std::collections::HashSet<Uuid>>,
}

impl<'a, 'b> Watch<'a, 'b> {
    fn new(ctx: &'a Context<'b>, feed: Feed<Store>, me: Uuid, scope: Scope) -> Self {
        Self {
            ctx,
            feed,
            me,
            scope,
            others_seen: std::collections::HashMap::new(),
            teams: None,
        }
    }

    /// Reads the caller's teams (in every organization).
    async fn read_teams(&mut self) -> Result<(), ApiError> {
        // INVARIANT: the caller's own team memberships.
        self.teams = Some(
            self.ctx
                .unchecked_store()
                .teams_of_user(self.me)
                .await?
                .into_iter()
                .collect(),
        );
        Ok(())
    }

    /// The changes, until the bus closes or an error ends the subscription (the error is the
    /// last item).
    fn into_stream(self) -> impl Stream<Item = Result<PermissionChange>> + use<'a, 'b> {
        async_graphql::futures_util::stream::unfold(Some(self), |state| async move {
            let mut watch = state?;
            match watch.next().await {
                Ok(Some(e)) => Some((Ok(PermissionChange::from(e)), Some(watch))),
                Ok(None) => None,
                Err(e) => Some((Err(e.into()), None)),
            }
        })
    }

    async fn next(&mut self) -> Result<Option<ChangeEvent>, ApiError> {
        loop {
            let next = self.feed.next().await?;
            if matches!(self.scope, Scope::Mine) && self.feed.take_lagged() {
                self.follow_my_organizations().await?;
            }
            let Some(next) = next else {
                return Ok(None);
            };
            if let Some(e) = self.consider(next).await? {
                return Ok(Some(e));
            }
        }
    }

    /// Whether to pass `next` on; re-authorizes or follows memberships on the way.
    async fn consider(&mut self, next: Next) -> Result<Option<ChangeEvent>, ApiError> {
        let me = self.me;
        // Reached through a team the caller was in before the change, or is in after it.
        let (Next::Followed(e) | Next::Other(e)) = &next;
        let mut reached = reaches(e, me, self.teams.as_ref());
        if self.teams.is_none() || is_my_team_change(e, me) {
            self.read_teams().await?;
            reached = reached || reaches(e, me, self.teams.as_ref());
        }
        match (&mut self.scope, next) {
            (Scope::Organization { id, authorized_at }, Next::Followed(e)) => {
                if reached && e.revision > *authorized_at {
                    *authorized_at = still_reader(self.ctx, *id, me, e.revision).await?;
                }
                Ok(Some(e))
            }
            (Scope::Organization { .. }, Next::Other(_)) => Ok(None),
            (Scope::Mine, Next::Followed(e)) => {
                if is_my_membership(&e, me) {
                    self.follow_membership(e.organization_id, e.revision)
                        .await?;
                }
                Ok(reached.then_some(e))
            }
            (Scope::Mine, Next::Other(e)) => {
                if !is_my_membership(&e, me) {
                    return Ok(None);
                }
                let seen = self.others_seen.entry(e.organization_id).or_insert(0);
                if e.revision <= *seen {
                    return Ok(None);
                }
                *seen = e.revision;
                self.follow_membership(e.organization_id, e.revision)
                    .await?;
                Ok(Some(e))
            }
        }
    }

    /// Follows an organization's changes after `revision` while the caller is an active
    /// member there, and stops when they no longer are.
    async fn follow_membership(&mut self, org: Uuid, revision: i64) -> Result<(), ApiError> {
        // INVARIANT: the caller's own account or memberships, of no organization.
        let membership = self.ctx.unchecked_store().membership(org, self.me).await?;
        if self.reaches(org) && membership.is_some_and(|m| m.status == domain::MemberStatus::Active)
        {
            self.feed.follow(org, revision);
        } else {
            self.feed.unfollow(org);
            let seen = self.others_seen.entry(org).or_insert(revision);
            *seen = (*seen).max(revision);
        }
        Ok(())
    }

    /// After the bus dropped changes: follows, from now on, the organizations the caller
    /// joined meanwhile (the followed ones are read back from the change log; a membership
    /// change in an organization not followed yet is the one thing that cannot be).
    async fn follow_my_organizations(&mut self) -> Result<(), ApiError> {
        // INVARIANT: the caller's own account or memberships, of no organization.
        for org in self.ctx.unchecked_store().organizations_of(self.me).await? {
            if self.reaches(org.id) && !self.feed.follows(org.id) {
                self.feed.follow(org.id, org.revision);
            }
        }
        Ok(())
    }

    /// Whether the caller's session acts in `org` (an SSO session only in its own).
    fn reaches(&self, org: Uuid) -> bool {
        self.ctx
            .signed_in()
            .is_ok_and(|(_, session)| session.reaches(org))
    }
}

/// Whether `e` can alter `me`'s permissions, who is in `teams` (a change of any role counts:
/// a superset).
fn reaches(e: &ChangeEvent, me: Uuid, teams: Option<&std::collections::HashSet<Uuid>>) -> bool {
    match e.reach() {
        Reach::Principal(p) => p == me || teams.is_some_and(|t| t.contains(&p)),
        Reach::Role(_) | Reach::Organization => true,
        Reach::Nothing => false,
    }
}

/// Whether `e` changes which teams `me` is in (joining or leaving one, a team deleted, or an
/// SSO sign-in, which may do either).
fn is_my_team_change(e: &ChangeEvent, me: Uuid) -> bool {
    use crate::events::ChangeKind;
    match e.kind {
        ChangeKind::TeamMembers | ChangeKind::SsoSync | ChangeKind::MembershipRemoved => {
            e.principal_id == Some(me)
        }
        ChangeKind::TeamDeleted => true,
        _ => false,
    }
}

fn is_my_membership(e: &ChangeEvent, me: Uuid) -> bool {
    e.kind.is_membership() && e.principal_id == Some(me)
}

/// Checks, on facts at least as new as `revision`, that `me` still holds [`READERS`] at the
/// organization; returns the revision that was decided at.
async fn still_reader(
    ctx: &Context<'_>,
    org: Uuid,
    me: Uuid,
    revision: i64,
) -> Result<i64, ApiError> {
    let view = OrgView::load_at_least(ctx, org, me, revision, "organization").await?;
    if !view.active() {
        return Err(ApiError::not_found("organization"));
    }
    for p in READERS {
        if view.allows(&[org], p)? {
            return Ok(view.facts.revision);
        }
    }
    Err(ApiError::forbidden(format!(
        "you need `{}` or `{}` here to do this",
        READERS[0], READERS[1]
    )))
}
