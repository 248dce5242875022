//! What Lambda's event source mapping does in AWS, for the emulator: reads the table's stream
//! (DynamoDB Streams' wire protocol) shard by shard from its start and hands each batch of
//! records, in order, to the sequencer, retrying a batch until it is taken. The sequencer is the
//! function under `cargo lambda watch` (its Invoke API) or, for in-process tests, the handler.

use std::future::Future;
use std::time::Duration;

use serde_json::{Value, json};

/// Records one `GetRecords` call reads at most (the service's limit).
const READ_LIMIT: usize = 1000;
/// How often an idle stream is polled.
const POLL: Duration = Duration::from_millis(50);

/// A function the table's stream runs, and its event source mapping in `template.yaml`.
#[derive(Clone, Copy, Debug)]
pub struct Consumer {
    /// Its logical id in the template.
    pub resource: &'static str,
    /// The name of its stream event there.
    pub event: &'static str,
    /// Its crate (its name under `cargo lambda watch`).
    pub function: &'static str,
}

/// The sequencer: every activity insert.
pub const SEQUENCER: Consumer = Consumer {
    resource: "SequenceFeedFunction",
    event: "TableStream",
    function: "sequence-feed",
};

/// Delivery: every new feed entry.
pub const DELIVERY: Consumer = Consumer {
    resource: "DeliverFeedFunction",
    event: "FeedEntries",
    function: "deliver-feed",
};

/// An event source mapping as `template.yaml` declares it: the most records it hands over at
/// once, and the filters a record must pass (Lambda drops the others).
#[derive(Clone, Debug)]
pub struct Mapping {
    pub batch_size: usize,
    filters: Vec<Value>,
}

impl Mapping {
    pub fn of_template(consumer: &Consumer) -> Result<Self, String> {
        use crate::cloudformation::{at, items, text};
        let template: serde_norway::Value =
            serde_norway::from_str(&crate::read_workspace_file("template.yaml"))
                .map_err(|e| format!("template.yaml: {e}"))?;
        let mapping = at(
            &template,
            &format!(
                "Resources.{}.Properties.Events.{}.Properties",
                consumer.resource, consumer.event
            ),
        );
        let batch_size = at(mapping, "BatchSize")
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .ok_or("the stream mapping has no BatchSize")?;
        let filters = items(at(mapping, "FilterCriteria.Filters"))
            .iter()
            .map(|f| serde_json::from_str(text(at(f, "Pattern"))).map_err(|e| e.to_string()))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            batch_size,
            filters,
        })
    }

    /// Whether `record` passes one of the filters (event filtering's rules for what the
    /// template uses: nested fields, lists of values, `prefix`).
    pub fn passes(&self, record: &Value) -> bool {
        self.filters.is_empty() || self.filters.iter().any(|p| matches(p, record))
    }
}

fn matches(pattern: &Value, event: &Value) -> bool {
    match pattern {
        Value::Object(fields) => fields
            .iter()
            .all(|(name, p)| event.get(name).is_some_and(|e| matches(p, e))),
        Value::Array(options) => options.iter().any(|option| match option {
            Value::Object(rule) => rule
                .get("prefix")
                .and_then(Value::as_str)
                .zip(event.as_str())
                .is_some_and(|(prefix, value)| value.starts_with(prefix)),
            literal => literal == event,
        }),
        _ => false,
    }
}

/// The stream of `table` in the emulator at `endpoint`.
#[derive(Clone, Debug)]
pub struct Stream {
    http: reqwest::Client,
    endpoint: String,
    arn: String,
    mapping: Mapping,
}

impl Stream {
    /// Finds the table's stream (created with it by `create_table`), as `consumer`'s mapping
    /// reads it.
    pub async fn of_table(
        endpoint: &str,
        table: &str,
        consumer: &Consumer,
    ) -> Result<Self, String> {
        let http = reqwest::Client::new();
        let described = call(
            &http,
            endpoint,
            "DynamoDB_20120810.DescribeTable",
            json!({"TableName": table}),
        )
        .await?;
        let arn = described["Table"]["LatestStreamArn"]
            .as_str()
            .ok_or_else(|| format!("table {table} has no stream"))?
            .to_owned();
        Ok(Self {
            http,
            endpoint: endpoint.to_owned(),
            arn,
            mapping: Mapping::of_template(consumer)?,
        })
    }

