//! Test doubles: launchers that record or run the worker in-process, and export objects that
//! fail one part. Everything else runs against [`MemoryStore`](crate::store::memory::MemoryStore)
//! or the emulator.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::config::Config;
use crate::domain::{ExportId, PartnerId};
use crate::handlers::export_worker;
use crate::launch::{ExportLauncher, LaunchError, WorkerEvent};
use crate::store::{ActivityReader, DetailsBlobs, ExportJobs, ExportObjects, PartSink, StoreError};

/// Records launches and starts nothing.
#[derive(Clone, Default)]
pub struct RecordingLauncher {
    launched: Arc<Mutex<Vec<WorkerEvent>>>,
}

impl RecordingLauncher {
    /// The events launched so far.
    pub fn launched(&self) -> Vec<WorkerEvent> {
        self.launched.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

impl ExportLauncher for RecordingLauncher {
    async fn launch(&self, partner: &PartnerId, id: &ExportId) -> Result<(), LaunchError> {
        self.launched
            .lock()
            .map_err(|_| LaunchError {
                function: "recording".into(),
                reason: "poisoned".into(),
            })?
            .push(WorkerEvent::new(partner, id));
        Ok(())
    }
}

/// Runs the export worker in the background of this process, as an `Event` invocation would.
pub struct InlineLauncher<R, B, J, O> {
    config: Arc<Config>,
    reader: Arc<R>,
    blobs: Arc<B>,
    jobs: Arc<J>,
    objects: Arc<O>,
}

impl<R, B, J, O> InlineLauncher<R, B, J, O> {
    pub fn new(
        config: Config,
        reader: impl Into<Arc<R>>,
        blobs: impl Into<Arc<B>>,
        jobs: impl Into<Arc<J>>,
        objects: impl Into<Arc<O>>,
    ) -> Self {
        Self {
            config: Arc::new(config),
            reader: reader.into(),
            blobs: blobs.into(),
            jobs: jobs.into(),
            objects: objects.into(),
        }
    }
}

impl<R, B, J, O> Clone for InlineLauncher<R, B, J, O> {
    fn clone(&self) -> Self {
        Self {
            config: self.config.clone(),
            reader: self.reader.clone(),
            blobs: self.blobs.clone(),
            jobs: self.jobs.clone(),
            objects: self.objects.clone(),
        }
    }
}

impl<R, B, J, O> ExportLauncher for InlineLauncher<R, B, J, O>
where
    R: ActivityReader + 'static,
    B: DetailsBlobs + 'static,
    J: ExportJobs + 'static,
    O: ExportObjects + 'static,
    O::Upload: Send + 'static,
{
    async fn launch(&self, partner: &PartnerId, id: &ExportId) -> Result<(), LaunchError> {
        let this = self.clone();
        let event = WorkerEvent::new(partner, id);
        tokio::spawn(async move {
            let outcome = export_worker::run(
                &this.config,
                &*this.reader,
                &*this.blobs,
                &*this.jobs,
                &*this.objects,
                &event,
            )
            .await;
            eprintln!("worker: {outcome:?}");
        });
        Ok(())
    }
}

/// Export objects whose next upload fails at part 2, once, with the error `error` makes.
pub struct FlakyObjects<O> {
    pub inner: O,
    fail_next: AtomicBool,
    error: fn() -> StoreError,
}

impl<O> FlakyObjects<O> {
    pub fn new(inner: O, error: fn() -> StoreError) -> Self {
        Self {
            inner,
            fail_next: AtomicBool::new(true),
            error,
        }
    }
}

pub struct FlakyUpload<U> {
    inner: U,
    fail: bool,
    error: fn() -> StoreError,
}

impl<U: PartSink> PartSink for FlakyUpload<U> {
    async fn upload_part(&mut self, number: i32, bytes: Vec<u8>) -> Result<(), StoreError> {
        if self.fail && number == 2 {
            return Err((self.error)());
        }
        self.inner.upload_part(number, bytes).await
    }

    async fn complete(&mut self) -> Result<(), StoreError> {
        self.inner.complete().await
    }

    async fn abort(&mut self) -> Result<(), StoreError> {
        self.inner.abort().await
    }
}

impl<O: ExportObjects> ExportObjects for FlakyObjects<O> {
    type Upload = FlakyUpload<O::Upload>;

    async fn start_upload(
        &self,
        key: &str,
        content_type: &str,
        disposition: &str,
    ) -> Result<Self::Upload, StoreError> {
        Ok(FlakyUpload {
            inner: self
                .inner
                .start_upload(key, content_type, disposition)
                .await?,
            fail: self.fail_next.swap(false, Ordering::SeqCst),
            error: self.error,
        })
    }

    async fn presign_get(
        &self,
        key: &str,
        content_type: &str,
        disposition: &str,
        ttl: Duration,
    ) -> Result<String, StoreError> {
        self.inner
            .presign_get(key, content_type, disposition, ttl)
            .await
    }
}
