//! Epochs: per organization, principal and role, the revision of the last change that could
//! alter their decisions, as this instance has heard of it.
//!
//! INVARIANT: facts read at revision R are valid for principal P in organization O iff
//! R >= the epoch of O, of (O, P) and of every custom role the facts name. Epochs only grow,
//! so invalidation is a bump, never a scan of cached keys, and it is fine-grained: a change of
//! one principal's bindings leaves everybody else's cached facts valid.

use std::collections::{BTreeSet, HashMap};
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};

use uuid::Uuid;

use crate::domain::change::{ChangeEvent, Reach};

#[derive(Default)]
struct Maps {
    /// Organization-wide epoch (a node deleted: anyone's bindings may be gone).
    orgs: HashMap<Uuid, i64>,
    principals: HashMap<(Uuid, Uuid), i64>,
    roles: HashMap<Uuid, i64>,
    /// Per organization, how far this instance has applied its changes without a hole.
    cursors: HashMap<Uuid, Cursor>,
    /// Per user, when this instance last heard that one of their sessions was revoked.
    sessions_revoked: HashMap<Uuid, std::time::Instant>,
    /// When every cached session became suspect (a Redis reconnect: revocations may be lost).
    sessions_reset: Option<std::time::Instant>,
    /// Per organization, when this instance last heard of a change of its tree (a node gone).
    trees_changed: HashMap<Uuid, std::time::Instant>,
}

/// INVARIANT: every change of the organization with a revision <= `contiguous` has been
/// applied (or was already reflected in everything cached when the cursor started). Replays
/// start there. Loading facts never moves it: facts read from the store reflect changes this
/// instance may not have applied to its epochs, and the entries cached before them still need
/// those changes applied.
#[derive(Default)]
struct Cursor {
    contiguous: i64,
    /// Revisions applied beyond a hole, waiting for the hole to fill.
    ahead: BTreeSet<i64>,
}

impl Cursor {
    fn applied(&mut self, revision: i64) {
        if revision <= self.contiguous {
            return;
        }
        self.ahead.insert(revision);
        while self.ahead.remove(&(self.contiguous + 1)) {
            self.contiguous += 1;
        }
    }
}

/// The epochs of one instance.
pub struct Epochs {
    maps: RwLock<Maps>,
    /// False while the instance may have missed events (Redis pub/sub down): caches are then
    /// bypassed and every answer comes from the store.
    trusted: AtomicBool,
}

impl Default for Epochs {
    fn default() -> Self {
        Self::new()
    }
}

impl Epochs {
    pub fn new() -> Self {
        Self {
            maps: RwLock::new(Maps::default()),
            trusted: AtomicBool::new(true),
        }
    }

    /// Records a change.
    pub fn apply(&self, e: &ChangeEvent) {
        let Ok(mut m) = self.maps.write() else {
            // A poisoned lock means a panic elsewhere; stop trusting caches rather than guess.
            self.trusted.store(false, Ordering::SeqCst);
            return;
        };
        let bump = |slot: &mut i64| *slot = (*slot).max(e.revision);
        match m.cursors.get_mut(&e.organization_id) {
            Some(cursor) => cursor.applied(e.revision),
            // The organization was unknown: start counting here, and distrust anything read
            // before this change (what happened earlier was never heard of).
            None => {
                m.cursors.insert(
                    e.organization_id,
                    Cursor {
                        contiguous: e.revision,
                        ahead: BTreeSet::new(),
                    },
                );
                bump(m.orgs.entry(e.organization_id).or_insert(0));
            }
        }
        match e.reach() {
            Reach::Principal(p) => bump(m.principals.entry((e.organization_id, p)).or_insert(0)),
            Reach::Role(r) => bump(m.roles.entry(r).or_insert(0)),
            Reach::Organization => {
                bump(m.orgs.entry(e.organization_id).or_insert(0));
                m.trees_changed
                    .insert(e.organization_id, std::time::Instant::now());
            }
            Reach::Nothing => {}
        }
    }

    /// The revision facts of `principal` in `organization` (a member of `teams`, naming custom
    /// `roles`) must have been read at, at least, to be valid now; `None` while this instance
    /// does not know the organization's committed revision (nothing cached of it may be
    /// trusted then). A team is a principal: a change of its bindings bumps its epoch, which
    /// every member's facts then need.
    pub fn required(
        &self,
        organization: Uuid,
        principal: Uuid,
        teams: &[Uuid],
        roles: &[Uuid],
    ) -> Option<i64> {
        let m = self.maps.read().ok()?;
        if !m.cursors.contains_key(&organization) {
            return None;
        }
        let mut need = m.orgs.get(&organization).copied().unwrap_or(0);
        need = need.max(
            m.principals
                .get(&(organization, principal))
                .copied()
                .unwrap_or(0),
        );
        for t in teams {
            need = need.max(m.principals.get(&(organization, *t)).copied().unwrap_or(0));
        }
        for r in roles {
            need = need.max(m.roles.get(r).copied().unwrap_or(0));
        }
        Some(need)
    }

    /// Notes that `revision` was committed in `organization` (facts read from the store at
    /// that revision). When the instance did not know the organization yet, counting starts
    /// there and everything cached of it read before `revision` is distrusted: changes before
    /// it were never heard of.
    ///
    /// INVARIANT: an organization without a cursor has no trusted entry; its first cursor
    /// comes with an organization epoch at least as new.
    pub fn saw(&self, organization: Uuid, revision: i64) {
        if let Ok(mut m) = self.maps.write()
            && !m.cursors.contains_key(&organization)
        {
            m.cursors.insert(
                organization,
                Cursor {
                    contiguous: revision,
                    ahead: BTreeSet::new(),
                },
            );
            let slot = m.orgs.entry(organization).or_insert(0);
            *slot = (*slot).max(revision);
        }
    }

