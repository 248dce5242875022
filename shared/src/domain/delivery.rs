//! Delivery of a tenant's feed to its destinations: what each destination receives (events,
//! batches, signatures), and the rules of retrying, failing and pausing. No I/O.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use hmac::{KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use super::destination::{Destination, Failing, HttpsFormat, Pause, PausedBy};
use super::ids::PartnerId;

/// The most bytes one HTTPS request carries.
pub const MAX_HTTPS_BATCH_BYTES: usize = 1_000_000;
/// The most events one HTTPS request carries.
pub const MAX_HTTPS_BATCH_EVENTS: usize = 500;
/// The header that carries a webhook's signature.
pub const SIGNATURE_HEADER: &str = "activity-log-signature";
/// The header that names the destination a request is for.
pub const DESTINATION_HEADER: &str = "activity-log-destination";
/// The longest wait between two retries of a failing destination.
const LONGEST_RETRY: Duration = Duration::from_secs(600);

/// The id a delivered event carries: the tenant and the feed position, the same however often
/// the event is delivered (consumers dedupe by it).
pub fn event_id(partner: &PartnerId, position: u64) -> String {
    format!("{partner}:{position}")
}

/// One activity as a destination receives it: its id, its feed position and the activity as the
/// API shows it (`activity`, whose `feedPosition` is the same).
pub fn event(partner: &PartnerId, position: u64, activity: Value) -> Value {
    json!({
        "eventId": event_id(partner, position),
        "feedPosition": position,
        "partnerId": partner,
        "activity": activity,
    })
}

/// A request's worth of events: the feed positions it covers and its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub first: u64,
    pub last: u64,
    pub count: usize,
    pub body: Vec<u8>,
}

/// Splits `events` (position, event, in position order) into HTTPS request bodies of at most
/// [`MAX_HTTPS_BATCH_BYTES`] and [`MAX_HTTPS_BATCH_EVENTS`] (and at most `max_events`), in order.
/// A webhook body is `{"destinationId", "events": [...]}`; a Splunk HEC body is the events'
/// HEC objects one after another. An event too large for a request on its own gets a request
/// on its own (the receiver decides).
pub fn https_batches(
    destination: &str,
    format: HttpsFormat,
    events: &[(u64, Value)],
    max_events: usize,
) -> Vec<Batch> {
    let max_events = max_events.clamp(1, MAX_HTTPS_BATCH_EVENTS);
    let encoded: Vec<(u64, Vec<u8>)> = events
        .iter()
        .map(|(p, e)| {
            let bytes = match format {
                HttpsFormat::Webhook => e.to_string().into_bytes(),
                HttpsFormat::SplunkHec => hec_event(e).to_string().into_bytes(),
            };
            (*p, bytes)
        })
        .collect();
    let (open, close): (Vec<u8>, &[u8]) = match format {
        HttpsFormat::Webhook => (
            format!("{{\"destinationId\":{},\"events\":[", json!(destination)).into_bytes(),
            b"]}",
        ),
        HttpsFormat::SplunkHec => (Vec::new(), b""),
    };
    let separator: &[u8] = match format {
        HttpsFormat::Webhook => b",",
        HttpsFormat::SplunkHec => b"\n",
    };
    let mut batches = Vec::new();
    let mut current: Option<Batch> = None;
    for (position, bytes) in encoded {
        let full = current.as_ref().is_some_and(|b| {
            b.body.len() + separator.len() + bytes.len() + close.len() > MAX_HTTPS_BATCH_BYTES
                || b.count >= max_events
        });
        if full && let Some(mut done) = current.take() {
            done.body.extend_from_slice(close);
            batches.push(done);
        }
        match &mut current {
            Some(b) => {
                b.body.extend_from_slice(separator);
                b.body.extend_from_slice(&bytes);
                b.last = position;
                b.count += 1;
            }
            None => {
                let mut body = open.clone();
                body.extend_from_slice(&bytes);
                current = Some(Batch {
                    first: position,
                    last: position,
                    count: 1,
                    body,
                });
            }
        }
    }
    if let Some(mut b) = current {
        b.body.extend_from_slice(close);
        batches.push(b);
    }
    batches
}

