//! In-memory adapter for fast unit tests of handler logic. Orders and pages like the DynamoDB
//! adapter (same sort keys), but it is never the only test of a storage path.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use super::keys;
use super::{ActivityReader, ActivityWriter, DetailsBlobs, InsertOutcome, StoreError, StorePage};
use crate::domain::{Activity, ActivityId, ActivityQuery, CustomerId, PageKey, PartnerId};

#[derive(Default)]
pub struct MemoryStore {
    /// (customer partition key, activity id) → record
    rows: Mutex<BTreeMap<(String, String), (PartnerId, Activity)>>,
    blobs: Mutex<HashMap<String, String>>,
    /// Items per storage page, to exercise paging loops.
    pub page_size: usize,
}

impl MemoryStore {
    pub fn with_page_size(page_size: usize) -> Self {
        Self {
            page_size,
            ..Self::default()
        }
    }

    pub fn blob_count(&self) -> usize {
        self.blobs.lock().map(|b| b.len()).unwrap_or(0)
    }
}

impl ActivityWriter for MemoryStore {
    async fn insert_all(
        &self,
        partner: &PartnerId,
        items: &[Activity],
    ) -> Result<InsertOutcome, StoreError> {
        let mut rows = self
            .rows
            .lock()
            .map_err(|_| StoreError::Other("poisoned".into()))?;
        let key = |a: &Activity| (keys::customer_pk(partner, &a.customer_id), a.id.to_string());
        let existing: Vec<Activity> = items
            .iter()
            .filter_map(|a| rows.get(&key(a)).map(|(_, s)| s.clone()))
            .collect();
        if !existing.is_empty() {
            return Ok(InsertOutcome::Existing(existing));
        }
        for a in items {
            rows.insert(key(a), (partner.clone(), a.clone()));
        }
        Ok(InsertOutcome::Written)
    }
}

impl ActivityReader for MemoryStore {
    async fn get(
        &self,
        partner: &PartnerId,
        customer: &CustomerId,
        id: &ActivityId,
    ) -> Result<Option<Activity>, StoreError> {
        let rows = self
            .rows
            .lock()
            .map_err(|_| StoreError::Other("poisoned".into()))?;
        Ok(rows
            .get(&(keys::customer_pk(partner, customer), id.to_string()))
            .map(|(_, a)| a.clone()))
    }

    async fn query_page(
        &self,
        partner: &PartnerId,
        query: &ActivityQuery,
        after: Option<&PageKey>,
        _want: usize,
    ) -> Result<StorePage, StoreError> {
        let rows = self
            .rows
            .lock()
            .map_err(|_| StoreError::Other("poisoned".into()))?;
        // Same sort key as the index the DynamoDB adapter would use.
        let sort_key = |k: &PageKey| match query.customer {
            Some(_) => keys::time_sk(k),
            None => keys::partner_sk(k),
        };
        let (lo, hi) = (
            keys::range_low(query.range.from),
            keys::range_high(query.range.to),
        );
        let mut candidates: Vec<(String, &Activity)> = rows
            .values()
            .filter(|(p, a)| {
                p == partner && query.customer.as_ref().is_none_or(|c| *c == a.customer_id)
            })
            .map(|(_, a)| (sort_key(&PageKey::of(a)), a))
            .filter(|(k, _)| *k >= lo && *k <= hi)
            .filter(|(k, _)| after.is_none_or(|after| *k < sort_key(after)))
            .collect();
        candidates.sort_by(|a, b| b.0.cmp(&a.0));
        let page_size = if self.page_size == 0 {
            usize::MAX
        } else {
            self.page_size
        };
        let more = candidates.len() > page_size;
        candidates.truncate(page_size);
        let last_evaluated = if more {
            candidates.last().map(|(_, a)| PageKey::of(a))
        } else {
            None
        };
        Ok(StorePage {
            items: candidates
                .into_iter()
                .map(|(_, a)| a.clone())
                .filter(|a| query.filters.matches(a))
                .collect(),
            last_evaluated,
        })
    }
}

impl DetailsBlobs for MemoryStore {
    async fn put(&self, key: &str, json: &str) -> Result<(), StoreError> {
        let mut blobs = self
            .blobs
            .lock()
            .map_err(|_| StoreError::Other("poisoned".into()))?;
        blobs.insert(key.to_owned(), json.to_owned());
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<String, StoreError> {
        let blobs = self
            .blobs
            .lock()
            .map_err(|_| StoreError::Other("poisoned".into()))?;
        blobs
            .get(key)
            .cloned()
            .ok_or_else(|| StoreError::Other(format!("no blob {key}")))
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let mut blobs = self
            .blobs
            .lock()
            .map_err(|_| StoreError::Other("poisoned".into()))?;
        blobs.remove(key);
        Ok(())
    }
}
