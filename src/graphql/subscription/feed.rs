//! The ordered change feed under each subscription: the bus for what happens now, the change
//! log for what happened before or slipped by.
//!
//! A feed follows some organizations, each from a cursor (the last revision passed on). It
//! passes on every change of a followed organization exactly once, in revision order, even
//! when the bus delivers events out of order (two commits published in the other order), twice
//! (a replay after a Redis reconnection), not at all (dropped on the way between instances), or
//! faster than the subscriber reads (`RecvError::Lagged`): whatever the bus misses is read back
//! from the change log, which holds every committed change.
//!
//! INVARIANT: the feed subscribes to the bus before it reads the log or any revision, so that
//! anything committed later is either on the bus or read from the log; it never passes on a
//! revision at or below an organization's cursor.

use std::collections::{HashMap, VecDeque};
use std::future::Future;

use tokio::sync::broadcast::{self, error::RecvError};
use uuid::Uuid;

use crate::events::ChangeEvent;
use crate::store::{Store, StoreError};

/// How many change-log rows one read returns.
pub const PAGE: u64 = 500;

/// Where missed changes are read back from: the store's change log (a fake in unit tests).
pub trait ChangeLog {
    /// The changes of `organization_id` after revision `since`, oldest first, at most `limit`.
    fn changes_since(
        &self,
        organization_id: Uuid,
        since: i64,
        limit: u64,
    ) -> impl Future<Output = Result<Vec<ChangeEvent>, StoreError>> + Send;
}

impl ChangeLog for Store {
    fn changes_since(
        &self,
        organization_id: Uuid,
        since: i64,
        limit: u64,
    ) -> impl Future<Output = Result<Vec<ChangeEvent>, StoreError>> + Send {
        Store::changes_since(self, organization_id, since, limit)
    }
}

/// What the feed passes on.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// A change of a followed organization: in order, once.
    Followed(ChangeEvent),
    /// A live change of another organization, as the bus delivered it (no order, no replay).
    Other(ChangeEvent),
}

pub struct Feed<L> {
    log: L,
    rx: broadcast::Receiver<ChangeEvent>,
    page: u64,
    /// Per followed organization: the last revision passed on.
    cursors: HashMap<Uuid, i64>,
    /// Organizations whose log must be read from their cursor before going on with the bus.
    catch_up: VecDeque<Uuid>,
    /// Changes read from the log, to pass on first.
    pending: VecDeque<ChangeEvent>,
    /// Live changes that came after a gap: passed on after the catch-up, unless the log had them.
    deferred: VecDeque<ChangeEvent>,
    /// Whether the bus dropped changes for this feed since [`Feed::take_lagged`] last asked:
    /// those of followed organizations are read back, others are gone.
    lagged: bool,
}

impl<L: ChangeLog> Feed<L> {
    /// A feed over `rx`, which must have been subscribed before anything else was read.
    pub fn new(log: L, rx: broadcast::Receiver<ChangeEvent>) -> Self {
        Self::with_page(log, rx, PAGE)
    }

    pub fn with_page(log: L, rx: broadcast::Receiver<ChangeEvent>, page: u64) -> Self {
        Self {
            log,
            rx,
            page: page.max(1),
            cursors: HashMap::new(),
            catch_up: VecDeque::new(),
            pending: VecDeque::new(),
            deferred: VecDeque::new(),
            lagged: false,
        }
    }

    /// Follows `organization_id` from the change after `revision` (kept if already further).
    pub fn follow(&mut self, organization_id: Uuid, revision: i64) {
        let cursor = self.cursors.entry(organization_id).or_insert(revision);
        *cursor = (*cursor).max(revision);
    }

    /// Follows `organization_id` and first replays its change log after `revision`.
    pub fn replay(&mut self, organization_id: Uuid, revision: i64) {
        self.follow(organization_id, revision);
        self.schedule(organization_id);
    }

    /// Stops following `organization_id`.
    pub fn unfollow(&mut self, organization_id: Uuid) {
        self.cursors.remove(&organization_id);
        self.catch_up.retain(|o| *o != organization_id);
    }

    pub fn follows(&self, organization_id: Uuid) -> bool {
        self.cursors.contains_key(&organization_id)
    }

