//! Handler logic against the in-memory store (the emulator-backed tests live in `tests/`).

use lambda_http::{Body, Response};
use serde_json::{Value, json};

use super::{query, record};
use crate::config::Config;
use crate::http::cursor::CursorKeys;
use crate::store::Signer as _;
use crate::store::memory::MemoryStore;
use crate::testing::ApiRequest;
use crate::testing::fixtures::{self, activity, json_body as body, minutes_ago as recent};

fn config() -> Config {
    Config {
        cursor_keys: Some(CursorKeys::new(
            b"unit-test-cursor-key-unit-test-cursor".to_vec(),
            [],
        )),
        details_inline_max_bytes: 64,
        ..fixtures::config()
    }
}

async fn post(store: &MemoryStore, partner: &str, payload: &Value) -> Response<Body> {
    fixtures::record(&config(), store, store, partner, payload).await
}

async fn get(store: &MemoryStore, req: ApiRequest) -> Response<Body> {
    query::handle(&config(), store, store, req.build()).await
}

#[tokio::test]
async fn recording_needs_a_writer_identity() {
    let store = MemoryStore::default();
    let payload = activity("c1", "a1", &recent(1)).to_string();
    let none = record::handle(
        &config(),
        &store,
        &store,
        ApiRequest::post("/activities", payload.clone()).build(),
    )
    .await;
    assert_eq!(none.status(), 401);
    assert_eq!(body(&none)["error"]["code"], "Unauthenticated");
    let reader = ApiRequest::post("/activities", payload)
        .caller("p1", &["GlobalAdmin"])
        .build();
    assert_eq!(
        record::handle(&config(), &store, &store, reader)
            .await
            .status(),
        403
    );
}

#[tokio::test]
async fn reading_needs_one_of_the_six_roles() {
    let store = MemoryStore::default();
    let r = get(
        &store,
        ApiRequest::get("/activities").caller("p1", &["ActivityWriter"]),
    )
    .await;
    assert_eq!(r.status(), 403);
    let r = get(
        &store,
        ApiRequest::get("/activities").claims(&[
            ("partner_id", "p1"),
            ("sub", "u"),
            ("roles", "HelpdeskAgent"),
        ]),
    )
    .await;
    assert_eq!(r.status(), 200);
    let r = get(
        &store,
        ApiRequest::get("/activities").claims(&[("sub", "u"), ("roles", "GlobalAdmin")]),
    )
    .await;
    assert_eq!(r.status(), 401, "no tenant claim");
}

#[tokio::test]
async fn retry_returns_the_stored_item_and_a_changed_retry_conflicts() {
    let store = MemoryStore::default();
    let at = recent(3);
    let first = post(&store, "p1", &activity("c1", "a1", &at)).await;
    assert_eq!(first.status(), 201);
    let again = post(&store, "p1", &activity("c1", "a1", &at)).await;
    assert_eq!(again.status(), 201);
    assert_eq!(
        body(&again)["items"][0]["recordedAt"],
        body(&first)["items"][0]["recordedAt"]
    );
    let changed = post(&store, "p1", &activity("c1", "a1", &recent(2))).await;
    assert_eq!(changed.status(), 409);
    assert_eq!(body(&changed)["error"]["code"], "IdempotencyConflict");
}

/// No function deletes details (IAM and code): the object uploaded for a refused batch stays,
/// unreferenced, and the corrected retry writes to the same content-addressed key.
#[tokio::test]
async fn a_conflict_in_a_batch_writes_nothing_and_its_details_upload_serves_the_retry() {
    let store = MemoryStore::default();
    assert_eq!(
        post(&store, "p1", &activity("c1", "a1", &recent(3)))
            .await
            .status(),
        201
    );
    let mut big = activity("c1", "a2", &recent(3));
    big["details"] = json!({"products": vec!["x"; 100]});
    let clash = activity("c1", "a1", &recent(9));
    assert_eq!(
        post(&store, "p1", &json!([big.clone(), clash]))
            .await
            .status(),
        409
    );
    assert_eq!(store.blob_count(), 1, "the upload stays, deleted by no one");
    let r = get(
        &store,
        ApiRequest::get("/customers/{customerId}/activities/{activityId}")
            .path_param("customerId", "c1")
            .path_param("activityId", "a2")
            .caller("p1", &["GlobalAdmin"]),
    )
    .await;
    assert_eq!(r.status(), 404);
    assert_eq!(post(&store, "p1", &big).await.status(), 201);
    assert_eq!(
        store.blob_count(),
        1,
        "the retry's details have the same key"
    );
}

