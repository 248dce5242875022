//! Delivery end to end: every function under `cargo lambda watch`, the emulator's stream pumped
//! into the sequencer and into delivery as the event source mappings would, delivery's schedule
//! ticking, and a partner's endpoint on a loopback port that fails (500s, answers that never
//! come, closed connections) before it recovers. Destinations are made and changed through the
//! API over real HTTP.

use std::time::Duration;

use activity_log::domain::delivery::{SIGNATURE_HEADER, verify_signature};
use activity_log_tests::receiver::{Answer, Receiver};
use activity_log_tests::{LocalStack, emulator, local_stack_delivering, token, wait_until};
use chrono::{TimeDelta, Utc};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

/// The stack of this file; its tests take turns.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn stack() -> &'static LocalStack {
    static STACK: tokio::sync::OnceCell<LocalStack> = tokio::sync::OnceCell::const_new();
    STACK
        .get_or_init(|| async {
            let s3 = emulator().await;
            local_stack_delivering(
                &s3,
                &[
                    // The partner's endpoint is on this machine.
                    ("DESTINATIONS_ALLOW_PRIVATE_ENDPOINTS", "true".to_owned()),
                    ("DELIVERY_REQUEST_TIMEOUT_SECONDS", "2".to_owned()),
                    ("DELIVERY_FIRST_RETRY_SECONDS", "1".to_owned()),
                    ("TENANT_RATE_LIMIT", "0".to_owned()),
                ],
                4,
            )
            .await
        })
        .await
}

fn http() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap_or_else(|e| panic!("{e}"))
}

