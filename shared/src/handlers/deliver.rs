//! Delivery (README, "Streaming"): sends each destination its tenant's feed after its cursor, in
//! order, and moves the cursor only after the destination acknowledged. A failure is kept on
//! the destination (state `failing`, its last error, since when) and retried after a jittered
//! backoff; one that lasts the destination's auto-pause period pauses it (recorded like a
//! partner's pause). Runs from the table's stream (new feed entries: low lag) and on a schedule
//! (retries, and anything the stream's runs left).

use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use serde::Serialize;
use serde_json::json;

use crate::config::Config;
use crate::domain::PartnerId;
use crate::domain::delivery::{
    self, DESTINATION_HEADER, MAX_HTTPS_BATCH_EVENTS, SIGNATURE_HEADER, after_failure,
};
use crate::domain::destination::{DestinationId, HttpsFormat, ObjectFormat, Target};
use crate::domain::feed::StreamEvent;
use crate::http::response::{ActivityView, Links};
use crate::metrics;
use crate::sinks::{BucketSink, BusSink, HttpsSink, NotPut, PartnerRole, SendError};
use crate::store::{Claimed, DeliveryLog, Destinations, FeedLog, StoreError};

/// How long a run holds a destination: longer than it delivers to one.
const LEASE: Duration = Duration::from_secs(120);
/// Feed positions read per storage page.
const READ_PAGE: usize = MAX_HTTPS_BATCH_EVENTS;
/// The `partnerUser` of what delivery records (its automatic pause).
pub const DELIVERY_USER: &str = "activity-log delivery";

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// New feed entries: deliver now, except to destinations waiting out a failure's backoff.
    Feed,
    /// The schedule: every destination whose backoff is over.
    Schedule,
}

/// What one run did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryReport {
    pub destinations: usize,
    pub events: usize,
    pub requests: usize,
    pub failures: usize,
    pub paused: usize,
    /// Destinations another run held, or waiting out a backoff.
    pub skipped: usize,
}

impl DeliveryReport {
    fn add(&mut self, other: &Self) {
        self.destinations += other.destinations;
        self.events += other.events;
        self.requests += other.requests;
        self.failures += other.failures;
        self.paused += other.paused;
        self.skipped += other.skipped;
    }
}

/// The tenants whose feed got new entries in `event` (feed entry inserts: `pk` is
/// `P#<partner>#F#<block>`).
pub fn partners_with_new_entries(event: &StreamEvent) -> BTreeSet<PartnerId> {
    event
        .records
        .iter()
        .filter(|r| r.event_name == "INSERT")
        .filter_map(|r| r.partition_key())
        .filter_map(|pk| {
            let rest = pk.strip_prefix("P#")?;
            let (partner, block) = rest.split_once("#F#")?;
            block.bytes().all(|b| b.is_ascii_digit()).then_some(partner)
        })
        .filter_map(|p| PartnerId::parse(p).ok())
        .collect()
}

/// One invocation of the delivery function: a stream batch of new feed entries (their tenants'
/// destinations) or the schedule (every destination), until `deadline`.
pub async fn run<S, H>(
    config: &Config,
    store: &S,
    sink: &H,
    event: serde_json::Value,
    deadline: Instant,
) -> Result<DeliveryReport, StoreError>
where
    S: DeliveryLog + Destinations + FeedLog,
    H: HttpsSink + BucketSink + BusSink,
{
    let stream = event
        .get("Records")
        .is_some()
        .then(|| serde_json::from_value::<StreamEvent>(event))
        .transpose()
        .map_err(|e| StoreError::Other(format!("a stream event that cannot be read: {e}")))?;
    match stream {
        Some(stream) => {
            let partners = partners_with_new_entries(&stream);
            deliver(
                config,
                store,
                sink,
                Some(&partners),
                Trigger::Feed,
                deadline,
            )
            .await
        }
        None => deliver(config, store, sink, None, Trigger::Schedule, deadline).await,
    }
}

