//! The authorisation matrix: every endpoint × {no token, expired token, wrong signature, each
//! role, an unknown role, another tenant}, with tokens verified by the functions (local mode).
//! Another tenant's ids and cursors reveal nothing.

use std::sync::atomic::{AtomicU32, Ordering};

use activity_log::app::App;
use activity_log::config::AuthMode;
use activity_log::handlers::{exports, query, record};
use activity_log::testing::ApiRequest;
use activity_log::testing::doubles::RecordingLauncher;
use activity_log::testing::fixtures::{local_issuer, refused_tokens};
use activity_log_tests::json_body as body;
use activity_log_tests::{isolated_app, token};
use lambda_http::{Body, Response};
use serde_json::json;

const READERS: [&str; 6] = [
    "GlobalAdmin",
    "BillingAdmin",
    "UserManagementAdmin",
    "AdminAgent",
    "SalesAgent",
    "HelpdeskAgent",
];

#[derive(Clone, Copy, Debug, PartialEq)]
enum Endpoint {
    Record,
    TenantLog,
    CustomerLog,
    Detail,
    CreateExport,
    ExportStatus,
}

const ENDPOINTS: [Endpoint; 6] = [
    Endpoint::Record,
    Endpoint::TenantLog,
    Endpoint::CustomerLog,
    Endpoint::Detail,
    Endpoint::CreateExport,
    Endpoint::ExportStatus,
];

struct World {
    app: App,
    export_id: String,
    next: AtomicU32,
}

impl World {
    async fn call(&self, endpoint: Endpoint, authorization: Option<&str>) -> Response<Body> {
        let with = |r: ApiRequest| match authorization {
            Some(a) => r.header("authorization", a),
            None => r,
        };
        let cfg = &self.app.config;
        match endpoint {
            Endpoint::Record => {
                let n = self.next.fetch_add(1, Ordering::Relaxed);
                let payload = json!({"id": format!("m{n}"), "customerId": "c1", "customerName": "Contoso",
                                     "action": "created a referral", "partnerUser": "ann"});
                let req = with(ApiRequest::post("/activities", payload.to_string())).build();
                record::handle(cfg, &self.app.store, &self.app.blobs, req).await
            }
            Endpoint::TenantLog => {
                query::handle(
                    cfg,
                    &self.app.store,
                    &self.app.blobs,
                    with(ApiRequest::get("/activities")).build(),
                )
                .await
            }
            Endpoint::CustomerLog => {
                let req = with(
                    ApiRequest::get("/customers/{customerId}/activities")
                        .path_param("customerId", "c1"),
                );
                query::handle(cfg, &self.app.store, &self.app.blobs, req.build()).await
            }
            Endpoint::Detail => {
                let req = with(
                    ApiRequest::get("/customers/{customerId}/activities/{activityId}")
                        .path_param("customerId", "c1")
                        .path_param("activityId", "seeded"),
                );
                query::handle(cfg, &self.app.store, &self.app.blobs, req.build()).await
            }
            Endpoint::CreateExport | Endpoint::ExportStatus => {
                let req = match endpoint {
                    Endpoint::CreateExport => ApiRequest::post("/exports", "{}"),
                    _ => ApiRequest::get("/exports/{exportId}")
                        .path_param("exportId", &self.export_id),
                };
                // Export launches are not under test here.
                let launcher = RecordingLauncher::default();
                let (store, blobs) = (&self.app.store, &self.app.blobs);
                exports::handle(cfg, store, blobs, &launcher, with(req).build()).await
            }
        }
    }
}

fn bearer(partner: &str, roles: &[&str]) -> String {
    format!("Bearer {}", token(partner, roles, "someone", 600))
}

async fn world() -> World {
    let mut app = isolated_app().await;
    app.config.auth = AuthMode::Local(local_issuer());
    // Every role creates an export that no worker runs; the per-partner limit has its own tests
    // (fair_use.rs).
    app.config.exports.max_active = 1000;
    let w = World {
        app,
        export_id: String::new(),
        next: AtomicU32::new(0),
    };
    // Tenant A owns one activity and one export.
    let seed = json!({"id": "seeded", "customerId": "c1", "customerName": "Contoso", "action": "placed an order", "partnerUser": "ann"});
    let req = ApiRequest::post("/activities", seed.to_string())
        .header("authorization", &bearer("tenant-a", &["ActivityWriter"]))
        .build();
    assert_eq!(
        record::handle(&w.app.config, &w.app.store, &w.app.blobs, req)
            .await
            .status(),
        201
    );
    let r = w
        .call(
            Endpoint::CreateExport,
            Some(&bearer("tenant-a", &["GlobalAdmin"])),
        )
        .await;
    assert_eq!(r.status(), 202);
    World {
        export_id: body(&r)["id"].as_str().unwrap_or_default().to_owned(),
        ..w
    }
}

