//! Streams an export to a multipart upload: parts of at least 5 MiB (S3's minimum for every
//! part but the last), at most 10,000 parts, one part in memory at a time.

use crate::domain::{PageKey, ResumePoint};
use crate::store::{PartSink, StoreError};

/// S3's smallest part (all but the last).
pub const MIN_PART_BYTES: usize = 5 * 1024 * 1024;
/// S3's largest number of parts.
pub const MAX_PARTS: i32 = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum PartError {
    #[error("the export is larger than {MAX_PARTS} parts of {0} bytes")]
    TooManyParts(usize),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct PartWriter<S: PartSink> {
    sink: S,
    part_size: usize,
    parts: i32,
    bytes: u64,
}

impl<S: PartSink> PartWriter<S> {
    pub fn new(sink: S, part_size: usize) -> Self {
        Self {
            sink,
            part_size: part_size.max(MIN_PART_BYTES),
            parts: 0,
            bytes: 0,
        }
    }

    /// Goes on with an upload an earlier invocation started: `parts` parts of `bytes` in all
    /// are in it.
    pub fn resume(sink: S, part_size: usize, parts: i32, bytes: u64) -> Self {
        Self {
            parts,
            bytes,
            ..Self::new(sink, part_size)
        }
    }

    /// Where the upload stands, for another invocation to go on after `after` with `rows`
    /// rows written (the caller adds a tail if it has one).
    pub fn resume_point(&self, rows: u64, after: Option<PageKey>) -> ResumePoint {
        ResumePoint {
            upload_id: self.sink.upload_id().to_owned(),
            etags: self.sink.etags(),
            uploaded_bytes: self.bytes,
            rows,
            after,
            tail_key: None,
            tail_sha256: None,
            manifest_state: None,
            manifest_state_sha256: None,
            files: Vec::new(),
            signature: None,
        }
    }

    /// The size a buffer should reach before it is handed over as a part.
    pub fn part_size(&self) -> usize {
        self.part_size
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Uploads `data` as the next part. Only the last part may be under `part_size`.
    pub async fn upload(&mut self, data: Vec<u8>) -> Result<(), PartError> {
        if self.parts >= MAX_PARTS {
            return Err(PartError::TooManyParts(self.part_size));
        }
        self.parts += 1;
        self.bytes += data.len() as u64;
        self.sink.upload_part(self.parts, data).await?;
        Ok(())
    }

    /// Uploads the remaining bytes as the last part and completes the object. If either fails
    /// the upload stays open: the caller goes on from its resume point or aborts it.
    pub async fn finish(mut self, last: Vec<u8>) -> Result<(u64, i32), PartError> {
        if !last.is_empty() || self.parts == 0 {
            self.upload(last).await?;
        }
        self.sink.complete().await?;
        Ok((self.bytes, self.parts))
    }

    /// Abandons the upload; nothing becomes visible.
    pub async fn abort(mut self) -> Result<(), StoreError> {
        self.sink.abort().await
    }
}
