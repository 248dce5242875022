//! Start-up wiring shared by every function: logging, configuration and SDK clients, built once.

use std::future::Future;

use lambda_http::{Body, Request, Response, service_fn};

use crate::config::{Config, ConfigError, secret_bytes};
use crate::handlers::export_worker::ExportPorts;
use crate::http::cursor::CursorKeys;
use crate::launch::lambda::LambdaLauncher;
use crate::store::dynamodb::DynamoStore;
use crate::store::kms::KmsSigner;
use crate::store::s3::S3Blobs;

/// Everything a function needs, built once per execution environment.
pub struct App {
    pub config: Config,
    pub store: DynamoStore,
    pub blobs: S3Blobs,
    /// The key that signs checkpoints and manifests, when `SIGNING_KEY_ID` is set.
    pub signer: Option<KmsSigner>,
    sdk: Option<aws_config::SdkConfig>,
}

impl App {
    /// A function's start: logging, then [`App::from_env`].
    pub async fn start() -> Result<Self, ConfigError> {
        init_tracing();
        Self::from_env().await
    }

    /// Reads configuration and builds the SDK clients. The standard `AWS_ENDPOINT_URL`
    /// (and `AWS_ENDPOINT_URL_S3`/`_DYNAMODB`) point them to a local emulator.
    pub async fn from_env() -> Result<Self, ConfigError> {
        let config = Config::from_env()?;
        let sdk = sdk_config().await;
        let mut app =
            Self::with_clients(config, aws_sdk_dynamodb::Client::new(&sdk), s3_client(&sdk));
        if let Some(key) = &app.config.signing_key_id {
            app.signer = Some(KmsSigner::new(aws_sdk_kms::Client::new(&sdk), key.clone()));
        }
        app.sdk = Some(sdk);
        Ok(app)
    }

    /// The cursor keys of the function that signs and checks page cursors: from
    /// `CURSOR_SIGNING_KEY`, or else read once from the Secrets Manager secret that
    /// `CURSOR_SIGNING_KEY_SECRET` names: its current version (`AWSCURRENT`) signs; its pending
    /// version (`AWSPENDING`, a key staged before it signs) and its previous one (`AWSPREVIOUS`,
    /// after a rotation) check the cursors signed with them (README, "Rotating the cursor key").
    /// Fails (and so does the function's start) without a current key.
    pub async fn with_cursor_key(mut self) -> Result<Self, ConfigError> {
        if self.config.cursor_keys.is_none()
            && let Some(secret) = self.config.cursor_key_secret.clone()
        {
            let sdk = self
                .sdk
                .clone()
                .unwrap_or_else(|| aws_config::SdkConfig::builder().build());
            let client = aws_sdk_secretsmanager::Client::new(&sdk);
            let read = |stage: &'static str| {
                client
                    .get_secret_value()
                    .secret_id(&secret)
                    .version_stage(stage)
                    .send()
            };
            let current = read("AWSCURRENT").await.map_err(|e| {
                ConfigError::new(format!(
                    "CURSOR_SIGNING_KEY_SECRET {secret}: {}",
                    aws_sdk_secretsmanager::error::DisplayErrorContext(&e)
                ))
            })?;
            let current = secret_bytes(
                "the secret of CURSOR_SIGNING_KEY_SECRET",
                current.secret_string().unwrap_or_default().to_owned(),
            )?;
            // The next key (staged before it signs) and the one before (after a rotation) only
            // check; neither exists until the first rotation, and a short one is not a key.
            let mut others = Vec::new();
            for stage in ["AWSPENDING", "AWSPREVIOUS"] {
                match read(stage).await {
                    Ok(answer) => others.extend(
                        secret_bytes(
                            "a version of CURSOR_SIGNING_KEY_SECRET",
                            answer.secret_string().unwrap_or_default().to_owned(),
                        )
                        .inspect_err(|e| tracing::warn!(stage, error = %e, "cursor key left out"))
                        .ok(),
                    ),
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|s| s.is_resource_not_found_exception()) => {}
                    Err(e) => {
                        return Err(ConfigError::new(format!(
                            "CURSOR_SIGNING_KEY_SECRET {secret} ({stage}): {}",
                            aws_sdk_secretsmanager::error::DisplayErrorContext(&e)
                        )));
                    }
                }
            }
            self.config.cursor_keys = Some(CursorKeys::new(current, others));
        }
        self.config.cursor_keys()?;
        Ok(self)
    }

    /// The signer of a function that signs; needs `SIGNING_KEY_ID`.
    pub fn signer(&self) -> Result<&KmsSigner, ConfigError> {
        self.signer
            .as_ref()
            .ok_or_else(|| ConfigError::new("SIGNING_KEY_ID is not set"))
    }

    /// What an export run uses in this app: the table, the bucket, its signer and `launcher`
    /// for the next invocation; needs `SIGNING_KEY_ID`.
    pub fn export_ports<'a, L>(
        &'a self,
        launcher: &'a L,
    ) -> Result<
        ExportPorts<'a, DynamoStore, S3Blobs, DynamoStore, S3Blobs, L, KmsSigner>,
        ConfigError,
    > {
        Ok(ExportPorts {
            reader: &self.store,
            blobs: &self.blobs,
            jobs: &self.store,
            objects: &self.blobs,
            launcher,
            signer: self.signer()?,
        })
    }

    /// Reaches AWS (or the tests' emulator) through `sdk` for what the app reads at start-up
    /// and builds on demand (the cursor key, the worker launcher).
    pub fn with_sdk(mut self, sdk: aws_config::SdkConfig) -> Self {
        self.sdk = Some(sdk);
        self
    }

    /// Signs with `key` of the KMS endpoint `sdk` reaches (the tests' emulator).
    pub fn with_signer(mut self, sdk: &aws_config::SdkConfig, key: impl Into<String>) -> Self {
        self.signer = Some(KmsSigner::new(aws_sdk_kms::Client::new(sdk), key));
        self
    }

    /// The worker launcher of the export API; needs `EXPORT_WORKER_FUNCTION`.
    pub fn export_launcher(&self) -> Result<LambdaLauncher, ConfigError> {
        let function = self
            .config
            .exports
            .worker_function
            .clone()
            .ok_or_else(|| ConfigError::new("EXPORT_WORKER_FUNCTION is not set"))?;
        Ok(self.launcher_of(function))
    }

    /// The worker's launcher of its own continuations: `EXPORT_WORKER_FUNCTION` if set, else
    /// the function itself (`AWS_LAMBDA_FUNCTION_NAME`, which Lambda sets).
    pub fn worker_launcher(&self) -> Result<LambdaLauncher, ConfigError> {
        let function = self
            .config
            .exports
            .worker_function
            .clone()
            .or_else(|| std::env::var("AWS_LAMBDA_FUNCTION_NAME").ok())
            .filter(|f| !f.is_empty())
            .ok_or_else(|| {
                ConfigError::new(
                    "neither EXPORT_WORKER_FUNCTION nor AWS_LAMBDA_FUNCTION_NAME is set",
                )
            })?;
        Ok(self.launcher_of(function))
    }

    fn launcher_of(&self, function: String) -> LambdaLauncher {
        let sdk = self
            .sdk
            .clone()
            .unwrap_or_else(|| aws_config::SdkConfig::builder().build());
        LambdaLauncher::new(aws_sdk_lambda::Client::new(&sdk), function)
    }

    pub fn with_clients(
        config: Config,
        dynamodb: aws_sdk_dynamodb::Client,
        s3: aws_sdk_s3::Client,
    ) -> Self {
        Self {
            store: DynamoStore::new(dynamodb, config.table_name.clone()),
            blobs: S3Blobs::new(s3, config.bucket_name.clone()),
            config,
            signer: None,
            sdk: None,
        }
    }
}

