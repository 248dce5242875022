//! Where delivery sends a destination's events: the ports (what the delivery handler needs) and
//! their adapters, HTTPS endpoints and buckets of partners' accounts. An answer other than 2xx,
//! a refusal, a timeout or a connection that fails is a failure whose message says which;
//! nothing is retried here (delivery decides).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use crate::domain::delivery::{BUS_DETAIL_TYPE, BUS_SOURCE, BusEvent};

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

/// A role of a partner's account that the service assumes (STS `AssumeRole` with the external
/// id the partner gave), and the region it is used in.
#[derive(Debug, Clone, Copy)]
pub struct PartnerRole<'a> {
    pub role_arn: &'a str,
    pub external_id: &'a str,
    pub region: &'a str,
    /// Names the session in the partner's CloudTrail (the destination).
    pub session_name: &'a str,
}

/// Writes objects into partners' buckets.
pub trait BucketSink: Send + Sync {
    /// Puts one object into `bucket` as `role`; `Ok` when S3 acknowledged it.
    fn put(
        &self,
        role: &PartnerRole<'_>,
        bucket: &str,
        key: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> impl Future<Output = Result<(), SendError>> + Send;
}

/// A `PutEvents` that was not wholly acknowledged: how many of its entries, from the first,
/// were, and why the next was not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotPut {
    pub acknowledged: usize,
    pub error: SendError,
}

/// Puts events on partners' event buses.
pub trait BusSink: Send + Sync {
    /// Puts `entries` (at most 10, at most 256 KB) on the bus `event_bus_arn` as `role`.
    fn put_events(
        &self,
        role: &PartnerRole<'_>,
        event_bus_arn: &str,
        entries: &[BusEvent],
    ) -> impl Future<Output = Result<(), NotPut>> + Send;
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
    /// `timeout`: the longest an endpoint may take to answer (`DeliverySettings`);
    /// `allow_private`: connect to private, loopback and link-local addresses too (the local
    /// stack only, as `Config::allow_private_endpoints`).
    pub fn new(timeout: Duration, allow_private: bool) -> Result<Self, reqwest::Error> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT.min(timeout))
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent(concat!("activity-log/", env!("CARGO_PKG_VERSION")));
        if !allow_private {
            builder = builder.dns_resolver(InternetOnly);
        }
        Ok(Self {
            client: builder.build()?,
            timeout,
        })
    }
}

/// The system's resolver, keeping only addresses on the internet: a destination's host name is
/// checked when it is set, but what it resolves to may change since (or be made to point inside
/// the service's network: DNS rebinding), so each connection is checked again.
struct InternetOnly;

impl reqwest::dns::Resolve for InternetOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let all: Vec<std::net::SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let outside: Vec<std::net::SocketAddr> = all
                .into_iter()
                .filter(|a| !crate::domain::destination::is_internal_address(a.ip()))
                .collect();
            if outside.is_empty() {
                return Err(format!(
                    "{host} resolves to no address on the internet (private, loopback and \
                     link-local addresses are refused)"
                )
                .into());
            }
            Ok(Box::new(outside.into_iter()) as reqwest::dns::Addrs)
        })
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

/// The adapter of partners' accounts (S3 and EventBridge): for each (role, external id, region)
/// clients whose credentials are the role's, assumed with STS from the function's own
/// credentials and kept until they expire.
pub struct PartnerAccounts {
    sdk: aws_config::SdkConfig,
    path_style: bool,
    clients: Mutex<HashMap<(String, String, String), AccountClients>>,
}

#[derive(Clone)]
struct AccountClients {
    s3: aws_sdk_s3::Client,
    events: aws_sdk_eventbridge::Client,
}

impl PartnerAccounts {
    /// `sdk`: the function's configuration (its credentials assume the roles); `path_style`
    /// when S3's endpoint is overridden (an emulator).
    pub fn new(sdk: aws_config::SdkConfig, path_style: bool) -> Self {
        Self {
            sdk,
            path_style,
            clients: Mutex::new(HashMap::new()),
        }
    }

    async fn clients(&self, role: &PartnerRole<'_>) -> AccountClients {
        let key = (
            role.role_arn.to_owned(),
            role.external_id.to_owned(),
            role.region.to_owned(),
        );
        if let Some(c) = self.clients.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return c;
        }
        let region = aws_config::Region::new(role.region.to_owned());
        let assumed = aws_config::sts::AssumeRoleProvider::builder(role.role_arn)
            .external_id(role.external_id)
            .session_name(role.session_name)
            .region(region.clone())
            .configure(&self.sdk)
            .build()
            .await;
        let sdk = self
            .sdk
            .to_builder()
            .region(region)
            .credentials_provider(aws_sdk_s3::config::SharedCredentialsProvider::new(assumed))
            .build();
        let clients = AccountClients {
            s3: aws_sdk_s3::Client::from_conf(
                aws_sdk_s3::config::Builder::from(&sdk)
                    .force_path_style(self.path_style)
                    .build(),
            ),
            events: aws_sdk_eventbridge::Client::new(&sdk),
        };
        if let Ok(mut m) = self.clients.lock() {
            m.insert(key, clients.clone());
        }
        clients
    }
}

