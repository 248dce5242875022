//! The tamper-evident log against the emulator: chains written through the real SDK clients,
//! checkpoints signed by the emulator's KMS, and tampering done straight to the table with the
//! SDK, as someone with write access to storage (not the API) would.

use activity_log::app::App;
use activity_log::domain::integrity::{Checkpoint, PublicKey};
use activity_log::handlers::integrity;
use activity_log::store::Signer as _;
use activity_log::testing::ApiRequest;
use activity_log::testing::fixtures::{self, activity, minutes_ago as ago};
use activity_log_tests::{isolated_app, json_body as body};
use lambda_http::{Body, Response};
use serde_json::{Value, json};

const READER: &[&str] = &["HelpdeskAgent"];

async fn post(app: &App, partner: &str, payload: &Value) -> Response<Body> {
    fixtures::record(&app.config, &app.store, &app.blobs, partner, payload).await
}

async fn integrity_call(app: &App, req: ApiRequest) -> Response<Body> {
    let signer = app.signer().unwrap_or_else(|e| panic!("{e}"));
    integrity::handle(
        &app.config,
        &app.store,
        app.anchors().unwrap_or_else(|e| panic!("{e}")),
        signer,
        req.build(),
    )
    .await
}

fn checkpoint_of(customer: &str) -> ApiRequest {
    ApiRequest::get("/customers/{customerId}/checkpoint")
        .path_param("customerId", customer)
        .caller("p1", READER)
}

#[tokio::test]
async fn the_emulator_s_kms_signs_checkpoints_that_the_public_key_verifies() {
    let app = isolated_app().await;
    let r = post(
        &app,
        "p1",
        &json!([
            activity("c1", "a1", &ago(3)),
            activity("c1", "a2", &ago(2)),
            activity("c2", "b1", &ago(1))
        ]),
    )
    .await;
    assert_eq!(r.status(), 201, "{}", body(&r));
    let stored = body(&r)["items"].clone();

    let first = integrity_call(&app, checkpoint_of("c1")).await;
    assert_eq!(first.status(), 200, "{}", body(&first));
    let cp: Checkpoint = serde_json::from_value(body(&first)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cp.sequence, 2);
    assert_eq!(json!(cp.hash), stored[1]["hash"]);
    // Anchored: the same checkpoint until the head moves.
    assert_eq!(
        body(&integrity_call(&app, checkpoint_of("c1")).await),
        body(&first)
    );

    let key = integrity_call(
        &app,
        ApiRequest::get("/integrity/public-key").caller("p1", READER),
    )
    .await;
    assert_eq!(key.status(), 200);
    let key: PublicKey = serde_json::from_value(body(&key)).unwrap_or_else(|e| panic!("{e}"));
    // The checkpoint names its key as GET /integrity/public-key does (KMS's key ARN in AWS;
    // the emulator's GetPublicKey gives the bare key id), whether just signed or anchored.
    assert_eq!(cp.key_id, key.key_id);
    let message = cp.message().unwrap_or_else(|e| panic!("{e}"));
    assert!(
        key.verifies(&message, &cp.signature),
        "KMS's DER signature checks"
    );
    let mut other = cp.clone();
    other.hash = "0".repeat(64);
    assert!(!key.verifies(&other.message().unwrap_or_default(), &cp.signature));

    // A checkpoint signed by another key of the same KMS is refused by this key.
    let sdk = activity_log_tests::sdk_config(&activity_log_tests::emulator().await).await;
    let stranger =
        activity_log_tests::signing_key(&sdk, &activity_log_tests::unique_name("alias/other"))
            .await;
    let other_app = isolated_app().await.with_signer(&sdk, stranger);
    let forged = other_app
        .signer()
        .unwrap_or_else(|e| panic!("{e}"))
        .sign(&message)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    use base64::Engine as _;
    let forged = base64::engine::general_purpose::STANDARD.encode(forged.der);
    assert!(!key.verifies(&message, &forged));

    let unknown = integrity_call(&app, checkpoint_of("nobody")).await;
    assert_eq!(unknown.status(), 404);
    assert_eq!(body(&unknown)["error"]["code"], "NotFound");
}