/// The handlers' metrics, as CloudWatch reads them (Embedded Metric Format): names, units and
/// dimensions (function and outcome, never the tenant), and the values of what happened.
#[tokio::test]
async fn handlers_publish_their_metrics_in_embedded_metric_format() {
    use crate::metrics;
    metrics::set_function("record-activity");
    let store = MemoryStore::default();
    let captured = metrics::capture();
    let batch = json!([
        activity("c1", "m1", &recent(3)),
        activity("c1", "m2", &recent(2))
    ]);
    assert_eq!(post(&store, "p1", &batch).await.status(), 201);
    let mut bad = activity("c1", "m3", &recent(1));
    bad["status"] = json!("maybe");
    assert_eq!(post(&store, "p1", &bad).await.status(), 400);
    let list = get(
        &store,
        ApiRequest::get("/customers/{customerId}/activities")
            .path_param("customerId", "c1")
            .caller("p1", &["GlobalAdmin"]),
    )
    .await;
    assert_eq!(list.status(), 200);

    let lines = captured.take();
    let metric = |name: &str| -> Vec<&Value> {
        lines
            .iter()
            .filter(|l| {
                l["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                    .as_array()
                    .is_some_and(|ms| ms.iter().any(|m| m["Name"] == name))
            })
            .collect()
    };
    for line in &lines {
        let directive = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], metrics::DEFAULT_NAMESPACE);
        assert_eq!(
            directive["Dimensions"],
            json!([["Function"], ["Function", "Outcome"]]),
            "{line}"
        );
        assert_eq!(line["Function"], "record-activity");
        for m in directive["Metrics"].as_array().into_iter().flatten() {
            let name = m["Name"].as_str().unwrap_or_default();
            assert!(
                metrics::METRICS.iter().any(|known| known.name == name),
                "{name} is not in metrics::METRICS"
            );
            assert!(line[name].is_number(), "{line}");
        }
    }
    let recorded = metric("ActivitiesRecorded");
    assert_eq!(recorded.len(), 1, "{lines:?}");
    assert_eq!(recorded[0]["ActivitiesRecorded"], 2.0);
    assert_eq!(recorded[0]["Outcome"], "recorded");
    assert_eq!(recorded[0]["partner"], "p1", "the tenant is in the line");
    let refused = metric("RequestsRefused");
    assert_eq!(refused.len(), 1, "{lines:?}");
    assert_eq!(refused[0]["Outcome"], "ValidationFailed");
    assert_eq!(refused[0]["RequestsRefused"], 1.0);
    let read = metric("QueryItemsReturned");
    assert_eq!(read.len(), 1, "{lines:?}");
    assert_eq!(read[0]["QueryItemsReturned"], 2.0);
    assert_eq!(read[0]["Outcome"], "list");
}

#[tokio::test]
async fn large_details_are_kept_outside_the_record_and_returned_whole_by_detail() {
    let store = MemoryStore::default();
    let mut a = activity("c1", "big", &recent(1));
    let details = json!({"order": (0..50).map(|i| json!({"sku": format!("SKU-{i}"), "qty": i})).collect::<Vec<_>>()});
    a["details"] = details.clone();
    assert_eq!(post(&store, "p1", &a).await.status(), 201);
    assert_eq!(store.blob_count(), 1);
    let list = body(
        &get(
            &store,
            ApiRequest::get("/customers/{customerId}/activities")
                .path_param("customerId", "c1")
                .caller("p1", &["SalesAgent"]),
        )
        .await,
    );
    assert_eq!(list["items"][0]["details"], Value::Null);
    assert_eq!(list["items"][0]["detailsIncluded"], false);
    let one = body(
        &get(
            &store,
            ApiRequest::get("/customers/{customerId}/activities/{activityId}")
                .path_param("customerId", "c1")
                .path_param("activityId", "big")
                .caller("p1", &["SalesAgent"]),
        )
        .await,
    );
    assert_eq!(one["details"], details);
    assert_eq!(one["detailsIncluded"], true);
}

