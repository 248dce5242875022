//! A loopback proxy in front of the emulator's DynamoDB API that injects the failures DynamoDB
//! documents: throttling (`ThrottlingException`, `ProvisionedThroughputExceededException`),
//! server errors (500 `InternalServerError`, 503 `ServiceUnavailable`, a bare 500 without an
//! error code), a response lost after the
//! write was applied, and `BatchGetItem` answering part of its keys as `UnprocessedKeys`; and in
//! front of STS, the `AccessDenied` of a role that does not trust the caller.
//!
//! Tests point a real SDK client at [`FaultProxy::url`], arm faults per operation and count what
//! was injected and what reached the emulator. The benchmark harness also reads
//! [`FaultProxy::seen`] to count what the functions ask of DynamoDB and S3 (items per batch,
//! part sizes) against the services' limits.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HOST};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

/// What the proxy does instead of (or besides) forwarding a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 400 `ThrottlingException` (on-demand tables, control plane).
    Throttle,
    /// 400 `ProvisionedThroughputExceededException`.
    ThroughputExceeded,
    /// 500 `InternalServerError`.
    InternalError,
    /// 503 `ServiceUnavailable`.
    Unavailable,
    /// A 500 with an HTML body and no error code, as a failing front end answers.
    BareServerError,
    /// Forwarded and applied by the emulator, but the caller gets a 500: the write happened
    /// and the client cannot know it.
    LoseResponse,
    /// `BatchGetItem` only: the emulator is asked for the first key of each table; the rest come
    /// back as `UnprocessedKeys`.
    UnprocessedKeys,
    /// STS (query protocol): 403 `AccessDenied`, as `AssumeRole` answers when the role does not
    /// trust the caller or the external id differs.
    AccessDenied,
}

struct Rule {
    operation: String,
    fault: Fault,
    remaining: usize,
}

/// A request the proxy forwarded: what the service asked of AWS, for counting against limits.
#[derive(Debug, Clone)]
pub struct Seen {
    /// DynamoDB's `X-Amz-Target` operation, or the S3 operation the method and query imply.
    pub operation: String,
    pub query: String,
    pub body_bytes: usize,
    /// Items in a `TransactWriteItems`/`BatchWriteItem`, keys in a `BatchGetItem`, else 0.
    pub items: usize,
}

#[derive(Default)]
struct State {
    rules: Vec<Rule>,
    injected: HashMap<String, usize>,
    forwarded: HashMap<String, usize>,
    seen: Vec<Seen>,
}

/// A running proxy; it stops with the test's runtime.
#[derive(Clone)]
pub struct FaultProxy {
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (the emulator's base URL) on a free loopback port.
    pub async fn start(upstream: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("fault proxy: bind: {e}"));
        let port = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("fault proxy: local_addr: {e}"))
            .port();
        let state = Arc::new(Mutex::new(State::default()));
        let forward = Forward {
            upstream: upstream.trim_end_matches('/').to_owned(),
            client: reqwest::Client::new(),
            state: state.clone(),
        };
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let forward = forward.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let forward = forward.clone();
                        async move { Ok::<_, Infallible>(forward.handle(req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            url: format!("http://127.0.0.1:{port}"),
            state,
        }
    }

    /// Arms `fault` for the next `times` calls of `operation` (e.g. `"TransactWriteItems"`).
    pub fn inject(&self, operation: &str, fault: Fault, times: usize) {
        self.lock().rules.push(Rule {
            operation: operation.to_owned(),
            fault,
            remaining: times,
        });
    }

    /// Disarms every fault (counters stay).
    pub fn heal(&self) {
        self.lock().rules.clear();
    }

    /// Faults injected so far into calls of `operation`.
    pub fn injected(&self, operation: &str) -> usize {
        self.lock().injected.get(operation).copied().unwrap_or(0)
    }

    /// Calls of `operation` that reached the emulator.
    pub fn forwarded(&self, operation: &str) -> usize {
        self.lock().forwarded.get(operation).copied().unwrap_or(0)
    }

    /// Every request forwarded so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.lock().seen.clone()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[derive(Clone)]
struct Forward {
    upstream: String,
    client: reqwest::Client,
    state: Arc<Mutex<State>>,
}

impl Forward {
    fn take_fault(&self, operation: &str) -> Option<Fault> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let rule = state
            .rules
            .iter_mut()
            .find(|r| r.operation == operation && r.remaining > 0)?;
        rule.remaining -= 1;
        let fault = rule.fault;
        *state.injected.entry(operation.to_owned()).or_default() += 1;
        Some(fault)
    }

    fn count_forwarded(&self, seen: Seen) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        *state.forwarded.entry(seen.operation.clone()).or_default() += 1;
        state.seen.push(seen);
    }

