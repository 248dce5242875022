//! A stand-in for the Lambda Runtime API (`2018-06-01`) on a loopback port, for one function
//! process: it notes when the process first asks for an event (the end of its init), hands it
//! queued events through the `/runtime/invocation/next` long poll and collects its answers.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::{mpsc, oneshot, watch};

/// How an invocation ended.
#[derive(Debug)]
pub enum Outcome {
    /// `/invocation/{id}/response`: the function's result.
    Response(Bytes),
    /// `/invocation/{id}/error`: the function reported an error.
    Error(Bytes),
}

struct Inner {
    /// When the process first called `/invocation/next`, or the init error it reported.
    ready: watch::Sender<Option<Result<Instant, String>>>,
    events: tokio::sync::Mutex<mpsc::UnboundedReceiver<(String, Bytes)>>,
    answers: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
}

pub struct RuntimeStub {
    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub address: String,
    inner: Arc<Inner>,
    queue: mpsc::UnboundedSender<(String, Bytes)>,
    next_id: AtomicU64,
    server: tokio::task::JoinHandle<()>,
}

impl RuntimeStub {
    pub async fn start() -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?.to_string();
        let (queue, events) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            ready: watch::Sender::new(None),
            events: tokio::sync::Mutex::new(events),
            answers: Mutex::new(HashMap::new()),
        });
        let shared = inner.clone();
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let inner = shared.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let inner = inner.clone();
                        async move { Ok::<_, Infallible>(handle(&inner, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self {
            address,
            inner,
            queue,
            next_id: AtomicU64::new(1),
            server,
        })
    }

    /// Waits until the process asks for its first event; returns when it did.
    pub async fn first_next(&self, deadline: Duration) -> Result<Instant, String> {
        let mut rx = self.inner.ready.subscribe();
        let wait = rx.wait_for(Option::is_some);
        match tokio::time::timeout(deadline, wait).await {
            Ok(Ok(state)) => state.clone().unwrap_or_else(|| Err("no state".into())),
            Ok(Err(_)) => Err("runtime stub stopped".into()),
            Err(_) => Err(format!(
                "the function did not ask for an event within {deadline:?}"
            )),
        }
    }

    /// Hands `event` to the function and waits for its answer.
    pub async fn invoke(&self, event: Bytes, deadline: Duration) -> Result<Outcome, String> {
        let id = format!("bench-{:012}", self.next_id.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = oneshot::channel();
        self.inner
            .answers
            .lock()
            .map_err(|_| "poisoned")?
            .insert(id.clone(), tx);
        self.queue
            .send((id, event))
            .map_err(|_| "runtime stub stopped".to_string())?;
        match tokio::time::timeout(deadline, rx).await {
            Ok(Ok(outcome)) => Ok(outcome),
            Ok(Err(_)) => Err("the invocation was dropped".into()),
            Err(_) => Err(format!("no answer within {deadline:?}")),
        }
    }
}

impl Drop for RuntimeStub {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn reply(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    r
}

async fn handle(inner: &Inner, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    let Some(rest) = path.strip_prefix("/2018-06-01/runtime/") else {
        return reply(StatusCode::NOT_FOUND, Bytes::new());
    };
    if method == Method::GET && rest == "invocation/next" {
        inner.ready.send_if_modified(|state| {
            if state.is_none() {
                *state = Some(Ok(Instant::now()));
                true
            } else {
                false
            }
        });
        let mut events = inner.events.lock().await;
        let Some((id, event)) = events.recv().await else {
            return reply(StatusCode::GONE, Bytes::new());
        };
        let deadline_ms = SystemTime::now()
            .checked_add(Duration::from_secs(900))
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_millis());
        let mut r = reply(StatusCode::OK, event);
        let h = r.headers_mut();
        let pairs = [
            ("content-type", "application/json".to_owned()),
            ("lambda-runtime-aws-request-id", id),
            ("lambda-runtime-deadline-ms", deadline_ms.to_string()),
            (
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:us-east-1:123456789012:function:bench".to_owned(),
            ),
            (
                "lambda-runtime-trace-id",
                "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0"
                    .to_owned(),
            ),
        ];
        for (name, value) in pairs {
            if let Ok(v) = hyper::header::HeaderValue::from_str(&value) {
                h.insert(name, v);
            }
        }
        return r;
    }
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return reply(StatusCode::BAD_REQUEST, Bytes::new()),
    };
    if method == Method::POST && rest == "init/error" {
        let message = String::from_utf8_lossy(&body).into_owned();
        inner.ready.send_replace(Some(Err(message)));
        return reply(StatusCode::ACCEPTED, Bytes::new());
    }
    if method == Method::POST
        && let Some(tail) = rest.strip_prefix("invocation/")
        && let Some((id, kind)) = tail.split_once('/')
    {
        let outcome = match kind {
            "response" => Outcome::Response(body),
            "error" => Outcome::Error(body),
            _ => return reply(StatusCode::NOT_FOUND, Bytes::new()),
        };
        let waiter = inner.answers.lock().ok().and_then(|mut a| a.remove(id));
        if let Some(tx) = waiter {
            let _ = tx.send(outcome);
        }
        return reply(StatusCode::ACCEPTED, Bytes::new());
    }
    reply(StatusCode::NOT_FOUND, Bytes::new())
}
