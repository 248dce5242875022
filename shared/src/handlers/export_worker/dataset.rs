//! A run of an export that is a set of files: Parquet in OCSF form, one file per day of events
//! (UTC) under `region=…/accountId=…/eventDay=YYYYMMDD/`, as Athena and Amazon Security Lake
//! read them (README, "Analytics").
//!
//! A file is never left open between runs: a run that stops at its time budget ends the file it
//! is writing, and the next run starts another in the same partition. What a saved point holds
//! is then only finished files, each named with its SHA-256 and rows (the manifest lists them
//! the same way), and the last activity written. A file's bytes go up as parts of a multipart
//! upload once they pass a part's size, or in one request when the file ends smaller; a run
//! killed while a file is open loses that file (its upload is removed by the bucket's lifecycle
//! rule) and the next run writes it again from the last saved point.

use chrono::NaiveDate;
use sha2::{Digest, Sha256};

use super::{ExportError, ExportPorts, ManifestState, Sealer, forget_all, save_point, saved_state};
use crate::config::Config;
use crate::domain::export::MAX_EXPORT_ROWS;
use crate::domain::integrity::DataFile;
use crate::domain::{Activity, ExportJob, PageKey, ResumePoint};
use crate::export::parquet::ParquetEncoder;
use crate::export::parts::PartWriter;
use crate::store::{
    ActivityReader, Anchors, ChainIndex, ExportJobs, ExportObjects, PartSink, Signer,
};

/// The file being written.
struct OpenFile<U: PartSink> {
    path: String,
    day: NaiveDate,
    /// Started once the file's bytes pass a part's size.
    upload: Option<PartWriter<U>>,
    sha256: Sha256,
    bytes: u64,
}

pub(super) struct DatasetRun<'a, 'p, R, B, J, O: ExportObjects, L, S, A> {
    ports: &'a ExportPorts<'p, R, B, J, O, L, S, A>,
    pub(super) job: &'a mut ExportJob,
    encoder: ParquetEncoder,
    /// The customers' sequences, the rows, and the SHA-256 of the files one after another.
    state: ManifestState,
    /// Finished files, in order.
    files: Vec<DataFile>,
    open: Option<OpenFile<O::Upload>>,
    /// The last activity written.
    last: Option<PageKey>,
    part_bytes: usize,
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
        let state = saved_state(ports, job).await?;
        let part_bytes = config.exports.part_bytes;
        let region = config
            .runtime
            .region
            .clone()
            .unwrap_or_else(|| "unknown".into());
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
        let encoder = ParquetEncoder::new(job.partner.as_str(), &region, part_bytes);
        let mut run = Self {
            ports,
            job,
            encoder,
            state,
            files,
            open: None,
            last: after.clone(),
            part_bytes,
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

    /// Adds a row, ending the open file first if the row is of another day; uploads a part
    /// once one is encoded. `true`: the job was saved (a file ended).
    pub(super) async fn push(
        &mut self,
        a: &Activity,
        details: Option<&str>,
    ) -> Result<bool, ExportError> {
        let day = a.occurred_at.date_naive();
        let mut saved = false;
        if self.open.as_ref().is_some_and(|f| f.day != day) {
            self.end_file().await?;
            self.save().await?;
            saved = true;
        }
        self.job.row_count += 1;
        if self.job.row_count > MAX_EXPORT_ROWS {
            return Err(ExportError::TooManyRows);
        }
        if self.open.is_none() {
            self.open = Some(OpenFile {
                path: self
                    .job
                    .data_file_path(&self.region, day, self.files.len() + 1),
                day,
                upload: None,
                sha256: Sha256::new(),
                bytes: 0,
            });
        }
        self.encoder
            .row(a, details)
            .map_err(ExportError::encoding)?;
        self.state.row(a);
        self.last = Some(PageKey::of(a));
        if self.encoder.buffered() >= self.part_bytes {
            let part = self.encoder.take().map_err(ExportError::encoding)?;
            self.upload_part(part).await?;
        }
        Ok(saved)
    }

    /// Uploads `part` of the open file, starting its upload with the first.
    async fn upload_part(&mut self, part: Vec<u8>) -> Result<(), ExportError> {
        let Some(file) = self.open.as_mut() else {
            return Ok(());
        };
        let writer = match &mut file.upload {
            Some(w) => w,
            None => {
                let key = format!("{}{}", self.job.dataset_prefix(), file.path);
                let sink = self
                    .ports
                    .objects
                    .start_upload(
                        &key,
                        self.job.spec.format.content_type(),
                        &attachment(&file.path),
                    )
                    .await?;
                file.upload.insert(PartWriter::new(sink, self.part_bytes))
            }
        };
        file.sha256.update(&part);
        file.bytes += part.len() as u64;
        self.state.hash(&part);
        writer.upload(part).await?;
        Ok(())
    }

    /// Ends the open file: its footer, its last bytes, the object complete; it joins the
    /// finished files.
    async fn end_file(&mut self) -> Result<(), ExportError> {
        let rows = self.encoder.rows();
        let last = self.encoder.close().map_err(ExportError::encoding)?;
        let Some(mut file) = self.open.take() else {
            return Ok(());
        };
        file.sha256.update(&last);
        file.bytes += last.len() as u64;
        self.state.hash(&last);
        match file.upload.take() {
            Some(writer) => {
                writer.finish(last).await?;
            }
            None => {
                let key = format!("{}{}", self.job.dataset_prefix(), file.path);
                self.ports.objects.put_bytes(&key, last).await?;
            }
        }
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
