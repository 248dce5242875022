//! The request-CPU floor of a feed page (BENCHMARKS.md, "Streaming"): the no-op `lambda_http`
//! handler plus the storage calls `GET /feed` makes, raw through the SDK client the functions
//! build: the head (`GetItem`), 100 entries (`Query`) and their activities (`BatchGetItem`),
//! answering `200 {}`. What the feed read costs above it is its own work.

use activity_log::app::sdk_config;
use activity_log::config::SdkSettings;
use activity_log_bench::baseline::empty_ok;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use lambda_http::{Error, Request, service_fn};

/// The tenant whose feed the harness seeds (`bench`, request CPU).
const PARTNER: &str = "partner-bench";

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let table = std::env::var("TABLE_NAME")?;
    let client = aws_sdk_dynamodb::Client::new(&sdk_config(&SdkSettings::from_env()).await);
    let (client, table) = (&client, table.as_str());
    lambda_http::run(service_fn(move |_: Request| async move {
        client
            .get_item()
            .table_name(table)
            .key("pk", s(format!("P#{PARTNER}#FEED")))
            .key("sk", s("HEAD"))
            .consistent_read(true)
            .send()
            .await?;
        let entries = client
            .query()
            .table_name(table)
            .consistent_read(true)
            .key_condition_expression("pk = :pk AND sk > :after")
            .expression_attribute_values(":pk", s(format!("P#{PARTNER}#F#0")))
            .expression_attribute_values(":after", s(format!("{:020}", 0)))
            .limit(100)
            .send()
            .await?;
        let keys = entries
            .items()
            .iter()
            .filter_map(|e| {
                let customer = e.get("customerId")?.as_s().ok()?;
                let id = e.get("activityId")?.as_s().ok()?;
                Some(
                    [
                        ("pk".to_owned(), s(format!("P#{PARTNER}#C#{customer}"))),
                        ("sk".to_owned(), s(format!("A#{id}"))),
                    ]
                    .into(),
                )
            })
            .collect();
        client
            .batch_get_item()
            .request_items(
                table,
                KeysAndAttributes::builder()
                    .set_keys(Some(keys))
                    .consistent_read(true)
                    .build()?,
            )
            .send()
            .await?;
        empty_ok()
    }))
    .await
}
