//! Start-up wiring shared by every function: logging, configuration and SDK clients, built once.

use std::future::Future;

use lambda_http::{Body, Request, Response, service_fn};

use crate::domain::Identity;
use crate::http::{ApiError, edge, routes};

use crate::config::{Config, ConfigError, LogSettings};
use crate::handlers::export_worker::ExportPorts;
use crate::launch::lambda::LambdaLauncher;
pub use crate::sdk::{s3_client, sdk_config};
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
    /// The anchor store of signed heads, when `ANCHOR_BUCKET` is set.
    pub anchors: Option<S3Blobs>,
    sdk: Option<aws_config::SdkConfig>,
}

/// The export worker's ports in AWS: the table, the bucket, the launcher, KMS and the anchor
/// bucket.
pub type AppExportPorts<'a, L> =
    ExportPorts<'a, DynamoStore, S3Blobs, DynamoStore, S3Blobs, L, KmsSigner, S3Blobs>;

impl App {
    /// A function's start: logging, then [`App::from_env`].
    pub async fn start() -> Result<Self, ConfigError> {
        crate::logging::init(&LogSettings::from_env());
        Self::from_env().await
    }

    /// Reads configuration and builds the SDK clients. The standard `AWS_ENDPOINT_URL`
    /// (and `AWS_ENDPOINT_URL_S3`/`_DYNAMODB`) point them to a local emulator.
    pub async fn from_env() -> Result<Self, ConfigError> {
        let config = Config::from_env()?;
        crate::metrics::set_namespace(config.runtime.metrics_namespace.clone());
        let sdk = sdk_config(&config.runtime.sdk).await;
        let s3 = s3_client(&sdk, &config.runtime.sdk);
        let mut app = Self::with_clients(config, aws_sdk_dynamodb::Client::new(&sdk), s3);
        if let Some(key) = &app.config.signing_key_id {
            app.signer = Some(KmsSigner::new(aws_sdk_kms::Client::new(&sdk), key.clone()));
        }
        app = app.with_anchors(&sdk);
        app.sdk = Some(sdk);
        Ok(app)
    }

    /// The anchor store `ANCHOR_BUCKET` names, reached through `sdk` (or at
    /// `ANCHOR_ENDPOINT_URL`).
    pub fn with_anchors(mut self, sdk: &aws_config::SdkConfig) -> Self {
        let settings = &self.config.anchors;
        if let Some(bucket) = &settings.bucket {
            let client = match &settings.endpoint {
                Some(url) => crate::sdk::s3_client_at(sdk, url),
                None => s3_client(sdk, &self.config.runtime.sdk),
            };
            self.anchors = Some(S3Blobs::new(client, bucket.clone()));
        }
        self
    }

    /// The anchor store of the function that signs checkpoints; needs `ANCHOR_BUCKET`.
    pub fn anchors(&self) -> Result<&S3Blobs, ConfigError> {
        self.anchors
            .as_ref()
            .ok_or_else(|| ConfigError::new("ANCHOR_BUCKET is not set"))
    }

    /// The cursor keys of the function that signs and checks page cursors: from
    /// `CURSOR_SIGNING_KEY`, or else read once from the Secrets Manager secret that
    /// `CURSOR_SIGNING_KEY_SECRET` names ([`crate::store::secrets`]). The app's configuration
    /// is complete with them, before the app serves anything. Fails (and so does the
    /// function's start) without a current key.
    pub async fn with_cursor_key(self) -> Result<Self, ConfigError> {
        if self.config.cursor_keys.is_some() {
            return Ok(self);
        }
        let Some(secret) = self.config.cursor_key_secret.as_deref() else {
            return Err(ConfigError::new(
                "neither CURSOR_SIGNING_KEY nor CURSOR_SIGNING_KEY_SECRET is set",
            ));
        };
        let sdk = self
            .sdk
            .clone()
            .unwrap_or_else(|| aws_config::SdkConfig::builder().build());
        let keys = crate::store::secrets::cursor_keys(&sdk, secret).await?;
        let Self {
            config,
            store,
            blobs,
            signer,
            anchors,
            sdk,
        } = self;
        Ok(Self {
            config: Config {
                cursor_keys: Some(keys),
                ..config
            },
            store,
            blobs,
            signer,
            anchors,
            sdk,
        })
    }

    /// The signer of a function that signs; needs `SIGNING_KEY_ID`.
    pub fn signer(&self) -> Result<&KmsSigner, ConfigError> {
        self.signer
            .as_ref()
            .ok_or_else(|| ConfigError::new("SIGNING_KEY_ID is not set"))
    }

    /// What an export run uses in this app: the table, the bucket, its signer, the anchor
    /// bucket (read) and `launcher` for the next invocation; needs `SIGNING_KEY_ID` and
    /// `ANCHOR_BUCKET`.
    pub fn export_ports<'a, L>(
        &'a self,
        launcher: &'a L,
    ) -> Result<AppExportPorts<'a, L>, ConfigError> {
        Ok(ExportPorts {
            reader: &self.store,
            blobs: &self.blobs,
            jobs: &self.store,
            objects: &self.blobs,
            launcher,
            signer: self.signer()?,
            anchors: self.anchors()?,
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
            .or_else(|| self.config.runtime.function_name.clone())
            .ok_or_else(|| {
                ConfigError::new(
                    "neither EXPORT_WORKER_FUNCTION nor AWS_LAMBDA_FUNCTION_NAME is set",
                )
            })?;
        Ok(self.launcher_of(function))
    }

    /// Partners' buckets and event buses, reached with roles assumed from this app's
    /// credentials (delivery).
    pub fn partner_accounts(&self) -> crate::sinks::PartnerAccounts {
        let sdk = self
            .sdk
            .clone()
            .unwrap_or_else(|| aws_config::SdkConfig::builder().build());
        crate::sinks::PartnerAccounts::new(sdk, self.config.runtime.sdk.s3_endpoint_overridden)
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
            anchors: None,
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

/// Answers the API Gateway HTTP events of `function`'s routes with `handler` until the runtime
/// stops, every request through the whole edge ([`crate::http::edge`]): verified, within its
/// tenant's rate limit ([`rate`](crate::http::rate)), with the permission the route table gives
/// the function's routes.
pub async fn serve_api<F, Fut>(
    app: &App,
    function: &str,
    handler: F,
) -> Result<(), lambda_http::Error>
where
    F: Fn(Identity, Request) -> Fut + Sync,
    Fut: Future<Output = Result<Response<Body>, ApiError>> + Send,
{
    let permission = routes::permission_of(function).ok_or_else(|| {
        ConfigError::new(format!(
            "{function} answers no route of the API (http/routes.rs)"
        ))
    })?;
    let handler = &handler;
    serve_http(|req| edge::respond_counted(&app.config, permission, &app.store, req, handler)).await
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
