//! Typed configuration: every environment variable the service reads is read here, once at
//! start-up, one parser per section; it fails fast with a clear message naming the variable.
//! Nothing changes a configuration once it is loaded.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::export::parts::MIN_PART_BYTES;

/// How callers are identified.
#[derive(Clone, Debug)]
pub enum AuthMode {
    /// In AWS: API Gateway's JWT authorizer has verified the token; read its claims.
    ApiGateway,
    /// On a laptop or CI: verify the bearer token as the JWT authorizer does, against the local
    /// OpenID Connect provider's keys.
    Local(LocalIssuer),
}

/// The local OpenID Connect provider: RS256 tokens signed by one of `keys`, with this `iss` and
/// `aud` (the checks API Gateway's JWT authorizer makes in AWS, plus `exp` and `nbf`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalIssuer {
    pub issuer: String,
    pub audience: String,
    pub keys: Vec<RsaPublicJwk>,
}

/// An RSA public key of a JWKS (RFC 7517): its id and its modulus and exponent (base64url).
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
pub struct RsaPublicJwk {
    pub kid: String,
    pub n: String,
    pub e: String,
}

/// The token claims that carry the tenant and the roles (`partner_id` and `roles` by default;
/// with Microsoft Entra ID the tenant may be `tid`, with Amazon Cognito the roles
/// `cognito:groups`). The caller is always `sub`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimNames {
    pub partner: String,
    pub roles: String,
}

impl Default for ClaimNames {
    fn default() -> Self {
        Self {
            partner: "partner_id".into(),
            roles: "roles".into(),
        }
    }
}

impl LocalIssuer {
    /// Reads the RSA keys of a JWKS document (`{"keys":[…]}`); other kinds of key are skipped.
    pub fn keys_from_jwks(text: &str) -> Result<Vec<RsaPublicJwk>, ConfigError> {
        #[derive(serde::Deserialize)]
        struct Set {
            keys: Vec<serde_json::Value>,
        }
        let set: Set = serde_json::from_str(text)
            .map_err(|e| ConfigError(format!("the JWKS is not a JSON key set: {e}")))?;
        let keys: Vec<RsaPublicJwk> = set
            .keys
            .into_iter()
            .filter(|k| k["kty"] == "RSA")
            .filter_map(|k| serde_json::from_value(k).ok())
            .collect();
        if keys.is_empty() {
            return Err(ConfigError(
                "the JWKS has no RSA key with kid, n and e".into(),
            ));
        }
        Ok(keys)
    }
}

/// Set by AWS Lambda in every execution environment it starts (`on-demand`,
/// `provisioned-concurrency`, …) and reserved: a function's configuration cannot set it, and
/// `cargo lambda watch` does not imitate it.
pub const LAMBDA_ONLY_VARIABLE: &str = "AWS_LAMBDA_INITIALIZATION_TYPE";

/// Whether AWS Lambda itself runs this process (see [`LAMBDA_ONLY_VARIABLE`]).
pub fn in_aws_lambda() -> bool {
    Env::process().get(LAMBDA_ONLY_VARIABLE).is_some()
}

/// Keys whose development values scripts/local.env publishes.
const DEVELOPMENT_KEYS: [&str; 1] = ["CURSOR_SIGNING_KEY"];

/// `scripts/local.env`: the one place of the local development defaults.
const LOCAL_ENV: &str = include_str!("../../scripts/local.env");

/// A local development default of `scripts/local.env` by name, if it has one.
pub fn local_default(name: &str) -> Option<&'static str> {
    LOCAL_ENV
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .find(|(k, _)| k.trim() == name)
        .map(|(_, v)| v.trim())
}

/// The keys of cursors: the current one signs, it and the previous ones check. After the
/// secret is rotated, a cursor signed with the key before still works until it expires.
#[derive(Clone)]
pub struct CursorKeys {
    /// (key id, key); the first is the current key.
    keys: Vec<(String, Vec<u8>)>,
}