/// A delivered event in Splunk HEC's event format.
fn hec_event(event: &Value) -> Value {
    let recorded = event["activity"]["recordedAt"]
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.timestamp_millis() as f64 / 1000.0);
    json!({
        "time": recorded,
        "host": "activity-log",
        "source": "activity-log",
        "sourcetype": "activity-log:activity",
        "event": event,
    })
}

/// The webhook signature header's value for `body` sent at `timestamp` (Unix seconds):
/// `t=<timestamp>,v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`, as Stripe signs.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

/// Whether `header` is a valid signature of `body` by `secret`, made at most `tolerance` from
/// `now` (what a receiver checks; the tests use it).
pub fn verify_signature(
    secret: &str,
    header: &str,
    body: &[u8],
    now: DateTime<Utc>,
    tolerance: Duration,
) -> bool {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", v)) => signatures.push(v),
            _ => {}
        }
    }
    let Some(t) = timestamp else {
        return false;
    };
    let fresh = (now.timestamp() - t).unsigned_abs() <= tolerance.as_secs();
    let expected = signature(secret, t, body);
    let expected = expected.rsplit("v1=").next().unwrap_or_default();
    fresh
        && signatures
            .iter()
            .any(|s| constant_time_eq(s.as_bytes(), expected.as_bytes()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What one S3 delivery writes: the gzipped JSON Lines object and its manifest, and the feed
/// positions they cover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Batch {
    pub first: u64,
    pub last: u64,
    pub count: usize,
    /// `<prefix>/YYYY/MM/DD/HH/<first>-<last>.jsonl.gz`: the hour (UTC) its first activity was
    /// recorded, positions zero-padded to 12 digits so that keys sort in feed order; or, in
    /// Parquet, `<prefix>/region=…/accountId=<partner>/eventDay=YYYYMMDD/<first>-<last>.parquet`,
    /// the day its first activity was recorded.
    pub object_key: String,
    pub content_type: &'static str,
    /// The object's gzipped JSON Lines (one event per line, in position order), or its Parquet
    /// file (one OCSF event per row, in position order).
    pub object: Vec<u8>,
    /// `<same>.manifest.json`, written after the object.
    pub manifest_key: String,
    pub manifest: Vec<u8>,
}

/// The version of the manifest's shape.
pub const S3_MANIFEST_VERSION: u32 = 1;

/// How an S3 destination's object is written.
pub enum S3Encoding<'a> {
    /// Gzipped JSON Lines, under the hour the first activity was recorded.
    JsonLinesGzip,
    /// `file`, the events as Parquet (`crate::export::parquet::feed_file`), partitioned as
    /// Athena and Security Lake read them; `region`: the service's.
    Parquet { region: &'a str, file: Vec<u8> },
}

/// The object and manifest that deliver `events` (position, event, in position order, at least
/// one) to an S3 destination of `partner` under `prefix`, written at `now`. The manifest names
/// the object, its position range and event count, its size and SHA-256, the recording times it
/// spans and, for each customer in it, its latest chain link there (`sequence`, `hash`): a
/// checkpoint to compare with the customer's chain and the service's signed heads.
pub fn s3_batch(
    partner: &PartnerId,
    destination: &str,
    prefix: &str,
    events: &[(u64, Value)],
    now: DateTime<Utc>,
    encoding: S3Encoding<'_>,
) -> Option<S3Batch> {
    use std::io::Write as _;
    let (first, _) = events.first()?;
    let (last, _) = events.last()?;
    let recorded = |e: &Value| {
        e["activity"]["recordedAt"]
            .as_str()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
    };
    let hour = events.first().and_then(|(_, e)| recorded(e)).unwrap_or(now);
    let folder = match &encoding {
        S3Encoding::JsonLinesGzip => hour.format("%Y/%m/%d/%H").to_string(),
        S3Encoding::Parquet { region, .. } => format!(
            "region={region}/accountId={partner}/eventDay={}",
            hour.format("%Y%m%d")
        ),
    };
    let dir = match prefix.trim_end_matches('/') {
        "" => folder,
        p => format!("{p}/{folder}"),
    };
    let stem = format!("{dir}/{first:012}-{last:012}");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut customers: std::collections::BTreeMap<&str, Value> = Default::default();
    for (_, e) in events {
        if matches!(encoding, S3Encoding::JsonLinesGzip) {
            // Writing into memory cannot fail.
            let _ = gz.write_all(e.to_string().as_bytes());
            let _ = gz.write_all(b"\n");
        }
        let a = &e["activity"];
        if let (Some(customer), Some(sequence)) = (a["customerId"].as_str(), a["sequence"].as_u64())
        {
            customers.insert(
                customer,
                json!({"customerId": customer, "sequence": sequence, "hash": a["hash"],
                       "recordedAt": a["recordedAt"]}),
            );
        }
    }
    let (object, object_key, content_type, format) = match encoding {
        S3Encoding::JsonLinesGzip => (
            gz.finish().ok()?,
            format!("{stem}.jsonl.gz"),
            "application/gzip",
            "jsonl",
        ),
        S3Encoding::Parquet { file, .. } => (
            file,
            format!("{stem}.parquet"),
            "application/vnd.apache.parquet",
            "parquet",
        ),
    };
    let times: Vec<DateTime<Utc>> = events.iter().filter_map(|(_, e)| recorded(e)).collect();
    let mut manifest = json!({
        "version": S3_MANIFEST_VERSION,
        "partnerId": partner,
        "destinationId": destination,
        "object": object_key,
        "format": format,
        "firstPosition": first,
        "lastPosition": last,
        "events": events.len(),
        "bytes": object.len(),
        "sha256": hex::encode(<Sha256 as sha2::Digest>::digest(&object)),
        "recordedFrom": times.iter().min().map(|t| super::time::format(*t)),
        "recordedTo": times.iter().max().map(|t| super::time::format(*t)),
        "writtenAt": super::time::format(now),
        "customers": customers.into_values().collect::<Vec<_>>(),
    });
    if format == "jsonl" {
        manifest["contentEncoding"] = json!("gzip");
    }
    Some(S3Batch {
        first: *first,
        last: *last,
        count: events.len(),
        object_key,
        content_type,
        object,
        manifest_key: format!("{stem}.manifest.json"),
        manifest: serde_json::to_vec_pretty(&manifest).unwrap_or_default(),
    })
}

/// The most entries one EventBridge `PutEvents` carries.
pub const MAX_BUS_BATCH_ENTRIES: usize = 10;
/// The most bytes of entries one `PutEvents` carries, as EventBridge counts them.
pub const MAX_BUS_BATCH_BYTES: usize = 256 * 1024;
/// The `source` of the events put on partners' buses.
pub const BUS_SOURCE: &str = "activity-log";
/// Their `detail-type`.
pub const BUS_DETAIL_TYPE: &str = "Activity";

/// One event as put on an event bus: its feed position, its time (when the activity was
/// recorded) and its detail, the event as every destination receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusEvent {
    pub position: u64,
    pub time: Option<DateTime<Utc>>,
    pub detail: String,
}

