//! The tamper-evident log against the emulator: chains written through the real SDK clients,
//! checkpoints signed by the emulator's KMS, and tampering done straight to the table with the
//! SDK, as someone with write access to storage (not the API) would.

use activity_log::app::App;
use activity_log::domain::chain::{Checkpoint, PublicKey};
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
    integrity::handle(&app.config, &app.store, signer, req.build()).await
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
    assert!(cp.key_id.starts_with("arn:aws:kms:"), "{}", cp.key_id);
    // Kept: the same checkpoint until the head moves.
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
    // KMS names the key by ARN; the emulator's GetPublicKey gives the bare key id.
    assert!(
        cp.key_id.ends_with(&key.key_id),
        "{} / {}",
        cp.key_id,
        key.key_id
    );
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
