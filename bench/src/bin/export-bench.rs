//! The export path with storage stubbed out (the real worker, encoder and part writer; pages
//! from memory; parts counted and dropped). Prints one JSON object.
//!
//!   export-bench memory <rows> [csv|jsonl|parquet] [whole]
//!     A synthetic log generates pages on demand, newest first like the table, so memory is the
//!     export path's own: rows, bytes, parts, part sizes, seconds and peak RSS (VmHWM). Each
//!     customer's rows are every 97th sequence (a filtered export, a run left out between
//!     every two rows), or with `whole` consecutive sequences (the whole log).
//!   export-bench cpu <rows> [rounds]
//!     The same prebuilt records, alternately (a) exported by the worker (page -> CSV -> part
//!     buffer, SHA-256 for the manifest; the customers' checkpoints are signed before) and (b)
//!     serialized by the raw `csv` crate into a `Vec<u8>` whose SHA-256 is then taken (the
//!     least code that writes the same file and its hash); rows/s of each, best of `rounds`.
//!     `ratio` is ours to (b), `ratioToCsvAlone` ours to (b) without the hash.
//!   export-bench formats <rows> [rounds]
//!     The same prebuilt records (whole chains) exported by the worker as CSV and as Parquet
//!     (OCSF events, a file per day), alternately; rows/s of each, best of `rounds`, and
//!     `parquetToCsv`.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Instant;

use activity_log::config::Config;
use activity_log::domain::chain::Link;
use activity_log::domain::{
    Activity, ActivityId, ActivityQuery, CustomerId, DateRange, Details, ExportFormat, ExportJob,
    ExportLocale, ExportSpec, Filters, PageKey, PartnerId,
};
use activity_log::handlers::export_worker::{self, ExportPorts, RunOutcome};
use activity_log::launch::WorkerEvent;
use activity_log::store::memory::MemoryStore;
use activity_log::store::{
    ActivityReader, ChainIndex, ChainLinks, DetailsBlobs, ExportJobs, StoreError, StorePage,
};
use activity_log::testing::doubles::{LocalSigner, RecordingLauncher};
use activity_log::testing::fixtures::synthetic_activity;
use activity_log_bench::process::peak_rss_kib;
use chrono::{DateTime, TimeDelta, Utc};
use sha2::{Digest, Sha256};

const PAGE: u64 = 2500;

/// Where the stubbed reader's pages come from.
trait PageSource: Send + Sync {
    fn next_page(&self, after: Option<&PageKey>) -> Result<StorePage, StoreError>;
}

/// The store the worker reads, over a [`PageSource`]; no single reads, no details objects.
struct Pages<S>(S);

impl<S: PageSource> ActivityReader for Pages<S> {
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
        self.0.next_page(after)
    }
}

/// The chains of the synthetic log (activity `n` is sequence `n + 1` of customer `n % 97`):
/// what the worker reads when it seals the manifest. Every customer's head is far past its rows,
/// reached from a chain whose older activities expired (nothing is anchored); the gaps between a
/// customer's rows hold other customers' sequences, so none is left out whole: one read per
/// window of gaps, as in a filtered export.
impl<S: Send + Sync> ChainIndex for Pages<S> {
    async fn links_between(
        &self,
        _: &PartnerId,
        customer: &CustomerId,
        from: u64,
        to: u64,
    ) -> Result<ChainLinks, StoreError> {
        let link = |s: u64| Link {
            sequence: s,
            hash: format!("{s:064x}"),
            previous_hash: format!("{:064x}", s - 1),
            previous_recorded_at: None,
        };
        if to == u64::MAX {
            return Ok(ChainLinks {
                links: vec![link(HEAD)],
            });
        }
        let k: u64 = customer
            .as_str()
            .trim_start_matches("customer-")
            .parse()
            .map_err(|_| StoreError::Other(format!("customer {customer}")))?;
        Ok(ChainLinks {
            links: (from.max(1)..=to)
                .filter(|s| (s - 1) % 97 == k)
                .map(link)
                .collect(),
        })
    }
}

/// Every synthetic customer's head.
const HEAD: u64 = 1 << 40;