#[tokio::test]
async fn paging_with_filters_across_small_storage_pages_has_no_gaps_or_duplicates() {
    let store = MemoryStore::with_page_size(7);
    let mut expected = Vec::new();
    let batch: Vec<Value> = (0..60)
        .map(|i| {
            let mut a = activity(
                if i % 2 == 0 { "c1" } else { "c2" },
                &format!("a{i:03}"),
                &recent(i),
            );
            if i % 3 == 0 {
                a["status"] = json!("failed");
                expected.push(format!("a{i:03}"));
            }
            a
        })
        .collect();
    assert_eq!(post(&store, "p1", &Value::Array(batch)).await.status(), 201);

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut req = ApiRequest::get("/activities")
            .query("status", "failed")
            .query("limit", "4")
            .caller("p1", &["GlobalAdmin"]);
        if let Some(c) = &cursor {
            req = req.query("cursor", c);
        }
        let page = body(&get(&store, req).await);
        let items = page["items"].as_array().cloned().unwrap_or_default();
        assert!(items.len() <= 4);
        seen.extend(
            items
                .iter()
                .map(|i| i["id"].as_str().unwrap_or_default().to_owned()),
        );
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, expected, "newest first, each exactly once");
}

#[tokio::test]
async fn a_cursor_only_continues_its_own_query() {
    let store = MemoryStore::default();
    let batch: Vec<Value> = (0..5)
        .map(|i| activity("c1", &format!("a{i}"), &recent(i)))
        .collect();
    post(&store, "p1", &Value::Array(batch)).await;
    let first = body(
        &get(
            &store,
            ApiRequest::get("/activities")
                .query("limit", "2")
                .caller("p1", &["GlobalAdmin"]),
        )
        .await,
    );
    let cursor = first["nextCursor"].as_str().unwrap_or_default().to_owned();
    assert!(!cursor.is_empty());
    let other_query = get(
        &store,
        ApiRequest::get("/activities")
            .query("limit", "2")
            .query("action", "x")
            .query("cursor", &cursor)
            .caller("p1", &["GlobalAdmin"]),
    )
    .await;
    assert_eq!(other_query.status(), 400);
    assert_eq!(body(&other_query)["error"]["code"], "InvalidCursor");
    let other_tenant = get(
        &store,
        ApiRequest::get("/activities")
            .query("limit", "2")
            .query("cursor", &cursor)
            .caller("p2", &["GlobalAdmin"]),
    )
    .await;
    assert_eq!(other_tenant.status(), 400);
}

#[tokio::test]
async fn bad_query_parameters_get_clear_errors() {
    let store = MemoryStore::default();
    for (name, value, code) in [
        ("limit", "0", "InvalidLimit"),
        ("limit", "1001", "InvalidLimit"),
        ("limit", "ten", "InvalidLimit"),
        ("from", "yesterday", "InvalidDateRange"),
        ("status", "done", "InvalidParameter"),
        ("form", "2026-01-01", "UnknownParameter"),
        ("cursor", "garbage", "InvalidCursor"),
    ] {
        let r = get(
            &store,
            ApiRequest::get("/activities")
                .query(name, value)
                .caller("p1", &["GlobalAdmin"]),
        )
        .await;
        assert_eq!(r.status(), 400, "{name}={value}");
        assert_eq!(body(&r)["error"]["code"], code, "{name}={value}");
    }
    let r = get(
        &store,
        ApiRequest::get("/activities")
            .query("from", "2026-11-02")
            .query("to", "2026-11-01")
            .caller("p1", &["GlobalAdmin"]),
    )
    .await;
    assert_eq!(body(&r)["error"]["code"], "InvalidDateRange");
}

#[tokio::test]
async fn customer_ids_in_paths_are_decoded_exactly_once() {
    let store = MemoryStore::default();
    for customer in ["客戶 %41", "a+b"] {
        assert_eq!(
            post(&store, "p1", &activity(customer, "x1", &recent(1)))
                .await
                .status(),
            201
        );
        let r = get(
            &store,
            ApiRequest::get("/customers/{customerId}/activities/{activityId}")
                .path_param("customerId", customer)
                .path_param("activityId", "x1")
                .caller("p1", &["AdminAgent"]),
        )
        .await;
        assert_eq!(r.status(), 200, "{customer}");
        assert_eq!(body(&r)["customerId"], customer);
    }
    let r = get(
        &store,
        ApiRequest::get("/customers/{customerId}/activities")
            .path_param("customerId", "客戶 A")
            .caller("p1", &["AdminAgent"]),
    )
    .await;
    assert_eq!(body(&r)["items"], json!([]), "%41 is not A");
}