impl CursorKeys {
    pub fn new(current: Vec<u8>, previous: impl IntoIterator<Item = Vec<u8>>) -> Self {
        let keys = std::iter::once(current)
            .chain(previous)
            .map(|k| (Self::key_id(&k), k))
            .collect();
        Self { keys }
    }

    /// A key's id: the first 8 bytes of its SHA-256, in hex. It names the key, and tells nothing
    /// of it that the key's 256 bits of strength would notice.
    pub fn key_id(key: &[u8]) -> String {
        hex::encode(&Sha256::digest(key)[..8])
    }

    /// The id of the key that signs.
    pub fn current_id(&self) -> &str {
        &self.keys[0].0
    }

    pub(crate) fn current(&self) -> &(String, Vec<u8>) {
        &self.keys[0]
    }

    pub(crate) fn by_id(&self, id: &str) -> Option<&[u8]> {
        self.keys
            .iter()
            .find(|(kid, _)| kid == id)
            .map(|(_, k)| k.as_slice())
    }
}

impl std::fmt::Debug for CursorKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|(id, _)| id.as_str()).collect();
        f.debug_struct("CursorKeys").field("ids", &ids).finish()
    }
}

#[derive(Clone)]
pub struct Config {
    pub table_name: String,
    pub bucket_name: String,
    /// Days an activity is kept after it occurred (DynamoDB TTL and bucket lifecycle).
    pub retention_days: u32,
    /// URL of a customer's Subscriptions page; `{customerId}` is replaced.
    pub subscriptions_url_template: String,
    /// HMAC keys of page cursors: `CURSOR_SIGNING_KEY` on the local stack; in AWS read at
    /// start-up from the Secrets Manager secret `CURSOR_SIGNING_KEY_SECRET` names (its current
    /// and previous versions), by the only function that signs and checks cursors
    /// ([`crate::app::App::with_cursor_key`]).
    pub cursor_keys: Option<CursorKeys>,
    /// The secret that holds the cursor key (`CURSOR_SIGNING_KEY_SECRET`), in AWS.
    pub cursor_key_secret: Option<String>,
    pub auth: AuthMode,
    pub claims: ClaimNames,
    /// Details larger than this (compact JSON bytes) go to the bucket instead of the table item.
    pub details_inline_max_bytes: usize,
    /// Storage reads (each at most 1 MB, DynamoDB's own cap) one list request may make before it
    /// answers with what it has and a cursor.
    pub list_max_reads: usize,
    /// Requests per tenant and window, across every endpoint.
    pub rate_limit: RateLimit,
    pub exports: ExportSettings,
    /// The KMS key that signs checkpoints and export manifests (`SIGNING_KEY_ID`: id, ARN or
    /// alias); only the functions that sign need it.
    pub signing_key_id: Option<String>,
    /// Where signed heads are anchored; only the function that signs checkpoints needs it.
    pub anchors: AnchorSettings,
    /// What the process runs in: Lambda's variables, metrics, the SDK's set-up.
    pub runtime: Runtime,
    /// Streaming destinations may name plain-HTTP URLs and private addresses
    /// (`DESTINATIONS_ALLOW_PRIVATE_ENDPOINTS=true`): a local receiver on a developer's machine
    /// or CI. Refused unless tokens are verified locally (never behind API Gateway).
    pub allow_private_endpoints: bool,
    pub delivery: DeliverySettings,
}

/// Settings of delivery to streaming destinations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliverySettings {
    /// The longest a destination may take to answer a request (`DELIVERY_REQUEST_TIMEOUT_SECONDS`,
    /// 1 to 30, default 10).
    pub request_timeout: Duration,
    /// The first retry's wait after a failure; each next one doubles, up to 10 minutes
    /// (`DELIVERY_FIRST_RETRY_SECONDS`, 1 to 60, default 5).
    pub first_retry: Duration,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(10),
            first_retry: Duration::from_secs(5),
        }
    }
}

