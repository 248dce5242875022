//! Test doubles: launchers that record or run the worker in-process, and export objects that
//! fail or hang at a part. Everything else runs against [`MemoryStore`](crate::store::memory::MemoryStore)
//! or the emulator.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::config::Config;
use crate::domain::integrity::PublicKey;
use crate::domain::{ExportId, PartnerId};
use crate::handlers::export_worker::{self, ExportPorts};
use crate::launch::{ExportLauncher, LaunchError, WorkerEvent};
use crate::store::{
    ActivityReader, ChainIndex, DetailsBlobs, ExportJobs, ExportObjects, PartSink, Signed, Signer,
    StoreError,
};

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

/// Runs the export worker in the background of this process, as an `Event` invocation would;
/// the worker's own hand-overs come back through it. Launches are queued to a task that runs
/// each event in its own task (so that a launch's future does not contain the worker's).
pub struct InlineLauncher {
    events: tokio::sync::mpsc::UnboundedSender<WorkerEvent>,
}

impl Clone for InlineLauncher {
    fn clone(&self) -> Self {
        Self {
            events: self.events.clone(),
        }
    }
}

impl InlineLauncher {
    /// Must be called inside a Tokio runtime; the worker runs until the runtime stops. It signs
    /// manifests with a [`LocalSigner`].
    pub fn new<R, B, J, O>(
        config: Config,
        reader: impl Into<Arc<R>>,
        blobs: impl Into<Arc<B>>,
        jobs: impl Into<Arc<J>>,
        objects: impl Into<Arc<O>>,
    ) -> Self
    where
        R: ActivityReader + ChainIndex + 'static,
        B: DetailsBlobs + 'static,
        J: ExportJobs + 'static,
        O: ExportObjects + 'static,
        O::Upload: Send + 'static,
    {
        let (events, mut queue) = tokio::sync::mpsc::unbounded_channel::<WorkerEvent>();
        let launcher = Self { events };
        let next = launcher.clone();
        let (config, reader, blobs, jobs, objects) = (
            Arc::new(config),
            reader.into(),
            blobs.into(),
            jobs.into(),
            objects.into(),
        );
        let signer = Arc::new(LocalSigner::new("inline-launcher", 7));
        // Nothing anchored: manifests check each chain from its start.
        let anchors = Arc::new(crate::store::memory::MemoryStore::default());
        tokio::spawn(async move {
            while let Some(event) = queue.recv().await {
                let (config, reader, blobs, jobs, objects, next, signer, anchors) = (
                    config.clone(),
                    reader.clone(),
                    blobs.clone(),
                    jobs.clone(),
                    objects.clone(),
                    next.clone(),
                    signer.clone(),
                    anchors.clone(),
                );
                tokio::spawn(async move {
                    let ports = ExportPorts {
                        reader: &*reader,
                        blobs: &*blobs,
                        jobs: &*jobs,
                        objects: &*objects,
                        launcher: &next,
                        signer: &*signer,
                        anchors: &*anchors,
                    };
                    let outcome = export_worker::run(&config, &ports, &event).await;
                    eprintln!("worker: {outcome:?}");
                });
            }
        });
        launcher
    }
}

impl ExportLauncher for InlineLauncher {
    async fn launch(&self, partner: &PartnerId, id: &ExportId) -> Result<(), LaunchError> {
        self.events
            .send(WorkerEvent::new(partner, id))
            .map_err(|e| LaunchError {
                function: "inline".into(),
                reason: e.to_string(),
            })
    }
}

/// Export objects that misbehave the way S3 or a run can: the next `failures` uploads (started
/// or resumed) each fail at their second part with the error `error` makes, or every upload
/// hangs at part `hang_at` (a run killed there, once the caller drops it). Counts the parts
/// uploaded through it.
pub struct FaultyObjects<'a, O> {
    pub inner: &'a O,
    failures: AtomicU32,
    error: fn() -> StoreError,
    hang_at: Option<i32>,
    parts: Arc<AtomicU32>,
    reached: Arc<tokio::sync::Notify>,
}

impl<'a, O> FaultyObjects<'a, O> {
    /// Passes everything through, counting parts.
    pub fn counting(inner: &'a O) -> Self {
        Self {
            inner,
            failures: AtomicU32::new(0),
            error: || StoreError::Other("no fault armed".into()),
            hang_at: None,
            parts: Arc::default(),
            reached: Arc::default(),
        }
    }

    /// Fails the next upload once.
    pub fn flaky(inner: &'a O, error: fn() -> StoreError) -> Self {
        Self::failing(inner, 1, error)
    }

    /// Fails the next `failures` uploads.
    pub fn failing(inner: &'a O, failures: u32, error: fn() -> StoreError) -> Self {
        Self {
            failures: AtomicU32::new(failures),
            error,
            ..Self::counting(inner)
        }
    }

