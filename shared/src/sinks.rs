//! Where delivery sends a destination's events: the port (what the delivery handler needs) and
//! its HTTPS adapter. An answer other than 2xx, a timeout or a connection that fails is a
//! failure whose message says which; nothing is retried here (delivery decides).

use std::future::Future;
use std::time::Duration;

/// Why a request was not acknowledged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("HTTP {status} from the endpoint: {body}")]
    Status { status: u16, body: String },
    #[error("no answer within {0} s")]
    Timeout(u64),
    #[error("could not connect: {0}")]
    Connect(String),
    #[error("the request failed: {0}")]
    Other(String),
}

/// Sends one request body to an HTTPS endpoint.
pub trait HttpsSink: Send + Sync {
    /// POSTs `body` with `headers`; `Ok` when the endpoint answered 2xx.
    fn post(
        &self,
        url: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> impl Future<Output = Result<(), SendError>> + Send;
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The most of an error answer's body kept for the destination's last error.
const ERROR_BODY_CHARS: usize = 200;

/// The HTTPS adapter: one connection pool, no redirects followed (a destination is the URL the
/// partner registered, nothing it points elsewhere), no proxies from the environment.
#[derive(Clone)]
pub struct Https {
    client: reqwest::Client,
    timeout: Duration,
}

impl Https {
    /// `timeout`: the longest an endpoint may take to answer (`DeliverySettings`).
    pub fn with_timeout(timeout: Duration) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT.min(timeout))
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent(concat!("activity-log/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { client, timeout })
    }
}

impl HttpsSink for Https {
    async fn post(
        &self,
        url: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> Result<(), SendError> {
        let mut req = self.client.post(url).body(body);
        for (name, value) in headers {
            req = req.header(*name, value);
        }
        let response = req.send().await.map_err(|e| self.error(&e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let text = response.text().await.unwrap_or_default();
        Err(SendError::Status {
            status: status.as_u16(),
            body: text.chars().take(ERROR_BODY_CHARS).collect(),
        })
    }
}

impl Https {
    fn error(&self, e: &reqwest::Error) -> SendError {
        if e.is_timeout() {
            SendError::Timeout(self.timeout.as_secs())
        } else if e.is_connect() {
            SendError::Connect(root_cause(e))
        } else {
            SendError::Other(root_cause(e))
        }
    }
}

/// The innermost cause of `e`: what actually went wrong ("connection refused", "connection
/// closed before message completed").
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}