impl DeliverySettings {
    fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        let default = Self::default();
        Ok(Self {
            request_timeout: env.seconds(
                "DELIVERY_REQUEST_TIMEOUT_SECONDS",
                default.request_timeout.as_secs(),
                1,
                30,
            )?,
            first_retry: env.seconds(
                "DELIVERY_FIRST_RETRY_SECONDS",
                default.first_retry.as_secs(),
                1,
                60,
            )?,
        })
    }
}

/// The anchor store of signed heads (README, Tamper-evident log).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AnchorSettings {
    /// The bucket under Object Lock (`ANCHOR_BUCKET`).
    pub bucket: Option<String>,
    /// An S3 endpoint of its own for it (`ANCHOR_ENDPOINT_URL`): a local emulator that keeps
    /// Object Lock when the other buckets are on one that does not.
    pub endpoint: Option<String>,
}

impl AnchorSettings {
    fn from_env(env: &Env) -> Self {
        Self {
            bucket: env.get("ANCHOR_BUCKET"),
            endpoint: env.get("ANCHOR_ENDPOINT_URL"),
        }
    }
}

/// What the process runs in.
#[derive(Clone, Debug, Default)]
pub struct Runtime {
    /// The function's own name (`AWS_LAMBDA_FUNCTION_NAME`, set by Lambda).
    pub function_name: Option<String>,
    /// CloudWatch namespace of the function's metrics (`METRICS_NAMESPACE`).
    pub metrics_namespace: Option<String>,
    /// The region the service runs in (`AWS_REGION`, set by Lambda; `AWS_DEFAULT_REGION`):
    /// what Parquet exports name as their events' `cloud.region` and partition.
    pub region: Option<String>,
    pub sdk: SdkSettings,
}

/// How the AWS SDK is set up (README, Configuration; BENCHMARKS.md, init).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SdkSettings {
    /// Credentials are in the environment (`AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`, as
    /// Lambda puts the role's there): read them, not the whole default chain.
    pub credentials_in_env: bool,
    /// A CA bundle file to trust (`SSL_CERT_FILE`).
    pub ca_bundle_file: Option<PathBuf>,
    /// S3 is reached at an endpoint of its own (`AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL`:
    /// an emulator), addressed path-style.
    pub s3_endpoint_overridden: bool,
}

/// How the functions log (`RUST_LOG`, `LOG_FORMAT`); read before the rest, so that a
/// configuration error is logged as every other line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogSettings {
    /// `RUST_LOG`: a level, or `target=level` directives.
    pub filter: Option<String>,
    /// One JSON object per line: in AWS Lambda, or with `LOG_FORMAT=json`.
    pub json: bool,
}

impl LogSettings {
    pub fn from_env() -> Self {
        let env = Env::process();
        Self {
            filter: env.get("RUST_LOG"),
            json: env.get(LAMBDA_ONLY_VARIABLE).is_some()
                || env
                    .get("LOG_FORMAT")
                    .is_some_and(|v| v.eq_ignore_ascii_case("json")),
        }
    }
}

/// A tenant's share of the API: at most `requests` per `window` (fixed windows).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// 0 turns the limit off.
    pub requests: u32,
    pub window: Duration,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            requests: DEFAULT_RATE_LIMIT,
            window: Duration::from_secs(DEFAULT_RATE_WINDOW_SECS),
        }
    }
}

/// Settings of the export functions.
#[derive(Clone, Debug)]
pub struct ExportSettings {
    /// Name of the worker function (only the export API needs it).
    pub worker_function: Option<String>,
    /// Lifetime of a presigned download link (at most [`MAX_LINK_TTL_SECS`]).
    pub link_ttl: Duration,
    /// Days an export job record and its file are kept.
    pub retention_days: u32,
    /// Size of each multipart part (at least 5 MiB).
    pub part_bytes: usize,
    /// A file of a Parquet export ends once it reaches this size, and the next starts in the
    /// same partition; it is kept on the local disk (`/tmp`) until it is uploaded.
    pub file_bytes: u64,
    /// Exports pending or running at once per tenant; more are refused (429).
    pub max_active: u32,
    /// How long one worker invocation writes before it saves its place and hands the rest to a
    /// new invocation (below the function's timeout).
    pub time_budget: Duration,
    /// Details objects fetched from the bucket at once.
    pub details_concurrency: usize,
}

