//! Delivery against the in-memory store and a scripted endpoint: order, acknowledgement before
//! the cursor moves, failures kept with their error, backoff, automatic pause, replay, and one
//! destination's failure leaving the others alone.

use std::sync::Mutex;

use chrono::TimeDelta;
use serde_json::{Value, json};

use super::*;
use crate::domain::Activity;
use crate::domain::destination::Destination;
use crate::handlers::{destinations, feed};
use crate::store::memory::MemoryStore;
use crate::testing::ApiRequest;
use crate::testing::fixtures::{self, insert_activities, json_body, synthetic_activity};

/// A request an endpoint acknowledged: URL, headers, body.
type Received = (String, Vec<(String, String)>, Vec<u8>);
/// An object put into a bucket: bucket, key, content type, body.
type Put = (String, String, String, Vec<u8>);

/// An endpoint that answers each request with the next scripted result (then 200), and keeps
/// what it received.
#[derive(Default)]
struct Endpoint {
    script: Mutex<Vec<Result<(), SendError>>>,
    received: Mutex<Vec<Received>>,
    /// Objects put into buckets, in the order put.
    objects: Mutex<Vec<Put>>,
    /// Events put on buses (bus, region, event), in the order put.
    put_events: Mutex<Vec<(String, String, delivery::BusEvent)>>,
    /// Where a scripted failure of a `PutEvents` refuses its entries.
    bus_refuses: Mutex<usize>,
}

impl Endpoint {
    fn failing(script: Vec<Result<(), SendError>>) -> Self {
        Self {
            script: Mutex::new(script.into_iter().rev().collect()),
            ..Self::default()
        }
    }