/// Keeps large buffers (an export's parts) in mappings of their own, returned to the system when
/// freed. glibc's malloc otherwise raises its mmap threshold to the size of the first large
/// buffer freed, after which every part comes from the heap, where the small allocations made
/// between two parts can split the freed one: the worker then holds two parts' worth of memory
/// instead of one (BENCHMARKS.md, export memory). Call it first thing in `main`.
pub fn map_large_buffers_apart() {
    /// Allocations from 1 MiB up get their own mapping; an export's part is at least 5 MiB.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    const MMAP_THRESHOLD: libc::c_int = 1 << 20;
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a tuning parameter of the allocator; it is called before the
    // process has started other threads (a current-thread runtime starts none).
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
}

/// Answers API Gateway HTTP events with `handler` until the runtime stops, each tenant within
/// its rate limit ([`rate`](crate::http::rate)).
pub async fn serve_api<F, Fut>(app: &App, handler: F) -> Result<(), lambda_http::Error>
where
    F: Fn(Request) -> Fut + Sync,
    Fut: Future<Output = Response<Body>> + Send,
{
    use tracing::Instrument as _;
    let handler = &handler;
    serve_http(|req| async move {
        let rid = crate::http::request_id(&req);
        // Its log lines name the request and the partner, as the handler's do.
        let span = tracing::info_span!(
            "rate_limit",
            request_id = rid.as_deref().unwrap_or_default(),
            partner = tracing::field::Empty
        );
        let admitted = crate::http::rate::check(&app.config, &app.store, &req)
            .instrument(span)
            .await;
        match admitted {
            Ok(()) => handler(req).await,
            Err(e) => e.into_response(rid.as_deref()),
        }
    })
    .await
}