    async fn handle(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let (parts, body) = req.into_parts();
        let body = match body.collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => return error(StatusCode::BAD_REQUEST, "ProxyError", &e.to_string()),
        };
        // DynamoDB's JSON protocol names the operation in `X-Amz-Target: DynamoDB_20120810.<Op>`.
        // STS's query protocol names it in the form body's `Action`.
        let operation = parts
            .headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .and_then(|t| t.rsplit('.').next())
            .or_else(|| query_action(&body))
            .unwrap_or("")
            .to_owned();
        let query = parts.uri.query().unwrap_or("").to_owned();
        let seen = Seen {
            operation: if operation.is_empty() {
                s3_operation(&parts.method, &query).to_owned()
            } else {
                operation.clone()
            },
            items: items_in(&operation, &body),
            body_bytes: body.len(),
            query,
        };

        let fault = self.take_fault(&operation);
        let (body, unprocessed) = match fault {
            Some(Fault::Throttle) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "ThrottlingException",
                    "Rate of requests exceeds the allowed throughput.",
                );
            }
            Some(Fault::ThroughputExceeded) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "ProvisionedThroughputExceededException",
                    "The level of configured provisioned throughput for the table was exceeded.",
                );
            }
            Some(Fault::InternalError) => {
                return error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalServerError",
                    "Internal server error",
                );
            }
            Some(Fault::Unavailable) => {
                return error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "ServiceUnavailable",
                    "Service unavailable",
                );
            }
            Some(Fault::BareServerError) => {
                return Response::builder()
                    .status(StatusCode::INTERNAL_SERVER_ERROR)
                    .header(CONTENT_TYPE, "text/html")
                    .body(Full::new(Bytes::from_static(
                        b"<html><body>Internal Server Error</body></html>",
                    )))
                    .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())));
            }
            Some(Fault::AccessDenied) => {
                let xml = format!(
                    "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error>\
                     <Type>Sender</Type><Code>AccessDenied</Code><Message>User: \
                     arn:aws:sts::123456789012:assumed-role/deliver-feed/deliver-feed is not \
                     authorized to perform: sts:AssumeRole on resource: {}</Message></Error>\
                     <RequestId>fault-proxy</RequestId></ErrorResponse>",
                    form_value(&body, "RoleArn").unwrap_or_default()
                );
                return Response::builder()
                    .status(StatusCode::FORBIDDEN)
                    .header(CONTENT_TYPE, "text/xml")
                    .body(Full::new(Bytes::from(xml)))
                    .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())));
            }
            Some(Fault::UnprocessedKeys) => split_keys(&body),
            Some(Fault::LoseResponse) | None => (body, None),
        };

        let url = format!("{}{}", self.upstream, parts.uri);
        let mut upstream = self.client.request(parts.method, url).body(body);
        for (name, value) in &parts.headers {
            if name != HOST && name != CONTENT_LENGTH && !hop_by_hop(name) {
                upstream = upstream.header(name, value);
            }
        }
        self.count_forwarded(seen);
        let response = match upstream.send().await {
            Ok(r) => r,
            Err(e) => return error(StatusCode::BAD_GATEWAY, "ProxyError", &e.to_string()),
        };
        if fault == Some(Fault::LoseResponse) {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerError",
                "Internal server error",
            );
        }
        let status = response.status();
        let headers = response.headers().clone();
        let mut bytes = match response.bytes().await {
            Ok(b) => b,
            Err(e) => return error(StatusCode::BAD_GATEWAY, "ProxyError", &e.to_string()),
        };
        if let Some(rest) = unprocessed {
            bytes = merge_unprocessed(&bytes, rest);
        }
        let mut out = Response::builder().status(status);
        for (name, value) in &headers {
            // The body may have changed: its length and checksum are recomputed or dropped.
            if name != CONTENT_LENGTH && name.as_str() != "x-amz-crc32" && !hop_by_hop(name) {
                out = out.header(name, value);
            }
        }
        out.body(Full::new(bytes))
            .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
    }
}