    /// Hangs every upload at part `part`.
    pub fn hanging(inner: &'a O, part: i32) -> Self {
        Self {
            hang_at: Some(part),
            ..Self::counting(inner)
        }
    }

    /// Parts uploaded through it.
    pub fn parts(&self) -> u32 {
        self.parts.load(Ordering::SeqCst)
    }

    /// Resolves once an upload has reached the part it hangs at.
    pub async fn hung(&self) {
        self.reached.notified().await;
    }

    fn wrap<U>(&self, inner: U) -> FaultyUpload<U> {
        let fail = self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        FaultyUpload {
            inner,
            fail,
            calls: 0,
            error: self.error,
            hang_at: self.hang_at,
            parts: self.parts.clone(),
            reached: self.reached.clone(),
        }
    }
}

pub struct FaultyUpload<U> {
    inner: U,
    fail: bool,
    calls: u32,
    error: fn() -> StoreError,
    hang_at: Option<i32>,
    parts: Arc<AtomicU32>,
    reached: Arc<tokio::sync::Notify>,
}

impl<U: PartSink> PartSink for FaultyUpload<U> {
    fn upload_id(&self) -> &str {
        self.inner.upload_id()
    }

    fn etags(&self) -> Vec<String> {
        self.inner.etags()
    }

    async fn upload_part(&mut self, number: i32, bytes: Vec<u8>) -> Result<(), StoreError> {
        self.calls += 1;
        if self.fail && self.calls == 2 {
            return Err((self.error)());
        }
        if Some(number) == self.hang_at {
            self.reached.notify_one();
            std::future::pending::<()>().await;
        }
        self.inner.upload_part(number, bytes).await?;
        self.parts.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    async fn complete(&mut self) -> Result<(), StoreError> {
        self.inner.complete().await
    }

    async fn abort(&mut self) -> Result<(), StoreError> {
        self.inner.abort().await
    }
}

impl<O: ExportObjects> ExportObjects for FaultyObjects<'_, O> {
    type Upload = FaultyUpload<O::Upload>;

    async fn start_upload(
        &self,
        key: &str,
        content_type: &str,
        disposition: &str,
    ) -> Result<Self::Upload, StoreError> {
        let inner = self
            .inner
            .start_upload(key, content_type, disposition)
            .await?;
        Ok(self.wrap(inner))
    }

    fn resume_upload(&self, key: &str, upload_id: &str, etags: Vec<String>) -> Self::Upload {
        self.wrap(self.inner.resume_upload(key, upload_id, etags))
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

    async fn put_bytes(&self, key: &str, bytes: Vec<u8>) -> Result<(), StoreError> {
        self.inner.put_bytes(key, bytes).await
    }

    async fn get_bytes(&self, key: &str) -> Result<Vec<u8>, StoreError> {
        self.inner.get_bytes(key).await
    }

    async fn put_file(
        &self,
        key: &str,
        path: &std::path::Path,
        content_type: &str,
        disposition: &str,
        part_bytes: usize,
    ) -> Result<(), StoreError> {
        self.inner
            .put_file(key, path, content_type, disposition, part_bytes)
            .await
    }

    async fn delete_object(&self, key: &str) -> Result<(), StoreError> {
        self.inner.delete_object(key).await
    }
}

/// Signs in-process with a P-256 key made from `seed` (unit tests; the emulator's KMS signs in
/// the integration tests). Counts its signatures.
pub struct LocalSigner {
    key: p256::ecdsa::SigningKey,
    key_id: String,
    signed: AtomicU32,
}

impl LocalSigner {
    pub fn new(key_id: &str, seed: u8) -> Self {
        let mut bytes = [0u8; 32];
        bytes[31] = seed.max(1);
        bytes[0] = 0x42;
        let key = p256::ecdsa::SigningKey::from_bytes(&bytes.into())
            .unwrap_or_else(|e| panic!("signing key: {e}"));
        Self {
            key,
            key_id: key_id.to_owned(),
            signed: AtomicU32::new(0),
        }
    }

    /// Signatures made so far.
    pub fn signatures(&self) -> u32 {
        self.signed.load(Ordering::SeqCst)
    }
}

impl Signer for LocalSigner {
    async fn sign(&self, message: &[u8]) -> Result<Signed, StoreError> {
        use p256::ecdsa::signature::Signer as _;
        let sig: p256::ecdsa::Signature = self.key.sign(message);
        self.signed.fetch_add(1, Ordering::SeqCst);
        Ok(Signed {
            key_id: self.key_id.clone(),
            der: sig.to_der().as_bytes().to_vec(),
        })
    }

    async fn public_key(&self) -> Result<PublicKey, StoreError> {
        use p256::pkcs8::EncodePublicKey as _;
        let der = self
            .key
            .verifying_key()
            .to_public_key_der()
            .map_err(|e| StoreError::Other(e.to_string()))?;
        PublicKey::from_spki_der(&self.key_id, der.as_bytes())
            .map_err(|e| StoreError::Other(e.to_string()))
    }
}
