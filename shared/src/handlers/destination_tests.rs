//! The destination routes against the in-memory store: validation, the limit, versions, the
//! record each change leaves, roles and tenants.

use serde_json::{Value, json};

use super::*;
use crate::domain::{ActivityQuery, DateRange, PartnerId};
use crate::store::ActivityReader as _;
use crate::store::memory::MemoryStore;
use crate::testing::ApiRequest;
use crate::testing::fixtures::{self, json_body};

const ADMIN: &[&str] = &["AccountAdmin"];

fn hook(name: &str) -> Value {
    json!({"type": "https", "name": name, "url": "https://siem.example.com/hooks/activity"})
}

async fn call(store: &MemoryStore, req: ApiRequest) -> (u16, Value, Option<String>) {
    let r = handle(&fixtures::config(), store, req.build()).await;
    let etag = r
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (r.status().as_u16(), json_body(&r), etag)
}

async fn create(store: &MemoryStore, partner: &str, body: &Value) -> (u16, Value) {
    let req = ApiRequest::post("/destinations", body.to_string()).caller(partner, ADMIN);
    let (status, v, _) = call(store, req).await;
    (status, v)
}

async fn patch(store: &MemoryStore, partner: &str, id: &str, body: Value) -> (u16, Value) {
    let req = ApiRequest::with_body("PATCH", "/destinations/{destinationId}", body.to_string())
        .path_param("destinationId", id)
        .caller(partner, ADMIN);
    let (status, v, _) = call(store, req).await;
    (status, v)
}

/// The partner's own account's activities, newest first.
async fn records(store: &MemoryStore, partner: &str) -> Vec<crate::domain::Activity> {
    let query = ActivityQuery {
        customer: Some(CustomerId::partner_account()),
        range: DateRange::resolve(None, None, Utc::now()).unwrap(),
        filters: Default::default(),
    };
    store
        .query_page(&PartnerId::parse(partner).unwrap(), &query, None, 100)
        .await
        .unwrap()
        .items
}

#[tokio::test]
async fn a_webhook_is_created_with_a_secret_shown_once_and_recorded_in_the_partners_account() {
    let store = MemoryStore::default();
    let (status, made) = create(&store, "p1", &hook("SIEM")).await;
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["type"], "https");
    assert_eq!(made["format"], "webhook");
    assert_eq!(made["state"], "active");
    assert_eq!(made["deliveredPosition"], 0);
    assert_eq!(made["version"], 1);
    let secret = made["signingSecret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    assert_eq!(made["secretHint"], secret[secret.len() - 4..]);
    let id = made["id"].as_str().unwrap().to_owned();

    let (status, read, etag) = call(
        &store,
        ApiRequest::get("/destinations/{destinationId}")
            .path_param("destinationId", &id)
            .caller("p1", ADMIN),
    )
    .await;
    assert_eq!(status, 200);
    assert!(read.get("signingSecret").is_none(), "shown only once");
    assert_eq!(etag.as_deref(), Some("\"1\""));
    assert!(
        !read.to_string().contains(&secret),
        "the secret never shows again"
    );

    let recorded = records(&store, "p1").await;
    assert_eq!(recorded.len(), 1);
    let r = &recorded[0];
    assert_eq!(r.action, "Create streaming destination");
    assert_eq!(r.customer_name, "Partner account");
    assert_eq!(r.resource_type.as_deref(), Some(RESOURCE_TYPE));
    assert!(r.chain.is_some(), "chained like every activity");
    let crate::domain::Details::Inline(details) = &r.details else {
        panic!("details inline");
    };
    assert!(
        details.contains(&id) && !details.contains(&secret),
        "{details}"
    );
}

