//! `template.yaml`, the `cargo lambda watch` router and the code agree with each other.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::process::{Command, Stdio};

use activity_log::config::ClaimNames;
use activity_log::http::routes::ROUTES;
use activity_log::store::keys;
use activity_log_tests::cloudformation::{
    at, evaluate, iam_like, intrinsic, is_intrinsic, items, path_pattern_matches, resources_of,
    text, texts,
};
use activity_log_tests::{read_workspace_file, workspace_root};
use serde_norway::Value;

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
    router_functions(cargo)
        .into_iter()
        .map(|(method, path, _)| (method, path))
        .collect()
}

/// `sam build` builds every function crate through the Makefile (one cargo lambda build of
/// them all, each function's target copying its own bootstrap), in the repository
/// (samconfig.toml), for the architecture the template's parameter names.
#[test]
fn every_function_crate_is_built_by_the_makefile_for_the_architecture_parameter() {
    let t = template();
    let makefile = read_workspace_file("Makefile");
    let crates = function_crates();
    assert!(!crates.is_empty());
    let mut built = BTreeSet::new();
    for (id, function) in resources_of(&t, "AWS::Serverless::Function") {
        assert_eq!(
            text(at(function, "Metadata.BuildMethod")),
            "makefile",
            "{id}"
        );
        assert_eq!(text(at(function, "Properties.CodeUri")), ".", "{id}");
        let target = format!("build-{id}: functions\n\t$(call copy-bootstrap,");
        let crate_name = makefile
            .split_once(&target)
            .and_then(|(_, rest)| rest.split_once(')'))
            .map(|(name, _)| name.to_owned())
            .unwrap_or_else(|| panic!("the Makefile has no {target}…) for {id}"));
        assert!(
            crates.contains(&crate_name),
            "{id} copies {crate_name}, which is no function crate"
        );
        assert!(
            built.insert(crate_name.clone()),
            "{crate_name} is built for two functions"
        );
    }
    assert_eq!(built, crates, "every function crate is deployed once");
    for name in &crates {
        assert!(
            makefile.contains(&format!(" {name}")),
            "the Makefile's one build leaves out {name}"
        );
    }

    let globals = at(&t, "Globals.Function");
    assert_eq!(text(at(globals, "Runtime")), "provided.al2023");
    let architectures = items(at(globals, "Architectures"));
    assert_eq!(architectures.len(), 1);
    assert!(is_intrinsic(&architectures[0], "Ref", "Architecture"));
    let parameter = at(&t, "Parameters.Architecture");
    assert_eq!(text(at(parameter, "Default")), "arm64");
    assert_eq!(texts(at(parameter, "AllowedValues")), ["arm64", "x86_64"]);
    assert!(
        makefile.contains("ARCHITECTURE ?= arm64"),
        "the Makefile's default"
    );
    let samconfig = read_workspace_file("samconfig.toml");
    assert!(
        samconfig.contains("[default.build.parameters]\nbuild_in_source = true"),
        "sam build must not copy the repository: {samconfig}"
    );
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
    for local in [
        "AUTH_MODE",
        "LOCAL_JWT_SECRET",
        "AWS_ENDPOINT_URL",
        "DESTINATIONS_ALLOW_PRIVATE_ENDPOINTS",
    ] {
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
            // In a key policy, "*" is the key itself (the_signing_key_signs_only_for_the_signing_functions).
            if actions.iter().all(|a| a.starts_with("kms:")) {
                continue;
            }
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
fn the_signing_key_signs_only_for_the_signing_functions() {
    let t = template();
    let key = at(&t, "Resources.SigningKey.Properties");
    assert_eq!(text(at(key, "KeySpec")), "ECC_NIST_P256");
    assert_eq!(text(at(key, "KeyUsage")), "SIGN_VERIFY");
    let mut signers = BTreeSet::new();
    for statement in items(at(key, "KeyPolicy.Statement")) {
        assert_eq!(text(at(statement, "Effect")), "Allow");
        let actions = texts(at(statement, "Action"));
        assert!(actions.iter().all(|a| !a.contains('*')), "{actions:?}");
        if actions.contains(&"kms:Sign") {
            for p in items(at(statement, "Principal.AWS")) {
                let role = intrinsic(p, "GetAtt")
                    .map(|v| text(v).to_owned())
                    .unwrap_or_else(|| {
                        panic!("kms:Sign for a principal that is not a function's role: {p:?}")
                    });
                signers.insert(role);
            }
        }
    }
    assert_eq!(
        signers,
        BTreeSet::from([
            "IntegrityFunctionRole.Arn".to_owned(),
            "ExportWorkerFunctionRole.Arn".to_owned(),
            "SealHeadsFunctionRole.Arn".to_owned()
        ])
    );
    // No function's own policy grants a KMS action: the key's policy is the only grant.
    let resources = at(&t, "Resources")
        .as_mapping()
        .unwrap_or_else(|| panic!("no resources"));
    for (name, resource) in resources {
        if text(at(resource, "Type")) == "AWS::Serverless::Function" {
            let policies = format!("{:?}", at(resource, "Properties.Policies"));
            assert!(
                !policies.contains("kms:"),
                "{name:?}'s own policies grant KMS"
            );
        }
    }
    for name in ["IntegrityFunction", "ExportWorkerFunction"] {
        let env = at(
            &t,
            &format!("Resources.{name}.Properties.Environment.Variables"),
        );
        assert!(
            is_intrinsic(at(env, "SIGNING_KEY_ID"), "GetAtt", "SigningKey.Arn"),
            "{name} signs with the stack's key"
        );
    }
    assert!(
        is_intrinsic(
            at(&t, "Outputs.SigningPublicKeyPem.Value"),
            "GetAtt",
            "SigningPublicKey.Pem"
        ),
        "the stack outputs the public key"
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
        // Details are written once (the record function writes with If-None-Match).
        "Sid: DetailsAreWrittenOnce",
        "s3:if-none-match: \"true\"",
    ] {
        assert!(t.contains(needle), "template.yaml lacks {needle}");
    }
}

/// Signed heads are kept where no one can change them: Object Lock in compliance mode for the
/// log's retention, versioned, deletes denied to everyone, new anchors only from the integrity
/// function (which may list and put, nothing else), and the bucket named in the outputs.
#[test]
fn anchors_are_kept_under_object_lock_and_only_the_integrity_function_and_the_sealer_add_them() {
    let t = template();
    let bucket = at(&t, "Resources.AnchorBucket.Properties");
    assert_eq!(at(bucket, "ObjectLockEnabled"), &Value::Bool(true));
    let rule = at(bucket, "ObjectLockConfiguration.Rule.DefaultRetention");
    assert_eq!(text(at(rule, "Mode")), "COMPLIANCE");
    assert!(format!("{:?}", at(rule, "Days")).contains("RetentionDays"));
    assert_eq!(
        text(at(bucket, "VersioningConfiguration.Status")),
        "Enabled"
    );
    let policy = format!(
        "{:?}",
        at(
            &t,
            "Resources.AnchorBucketPolicy.Properties.PolicyDocument.Statement"
        )
    );
    for needle in [
        "s3:DeleteObject",
        "s3:DeleteObjectVersion",
        "s3:PutObjectRetention",
        "IntegrityFunctionRole",
        "SealHeadsFunctionRole",
    ] {
        assert!(
            policy.contains(needle),
            "the anchor bucket's policy lacks {needle}"
        );
    }
    let integrity = format!(
        "{:?}",
        at(&t, "Resources.IntegrityFunction.Properties.Policies")
    );
    assert!(integrity.contains("AnchorBucket"), "{integrity}");
    assert!(integrity.contains("index/bySequence"), "{integrity}");
    assert!(!integrity.contains("dynamodb:PutItem"), "{integrity}");
    assert!(!integrity.contains("s3:Delete"), "{integrity}");
    // The sealer: the moved heads and the chain by sequence read, anchors and seals added.
    let sealer = format!(
        "{:?}",
        at(&t, "Resources.SealHeadsFunction.Properties.Policies")
    );
    for needle in [
        "index/byHeadMoved",
        "index/bySequence",
        "/seals/*",
        "/anchors/*",
    ] {
        assert!(
            sealer.contains(needle),
            "the sealer lacks {needle}: {sealer}"
        );
    }
    for forbidden in ["dynamodb:PutItem", "dynamodb:UpdateItem", "s3:Delete"] {
        assert!(!sealer.contains(forbidden), "{forbidden}: {sealer}");
    }
    let schedule = format!(
        "{:?}",
        at(&t, "Resources.SealHeadsFunction.Properties.Events.Schedule")
    );
    assert!(
        schedule.contains("ScheduleV2") && schedule.contains("SealPeriodMinutes"),
        "{schedule}"
    );
    for (name, resource) in resources_of(&t, "AWS::Serverless::Function") {
        let policies = format!(
            "{:?}",
            resource.get("Properties").and_then(|p| p.get("Policies"))
        );
        match name {
            "IntegrityFunction" | "SealHeadsFunction" => {}
            // It lists the latest anchors its manifests' heads must extend, and nothing else.
            "ExportWorkerFunction" => {
                // One statement names the bucket: the listing (the bucket's policy keeps every
                // writer but the signing functions out, tested above).
                let anchors = policies.matches("AnchorBucket").count();
                assert_eq!(anchors, 1, "{name}: {policies}");
                assert!(policies.contains("ListAnchors"), "{name}: {policies}");
            }
            _ => assert!(
                !policies.contains("AnchorBucket"),
                "{name} may touch anchors"
            ),
        }
    }
    assert!(
        t.get("Outputs")
            .and_then(|o| o.get("AnchorBucketName"))
            .is_some()
    );
    let env = format!(
        "{:?}",
        at(
            &t,
            "Resources.IntegrityFunction.Properties.Environment.Variables.ANCHOR_BUCKET"
        )
    );
    assert!(env.contains("AnchorBucket"), "{env}");
}

/// The functions: SAM's and the plain Lambda ones.
fn functions(t: &Value) -> Vec<(&str, &Value)> {
    let mut all = resources_of(t, "AWS::Serverless::Function");
    all.extend(resources_of(t, "AWS::Lambda::Function"));
    all
}

/// Every environment variable a function gets (Globals included), by function.
fn environments(t: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    let globals = t
        .get("Globals")
        .and_then(|g| g.get("Function"))
        .and_then(|f| f.get("Environment"))
        .and_then(|e| e.get("Variables"))
        .and_then(Value::as_mapping);
    for (name, value) in globals.into_iter().flatten() {
        out.push(("Globals".to_owned(), text(name).to_owned(), value.clone()));
    }
    for (function, resource) in functions(t) {
        let vars = resource
            .get("Properties")
            .and_then(|p| p.get("Environment"))
            .and_then(|e| e.get("Variables"))
            .and_then(Value::as_mapping);
        for (name, value) in vars.into_iter().flatten() {
            out.push((function.to_owned(), text(name).to_owned(), value.clone()));
        }
    }
    out
}

#[test]
fn no_environment_variable_holds_a_secret() {
    let t = template();
    let secrets: BTreeSet<&str> = resources_of(&t, "AWS::SecretsManager::Secret")
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert!(secrets.contains("CursorSigningKey"), "{secrets:?}");
    let all = environments(&t);
    assert!(all.len() >= 10, "found only {} variables", all.len());
    for (function, name, value) in &all {
        let shown = format!("{value:?}");
        // A dynamic reference would put the secret's value into the function's configuration,
        // readable with lambda:GetFunctionConfiguration.
        for dynamic in ["resolve:secretsmanager", "resolve:ssm-secure"] {
            assert!(!shown.contains(dynamic), "{function} {name} = {shown}");
        }
        assert_ne!(name, "CURSOR_SIGNING_KEY", "{function}: the key itself");
        if name.ends_with("_SECRET") {
            let secret = intrinsic(value, "Ref").map(text);
            assert!(
                secret.is_some_and(|s| secrets.contains(s)),
                "{function} {name} names a secret of the stack: {shown}"
            );
        }
    }
    // The cursor key: named to the one function that signs and checks cursors, which alone may
    // read it.
    let named: Vec<&str> = all
        .iter()
        .filter(|(_, name, _)| name == "CURSOR_SIGNING_KEY_SECRET")
        .map(|(f, _, _)| f.as_str())
        .collect();
    assert_eq!(named, ["QueryActivityFunction"]);
    for (function, resource) in functions(&t) {
        let policies = resource
            .get("Properties")
            .and_then(|p| p.get("Policies"))
            .map(|p| format!("{p:?}"))
            .unwrap_or_default();
        assert_eq!(
            policies.contains("secretsmanager:"),
            function == "QueryActivityFunction",
            "{function}'s access to secrets"
        );
    }
    let t = read_workspace_file("template.yaml");
    let reads: Vec<_> = statements(&t)
        .into_iter()
        .filter(|(_, actions, _)| actions.iter().any(|a| a.starts_with("secretsmanager:")))
        .collect();
    assert_eq!(
        reads,
        [(
            "Allow".to_owned(),
            vec!["secretsmanager:GetSecretValue".to_owned()],
            vec!["!Ref CursorSigningKey".to_owned()]
        )]
    );
}

#[test]
fn every_function_logs_to_a_group_of_the_stack_with_a_retention() {
    let t = template();
    let groups: BTreeMap<&str, &Value> = resources_of(&t, "AWS::Logs::LogGroup")
        .into_iter()
        .collect();
    for (name, group) in &groups {
        assert!(
            intrinsic(at(group, "Properties.RetentionInDays"), "Ref")
                .is_some_and(|p| text(p) == "LogRetentionDays"),
            "{name} keeps its logs LogRetentionDays"
        );
    }
    let mut used = BTreeSet::new();
    for (function, resource) in functions(&t) {
        let group = intrinsic(at(resource, "Properties.LoggingConfig.LogGroup"), "Ref")
            .map(text)
            .unwrap_or_else(|| panic!("{function} logs to a group of the stack"));
        assert!(groups.contains_key(group), "{function}: no group {group}");
        assert!(used.insert(group), "{group} is shared");
    }
    let api = at(&t, "Resources.HttpApi.Properties.AccessLogSettings");
    assert!(
        is_intrinsic(at(api, "DestinationArn"), "GetAtt", "ApiAccessLogs.Arn"),
        "the API's access log goes to its group"
    );
    used.insert("ApiAccessLogs");
    assert_eq!(
        used,
        groups.keys().copied().collect(),
        "a group nobody uses"
    );
}

#[test]
fn the_access_log_names_the_caller_but_never_the_token() {
    let t = template();
    let format = text(
        intrinsic(
            at(&t, "Resources.HttpApi.Properties.AccessLogSettings.Format"),
            "Sub",
        )
        .unwrap_or_else(|| panic!("the format is a !Sub")),
    );
    let parameters = BTreeMap::from([("PartnerClaim", ClaimNames::default().partner)]);
    let line = parameters.iter().fold(format.to_owned(), |f, (k, v)| {
        f.replace(&format!("${{{k}}}"), v)
    });
    // As API Gateway writes a line: each variable replaced by a value without quotes.
    let sample = line
        .split('"')
        .enumerate()
        .fold(String::new(), |mut out, (i, piece)| {
            if i > 0 {
                out.push('"');
            }
            out.push_str(if piece.starts_with("$context.") {
                "x"
            } else {
                piece
            });
            out
        });
    let fields: serde_json::Value =
        serde_json::from_str(&sample).unwrap_or_else(|e| panic!("{e}: {sample}"));
    for field in [
        "requestId",
        "awsRequestId",
        "routeKey",
        "status",
        "responseLatencyMs",
        "partner",
        "subject",
    ] {
        assert!(fields.get(field).is_some(), "no {field} in {sample}");
    }
    // The functions log the same two ids (activity_log::logging): the API's and Lambda's.
    assert!(
        line.contains(r#""requestId":"$context.requestId""#),
        "{line}"
    );
    assert!(
        line.contains(r#""awsRequestId":"$context.integration.requestId""#),
        "{line}"
    );
    assert!(
        line.contains("$context.authorizer.claims.partner_id"),
        "{line}"
    );
    assert!(line.contains("$context.authorizer.claims.sub"), "{line}");
    for secret in ["Authorization", "header", "identity.apiKey"] {
        assert!(!line.contains(secret), "{secret} in {line}");
    }
}

#[test]
fn deleted_or_overwritten_objects_stay_recoverable() {
    let t = template();
    let bucket = at(&t, "Resources.ActivityBucket.Properties");
    assert_eq!(
        text(at(bucket, "VersioningConfiguration.Status")),
        "Enabled"
    );
    let rules = items(at(bucket, "LifecycleConfiguration.Rules"));
    let keep = rules
        .iter()
        .find(|r| r.get("NoncurrentVersionExpiration").is_some())
        .unwrap_or_else(|| panic!("no rule for earlier versions"));
    assert!(is_intrinsic(
        at(keep, "NoncurrentVersionExpiration.NoncurrentDays"),
        "Ref",
        "RecoveryDays"
    ));
    assert!(keep.get("Prefix").is_none(), "every prefix");
    assert!(
        is_intrinsic(
            at(bucket, "LoggingConfiguration.DestinationBucketName"),
            "Ref",
            "AccessLogBucket"
        ),
        "S3 logs every request to the activity bucket"
    );
}

#[test]
fn every_alarm_notifies_the_topic_and_the_worker_cannot_take_all_concurrency() {
    let t = template();
    let alarms = resources_of(&t, "AWS::CloudWatch::Alarm");
    assert!(!alarms.is_empty());
    for (name, alarm) in alarms {
        let actions = items(at(alarm, "Properties.AlarmActions"));
        assert!(
            actions.iter().any(|a| is_intrinsic(a, "Ref", "AlarmTopic")),
            "{name} notifies AlarmTopic"
        );
    }
    assert!(is_intrinsic(
        at(
            &t,
            "Resources.ExportWorkerFunction.Properties.ReservedConcurrentExecutions"
        ),
        "Ref",
        "ExportWorkerConcurrency"
    ));
}

/// The metrics AWS services publish that the alarms and the dashboard may watch, with the
/// dimension each is watched by (CloudWatch's user guide, "AWS services that publish CloudWatch
/// metrics"; API Gateway's HTTP API metrics).
const AWS_METRICS: &[(&str, &str, &str)] = &[
    ("AWS/ApiGateway", "Count", "ApiId"),
    ("AWS/ApiGateway", "4xx", "ApiId"),
    ("AWS/ApiGateway", "5xx", "ApiId"),
    ("AWS/ApiGateway", "Latency", "ApiId"),
    ("AWS/Lambda", "Errors", "FunctionName"),
    ("AWS/Lambda", "Throttles", "FunctionName"),
    ("AWS/Lambda", "Duration", "FunctionName"),
    ("AWS/DynamoDB", "ReadThrottleEvents", "TableName"),
    ("AWS/DynamoDB", "WriteThrottleEvents", "TableName"),
    ("AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName"),
];

/// The namespace of the functions' own metrics as the template names it, with the stack's name
/// put in as `name` (as the dashboard check fills its `${…}`).
const OWN_NAMESPACE: &str = "ActivityLog/name";

/// Published by AWS, or by the functions (activity_log::metrics: its names, by `Function`).
fn known_metric(namespace: &str, name: &str, dimension: &str) -> bool {
    AWS_METRICS.contains(&(namespace, name, dimension))
        || (namespace == OWN_NAMESPACE
            && dimension == activity_log::metrics::FUNCTION
            && activity_log::metrics::METRICS
                .iter()
                .any(|m| m.name == name))
}

/// A namespace written as text or as `!Sub "…${AWS::StackName}"`.
fn namespace_of(v: &Value) -> String {
    match intrinsic(v, "Sub") {
        Some(sub) => text(sub).replace("${AWS::StackName}", "name"),
        None => text(v).to_owned(),
    }
}

#[test]
fn alarms_and_the_dashboard_watch_metrics_that_are_published() {
    let t = template();
    let mut watched = 0;
    // Metrics the stack's metric filters make of a log group of the stack (no dimensions).
    let filtered: Vec<(String, String)> = resources_of(&t, "AWS::Logs::MetricFilter")
        .iter()
        .flat_map(|(name, f)| {
            let group = intrinsic(at(f, "Properties.LogGroupName"), "Ref").map(text);
            assert!(
                group.is_some_and(|g| at(&t, "Resources").get(g).is_some()),
                "{name} reads no log group of the stack"
            );
            items(at(f, "Properties.MetricTransformations"))
                .iter()
                .map(|m| {
                    (
                        namespace_of(at(m, "MetricNamespace")),
                        text(at(m, "MetricName")).to_owned(),
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        !filtered.is_empty(),
        "the API's throttled answers are counted"
    );
    for (alarm, resource) in resources_of(&t, "AWS::CloudWatch::Alarm") {
        let p = at(resource, "Properties");
        let metrics: Vec<&Value> = match p.get("Metrics") {
            Some(list) => items(list)
                .iter()
                .filter_map(|m| m.get("MetricStat").map(|s| at(s, "Metric")))
                .collect(),
            None => vec![p],
        };
        assert!(!metrics.is_empty(), "{alarm} watches nothing");
        for m in metrics {
            let (namespace, name) = (namespace_of(at(m, "Namespace")), text(at(m, "MetricName")));
            if m.get("Dimensions").is_none() {
                assert!(
                    filtered.contains(&(namespace.clone(), name.to_owned())),
                    "{alarm}: {namespace} {name} without dimensions is no metric filter's"
                );
                watched += 1;
                continue;
            }
            let dimensions = items(at(m, "Dimensions"));
            assert_eq!(dimensions.len(), 1, "{alarm}");
            let dimension = text(at(&dimensions[0], "Name"));
            assert!(
                known_metric(&namespace, name, dimension),
                "{alarm}: {namespace} {name} by {dimension} is not published"
            );
            if namespace == OWN_NAMESPACE {
                let function = text(at(&dimensions[0], "Value"));
                assert!(
                    function_crates().contains(function),
                    "{alarm}: no function is named {function} in its metrics"
                );
            }
            watched += 1;
        }
        // An alarm on a rate or sum says what it computes.
        if let Some(list) = p.get("Metrics") {
            let returned: Vec<_> = items(list)
                .iter()
                .filter(|m| m.get("ReturnData").and_then(Value::as_bool) == Some(true))
                .collect();
            assert_eq!(returned.len(), 1, "{alarm} returns one series");
            assert!(returned[0].get("Expression").is_some(), "{alarm}");
        }
    }
    assert!(watched >= 10, "{watched}");

    // The dashboard's body, with the stack's names put in, is JSON whose every metric is one
    // of the above ("." and "..." repeat the row before, as CloudWatch reads them).
    let body = text(
        intrinsic(
            at(&t, "Resources.Dashboard.Properties.DashboardBody"),
            "Sub",
        )
        .unwrap_or_else(|| panic!("the dashboard body is a !Sub")),
    );
    let mut filled = String::new();
    let mut rest = body;
    while let Some(start) = rest.find("${") {
        filled.push_str(&rest[..start]);
        let end = rest[start..]
            .find('}')
            .unwrap_or_else(|| panic!("unclosed ${{ in the dashboard"));
        filled.push_str("name");
        rest = &rest[start + end + 1..];
    }
    filled.push_str(rest);
    let dashboard: serde_json::Value =
        serde_json::from_str(&filled).unwrap_or_else(|e| panic!("{e}: {filled}"));
    let widgets = dashboard["widgets"]
        .as_array()
        .unwrap_or_else(|| panic!("no widgets"));
    let mut rows = 0;
    for widget in widgets {
        let mut previous: Vec<String> = Vec::new();
        for row in widget["properties"]["metrics"]
            .as_array()
            .unwrap_or_else(|| panic!("a widget without metrics: {widget}"))
        {
            let cells: Vec<String> = row
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c.as_str().map(str::to_owned))
                .collect();
            let full: Vec<String> = if cells.first().map(String::as_str) == Some("...") {
                let mut f = previous[..previous.len() - (cells.len() - 1)].to_vec();
                f.extend(cells[1..].iter().cloned());
                f
            } else {
                cells
                    .iter()
                    .enumerate()
                    .map(|(i, c)| {
                        if c == "." {
                            previous[i].clone()
                        } else {
                            c.clone()
                        }
                    })
                    .collect()
            };
            if full.len() == 2 {
                assert!(
                    filtered.contains(&(full[0].clone(), full[1].clone())),
                    "the dashboard shows {full:?}, which no metric filter makes"
                );
                previous = full;
                rows += 1;
                continue;
            }
            assert!(
                known_metric(&full[0], &full[1], &full[2]),
                "the dashboard shows {full:?}, which is not published"
            );
            if full[0] == OWN_NAMESPACE {
                assert!(function_crates().contains(&full[3]), "{full:?}");
            }
            previous = full;
            rows += 1;
        }
    }
    assert!(rows >= 15, "{rows}");

    // The functions publish where the alarms look: the stack's namespace, in every function's
    // environment.
    let globals = at(&t, "Globals.Function.Environment.Variables");
    assert_eq!(
        namespace_of(at(globals, "METRICS_NAMESPACE")),
        OWN_NAMESPACE
    );
    assert!(OWN_NAMESPACE.starts_with(activity_log::metrics::DEFAULT_NAMESPACE));
    assert!(
        resources_of(&t, "AWS::CloudWatch::Alarm")
            .iter()
            .any(|(_, a)| text(at(a, "Properties.MetricName")) == "ExportsFailed"),
        "failed exports alarm on the worker's own metric"
    );
}

// ---- The page in AWS: CloudFront in front of the page bucket and the API ----

/// CloudFront's managed policies (ids from the CloudFront Developer Guide, "Use managed cache
/// policies" and "Use managed origin request policies").
const CACHING_OPTIMIZED: &str = "658327ea-f89d-4fab-a63d-7e88639e58f6";
const CACHING_DISABLED: &str = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad";
const ALL_VIEWER_EXCEPT_HOST_HEADER: &str = "b689b0a8-53d0-40ab-baf2-68738e2966ac";
const ALL_METHODS: [&str; 7] = ["GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE"];

fn template() -> Value {
    serde_norway::from_str(&read_workspace_file("template.yaml"))
        .unwrap_or_else(|e| panic!("template.yaml: {e}"))
}

fn distribution(t: &Value) -> &Value {
    at(t, "Resources.WebDistribution.Properties.DistributionConfig")
}

/// The behavior CloudFront picks for a path: the first cache behavior whose pattern matches,
/// else the default one.
fn behavior_for<'a>(t: &'a Value, path: &str) -> &'a Value {
    let d = distribution(t);
    items(at(d, "CacheBehaviors"))
        .iter()
        .find(|b| path_pattern_matches(text(at(b, "PathPattern")), path))
        .unwrap_or_else(|| at(d, "DefaultCacheBehavior"))
}

fn origin<'a>(t: &'a Value, behavior: &Value) -> &'a Value {
    let id = text(at(behavior, "TargetOriginId"));
    items(at(distribution(t), "Origins"))
        .iter()
        .find(|o| text(at(o, "Id")) == id)
        .unwrap_or_else(|| panic!("no origin {id}"))
}

/// A concrete path of a route: `/customers/{customerId}` → `/customers/x-1`.
fn sample_path(route: &str) -> String {
    route
        .split('/')
        .map(|s| if s.starts_with('{') { "x-1" } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

const PAGE_PATHS: [&str; 6] = [
    "/",
    "/auth/callback",
    "/some/page",
    "/index.html",
    "/config.json",
    "/assets/index-abc123.js",
];

#[test]
fn every_api_route_reaches_the_api_uncached_with_its_authorization_header() {
    let t = template();
    let routes = router_routes(&read_workspace_file("Cargo.toml"));
    assert!(routes.len() >= 4, "{routes:?}");
    for (method, route) in &routes {
        let path = sample_path(route);
        let b = behavior_for(&t, &path);
        let o = origin(&t, b);
        let domain = intrinsic(at(o, "DomainName"), "Sub").and_then(Value::as_str);
        assert_eq!(
            domain,
            Some("${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}"),
            "{method} {route} ({path}) does not go to the HTTP API"
        );
        assert_eq!(
            text(at(o, "CustomOriginConfig.OriginProtocolPolicy")),
            "https-only"
        );
        // Caching off, and every viewer header but Host (API Gateway wants its own host name):
        // Authorization and the query string reach the JWT authorizer and the functions.
        assert_eq!(text(at(b, "CachePolicyId")), CACHING_DISABLED, "{route}");
        assert_eq!(
            text(at(b, "OriginRequestPolicyId")),
            ALL_VIEWER_EXCEPT_HOST_HEADER,
            "{route}"
        );
        assert_eq!(texts(at(b, "AllowedMethods")), ALL_METHODS, "{route}");
        assert!(texts(at(b, "AllowedMethods")).contains(&method.as_str()));
        assert_eq!(text(at(b, "ViewerProtocolPolicy")), "https-only", "{route}");
        assert!(
            b.get("FunctionAssociations").is_none(),
            "{route}: the page-routes function must not touch API paths"
        );
    }
    // Every cache behavior is an API behavior: the page is the default one.
    for b in items(at(distribution(&t), "CacheBehaviors")) {
        assert_eq!(text(at(b, "TargetOriginId")), "HttpApi");
    }
}

#[test]
fn the_page_comes_from_its_private_bucket_through_origin_access_control() {
    let t = template();
    for path in PAGE_PATHS {
        let b = behavior_for(&t, path);
        assert_eq!(
            b,
            at(distribution(&t), "DefaultCacheBehavior"),
            "{path} must be the page's"
        );
    }
    let page = at(distribution(&t), "DefaultCacheBehavior");
    let o = origin(&t, page);
    assert!(is_intrinsic(
        at(o, "DomainName"),
        "GetAtt",
        "WebBucket.RegionalDomainName"
    ));
    assert!(is_intrinsic(
        at(o, "OriginAccessControlId"),
        "GetAtt",
        "WebOriginAccessControl.Id"
    ));
    assert_eq!(text(at(o, "S3OriginConfig.OriginAccessIdentity")), "");
    assert_eq!(text(at(page, "CachePolicyId")), CACHING_OPTIMIZED);
    assert_eq!(text(at(page, "ViewerProtocolPolicy")), "redirect-to-https");
    let functions = items(at(page, "FunctionAssociations"));
    assert_eq!(functions.len(), 1);
    assert_eq!(text(at(&functions[0], "EventType")), "viewer-request");
    assert!(is_intrinsic(
        at(&functions[0], "FunctionARN"),
        "GetAtt",
        "WebPageRoutesFunction.FunctionARN"
    ));
    assert_eq!(
        text(at(
            &t,
            "Resources.WebPageRoutesFunction.Properties.FunctionConfig.Runtime"
        )),
        "cloudfront-js-2.0"
    );

    let oac = at(
        &t,
        "Resources.WebOriginAccessControl.Properties.OriginAccessControlConfig",
    );
    assert_eq!(text(at(oac, "OriginAccessControlOriginType")), "s3");
    assert_eq!(text(at(oac, "SigningBehavior")), "always");
    assert_eq!(text(at(oac, "SigningProtocol")), "sigv4");

    let bucket = at(&t, "Resources.WebBucket.Properties");
    for flag in [
        "BlockPublicAcls",
        "BlockPublicPolicy",
        "IgnorePublicAcls",
        "RestrictPublicBuckets",
    ] {
        assert_eq!(
            at(bucket, &format!("PublicAccessBlockConfiguration.{flag}")).as_bool(),
            Some(true),
            "{flag}"
        );
    }
    let sse = &items(at(
        bucket,
        "BucketEncryption.ServerSideEncryptionConfiguration",
    ))[0];
    assert_eq!(
        text(at(sse, "ServerSideEncryptionByDefault.SSEAlgorithm")),
        "AES256"
    );

    // Only this distribution reads the bucket, and only over TLS.
    let policy = at(&t, "Resources.WebBucketPolicy.Properties");
    assert!(is_intrinsic(at(policy, "Bucket"), "Ref", "WebBucket"));
    let statements = items(at(policy, "PolicyDocument.Statement"));
    let allows: Vec<&Value> = statements
        .iter()
        .filter(|s| text(at(s, "Effect")) == "Allow")
        .collect();
    assert_eq!(allows.len(), 1, "{allows:?}");
    let allow = allows[0];
    assert_eq!(
        text(at(allow, "Principal.Service")),
        "cloudfront.amazonaws.com"
    );
    assert_eq!(texts(at(allow, "Action")), ["s3:GetObject"]);
    let source = intrinsic(at(allow, "Condition.StringEquals.AWS:SourceArn"), "Sub")
        .and_then(Value::as_str)
        .unwrap_or_default();
    assert!(
        source.ends_with(":distribution/${WebDistribution}"),
        "{source}"
    );
    assert!(statements.iter().any(|s| {
        text(at(s, "Effect")) == "Deny"
            && s.get("Condition")
                .and_then(|c| c.get("Bool"))
                .and_then(|c| c.get("aws:SecureTransport"))
                .and_then(Value::as_str)
                == Some("false")
    }));
}

#[test]
fn no_error_page_turns_an_api_answer_into_the_page() {
    let t = template();
    assert!(
        distribution(&t).get("CustomErrorResponses").is_none(),
        "CustomErrorResponses would answer an API 403/404 with index.html"
    );
}

#[test]
fn the_page_and_the_api_send_security_headers() {
    let t = template();
    let config = at(
        &t,
        "Resources.WebResponseHeadersPolicy.Properties.ResponseHeadersPolicyConfig.SecurityHeadersConfig",
    );
    for (issuer, extra, idp) in [
        (
            "https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0",
            "",
            "https://login.microsoftonline.com",
        ),
        (
            "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf",
            "https://partner.auth.eu-west-1.amazoncognito.com",
            "https://cognito-idp.eu-west-1.amazonaws.com",
        ),
        (
            "https://idp.example.com:8443",
            "",
            "https://idp.example.com:8443",
        ),
    ] {
        let parameters = BTreeMap::from([("JwtIssuer", issuer), ("WebAuthOrigins", extra)]);
        let csp = evaluate(
            at(config, "ContentSecurityPolicy.ContentSecurityPolicy"),
            &parameters,
        );
        let csp = text(&csp);
        let directives: BTreeMap<&str, Vec<&str>> = csp
            .split(';')
            .filter_map(|d| {
                let mut words = d.split_whitespace();
                Some((words.next()?, words.collect()))
            })
            .collect();
        assert!(!csp.contains("unsafe-"), "{csp}");
        assert_eq!(directives["default-src"], ["'self'"], "{csp}");
        assert_eq!(directives["script-src"], ["'self'"], "{csp}");
        assert_eq!(directives["style-src"], ["'self'"], "{csp}");
        assert_eq!(directives["frame-ancestors"], ["'none'"], "{csp}");
        assert_eq!(directives["object-src"], ["'none'"], "{csp}");
        assert_eq!(directives["base-uri"], ["'self'"], "{csp}");
        let mut expected = vec!["'self'", idp];
        expected.extend(extra.split_whitespace());
        assert_eq!(directives["connect-src"], expected, "{csp}");
        assert_eq!(directives["form-action"], expected, "{csp}");
    }
    assert_eq!(
        at(config, "ContentSecurityPolicy.Override").as_bool(),
        Some(true)
    );
    let hsts = at(config, "StrictTransportSecurity");
    assert!(at(hsts, "AccessControlMaxAgeSec").as_u64() >= Some(31_536_000));
    assert_eq!(at(hsts, "IncludeSubdomains").as_bool(), Some(true));
    assert_eq!(at(hsts, "Override").as_bool(), Some(true));
    assert_eq!(
        at(config, "ContentTypeOptions.Override").as_bool(),
        Some(true)
    );
    assert_eq!(text(at(config, "FrameOptions.FrameOption")), "DENY");
    assert_eq!(
        text(at(config, "ReferrerPolicy.ReferrerPolicy")),
        "strict-origin-when-cross-origin"
    );
    // Every behavior sends them, the page's and the API's.
    let d = distribution(&t);
    for b in std::iter::once(at(d, "DefaultCacheBehavior")).chain(items(at(d, "CacheBehaviors"))) {
        assert!(
            is_intrinsic(
                at(b, "ResponseHeadersPolicyId"),
                "Ref",
                "WebResponseHeadersPolicy"
            ),
            "{b:?}"
        );
    }
}

#[test]
fn the_stack_names_its_page() {
    let t = template();
    assert_eq!(
        intrinsic(at(&t, "Outputs.WebUrl.Value"), "Sub").and_then(Value::as_str),
        Some("https://${WebDistribution.DomainName}/")
    );
    assert!(is_intrinsic(
        at(&t, "Outputs.WebBucketName.Value"),
        "Ref",
        "WebBucket"
    ));
    assert!(is_intrinsic(
        at(&t, "Outputs.WebDistributionId.Value"),
        "Ref",
        "WebDistribution"
    ));
}

#[test]
fn claim_names_and_the_page_client_are_parameters_that_reach_every_function() {
    let t = template();
    let client = at(&t, "Parameters.WebClientId");
    assert_eq!(text(at(client, "Type")), "String");
    assert!(client.get("Default").is_none(), "WebClientId is required");
    let defaults = ClaimNames::default();
    for (parameter, default, variable) in [
        ("PartnerClaim", defaults.partner.as_str(), "PARTNER_CLAIM"),
        ("RolesClaim", defaults.roles.as_str(), "ROLES_CLAIM"),
    ] {
        assert_eq!(
            text(at(&t, &format!("Parameters.{parameter}.Default"))),
            default,
            "the template's default is the code's"
        );
        assert!(is_intrinsic(
            at(
                &t,
                &format!("Globals.Function.Environment.Variables.{variable}")
            ),
            "Ref",
            parameter
        ));
        let resources = at(&t, "Resources").as_mapping().into_iter().flatten();
        for (name, r) in resources {
            if text(at(r, "Type")) == "AWS::Serverless::Function" {
                let own = r
                    .get("Properties")
                    .and_then(|p| p.get("Environment"))
                    .and_then(|e| e.get("Variables"))
                    .and_then(|v| v.get(variable));
                assert!(own.is_none(), "{name:?} overrides {variable}");
            }
        }
    }
}

/// Runs the page-routes CloudFront Function with node on viewer-request events.
fn rewrite(events: &serde_json::Value) -> serde_json::Value {
    let t = template();
    let code = text(at(
        &t,
        "Resources.WebPageRoutesFunction.Properties.FunctionCode",
    ));
    let program = format!(
        "{code}\nconst events = {events};\nconsole.log(JSON.stringify(events.map((e) => handler(e))));\n"
    );
    let mut node = Command::new("node")
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("node (Node.js 20, as the page's build needs): {e}"));
    node.stdin
        .take()
        .map(|mut s| s.write_all(program.as_bytes()))
        .transpose()
        .unwrap_or_else(|e| panic!("node stdin: {e}"));
    let out = node
        .wait_with_output()
        .unwrap_or_else(|e| panic!("node: {e}"));
    assert!(
        out.status.success(),
        "node: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("node output: {e}"))
}

#[test]
fn page_routes_are_answered_with_index_html_and_files_as_they_are() {
    // CloudFront hands the function the path in `uri` and the query string apart from it.
    let cases = [
        ("/", "", "/index.html"),
        ("/", "x", "/index.html"),
        ("/some/page", "", "/index.html"),
        ("/auth/callback", "code=abc&state=xyz", "/index.html"),
        ("/customers-of-mine", "", "/index.html"),
        ("/v1.2/page", "", "/index.html"),
        ("/index.html", "", "/index.html"),
        ("/assets/index-abc.js", "", "/assets/index-abc.js"),
        ("/assets/index-abc.css", "", "/assets/index-abc.css"),
        ("/config.json", "", "/config.json"),
        ("/favicon.ico", "", "/favicon.ico"),
    ];
    let events: Vec<serde_json::Value> = cases
        .iter()
        .map(|(uri, query, _)| {
            let querystring: serde_json::Map<String, serde_json::Value> = query
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (k.to_owned(), serde_json::json!({ "value": v }))
                })
                .collect();
            serde_json::json!({
                "version": "1.0",
                "context": { "eventType": "viewer-request" },
                "viewer": { "ip": "192.0.2.1" },
                "request": {
                    "method": "GET",
                    "uri": uri,
                    "querystring": querystring,
                    "headers": { "host": { "value": "d111111abcdef8.cloudfront.net" } },
                    "cookies": {}
                }
            })
        })
        .collect();
    let requests = rewrite(&serde_json::Value::Array(events.clone()));
    for (((uri, query, expected), request), event) in cases
        .iter()
        .zip(requests.as_array().into_iter().flatten())
        .zip(&events)
    {
        assert_eq!(request["uri"], *expected, "{uri}?{query}");
        assert_eq!(
            request["querystring"], event["request"]["querystring"],
            "{uri}?{query}: the query string is kept"
        );
        assert_eq!(request["method"], "GET");
    }
    assert_eq!(requests.as_array().map(Vec::len), Some(cases.len()));
}

/// Whether `function`'s inline policies allow `action` on the activity table for an item whose
/// partition key is `pk` (its `dynamodb:LeadingKeys`), as IAM evaluates the statements' keys
/// and `ForAllValues:StringLike` / `StringNotLike` conditions.
fn table_write_allowed(function: &Value, action: &str, pk: &str) -> bool {
    // Any write may name the ttl (a past one deletes).
    table_write_naming_allowed(
        function,
        action,
        pk,
        &["pk", "sk", activity_log::store::dynamodb::TTL],
    )
}

/// Whether `function` may make the write `action` to partition `pk` naming only `attributes`
/// (a statement bound by `dynamodb:Attributes` allows it only if it lists every one).
fn table_write_naming_allowed(
    function: &Value,
    action: &str,
    pk: &str,
    attributes: &[&str],
) -> bool {
    let statements = items(at(function, "Properties.Policies"))
        .iter()
        .flat_map(|p| items(at(p, "Statement")).iter());
    statements
        .filter(|s| text(at(s, "Effect")) == "Allow")
        .filter(|s| texts(at(s, "Action")).contains(&action))
        .filter(|s| {
            let resources = match at(s, "Resource") {
                Value::Sequence(list) => list.clone(),
                one => vec![one.clone()],
            };
            resources
                .iter()
                .any(|r| is_intrinsic(r, "GetAtt", "ActivityTable.Arn"))
        })
        .any(|s| {
            let Some(condition) = s.get("Condition") else {
                return true;
            };
            let patterns = |operator: &str| -> Option<Vec<&str>> {
                condition
                    .get(operator)
                    .map(|c| texts(at(c, "dynamodb:LeadingKeys")))
            };
            let like = patterns("ForAllValues:StringLike");
            let not_like = patterns("ForAllValues:StringNotLike");
            let named = condition
                .get("ForAllValues:StringEquals")
                .and_then(|c| c.get("dynamodb:Attributes"))
                .map(texts);
            like.is_none_or(|ps| ps.iter().any(|p| iam_like(p, pk)))
                && not_like.is_none_or(|ps| !ps.iter().any(|p| iam_like(p, pk)))
                && named.is_none_or(|allowed| attributes.iter().all(|a| allowed.contains(a)))
        })
}

/// The log is immutable by IAM, not only by code: every write a function may make to the
/// table is bound to the partitions it owns (`dynamodb:LeadingKeys`), with the partition keys
/// the code builds, customer ids that look like other kinds of key included; no function may
/// delete an item or an activity's details, and the bucket refuses deleting details to anyone.
#[test]
fn each_function_writes_only_the_partitions_it_owns_and_nothing_deletes_the_log() {
    use activity_log::domain::{ActivityId, CustomerId, ExportId, PartnerId};
    use keys::TableKey;

    let t = template();
    let partner = PartnerId::parse("p1").unwrap_or_else(|e| panic!("{e}"));
    let export = ExportId::generate();
    let job = TableKey::export_job(&partner, &export).pk;
    let slots = TableKey::export_slots(&partner).pk;
    let rate = TableKey::rate_window(&partner, 0).pk;
    let customer_pks: Vec<String> = ["c1", "a#X#b", "x#RATE", "y#EXPORTS", "z#C#w", "#X#"]
        .iter()
        .map(|c| CustomerId::parse(c).unwrap_or_else(|e| panic!("{c}: {e}")))
        .flat_map(|c| {
            let id = ActivityId::parse("a1").unwrap_or_else(|e| panic!("{e}"));
            [
                TableKey::activity(&partner, &c, &id).pk,
                TableKey::chain_head(&partner, &c).pk,
            ]
        })
        .collect();
    let writes = ["dynamodb:PutItem", "dynamodb:UpdateItem"];
    let function = |name: &str| at(&t, &format!("Resources.{name}")).clone();

    // (function, may write customers' partitions, may write export items, may count requests)
    let expected = [
        ("RecordActivityFunction", true, false, true),
        ("QueryActivityFunction", false, false, true),
        // It signs heads and keeps them in the anchor bucket; it writes nothing of a customer's.
        ("IntegrityFunction", false, false, true),
        ("ExportActivityFunction", false, true, true),
        ("ExportWorkerFunction", false, true, false),
        ("SequenceFeedFunction", false, false, false),
        // It records each change in the partner's own account only (checked below).
        ("ManageDestinationsFunction", false, false, true),
        // It records an automatic pause there (checked below).
        ("DeliverFeedFunction", false, false, false),
    ];
    for (name, customers, exports, counts) in expected {
        let f = function(name);
        for pk in &customer_pks {
            let allowed = writes.iter().any(|a| table_write_allowed(&f, a, pk));
            assert_eq!(allowed, customers, "{name} writing {pk}");
            // An activity's ttl is set by the put that inserts it, never by an update (a past
            // ttl deletes): no function may update an item of a customer's partition.
            assert!(
                !table_write_allowed(&f, "dynamodb:UpdateItem", pk),
                "{name} updating {pk}"
            );
        }
        for pk in [&job, &slots] {
            let allowed = writes.iter().any(|a| table_write_allowed(&f, a, pk));
            assert_eq!(allowed, exports, "{name} writing {pk}");
        }
        // Only the sequencer places activities in the feed, by an update naming nothing but
        // the activity's key and feedPosition.
        for pk in &customer_pks {
            assert_eq!(
                table_write_naming_allowed(
                    &f,
                    "dynamodb:UpdateItem",
                    pk,
                    &["pk", "sk", keys::FEED_POSITION]
                ),
                name == "SequenceFeedFunction",
                "{name} placing an activity of {pk} in the feed"
            );
        }
        assert_eq!(
            table_write_allowed(&f, "dynamodb:UpdateItem", &rate),
            counts,
            "{name} counting requests ({rate})"
        );
        let policies = format!("{:?}", at(&f, "Properties.Policies"));
        for never in [
            "dynamodb:DeleteItem",
            "dynamodb:BatchWriteItem",
            "dynamodb:PartiQL",
        ] {
            assert!(!policies.contains(never), "{name} is allowed {never}");
        }
        // Details are written once and never deleted by a function.
        for s in items(at(&f, "Properties.Policies"))
            .iter()
            .flat_map(|p| items(at(p, "Statement")).iter())
        {
            let resource = format!("{:?}", at(s, "Resource"));
            if resource.contains("/details/") {
                let actions = texts(at(s, "Action"));
                assert!(
                    actions.iter().all(|a| !a.starts_with("s3:Delete")),
                    "{name} may delete details: {actions:?}"
                );
            }
        }
    }

    // Destinations and the records of their changes: the manager writes the tenant's
    // destinations and the partner's own account, and no other function writes either.
    let account = CustomerId::partner_account();
    let id = ActivityId::parse("a1").unwrap_or_else(|e| panic!("{e}"));
    let account_pks = [
        TableKey::activity(&partner, &account, &id).pk,
        TableKey::chain_head(&partner, &account).pk,
    ];
    let destination = TableKey::destination(
        &partner,
        &activity_log::domain::destination::DestinationId::generate(),
    )
    .pk;
    let look_alike = CustomerId::parse("x#C#_partner").unwrap_or_else(|e| panic!("{e}"));
    let look_alike = TableKey::activity(&partner, &look_alike, &id).pk;
    for (name, ..) in expected {
        let f = function(name);
        let manager = name == "ManageDestinationsFunction";
        let deliverer = name == "DeliverFeedFunction";
        for pk in &account_pks {
            assert_eq!(
                table_write_allowed(&f, "dynamodb:PutItem", pk),
                manager || deliverer || name == "RecordActivityFunction",
                "{name} recording in {pk}"
            );
        }
        assert_eq!(
            writes
                .iter()
                .any(|a| table_write_allowed(&f, a, &destination)),
            manager || deliverer,
            "{name} writing {destination}"
        );
        if manager || deliverer {
            assert!(
                !writes
                    .iter()
                    .any(|a| table_write_allowed(&f, a, &look_alike)),
                "{name} writing {look_alike}, a customer made to look like the partner's account"
            );
        }
    }

    let bucket_policy = items(at(
        &t,
        "Resources.ActivityBucketPolicy.Properties.PolicyDocument.Statement",
    ));
    let deny = bucket_policy
        .iter()
        .find(|s| text(at(s, "Effect")) == "Deny" && s.get("Condition").is_none())
        .unwrap_or_else(|| panic!("the activity bucket denies no deletion"));
    assert_eq!(text(at(deny, "Principal")), "*");
    let actions = texts(at(deny, "Action"));
    assert!(
        actions.contains(&"s3:DeleteObject") && actions.contains(&"s3:DeleteObjectVersion"),
        "{actions:?}"
    );
    let resource = intrinsic(at(deny, "Resource"), "Sub").map(text);
    assert_eq!(resource, Some("${ActivityBucket.Arn}/details/*"));
}

/// (method, path, function) of every route of `[workspace.metadata.lambda.watch.router]`.
fn router_functions(cargo: &str) -> BTreeSet<(String, String, String)> {
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
            let method = part.split('"').next().unwrap_or_default();
            let function = part
                .split("function = \"")
                .nth(1)
                .and_then(|f| f.split('"').next())
                .unwrap_or_default();
            routes.insert((method.to_owned(), path.clone(), function.to_owned()));
        }
    }
    routes
}

/// The route table (`shared/src/http/routes.rs`) is the API: `openapi.yaml`'s operations,
/// `template.yaml`'s HttpApi events, the local router with the function of each route, and the
/// routes the build's bootstrap check calls (`scripts/check_bootstraps.py`).
#[test]
fn the_route_table_is_the_contract_the_template_the_router_and_the_build_check() {
    let table: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|r| (r.method.to_owned(), r.path.to_owned()))
        .collect();
    assert_eq!(
        template_routes(&read_workspace_file("template.yaml")),
        table
    );

    let contract: Value = serde_norway::from_str(&read_workspace_file("openapi.yaml"))
        .unwrap_or_else(|e| panic!("openapi.yaml: {e}"));
    let mut operations = BTreeSet::new();
    for (path, item) in contract["paths"].as_mapping().into_iter().flatten() {
        for (method, _) in item.as_mapping().into_iter().flatten() {
            let method = method.as_str().unwrap_or_default();
            if ["get", "post", "put", "patch", "delete"].contains(&method) {
                operations.insert((
                    method.to_uppercase(),
                    path.as_str().unwrap_or_default().to_owned(),
                ));
            }
        }
    }
    assert_eq!(operations, table);

    let with_functions: BTreeSet<(String, String, String)> = ROUTES
        .iter()
        .map(|r| {
            (
                r.method.to_owned(),
                r.path.to_owned(),
                r.function.to_owned(),
            )
        })
        .collect();
    assert_eq!(
        router_functions(&read_workspace_file("Cargo.toml")),
        with_functions
    );

    let check = read_workspace_file("scripts/check_bootstraps.py");
    let called = check
        .split("HTTP_ROUTES = {")
        .nth(1)
        .and_then(|rest| rest.split('}').next())
        .unwrap_or_default();
    let mut checked = 0;
    for line in called.lines().map(str::trim).filter(|l| l.starts_with('"')) {
        let quoted: Vec<&str> = line.split('"').skip(1).step_by(2).collect();
        let [function, method, path] = quoted[..] else {
            panic!("scripts/check_bootstraps.py: {line}");
        };
        assert!(
            ROUTES
                .iter()
                .any(|r| (r.function, r.method, r.path) == (function, method, path)),
            "scripts/check_bootstraps.py calls {method} {path} of {function}, not a route"
        );
        checked += 1;
    }
    assert_eq!(
        checked,
        function_crates().len() - 4,
        "every HTTP function (all but the export worker, the sealer, the sequencer and delivery)"
    );
}

