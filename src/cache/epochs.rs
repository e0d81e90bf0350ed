//! Epochs: per organization, principal and role, the revision of the last change that could
//! alter their decisions, as this instance has heard of it.
//!
//! INVARIANT: facts read at revision R are valid for principal P in organization O iff
//! R >= the epoch of O, of (O, P) and of every custom role the facts name. Epochs only grow,
//! so invalidation is a bump, never a scan of cached keys, and it is fine-grained: a change of
//! one principal's bindings leaves everybody else's cached facts valid.

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};

use uuid::Uuid;

use crate::events::{ChangeEvent, Reach};

#[derive(Default)]
struct Maps {
    /// Organization-wide epoch (a node deleted: anyone's bindings may be gone).
    orgs: HashMap<Uuid, i64>,
    principals: HashMap<(Uuid, Uuid), i64>,
    roles: HashMap<Uuid, i64>,
    /// The newest revision heard of per organization, for resynchronisation.
    seen: HashMap<Uuid, i64>,
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
        bump(m.seen.entry(e.organization_id).or_insert(0));
        match e.reach() {
            Reach::Principal(p) => bump(m.principals.entry((e.organization_id, p)).or_insert(0)),
            Reach::Role(r) => bump(m.roles.entry(r).or_insert(0)),
            Reach::Organization => bump(m.orgs.entry(e.organization_id).or_insert(0)),
            Reach::Nothing => {}
        }
    }

    /// The revision facts of `principal` in `organization` (naming `roles`) must have been read
    /// at, at least, to be valid now.
    pub fn required(&self, organization: Uuid, principal: Uuid, roles: &[Uuid]) -> Option<i64> {
        let m = self.maps.read().ok()?;
        let mut need = m.orgs.get(&organization).copied().unwrap_or(0);
        need = need.max(
            m.principals
                .get(&(organization, principal))
                .copied()
                .unwrap_or(0),
        );
        for r in roles {
            need = need.max(m.roles.get(r).copied().unwrap_or(0));
        }
        Some(need)
    }

    /// Notes that facts of `organization` were read at `revision` (its newest known revision).
    pub fn saw(&self, organization: Uuid, revision: i64) {
        if let Ok(mut m) = self.maps.write() {
            let slot = m.seen.entry(organization).or_insert(0);
            *slot = (*slot).max(revision);
        }
    }

    /// The organizations this instance knows, with the newest revision it heard of.
    pub fn seen(&self) -> Vec<(Uuid, i64)> {
        self.maps
            .read()
            .map(|m| m.seen.iter().map(|(k, v)| (*k, *v)).collect())
            .unwrap_or_default()
    }

    /// Invalidates everything cached of `organization` read before `revision`.
    pub fn bump_organization(&self, organization: Uuid, revision: i64) {
        if let Ok(mut m) = self.maps.write() {
            let slot = m.orgs.entry(organization).or_insert(0);
            *slot = (*slot).max(revision);
        }
    }

    pub fn trusted(&self) -> bool {
        self.trusted.load(Ordering::SeqCst)
    }

    pub fn set_trusted(&self, trusted: bool) {
        self.trusted.store(trusted, Ordering::SeqCst);
    }
}
