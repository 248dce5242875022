//! The export worker: pages through the log (the same query path as the API, newest first),
//! encodes rows and streams them to a multipart upload, one part in memory at a time.
//!
//! A file may take longer than one invocation: the worker saves where it is (the upload, its
//! parts, the last activity written) with the job after every part, stops at its time budget,
//! and hands the rest to a new invocation, which goes on from there. A run killed without
//! warning is taken over once its lease runs out and goes on from the last part saved.

use std::borrow::Cow;
use std::time::Instant;

use chrono::{DateTime, TimeDelta, Utc};
use futures_util::StreamExt as _;
use futures_util::TryStreamExt as _;
use futures_util::stream::{self, FuturesOrdered};
use serde_json::value::RawValue;
use tracing::instrument;

use crate::config::Config;
use crate::domain::export::MAX_EXPORT_ROWS;
use crate::domain::integrity::anchor::Inconsistency;
use crate::domain::integrity::{
    DataFile, Key, LeftOut, MANIFEST_VERSION, Manifest, ManifestCustomer, ManifestExport,
    ManifestFile, ManifestHead,
};
use crate::domain::{
    Activity, Details, ExportFormat, ExportId, ExportJob, ExportStatus, PageKey, PartnerId,
    ResumePoint,
};
use crate::domain::{CustomerId, time};
use crate::export::csv::CsvEncoder;
use crate::export::manifest::{Held, ManifestState};
use crate::export::parts::{PartError, PartWriter};
use crate::export::resume;
use crate::handlers::integrity::{Extended, extend_latest};
use crate::http::response::{ActivityView, Links};
use crate::launch::{ExportLauncher, WorkerEvent};
use crate::metrics;
use crate::store::{
    ActivityReader, Anchors, ChainIndex, DetailsBlobs, ExportJobs, ExportObjects, PartSink, Signer,
    StoreError,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

mod dataset;
use dataset::DatasetRun;

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
/// Customers whose chains are checked at once when the manifest is sealed.
const SEAL_CONCURRENCY: usize = 32;
/// Sequences one read of the `bySequence` index covers when the gaps between an export's rows
/// are looked up (about 1 MB of links): nearby gaps are read together.
const GAP_WINDOW: u64 = 5_000;
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
    /// The job's format; each part's buffer holds a part and the row that crosses its end.
    fn new(config: &Config, job: &ExportJob, part_size: usize) -> Result<Self, ExportError> {
        let capacity = part_size + PART_SLACK;
        Ok(match job.spec.format {
            ExportFormat::Csv => Self::Csv(Box::new(
                CsvEncoder::new(job.spec.time_zone, job.spec.locale)
                    .map_err(ExportError::encoding)?
                    .with_part_capacity(capacity),
            )),
            // A set of files is written by `DatasetRun`, never through this.
            ExportFormat::JsonLines | ExportFormat::Parquet => Self::Lines {
                buf: Vec::new(),
                links: Links::new(config.subscriptions_url_template.as_str()),
                capacity,
            },
        })
    }

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
    /// A file of a set could not be kept on the local disk until its upload.
    #[error("the local disk: {0}")]
    Spool(std::io::Error),
    #[error("runs of the export stopped {MAX_FAILURES} times before it could finish")]
    Interrupted,
    /// A customer's chain no longer extends what the service signed: nothing is signed.
    #[error(
        "the log of customer {customer} no longer extends what the service signed before ({why}); the export was not signed"
    )]
    Inconsistent { customer: String, why: String },
    /// What an earlier run saved for this one is not what the service saved.
    #[error("the export's saved progress was changed in storage ({0})")]
    Tampered(resume::Refused),
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
            Self::TooManyRows | Self::TooManyParts(_) | Self::Inconsistent { .. } => {
                self.to_string()
            }
            Self::Tampered(_) => "the export's saved progress was changed in storage, so the \
                service will not sign it; create a new export"
                .into(),
            Self::Encoding(_) | Self::Spool(_) | Self::Store(_) | Self::Interrupted => {
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

/// What an export run uses: `reader` reads the log and the customers' chains by sequence,
/// `blobs` the details kept in the bucket, `jobs` the job, `objects` the file, its tail and its
/// manifest, `launcher` starts the next invocation, `anchors` lists the customers' latest
/// anchors (read only) and `signer` signs the manifest.
pub struct ExportPorts<'a, R, B, J, O, L, S, A> {
    pub reader: &'a R,
    pub blobs: &'a B,
    pub jobs: &'a J,
    pub objects: &'a O,
    pub launcher: &'a L,
    pub signer: &'a S,
    pub anchors: &'a A,
}

