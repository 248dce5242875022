//! A bounded load run against a running stack: `clients` concurrent writers record `records`
//! activities in batches through `POST /activities`, retrying 429/5xx and network errors the way
//! a well-behaved client does (same body, so retries are idempotent; `Retry-After` honoured).
//! Then the log is read back page by page and exported, and both must hold every record exactly
//! once; and the tenant's feed, once the sequencer has caught up, holds them at consecutive
//! positions, each once. A share of the records occurred hours before they were recorded (late
//! arrivals), which a reader paging by `occurredAt` would miss and the feed must not. Used by `tests/tests/load.rs` and by `scripts/load` (the `load` binary).

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

#[derive(Debug, Clone)]
pub struct LoadPlan {
    pub base: String,
    pub writer_token: String,
    pub reader_token: String,
    pub clients: usize,
    pub records: usize,
    pub batch: usize,
    /// Customers the records are spread over (round robin): few customers, long chains that
    /// many clients append to at once.
    pub customers: usize,
    /// Customer ids and activity ids carry this, so runs against one stack do not meet.
    pub run_id: String,
}

#[derive(Debug)]
pub struct LoadReport {
    pub requests: usize,
    pub retries: usize,
    pub retried_statuses: Vec<(u16, usize)>,
    pub network_errors: usize,
    pub write_seconds: f64,
    pub requests_per_second: f64,
    pub records_per_second: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub read_back: usize,
    pub read_back_unique: usize,
    pub read_pages: usize,
    pub exported_rows: usize,
    pub exported_unique: usize,
    /// Each customer's sequences as read back, in order.
    pub sequences: BTreeMap<String, Vec<u64>>,
    pub feed: FeedReadBack,
}

/// This run's records in the tenant's feed, read with `GET /feed` from the head before the run.
#[derive(Debug, Default)]
pub struct FeedReadBack {
    /// The feed's head before the run: the run's records follow it.
    pub after: u64,
    pub rows: usize,
    pub unique: usize,
    /// Whether the positions read are exactly `after + 1 ..= after + rows`, in order.
    pub consecutive: bool,
    /// Rows of other runs met between this run's (none when runs do not overlap).
    pub foreign: usize,
    /// From the last write's answer until the sequencer had placed every record.
    pub caught_up_seconds: f64,
    pub pages: usize,
    /// What a reader following the feed while the writers wrote saw: this run's records
    /// (repeats included), and how many it saw more than once.
    pub followed: usize,
    pub followed_twice: usize,
    /// From a record's write being answered to the follower seeing it in the feed
    /// (end-to-end lag: stream, sequencer, feed read; polled every 100 ms).
    pub lag_p50_ms: f64,
    pub lag_p99_ms: f64,
    pub lag_max_ms: f64,
}

impl LoadReport {
    /// Whether each customer's sequences read back are exactly 1, 2, …, n.
    pub fn chains_are_gapless(&self) -> bool {
        self.sequences
            .values()
            .all(|s| s.iter().copied().eq(1..=s.len() as u64))
    }
}

impl std::fmt::Display for LoadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "write: {} requests ({} retries {:?}, {} network errors) in {:.1} s = {:.1} req/s, {:.0} records/s",
            self.requests,
            self.retries,
            self.retried_statuses,
            self.network_errors,
            self.write_seconds,
            self.requests_per_second,
            self.records_per_second
        )?;
        writeln!(
            f,
            "latency per request (incl. retries): p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            self.p50_ms, self.p90_ms, self.p99_ms, self.max_ms
        )?;
        writeln!(
            f,
            "read back: {} records ({} unique) in {} pages",
            self.read_back, self.read_back_unique, self.read_pages
        )?;
        writeln!(
            f,
            "export: {} rows ({} unique ids)",
            self.exported_rows, self.exported_unique
        )?;
        writeln!(
            f,
            "feed: {} records ({} unique) at positions {}–{} ({}), read in {} pages; placed {:.1} s after the last write",
            self.feed.rows,
            self.feed.unique,
            self.feed.after + 1,
            self.feed.after + self.feed.rows as u64,
            if self.feed.consecutive && self.feed.foreign == 0 {
                "consecutive"
            } else {
                "NOT consecutive"
            },
            self.feed.pages,
            self.feed.caught_up_seconds
        )?;
        writeln!(
            f,
            "feed followed during the writes: {} records seen, {} of them more than once; lag from the write's answer p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
            self.feed.followed,
            self.feed.followed_twice,
            self.feed.lag_p50_ms,
            self.feed.lag_p99_ms,
            self.feed.lag_max_ms
        )?;
        let chains: Vec<String> = self
            .sequences
            .iter()
            .map(|(c, s)| format!("{c} {}–{}", s.first().unwrap_or(&0), s.last().unwrap_or(&0)))
            .collect();
        write!(
            f,
            "chains: {} ({})",
            chains.join(", "),
            if self.chains_are_gapless() {
                "each exactly 1..n"
            } else {
                "NOT gapless"
            }
        )
    }
}

