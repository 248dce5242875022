//! Ports (what the handlers need from storage) and their adapters.
//!
//! Each trait is small and names one capability, so a handler depends only on what it uses and
//! unit tests can use the in-memory adapter.

use std::future::Future;

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::domain::chain::{Head, Link, Record};
use crate::domain::destination::{Destination, DestinationId};
use crate::domain::integrity::PublicKey;
use crate::domain::{
    Activity, ActivityId, ActivityQuery, CustomerId, ExportId, ExportJob, PageKey, PartnerId,
};

pub mod keys;

#[cfg(feature = "service")]
mod destinations;
#[cfg(feature = "service")]
pub mod dynamodb;
#[cfg(feature = "service")]
mod feed;
#[cfg(feature = "service")]
mod items;
#[cfg(feature = "service")]
pub mod jobs;
#[cfg(feature = "service")]
pub mod kms;
#[cfg(any(test, feature = "testing"))]
pub mod memory;
#[cfg(feature = "service")]
pub mod s3;
#[cfg(feature = "service")]
pub(crate) mod sdk_error;
#[cfg(feature = "service")]
pub mod secrets;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend is throttling us even after the SDK's own retries: the caller may retry later.
    #[error("storage is throttling requests")]
    Throttled,
    /// A transient failure (5xx, timeout, transaction conflict): safe to retry.
    #[error("storage is temporarily unavailable: {0}")]
    Unavailable(String),
    /// A later run of an export took its job over; this run must stop writing to it.
    #[error("the export job was taken over by a later run")]
    TakenOver,
    /// What storage holds cannot be read back as what was written.
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
    /// Anything else: a bug, a missing table, bad credentials, a request the service refused.
    #[error("storage failure: {0}")]
    Other(String),
}

impl StoreError {
    /// Whether the same call may succeed later.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Throttled | Self::Unavailable(_))
    }
}

/// An activity to record, not yet chained, and the record its hash will cover.
#[derive(Debug, Clone)]
pub struct Unchained {
    pub activity: Activity,
    pub record: Record,
}

impl Unchained {
    /// `activity` of `partner`; `details` is its details document when the activity holds
    /// only the key of details kept in the bucket.
    pub fn new(
        partner: &PartnerId,
        activity: Activity,
        details: Option<&str>,
    ) -> Result<Self, StoreError> {
        let record = activity
            .record(partner, details)
            .map_err(|e| StoreError::Other(format!("record of activity {}: {e}", activity.id)))?;
        Ok(Self { activity, record })
    }
}

/// Each customer's head after a batch, in the order the customers first appear.
pub type MovedHeads<'a> = Vec<(&'a CustomerId, Head)>;

/// Appends each of `items`, in order, to its customer's chain, starting from the head
/// `head_of` gives (`None`: nothing chained yet). Returns the activities with their links and
/// each customer's new head: what every store writes.
pub fn append_all<'a>(
    items: &'a [Unchained],
    mut head_of: impl FnMut(&CustomerId) -> Option<Head>,
) -> Result<(Vec<Activity>, MovedHeads<'a>), StoreError> {
    let mut moved: MovedHeads<'a> = Vec::new();
    let mut written = Vec::with_capacity(items.len());
    for u in items {
        let customer = &u.activity.customer_id;
        let i = match moved.iter().position(|(c, _)| *c == customer) {
            Some(i) => i,
            None => {
                moved.push((customer, head_of(customer).unwrap_or_else(Head::genesis)));
                moved.len() - 1
            }
        };
        let mut record = u.record.clone();
        let head = &mut moved[i].1;
        let link = head
            .append(&mut record)
            .map_err(|e| StoreError::Corrupt(format!("chain head of {customer}: {e}")))?;
        let recorded_at = head.recorded_at.unwrap_or(u.activity.recorded_at);
        // Expiry moves with a recording time held back to the head's.
        let later_ms = (recorded_at - u.activity.recorded_at).num_milliseconds();
        written.push(Activity {
            recorded_at,
            expires_at: u.activity.expires_at + (later_ms + 999) / 1000,
            chain: Some(link),
            ..u.activity.clone()
        });
    }
    Ok((written, moved))
}

/// Result of writing a batch of new activities.
#[derive(Debug)]
pub enum InsertOutcome {
    /// Every activity was written: as stored, with its link, in the order given.
    Written(Vec<Activity>),
    /// Some keys already exist; nothing was written. Holds the stored records for those keys.
    Existing(Vec<Activity>),
}

