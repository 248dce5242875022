//! API mode through the binary, against a small HTTP server on 127.0.0.1 that serves the
//! service's three endpoints (and single activities) from fixtures.

mod common;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use activity_log::domain::chain::Head;
use activity_log::domain::integrity::Checkpoint;
use activity_log::testing::signed::{self as synthetic, Signer};
use activity_log_verify::{ApiOptions, Error, verify_api_at};
use chrono::{DateTime, TimeDelta, Utc};
use common::{PARTNER, Run, Scratch, other_key, service_key, verify};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value, json};

type Row = Map<String, Value>;

/// Non-ASCII with a space and '#': it travels percent-encoded in the path.
const CUSTOMER: &str = "客戶 #2";
const TOKEN: &str = "t0ken";

/// What the server serves and what it was asked.
#[derive(Default)]
struct Served {
    public_key: Value,
    checkpoint: Value,
    /// Newest first, with their details.
    items: Vec<Row>,
    page_size: usize,
    /// Answer every other page empty (with a cursor), as a page that read nothing matching.
    empty_pages: bool,
    /// Ids whose details pages leave out.
    withheld: Vec<String>,
    /// Answer this many requests 429 with Retry-After: 1.
    throttle: usize,
    /// Close this many connections as soon as they are made, before any answer.
    drop_connections: usize,
    /// Paths and queries asked for, in order.
    requests: Vec<String>,
}

type Shared = Arc<Mutex<Served>>;

fn json_response(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(serde_json::to_vec(body).unwrap())))
        .unwrap()
}

fn error(status: StatusCode, code: &str, message: &str) -> Response<Full<Bytes>> {
    json_response(
        status,
        &json!({"error": {"code": code, "message": message, "requestId": "req-1"}}),
    )
}

fn handle(state: &Shared, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let mut s = state.lock().unwrap();
    let uri = req.uri().to_string();
    s.requests.push(uri.clone());
    if req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        != Some(&format!("Bearer {TOKEN}"))
    {
        return error(
            StatusCode::UNAUTHORIZED,
            "Unauthenticated",
            "the bearer token is missing or not valid",
        );
    }
    if s.throttle > 0 {
        s.throttle -= 1;
        let mut r = error(StatusCode::TOO_MANY_REQUESTS, "RateLimited", "slow down");
        r.headers_mut().insert("retry-after", "1".parse().unwrap());
        return r;
    }
    let url = reqwest::Url::parse(&format!("http://127.0.0.1{uri}")).unwrap();
    let query: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    let param = |name: &str| {
        query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let segments: Vec<String> = url
        .path()
        .split('/')
        .skip(1)
        .map(|p| {
            percent_encoding::percent_decode_str(p)
                .decode_utf8()
                .unwrap()
                .into_owned()
        })
        .collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    match segments.as_slice() {
        ["integrity", "public-key"] => json_response(StatusCode::OK, &s.public_key),
        ["customers", c, "checkpoint"] if *c == CUSTOMER => {
            json_response(StatusCode::OK, &s.checkpoint)
        }
        ["customers", c, "activities"] if *c == CUSTOMER => {
            let time = |name: &str| {
                param(name)
                    .map(|t| DateTime::parse_from_rfc3339(&t).unwrap().to_utc())
                    .unwrap()
            };
            let (from, to) = (time("from"), time("to"));
            let cursor = param("cursor");
            let (offset, empty) = match cursor.as_deref() {
                None => (0, false),
                Some(c) => match c.strip_prefix("empty-") {
                    Some(o) => (o.parse().unwrap(), true),
                    None => (c.strip_prefix("at-").unwrap().parse().unwrap(), false),
                },
            };
            let matching: Vec<Row> = s
                .items
                .iter()
                .filter(|r| {
                    let t = DateTime::parse_from_rfc3339(r["occurredAt"].as_str().unwrap())
                        .unwrap()
                        .to_utc();
                    from <= t && t <= to
                })
                .cloned()
                .collect();
            if empty {
                return json_response(
                    StatusCode::OK,
                    &json!({"items": [], "nextCursor": format!("at-{offset}")}),
                );
            }
            let end = (offset + s.page_size).min(matching.len());
            let items: Vec<Row> = matching[offset..end]
                .iter()
                .map(|r| {
                    let mut r = r.clone();
                    if s.withheld.iter().any(|id| r["id"] == id.as_str()) {
                        r.insert("details".into(), Value::Null);
                        r.insert("detailsIncluded".into(), Value::Bool(false));
                    }
                    r
                })
                .collect();
            let next = (end < matching.len()).then(|| {
                if s.empty_pages {
                    format!("empty-{end}")
                } else {
                    format!("at-{end}")
                }
            });
            json_response(StatusCode::OK, &json!({"items": items, "nextCursor": next}))
        }
        ["customers", c, "activities", id] if *c == CUSTOMER => {
            match s.items.iter().find(|r| r["id"] == *id) {
                Some(r) => json_response(StatusCode::OK, &Value::Object(r.clone())),
                None => error(StatusCode::NOT_FOUND, "NotFound", "no such activity"),
            }
        }
        _ => error(StatusCode::NOT_FOUND, "NotFound", "no such resource"),
    }
}

/// The server on a free loopback port of `rt`: its base URL.
fn serve(rt: &tokio::runtime::Runtime, state: Shared) -> String {
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = state.clone();
                {
                    let mut s = state.lock().unwrap();
                    if s.drop_connections > 0 {
                        s.drop_connections -= 1;
                        drop(stream);
                        continue;
                    }
                }
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        let response = handle(&state, &req);
                        async move { Ok::<_, Infallible>(response) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        format!("http://127.0.0.1:{port}")
    })
}