impl Default for ExportSettings {
    fn default() -> Self {
        Self {
            worker_function: None,
            link_ttl: Duration::from_secs(MAX_LINK_TTL_SECS),
            retention_days: DEFAULT_EXPORT_RETENTION_DAYS,
            part_bytes: DEFAULT_PART_BYTES,
            file_bytes: DEFAULT_EXPORT_FILE_BYTES,
            max_active: DEFAULT_MAX_ACTIVE_EXPORTS,
            time_budget: Duration::from_secs(DEFAULT_EXPORT_TIME_BUDGET_SECS),
            details_concurrency: DEFAULT_DETAILS_CONCURRENCY,
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("table_name", &self.table_name)
            .field("bucket_name", &self.bucket_name)
            .field("retention_days", &self.retention_days)
            .field(
                "subscriptions_url_template",
                &self.subscriptions_url_template,
            )
            .field("auth", &self.auth)
            .field("details_inline_max_bytes", &self.details_inline_max_bytes)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(String);

impl ConfigError {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

pub const DEFAULT_RETENTION_DAYS: u32 = 365;
/// Longest retention of activities, in days (a century).
const MAX_RETENTION_DAYS: u32 = 36_500;
/// Presigned links live at most 15 minutes, and by default that long.
pub const MAX_LINK_TTL_SECS: u64 = 15 * 60;
/// Days an export's job record and file are kept, by default and at most.
pub const DEFAULT_EXPORT_RETENTION_DAYS: u32 = 7;
const MAX_EXPORT_RETENTION_DAYS: u32 = 365;
/// S3's smallest part: the worker's memory is about one part, whatever the export's size
/// (BENCHMARKS.md, export memory). 10,000 parts of 5 MiB hold far more than the row limit.
pub const DEFAULT_PART_BYTES: usize = MIN_PART_BYTES;
/// Largest part size allowed: the worker holds one part in memory.
const MAX_PART_BYTES: usize = 512 * 1024 * 1024;
/// Large enough for Athena to read a file efficiently, small enough for Lambda's default 512 MB
/// of `/tmp`.
pub const DEFAULT_EXPORT_FILE_BYTES: u64 = 128 * 1024 * 1024;
/// At most: Lambda's `/tmp` holds up to 10 GB, set by the function's ephemeral storage.
const MAX_EXPORT_FILE_BYTES: u64 = 8 * 1024 * 1024 * 1024;
/// Largest inline details: a DynamoDB item is at most 400 KB.
const MAX_DETAILS_INLINE_BYTES: usize = 300 * 1024;
/// 32 KiB keeps a transaction of 100 activities well under DynamoDB's 4 MB limit.
pub const DEFAULT_DETAILS_INLINE_MAX_BYTES: usize = 32 * 1024;
const MIN_SECRET_BYTES: usize = 32;
/// Two reads of at most 1 MB: a filtered page over a large tenant answers within about 2 MB of
/// DynamoDB work (BENCHMARKS.md, bounded reads), and a sparse filter goes on by cursor.
pub const DEFAULT_LIST_MAX_READS: usize = 2;
const MAX_LIST_READS: usize = 100;
/// 50 requests per second per tenant: about 5 functions busy at once at 100 ms a request.
pub const DEFAULT_RATE_LIMIT: u32 = 50;
pub const DEFAULT_RATE_WINDOW_SECS: u64 = 1;
const MAX_RATE_WINDOW_SECS: u64 = 3600;
/// Exports pending or running at once per tenant.
pub const DEFAULT_MAX_ACTIVE_EXPORTS: u32 = 3;
/// 12 of the worker's 15 minutes: the rest is room for the part in flight and the hand-over.
pub const DEFAULT_EXPORT_TIME_BUDGET_SECS: u64 = 12 * 60;
/// A worker invocation lives at most 15 minutes (Lambda's limit).
const MAX_EXPORT_TIME_BUDGET_SECS: u64 = 14 * 60;
pub const DEFAULT_DETAILS_CONCURRENCY: usize = 16;

/// A key of at least [`MIN_SECRET_BYTES`] bytes, named `name` in the error.
pub fn secret_bytes(name: &str, value: String) -> Result<Vec<u8>, ConfigError> {
    if value.len() < MIN_SECRET_BYTES {
        return Err(ConfigError(format!(
            "{name} must be at least {MIN_SECRET_BYTES} bytes"
        )));
    }
    Ok(value.into_bytes())
}

impl Config {
    /// The cursor keys; a function that pages (the query function) has them from start-up.
    pub fn cursor_keys(&self) -> Result<&CursorKeys, ConfigError> {
        self.cursor_keys.as_ref().ok_or_else(|| {
            ConfigError::new("neither CURSOR_SIGNING_KEY nor CURSOR_SIGNING_KEY_SECRET is set")
        })
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// The configuration `get` gives (a variable set to the empty string counts as unset).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&get);
        let auth = AuthMode::from_env(&env)?;
        let cursor_keys = cursor_keys(&env, &auth)?;
        Ok(Self {
            table_name: env.required("TABLE_NAME")?,
            bucket_name: env.required("BUCKET_NAME")?,
            retention_days: env.number(
                "RETENTION_DAYS",
                DEFAULT_RETENTION_DAYS,
                1,
                MAX_RETENTION_DAYS,
            )?,
            subscriptions_url_template: subscriptions_url_template(&env)?,
            signing_key_id: env.get("SIGNING_KEY_ID"),
            anchors: AnchorSettings::from_env(&env),
            cursor_keys,
            cursor_key_secret: env.get("CURSOR_SIGNING_KEY_SECRET"),
            claims: ClaimNames::from_env(&env),
            details_inline_max_bytes: env.number(
                "DETAILS_INLINE_MAX_BYTES",
                DEFAULT_DETAILS_INLINE_MAX_BYTES,
                0,
                MAX_DETAILS_INLINE_BYTES,
            )?,
            list_max_reads: env.number(
                "LIST_MAX_READS",
                DEFAULT_LIST_MAX_READS,
                1,
                MAX_LIST_READS,
            )?,
            rate_limit: RateLimit::from_env(&env)?,
            exports: ExportSettings::from_env(&env)?,
            runtime: Runtime::from_env(&env),
            allow_private_endpoints: allow_private_endpoints(&env, &auth)?,
            delivery: DeliverySettings::from_env(&env)?,
            auth,
        })
    }
}

fn allow_private_endpoints(env: &Env<'_>, auth: &AuthMode) -> Result<bool, ConfigError> {
    const NAME: &str = "DESTINATIONS_ALLOW_PRIVATE_ENDPOINTS";
    match (env.get(NAME).as_deref(), auth) {
        (None | Some("false"), _) => Ok(false),
        (Some("true"), AuthMode::Local(_)) => Ok(true),
        (Some("true"), AuthMode::ApiGateway) => Err(ConfigError(format!(
            "{NAME}=true is for the local stack only (AUTH_MODE=local)"
        ))),
        (Some(other), _) => Err(ConfigError(format!(
            "{NAME} must be true or false, got {other:?}"
        ))),
    }
}

/// The environment as the parsers read it: a variable set to the empty string is unset.
struct Env<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Env<'static> {
    /// The process's own environment.
    fn process() -> Self {
        Env(&|name| std::env::var(name).ok())
    }
}

impl Env<'_> {
    fn get(&self, name: &str) -> Option<String> {
        (self.0)(name).filter(|v| !v.is_empty())
    }

    fn required(&self, name: &str) -> Result<String, ConfigError> {
        self.get(name)
            .ok_or_else(|| ConfigError(format!("{name} is not set")))
    }

    /// A whole number from `min` to `max`, `default` when unset.
    fn number<T>(&self, name: &str, default: T, min: T, max: T) -> Result<T, ConfigError>
    where
        T: Copy + fmt::Display + TryFrom<u64> + TryInto<u64>,
    {
        let Some(v) = self.get(name) else {
            return Ok(default);
        };
        let within = |n: &u64| match (min.try_into(), max.try_into()) {
            (Ok(lo), Ok(hi)) => (lo..=hi).contains(n),
            _ => false,
        };
        v.parse::<u64>()
            .ok()
            .filter(within)
            .and_then(|n| T::try_from(n).ok())
            .ok_or_else(|| {
                ConfigError(format!(
                    "{name} must be a whole number from {min} to {max}, got {v:?}"
                ))
            })
    }

    fn seconds(
        &self,
        name: &str,
        default: u64,
        min: u64,
        max: u64,
    ) -> Result<Duration, ConfigError> {
        self.number(name, default, min, max)
            .map(Duration::from_secs)
    }
}

impl AuthMode {
    fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        match env.get("AUTH_MODE").as_deref() {
            None | Some("apigateway") => Ok(Self::ApiGateway),
            // Local mode trusts the development identity provider's published key: never where
            // Lambda itself runs the function (cargo lambda watch does not set this variable).
            Some("local") if env.get(LAMBDA_ONLY_VARIABLE).is_some() => Err(ConfigError(format!(
                "AUTH_MODE=local is refused in AWS Lambda ({LAMBDA_ONLY_VARIABLE} is set): \
                 a deployed function takes identities from API Gateway's JWT authorizer"
            ))),
            Some("local") => {
                let path = env.required("LOCAL_OIDC_JWKS_FILE")?;
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| ConfigError(format!("LOCAL_OIDC_JWKS_FILE {path}: {e}")))?;
                Ok(Self::Local(LocalIssuer {
                    issuer: env.required("LOCAL_OIDC_ISSUER")?,
                    audience: env.required("LOCAL_OIDC_AUDIENCE")?,
                    keys: LocalIssuer::keys_from_jwks(&text).map_err(|e| {
                        ConfigError(format!("LOCAL_OIDC_JWKS_FILE {path}: {}", e.0))
                    })?,
                }))
            }
            Some(other) => Err(ConfigError(format!(
                "AUTH_MODE must be local or apigateway, got {other:?}"
            ))),
        }
    }
}

