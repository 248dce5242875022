//! The export worker: pages through the log (the same query path as the API, newest first),
//! encodes rows and streams them to a multipart upload, one part in memory at a time.
//!
//! A file may take longer than one invocation: the worker saves where it is (the upload, its
//! parts, the last activity written) with the job after every part, stops at its time budget,
//! and hands the rest to a new invocation, which goes on from there. A run killed without
//! warning is taken over once its lease runs out and goes on from the last part saved.

use std::borrow::Cow;
use std::time::Instant;

use chrono::{TimeDelta, Utc};
use futures_util::StreamExt as _;
use futures_util::stream::FuturesOrdered;
use serde_json::value::RawValue;
use tracing::instrument;

use crate::config::Config;
use crate::domain::export::MAX_EXPORT_ROWS;
use crate::domain::integrity::{MANIFEST_VERSION, Manifest, ManifestCustomer, ManifestFile};
use crate::domain::{
    Activity, Details, ExportFormat, ExportId, ExportJob, ExportStatus, PageKey, PartnerId,
};
use crate::domain::{CustomerId, time};
use crate::domain::{chain, integrity};
use crate::export::csv::CsvEncoder;
use crate::export::manifest::ManifestState;
use crate::export::parts::{PartError, PartWriter};
use crate::handlers::integrity::current_checkpoint;
use crate::http::response::{ActivityView, Links};
use crate::launch::{ExportLauncher, WorkerEvent};
use crate::metrics;
use crate::store::{
    ActivityReader, Checkpoints, DetailsBlobs, ExportJobs, ExportObjects, PartSink, Signer,
    StoreError,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

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
/// Failed runs (transient errors, runs killed without a word) before a job is marked failed.
/// Hand-overs at the time budget do not count.
pub const MAX_FAILURES: u32 = 3;

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
    /// The time budget ran out: the job is saved and handed to a new invocation.
    Continued {
        rows: u64,
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
    #[error("runs of the export stopped {MAX_FAILURES} times before it could finish")]
    Interrupted,
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
            Self::Encoding(_) | Self::Store(_) | Self::Interrupted => {
                "the export could not be completed; create a new export, and report the export \
                 id if it fails again"
                    .into()
            }
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

/// Runs an export: `reader` reads the log and the customers' chain heads, `signer` signs the
/// manifest and the checkpoints in it.
#[allow(clippy::too_many_arguments)]
#[instrument(skip_all, fields(partner = %event.partner_id, export = %event.export_id))]
pub async fn run<R, B, J, O, L, S>(
    config: &Config,
    reader: &R,
    blobs: &B,
    jobs: &J,
    objects: &O,
    launcher: &L,
    signer: &S,
    event: &WorkerEvent,
) -> Result<RunOutcome, WorkerError>
where
    R: ActivityReader + Checkpoints,
    B: DetailsBlobs,
    J: ExportJobs,
    O: ExportObjects,
    L: ExportLauncher,
    S: Signer,
{
    let started = Instant::now();
    let result = run_once(
        config, reader, blobs, jobs, objects, launcher, signer, event,
    )
    .await;
    let duration = (
        metrics::EXPORT_DURATION,
        started.elapsed().as_millis() as f64,
    );
    let (outcome, values) = match &result {
        Ok(RunOutcome::Succeeded { rows, .. }) => (
            "succeeded",
            vec![duration, (metrics::EXPORT_ROWS, *rows as f64)],
        ),
        Ok(RunOutcome::Failed { .. }) => ("failed", vec![duration, (metrics::EXPORTS_FAILED, 1.0)]),
        Ok(RunOutcome::Continued { .. }) => ("continued", vec![duration]),
        Ok(RunOutcome::Skipped) => ("skipped", vec![duration]),
        Err(_) => ("error", vec![duration]),
    };
    metrics::emit(
        outcome,
        &values,
        metrics::About {
            partner: Some(&event.partner_id),
            request_id: None,
        },
    );
    result
}

#[allow(clippy::too_many_arguments)]
async fn run_once<R, B, J, O, L, S>(
    config: &Config,
    reader: &R,
    blobs: &B,
    jobs: &J,
    objects: &O,
    launcher: &L,
    signer: &S,
    event: &WorkerEvent,
) -> Result<RunOutcome, WorkerError>
where
    R: ActivityReader + Checkpoints,
    B: DetailsBlobs,
    J: ExportJobs,
    O: ExportObjects,
    L: ExportLauncher,
    S: Signer,
{
    let deadline = Instant::now() + config.exports.time_budget;
    let partner = PartnerId::parse(&event.partner_id)
        .map_err(|e| WorkerError::BadEvent(format!("partnerId {e}")))?;
    let id = ExportId::parse(&event.export_id)
        .map_err(|e| WorkerError::BadEvent(format!("exportId {e}")))?;
    let now = Utc::now();
    let Some(mut job) = jobs.claim_job(&partner, &id, now, now + LEASE).await? else {
        tracing::info!("export already taken or finished; nothing to do");
        return Ok(RunOutcome::Skipped);
    };
    if job.failures >= MAX_FAILURES {
        // The last run was killed and that was one failure too many.
        return fail(jobs, objects, job, ExportError::Interrupted).await;
    }
    let sealer = Sealer {
        heads: reader,
        signer,
        keep: TimeDelta::days(i64::from(config.retention_days)),
    };
    let result = write_file(
        config, reader, blobs, jobs, objects, &sealer, &mut job, deadline,
    )
    .await;
    settle(jobs, objects, launcher, job, result).await
}

/// How far a run got.
#[derive(Debug)]
enum Progress {
    /// The file is complete.
    Done { bytes: u64, parts: i32 },
    /// The time budget ran out; the job's checkpoint says where to go on.
    Paused,
}

/// What [`produce`] left to do.
enum Produced {
    /// Every row is encoded; these bytes are the last part.
    End(Vec<u8>),
    /// Out of time after `after`; `tail` is what was encoded since the last part.
    Paused {
        tail: Vec<u8>,
        after: Option<PageKey>,
    },
}

/// Writes the job's file, or as much of it as the time budget allows, starting or going on
/// with its multipart upload. Leaves the upload open on failure (the caller decides whether a
/// later run goes on with it or it is aborted).
#[allow(clippy::too_many_arguments)]
async fn write_file<R, B, J, O, C, S>(
    config: &Config,
    reader: &R,
    blobs: &B,
    jobs: &J,
    objects: &O,
    sealer: &Sealer<'_, C, S>,
    job: &mut ExportJob,
    deadline: Instant,
) -> Result<Progress, ExportError>
where
    R: ActivityReader,
    B: DetailsBlobs,
    J: ExportJobs,
    O: ExportObjects,
    C: Checkpoints,
    S: Signer,
{
    let key = job.object_key();
    let part_bytes = config.exports.part_bytes;
    let mut state = match job.resume.as_ref().and_then(|c| c.manifest_state.clone()) {
        Some(saved) => ManifestState::from_bytes(&objects.get_bytes(&saved).await?)
            .map_err(StoreError::Corrupt)?,
        None if job.resume.as_ref().is_some_and(|c| !c.etags.is_empty()) => {
            // Parts written before manifests were kept: their hash is not known.
            return Err(StoreError::Corrupt("an export started without a manifest".into()).into());
        }
        None => ManifestState::default(),
    };
    let resumed_state = job.resume.as_ref().and_then(|c| c.manifest_state.clone());
    let (mut writer, carry, after) = match job.resume.clone() {
        Some(c) => {
            let parts = i32::try_from(c.etags.len())
                .map_err(|_| StoreError::Corrupt("checkpoint with too many parts".into()))?;
            let sink = objects.resume_upload(&key, &c.upload_id, c.etags);
            // What the file holds already: parts, and a tail; the header is in the first of
            // them (none yet if the last run saved its upload and stopped before a part).
            let carry = match &c.tail_key {
                Some(tail) => Some(objects.get_bytes(tail).await?),
                None if c.uploaded_bytes > 0 => Some(Vec::new()),
                None => None,
            };
            job.row_count = c.rows;
            job.bytes = c.uploaded_bytes;
            let writer = PartWriter::resume(sink, part_bytes, parts, c.uploaded_bytes);
            (writer, carry, c.after)
        }
        None => {
            let sink = objects
                .start_upload(
                    &key,
                    job.spec.format.content_type(),
                    &job.content_disposition(),
                )
                .await?;
            job.row_count = 0;
            job.bytes = 0;
            let writer = PartWriter::new(sink, part_bytes);
            // Saved at once, so that a run killed before its first part leaves an upload the
            // next run can go on with (or abort).
            job.resume = Some(writer.resume_point(0, None));
            jobs.update_job(job).await?;
            (writer, None, None)
        }
    };
    let resumed_tail = job.resume.as_ref().and_then(|c| c.tail_key.clone());
    let produced = produce(
        config,
        reader,
        blobs,
        jobs,
        objects,
        job,
        &mut writer,
        &mut state,
        carry,
        after,
        deadline,
    )
    .await?;
    match produced {
        Produced::End(last) => {
            // The manifest is kept before the file appears: a run that fails here goes on from
            // the last part, and a file handed out always has its manifest.
            state.hash(&last);
            let manifest = sealer.seal(job, &state).await?;
            let text = serde_json::to_vec_pretty(&manifest).map_err(ExportError::encoding)?;
            objects.put_bytes(&job.manifest_key(), text).await?;
            let (bytes, parts) = writer.finish(last).await?;
            forget_tail(objects, resumed_tail.as_deref()).await;
            let last_state = job.resume.as_ref().and_then(|c| c.manifest_state.clone());
            forget_tail(objects, last_state.as_deref()).await;
            Ok(Progress::Done { bytes, parts })
        }
        Produced::Paused { tail, after } => {
            let mut checkpoint = writer.resume_point(job.row_count, after);
            if !tail.is_empty() {
                let tail_key = job.tail_key();
                objects.put_bytes(&tail_key, tail).await?;
                checkpoint.tail_key = Some(tail_key);
            }
            let state_key = save_state(objects, job, &state, checkpoint.etags.len()).await?;
            let stale = resumed_tail.filter(|t| checkpoint.tail_key.as_ref() != Some(t));
            let stale_state = resumed_state.filter(|s| *s != state_key);
            checkpoint.manifest_state = Some(state_key);
            job.resume = Some(checkpoint);
            jobs.update_job(job).await?;
            forget_tail(objects, stale.as_deref()).await;
            forget_tail(objects, stale_state.as_deref()).await;
            Ok(Progress::Paused)
        }
    }
}

/// Saves the manifest's state as of the file's first `parts` parts; its key.
async fn save_state<O: ExportObjects>(
    objects: &O,
    job: &ExportJob,
    state: &ManifestState,
    parts: usize,
) -> Result<String, StoreError> {
    let key = job.manifest_state_key(parts);
    objects.put_bytes(&key, state.to_bytes()).await?;
    Ok(key)
}

/// The checkpoints as the worker sees them: it reads the heads and the checkpoints kept of them
/// (by the integrity function), and signs a head none is kept of for its manifest without
/// keeping it. IAM lets the export functions write export items only, never a customer's
/// partition, where checkpoints live (template.yaml).
struct KeptOnlyByOthers<'a, C>(&'a C);

impl<C: Checkpoints> Checkpoints for KeptOnlyByOthers<'_, C> {
    async fn head(
        &self,
        partner: &PartnerId,
        customer: &CustomerId,
    ) -> Result<Option<chain::Head>, StoreError> {
        self.0.head(partner, customer).await
    }

    async fn checkpoint(
        &self,
        partner: &PartnerId,
        customer: &CustomerId,
        sequence: u64,
    ) -> Result<Option<integrity::Checkpoint>, StoreError> {
        self.0.checkpoint(partner, customer, sequence).await
    }

    async fn keep_checkpoint(
        &self,
        _: &PartnerId,
        _: &CustomerId,
        checkpoint: &integrity::Checkpoint,
        _: i64,
    ) -> Result<integrity::Checkpoint, StoreError> {
        Ok(checkpoint.clone())
    }
}

