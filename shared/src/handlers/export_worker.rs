//! The export worker: pages through the log (the same query path as the API, newest first),
//! encodes rows and streams them to a multipart upload, one part in memory at a time.

use chrono::{TimeDelta, Utc};
use serde_json::value::RawValue;
use tracing::instrument;

use crate::config::Config;
use crate::domain::export::MAX_EXPORT_ROWS;
use crate::domain::{
    Activity, Details, ExportFormat, ExportId, ExportJob, ExportStatus, PartnerId,
};
use crate::export::csv::CsvEncoder;
use crate::export::parts::{PartError, PartWriter};
use crate::http::response::{ActivityView, Links};
use crate::launch::WorkerEvent;
use crate::store::{ActivityReader, DetailsBlobs, ExportJobs, ExportObjects, StoreError};

/// How long a run holds a job before another run may take it over (past the Lambda timeout).
pub const LEASE: TimeDelta = TimeDelta::minutes(16);
/// How often (in rows) the job's `rowCount` is brought up to date while running.
pub const PROGRESS_EVERY_ROWS: u64 = 20_000;
/// Asks the store for as much as one read returns (DynamoDB: 1 MB per Query, no `Limit`):
/// half the round trips of 1,000-row pages for the same read capacity.
const WHOLE_PAGES: usize = usize::MAX;
/// Room past the part size for the row that crosses it (rows with large details grow the
/// buffer instead).
const PART_SLACK: usize = 64 * 1024;
/// Runs before a job that keeps meeting transient failures is marked failed.
pub const MAX_ATTEMPTS: u32 = 3;

