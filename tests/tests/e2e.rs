//! End-to-end: both functions under `cargo lambda watch` (router paths as in AWS, local token
//! verification) on a free port, storage in the emulator, real HTTP requests.

use std::path::PathBuf;
use std::time::Duration;

use activity_log::testing::fixtures::minutes_ago as ago;
use activity_log_tests::forged_token;
use activity_log_tests::{ids, newest_first_ids};
use activity_log_tests::{local_stack, signature_checking_s3, token, wait_until};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

struct Api {
    base: String,
    /// The stack's table, for the tests that tamper with storage behind the API's back.
    table: String,
    /// What the functions log (through cargo lambda watch), in JSON as in AWS.
    log: PathBuf,
    http: Client,
}

impl Api {
    async fn get(&self, path: &str, bearer: Option<&str>) -> (StatusCode, Value) {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        let r = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, body: &Value, bearer: &str) -> (StatusCode, Value) {
        let r = self
            .http
            .post(format!("{}/activities", self.base))
            .bearer_auth(bearer)
            .json(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST /activities: {e}"));
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }
}

/// The tests of this file share one stack and take turns: `cargo lambda watch` runs one instance
/// per function and was seen answering a bare 500 when two tests' requests overlapped.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Link lifetime in this stack, short enough to watch a link expire.
const LINK_TTL_SECS: u64 = 4;

/// The stack, started once for this test binary: moto for DynamoDB, s3s-fs (which checks
/// signatures) for S3, all four functions under cargo lambda watch.
async fn start() -> Api {
    static STACK: tokio::sync::OnceCell<(String, String, PathBuf)> =
        tokio::sync::OnceCell::const_new();
    let (base, table, log) = STACK.get_or_init(launch_stack).await;
    Api {
        base: base.clone(),
        table: table.clone(),
        log: log.clone(),
        http: Client::builder()
            .timeout(Duration::from_secs(900))
            .build()
            .unwrap_or_else(|e| panic!("http client: {e}")),
    }
}

async fn launch_stack() -> (String, String, PathBuf) {
    let s3_endpoint = signature_checking_s3().await;
    let stack = local_stack(
        &s3_endpoint,
        &[
            ("EXPORT_LINK_TTL_SECONDS", LINK_TTL_SECS.to_string()),
            // The functions log as in AWS Lambda.
            ("LOG_FORMAT", "json".to_owned()),
        ],
        1,
    )
    .await;
    (stack.base, stack.table, stack.log)
}

/// What a function logged for one request, in AWS's format: every line that names the partner
/// is a JSON object naming the function, the API request and the partner; neither the token nor
/// anything of the activity's details is in any line.
#[tokio::test]
async fn a_recorded_request_s_log_lines_are_json_and_name_it_but_never_its_token_or_details() {
    let _turn = TURN.lock().await;
    let api = start().await;
    let partner = format!("p-logs-{}", std::process::id());
    let writer = token(&partner, &["ActivityWriter"], "log-check-service", 3600);
    let marker = format!("details-never-logged-{}", std::process::id());
    let activity = |id: &str, details: Value| {
        json!({"id": id, "customerId": "logged-customer", "customerName": "Logged Customer Ltd", "action": "placed an order",
               "partnerUser": "someone@partner.example", "occurredAt": ago(5), "details": details})
    };
    // Small details (in the item) and large ones (in the bucket), then a refused request.
    let batch = json!([
        activity("log-1", json!({"note": marker})),
        activity("log-2", json!({"note": marker, "pad": "x".repeat(40_000)})),
    ]);
    let (status, body) = api.post(&batch, &writer).await;
    assert_eq!(status, 201, "{body}");
    let mut bad = activity("log-3", json!({"note": marker}));
    bad["status"] = json!("maybe");
    let (status, refused) = api.post(&bad, &writer).await;
    assert_eq!(status, 400, "{refused}");
    let refused_id = refused["error"]["requestId"]
        .as_str()
        .unwrap_or_else(|| panic!("no requestId in {refused}"))
        .to_owned();

    // cargo lambda watch writes the functions' output as it comes.
    let mut mine: Vec<Value> = Vec::new();
    let mut text = String::new();
    wait_until("the request's log lines", Duration::from_secs(30), || {
        text = std::fs::read_to_string(&api.log).unwrap_or_default();
        mine = text
            .lines()
            .filter(|l| l.contains(partner.as_str()) || l.contains(refused_id.as_str()))
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("a line that is not JSON ({e}): {l}"))
            })
            .collect();
        let done = mine.iter().any(|l| l["message"] == "activities recorded")
            && mine.iter().any(|l| l["RequestsRefused"].is_number());
        async move { done }
    })
    .await;
    assert!(!text.contains(&writer), "the token is in the log");
    assert!(!text.contains(&marker), "the details are in the log");

    let logged: Vec<&Value> = mine.iter().filter(|l| l.get("_aws").is_none()).collect();
    assert!(!logged.is_empty(), "{mine:?}");
    for line in &logged {
        assert_eq!(line["function"], "record-activity", "{line}");
        assert_eq!(line["partner"], partner.as_str(), "{line}");
        assert!(
            line["requestId"].as_str().is_some_and(|r| !r.is_empty()),
            "{line}"
        );
        assert!(line["awsRequestId"].is_string(), "{line}");
        assert!(
            line["level"].is_string() && line["message"].is_string(),
            "{line}"
        );
    }
    let recorded = logged
        .iter()
        .find(|l| l["message"] == "activities recorded")
        .unwrap_or_else(|| panic!("{logged:?}"));
    assert_eq!(recorded["count"], 2);
    // The metric lines (Embedded Metric Format) of the same requests.
    let metric = |name: &str| {
        mine.iter()
            .find(|l| l[name].is_number())
            .unwrap_or_else(|| panic!("no {name} line in {mine:?}"))
    };
    let stored = metric("ActivitiesRecorded");
    assert_eq!(
        (
            &stored["Function"],
            &stored["ActivitiesRecorded"],
            &stored["partner"]
        ),
        (&json!("record-activity"), &json!(2.0), &json!(partner))
    );
    let refusal = metric("RequestsRefused");
    assert_eq!(
        (&refusal["Outcome"], &refusal["requestId"]),
        (&json!("ValidationFailed"), &json!(refused_id))
    );
}