/// What signs an export's manifest: the customers' heads, the key, and how long checkpoints
/// are kept.
struct Sealer<'a, C, S> {
    heads: &'a C,
    signer: &'a S,
    keep: TimeDelta,
}

impl<C: Checkpoints, S: Signer> Sealer<'_, C, S> {
    /// The manifest of the file `state` describes, with each customer's current checkpoint
    /// (at or after the last of its activities in the file), signed.
    async fn seal(&self, job: &ExportJob, state: &ManifestState) -> Result<Manifest, StoreError> {
        let now = Utc::now();
        let mut customers = Vec::with_capacity(state.customers.len());
        for (customer, held) in &state.customers {
            let id = CustomerId::parse(customer)
                .map_err(|e| StoreError::Corrupt(format!("customer {customer}: {e}")))?;
            let checkpoint = current_checkpoint(
                &KeptOnlyByOthers(self.heads),
                self.signer,
                &job.partner,
                &id,
                now,
                self.keep,
            )
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("customer {customer} has no chain head")))?;
            customers.push(ManifestCustomer {
                customer_id: customer.clone(),
                rows: held.rows,
                first_sequence: held.first,
                last_sequence: held.last,
                checkpoint,
            });
        }
        let mut manifest = Manifest {
            version: MANIFEST_VERSION,
            export_id: job.id.to_string(),
            partner_id: job.partner.to_string(),
            format: job.spec.format.extension().to_owned(),
            file: ManifestFile {
                name: job.file_name().1,
                sha256: state.sha256(),
                bytes: state.bytes,
                rows: state.rows,
            },
            unchained_rows: state.unchained,
            customers,
            created_at: time::format(now),
            key_id: self.signer.public_key().await?.key_id,
            signature: String::new(),
        };
        let message = manifest
            .message()
            .map_err(|e| StoreError::Other(e.to_string()))?;
        manifest.signature = STANDARD.encode(self.signer.sign(&message).await?.der);
        Ok(manifest)
    }
}