/// A `PutEvents`' worth of events, in position order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusBatch {
    pub first: u64,
    pub last: u64,
    pub events: Vec<BusEvent>,
}

/// An entry's size as EventBridge counts it: its time (14), source, detail type and detail.
fn bus_entry_size(detail: &str) -> usize {
    14 + BUS_SOURCE.len() + BUS_DETAIL_TYPE.len() + detail.len()
}

/// Splits `events` (position, event, in position order) into `PutEvents` calls of at most
/// [`MAX_BUS_BATCH_ENTRIES`] entries and [`MAX_BUS_BATCH_BYTES`], in order. An event too large
/// for an entry on its own is put without its details (`details: null`,
/// `detailsIncluded: false`; its `links.self` reads them).
pub fn bus_batches(events: &[(u64, Value)]) -> Vec<BusBatch> {
    let mut batches: Vec<BusBatch> = Vec::new();
    let mut size = 0;
    for (position, e) in events {
        let mut detail = e.to_string();
        if bus_entry_size(&detail) > MAX_BUS_BATCH_BYTES {
            let mut smaller = e.clone();
            smaller["activity"]["details"] = Value::Null;
            smaller["activity"]["detailsIncluded"] = Value::Bool(false);
            detail = smaller.to_string();
        }
        let entry = bus_entry_size(&detail);
        let time = e["activity"]["recordedAt"]
            .as_str()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc));
        let event = BusEvent {
            position: *position,
            time,
            detail,
        };
        match batches.last_mut() {
            Some(b)
                if b.events.len() < MAX_BUS_BATCH_ENTRIES
                    && size + entry <= MAX_BUS_BATCH_BYTES =>
            {
                b.last = *position;
                b.events.push(event);
                size += entry;
            }
            _ => {
                batches.push(BusBatch {
                    first: *position,
                    last: *position,
                    events: vec![event],
                });
                size = entry;
            }
        }
    }
    batches
}

