//! Generated bad and edge input over real HTTP: schemathesis drives the local stack (all four
//! functions under `cargo lambda watch`, storage in the emulator) through `openapi.yaml`, with a
//! valid token and with expired and forged ones. Pass means no 5xx from our functions, every
//! response matches the contract, every error has the JSON error shape, and a bad token gets
//! nothing but 401. Hand-written edge cases (deep JSON, huge strings, odd dates, limits at and past
//! their bounds) follow, since random generation rarely reaches them.
//!
//! `ACTIVITY_LOG_ST_EXAMPLES` (default 1000) sets the generated cases per operation and
//! `ACTIVITY_LOG_ST_SEED` the seed (default fixed, so a failure reproduces).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use activity_log_tests::{LocalStack, emulator, forged_token, local_stack, token, tool};
use activity_log_tests::{wait_until, workspace_root};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

/// The contract's operations, as schemathesis names them.
const OPERATIONS: [&str; 6] = [
    "POST /activities",
    "GET /activities",
    "GET /customers/{customerId}/activities",
    "GET /customers/{customerId}/activities/{activityId}",
    "POST /exports",
    "GET /exports/{exportId}",
];

/// The streaming destinations' operations: a run of their own with a tenth of the cases (most of
/// their requests name a destination that does not exist, or meet the limit of 3).
const DESTINATION_OPERATIONS: [&str; 5] = [
    "GET /destinations",
    "POST /destinations",
    "GET /destinations/{destinationId}",
    "PATCH /destinations/{destinationId}",
    "DELETE /destinations/{destinationId}",
];
const DESTINATION_PATHS: &str = "^/destinations";

/// Cases schemathesis can make of an operation: `n`, or a handful for one that takes no input
/// at all (`GET /destinations`: only its headers vary).
fn cases(op: &str, n: usize) -> usize {
    if op == "GET /destinations" {
        n.min(3)
    } else {
        n
    }
}

const PARTNER: &str = "st-partner";

/// One stack for this test binary; the tests take turns (one function instance each).
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn stack() -> &'static LocalStack {
    static STACK: tokio::sync::OnceCell<LocalStack> = tokio::sync::OnceCell::const_new();
    STACK
        .get_or_init(|| async {
            let s3 = emulator().await;
            // One partner sends every generated request back to back: its request rate limit
            // (tested in fair_use.rs) would answer part of them 429 instead of the contract.
            let stack = local_stack(&s3, &[("TENANT_RATE_LIMIT", "0".to_owned())], 1).await;
            seed(&stack.base).await;
            stack
        })
        .await
}

fn http() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap_or_else(|e| panic!("http client: {e}"))
}

/// The records the contract's examples name, so reads reach stored data.
async fn seed(base: &str) {
    let writer = token(PARTNER, &["ActivityWriter"], "seed", 3600);
    let mut items = vec![json!({"id": "order-4711", "customerId": "contoso",
        "customerName": "Contoso Ltd.", "action": "placed an order",
        "partnerUser": "ann@partner.example", "resourceType": "order",
        "details": {"order": 4711, "lines": [{"sku": "AZ-1", "qty": 3}]}})];
    for n in 0..40 {
        let customer = ["contoso", "台灣客戶", "0"][n % 3];
        let status = ["succeeded", "failed", "inProgress"][n % 3];
        items.push(json!({"id": format!("seed-{n}"), "customerId": customer,
            "customerName": "Fabrikam, Inc.", "action": "=HYPERLINK(\"x\")",
            "partnerUser": "bo@partner.example", "status": status}));
    }
    let r = http()
        .post(format!("{base}/activities"))
        .bearer_auth(writer)
        .json(&items)
        .send()
        .await
        .unwrap_or_else(|e| panic!("seed: {e}"));
    assert_eq!(r.status(), 201, "seed: {:?}", r.text().await);

    // One export to the end, so every function has started before the generated requests.
    let reader = token(PARTNER, &["GlobalAdmin"], "seed", 3600);
    let r = http()
        .post(format!("{base}/exports"))
        .bearer_auth(&reader)
        .json(&json!({}))
        .send()
        .await
        .unwrap_or_else(|e| panic!("seed export: {e}"));
    assert_eq!(r.status(), 202, "seed export: {:?}", r.text().await);
    let job: Value = r.json().await.unwrap_or_default();
    let url = format!("{base}/exports/{}", job["id"].as_str().unwrap_or_default());
    wait_until("the seed export", Duration::from_secs(300), || {
        let (url, reader) = (url.clone(), reader.clone());
        async move {
            let r = http().get(url).bearer_auth(reader).send().await;
            match r {
                Ok(r) => r.json::<Value>().await.unwrap_or_default()["status"] == "succeeded",
                Err(_) => false,
            }
        }
    })
    .await;
}

