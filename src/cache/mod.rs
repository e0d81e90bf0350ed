//! The decision cache: a principal's facts in an organization, cached in process (L1)
//! and in Redis (L2, shared by instances), each entry tagged with the revision it was read at.
//!
//! The cache stores facts, never decisions it made up: every answer is the engine's, computed
//! from facts that are valid by the epoch rule (see `epochs.rs`), or freshly read from the
//! store. `atLeast` raises the bar: facts older than the caller's revision token are never
//! used. Concurrent misses of one key are loaded once (`L1::get_or_try_load`).

mod epochs;
mod keys;
mod l1;
mod nodes;
mod sessions;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ::redis::AsyncCommands;
use ::redis::aio::ConnectionManager;
use uuid::Uuid;

use l1::L1;

pub use epochs::Epochs;
pub use keys::{KeyCache, KeyEntry};
pub use nodes::NodeCache;
pub use sessions::SessionCache;

use crate::metrics::Metrics;
use crate::store::{PrincipalFacts, Store, StoreError};

/// Where the cache reads facts it does not hold: the store in the server, anything that
/// answers the same question in tests.
pub trait FactsSource: Clone + Send + Sync + 'static {
    /// The principal's facts in the organization, at the revision read; `None` when the
    /// organization does not exist.
    fn principal_facts(
        &self,
        organization: Uuid,
        principal: Uuid,
    ) -> impl std::future::Future<Output = Result<Option<PrincipalFacts>, StoreError>> + Send;
}

impl FactsSource for Store {
    async fn principal_facts(
        &self,
        organization: Uuid,
        principal: Uuid,
    ) -> Result<Option<PrincipalFacts>, StoreError> {
        Store::principal_facts(self, organization, principal).await
    }
}

/// How long an L1 entry may live at most: a safety net, not the freshness mechanism.
const L1_TTL: Duration = Duration::from_secs(300);
/// How long an L2 entry lives in Redis.
const L2_TTL_SECS: u64 = 300;
/// How long one L2 round trip may take before the cache goes to the store instead.
const L2_TIMEOUT: Duration = Duration::from_millis(50);

/// A principal's facts as the cache shares them, with the revision they were read at.
pub type SharedFacts = Arc<PrincipalFacts>;

#[derive(Clone)]
pub struct FactsCache {
    l1: Arc<L1<(Uuid, Uuid), SharedFacts>>,
    /// Filled once Redis answers (it may be down when the instance starts).
    l2: Arc<OnceLock<ConnectionManager>>,
    epochs: Arc<Epochs>,
    metrics: Arc<Metrics>,
    /// [`L2_PUT`], sent by its hash (EVALSHA) once Redis has it.
    l2_put: Arc<::redis::Script>,
}

fn custom_role_ids(f: &PrincipalFacts) -> Vec<Uuid> {
    f.custom_roles.iter().map(|r| r.id).collect()
}