/// A customer's chain of 6 recorded from `first_recorded_at` on, signed at 5 by `signer`,
/// and an activity from before the chain; newest first.
fn fixture(signer: &Signer, first_recorded_at: DateTime<Utc>) -> (Vec<Row>, Checkpoint) {
    fixture_retained(signer, first_recorded_at, 365)
}

/// [`fixture`] with a checkpoint that signs a retention of `retention_days`.
fn fixture_retained(
    signer: &Signer,
    first_recorded_at: DateTime<Utc>,
    retention_days: u32,
) -> (Vec<Row>, Checkpoint) {
    let (mut rows, _) = synthetic::chain(PARTNER, CUSTOMER, 6, first_recorded_at).unwrap();
    let head = Head {
        sequence: 5,
        hash: rows[4]["hash"].as_str().unwrap().to_owned(),
        recorded_at: None,
    };
    let checkpoint = signer
        .checkpoint_retained(
            PARTNER,
            CUSTOMER,
            &head,
            "2026-11-28T10:00:00.000Z",
            retention_days,
        )
        .unwrap();
    rows.reverse();
    (rows, checkpoint)
}

fn served(items: Vec<Row>, checkpoint: &Checkpoint) -> Served {
    Served {
        public_key: serde_json::to_value(service_key().public_key().unwrap()).unwrap(),
        checkpoint: serde_json::to_value(checkpoint).unwrap(),
        items,
        page_size: 1000,
        ..Served::default()
    }
}

fn recent() -> DateTime<Utc> {
    Utc::now() - TimeDelta::hours(2)
}

fn without(rows: &[Row], sequences: &[u64]) -> Vec<Row> {
    rows.iter()
        .filter(|r| {
            !r["sequence"]
                .as_u64()
                .is_some_and(|s| sequences.contains(&s))
        })
        .cloned()
        .collect()
}

/// Runs the binary in API mode against a server of `served`; what it printed, and the server.
fn check(served: Served, extra: &[&str]) -> (Run, Shared) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let state = Arc::new(Mutex::new(served));
    let url = serve(&rt, state.clone());
    let mut args = vec!["--api", &url, "--token", TOKEN, "--customer", CUSTOMER];
    args.extend_from_slice(extra);
    let run = verify(&args);
    (run, state)
}

const KEY_ID: &str = "arn:aws:kms:ap-northeast-1:111122223333:key/service";
const API_KEY_LINE: &str = "key: as the API under test names it (GET /integrity/public-key); give --public-key to check against the deployed key you hold";

