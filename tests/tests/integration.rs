//! Handlers in-process, with the real SDK clients against the emulator server; each test has its
//! own table and bucket, so tests run in parallel.

use activity_log::app::App;
use activity_log::handlers::{query, record};
use activity_log::http::cursor::{self, CursorKeys};
use activity_log::testing::ApiRequest;
use activity_log::testing::fixtures::{self, activity, minutes_ago as ago};
use activity_log_tests::{emulator, isolated_app, read_workspace_file, sdk_config, unique_name};
use activity_log_tests::{ids, json_body as body};
use chrono::{TimeDelta, Utc};
use lambda_http::{Body, Response};
use serde_json::{Value, json};

const READER: &[&str] = &["BillingAdmin"];
const WRITER: &[&str] = &["ActivityWriter"];

async fn post(app: &App, partner: &str, payload: &Value) -> Response<Body> {
    fixtures::record(&app.config, &app.store, &app.blobs, partner, payload).await
}

async fn get(app: &App, req: ApiRequest) -> Response<Body> {
    query::handle(&app.config, &app.store, &app.blobs, req.build()).await
}

fn customer_log(customer: &str) -> ApiRequest {
    ApiRequest::get("/customers/{customerId}/activities").path_param("customerId", customer)
}

fn detail(customer: &str, id: &str) -> ApiRequest {
    ApiRequest::get("/customers/{customerId}/activities/{activityId}")
        .path_param("customerId", customer)
        .path_param("activityId", id)
}

/// Follows cursors to the end, checking each page's size.
async fn all_pages(app: &App, make: impl Fn() -> ApiRequest, limit: usize) -> (Vec<String>, usize) {
    let (mut seen, mut pages, mut cursor) = (Vec::new(), 0, None::<String>);
    loop {
        let mut req = make().query("limit", &limit.to_string());
        if let Some(c) = &cursor {
            req = req.query("cursor", c);
        }
        let r = get(app, req).await;
        assert_eq!(r.status(), 200, "{}", body(&r));
        let page = body(&r);
        assert!(ids(&page).len() <= limit);
        seen.extend(ids(&page));
        pages += 1;
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return (seen, pages),
        }
        assert!(pages < 10_000, "paging does not end");
    }
}

#[tokio::test]
async fn records_and_reads_back_through_every_read_endpoint() {
    let app = isolated_app().await;
    let r = post(
        &app,
        "p1",
        &json!([activity("c1", "a1", &ago(5)), activity("c2", "a2", &ago(4))]),
    )
    .await;
    assert_eq!(r.status(), 201, "{}", body(&r));
    let stored = body(&r);
    assert_eq!(
        stored["items"][0]["links"]["subscriptions"],
        "https://partner.example.com/customers/c1/subscriptions"
    );
    assert_eq!(stored["items"][1]["status"], "succeeded");

    let customer = body(&get(&app, customer_log("c1").caller("p1", READER)).await);
    assert_eq!(ids(&customer), ["a1"]);
    assert_eq!(customer["nextCursor"], Value::Null);
    let item = &customer["items"][0];
    // Every member the contract requires of an activity.
    let contract: serde_norway::Value =
        serde_norway::from_str(&read_workspace_file("openapi.yaml"))
            .unwrap_or_else(|e| panic!("{e}"));
    let required = contract["components"]["schemas"]["Activity"]["required"]
        .as_sequence()
        .cloned()
        .unwrap_or_default();
    assert!(required.len() >= 11, "{required:?}");
    for field in required.iter().filter_map(serde_norway::Value::as_str) {
        assert!(item.get(field).is_some(), "{field} missing from {item}");
    }

    let tenant = body(&get(&app, ApiRequest::get("/activities").caller("p1", READER)).await);
    assert_eq!(ids(&tenant), ["a2", "a1"], "newest first");
    let only_c2 = body(
        &get(
            &app,
            ApiRequest::get("/activities")
                .query("customerId", "c2")
                .caller("p1", READER),
        )
        .await,
    );
    assert_eq!(ids(&only_c2), ["a2"]);

    let one = get(&app, detail("c2", "a2").caller("p1", READER)).await;
    assert_eq!(one.status(), 200);
    assert_eq!(body(&one)["customerId"], "c2");
    assert_eq!(
        get(&app, detail("c2", "a1").caller("p1", READER))
            .await
            .status(),
        404
    );
}

