//! A run of an export that is a set of files: Parquet in OCSF form, one file per day of events
//! (UTC) under `region=…/accountId=…/eventDay=YYYYMMDD/`, as Athena and Amazon Security Lake
//! read them (README, "Analytics").
//!
//! A file is never left open between runs: a run that stops at its time budget ends the file it
//! is writing, and the next run starts another in the same partition. What a saved point holds
//! is then only finished files, each named with its SHA-256 and rows (the manifest lists them
//! the same way), and the last activity written. A file also ends once it reaches the
//! configured size (`EXPORT_FILE_BYTES`), and the next row starts another in the same partition.
//!
//! While it is written, a file is kept on the local disk (Lambda's `/tmp`), a row group at a
//! time as the writer closes them, so memory holds one row group whatever the file's size; once
//! it ends it is uploaded from the disk, in one request or as multipart parts read as they are
//! sent. A run killed while a file is open loses that file (nothing of it is in the bucket) and
//! the next run writes it again from the last saved point.

use std::io::Write;

use chrono::NaiveDate;
use sha2::{Digest, Sha256};
use tempfile::NamedTempFile;

use super::{ExportError, ExportPorts, ManifestState, Sealer, forget_all, save_point, saved_state};
use crate::config::Config;
use crate::domain::export::MAX_EXPORT_ROWS;
use crate::domain::integrity::DataFile;
use crate::domain::{Activity, ExportJob, PageKey, ResumePoint};
use crate::export::parquet::{ParquetEncoder, ROW_GROUP_BYTES};
use crate::store::{ActivityReader, Anchors, ChainIndex, ExportJobs, ExportObjects, Signer};

/// The local files' names start with this.
const SPOOL_PREFIX: &str = "activity-log-export-";

/// A local file older than this is no run's: a run ends its file within its time budget, and a
/// Lambda invocation lasts 15 minutes at most.
const STALE_SPOOL: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// Removes the local files of runs killed while they wrote one (a timeout, a crash): `/tmp`
/// outlives an invocation in its execution environment.
fn clear_stale_spools() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > STALE_SPOOL);
        if stale
            && entry
                .file_name()
                .to_string_lossy()
                .starts_with(SPOOL_PREFIX)
            && let Err(e) = std::fs::remove_file(entry.path())
        {
            tracing::warn!(error = %e, file = %entry.path().display(), "could not remove a stale export file");
        }
    }
}

/// The file being written.
struct OpenFile {
    path: String,
    day: NaiveDate,
    /// Its bytes so far; the local file is removed when this is dropped.
    spool: NamedTempFile,
    sha256: Sha256,
    bytes: u64,
}

pub(super) struct DatasetRun<'a, 'p, R, B, J, O, L, S, A> {
    ports: &'a ExportPorts<'p, R, B, J, O, L, S, A>,
    pub(super) job: &'a mut ExportJob,
    encoder: ParquetEncoder,
    /// The customers' sequences, the rows, and the SHA-256 of the files one after another.
    state: ManifestState,
    /// Finished files, in order.
    files: Vec<DataFile>,
    open: Option<OpenFile>,
    /// The last activity written.
    last: Option<PageKey>,
    part_bytes: usize,
    /// A file ends once it reaches this size.
    file_bytes: u64,
    region: String,
    retention_days: u32,
}

