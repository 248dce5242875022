//! The request-CPU floor of a function that calls DynamoDB once: the no-op `lambda_http` handler
//! plus one `GetItem` through the SDK client the functions build (`app::sdk_config`), answering
//! `200 {}`. What a function costs above it is its own work (BENCHMARKS.md, request CPU).

use activity_log::app::sdk_config;
use activity_log::config::SdkSettings;
use activity_log_bench::baseline::empty_ok;
use aws_sdk_dynamodb::types::AttributeValue;
use lambda_http::{Error, Request, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let table = std::env::var("TABLE_NAME")?;
    let client = aws_sdk_dynamodb::Client::new(&sdk_config(&SdkSettings::from_env()).await);
    let (client, table) = (&client, table.as_str());
    lambda_http::run(service_fn(move |_: Request| async move {
        client
            .get_item()
            .table_name(table)
            .key("pk", AttributeValue::S("floor".into()))
            .key("sk", AttributeValue::S("floor".into()))
            .send()
            .await?;
        empty_ok()
    }))
    .await
}