struct Run {
    name: &'static str,
    token: String,
    examples: usize,
    expect_unauthenticated: bool,
    /// Only this operation (`METHOD /path`); all when `None`.
    only: Option<&'static str>,
    /// Only the paths this regular expression matches (`Some((true, re))`), or all but those
    /// (`Some((false, re))`).
    paths: Option<(bool, &'static str)>,
}

/// Per operation: responses by status, and the exclusions the hooks logged.
#[derive(Default, Debug)]
struct Tally {
    requests: usize,
    by_status: BTreeMap<u16, usize>,
    excluded: BTreeMap<String, usize>,
}

fn run_schemathesis(base: &str, run: &Run, seed: &str) -> BTreeMap<String, Tally> {
    let dir = std::env::temp_dir().join(format!(
        "activity-log-st-{}-{}",
        run.name,
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let log = dir.join("responses.tsv");
    let root = workspace_root();
    let mut cmd = Command::new(tool("st"));
    cmd.current_dir(&dir)
        .env("SCHEMATHESIS_HOOKS", "hooks")
        .env("PYTHONPATH", root.join("tests/schemathesis"))
        .env("ACTIVITY_LOG_ST_LOG", &log)
        .arg("--config-file")
        .arg(root.join("tests/schemathesis/schemathesis.toml"))
        .args(["run", &root.join("openapi.yaml").display().to_string()])
        .args(["--url", base])
        .args(["--header", &format!("Authorization: Bearer {}", run.token)])
        .args(["--max-examples", &run.examples.to_string()])
        .args(["--phases", "examples,coverage,fuzzing"])
        // Routing of methods the contract does not list belongs to API Gateway (which answers
        // them 404 as the local router does), not to the functions.
        .args(["--exclude-checks", "unsupported_method"])
        .args(["--workers", "1", "--request-timeout", "60", "--seed", seed])
        // No example database: each run starts from its seed alone, and Hypothesis keeps no
        // Pareto front, whose shrinking pass (hypothesis 6.170) can fail with an IndexError of
        // its own in the middle of a run.
        .args(["--generation-database", "none"])
        .args(["--report", "json", "--report-dir"])
        .arg(dir.join("report"))
        .args(["--no-color", "--output-truncate", "true"]);
    if run.expect_unauthenticated {
        cmd.env("ACTIVITY_LOG_ST_EXPECT_UNAUTHENTICATED", "1");
    }
    if let Some((method, path)) = run.only.and_then(|op| op.split_once(' ')) {
        cmd.args(["--include-method", method, "--include-path", path]);
    }
    match run.paths {
        Some((true, re)) => {
            cmd.args(["--include-path-regex", re]);
        }
        Some((false, re)) => {
            cmd.args(["--exclude-path-regex", re]);
        }
        None => {}
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run schemathesis ({}): {e}", tool("st").display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let tally = read_log(&log);
    print_tally(run.name, &tally);
    assert!(
        out.status.success(),
        "schemathesis ({}) found failures:\n{stdout}\n{}",
        run.name,
        String::from_utf8_lossy(&out.stderr)
    );
    tally
}

fn read_log(log: &Path) -> BTreeMap<String, Tally> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut tally: BTreeMap<String, Tally> = BTreeMap::new();
    for line in text.lines() {
        let cols: Vec<&str> = line.split('\t').collect();
        let [kind, operation, status, code] = cols[..] else {
            continue;
        };
        let t = tally.entry(operation.to_owned()).or_default();
        if kind == "response" {
            t.requests += 1;
            *t.by_status.entry(status.parse().unwrap_or(0)).or_default() += 1;
        } else {
            *t.excluded.entry(format!("{kind}:{code}")).or_default() += 1;
        }
    }
    tally
}

fn print_tally(name: &str, tally: &BTreeMap<String, Tally>) {
    eprintln!("schemathesis run `{name}`: requests per operation");
    for op in OPERATIONS.iter().chain(&DESTINATION_OPERATIONS) {
        let t = tally.get(*op);
        eprintln!(
            "  {op:<55} {:>6}  statuses {:?}  excluded {:?}",
            t.map_or(0, |t| t.requests),
            t.map(|t| &t.by_status),
            t.map(|t| &t.excluded)
        );
    }
}

fn examples() -> usize {
    std::env::var("ACTIVITY_LOG_ST_EXAMPLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}

fn seed_value() -> String {
    std::env::var("ACTIVITY_LOG_ST_SEED").unwrap_or_else(|_| "20261126".into())
}

#[tokio::test(flavor = "multi_thread")]
async fn generated_requests_with_a_valid_token_get_contract_answers() {
    let _turn = TURN.lock().await;
    let stack = stack().await;
    let n = examples();
    let run = Run {
        name: "valid-token",
        token: token(
            PARTNER,
            &["GlobalAdmin", "ActivityWriter"],
            "schemathesis",
            3 * 3600,
        ),
        examples: n,
        expect_unauthenticated: false,
        only: None,
        paths: Some((false, DESTINATION_PATHS)),
    };
    let base = stack.base.clone();
    let seed = seed_value();
    let token = run.token.clone();
    let mut tally = {
        let (base, seed) = (base.clone(), seed.clone());
        tokio::task::spawn_blocking(move || run_schemathesis(&base, &run, &seed))
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    };
    // Schemathesis adapts its generation to the answers it gets and may end an operation's
    // fuzzing early (seen: 13 cases of GET /customers/{customerId}/activities in a run of all six,
    // thousands when it runs alone). An operation left short gets a run of its own, so that each
    // still gets its thousand requests.
    top_up(
        &mut tally,
        &OPERATIONS,
        "valid-token-top-up",
        &base,
        &token,
        n,
    )
    .await;
    for op in OPERATIONS {
        let t = tally.get(op);
        let requests = t.map_or(0, |t| t.requests);
        assert!(requests >= n, "{op}: only {requests} requests (want {n})");
        let server_errors: usize = t
            .map(|t| t.by_status.range(500..).map(|(_, c)| c).sum())
            .unwrap_or(0);
        let count = |prefix: &str| -> usize {
            t.map(|t| {
                t.excluded
                    .iter()
                    .filter(|(k, _)| k.starts_with(prefix))
                    .map(|(_, c)| c)
                    .sum()
            })
            .unwrap_or(0)
        };
        let router_500s = count("excluded-local-router:ST101");
        assert!(
            router_500s <= 3,
            "{op}: {router_500s} 500s from the local router"
        );
        let excused = count("excluded-non-utf8:ST101") + router_500s;
        assert_eq!(
            server_errors, excused,
            "{op}: 5xx answers other than the local router's non-UTF-8 ones"
        );
    }
    // No function panicked (the local router's own 500s are excused above only because of this).
    let log = std::fs::read_to_string(&stack.log).unwrap_or_default();
    assert!(
        !log.contains("panicked"),
        "a function panicked; see {}",
        stack.log.display()
    );
    // Reads reached stored data, writes were accepted and exports started: the run was not all 4xx.
    for (op, ok) in [
        ("POST /activities", 201),
        ("GET /activities", 200),
        ("GET /customers/{customerId}/activities", 200),
        ("GET /customers/{customerId}/activities/{activityId}", 200),
        ("POST /exports", 202),
    ] {
        let accepted = tally
            .get(op)
            .and_then(|t| t.by_status.get(&ok))
            .copied()
            .unwrap_or(0);
        assert!(accepted > 0, "{op}: no {ok} in the whole run");
    }
}

/// Gives each of `ops` that `tally` holds short of its cases a run of its own (`name`), and adds
/// what it got.
async fn top_up(
    tally: &mut BTreeMap<String, Tally>,
    ops: &[&'static str],
    name: &'static str,
    base: &str,
    token: &str,
    n: usize,
) {
    for op in ops {
        if tally.get(*op).map_or(0, |t| t.requests) >= cases(op, n) {
            continue;
        }
        let run = Run {
            name,
            token: token.to_owned(),
            examples: n,
            expect_unauthenticated: false,
            only: Some(op),
            paths: None,
        };
        let (base, seed) = (base.to_owned(), seed_value());
        let more = tokio::task::spawn_blocking(move || run_schemathesis(&base, &run, &seed))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        if let Some(extra) = more.get(*op) {
            let t = tally.entry((*op).to_owned()).or_default();
            t.requests += extra.requests;
            for (status, c) in &extra.by_status {
                *t.by_status.entry(*status).or_default() += c;
            }
            for (kind, c) in &extra.excluded {
                *t.excluded.entry(kind.clone()).or_default() += c;
            }
        }
    }
}

/// Server errors of `op` other than the local router's excused ones, and the router's 500s.
fn unexcused_server_errors(tally: &BTreeMap<String, Tally>, op: &str) -> (usize, usize) {
    let t = tally.get(op);
    let server_errors: usize = t
        .map(|t| t.by_status.range(500..).map(|(_, c)| c).sum())
        .unwrap_or(0);
    let count = |prefix: &str| -> usize {
        t.map(|t| {
            t.excluded
                .iter()
                .filter(|(k, _)| k.starts_with(prefix))
                .map(|(_, c)| c)
                .sum()
        })
        .unwrap_or(0)
    };
    let router_500s = count("excluded-local-router:ST101");
    let excused = count("excluded-non-utf8:ST101") + router_500s;
    (server_errors.saturating_sub(excused), router_500s)
}

#[tokio::test(flavor = "multi_thread")]
async fn generated_destination_requests_get_contract_answers() {
    let _turn = TURN.lock().await;
    let stack = stack().await;
    let n = (examples() / 10).max(20);
    let admin = token(PARTNER, &["AccountAdmin"], "schemathesis", 3 * 3600);
    let run = Run {
        name: "destinations",
        token: admin.clone(),
        examples: n,
        expect_unauthenticated: false,
        only: None,
        paths: Some((true, DESTINATION_PATHS)),
    };
    let (base, seed) = (stack.base.clone(), seed_value());
    let mut tally = tokio::task::spawn_blocking(move || run_schemathesis(&base, &run, &seed))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let base = stack.base.clone();
    top_up(
        &mut tally,
        &DESTINATION_OPERATIONS,
        "destinations-top-up",
        &base,
        &admin,
        n,
    )
    .await;
    for op in DESTINATION_OPERATIONS {
        let requests = tally.get(op).map_or(0, |t| t.requests);
        let want = cases(op, n);
        assert!(
            requests >= want,
            "{op}: only {requests} requests (want {want})"
        );
        let (unexcused, router_500s) = unexcused_server_errors(&tally, op);
        assert!(
            router_500s <= 3,
            "{op}: {router_500s} 500s from the local router"
        );
        assert_eq!(
            unexcused, 0,
            "{op}: 5xx answers other than the local router's"
        );
    }
    let created = tally
        .get("POST /destinations")
        .and_then(|t| t.by_status.get(&201))
        .copied()
        .unwrap_or(0);
    assert!(created > 0, "POST /destinations: no 201 in the whole run");
    // However many it created (and deleted), the partner holds at most three.
    let listed: Value = http()
        .get(format!("{}/destinations", stack.base))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap_or_else(|e| panic!("list: {e}"))
        .json()
        .await
        .unwrap_or_default();
    let held = listed["items"].as_array().map_or(0, Vec::len);
    assert!(held <= 3, "{listed}");
    let log = std::fs::read_to_string(&stack.log).unwrap_or_default();
    assert!(
        !log.contains("panicked"),
        "a function panicked; see {}",
        stack.log.display()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn generated_requests_with_bad_tokens_are_all_unauthenticated() {
    let _turn = TURN.lock().await;
    let stack = stack().await;
    let n = (examples() / 10).max(20);
    let expired = token(PARTNER, &["GlobalAdmin"], "late", -3600);
    let forged = forged_token(PARTNER, &["GlobalAdmin", "ActivityWriter"]);
    for (name, bad) in [("expired-token", expired), ("forged-token", forged)] {
        let run = Run {
            name,
            token: bad,
            examples: n,
            expect_unauthenticated: true,
            only: None,
            paths: None,
        };
        let base = stack.base.clone();
        let seed = seed_value();
        let tally = tokio::task::spawn_blocking(move || run_schemathesis(&base, &run, &seed))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        for op in OPERATIONS.iter().chain(&DESTINATION_OPERATIONS) {
            let t = tally.get(*op);
            assert!(
                t.map_or(0, |t| t.requests) >= cases(op, n),
                "{name}: {op} under-tested"
            );
            // The check already failed the run on anything else; this shows it was applied.
            assert!(
                t.is_some_and(|t| t.by_status.keys().all(|s| *s == 401 || *s == 500)),
                "{name} {op}: {:?}",
                t.map(|t| &t.by_status)
            );
        }
    }
}

/// What random generation rarely reaches, each with its expected status and error code.
#[tokio::test(flavor = "multi_thread")]
async fn edge_cases_get_clear_answers() {
    let _turn = TURN.lock().await;
    let stack = stack().await;
    let http = http();
    let base = &stack.base;
    let reader = token(PARTNER, &["BillingAdmin"], "edge", 3600);
    let writer = token(PARTNER, &["ActivityWriter"], "edge", 3600);

    let get = |path: String| {
        let (http, reader) = (http.clone(), reader.clone());
        async move {
            let r = http
                .get(format!("{base}{path}"))
                .bearer_auth(reader)
                .send()
                .await
                .unwrap_or_else(|e| panic!("GET {}: {e}", &path[..path.len().min(80)]));
            (r.status(), r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let post = |path: &'static str, body: Vec<u8>| {
        let (http, writer, reader) = (http.clone(), writer.clone(), reader.clone());
        async move {
            let bearer = if path == "/activities" {
                writer
            } else {
                reader
            };
            let r = http
                .post(format!("{base}{path}"))
                .bearer_auth(bearer)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap_or_else(|e| panic!("POST {path}: {e}"));
            (r.status(), r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let expect =
        |what: &str, (status, body): (StatusCode, Value), want: u16, code: Option<&str>| {
            assert_eq!(status.as_u16(), want, "{what}: {body}");
            if let Some(code) = code {
                assert_eq!(body["error"]["code"], code, "{what}: {body}");
                assert!(
                    body["error"]["message"]
                        .as_str()
                        .is_some_and(|m| !m.is_empty()),
                    "{what}: {body}"
                );
            }
        };

    // Limits at and past their bounds.
    for (limit, want, code) in [
        ("1", 200, None),
        ("1000", 200, None),
        ("0", 400, Some("InvalidLimit")),
        ("1001", 400, Some("InvalidLimit")),
        ("-1", 400, Some("InvalidLimit")),
        ("1e3", 400, Some("InvalidLimit")),
        ("18446744073709551616", 400, Some("InvalidLimit")),
    ] {
        let r = get(format!("/activities?limit={limit}")).await;
        expect(&format!("limit={limit}"), r, want, code);
    }
    // The feed's position and page size at and past their bounds.
    for (q, want, code) in [
        ("after=0&limit=1", 200, None),
        ("after=9007199254740991", 200, None),
        ("after=9007199254740992", 400, Some("InvalidParameter")),
        ("after=-1", 400, Some("InvalidParameter")),
        ("after=1.5", 400, Some("InvalidParameter")),
        ("after=", 400, Some("InvalidParameter")),
        ("after=1&after=2", 400, Some("InvalidParameter")),
        ("limit=1001", 400, Some("InvalidLimit")),
        ("limit=0", 400, Some("InvalidLimit")),
        ("cursor=abc", 400, Some("UnknownParameter")),
    ] {
        let r = get(format!("/feed?{q}")).await;
        expect(&format!("/feed?{q}"), r, want, code);
    }
    // Odd dates: leap second, year 0, far offsets, impossible days, whitespace.
    for (q, want, code) in [
        ("from=2016-12-31T23:59:60Z", 200, None),
        (
            "from=2026-11-01T00:00:00%2B14:00&to=2026-11-25T23:59:59-12:00",
            200,
            None,
        ),
        ("from=2024-02-29", 200, None),
        ("from=0000-01-01", 400, Some("InvalidDateRange")),
        ("from=1969-12-31T23:59:59Z", 400, Some("InvalidDateRange")),
        ("to=10000-01-01", 400, Some("InvalidDateRange")),
        ("from=2026-02-29", 400, Some("InvalidDateRange")),
        ("from=2026-13-01", 400, Some("InvalidDateRange")),
        ("from=2026-11-25T24:00:00Z", 400, Some("InvalidDateRange")),
        ("from=%202026-11-01", 400, Some("InvalidDateRange")),
        (
            "from=2026-11-25&to=2026-11-24",
            400,
            Some("InvalidDateRange"),
        ),
        ("cursor=..", 400, Some("InvalidCursor")),
        ("bogus=1", 400, Some("UnknownParameter")),
    ] {
        let r = get(format!("/activities?{q}")).await;
        expect(q, r, want, code);
    }
    // Unicode and huge strings in paths and filters.
    let huge = "x".repeat(100_000);
    for (path, want, code) in [
        (
            "/customers/%E5%8F%B0%E7%81%A3%E5%AE%A2%E6%88%B6/activities".to_owned(),
            200,
            None,
        ),
        (
            "/customers/%F0%9F%91%8D%E2%80%8F%D7%A2/activities".to_owned(),
            200,
            None,
        ),
        (
            "/customers/a%2Fb/activities".to_owned(),
            400,
            Some("InvalidParameter"),
        ),
        (
            "/customers/a%00b/activities".to_owned(),
            400,
            Some("InvalidParameter"),
        ),
        (
            "/customers/contoso/activities/order-4711".to_owned(),
            200,
            None,
        ),
        (
            "/customers/contoso/activities/no%20such".to_owned(),
            404,
            Some("NotFound"),
        ),
        (
            format!("/customers/{}/activities", "c".repeat(129)),
            400,
            Some("InvalidParameter"),
        ),
        (
            format!("/activities?action={}", "a".repeat(257)),
            400,
            Some("InvalidParameter"),
        ),
        // Within the URL length API Gateway accepts (a longer URL never reaches a function).
        (
            format!("/activities?cursor={}", "x".repeat(6000)),
            400,
            Some("InvalidCursor"),
        ),
        (
            format!("/exports/{}", "e".repeat(300)),
            404,
            Some("NotFound"),
        ),
    ] {
        let what = path.chars().take(80).collect::<String>();
        expect(&what, get(path).await, want, code);
    }

    // Bodies: deep JSON, huge strings, over-size details, wrong types, not JSON at all.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let deep_details = {
        let mut d = json!(1);
        for _ in 0..200 {
            d = json!({ "d": d });
        }
        json!({"customerId": "c", "customerName": "n", "action": "a", "partnerUser": "u", "details": d})
    };
    let one = |extra: Value| {
        let mut a = json!({"customerId": "edge", "customerName": "Edge Co.", "action": "probed",
                           "partnerUser": "eve@partner.example"});
        if let (Some(a), Some(extra)) = (a.as_object_mut(), extra.as_object()) {
            a.extend(extra.clone());
        }
        a.to_string().into_bytes()
    };
    let big_details = json!({"customerId": "c", "customerName": "n", "action": "a",
                             "partnerUser": "u", "details": {"blob": "x".repeat(1024 * 1024)}});
    for (what, path, body, want, code) in [
        (
            "deep array",
            "/activities",
            deep.clone().into_bytes(),
            400,
            Some("InvalidBody"),
        ),
        (
            "deep details",
            "/activities",
            deep_details.to_string().into_bytes(),
            400,
            None,
        ),
        (
            "deep export body",
            "/exports",
            format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes(),
            400,
            Some("InvalidBody"),
        ),
        (
            "export body over 64 KiB",
            "/exports",
            deep.into_bytes(),
            413,
            Some("PayloadTooLarge"),
        ),
        (
            "huge name",
            "/activities",
            one(json!({"customerName": huge})),
            400,
            Some("ValidationFailed"),
        ),
        (
            "details over 1 MiB",
            "/activities",
            big_details.to_string().into_bytes(),
            413,
            Some("PayloadTooLarge"),
        ),
        (
            "101 items",
            "/activities",
            Value::Array(vec![json!({}); 101]).to_string().into_bytes(),
            400,
            None,
        ),
        ("empty array", "/activities", b"[]".to_vec(), 400, None),
        (
            "not JSON",
            "/activities",
            b"customerId=c".to_vec(),
            400,
            Some("InvalidBody"),
        ),
        (
            "number id",
            "/activities",
            one(json!({"id": 7})),
            400,
            Some("ValidationFailed"),
        ),
        (
            "year 0",
            "/activities",
            one(json!({"occurredAt": "0000-01-01T00:00:00Z"})),
            400,
            Some("ValidationFailed"),
        ),
        (
            "leap second",
            "/activities",
            one(json!({"occurredAt": leap_second_today()})),
            201,
            None,
        ),
        (
            "unicode",
            "/activities",
            one(json!({"id": "unicode-1", "customerName": "台灣 👍 עברית \u{202e}"})),
            201,
            None,
        ),
        (
            "bad zone",
            "/exports",
            br#"{"timeZone":"Mars/Olympus"}"#.to_vec(),
            400,
            Some("InvalidParameter"),
        ),
        (
            "zone with offset",
            "/exports",
            br#"{"timeZone":"Asia/Kolkata","from":"2026-11-01"}"#.to_vec(),
            202,
            None,
        ),
    ] {
        expect(what, post(path, body).await, want, code);
    }

    // Everything above left the stack answering normally.
    wait_until(
        "the stack after the edge cases",
        Duration::from_secs(30),
        || {
            let get = &get;
            async move { get("/activities?limit=1".into()).await.0 == 200 }
        },
    )
    .await;
}

/// A leap-second timestamp within the accepted window: 23:59:60 of yesterday (UTC).
fn leap_second_today() -> String {
    let yesterday = chrono::Utc::now().date_naive() - chrono::TimeDelta::days(1);
    format!("{yesterday}T23:59:60Z")
}