impl<'a, 'p, R, B, J, O, L, S, A> DatasetRun<'a, 'p, R, B, J, O, L, S, A>
where
    R: ActivityReader + ChainIndex,
    J: ExportJobs,
    O: ExportObjects,
    S: Signer,
    A: Anchors,
{
    /// Goes on from the job's saved point (its files, its manifest state, the last activity
    /// written), or starts the set, saving a first point at once.
    pub(super) async fn resume(
        config: &Config,
        ports: &'a ExportPorts<'p, R, B, J, O, L, S, A>,
        job: &'a mut ExportJob,
    ) -> Result<(Self, Option<PageKey>), ExportError> {
        clear_stale_spools();
        let state = saved_state(ports, job).await?;
        let part_bytes = config.exports.part_bytes;
        let region = config.runtime.region_or_unknown().to_owned();
        let (files, after) = match &job.resume {
            Some(point) => {
                job.row_count = point.rows;
                job.bytes = point.uploaded_bytes;
                (point.files.clone(), point.after.clone())
            }
            None => {
                job.row_count = 0;
                job.bytes = 0;
                (Vec::new(), None)
            }
        };
        // A closed row group is taken from the writer's buffer at once.
        let encoder = ParquetEncoder::new(job.partner.as_str(), &region, 2 * ROW_GROUP_BYTES);
        let mut run = Self {
            ports,
            job,
            encoder,
            state,
            files,
            open: None,
            last: after.clone(),
            part_bytes,
            file_bytes: config.exports.file_bytes,
            region,
            retention_days: config.retention_days,
        };
        if run.job.resume.is_none() {
            run.save().await?;
        }
        Ok((run, after))
    }

    pub(super) fn job(&self) -> &ExportJob {
        self.job
    }

    /// Adds a row, ending the open file first if the row is of another day or the file is
    /// full. `true`: the job was saved (a file ended).
    pub(super) async fn push(
        &mut self,
        a: &Activity,
        details: Option<&str>,
    ) -> Result<bool, ExportError> {
        let day = a.occurred_at.date_naive();
        let mut saved = false;
        if self
            .open
            .as_ref()
            .is_some_and(|f| f.day != day || self.encoder.file_bytes() >= self.file_bytes)
        {
            self.end_file().await?;
            self.save().await?;
            saved = true;
        }
        self.job.row_count += 1;
        if self.job.row_count > MAX_EXPORT_ROWS {
            return Err(ExportError::TooManyRows);
        }
        if self.open.is_none() {
            let spool = tempfile::Builder::new()
                .prefix(SPOOL_PREFIX)
                .suffix(".parquet")
                .tempfile()
                .map_err(ExportError::Spool)?;
            self.open = Some(OpenFile {
                path: self
                    .job
                    .data_file_path(&self.region, day, self.files.len() + 1),
                day,
                spool,
                sha256: Sha256::new(),
                bytes: 0,
            });
        }
        self.encoder
            .row(a, details)
            .map_err(ExportError::encoding)?;
        self.state.row(a);
        self.last = Some(PageKey::of(a));
        if self.encoder.buffered() > 0 {
            let group = self.encoder.take().map_err(ExportError::encoding)?;
            self.spill(&group)?;
        }
        Ok(saved)
    }

    /// Appends `bytes` to the open file on the disk.
    fn spill(&mut self, bytes: &[u8]) -> Result<(), ExportError> {
        let Some(file) = self.open.as_mut() else {
            return Ok(());
        };
        file.spool.write_all(bytes).map_err(ExportError::Spool)?;
        file.sha256.update(bytes);
        file.bytes += bytes.len() as u64;
        self.state.hash(bytes);
        Ok(())
    }

    /// Ends the open file (its last row group and footer) and uploads it from the disk; it
    /// joins the finished files.
    async fn end_file(&mut self) -> Result<(), ExportError> {
        let rows = self.encoder.rows();
        let last = self.encoder.close().map_err(ExportError::encoding)?;
        self.spill(&last)?;
        let Some(mut file) = self.open.take() else {
            return Ok(());
        };
        file.spool.flush().map_err(ExportError::Spool)?;
        let key = format!("{}{}", self.job.dataset_prefix(), file.path);
        self.ports
            .objects
            .put_file(
                &key,
                file.spool.path(),
                self.job.spec.format.content_type(),
                &attachment(&file.path),
                self.part_bytes,
            )
            .await?;
        self.files.push(DataFile {
            path: file.path,
            sha256: hex::encode(file.sha256.finalize()),
            bytes: file.bytes,
            rows,
        });
        self.job.bytes = self.files.iter().map(|f| f.bytes).sum();
        Ok(())
    }

    /// Saves where the set stands: its finished files and the last activity written.
    async fn save(&mut self) -> Result<(), ExportError> {
        let point = ResumePoint {
            upload_id: String::new(),
            etags: Vec::new(),
            uploaded_bytes: self.job.bytes,
            rows: self.job.row_count,
            after: self.last.clone(),
            tail_key: None,
            tail_sha256: None,
            manifest_state: None,
            manifest_state_sha256: None,
            files: self.files.clone(),
            signature: None,
        };
        save_point(self.ports, self.job, &self.state, point).await
    }

    /// Stops (the time budget is spent) after `after`: the open file ends, and the point is
    /// saved for the next run.
    pub(super) async fn pause(mut self, after: Option<PageKey>) -> Result<(), ExportError> {
        self.end_file().await?;
        if after.is_some() {
            self.last = after;
        }
        self.save().await
    }

    /// Ends the last file and keeps the signed manifest that lists every file.
    pub(super) async fn finish(mut self) -> Result<(u64, i32), ExportError> {
        self.end_file().await?;
        let sealer = Sealer {
            chains: self.ports.reader,
            anchors: self.ports.anchors,
            signer: self.ports.signer,
        };
        let files = std::mem::take(&mut self.files);
        let count = i32::try_from(files.len()).unwrap_or(i32::MAX);
        let manifest = sealer
            .seal(self.job, &self.state, files, self.retention_days)
            .await?;
        let text = serde_json::to_vec_pretty(&manifest).map_err(ExportError::encoding)?;
        let objects = self.ports.objects;
        objects.put_bytes(&self.job.manifest_key(), text).await?;
        if let Some(point) = &self.job.resume {
            forget_all(objects, point).await;
        }
        Ok((self.state.bytes, count))
    }
}

/// `attachment; filename="<the file's own name>"`.
fn attachment(path: &str) -> String {
    let name = path.rsplit('/').next().unwrap_or(path);
    format!("attachment; filename=\"{name}\"")
}
