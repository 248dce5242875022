//! The AWS SDK's set-up: credentials, TLS roots and the HTTPS client, built for a fast start.

use crate::config::SdkSettings;

/// The SDK configuration, built for a fast start (BENCHMARKS.md, init):
/// - Credentials: Lambda puts the function's role credentials in the environment; read them
///   there rather than building the default chain, which constructs an STS client (web
///   identity), profile and container providers on every cold start. Without them in the
///   environment (a laptop with a profile), the default chain is used.
/// - TLS roots: one CA bundle file instead of the platform store, which on Debian-like systems
///   also walks a directory of ~300 hashed links holding the same certificates again. Without a
///   bundle file the platform store is used.
pub async fn sdk_config(settings: &SdkSettings) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if settings.credentials_in_env {
        loader = loader.credentials_provider(
            aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
        );
    }
    if let Some(bundle) = ca_bundle(settings) {
        loader = trusting(loader, bundle);
    }
    loader.load().await
}

/// Where the system's CA bundle is: `SSL_CERT_FILE`, else the usual places (Amazon Linux and
/// Fedora, Debian and Ubuntu, Alpine, openSUSE).
fn ca_bundle(settings: &SdkSettings) -> Option<Vec<u8>> {
    settings
        .ca_bundle_file
        .clone()
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
pub fn s3_client(sdk: &aws_config::SdkConfig, settings: &SdkSettings) -> aws_sdk_s3::Client {
    let overridden = sdk.endpoint_url().is_some() || settings.s3_endpoint_overridden;
    let conf = aws_sdk_s3::config::Builder::from(sdk)
        .force_path_style(overridden)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// An S3 client of its own endpoint (`endpoint`: an emulator), path-style; it takes precedence
/// over `AWS_ENDPOINT_URL_S3`, which the other buckets' client follows.
pub fn s3_client_at(sdk: &aws_config::SdkConfig, endpoint: &str) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::config::Builder::from(sdk)
        .endpoint_url(endpoint)
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}