/// Records activities.
pub trait ActivityWriter: Send + Sync {
    /// Writes all of `items` atomically, each only if its key is new, appending each to its
    /// customer's chain (in the order given) and moving the chain heads in the same write.
    /// Another writer moving a head meanwhile makes it start over, a bounded number of times
    /// (then `StoreError::Unavailable`).
    fn insert_all(
        &self,
        partner: &PartnerId,
        items: &[Unchained],
    ) -> impl Future<Output = Result<InsertOutcome, StoreError>> + Send;
}

/// A signature by the service's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// The key that signed (its ARN in AWS).
    pub key_id: String,
    /// The DER-encoded ECDSA signature.
    pub der: Vec<u8>,
}

/// Signs with the service's asymmetric key (ECDSA P-256 with SHA-256).
pub trait Signer: Send + Sync {
    fn sign(&self, message: &[u8]) -> impl Future<Output = Result<Signed, StoreError>> + Send;
    /// The public half of the key.
    fn public_key(&self) -> impl Future<Output = Result<PublicKey, StoreError>> + Send;
}

/// A customer's chain in sequence order.
pub trait ChainIndex: Send + Sync {
    /// The customer's chain links with sequences `from` to `to` (inclusive; in any order): one
    /// read of the table's `bySequence` index (more only past 1 MB of links).
    fn links_between(
        &self,
        partner: &PartnerId,
        customer: &CustomerId,
        from: u64,
        to: u64,
    ) -> impl Future<Output = Result<ChainLinks, StoreError>> + Send;
}

/// A customer's chain links from a sequence on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChainLinks {
    pub links: Vec<Link>,
}

/// The append-only store of signed heads ([`anchor`](crate::domain::integrity::anchor)): an S3
/// bucket under Object Lock in compliance mode in AWS, whose objects no one can overwrite or
/// delete before they expire.
pub trait Anchors: Send + Sync {
    /// The first key listed under `prefix` (a customer's latest anchor), if any.
    fn first_key(
        &self,
        prefix: &str,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;

    /// Writes `body` at `key` unless an object is there; `false` when one was.
    fn put_new(
        &self,
        key: &str,
        body: Vec<u8>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The object at `key` (a seal), if there is one.
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send;
}

/// A customer's head, as the heads that moved are listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MovedHead {
    pub partner: PartnerId,
    pub customer: CustomerId,
    pub sequence: u64,
    pub hash: String,
}

/// Every tenant's chain heads by when they last moved: what the sealer reads.
pub trait HeadsMoved: Send + Sync {
    /// The heads whose last activity was recorded from `from` to `until` (both included).
    fn heads_moved(
        &self,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<MovedHead>, StoreError>> + Send;
}

/// What one append to a tenant's feed did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedAppend {
    /// The entries now hold positions `expected + 1 ..= expected + n`, in the order given.
    Appended,
    /// The feed's head is no longer at `expected` (another sequencer appended): nothing was
    /// written; read the head again.
    HeadMoved,
    /// Nothing was written: the entries at these indexes hold a position already (a stream
    /// record delivered again) or their activity is gone. Append the others.
    Placed(Vec<usize>),
}

/// One read of a tenant's feed.
#[derive(Debug, Default)]
pub struct FeedPage {
    /// The activities at the positions read, in position order, each with its `feed_position`.
    /// A position whose activity is gone (past retention) is left out.
    pub activities: Vec<Activity>,
    /// The last position read: every position up to it was looked at.
    pub last: u64,
}

/// A tenant's feed: its head, appends after it, and reads in position order.
pub trait FeedLog: Send + Sync {
    /// The last position given (0: none yet), read strongly.
    fn feed_head(
        &self,
        partner: &PartnerId,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Places `entries` (at most [`MAX_APPEND`](crate::domain::feed::MAX_APPEND)) after
    /// position `expected`, atomically: every one, or none.
    fn append_feed(
        &self,
        partner: &PartnerId,
        expected: u64,
        entries: &[crate::domain::feed::FeedEntry],
    ) -> impl Future<Output = Result<FeedAppend, StoreError>> + Send;

    /// Positions `after + 1 ..= through` in order, stopping after `limit` activities.
    fn feed_page(
        &self,
        partner: &PartnerId,
        after: u64,
        through: u64,
        limit: usize,
    ) -> impl Future<Output = Result<FeedPage, StoreError>> + Send;
}

/// A change to a tenant's destinations, written together with the activity that records it.
#[derive(Debug, Clone)]
pub enum DestinationChange {
    /// A new destination, if the tenant has fewer than
    /// [`MAX_DESTINATIONS`](crate::domain::destination::MAX_DESTINATIONS).
    Create(Box<Destination>),
    /// New settings for a destination still at version `expected` (`after.version` is the
    /// next). `replay` also moves delivery's cursor to `after.delivered` and clears its failure.
    Update {
        expected: u64,
        after: Box<Destination>,
        replay: bool,
    },
    /// Removes a destination still at version `expected`.
    Delete { id: DestinationId, expected: u64 },
}

/// How a destination change ended.
#[derive(Debug)]
pub enum ChangeOutcome {
    /// Made, and recorded as the activity returned.
    Done(Box<Activity>),
    /// Not made, nothing written: the tenant has its most destinations (create), or the
    /// destination moved on from the expected version or is gone (update, delete).
    Refused,
}

/// A tenant's streaming destinations.
pub trait Destinations: Send + Sync {
    /// Every destination of `partner`, oldest first, read strongly.
    fn destinations(
        &self,
        partner: &PartnerId,
    ) -> impl Future<Output = Result<Vec<Destination>, StoreError>> + Send;