/// One test walks the whole story so the stack (and its first-call builds) starts once.
#[tokio::test]
async fn the_api_over_http() {
    let _turn = TURN.lock().await;
    let api = start().await;
    let writer = token("p-east", &["ActivityWriter"], "order-service", 3600);
    let reader = token(
        "p-east",
        &["HelpdeskAgent", "SalesAgent"],
        "helpdesk@p-east",
        3600,
    );
    let other = token("p-west", &["GlobalAdmin"], "admin@p-west", 3600);
    let customer = "台北雲端-01";
    let enc = "%E5%8F%B0%E5%8C%97%E9%9B%B2%E7%AB%AF-01";

    // Identity: none, expired, forged, wrong role.
    assert_eq!(api.get("/activities", None).await.0, 401);
    let expired = token("p-east", &["GlobalAdmin"], "u", -600);
    let (status, body) = api.get("/activities", Some(&expired)).await;
    assert_eq!(
        (status.as_u16(), body["error"]["code"].as_str()),
        (401, Some("Unauthenticated"))
    );
    let forged = forged_token("p-east", &["GlobalAdmin"]);
    assert_eq!(api.get("/activities", Some(&forged)).await.0, 401);
    assert_eq!(api.get("/activities", Some(&writer)).await.0, 403);
    assert_eq!(api.post(&json!({}), &reader).await.0, 403);

    // Record 250 activities in three requests.
    let all: Vec<Value> = (0..250)
        .map(|i| json!({"id": format!("e2e-{i:04}"), "customerId": customer, "customerName": "台北雲端科技股份有限公司",
                        "action": if i % 5 == 0 { "placed an order" } else { "created a referral" },
                        "partnerUser": "chen.wei@partner.example", "occurredAt": ago(i / 2 + 1), "details": {"n": i}}))
        .collect();
    // 99 a request: activities + customers ≤ 100 (one transaction with the chain head).
    for chunk in all.chunks(99) {
        let (status, body) = api.post(&Value::Array(chunk.to_vec()), &writer).await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["items"].as_array().map(Vec::len), Some(chunk.len()));
    }
    let expected = newest_first_ids(&all);

    // Page the customer's log over HTTP through the router's path parameters.
    let (mut seen, mut cursor) = (Vec::new(), None::<String>);
    loop {
        let mut path = format!("/customers/{enc}/activities?limit=40");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let (status, page) = api.get(&path, Some(&reader)).await;
        assert_eq!(status, 200, "{page}");
        seen.extend(ids(&page));
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, expected, "every record once, newest first");

    // Tenant-wide log with filters, and the detail of one record.
    let (status, orders) = api
        .get(
            &format!("/activities?customerId={enc}&action=placed%20an%20order&limit=1000"),
            Some(&reader),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(ids(&orders).len(), 50);
    let (status, one) = api
        .get(
            &format!("/customers/{enc}/activities/e2e-0007"),
            Some(&reader),
        )
        .await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["customerName"], "台北雲端科技股份有限公司");
    assert_eq!(one["details"], json!({"n": 7}));
    assert_eq!(
        one["links"]["subscriptions"],
        format!("https://partner.example.com/customers/{enc}/subscriptions")
    );

    // Another tenant sees none of it.
    assert_eq!(
        api.get(
            &format!("/customers/{enc}/activities/e2e-0007"),
            Some(&other)
        )
        .await
        .0,
        404
    );
    let (_, theirs) = api.get("/activities", Some(&other)).await;
    assert_eq!(ids(&theirs), Vec::<String>::new());
    let (_, first_page) = api
        .get(
            &format!("/customers/{enc}/activities?limit=5"),
            Some(&reader),
        )
        .await;
    let c = first_page["nextCursor"].as_str().unwrap_or_default();
    assert_eq!(
        api.get(
            &format!("/customers/{enc}/activities?limit=5&cursor={c}"),
            Some(&other)
        )
        .await
        .0,
        400
    );

    // Retry-safe writes and conflicts.
    let (status, again) = api.post(&all[3], &writer).await;
    assert_eq!(status, 201);
    assert_eq!(again["items"][0]["id"], "e2e-0003");
    let mut changed = all[3].clone();
    changed["action"] = json!("deleted a referral");
    assert_eq!(api.post(&changed, &writer).await.0, 409);

    // Bad input over HTTP.
    let (status, body) = api.get("/activities?limit=0", Some(&reader)).await;
    assert_eq!(
        (status.as_u16(), body["error"]["code"].as_str()),
        (400, Some("InvalidLimit"))
    );
    let huge = json!({"customerId": "c", "customerName": "C", "action": "a", "partnerUser": "u", "details": {"x": "y".repeat(1_100_000)}});
    assert_eq!(api.post(&huge, &writer).await.0, 413);
}