impl<S: Send + Sync> DetailsBlobs for Pages<S> {
    async fn put(&self, _: &str, _: &str) -> Result<(), StoreError> {
        Ok(())
    }
    async fn get(&self, key: &str) -> Result<String, StoreError> {
        Err(StoreError::Other(format!("no blob {key}")))
    }
}

/// A log of `rows` activities generated page by page on demand, newest first like the table,
/// so memory is the export path's own.
struct SyntheticLog {
    rows: u64,
    newest: DateTime<Utc>,
    /// Each customer's rows are consecutive sequences of its chain (a whole log exported, no
    /// gaps), instead of every 97th sequence (a filtered export: a run left out between every
    /// two rows of a customer, which the manifest's state holds).
    whole: bool,
}

impl SyntheticLog {
    fn activity(&self, n: u64) -> Activity {
        let occurred_at = self.newest - TimeDelta::milliseconds(i64::try_from(n).unwrap_or(0) * 10);
        let mut a = synthetic_activity(n, &format!("customer-{}", n % 97), occurred_at);
        if self.whole
            && let Some(link) = &mut a.chain
        {
            // Newest first: the customer's newest row holds its highest sequence.
            let s = (self.rows - n).div_ceil(97);
            *link = Link {
                sequence: s,
                hash: format!("{s:064x}"),
                previous_hash: format!("{:064x}", s - 1),
                previous_recorded_at: Some(occurred_at),
            };
        }
        a
    }
}

impl PageSource for SyntheticLog {
    fn next_page(&self, after: Option<&PageKey>) -> Result<StorePage, StoreError> {
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

/// Pages built before the clock starts, handed out (moved, not copied) in order.
struct Prebuilt(Mutex<VecDeque<StorePage>>);

impl PageSource for Prebuilt {
    fn next_page(&self, _: Option<&PageKey>) -> Result<StorePage, StoreError> {
        let mut pages = self
            .0
            .lock()
            .map_err(|_| StoreError::Other("poisoned".into()))?;
        Ok(pages.pop_front().unwrap_or_default())
    }
}

/// The raw `csv` crate's view of a record: the same twelve values, serialized as they are.
#[derive(serde::Serialize)]
struct RawRow<'a> {
    occurred_at: DateTime<Utc>,
    customer_name: &'a str,
    action: &'a str,
    partner_user: &'a str,
    customer_id: &'a str,
    resource_type: Option<&'a str>,
    status: &'a str,
    id: &'a str,
    details: Option<&'a str>,
    recorded_by: Option<&'a str>,
    sequence: Option<u64>,
    hash: Option<&'a str>,
}

fn raw_csv(records: &[Activity]) -> Result<Vec<u8>, String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for a in records {
        w.serialize(RawRow {
            occurred_at: a.occurred_at,
            customer_name: &a.customer_name,
            action: &a.action,
            partner_user: &a.partner_user,
            customer_id: a.customer_id.as_str(),
            resource_type: a.resource_type.as_deref(),
            status: a.status.as_str(),
            id: a.id.as_str(),
            details: match &a.details {
                Details::Inline(d) => Some(d.as_str()),
                _ => None,
            },
            recorded_by: a.recorded_by.as_deref(),
            sequence: a.chain.as_ref().map(|l| l.sequence),
            hash: a.chain.as_ref().map(|l| l.hash.as_str()),
        })
        .map_err(|e| e.to_string())?;
    }
    w.into_inner().map_err(|e| e.to_string())
}

struct Bench {
    config: Config,
    signer: LocalSigner,
    partner: PartnerId,
    now: DateTime<Utc>,
}

impl Bench {
    fn job(&self, format: ExportFormat) -> ExportJob {
        let spec = ExportSpec {
            query: ActivityQuery {
                customer: None,
                range: DateRange {
                    from: self.now - TimeDelta::days(3650),
                    to: self.now,
                },
                filters: Filters::default(),
            },
            format,
            time_zone: chrono_tz::Asia::Taipei,
            locale: ExportLocale::English,
        };
        ExportJob::pending(self.partner.clone(), spec, self.now, TimeDelta::days(1))
    }