/// `CURSOR_SIGNING_KEY`, if set (else the function reads `CURSOR_SIGNING_KEY_SECRET` at start).
/// The development keys are published (scripts/local.env): only local mode may use them.
fn cursor_keys(env: &Env<'_>, auth: &AuthMode) -> Result<Option<CursorKeys>, ConfigError> {
    if !matches!(auth, AuthMode::Local(_)) {
        for name in DEVELOPMENT_KEYS {
            if env
                .get(name)
                .is_some_and(|v| Some(v.as_str()) == local_default(name))
            {
                return Err(ConfigError(format!(
                    "{name} is the development key of scripts/local.env, refused outside \
                     local mode (AUTH_MODE=local)"
                )));
            }
        }
    }
    env.get("CURSOR_SIGNING_KEY")
        .map(|v| secret_bytes("CURSOR_SIGNING_KEY", v).map(|key| CursorKeys::new(key, [])))
        .transpose()
}

fn subscriptions_url_template(env: &Env<'_>) -> Result<String, ConfigError> {
    let template = env.required("SUBSCRIPTIONS_URL_TEMPLATE")?;
    if !template.contains("{customerId}") {
        return Err(ConfigError(
            "SUBSCRIPTIONS_URL_TEMPLATE must contain {customerId}".into(),
        ));
    }
    Ok(template)
}