#[test]
fn an_intact_chain_passes() {
    let (rows, checkpoint) = fixture(&service_key(), recent());
    let mut s = served(rows, &checkpoint);
    s.withheld = vec!["act-000002".into()];
    s.throttle = 1;
    let (run, state) = check(s, &[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.lines(),
        [
            "客戶 #2: 5 activities, sequences 1–5, hashes and links checked, signed checkpoint at 5 (issued 2026-11-28T10:00:00.000Z) matches".to_owned(),
            "1 activity recorded after the checkpoint: not checked".to_owned(),
            API_KEY_LINE.to_owned(),
            format!("OK: 5 activities of customer 客戶 #2 verified against key {KEY_ID}"),
        ]
    );
    let requests = state.lock().unwrap().requests.clone();
    // Throttled once, then asked again.
    assert_eq!(requests[0], "/integrity/public-key", "{requests:#?}");
    assert_eq!(requests[1], "/integrity/public-key", "{requests:#?}");
    let segment = "%E5%AE%A2%E6%88%B6%20%232";
    assert_eq!(requests[2], format!("/customers/{segment}/checkpoint"));
    assert!(
        requests.contains(&format!("/customers/{segment}/activities/act-000002")),
        "the withheld details are read one by one: {requests:#?}"
    );
}

#[test]
fn an_activity_removed_from_the_middle_is_missing() {
    let (rows, checkpoint) = fixture(&service_key(), recent());
    let (run, _) = check(served(without(&rows, &[3]), &checkpoint), &[]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(
        run.stdout,
        "FAILED: 客戶 #2: sequence 3 is missing (before activity act-000004, sequence 4)\n"
    );
}

#[test]
fn an_altered_activity_is_named() {
    let (mut rows, checkpoint) = fixture(&service_key(), recent());
    let i = rows.iter().position(|r| r["sequence"] == 4).unwrap();
    rows[i].insert("partnerUser".into(), json!("someone.else@partner.example"));
    let (run, _) = check(served(rows, &checkpoint), &[]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(
        run.stdout,
        "FAILED: 客戶 #2: activity act-000004 (sequence 4) was altered: its content does not match its hash\n"
    );
}

/// An activity whose chain members were removed in storage (the API shows them null) is no
/// longer "recorded before the chain": every activity is chained when it is recorded.
#[test]
fn an_activity_stripped_of_its_chain_members_is_named() {
    let (mut rows, checkpoint) = fixture(&service_key(), recent());
    let i = rows.iter().position(|r| r["sequence"] == 3).unwrap();
    for member in ["sequence", "hash", "previousHash"] {
        rows[i].insert(member.into(), Value::Null);
    }
    let (run, _) = check(served(rows, &checkpoint), &[]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(
        run.stdout,
        "FAILED: 客戶 #2: activity act-000003 was altered: its sequence, hash and previousHash were removed (every activity is chained when it is recorded)\n"
    );
}

/// Sequences 1 and 2 deleted while 2 was retained: the chain's start is missing, not expired.
#[test]
fn the_oldest_activities_deleted_before_they_expired_are_missing() {
    let first = recent();
    let (rows, checkpoint) = fixture(&service_key(), first);
    let (run, _) = check(served(without(&rows, &[1, 2]), &checkpoint), &[]);
    assert_eq!(run.code, 1, "{run:?}");
    let recorded_2 = activity_log::domain::time::format(first + TimeDelta::seconds(2));
    assert_eq!(
        run.stdout,
        format!(
            "FAILED: 客戶 #2: sequences 1 to 2 are missing (before activity act-000003, sequence 3): the last of them was recorded at {recorded_2}, less than the signed retention ago, so it cannot have expired\n"
        )
    );
}

/// Once sequence 2 (and so 1) is older than the retention the checkpoint signs, a chain
/// starting at 3 is whole.
#[test]
fn a_chain_starting_at_3_is_accepted_once_its_start_expired_and_says_where_it_starts() {
    let (rows, checkpoint) = fixture_retained(&service_key(), Utc::now() - TimeDelta::hours(36), 1);
    let (run, _) = check(served(without(&rows, &[1, 2]), &checkpoint), &[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.lines()[0],
        "客戶 #2: 3 activities, sequences 3–5, hashes and links checked, the chain starts at sequence 3 (earlier activities expired), signed checkpoint at 5 (issued 2026-11-28T10:00:00.000Z) matches"
    );
}

#[test]
fn a_gap_of_expired_activities_is_skipped() {
    // Recorded 400 days ago, occurred 30 s before: past a 365-day retention.
    let (rows, checkpoint) = fixture(&service_key(), Utc::now() - TimeDelta::days(400));
    let (run, _) = check(served(without(&rows, &[2, 3]), &checkpoint), &[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.lines()[0],
        "客戶 #2: 3 activities, sequences 1–5, hashes and links checked, 2 expired sequences skipped, signed checkpoint at 5 (issued 2026-11-28T10:00:00.000Z) matches"
    );
    // Signed with a longer retention, the same gap is not expiry.
    let (rows, checkpoint) =
        fixture_retained(&service_key(), Utc::now() - TimeDelta::days(400), 500);
    let (run, _) = check(served(without(&rows, &[2, 3]), &checkpoint), &[]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout
            .starts_with("FAILED: 客戶 #2: sequences 2 to 3 are missing"),
        "{run:?}"
    );
}

/// The retention is the service's, signed: an auditor cannot shorten it to excuse a gap.
#[test]
fn the_retention_is_not_taken_from_the_command_line() {
    let (rows, checkpoint) = fixture(&service_key(), recent());
    let (run, _) = check(
        served(without(&rows, &[2, 3]), &checkpoint),
        &["--retention-days", "1"],
    );
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains(
            "--retention-days is not taken: the retention is the one the service signs in its checkpoint"
        ),
        "{run:?}"
    );
}

#[test]
fn pages_are_followed_by_their_cursor() {
    let (rows, checkpoint) = fixture(&service_key(), recent());
    let mut s = served(rows, &checkpoint);
    s.page_size = 4;
    s.empty_pages = true;
    let (run, state) = check(s, &[]);
    assert_eq!(run.code, 0, "{run:?}");
    let requests = state.lock().unwrap().requests.clone();
    let lists: Vec<reqwest::Url> = requests
        .iter()
        .filter(|r| r.contains("/activities?"))
        .map(|r| reqwest::Url::parse(&format!("http://127.0.0.1{r}")).unwrap())
        .collect();
    // 7 items, 4 a page: the first page, an empty one, the second.
    assert_eq!(lists.len(), 3, "{requests:#?}");
    let param = |u: &reqwest::Url, name: &str| {
        u.query_pairs()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.into_owned())
    };
    let cursors: Vec<Option<String>> = lists.iter().map(|u| param(u, "cursor")).collect();
    assert_eq!(cursors, [None, Some("empty-4".into()), Some("at-4".into())]);
    for u in &lists {
        assert_eq!(param(u, "from"), param(&lists[0], "from"));
        assert_eq!(param(u, "to"), param(&lists[0], "to"));
        assert_eq!(param(u, "limit").as_deref(), Some("1000"));
        assert!(param(u, "from").unwrap().ends_with('Z'));
    }
}

#[test]
fn a_checkpoint_signed_by_another_key_is_refused() {
    let (rows, checkpoint) = fixture(&other_key(), recent());
    let (run, _) = check(served(rows, &checkpoint), &[]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(
        run.stdout,
        "FAILED: 客戶 #2: checkpoint signature invalid: the checkpoint was altered or not signed by this key\n"
    );
}

#[test]
fn an_error_answer_names_its_status_and_code() {
    let (rows, checkpoint) = fixture(&service_key(), recent());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let url = serve(&rt, Arc::new(Mutex::new(served(rows, &checkpoint))));
    let run = verify(&["--api", &url, "--token", "wrong", "--customer", CUSTOMER]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(
        run.stdout,
        "FAILED: GET /integrity/public-key: HTTP 401 Unauthorized: Unauthenticated: the bearer token is missing or not valid (request id req-1)\n"
    );
}

#[test]
fn throttling_is_retried_five_times_at_most() {
    let (rows, checkpoint) = fixture(&service_key(), recent());
    let mut s = served(rows, &checkpoint);
    s.throttle = 5;
    let (run, state) = check(s, &[]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout.starts_with(
            "FAILED: GET /integrity/public-key: HTTP 429 Too Many Requests: RateLimited"
        ),
        "{run:?}"
    );
    assert_eq!(state.lock().unwrap().requests.len(), 5);
}

#[test]
fn a_connection_dropped_before_an_answer_is_tried_again() {
    let (rows, checkpoint) = fixture(&service_key(), recent());
    let mut served = served(rows, &checkpoint);
    served.drop_connections = 2;
    let (run, state) = check(served, &[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        state.lock().unwrap().drop_connections,
        0,
        "both were dropped"
    );
}

#[test]
fn the_library_checks_at_a_given_time() {
    // A year later the whole chain has expired but for what the checkpoint vouches.
    let (rows, checkpoint) = fixture(&service_key(), recent());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let state = Arc::new(Mutex::new(served(without(&rows, &[2]), &checkpoint)));
    let url = serve(&rt, state);
    let opts = ApiOptions::new(&url, TOKEN, CUSTOMER);
    let later = Utc::now() + TimeDelta::days(366);
    let report = rt.block_on(verify_api_at(&opts, later)).unwrap();
    assert_eq!(
        (
            report.summary.rows,
            report.summary.expired,
            report.details_fetched
        ),
        (4, 1, 0)
    );
    let now = rt.block_on(verify_api_at(&opts, Utc::now())).unwrap_err();
    assert!(matches!(now, Error::Failed(ref m) if m.contains("sequence 2 is missing")));
}

/// The checkpoint `signer` signed of the fixture's head at `sequence`, issued at `issued_at`,
/// saved in `dir` as an auditor keeps it.
fn held(dir: &Scratch, signer: &Signer, rows: &[Row], sequence: u64, issued_at: &str) -> String {
    let row = rows.iter().find(|r| r["sequence"] == sequence).unwrap();
    let head = Head {
        sequence,
        hash: row["hash"].as_str().unwrap().to_owned(),
        recorded_at: None,
    };
    let cp = signer
        .checkpoint(PARTNER, CUSTOMER, &head, issued_at)
        .unwrap();
    let path = dir.write(
        &format!("held-{sequence}.json"),
        serde_json::to_vec(&cp).unwrap(),
    );
    path.to_str().unwrap().to_owned()
}

#[test]
fn a_held_checkpoint_the_chain_extends_passes_and_is_counted() {
    let dir = Scratch::new("held-ok");
    let (rows, checkpoint) = fixture(&service_key(), recent());
    let at_3 = held(&dir, &service_key(), &rows, 3, "2026-11-28T09:00:00.000Z");
    let at_5 = held(&dir, &service_key(), &rows, 5, "2026-11-28T09:30:00.000Z");
    let (run, _) = check(
        served(rows, &checkpoint),
        &["--checkpoint", &at_3, "--checkpoint", &at_5],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.lines()
            .contains(&"held: 2 checkpoints the signed chain extends"),
        "{run:?}"
    );
}

/// The fixture's head at `sequence`.
fn head_at(rows: &[Row], sequence: u64) -> Head {
    Head {
        sequence,
        hash: rows.iter().find(|r| r["sequence"] == sequence).unwrap()["hash"]
            .as_str()
            .unwrap()
            .to_owned(),
        recorded_at: None,
    }
}

/// The fixture with 4, 5 and 6 deleted and the head set back to 3, signed afresh by the service.
fn truncated_behind_5(rows: &[Row]) -> (Vec<Row>, Checkpoint) {
    let signed_now = service_key()
        .checkpoint(
            PARTNER,
            CUSTOMER,
            &head_at(rows, 3),
            "2026-11-28T10:00:00.000Z",
        )
        .unwrap();
    (without(rows, &[4, 5, 6]), signed_now)
}

#[test]
fn a_tail_truncated_with_its_head_rolled_back_fails_against_a_held_checkpoint() {
    // The operator deleted 4 and 5 and set the head back to 3; the service signs 3 afresh.
    let dir = Scratch::new("held-rollback");
    let (rows, _) = fixture(&service_key(), recent());
    let at_5 = held(&dir, &service_key(), &rows, 5, "2026-11-27T10:00:00.000Z");
    let (truncated, signed_now) = truncated_behind_5(&rows);
    // Without the held checkpoint the truncated chain passes: that is what holding one adds.
    let (run, _) = check(served(truncated.clone(), &signed_now), &[]);
    assert_eq!(run.code, 0, "{run:?}");
    let (run, _) = check(served(truncated, &signed_now), &["--checkpoint", &at_5]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(
        run.stdout,
        "FAILED: 客戶 #2: history changed since 2026-11-27T10:00:00.000Z: the checkpoint signed at 2026-11-28T10:00:00.000Z is at sequence 3, behind the held checkpoint's sequence 5\n"
    );
}

#[test]
fn the_oldest_activities_deleted_fail_against_a_held_checkpoint() {
    let dir = Scratch::new("held-oldest");
    let (rows, checkpoint) = fixture(&service_key(), recent());
    let at_2 = held(&dir, &service_key(), &rows, 2, "2026-11-28T09:00:00.000Z");
    let (run, _) = check(
        served(without(&rows, &[1, 2]), &checkpoint),
        &["--checkpoint", &at_2],
    );
    assert_eq!(run.code, 1, "{run:?}");
    // The chain's own check finds it first; the held checkpoint would too.
    assert!(
        run.stdout.starts_with(
            "FAILED: 客戶 #2: sequences 1 to 2 are missing (before activity act-000003, sequence 3)"
        ),
        "{run:?}"
    );
}

#[test]
fn a_held_checkpoint_of_another_key_or_customer_is_refused() {
    let dir = Scratch::new("held-foreign");
    let (rows, checkpoint) = fixture(&service_key(), recent());
    let forged = held(&dir, &other_key(), &rows, 3, "2026-11-28T09:00:00.000Z");
    let (run, _) = check(
        served(rows.clone(), &checkpoint),
        &["--checkpoint", &forged],
    );
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout
            .starts_with("FAILED: 客戶 #2: the held checkpoint ")
            && run
                .stdout
                .ends_with("is not signed by this key: it was altered, or another key signed it\n"),
        "{run:?}"
    );
    let mut other: Value = serde_json::from_slice(
        &std::fs::read(held(
            &dir,
            &service_key(),
            &rows,
            3,
            "2026-11-28T09:00:00.000Z",
        ))
        .unwrap(),
    )
    .unwrap();
    other["customerId"] = json!("someone-else");
    let other = dir.write("other.json", serde_json::to_vec(&other).unwrap());
    let (run, _) = check(
        served(rows, &checkpoint),
        &["--checkpoint", other.to_str().unwrap()],
    );
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .contains("a checkpoint of partner partner-1, customer someone-else"),
        "{run:?}"
    );
}

#[test]
fn a_pinned_key_is_used_instead_of_the_api_s_and_the_report_says_which() {
    let dir = Scratch::new("pinned");
    let (rows, checkpoint) = fixture(&service_key(), recent());
    let pem = dir.write("service.pem", service_key().public_key().unwrap().pem);
    let (run, state) = check(
        served(rows.clone(), &checkpoint),
        &["--public-key", pem.to_str().unwrap()],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.lines()
            .contains(&format!("key: pinned ({})", pem.display()).as_str()),
        "{run:?}"
    );
    let requests = state.lock().unwrap().requests.clone();
    assert!(
        !requests.iter().any(|r| r == "/integrity/public-key"),
        "{requests:#?}"
    );
    // The API hands out another key and checkpoints signed by it: the pinned key refuses them.
    let (rows, forged) = fixture(&other_key(), recent());
    let mut s = served(rows, &forged);
    s.public_key = serde_json::to_value(other_key().public_key().unwrap()).unwrap();
    let (run, _) = check(s, &["--public-key", pem.to_str().unwrap()]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(
        run.stdout,
        "FAILED: 客戶 #2: checkpoint signature invalid: the checkpoint was altered or not signed by this key\n"
    );
}

#[test]
fn a_saved_checkpoint_is_held_by_the_next_check() {
    let dir = Scratch::new("saved");
    let (rows, checkpoint) = fixture(&service_key(), recent());
    let saved = dir.0.join("saved.json");
    let (run, _) = check(
        served(rows.clone(), &checkpoint),
        &["--save-checkpoint", saved.to_str().unwrap()],
    );
    assert_eq!(run.code, 0, "{run:?}");
    let kept: Checkpoint = serde_json::from_slice(&std::fs::read(&saved).unwrap()).unwrap();
    assert_eq!(kept, checkpoint);
    // The next check holds it. Since, the whole chain was rewritten and signed afresh: alone it
    // passes, held against the saved checkpoint it does not.
    let (rewritten, resigned) = fixture(&service_key(), recent() - TimeDelta::hours(1));
    assert_ne!(rewritten, rows);
    let (run, _) = check(served(rewritten.clone(), &resigned), &[]);
    assert_eq!(run.code, 0, "{run:?}");
    let (run, _) = check(
        served(rewritten, &resigned),
        &["--checkpoint", saved.to_str().unwrap()],
    );
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(
        run.stdout,
        format!(
            "FAILED: 客戶 #2: history changed since {}: activity act-000005 (sequence 5) is not the one the held checkpoint signed\n",
            checkpoint.issued_at
        )
    );
}

/// A copy of the anchor bucket in `dir`: the customer's head at 3 anchored with its signed
/// checkpoint, and at 5 by seal 1 (`listed`: whether the seal lists it).
fn anchored(dir: &Scratch, rows: &[Row], listed: bool, with_seal: bool) -> String {
    use activity_log::domain::integrity::{Seal, SealedHead, anchor, seal};
    let head_at = |sequence: u64| head_at(rows, sequence);
    let cp = service_key()
        .checkpoint(PARTNER, CUSTOMER, &head_at(3), "2026-11-28T09:00:00.000Z")
        .unwrap();
    dir.write(&anchor::key(&cp).unwrap(), serde_json::to_vec(&cp).unwrap());
    let sealed_at = "2026-11-28T09:30:00.000Z";
    let at_5 = head_at(5);
    dir.write(
        &anchor::sealed_key(PARTNER, CUSTOMER, &at_5, 365, sealed_at, 1),
        b"{}",
    );
    let mut s = Seal {
        sequence: 1,
        previous_hash: Seal::GENESIS.to_owned(),
        sealed_at: sealed_at.into(),
        covers_until: sealed_at.into(),
        retention_days: 365,
        heads: vec![SealedHead {
            partner_id: PARTNER.into(),
            customer_id: if listed { CUSTOMER } else { "someone else" }.into(),
            sequence: 5,
            hash: at_5.hash.clone(),
        }],
        refused: Vec::new(),
        key_id: String::new(),
        signature: String::new(),
    };
    service_key().sign_seal(&mut s).unwrap();
    if with_seal {
        dir.write(&seal::key(1), serde_json::to_vec(&s).unwrap());
    }
    dir.path().to_str().unwrap().to_owned()
}

#[test]
fn every_anchored_head_in_a_copy_of_the_anchor_bucket_is_held() {
    let (rows, checkpoint) = fixture(&service_key(), recent());
    let dir = Scratch::new("anchors-ok");
    let copy = anchored(&dir, &rows, true, true);
    let (run, _) = check(served(rows.clone(), &checkpoint), &["--anchors", &copy]);
    assert_eq!(run.code, 0, "{run:?}");
    let lines = run.lines();
    assert!(
        lines.contains(&"anchors: 2 heads of the customer read from the copy of the anchor bucket (signatures and seals checked), held below")
            && lines.contains(&"held: 2 checkpoints the signed chain extends"),
        "{run:?}"
    );

    // The tail truncated behind the sealed head, the head set back to 3 and signed afresh (as
    // a service that checked only its own latest anchor, or none, would): the copy says no.
    let (truncated, signed_now) = truncated_behind_5(&rows);
    let (run, _) = check(served(truncated, &signed_now), &["--anchors", &copy]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(
        run.stdout,
        "FAILED: 客戶 #2: history changed since 2026-11-28T09:30:00.000Z: the checkpoint signed at 2026-11-28T10:00:00.000Z is at sequence 3, behind the held checkpoint's sequence 5\n"
    );
}

#[test]
fn a_sealed_anchor_needs_the_signed_seal_that_lists_it() {
    let (rows, checkpoint) = fixture(&service_key(), recent());
    let dir = Scratch::new("anchors-no-seal");
    let copy = anchored(&dir, &rows, true, false);
    let (run, _) = check(served(rows.clone(), &checkpoint), &["--anchors", &copy]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout
            .contains("was sealed by seal 1, which the copy does not hold"),
        "{run:?}"
    );
    // An anchor someone added beside a seal that does not list it.
    let dir = Scratch::new("anchors-unlisted");
    let copy = anchored(&dir, &rows, false, true);
    let (run, _) = check(served(rows, &checkpoint), &["--anchors", &copy]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout
            .contains("is not a head seal 1 lists: it was added by someone else"),
        "{run:?}"
    );
}