#[tokio::test]
async fn at_most_three_and_each_tenant_sees_only_its_own() {
    let store = MemoryStore::default();
    for i in 0..3 {
        assert_eq!(create(&store, "p1", &hook(&format!("d{i}"))).await.0, 201);
    }
    let (status, refused) = create(&store, "p1", &hook("d3")).await;
    assert_eq!(status, 409);
    assert_eq!(refused["error"]["code"], "TooManyDestinations");
    assert_eq!(
        records(&store, "p1").await.len(),
        3,
        "the refusal recorded nothing"
    );

    let (status, other) = create(&store, "p2", &hook("theirs")).await;
    assert_eq!(status, 201, "another tenant has its own three");
    let (_, mine, _) = call(&store, ApiRequest::get("/destinations").caller("p1", ADMIN)).await;
    assert_eq!(mine["items"].as_array().unwrap().len(), 3);
    assert_eq!(mine["maxDestinations"], 3);
    let theirs = other["id"].as_str().unwrap();
    let (status, _, _) = call(
        &store,
        ApiRequest::get("/destinations/{destinationId}")
            .path_param("destinationId", theirs)
            .caller("p1", ADMIN),
    )
    .await;
    assert_eq!(status, 404, "another tenant's destination looks unknown");
    assert_eq!(
        patch(&store, "p1", theirs, json!({"paused": true})).await.0,
        404
    );
}

#[tokio::test]
async fn only_global_and_account_admins_manage_destinations() {
    let store = MemoryStore::default();
    for (roles, status) in [
        (&["GlobalAdmin"][..], 201),
        (&["AccountAdmin"][..], 201),
        (&["HelpdeskAgent"][..], 403),
        (&["AdminAgent"][..], 403),
        (&["ActivityWriter"][..], 403),
    ] {
        let req = ApiRequest::post("/destinations", hook("x").to_string()).caller("p9", roles);
        let (got, body, _) = call(&store, req).await;
        assert_eq!(got, status, "{roles:?}: {body}");
    }
}

#[tokio::test]
async fn bad_input_names_each_field_and_writes_nothing() {
    let store = MemoryStore::default();
    for (body, code, field) in [
        (
            json!({"type": "https", "url": "https://a.example"}),
            "ValidationFailed",
            "name",
        ),
        (json!({"name": "n"}), "ValidationFailed", "type"),
        (json!({"type": "ftp", "name": "n"}), "InvalidBody", ""),
        (
            json!({"type": "https", "name": "n", "url": "http://a.example"}),
            "ValidationFailed",
            "url",
        ),
        (
            json!({"type": "https", "name": "n", "url": "https://192.168.0.9/"}),
            "ValidationFailed",
            "url",
        ),
        (
            json!({"type": "https", "name": "n", "url": "https://a.example", "colour": 1}),
            "InvalidBody",
            "",
        ),
        (
            json!({"type": "https", "name": "n", "url": "https://a.example", "startAfter": 5}),
            "ValidationFailed",
            "startAfter",
        ),
        (
            json!({"type": "https", "name": "n", "url": "https://a.example", "paused": true}),
            "ValidationFailed",
            "paused",
        ),
        (
            json!({"type": "https", "name": "n", "url": "https://a.example", "autoPauseAfterMinutes": 5}),
            "ValidationFailed",
            "autoPauseAfterMinutes",
        ),
        (
            json!({"type": "https", "name": "n", "url": "https://a.example", "autoPauseAfterMinutes": -1}),
            "InvalidBody",
            "",
        ),
        (
            json!({"type": "s3", "name": "n", "bucket": "B", "region": "eu-west-1",
                "roleArn": "arn:aws:iam::123456789012:role/r", "externalId": "e1"}),
            "ValidationFailed",
            "bucket",
        ),
        (
            json!({"type": "eventBridge", "name": "n", "eventBusArn": "arn:aws:events:eu-west-1:1:event-bus/b",
                "roleArn": "arn:aws:iam::123456789012:role/r", "externalId": "e1"}),
            "ValidationFailed",
            "eventBusArn",
        ),
        (
            json!({"type": "https", "name": "n", "url": "https://a.example", "objectFormat": "parquet"}),
            "ValidationFailed",
            "objectFormat",
        ),
        (
            json!({"type": "s3", "name": "n", "bucket": "b-1", "region": "eu-west-1", "objectFormat": "csv",
                "roleArn": "arn:aws:iam::123456789012:role/r", "externalId": "e1"}),
            "InvalidBody",
            "",
        ),
        (json!([1]), "InvalidBody", ""),
    ] {
        let (status, v) = create(&store, "p1", &body).await;
        assert_eq!(status, 400, "{body}: {v}");
        assert_eq!(v["error"]["code"], code, "{body}: {v}");
        if !field.is_empty() {
            assert_eq!(v["error"]["fields"][0]["field"], field, "{body}: {v}");
        }
    }
    let (status, v) = create(&store, "p1", &json!("x".repeat(MAX_BODY_BYTES))).await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (413, Some("PayloadTooLarge"))
    );
    let (_, listed, _) = call(&store, ApiRequest::get("/destinations").caller("p1", ADMIN)).await;
    assert_eq!(listed["items"], json!([]));
    assert!(records(&store, "p1").await.is_empty());
    let (status, v, _) = call(
        &store,
        ApiRequest::get("/destinations")
            .query("limit", "1")
            .caller("p1", ADMIN),
    )
    .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (400, Some("UnknownParameter"))
    );
}