/// What an AWS service's refusal or failure says, as delivery keeps it.
fn aws_error<E, R>(
    service: &'static str,
    role: &PartnerRole<'_>,
    err: aws_sdk_s3::error::SdkError<E, R>,
) -> SendError
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + HttpStatus + 'static,
{
    use aws_sdk_s3::error::SdkError;
    match err {
        SdkError::ServiceError(e) => SendError::Refused {
            service,
            status: e.raw().status(),
            code: e.err().code().unwrap_or("Unknown").to_owned(),
            message: e.err().message().unwrap_or_default().to_owned(),
        },
        SdkError::TimeoutError(_) => SendError::Other(format!("{service} did not answer in time")),
        // Credentials come first: a role that cannot be assumed fails here, and the chain of
        // causes says why (STS's own code and message).
        e => SendError::Other(format!(
            "as {} in {}: {}",
            role.role_arn,
            role.region,
            causes(&e)
        )),
    }
}

/// `e` and its causes, each as it displays itself (an AWS error as its code and message), joined
/// by ": ".
fn causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = Vec::new();
    let mut next = Some(e);
    while let Some(cause) = next {
        match cause.downcast_ref::<aws_sdk_s3::error::ErrorMetadata>() {
            Some(m) => parts.push(format!(
                "{}: {}",
                m.code().unwrap_or("Unknown"),
                m.message().unwrap_or_default()
            )),
            None => parts.push(cause.to_string()),
        }
        next = cause.source();
    }
    parts.join(": ")
}

/// The status of an SDK's raw response.
trait HttpStatus {
    fn status(&self) -> u16;
}

impl HttpStatus for aws_smithy_runtime_api::client::orchestrator::HttpResponse {
    fn status(&self) -> u16 {
        self.status().as_u16()
    }
}

impl BucketSink for PartnerAccounts {
    async fn put(
        &self,
        role: &PartnerRole<'_>,
        bucket: &str,
        key: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<(), SendError> {
        let clients = self.clients(role).await;
        clients
            .s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type(content_type)
            .body(aws_sdk_s3::primitives::ByteStream::from(body))
            .send()
            .await
            .map_err(|e| aws_error("S3", role, e))?;
        Ok(())
    }
}

impl BusSink for PartnerAccounts {
    async fn put_events(
        &self,
        role: &PartnerRole<'_>,
        event_bus_arn: &str,
        entries: &[BusEvent],
    ) -> Result<(), NotPut> {
        use aws_sdk_eventbridge::types::PutEventsRequestEntry;
        let clients = self.clients(role).await;
        let request = entries.iter().map(|e| {
            PutEventsRequestEntry::builder()
                .event_bus_name(event_bus_arn)
                .source(BUS_SOURCE)
                .detail_type(BUS_DETAIL_TYPE)
                .detail(&e.detail)
                .set_time(e.time.map(|t| {
                    aws_sdk_eventbridge::primitives::DateTime::from_millis(t.timestamp_millis())
                }))
                .build()
        });
        let out = clients
            .events
            .put_events()
            .set_entries(Some(request.collect()))
            .send()
            .await
            .map_err(|e| NotPut {
                acknowledged: 0,
                error: aws_error("EventBridge", role, e),
            })?;
        if out.failed_entry_count() == 0 {
            return Ok(());
        }
        // Entries are put one by one: those before the first refused one are on the bus.
        let results = out.entries();
        let refused = results
            .iter()
            .position(|r| r.error_code().is_some())
            .unwrap_or(results.len().min(entries.len()));
        let (code, message) = results.get(refused).map_or(("Unknown", ""), |r| {
            (
                r.error_code().unwrap_or("Unknown"),
                r.error_message().unwrap_or_default(),
            )
        });
        Err(NotPut {
            acknowledged: refused,
            error: SendError::Refused {
                service: "EventBridge",
                status: 200,
                code: code.to_owned(),
                message: format!(
                    "{message} (entry {} of {}; {} refused)",
                    refused + 1,
                    entries.len(),
                    out.failed_entry_count()
                ),
            },
        })
    }
}

/// Both adapters: what the delivery function sends with.
pub struct Sinks {
    pub https: Https,
    pub accounts: PartnerAccounts,
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
        role: &PartnerRole<'_>,
        bucket: &str,
        key: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<(), SendError> {
        self.accounts
            .put(role, bucket, key, content_type, body)
            .await
    }
}

impl BusSink for Sinks {
    async fn put_events(
        &self,
        role: &PartnerRole<'_>,
        event_bus_arn: &str,
        entries: &[BusEvent],
    ) -> Result<(), NotPut> {
        self.accounts.put_events(role, event_bus_arn, entries).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_name_that_resolves_inside_is_not_connected_to() {
        let https = Https::new(Duration::from_secs(2), false).unwrap();
        let refused = https
            .post("https://localhost:9/hook", &[], b"{}".to_vec())
            .await
            .unwrap_err();
        assert_eq!(
            refused,
            SendError::Connect(
                "localhost resolves to no address on the internet (private, loopback and \
                 link-local addresses are refused)"
                    .into()
            )
        );
        // On the local stack it is tried (nothing listens there).
        let local = Https::new(Duration::from_secs(2), true).unwrap();
        let refused = local
            .post("http://localhost:9/hook", &[], b"{}".to_vec())
            .await
            .unwrap_err();
        assert!(
            matches!(refused, SendError::Connect(ref m) if !m.contains("internet")),
            "{refused:?}"
        );
    }
}
