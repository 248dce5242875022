//! Builds requests exactly as API Gateway's HTTP API (payload 2.0) hands them to a function:
//! path parameters, raw query string, JWT authorizer claims. For unit and integration tests.

use lambda_http::Request;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Map, Value, json};

#[derive(Debug, Clone, Default)]
pub struct ApiRequest {
    method: String,
    route: String,
    path: String,
    query: Vec<(String, String)>,
    path_params: Map<String, Value>,
    claims: Option<Map<String, Value>>,
    headers: Map<String, Value>,
    body: Option<String>,
}

impl ApiRequest {
    pub fn new(method: &str, route: &str) -> Self {
        Self {
            method: method.to_owned(),
            route: route.to_owned(),
            path: route.to_owned(),
            ..Self::default()
        }
    }

    pub fn get(route: &str) -> Self {
        Self::new("GET", route)
    }

    pub fn post(route: &str, body: impl Into<String>) -> Self {
        let mut r = Self::new("POST", route);
        r.body = Some(body.into());
        r.header("content-type", "application/json")
    }

    /// A request of `method` with a JSON body (`PATCH`, `DELETE`).
    pub fn with_body(method: &str, route: &str, body: impl Into<String>) -> Self {
        let mut r = Self::new(method, route);
        r.body = Some(body.into());
        r.header("content-type", "application/json")
    }

    /// Fills a `{name}` of the route, as API Gateway does.
    pub fn path_param(mut self, name: &str, value: &str) -> Self {
        self.path = self.path.replace(
            &format!("{{{name}}}"),
            &utf8_percent_encode(value, NON_ALPHANUMERIC).to_string(),
        );
        self.path_params.insert(name.to_owned(), json!(value));
        self
    }

    pub fn query(mut self, name: &str, value: &str) -> Self {
        self.query.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.insert(name.to_owned(), json!(value));
        self
    }

    /// Authorizer claims as the JWT authorizer passes them: every value a string, an array
    /// claim as `"[A B]"`.
    pub fn claims(mut self, claims: &[(&str, &str)]) -> Self {
        self.claims = Some(
            claims
                .iter()
                .map(|(k, v)| ((*k).to_owned(), json!(v)))
                .collect(),
        );
        self
    }

    /// Claims of a caller with `roles` (rendered in the authorizer's bracketed form).
    pub fn caller(self, partner: &str, roles: &[&str]) -> Self {
        let roles = format!("[{}]", roles.join(" "));
        self.claims(&[
            ("partner_id", partner),
            ("sub", "user-1"),
            ("roles", &roles),
        ])
    }

    pub fn event(&self) -> Value {
        let raw_query = self
            .query
            .iter()
            .map(|(k, v)| {
                format!(
                    "{}={}",
                    utf8_percent_encode(k, NON_ALPHANUMERIC),
                    utf8_percent_encode(v, NON_ALPHANUMERIC)
                )
            })
            .collect::<Vec<_>>()
            .join("&");
        let mut ctx = json!({
            "accountId": "123456789012",
            "apiId": "api",
            "domainName": "api.example.com",
            "domainPrefix": "api",
            "http": {"method": self.method, "path": self.path, "protocol": "HTTP/1.1",
                     "sourceIp": "192.0.2.1", "userAgent": "tests"},
            "requestId": "req-test",
            "routeKey": format!("{} {}", self.method, self.route),
            "stage": "$default",
            "time": "25/Nov/2026:12:00:00 +0000",
            "timeEpoch": 1_795_608_000_000_i64,
        });
        if let Some(claims) = &self.claims {
            ctx["authorizer"] = json!({"jwt": {"claims": claims, "scopes": null}});
        }
        let mut headers = self.headers.clone();
        headers.insert("host".into(), json!("api.example.com"));
        json!({
            "version": "2.0",
            "routeKey": format!("{} {}", self.method, self.route),
            "rawPath": self.path,
            "rawQueryString": raw_query,
            "headers": headers,
            "pathParameters": self.path_params,
            "requestContext": ctx,
            "body": self.body,
            "isBase64Encoded": false,
        })
    }

    pub fn build(&self) -> Request {
        lambda_http::request::from_str(&self.event().to_string())
            .unwrap_or_else(|e| panic!("test event does not parse: {e}"))
    }
}
