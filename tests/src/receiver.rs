//! A partner's HTTPS endpoint for delivery tests, on a free loopback port: each connection
//! (one request each: no keep-alive) gets the next scripted answer — a status, an answer that
//! never comes, or a connection closed mid-request — and, once the script is used up, 200 (or
//! 413 to a body over its limit, if it has one). It keeps every request it acknowledged.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncReadExt;

/// What the endpoint does with one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// 200, and the request is kept.
    Ok,
    /// This status, with a short body; nothing kept.
    Status(u16),
    /// No answer for this long, then the connection closes.
    Hang(Duration),
    /// The connection closes before any answer.
    Close,
}

/// A request the endpoint acknowledged.
#[derive(Clone, Debug)]
pub struct Received {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct State {
    script: VecDeque<Answer>,
    received: Vec<Received>,
    attempts: usize,
    /// The largest body it takes; a larger one gets 413.
    max_body: Option<usize>,
}

/// A running endpoint; it stops with the test's runtime.
#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl Receiver {
    pub async fn start(script: Vec<Answer>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("receiver: bind: {e}"));
        let port = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("receiver: local_addr: {e}"))
            .port();
        let state = Arc::new(Mutex::new(State {
            script: script.into(),
            ..State::default()
        }));
        let shared = state.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let state = shared.clone();
                let answer = {
                    let mut s = lock(&state);
                    s.attempts += 1;
                    s.script.pop_front().unwrap_or(Answer::Ok)
                };
                tokio::spawn(async move {
                    match answer {
                        Answer::Close => {
                            let mut head = [0u8; 64];
                            let _ = stream.read(&mut head).await;
                        }
                        Answer::Hang(d) => tokio::time::sleep(d).await,
                        answer => {
                            let service = service_fn(move |req| {
                                let (state, answer) = (state.clone(), answer.clone());
                                async move { Ok::<_, Infallible>(respond(&state, answer, req).await) }
                            });
                            let _ = hyper::server::conn::http1::Builder::new()
                                .keep_alive(false)
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        }
                    }
                });
            }
        });
        Self {
            url: format!("http://127.0.0.1:{port}/hooks/activity"),
            state,
        }
    }

    /// Scripts the next answers (after any still scripted).
    pub fn then(&self, answers: impl IntoIterator<Item = Answer>) {
        lock(&self.state).script.extend(answers);
    }

    /// From now on, answers 413 to a body of more than `bytes`.
    pub fn refuse_bodies_over(&self, bytes: usize) {
        lock(&self.state).max_body = Some(bytes);
    }

    /// Every request acknowledged so far, in order.
    pub fn received(&self) -> Vec<Received> {
        lock(&self.state).received.clone()
    }

    /// Connections made so far (acknowledged or not).
    pub fn attempts(&self) -> usize {
        lock(&self.state).attempts
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn respond(
    state: &Mutex<State>,
    answer: Answer,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let headers = req
        .headers()
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or_default().to_owned()))
        .collect();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes().to_vec())
        .unwrap_or_default();
    let too_large = lock(state).max_body.is_some_and(|max| body.len() > max);
    let status = match answer {
        Answer::Status(s) => StatusCode::from_u16(s).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        _ if too_large => StatusCode::PAYLOAD_TOO_LARGE,
        _ => {
            lock(state).received.push(Received { headers, body });
            StatusCode::OK
        }
    };
    let text = if status.is_success() {
        "{\"text\":\"Success\",\"code\":0}"
    } else if too_large {
        "Request Entity Too Large"
    } else {
        "the receiver is down for maintenance"
    };
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response
}