impl FactsCache {
    pub fn new(
        max_entries: u64,
        epochs: Arc<Epochs>,
        l2: Arc<OnceLock<ConnectionManager>>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            l1: Arc::new(L1::new(max_entries, L1_TTL)),
            l2,
            epochs,
            metrics,
            l2_put: Arc::new(::redis::Script::new(L2_PUT)),
        }
    }

    fn valid(&self, f: &PrincipalFacts, at_least: i64) -> bool {
        let roles = custom_role_ids(f);
        match self
            .epochs
            .required(f.organization_id, f.principal_id, &f.teams, &roles)
        {
            Some(need) => f.revision >= need.max(at_least),
            None => false,
        }
    }

    /// The facts of `principal` in `organization`, read at a revision no older than any change
    /// this instance has heard of, nor than `at_least`. `None` when the organization does not
    /// exist.
    pub async fn facts<S: FactsSource>(
        &self,
        store: &S,
        organization: Uuid,
        principal: Uuid,
        at_least: i64,
    ) -> Result<Option<SharedFacts>, StoreError> {
        let key = (organization, principal);
        if !self.epochs.trusted() {
            self.metrics.cache_bypassed.inc();
            return self.read_through(store, key).await;
        }
        if let Some(hit) = self.l1.get(&key) {
            if self.valid(&hit, at_least) {
                self.metrics.cache_hits.l1.inc();
                return Ok(Some(hit));
            }
            self.metrics.invalidations.inc();
            self.l1.remove(&key);
        }
        self.metrics.cache_misses.l1.inc();
        let loaded = self
            .l1
            .get_or_try_load(&key, || self.load(store, organization, principal, at_least))
            .await;
        match loaded {
            Ok(f) if self.valid(&f, at_least) => Ok(Some(f)),
            // Joined a load that started before a newer change: read again, for this caller.
            Ok(_) => self.read_through(store, key).await,
            // A failed load is this caller's own (a waiter whose load failed loads again).
            Err(LoadError::Missing) => Ok(None),
            Err(LoadError::Store(e)) => Err(e),
        }
    }

    /// Reads from the store and replaces the cached entry.
    async fn read_through<S: FactsSource>(
        &self,
        store: &S,
        key: (Uuid, Uuid),
    ) -> Result<Option<SharedFacts>, StoreError> {
        let fresh = store.principal_facts(key.0, key.1).await?.map(Arc::new);
        self.metrics.store_loads.inc();
        if let Some(f) = &fresh {
            self.epochs.saw(key.0, f.revision);
            if self.epochs.trusted() {
                self.l1.insert(key, f.clone());
                self.l2_put(f).await;
            }
        }
        Ok(fresh)
    }

    async fn load<S: FactsSource>(
        &self,
        store: &S,
        organization: Uuid,
        principal: Uuid,
        at_least: i64,
    ) -> Result<SharedFacts, LoadError> {
        // An organization this instance does not know yet is read from the store, which tells
        // its committed revision; L2 is trusted from then on.
        if self.epochs.knows(organization)
            && let Some(f) = self.l2_get(organization, principal).await
            && self.valid(&f, at_least)
        {
            self.metrics.cache_hits.l2.inc();
            return Ok(f);
        }
        if self.l2.get().is_some() {
            self.metrics.cache_misses.l2.inc();
        }
        let f = store
            .principal_facts(organization, principal)
            .await
            .map_err(LoadError::Store)?
            .ok_or(LoadError::Missing)?;
        self.metrics.store_loads.inc();
        self.epochs.saw(organization, f.revision);
        let f = Arc::new(f);
        self.l2_put(&f).await;
        Ok(f)
    }

    /// The key of a principal's facts. The version changes with what facts mean: v3 since a
    /// binding may name one resource (an entry written before would hold a share as a binding
    /// on the whole node), v4 since facts hold the principal's teams and their bindings.
    fn l2_key(organization: Uuid, principal: Uuid) -> String {
        format!("iam:facts:v4:{organization}:{principal}")
    }

    async fn l2_get(&self, organization: Uuid, principal: Uuid) -> Option<SharedFacts> {
        let mut conn = self.l2.get()?.clone();
        let key = Self::l2_key(organization, principal);
        let got: Option<String> = match tokio::time::timeout(L2_TIMEOUT, conn.get(&key)).await {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => {
                self.metrics.l2_errors.inc();
                tracing::debug!(error = %e, "L2 read failed");
                return None;
            }
            Err(_) => {
                self.metrics.l2_errors.inc();
                return None;
            }
        };
        let got = got?;
        let (_, json) = got.split_once(':')?;
        serde_json::from_str::<PrincipalFacts>(json)
            .ok()
            .map(Arc::new)
    }

    /// Whether the shared cache (L2) is connected yet (it connects in the background).
    pub fn l2_connected(&self) -> bool {
        self.l2.get().is_some()
    }

    /// The revision facts of `principal` in `organization` must have been read at to be
    /// served now (the last change this instance heard of that could alter them); `None`
    /// while it does not know the organization.
    pub fn required_revision(&self, organization: Uuid, principal: Uuid) -> Option<i64> {
        self.epochs.required(organization, principal, &[], &[])
    }

    /// The L2 key of a principal's facts in an organization, and the revision an L2 entry was
    /// read at (for tests and operators reading Redis directly).
    pub fn l2_entry_key(organization: Uuid, principal: Uuid) -> String {
        Self::l2_key(organization, principal)
    }

    /// The revision an L2 entry (`{revision}:{json}`) was read at.
    pub fn l2_entry_revision(entry: &str) -> Option<i64> {
        entry.split_once(':')?.0.parse().ok()
    }

    /// Writes facts to L2 as a load does once it has read them.
    pub async fn store_l2(&self, f: &PrincipalFacts) {
        self.l2_put(f).await;
    }

    async fn l2_put(&self, f: &PrincipalFacts) {
        let Some(mut conn) = self.l2.get().cloned() else {
            return;
        };
        let Ok(json) = serde_json::to_string(f) else {
            return;
        };
        let key = Self::l2_key(f.organization_id, f.principal_id);
        let value = format!("{}:{json}", f.revision);
        let mut put = self.l2_put.key(&key);
        put.arg(value).arg(f.revision).arg(L2_TTL_SECS);
        let put = put.invoke_async::<i64>(&mut conn);
        match tokio::time::timeout(L2_TIMEOUT, put).await {
            Ok(Ok(_)) => {}
            _ => self.metrics.l2_errors.inc(),
        }
    }

    /// Empties L1 (tests and operators; correctness never needs it).
    pub async fn clear(&self) {
        self.l1.clear();
    }
}