    async fn streams(&self, operation: &str, body: Value) -> Result<Value, String> {
        call(
            &self.http,
            &self.endpoint,
            &format!("DynamoDBStreams_20120810.{operation}"),
            body,
        )
        .await
    }

    /// Delivers the stream's records that pass the mapping's filters to `deliver` in batches of
    /// up to its batch size, in order, forever: a batch `deliver` refuses is delivered again
    /// after a pause (as Lambda retries a failed batch), and nothing after it is delivered
    /// before it is taken.
    pub async fn pump<F, Fut>(&self, mut deliver: F) -> Result<(), String>
    where
        F: FnMut(Value) -> Fut,
        Fut: Future<Output = Result<(), String>>,
    {
        let mut iterators: Vec<(String, Option<String>)> = Vec::new();
        loop {
            let description = self
                .streams("DescribeStream", json!({"StreamArn": self.arn}))
                .await?;
            for shard in description["StreamDescription"]["Shards"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let id = shard["ShardId"].as_str().unwrap_or_default().to_owned();
                if !iterators.iter().any(|(s, _)| *s == id) {
                    let it = self
                        .streams(
                            "GetShardIterator",
                            json!({"StreamArn": self.arn, "ShardId": id, "ShardIteratorType": "TRIM_HORIZON"}),
                        )
                        .await?;
                    iterators.push((id, it["ShardIterator"].as_str().map(str::to_owned)));
                }
            }
            let mut delivered = false;
            for (_, iterator) in &mut iterators {
                let Some(it) = iterator.clone() else { continue };
                let out = self
                    .streams(
                        "GetRecords",
                        json!({"ShardIterator": it, "Limit": READ_LIMIT}),
                    )
                    .await?;
                let records = out["Records"].as_array().cloned().unwrap_or_default();
                delivered |= !records.is_empty();
                let passed: Vec<Value> = records
                    .into_iter()
                    .filter(|r| self.mapping.passes(r))
                    .map(|mut r| {
                        r["eventSourceARN"] = json!(self.arn);
                        r
                    })
                    .collect();
                for batch in passed.chunks(self.mapping.batch_size.max(1)) {
                    let event = json!({ "Records": batch });
                    let mut attempt = 0u32;
                    while let Err(e) = deliver(event.clone()).await {
                        attempt += 1;
                        eprintln!("stream pump: batch refused (attempt {attempt}): {e}");
                        tokio::time::sleep(POLL * attempt.min(20)).await;
                    }
                }
                *iterator = out["NextShardIterator"].as_str().map(str::to_owned);
            }
            if !delivered {
                tokio::time::sleep(POLL).await;
            }
        }
    }
}

/// One call of the emulator's JSON protocol (the emulator does not check signatures; the
/// credential scope names the region).
async fn call(
    http: &reqwest::Client,
    endpoint: &str,
    target: &str,
    body: Value,
) -> Result<Value, String> {
    let response = http
        .post(endpoint)
        .header("x-amz-target", target)
        .header("content-type", "application/x-amz-json-1.0")
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0",
        )
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| format!("{target}: {e}"))?;
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|e| format!("{target}: {e}"))?;
    if !status.is_success() {
        return Err(format!("{target}: HTTP {status}: {text}"));
    }
    serde_json::from_str(&text).map_err(|e| format!("{target}: {e}"))
}

/// Delivers `event` to `function` through the Invoke API at `lambda` (`cargo lambda watch`),
/// as the event source mapping invokes the sequencer; a function error refuses the batch.
pub async fn invoke(
    http: &reqwest::Client,
    lambda: &str,
    function: &str,
    event: Value,
) -> Result<(), String> {
    let response = http
        .post(format!(
            "{lambda}/2015-03-31/functions/{function}/invocations"
        ))
        .json(&event)
        .send()
        .await
        .map_err(|e| format!("invoke {function}: {e}"))?;
    let status = response.status();
    let failed = response.headers().contains_key("x-amz-function-error");
    let text = response.text().await.unwrap_or_default();
    if !status.is_success() || failed {
        return Err(format!("{function} answered HTTP {status}: {text}"));
    }
    Ok(())
}