async fn poll_export(api: &Api, id: &str, bearer: &str) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    loop {
        let (status, job) = api.get(&format!("/exports/{id}"), Some(bearer)).await;
        assert_eq!(status, 200, "{job}");
        if matches!(job["status"].as_str(), Some("succeeded" | "failed")) {
            return job;
        }
        assert!(std::time::Instant::now() < deadline, "export stuck: {job}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn start_export(api: &Api, body: &Value, bearer: &str) -> String {
    let r = api
        .http
        .post(format!("{}/exports", api.base))
        .bearer_auth(bearer)
        .json(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST /exports: {e}"));
    assert_eq!(r.status(), 202);
    let location = r
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let job: Value = r.json().await.unwrap_or(Value::Null);
    let id = job["id"].as_str().unwrap_or_default().to_owned();
    assert_eq!(location, format!("/exports/{id}"));
    id
}

/// Exports over HTTP: the export API invokes the worker through the Invoke API that cargo lambda
/// watch serves; files go to an S3 that checks signatures; links are followed with plain HTTP.
#[tokio::test]
async fn exports_over_http() {
    let _turn = TURN.lock().await;
    let api = start().await;
    let writer = token("p-exports", &["ActivityWriter"], "svc", 3600);
    let reader = token("p-exports", &["UserManagementAdmin"], "u", 3600);
    let other = token("p-other", &["GlobalAdmin"], "u", 3600);
    let mut items: Vec<Value> = (0..120)
        .map(|i| json!({"id": format!("x{i:04}"), "customerId": "tw-01", "customerName": "台北雲端科技股份有限公司",
                        "action": "placed an order", "partnerUser": "chen.wei@partner.example", "occurredAt": ago(i * 3 + 1)}))
        .collect();
    items.push(json!({"id": "evil", "customerId": "tw-01", "customerName": "=HYPERLINK(\"http://evil.example\")",
                      "action": "+cmd", "partnerUser": "@x", "occurredAt": ago(2000)}));
    for chunk in items.chunks(99) {
        assert_eq!(
            api.post(&Value::Array(chunk.to_vec()), &writer).await.0,
            201
        );
    }
    let expected = newest_first_ids(&items);

    // CSV in Taipei time.
    let id = start_export(
        &api,
        &json!({"customerId": "tw-01", "timeZone": "Asia/Taipei"}),
        &reader,
    )
    .await;
    let job = poll_export(&api, &id, &reader).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["rowCount"], items.len());
    assert_eq!(
        api.get(&format!("/exports/{id}"), Some(&other)).await.0,
        404,
        "another tenant"
    );
    let url = job["downloadUrl"].as_str().unwrap_or_default().to_owned();
    let r = api
        .http
        .get(&url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("download: {e}"));
    assert_eq!(r.status(), 200);
    let bytes = r.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
    assert!(bytes.starts_with(b"\xEF\xBB\xBF"));
    let text = String::from_utf8(bytes[3..].to_vec()).unwrap_or_default();
    assert!(text.ends_with("\r\n") && !text.replace("\r\n", "").contains('\n'));
    let mut reader_csv = csv::Reader::from_reader(text.as_bytes());
    let rows: Vec<csv::StringRecord> = reader_csv
        .records()
        .map(|r| r.unwrap_or_default())
        .collect();
    let ids: Vec<&str> = rows.iter().map(|r| &r[7]).collect();
    assert_eq!(ids, expected, "every row once, newest first");
    assert!(rows.iter().all(|r| r[0].ends_with("+08:00")));
    assert_eq!(&rows[1][1], "台北雲端科技股份有限公司");
    let evil = rows
        .iter()
        .find(|r| &r[7] == "evil")
        .unwrap_or_else(|| panic!("evil row"));
    assert_eq!(
        (&evil[1], &evil[2], &evil[3]),
        ("'=HYPERLINK(\"http://evil.example\")", "'+cmd", "'@x")
    );

    // A tampered link is refused by the signature-checking S3; so is an expired one.
    let tampered = url.replacen("/exports/p-exports/", "/exports/p-other/", 1);
    assert_ne!(tampered, url);
    assert_eq!(
        api.http
            .get(&tampered)
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0),
        403
    );
    // The last character of the link is the signature's.
    let mut flipped = url.clone();
    let last = flipped.pop().unwrap_or('0');
    flipped.push(if last == '0' { '1' } else { '0' });
    assert_eq!(
        api.http
            .get(&flipped)
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0),
        403
    );
    wait_until(
        "the link to expire",
        Duration::from_secs(LINK_TTL_SECS * 10),
        || {
            let (http, url) = (api.http.clone(), url.clone());
            async move { http.get(&url).send().await.is_ok_and(|r| r.status() == 403) }
        },
    )
    .await;
    let fresh = poll_export(&api, &id, &reader).await;
    assert_ne!(
        fresh["downloadUrl"], job["downloadUrl"],
        "each status call presigns afresh"
    );
    assert_eq!(
        api.http
            .get(fresh["downloadUrl"].as_str().unwrap_or_default())
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0),
        200
    );

    // JSON Lines, exactly as the query API returns the activities.
    let id = start_export(
        &api,
        &json!({"customerId": "tw-01", "format": "jsonl"}),
        &reader,
    )
    .await;
    let job = poll_export(&api, &id, &reader).await;
    let r = api
        .http
        .get(job["downloadUrl"].as_str().unwrap_or_default())
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let lines: Vec<Value> = r
        .text()
        .await
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or(Value::Null))
        .collect();
    let (_, listed) = api
        .get("/customers/tw-01/activities?limit=1000", Some(&reader))
        .await;
    assert_eq!(Value::Array(lines), listed["items"]);
}