#[test]
fn only_delivery_assumes_roles_and_only_partners_roles_with_an_external_id() {
    let t = template();
    for (name, f) in functions(&t) {
        let policies = f.get("Properties").and_then(|p| p.get("Policies"));
        let statements: Vec<&Value> = policies
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
            .filter_map(|p| p.get("Statement"))
            .flat_map(items)
            .collect();
        let assume: Vec<&&Value> = statements
            .iter()
            .filter(|s| {
                s.get("Action")
                    .is_some_and(|a| texts(a).contains(&"sts:AssumeRole"))
            })
            .collect();
        if name != "DeliverFeedFunction" {
            assert!(assume.is_empty(), "{name} may assume roles");
            continue;
        }
        let [s] = assume.as_slice() else {
            panic!("delivery has {} statements that assume roles", assume.len());
        };
        assert_eq!(texts(at(s, "Action")), ["sts:AssumeRole"]);
        assert_eq!(
            intrinsic(at(s, "Resource"), "Sub").map(text),
            Some("arn:${AWS::Partition}:iam::*:role/*")
        );
        // Never this account's roles (the service's own), always with an external id, under
        // a session name that says who asks.
        assert_eq!(
            intrinsic(
                at(s, "Condition.StringNotEquals.aws:ResourceAccount"),
                "Ref"
            )
            .map(text),
            Some("AWS::AccountId")
        );
        assert_eq!(text(at(s, "Condition.Null.sts:ExternalId")), "false");
        assert_eq!(
            text(at(s, "Condition.StringLike.sts:RoleSessionName")),
            "activity-log-*"
        );
    }
}

