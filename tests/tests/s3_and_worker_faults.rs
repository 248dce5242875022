//! Faults in the export path, against the emulator: S3 failing mid-multipart (transient and
//! permanent) and a worker that died mid-way being taken over. A job ends `succeeded` with a
//! complete file or `failed`/`pending` with no visible object and no open upload.

use activity_log::app::App;
use activity_log::domain::{Activity, ExportJob, ExportStatus, PartnerId};
use activity_log::handlers::export_worker::{RunOutcome, WorkerError};
use activity_log::launch::WorkerEvent;
use activity_log::store::memory::MemoryStore;
use activity_log::store::{ExportJobs, ExportObjects, StoreError};
use activity_log::testing::doubles::{FaultyObjects, RecordingLauncher};
use activity_log::testing::fixtures::{memory_log, synthetic_activity};
use activity_log_tests::isolated_app;
use activity_log_tests::run_export_worker;
use chrono::{TimeDelta, Utc};

const ROWS: i64 = 40_000;

struct Setup {
    app: App,
    source: MemoryStore,
    job: ExportJob,
    event: WorkerEvent,
}

async fn setup() -> Setup {
    let mut app = isolated_app().await;
    app.config.exports.part_bytes = 5 * 1024 * 1024;
    let partner = PartnerId::parse("p1").unwrap_or_else(|e| panic!("{e}"));
    let now = Utc::now();
    let rows: Vec<Activity> = (0..ROWS)
        .map(|n| synthetic_activity(n as u64, "c1", now - TimeDelta::seconds(n)))
        .collect();
    let source = memory_log(&partner, 2500, &rows).await;
    let spec = activity_log::testing::fixtures::csv_export_of_last_days(7, now);
    let job = ExportJob::pending(partner.clone(), spec, now, TimeDelta::days(1));
    app.store
        .create_job(&job)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let event = WorkerEvent::new(&partner, &job.id);
    Setup {
        app,
        source,
        job,
        event,
    }
}

impl Setup {
    async fn job_now(&self) -> ExportJob {
        self.app
            .store
            .get_job(&self.job.partner, &self.job.id)
            .await
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("job vanished"))
    }

    async fn object_exists(&self) -> bool {
        let s3 = self.app.blobs.client();
        s3.head_object()
            .bucket(self.app.blobs.bucket())
            .key(self.job.object_key())
            .send()
            .await
            .is_ok()
    }

    async fn open_uploads(&self) -> usize {
        let s3 = self.app.blobs.client();
        s3.list_multipart_uploads()
            .bucket(self.app.blobs.bucket())
            .send()
            .await
            .map(|o| o.uploads().len())
            .unwrap_or_else(|e| panic!("ListMultipartUploads: {e}"))
    }

    async fn run(&self, objects: &impl ExportObjects) -> Result<RunOutcome, WorkerError> {
        let launcher = RecordingLauncher::default();
        run_export_worker(&self.app, &self.source, objects, &launcher, &self.event).await
    }

    async fn downloaded_rows(&self) -> usize {
        let out = self
            .app
            .blobs
            .client()
            .get_object()
            .bucket(self.app.blobs.bucket())
            .key(self.job.object_key())
            .send()
            .await
            .unwrap_or_else(|e| panic!("GetObject: {e}"));
        let bytes = out
            .body
            .collect()
            .await
            .map(|b| b.into_bytes())
            .unwrap_or_default();
        let mut reader = csv::Reader::from_reader(&bytes[3..]);
        let mut rows = 0;
        for record in reader.records() {
            record.unwrap_or_else(|e| panic!("CSV: {e}"));
            rows += 1;
        }
        rows
    }
}

#[tokio::test]
async fn a_transient_s3_failure_mid_upload_is_retried_to_a_complete_file() {
    let s = setup().await;
    let flaky = FaultyObjects::flaky(&s.app.blobs, || {
        StoreError::Unavailable("injected 503 on UploadPart".into())
    });
    let first = s.run(&flaky).await;
    assert!(matches!(first, Err(WorkerError::Retry(_))), "{first:?}");
    let job = s.job_now().await;
    assert_eq!(
        job.status,
        ExportStatus::Pending,
        "released for Lambda's retry"
    );
    assert!(!s.object_exists().await, "no object after the failed run");
    assert_eq!(
        s.open_uploads().await,
        1,
        "the multipart upload stays open for the retry"
    );
    assert_eq!(job.failures, 1);
    assert_eq!(
        job.resume.as_ref().map(|c| c.etags.len()),
        Some(1),
        "part 1 is saved"
    );

    // Lambda's retry: the same event again; it goes on from part 2.
    let second = s.run(&s.app.blobs).await;
    assert!(
        matches!(second, Ok(RunOutcome::Succeeded { parts, .. }) if parts >= 2),
        "{second:?}"
    );
    let job = s.job_now().await;
    assert_eq!(
        (job.status, job.attempt, job.row_count),
        (ExportStatus::Succeeded, 2, ROWS as u64)
    );
    assert_eq!(s.open_uploads().await, 0);
    assert_eq!(s.downloaded_rows().await, ROWS as usize);
}

#[tokio::test]
async fn a_permanent_s3_failure_fails_the_job_and_leaves_nothing() {
    let s = setup().await;
    let broken = FaultyObjects::flaky(&s.app.blobs, || {
        StoreError::Other("injected AccessDenied on UploadPart".into())
    });
    let outcome = s.run(&broken).await;
    assert!(
        matches!(outcome, Ok(RunOutcome::Failed { .. })),
        "{outcome:?}"
    );
    let job = s.job_now().await;
    assert_eq!(job.status, ExportStatus::Failed);
    assert!(
        job.error
            .as_deref()
            .is_some_and(|e| !e.contains("AccessDenied")),
        "no internals: {:?}",
        job.error
    );
    assert!(!s.object_exists().await);
    assert_eq!(s.open_uploads().await, 0);
    // A late duplicate invocation does not resurrect it.
    assert!(matches!(s.run(&s.app.blobs).await, Ok(RunOutcome::Skipped)));
}

#[tokio::test]
async fn a_worker_that_died_is_taken_over_once_its_lease_runs_out() {
    let s = setup().await;
    let now = Utc::now();
    // A run claimed the job and died: its lease is still running, then it runs out.
    let dead = s
        .app
        .store
        .claim_job(&s.job.partner, &s.job.id, now, now + TimeDelta::minutes(16))
        .await;
    assert!(matches!(dead, Ok(Some(_))));
    assert!(
        matches!(s.run(&s.app.blobs).await, Ok(RunOutcome::Skipped)),
        "lease still held"
    );
    let mut expired = s.job_now().await;
    expired.lease_until = Some(now - TimeDelta::seconds(1));
    s.app
        .store
        .update_job(&expired)
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let outcome = s.run(&s.app.blobs).await;
    assert!(
        matches!(outcome, Ok(RunOutcome::Succeeded { .. })),
        "{outcome:?}"
    );
    let job = s.job_now().await;
    assert_eq!((job.status, job.attempt), (ExportStatus::Succeeded, 2));
    assert_eq!(s.downloaded_rows().await, ROWS as usize);
    // The dead run, had it come back, could not overwrite the result.
    let stale = ExportJob {
        attempt: 1,
        status: ExportStatus::Running,
        ..job
    };
    assert!(s.app.store.update_job(&stale).await.is_err());
}