/// Delivers to every destination of `partners` (`None`: of every tenant), all at once, until
/// `deadline`.
pub async fn deliver<S, H>(
    config: &Config,
    store: &S,
    sink: &H,
    partners: Option<&BTreeSet<PartnerId>>,
    trigger: Trigger,
    deadline: Instant,
) -> Result<DeliveryReport, StoreError>
where
    S: DeliveryLog + Destinations + FeedLog,
    H: HttpsSink + BucketSink + BusSink,
{
    let mut targets: Vec<(PartnerId, DestinationId)> = Vec::new();
    match partners {
        Some(partners) => {
            for p in partners {
                for d in store.destinations(p).await? {
                    // S3 destinations are written on the schedule only: an object a minute
                    // rather than one per stream batch.
                    if trigger == Trigger::Feed && matches!(d.target, Target::S3 { .. }) {
                        continue;
                    }
                    targets.push((p.clone(), d.id));
                }
            }
        }
        None => targets = store.registered().await?,
    }
    // Destinations apart: one that is slow or failing never holds up another's delivery.
    let runs = targets
        .iter()
        .map(|(p, id)| deliver_one(config, store, sink, p, id, trigger, deadline));
    let mut report = DeliveryReport::default();
    for result in futures_util::future::join_all(runs).await {
        report.add(&result?);
    }
    metrics::emit(
        "delivered",
        &[
            (metrics::DELIVERED_EVENTS, report.events as f64),
            (metrics::DELIVERY_FAILURES, report.failures as f64),
        ],
        metrics::About::default(),
    );
    Ok(report)
}

/// Delivers to one destination, if no other run holds it and it is due.
async fn deliver_one<S, H>(
    config: &Config,
    store: &S,
    sink: &H,
    partner: &PartnerId,
    id: &DestinationId,
    trigger: Trigger,
    deadline: Instant,
) -> Result<DeliveryReport, StoreError>
where
    S: DeliveryLog + Destinations + FeedLog,
    H: HttpsSink + BucketSink + BusSink,
{
    let mut report = DeliveryReport {
        destinations: 1,
        ..DeliveryReport::default()
    };
    let now = Utc::now();
    let until = now + TimeDelta::from_std(LEASE).unwrap_or(TimeDelta::seconds(120));
    let Some(claim) = store.claim(partner, id, now, until).await? else {
        report.skipped = 1;
        return Ok(report);
    };
    let waiting = claim.next_attempt_at.is_some_and(|t| t > now);
    // A failing destination is retried by the schedule only: the stream's runs, which serve
    // every tenant of a shard, never wait on it.
    let failing = claim.destination.failing.is_some() && trigger == Trigger::Feed;
    if claim.destination.paused.is_some() || waiting || failing {
        report.skipped = usize::from(claim.destination.paused.is_none());
        store.release(partner, &claim).await?;
        return Ok(report);
    }
    let outcome = send_all(config, store, sink, partner, &claim, deadline, &mut report).await;
    if let Err(failure) = outcome {
        report.failures += 1;
        let at = failure.at;
        let d = &claim.destination;
        let first_retry = config.delivery.first_retry;
        let after = after_failure(
            d,
            claim.attempts,
            &failure.message,
            Utc::now(),
            first_retry,
            jitter(),
        );
        tracing::warn!(partner = %partner, destination = %id, position = at + 1, attempts = after.attempts, error = %failure.message, "delivery failed");
        let record = match &after.pause {
            Some(_) => Some(super::destinations::change_record(
                config,
                partner,
                DELIVERY_USER,
                "Pause streaming destination",
                d,
                json!({
                    "destinationId": d.id,
                    "changed": ["paused"],
                    "reason": format!(
                        "failing since {} (longer than {} minutes): {}",
                        crate::domain::time::format(after.failing.since),
                        d.auto_pause_after_minutes,
                        after.failing.last_error
                    ),
                    "deliveredPosition": at,
                }),
                Utc::now(),
            )?),
            None => None,
        };
        if store
            .failed(partner, &claim, at, &after, record.as_ref())
            .await?
            && after.pause.is_some()
        {
            report.paused += 1;
            tracing::warn!(partner = %partner, destination = %id, "delivery paused the destination after its failing period");
        }
    }
    store.release(partner, &claim).await?;
    Ok(report)
}

/// A failed request: the cursor it left the destination at, and why.
struct Failure {
    at: u64,
    message: String,
}