#[test]
fn the_athena_table_reads_the_parquet_exports_as_they_are_written() {
    let t = template();
    let table = at(&t, "Resources.ExportsTable.Properties.TableInput");
    let columns: Vec<(String, String)> = table["StorageDescriptor"]["Columns"]
        .as_sequence()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|c| {
            (
                c["Name"].as_str().unwrap_or_default().to_owned(),
                c["Type"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(columns, activity_log::export::parquet::hive_columns());
    // Partition projection finds each file where the worker writes it.
    let now = chrono::Utc::now();
    let mut spec = activity_log::testing::fixtures::csv_export_of_last_days(4, now);
    spec.format = activity_log::domain::ExportFormat::Parquet;
    let partner = activity_log::domain::PartnerId::parse("p1").unwrap_or_else(|e| panic!("{e}"));
    let job =
        activity_log::domain::ExportJob::pending(partner, spec, now, chrono::TimeDelta::days(1));
    let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 26).unwrap_or_default();
    let path = job.data_file_path("us-east-1", day, 1);
    let (folder, _) = path.rsplit_once('/').unwrap_or_default();
    let params = &table["Parameters"];
    let location = intrinsic(&params["storage.location.template"], "Sub")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .replace("${!accountid}", "p1")
        .replace("${!export_id}", &job.id.to_string())
        .replace("${!region}", "us-east-1")
        .replace("${!eventday}", "20261126");
    assert_eq!(
        location,
        format!("s3://${{ActivityBucket}}/{}{folder}/", job.dataset_prefix())
    );
    assert_eq!(params["projection.eventday.format"], "yyyyMMdd");
    assert_eq!(params["projection.accountid.type"], "injected");
    assert_eq!(params["projection.export_id.type"], "injected");
    // Its queries are bounded and their results encrypted, expiring with the exports.
    let workgroup = at(
        &t,
        "Resources.AnalyticsWorkGroup.Properties.WorkGroupConfiguration",
    );
    assert_eq!(workgroup["EnforceWorkGroupConfiguration"], true);
    assert!(
        workgroup["BytesScannedCutoffPerQuery"]
            .as_u64()
            .is_some_and(|b| b <= 10 << 30)
    );
    let output = intrinsic(&workgroup["ResultConfiguration"]["OutputLocation"], "Sub")
        .and_then(Value::as_str)
        .unwrap_or_default();
    assert_eq!(output, "s3://${ActivityBucket}/athena-results/");
    let rules = at(
        &t,
        "Resources.ActivityBucket.Properties.LifecycleConfiguration.Rules",
    );
    assert!(
        rules
            .as_sequence()
            .is_some_and(|r| r.iter().any(|r| r["Prefix"] == "athena-results/")),
        "query results expire"
    );
}