async fn expect(
    w: &World,
    endpoint: Endpoint,
    who: &str,
    authorization: Option<String>,
    status: u16,
) -> Response<Body> {
    let r = w.call(endpoint, authorization.as_deref()).await;
    assert_eq!(r.status(), status, "{endpoint:?} by {who}: {}", body(&r));
    if status >= 400 {
        assert!(
            body(&r)["error"]["code"].is_string(),
            "{endpoint:?} by {who}: error shape"
        );
    }
    r
}

#[tokio::test]
async fn every_endpoint_by_every_kind_of_caller() {
    let w = world().await;
    // Every check API Gateway's JWT authorizer makes, and the algorithm pinned to RS256.
    let refused = refused_tokens("tenant-a", &["GlobalAdmin", "ActivityWriter"]);
    assert!(refused.len() >= 8);
    let mut checked = 0;
    for endpoint in ENDPOINTS {
        expect(&w, endpoint, "nobody", None, 401).await;
        for (what, bad) in &refused {
            expect(&w, endpoint, what, Some(format!("Bearer {bad}")), 401).await;
        }
        expect(
            &w,
            endpoint,
            "a non-bearer header",
            Some("Basic dXNlcjpwYXNz".into()),
            401,
        )
        .await;
        expect(
            &w,
            endpoint,
            "an unknown role",
            Some(bearer("tenant-a", &["Guest"])),
            403,
        )
        .await;
        let writer_status = if endpoint == Endpoint::Record {
            201
        } else {
            403
        };
        expect(
            &w,
            endpoint,
            "the writer",
            Some(bearer("tenant-a", &["ActivityWriter"])),
            writer_status,
        )
        .await;
        for role in READERS {
            let status = match endpoint {
                Endpoint::Record => 403,
                Endpoint::CreateExport => 202,
                _ => 200,
            };
            expect(
                &w,
                endpoint,
                role,
                Some(bearer("tenant-a", &[role])),
                status,
            )
            .await;
        }
        // Another tenant: its own writes work; tenant A's things do not exist for it.
        let other = if endpoint == Endpoint::Record {
            bearer("tenant-b", &["ActivityWriter"])
        } else {
            bearer("tenant-b", &["GlobalAdmin"])
        };
        let status = match endpoint {
            Endpoint::Record => 201,
            Endpoint::CreateExport => 202,
            Endpoint::Detail | Endpoint::ExportStatus => 404,
            Endpoint::TenantLog | Endpoint::CustomerLog => 200,
        };
        let r = expect(&w, endpoint, "another tenant", Some(other), status).await;
        if matches!(endpoint, Endpoint::TenantLog | Endpoint::CustomerLog) {
            let items = body(&r)["items"].as_array().cloned().unwrap_or_default();
            assert!(
                items.iter().all(|i| i["id"] != "seeded"),
                "{endpoint:?}: tenant A's activity leaked"
            );
        }
        checked += 1;
    }
    assert_eq!(checked, ENDPOINTS.len());
}

#[tokio::test]
async fn another_tenants_cursor_reveals_nothing() {
    let w = world().await;
    for i in 0..3 {
        let r = w
            .call(
                Endpoint::Record,
                Some(&bearer("tenant-a", &["ActivityWriter"])),
            )
            .await;
        assert_eq!(r.status(), 201, "{i}");
    }
    let req = ApiRequest::get("/activities")
        .query("limit", "1")
        .header("authorization", &bearer("tenant-a", &["SalesAgent"]));
    let page = body(&query::handle(&w.app.config, &w.app.store, &w.app.blobs, req.build()).await);
    let cursor = page["nextCursor"].as_str().unwrap_or_default().to_owned();
    assert!(!cursor.is_empty());
    let req = ApiRequest::get("/activities")
        .query("limit", "1")
        .query("cursor", &cursor)
        .header("authorization", &bearer("tenant-b", &["SalesAgent"]));
    let r = query::handle(&w.app.config, &w.app.store, &w.app.blobs, req.build()).await;
    assert_eq!(r.status(), 400);
    let text = body(&r).to_string();
    assert!(
        !text.contains("tenant-a") && !text.contains("seeded"),
        "{text}"
    );
}