/// How a run ended; the invocation's result (`{"status": "succeeded", "rows": …}`).
#[derive(Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum RunOutcome {
    Succeeded {
        rows: u64,
        bytes: u64,
        parts: i32,
    },
    Failed {
        error: String,
    },
    /// Another run owns or finished the job (a duplicate or late invocation).
    Skipped,
}

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("bad worker event: {0}")]
    BadEvent(String),
    /// Transient: the job went back to pending; the invocation should fail so Lambda retries it.
    #[error("transient failure, job released for a retry: {0}")]
    Retry(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

enum Encoder {
    Csv(Box<CsvEncoder>),
    /// `capacity`: what each part's buffer is allocated with, once (see `CsvEncoder`).
    Lines {
        buf: Vec<u8>,
        links: Links,
        capacity: usize,
    },
}

impl Encoder {
    fn row(&mut self, a: &Activity, details: Option<&str>) -> Result<(), ExportError> {
        match self {
            Self::Csv(e) => e.row(a, details).map_err(ExportError::encoding),
            Self::Lines {
                buf,
                links,
                capacity,
            } => {
                if buf.capacity() == 0 {
                    buf.reserve_exact(*capacity);
                }
                let raw = details.and_then(|d| serde_json::from_str::<&RawValue>(d).ok());
                serde_json::to_writer(&mut *buf, &ActivityView::new(a, raw, links))
                    .map_err(ExportError::encoding)?;
                buf.push(b'\n');
                Ok(())
            }
        }
    }

    fn buffered(&self) -> usize {
        match self {
            Self::Csv(e) => e.buffered(),
            Self::Lines { buf, .. } => buf.len(),
        }
    }

    fn take(&mut self) -> Result<Vec<u8>, ExportError> {
        match self {
            Self::Csv(e) => e.take().map_err(ExportError::encoding),
            Self::Lines { buf, .. } => Ok(std::mem::take(buf)),
        }
    }
}

/// Why an export run stopped short of a file.
#[derive(Debug, thiserror::Error)]
enum ExportError {
    #[error("the export has more than {MAX_EXPORT_ROWS} rows; narrow the period or add filters")]
    TooManyRows,
    #[error(transparent)]
    TooManyParts(PartError),
    #[error("encoding a row failed: {0}")]
    Encoding(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ExportError {
    fn encoding(e: impl std::fmt::Display) -> Self {
        Self::Encoding(e.to_string())
    }

    /// Worth another run: storage was throttling or unavailable.
    fn is_transient(&self) -> bool {
        matches!(self, Self::Store(e) if e.is_transient())
    }

    /// What the job's `error` tells the user: the limit that was reached, or a generic cause,
    /// never internals.
    fn user_message(&self) -> String {
        match self {
            Self::TooManyRows | Self::TooManyParts(_) => self.to_string(),
            Self::Encoding(_) | Self::Store(_) => "the export could not be completed; create a \
                new export, and report the export id if it fails again"
                .into(),
        }
    }
}

impl From<PartError> for ExportError {
    fn from(e: PartError) -> Self {
        match e {
            PartError::Store(s) => Self::Store(s),
            too_many @ PartError::TooManyParts(_) => Self::TooManyParts(too_many),
        }
    }
}

#[instrument(skip_all, fields(partner = %event.partner_id, export = %event.export_id))]
pub async fn run<R, B, J, O>(
    config: &Config,
    reader: &R,
    blobs: &B,
    jobs: &J,
    objects: &O,
    event: &WorkerEvent,
) -> Result<RunOutcome, WorkerError>
where
    R: ActivityReader,
    B: DetailsBlobs,
    J: ExportJobs,
    O: ExportObjects,
{
    let partner = PartnerId::parse(&event.partner_id)
        .map_err(|e| WorkerError::BadEvent(format!("partnerId {e}")))?;
    let id = ExportId::parse(&event.export_id)
        .map_err(|e| WorkerError::BadEvent(format!("exportId {e}")))?;
    let now = Utc::now();
    let Some(mut job) = jobs.claim_job(&partner, &id, now, now + LEASE).await? else {
        tracing::info!("export already taken or finished; nothing to do");
        return Ok(RunOutcome::Skipped);
    };

    let result = write_file(config, reader, blobs, jobs, objects, &mut job).await;
    settle(jobs, job, result).await
}

/// Writes the job's file: a multipart upload that is completed, or aborted on any failure.
/// Returns the file's bytes and parts.
async fn write_file<R, B, J, O>(
    config: &Config,
    reader: &R,
    blobs: &B,
    jobs: &J,
    objects: &O,
    job: &mut ExportJob,
) -> Result<(u64, i32), ExportError>
where
    R: ActivityReader,
    B: DetailsBlobs,
    J: ExportJobs,
    O: ExportObjects,
{
    let sink = objects
        .start_upload(
            &job.object_key(),
            job.spec.format.content_type(),
            &job.content_disposition(),
        )
        .await?;
    let mut writer = PartWriter::new(sink, config.exports.part_bytes);
    match produce(config, reader, blobs, jobs, job, &mut writer).await {
        // `finish` aborts the upload if it fails; the bucket's lifecycle rule removes it if
        // even the abort could not reach S3.
        Ok(last) => Ok(writer.finish(last).await?),
        Err(e) => {
            if let Err(abort) = writer.abort().await {
                tracing::warn!(error = %abort, "could not abort the multipart upload");
            }
            Err(e)
        }
    }
}

/// Records how the run ended: succeeded, released for another run, or failed with a message
/// for the user.
async fn settle<J: ExportJobs>(
    jobs: &J,
    mut job: ExportJob,
    result: Result<(u64, i32), ExportError>,
) -> Result<RunOutcome, WorkerError> {
    match result {
        Ok((bytes, parts)) => {
            job.status = ExportStatus::Succeeded;
            job.bytes = bytes;
            job.completed_at = Some(Utc::now());
            job.lease_until = None;
            jobs.update_job(&job).await?;
            tracing::info!(rows = job.row_count, bytes, parts, "export succeeded");
            Ok(RunOutcome::Succeeded {
                rows: job.row_count,
                bytes,
                parts,
            })
        }
        Err(e) if e.is_transient() && job.attempt < MAX_ATTEMPTS => {
            tracing::warn!(error = %e, attempt = job.attempt, "export run failed; released for a retry");
            job.lease_until = None;
            job.row_count = 0;
            job.bytes = 0;
            release(jobs, job).await?;
            Err(WorkerError::Retry(e.to_string()))
        }
        Err(e) => {
            tracing::error!(error = %e, "export failed");
            let message = e.user_message();
            job.status = ExportStatus::Failed;
            job.error = Some(message.clone());
            job.completed_at = Some(Utc::now());
            job.lease_until = None;
            jobs.update_job(&job).await?;
            Ok(RunOutcome::Failed { error: message })
        }
    }
}

/// Puts a job back to pending (the update is conditional on our attempt still owning it).
async fn release<J: ExportJobs>(jobs: &J, job: ExportJob) -> Result<(), StoreError> {
    jobs.update_job(&ExportJob {
        status: ExportStatus::Pending,
        ..job
    })
    .await
}

/// Encodes every matching activity, uploading a part whenever a part's worth is buffered.
/// Returns the bytes of the last part.
async fn produce<R, B, J, S>(
    config: &Config,
    reader: &R,
    blobs: &B,
    jobs: &J,
    job: &mut ExportJob,
    writer: &mut PartWriter<S>,
) -> Result<Vec<u8>, ExportError>
where
    R: ActivityReader,
    B: DetailsBlobs,
    J: ExportJobs,
    S: crate::store::PartSink,
{
    // A part is uploaded once it reaches the part size, so it ends within one row of it.
    let capacity = writer.part_size() + PART_SLACK;
    let mut encoder = match job.spec.format {
        ExportFormat::Csv => Encoder::Csv(Box::new(
            CsvEncoder::new(job.spec.time_zone)
                .map_err(ExportError::encoding)?
                .with_part_capacity(capacity),
        )),
        ExportFormat::JsonLines => Encoder::Lines {
            buf: Vec::new(),
            links: Links::new(config.subscriptions_url_template.as_str()),
            capacity,
        },
    };
    let mut after = None;
    let mut reported = 0;
    loop {
        let page = reader
            .query_page(&job.partner, &job.spec.query, after.as_ref(), WHOLE_PAGES)
            .await?;
        for a in &page.items {
            job.row_count += 1;
            if job.row_count > MAX_EXPORT_ROWS {
                return Err(ExportError::TooManyRows);
            }
            let external;
            let details = match &a.details {
                Details::None => None,
                Details::Inline(json) => Some(json.as_str()),
                Details::External { key, .. } => {
                    external = blobs.get(key).await?;
                    Some(external.as_str())
                }
            };
            encoder.row(a, details)?;
            if encoder.buffered() >= writer.part_size() {
                let part = encoder.take()?;
                writer.upload(part).await?;
            }
        }
        if job.row_count - reported >= PROGRESS_EVERY_ROWS {
            reported = job.row_count;
            job.bytes = writer.bytes();
            jobs.update_job(job).await?;
        }
        match page.last_evaluated {
            Some(k) => after = Some(k),
            None => break,
        }
    }
    encoder.take()
}