impl<R, B, J, O, L, S, A> Clone for ExportPorts<'_, R, B, J, O, L, S, A> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<R, B, J, O, L, S, A> Copy for ExportPorts<'_, R, B, J, O, L, S, A> {}

/// Runs an export: claims the job, writes its file (or as much as the time budget allows) and
/// records how the run ended.
#[instrument(skip_all, fields(partner = %event.partner_id, export = %event.export_id))]
pub async fn run<R, B, J, O, L, S, A>(
    config: &Config,
    ports: &ExportPorts<'_, R, B, J, O, L, S, A>,
    event: &WorkerEvent,
) -> Result<RunOutcome, WorkerError>
where
    R: ActivityReader + ChainIndex,
    B: DetailsBlobs,
    J: ExportJobs,
    O: ExportObjects,
    L: ExportLauncher,
    S: Signer,
    A: Anchors,
{
    let started = Instant::now();
    let result = async {
        let deadline = Instant::now() + config.exports.time_budget;
        let partner = PartnerId::parse(&event.partner_id)
            .map_err(|e| WorkerError::BadEvent(format!("partnerId {e}")))?;
        let id = ExportId::parse(&event.export_id)
            .map_err(|e| WorkerError::BadEvent(format!("exportId {e}")))?;
        let now = Utc::now();
        let Some(mut job) = ports
            .jobs
            .claim_job(&partner, &id, now, now + LEASE)
            .await?
        else {
            tracing::info!("export already taken or finished; nothing to do");
            return Ok(RunOutcome::Skipped);
        };
        if job.failures >= MAX_FAILURES {
            // The last run was killed and that was one failure too many.
            return fail(ports, job, ExportError::Interrupted).await;
        }
        let result = write_file(config, ports, &mut job, deadline).await;
        settle(ports, job, result).await
    }
    .await;
    emit_outcome(&result, started, &event.partner_id);
    result
}

/// The run's metrics: its duration by outcome, and the rows of a finished file or the failure.
fn emit_outcome(result: &Result<RunOutcome, WorkerError>, started: Instant, partner: &str) {
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
            partner: Some(partner),
            request_id: None,
        },
    );
}

/// How far a run got.
#[derive(Debug)]
enum Progress {
    /// The file is complete.
    Done { bytes: u64, parts: i32 },
    /// The time budget ran out; the job's resume point says where to go on.
    Paused,
}

/// Writes the job's file, or as much of it as the time budget allows: reads the matching
/// activities after the resume point and pushes them into the run, which uploads a part and
/// saves where it is whenever a part's worth is encoded, until the period ends (the file is
/// finished) or `deadline` passes (the run pauses between rows or between pages). Leaves the
/// upload open on failure (the caller decides whether a later run goes on or it is abandoned).
async fn write_file<R, B, J, O, L, S, A>(
    config: &Config,
    ports: &ExportPorts<'_, R, B, J, O, L, S, A>,
    job: &mut ExportJob,
    deadline: Instant,
) -> Result<Progress, ExportError>
where
    R: ActivityReader + ChainIndex,
    B: DetailsBlobs,
    J: ExportJobs,
    O: ExportObjects,
    S: Signer,
    A: Anchors,
{
    let (mut run, mut after) = Run::resume(config, ports, job).await?;
    let mut reported = run.job().row_count;
    let concurrency = config.exports.details_concurrency;
    loop {
        let page = ports
            .reader
            .query_page(
                &run.job().partner,
                &run.job().spec.query,
                after.as_ref(),
                WHOLE_PAGES,
            )
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
                        Some(a) => fetching.push_back(with_details(ports.blobs, a)),
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
            if run.push(a, details.as_deref()).await? {
                reported = run.job().row_count;
            }
            if Instant::now() >= deadline {
                run.pause(Some(PageKey::of(a))).await?;
                return Ok(Progress::Paused);
            }
        }
        drop(fetching);
        if run.job().row_count - reported >= PROGRESS_EVERY_ROWS {
            reported = run.job().row_count;
            ports.jobs.update_job(run.job()).await?;
        }
        match page.last_evaluated {
            None => break,
            Some(k) => {
                after = Some(k);
                // A sparse filter may read many pages between rows: stop between them too.
                if Instant::now() >= deadline {
                    run.pause(after).await?;
                    return Ok(Progress::Paused);
                }
            }
        }
    }
    let (bytes, parts) = run.finish().await?;
    Ok(Progress::Done { bytes, parts })
}