/// API Gateway hands a body that is not UTF-8 over base64-encoded; it is refused as JSON would be.
#[tokio::test]
async fn a_body_that_is_not_utf8_is_a_400() {
    use base64::Engine as _;
    let store = MemoryStore::default();
    let mut event = ApiRequest::post("/activities", "")
        .caller("p1", &["ActivityWriter"])
        .event();
    event["body"] = json!(base64::engine::general_purpose::STANDARD.encode(b"v\xff\nT\xfe"));
    event["isBase64Encoded"] = json!(true);
    let req = lambda_http::request::from_str(&event.to_string()).unwrap();
    assert!(matches!(req.body(), Body::Binary(_)));
    let r = record::handle(&config(), &store, &store, req).await;
    assert_eq!(r.status(), 400);
    assert_eq!(body(&r)["error"]["code"], "InvalidBody");
    let listed = get(
        &store,
        ApiRequest::get("/activities").caller("p1", &["BillingAdmin"]),
    )
    .await;
    assert_eq!(body(&listed)["items"], json!([]));
}

/// The activities of a record response, as the API shows them.
fn items(r: &Response<Body>) -> Vec<Value> {
    body(r)["items"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn each_customer_s_activities_are_chained_in_recording_order_and_credit_the_writer() {
    let store = MemoryStore::default();
    let batch = json!([
        activity("c1", "a1", &recent(5)),
        activity("c2", "b1", &recent(5)),
        activity("c1", "a2", &recent(9)),
    ]);
    let first = post(&store, "p1", &batch).await;
    assert_eq!(first.status(), 201, "{}", body(&first));
    let first = items(&first);
    let seq = |v: &Value| v["sequence"].as_u64().unwrap_or(0);
    assert_eq!(first.iter().map(seq).collect::<Vec<_>>(), [1, 1, 2]);
    assert_eq!(first[0]["previousHash"], crate::domain::chain::GENESIS_HASH);
    assert_eq!(first[2]["previousHash"], first[0]["hash"]);
    assert!(first.iter().all(|a| a["recordedBy"] == "user-1"));

    // Each row's hash is the one its record gives, recomputed from what the API shows.
    for row in &first {
        let chained = crate::domain::chain::ChainRow::from_row("p1", row.as_object().unwrap())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            chained
                .record
                .hash(&chained.link.previous_hash, chained.link.sequence),
            Ok(chained.link.hash.clone())
        );
    }

    // A replay answers with what is stored and does not move the chain.
    let again = post(&store, "p1", &batch).await;
    assert_eq!(again.status(), 201);
    assert_eq!(items(&again), first);
    let a3 = activity("c1", "a3", &recent(1));
    let next = items(&post(&store, "p1", &a3).await);
    assert_eq!(seq(&next[0]), 3);
    assert_eq!(next[0]["previousHash"], first[2]["hash"]);

    // A replay with one new activity chains only the new one.
    let mixed = post(&store, "p1", &json!([a3, activity("c1", "a4", &recent(1))])).await;
    assert_eq!(items(&mixed).iter().map(seq).collect::<Vec<_>>(), [3, 4]);
}

#[tokio::test]
async fn a_batch_over_one_transaction_is_refused_and_says_why() {
    let store = MemoryStore::default();
    let batch: Vec<Value> = (0..60)
        .map(|i| activity(&format!("c{i}"), "a1", &recent(1)))
        .collect();
    let r = post(&store, "p1", &Value::Array(batch)).await;
    assert_eq!(r.status(), 400);
    let error = &body(&r)["error"];
    assert_eq!(error["code"], "BatchTooLarge");
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("needs 120 (60 activities, 60 customers)")),
        "{error}"
    );
    let listed = get(
        &store,
        ApiRequest::get("/activities").caller("p1", &["GlobalAdmin"]),
    )
    .await;
    assert_eq!(body(&listed)["items"], json!([]), "nothing was written");
}