impl ClaimNames {
    fn from_env(env: &Env<'_>) -> Self {
        let default = Self::default();
        Self {
            partner: env.get("PARTNER_CLAIM").unwrap_or(default.partner),
            roles: env.get("ROLES_CLAIM").unwrap_or(default.roles),
        }
    }
}

impl RateLimit {
    fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            requests: env.number("TENANT_RATE_LIMIT", DEFAULT_RATE_LIMIT, 0, 1_000_000)?,
            window: env.seconds(
                "TENANT_RATE_WINDOW_SECONDS",
                DEFAULT_RATE_WINDOW_SECS,
                1,
                MAX_RATE_WINDOW_SECS,
            )?,
        })
    }
}

impl ExportSettings {
    fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            worker_function: env.get("EXPORT_WORKER_FUNCTION"),
            link_ttl: env.seconds(
                "EXPORT_LINK_TTL_SECONDS",
                MAX_LINK_TTL_SECS,
                1,
                MAX_LINK_TTL_SECS,
            )?,
            retention_days: env.number(
                "EXPORT_RETENTION_DAYS",
                DEFAULT_EXPORT_RETENTION_DAYS,
                1,
                MAX_EXPORT_RETENTION_DAYS,
            )?,
            part_bytes: env.number(
                "EXPORT_PART_BYTES",
                DEFAULT_PART_BYTES,
                MIN_PART_BYTES,
                MAX_PART_BYTES,
            )?,
            file_bytes: env.number(
                "EXPORT_FILE_BYTES",
                DEFAULT_EXPORT_FILE_BYTES,
                1024 * 1024,
                MAX_EXPORT_FILE_BYTES,
            )?,
            max_active: env.number("EXPORT_MAX_ACTIVE", DEFAULT_MAX_ACTIVE_EXPORTS, 1, 1000)?,
            time_budget: env.seconds(
                "EXPORT_TIME_BUDGET_SECONDS",
                DEFAULT_EXPORT_TIME_BUDGET_SECS,
                1,
                MAX_EXPORT_TIME_BUDGET_SECS,
            )?,
            details_concurrency: env.number(
                "EXPORT_DETAILS_CONCURRENCY",
                DEFAULT_DETAILS_CONCURRENCY,
                1,
                256,
            )?,
        })
    }
}