/// Sends everything after the cursor, page by page, until the head or the deadline.
async fn send_all<S, H>(
    config: &Config,
    store: &S,
    sink: &H,
    partner: &PartnerId,
    claim: &Claimed,
    deadline: Instant,
    report: &mut DeliveryReport,
) -> Result<(), Failure>
where
    S: DeliveryLog + FeedLog,
    H: HttpsSink + BucketSink + BusSink,
{
    let d = &claim.destination;
    let mut cursor = d.delivered;
    let stored = |e: StoreError, at: u64| Failure {
        at,
        message: format!("the service could not read its feed: {e}"),
    };
    let links = Links::new(config.subscriptions_url_template.as_str());
    let mut oldest_recorded = None;
    while Instant::now() < deadline {
        let head = store
            .feed_head(partner)
            .await
            .map_err(|e| stored(e, cursor))?;
        if cursor >= head {
            break;
        }
        let page_start = cursor;
        let page = store
            .feed_page(partner, cursor, head, READ_PAGE)
            .await
            .map_err(|e| stored(e, cursor))?;
        oldest_recorded = oldest_recorded.or(page.activities.first().map(|a| a.recorded_at));
        let events: Vec<(u64, serde_json::Value)> = page
            .activities
            .iter()
            .filter_map(|a| {
                let position = a.feed_position?;
                let view = serde_json::to_value(ActivityView::new(a, None, &links)).ok()?;
                Some((position, delivery::event(partner, position, view)))
            })
            .collect();
        let region = config.runtime.region_or_unknown();
        let mut pending: VecDeque<Request> =
            requests(partner, region, d, &events, MAX_HTTPS_BATCH_EVENTS)
                .map_err(|message| Failure {
                    at: cursor,
                    message,
                })?
                .into();
        while let Some(request) = pending.pop_front() {
            if let Err(not) = send(sink, d, &request).await {
                let too_large = matches!(not.error, SendError::Status { status: 413, .. });
                match &request {
                    // Too large for the endpoint: the same events again, in requests of half
                    // as many.
                    Request::Https(b) if too_large && b.count > 1 => {
                        let part: Vec<(u64, serde_json::Value)> = events
                            .iter()
                            .filter(|(p, _)| (b.first..=b.last).contains(p))
                            .cloned()
                            .collect();
                        let halves = requests(partner, region, d, &part, b.count.div_ceil(2))
                            .map_err(|message| Failure {
                                at: cursor,
                                message,
                            })?;
                        for r in halves.into_iter().rev() {
                            pending.push_front(r);
                        }
                        continue;
                    }
                    Request::Https(b) if too_large => {
                        return Err(Failure {
                            at: cursor,
                            message: format!(
                                "{} (a request of one event, {} bytes: the endpoint takes none this large)",
                                not.error,
                                b.body.len()
                            ),
                        });
                    }
                    _ => {}
                }
                // What the destination did take of the request counts.
                if let Some((through, count)) = not.acknowledged {
                    report.events += count;
                    cursor = advance(store, partner, claim, cursor, through).await?;
                }
                return Err(Failure {
                    at: cursor,
                    message: not.error.to_string(),
                });
            }
            report.requests += 1;
            report.events += request.count();
            cursor = advance(store, partner, claim, cursor, request.last()).await?;
        }
        // Positions past the last event (their activities expired) are read: move past them.
        if page.last > cursor {
            cursor = advance(store, partner, claim, cursor, page.last).await?;
        }
        if cursor == page_start {
            break;
        }
    }
    if let Some(at) = oldest_recorded {
        let lag = (Utc::now() - at).num_milliseconds().max(0);
        metrics::emit(
            "delivered",
            &[(metrics::DELIVERY_LAG, lag as f64)],
            metrics::About {
                partner: Some(partner.as_str()),
                request_id: None,
            },
        );
    }
    Ok(())
}

/// Moves the cursor; a replay or a lost claim meanwhile ends this run (the next starts from
/// the stored cursor).
async fn advance<S: DeliveryLog>(
    store: &S,
    partner: &PartnerId,
    claim: &Claimed,
    from: u64,
    to: u64,
) -> Result<u64, Failure> {
    match store.advance(partner, claim, from, to, Utc::now()).await {
        Ok(true) => Ok(to),
        Ok(false) => Err(Failure {
            at: from,
            message: "the cursor moved meanwhile (a replay)".into(),
        }),
        Err(e) => Err(Failure {
            at: from,
            message: format!("the service could not store its progress: {e}"),
        }),
    }
}

/// One acknowledged unit of delivery: an HTTPS request, an S3 object and its manifest, or a
/// `PutEvents`.
enum Request {
    Https(delivery::Batch),
    S3(delivery::S3Batch),
    Bus(delivery::BusBatch),
}

impl Request {
    fn last(&self) -> u64 {
        match self {
            Self::Https(b) => b.last,
            Self::S3(b) => b.last,
            Self::Bus(b) => b.last,
        }
    }

    fn count(&self) -> usize {
        match self {
            Self::Https(b) => b.count,
            Self::S3(b) => b.count,
            Self::Bus(b) => b.events.len(),
        }
    }
}

