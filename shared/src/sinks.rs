//! Where delivery sends a destination's events: the ports (what the delivery handler needs) and
//! their adapters, HTTPS endpoints and buckets of partners' accounts. An answer other than 2xx,
//! a refusal, a timeout or a connection that fails is a failure whose message says which;
//! nothing is retried here (delivery decides).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
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
    #[error("{service} refused: HTTP {status} {code}: {message}")]
    Refused {
        service: &'static str,
        status: u16,
        code: String,
        message: String,
    },
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

/// A bucket of a partner's account and the role of that account that may write to it.
#[derive(Debug, Clone, Copy)]
pub struct PartnerBucket<'a> {
    pub bucket: &'a str,
    pub region: &'a str,
    pub role_arn: &'a str,
    pub external_id: &'a str,
    /// Names the session in the partner's CloudTrail (the destination).
    pub session_name: &'a str,
}

/// Writes objects into partners' buckets.
pub trait BucketSink: Send + Sync {
    /// Puts one object; `Ok` when S3 acknowledged it.
    fn put(
        &self,
        to: &PartnerBucket<'_>,
        key: &str,
        content_type: &str,
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

/// The S3 adapter: for each (role, external id, region) a client whose credentials are the
/// role's, assumed with STS (`AssumeRole` with the external id, from the function's own
/// credentials) and kept until they expire.
pub struct PartnerBuckets {
    sdk: aws_config::SdkConfig,
    path_style: bool,
    clients: Mutex<HashMap<(String, String, String), aws_sdk_s3::Client>>,
}

impl PartnerBuckets {
    /// `sdk`: the function's configuration (its credentials assume the roles); `path_style`
    /// when S3's endpoint is overridden (an emulator).
    pub fn new(sdk: aws_config::SdkConfig, path_style: bool) -> Self {
        Self {
            sdk,
            path_style,
            clients: Mutex::new(HashMap::new()),
        }
    }

    async fn client(&self, to: &PartnerBucket<'_>) -> aws_sdk_s3::Client {
        let key = (
            to.role_arn.to_owned(),
            to.external_id.to_owned(),
            to.region.to_owned(),
        );
        if let Some(c) = self.clients.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return c;
        }
        let region = aws_config::Region::new(to.region.to_owned());
        let role = aws_config::sts::AssumeRoleProvider::builder(to.role_arn)
            .external_id(to.external_id)
            .session_name(to.session_name)
            .region(region.clone())
            .configure(&self.sdk)
            .build()
            .await;
        let conf = aws_sdk_s3::config::Builder::from(&self.sdk)
            .region(region)
            .credentials_provider(role)
            .force_path_style(self.path_style)
            .build();
        let client = aws_sdk_s3::Client::from_conf(conf);
        if let Ok(mut m) = self.clients.lock() {
            m.insert(key, client.clone());
        }
        client
    }
}

impl BucketSink for PartnerBuckets {
    async fn put(
        &self,
        to: &PartnerBucket<'_>,
        key: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<(), SendError> {
        use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
        let client = self.client(to).await;
        let sent = client
            .put_object()
            .bucket(to.bucket)
            .key(key)
            .content_type(content_type)
            .body(aws_sdk_s3::primitives::ByteStream::from(body))
            .send()
            .await;
        match sent {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e)) => Err(SendError::Refused {
                service: "S3",
                status: e.raw().status().as_u16(),
                code: e.err().code().unwrap_or("Unknown").to_owned(),
                message: e.err().message().unwrap_or_default().to_owned(),
            }),
            Err(SdkError::TimeoutError(_)) => {
                Err(SendError::Other("S3 did not answer in time".into()))
            }
            // Credentials come first: a role that cannot be assumed fails here, and the chain
            // of causes says why (STS's own code and message).
            Err(e) => Err(SendError::Other(format!(
                "as {} in {}: {}",
                to.role_arn,
                to.region,
                DisplayErrorContext(&e)
            ))),
        }
    }
}

/// Both adapters: what the delivery function sends with.
pub struct Sinks {
    pub https: Https,
    pub buckets: PartnerBuckets,
}

impl HttpsSink for Sinks {
    async fn post(
        &self,
        url: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> Result<(), SendError> {
        self.https.post(url, headers, body).await
    }
}

impl BucketSink for Sinks {
    async fn put(
        &self,
        to: &PartnerBucket<'_>,
        key: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<(), SendError> {
        self.buckets.put(to, key, content_type, body).await
    }
}