#[tokio::test]
async fn a_checkpoint_signs_the_current_head_once_and_the_public_key_checks_it() {
    use crate::domain::integrity::{Checkpoint, PublicKey};
    use crate::testing::doubles::LocalSigner;

    let store = MemoryStore::default();
    let signer = LocalSigner::new("local-key", 1);
    let settings = config();
    let checkpoint = |customer: &str| {
        let req = ApiRequest::get("/customers/{customerId}/checkpoint")
            .path_param("customerId", customer)
            .caller("p1", &["HelpdeskAgent"])
            .build();
        super::integrity::handle(&settings, &store, &store, &signer, req)
    };
    let none = checkpoint("c1").await;
    assert_eq!(none.status(), 404, "{}", body(&none));

    let recorded = items(
        &post(
            &store,
            "p1",
            &json!([
                activity("c1", "a1", &recent(2)),
                activity("c1", "a2", &recent(1))
            ]),
        )
        .await,
    );
    let first = checkpoint("c1").await;
    assert_eq!(first.status(), 200, "{}", body(&first));
    let cp: Checkpoint = serde_json::from_value(body(&first)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (cp.partner_id.as_str(), cp.customer_id.as_str(), cp.sequence),
        ("p1", "c1", 2)
    );
    assert_eq!(json!(cp.hash), recorded[1]["hash"]);
    assert_eq!(
        body(&checkpoint("c1").await),
        body(&first),
        "kept, not signed again"
    );
    assert_eq!(signer.signatures(), 1);

    let key_req = ApiRequest::get("/integrity/public-key")
        .caller("p1", &["SalesAgent"])
        .build();
    let key: PublicKey = serde_json::from_value(body(
        &super::integrity::handle(&settings, &store, &store, &signer, key_req).await,
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(key.pem.starts_with("-----BEGIN PUBLIC KEY-----"));
    assert_eq!(key.jwk["crv"], "P-256");
    let message = cp.message().unwrap_or_else(|e| panic!("{e}"));
    assert!(key.verifies(&message, &cp.signature));
    let mut forged = cp.clone();
    forged.sequence = 1;
    assert!(!key.verifies(&forged.message().unwrap_or_default(), &cp.signature));
    let other = LocalSigner::new("other", 2);
    let other_key = other.public_key().await.unwrap_or_else(|e| panic!("{e}"));
    assert!(!other_key.verifies(&message, &cp.signature));

    // The head moves: a new checkpoint; another tenant's customer of the same id has none.
    post(&store, "p1", &activity("c1", "a3", &recent(1))).await;
    assert_eq!(body(&checkpoint("c1").await)["sequence"], 3);
    assert_eq!(signer.signatures(), 2);
    let theirs = ApiRequest::get("/customers/{customerId}/checkpoint")
        .path_param("customerId", "c1")
        .caller("p2", &["GlobalAdmin"])
        .build();
    assert_eq!(
        super::integrity::handle(&settings, &store, &store, &signer, theirs)
            .await
            .status(),
        404
    );
    // Writers cannot read checkpoints.
    let writer = ApiRequest::get("/integrity/public-key")
        .caller("p1", &["ActivityWriter"])
        .build();
    assert_eq!(
        super::integrity::handle(&settings, &store, &store, &signer, writer)
            .await
            .status(),
        403
    );
}

/// The anchor store and the chain index of a memory store, counting the reads and writes a
/// checkpoint request makes.
#[derive(Default)]
struct Counted {
    store: MemoryStore,
    lists: std::sync::atomic::AtomicUsize,
    queries: std::sync::atomic::AtomicUsize,
    puts: std::sync::atomic::AtomicUsize,
}

impl Counted {
    fn counts(&self) -> (usize, usize, usize) {
        use std::sync::atomic::Ordering::SeqCst;
        (
            self.lists.swap(0, SeqCst),
            self.queries.swap(0, SeqCst),
            self.puts.swap(0, SeqCst),
        )
    }
}

impl crate::store::Anchors for Counted {
    async fn first_key(&self, prefix: &str) -> Result<Option<String>, crate::store::StoreError> {
        self.lists.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.store.first_key(prefix).await
    }
    async fn put_new(&self, key: &str, body: Vec<u8>) -> Result<bool, crate::store::StoreError> {
        self.puts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.store.put_new(key, body).await
    }
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, crate::store::StoreError> {
        self.store.get(key).await
    }
}

impl crate::store::ChainIndex for Counted {
    async fn links_between(
        &self,
        partner: &crate::domain::PartnerId,
        customer: &crate::domain::CustomerId,
        from: u64,
        to: u64,
    ) -> Result<crate::store::ChainLinks, crate::store::StoreError> {
        self.queries
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.store.links_between(partner, customer, from, to).await
    }
}

/// The checkpoint request's budget: one listing of the anchors and one query of the chain's
/// links, then one signature and one new anchor only when the head moved.
#[tokio::test]
async fn a_checkpoint_costs_one_listing_one_query_and_a_signature_only_when_the_head_moved() {
    use crate::store::{Anchors as _, ChainIndex as _};
    use crate::testing::doubles::LocalSigner;

    let counted = Counted::default();
    let signer = LocalSigner::new("local-key", 1);
    let settings = config();
    let checkpoint = || {
        let req = ApiRequest::get("/customers/{customerId}/checkpoint")
            .path_param("customerId", "c1")
            .caller("p1", &["HelpdeskAgent"])
            .build();
        super::integrity::handle(&settings, &counted, &counted, &signer, req)
    };
    let record = |id: &'static str| {
        let store = &counted.store;
        async move {
            post(store, "p1", &json!([activity("c1", id, &recent(1))])).await;
        }
    };
    record("a1").await;
    assert_eq!(checkpoint().await.status(), 200);
    assert_eq!((counted.counts(), signer.signatures()), ((1, 1, 1), 1));
    assert_eq!(checkpoint().await.status(), 200);
    assert_eq!((counted.counts(), signer.signatures()), ((1, 1, 0), 1));
    record("a2").await;
    assert_eq!(checkpoint().await.status(), 200);
    assert_eq!((counted.counts(), signer.signatures()), ((1, 1, 1), 2));
    // Both anchors are there, the latest listed first.
    let latest = counted
        .store
        .first_key("anchors/p1/c1/")
        .await
        .unwrap_or_default()
        .unwrap_or_default();
    let links = counted
        .store
        .links_between(
            &crate::domain::PartnerId::parse("p1").unwrap_or_else(|e| panic!("{e}")),
            &crate::domain::CustomerId::parse("c1").unwrap_or_else(|e| panic!("{e}")),
            1,
            u64::MAX,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let second = links
        .links
        .iter()
        .find(|l| l.sequence == 2)
        .map(|l| l.hash.clone())
        .unwrap_or_else(|| panic!("no link at 2: {links:?}"));
    assert!(latest.contains(&second), "{latest}");
}

/// A scheduled seal anchors every head that moved under one signature, names the seal before
/// it, seals nothing twice, and the checkpoint path then starts from the sealed head.
#[tokio::test]
async fn a_seal_anchors_the_moved_heads_under_one_signature() {
    use super::seal::{SealPorts, seal};
    use crate::domain::integrity::Seal;
    use crate::store::Anchors as _;
    use crate::testing::doubles::LocalSigner;

    let counted = Counted::default();
    let signer = LocalSigner::new("local-key", 1);
    let ports = SealPorts {
        heads: &counted.store,
        chains: &counted,
        anchors: &counted,
        signer: &signer,
    };
    let batch: Vec<Value> = (0..40)
        .map(|i| activity(&format!("c{i}"), &format!("a{i}"), &recent(1)))
        .collect();
    post(&counted.store, "p1", &Value::Array(batch)).await;
    let now = chrono::Utc::now();
    let first = seal(&ports, now, 365)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (first.seal, first.looked_at, first.sealed, first.refused),
        (Some(1), 40, 40, 0)
    );
    assert_eq!(signer.signatures(), 1, "one signature for 40 customers");
    // Per customer: its latest anchor listed, its links read, its anchor written.
    let (lists, queries, puts) = counted.counts();
    assert_eq!((lists, queries, puts), (1 + 40, 40, 1 + 40));

    // Nothing moved: the heads are looked at again (the look-back) and nothing is signed.
    let again = seal(&ports, now + chrono::TimeDelta::seconds(1), 365)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((again.seal, again.already_anchored), (None, 40));
    assert_eq!(signer.signatures(), 1);

    post(
        &counted.store,
        "p1",
        &json!([activity("c7", "a7-2", &recent(0))]),
    )
    .await;
    let second = seal(&ports, chrono::Utc::now(), 365)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((second.seal, second.sealed), (Some(2), 1));
    let read = |n: u64| {
        let key = crate::domain::integrity::seal::key(n);
        let store = &counted.store;
        async move {
            let body = store.get(&key).await.ok().flatten().unwrap_or_default();
            serde_json::from_slice::<Seal>(&body).unwrap_or_else(|e| panic!("{key}: {e}"))
        }
    };
    let (one, two) = (read(1).await, read(2).await);
    assert_eq!(two.previous_hash, one.hash().unwrap_or_default());
    assert_eq!(
        (two.heads[0].customer_id.as_str(), two.heads[0].sequence),
        ("c7", 2)
    );

    // A sealed customer's checkpoint: the sealed head, signed now (one listing, one query).
    counted.counts();
    let req = ApiRequest::get("/customers/{customerId}/checkpoint")
        .path_param("customerId", "c3")
        .caller("p1", &["HelpdeskAgent"])
        .build();
    let answer = super::integrity::handle(&config(), &counted, &counted, &signer, req).await;
    assert_eq!(answer.status(), 200);
    assert_eq!(body(&answer)["sequence"], 1);
    assert_eq!(counted.counts(), (1, 1, 1));
}

/// `GET /customers/{id}/chain`: the links the log holds between two sequences, in order, the
/// tenant's only; a span the route does not take is a 400 with a code.
#[tokio::test]
async fn the_chain_route_gives_the_links_between_two_sequences() {
    use crate::testing::doubles::LocalSigner;

    let store = MemoryStore::default();
    let signer = LocalSigner::new("local-key", 1);
    let settings = config();
    let rows: Vec<Value> = (1..=5)
        .map(|n| activity("c1", &format!("a{n}"), &recent(10 - n)))
        .collect();
    let recorded = items(&post(&store, "p1", &Value::Array(rows)).await);
    let chain = |partner: &str, query: &[(&str, &str)]| {
        let mut req = ApiRequest::get("/customers/{customerId}/chain")
            .path_param("customerId", "c1")
            .caller(partner, &["HelpdeskAgent"]);
        for (name, value) in query {
            req = req.query(name, value);
        }
        super::integrity::handle(&settings, &store, &store, &signer, req.build())
    };
    let answer = chain("p1", &[("from", "2"), ("to", "4")]).await;
    assert_eq!(answer.status(), 200, "{}", body(&answer));
    let got = body(&answer);
    assert_eq!(
        (&got["from"], &got["to"], &got["customerId"]),
        (&json!(2), &json!(4), &json!("c1"))
    );
    let links = got["links"].as_array().cloned().unwrap_or_default();
    let sequences: Vec<&Value> = links.iter().map(|l| &l["sequence"]).collect();
    assert_eq!(sequences, [&json!(2), &json!(3), &json!(4)]);
    for l in &links {
        let n = l["sequence"].as_u64().unwrap_or(0) as usize;
        assert_eq!(l["hash"], recorded[n - 1]["hash"]);
        assert_eq!(l["previousHash"], recorded[n - 1]["previousHash"]);
    }
    // Another tenant's customer of the same id: none of p1's links.
    let theirs = body(&chain("p2", &[("from", "1"), ("to", "5")]).await);
    assert_eq!(theirs["links"], json!([]));
    for (query, code) in [
        (vec![("from", "2")], "InvalidParameter"),
        (vec![("from", "0"), ("to", "3")], "InvalidParameter"),
        (vec![("from", "4"), ("to", "3")], "InvalidSequenceRange"),
        (vec![("from", "1"), ("to", "1001")], "InvalidSequenceRange"),
        (vec![("from", "x"), ("to", "3")], "InvalidParameter"),
        (
            vec![("from", "9007199254740992"), ("to", "9007199254740992")],
            "InvalidParameter",
        ),
        (
            vec![("from", "1"), ("to", "3"), ("limit", "3")],
            "UnknownParameter",
        ),
    ] {
        let refused = chain("p1", &query).await;
        assert_eq!(refused.status(), 400, "{query:?}");
        assert_eq!(body(&refused)["error"]["code"], code, "{query:?}");
    }
    let widest = chain("p1", &[("from", "1"), ("to", "1000")]).await;
    assert_eq!(widest.status(), 200);
}