#[tokio::test]
async fn every_error_path_answers_with_the_json_error_shape() {
    let app = isolated_app().await;
    let ok = activity("c1", "a1", &ago(1));
    let cases: Vec<(Response<Body>, u16, &str)> = vec![
        (
            record::handle(
                &app.config,
                &app.store,
                &app.blobs,
                ApiRequest::post("/activities", ok.to_string()).build(),
            )
            .await,
            401,
            "Unauthenticated",
        ),
        (
            record::handle(
                &app.config,
                &app.store,
                &app.blobs,
                ApiRequest::post("/activities", ok.to_string())
                    .caller("p1", &["GlobalAdmin"])
                    .build(),
            )
            .await,
            403,
            "Forbidden",
        ),
        (
            get(
                &app,
                ApiRequest::get("/activities").caller("p1", &["Guest"]),
            )
            .await,
            403,
            "Forbidden",
        ),
        (
            get(&app, ApiRequest::get("/activities")).await,
            401,
            "Unauthenticated",
        ),
        (
            post(&app, "p1", &json!({"customerId": "c1"})).await,
            400,
            "ValidationFailed",
        ),
        (
            record::handle(
                &app.config,
                &app.store,
                &app.blobs,
                ApiRequest::post("/activities", "{not json")
                    .caller("p1", WRITER)
                    .build(),
            )
            .await,
            400,
            "InvalidBody",
        ),
        (
            post(
                &app,
                "p1",
                &json!({"customerId": "c1", "customerName": "C", "action": "a", "partnerUser": "u",
                                   "details": {"blob": "x".repeat(1024 * 1024)}}),
            )
            .await,
            413,
            "PayloadTooLarge",
        ),
        (
            get(
                &app,
                ApiRequest::get("/activities")
                    .query("from", "2026-02-30")
                    .caller("p1", READER),
            )
            .await,
            400,
            "InvalidDateRange",
        ),
        (
            get(
                &app,
                ApiRequest::get("/activities")
                    .query("limit", "5000")
                    .caller("p1", READER),
            )
            .await,
            400,
            "InvalidLimit",
        ),
        (
            get(&app, detail("c1", "missing").caller("p1", READER)).await,
            404,
            "NotFound",
        ),
    ];
    for (i, (r, status, code)) in cases.into_iter().enumerate() {
        assert_eq!(r.status(), status, "case {i}: {}", body(&r));
        assert_eq!(r.headers()["content-type"], "application/json", "case {i}");
        let b = body(&r);
        assert_eq!(b["error"]["code"], code, "case {i}: {b}");
        assert!(
            b["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "case {i}"
        );
    }
    // Nothing of the refused writes was stored.
    let all = body(&get(&app, ApiRequest::get("/activities").caller("p1", READER)).await);
    assert_eq!(ids(&all), Vec::<String>::new());
}

#[tokio::test]
async fn retries_are_idempotent_and_reused_ids_with_new_content_conflict() {
    let app = isolated_app().await;
    let a1_at = ago(3);
    let batch = json!([activity("c1", "a1", &a1_at), activity("c1", "a2", &ago(2))]);
    let first = post(&app, "p1", &batch).await;
    assert_eq!(first.status(), 201);
    let retry = post(&app, "p1", &batch).await;
    assert_eq!(retry.status(), 201);
    assert_eq!(
        body(&retry)["items"],
        body(&first)["items"],
        "the stored items, unchanged"
    );

    // A batch mixing a retried item with a new one stores the new one once.
    let mixed = post(
        &app,
        "p1",
        &json!([
            activity(
                "c1",
                "a2",
                body(&first)["items"][1]["occurredAt"]
                    .as_str()
                    .unwrap_or_default()
            ),
            activity("c1", "a3", &ago(1))
        ]),
    )
    .await;
    assert_eq!(mixed.status(), 201, "{}", body(&mixed));

    let mut changed = activity("c1", "a1", &a1_at);
    changed["action"] = json!("cancelled an order");
    let conflict = post(&app, "p1", &json!([activity("c1", "a4", &ago(1)), changed])).await;
    assert_eq!(conflict.status(), 409);
    assert_eq!(body(&conflict)["error"]["code"], "IdempotencyConflict");

    let all = body(&get(&app, customer_log("c1").caller("p1", READER)).await);
    assert_eq!(
        ids(&all),
        ["a3", "a2", "a1"],
        "a4 of the conflicting batch was not written"
    );
    assert_eq!(all["items"][2]["action"], "placed an order");
}

#[tokio::test]
async fn tenants_sharing_a_customer_id_see_only_their_own_records() {
    let app = isolated_app().await;
    let batch = |tag: &str| {
        Value::Array(
            (0..5)
                .map(|i| {
                    let mut a = activity("shared-customer", &format!("{tag}{i}"), &ago(10 - i));
                    a["partnerUser"] = json!(format!("user@{tag}.example"));
                    a
                })
                .collect(),
        )
    };
    assert_eq!(post(&app, "tenant-a", &batch("a")).await.status(), 201);
    assert_eq!(post(&app, "tenant-b", &batch("b")).await.status(), 201);
    // The same client id in both tenants is two different records.
    assert_eq!(
        post(
            &app,
            "tenant-b",
            &activity("shared-customer", "a0", &ago(30))
        )
        .await
        .status(),
        201
    );

    let a_list = body(
        &get(
            &app,
            customer_log("shared-customer").caller("tenant-a", READER),
        )
        .await,
    );
    assert_eq!(ids(&a_list), ["a4", "a3", "a2", "a1", "a0"]);
    let b_all = body(
        &get(
            &app,
            ApiRequest::get("/activities").caller("tenant-b", READER),
        )
        .await,
    );
    assert!(
        b_all["items"]
            .as_array()
            .is_some_and(|i| i.iter().all(|a| a["partnerUser"] != "user@a.example"))
    );

    assert_eq!(
        get(
            &app,
            detail("shared-customer", "a3").caller("tenant-b", READER)
        )
        .await
        .status(),
        404
    );
    let b_view = body(
        &get(
            &app,
            detail("shared-customer", "a0").caller("tenant-b", READER),
        )
        .await,
    );
    assert_eq!(b_view["action"], "placed an order");
    assert_eq!(
        b_view["partnerUser"], "ann@partner.example",
        "tenant b's own a0"
    );

    let a_page = body(
        &get(
            &app,
            customer_log("shared-customer")
                .query("limit", "2")
                .caller("tenant-a", READER),
        )
        .await,
    );
    let cursor = a_page["nextCursor"].as_str().unwrap_or_default();
    let stolen = get(
        &app,
        customer_log("shared-customer")
            .query("limit", "2")
            .query("cursor", cursor)
            .caller("tenant-b", READER),
    )
    .await;
    assert_eq!(stolen.status(), 400);
    assert_eq!(body(&stolen)["error"]["code"], "InvalidCursor");
}

#[tokio::test]
async fn pages_through_1000_records_exactly_once_newest_first() {
    let app = isolated_app().await;
    let base = Utc::now() - TimeDelta::days(2);
    let mut expected_customer = Vec::new();
    let mut expected_all = Vec::new();
    // 1,100 activities of two customers, 50 a batch (activities + customers ≤ 100).
    for chunk in 0..22 {
        let batch: Vec<Value> = (0..50)
            .map(|i| {
                let n = chunk * 50 + i;
                // Several activities share a millisecond, to check the tie-break.
                let at =
                    activity_log::domain::time::format(base + TimeDelta::milliseconds((n / 3) * 7));
                let customer = if n % 11 == 0 { "other" } else { "big" };
                let id = format!("act-{n:05}");
                if customer == "big" {
                    expected_customer.push((at.clone(), id.clone()));
                }
                expected_all.push((at.clone(), customer.to_owned(), id.clone()));
                activity(customer, &id, &at)
            })
            .collect();
        let r = post(&app, "p1", &Value::Array(batch)).await;
        assert_eq!(r.status(), 201, "{}", body(&r));
    }
    expected_customer.sort_by(|a, b| b.cmp(a));
    let expected_customer: Vec<String> = expected_customer.into_iter().map(|(_, id)| id).collect();
    assert!(expected_customer.len() >= 1000);
    let (seen, pages) = all_pages(&app, || customer_log("big").caller("p1", READER), 37).await;
    assert_eq!(seen, expected_customer);
    assert!(pages >= 1000 / 37);

    expected_all.sort_by(|a, b| b.cmp(a));
    let expected_all: Vec<String> = expected_all.into_iter().map(|(_, _, id)| id).collect();
    let (seen, _) = all_pages(
        &app,
        || ApiRequest::get("/activities").caller("p1", READER),
        250,
    )
    .await;
    assert_eq!(seen, expected_all, "tenant-wide log through the GSI");

    // With a filter, pages still fill up to the limit and cover exactly the matches.
    let (seen, _) = all_pages(
        &app,
        || {
            ApiRequest::get("/activities")
                .query("customerId", "other")
                .caller("p1", READER)
        },
        9,
    )
    .await;
    assert_eq!(seen.len(), 100);
}

#[tokio::test]
async fn the_default_period_is_the_last_month_and_dates_mean_whole_days() {
    let app = isolated_app().await;
    let day = |d: i64| activity_log::domain::time::format(Utc::now() - TimeDelta::days(d));
    let batch = json!([
        activity("c1", "recent", &day(3)),
        activity("c1", "last-month", &day(27)),
        activity("c1", "older", &day(40))
    ]);
    assert_eq!(post(&app, "p1", &batch).await.status(), 201);
    let default = body(&get(&app, customer_log("c1").caller("p1", READER)).await);
    assert_eq!(ids(&default), ["recent", "last-month"]);

    let forty = (Utc::now() - TimeDelta::days(40))
        .format("%Y-%m-%d")
        .to_string();
    let that_day = body(
        &get(
            &app,
            customer_log("c1")
                .query("from", &forty)
                .query("to", &forty)
                .caller("p1", READER),
        )
        .await,
    );
    assert_eq!(ids(&that_day), ["older"]);
}

#[tokio::test]
async fn filters_combine() {
    let app = isolated_app().await;
    let mut a = activity("c1", "f1", &ago(3));
    a["status"] = json!("failed");
    let mut b = activity("c1", "f2", &ago(2));
    b["status"] = json!("failed");
    b["partnerUser"] = json!("bob@partner.example");
    let c = activity("c1", "ok", &ago(1));
    assert_eq!(post(&app, "p1", &json!([a, b, c])).await.status(), 201);
    let failed = body(
        &get(
            &app,
            customer_log("c1")
                .query("status", "failed")
                .caller("p1", READER),
        )
        .await,
    );
    assert_eq!(ids(&failed), ["f2", "f1"]);
    let bobs = body(
        &get(
            &app,
            customer_log("c1")
                .query("status", "failed")
                .query("partnerUser", "bob@partner.example")
                .query("action", "placed an order")
                .query("resourceType", "order")
                .caller("p1", READER),
        )
        .await,
    );
    assert_eq!(ids(&bobs), ["f2"]);
}

#[tokio::test]
async fn one_mebibyte_of_details_round_trips_exactly() {
    let app = isolated_app().await;
    let products: Vec<Value> = (0..6000).map(|i| json!({"sku": format!("SKU-{i:05}"), "name": "雲端方案 Cloud plan ✓", "qty": i % 7, "price": 12.5})).collect();
    let mut details = json!({"orderId": "ORD-1", "products": products, "note": ""});
    let current = details.to_string().len();
    let target = 1024 * 1024;
    details["note"] = json!("n".repeat(target - current));
    assert_eq!(
        details.to_string().len(),
        target,
        "exactly 1 MiB of compact JSON"
    );

    let mut a = activity("c1", "big-order", &ago(1));
    a["details"] = details.clone();
    let r = post(&app, "p1", &a).await;
    assert_eq!(r.status(), 201, "{}", body(&r));
    let one = get(&app, detail("c1", "big-order").caller("p1", READER)).await;
    assert_eq!(one.status(), 200);
    let text = std::str::from_utf8(one.body().as_ref())
        .unwrap_or_default()
        .to_owned();
    let got: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    assert_eq!(got["details"], details);
    assert_eq!(
        got["details"].to_string(),
        details.to_string(),
        "key order and numbers kept"
    );
    assert_eq!(got["detailsSize"], target);

    let list = body(&get(&app, customer_log("c1").caller("p1", READER)).await);
    assert_eq!(
        list["items"][0]["detailsIncluded"], false,
        "lists leave large details to the detail call"
    );
}

/// In AWS the query function reads its cursor keys from Secrets Manager once, at start-up
/// (`CURSOR_SIGNING_KEY_SECRET`: the current version and, after a rotation, the previous one),
/// instead of from its environment; without a usable key it does not start.
#[tokio::test]
async fn the_cursor_key_is_read_from_secrets_manager_at_start_up() {
    let sdk = sdk_config(&emulator().await).await;
    let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
    let key = "cursor-key-from-secrets-manager-0123456789";
    let create = |name: String, value: &'static str| {
        let secrets = secrets.clone();
        async move {
            secrets
                .create_secret()
                .name(name)
                .secret_string(value)
                .send()
                .await
                .unwrap_or_else(|e| panic!("{e:?}"))
                .arn
                .unwrap_or_else(|| panic!("no ARN"))
        }
    };
    // An app without CURSOR_SIGNING_KEY, reading the cursor key from `secret` if any.
    let app_reading = |secret: Option<String>| {
        let mut config = fixtures::config();
        config.cursor_keys = None;
        config.cursor_key_secret = secret;
        App::with_clients(
            config,
            aws_sdk_dynamodb::Client::new(&sdk),
            aws_sdk_s3::Client::new(&sdk),
        )
        .with_sdk(sdk.clone())
        .with_cursor_key()
    };

    let arn = create(unique_name("cursor-key"), key).await;
    let app = app_reading(Some(arn.clone()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let keys = app.config.cursor_keys().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(keys.current_id(), CursorKeys::key_id(key.as_bytes()));

    // A cursor handed out before a rotation still opens its page after it: the function that
    // starts after the rotation signs with the new version and checks with both.
    let partner = activity_log::domain::PartnerId::parse("p1").unwrap_or_else(|e| panic!("{e}"));
    let at = |text: &str| {
        activity_log::domain::time::parse_timestamp(text).unwrap_or_else(|e| panic!("{e}"))
    };
    let state = cursor::CursorState {
        range: activity_log::domain::DateRange {
            from: at("2026-10-01T00:00:00Z"),
            to: at("2026-11-01T00:00:00Z"),
        },
        position: activity_log::domain::PageKey {
            occurred_at: at("2026-10-15T12:34:56.789Z"),
            customer_id: activity_log::domain::CustomerId::parse("c1")
                .unwrap_or_else(|e| panic!("{e}")),
            id: activity_log::domain::ActivityId::parse("a1").unwrap_or_else(|e| panic!("{e}")),
        },
    };
    let query = cursor::fingerprint(&[]);
    let open = cursor::encode(keys, &partner, &query, &state, Utc::now());

    // Staged first (AWSPENDING): functions that start now accept the next key's cursors before
    // any function signs with it, and still sign with the current key.
    let next_key = "the-next-cursor-key-staged-before-use-0123";
    secrets
        .put_secret_value()
        .secret_id(&arn)
        .secret_string(next_key)
        .version_stages("AWSPENDING")
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    let staged = app_reading(Some(arn.clone()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let staged = staged
        .config
        .cursor_keys()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(staged.current_id(), CursorKeys::key_id(key.as_bytes()));
    let signed_by_next = cursor::encode(
        &CursorKeys::new(next_key.as_bytes().to_vec(), []),
        &partner,
        &query,
        &state,
        Utc::now(),
    );
    assert_eq!(
        cursor::decode(staged, &partner, &query, &signed_by_next, Utc::now()),
        Ok(state.clone()),
        "a cursor of the pending key"
    );

    let rotated_key = "the-rotated-cursor-key-9876543210-abcdef";
    secrets
        .put_secret_value()
        .secret_id(&arn)
        .secret_string(rotated_key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    let after = app_reading(Some(arn))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let rotated = after.config.cursor_keys().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        rotated.current_id(),
        CursorKeys::key_id(rotated_key.as_bytes())
    );
    assert_eq!(
        cursor::decode(rotated, &partner, &query, &open, Utc::now()),
        Ok(state.clone()),
        "the cursor of the previous version"
    );
    let fresh = cursor::encode(rotated, &partner, &query, &state, Utc::now());
    assert_eq!(
        cursor::decode(keys, &partner, &query, &fresh, Utc::now()),
        Err(cursor::CursorError::RetiredKey),
        "a function still on the old key cannot check the new key's cursors"
    );

    let short = create(unique_name("cursor-key"), "too-short").await;
    let e = app_reading(Some(short)).await.err().map(|e| e.to_string());
    assert!(
        e.as_deref()
            .is_some_and(|e| e.contains("at least 32 bytes")),
        "{e:?}"
    );
    let e = app_reading(Some(unique_name("no-such-secret")))
        .await
        .err()
        .map(|e| e.to_string());
    assert!(
        e.as_deref()
            .is_some_and(|e| e.contains("CURSOR_SIGNING_KEY_SECRET")),
        "{e:?}"
    );
    // Neither the key nor its secret: the function does not start.
    let e = app_reading(None).await.err().map(|e| e.to_string());
    assert!(
        e.as_deref()
            .is_some_and(|e| e.contains("CURSOR_SIGNING_KEY")),
        "{e:?}"
    );
}