/// A run of either kind of export: one file, or a set of files (Parquet).
enum Run<'a, 'p, R, B, J, O: ExportObjects, L, S, A> {
    File(Box<ExportRun<'a, 'p, R, B, J, O, L, S, A>>),
    Dataset(Box<DatasetRun<'a, 'p, R, B, J, O, L, S, A>>),
}

impl<'a, 'p, R, B, J, O, L, S, A> Run<'a, 'p, R, B, J, O, L, S, A>
where
    R: ActivityReader + ChainIndex,
    J: ExportJobs,
    O: ExportObjects,
    S: Signer,
    A: Anchors,
{
    async fn resume(
        config: &Config,
        ports: &'a ExportPorts<'p, R, B, J, O, L, S, A>,
        job: &'a mut ExportJob,
    ) -> Result<(Self, Option<PageKey>), ExportError> {
        Ok(if job.spec.format.is_dataset() {
            let (run, after) = DatasetRun::resume(config, ports, job).await?;
            (Self::Dataset(Box::new(run)), after)
        } else {
            let (run, after) = ExportRun::resume(config, ports, job).await?;
            (Self::File(Box::new(run)), after)
        })
    }

    fn job(&self) -> &ExportJob {
        match self {
            Self::File(run) => run.job,
            Self::Dataset(run) => run.job(),
        }
    }

    async fn push(&mut self, a: &Activity, details: Option<&str>) -> Result<bool, ExportError> {
        match self {
            Self::File(run) => run.push(a, details).await,
            Self::Dataset(run) => run.push(a, details).await,
        }
    }

    async fn pause(self, after: Option<PageKey>) -> Result<(), ExportError> {
        match self {
            Self::File(run) => (*run).pause(after).await,
            Self::Dataset(run) => (*run).pause(after).await,
        }
    }

    async fn finish(self) -> Result<(u64, i32), ExportError> {
        match self {
            Self::File(run) => (*run).finish().await,
            Self::Dataset(run) => (*run).finish().await,
        }
    }
}

/// One run of an export's file: the encoder, the multipart upload's part writer, the
/// manifest's state and the job whose resume point says how far the file is. Every object the
/// resume point leaves behind (a tail, a manifest state) is deleted in one place
/// ([`Self::save`]), when a newer point no longer needs it, and when the run ends
/// ([`Self::finish`], [`abandon`]).
struct ExportRun<'a, 'p, R, B, J, O: ExportObjects, L, S, A> {
    ports: &'a ExportPorts<'p, R, B, J, O, L, S, A>,
    job: &'a mut ExportJob,
    encoder: Encoder,
    writer: PartWriter<O::Upload>,
    state: ManifestState,
    /// What an earlier run encoded after its last part (its header included for a new file).
    carry: Vec<u8>,
    /// The retention the manifest signs.
    retention_days: u32,
}

