//! API keys by the hash of their secret, cached in process like sessions: verifying a key on a
//! hit costs no database round trip, yet a revoked or rotated key stops working at once here
//! and within the propagation bound everywhere. An entry is tagged with a revision of its
//! organization read before the key, and is valid while no change that reaches the key (its
//! id, as a principal) or its owner has a newer revision (`Epochs::required`): a service
//! account deleted takes its keys with it.
//!
//! Also kept here, per instance: the uses seen since the last write (`take_uses`), and which
//! refusals were audited in the last minute (a revoked key replayed in a loop writes one
//! event a minute, not one a request).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Epochs;
use super::l1::L1;
use crate::authz::{Catalog, Permission};
use crate::domain::{ApiKey, KeyOwner, KeyRefusal, User};
use crate::metrics::Metrics;
use crate::store::{KeyUse, Store, StoreError};

/// A safety net only: changes invalidate entries through the epochs.
const TTL: Duration = Duration::from_secs(60);
/// How often one refusal of one key is audited at most (per instance).
const REFUSAL_AUDIT_EVERY: Duration = Duration::from_secs(60);

/// A verified key as requests use it.
#[derive(Debug)]
pub struct KeyEntry {
    pub key: ApiKey,
    /// The owner of a personal key.
    pub user: Option<Arc<User>>,
    /// The organization revision read before the key.
    revision: i64,
    /// The scopes compiled against the catalog by the first request that needs them.
    scopes: OnceLock<Option<Arc<[Permission]>>>,
}

impl KeyEntry {
    /// The key's scopes as the engine matches them; `None` when it has none (its owner's
    /// power, whole). A scope that no longer fits the catalog is left out, which only narrows.
    pub fn scopes(&self, catalog: &Catalog) -> Option<Arc<[Permission]>> {
        self.scopes
            .get_or_init(|| {
                self.key.scopes.as_ref().map(|scopes| {
                    scopes
                        .iter()
                        .filter_map(|s| match catalog.parse_permission(s) {
                            Ok(p) => Some(p),
                            Err(e) => {
                                tracing::warn!(key = %self.key.id, scope = %s, error = %e, "API key scope does not fit the catalog; left out");
                                None
                            }
                        })
                        .collect()
                })
            })
            .clone()
    }
}

#[derive(Clone)]
pub struct KeyCache {
    l1: Arc<L1<String, Arc<KeyEntry>>>,
    refusals: Arc<L1<(Uuid, &'static str), ()>>,
    uses: Arc<Mutex<HashMap<Uuid, KeyUse>>>,
    epochs: Arc<Epochs>,
    metrics: Arc<Metrics>,
}

impl KeyCache {
    pub fn new(max_entries: u64, epochs: Arc<Epochs>, metrics: Arc<Metrics>) -> Self {
        Self {
            l1: Arc::new(L1::new(max_entries, TTL)),
            refusals: Arc::new(L1::new(max_entries, REFUSAL_AUDIT_EVERY)),
            uses: Arc::new(Mutex::new(HashMap::new())),
            epochs,
            metrics,
        }
    }

    fn valid(&self, entry: &KeyEntry) -> bool {
        self.epochs
            .required(
                entry.key.organization_id,
                entry.key.id,
                &[entry.key.owner.principal_id()],
                &[],
            )
            .is_some_and(|need| entry.revision >= need)
    }

    /// The key whose secret hashes to `token_hash`, from the cache when it may be trusted.
    pub async fn lookup(
        &self,
        store: &Store,
        token_hash: &str,
    ) -> Result<Option<Arc<KeyEntry>>, StoreError> {
        if self.epochs.trusted()
            && let Some(hit) = self.l1.get(token_hash)
        {
            if self.valid(&hit) {
                self.metrics.cache_hits.api_key.inc();
                return Ok(Some(hit));
            }
            self.l1.remove(token_hash);
        }
        self.metrics.cache_misses.api_key.inc();
        let Some((key, revision)) = store.api_key_by_hash(token_hash).await? else {
            return Ok(None);
        };
        let user = match key.owner {
            KeyOwner::User(id) => store.user(id).await?.map(Arc::new),
            KeyOwner::ServiceAccount(_) => None,
        };
        self.epochs.saw(key.organization_id, revision);
        let entry = Arc::new(KeyEntry {
            key,
            user,
            revision,
            scopes: OnceLock::new(),
        });
        if self.epochs.trusted() {
            self.l1.insert(token_hash.to_owned(), entry.clone());
        }
        Ok(Some(entry))
    }

    /// Drops the entry of `token_hash` (its key changed here).
    pub fn forget(&self, token_hash: &str) {
        self.l1.remove(token_hash);
    }

    /// Whether a refusal of `key` for `why` should be audited now (once a minute at most).
    pub fn refusal_to_audit(&self, key: Uuid, why: KeyRefusal) -> bool {
        let slot = (key, why.as_str());
        if self.refusals.get(&slot).is_some() {
            return false;
        }
        self.refusals.insert(slot, ());
        true
    }

    /// Notes a use of `key` from `ip` at `at`, to be written with the next batch.
    pub fn used(&self, key: &ApiKey, ip: Option<&str>, at: DateTime<Utc>) {
        let Ok(mut uses) = self.uses.lock() else {
            return;
        };
        let entry = uses.entry(key.id).or_insert_with(|| KeyUse {
            key_id: key.id,
            organization_id: key.organization_id,
            last_used_at: at,
            ips: Vec::new(),
        });
        entry.last_used_at = entry.last_used_at.max(at);
        if let Some(ip) = ip {
            if let Some(i) = entry.ips.iter().position(|x| x == ip) {
                if i != 0 {
                    let ip = entry.ips.remove(i);
                    entry.ips.insert(0, ip);
                }
            } else {
                entry.ips.insert(0, ip.to_owned());
                entry.ips.truncate(crate::store::KEY_LAST_IPS);
            }
        }
    }

    /// Puts back a use that could not be written (it goes with the next batch).
    pub fn used_again(&self, u: &KeyUse, ip: Option<&str>) {
        let Ok(mut uses) = self.uses.lock() else {
            return;
        };
        let entry = uses.entry(u.key_id).or_insert_with(|| KeyUse {
            ips: Vec::new(),
            ..u.clone()
        });
        entry.last_used_at = entry.last_used_at.max(u.last_used_at);
        if let Some(ip) = ip
            && !entry.ips.iter().any(|x| x == ip)
        {
            entry.ips.push(ip.to_owned());
            entry.ips.truncate(crate::store::KEY_LAST_IPS);
        }
    }

    /// The uses noted since the last call.
    pub fn take_uses(&self) -> Vec<KeyUse> {
        self.uses
            .lock()
            .map(|mut uses| uses.drain().map(|(_, u)| u).collect())
            .unwrap_or_default()
    }
}