#[tokio::test]
async fn pause_resume_replay_and_rotate_are_each_recorded_under_their_own_name() {
    let store = MemoryStore::default();
    let (_, made) = create(&store, "p1", &hook("SIEM")).await;
    let id = made["id"].as_str().unwrap();
    let first_secret = made["signingSecret"].as_str().unwrap().to_owned();

    let (status, paused) = patch(&store, "p1", id, json!({"paused": true})).await;
    assert_eq!(status, 200, "{paused}");
    assert_eq!(paused["state"], "paused");
    assert_eq!(paused["paused"]["by"], "partner");
    assert_eq!(paused["version"], 2);
    // Asking again changes nothing and records nothing.
    let (status, again) = patch(&store, "p1", id, json!({"paused": true})).await;
    assert_eq!((status, &again["version"]), (200, &json!(2)));

    let (_, resumed) = patch(&store, "p1", id, json!({"paused": false})).await;
    assert_eq!(resumed["state"], "active");
    let (status, bad) = patch(&store, "p1", id, json!({"replayAfter": 1})).await;
    assert_eq!(status, 400, "past the head (0): {bad}");
    assert_eq!(bad["error"]["fields"][0]["field"], "replayAfter");
    let (_, replayed) = patch(&store, "p1", id, json!({"replayAfter": 0})).await;
    assert_eq!(replayed["deliveredPosition"], 0);

    let (_, rotated) = patch(&store, "p1", id, json!({"rotateSecret": true})).await;
    let second = rotated["signingSecret"].as_str().unwrap();
    assert_ne!(second, first_secret);

    let (_, renamed) = patch(
        &store,
        "p1",
        id,
        json!({"name": "SIEM (EU)", "url": "https://eu.siem.example.com/hooks"}),
    )
    .await;
    assert_eq!(renamed["name"], "SIEM (EU)");
    assert_eq!(renamed["url"], "https://eu.siem.example.com/hooks");

    let actions: Vec<String> = records(&store, "p1")
        .await
        .into_iter()
        .rev()
        .map(|a| a.action)
        .collect();
    assert_eq!(
        actions,
        [
            "Create streaming destination",
            "Pause streaming destination",
            "Resume streaming destination",
            "Replay streaming destination",
            "Rotate streaming destination secret",
            "Update streaming destination",
        ]
    );
}