impl<'a, 'p, R, B, J, O, L, S, A> ExportRun<'a, 'p, R, B, J, O, L, S, A>
where
    R: ActivityReader + ChainIndex,
    J: ExportJobs,
    O: ExportObjects,
    S: Signer,
    A: Anchors,
{
    /// Goes on with the job's upload from its resume point, or starts the file (its upload
    /// saved at once, so that a run killed before its first part leaves an upload the next run
    /// can go on with, or abandon). Returns the run and the last activity written.
    async fn resume(
        config: &Config,
        ports: &'a ExportPorts<'p, R, B, J, O, L, S, A>,
        job: &'a mut ExportJob,
    ) -> Result<(Self, Option<PageKey>), ExportError> {
        let objects = ports.objects;
        let key = job.object_key();
        let part_bytes = config.exports.part_bytes;
        let state = saved_state(ports, job).await?;
        let (writer, carry, after) = match job.resume.clone() {
            Some(c) => {
                let parts = i32::try_from(c.etags.len())
                    .map_err(|_| StoreError::Corrupt("resume point with too many parts".into()))?;
                let sink = objects.resume_upload(&key, &c.upload_id, c.etags);
                // What the file holds already: parts, and a tail; the header is in the first
                // of them (none yet if the last run saved its upload and stopped before a part).
                let carry = match &c.tail_key {
                    Some(tail) => {
                        let bytes = objects.get_bytes(tail).await?;
                        resume::check_object(tail, &bytes, c.tail_sha256.as_deref())
                            .map_err(ExportError::Tampered)?;
                        Some(bytes)
                    }
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
                let mut point = writer.resume_point(0, None);
                resume::sign(ports.signer, &job.partner, &job.id, &mut point).await?;
                job.resume = Some(point);
                ports.jobs.update_job(job).await?;
                (writer, None, None)
            }
        };
        let mut encoder = Encoder::new(config, job, writer.part_size())?;
        if carry.is_some() {
            // The file's header is in its first part already.
            encoder.take()?;
        }
        let run = Self {
            ports,
            job,
            encoder,
            writer,
            state,
            carry: carry.unwrap_or_default(),
            retention_days: config.retention_days,
        };
        Ok((run, after))
    }

    /// Encodes one more row; once a part's worth is encoded, uploads it and saves where the
    /// file is (`true`: the job was saved).
    async fn push(&mut self, a: &Activity, details: Option<&str>) -> Result<bool, ExportError> {
        self.job.row_count += 1;
        if self.job.row_count > MAX_EXPORT_ROWS {
            return Err(ExportError::TooManyRows);
        }
        self.encoder.row(a, details)?;
        self.state.row(a);
        if self.carry.len() + self.encoder.buffered() < self.writer.part_size() {
            return Ok(false);
        }
        self.flush_part(PageKey::of(a)).await?;
        Ok(true)
    }

    /// Uploads what is encoded as the next part and saves the resume point after `after`.
    async fn flush_part(&mut self, after: PageKey) -> Result<(), ExportError> {
        let part = joined(std::mem::take(&mut self.carry), self.encoder.take()?);
        self.state.hash(&part);
        self.writer.upload(part).await?;
        self.job.bytes = self.writer.bytes();
        let point = self.writer.resume_point(self.job.row_count, Some(after));
        self.save(point).await
    }

    /// Stops after `after` (the time budget is spent): what was encoded since the last part
    /// kept as the tail, and the resume point saved for the next run.
    async fn pause(mut self, after: Option<PageKey>) -> Result<(), ExportError> {
        let tail = joined(std::mem::take(&mut self.carry), self.encoder.take()?);
        let mut point = self.writer.resume_point(self.job.row_count, after);
        if !tail.is_empty() {
            let tail_key = self.job.tail_key();
            point.tail_sha256 = Some(resume::sha256(&tail));
            self.ports.objects.put_bytes(&tail_key, tail).await?;
            point.tail_key = Some(tail_key);
        }
        self.save(point).await
    }

    /// Saves `point`, signed, with the manifest's state as of its parts.
    async fn save(&mut self, point: ResumePoint) -> Result<(), ExportError> {
        save_point(self.ports, self.job, &self.state, point).await
    }

    /// Completes the file: the signed manifest is kept before the file appears (a run that
    /// fails here goes on from the last part, and a file handed out always has its manifest),
    /// then the last part and the upload; the tail and state it no longer needs are deleted.
    async fn finish(mut self) -> Result<(u64, i32), ExportError> {
        let objects = self.ports.objects;
        let last = joined(std::mem::take(&mut self.carry), self.encoder.take()?);
        self.state.hash(&last);
        let sealer = Sealer {
            chains: self.ports.reader,
            anchors: self.ports.anchors,
            signer: self.ports.signer,
        };
        let manifest = sealer
            .seal(self.job, &self.state, Vec::new(), self.retention_days)
            .await?;
        let text = serde_json::to_vec_pretty(&manifest).map_err(ExportError::encoding)?;
        objects.put_bytes(&self.job.manifest_key(), text).await?;
        let (bytes, parts) = self.writer.finish(last).await?;
        if let Some(point) = &self.job.resume {
            forget_all(objects, point).await;
        }
        Ok((bytes, parts))
    }
}
/// The manifest's state an earlier run saved with the job's resume point (a new one if the job
/// has none), once the point's signature and the state's digest are checked: nothing an
/// earlier run saved is taken unless the service signed it as it stands.
async fn saved_state<R, B, J, O: ExportObjects, L, S: Signer, A>(
    ports: &ExportPorts<'_, R, B, J, O, L, S, A>,
    job: &ExportJob,
) -> Result<ManifestState, ExportError> {
    if let Some(point) = &job.resume {
        let key = ports
            .signer
            .public_key()
            .await?
            .key()
            .map_err(|e| StoreError::Other(format!("the signing key: {e}")))?;
        resume::check(&key, &job.partner, &job.id, point).map_err(ExportError::Tampered)?;
    }
    let objects = ports.objects;
    let state = match job.resume.as_ref().and_then(|c| {
        c.manifest_state
            .as_deref()
            .map(|k| (k, c.manifest_state_sha256.as_deref()))
    }) {
        Some((saved, sha256)) => {
            let bytes = objects.get_bytes(saved).await?;
            resume::check_object(saved, &bytes, sha256).map_err(ExportError::Tampered)?;
            ManifestState::from_bytes(&bytes).map_err(StoreError::Corrupt)?
        }
        None if job.resume.as_ref().is_some_and(|c| !c.etags.is_empty()) => {
            // Parts written before manifests were kept: their hash is not known.
            return Err(StoreError::Corrupt("an export started without a manifest".into()).into());
        }
        None => ManifestState::default(),
    };
    Ok(state)
}

/// Saves `point`, signed, with the manifest's `state` as of it, and deletes what the job's
/// previous point held that this one does not.
async fn save_point<R, B, J: ExportJobs, O: ExportObjects, L, S: Signer, A>(
    ports: &ExportPorts<'_, R, B, J, O, L, S, A>,
    job: &mut ExportJob,
    state: &ManifestState,
    mut point: ResumePoint,
) -> Result<(), ExportError> {
    let objects = ports.objects;
    let state_key = job.manifest_state_key(point.etags.len() + point.files.len(), point.rows);
    let state = state.to_bytes();
    point.manifest_state_sha256 = Some(resume::sha256(&state));
    objects.put_bytes(&state_key, state).await?;
    point.manifest_state = Some(state_key);
    resume::sign(ports.signer, &job.partner, &job.id, &mut point).await?;
    let previous = job.resume.replace(point);
    ports.jobs.update_job(job).await?;
    if let Some(previous) = previous {
        let kept = job.resume.as_ref();
        for key in [previous.tail_key, previous.manifest_state]
            .into_iter()
            .flatten()
        {
            let still = kept.is_some_and(|p| {
                p.tail_key.as_ref() == Some(&key) || p.manifest_state.as_ref() == Some(&key)
            });
            if !still {
                forget(objects, &key).await;
            }
        }
    }
    Ok(())
}

/// What signs an export's manifest: the customers' chains and anchors, and the key.
struct Sealer<'a, C, A, S> {
    chains: &'a C,
    anchors: &'a A,
    signer: &'a S,
}