fn customer(plan: &LoadPlan, n: usize) -> String {
    format!("{}-c{}", plan.run_id, n % plan.customers.max(1))
}

fn batch_body(plan: &LoadPlan, first: usize, count: usize) -> Value {
    let now = chrono::Utc::now();
    Value::Array(
        (first..first + count)
            .map(|n| {
                // Every third record occurred up to ten hours before it is recorded.
                let late = if n % 3 == 0 { (n * 7919) % 600 } else { 0 };
                let occurred = now - chrono::TimeDelta::minutes(late as i64);
                json!({
                    "id": format!("{}-{n:06}", plan.run_id),
                    "occurredAt": occurred.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    "customerId": customer(plan, n),
                    "customerName": "Load Test Ltd.",
                    "action": "changed a subscription",
                    "partnerUser": format!("client{}@partner.example", n % plan.clients.max(1)),
                    "resourceType": "subscription",
                    "details": {"n": n, "seats": n % 50},
                })
            })
            .collect(),
    )
}

struct ClientStats {
    latencies: Vec<Duration>,
    requests: usize,
    retries: usize,
    retried: Vec<u16>,
    network_errors: usize,
    /// Each stored batch: its first record, how many, when its answer came.
    acked: Vec<(usize, usize, Instant)>,
}

const MAX_ATTEMPTS: u32 = 12;