    /// Runs the worker over `source`; the job and the parts (their sizes only, the bytes are
    /// dropped) are kept in memory.
    async fn export<R: ActivityReader + ChainIndex + DetailsBlobs>(
        &self,
        source: &R,
        format: ExportFormat,
    ) -> Result<Exported, String> {
        let store = MemoryStore::default().discarding_object_bytes();
        let job = self.job(format);
        store.create_job(&job).await.map_err(|e| e.to_string())?;
        let event = WorkerEvent::new(&self.partner, &job.id);
        // The benchmark's budget covers the whole export: nothing is handed over.
        let launcher = RecordingLauncher::default();
        // Nothing anchored: each chain is checked from its start.
        let anchors = MemoryStore::default();
        let ports = ExportPorts {
            reader: source,
            blobs: source,
            jobs: &store,
            objects: &store,
            launcher: &launcher,
            signer: &self.signer,
            anchors: &anchors,
        };
        match export_worker::run(&self.config, &ports, &event).await {
            Ok(RunOutcome::Succeeded { rows, bytes, parts }) => Ok(Exported {
                rows,
                bytes,
                parts,
                part_sizes: store
                    .object(&job.object_key())
                    .map(|o| o.part_sizes)
                    .unwrap_or_default(),
            }),
            other => Err(format!("export did not succeed: {other:?}")),
        }
    }
}

struct Exported {
    rows: u64,
    bytes: u64,
    parts: i32,
    part_sizes: Vec<usize>,
}

impl Exported {
    fn smallest_non_final_part(&self) -> usize {
        let non_final = &self.part_sizes[..self.part_sizes.len().saturating_sub(1)];
        non_final.iter().copied().min().unwrap_or(0)
    }

    fn largest_part(&self) -> usize {
        self.part_sizes.iter().copied().max().unwrap_or(0)
    }
}

/// `records` as the worker reads them: pages of 1,000 (the worker's page size), each moved into
/// the worker once.
fn prebuilt(records: &[Activity]) -> Pages<Prebuilt> {
    let mut pages: VecDeque<StorePage> = records
        .chunks(1000)
        .map(|c| StorePage {
            items: c.to_vec(),
            last_evaluated: None,
        })
        .collect();
    let count = pages.len();
    for (i, page) in pages.iter_mut().enumerate() {
        if i + 1 < count {
            page.last_evaluated = page.items.last().map(PageKey::of);
        }
    }
    Pages(Prebuilt(Mutex::new(pages)))
}