/// What `activity-log-verify --api` says of `customer` through the stack, as `reader`.
async fn verify_through_the_api(
    api: &Api,
    reader: &str,
    customer: &str,
) -> Result<Vec<String>, String> {
    let options = activity_log_verify::ApiOptions::new(&api.base, reader, customer);
    activity_log_verify::verify_api(&options)
        .await
        .map(|report| report.lines())
        .map_err(|e| e.to_string())
}

/// The stack's table through the SDK, bypassing the API.
async fn table_client() -> aws_sdk_dynamodb::Client {
    let endpoint = activity_log_tests::emulator().await;
    aws_sdk_dynamodb::Client::new(&activity_log_tests::sdk_config(&endpoint).await)
}

fn activity_key(
    partner: &str,
    customer: &str,
    id: &str,
) -> std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> {
    use aws_sdk_dynamodb::types::AttributeValue::S;
    std::collections::HashMap::from([
        ("pk".to_owned(), S(format!("P#{partner}#C#{customer}"))),
        ("sk".to_owned(), S(format!("A#{id}"))),
    ])
}

/// Tampering with the table behind the API's back — a field changed, an activity deleted, two
/// swapped, the oldest activities deleted before they could expire, an activity's chain members
/// removed — is named by the verifier reading the chain through the API, against the signed
/// checkpoint.
#[tokio::test]
async fn tampering_with_storage_is_caught_through_the_api() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let _turn = TURN.lock().await;
    let api = start().await;
    let writer = token("p-audit", &["ActivityWriter"], "billing-sync", 3600);
    let reader = token("p-audit", &["GlobalAdmin"], "auditor@p-audit", 3600);
    let customers = ["changed", "deleted", "swapped", "oldest", "stripped"];
    for customer in customers {
        let batch: Vec<Value> = (0..8)
            .map(|i| json!({"id": format!("{customer}-{i}"), "customerId": customer, "customerName": "Fabrikam",
                            "action": "assigned a license", "partnerUser": "ann@p-audit.example",
                            "occurredAt": ago(30 - i), "details": {"seats": i}}))
            .collect();
        let (status, body) = api.post(&Value::Array(batch), &writer).await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["items"][7]["sequence"], 8);
        assert_eq!(body["items"][0]["recordedBy"], "billing-sync");
        let lines = verify_through_the_api(&api, &reader, customer)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            lines[0].starts_with(&format!("{customer}: 8 activities, sequences 1–8")),
            "{lines:?}"
        );
        assert!(lines[0].contains("signed checkpoint at 8"), "{lines:?}");
    }
    let db = table_client().await;

    db.update_item()
        .table_name(&api.table)
        .set_key(Some(activity_key("p-audit", "changed", "changed-3")))
        .update_expression("SET partnerUser = :u")
        .expression_attribute_values(":u", AttributeValue::S("mallory@p-audit.example".into()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let found = verify_through_the_api(&api, &reader, "changed")
        .await
        .unwrap_err();
    assert!(
        found.contains("activity changed-3 (sequence 4) was altered"),
        "{found}"
    );

    db.delete_item()
        .table_name(&api.table)
        .set_key(Some(activity_key("p-audit", "deleted", "deleted-5")))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let found = verify_through_the_api(&api, &reader, "deleted")
        .await
        .unwrap_err();
    assert!(found.contains("sequence 6 is missing"), "{found}");

    // Swap the places of two activities: each takes the other's sequence.
    for (id, sequence) in [("swapped-2", "6"), ("swapped-5", "3")] {
        db.update_item()
            .table_name(&api.table)
            .set_key(Some(activity_key("p-audit", "swapped", id)))
            .update_expression("SET #s = :s")
            .expression_attribute_names("#s", "sequence")
            .expression_attribute_values(":s", AttributeValue::N(sequence.into()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let found = verify_through_the_api(&api, &reader, "swapped")
        .await
        .unwrap_err();
    assert!(found.contains("out of order"), "{found}");
    assert!(found.contains("swapped-5 (sequence 3)"), "{found}");

    // The two oldest deleted: recorded seconds ago, they cannot have expired.
    for id in ["oldest-0", "oldest-1"] {
        db.delete_item()
            .table_name(&api.table)
            .set_key(Some(activity_key("p-audit", "oldest", id)))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let found = verify_through_the_api(&api, &reader, "oldest")
        .await
        .unwrap_err();
    assert!(
        found.contains("oldest: sequences 1 to 2 are missing (before activity oldest-2, sequence 3): the last of them was recorded at "),
        "{found}"
    );
    assert!(
        found.ends_with("less than the signed retention ago, so it cannot have expired"),
        "{found}"
    );

    // Chain members removed: no longer passes as "recorded before the chain".
    db.update_item()
        .table_name(&api.table)
        .set_key(Some(activity_key("p-audit", "stripped", "stripped-4")))
        .update_expression("REMOVE #s, #h, #p, #r")
        .expression_attribute_names("#s", "sequence")
        .expression_attribute_names("#h", "hash")
        .expression_attribute_names("#p", "previousHash")
        .expression_attribute_names("#r", "previousRecordedAt")
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let found = verify_through_the_api(&api, &reader, "stripped")
        .await
        .unwrap_err();
    assert_eq!(
        found,
        "FAILED: stripped: activity stripped-4 was altered: its sequence, hash and previousHash were removed (every activity is chained when it is recorded)"
    );

    // Another tenant sees none of it.
    let other = token("p-west", &["GlobalAdmin"], "admin@p-west", 3600);
    let theirs = verify_through_the_api(&api, &other, "changed")
        .await
        .unwrap_err();
    assert!(theirs.contains("404"), "{theirs}");
}

/// An operator with write access to the table truncates a chain and sets its head back, or
/// rewrites it from the middle with every hash recomputed. The service had anchored the head it
/// signed before: it refuses to sign either (409 ChainInconsistent), and the verifier says so.
#[tokio::test]
async fn truncation_and_rewrite_in_storage_are_refused_by_the_service() {
    use activity_log::domain::chain::ChainRow;
    use aws_sdk_dynamodb::types::AttributeValue::{N, S};
    let _turn = TURN.lock().await;
    let api = start().await;
    let writer = token("p-held", &["ActivityWriter"], "billing-sync", 3600);
    let reader = token("p-held", &["GlobalAdmin"], "auditor@p-held", 3600);
    let db = table_client().await;
    let head_key = |customer: &str| {
        std::collections::HashMap::from([
            ("pk".to_owned(), S(format!("P#p-held#C#{customer}"))),
            ("sk".to_owned(), S("HEAD".to_owned())),
        ])
    };
    let mut stored = std::collections::HashMap::new();
    for customer in ["truncated", "rewritten"] {
        let batch: Vec<Value> = (0..8)
            .map(|i| json!({"id": format!("{customer}-{i}"), "customerId": customer, "customerName": "Fabrikam",
                            "action": "assigned a license", "partnerUser": "ann@p-held.example",
                            "occurredAt": ago(30 - i)}))
            .collect();
        let (status, body) = api.post(&Value::Array(batch), &writer).await;
        assert_eq!(status, 201, "{body}");
        stored.insert(customer, body["items"].clone());
        // Signed and anchored at 8.
        let lines = verify_through_the_api(&api, &reader, customer)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(lines[0].contains("signed checkpoint at 8"), "{lines:?}");
    }

    // Truncation: 7 and 8 deleted, the head set back to 6.
    for id in ["truncated-6", "truncated-7"] {
        db.delete_item()
            .table_name(&api.table)
            .set_key(Some(activity_key("p-held", "truncated", id)))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let hash_6 = stored["truncated"][5]["hash"].as_str().unwrap_or_default();
    db.update_item()
        .table_name(&api.table)
        .set_key(Some(head_key("truncated")))
        .update_expression("SET #s = :s, #h = :h")
        .expression_attribute_names("#s", "sequence")
        .expression_attribute_names("#h", "hash")
        .expression_attribute_values(":s", N("6".into()))
        .expression_attribute_values(":h", S(hash_6.to_owned()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (status, refused) = api
        .get("/customers/truncated/checkpoint", Some(&reader))
        .await;
    assert_eq!(status, 409, "{refused}");
    assert_eq!(
        refused["error"]["message"],
        "customer truncated: the activity at the anchored sequence 8 is missing, and the anchor is not old enough for it to have expired; nothing was signed"
    );
    let found = verify_through_the_api(&api, &reader, "truncated")
        .await
        .unwrap_err();
    assert!(
        found.contains("HTTP 409 Conflict: ChainInconsistent"),
        "{found}"
    );

    // Rewrite: from sequence 4 on, another action, every hash and link recomputed.
    let mut rows: Vec<ChainRow> = stored["rewritten"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r.as_object())
        .map(|r| ChainRow::from_row("p-held", r).unwrap_or_else(|e| panic!("{e}")))
        .collect();
    rows.sort_by_key(|r| r.link.sequence);
    let mut previous = rows[2].link.hash.clone();
    for row in &mut rows[3..] {
        row.record.action = json!("removed a license");
        let hash = row
            .record
            .hash(&previous, row.link.sequence)
            .unwrap_or_else(|e| panic!("{e}"));
        db.update_item()
            .table_name(&api.table)
            .set_key(Some(activity_key("p-held", "rewritten", &row.id)))
            .update_expression("SET #a = :a, #h = :h, #p = :p")
            .expression_attribute_names("#a", "action")
            .expression_attribute_names("#h", "hash")
            .expression_attribute_names("#p", "previousHash")
            .expression_attribute_values(":a", S("removed a license".into()))
            .expression_attribute_values(":h", S(hash.clone()))
            .expression_attribute_values(":p", S(previous.clone()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        previous = hash;
    }
    db.update_item()
        .table_name(&api.table)
        .set_key(Some(head_key("rewritten")))
        .update_expression("SET #h = :h")
        .expression_attribute_names("#h", "hash")
        .expression_attribute_values(":h", S(previous))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (status, refused) = api
        .get("/customers/rewritten/checkpoint", Some(&reader))
        .await;
    assert_eq!(status, 409, "{refused}");
    assert_eq!(
        refused["error"]["message"],
        "customer rewritten: the activity at the anchored sequence 8 does not have the anchored hash; nothing was signed"
    );
}
