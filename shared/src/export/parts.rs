//! Streams an export to a multipart upload: parts of at least 5 MiB (S3's minimum for every
//! part but the last), at most 10,000 parts, one part in memory at a time.

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

    /// Uploads the remaining bytes as the last part and completes the object. If either fails,
    /// the upload is aborted, so no object and no open upload is left behind.
    pub async fn finish(mut self, last: Vec<u8>) -> Result<(u64, i32), PartError> {
        let result = async {
            if !last.is_empty() || self.parts == 0 {
                self.upload(last).await?;
            }
            self.sink.complete().await?;
            Ok::<_, PartError>(())
        }
        .await;
        match result {
            Ok(()) => Ok((self.bytes, self.parts)),
            Err(e) => {
                if let Err(abort) = self.sink.abort().await {
                    tracing::warn!(error = %abort, "could not abort the multipart upload");
                }
                Err(e)
            }
        }
    }

    /// Abandons the upload; nothing becomes visible.
    pub async fn abort(mut self) -> Result<(), StoreError> {
        self.sink.abort().await
    }
}
