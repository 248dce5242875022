//! `template.yaml`, the `cargo lambda watch` router and the code agree with each other.

use std::collections::BTreeSet;

use activity_log::store::keys;
use activity_log_tests::{read_workspace_file, workspace_root};

fn function_crates() -> BTreeSet<String> {
    std::fs::read_dir(workspace_root().join("functions"))
        .unwrap_or_else(|e| panic!("functions/: {e}"))
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("Cargo.toml").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// (method, path) of every HttpApi event in the template.
fn template_routes(t: &str) -> BTreeSet<(String, String)> {
    let lines: Vec<&str> = t.lines().map(str::trim).collect();
    lines
        .windows(2)
        .filter_map(|w| {
            let method = w[0].strip_prefix("Method: ")?;
            let path = w[1].strip_prefix("Path: ")?;
            Some((method.to_owned(), path.to_owned()))
        })
        .collect()
}

/// (method, path) of every route of `[workspace.metadata.lambda.watch.router]`.
fn router_routes(cargo: &str) -> BTreeSet<(String, String)> {
    let section = cargo
        .split("[workspace.metadata.lambda.watch.router]")
        .nth(1)
        .unwrap_or_default();
    let mut routes = BTreeSet::new();
    let mut path = String::new();
    for line in section.lines().map(str::trim) {
        if line.starts_with('[') && !line.starts_with("[{") {
            break;
        }
        if line.starts_with('"')
            && let Some((p, _)) = line.split_once(" = ")
        {
            path = p.trim_matches('"').to_owned();
        }
        for part in line.split("method = \"").skip(1) {
            if let Some(m) = part.split('"').next() {
                routes.insert((m.to_owned(), path.clone()));
            }
        }
    }
    routes
}

#[test]
fn every_function_crate_is_deployed_with_cargo_lambda_for_arm64() {
    let t = read_workspace_file("template.yaml");
    let crates = function_crates();
    assert!(!crates.is_empty());
    for name in &crates {
        assert!(
            t.contains(&format!("CodeUri: functions/{name}\n")),
            "{name} is not in template.yaml"
        );
    }
    assert_eq!(
        t.matches("BuildMethod: rust-cargolambda").count(),
        crates.len()
    );
    assert!(t.contains("Runtime: provided.al2023") && t.contains("Architectures: [arm64]"));
}

#[test]
fn function_crates_build_without_the_test_support() {
    for name in function_crates() {
        let manifest = read_workspace_file(&format!("functions/{name}/Cargo.toml"));
        let shared: Vec<&str> = manifest
            .lines()
            .filter(|l| l.starts_with("activity-log-shared"))
            .collect();
        assert_eq!(
            shared,
            ["activity-log-shared.workspace = true"],
            "{name} takes the shared crate with its default features only"
        );
    }
}

#[test]
fn local_only_settings_never_reach_aws() {
    let t = read_workspace_file("template.yaml");
    for local in ["AUTH_MODE", "LOCAL_JWT_SECRET", "AWS_ENDPOINT_URL"] {
        assert!(!t.contains(local), "template.yaml sets {local}");
    }
}

#[test]
fn local_router_serves_the_same_routes_as_the_api() {
    let from_template = template_routes(&read_workspace_file("template.yaml"));
    assert!(from_template.len() >= 4, "{from_template:?}");
    assert_eq!(
        router_routes(&read_workspace_file("Cargo.toml")),
        from_template
    );
}

#[test]
fn table_definition_matches_the_key_design_in_code() {
    let t = read_workspace_file("template.yaml");
    for name in [
        keys::PK,
        keys::SK,
        keys::TIME_SK,
        keys::PARTNER_PK,
        keys::PARTNER_SK,
    ] {
        assert!(
            t.contains(&format!("AttributeName: {name}, AttributeType: S")),
            "{name}"
        );
    }
    for index in [keys::BY_TIME_INDEX, keys::BY_PARTNER_TIME_INDEX] {
        assert!(t.contains(&format!("IndexName: {index}")), "{index}");
    }
    assert!(t.contains(&format!(
        "AttributeName: {}\n",
        activity_log::store::dynamodb::TTL
    )));
    assert!(
        t.contains("PointInTimeRecoveryEnabled: true")
            && t.contains("BillingMode: PAY_PER_REQUEST")
    );
}

/// The `Statement` blocks of every inline policy: (effect, actions, resources) as written.
fn statements(t: &str) -> Vec<(String, Vec<String>, Vec<String>)> {
    let mut out = Vec::new();
    let lines: Vec<&str> = t.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim_start();
        if line.starts_with("- Sid: ") {
            let indent = lines[i].len() - line.len();
            let (mut effect, mut actions, mut resources) = (String::new(), Vec::new(), Vec::new());

            let mut j = i + 1;
            let mut in_resource = false;
            while j < lines.len() {
                let l = lines[j];
                let body = l.trim_start();
                let depth = l.len() - body.len();
                if body.is_empty() || depth <= indent {
                    break;
                }
                let list = |v: &str| -> Vec<String> {
                    v.trim_matches(|c| c == '[' || c == ']')
                        .split(',')
                        .map(|a| a.trim().trim_matches('"').to_owned())
                        .filter(|a| !a.is_empty())
                        .collect()
                };
                if let Some(v) = body.strip_prefix("Effect: ") {
                    effect = v.to_owned();
                    in_resource = false;
                } else if let Some(v) = body.strip_prefix("Action: ") {
                    actions = list(v);
                    in_resource = false;
                } else if let Some(v) = body.strip_prefix("Resource:") {
                    resources = list(v);
                    in_resource = resources.is_empty();
                } else if in_resource && let Some(v) = body.strip_prefix("- ") {
                    resources.push(v.to_owned());
                } else if !body.starts_with('-') {
                    in_resource = false;
                }
                j += 1;
            }
            out.push((effect, actions, resources));
            i = j;
        } else {
            i += 1;
        }
    }
    out
}

#[test]
fn policies_grant_named_actions_on_named_resources() {
    let t = read_workspace_file("template.yaml");
    let all = statements(&t);
    assert!(all.len() >= 10, "found only {} statements", all.len());
    for (effect, actions, resources) in &all {
        assert!(!actions.is_empty(), "a statement without actions");
        if effect == "Allow" {
            for a in actions {
                assert!(
                    !a.contains('*'),
                    "wildcard action {a} in an Allow statement"
                );
            }
            assert!(!resources.is_empty(), "an Allow without resources");
            for r in resources {
                assert!(
                    r != "*" && r != "\"*\"",
                    "Allow on every resource: {actions:?}"
                );
            }
        }
    }
    // The only wildcard is the bucket's deny of plain-HTTP access.
    assert!(
        all.iter()
            .any(|(e, a, _)| e == "Deny" && a == &["s3:*".to_owned()])
    );
}

#[test]
fn the_bucket_is_private_encrypted_and_cleans_up() {
    let t = read_workspace_file("template.yaml");
    for needle in [
        "BlockPublicAcls: true",
        "BlockPublicPolicy: true",
        "IgnorePublicAcls: true",
        "RestrictPublicBuckets: true",
        "SSEAlgorithm: AES256",
        "aws:SecureTransport: \"false\"",
        "AbortIncompleteMultipartUpload:",
        "Prefix: exports/",
        "Prefix: details/",
    ] {
        assert!(t.contains(needle), "template.yaml lacks {needle}");
    }
}