/// Answers API Gateway HTTP events with `handler` until the runtime stops.
pub async fn serve_http<F, Fut>(handler: F) -> Result<(), lambda_http::Error>
where
    F: Fn(Request) -> Fut,
    Fut: Future<Output = Response<Body>> + Send,
{
    lambda_http::run(service_fn(move |req: Request| {
        let response = handler(req);
        async move { Ok::<_, lambda_http::Error>(response.await) }
    }))
    .await
}

/// The SDK configuration, built for a fast start (BENCHMARKS.md, init):
/// - Credentials: Lambda puts the function's role credentials in the environment; read them
///   there rather than building the default chain, which constructs an STS client (web
///   identity), profile and container providers on every cold start. Without them in the
///   environment (a laptop with a profile), the default chain is used.
/// - TLS roots: one CA bundle file instead of the platform store, which on Debian-like systems
///   also walks a directory of ~300 hashed links holding the same certificates again. Without a
///   bundle file the platform store is used.
pub async fn sdk_config() -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    let has = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    if has("AWS_ACCESS_KEY_ID") && has("AWS_SECRET_ACCESS_KEY") {
        loader = loader.credentials_provider(
            aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
        );
    }
    if let Some(bundle) = ca_bundle() {
        loader = trusting(loader, bundle);
    }
    loader.load().await
}

/// Where the system's CA bundle is: `SSL_CERT_FILE`, else the usual places (Amazon Linux and
/// Fedora, Debian and Ubuntu, Alpine, openSUSE).
fn ca_bundle() -> Option<Vec<u8>> {
    let from_env = std::env::var_os("SSL_CERT_FILE").map(std::path::PathBuf::from);
    from_env
        .into_iter()
        .chain(
            [
                "/etc/pki/tls/certs/ca-bundle.crt",
                "/etc/ssl/certs/ca-certificates.crt",
                "/etc/ssl/cert.pem",
                "/etc/ssl/ca-bundle.pem",
            ]
            .map(std::path::PathBuf::from),
        )
        .find_map(|path| std::fs::read(path).ok().filter(|pem| !pem.is_empty()))
}

/// Gives `loader` the SDK's own HTTPS client (hyper, rustls with aws-lc) trusting the roots in
/// `bundle`.
fn trusting(loader: aws_config::ConfigLoader, bundle: Vec<u8>) -> aws_config::ConfigLoader {
    use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};
    let Ok(context) = TlsContext::builder()
        .with_trust_store(TrustStore::empty().with_pem_certificate(bundle))
        .build()
    else {
        return loader;
    };
    loader.http_client(BuiltOnFirstUse(
        aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::AwsLc,
            ))
            .tls_context(context)
            .build_https(),
    ))
}

/// The SDK's HTTPS client without its start-up check. The check builds a TLS connector (the
/// whole trust store parsed again) for every service client and throws it away; the connector
/// that requests use is built, once, on the first request either way. Three clients made
/// export-activity's init 3.2x a hello-world's (BENCHMARKS.md, init).
#[derive(Debug)]
struct BuiltOnFirstUse(aws_smithy_runtime_api::client::http::SharedHttpClient);

impl aws_smithy_runtime_api::client::http::HttpClient for BuiltOnFirstUse {
    fn http_connector(
        &self,
        settings: &aws_smithy_runtime_api::client::http::HttpConnectorSettings,
        components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
    ) -> aws_smithy_runtime_api::client::http::SharedHttpConnector {
        self.0.http_connector(settings, components)
    }

    fn connector_metadata(
        &self,
    ) -> Option<aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata> {
        self.0.connector_metadata()
    }
}

/// An S3 client; path-style addressing when an endpoint override is in use (emulators do not
/// resolve bucket sub-domains).
pub fn s3_client(sdk: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    let overridden = sdk.endpoint_url().is_some()
        || ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
            .iter()
            .any(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()));
    let conf = aws_sdk_s3::config::Builder::from(sdk)
        .force_path_style(overridden)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// Logs: in AWS Lambda (CloudWatch) and wherever `LOG_FORMAT=json`, one JSON object per line
/// ([`crate::logging::JsonLines`]: function, request id, partner); readable text elsewhere.
/// `RUST_LOG` is a level (`info`, the default) or a list of `target=level` directives;
/// `tracing`'s `Targets` filter reads it, which, unlike the env-filter, needs no
/// regular-expression engine in every package.
pub fn init_tracing() {
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::prelude::*;

    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| v.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO));
    let json = crate::config::in_aws_lambda()
        || std::env::var("LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let registry = tracing_subscriber::registry();
    let _ = if json {
        let layer = tracing_subscriber::fmt::layer()
            .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
            .event_format(crate::logging::JsonLines);
        registry.with(layer.with_filter(filter)).try_init()
    } else {
        let layer = tracing_subscriber::fmt::layer()
            .with_target(false)
            .without_time();
        registry.with(layer.with_filter(filter)).try_init()
    };
}
