//! Node paths by node id (`[org]`, `[org, ws]`, `[org, ws, project]`), cached in process: a
//! node never moves, so a path only goes stale when the node is deleted, which is a change of
//! the organization's tree (see `Epochs::tree_valid`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use uuid::Uuid;

use super::Epochs;
use super::l1::L1;
use crate::metrics::Metrics;
use crate::store::{Store, StoreError};

const TTL: Duration = Duration::from_secs(300);

#[derive(Clone)]
struct Entry {
    path: Arc<[Uuid]>,
    loaded: Instant,
}

#[derive(Clone)]
pub struct NodeCache {
    l1: Arc<L1<Uuid, Entry>>,
    epochs: Arc<Epochs>,
    metrics: Arc<Metrics>,
}

impl NodeCache {
    pub fn new(max_entries: u64, epochs: Arc<Epochs>, metrics: Arc<Metrics>) -> Self {
        Self {
            l1: Arc::new(L1::new(max_entries, TTL)),
            epochs,
            metrics,
        }
    }

    /// The path of node `id`, root first; `None` when there is no such node.
    pub async fn path(&self, store: &Store, id: Uuid) -> Result<Option<Arc<[Uuid]>>, StoreError> {
        if let Some(hit) = self.l1.get(&id)
            && let Some(org) = hit.path.first()
            && self.epochs.tree_valid(*org, hit.loaded)
        {
            self.metrics.cache_hits.node.inc();
            return Ok(Some(hit.path));
        }
        self.metrics.cache_misses.node.inc();
        let loaded = Instant::now();
        let Some(node) = store.node(id).await? else {
            return Ok(None);
        };
        let path: Arc<[Uuid]> = node.path_ids().into();
        if self.epochs.trusted() {
            self.l1.insert(
                id,
                Entry {
                    path: path.clone(),
                    loaded,
                },
            );
        }
        Ok(Some(path))
    }
}
