//! Streaming destinations against the emulator (real SDK clients, real transactions): each
//! change and the activity that records it are written together or not at all, the limit of 3
//! holds under concurrent creates, If-Match holds under concurrent changes, a delete frees its
//! slot, delivery's progress is measured against the feed, and tenants stay apart. The routes
//! over real HTTP are in e2e.rs; generated input in generated_input.rs.

use activity_log::app::App;
use activity_log::domain::{ActivityQuery, CustomerId, DateRange, PartnerId};
use activity_log::handlers::destinations;
use activity_log::store::ActivityReader as _;
use activity_log::testing::ApiRequest;
use activity_log::testing::fixtures::{self, activity, minutes_ago};
use activity_log_tests::stream_pump::{pump_into_sequencer, wait_for_head};
use activity_log_tests::{isolated_app, json_body as body};
use chrono::Utc;
use serde_json::{Value, json};

const ADMIN: &[&str] = &["GlobalAdmin"];

fn hook(name: &str) -> Value {
    json!({"type": "https", "name": name, "url": "https://siem.example.com/hooks/activity"})
}

async fn call(app: &App, req: ApiRequest) -> (u16, Value) {
    let r = destinations::handle(&app.config, &app.store, req.build()).await;
    (r.status().as_u16(), body(&r))
}

async fn create(app: &App, partner: &str, body: &Value) -> (u16, Value) {
    call(
        app,
        ApiRequest::post("/destinations", body.to_string()).caller(partner, ADMIN),
    )
    .await
}

fn at(method: &str, id: &str) -> ApiRequest {
    ApiRequest::new(method, "/destinations/{destinationId}").path_param("destinationId", id)
}

fn patch(id: &str, body: &Value) -> ApiRequest {
    ApiRequest::with_body("PATCH", "/destinations/{destinationId}", body.to_string())
        .path_param("destinationId", id)
}