/// What delivers `events` (a page of the feed, in position order) to `d`.
/// `max_events`: the most events of an HTTPS request; `region`: the service's (what a Parquet
/// object names). An error: the events cannot be written as the destination takes them.
fn requests(
    partner: &PartnerId,
    region: &str,
    d: &crate::domain::destination::Destination,
    events: &[(u64, serde_json::Value)],
    max_events: usize,
) -> Result<Vec<Request>, String> {
    Ok(match &d.target {
        Target::Https { format, .. } => {
            delivery::https_batches(d.id.as_str(), *format, events, max_events)
                .into_iter()
                .map(Request::Https)
                .collect()
        }
        Target::S3 {
            prefix,
            object_format,
            ..
        } => {
            let encoding = match object_format {
                ObjectFormat::Jsonl => delivery::S3Encoding::JsonLinesGzip,
                ObjectFormat::Parquet => delivery::S3Encoding::Parquet {
                    region,
                    file: crate::export::parquet::feed_file(partner.as_str(), region, events)
                        .map_err(|e| format!("the events cannot be written as Parquet: {e}"))?,
                },
            };
            delivery::s3_batch(partner, d.id.as_str(), prefix, events, Utc::now(), encoding)
                .into_iter()
                .map(Request::S3)
                .collect()
        }
        Target::EventBridge { .. } => delivery::bus_batches(events)
            .into_iter()
            .map(Request::Bus)
            .collect(),
    })
}

/// A request not (wholly) acknowledged: the last position and the number of events it
/// delivered before it failed, if any, and why it failed.
struct NotSent {
    acknowledged: Option<(u64, usize)>,
    error: SendError,
}

impl From<SendError> for NotSent {
    fn from(error: SendError) -> Self {
        Self {
            acknowledged: None,
            error,
        }
    }
}

async fn send<H: HttpsSink + BucketSink + BusSink>(
    sink: &H,
    d: &crate::domain::destination::Destination,
    request: &Request,
) -> Result<(), NotSent> {
    let session_name = format!("activity-log-{}", d.id);
    match (&d.target, request) {
        (Target::Https { url, format }, Request::Https(batch)) => {
            let secret = d.secret.clone().unwrap_or_default();
            let mut headers = vec![
                ("content-type", "application/json".to_owned()),
                (DESTINATION_HEADER, d.id.to_string()),
            ];
            match format {
                HttpsFormat::Webhook => headers.push((
                    SIGNATURE_HEADER,
                    delivery::signature(&secret, Utc::now().timestamp(), &batch.body),
                )),
                HttpsFormat::SplunkHec => {
                    headers.push(("authorization", format!("Splunk {secret}")));
                }
            }
            Ok(sink.post(url, &headers, batch.body.clone()).await?)
        }
        (
            Target::S3 {
                bucket,
                region,
                role_arn,
                external_id,
                ..
            },
            Request::S3(batch),
        ) => {
            let role = PartnerRole {
                role_arn,
                external_id,
                region,
                session_name: &session_name,
            };
            // The object first: a manifest always names an object that is there.
            sink.put(
                &role,
                bucket,
                &batch.object_key,
                batch.content_type,
                batch.object.clone(),
            )
            .await?;
            Ok(sink
                .put(
                    &role,
                    bucket,
                    &batch.manifest_key,
                    "application/json",
                    batch.manifest.clone(),
                )
                .await?)
        }
        (
            Target::EventBridge {
                event_bus_arn,
                role_arn,
                external_id,
            },
            Request::Bus(batch),
        ) => {
            // The bus's region: arn:<partition>:events:<region>:<account>:event-bus/<name>.
            let region = event_bus_arn.split(':').nth(3).unwrap_or_default();
            let role = PartnerRole {
                role_arn,
                external_id,
                region,
                session_name: &session_name,
            };
            sink.put_events(&role, event_bus_arn, &batch.events)
                .await
                .map_err(
                    |NotPut {
                         acknowledged,
                         error,
                     }| NotSent {
                        acknowledged: acknowledged
                            .checked_sub(1)
                            .and_then(|i| batch.events.get(i))
                            .map(|e| (e.position, acknowledged)),
                        error,
                    },
                )
        }
        _ => Err(SendError::Other(format!(
            "a request of another kind than the destination's ({})",
            d.target.kind()
        ))
        .into()),
    }
}

/// A number in [0, 1) for the backoff's jitter.
fn jitter() -> f64 {
    let mut b = [0u8; 2];
    match getrandom::fill(&mut b) {
        Ok(()) => f64::from(u16::from_le_bytes(b)) / 65536.0,
        Err(_) => 0.5,
    }
}

#[cfg(test)]
#[path = "deliver_tests.rs"]
mod tests;