/// Deletes a tail no checkpoint needs any more; the bucket's lifecycle removes it otherwise.
async fn forget_tail<O: ExportObjects>(objects: &O, key: Option<&str>) {
    if let Some(key) = key
        && let Err(e) = objects.delete_object(key).await
    {
        tracing::warn!(error = %e, key, "could not delete an export tail");
    }
}

/// Records how the run ended: succeeded, handed over, released for another run, or failed
/// with a message for the user.
async fn settle<J: ExportJobs, O: ExportObjects, L: ExportLauncher>(
    jobs: &J,
    objects: &O,
    launcher: &L,
    mut job: ExportJob,
    result: Result<Progress, ExportError>,
) -> Result<RunOutcome, WorkerError> {
    match result {
        Ok(Progress::Done { bytes, parts }) => {
            job.status = ExportStatus::Succeeded;
            job.bytes = bytes;
            job.completed_at = Some(Utc::now());
            job.lease_until = None;
            job.resume = None;
            jobs.update_job(&job).await?;
            give_back_slot(jobs, &job).await;
            tracing::info!(
                rows = job.row_count,
                bytes,
                parts,
                continuations = job.continuations,
                "export succeeded"
            );
            Ok(RunOutcome::Succeeded {
                rows: job.row_count,
                bytes,
                parts,
            })
        }
        Ok(Progress::Paused) => {
            job.continuations += 1;
            let rows = job.row_count;
            tracing::info!(
                rows,
                continuations = job.continuations,
                "time budget spent; handing over"
            );
            release(jobs, job.clone()).await?;
            if let Err(e) = launcher.launch(&job.partner, &job.id).await {
                // A status read launches it again once it has waited `STALE_PENDING`.
                tracing::warn!(error = %e, "could not start the next invocation");
            }
            Ok(RunOutcome::Continued { rows })
        }
        Err(ExportError::Store(StoreError::TakenOver)) => {
            tracing::warn!("a later run took the export over; this run stops");
            Ok(RunOutcome::Skipped)
        }
        Err(e) if e.is_transient() && job.failures + 1 < MAX_FAILURES => {
            job.failures += 1;
            tracing::warn!(error = %e, failures = job.failures, "export run failed; released for a retry");
            if let Some(c) = &job.resume {
                job.row_count = c.rows;
                job.bytes = c.uploaded_bytes;
            }
            release(jobs, job).await?;
            Err(WorkerError::Retry(e.to_string()))
        }
        Err(e) => fail(jobs, objects, job, e).await,
    }
}

