//! `template.yaml`, the `cargo lambda watch` router and the code agree with each other.

use std::collections::BTreeSet;

use activity_log::store::keys;
use activity_log_tests::workspace_root;

fn read(name: &str) -> String {
    std::fs::read_to_string(workspace_root().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

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
    let t = read("template.yaml");
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
fn local_only_settings_never_reach_aws() {
    let t = read("template.yaml");
    for local in ["AUTH_MODE", "LOCAL_JWT_SECRET", "AWS_ENDPOINT_URL"] {
        assert!(!t.contains(local), "template.yaml sets {local}");
    }
}

#[test]
fn local_router_serves_the_same_routes_as_the_api() {
    let from_template = template_routes(&read("template.yaml"));
    assert!(from_template.len() >= 4, "{from_template:?}");
    assert_eq!(router_routes(&read("Cargo.toml")), from_template);
}

#[test]
fn table_definition_matches_the_key_design_in_code() {
    let t = read("template.yaml");
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