/// Sets an L2 entry unless the entry there was read at a newer revision: a slow load that
/// read before a change never puts its older facts over the newer ones. An entry is
/// `{revision}:{facts as JSON}`, so that the revision is compared without decoding the facts.
const L2_PUT: &str = r#"
local cur = redis.call('GET', KEYS[1])
if cur then
  local old = tonumber(string.match(cur, '^(%d+):'))
  if old ~= nil and old > tonumber(ARGV[2]) then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
return 1
"#;

#[derive(Debug)]
enum LoadError {
    Missing,
    Store(StoreError),
}

#[cfg(test)]
mod tests {
    //! The cache's rules with a source that counts its reads, no database needed.

    use std::sync::Mutex;

    use chrono::Utc;

    use super::*;
    use crate::domain::change::{ChangeEvent, ChangeKind};

    /// Facts of one principal at a revision the test sets; `None` for other organizations.
    #[derive(Clone, Default)]
    struct Counting {
        state: Arc<Mutex<(i64, usize)>>,
        organization: Uuid,
    }

    impl Counting {
        fn set_revision(&self, revision: i64) {
            self.state.lock().unwrap().0 = revision;
        }
        fn reads(&self) -> usize {
            self.state.lock().unwrap().1
        }
    }

    impl FactsSource for Counting {
        async fn principal_facts(
            &self,
            organization: Uuid,
            principal: Uuid,
        ) -> Result<Option<PrincipalFacts>, StoreError> {
            let mut state = self.state.lock().unwrap();
            state.1 += 1;
            Ok((organization == self.organization).then(|| PrincipalFacts {
                organization_id: organization,
                principal_id: principal,
                revision: state.0,
                active: true,
                member: true,
                bindings: Vec::new(),
                teams: Vec::new(),
                custom_roles: Vec::new(),
                compiled: OnceLock::new(),
            }))
        }
    }

    fn cache(epochs: &Arc<Epochs>) -> FactsCache {
        let metrics = Arc::new(Metrics::new().unwrap());
        FactsCache::new(100, epochs.clone(), Arc::new(OnceLock::new()), metrics)
    }

    fn revoked(organization: Uuid, principal: Uuid, revision: i64) -> ChangeEvent {
        ChangeEvent {
            organization_id: organization,
            revision,
            kind: ChangeKind::BindingRevoked,
            principal_id: Some(principal),
            node_id: None,
            role_id: None,
            actor_id: None,
            at: Utc::now(),
        }
    }

    #[tokio::test]
    async fn cached_facts_are_served_until_a_change_or_a_token_needs_newer_ones() {
        let (org, alice, bob) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let source = Counting {
            organization: org,
            ..Counting::default()
        };
        source.set_revision(3);
        let epochs = Arc::new(Epochs::new());
        let cache = cache(&epochs);
        let read = |who, at_least| {
            let (cache, source) = (cache.clone(), source.clone());
            async move { cache.facts(&source, org, who, at_least).await.unwrap() }
        };

        assert_eq!(read(alice, 0).await.unwrap().revision, 3);
        assert_eq!(read(alice, 0).await.unwrap().revision, 3);
        assert_eq!(source.reads(), 1, "the second read is a cache hit");

        // A change that reaches alice at revision 4: her cached facts are no longer served.
        source.set_revision(4);
        epochs.apply(&revoked(org, alice, 4));
        assert_eq!(read(alice, 0).await.unwrap().revision, 4);
        assert_eq!(source.reads(), 2);
        // Bob's facts were not reached by it: loaded once, then served.
        read(bob, 0).await;
        read(bob, 0).await;
        assert_eq!(source.reads(), 3);

        // A revision token newer than what is cached reads again.
        source.set_revision(6);
        assert_eq!(read(alice, 6).await.unwrap().revision, 6);
        assert_eq!(source.reads(), 4);
        assert_eq!(read(alice, 0).await.unwrap().revision, 6);
        assert_eq!(source.reads(), 4);

        // An organization the source does not know has no facts.
        assert!(
            cache
                .facts(&source, Uuid::new_v4(), alice, 0)
                .await
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn nothing_is_cached_while_the_instance_may_have_missed_events() {
        let (org, alice) = (Uuid::new_v4(), Uuid::new_v4());
        let source = Counting {
            organization: org,
            ..Counting::default()
        };
        let epochs = Arc::new(Epochs::new());
        let cache = cache(&epochs);
        epochs.set_trusted(false);
        for _ in 0..3 {
            cache.facts(&source, org, alice, 0).await.unwrap();
        }
        assert_eq!(source.reads(), 3, "an untrusted instance reads every time");
    }
}
