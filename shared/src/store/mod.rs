//! Ports (what the handlers need from storage) and their adapters.
//!
//! Each trait is small and names one capability, so a handler depends only on what it uses and
//! unit tests can use the in-memory adapter.

use std::future::Future;

use crate::domain::{Activity, ActivityId, ActivityQuery, CustomerId, PageKey, PartnerId};

pub mod dynamodb;
pub mod keys;
pub mod memory;
pub mod s3;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend is throttling us even after the SDK's own retries: the caller may retry later.
    #[error("storage is throttling requests")]
    Throttled,
    /// A transient failure (5xx, timeout, transaction conflict): safe to retry.
    #[error("storage is temporarily unavailable: {0}")]
    Unavailable(String),
    /// Anything else: a bug, a missing table, bad credentials.
    #[error("storage failure: {0}")]
    Other(String),
}

/// Result of writing a batch of new activities.
#[derive(Debug)]
pub enum InsertOutcome {
    /// Every activity was written.
    Written,
    /// Some keys already exist; nothing was written. Holds the stored records for those keys.
    Existing(Vec<Activity>),
}

/// Records activities.
pub trait ActivityWriter: Send + Sync {
    /// Writes all of `items` atomically, each only if its key is new.
    fn insert_all(
        &self,
        partner: &PartnerId,
        items: &[Activity],
    ) -> impl Future<Output = Result<InsertOutcome, StoreError>> + Send;
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
    /// `want` is how many more the caller needs; the adapter may return more or fewer.
    fn query_page(
        &self,
        partner: &PartnerId,
        query: &ActivityQuery,
        after: Option<&PageKey>,
        want: usize,
    ) -> impl Future<Output = Result<StorePage, StoreError>> + Send;
}

/// Keeps details objects too large for a record.
pub trait DetailsBlobs: Send + Sync {
    fn put(&self, key: &str, json: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn get(&self, key: &str) -> impl Future<Output = Result<String, StoreError>> + Send;
    fn delete(&self, key: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
}