async fn call(method: &str, path: &str, bearer: &str, body: Option<Value>) -> (StatusCode, Value) {
    let base = &stack().await.base;
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let mut req = http()
        .request(method, format!("{base}{path}"))
        .bearer_auth(bearer);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap_or_else(|e| panic!("{path}: {e}"));
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn admin(partner: &str) -> String {
    token(partner, &["AccountAdmin"], "ops@partner.example", 3600)
}

/// Records `n` activities of `partner` from `writers` writers at once, over many customers, a
/// third of them occurring hours late. Returns the ids (customer, activity).
async fn record(
    partner: &str,
    tag: &str,
    writers: usize,
    per_writer: usize,
) -> Vec<(String, String)> {
    let writer = token(partner, &["ActivityWriter"], "orders", 3600);
    let runs = (0..writers).map(|w| {
        let writer = writer.clone();
        async move {
            let mut ids = Vec::new();
            for chunk in 0..per_writer.div_ceil(10) {
                let items: Vec<Value> = (0..10.min(per_writer - chunk * 10))
                    .map(|i| {
                        let n = chunk * 10 + i;
                        let late = if n % 3 == 0 { TimeDelta::hours(5) } else { TimeDelta::zero() };
                        let at = (Utc::now() - late)
                            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
                        json!({"id": format!("{tag}-{w}-{n}"), "customerId": format!("c{}", (w + n) % 13),
                               "customerName": "Contoso", "action": "placed an order",
                               "partnerUser": "ann@partner.example", "occurredAt": at})
                    })
                    .collect();
                // 20 writers over 13 customers' chains: a batch that meets others on every
                // try is 503, and a client sends it again (the ids make that safe).
                let mut attempt = 0;
                let body = loop {
                    let (status, body) =
                        call("POST", "/activities", &writer, Some(json!(items))).await;
                    attempt += 1;
                    if status == StatusCode::SERVICE_UNAVAILABLE && attempt < 6 {
                        tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
                        continue;
                    }
                    assert_eq!(status, 201, "{body}");
                    break body;
                };
                for a in body["items"].as_array().into_iter().flatten() {
                    ids.push((
                        a["customerId"].as_str().unwrap_or_default().to_owned(),
                        a["id"].as_str().unwrap_or_default().to_owned(),
                    ));
                }
            }
            ids
        }
    });
    futures_util::future::join_all(runs)
        .await
        .into_iter()
        .flatten()
        .collect()
}

async fn destination(partner: &str, id: &str) -> Value {
    let (status, d) = call("GET", &format!("/destinations/{id}"), &admin(partner), None).await;
    assert_eq!(status, 200, "{d}");
    d
}

/// Waits until the destination has delivered everything up to the feed's head, `at_least`.
async fn caught_up(partner: &str, id: &str, at_least: u64) -> Value {
    wait_until(
        &format!("destination {id} delivering position {at_least}"),
        Duration::from_secs(300),
        || async {
            let d = destination(partner, id).await;
            d["deliveredPosition"].as_u64() >= Some(at_least)
                && d["deliveredPosition"] == d["headPosition"]
        },
    )
    .await;
    destination(partner, id).await
}

/// The events the endpoint acknowledged, in order, each request's signature checked.
fn events(receiver: &Receiver, secret: &str) -> Vec<Value> {
    receiver
        .received()
        .iter()
        .flat_map(|r| {
            let signature = r.header(SIGNATURE_HEADER).unwrap_or_default();
            assert!(
                verify_signature(
                    secret,
                    signature,
                    &r.body,
                    Utc::now(),
                    Duration::from_secs(600)
                ),
                "a request whose signature does not check"
            );
            let body: Value = serde_json::from_slice(&r.body).unwrap_or_default();
            body["events"].as_array().cloned().unwrap_or_default()
        })
        .collect()
}

/// Asserts that `events` hold exactly the `recorded` activities (customer, id) besides the
/// partner account's own (the destinations' changes).
fn assert_holds_exactly(events: &[Value], recorded: &[(String, String)]) {
    let mut delivered: Vec<(String, String)> = events
        .iter()
        .filter(|e| e["activity"]["customerId"] != "_partner")
        .map(|e| {
            (
                e["activity"]["customerId"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                e["activity"]["id"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let mut expected = recorded.to_vec();
    delivered.sort();
    expected.sort();
    assert_eq!(delivered, expected);
}

fn positions(events: &[Value]) -> Vec<u64> {
    events
        .iter()
        .map(|e| e["feedPosition"].as_u64().unwrap_or_default())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_endpoint_that_fails_for_a_while_gets_every_activity_once_in_order() {
    let _turn = TURN.lock().await;
    let partner = "deliver-p1";
    let receiver = Receiver::start(vec![
        Answer::Status(500),
        Answer::Hang(Duration::from_secs(4)),
        Answer::Close,
        Answer::Status(503),
    ])
    .await;
    let (status, made) = call(
        "POST",
        "/destinations",
        &admin(partner),
        Some(json!({"type": "https", "name": "SIEM", "url": receiver.url, "startAfter": 0})),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    let id = made["id"].as_str().unwrap_or_default().to_owned();
    let secret = made["signingSecret"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    let recorded = record(partner, "a", 20, 30).await;
    assert_eq!(recorded.len(), 600);
    // The create is the feed's first activity (the partner's account), then the 600.
    let d = caught_up(partner, &id, 601).await;
    assert_eq!(d["state"], "active", "{d}");
    assert_eq!(d["failing"], Value::Null);
    assert_eq!(d["lagPositions"], 0);
    let got = events(&receiver, &secret);
    // Every position once, in order: the failed requests were not acknowledged, so nothing of
    // them counts, and each retry started from the cursor.
    assert_eq!(positions(&got), (1..=601).collect::<Vec<u64>>());
    assert!(receiver.attempts() >= receiver.received().len() + 4);
    assert_holds_exactly(&got, &recorded);
    for e in &got {
        let position = e["feedPosition"].as_u64().unwrap_or_default();
        assert_eq!(e["eventId"], format!("{partner}:{position}"));
        assert_eq!(e["activity"]["feedPosition"], position);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pause_resume_and_replay_through_the_api() {
    let _turn = TURN.lock().await;
    let partner = "deliver-p2";
    let receiver = Receiver::start(Vec::new()).await;
    let (_, made) = call(
        "POST",
        "/destinations",
        &admin(partner),
        Some(json!({"type": "https", "name": "SIEM", "url": receiver.url, "startAfter": 0})),
    )
    .await;
    let id = made["id"].as_str().unwrap_or_default().to_owned();
    let secret = made["signingSecret"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    record(partner, "a", 2, 10).await;
    caught_up(partner, &id, 21).await;

    let (status, paused) = call(
        "PATCH",
        &format!("/destinations/{id}"),
        &admin(partner),
        Some(json!({"paused": true})),
    )
    .await;
    assert_eq!(
        (status, &paused["state"]),
        (StatusCode::OK, &json!("paused"))
    );
    let before = receiver.received().len();
    record(partner, "b", 1, 10).await;
    // Ticks of the schedule and the stream's runs pass; nothing goes to a paused destination.
    tokio::time::sleep(activity_log_tests::DELIVERY_SCHEDULE * 3).await;
    assert_eq!(receiver.received().len(), before);
    let d = destination(partner, &id).await;
    assert!(d["lagPositions"].as_u64() >= Some(10), "{d}");

    let (_, resumed) = call(
        "PATCH",
        &format!("/destinations/{id}"),
        &admin(partner),
        Some(json!({"paused": false})),
    )
    .await;
    assert_eq!(resumed["state"], "active");
    // 21 + pause + 10 + resume.
    caught_up(partner, &id, 33).await;
    let (_, replay) = call(
        "PATCH",
        &format!("/destinations/{id}"),
        &admin(partner),
        Some(json!({"replayAfter": 30})),
    )
    .await;
    assert_eq!(replay["deliveredPosition"], 30, "{replay}");
    caught_up(partner, &id, 34).await;
    let got = positions(&events(&receiver, &secret));
    // Up to 33 once, then 31.. again (the replay's own record is 34).
    let mut expected: Vec<u64> = (1..=33).collect();
    expected.extend(31..=34);
    assert_eq!(got, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unreachable_endpoint_fails_with_a_clear_error_and_recording_goes_on() {
    let _turn = TURN.lock().await;
    let partner = "deliver-p3";
    // A port nothing listens on.
    let closed = format!("http://127.0.0.1:{}/hook", activity_log_tests::free_port());
    let (_, made) = call(
        "POST",
        "/destinations",
        &admin(partner),
        Some(json!({"type": "https", "name": "gone", "url": closed, "startAfter": 0})),
    )
    .await;
    let id = made["id"].as_str().unwrap_or_default().to_owned();
    let recorded = record(partner, "a", 4, 10).await;
    assert_eq!(
        recorded.len(),
        40,
        "recording is not held up by the failing destination"
    );
    wait_until(
        "the destination failing",
        Duration::from_secs(120),
        || async { destination(partner, &id).await["state"] == "failing" },
    )
    .await;
    let d = destination(partner, &id).await;
    let error = d["failing"]["lastError"].as_str().unwrap_or_default();
    assert!(error.contains("could not connect"), "{d}");
    assert_eq!(d["deliveredPosition"], 0);
    assert!(d["lagPositions"].as_u64() >= Some(41), "{d}");

    // Another tenant's destinations are not this one's to see.
    let (status, _) = call(
        "GET",
        &format!("/destinations/{id}"),
        &admin("deliver-p1"),
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = call(
        "GET",
        "/destinations",
        &token(partner, &["HelpdeskAgent"], "h", 3600),
        None,
    )
    .await;
    assert_eq!(status, 403);
}

/// The partner's bucket in the emulator, as the partner's role reaches it.
async fn partner_bucket(name: &str) -> aws_sdk_s3::Client {
    let sdk = activity_log_tests::sdk_config(&emulator().await).await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
    s3.create_bucket()
        .bucket(name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create bucket {name}: {e:?}"));
    s3
}

async fn object(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Vec<u8> {
    let out = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("get {key}: {e:?}"));
    out.body
        .collect()
        .await
        .unwrap_or_else(|e| panic!("read {key}: {e}"))
        .into_bytes()
        .to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_s3_destination_gets_every_activity_in_order_in_objects_its_manifests_name() {
    use std::io::Read as _;
    let _turn = TURN.lock().await;
    let partner = "deliver-p4";
    let bucket = activity_log_tests::unique_name("partner-audit");
    let s3 = partner_bucket(&bucket).await;
    let (status, made) = call(
        "POST",
        "/destinations",
        &admin(partner),
        Some(json!({"type": "s3", "name": "Data lake", "bucket": bucket, "prefix": "audit/activity",
                    "region": "us-east-1", "roleArn": "arn:aws:iam::210987654321:role/activity-log-delivery",
                    "externalId": "deliver-p4-7f3a", "startAfter": 0})),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    let id = made["id"].as_str().unwrap_or_default().to_owned();
    let recorded = record(partner, "a", 10, 20).await;
    assert_eq!(recorded.len(), 200);
    caught_up(partner, &id, 201).await;

    let listed = s3
        .list_objects_v2()
        .bucket(&bucket)
        .prefix("audit/activity/")
        .send()
        .await
        .unwrap_or_else(|e| panic!("list: {e:?}"));
    let keys: Vec<String> = listed
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect();
    let manifests: Vec<&String> = keys
        .iter()
        .filter(|k| k.ends_with(".manifest.json"))
        .collect();
    assert!(!manifests.is_empty(), "{keys:?}");
    assert_eq!(
        keys.len(),
        2 * manifests.len(),
        "an object for each manifest: {keys:?}"
    );
    let mut events: Vec<Value> = Vec::new();
    // Keys sort in feed order (zero-padded positions under the hour of recording).
    for key in manifests {
        let manifest: Value =
            serde_json::from_slice(&object(&s3, &bucket, key).await).unwrap_or_default();
        let name = manifest["object"].as_str().unwrap_or_default();
        assert_eq!(name, key.replace(".manifest.json", ".jsonl.gz"));
        let gz = object(&s3, &bucket, name).await;
        assert_eq!(
            manifest["sha256"],
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&gz)),
            "{key}"
        );
        let mut text = String::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_string(&mut text)
            .unwrap_or_else(|e| panic!("{name} is not gzip: {e}"));
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_default())
            .collect();
        let first = positions(&lines).first().copied();
        let last = positions(&lines).last().copied();
        assert_eq!(manifest["firstPosition"].as_u64(), first, "{manifest}");
        assert_eq!(manifest["lastPosition"].as_u64(), last, "{manifest}");
        assert_eq!(manifest["events"].as_u64(), Some(lines.len() as u64));
        // Each customer's checkpoint is its last activity in the object.
        for c in manifest["customers"].as_array().into_iter().flatten() {
            let latest = lines
                .iter()
                .rev()
                .find(|e| e["activity"]["customerId"] == c["customerId"])
                .unwrap_or_else(|| panic!("{c} names a customer the object does not hold"));
            assert_eq!(c["sequence"], latest["activity"]["sequence"]);
            assert_eq!(c["hash"], latest["activity"]["hash"]);
        }
        events.extend(lines);
    }
    assert_eq!(positions(&events), (1..=201).collect::<Vec<u64>>());
    assert_holds_exactly(&events, &recorded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_s3_destination_that_takes_parquet_gets_ocsf_events_under_athenas_partitions() {
    let _turn = TURN.lock().await;
    let partner = "deliver-p9";
    let bucket = activity_log_tests::unique_name("partner-lake");
    let s3 = partner_bucket(&bucket).await;
    let (status, made) = call(
        "POST",
        "/destinations",
        &admin(partner),
        Some(json!({"type": "s3", "name": "Security Lake", "bucket": bucket, "prefix": "ext/activity-log",
                    "region": "us-east-1", "roleArn": "arn:aws:iam::210987654321:role/activity-log-delivery",
                    "externalId": "deliver-p8-2c1d", "objectFormat": "parquet", "startAfter": 0})),
    )
    .await;
    assert_eq!(
        (status, &made["objectFormat"]),
        (StatusCode::CREATED, &json!("parquet")),
        "{made}"
    );
    let id = made["id"].as_str().unwrap_or_default().to_owned();
    let recorded = record(partner, "q", 5, 10).await;
    caught_up(partner, &id, 51).await;

    let listed = s3
        .list_objects_v2()
        .bucket(&bucket)
        .prefix("ext/activity-log/")
        .send()
        .await
        .unwrap_or_else(|e| panic!("list: {e:?}"));
    let keys: Vec<String> = listed
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect();
    let manifests: Vec<&String> = keys
        .iter()
        .filter(|k| k.ends_with(".manifest.json"))
        .collect();
    assert!(!manifests.is_empty(), "{keys:?}");
    let mut events: Vec<Value> = Vec::new();
    for key in manifests {
        let manifest: Value =
            serde_json::from_slice(&object(&s3, &bucket, key).await).unwrap_or_default();
        let name = manifest["object"].as_str().unwrap_or_default();
        assert_eq!(name, key.replace(".manifest.json", ".parquet"));
        assert!(
            name.starts_with(&format!(
                "ext/activity-log/region=us-east-1/accountId={partner}/eventDay="
            )),
            "{name}"
        );
        let file = object(&s3, &bucket, name).await;
        assert_eq!(
            manifest["sha256"],
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&file)),
            "{key}"
        );
        let rows = activity_log::export::parquet::events(file)
            .unwrap_or_else(|e| panic!("{name} is not the service's Parquet: {e}"));
        assert_eq!(manifest["events"].as_u64(), Some(rows.len() as u64));
        for e in rows {
            assert_eq!(
                (&e["class_uid"], &e["metadata"]["tenant_uid"]),
                (&json!(6003), &json!(partner))
            );
            let activity =
                activity_log::domain::ocsf::api_row(&e).unwrap_or_else(|m| panic!("{m}"));
            events.push(json!({"feedPosition": e["feed_position"], "activity": activity}));
        }
    }
    assert_eq!(positions(&events), (1..=51).collect::<Vec<u64>>());
    assert_holds_exactly(&events, &recorded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_s3_destination_whose_bucket_is_missing_fails_with_s3s_reason() {
    let _turn = TURN.lock().await;
    let partner = "deliver-p5";
    let (status, made) = call(
        "POST",
        "/destinations",
        &admin(partner),
        Some(json!({"type": "s3", "name": "Gone", "bucket": activity_log_tests::unique_name("no-such"),
                    "prefix": "", "region": "us-east-1",
                    "roleArn": "arn:aws:iam::210987654321:role/activity-log-delivery",
                    "externalId": "deliver-p5", "startAfter": 0})),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    let id = made["id"].as_str().unwrap_or_default().to_owned();
    let recorded = record(partner, "a", 2, 10).await;
    assert_eq!(recorded.len(), 20, "recording is not held up");
    wait_until(
        "the destination failing",
        Duration::from_secs(120),
        || async { destination(partner, &id).await["state"] == "failing" },
    )
    .await;
    let d = destination(partner, &id).await;
    let error = d["failing"]["lastError"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("S3 refused: HTTP 404 NoSuchBucket"),
        "{d}"
    );
    assert_eq!(d["deliveredPosition"], 0);
}

/// A partner's event bus in the emulator whose rule passes the service's events to a FIFO
/// queue (in the order they were put); the bus's ARN and the queue's URL.
async fn partner_bus() -> (String, String, aws_sdk_sqs::Client) {
    use aws_sdk_eventbridge::types::{SqsParameters, Target};
    use aws_sdk_sqs::types::QueueAttributeName;
    let sdk = activity_log_tests::sdk_config(&emulator().await).await;
    let events = aws_sdk_eventbridge::Client::new(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let name = activity_log_tests::unique_name("partner-bus");
    let bus = events
        .create_event_bus()
        .name(&name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create bus: {e:?}"));
    let queue = sqs
        .create_queue()
        .queue_name(format!("{name}.fifo"))
        .attributes(QueueAttributeName::FifoQueue, "true")
        .attributes(QueueAttributeName::ContentBasedDeduplication, "true")
        .send()
        .await
        .unwrap_or_else(|e| panic!("create queue: {e:?}"));
    let url = queue.queue_url().unwrap_or_default().to_owned();
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap_or_else(|e| panic!("queue arn: {e:?}"));
    let queue_arn = attributes
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn))
        .cloned()
        .unwrap_or_default();
    events
        .put_rule()
        .event_bus_name(&name)
        .name("activity-log")
        .event_pattern(r#"{"source": ["activity-log"]}"#)
        .send()
        .await
        .unwrap_or_else(|e| panic!("put rule: {e:?}"));
    events
        .put_targets()
        .event_bus_name(&name)
        .rule("activity-log")
        .targets(
            Target::builder()
                .id("queue")
                .arn(queue_arn)
                .sqs_parameters(
                    SqsParameters::builder()
                        .message_group_id("activity")
                        .build(),
                )
                .build()
                .unwrap_or_else(|e| panic!("{e}")),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("put targets: {e:?}"));
    (bus.event_bus_arn().unwrap_or_default().to_owned(), url, sqs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_event_bus_gets_every_activity_as_an_event_in_feed_order() {
    let _turn = TURN.lock().await;
    let partner = "deliver-p6";
    let (bus, queue, sqs) = partner_bus().await;
    let (status, made) = call(
        "POST",
        "/destinations",
        &admin(partner),
        Some(
            json!({"type": "eventBridge", "name": "Bus", "eventBusArn": bus,
                    "roleArn": "arn:aws:iam::123456789012:role/put-events",
                    "externalId": "deliver-p6", "startAfter": 0}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    let id = made["id"].as_str().unwrap_or_default().to_owned();
    let recorded = record(partner, "a", 3, 20).await;
    assert_eq!(recorded.len(), 60);
    caught_up(partner, &id, 61).await;

    let mut received: Vec<Value> = Vec::new();
    for _ in 0..60 {
        let out = sqs
            .receive_message()
            .queue_url(&queue)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap_or_else(|e| panic!("receive: {e:?}"));
        let messages = out.messages();
        if messages.is_empty() {
            break;
        }
        for m in messages {
            received.push(serde_json::from_str(m.body().unwrap_or_default()).unwrap_or_default());
            sqs.delete_message()
                .queue_url(&queue)
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .send()
                .await
                .unwrap_or_else(|e| panic!("delete: {e:?}"));
        }
    }
    for e in &received {
        assert_eq!(e["source"], "activity-log", "{e}");
        assert_eq!(e["detail-type"], "Activity", "{e}");
        let position = e["detail"]["feedPosition"].as_u64().unwrap_or_default();
        assert_eq!(e["detail"]["eventId"], format!("{partner}:{position}"));
        assert_eq!(e["detail"]["activity"]["feedPosition"], position);
    }
    let details: Vec<Value> = received.iter().map(|e| e["detail"].clone()).collect();
    // As put: in feed order, each once.
    assert_eq!(positions(&details), (1..=61).collect::<Vec<u64>>());
    assert_holds_exactly(&details, &recorded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_too_large_for_the_endpoint_are_split_and_an_event_too_large_fails_clearly() {
    let _turn = TURN.lock().await;
    let partner = "deliver-p7";
    let receiver = Receiver::start(Vec::new()).await;
    // A proxy in front of the endpoint that takes requests of at most 8,000 bytes.
    receiver.refuse_bodies_over(8_000);
    let (_, made) = call(
        "POST",
        "/destinations",
        &admin(partner),
        Some(json!({"type": "https", "name": "SIEM", "url": receiver.url, "startAfter": 0})),
    )
    .await;
    let id = made["id"].as_str().unwrap_or_default().to_owned();
    let secret = made["signingSecret"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    record(partner, "a", 2, 30).await;
    caught_up(partner, &id, 61).await;
    assert_eq!(
        positions(&events(&receiver, &secret)),
        (1..=61).collect::<Vec<u64>>()
    );
    assert!(receiver.received().iter().all(|r| r.body.len() <= 8_000));
    assert!(
        receiver.attempts() > receiver.received().len(),
        "nothing was refused"
    );

    // One activity larger than the endpoint takes: failing, and the error says why.
    let writer = token(partner, &["ActivityWriter"], "orders", 3600);
    let (status, body) = call(
        "POST",
        "/activities",
        &writer,
        Some(
            json!({"id": "big-1", "customerId": "c1", "customerName": "Contoso",
                    "action": "placed an order", "partnerUser": "ann@partner.example",
                    "occurredAt": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    "details": {"note": "x".repeat(20_000)}}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    wait_until(
        "the destination failing",
        Duration::from_secs(120),
        || async { destination(partner, &id).await["state"] == "failing" },
    )
    .await;
    let d = destination(partner, &id).await;
    let error = d["failing"]["lastError"].as_str().unwrap_or_default();
    assert!(
        error.starts_with(
            "HTTP 413 from the endpoint: Request Entity Too Large (a request of one event, "
        ),
        "{d}"
    );
    assert_eq!(d["deliveredPosition"], 61);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_splunk_hec_endpoint_gets_hec_events_with_its_token_once_in_order() {
    let _turn = TURN.lock().await;
    let partner = "deliver-p8";
    let token_value = "9f1c2e4a-7b3d-4c5e-8f60-1a2b3c4d5e6f";
    // A HEC that is busy at first (Splunk answers 503 when its queues are full).
    let receiver = Receiver::start(vec![Answer::Status(503)]).await;
    let (status, made) = call(
        "POST",
        "/destinations",
        &admin(partner),
        Some(
            json!({"type": "https", "name": "Splunk", "url": receiver.url,
                    "format": "splunkHec", "token": token_value, "startAfter": 0}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["format"], "splunkHec");
    assert!(
        made.get("token").is_none() && made["signingSecret"].is_null(),
        "{made}"
    );
    let id = made["id"].as_str().unwrap_or_default().to_owned();
    record(partner, "a", 2, 10).await;
    caught_up(partner, &id, 21).await;

    let mut got = Vec::new();
    for r in receiver.received() {
        assert_eq!(
            r.header("authorization"),
            Some(format!("Splunk {token_value}").as_str())
        );
        // HEC's event format: event objects one after another.
        for hec in serde_json::Deserializer::from_slice(&r.body).into_iter::<Value>() {
            let hec = hec.unwrap_or_else(|e| panic!("not HEC events: {e}"));
            assert_eq!(hec["sourcetype"], "activity-log:activity", "{hec}");
            assert_eq!(hec["source"], "activity-log");
            let recorded = chrono::DateTime::parse_from_rfc3339(
                hec["event"]["activity"]["recordedAt"]
                    .as_str()
                    .unwrap_or_default(),
            )
            .unwrap_or_else(|e| panic!("{hec}: {e}"));
            let time = hec["time"].as_f64().unwrap_or_default();
            assert!(
                (time - recorded.timestamp_millis() as f64 / 1000.0).abs() < 0.001,
                "{hec}"
            );
            got.push(hec["event"].clone());
        }
    }
    assert_eq!(positions(&got), (1..=21).collect::<Vec<u64>>());
    assert!(receiver.attempts() > receiver.received().len());
}