fn fail(message: &str) -> ! {
    eprintln!("export-bench: {message}");
    std::process::exit(1)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    // As the export worker does.
    activity_log::app::map_large_buffers_apart();
    // Stdout carries the report: the worker's metric line (one per run) is kept off it.
    let _metrics = activity_log::metrics::capture();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args.first().map(String::as_str).unwrap_or("");
    let rows: u64 = args.get(1).and_then(|r| r.parse().ok()).unwrap_or_else(|| {
        fail("usage: export-bench memory|cpu|formats <rows> [csv|jsonl|parquet|rounds]")
    });
    let bench = Bench {
        config: activity_log::testing::fixtures::config(),
        signer: LocalSigner::new("export-bench", 5),
        partner: PartnerId::parse("bench").unwrap_or_else(|e| fail(&e.to_string())),
        now: Utc::now(),
    };
    match mode {
        "memory" => {
            let format = args
                .get(2)
                .and_then(|f| ExportFormat::parse(f))
                .unwrap_or(ExportFormat::Csv);
            let log = Pages(SyntheticLog {
                rows,
                newest: bench.now,
                whole: args.get(3).is_some_and(|a| a == "whole"),
            });
            let started = Instant::now();
            let exported = bench
                .export(&log, format)
                .await
                .unwrap_or_else(|e| fail(&e));
            let secs = started.elapsed().as_secs_f64();
            let rows = exported.rows;
            println!(
                "{}",
                serde_json::json!({
                    "mode": "memory",
                    "format": format.as_str(),
                    "rows": rows,
                    "bytes": exported.bytes,
                    "parts": exported.parts,
                    "smallestNonFinalPart": exported.smallest_non_final_part(),
                    "largestPart": exported.largest_part(),
                    "seconds": secs,
                    "rowsPerSecond": rows as f64 / secs,
                    "peakRssKib": peak_rss_kib("/proc/self/status").unwrap_or(0),
                })
            );
        }
        "cpu" => {
            let rounds: u32 = args.get(2).and_then(|r| r.parse().ok()).unwrap_or(5);
            let log = SyntheticLog {
                rows,
                newest: bench.now,
                whole: false,
            };
            let records: Vec<Activity> = (0..rows).map(|n| log.activity(n)).collect();
            let (mut ours_best, mut raw_best, mut hashed_best) = (f64::MAX, f64::MAX, f64::MAX);
            let (mut ours_bytes, mut raw_bytes) = (0, 0);
            for _ in 0..rounds {
                let source = prebuilt(&records);
                let started = Instant::now();
                let exported = bench
                    .export(&source, ExportFormat::Csv)
                    .await
                    .unwrap_or_else(|e| fail(&e));
                ours_best = ours_best.min(started.elapsed().as_secs_f64());
                if exported.rows != rows {
                    fail(&format!("exported {} rows of {rows}", exported.rows));
                }
                ours_bytes = exported.bytes;

                let started = Instant::now();
                let raw_file = raw_csv(&records).unwrap_or_else(|e| fail(&e));
                let csv_secs = started.elapsed().as_secs_f64();
                // The file's SHA-256, which the worker computes for the manifest.
                let digest = Sha256::digest(&raw_file);
                let hashed_secs = started.elapsed().as_secs_f64();
                std::hint::black_box(digest);
                raw_bytes = raw_file.len();
                raw_best = raw_best.min(csv_secs);
                hashed_best = hashed_best.min(hashed_secs);
            }
            let ours = rows as f64 / ours_best;
            let raw = rows as f64 / raw_best;
            let hashed = rows as f64 / hashed_best;
            println!(
                "{}",
                serde_json::json!({
                    "mode": "cpu",
                    "rows": rows,
                    "rounds": rounds,
                    "oursRowsPerSecond": ours,
                    "oursBytes": ours_bytes,
                    "rawCsvRowsPerSecond": raw,
                    "rawCsvBytes": raw_bytes,
                    "rawCsvSha256RowsPerSecond": hashed,
                    "ratio": ours / hashed,
                    "ratioToCsvAlone": ours / raw,
                })
            );
        }
        "formats" => {
            let rounds: u32 = args.get(2).and_then(|r| r.parse().ok()).unwrap_or(3);
            let log = SyntheticLog {
                rows,
                newest: bench.now,
                whole: true,
            };
            let records: Vec<Activity> = (0..rows).map(|n| log.activity(n)).collect();
            let mut best = [f64::MAX; 2];
            let mut bytes = [0; 2];
            for _ in 0..rounds {
                for (i, format) in [ExportFormat::Csv, ExportFormat::Parquet]
                    .into_iter()
                    .enumerate()
                {
                    let source = prebuilt(&records);
                    let started = Instant::now();
                    let exported = bench
                        .export(&source, format)
                        .await
                        .unwrap_or_else(|e| fail(&e));
                    best[i] = best[i].min(started.elapsed().as_secs_f64());
                    if exported.rows != rows {
                        fail(&format!("exported {} rows of {rows}", exported.rows));
                    }
                    bytes[i] = exported.bytes;
                }
            }
            let [csv, parquet] = best.map(|secs| rows as f64 / secs);
            println!(
                "{}",
                serde_json::json!({
                    "mode": "formats",
                    "rows": rows,
                    "rounds": rounds,
                    "csvRowsPerSecond": csv,
                    "csvBytes": bytes[0],
                    "parquetRowsPerSecond": parquet,
                    "parquetBytes": bytes[1],
                    "parquetToCsv": parquet / csv,
                })
            );
        }
        _ => fail("usage: export-bench memory|cpu|formats <rows> [csv|jsonl|parquet|rounds]"),
    }
}
