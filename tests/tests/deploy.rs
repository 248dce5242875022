//! `scripts/upload_web.py`, the upload step of `scripts/deploy`, against the emulator's S3 (and
//! CloudFront, for the invalidation): what goes up with which headers, the page's config.json,
//! what a second deploy deletes and keeps, and how it fails.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Output};

use activity_log::app::s3_client;
use activity_log::testing::fixtures::local_default;
use activity_log::testing::storage::create_bucket;
use activity_log_tests::{emulator, sdk_config, tool, unique_name, workspace_root};
use serde_json::{Value, json};

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const NO_CACHE: &str = "no-cache";
const ISSUER: &str = "https://login.example.com/tenant/v2.0";

/// A built page in a fresh temporary folder: (relative path, content).
/// A signing key's public half as the stack outputs it (SigningPublicKeyPem).
const SIGNING_KEY_PEM: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEHS/Vde237tuPGrd1KOxAAzezWnvJ
i0psxxZxuuWPjyOWIrQ96VQe3y1wLg5Q1ZNGUt36pdPRZKtkFcfA5Q2L3Q==
-----END PUBLIC KEY-----
";

struct Dist(PathBuf);

impl Dist {
    fn new(files: &[(&str, &str)]) -> Self {
        let dir = std::env::temp_dir().join(unique_name("activity-log-web-dist"));
        for (name, content) in files {
            let path = dir.join(name);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .unwrap_or_else(|e| panic!("{}: {e}", parent.display()));
            }
            std::fs::write(&path, content).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
        Self(dir)
    }

    fn path(&self) -> &str {
        self.0
            .to_str()
            .unwrap_or_else(|| panic!("temp dir is not UTF-8"))
    }
}

impl Drop for Dist {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs a Python program of the project venv with the emulator as its AWS and the local
/// credentials, never the caller's.
fn python(endpoint: &str, args: &[&str]) -> Output {
    let region = local_default("AWS_REGION");
    Command::new(tool("python"))
        .args(args)
        .current_dir(workspace_root())
        .env("AWS_ENDPOINT_URL", endpoint)
        .env_remove("AWS_ENDPOINT_URL_S3")
        .env_remove("AWS_ENDPOINT_URL_CLOUDFRONT")
        .env_remove("AWS_PROFILE")
        .env("AWS_ACCESS_KEY_ID", local_default("AWS_ACCESS_KEY_ID"))
        .env(
            "AWS_SECRET_ACCESS_KEY",
            local_default("AWS_SECRET_ACCESS_KEY"),
        )
        .env("AWS_REGION", region)
        .env("AWS_DEFAULT_REGION", region)
        .output()
        .unwrap_or_else(|e| panic!("python: {e}"))
}

fn upload(endpoint: &str, args: &[&str]) -> Output {
    let script = workspace_root().join("scripts/upload_web.py");
    let script = script.to_str().unwrap_or_default();
    python(endpoint, &[&[script][..], args].concat())
}

fn succeeded(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "upload_web.py failed: {stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A CloudFront distribution in the emulator, for the invalidation.
fn distribution(endpoint: &str) -> String {
    let out = python(
        endpoint,
        &[
            "-c",
            r#"import boto3, uuid
d = boto3.client("cloudfront").create_distribution(DistributionConfig={
    "CallerReference": str(uuid.uuid4()), "Comment": "", "Enabled": True,
    "Origins": {"Quantity": 1, "Items": [{"Id": "page", "DomainName": "page.s3.amazonaws.com",
        "S3OriginConfig": {"OriginAccessIdentity": ""}}]},
    "DefaultCacheBehavior": {"TargetOriginId": "page", "ViewerProtocolPolicy": "redirect-to-https"}})
print(d["Distribution"]["Id"])"#,
        ],
    );
    succeeded(&out).trim().to_owned()
}

/// The paths of every invalidation of a distribution in the emulator.
fn invalidated_paths(endpoint: &str, id: &str) -> Vec<Vec<String>> {
    let out = python(
        endpoint,
        &[
            "-c",
            r#"import boto3, json, sys
cf = boto3.client("cloudfront")
items = cf.list_invalidations(DistributionId=sys.argv[1])["InvalidationList"].get("Items", [])
print(json.dumps([cf.get_invalidation(DistributionId=sys.argv[1], Id=i["Id"])
    ["Invalidation"]["InvalidationBatch"]["Paths"].get("Items", []) for i in items]))"#,
            id,
        ],
    );
    serde_json::from_str(&succeeded(&out)).unwrap_or_else(|e| panic!("invalidations: {e}"))
}

/// Every object of the bucket: key → (Content-Type, Cache-Control, body).
async fn objects(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
) -> BTreeMap<String, (String, String, String)> {
    let listed = s3
        .list_objects_v2()
        .bucket(bucket)
        .send()
        .await
        .unwrap_or_else(|e| panic!("list {bucket}: {e}"));
    let mut out = BTreeMap::new();
    for key in listed.contents().iter().filter_map(|o| o.key()) {
        let got = s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("get {key}: {e}"));
        let (content_type, cache_control) = (
            got.content_type().unwrap_or_default().to_owned(),
            got.cache_control().unwrap_or_default().to_owned(),
        );
        let body = got
            .body
            .collect()
            .await
            .unwrap_or_else(|e| panic!("read {key}: {e}"))
            .into_bytes();
        out.insert(
            key.to_owned(),
            (
                content_type,
                cache_control,
                String::from_utf8_lossy(&body).into_owned(),
            ),
        );
    }
    out
}

fn entry(content_type: &str, cache_control: &str, body: &str) -> (String, String, String) {
    (content_type.into(), cache_control.into(), body.into())
}

fn config(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("config.json {body}: {e}"))
}