/// Ends the job as failed: the upload aborted, the tail deleted, the slot given back.
async fn fail<J: ExportJobs, O: ExportObjects>(
    jobs: &J,
    objects: &O,
    mut job: ExportJob,
    e: ExportError,
) -> Result<RunOutcome, WorkerError> {
    tracing::error!(error = %e, "export failed");
    if let Some(c) = job.resume.take() {
        let mut upload = objects.resume_upload(&job.object_key(), &c.upload_id, c.etags);
        if let Err(abort) = upload.abort().await {
            // The bucket's lifecycle rule removes incomplete uploads.
            tracing::warn!(error = %abort, "could not abort the multipart upload");
        }
        forget_tail(objects, c.tail_key.as_deref()).await;
    }
    let message = e.user_message();
    job.status = ExportStatus::Failed;
    job.error = Some(message.clone());
    job.completed_at = Some(Utc::now());
    job.lease_until = None;
    jobs.update_job(&job).await?;
    give_back_slot(jobs, &job).await;
    Ok(RunOutcome::Failed { error: message })
}

/// Frees the tenant's export slot; one left behind is given back by the next admission.
async fn give_back_slot<J: ExportJobs>(jobs: &J, job: &ExportJob) {
    if let Err(e) = jobs.release_slot(job).await {
        tracing::warn!(error = %e, "could not give back the export slot");
    }
}