    /// Whether the bus dropped changes since the last call (see `lagged`).
    pub fn take_lagged(&mut self) -> bool {
        std::mem::take(&mut self.lagged)
    }

    /// The next change; `None` when the bus is gone (the server is stopping).
    ///
    /// Cancel-safe: state changes only after each await completes, so a caller may race this
    /// against a timer and call again.
    pub async fn next(&mut self) -> Result<Option<Next>, StoreError> {
        loop {
            if let Some(e) = self.pending.pop_front() {
                if self.advance(&e) {
                    return Ok(Some(Next::Followed(e)));
                }
                continue;
            }
            if let Some(&org) = self.catch_up.front() {
                let Some(&after) = self.cursors.get(&org) else {
                    self.catch_up.pop_front();
                    continue;
                };
                let page = self.log.changes_since(org, after, self.page).await?;
                if (page.len() as u64) < self.page {
                    self.catch_up.pop_front();
                }
                // A full page leaves the organization first in line: once `pending` has moved
                // its cursor on, the next read starts after it.
                self.pending.extend(page);
                continue;
            }
            if let Some(e) = self.deferred.pop_front() {
                if self.advance(&e) {
                    return Ok(Some(Next::Followed(e)));
                }
                continue;
            }
            match self.rx.recv().await {
                Ok(e) => match self.cursors.get(&e.organization_id).copied() {
                    None => return Ok(Some(Next::Other(e))),
                    Some(cursor) if e.revision <= cursor => {}
                    Some(cursor) if e.revision == cursor + 1 => {
                        self.advance(&e);
                        return Ok(Some(Next::Followed(e)));
                    }
                    Some(_) => {
                        // Something before it is not here (yet): the log has it.
                        self.schedule(e.organization_id);
                        self.deferred.push_back(e);
                    }
                },
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(
                        missed,
                        "subscription fell behind the change bus; reading the change log"
                    );
                    self.lagged = true;
                    let orgs: Vec<Uuid> = self.cursors.keys().copied().collect();
                    for org in orgs {
                        self.schedule(org);
                    }
                }
                Err(RecvError::Closed) => return Ok(None),
            }
        }
    }

    fn schedule(&mut self, organization_id: Uuid) {
        if !self.catch_up.contains(&organization_id) {
            self.catch_up.push_back(organization_id);
        }
    }

    /// Moves the cursor past `e`; false when `e` is not news (or its organization not followed).
    fn advance(&mut self, e: &ChangeEvent) -> bool {
        match self.cursors.get_mut(&e.organization_id) {
            Some(cursor) if e.revision > *cursor => {
                *cursor = e.revision;
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use chrono::Utc;

    use super::*;

    /// A change log in memory.
    #[derive(Clone, Default)]
    struct Log(Arc<Mutex<Vec<ChangeEvent>>>);

    impl Log {
        fn commit(&self, e: &ChangeEvent) {
            self.0.lock().unwrap().push(e.clone());
        }
    }

    impl ChangeLog for Log {
        fn changes_since(
            &self,
            organization_id: Uuid,
            since: i64,
            limit: u64,
        ) -> impl Future<Output = Result<Vec<ChangeEvent>, StoreError>> + Send {
            let mut rows: Vec<ChangeEvent> = self
                .0
                .lock()
                .unwrap()
                .iter()
                .filter(|e| e.organization_id == organization_id && e.revision > since)
                .cloned()
                .collect();
            rows.sort_by_key(|e| e.revision);
            rows.truncate(limit as usize);
            async move { Ok(rows) }
        }
    }

    fn event(org: Uuid, revision: i64) -> ChangeEvent {
        ChangeEvent {
            organization_id: org,
            revision,
            kind: crate::events::ChangeKind::BindingGranted,
            principal_id: Some(Uuid::nil()),
            node_id: Some(org),
            role_id: None,
            actor_id: None,
            at: Utc::now(),
        }
    }

    /// The revisions of the next `n` followed changes.
    async fn take(feed: &mut Feed<Log>, n: usize) -> Vec<i64> {
        let mut out = Vec::new();
        while out.len() < n {
            let next = tokio::time::timeout(Duration::from_secs(5), feed.next())
                .await
                .expect("the feed answers")
                .unwrap();
            match next {
                Some(Next::Followed(e)) => out.push(e.revision),
                Some(Next::Other(_)) => {}
                None => break,
            }
        }
        out
    }

    /// Whether the feed has nothing more to pass on for now.
    async fn quiet(feed: &mut Feed<Log>) -> bool {
        tokio::time::timeout(Duration::from_millis(50), feed.next())
            .await
            .is_err()
    }

    #[tokio::test]
    async fn replay_then_live_without_gap_or_duplicate() {
        let org = Uuid::new_v4();
        let log = Log::default();
        let (tx, rx) = broadcast::channel(64);
        for r in 1..=5 {
            log.commit(&event(org, r));
        }
        let mut feed = Feed::with_page(log.clone(), rx, 2);
        // Committed after the feed subscribed, so on the bus too: 4 and 5 arrive twice.
        for r in 4..=7 {
            if r > 5 {
                log.commit(&event(org, r));
            }
            tx.send(event(org, r)).unwrap();
        }
        feed.replay(org, 2);
        assert_eq!(take(&mut feed, 5).await, vec![3, 4, 5, 6, 7]);
        assert!(quiet(&mut feed).await, "no duplicate afterwards");
    }

    #[tokio::test]
    async fn events_out_of_order_are_put_back_in_order() {
        let org = Uuid::new_v4();
        let log = Log::default();
        let (tx, rx) = broadcast::channel(64);
        let mut feed = Feed::new(log.clone(), rx);
        feed.follow(org, 0);
        // 1 and 2 committed, 2 published first; 3 never published at all.
        for r in 1..=3 {
            log.commit(&event(org, r));
        }
        tx.send(event(org, 2)).unwrap();
        tx.send(event(org, 1)).unwrap();
        log.commit(&event(org, 4));
        tx.send(event(org, 4)).unwrap();
        assert_eq!(take(&mut feed, 4).await, vec![1, 2, 3, 4]);
        assert!(quiet(&mut feed).await);
    }

    #[tokio::test]
    async fn a_live_change_the_log_does_not_show_yet_is_still_passed_on() {
        let org = Uuid::new_v4();
        let log = Log::default();
        let (tx, rx) = broadcast::channel(64);
        let mut feed = Feed::new(log.clone(), rx);
        feed.follow(org, 0);
        log.commit(&event(org, 1));
        tx.send(event(org, 2)).unwrap();
        assert_eq!(take(&mut feed, 2).await, vec![1, 2]);
    }

    #[tokio::test]
    async fn a_lagging_subscriber_reads_what_it_missed_from_the_log() {
        let org = Uuid::new_v4();
        let other = Uuid::new_v4();
        let log = Log::default();
        let (tx, rx) = broadcast::channel(4);
        let mut feed = Feed::with_page(log.clone(), rx, 3);
        feed.follow(org, 0);
        for r in 1..=10 {
            log.commit(&event(org, r));
            tx.send(event(org, r)).unwrap();
            tx.send(event(other, r)).unwrap();
        }
        assert_eq!(take(&mut feed, 10).await, (1..=10).collect::<Vec<_>>());
        assert!(feed.take_lagged());
        assert!(!feed.take_lagged());
        log.commit(&event(org, 11));
        tx.send(event(org, 11)).unwrap();
        assert_eq!(take(&mut feed, 1).await, vec![11]);
    }

    #[tokio::test]
    async fn other_organizations_pass_through_and_unfollowed_ones_stop() {
        let org = Uuid::new_v4();
        let other = Uuid::new_v4();
        let (tx, rx) = broadcast::channel(64);
        let mut feed = Feed::new(Log::default(), rx);
        feed.follow(org, 0);
        let from_other = event(other, 7);
        tx.send(from_other.clone()).unwrap();
        assert_eq!(feed.next().await.unwrap(), Some(Next::Other(from_other)));
        feed.unfollow(org);
        assert!(!feed.follows(org));
        let now_other = event(org, 1);
        tx.send(now_other.clone()).unwrap();
        assert_eq!(feed.next().await.unwrap(), Some(Next::Other(now_other)));
        drop(tx);
        assert_eq!(feed.next().await.unwrap(), None, "the bus is gone");
    }
}