#[tokio::test]
async fn if_match_guards_changes_and_a_delete_is_recorded() {
    let store = MemoryStore::default();
    let (_, made) = create(&store, "p1", &hook("SIEM")).await;
    let id = made["id"].as_str().unwrap();
    let stale = ApiRequest::with_body("PATCH", "/destinations/{destinationId}", "{\"name\":\"x\"}")
        .path_param("destinationId", id)
        .header("if-match", "\"7\"")
        .caller("p1", ADMIN);
    let (status, v, _) = call(&store, stale).await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (412, Some("PreconditionFailed"))
    );
    let bad = ApiRequest::new("DELETE", "/destinations/{destinationId}")
        .path_param("destinationId", id)
        .header("if-match", "soon")
        .caller("p1", ADMIN);
    assert_eq!(call(&store, bad).await.0, 400);
    let current = ApiRequest::new("DELETE", "/destinations/{destinationId}")
        .path_param("destinationId", id)
        .header("if-match", "\"1\"")
        .caller("p1", ADMIN);
    assert_eq!(call(&store, current).await.0, 204);
    let gone = ApiRequest::get("/destinations/{destinationId}")
        .path_param("destinationId", id)
        .caller("p1", ADMIN);
    assert_eq!(call(&store, gone).await.0, 404);
    let last = records(&store, "p1").await.remove(0);
    assert_eq!(last.action, "Delete streaming destination");
    // The slot is free again.
    for i in 0..3 {
        assert_eq!(create(&store, "p1", &hook(&format!("d{i}"))).await.0, 201);
    }
}

#[tokio::test]
async fn a_hec_destination_keeps_its_token_secret_and_the_type_cannot_change() {
    let store = MemoryStore::default();
    let token = "0f8e1c1a-1111-2222-3333-444455556666";
    let (status, made) = create(
        &store,
        "p1",
        &json!({"type": "https", "name": "Splunk", "format": "splunkHec",
                "url": "https://splunk.example.com:8088/services/collector/event", "token": token}),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    assert!(made.get("signingSecret").is_none());
    assert_eq!(made["secretHint"], "6666");
    assert!(!made.to_string().contains(token));
    let id = made["id"].as_str().unwrap();
    let (status, v) = patch(&store, "p1", id, json!({"type": "s3"})).await;
    assert_eq!(
        (status, v["error"]["fields"][0]["field"].as_str()),
        (400, Some("type"))
    );
    let (status, v) = patch(&store, "p1", id, json!({"rotateSecret": true})).await;
    assert_eq!(
        (status, v["error"]["fields"][0]["field"].as_str()),
        (400, Some("rotateSecret"))
    );
    // To a webhook: the service makes its secret and shows it.
    let (status, v) = patch(&store, "p1", id, json!({"format": "webhook"})).await;
    assert_eq!(status, 200, "{v}");
    assert!(v["signingSecret"].as_str().unwrap().starts_with("whsec_"));
    // And back: a HEC needs its token again.
    let (status, v) = patch(&store, "p1", id, json!({"format": "splunkHec"})).await;
    assert_eq!(
        (status, v["error"]["fields"][0]["field"].as_str()),
        (400, Some("token"))
    );
}

#[tokio::test]
async fn an_s3_destination_writes_json_lines_unless_it_asks_for_parquet() {
    let store = MemoryStore::default();
    let s3 = json!({"type": "s3", "name": "lake", "bucket": "acme-audit", "region": "eu-west-1",
        "roleArn": "arn:aws:iam::123456789012:role/r", "externalId": "e1"});
    let (status, made) = create(&store, "p1", &s3).await;
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["objectFormat"], "jsonl");
    let id = made["id"].as_str().unwrap_or_default();
    let (status, changed) = patch(&store, "p1", id, json!({"objectFormat": "parquet"})).await;
    assert_eq!(
        (status, &changed["objectFormat"]),
        (200, &json!("parquet")),
        "{changed}"
    );
    let mut lake = s3.clone();
    lake["name"] = json!("lake 2");
    lake["objectFormat"] = json!("parquet");
    let (status, made) = create(&store, "p1", &lake).await;
    assert_eq!(
        (status, &made["objectFormat"]),
        (201, &json!("parquet")),
        "{made}"
    );
}