impl<C: ChainIndex, A: Anchors, S: Signer> Sealer<'_, C, A, S> {
    /// The manifest of the file `state` describes, signed once: per customer, the head its
    /// chain reaches from its latest anchor (checked as a checkpoint is checked before it is
    /// signed, [`SEAL_CONCURRENCY`] customers at a time) and the runs of sequences the file
    /// leaves out that the log holds. A chain that does not extend its anchor, or ends before
    /// the rows the file holds, fails the export: nothing is signed.
    async fn seal(
        &self,
        job: &ExportJob,
        state: &ManifestState,
        files: Vec<DataFile>,
        retention_days: u32,
    ) -> Result<Manifest, ExportError> {
        let now = Utc::now();
        let public = self.signer.public_key().await?;
        let verifier = public
            .key()
            .map_err(|e| StoreError::Other(format!("the signing key: {e}")))?;
        let retention = TimeDelta::days(i64::from(retention_days));
        let key = (public.key_id.as_str(), &verifier);
        // Made up front: a stream mapping borrowed entries to futures is not `Send` (rustc's
        // higher-ranked lifetime limits), a list of the futures is.
        let checks: Vec<_> = state
            .customers
            .iter()
            .map(|(customer, held)| self.customer(job, customer, held, key, now, retention))
            .collect();
        let mut customers: Vec<ManifestCustomer> = stream::iter(checks)
            .buffer_unordered(SEAL_CONCURRENCY)
            .try_collect()
            .await?;
        customers.sort_by(|a, b| a.customer_id.cmp(&b.customer_id));
        let q = &job.spec.query;
        let mut manifest = Manifest {
            version: MANIFEST_VERSION,
            export_id: job.id.to_string(),
            partner_id: job.partner.to_string(),
            export: ManifestExport {
                customer_id: q.customer.as_ref().map(ToString::to_string),
                from: time::format(q.range.from),
                to: time::format(q.range.to),
                action: q.filters.action.clone(),
                partner_user: q.filters.partner_user.clone(),
                resource_type: q.filters.resource_type.clone(),
                status: q.filters.status.map(|s| s.as_str().to_owned()),
                format: job.spec.format.extension().to_owned(),
                time_zone: job.spec.time_zone.name().to_owned(),
                locale: job.spec.locale.as_str().to_owned(),
            },
            file: ManifestFile {
                name: job.file_name().1,
                sha256: state.sha256(),
                bytes: state.bytes,
                rows: state.rows,
            },
            files,
            retention_days,
            customers,
            created_at: time::format(now),
            key_id: public.key_id.clone(),
            signature: String::new(),
        };
        let message = manifest
            .message()
            .map_err(|e| StoreError::Other(e.to_string()))?;
        manifest.signature = STANDARD.encode(self.signer.sign(&message).await?.der);
        Ok(manifest)
    }

    /// One customer's entry: its head checked against its latest anchor, and the runs left out.
    async fn customer(
        &self,
        job: &ExportJob,
        customer: &str,
        held: &Held,
        key: (&str, &Key),
        now: DateTime<Utc>,
        retention: TimeDelta,
    ) -> Result<ManifestCustomer, ExportError> {
        let id = CustomerId::parse(customer)
            .map_err(|e| StoreError::Corrupt(format!("customer {customer}: {e}")))?;
        let inconsistent = |why: String| {
            tracing::error!(
                partner = %job.partner,
                customer,
                inconsistency = %why,
                "refused to sign a manifest over a chain that does not extend its latest anchor"
            );
            metrics::emit(
                "inconsistent",
                &[(metrics::CHAIN_INCONSISTENCIES, 1.0)],
                metrics::About {
                    partner: Some(job.partner.as_str()),
                    request_id: None,
                },
            );
            ExportError::Inconsistent {
                customer: customer.to_owned(),
                why,
            }
        };
        let extended = extend_latest(
            self.chains,
            self.anchors,
            key,
            &job.partner,
            &id,
            (now, retention),
        )
        .await?
        .map_err(|why: Inconsistency| inconsistent(why.to_string()))?;
        let Extended { latest, head } = extended;
        let head = match (head, &latest) {
            (Some(h), _) => ManifestHead {
                sequence: h.sequence,
                hash: h.hash,
            },
            (None, Some((_, a))) => ManifestHead {
                sequence: a.head.sequence,
                hash: a.head.hash.clone(),
            },
            (None, None) => return Err(inconsistent("it has no chained activity".into())),
        };
        if head.sequence < held.last() {
            return Err(inconsistent(format!(
                "it ends at sequence {}, before sequence {} the file holds",
                head.sequence,
                held.last()
            )));
        }
        Ok(ManifestCustomer {
            customer_id: customer.to_owned(),
            rows: held.rows,
            first_sequence: held.first(),
            last_sequence: held.last(),
            left_out: self.left_out(&job.partner, &id, held).await?,
            head,
            anchor: latest.map(|(key, _)| key),
        })
    }

    /// The gaps between the customer's rows in the file that the log holds whole and linked:
    /// left out by the export's period or filters. Nearby gaps are read together (one read of
    /// the `bySequence` index per [`GAP_WINDOW`] sequences); a gap the log does not hold whole
    /// is not listed, so the verifier reports it missing.
    async fn left_out(
        &self,
        partner: &PartnerId,
        customer: &CustomerId,
        held: &Held,
    ) -> Result<Vec<LeftOut>, StoreError> {
        let mut gaps = held.gaps().peekable();
        let mut out = Vec::new();
        while let Some(first_gap) = gaps.next() {
            let mut window = vec![first_gap];
            while let Some(&next) = gaps.peek() {
                if next.1 - first_gap.0 >= GAP_WINDOW {
                    break;
                }
                window.push(next);
                gaps.next();
            }
            let to = window.last().map_or(first_gap.1, |g| g.1);
            let mut links = self
                .chains
                .links_between(partner, customer, first_gap.0, to)
                .await?
                .links;
            links.sort_unstable_by_key(|l| l.sequence);
            for (first, last) in window {
                let lo = links.partition_point(|l| l.sequence < first);
                let hi = links.partition_point(|l| l.sequence <= last);
                let run = &links[lo..hi];
                let whole = run.len() as u64 == last - first + 1
                    && run.windows(2).all(|w| {
                        w[0].sequence + 1 == w[1].sequence && w[1].previous_hash == w[0].hash
                    });
                if let (true, Some(a), Some(z)) = (whole, run.first(), run.last()) {
                    out.push(LeftOut {
                        first,
                        last,
                        previous_hash: a.previous_hash.clone(),
                        hash: z.hash.clone(),
                    });
                }
            }
        }
        Ok(out)
    }
}