/// How long to wait before retrying a destination that failed `attempts` times in a row
/// (exponential from `first` to 10 min), scaled by `jitter` in [0, 1) to between half and all
/// of it.
pub fn retry_delay(first: Duration, attempts: u32, jitter: f64) -> Duration {
    let doublings = attempts.saturating_sub(1).min(16);
    let full = first.saturating_mul(1 << doublings).min(LONGEST_RETRY);
    full.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
}

/// What a failed delivery attempt makes of a destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AfterFailure {
    pub failing: Failing,
    pub attempts: u32,
    pub next_attempt_at: DateTime<Utc>,
    /// Set when it has been failing for its whole auto-pause period: delivery pauses it.
    pub pause: Option<Pause>,
}

/// `d` after an attempt failed with `error` at `now`.
pub fn after_failure(
    d: &Destination,
    attempts_before: u32,
    error: &str,
    now: DateTime<Utc>,
    first_retry: Duration,
    jitter: f64,
) -> AfterFailure {
    let since = d.failing.as_ref().map_or(now, |f| f.since);
    let attempts = attempts_before.saturating_add(1);
    let limit = TimeDelta::minutes(i64::from(d.auto_pause_after_minutes));
    let pause = (now - since >= limit).then_some(Pause {
        by: PausedBy::Delivery,
        at: now,
    });
    let delay = retry_delay(first_retry, attempts, jitter);
    AfterFailure {
        failing: Failing {
            since,
            last_error: error.chars().take(500).collect(),
            last_error_at: now,
        },
        attempts,
        next_attempt_at: now + TimeDelta::from_std(delay).unwrap_or(TimeDelta::seconds(600)),
        pause,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::destination::{DestinationId, Target};

    fn partner() -> PartnerId {
        PartnerId::parse("p1").unwrap()
    }

    fn events(n: u64, pad: usize) -> Vec<(u64, Value)> {
        (1..=n)
            .map(|p| {
                let activity = json!({"id": format!("a{p}"), "recordedAt": "2026-12-07T10:00:00.250Z",
                                      "details": {"pad": "x".repeat(pad)}});
                (p, event(&partner(), p, activity))
            })
            .collect()
    }

    #[test]
    fn an_s3_batch_is_gzipped_json_lines_with_a_manifest_naming_range_digest_and_checkpoints() {
        use std::io::Read as _;
        let mut all = events(5, 10);
        for (p, e) in &mut all {
            e["activity"]["customerId"] = json!(if *p % 2 == 0 { "c-even" } else { "c-odd" });
            e["activity"]["sequence"] = json!(*p);
            e["activity"]["hash"] = json!(format!("h{p}"));
        }
        all[4].1["activity"]["recordedAt"] = json!("2026-12-07T11:30:00Z");
        let now = "2026-12-07T12:00:00Z".parse().unwrap();
        let b = s3_batch(
            &partner(),
            "D1",
            "audit/activity",
            &all[1..],
            now,
            S3Encoding::JsonLinesGzip,
        )
        .unwrap();
        assert_eq!(
            b.object_key,
            "audit/activity/2026/12/07/10/000000000002-000000000005.jsonl.gz"
        );
        assert_eq!(
            b.manifest_key,
            "audit/activity/2026/12/07/10/000000000002-000000000005.manifest.json"
        );
        assert_eq!((b.first, b.last, b.count), (2, 5, 4));
        let mut text = String::new();
        flate2::read::GzDecoder::new(&b.object[..])
            .read_to_string(&mut text)
            .unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(
            lines,
            all[1..].iter().map(|(_, e)| e.clone()).collect::<Vec<_>>()
        );
        let m: Value = serde_json::from_slice(&b.manifest).unwrap();
        assert_eq!(m["object"], b.object_key);
        assert_eq!(
            (
                m["firstPosition"].as_u64(),
                m["lastPosition"].as_u64(),
                m["events"].as_u64()
            ),
            (Some(2), Some(5), Some(4))
        );
        assert_eq!(
            m["sha256"],
            hex::encode(<Sha256 as sha2::Digest>::digest(&b.object))
        );
        assert_eq!(m["bytes"].as_u64(), Some(b.object.len() as u64));
        assert_eq!(m["recordedFrom"], "2026-12-07T10:00:00.250Z");
        assert_eq!(m["recordedTo"], "2026-12-07T11:30:00.000Z");
        assert_eq!(
            m["customers"],
            json!([{"customerId": "c-even", "sequence": 4, "hash": "h4", "recordedAt": "2026-12-07T10:00:00.250Z"},
                   {"customerId": "c-odd", "sequence": 5, "hash": "h5", "recordedAt": "2026-12-07T11:30:00Z"}])
        );
        // No prefix: the keys begin with the year. Nothing to deliver: no batch.
        let bare = s3_batch(
            &partner(),
            "D1",
            "",
            &all[..1],
            now,
            S3Encoding::JsonLinesGzip,
        )
        .unwrap();
        assert_eq!(
            bare.object_key,
            "2026/12/07/10/000000000001-000000000001.jsonl.gz"
        );
        assert!(s3_batch(&partner(), "D1", "p", &[], now, S3Encoding::JsonLinesGzip).is_none());
    }

    #[test]
    fn bus_batches_hold_at_most_ten_entries_and_256_kb_and_an_oversize_event_loses_its_details() {
        let all = events(25, 50_000);
        let batches = bus_batches(&all);
        let mut seen = Vec::new();
        for b in &batches {
            assert!(b.events.len() <= MAX_BUS_BATCH_ENTRIES);
            let bytes: usize = b.events.iter().map(|e| bus_entry_size(&e.detail)).sum();
            assert!(bytes <= MAX_BUS_BATCH_BYTES, "{bytes}");
            assert_eq!(
                (b.first, b.last),
                (b.events[0].position, b.events[b.events.len() - 1].position)
            );
            for e in &b.events {
                let v: Value = serde_json::from_str(&e.detail).unwrap();
                assert_eq!(v, all[e.position as usize - 1].1);
                assert_eq!(e.time, Some("2026-12-07T10:00:00.250Z".parse().unwrap()));
                seen.push(e.position);
            }
        }
        // 50 KB events: five to a call.
        assert_eq!(batches.len(), 5);
        assert_eq!(seen, (1..=25).collect::<Vec<u64>>());
        let small = bus_batches(&events(25, 10));
        assert_eq!(
            small.iter().map(|b| b.events.len()).collect::<Vec<_>>(),
            [10, 10, 5]
        );
        // Too large for an entry: put without their details, small enough to share a call.
        let huge = bus_batches(&events(2, 300_000));
        assert_eq!(huge.len(), 1);
        for (i, e) in huge[0].events.iter().enumerate() {
            let v: Value = serde_json::from_str(&e.detail).unwrap();
            assert_eq!(v["activity"]["details"], Value::Null);
            assert_eq!(v["activity"]["detailsIncluded"], false);
            assert_eq!(v["eventId"], format!("p1:{}", i + 1));
        }
    }

    #[test]
    fn webhook_batches_hold_every_event_once_in_order_within_the_limits() {
        let all = events(30, 100_000);
        let batches = https_batches("D1", HttpsFormat::Webhook, &all, 500);
        assert!(batches.len() >= 3, "{}", batches.len());
        let mut seen = Vec::new();
        for b in &batches {
            assert!(b.body.len() <= MAX_HTTPS_BATCH_BYTES, "{}", b.body.len());
            let v: Value = serde_json::from_slice(&b.body).unwrap();
            assert_eq!(v["destinationId"], "D1");
            let positions: Vec<u64> = v["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["feedPosition"].as_u64().unwrap())
                .collect();
            assert_eq!(
                (positions[0], *positions.last().unwrap()),
                (b.first, b.last)
            );
            assert_eq!(positions.len(), b.count);
            seen.extend(positions);
        }
        assert_eq!(seen, (1..=30).collect::<Vec<_>>());
        let small = https_batches("D1", HttpsFormat::Webhook, &events(7, 10), 3);
        assert_eq!(small.iter().map(|b| b.count).collect::<Vec<_>>(), [3, 3, 1]);
        assert_eq!(events(1, 0)[0].1["eventId"], "p1:1");
    }

    #[test]
    fn hec_batches_are_hec_events_one_after_another() {
        let b = https_batches("D1", HttpsFormat::SplunkHec, &events(3, 10), 500);
        assert_eq!(b.len(), 1);
        let text = String::from_utf8(b[0].body.clone()).unwrap();
        let objects: Vec<Value> = serde_json::Deserializer::from_str(&text)
            .into_iter::<Value>()
            .map(Result::unwrap)
            .collect();
        assert_eq!(objects.len(), 3);
        assert_eq!(objects[0]["time"], 1796637600.25);
        assert_eq!(objects[0]["sourcetype"], "activity-log:activity");
        assert_eq!(objects[2]["event"]["feedPosition"], 3);
    }

    #[test]
    fn a_signature_checks_only_the_same_body_secret_and_a_fresh_time() {
        let now = Utc::now();
        let t = now.timestamp();
        let header = signature("whsec_k", t, b"{\"a\":1}");
        let tolerance = Duration::from_secs(300);
        assert!(verify_signature(
            "whsec_k",
            &header,
            b"{\"a\":1}",
            now,
            tolerance
        ));
        assert!(!verify_signature(
            "whsec_k",
            &header,
            b"{\"a\":2}",
            now,
            tolerance
        ));
        assert!(!verify_signature(
            "whsec_x",
            &header,
            b"{\"a\":1}",
            now,
            tolerance
        ));
        let later = now + TimeDelta::minutes(10);
        assert!(!verify_signature(
            "whsec_k",
            &header,
            b"{\"a\":1}",
            later,
            tolerance
        ));
        // A known vector: HMAC-SHA256("key", "1.body").
        assert_eq!(
            signature("key", 1, b"body"),
            format!("t=1,v1={}", {
                let mut m = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(b"key").unwrap();
                m.update(b"1.body");
                hex::encode(m.finalize().into_bytes())
            })
        );
    }

    #[test]
    fn retries_back_off_with_jitter_and_a_long_failure_pauses() {
        let five = Duration::from_secs(5);
        assert_eq!(retry_delay(five, 1, 1.0), Duration::from_secs(5));
        assert_eq!(retry_delay(five, 2, 1.0), Duration::from_secs(10));
        assert_eq!(retry_delay(five, 1, 0.0), Duration::from_millis(2500));
        assert_eq!(retry_delay(five, 30, 1.0), Duration::from_secs(600));
        let now = Utc::now();
        let mut d = Destination {
            id: DestinationId::generate(),
            name: "n".into(),
            target: Target::Https {
                url: "https://a.example".into(),
                format: HttpsFormat::Webhook,
            },
            secret: None,
            paused: None,
            auto_pause_after_minutes: 15,
            created_at: now,
            created_by: "u".into(),
            updated_at: now,
            updated_by: "u".into(),
            version: 1,
            delivered: 0,
            last_delivered_at: None,
            failing: None,
        };
        let first = after_failure(&d, 0, "HTTP 500", now, five, 1.0);
        assert_eq!((first.failing.since, first.attempts), (now, 1));
        assert!(first.pause.is_none());
        d.failing = Some(first.failing);
        let later = now + TimeDelta::minutes(16);
        let again = after_failure(&d, 7, "timed out", later, five, 0.5);
        assert_eq!(again.failing.since, now, "failing since the first failure");
        assert_eq!(again.pause.map(|p| p.by), Some(PausedBy::Delivery));
    }
}