/// Puts a job back to pending, waiting for the next run (the update is conditional on our
/// attempt still owning it).
async fn release<J: ExportJobs>(jobs: &J, job: ExportJob) -> Result<(), StoreError> {
    jobs.update_job(&ExportJob {
        status: ExportStatus::Pending,
        lease_until: None,
        pending_since: crate::domain::time::truncate_millis(Utc::now()),
        ..job
    })
    .await
}

/// Encodes the matching activities after `after`, uploading a part whenever a part's worth is
/// buffered and saving the job's checkpoint with it, until the period ends or `deadline`
/// passes. `carry` is the tail an earlier run left (`None`: a new file, which starts with its
/// header).
#[allow(clippy::too_many_arguments)]
async fn produce<R, B, J, O, S>(
    config: &Config,
    reader: &R,
    blobs: &B,
    jobs: &J,
    objects: &O,
    job: &mut ExportJob,
    writer: &mut PartWriter<S>,
    state: &mut ManifestState,
    carry: Option<Vec<u8>>,
    mut after: Option<PageKey>,
    deadline: Instant,
) -> Result<Produced, ExportError>
where
    R: ActivityReader,
    B: DetailsBlobs,
    J: ExportJobs,
    O: ExportObjects,
    S: PartSink,
{
    // A part is uploaded once it reaches the part size, so it ends within one row of it.
    let capacity = writer.part_size() + PART_SLACK;
    let mut encoder = match job.spec.format {
        ExportFormat::Csv => Encoder::Csv(Box::new(
            CsvEncoder::new(job.spec.time_zone, job.spec.locale)
                .map_err(ExportError::encoding)?
                .with_part_capacity(capacity),
        )),
        ExportFormat::JsonLines => Encoder::Lines {
            buf: Vec::new(),
            links: Links::new(config.subscriptions_url_template.as_str()),
            capacity,
        },
    };
    let resumed = carry.is_some();
    let mut carry = carry.unwrap_or_default();
    if resumed {
        // The file's header is in its first part already.
        encoder.take()?;
    }
    let mut old_tail = job.resume.as_ref().and_then(|c| c.tail_key.clone());
    let mut reported = job.row_count;
    let concurrency = config.exports.details_concurrency;
    loop {
        let page = reader
            .query_page(&job.partner, &job.spec.query, after.as_ref(), WHOLE_PAGES)
            .await?;
        // Details kept in the bucket are fetched a few at a time, ahead of the row encoded;
        // a page without any is read straight through.
        let fetch = page
            .items
            .iter()
            .any(|a| matches!(a.details, Details::External { .. }));
        let mut items = page.items.iter();
        let mut fetching = FuturesOrdered::new();
        loop {
            let (a, details) = if fetch {
                while fetching.len() < concurrency {
                    match items.next() {
                        Some(a) => fetching.push_back(with_details(blobs, a)),
                        None => break,
                    }
                }
                match fetching.next().await {
                    Some(row) => row?,
                    None => break,
                }
            } else {
                match items.next() {
                    Some(a) => (a, kept_details(a)),
                    None => break,
                }
            };
            job.row_count += 1;
            if job.row_count > MAX_EXPORT_ROWS {
                return Err(ExportError::TooManyRows);
            }
            encoder.row(a, details.as_deref())?;
            state.row(a);
            if carry.len() + encoder.buffered() >= writer.part_size() {
                let part = joined(std::mem::take(&mut carry), encoder.take()?);
                state.hash(&part);
                writer.upload(part).await?;
                job.bytes = writer.bytes();
                let mut checkpoint = writer.resume_point(job.row_count, Some(PageKey::of(a)));
                let saved = save_state(objects, job, state, checkpoint.etags.len()).await?;
                let stale = job.resume.as_ref().and_then(|c| c.manifest_state.clone());
                checkpoint.manifest_state = Some(saved);
                job.resume = Some(checkpoint);
                jobs.update_job(job).await?;
                forget_tail(objects, stale.as_deref()).await;
                reported = job.row_count;
                forget_tail(objects, old_tail.take().as_deref()).await;
            }
            if Instant::now() >= deadline {
                let tail = joined(carry, encoder.take()?);
                let after = Some(PageKey::of(a));
                return Ok(Produced::Paused { tail, after });
            }
        }
        drop(fetching);
        if job.row_count - reported >= PROGRESS_EVERY_ROWS {
            reported = job.row_count;
            jobs.update_job(job).await?;
        }
        match page.last_evaluated {
            None => break,
            Some(k) => {
                after = Some(k);
                // A sparse filter may read many pages between rows: stop between them too.
                if Instant::now() >= deadline {
                    let tail = joined(carry, encoder.take()?);
                    return Ok(Produced::Paused { tail, after });
                }
            }
        }
    }
    Ok(Produced::End(joined(carry, encoder.take()?)))
}

/// An activity with its details' JSON, fetched from the bucket if kept there.
async fn with_details<'a, B: DetailsBlobs>(
    blobs: &B,
    a: &'a Activity,
) -> Result<(&'a Activity, Option<Cow<'a, str>>), StoreError> {
    let details = match &a.details {
        Details::External { key, .. } => Some(Cow::Owned(blobs.get(key).await?)),
        _ => kept_details(a),
    };
    Ok((a, details))
}

/// The details' JSON kept in the activity's record (none for details kept in the bucket).
fn kept_details(a: &Activity) -> Option<Cow<'_, str>> {
    match &a.details {
        Details::Inline(json) => Some(Cow::Borrowed(json.as_str())),
        Details::None | Details::External { .. } => None,
    }
}

/// `first` followed by `then`, without copying when `first` is empty.
fn joined(mut first: Vec<u8>, then: Vec<u8>) -> Vec<u8> {
    if first.is_empty() {
        then
    } else {
        first.extend_from_slice(&then);
        first
    }
}
