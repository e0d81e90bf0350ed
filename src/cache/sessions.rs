//! Sessions by token hash, cached in process so that authenticating a request costs no
//! database round trip, yet a revoked session stops working at once here and within the
//! propagation bound everywhere (see `Epochs::session_valid`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Epochs;
use super::l1::L1;
use crate::domain::{Session, User};
use crate::metrics::Metrics;
use crate::store::{SessionLookup, Store, StoreError};

/// A safety net only: revocations invalidate entries through the epochs.
const TTL: Duration = Duration::from_secs(60);

struct Entry {
    session: Arc<Session>,
    user: Arc<User>,
    loaded: Instant,
}

#[derive(Clone)]
pub struct SessionCache {
    l1: Arc<L1<String, Arc<Entry>>>,
    epochs: Arc<Epochs>,
    metrics: Arc<Metrics>,
}

impl SessionCache {
    pub fn new(max_entries: u64, epochs: Arc<Epochs>, metrics: Arc<Metrics>) -> Self {
        Self {
            l1: Arc::new(L1::new(max_entries, TTL)),
            epochs,
            metrics,
        }
    }

    /// The session whose token hashes to `token_hash`, from the cache when it may be trusted.
    pub async fn lookup(
        &self,
        store: &Store,
        token_hash: &str,
    ) -> Result<SessionLookup, StoreError> {
        let now = store.clock().now();
        if self.epochs.trusted()
            && let Some(hit) = self.l1.get(token_hash)
        {
            if hit.session.expires_at > now && self.epochs.session_valid(hit.user.id, hit.loaded) {
                self.metrics.cache_hits.session.inc();
                return Ok(SessionLookup::Valid(hit.session.clone(), hit.user.clone()));
            }
            self.l1.remove(token_hash);
        }
        self.metrics.cache_misses.session.inc();
        let loaded = Instant::now();
        let found = store.session_by_token_hash(token_hash, now).await?;
        if let SessionLookup::Valid(session, user) = &found {
            store.touch_session(session, now).await?;
            if self.epochs.trusted() {
                let entry = Entry {
                    session: session.clone(),
                    user: user.clone(),
                    loaded,
                };
                self.l1.insert(token_hash.to_owned(), Arc::new(entry));
            }
        }
        Ok(found)
    }
}
