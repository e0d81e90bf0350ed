//! The in-process tier (L1) of the request path's caches: facts, node paths and sessions.
//!
//! A quick_cache map (S3-FIFO eviction) with a time to live checked on read. A hit costs one
//! sharded hash lookup and an atomic, with no bookkeeping on the caller's thread afterwards:
//! moka, used here before, replays its buffered reads into its access-order queue on every
//! 64th call, which put a p99 of 20–45 µs on lookups whose median is 1 µs once the map
//! outgrows the CPU caches (BENCHMARKS.md, issue 14). The TTL is a safety net only; freshness
//! is the epochs' job.

use std::future::Future;
use std::hash::Hash;
use std::time::{Duration, Instant};

use quick_cache::Equivalent;

#[derive(Clone)]
struct Stamped<V> {
    value: V,
    stored: Instant,
}

pub struct L1<K, V> {
    map: quick_cache::sync::Cache<K, Stamped<V>>,
    ttl: Duration,
}

impl<K, V> L1<K, V>
where
    K: Eq + Hash + Clone,
    V: Clone,
{
    pub fn new(max_entries: u64, ttl: Duration) -> Self {
        let capacity = usize::try_from(max_entries).unwrap_or(usize::MAX).max(1);
        Self {
            map: quick_cache::sync::Cache::new(capacity),
            ttl,
        }
    }

    fn live(&self, entry: &Stamped<V>) -> bool {
        entry.stored.elapsed() < self.ttl
    }

    /// The entry of `key`, unless it is older than the TTL (then it is dropped).
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        let entry = self.map.get(key)?;
        if self.live(&entry) {
            return Some(entry.value);
        }
        self.map.remove(key);
        None
    }

    pub fn insert(&self, key: K, value: V) {
        self.map.insert(
            key,
            Stamped {
                value,
                stored: Instant::now(),
            },
        );
    }

    pub fn remove<Q>(&self, key: &Q)
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        self.map.remove(key);
    }

    pub fn clear(&self) {
        self.map.clear();
    }

    /// The entry of `key`, or what `load` makes of it, stored. Concurrent callers missing the
    /// same key wait for one load; when it fails, the next of them loads in its turn (so each
    /// caller gets its own answer or its own error).
    pub async fn get_or_try_load<E, F>(&self, key: &K, load: impl FnOnce() -> F) -> Result<V, E>
    where
        F: Future<Output = Result<V, E>>,
    {
        let mut load = Some(load);
        loop {
            match self.map.get_value_or_guard_async(key).await {
                Ok(entry) if self.live(&entry) => return Ok(entry.value),
                Ok(_) => {
                    self.map.remove(key);
                }
                Err(guard) => {
                    let Some(load) = load.take() else {
                        unreachable!("a guard is handed out once per call");
                    };
                    let value = load().await?;
                    // Err only when the entry was replaced meanwhile; this caller has its value.
                    let _ = guard.insert(Stamped {
                        value: value.clone(),
                        stored: Instant::now(),
                    });
                    return Ok(value);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn concurrent_misses_load_once_and_a_failed_load_lets_the_next_caller_load() {
        let cache: Arc<L1<u32, u32>> = Arc::new(L1::new(10, Duration::from_secs(60)));
        let loads = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (cache, loads) = (cache.clone(), loads.clone());
            tasks.push(tokio::spawn(async move {
                cache
                    .get_or_try_load(&1, || async {
                        loads.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        Ok::<_, ()>(7)
                    })
                    .await
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), Ok(7));
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1);

        let failed = cache
            .get_or_try_load(&2, || async { Err::<u32, _>("down") })
            .await;
        assert_eq!(failed, Err("down"));
        assert_eq!(cache.get(&2), None);
        let next = cache
            .get_or_try_load(&2, || async { Ok::<_, &str>(9) })
            .await;
        assert_eq!(next, Ok(9));
        assert_eq!(cache.get(&2), Some(9));
    }

    #[test]
    fn an_entry_older_than_the_ttl_is_a_miss() {
        let cache: L1<u32, u32> = L1::new(10, Duration::from_millis(30));
        cache.insert(1, 1);
        assert_eq!(cache.get(&1), Some(1));
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(cache.get(&1), None);
        cache.insert(1, 2);
        cache.remove(&1);
        assert_eq!(cache.get(&1), None);
    }
}