/// The emulator, an S3 client of it and a new empty bucket for the page.
async fn page_bucket() -> (String, aws_sdk_s3::Client, String) {
    let endpoint = emulator().await;
    let sdk = sdk_config(&endpoint).await;
    let s3 = s3_client(&sdk, &activity_log::config::SdkSettings::default());
    let bucket = unique_name("activity-log-web");
    create_bucket(&s3, &bucket)
        .await
        .unwrap_or_else(|e| panic!("create {bucket}: {e:?}"));
    (endpoint, s3, bucket)
}

#[tokio::test]
async fn the_page_goes_up_with_its_headers_and_config_and_old_assets_stay() {
    let (endpoint, s3, bucket) = page_bucket().await;
    let distribution = distribution(&endpoint);

    // First deploy. A config.json of the build (a development one) and the build tool's own
    // folder (.vite/) are not part of what goes up.
    let first = Dist::new(&[
        ("index.html", "<!doctype html><title>v1</title>"),
        ("assets/index-abc123.js", "console.log(1)"),
        ("assets/index-abc123.css", "body{}"),
        ("favicon.svg", "<svg/>"),
        ("config.json", r#"{"issuer":"http://127.0.0.1:9100"}"#),
        (".vite/manifest.json", "{}"),
    ]);
    let stdout = succeeded(&upload(
        &endpoint,
        &[
            "--bucket",
            &bucket,
            "--dist",
            first.path(),
            "--issuer",
            ISSUER,
            "--client-id",
            "web-client",
            "--scope",
            "openid profile api://activity-log/Activities.Read",
            "--distribution-id",
            &distribution,
        ],
    ));
    assert!(stdout.contains("uploaded 5 files"), "{stdout}");
    let mut after_first = objects(&s3, &bucket).await;
    let written = after_first
        .remove("config.json")
        .unwrap_or_else(|| panic!("no config.json"));
    assert_eq!(
        (written.0.as_str(), written.1.as_str()),
        ("application/json", NO_CACHE)
    );
    assert_eq!(
        config(&written.2),
        json!({
            "issuer": ISSUER,
            "clientId": "web-client",
            "scope": "openid profile api://activity-log/Activities.Read"
        }),
        "no audience when none is given"
    );
    assert_eq!(
        after_first,
        BTreeMap::from([
            (
                "index.html".to_owned(),
                entry(
                    "text/html; charset=utf-8",
                    NO_CACHE,
                    "<!doctype html><title>v1</title>"
                )
            ),
            (
                "assets/index-abc123.js".to_owned(),
                entry(
                    "text/javascript; charset=utf-8",
                    IMMUTABLE,
                    "console.log(1)"
                )
            ),
            (
                "assets/index-abc123.css".to_owned(),
                entry("text/css; charset=utf-8", IMMUTABLE, "body{}")
            ),
            (
                "favicon.svg".to_owned(),
                entry("image/svg+xml", NO_CACHE, "<svg/>")
            ),
        ])
    );

    // Second deploy: a new script, the same style sheet, no favicon any more, an audience, and
    // the deployed signing key pinned for Verify.
    let second = Dist::new(&[
        ("index.html", "<!doctype html><title>v2</title>"),
        ("assets/index-def456.js", "console.log(2)"),
        ("assets/index-abc123.css", "body{}"),
    ]);
    let key = Dist::new(&[("SigningPublicKeyPem.pem", SIGNING_KEY_PEM)]);
    let key_file = format!("{}/SigningPublicKeyPem.pem", key.path());
    succeeded(&upload(
        &endpoint,
        &[
            "--bucket",
            &bucket,
            "--dist",
            second.path(),
            "--issuer",
            ISSUER,
            "--client-id",
            "web-client-2",
            "--audience",
            "activity-log-api",
            "--signing-public-key",
            &key_file,
            "--distribution-id",
            &distribution,
        ],
    ));
    let after_second = objects(&s3, &bucket).await;
    assert_eq!(
        after_second.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            // The old script stays for pages opened before this deploy; the favicon the new
            // build no longer has is gone.
            "assets/index-abc123.css",
            "assets/index-abc123.js",
            "assets/index-def456.js",
            "config.json",
            "index.html",
        ]
    );
    assert_eq!(
        after_second["assets/index-def456.js"],
        entry(
            "text/javascript; charset=utf-8",
            IMMUTABLE,
            "console.log(2)"
        )
    );
    assert_eq!(
        after_second["index.html"],
        entry(
            "text/html; charset=utf-8",
            NO_CACHE,
            "<!doctype html><title>v2</title>"
        )
    );
    assert_eq!(
        config(&after_second["config.json"].2),
        json!({ "issuer": ISSUER, "clientId": "web-client-2", "audience": "activity-log-api",
                "signingPublicKeyPem": SIGNING_KEY_PEM })
    );
    // Anything but a PEM public key is refused before anything goes up.
    let not_a_key = Dist::new(&[(
        "key.pem",
        "-----BEGIN PRIVATE KEY-----\nxx\n-----END PRIVATE KEY-----\n",
    )]);
    let refused = upload(
        &endpoint,
        &[
            "--bucket",
            &bucket,
            "--dist",
            second.path(),
            "--issuer",
            ISSUER,
            "--client-id",
            "web-client-2",
            "--signing-public-key",
            &format!("{}/key.pem", not_a_key.path()),
        ],
    );
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("not a PEM public key"),
        "{refused:?}"
    );

    // Each deploy invalidated what changes in place (never the immutable assets).
    let mut invalidations = invalidated_paths(&endpoint, &distribution);
    for paths in &mut invalidations {
        paths.sort();
    }
    invalidations.sort();
    assert_eq!(
        invalidations,
        [
            vec!["/config.json", "/favicon.svg", "/index.html"],
            vec!["/config.json", "/favicon.svg", "/index.html"],
        ],
        "first: the files it put; second: the files it put and the favicon it deleted"
    );
}