/// The activities of the partner's own account, newest first.
async fn account_log(app: &App, partner: &str) -> Vec<activity_log::domain::Activity> {
    let query = ActivityQuery {
        customer: Some(CustomerId::partner_account()),
        range: DateRange::resolve(None, None, Utc::now()).unwrap_or_else(|e| panic!("{e}")),
        filters: Default::default(),
    };
    let partner = PartnerId::parse(partner).unwrap_or_else(|e| panic!("{e}"));
    app.store
        .query_page(&partner, &query, None, 100)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .items
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_stop_at_three_and_each_made_one_is_recorded_once() {
    let app = isolated_app().await;
    let tries = (0..6).map(|i| {
        let app = &app;
        async move { create(app, "p1", &hook(&format!("SIEM {i}"))).await }
    });
    let answers = futures_util::future::join_all(tries).await;
    let made: Vec<&Value> = answers
        .iter()
        .filter(|(s, _)| *s == 201)
        .map(|(_, v)| v)
        .collect();
    let refused = answers
        .iter()
        .filter(|(s, v)| *s == 409 && v["error"]["code"] == "TooManyDestinations")
        .count();
    assert_eq!((made.len(), refused), (3, 3), "{answers:?}");

    let log = account_log(&app, "p1").await;
    assert_eq!(
        log.len(),
        3,
        "one record per destination made, none for a refusal"
    );
    for a in &log {
        assert_eq!(a.action, "Create streaming destination");
        assert_eq!(a.partner_user, "user-1");
    }
    // The records are a chain like any customer's: sequences 1, 2, 3.
    let mut sequences: Vec<u64> = log
        .iter()
        .filter_map(|a| a.chain.as_ref().map(|c| c.sequence))
        .collect();
    sequences.sort_unstable();
    assert_eq!(sequences, [1, 2, 3]);
    let (status, listed) = call(&app, ApiRequest::get("/destinations").caller("p1", ADMIN)).await;
    assert_eq!(status, 200);
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn if_match_lets_one_of_two_concurrent_changes_through_and_a_delete_frees_the_slot() {
    let app = isolated_app().await;
    let (_, made) = create(&app, "p1", &hook("SIEM")).await;
    let id = made["id"].as_str().unwrap_or_default().to_owned();
    let change = |name: &str| {
        patch(&id, &json!({ "name": name }))
            .header("if-match", "\"1\"")
            .caller("p1", ADMIN)
    };
    let (a, b) = tokio::join!(call(&app, change("A")), call(&app, change("B")));
    let mut statuses = [a.0, b.0];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 412], "{a:?} {b:?}");
    let (_, now) = call(&app, at("GET", &id).caller("p1", ADMIN)).await;
    assert_eq!(now["version"], 2);
    assert!(now["name"] == "A" || now["name"] == "B");
    assert_eq!(
        account_log(&app, "p1").await.len(),
        2,
        "created, renamed once"
    );

    let (status, _) = call(
        &app,
        at("DELETE", &id)
            .header("if-match", "\"2\"")
            .caller("p1", ADMIN),
    )
    .await;
    assert_eq!(status, 204);
    assert_eq!(call(&app, at("GET", &id).caller("p1", ADMIN)).await.0, 404);
    assert_eq!(
        call(&app, at("DELETE", &id).caller("p1", ADMIN)).await.0,
        404
    );
    let (_, listed) = call(&app, ApiRequest::get("/destinations").caller("p1", ADMIN)).await;
    assert_eq!(listed["items"], json!([]));
    let log = account_log(&app, "p1").await;
    assert_eq!(log[0].action, "Delete streaming destination");
    assert_eq!(log.len(), 3);
    for i in 0..3 {
        assert_eq!(create(&app, "p1", &hook(&format!("d{i}"))).await.0, 201);
    }
    assert_eq!(create(&app, "p1", &hook("d3")).await.0, 409);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_is_measured_against_the_feed_and_changes_enter_the_feed_too() {
    let app = isolated_app().await;
    pump_into_sequencer(&app).await;
    let rows: Vec<Value> = (0..5)
        .map(|i| activity("c1", &format!("a{i}"), &minutes_ago(i)))
        .collect();
    let r = fixtures::record(&app.config, &app.store, &app.blobs, "p1", &json!(rows)).await;
    assert_eq!(r.status(), 201, "{}", body(&r));
    wait_for_head(&app, "p1", 5).await;

    // From the start: five activities wait.
    let mut everything = hook("from the start");
    everything["startAfter"] = json!(0);
    let (status, d) = create(&app, "p1", &everything).await;
    assert_eq!(status, 201, "{d}");
    assert_eq!(
        (
            &d["deliveredPosition"],
            &d["headPosition"],
            &d["lagPositions"]
        ),
        (&json!(0), &json!(5), &json!(5))
    );
    assert!(d["lagSeconds"].as_i64().is_some_and(|s| s >= 0), "{d}");
    // The default: from the head on. The head is 5, or 6 once the sequencer has given the first
    // create (an activity of the account) its position, which it does in the background, so it
    // may also come between the start being taken and the head being read for the answer (and
    // this create's own activity, 7, too).
    let (_, now_on) = create(&app, "p1", &hook("from now on")).await;
    let from = now_on["deliveredPosition"].as_u64().unwrap_or_default();
    let head = now_on["headPosition"].as_u64().unwrap_or_default();
    assert!(
        (5..=6).contains(&from) && (from..=7).contains(&head),
        "{now_on}"
    );
    assert_eq!(now_on["lagPositions"], head - from, "{now_on}");
    // Past the head is refused, naming the field.
    let mut ahead = hook("ahead");
    ahead["startAfter"] = json!(99);
    let (status, refused) = create(&app, "p1", &ahead).await;
    assert_eq!(status, 400);
    assert_eq!(refused["error"]["fields"][0]["field"], "startAfter");

    // The two creates are activities of the partner's account: the sequencer gives them the
    // next positions, so a destination receives the changes made to destinations too.
    wait_for_head(&app, "p1", 7).await;
    let id = now_on["id"].as_str().unwrap_or_default();
    let (_, replayed) = call(
        &app,
        patch(id, &json!({"replayAfter": 2})).caller("p1", ADMIN),
    )
    .await;
    assert_eq!(replayed["deliveredPosition"], 2, "{replayed}");
    assert!(replayed["headPosition"].as_u64() >= Some(7), "{replayed}");
    let log = account_log(&app, "p1").await;
    assert_eq!(log[0].action, "Replay streaming destination");
    let stored = match &log[0].details {
        activity_log::domain::Details::Inline(d) => d.clone(),
        other => panic!("{other:?}"),
    };
    let details: Value = serde_json::from_str(&stored).unwrap_or_default();
    assert_eq!(
        details["change"]["deliveredBefore"].as_u64(),
        Some(from),
        "{details}"
    );
    assert_eq!(details["change"]["replayAfter"], 2, "{details}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_and_roles_are_kept_apart() {
    let app = isolated_app().await;
    let (_, mine) = create(&app, "p1", &hook("mine")).await;
    let id = mine["id"].as_str().unwrap_or_default();
    for req in [
        at("GET", id).caller("p2", ADMIN),
        patch(id, &json!({"paused": true})).caller("p2", ADMIN),
        at("DELETE", id).caller("p2", ADMIN),
    ] {
        assert_eq!(
            call(&app, req).await.0,
            404,
            "another tenant's destination is unknown"
        );
    }
    let (_, theirs) = call(&app, ApiRequest::get("/destinations").caller("p2", ADMIN)).await;
    assert_eq!(theirs["items"], json!([]));
    for roles in [
        &["HelpdeskAgent"][..],
        &["ActivityWriter"],
        &["BillingAdmin"],
    ] {
        let (status, v) = call(&app, ApiRequest::get("/destinations").caller("p1", roles)).await;
        assert_eq!(
            (status, v["error"]["code"].as_str()),
            (403, Some("Forbidden"))
        );
    }
    let (status, _) = call(
        &app,
        ApiRequest::get("/destinations").caller("p1", &["AccountAdmin"]),
    )
    .await;
    assert_eq!(status, 200);
    // Still as made: nothing of the refused requests was written.
    let (_, still) = call(&app, at("GET", id).caller("p1", ADMIN)).await;
    assert_eq!(
        (&still["state"], &still["version"]),
        (&json!("active"), &json!(1))
    );
    assert_eq!(account_log(&app, "p2").await.len(), 0);
}

/// Delivery's adapter of partners' accounts through the real SDK: the role assumed through STS,
/// then the bucket written and the bus put to; a role that does not trust the service is STS's
/// `AccessDenied`, said as such, and nothing is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_that_cannot_be_assumed_fails_with_stss_reason_and_writes_nothing() {
    use activity_log::sinks::{BucketSink, BusSink, PartnerAccounts, PartnerRole};
    use activity_log_tests::fault_proxy::{Fault, FaultProxy};
    let endpoint = activity_log_tests::emulator().await;
    let proxy = FaultProxy::start(&endpoint).await;
    let sdk = activity_log_tests::sdk_config(&proxy.url).await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
    let bucket = activity_log_tests::unique_name("partner-audit");
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create bucket: {e:?}"));
    let accounts = PartnerAccounts::new(sdk, true);
    let role = PartnerRole {
        role_arn: "arn:aws:iam::210987654321:role/activity-log-delivery",
        external_id: "acme-42",
        region: "us-east-1",
        session_name: "activity-log-01KC0000000000000000000000",
    };
    // (Creating the bucket was a PUT too.)
    let puts = proxy.forwarded("PutObject");
    proxy.inject("AssumeRole", Fault::AccessDenied, 100);
    let refused = accounts
        .put(
            &role,
            &bucket,
            "a/1.jsonl.gz",
            "application/gzip",
            b"x".to_vec(),
        )
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        refused.starts_with(
            "the request failed: as arn:aws:iam::210987654321:role/activity-log-delivery in \
             us-east-1: "
        ) && refused.contains("AccessDenied: User: ")
            && refused.contains("is not authorized to perform: sts:AssumeRole")
            && refused.chars().count() < 500,
        "{refused}"
    );
    let bus = accounts
        .put_events(
            &role,
            "arn:aws:events:us-east-1:210987654321:event-bus/default",
            &[],
        )
        .await
        .err()
        .map(|e| e.error.to_string())
        .unwrap_or_default();
    assert!(bus.contains("AccessDenied"), "{bus}");
    assert!(proxy.injected("AssumeRole") >= 2);
    assert_eq!(
        proxy.forwarded("PutObject"),
        puts,
        "nothing written without the role"
    );
    let listed = s3
        .list_objects_v2()
        .bucket(&bucket)
        .send()
        .await
        .unwrap_or_else(|e| panic!("list: {e:?}"));
    assert_eq!(listed.key_count(), Some(0));

    // Once the partner's trust policy lets the service in, the same adapter writes.
    proxy.heal();
    accounts
        .put(
            &role,
            &bucket,
            "a/1.jsonl.gz",
            "application/gzip",
            b"x".to_vec(),
        )
        .await
        .unwrap_or_else(|e| panic!("after the trust is fixed: {e}"));
    assert_eq!(proxy.forwarded("AssumeRole"), 1);
    assert_eq!(proxy.forwarded("PutObject"), puts + 1);
}