impl SdkSettings {
    /// The SDK's settings of this process's environment (for tools that build clients as the
    /// functions do without the rest of the configuration).
    pub fn from_env() -> Self {
        Runtime::from_env(&Env::process()).sdk
    }
}

impl Runtime {
    /// The region the events name (`cloud.region`, the `region=` partition): where the service
    /// runs, or `unknown` outside AWS with no region set.
    pub fn region_or_unknown(&self) -> &str {
        self.region.as_deref().unwrap_or("unknown")
    }

    fn from_env(env: &Env<'_>) -> Self {
        Self {
            function_name: env.get("AWS_LAMBDA_FUNCTION_NAME"),
            metrics_namespace: env.get("METRICS_NAMESPACE"),
            region: env
                .get("AWS_REGION")
                .or_else(|| env.get("AWS_DEFAULT_REGION")),
            sdk: SdkSettings {
                credentials_in_env: env.get("AWS_ACCESS_KEY_ID").is_some()
                    && env.get("AWS_SECRET_ACCESS_KEY").is_some(),
                ca_bundle_file: env.get("SSL_CERT_FILE").map(PathBuf::from),
                s3_endpoint_overridden: env.get("AWS_ENDPOINT_URL_S3").is_some()
                    || env.get("AWS_ENDPOINT_URL").is_some(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    const BASE: &[(&str, &str)] = &[
        ("TABLE_NAME", "t"),
        ("BUCKET_NAME", "b"),
        ("SUBSCRIPTIONS_URL_TEMPLATE", "https://x/{customerId}"),
        ("CURSOR_SIGNING_KEY", "0123456789abcdef0123456789abcdef"),
    ];

    #[test]
    fn defaults_apply_and_api_gateway_is_the_default_auth() {
        let c = env(BASE).unwrap();
        assert_eq!(c.retention_days, 365);
        assert!(matches!(c.auth, AuthMode::ApiGateway));
        assert_eq!(c.claims, ClaimNames::default());
        assert!(
            !format!("{c:?}").contains("0123456789abcdef"),
            "secrets never printed"
        );
    }

    #[test]
    fn missing_or_bad_values_fail_fast_with_the_name() {
        let e = env(&BASE[1..]).unwrap_err().to_string();
        assert!(e.contains("TABLE_NAME"), "{e}");
        let mut v = BASE.to_vec();
        v.push(("RETENTION_DAYS", "0"));
        assert!(env(&v).unwrap_err().to_string().contains("RETENTION_DAYS"));
        let mut v = BASE.to_vec();
        v.push(("AUTH_MODE", "local"));
        assert!(
            env(&v)
                .unwrap_err()
                .to_string()
                .contains("LOCAL_OIDC_JWKS_FILE")
        );
        v.push(("LOCAL_OIDC_JWKS_FILE", "/nonexistent/jwks.json"));
        assert!(env(&v).unwrap_err().to_string().contains("/nonexistent"));
        let mut v = BASE.to_vec();
        v.push(("CURSOR_SIGNING_KEY", "short"));
        assert!(env(&v).unwrap_err().to_string().contains("at least 32"));
    }

    #[test]
    fn local_mode_and_the_development_keys_are_refused_where_they_do_not_belong() {
        let jwks = concat!(env!("CARGO_MANIFEST_DIR"), "/../web/local/jwks.json");
        let local = [
            ("AUTH_MODE", "local"),
            ("LOCAL_OIDC_JWKS_FILE", jwks),
            ("LOCAL_OIDC_ISSUER", "http://127.0.0.1:9100"),
            ("LOCAL_OIDC_AUDIENCE", "activity-log"),
        ];
        let mut v = BASE.to_vec();
        v.extend(local);
        assert!(env(&v).is_ok(), "local mode where Lambda does not run it");
        v.push(("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"));
        let e = env(&v).unwrap_err().to_string();
        assert!(
            e.contains("AUTH_MODE=local is refused")
                && e.contains("AWS_LAMBDA_INITIALIZATION_TYPE"),
            "{e}"
        );

        let dev_key = local_default("CURSOR_SIGNING_KEY").expect("scripts/local.env has one");
        let mut v = BASE.to_vec();
        v.push(("CURSOR_SIGNING_KEY", dev_key));
        let e = env(&v).unwrap_err().to_string();
        assert!(
            e.contains("CURSOR_SIGNING_KEY is the development key"),
            "{e}"
        );
        v.extend(local);
        assert!(env(&v).is_ok(), "local mode may use the development key");
    }

    #[test]
    fn local_mode_reads_the_providers_keys_and_the_claim_names_are_settings() {
        let jwks = concat!(env!("CARGO_MANIFEST_DIR"), "/../web/local/jwks.json");
        let mut v = BASE.to_vec();
        v.extend([
            ("AUTH_MODE", "local"),
            ("LOCAL_OIDC_JWKS_FILE", jwks),
            ("LOCAL_OIDC_ISSUER", "http://127.0.0.1:9100"),
            ("LOCAL_OIDC_AUDIENCE", "activity-log"),
            ("PARTNER_CLAIM", "tid"),
            ("ROLES_CLAIM", "cognito:groups"),
        ]);
        let c = env(&v).unwrap();
        let AuthMode::Local(issuer) = &c.auth else {
            panic!("{:?}", c.auth)
        };
        assert_eq!(issuer.issuer, "http://127.0.0.1:9100");
        assert_eq!(issuer.keys.len(), 1);
        assert_eq!(c.claims.partner, "tid");
        assert_eq!(c.claims.roles, "cognito:groups");
        assert!(LocalIssuer::keys_from_jwks(r#"{"keys":[{"kty":"EC"}]}"#).is_err());
        assert!(LocalIssuer::keys_from_jwks("[]").is_err());
    }
}