    /// The feed positions received in requests the endpoint acknowledged, in order.
    fn acknowledged(&self) -> Vec<u64> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .flat_map(|(_, _, body)| {
                let v: Value = serde_json::from_slice(body).unwrap();
                v["events"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e["feedPosition"].as_u64().unwrap())
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

impl HttpsSink for Endpoint {
    async fn post(
        &self,
        url: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> Result<(), SendError> {
        let next = self.script.lock().unwrap().pop().unwrap_or(Ok(()));
        if next.is_ok() {
            let headers = headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), v.clone()))
                .collect();
            self.received
                .lock()
                .unwrap()
                .push((url.to_owned(), headers, body));
        }
        next
    }
}

impl BucketSink for Endpoint {
    async fn put(
        &self,
        _role: &PartnerRole<'_>,
        bucket: &str,
        key: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<(), SendError> {
        let next = self.script.lock().unwrap().pop().unwrap_or(Ok(()));
        if next.is_ok() {
            self.objects.lock().unwrap().push((
                bucket.to_owned(),
                key.to_owned(),
                content_type.to_owned(),
                body,
            ));
        }
        next
    }
}

impl BusSink for Endpoint {
    /// A scripted failure refuses the entry at the index `bus_refuses` names (0: the call).
    async fn put_events(
        &self,
        role: &PartnerRole<'_>,
        event_bus_arn: &str,
        entries: &[delivery::BusEvent],
    ) -> Result<(), NotPut> {
        let next = self.script.lock().unwrap().pop().unwrap_or(Ok(()));
        let refused_at = match &next {
            Ok(()) => entries.len(),
            Err(_) => (*self.bus_refuses.lock().unwrap()).min(entries.len()),
        };
        let mut put = self.put_events.lock().unwrap();
        for e in &entries[..refused_at] {
            put.push((event_bus_arn.to_owned(), role.region.to_owned(), e.clone()));
        }
        match next {
            Ok(()) => Ok(()),
            Err(error) => Err(NotPut {
                acknowledged: refused_at,
                error,
            }),
        }
    }
}

fn partner(p: &str) -> PartnerId {
    PartnerId::parse(p).unwrap()
}

/// `n` activities of `p`, recorded and placed in its feed.
async fn placed(store: &MemoryStore, p: &str, n: u64) -> Vec<Activity> {
    let now = Utc::now();
    let rows: Vec<Activity> = (0..n)
        .map(|i| synthetic_activity(i, &format!("c{}", i % 3), now - TimeDelta::minutes(1)))
        .collect();
    insert_activities(store, &partner(p), &rows).await;
    let event: StreamEvent =
        serde_json::from_value(fixtures::stream_inserts(&partner(p), &rows)).unwrap();
    feed::sequence(store, &event).await.unwrap();
    rows
}

async fn destination(store: &MemoryStore, p: &str, body: Value) -> Destination {
    let req = ApiRequest::post("/destinations", body.to_string()).caller(p, &["GlobalAdmin"]);
    let r = destinations::handle(&fixtures::config(), store, req.build()).await;
    assert_eq!(r.status(), 201, "{}", json_body(&r));
    let id = json_body(&r)["id"].as_str().unwrap().to_owned();
    store
        .destination(&partner(p), &DestinationId::parse(&id).unwrap())
        .await
        .unwrap()
        .unwrap()
}

fn webhook(name: &str) -> Value {
    serde_json::json!({"type": "https", "name": name, "url": "https://siem.example.com/hook", "startAfter": 0})
}

async fn run(store: &MemoryStore, endpoint: &Endpoint, trigger: Trigger) -> DeliveryReport {
    let deadline = Instant::now() + Duration::from_secs(30);
    deliver(
        &fixtures::config(),
        store,
        endpoint,
        None,
        trigger,
        deadline,
    )
    .await
    .unwrap()
}

async fn current(store: &MemoryStore, p: &str, d: &Destination) -> Destination {
    store
        .destination(&partner(p), &d.id)
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn every_event_arrives_once_in_order_signed_and_the_cursor_follows_acknowledgements() {
    let store = MemoryStore::default();
    placed(&store, "p1", 1200).await;
    let d = destination(&store, "p1", webhook("SIEM")).await;
    let endpoint = Endpoint::default();
    let report = run(&store, &endpoint, Trigger::Feed).await;
    assert_eq!((report.events, report.failures), (1200, 0), "{report:?}");
    assert_eq!(endpoint.acknowledged(), (1..=1200).collect::<Vec<u64>>());
    assert!(report.requests >= 3, "batches of at most 500 events");
    let now = current(&store, "p1", &d).await;
    assert_eq!(now.delivered, 1200);
    assert!(now.last_delivered_at.is_some());
    // Each request is signed with the destination's secret over its exact body.
    let secret = d.secret.clone().unwrap();
    for (url, headers, body) in endpoint.received.lock().unwrap().iter() {
        assert_eq!(url, "https://siem.example.com/hook");
        let header = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        let sig = header(delivery::SIGNATURE_HEADER).unwrap();
        assert!(delivery::verify_signature(
            &secret,
            &sig,
            body,
            Utc::now(),
            Duration::from_secs(60)
        ));
        assert_eq!(
            header(delivery::DESTINATION_HEADER).as_deref(),
            Some(d.id.as_str())
        );
    }
    // Nothing new: nothing sent.
    let again = run(&store, &endpoint, Trigger::Schedule).await;
    assert_eq!((again.events, again.requests), (0, 0));
}

#[tokio::test]
async fn a_failure_keeps_its_error_and_position_and_the_retry_sends_from_there() {
    let store = MemoryStore::default();
    placed(&store, "p1", 40).await;
    let d = destination(&store, "p1", webhook("SIEM")).await;
    let endpoint = Endpoint::failing(vec![Err(SendError::Status {
        status: 503,
        body: "maintenance".into(),
    })]);
    let report = run(&store, &endpoint, Trigger::Feed).await;
    assert_eq!((report.failures, report.events), (1, 0));
    let failing = current(&store, "p1", &d).await;
    assert_eq!(
        failing.delivered, 0,
        "nothing acknowledged, the cursor stays"
    );
    let f = failing.failing.clone().unwrap();
    assert!(
        f.last_error.contains("HTTP 503") && f.last_error.contains("maintenance"),
        "{f:?}"
    );
    assert_eq!(failing.state(), crate::domain::destination::State::Failing);

    // Backing off: neither the stream's runs nor the schedule try it yet.
    assert_eq!(run(&store, &endpoint, Trigger::Schedule).await.skipped, 1);
    store.retry_deliveries_now();
    // The stream's runs leave a failing destination to the schedule.
    assert_eq!(run(&store, &endpoint, Trigger::Feed).await.skipped, 1);
    let retried = run(&store, &endpoint, Trigger::Schedule).await;
    assert_eq!(retried.events, 40);
    assert_eq!(endpoint.acknowledged(), (1..=40).collect::<Vec<u64>>());
    let ok = current(&store, "p1", &d).await;
    assert_eq!((ok.delivered, ok.failing), (40, None));
}

#[tokio::test]
async fn failing_for_longer_than_its_period_pauses_it_and_records_why() {
    let store = MemoryStore::default();
    placed(&store, "p1", 5).await;
    let mut body = webhook("SIEM");
    body["autoPauseAfterMinutes"] = serde_json::json!(15);
    let d = destination(&store, "p1", body).await;
    let endpoint = Endpoint::failing(vec![
        Err(SendError::Timeout(10)),
        Err(SendError::Connect("connection refused".into())),
    ]);
    run(&store, &endpoint, Trigger::Schedule).await;
    // Failing since 20 minutes ago: the next failure pauses it.
    store.fail_since(&partner("p1"), &d.id, Utc::now() - TimeDelta::minutes(20));
    store.retry_deliveries_now();
    let report = run(&store, &endpoint, Trigger::Schedule).await;
    assert_eq!(report.paused, 1, "{report:?}");
    let paused = current(&store, "p1", &d).await;
    assert_eq!(
        paused.paused.as_ref().map(|p| p.by),
        Some(crate::domain::destination::PausedBy::Delivery)
    );
    assert!(
        paused
            .failing
            .unwrap()
            .last_error
            .contains("connection refused")
    );
    let account = store
        .rows_of(&partner("p1"))
        .into_iter()
        .filter(|a| a.customer_id.is_partner_account())
        .map(|a| (a.action, a.partner_user))
        .collect::<Vec<_>>();
    assert!(
        account.contains(&(
            "Pause streaming destination".to_owned(),
            DELIVERY_USER.to_owned()
        )),
        "{account:?}"
    );
    // Paused: nothing is sent until a partner resumes it.
    store.retry_deliveries_now();
    assert_eq!(run(&store, &endpoint, Trigger::Schedule).await.requests, 0);
}

#[tokio::test]
async fn one_failing_destination_leaves_the_others_alone_and_tenants_get_their_own_feed() {
    let store = MemoryStore::default();
    placed(&store, "p1", 10).await;
    placed(&store, "p2", 3).await;
    let mut bad = webhook("broken");
    bad["url"] = serde_json::json!("https://broken.example.com/hook");
    destination(&store, "p1", bad).await;
    let good = destination(&store, "p1", webhook("SIEM")).await;
    let theirs = destination(&store, "p2", webhook("theirs")).await;
    struct Split(Endpoint);
    impl HttpsSink for Split {
        async fn post(
            &self,
            url: &str,
            headers: &[(&str, String)],
            body: Vec<u8>,
        ) -> Result<(), SendError> {
            if url.contains("broken") {
                return Err(SendError::Connect("connection refused".into()));
            }
            self.0.post(url, headers, body).await
        }
    }
    impl BucketSink for Split {
        async fn put(
            &self,
            role: &PartnerRole<'_>,
            bucket: &str,
            key: &str,
            content_type: &str,
            body: Vec<u8>,
        ) -> Result<(), SendError> {
            self.0.put(role, bucket, key, content_type, body).await
        }
    }
    impl BusSink for Split {
        async fn put_events(
            &self,
            role: &PartnerRole<'_>,
            event_bus_arn: &str,
            entries: &[delivery::BusEvent],
        ) -> Result<(), NotPut> {
            self.0.put_events(role, event_bus_arn, entries).await
        }
    }
    let endpoint = Split(Endpoint::default());
    let deadline = Instant::now() + Duration::from_secs(30);
    let report = deliver(
        &fixtures::config(),
        &store,
        &endpoint,
        None,
        Trigger::Feed,
        deadline,
    )
    .await
    .unwrap();
    assert_eq!((report.events, report.failures), (13, 1), "{report:?}");
    assert_eq!(current(&store, "p1", &good).await.delivered, 10);
    assert_eq!(current(&store, "p2", &theirs).await.delivered, 3);
    let by_destination = |id: &DestinationId| {
        endpoint
            .0
            .received
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, h, _)| {
                h.iter()
                    .any(|(k, v)| k == delivery::DESTINATION_HEADER && v == id.as_str())
            })
            .map(|(_, _, b)| {
                serde_json::from_slice::<Value>(b).unwrap()["events"]
                    .as_array()
                    .unwrap()
                    .len()
            })
            .sum::<usize>()
    };
    assert_eq!(
        (by_destination(&good.id), by_destination(&theirs.id)),
        (10, 3)
    );
}

#[tokio::test]
async fn a_replay_sends_again_from_the_position_given() {
    let store = MemoryStore::default();
    placed(&store, "p1", 20).await;
    let d = destination(&store, "p1", webhook("SIEM")).await;
    let endpoint = Endpoint::default();
    run(&store, &endpoint, Trigger::Feed).await;
    let req = ApiRequest::with_body(
        "PATCH",
        "/destinations/{destinationId}",
        r#"{"replayAfter": 15}"#,
    )
    .path_param("destinationId", d.id.as_str())
    .caller("p1", &["GlobalAdmin"]);
    let r = destinations::handle(&fixtures::config(), &store, req.build()).await;
    assert_eq!(r.status(), 200, "{}", json_body(&r));
    run(&store, &endpoint, Trigger::Feed).await;
    let mut expected: Vec<u64> = (1..=20).collect();
    // 16..20 again (in memory no stream places the changes' own records).
    expected.extend(16..=20);
    assert_eq!(endpoint.acknowledged(), expected);
}

fn s3(name: &str) -> Value {
    serde_json::json!({"type": "s3", "name": name, "bucket": "acme-audit", "prefix": "activity",
        "region": "eu-west-1", "roleArn": "arn:aws:iam::123456789012:role/activity-log",
        "externalId": "acme-42", "startAfter": 0})
}

#[tokio::test]
async fn an_s3_destination_gets_gzipped_objects_in_order_each_after_its_manifest_names_it() {
    use std::io::Read as _;
    let store = MemoryStore::default();
    placed(&store, "p1", 1200).await;
    let d = destination(&store, "p1", s3("lake")).await;
    let endpoint = Endpoint::default();
    // The stream's runs leave S3 destinations to the schedule: an object a minute.
    let partners = BTreeSet::from([partner("p1")]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let config = fixtures::config();
    let report = deliver(
        &config,
        &store,
        &endpoint,
        Some(&partners),
        Trigger::Feed,
        deadline,
    )
    .await
    .unwrap();
    assert_eq!((report.destinations, report.events), (0, 0), "{report:?}");
    assert!(endpoint.objects.lock().unwrap().is_empty());
    let report = run(&store, &endpoint, Trigger::Schedule).await;
    assert_eq!((report.events, report.failures), (1200, 0), "{report:?}");
    assert_eq!(current(&store, "p1", &d).await.delivered, 1200);
    let objects = endpoint.objects.lock().unwrap().clone();
    // Three pages of the feed: an object, then its manifest, for each.
    assert_eq!(objects.len(), 6);
    let mut positions = Vec::new();
    for pair in objects.chunks(2) {
        let [
            (bucket, key, kind, body),
            (_, manifest_key, manifest_kind, manifest),
        ] = pair
        else {
            unreachable!()
        };
        assert_eq!(bucket, "acme-audit");
        assert_eq!(
            (kind.as_str(), manifest_kind.as_str()),
            ("application/gzip", "application/json")
        );
        assert!(
            key.starts_with("activity/") && key.ends_with(".jsonl.gz"),
            "{key}"
        );
        assert_eq!(manifest_key, &key.replace(".jsonl.gz", ".manifest.json"));
        let m: Value = serde_json::from_slice(manifest).unwrap();
        assert_eq!(m["object"], key.as_str());
        assert_eq!(
            m["sha256"],
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(body))
        );
        let mut text = String::new();
        flate2::read::GzDecoder::new(&body[..])
            .read_to_string(&mut text)
            .unwrap();
        let lines: Vec<u64> = text
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["feedPosition"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        assert_eq!(
            (m["firstPosition"].as_u64(), m["lastPosition"].as_u64()),
            (lines.first().copied(), lines.last().copied())
        );
        assert_eq!(m["customers"].as_array().unwrap().len(), 3, "{m}");
        positions.extend(lines);
    }
    assert_eq!(positions, (1..=1200).collect::<Vec<u64>>());
}

#[tokio::test]
async fn an_s3_destination_that_takes_parquet_gets_ocsf_events_partitioned_for_athena() {
    let store = MemoryStore::default();
    let rows = placed(&store, "p1", 700).await;
    let mut body = s3("lake");
    body["objectFormat"] = json!("parquet");
    let d = destination(&store, "p1", body).await;
    let endpoint = Endpoint::default();
    let report = run(&store, &endpoint, Trigger::Schedule).await;
    assert_eq!((report.events, report.failures), (700, 0), "{report:?}");
    let objects = endpoint.objects.lock().unwrap().clone();
    assert_eq!(
        objects.len(),
        4,
        "two pages of the feed, each an object and its manifest"
    );
    let mut positions = Vec::new();
    for pair in objects.chunks(2) {
        let [(_, key, kind, file), (_, manifest_key, _, manifest)] = pair else {
            unreachable!()
        };
        assert_eq!(kind, "application/vnd.apache.parquet");
        let day = rows[0].recorded_at.format("%Y%m%d");
        assert!(
            key.starts_with(&format!(
                "activity/region=us-east-1/accountId=p1/eventDay={day}/"
            )) && key.ends_with(".parquet"),
            "{key}"
        );
        assert_eq!(manifest_key, &key.replace(".parquet", ".manifest.json"));
        let m: Value = serde_json::from_slice(manifest).unwrap();
        assert_eq!(
            (&m["format"], &m["contentEncoding"]),
            (&json!("parquet"), &Value::Null)
        );
        assert_eq!(
            m["sha256"],
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(file))
        );
        let events = crate::export::parquet::events(file.clone()).unwrap();
        assert_eq!(events.len() as u64, m["events"].as_u64().unwrap());
        for e in &events {
            assert_eq!(
                (&e["class_uid"], &e["metadata"]["tenant_uid"]),
                (&json!(6003), &json!("p1"))
            );
            let row = crate::domain::ocsf::api_row(e).unwrap();
            let a = rows.iter().find(|a| a.id.as_str() == row["id"]).unwrap();
            assert_eq!(row["customerId"], a.customer_id.as_str());
            assert!(row["sequence"].as_u64().is_some(), "{row}");
            assert_eq!(row["hash"].as_str().map(str::len), Some(64), "{row}");
            assert_eq!(
                row["occurredAt"],
                json!(crate::domain::time::format(a.occurred_at))
            );
            positions.push(e["feed_position"].as_u64().unwrap());
        }
    }
    assert_eq!(positions, (1..=700).collect::<Vec<u64>>());
    assert_eq!(current(&store, "p1", &d).await.delivered, 700);
}

#[tokio::test]
async fn a_bucket_that_refuses_keeps_the_cursor_before_the_object_and_says_why() {
    let store = MemoryStore::default();
    placed(&store, "p1", 10).await;
    let d = destination(&store, "p1", s3("lake")).await;
    let refused = SendError::Refused {
        service: "S3",
        status: 404,
        code: "NoSuchBucket".into(),
        message: "The specified bucket does not exist".into(),
    };
    // The object is written, its manifest refused: nothing counts as delivered.
    let endpoint = Endpoint::failing(vec![Ok(()), Err(refused)]);
    let report = run(&store, &endpoint, Trigger::Schedule).await;
    assert_eq!((report.events, report.failures), (0, 1), "{report:?}");
    let after = current(&store, "p1", &d).await;
    assert_eq!(after.delivered, 0);
    assert_eq!(
        after.failing.unwrap().last_error,
        "S3 refused: HTTP 404 NoSuchBucket: The specified bucket does not exist"
    );
    // The retry writes the same object again (same key), then its manifest.
    store.retry_deliveries_now();
    let report = run(&store, &endpoint, Trigger::Schedule).await;
    assert_eq!((report.events, report.failures), (10, 0), "{report:?}");
    let keys: Vec<String> = endpoint
        .objects
        .lock()
        .unwrap()
        .iter()
        .map(|o| o.1.clone())
        .collect();
    assert_eq!(keys.len(), 3);
    assert_eq!(keys[0], keys[1]);
    assert!(keys[2].ends_with(".manifest.json"));
    assert!(current(&store, "p1", &d).await.failing.is_none());
}

fn bus(name: &str) -> Value {
    serde_json::json!({"type": "eventBridge", "name": name,
        "eventBusArn": "arn:aws:events:eu-central-1:123456789012:event-bus/audit",
        "roleArn": "arn:aws:iam::123456789012:role/put-events", "externalId": "acme-42",
        "startAfter": 0})
}

#[tokio::test]
async fn an_event_bus_gets_every_event_in_order_ten_to_a_call() {
    let store = MemoryStore::default();
    placed(&store, "p1", 95).await;
    let d = destination(&store, "p1", bus("bus")).await;
    let endpoint = Endpoint::default();
    let report = run(&store, &endpoint, Trigger::Feed).await;
    assert_eq!(
        (report.events, report.requests, report.failures),
        (95, 10, 0),
        "{report:?}"
    );
    assert_eq!(current(&store, "p1", &d).await.delivered, 95);
    let put = endpoint.put_events.lock().unwrap().clone();
    assert!(
        put.iter()
            .all(|(bus, region, _)| bus.ends_with(":event-bus/audit") && region == "eu-central-1")
    );
    let positions: Vec<u64> = put
        .iter()
        .map(|(_, _, e)| {
            serde_json::from_str::<Value>(&e.detail).unwrap()["feedPosition"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(positions, (1..=95).collect::<Vec<u64>>());
    assert!(put.iter().all(|(_, _, e)| e.time.is_some()));
}

#[tokio::test]
async fn an_entry_the_bus_refuses_keeps_the_cursor_after_the_ones_before_it() {
    let store = MemoryStore::default();
    placed(&store, "p1", 25).await;
    let d = destination(&store, "p1", bus("bus")).await;
    let refused = SendError::Refused {
        service: "EventBridge",
        status: 200,
        code: "ThrottlingException".into(),
        message: "Rate exceeded (entry 4 of 10; 7 refused)".into(),
    };
    // The first call goes through, the second's fourth entry is refused.
    let endpoint = Endpoint::failing(vec![Ok(()), Err(refused)]);
    *endpoint.bus_refuses.lock().unwrap() = 3;
    let report = run(&store, &endpoint, Trigger::Schedule).await;
    assert_eq!((report.events, report.failures), (13, 1), "{report:?}");
    let after = current(&store, "p1", &d).await;
    assert_eq!(after.delivered, 13);
    assert_eq!(
        after.failing.unwrap().last_error,
        "EventBridge refused: HTTP 200 ThrottlingException: Rate exceeded (entry 4 of 10; 7 refused)"
    );
    store.retry_deliveries_now();
    let report = run(&store, &endpoint, Trigger::Schedule).await;
    assert_eq!((report.events, report.failures), (12, 0), "{report:?}");
    let positions: Vec<u64> = endpoint
        .put_events
        .lock()
        .unwrap()
        .iter()
        .map(|(_, _, e)| e.position)
        .collect();
    // Nothing twice: the retry begins after the entries the bus took.
    assert_eq!(positions, (1..=25).collect::<Vec<u64>>());
}

#[tokio::test]
async fn a_request_too_large_for_the_endpoint_is_sent_again_in_halves() {
    let store = MemoryStore::default();
    placed(&store, "p1", 40).await;
    let d = destination(&store, "p1", webhook("SIEM")).await;
    let too_large = || SendError::Status {
        status: 413,
        body: "Request Entity Too Large".into(),
    };
    // 40 events: refused; 20: refused; then 10 + 10 + 20 taken.
    let endpoint = Endpoint::failing(vec![Err(too_large()), Err(too_large())]);
    let report = run(&store, &endpoint, Trigger::Schedule).await;
    assert_eq!(
        (report.events, report.requests, report.failures),
        (40, 3, 0),
        "{report:?}"
    );
    assert_eq!(endpoint.acknowledged(), (1..=40).collect::<Vec<u64>>());
    let sizes: Vec<usize> = endpoint
        .received
        .lock()
        .unwrap()
        .iter()
        .map(|(_, _, body)| {
            serde_json::from_slice::<Value>(body).unwrap()["events"]
                .as_array()
                .unwrap()
                .len()
        })
        .collect();
    assert_eq!(sizes, [10, 10, 20]);
    assert_eq!(current(&store, "p1", &d).await.delivered, 40);

    // One event the endpoint refuses on its own: failing, and the error says so.
    placed(&store, "p2", 1).await;
    let theirs = destination(&store, "p2", webhook("SIEM")).await;
    let endpoint = Endpoint::failing(vec![Err(too_large())]);
    let report = run(&store, &endpoint, Trigger::Schedule).await;
    assert_eq!(report.failures, 1, "{report:?}");
    let failing = current(&store, "p2", &theirs).await.failing.unwrap();
    assert!(
        failing.last_error.starts_with(
            "HTTP 413 from the endpoint: Request Entity Too Large (a request of one event, "
        ),
        "{}",
        failing.last_error
    );
}