/// An export of `customer` (all of the last day) in JSON Lines, run to its end: the file, its
/// manifest and the public key, as a user downloads them.
async fn exported(app: &App, partner: &str, customer: &str) -> (Vec<u8>, Vec<u8>, String) {
    exported_with(app, partner, customer, json!({})).await
}

/// [`exported`] with more of the request's members (`also`: filters, another period).
async fn exported_with(
    app: &App,
    partner: &str,
    customer: &str,
    also: Value,
) -> (Vec<u8>, Vec<u8>, String) {
    use activity_log::handlers::{export_worker, exports};
    use activity_log::store::ExportObjects as _;
    use activity_log::testing::doubles::RecordingLauncher;

    let launcher = RecordingLauncher::default();
    let mut request = json!({"customerId": customer, "from": ago(24 * 60), "format": "jsonl"});
    if let (Some(r), Value::Object(more)) = (request.as_object_mut(), also) {
        r.extend(more);
    }
    let created = exports::handle(
        &app.config,
        &app.store,
        &app.blobs,
        &launcher,
        ApiRequest::post("/exports", request.to_string())
            .caller(partner, READER)
            .build(),
    )
    .await;
    assert_eq!(created.status(), 202, "{}", body(&created));
    let id = body(&created)["id"].as_str().unwrap_or_default().to_owned();
    let ports = app
        .export_ports(&launcher)
        .unwrap_or_else(|e| panic!("{e}"));
    for event in launcher.launched() {
        let outcome = export_worker::run(&app.config, &ports, &event).await;
        assert!(outcome.is_ok(), "{outcome:?}");
    }
    let status = exports::handle(
        &app.config,
        &app.store,
        &app.blobs,
        &launcher,
        ApiRequest::get("/exports/{exportId}")
            .path_param("exportId", &id)
            .caller(partner, READER)
            .build(),
    )
    .await;
    let job = body(&status);
    assert_eq!(job["status"], "succeeded", "{job}");
    assert!(
        job["manifestUrl"]
            .as_str()
            .is_some_and(|u| u.contains(".manifest.json"))
    );
    let key = format!("exports/{partner}/{id}.jsonl");
    let file = app
        .blobs
        .get_bytes(&key)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let manifest = app
        .blobs
        .get_bytes(&format!("{key}.manifest.json"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let public = integrity_call(
        app,
        ApiRequest::get("/integrity/public-key").caller(partner, READER),
    )
    .await;
    let pem = body(&public)["pem"].as_str().unwrap_or_default().to_owned();
    (file, manifest, pem)
}

fn verify_export(file: &[u8], manifest: &[u8], pem: &str) -> Result<Vec<String>, String> {
    let key = activity_log_verify::Key::from_pem(pem).unwrap_or_else(|e| panic!("{e}"));
    activity_log_verify::verify_export(file, manifest, &key)
        .map(|r| r.lines())
        .map_err(|e| e.to_string())
}

/// Sets `attribute` of the stored activity `id` of `customer` to `value`, straight in the
/// table (as someone with write access to storage, not the API, would).
async fn tamper(app: &App, partner: &str, customer: &str, id: &str, attribute: &str, value: &str) {
    use aws_sdk_dynamodb::types::AttributeValue;
    app.store
        .client()
        .update_item()
        .table_name(&app.config.table_name)
        .key("pk", AttributeValue::S(format!("P#{partner}#C#{customer}")))
        .key("sk", AttributeValue::S(format!("A#{id}")))
        .update_expression("SET #a = :v")
        .expression_attribute_names("#a", attribute)
        .expression_attribute_values(":v", AttributeValue::S(value.to_owned()))
        .condition_expression("attribute_exists(pk)")
        .send()
        .await
        .unwrap_or_else(|e| panic!("tamper {id}: {e}"));
}

#[tokio::test]
async fn an_export_proves_itself_and_a_field_changed_in_storage_is_named() {
    let app = isolated_app().await;
    let batch: Vec<Value> = (0..12)
        .map(|i| {
            let mut a = activity("c1", &format!("a{i:02}"), &ago(60 - i));
            a["details"] = json!({"seats": i, "名稱": "台積電", "ratio": 1.5, "big": 1e21});
            a
        })
        .chain((0..3).map(|i| activity("c2", &format!("b{i}"), &ago(30 - i))))
        .collect();
    assert_eq!(post(&app, "p1", &Value::Array(batch)).await.status(), 201);

    let (file, manifest, pem) = exported(&app, "p1", "c1").await;
    let lines = verify_export(&file, &manifest, &pem).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        lines[0].starts_with(
            "c1: 12 activities, sequences 1–12, hashes and links checked, signed head at 12"
        ),
        "{lines:?}"
    );

    // One line of the file edited: the file is not the one the manifest describes.
    let text = String::from_utf8(file.clone()).unwrap_or_default();
    let edited = text.replacen("placed an order", "placed an orders", 1);
    assert_ne!(edited, text);
    let refused = verify_export(edited.as_bytes(), &manifest, &pem).unwrap_err();
    assert!(
        refused.contains("not the one the manifest describes"),
        "{refused}"
    );

    // The manifest checked with another key (a checkpoint or manifest signed by someone else).
    let sdk = activity_log_tests::sdk_config(&activity_log_tests::emulator().await).await;
    let other = isolated_app().await.with_signer(
        &sdk,
        activity_log_tests::signing_key(&sdk, &activity_log_tests::unique_name("alias/other"))
            .await,
    );
    let other_pem = other
        .signer()
        .unwrap_or_else(|e| panic!("{e}"))
        .public_key()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .pem;
    let refused = verify_export(&file, &manifest, &other_pem).unwrap_err();
    assert!(refused.contains("signature invalid"), "{refused}");

    // A field changed in the table: the next export's manifest is signed over what is stored,
    // and the chain names the activity.
    tamper(
        &app,
        "p1",
        "c1",
        "a05",
        "action",
        "deleted the subscription",
    )
    .await;
    let (file, manifest, pem) = exported(&app, "p1", "c1").await;
    let found = verify_export(&file, &manifest, &pem).unwrap_err();
    assert!(
        found.contains("activity a05 (sequence 6) was altered"),
        "{found}"
    );
}

/// README's recipe, run with Python against activities as the API shows them: it gives every
/// stored hash.
#[tokio::test]
async fn readme_s_python_recipe_recomputes_every_hash() {
    let app = isolated_app().await;
    let mut unusual = activity("客戶 #1", "a1", &ago(3));
    unusual["details"] = json!({"z": [1, 2.50, -0.0, 1e-7, 1e21, 9007199254740991u64, 0.1], "é": "\u{2028}\"\u{1F600}", "a": {"b": null}, "\u{20AC}": 1, "\r": 2});
    unusual["resourceType"] = json!("order");
    let r = post(
        &app,
        "p1",
        &json!([
            unusual,
            activity("客戶 #1", "a2", &ago(2)),
            activity("c9", "a3", &ago(1))
        ]),
    )
    .await;
    assert_eq!(r.status(), 201, "{}", body(&r));
    let items = body(&r)["items"].clone();

    let readme = activity_log_tests::read_workspace_file("README.md");
    let recipe = readme
        .split("<!-- BEGIN hash recipe -->")
        .nth(1)
        .and_then(|rest| rest.split("<!-- END hash recipe -->").next())
        .and_then(|block| block.split("```python").nth(1))
        .and_then(|code| code.split("```").next())
        .unwrap_or_else(|| panic!("README has no hash recipe"));
    let script = format!(
        "{recipe}\nimport json, sys\nfor a in json.load(sys.stdin):\n    print(activity_hash('p1', a))\n"
    );
    let mut child = std::process::Command::new(activity_log_tests::tool("python"))
        .args(["-c", &script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("python: {e}"));
    use std::io::Write as _;
    child
        .stdin
        .take()
        .map(|mut stdin| stdin.write_all(items.to_string().as_bytes()))
        .transpose()
        .unwrap_or_else(|e| panic!("{e}"));
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    let stored: Vec<String> = items
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| a["hash"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(printed, stored);
}

/// Two processes (two stores, as two Lambda instances) take turns on one customer: each
/// remembers the head it wrote, finds it moved by the other, reads it again, and the chain has
/// no gap and no fork.
#[tokio::test]
async fn writers_that_remember_their_heads_still_chain_after_each_other() {
    use activity_log::domain::PartnerId;
    use activity_log::store::dynamodb::DynamoStore;
    use activity_log::store::{ActivityWriter as _, InsertOutcome, Unchained};
    use activity_log::testing::fixtures::synthetic_activity;

    let app = isolated_app().await;
    let partner = PartnerId::parse("p1").unwrap_or_else(|e| panic!("{e}"));
    let one = DynamoStore::new(app.store.client().clone(), app.config.table_name.clone());
    let other = DynamoStore::new(app.store.client().clone(), app.config.table_name.clone());
    let mut sequences = Vec::new();
    for (n, store) in [&one, &one, &other, &one, &other, &other, &one]
        .into_iter()
        .enumerate()
    {
        let a = synthetic_activity(n as u64, "c1", chrono::Utc::now());
        let item = Unchained::new(&partner, a, None).unwrap_or_else(|e| panic!("{e}"));
        match store.insert_all(&partner, &[item]).await {
            Ok(InsertOutcome::Written(w)) => {
                sequences.push(w[0].chain.as_ref().map_or(0, |l| l.sequence));
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(sequences, (1..=7).collect::<Vec<u64>>());
    let r = post(&app, "p1", &activity("c1", "last", &ago(1))).await;
    assert_eq!(body(&r)["items"][0]["sequence"], 8);
}

/// Sets the stored head of `customer` of p1 to `sequence` and `hash`, straight in the table.
async fn set_head(app: &App, customer: &str, sequence: Option<u64>, hash: &str) {
    use aws_sdk_dynamodb::types::AttributeValue::{N, S};
    let (expression, mut update) = match sequence {
        Some(_) => ("SET #s = :s, #h = :h", app.store.client().update_item()),
        None => ("SET #h = :h", app.store.client().update_item()),
    };
    update = update
        .table_name(&app.config.table_name)
        .key("pk", S(format!("P#p1#C#{customer}")))
        .key("sk", S("HEAD".into()))
        .update_expression(expression)
        .expression_attribute_names("#h", "hash")
        .expression_attribute_values(":h", S(hash.to_owned()));
    if let Some(s) = sequence {
        update = update
            .expression_attribute_names("#s", "sequence")
            .expression_attribute_values(":s", N(s.to_string()));
    }
    update
        .send()
        .await
        .unwrap_or_else(|e| panic!("set head: {e}"));
}

/// Deletes activity `id` of `customer` of p1, straight in the table.
async fn delete_activity(app: &App, customer: &str, id: &str) {
    use aws_sdk_dynamodb::types::AttributeValue::S;
    app.store
        .client()
        .delete_item()
        .table_name(&app.config.table_name)
        .key("pk", S(format!("P#p1#C#{customer}")))
        .key("sk", S(format!("A#{id}")))
        .send()
        .await
        .unwrap_or_else(|e| panic!("delete {id}: {e}"));
}

/// The anchors of `customer` of p1, newest first.
async fn anchors_of(app: &App, customer: &str) -> Vec<String> {
    let anchors = app.anchors().unwrap_or_else(|e| panic!("{e}"));
    anchors
        .client()
        .list_objects_v2()
        .bucket(anchors.bucket())
        .prefix(format!("anchors/p1/{customer}/"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect()
}

/// Records activities `0..n` of `customer` for p1; their rows as stored.
async fn chain_of(app: &App, customer: &str, n: i64) -> Vec<Value> {
    let batch: Vec<Value> = (0..n)
        .map(|i| activity(customer, &format!("{customer}-{i}"), &ago(60 - i)))
        .collect();
    let r = post(app, "p1", &Value::Array(batch)).await;
    assert_eq!(r.status(), 201, "{}", body(&r));
    body(&r)["items"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn the_service_refuses_to_sign_a_chain_that_no_longer_extends_its_anchor() {
    let app = isolated_app().await;

    // Truncation: 5 and 6 deleted, the head set back to 4.
    let rows = chain_of(&app, "cut", 6).await;
    let first = integrity_call(&app, checkpoint_of("cut")).await;
    assert_eq!(body(&first)["sequence"], 6, "{}", body(&first));
    assert_eq!(anchors_of(&app, "cut").await.len(), 1);
    for id in ["cut-4", "cut-5"] {
        delete_activity(&app, "cut", id).await;
    }
    set_head(
        &app,
        "cut",
        Some(4),
        rows[3]["hash"].as_str().unwrap_or_default(),
    )
    .await;
    let refused = integrity_call(&app, checkpoint_of("cut")).await;
    assert_eq!(refused.status(), 409, "{}", body(&refused));
    assert_eq!(body(&refused)["error"]["code"], "ChainInconsistent");
    assert_eq!(
        body(&refused)["error"]["message"],
        "customer cut: the activity at the anchored sequence 6 is missing, and the anchor is not old enough for it to have expired; nothing was signed"
    );
    assert_eq!(
        anchors_of(&app, "cut").await.len(),
        1,
        "nothing new anchored"
    );

    // A rewrite from sequence 3 on, every hash and link recomputed, the head moved along.
    let rows = chain_of(&app, "rewritten", 6).await;
    assert_eq!(
        integrity_call(&app, checkpoint_of("rewritten"))
            .await
            .status(),
        200
    );
    let mut previous = rows[1]["hash"].as_str().unwrap_or_default().to_owned();
    for row in &rows[2..] {
        let mut changed = row.as_object().cloned().unwrap_or_default();
        changed.insert("action".into(), json!("removed a license"));
        let chain_row = activity_log::domain::chain::ChainRow::from_row("p1", &changed)
            .unwrap_or_else(|e| panic!("{e}"));
        let sequence = chain_row.link.sequence;
        let hash = chain_row
            .record
            .hash(&previous, sequence)
            .unwrap_or_else(|e| panic!("{e}"));
        let id = chain_row.id.clone();
        for (attribute, value) in [
            ("action", "removed a license".to_owned()),
            ("hash", hash.clone()),
            ("previousHash", previous.clone()),
        ] {
            tamper(&app, "p1", "rewritten", &id, attribute, &value).await;
        }
        previous = hash;
    }
    set_head(&app, "rewritten", None, &previous).await;
    let refused = integrity_call(&app, checkpoint_of("rewritten")).await;
    assert_eq!(refused.status(), 409, "{}", body(&refused));
    assert_eq!(
        body(&refused)["error"]["message"],
        "customer rewritten: the activity at the anchored sequence 6 does not have the anchored hash; nothing was signed"
    );

    // The chain moves on honestly: the new head is signed and anchored beside the first.
    chain_of(&app, "cut-not", 2).await;
    let a = integrity_call(&app, checkpoint_of("cut-not")).await;
    let more = post(&app, "p1", &json!([activity("cut-not", "later", &ago(1))])).await;
    assert_eq!(more.status(), 201);
    let b = integrity_call(&app, checkpoint_of("cut-not")).await;
    assert_eq!(
        (body(&a)["sequence"].clone(), body(&b)["sequence"].clone()),
        (json!(2), json!(3))
    );
    assert_eq!(anchors_of(&app, "cut-not").await.len(), 2);
}

#[tokio::test]
async fn anchors_can_be_neither_overwritten_nor_deleted() {
    let app = isolated_app().await;
    chain_of(&app, "c1", 3).await;
    assert_eq!(
        integrity_call(&app, checkpoint_of("c1")).await.status(),
        200
    );
    let key = anchors_of(&app, "c1").await.remove(0);
    let anchors = app.anchors().unwrap_or_else(|e| panic!("{e}"));
    let s3 = anchors.client();
    // A conditional write of the same name is refused.
    let put = s3
        .put_object()
        .bucket(anchors.bucket())
        .key(&key)
        .if_none_match("*")
        .body(b"{}".to_vec().into())
        .send()
        .await;
    let status = put
        .err()
        .and_then(|e| e.raw_response().map(|r| r.status().as_u16()));
    assert_eq!(status, Some(412));
    // The version written is kept in compliance mode: deleting it is refused.
    let version = s3
        .head_object()
        .bucket(anchors.bucket())
        .key(&key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        version.object_lock_mode().map(|m| m.as_str()),
        Some("COMPLIANCE")
    );
    let delete = s3
        .delete_object()
        .bucket(anchors.bucket())
        .key(&key)
        .set_version_id(version.version_id().map(str::to_owned))
        .send()
        .await;
    let status = delete
        .err()
        .and_then(|e| e.raw_response().map(|r| r.status().as_u16()));
    assert_eq!(status, Some(403));
    // Still the anchor the service reads.
    assert_eq!(anchors_of(&app, "c1").await, [key]);
    assert_eq!(
        integrity_call(&app, checkpoint_of("c1")).await.status(),
        200
    );
}

/// Details kept in the bucket are written once: the record function writes with
/// `If-None-Match: *` (the bucket's policy refuses any other write there in AWS), so a second
/// write to a details object is refused, a replay of the batch still succeeds, and the verifier
/// names an activity whose details were replaced anyway.
#[tokio::test]
async fn details_in_the_bucket_are_written_once() {
    let app = isolated_app().await;
    let mut a = activity("c1", "big-order", &ago(2));
    a["details"] = json!({"note": "n".repeat(60_000)});
    let batch = json!([a]);
    assert_eq!(post(&app, "p1", &batch).await.status(), 201);
    let s3 = app.blobs.client();
    let listed = s3
        .list_objects_v2()
        .bucket(app.blobs.bucket())
        .prefix("details/p1/")
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let keys: Vec<String> = listed
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let overwrite = s3
        .put_object()
        .bucket(app.blobs.bucket())
        .key(&keys[0])
        .if_none_match("*")
        .body(br#"{"note":"changed"}"#.to_vec().into())
        .send()
        .await;
    let status = overwrite
        .err()
        .and_then(|e| e.raw_response().map(|r| r.status().as_u16()));
    assert_eq!(status, Some(412));
    // The replay writes the same object again: refused by S3, taken as already written.
    let replay = post(&app, "p1", &batch).await;
    assert!(replay.status().is_success(), "{}", body(&replay));

    // Replaced without the condition (which the bucket's policy denies in AWS; the emulator
    // has no bucket policies): the chain names the activity.
    s3.put_object()
        .bucket(app.blobs.bucket())
        .key(&keys[0])
        .body(br#"{"note":"changed"}"#.to_vec().into())
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (file, manifest, pem) = exported(&app, "p1", "c1").await;
    let found = verify_export(&file, &manifest, &pem).unwrap_err();
    assert!(
        found.contains("activity big-order (sequence 1) was altered"),
        "{found}"
    );
}

/// The harness runs the scheduled sealer as EventBridge Scheduler would: the heads that moved
/// are anchored under one signature. A chain truncated afterwards, its head set back, is refused
/// (409) though nobody had asked for its checkpoint, and the next seal leaves it out, refused.
#[tokio::test]
async fn a_scheduled_seal_catches_a_truncation_that_no_checkpoint_request_saw() {
    use activity_log::handlers::seal::{SealPorts, seal};
    let app = isolated_app().await;
    let signer = app.signer().unwrap_or_else(|e| panic!("{e}"));
    let anchors = app.anchors().unwrap_or_else(|e| panic!("{e}"));
    let ports = SealPorts {
        heads: &app.store,
        chains: &app.store,
        anchors,
        signer,
    };
    let kept = chain_of(&app, "kept", 3).await;
    let rows = chain_of(&app, "sealed", 6).await;
    let report = seal(&ports, chrono::Utc::now(), 365)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (report.seal, report.sealed, report.refused),
        (Some(1), 2, 0),
        "{report:?}"
    );
    let sealed = anchors_of(&app, "sealed").await;
    assert_eq!(sealed.len(), 1, "{sealed:?}");
    assert!(sealed[0].ends_with(".!1"), "{sealed:?}");

    // Truncated to 4 behind the service's back; no checkpoint was ever asked for.
    for id in ["sealed-4", "sealed-5"] {
        delete_activity(&app, "sealed", id).await;
    }
    set_head(
        &app,
        "sealed",
        Some(4),
        rows[3]["hash"].as_str().unwrap_or_default(),
    )
    .await;
    let refused = integrity_call(&app, checkpoint_of("sealed")).await;
    assert_eq!(refused.status(), 409, "{}", body(&refused));
    assert_eq!(
        body(&refused)["error"]["message"],
        "customer sealed: the activity at the anchored sequence 6 is missing, and the anchor is not old enough for it to have expired; nothing was signed"
    );

    // The untouched customer's checkpoint is the sealed head, signed now.
    let fine = integrity_call(&app, checkpoint_of("kept")).await;
    assert_eq!(fine.status(), 200, "{}", body(&fine));
    assert_eq!(body(&fine)["hash"], kept[2]["hash"]);

    // The next run: the truncated head moved (back) and is refused, not sealed.
    set_head(
        &app,
        "sealed",
        Some(4),
        rows[3]["hash"].as_str().unwrap_or_default(),
    )
    .await;
    let next = seal(&ports, chrono::Utc::now(), 365)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (next.seal, next.sealed, next.refused),
        (Some(2), 0, 1),
        "{next:?}"
    );
    assert_eq!(
        anchors_of(&app, "sealed").await.len(),
        1,
        "nothing new anchored"
    );
}

/// An export's filters leave sequences out: its manifest vouches for them (the log held them,
/// linked), and the verifier accepts them. An activity deleted from the table before the
/// customer's anchor (the head still extends it, so the service signs) is not vouched for: the
/// verifier reports it missing.
#[tokio::test]
async fn an_export_vouches_for_what_its_filters_leave_out_and_a_deletion_is_reported_missing() {
    let app = isolated_app().await;
    let batch: Vec<Value> = (1..=8)
        .map(|i| {
            let mut a = activity("c1", &format!("a{i}"), &ago(60 - i));
            if i % 2 == 0 {
                a["action"] = json!("refund");
            }
            a
        })
        .collect();
    assert_eq!(post(&app, "p1", &Value::Array(batch)).await.status(), 201);
    let signed = integrity_call(&app, checkpoint_of("c1")).await;
    assert_eq!(body(&signed)["sequence"], 8, "anchored at 8");

    let orders = json!({"action": "placed an order"});
    let (file, manifest, pem) = exported_with(&app, "p1", "c1", orders).await;
    let lines = verify_export(&file, &manifest, &pem).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        lines[0].split(", signed head").next(),
        Some(
            "c1: 4 activities, sequences 1–7 (3 sequences in between left out by the export's period or filters), hashes and links checked"
        ),
        "{lines:?}"
    );
    let m: Value = serde_json::from_slice(&manifest).unwrap_or_default();
    assert_eq!(m["export"]["action"], "placed an order");
    assert_eq!(m["customers"][0]["head"]["sequence"], 8);
    assert!(
        m["customers"][0]["anchor"]
            .as_str()
            .is_some_and(|k| k.starts_with("anchors/p1/c1/")),
        "{m}"
    );

    // Refund a4 (sequence 4) deleted from the table, then the same orders exported again.
    delete_activity(&app, "c1", "a4").await;
    let again = json!({"action": "placed an order", "from": ago(24 * 60 - 1)});
    let (file, manifest, pem) = exported_with(&app, "p1", "c1", again).await;
    assert_eq!(
        verify_export(&file, &manifest, &pem),
        Err("FAILED: c1: sequence 4 is missing (before activity a5, sequence 5)".into())
    );
}
