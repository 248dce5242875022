//! In-memory adapter of every port, for fast unit tests of handler logic and for benchmarks that
//! leave storage out. Orders and pages like the DynamoDB adapter (same sort keys), claims and
//! updates jobs under the same conditions, but it is never the only test of a storage path.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::keys;
use super::{
    ActivityReader, ActivityWriter, Admission, Anchors, ChainIndex, ChainLinks, DetailsBlobs,
    ExportJobs, ExportObjects, InsertOutcome, PartSink, RequestCounter, StoreError, StorePage,
    Unchained, append_all,
};
use crate::domain::chain::Head;
use crate::domain::destination::{Destination, DestinationId};
use crate::domain::{
    Activity, ActivityId, ActivityQuery, CustomerId, ExportId, ExportJob, ExportStatus, PageKey,
    PartnerId,
};

#[derive(Default)]
pub struct MemoryStore {
    /// (customer partition key, activity id) → record
    rows: Mutex<BTreeMap<(String, String), (PartnerId, Activity)>>,
    /// Chain heads by customer partition key.
    heads: Mutex<HashMap<String, Head>>,
    blobs: Mutex<HashMap<String, String>>,
    jobs: Mutex<HashMap<(PartnerId, ExportId), ExportJob>>,
    /// A tenant's export slots: request key → export id.
    slots: Mutex<HashMap<PartnerId, BTreeMap<String, ExportId>>>,
    objects: Objects,
    /// Multipart uploads in progress, by upload id.
    uploads: Objects,
    /// Requests per (tenant, window start).
    requests: Mutex<HashMap<(PartnerId, i64), u32>>,
    /// Small objects (`put_bytes`).
    small: Mutex<HashMap<String, Vec<u8>>>,
    /// Feed heads by tenant, and each feed's entries by (tenant, position).
    feed_heads: Mutex<HashMap<PartnerId, u64>>,
    feed: Mutex<BTreeMap<(String, u64), (CustomerId, ActivityId)>>,
    /// Anchors by key, listed in key order.
    anchors: Mutex<BTreeMap<String, Vec<u8>>>,
    /// Streaming destinations by tenant and id.
    destinations: Mutex<BTreeMap<(String, DestinationId), Destination>>,
    /// Delivery's retry state and claim of each destination: (attempts, next attempt, lease).
    delivery: Mutex<DeliveryMeta>,
    /// Items per storage page, to exercise paging loops (0: everything in one page).
    page_size: usize,
    /// Keep only the sizes of uploaded parts, not their bytes (memory benchmarks).
    discard_object_bytes: bool,
}