/// Posts one batch until it is stored, or fails after `MAX_ATTEMPTS`.
async fn post_batch(
    http: &Client,
    plan: &LoadPlan,
    body: &Value,
    stats: &mut ClientStats,
) -> Result<(), String> {
    let started = Instant::now();
    for attempt in 0..MAX_ATTEMPTS {
        stats.requests += 1;
        let sent = http
            .post(format!("{}/activities", plan.base))
            .bearer_auth(&plan.writer_token)
            .json(body)
            .send()
            .await;
        let wait = match sent {
            Ok(r) if r.status() == StatusCode::CREATED => {
                stats.latencies.push(started.elapsed());
                return Ok(());
            }
            Ok(r)
                if r.status() == StatusCode::TOO_MANY_REQUESTS || r.status().is_server_error() =>
            {
                stats.retried.push(r.status().as_u16());
                r.headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .map(Duration::from_secs)
            }
            Ok(r) => {
                let status = r.status();
                return Err(format!("{status}: {}", r.text().await.unwrap_or_default()));
            }
            Err(_) => {
                stats.network_errors += 1;
                None
            }
        };
        stats.retries += 1;
        let backoff = Duration::from_millis(50 * 2u64.pow(attempt.min(6)));
        tokio::time::sleep(wait.unwrap_or(backoff).min(Duration::from_secs(5))).await;
    }
    Err(format!("batch not stored after {MAX_ATTEMPTS} attempts"))
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

/// Runs the plan; `Err` when a batch could not be stored or a request failed outright.
pub async fn run(plan: &LoadPlan) -> Result<LoadReport, String> {
    let http = Client::builder()
        .timeout(Duration::from_secs(120))
        .pool_max_idle_per_host(plan.clients)
        .build()
        .map_err(|e| e.to_string())?;
    let batches: Vec<(usize, usize)> = (0..plan.records)
        .step_by(plan.batch)
        .map(|first| (first, plan.batch.min(plan.records - first)))
        .collect();

    let feed_before = feed_head(&http, plan).await?;
    let follower = tokio::spawn(follow_feed(http.clone(), plan.clone(), feed_before));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..plan.clients {
        let mine: Vec<(usize, usize)> = batches
            .iter()
            .copied()
            .skip(client)
            .step_by(plan.clients)
            .collect();
        let (http, plan) = (http.clone(), plan.clone());
        tasks.spawn(async move {
            let mut stats = ClientStats {
                latencies: Vec::with_capacity(mine.len()),
                requests: 0,
                retries: 0,
                retried: Vec::new(),
                network_errors: 0,
                acked: Vec::with_capacity(mine.len()),
            };
            for (first, count) in mine {
                post_batch(&http, &plan, &batch_body(&plan, first, count), &mut stats).await?;
                stats.acked.push((first, count, Instant::now()));
            }
            Ok::<_, String>(stats)
        });
    }
    let mut all = Vec::new();
    let (mut requests, mut retries, mut network_errors) = (0, 0, 0);
    let mut retried: Vec<u16> = Vec::new();
    let mut acked: Vec<Option<Instant>> = vec![None; plan.records];
    while let Some(joined) = tasks.join_next().await {
        let stats = joined.map_err(|e| e.to_string())??;
        for (first, count, at) in stats.acked {
            acked[first..first + count].fill(Some(at));
        }
        all.extend(stats.latencies);
        requests += stats.requests;
        retries += stats.retries;
        network_errors += stats.network_errors;
        retried.extend(stats.retried);
    }
    let write_seconds = started.elapsed().as_secs_f64();
    all.sort();
    let mut retried_statuses: Vec<(u16, usize)> = Vec::new();
    retried.sort_unstable();
    for s in retried {
        match retried_statuses.last_mut() {
            Some((last, n)) if *last == s => *n += 1,
            _ => retried_statuses.push((s, 1)),
        }
    }

    let (seen, followed, followed_twice) = follower.await.map_err(|e| e.to_string())??;
    let mut lags: Vec<Duration> = acked
        .iter()
        .zip(&seen)
        .filter_map(|(a, s)| Some(s.as_ref()?.saturating_duration_since(*a.as_ref()?)))
        .collect();
    lags.sort();
    let mut feed = read_feed(&http, plan, feed_before).await?;
    feed.followed = followed;
    feed.followed_twice = followed_twice;
    feed.lag_p50_ms = percentile(&lags, 0.50);
    feed.lag_p99_ms = percentile(&lags, 0.99);
    feed.lag_max_ms = lags.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0);
    let (read_back, read_back_unique, read_pages, sequences) = read_all(&http, plan).await?;
    let (exported_rows, exported_unique) = export_all(&http, plan).await?;
    Ok(LoadReport {
        requests,
        retries,
        retried_statuses,
        network_errors,
        write_seconds,
        requests_per_second: requests as f64 / write_seconds,
        records_per_second: plan.records as f64 / write_seconds,
        p50_ms: percentile(&all, 0.50),
        p90_ms: percentile(&all, 0.90),
        p99_ms: percentile(&all, 0.99),
        max_ms: all.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0),
        read_back,
        read_back_unique,
        read_pages,
        exported_rows,
        exported_unique,
        sequences,
        feed,
    })
}

/// The tenant's feed head (`GET /feed?after=…` past any position answers with it alone).
async fn feed_head(http: &Client, plan: &LoadPlan) -> Result<u64, String> {
    let r = http
        .get(format!("{}/feed?after=9007199254740991&limit=1", plan.base))
        .bearer_auth(&plan.reader_token)
        .send()
        .await
        .map_err(|e| format!("feed head: {e}"))?;
    if r.status() != StatusCode::OK {
        return Err(format!("feed head: {}", r.status()));
    }
    let page: Value = r.json().await.map_err(|e| format!("feed head: {e}"))?;
    page["headPosition"]
        .as_u64()
        .ok_or_else(|| format!("feed head: no headPosition in {page}"))
}

/// What a feed follower saw: when it first saw each record (by number), how many of the run's
/// records it read, and how many of those it had read before.
type Followed = (Vec<Option<Instant>>, usize, usize);

