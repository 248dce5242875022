//! Start-up wiring shared by every function: logging, configuration and SDK clients, built once.

use crate::config::Config;
use crate::store::dynamodb::DynamoStore;
use crate::store::lambda::LambdaLauncher;
use crate::store::s3::S3Blobs;

/// Everything a function needs, built once per execution environment.
pub struct App {
    pub config: Config,
    pub store: DynamoStore,
    pub blobs: S3Blobs,
    sdk: Option<aws_config::SdkConfig>,
}

impl App {
    /// Reads configuration and builds the SDK clients. The standard `AWS_ENDPOINT_URL`
    /// (and `AWS_ENDPOINT_URL_S3`/`_DYNAMODB`) point them to a local emulator.
    pub async fn from_env() -> Result<Self, crate::config::ConfigError> {
        let config = Config::from_env()?;
        let sdk = aws_config::load_from_env().await;
        let mut app =
            Self::with_clients(config, aws_sdk_dynamodb::Client::new(&sdk), s3_client(&sdk));
        app.sdk = Some(sdk);
        Ok(app)
    }

    /// The worker launcher of the export API; needs `EXPORT_WORKER_FUNCTION`.
    pub fn export_launcher(&self) -> Result<LambdaLauncher, crate::config::ConfigError> {
        let function =
            self.config.exports.worker_function.clone().ok_or_else(|| {
                crate::config::ConfigError::new("EXPORT_WORKER_FUNCTION is not set")
            })?;
        let sdk = self
            .sdk
            .clone()
            .unwrap_or_else(|| aws_config::SdkConfig::builder().build());
        Ok(LambdaLauncher::new(
            aws_sdk_lambda::Client::new(&sdk),
            function,
        ))
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
            sdk: None,
        }
    }
}

/// An S3 client; path-style addressing when an endpoint override is in use (emulators do not
/// resolve bucket sub-domains).
pub fn s3_client(sdk: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    let overridden = ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()));
    let conf = aws_sdk_s3::config::Builder::from(sdk)
        .force_path_style(overridden)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// JSON logs in Lambda (CloudWatch), readable text elsewhere; level from `RUST_LOG`.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .without_time();
    let in_lambda = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some()
        && std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some()
        && std::env::var("AWS_EXECUTION_ENV").is_ok_and(|v| v.starts_with("AWS_Lambda"));
    let _ = if in_lambda {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