/// Abandons the job's file: its upload aborted (or the files of a set deleted), and the tail
/// and the manifest state its resume point held deleted.
async fn abandon<O: ExportObjects>(objects: &O, job: &mut ExportJob) {
    if let Some(point) = job.resume.take() {
        if job.spec.format.is_dataset() {
            // Its finished files; one still open is an upload the bucket's lifecycle removes.
            let prefix = job.dataset_prefix();
            for file in &point.files {
                forget(objects, &format!("{prefix}{}", file.path)).await;
            }
        } else {
            let mut upload =
                objects.resume_upload(&job.object_key(), &point.upload_id, point.etags.clone());
            if let Err(abort) = upload.abort().await {
                // The bucket's lifecycle rule removes incomplete uploads.
                tracing::warn!(error = %abort, "could not abort the multipart upload");
            }
        }
        forget_all(objects, &point).await;
    }
}

/// Deletes the tail and the manifest state a resume point holds.
async fn forget_all<O: ExportObjects>(objects: &O, point: &ResumePoint) {
    for key in [&point.tail_key, &point.manifest_state]
        .into_iter()
        .flatten()
    {
        forget(objects, key).await;
    }
}

/// Deletes an object no resume point needs any more; the bucket's lifecycle removes it
/// otherwise.
async fn forget<O: ExportObjects>(objects: &O, key: &str) {
    if let Err(e) = objects.delete_object(key).await {
        tracing::warn!(error = %e, key, "could not delete an export's saved state");
    }
}

/// Records how the run ended: succeeded, handed over, released for another run, or failed
/// with a message for the user.
async fn settle<R, B, J: ExportJobs, O: ExportObjects, L: ExportLauncher, S, A>(
    ports: &ExportPorts<'_, R, B, J, O, L, S, A>,
    mut job: ExportJob,
    result: Result<Progress, ExportError>,
) -> Result<RunOutcome, WorkerError> {
    let ExportPorts { jobs, launcher, .. } = *ports;
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
        Err(e) => fail(ports, job, e).await,
    }
}

/// Ends the job as failed: the file abandoned, the slot given back.
async fn fail<R, B, J: ExportJobs, O: ExportObjects, L, S, A>(
    ports: &ExportPorts<'_, R, B, J, O, L, S, A>,
    mut job: ExportJob,
    e: ExportError,
) -> Result<RunOutcome, WorkerError> {
    let jobs = ports.jobs;
    tracing::error!(error = %e, "export failed");
    abandon(ports.objects, &mut job).await;
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
