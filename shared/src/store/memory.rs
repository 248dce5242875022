//! In-memory adapter of every port, for fast unit tests of handler logic and for benchmarks that
//! leave storage out. Orders and pages like the DynamoDB adapter (same sort keys), claims and
//! updates jobs under the same conditions, but it is never the only test of a storage path.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::keys;
use super::{
    ActivityReader, ActivityWriter, DetailsBlobs, ExportJobs, ExportObjects, InsertOutcome,
    PartSink, StoreError, StorePage,
};
use crate::domain::{
    Activity, ActivityId, ActivityQuery, CustomerId, ExportId, ExportJob, ExportStatus, PageKey,
    PartnerId,
};

#[derive(Default)]
pub struct MemoryStore {
    /// (customer partition key, activity id) → record
    rows: Mutex<BTreeMap<(String, String), (PartnerId, Activity)>>,
    blobs: Mutex<HashMap<String, String>>,
    jobs: Mutex<HashMap<(PartnerId, ExportId), ExportJob>>,
    objects: Objects,
    /// Items per storage page, to exercise paging loops (0: everything in one page).
    page_size: usize,
    /// Keep only the sizes of uploaded parts, not their bytes (memory benchmarks).
    discard_object_bytes: bool,
}

/// A completed upload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredObject {
    pub content_type: String,
    pub content_disposition: String,
    /// Empty when the store discards object bytes.
    pub bytes: Vec<u8>,
    pub part_sizes: Vec<usize>,
}

type Objects = Arc<Mutex<HashMap<String, StoredObject>>>;

fn locked<T>(m: &Mutex<T>) -> Result<MutexGuard<'_, T>, StoreError> {
    m.lock()
        .map_err(|_| StoreError::Other("memory store poisoned".into()))
}

impl MemoryStore {
    pub fn with_page_size(page_size: usize) -> Self {
        Self {
            page_size,
            ..Self::default()
        }
    }

    /// Keeps only the sizes of uploaded parts, not their bytes.
    pub fn discarding_object_bytes(mut self) -> Self {
        self.discard_object_bytes = true;
        self
    }

    pub fn blob_count(&self) -> usize {
        self.blobs.lock().map(|b| b.len()).unwrap_or(0)
    }

    /// The completed object at `key`, if any.
    pub fn object(&self, key: &str) -> Option<StoredObject> {
        self.objects.lock().ok()?.get(key).cloned()
    }

    /// Stores `job` as it is (a test setting up a state).
    pub fn put_job(&self, job: ExportJob) {
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.insert((job.partner.clone(), job.id.clone()), job);
        }
    }

    /// The export job as stored.
    pub fn job(&self, partner: &PartnerId, id: &ExportId) -> Option<ExportJob> {
        self.jobs
            .lock()
            .ok()?
            .get(&(partner.clone(), id.clone()))
            .cloned()
    }
}

impl ActivityWriter for MemoryStore {
    async fn insert_all(
        &self,
        partner: &PartnerId,
        items: &[Activity],
    ) -> Result<InsertOutcome, StoreError> {
        let mut rows = locked(&self.rows)?;
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
        let rows = locked(&self.rows)?;
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
        let rows = locked(&self.rows)?;
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
        locked(&self.blobs)?.insert(key.to_owned(), json.to_owned());
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<String, StoreError> {
        locked(&self.blobs)?
            .get(key)
            .cloned()
            .ok_or_else(|| StoreError::Other(format!("no blob {key}")))
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        locked(&self.blobs)?.remove(key);
        Ok(())
    }
}

impl ExportJobs for MemoryStore {
    async fn create_job(&self, job: &ExportJob) -> Result<(), StoreError> {
        let mut jobs = locked(&self.jobs)?;
        let key = (job.partner.clone(), job.id.clone());
        if jobs.contains_key(&key) {
            return Err(StoreError::Other(format!("export {} exists", job.id)));
        }
        jobs.insert(key, job.clone());
        Ok(())
    }

    async fn get_job(
        &self,
        partner: &PartnerId,
        id: &ExportId,
    ) -> Result<Option<ExportJob>, StoreError> {
        Ok(locked(&self.jobs)?
            .get(&(partner.clone(), id.clone()))
            .cloned())
    }

    async fn claim_job(
        &self,
        partner: &PartnerId,
        id: &ExportId,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<ExportJob>, StoreError> {
        let mut jobs = locked(&self.jobs)?;
        let Some(job) = jobs.get_mut(&(partner.clone(), id.clone())) else {
            return Ok(None);
        };
        let claimable = match job.status {
            ExportStatus::Pending => true,
            ExportStatus::Running => job.lease_until.is_some_and(|l| l < now),
            _ => false,
        };
        if !claimable {
            return Ok(None);
        }
        job.status = ExportStatus::Running;
        job.lease_until = Some(crate::domain::time::truncate_millis(lease_until));
        job.attempt += 1;
        job.row_count = 0;
        job.bytes = 0;
        Ok(Some(job.clone()))
    }

    async fn update_job(&self, job: &ExportJob) -> Result<(), StoreError> {
        let mut jobs = locked(&self.jobs)?;
        match jobs.get_mut(&(job.partner.clone(), job.id.clone())) {
            Some(stored)
                if stored.attempt == job.attempt && stored.status == ExportStatus::Running =>
            {
                *stored = job.clone();
                Ok(())
            }
            _ => Err(StoreError::TakenOver),
        }
    }
}

/// A multipart upload into a [`MemoryStore`]; the object appears on `complete`.
pub struct MemoryUpload {
    objects: Objects,
    discard_bytes: bool,
    key: String,
    object: StoredObject,
}

impl PartSink for MemoryUpload {
    async fn upload_part(&mut self, number: i32, bytes: Vec<u8>) -> Result<(), StoreError> {
        let expected = self.object.part_sizes.len() + 1;
        if usize::try_from(number).ok() != Some(expected) {
            return Err(StoreError::Other(format!(
                "part {number} uploaded where part {expected} was due"
            )));
        }
        self.object.part_sizes.push(bytes.len());
        if !self.discard_bytes {
            self.object.bytes.extend_from_slice(&bytes);
        }
        Ok(())
    }

    async fn complete(&mut self) -> Result<(), StoreError> {
        locked(&self.objects)?.insert(self.key.clone(), std::mem::take(&mut self.object));
        Ok(())
    }

    async fn abort(&mut self) -> Result<(), StoreError> {
        self.object = StoredObject::default();
        Ok(())
    }
}

impl ExportObjects for MemoryStore {
    type Upload = MemoryUpload;

    async fn start_upload(
        &self,
        key: &str,
        content_type: &str,
        content_disposition: &str,
    ) -> Result<MemoryUpload, StoreError> {
        Ok(MemoryUpload {
            objects: self.objects.clone(),
            discard_bytes: self.discard_object_bytes,
            key: key.to_owned(),
            object: StoredObject {
                content_type: content_type.to_owned(),
                content_disposition: content_disposition.to_owned(),
                ..StoredObject::default()
            },
        })
    }

    /// `memory:///<key>?expires=<seconds>`: not fetchable, but says what was signed.
    async fn presign_get(
        &self,
        key: &str,
        _content_type: &str,
        _content_disposition: &str,
        ttl: Duration,
    ) -> Result<String, StoreError> {
        Ok(format!("memory:///{key}?expires={}", ttl.as_secs()))
    }
}