    fn destination(
        &self,
        partner: &PartnerId,
        id: &DestinationId,
    ) -> impl Future<Output = Result<Option<Destination>, StoreError>> + Send;

    /// Makes `change` and records `record` (an activity of the partner's own account) in one
    /// atomic write: both, or neither.
    fn change_destination(
        &self,
        partner: &PartnerId,
        change: &DestinationChange,
        record: &Unchained,
    ) -> impl Future<Output = Result<ChangeOutcome, StoreError>> + Send;
}

/// A destination as delivery takes it: with its retry state.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub destination: Destination,
    /// Failed attempts in a row.
    pub attempts: u32,
    /// Not to be tried again before this (a failing destination's backoff).
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The claim: held until then, by this run.
    pub lease_until: DateTime<Utc>,
}

/// Delivery's hold on destinations and its progress.
pub trait DeliveryLog: Send + Sync {
    /// Every live destination of every tenant (for the scheduled run), oldest first per tenant.
    fn registered(
        &self,
    ) -> impl Future<Output = Result<Vec<(PartnerId, DestinationId)>, StoreError>> + Send;

    /// Takes `id` for delivery until `until`, unless another run holds it or it is gone.
    fn claim(
        &self,
        partner: &PartnerId,
        id: &DestinationId,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<Claimed>, StoreError>> + Send;

    /// Moves the cursor of the claimed destination from `from` to `to` and clears its failure,
    /// only if the cursor is still at `from` (a replay moves it) and the claim still holds.
    fn advance(
        &self,
        partner: &PartnerId,
        claim: &Claimed,
        from: u64,
        to: u64,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Records a failed attempt of the claimed destination (its cursor still at `at`); when
    /// `after.pause` is set it also pauses it, recorded by `record` in the same write.
    fn failed(
        &self,
        partner: &PartnerId,
        claim: &Claimed,
        at: u64,
        after: &crate::domain::delivery::AfterFailure,
        record: Option<&Unchained>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Gives the claim back.
    fn release(
        &self,
        partner: &PartnerId,
        claim: &Claimed,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// One storage page of a query, newest first.
#[derive(Debug, Default)]
pub struct StorePage {
    pub items: Vec<Activity>,
    /// Where the storage stopped reading, if there may be more: continue strictly after it.
    pub last_evaluated: Option<PageKey>,
}

/// Reads activities.
pub trait ActivityReader: Send + Sync {
    fn get(
        &self,
        partner: &PartnerId,
        customer: &CustomerId,
        id: &ActivityId,
    ) -> impl Future<Output = Result<Option<Activity>, StoreError>> + Send;

    /// One storage read of matching activities strictly after `after`, newest first.
    /// `want` is how many more the caller needs (`usize::MAX`: as many as one storage read
    /// returns); the adapter may return more or fewer.
    fn query_page(
        &self,
        partner: &PartnerId,
        query: &ActivityQuery,
        after: Option<&PageKey>,
        want: usize,
    ) -> impl Future<Output = Result<StorePage, StoreError>> + Send;
}

/// Keeps details objects too large for a record. They are never deleted (only the bucket's
/// lifecycle expires them).
pub trait DetailsBlobs: Send + Sync {
    fn put(&self, key: &str, json: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn get(&self, key: &str) -> impl Future<Output = Result<String, StoreError>> + Send;
}

/// One multipart upload in progress.
pub trait PartSink: Send {
    /// The upload's id, to go on with it from another invocation.
    fn upload_id(&self) -> &str;
    /// The ETags of the parts uploaded so far, in order.
    fn etags(&self) -> Vec<String>;
    /// Uploads part `number` (1-based, in order).
    fn upload_part(
        &mut self,
        number: i32,
        bytes: Vec<u8>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Makes the object visible, made of the parts uploaded.
    fn complete(&mut self) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Discards the parts; no object appears.
    fn abort(&mut self) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Export files in the bucket.
pub trait ExportObjects: Send + Sync {
    type Upload: PartSink;

    fn start_upload(
        &self,
        key: &str,
        content_type: &str,
        content_disposition: &str,
    ) -> impl Future<Output = Result<Self::Upload, StoreError>> + Send;

    /// The upload `upload_id` of `key`, started by an earlier invocation, whose parts so far
    /// have `etags`.
    fn resume_upload(&self, key: &str, upload_id: &str, etags: Vec<String>) -> Self::Upload;

    /// A presigned GET of `key` that expires after `ttl`, with the response headers set.
    fn presign_get(
        &self,
        key: &str,
        content_type: &str,
        content_disposition: &str,
        ttl: Duration,
    ) -> impl Future<Output = Result<String, StoreError>> + Send;

    /// Writes a small object (an unfinished export's tail).
    fn put_bytes(
        &self,
        key: &str,
        bytes: Vec<u8>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn get_bytes(&self, key: &str) -> impl Future<Output = Result<Vec<u8>, StoreError>> + Send;

    /// Uploads the local file at `path` as `key`, read from the disk as it is sent: in one
    /// request, or as a multipart upload of `part_bytes` parts when it is larger (aborted if a
    /// part fails, so nothing half-written becomes visible).
    fn put_file(
        &self,
        key: &str,
        path: &std::path::Path,
        content_type: &str,
        content_disposition: &str,
        part_bytes: usize,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn delete_object(&self, key: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// What became of a request for a new export.
#[derive(Debug)]
pub enum Admission {
    /// The job was created and holds one of the tenant's export slots.
    Created,
    /// An identical request (same [`ExportSpec::request_key`](crate::domain::ExportSpec::request_key))
    /// is pending or running: its job.
    Duplicate(Box<ExportJob>),
    /// The tenant has its maximum of exports pending or running.
    Full,
}

/// Counts each tenant's requests per window (the rate limit).
pub trait RequestCounter: Send + Sync {
    /// Counts a request of `partner` in the window starting at `window_start` (epoch seconds)
    /// unless the window has `limit` already; says whether it was counted. The counter may be
    /// removed after `expires_at`.
    fn count(
        &self,
        partner: &PartnerId,
        window_start: i64,
        limit: u32,
        expires_at: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// Export job records.
pub trait ExportJobs: Send + Sync {
    /// Creates a job outside the tenant's slots (tests setting up a state; the API admits).
    fn create_job(&self, job: &ExportJob) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Creates `job` if the tenant has fewer than `max_active` exports pending or running and
    /// none with the same request; atomically with taking a slot. Slots whose job has ended or
    /// expired are given back on the way.
    fn admit_job(
        &self,
        job: &ExportJob,
        max_active: u32,
    ) -> impl Future<Output = Result<Admission, StoreError>> + Send;

    /// Gives back the slot `job` holds (after it ended); a no-op if it holds none.
    fn release_slot(&self, job: &ExportJob) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn get_job(
        &self,
        partner: &PartnerId,
        id: &ExportId,
    ) -> impl Future<Output = Result<Option<ExportJob>, StoreError>> + Send;

    /// Takes the job for a worker run: pending, or running with an expired lease (a run that
    /// died: `failures` goes up). Returns the job as claimed (`attempt` incremented, checkpoint
    /// and counters kept), or `None` if another run owns or finished it.
    fn claim_job(
        &self,
        partner: &PartnerId,
        id: &ExportId,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<ExportJob>, StoreError>> + Send;

    /// Records progress, or the end state, of the run `job.attempt`; fails with
    /// `StoreError::TakenOver` if a later run took the job over.
    fn update_job(&self, job: &ExportJob) -> impl Future<Output = Result<(), StoreError>> + Send;
}