/// Follows the feed from `after` while the writers write, as a consumer would (always from the
/// last `nextPosition`, every 100 ms when there is nothing new), until every record of the run
/// is seen or 15 minutes pass.
async fn follow_feed(http: Client, plan: LoadPlan, after: u64) -> Result<Followed, String> {
    let started = Instant::now();
    let mut seen: Vec<Option<Instant>> = vec![None; plan.records];
    let (mut position, mut distinct, mut rows, mut twice) = (after, 0, 0, 0);
    while distinct < plan.records {
        if started.elapsed() > Duration::from_secs(900) {
            return Err(format!(
                "the follower saw {distinct} of {} records in 15 minutes",
                plan.records
            ));
        }
        let page: Value = http
            .get(format!("{}/feed?after={position}&limit=1000", plan.base))
            .bearer_auth(&plan.reader_token)
            .send()
            .await
            .map_err(|e| format!("follow: {e}"))?
            .json()
            .await
            .map_err(|e| format!("follow: {e}"))?;
        let now = Instant::now();
        let items = page["items"].as_array().cloned().unwrap_or_default();
        for item in &items {
            let Some(n) = item["id"]
                .as_str()
                .and_then(|id| ours(&plan, id))
                .and_then(|id| id.rsplit('-').next())
                .and_then(|n| n.parse::<usize>().ok())
                .filter(|n| *n < plan.records)
            else {
                continue;
            };
            rows += 1;
            match seen[n] {
                Some(_) => twice += 1,
                None => {
                    seen[n] = Some(now);
                    distinct += 1;
                }
            }
        }
        position = page["nextPosition"].as_u64().unwrap_or(position);
        if items.is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok((seen, rows, twice))
}

/// Waits (at most 10 minutes) until the sequencer has placed the run's records, then reads the
/// feed after `after`, 1000 a page, up to the head.
async fn read_feed(http: &Client, plan: &LoadPlan, after: u64) -> Result<FeedReadBack, String> {
    let started = Instant::now();
    let target = after + plan.records as u64;
    while feed_head(http, plan).await? < target {
        if started.elapsed() > Duration::from_secs(600) {
            return Err(format!(
                "the feed did not reach position {target} in 10 minutes (at {})",
                feed_head(http, plan).await?
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut out = FeedReadBack {
        after,
        consecutive: true,
        caught_up_seconds: started.elapsed().as_secs_f64(),
        ..FeedReadBack::default()
    };
    let (mut position, mut seen) = (after, HashSet::new());
    while position < target {
        let r = http
            .get(format!("{}/feed?after={position}&limit=1000", plan.base))
            .bearer_auth(&plan.reader_token)
            .send()
            .await
            .map_err(|e| format!("feed: {e}"))?;
        if r.status() != StatusCode::OK {
            return Err(format!("feed page {}: {}", out.pages, r.status()));
        }
        let page: Value = r.json().await.map_err(|e| format!("feed: {e}"))?;
        out.pages += 1;
        for item in page["items"].as_array().into_iter().flatten() {
            let at = item["feedPosition"].as_u64().unwrap_or(0);
            if at > target {
                break;
            }
            match item["id"].as_str().and_then(|id| ours(plan, id)) {
                Some(id) => {
                    out.rows += 1;
                    seen.insert(format!("{}/{id}", item["customerId"]));
                    out.consecutive &= at == after + out.rows as u64 + out.foreign as u64;
                }
                None => out.foreign += 1,
            }
        }
        let next = page["nextPosition"].as_u64().unwrap_or(position);
        if next <= position {
            return Err(format!("the feed did not move on from position {position}"));
        }
        position = next;
    }
    out.unique = seen.len();
    Ok(out)
}

fn ours<'a>(plan: &LoadPlan, id: &'a str) -> Option<&'a str> {
    id.strip_prefix(plan.run_id.as_str())
        .filter(|rest| rest.starts_with('-'))
        .map(|_| id)
}

/// What reading the log back found: records, distinct records, pages, and each customer's
/// sequences (sorted).
type ReadBack = (usize, usize, usize, BTreeMap<String, Vec<u64>>);

/// Follows cursors over the whole log (newest first, 1000 a page); counts this run's records.
async fn read_all(http: &Client, plan: &LoadPlan) -> Result<ReadBack, String> {
    let (mut total, mut seen, mut pages) = (0, HashSet::new(), 0);
    let mut sequences: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut cursor: Option<String> = None;
    loop {
        // Cursors are URL-safe base64 and '.', so they go into the query as they are.
        let mut url = format!("{}/activities?limit=1000&from=2000-01-01", plan.base);
        if let Some(c) = &cursor {
            url.push_str("&cursor=");
            url.push_str(c);
        }
        let r = http
            .get(url)
            .bearer_auth(&plan.reader_token)
            .send()
            .await
            .map_err(|e| format!("read: {e}"))?;
        if r.status() != StatusCode::OK {
            return Err(format!("read page {pages}: {}", r.status()));
        }
        let page: Value = r.json().await.map_err(|e| format!("read: {e}"))?;
        pages += 1;
        for item in page["items"].as_array().into_iter().flatten() {
            if let Some(id) = item["id"].as_str().and_then(|id| ours(plan, id)) {
                total += 1;
                seen.insert(format!("{}/{id}", item["customerId"]));
                let customer = item["customerId"].as_str().unwrap_or_default().to_owned();
                // A record without a sequence shows as 0, which no chain holds.
                let sequence = item["sequence"].as_u64().unwrap_or(0);
                sequences.entry(customer).or_default().push(sequence);
            }
        }
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => {
                sequences.values_mut().for_each(|s| s.sort_unstable());
                return Ok((total, seen.len(), pages, sequences));
            }
        }
    }
}

/// Exports the whole log as CSV, downloads it through the presigned link and counts this run's
/// rows (the CSV's "Activity ID" column).
async fn export_all(http: &Client, plan: &LoadPlan) -> Result<(usize, usize), String> {
    let r = http
        .post(format!("{}/exports", plan.base))
        .bearer_auth(&plan.reader_token)
        .json(&json!({"from": "2000-01-01", "format": "csv"}))
        .send()
        .await
        .map_err(|e| format!("export: {e}"))?;
    if r.status() != StatusCode::ACCEPTED {
        return Err(format!("export: {}", r.status()));
    }
    let job: Value = r.json().await.map_err(|e| e.to_string())?;
    let id = job["id"].as_str().unwrap_or_default().to_owned();
    let deadline = Instant::now() + Duration::from_secs(600);
    let url = loop {
        let r = http
            .get(format!("{}/exports/{id}", plan.base))
            .bearer_auth(&plan.reader_token)
            .send()
            .await
            .map_err(|e| format!("export status: {e}"))?;
        let job: Value = r.json().await.map_err(|e| e.to_string())?;
        match job["status"].as_str() {
            Some("succeeded") => break job["downloadUrl"].as_str().unwrap_or_default().to_owned(),
            Some("failed") => return Err(format!("export failed: {job}")),
            _ if Instant::now() > deadline => return Err("export did not finish".into()),
            _ => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    };
    let bytes = http
        .get(&url)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| format!("download: {e}"))?
        .bytes()
        .await
        .map_err(|e| format!("download: {e}"))?;
    let body = bytes
        .strip_prefix(b"\xEF\xBB\xBF".as_slice())
        .unwrap_or(&bytes);
    let mut reader = csv::Reader::from_reader(body);
    let headers = reader.headers().map_err(|e| e.to_string())?.clone();
    let id_col = headers
        .iter()
        .position(|h| h == "Activity ID")
        .ok_or_else(|| format!("no Activity ID column in {headers:?}"))?;
    let customer_col = headers
        .iter()
        .position(|h| h == "Customer ID")
        .ok_or_else(|| format!("no Customer ID column in {headers:?}"))?;
    let (mut rows, mut seen) = (0, HashSet::new());
    for record in reader.records() {
        let record = record.map_err(|e| format!("csv: {e}"))?;
        let (Some(id), Some(customer)) = (record.get(id_col), record.get(customer_col)) else {
            return Err("short CSV row".into());
        };
        if ours(plan, id).is_some() {
            rows += 1;
            seen.insert(format!("{customer}/{id}"));
        }
    }
    Ok((rows, seen.len()))
}
