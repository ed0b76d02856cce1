//! The gateway's routing cache: each collection's shards, replicas, epochs and
//! last known leaders, fetched from PD on first use and dropped whenever a
//! worker says the cached view is stale. Does network I/O (PD).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use tonic::Code;
use vectron_pd::{PdClient, PdClientError};
use vectron_proto::pd::v1 as pd;
use vectron_routing::{HashRange, ShardMap};

use crate::error::{ApiError, ErrorKind, Result};

/// Where a collection's points live, as PD last said.
#[derive(Debug)]
pub struct RoutingTable {
    /// The collection.
    pub collection: pd::Collection,
    /// Its shards, ordered by index.
    pub shards: Vec<pd::Shard>,
    /// Hash ranges of the shards, in the same order.
    pub map: ShardMap,
}

impl RoutingTable {
    /// The collection's dimension.
    pub fn dimension(&self) -> usize {
        self.collection
            .spec
            .as_ref()
            .map(|s| s.dimension as usize)
            .unwrap_or_default()
    }

    /// The collection's metric.
    pub fn metric(&self) -> vectron_proto::common::v1::Metric {
        self.collection
            .spec
            .as_ref()
            .map(|s| s.metric())
            .unwrap_or_default()
    }
}

/// Translates a PD failure into the public error.
pub fn pd_error(error: PdClientError) -> ApiError {
    match error {
        PdClientError::Rejected(status) => ApiError::from_status(&status),
        other => ApiError::unavailable(format!("placement driver unavailable: {other}")),
    }
}

/// Routing tables by collection name.
pub struct RoutingCache {
    pd: Arc<PdClient>,
    tables: RwLock<HashMap<String, Arc<RoutingTable>>>,
}

impl RoutingCache {
    /// An empty cache over `pd`.
    pub fn new(pd: Arc<PdClient>) -> Self {
        Self {
            pd,
            tables: RwLock::new(HashMap::new()),
        }
    }

    /// The PD client behind the cache.
    pub fn pd(&self) -> &Arc<PdClient> {
        &self.pd
    }

    /// The table of `collection`, from the cache or PD.
    pub async fn table(&self, collection: &str) -> Result<Arc<RoutingTable>> {
        if let Some(table) = self
            .tables
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(collection)
        {
            return Ok(table.clone());
        }
        self.refresh(collection).await
    }

    /// Fetches the table of `collection` from PD and caches it.
    pub async fn refresh(&self, collection: &str) -> Result<Arc<RoutingTable>> {
        let request = pd::GetRoutingTableRequest {
            collection: collection.to_owned(),
        };
        let answer = self
            .pd
            .call(|mut c| {
                let request = request.clone();
                async move { c.get_routing_table(request).await }
            })
            .await;
        let answer = match answer {
            Ok(answer) => answer,
            Err(PdClientError::Rejected(status)) if status.code() == Code::NotFound => {
                self.invalidate(collection);
                return Err(ApiError::collection_not_found(collection));
            }
            Err(e) => return Err(pd_error(e)),
        };
        let collection_info = answer.collection.ok_or_else(|| {
            ApiError::new(
                ErrorKind::Internal,
                "PD sent a routing table without its collection",
            )
        })?;
        let mut shards = answer.shards;
        shards.sort_by_key(|s| s.index);
        let ranges = shards
            .iter()
            .map(|s| HashRange {
                start: s.range_start,
                end: s.range_end,
            })
            .collect();
        let map = ShardMap::new(ranges).map_err(|e| {
            ApiError::new(
                ErrorKind::Internal,
                format!("PD sent a bad routing table for {collection:?}: {e}"),
            )
        })?;
        let table = Arc::new(RoutingTable {
            collection: collection_info,
            shards,
            map,
        });
        self.tables
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(collection.to_owned(), table.clone());
        Ok(table)
    }

    /// Drops the cached table of `collection`.
    pub fn invalidate(&self, collection: &str) {
        self.tables
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(collection);
    }
}