    /// Whether this instance knows the committed revision of `organization` (and so may trust
    /// cached entries of it that are new enough).
    pub fn knows(&self, organization: Uuid) -> bool {
        self.maps
            .read()
            .is_ok_and(|m| m.cursors.contains_key(&organization))
    }

    /// The organizations this instance caches, each with the revision up to which it has
    /// applied every change (where a replay must start).
    pub fn seen(&self) -> Vec<(Uuid, i64)> {
        self.maps
            .read()
            .map(|m| m.cursors.iter().map(|(k, c)| (*k, c.contiguous)).collect())
            .unwrap_or_default()
    }

    /// Where a replay of `organization` must start, if the instance caches anything of it.
    pub fn heard(&self, organization: Uuid) -> Option<i64> {
        self.maps
            .read()
            .ok()?
            .cursors
            .get(&organization)
            .map(|c| c.contiguous)
    }

    /// The newest revision of `organization` this instance has applied or read, if any: after
    /// a change this instance made, at least that change's revision (it is applied before the
    /// mutation returns).
    pub fn latest(&self, organization: Uuid) -> Option<i64> {
        let m = self.maps.read().ok()?;
        let c = m.cursors.get(&organization)?;
        Some(c.ahead.last().copied().unwrap_or(0).max(c.contiguous))
    }

    /// Invalidates everything cached of `organization` read before `revision`.
    pub fn bump_organization(&self, organization: Uuid, revision: i64) {
        if let Ok(mut m) = self.maps.write() {
            let slot = m.orgs.entry(organization).or_insert(0);
            *slot = (*slot).max(revision);
        }
    }

    /// Records that a session of `user` was revoked (here or on another instance).
    pub fn session_revoked(&self, user: Uuid) {
        if let Ok(mut m) = self.maps.write() {
            m.sessions_revoked.insert(user, std::time::Instant::now());
        }
    }

    /// Makes every cached session suspect (they are read again from the store).
    pub fn reset_sessions(&self) {
        if let Ok(mut m) = self.maps.write() {
            m.sessions_reset = Some(std::time::Instant::now());
            m.sessions_revoked.clear();
        }
    }

    /// Whether a session of `user` loaded from the store at `loaded` may still be used.
    ///
    /// INVARIANT: a revocation event is published after its commit, so a load that started
    /// after this instance heard of it reads the revoked state.
    pub fn session_valid(&self, user: Uuid, loaded: std::time::Instant) -> bool {
        let Ok(m) = self.maps.read() else {
            return false;
        };
        m.sessions_reset.is_none_or(|r| loaded > r)
            && m.sessions_revoked.get(&user).is_none_or(|r| loaded > *r)
    }

    /// Whether a node path of `organization` loaded at `loaded` may still be used (no node of
    /// the organization was deleted since, as far as this instance has heard).
    pub fn tree_valid(&self, organization: Uuid, loaded: std::time::Instant) -> bool {
        let Ok(m) = self.maps.read() else {
            return false;
        };
        self.trusted()
            && m.trees_changed
                .get(&organization)
                .is_none_or(|t| loaded > *t)
    }

    pub fn trusted(&self) -> bool {
        self.trusted.load(Ordering::SeqCst)
    }

    pub fn set_trusted(&self, trusted: bool) {
        self.trusted.store(trusted, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(org: Uuid, revision: i64, principal: Uuid) -> ChangeEvent {
        ChangeEvent {
            organization_id: org,
            revision,
            kind: crate::domain::change::ChangeKind::BindingRevoked,
            principal_id: Some(principal),
            node_id: None,
            role_id: None,
            actor_id: None,
            at: chrono::Utc::now(),
        }
    }

    #[test]
    fn loads_never_move_the_replay_cursor_past_unapplied_changes() {
        let (org, p) = (Uuid::new_v4(), Uuid::new_v4());
        let e = Epochs::new();
        e.saw(org, 5);
        // Facts read later at revision 9 (changes 6..9 not heard of) do not move the cursor.
        e.saw(org, 9);
        assert_eq!(e.heard(org), Some(5));
        e.apply(&event(org, 7, p));
        assert_eq!(e.heard(org), Some(5), "a hole at 6 keeps the cursor");
        e.apply(&event(org, 6, p));
        assert_eq!(e.heard(org), Some(7), "the hole filled");
        assert_eq!(e.required(org, p, &[], &[]), Some(7));
        assert_eq!(
            e.required(Uuid::new_v4(), p, &[], &[]),
            None,
            "an organization never seen is not trusted"
        );
        assert_eq!(
            e.required(org, Uuid::new_v4(), &[], &[]),
            Some(5),
            "other principals only distrust what was read before the organization was known"
        );
    }

    #[test]
    fn an_unknown_organization_is_trusted_only_from_its_first_known_revision() {
        let (org, p) = (Uuid::new_v4(), Uuid::new_v4());
        let e = Epochs::new();
        assert_eq!(e.required(org, p, &[], &[]), None);
        e.apply(&event(org, 12, Uuid::new_v4()));
        assert_eq!(
            e.required(org, p, &[], &[]),
            Some(12),
            "entries read before the first change heard of are distrusted"
        );
        let other = Uuid::new_v4();
        e.saw(other, 30);
        assert_eq!(e.required(other, p, &[], &[]), Some(30));
        e.saw(other, 40);
        assert_eq!(
            e.required(other, p, &[], &[]),
            Some(30),
            "known: loads do not bump"
        );
    }
}