#[tokio::test]
async fn wrong_invocations_fail_with_a_clear_message() {
    let (endpoint, s3, bucket) = page_bucket().await;
    let missing = std::env::temp_dir().join(unique_name("no-such-dist"));
    let missing = missing.to_str().unwrap_or_default();
    let page = Dist::new(&[("index.html", "<!doctype html>")]);
    let no_index = Dist::new(&[("assets/index-abc123.js", "")]);
    let other_bucket = unique_name("no-such-bucket");

    let cases: [(&[&str], i32, &[&str]); 5] = [
        (
            &[
                "--bucket",
                &bucket,
                "--dist",
                missing,
                "--issuer",
                ISSUER,
                "--client-id",
                "c",
            ],
            1,
            &["no such directory", missing],
        ),
        (
            &[
                "--bucket",
                &bucket,
                "--dist",
                no_index.path(),
                "--issuer",
                ISSUER,
                "--client-id",
                "c",
            ],
            1,
            &["no index.html"],
        ),
        (
            &[
                "--bucket",
                &other_bucket,
                "--dist",
                page.path(),
                "--issuer",
                ISSUER,
                "--client-id",
                "c",
            ],
            1,
            &["NoSuchBucket"],
        ),
        (
            &[
                "--bucket",
                &bucket,
                "--dist",
                page.path(),
                "--issuer",
                ISSUER,
            ],
            2,
            &["--client-id"],
        ),
        (
            &[
                "--bucket",
                &bucket,
                "--dist",
                page.path(),
                "--issuer",
                "http://idp.example.com",
                "--client-id",
                "c",
            ],
            2,
            &["--issuer must be an https:// URL"],
        ),
    ];
    for (args, status, messages) in cases {
        let out = upload(&endpoint, args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(status), "{args:?}: {stderr}");
        for message in messages {
            assert!(stderr.contains(message), "{args:?}: {stderr}");
        }
        assert!(!stderr.contains("Traceback"), "{args:?}: {stderr}");
    }
    // Nothing went up to the bucket along the way.
    let listed = s3
        .list_objects_v2()
        .bucket(&bucket)
        .send()
        .await
        .unwrap_or_else(|e| panic!("list: {e}"));
    assert_eq!(listed.key_count(), Some(0));
}