/// Headers about one connection, not the message, which a proxy must not pass on (RFC 9110,
/// 7.6.1). The emulator's server answers `Connection: close`; passed on, it made every client
/// open a new TCP connection per request, which DynamoDB and S3 do not ask of them.
fn hop_by_hop(name: &hyper::header::HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
    )
}

/// The S3 operation a request's method and query imply (path-style requests).
fn s3_operation(method: &hyper::Method, query: &str) -> &'static str {
    let has = |name: &str| {
        query
            .split('&')
            .any(|kv| kv == name || kv.starts_with(&format!("{name}=")))
    };
    match (method.as_str(), has("uploadId"), has("uploads")) {
        ("PUT", true, _) if has("partNumber") => "UploadPart",
        ("POST", _, true) => "CreateMultipartUpload",
        ("POST", true, _) => "CompleteMultipartUpload",
        ("DELETE", true, _) => "AbortMultipartUpload",
        ("PUT", _, _) => "PutObject",
        ("GET", _, _) => "GetObject",
        ("HEAD", _, _) => "HeadObject",
        ("DELETE", _, _) => "DeleteObject",
        _ => "S3",
    }
}

/// Items a DynamoDB batch or transaction carries (0 for other operations).
fn items_in(operation: &str, body: &Bytes) -> usize {
    if !matches!(
        operation,
        "TransactWriteItems" | "BatchWriteItem" | "BatchGetItem"
    ) {
        return 0;
    }
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return 0;
    };
    let count = |v: &Value| v.as_array().map_or(0, Vec::len);
    match operation {
        "TransactWriteItems" => count(&request["TransactItems"]),
        _ => request["RequestItems"].as_object().map_or(0, |tables| {
            tables
                .values()
                .map(|t| {
                    if t.is_array() {
                        count(t)
                    } else {
                        count(&t["Keys"])
                    }
                })
                .sum()
        }),
    }
}

/// A query-protocol request's operation: the form body's `Action`.
fn query_action(body: &Bytes) -> Option<&str> {
    let text = std::str::from_utf8(body).ok()?;
    text.split('&').find_map(|kv| kv.strip_prefix("Action="))
}

/// A form body's value of `name`, decoded.
fn form_value(body: &Bytes, name: &str) -> Option<String> {
    url::form_urlencoded::parse(body)
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// A DynamoDB JSON-protocol error response.
fn error(status: StatusCode, code: &str, message: &str) -> Response<Full<Bytes>> {
    let body = json!({
        "__type": format!("com.amazonaws.dynamodb.v20120810#{code}"),
        "message": message,
    });
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "application/x-amz-json-1.0")
        .header("x-amzn-requestid", "fault-proxy")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

/// Keeps the first key of each table in a `BatchGetItem` request and returns the rest, shaped as
/// `UnprocessedKeys`.
fn split_keys(body: &Bytes) -> (Bytes, Option<Value>) {
    let Ok(mut request) = serde_json::from_slice::<Value>(body) else {
        return (body.clone(), None);
    };
    let mut rest = serde_json::Map::new();
    if let Some(tables) = request
        .get_mut("RequestItems")
        .and_then(Value::as_object_mut)
    {
        for (table, spec) in tables.iter_mut() {
            let Some(keys) = spec.get_mut("Keys").and_then(Value::as_array_mut) else {
                continue;
            };
            if keys.len() < 2 {
                continue;
            }
            let later = keys.split_off(1);
            let mut unprocessed = spec.clone();
            unprocessed["Keys"] = Value::Array(later);
            rest.insert(table.clone(), unprocessed);
        }
    }
    if rest.is_empty() {
        return (body.clone(), None);
    }
    (Bytes::from(request.to_string()), Some(Value::Object(rest)))
}

fn merge_unprocessed(body: &Bytes, rest: Value) -> Bytes {
    match serde_json::from_slice::<Value>(body) {
        Ok(mut response) if response.is_object() => {
            response["UnprocessedKeys"] = rest;
            Bytes::from(response.to_string())
        }
        _ => body.clone(),
    }
}