/// Pumps `table`'s stream into `consumer` at `lambda` on a thread of its own until the process
/// exits.
pub fn pump_into_function(endpoint: &str, table: &str, lambda: &str, consumer: Consumer) {
    let (endpoint, table, lambda) = (endpoint.to_owned(), table.to_owned(), lambda.to_owned());
    std::thread::spawn(move || {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(r) => r,
            Err(e) => {
                eprintln!("stream pump: no runtime: {e}");
                return;
            }
        };
        runtime.block_on(async {
            let http = reqwest::Client::new();
            let result = async {
                let stream = Stream::of_table(&endpoint, &table, &consumer).await?;
                stream
                    .pump(|event| invoke(&http, &lambda, consumer.function, event))
                    .await
            }
            .await;
            if let Err(e) = result {
                eprintln!("stream pump of {table} stopped: {e}");
            }
        });
    });
}

/// Pumps `app`'s table stream into the sequencer handler, in this process, until the test ends.
pub async fn pump_into_sequencer(app: &activity_log::app::App) {
    let stream = Stream::of_table(&crate::emulator().await, &app.config.table_name, &SEQUENCER)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let store = app.store.clone();
    tokio::spawn(async move {
        let result = stream
            .pump(|event| {
                let store = store.clone();
                async move {
                    let event = serde_json::from_value(event).map_err(|e| e.to_string())?;
                    activity_log::handlers::feed::sequence(&store, &event)
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                }
            })
            .await;
        panic!("the stream pump stopped: {result:?}");
    });
}

/// Waits until partner `p`'s feed has given position `head`.
pub async fn wait_for_head(app: &activity_log::app::App, p: &str, head: u64) {
    use activity_log::store::FeedLog as _;
    let partner = activity_log::domain::PartnerId::parse(p).unwrap_or_else(|e| panic!("{e}"));
    crate::wait_until(
        &format!("the feed of {p} at position {head}"),
        Duration::from_secs(120),
        || async { app.store.feed_head(&partner).await.is_ok_and(|h| h >= head) },
    )
    .await;
}

/// Invokes `function` at `lambda` every `period` with a scheduled event (as EventBridge's
/// schedule does in AWS), on a thread of its own until the process exits.
pub fn tick_function(lambda: &str, function: &'static str, period: Duration) {
    let lambda = lambda.to_owned();
    std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            eprintln!("schedule of {function}: no runtime");
            return;
        };
        runtime.block_on(async {
            let http = reqwest::Client::new();
            loop {
                tokio::time::sleep(period).await;
                let event = json!({"source": "aws.events", "detail-type": "Scheduled Event",
                                   "detail": {}});
                if let Err(e) = invoke(&http, &lambda, function, event).await {
                    eprintln!("schedule of {function}: {e}");
                }
            }
        });
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(event: &str, sk: &str) -> Value {
        json!({"eventName": event, "dynamodb": {"Keys": {"pk": {"S": "P#p1#C#c1"}, "sk": {"S": sk}}}})
    }

    #[test]
    fn the_template_s_filter_passes_activity_inserts_only() {
        let mapping = Mapping::of_template(&SEQUENCER).unwrap_or_else(|e| panic!("{e}"));
        assert!(mapping.passes(&record("INSERT", "A#a1")));
        for (event, sk) in [
            ("MODIFY", "A#a1"),
            ("MODIFY", "HEAD"),
            ("INSERT", "HEAD"),
            ("INSERT", "00000000000000000001"),
            ("REMOVE", "A#a1"),
        ] {
            assert!(!mapping.passes(&record(event, sk)), "{event} {sk}");
        }
        assert!(!mapping.passes(&json!({"eventName": "INSERT"})));
        assert!(mapping.batch_size >= 1);
    }
}