type DeliveryMeta =
    HashMap<(String, DestinationId), (u32, Option<DateTime<Utc>>, Option<DateTime<Utc>>)>;

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

    /// Deletes activity `id` of `customer` as anyone able to write the table could (the tests'
    /// tampering); `false` when there was none.
    pub fn remove_activity(&self, partner: &PartnerId, customer: &str, id: &str) -> bool {
        let Ok(customer) = CustomerId::parse(customer) else {
            return false;
        };
        self.rows.lock().is_ok_and(|mut rows| {
            rows.remove(&(keys::customer_pk(partner, &customer), id.to_owned()))
                .is_some()
        })
    }

    /// Keeps only the sizes of uploaded parts, not their bytes.
    /// Every activity of `partner`, in key order.
    pub fn rows_of(&self, partner: &PartnerId) -> Vec<Activity> {
        self.rows
            .lock()
            .map(|rows| {
                rows.values()
                    .filter(|(p, _)| p == partner)
                    .map(|(_, a)| a.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Ends every destination's backoff, as if its time had passed.
    pub fn retry_deliveries_now(&self) {
        if let Ok(mut meta) = self.delivery.lock() {
            for m in meta.values_mut() {
                m.1 = None;
            }
        }
    }

    /// Makes a failing destination's failure start at `since`.
    pub fn fail_since(&self, partner: &PartnerId, id: &DestinationId, since: DateTime<Utc>) {
        if let Ok(mut all) = self.destinations.lock()
            && let Some(f) = all
                .get_mut(&(partner.to_string(), id.clone()))
                .and_then(|d| d.failing.as_mut())
        {
            f.since = since;
        }
    }

    pub fn discarding_object_bytes(mut self) -> Self {
        self.discard_object_bytes = true;
        self
    }

    pub fn blob_count(&self) -> usize {
        self.blobs.lock().map(|b| b.len()).unwrap_or(0)
    }

    /// Multipart uploads started and neither completed nor aborted.
    pub fn open_uploads(&self) -> usize {
        self.uploads.lock().map(|u| u.len()).unwrap_or(0)
    }

    /// Keys of the small objects (an unfinished export's tail) kept.
    pub fn small_objects(&self) -> Vec<String> {
        self.small
            .lock()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The small object (`put_bytes`) at `key`, if any.
    pub fn small_object(&self, key: &str) -> Option<Vec<u8>> {
        self.small.lock().ok()?.get(key).cloned()
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
        items: &[Unchained],
    ) -> Result<InsertOutcome, StoreError> {
        self.insert_now(partner, items)
    }
}

impl MemoryStore {
    fn insert_now(
        &self,
        partner: &PartnerId,
        items: &[Unchained],
    ) -> Result<InsertOutcome, StoreError> {
        let mut rows = locked(&self.rows)?;
        let mut heads = locked(&self.heads)?;
        let key = |a: &Activity| (keys::customer_pk(partner, &a.customer_id), a.id.to_string());
        let existing: Vec<Activity> = items
            .iter()
            .filter_map(|u| rows.get(&key(&u.activity)).map(|(_, s)| s.clone()))
            .collect();
        if !existing.is_empty() {
            return Ok(InsertOutcome::Existing(existing));
        }
        let (written, moved) = append_all(items, |c| {
            heads.get(&keys::customer_pk(partner, c)).cloned()
        })?;
        for a in &written {
            rows.insert(key(a), (partner.clone(), a.clone()));
        }
        heads.extend(
            moved
                .into_iter()
                .map(|(c, head)| (keys::customer_pk(partner, c), head)),
        );
        Ok(InsertOutcome::Written(written))
    }
}

impl super::Destinations for MemoryStore {
    async fn destinations(&self, partner: &PartnerId) -> Result<Vec<Destination>, StoreError> {
        Ok(locked(&self.destinations)?
            .iter()
            .filter(|((p, _), _)| p == partner.as_str())
            .map(|(_, d)| d.clone())
            .collect())
    }

    async fn destination(
        &self,
        partner: &PartnerId,
        id: &DestinationId,
    ) -> Result<Option<Destination>, StoreError> {
        Ok(locked(&self.destinations)?
            .get(&(partner.to_string(), id.clone()))
            .cloned())
    }

    async fn change_destination(
        &self,
        partner: &PartnerId,
        change: &super::DestinationChange,
        record: &Unchained,
    ) -> Result<super::ChangeOutcome, StoreError> {
        use super::{ChangeOutcome, DestinationChange};
        // Held across the record's write: the change and its record are one step.
        let mut all = locked(&self.destinations)?;
        let key = |id: &DestinationId| (partner.to_string(), id.clone());
        let version_of = |all: &BTreeMap<_, Destination>, id: &DestinationId| {
            all.get(&key(id)).map(|d| d.version)
        };
        let allowed = match change {
            DestinationChange::Create(_) => {
                all.keys().filter(|(p, _)| p == partner.as_str()).count()
                    < crate::domain::destination::MAX_DESTINATIONS
            }
            DestinationChange::Update {
                expected, after, ..
            } => version_of(&all, &after.id) == Some(*expected),
            DestinationChange::Delete { id, expected } => version_of(&all, id) == Some(*expected),
        };
        if !allowed {
            return Ok(ChangeOutcome::Refused);
        }
        let written = match self.insert_now(partner, std::slice::from_ref(record))? {
            InsertOutcome::Written(mut w) => w.pop(),
            InsertOutcome::Existing(_) => None,
        }
        .ok_or_else(|| StoreError::Other("the change's record was not written".into()))?;
        match change {
            DestinationChange::Create(d) => {
                all.insert(key(&d.id), (**d).clone());
            }
            DestinationChange::Update { after, replay, .. } => {
                // A changed destination is tried again at once; a replay starts counting anew.
                if let Some(m) = locked(&self.delivery)?.get_mut(&key(&after.id)) {
                    m.1 = None;
                    if *replay {
                        m.0 = 0;
                    }
                }
                if let Some(d) = all.get_mut(&key(&after.id)) {
                    let (delivered, failing, last) =
                        (d.delivered, d.failing.clone(), d.last_delivered_at);
                    *d = (**after).clone();
                    if !replay {
                        d.delivered = delivered;
                        d.failing = failing;
                    }
                    d.last_delivered_at = last;
                }
            }
            DestinationChange::Delete { id, .. } => {
                all.remove(&key(id));
            }
        }
        Ok(ChangeOutcome::Done(Box::new(written)))
    }
}

impl super::DeliveryLog for MemoryStore {
    async fn registered(&self) -> Result<Vec<(PartnerId, DestinationId)>, StoreError> {
        locked(&self.destinations)?
            .keys()
            .map(|(p, id)| {
                PartnerId::parse(p)
                    .map(|p| (p, id.clone()))
                    .map_err(|e| StoreError::Corrupt(e.to_string()))
            })
            .collect()
    }

    async fn claim(
        &self,
        partner: &PartnerId,
        id: &DestinationId,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Option<super::Claimed>, StoreError> {
        let key = (partner.to_string(), id.clone());
        let Some(destination) = locked(&self.destinations)?.get(&key).cloned() else {
            return Ok(None);
        };
        let mut meta = locked(&self.delivery)?;
        let entry = meta.entry(key).or_default();
        if entry.2.is_some_and(|lease| lease >= now) {
            return Ok(None);
        }
        entry.2 = Some(until);
        Ok(Some(super::Claimed {
            destination,
            attempts: entry.0,
            next_attempt_at: entry.1,
            lease_until: until,
        }))
    }

    async fn advance(
        &self,
        partner: &PartnerId,
        claim: &super::Claimed,
        from: u64,
        to: u64,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let key = (partner.to_string(), claim.destination.id.clone());
        // Destinations before delivery's state, as every step that takes both.
        let mut all = locked(&self.destinations)?;
        let mut meta = locked(&self.delivery)?;
        let (Some(entry), Some(d)) = (meta.get_mut(&key), all.get_mut(&key)) else {
            return Ok(false);
        };
        if d.delivered != from || entry.2 != Some(claim.lease_until) {
            return Ok(false);
        }
        d.delivered = to;
        d.last_delivered_at = Some(now);
        d.failing = None;
        *entry = (0, None, entry.2);
        Ok(true)
    }

    async fn failed(
        &self,
        partner: &PartnerId,
        claim: &super::Claimed,
        at: u64,
        after: &crate::domain::delivery::AfterFailure,
        record: Option<&Unchained>,
    ) -> Result<bool, StoreError> {
        let key = (partner.to_string(), claim.destination.id.clone());
        // Destinations before delivery's state, as every step that takes both.
        let mut all = locked(&self.destinations)?;
        let mut meta = locked(&self.delivery)?;
        let (Some(entry), Some(d)) = (meta.get_mut(&key), all.get_mut(&key)) else {
            return Ok(false);
        };
        if d.delivered != at
            || entry.2 != Some(claim.lease_until)
            || d.version != claim.destination.version
        {
            return Ok(false);
        }
        if let Some(record) = record {
            self.insert_now(partner, std::slice::from_ref(record))?;
        }
        d.failing = Some(after.failing.clone());
        if let Some(pause) = &after.pause {
            d.paused = Some(pause.clone());
            d.version += 1;
        }
        *entry = (after.attempts, Some(after.next_attempt_at), entry.2);
        Ok(true)
    }

    async fn release(&self, partner: &PartnerId, claim: &super::Claimed) -> Result<(), StoreError> {
        let key = (partner.to_string(), claim.destination.id.clone());
        if let Some(entry) = locked(&self.delivery)?.get_mut(&key)
            && entry.2 == Some(claim.lease_until)
        {
            entry.2 = None;
        }
        Ok(())
    }
}

impl super::FeedLog for MemoryStore {
    async fn feed_head(&self, partner: &PartnerId) -> Result<u64, StoreError> {
        Ok(locked(&self.feed_heads)?.get(partner).copied().unwrap_or(0))
    }

    async fn append_feed(
        &self,
        partner: &PartnerId,
        expected: u64,
        entries: &[crate::domain::feed::FeedEntry],
    ) -> Result<super::FeedAppend, StoreError> {
        let mut rows = locked(&self.rows)?;
        let mut heads = locked(&self.feed_heads)?;
        let mut feed = locked(&self.feed)?;
        if heads.get(partner).copied().unwrap_or(0) != expected {
            return Ok(super::FeedAppend::HeadMoved);
        }
        let key = |e: &crate::domain::feed::FeedEntry| {
            (
                keys::customer_pk(partner, &e.customer_id),
                e.activity_id.to_string(),
            )
        };
        let placed: Vec<usize> = entries
            .iter()
            .enumerate()
            .filter(|(_, e)| {
                rows.get(&key(e))
                    .is_none_or(|(_, a)| a.feed_position.is_some())
            })
            .map(|(i, _)| i)
            .collect();
        if !placed.is_empty() {
            return Ok(super::FeedAppend::Placed(placed));
        }
        for (i, e) in entries.iter().enumerate() {
            let position = expected + 1 + i as u64;
            if let Some((_, a)) = rows.get_mut(&key(e)) {
                a.feed_position = Some(position);
            }
            feed.insert(
                (partner.to_string(), position),
                (e.customer_id.clone(), e.activity_id.clone()),
            );
        }
        heads.insert(partner.clone(), expected + entries.len() as u64);
        Ok(super::FeedAppend::Appended)
    }

    async fn feed_page(
        &self,
        partner: &PartnerId,
        after: u64,
        through: u64,
        limit: usize,
    ) -> Result<super::FeedPage, StoreError> {
        let rows = locked(&self.rows)?;
        let feed = locked(&self.feed)?;
        let mut page = super::FeedPage {
            activities: Vec::new(),
            last: through.max(after),
        };
        if after >= through || limit == 0 {
            return Ok(page);
        }
        let range = (partner.to_string(), after + 1)..=(partner.to_string(), through);
        let entries: Vec<_> = feed.range(range).take(limit).collect();
        if entries.len() == limit {
            page.last = entries.last().map_or(page.last, |((_, p), _)| *p);
        }
        for ((_, position), (customer, id)) in entries {
            let key = (keys::customer_pk(partner, customer), id.to_string());
            if let Some((_, a)) = rows.get(&key) {
                let mut a = a.clone();
                a.feed_position = Some(*position);
                page.activities.push(a);
            }
        }
        Ok(page)
    }
}

impl ChainIndex for MemoryStore {
    async fn links_between(
        &self,
        partner: &PartnerId,
        customer: &CustomerId,
        from: u64,
        to: u64,
    ) -> Result<ChainLinks, StoreError> {
        let pk = keys::customer_pk(partner, customer);
        let links = locked(&self.rows)?
            .range((pk.clone(), String::new())..)
            .take_while(|((p, _), _)| *p == pk)
            .filter_map(|(_, (_, a))| a.chain.clone())
            .filter(|l| (from..=to).contains(&l.sequence))
            .collect();
        Ok(ChainLinks { links })
    }
}

impl Anchors for MemoryStore {
    async fn first_key(&self, prefix: &str) -> Result<Option<String>, StoreError> {
        Ok(locked(&self.anchors)?
            .range(prefix.to_owned()..)
            .next()
            .map(|(k, _)| k.clone())
            .filter(|k| k.starts_with(prefix)))
    }

    async fn put_new(&self, key: &str, body: Vec<u8>) -> Result<bool, StoreError> {
        let mut anchors = locked(&self.anchors)?;
        if anchors.contains_key(key) {
            return Ok(false);
        }
        anchors.insert(key.to_owned(), body);
        Ok(true)
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(locked(&self.anchors)?.get(key).cloned())
    }
}

impl super::HeadsMoved for MemoryStore {
    async fn heads_moved(
        &self,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<super::MovedHead>, StoreError> {
        let heads = locked(&self.heads)?;
        let mut moved = Vec::new();
        for (pk, head) in heads.iter() {
            if !head.recorded_at.is_some_and(|t| from <= t && t <= until) {
                continue;
            }
            let (partner, customer) = pk
                .strip_prefix("P#")
                .and_then(|rest| rest.split_once("#C#"))
                .ok_or_else(|| StoreError::Corrupt(format!("a head's key {pk}")))?;
            moved.push(super::MovedHead {
                partner: PartnerId::parse(partner)
                    .map_err(|e| StoreError::Corrupt(format!("{pk}: {e}")))?,
                customer: CustomerId::parse(customer)
                    .map_err(|e| StoreError::Corrupt(format!("{pk}: {e}")))?,
                sequence: head.sequence,
                hash: head.hash.clone(),
            });
        }
        Ok(moved)
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
        // Written once, as the bucket's policy has it.
        locked(&self.blobs)?
            .entry(key.to_owned())
            .or_insert_with(|| json.to_owned());
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<String, StoreError> {
        locked(&self.blobs)?
            .get(key)
            .cloned()
            .ok_or_else(|| StoreError::Other(format!("no blob {key}")))
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

    async fn admit_job(&self, job: &ExportJob, max_active: u32) -> Result<Admission, StoreError> {
        let mut jobs = locked(&self.jobs)?;
        let mut slots = locked(&self.slots)?;
        let held = slots.entry(job.partner.clone()).or_default();
        // Slots whose job ended or is gone are given back.
        held.retain(|_, id| {
            jobs.get(&(job.partner.clone(), id.clone()))
                .is_some_and(ExportJob::is_active)
        });
        let request = job.spec.request_key();
        if let Some(id) = held.get(&request)
            && let Some(other) = jobs.get(&(job.partner.clone(), id.clone()))
        {
            return Ok(Admission::Duplicate(Box::new(other.clone())));
        }
        if held.len() >= max_active as usize {
            return Ok(Admission::Full);
        }
        held.insert(request, job.id.clone());
        jobs.insert((job.partner.clone(), job.id.clone()), job.clone());
        Ok(Admission::Created)
    }

    async fn release_slot(&self, job: &ExportJob) -> Result<(), StoreError> {
        if let Some(held) = locked(&self.slots)?.get_mut(&job.partner) {
            held.retain(|_, id| *id != job.id);
        }
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
        match job.status {
            ExportStatus::Pending => {}
            // A run that died: its lease ran out.
            ExportStatus::Running if job.lease_until.is_some_and(|l| l < now) => {
                job.failures += 1;
            }
            _ => return Ok(None),
        }
        job.status = ExportStatus::Running;
        job.lease_until = Some(crate::domain::time::truncate_millis(lease_until));
        job.attempt += 1;
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
    uploads: Objects,
    discard_bytes: bool,
    key: String,
    upload_id: String,
}

impl MemoryUpload {
    fn with_upload<T>(&self, f: impl FnOnce(&mut StoredObject) -> T) -> Result<T, StoreError> {
        let mut uploads = locked(&self.uploads)?;
        let object = uploads
            .get_mut(&self.upload_id)
            .ok_or_else(|| StoreError::Other(format!("no upload {}", self.upload_id)))?;
        Ok(f(object))
    }
}

impl PartSink for MemoryUpload {
    fn upload_id(&self) -> &str {
        &self.upload_id
    }

    /// A part's "ETag" here is its size.
    fn etags(&self) -> Vec<String> {
        self.with_upload(|o| o.part_sizes.iter().map(usize::to_string).collect())
            .unwrap_or_default()
    }

    async fn upload_part(&mut self, number: i32, bytes: Vec<u8>) -> Result<(), StoreError> {
        let discard = self.discard_bytes;
        self.with_upload(|object| {
            let expected = object.part_sizes.len() + 1;
            if usize::try_from(number).ok() != Some(expected) {
                return Err(StoreError::Other(format!(
                    "part {number} uploaded where part {expected} was due"
                )));
            }
            object.part_sizes.push(bytes.len());
            if !discard {
                object.bytes.extend_from_slice(&bytes);
            }
            Ok(())
        })?
    }

    async fn complete(&mut self) -> Result<(), StoreError> {
        let object = locked(&self.uploads)?
            .remove(&self.upload_id)
            .ok_or_else(|| StoreError::Other(format!("no upload {}", self.upload_id)))?;
        locked(&self.objects)?.insert(self.key.clone(), object);
        Ok(())
    }

    async fn abort(&mut self) -> Result<(), StoreError> {
        locked(&self.uploads)?.remove(&self.upload_id);
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
        let upload_id = ulid::Ulid::generate().to_string();
        locked(&self.uploads)?.insert(
            upload_id.clone(),
            StoredObject {
                content_type: content_type.to_owned(),
                content_disposition: content_disposition.to_owned(),
                ..StoredObject::default()
            },
        );
        Ok(self.resume_upload(key, &upload_id, Vec::new()))
    }

    /// Parts already uploaded are in the store; `etags` are not needed to find them.
    fn resume_upload(&self, key: &str, upload_id: &str, _etags: Vec<String>) -> MemoryUpload {
        MemoryUpload {
            objects: self.objects.clone(),
            uploads: self.uploads.clone(),
            discard_bytes: self.discard_object_bytes,
            key: key.to_owned(),
            upload_id: upload_id.to_owned(),
        }
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

    async fn put_bytes(&self, key: &str, bytes: Vec<u8>) -> Result<(), StoreError> {
        locked(&self.small)?.insert(key.to_owned(), bytes);
        Ok(())
    }

    /// Kept as a completed upload of the parts S3 would be sent.
    async fn put_file(
        &self,
        key: &str,
        path: &std::path::Path,
        content_type: &str,
        content_disposition: &str,
        part_bytes: usize,
    ) -> Result<(), StoreError> {
        let reading =
            |e: std::io::Error| StoreError::Other(format!("reading {}: {e}", path.display()));
        let size = usize::try_from(std::fs::metadata(path).map_err(reading)?.len())
            .map_err(|e| StoreError::Other(e.to_string()))?;
        let part = part_bytes.max(crate::export::parts::MIN_PART_BYTES);
        let part_sizes = if size <= part {
            vec![size]
        } else {
            (0..size)
                .step_by(part)
                .map(|o| part.min(size - o))
                .collect()
        };
        let bytes = if self.discard_object_bytes {
            Vec::new()
        } else {
            std::fs::read(path).map_err(reading)?
        };
        locked(&self.objects)?.insert(
            key.to_owned(),
            StoredObject {
                content_type: content_type.to_owned(),
                content_disposition: content_disposition.to_owned(),
                bytes,
                part_sizes,
            },
        );
        Ok(())
    }

    async fn get_bytes(&self, key: &str) -> Result<Vec<u8>, StoreError> {
        locked(&self.small)?
            .get(key)
            .cloned()
            .ok_or_else(|| StoreError::Other(format!("no object {key}")))
    }

    async fn delete_object(&self, key: &str) -> Result<(), StoreError> {
        locked(&self.small)?.remove(key);
        locked(&self.objects)?.remove(key);
        Ok(())
    }
}

impl RequestCounter for MemoryStore {
    async fn count(
        &self,
        partner: &PartnerId,
        window_start: i64,
        limit: u32,
        _expires_at: i64,
    ) -> Result<bool, StoreError> {
        let mut requests = locked(&self.requests)?;
        let n = requests.entry((partner.clone(), window_start)).or_default();
        if *n >= limit {
            return Ok(false);
        }
        *n += 1;
        Ok(true)
    }
}
