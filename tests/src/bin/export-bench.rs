//! Export path throughput and peak memory with storage stubbed out:
//!   export-bench <rows> [csv|jsonl]
//! A synthetic log generates pages on demand (newest first, like the table), the real worker
//! claims the job, encodes rows and hands parts to a sink that counts and drops them.
//! Prints rows, bytes, parts, seconds, rows/s and the process's peak RSS (VmHWM).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use activity_log::config::Config;
use activity_log::domain::{
    Activity, ActivityId, ActivityQuery, CustomerId, DateRange, Details, ExportFormat, ExportId,
    ExportJob, ExportSpec, ExportStatus, Filters, PageKey, PartnerId, Status,
};
use activity_log::handlers::export_worker::{self, RunOutcome};
use activity_log::store::lambda::WorkerEvent;
use activity_log::store::{
    ActivityReader, DetailsBlobs, ExportJobs, ExportObjects, PartSink, StoreError, StorePage,
};
use chrono::{DateTime, TimeDelta, Utc};

const PAGE: u64 = 2500;

struct SyntheticLog {
    rows: u64,
    newest: DateTime<Utc>,
}

impl SyntheticLog {
    fn activity(&self, n: u64) -> Activity {
        Activity {
            id: ActivityId::parse(&format!("act-{n:09}")).unwrap_or_else(|e| panic!("{e}")),
            customer_id: CustomerId::parse(&format!("customer-{}", n % 97))
                .unwrap_or_else(|e| panic!("{e}")),
            customer_name: if n.is_multiple_of(3) {
                "台北雲端科技股份有限公司".into()
            } else {
                "Contoso, Ltd.".into()
            },
            action: "placed an order".into(),
            partner_user: "chen.wei@partner.example".into(),
            occurred_at: self.newest - TimeDelta::milliseconds(i64::try_from(n).unwrap_or(0) * 10),
            recorded_at: self.newest,
            resource_type: Some("order".into()),
            status: Status::Succeeded,
            details: Details::Inline(format!(
                r#"{{"orderId":"ORD-{n}","seats":{},"sku":"CFQ7TTC0LH18"}}"#,
                n % 50
            )),
            content_hash: String::new(),
            expires_at: 0,
        }
    }
}

impl ActivityReader for SyntheticLog {
    async fn get(
        &self,
        _: &PartnerId,
        _: &CustomerId,
        _: &ActivityId,
    ) -> Result<Option<Activity>, StoreError> {
        Ok(None)
    }

    async fn query_page(
        &self,
        _: &PartnerId,
        _: &ActivityQuery,
        after: Option<&PageKey>,
        _: usize,
    ) -> Result<StorePage, StoreError> {
        let start = after
            .and_then(|k| k.id.as_str().trim_start_matches("act-").parse::<u64>().ok())
            .map_or(0, |n| n + 1);
        let end = (start + PAGE).min(self.rows);
        let items: Vec<Activity> = (start..end).map(|n| self.activity(n)).collect();
        let last_evaluated = if end < self.rows {
            items.last().map(PageKey::of)
        } else {
            None
        };
        Ok(StorePage {
            items,
            last_evaluated,
        })
    }
}

impl DetailsBlobs for SyntheticLog {
    async fn put(&self, _: &str, _: &str) -> Result<(), StoreError> {
        Ok(())
    }
    async fn get(&self, key: &str) -> Result<String, StoreError> {
        Err(StoreError::Other(format!("no blob {key}")))
    }
    async fn delete(&self, _: &str) -> Result<(), StoreError> {
        Ok(())
    }
}

struct OneJob(ExportJob);

impl ExportJobs for OneJob {
    async fn create_job(&self, _: &ExportJob) -> Result<(), StoreError> {
        Ok(())
    }
    async fn get_job(&self, _: &PartnerId, _: &ExportId) -> Result<Option<ExportJob>, StoreError> {
        Ok(Some(self.0.clone()))
    }
    async fn claim_job(
        &self,
        _: &PartnerId,
        _: &ExportId,
        _: DateTime<Utc>,
        lease: DateTime<Utc>,
    ) -> Result<Option<ExportJob>, StoreError> {
        Ok(Some(ExportJob {
            status: ExportStatus::Running,
            attempt: 1,
            lease_until: Some(lease),
            ..self.0.clone()
        }))
    }
    async fn update_job(&self, _: &ExportJob) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Counts what the worker uploads and drops the bytes.
#[derive(Default)]
struct CountingSink {
    smallest_non_final: AtomicU64,
    parts: AtomicU64,
}

struct Upload(Arc<CountingSink>, Vec<u64>);

impl PartSink for Upload {
    async fn upload_part(&mut self, _: i32, bytes: Vec<u8>) -> Result<(), StoreError> {
        self.1.push(bytes.len() as u64);
        self.0.parts.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
    async fn complete(&mut self) -> Result<(), StoreError> {
        let non_final = &self.1[..self.1.len().saturating_sub(1)];
        self.0.smallest_non_final.store(
            non_final.iter().copied().min().unwrap_or(0),
            Ordering::Relaxed,
        );
        Ok(())
    }
    async fn abort(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
}

struct NullObjects(Arc<CountingSink>);

impl ExportObjects for NullObjects {
    type Upload = Upload;
    async fn start_upload(&self, _: &str, _: &str, _: &str) -> Result<Upload, StoreError> {
        Ok(Upload(self.0.clone(), Vec::new()))
    }
    async fn presign_get(
        &self,
        _: &str,
        _: &str,
        _: &str,
        _: Duration,
    ) -> Result<String, StoreError> {
        Ok(String::new())
    }
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rows: u64 = args.first().and_then(|r| r.parse().ok()).unwrap_or(100_000);
    let format = args
        .get(1)
        .and_then(|f| ExportFormat::parse(f))
        .unwrap_or(ExportFormat::Csv);
    let now = Utc::now();
    let partner = PartnerId::parse("bench").unwrap_or_else(|e| panic!("{e}"));
    let spec = ExportSpec {
        query: ActivityQuery {
            customer: None,
            range: DateRange {
                from: now - TimeDelta::days(3650),
                to: now,
            },
            filters: Filters::default(),
        },
        format,
        time_zone: chrono_tz::Asia::Taipei,
    };
    let job = ExportJob::pending(partner.clone(), spec, now, TimeDelta::days(1));
    let config =
        activity_log_tests::test_config("t", "b", activity_log::config::AuthMode::ApiGateway);
    let log = SyntheticLog { rows, newest: now };
    let sink = Arc::new(CountingSink::default());
    let event = WorkerEvent {
        partner_id: partner.to_string(),
        export_id: job.id.to_string(),
    };
    let jobs = OneJob(job);
    let started = Instant::now();
    let outcome = export_worker::run(
        &config as &Config,
        &log,
        &log,
        &jobs,
        &NullObjects(sink.clone()),
        &event,
    )
    .await;
    let secs = started.elapsed().as_secs_f64();
    let smallest = sink.smallest_non_final.load(Ordering::Relaxed);
    match outcome {
        Ok(RunOutcome::Succeeded { rows, bytes, parts }) => println!(
            "rows={rows} format={} bytes={bytes} parts={parts} smallest_non_final_part={smallest} seconds={secs:.3} rows_per_s={:.0} peak_rss_kib={}",
            format.as_str(),
            rows as f64 / secs,
            peak_rss_kib()
        ),
        other => {
            eprintln!("export did not succeed: {other:?}");
            std::process::exit(1);
        }
    }
}
