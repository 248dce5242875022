//! The feed: every activity of a partner at a gapless position, in the order its write
//! committed (README, "Streaming"). Positions are handed out after the write, by the sequencer
//! reading the table's stream, so recording never waits for them.
//!
//! What the sequencer takes from a stream record is parsed here: the table's stream (new image)
//! carries each inserted activity whole; only its tenant, customer, id and expiry are needed.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use super::ids::{ActivityId, CustomerId, PartnerId};
use super::time;

/// Feed positions a page may ask for at most, and by default.
pub const MAX_FEED_LIMIT: usize = 1000;
pub const DEFAULT_FEED_LIMIT: usize = 100;
/// The largest position the API takes or gives (2^53 − 1: every JSON reader holds it exactly).
pub const MAX_POSITION: u64 = (1 << 53) - 1;
/// Activities placed by one transaction: each takes two writes (its position on the activity,
/// and the feed's entry), and the partner's feed head one more (DynamoDB's limit is 100).
pub const MAX_APPEND: usize = 49;

/// One activity to place in its partner's feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedEntry {
    pub customer_id: CustomerId,
    pub activity_id: ActivityId,
    /// When its activity expires (epoch seconds, the activity's TTL): the entry expires with it.
    pub expires_at: i64,
}

/// The activities a batch of stream records inserted, by tenant in stream order, and how many
/// records were not activity inserts (head moves, jobs, counters, modifications).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Inserted {
    pub by_partner: Vec<(PartnerId, Vec<FeedEntry>)>,
    pub other_records: usize,
    /// Activity inserts whose image could not be read (logged; they cannot be placed).
    pub unreadable: Vec<String>,
    /// When the newest of them was recorded (for the feed's lag).
    pub newest_recorded_at: Option<DateTime<Utc>>,
}

/// A DynamoDB stream event as Lambda delivers it (`Records[].dynamodb.NewImage` in DynamoDB's
/// JSON form).
#[derive(Debug, Deserialize)]
pub struct StreamEvent {
    #[serde(rename = "Records", default)]
    pub records: Vec<StreamRecord>,
}

#[derive(Debug, Deserialize)]
pub struct StreamRecord {
    #[serde(rename = "eventName", default)]
    pub event_name: String,
    #[serde(default)]
    pub dynamodb: StreamImage,
}

#[derive(Debug, Default, Deserialize)]
pub struct StreamImage {
    #[serde(rename = "Keys", default)]
    pub keys: HashMap<String, Value>,
    #[serde(rename = "NewImage", default)]
    pub new_image: HashMap<String, Value>,
}

/// A string attribute (`{"S": …}`) of an image.
fn string<'a>(image: &'a HashMap<String, Value>, name: &str) -> Option<&'a str> {
    image.get(name)?.get("S")?.as_str()
}

/// A number attribute (`{"N": "…"}`) of an image, as a whole number.
fn whole(image: &HashMap<String, Value>, name: &str) -> Option<i64> {
    image.get(name)?.get("N")?.as_str()?.parse().ok()
}

impl StreamRecord {
    /// The partition key of the item the record is about.
    pub fn partition_key(&self) -> Option<&str> {
        string(&self.dynamodb.keys, "pk")
    }
}

impl StreamEvent {
    /// The activities it inserted, grouped by tenant; everything else is counted and left.
    pub fn inserted(&self) -> Inserted {
        let mut out = Inserted::default();
        let mut slot: HashMap<PartnerId, usize> = HashMap::new();
        for r in &self.records {
            let is_activity = string(&r.dynamodb.keys, "sk").is_some_and(|sk| sk.starts_with("A#"));
            if r.event_name != "INSERT" || !is_activity {
                out.other_records += 1;
                continue;
            }
            let image = &r.dynamodb.new_image;
            let entry = (|| {
                let partner = PartnerId::parse(string(image, "partnerId")?).ok()?;
                let entry = FeedEntry {
                    customer_id: CustomerId::parse(string(image, "customerId")?).ok()?,
                    activity_id: ActivityId::parse(string(image, "id")?).ok()?,
                    expires_at: whole(image, "ttl")?,
                };
                Some((partner, entry))
            })();
            let Some((partner, entry)) = entry else {
                let key = string(&r.dynamodb.keys, "pk").unwrap_or("?").to_owned()
                    + " "
                    + string(&r.dynamodb.keys, "sk").unwrap_or("?");
                out.unreadable.push(key);
                continue;
            };
            let recorded = string(image, "recordedAt").and_then(|t| time::parse_timestamp(t).ok());
            out.newest_recorded_at = out.newest_recorded_at.max(recorded);
            let i = *slot.entry(partner.clone()).or_insert_with(|| {
                out.by_partner.push((partner, Vec::new()));
                out.by_partner.len() - 1
            });
            // The same insert twice in one batch (a write retried after its transaction was
            // cancelled, as the emulator reports it; an item inserted again): placed once.
            let entries = &mut out.by_partner[i].1;
            if entries
                .iter()
                .any(|e| e.activity_id == entry.activity_id && e.customer_id == entry.customer_id)
            {
                out.other_records += 1;
                continue;
            }
            entries.push(entry);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn insert(partner: &str, customer: &str, id: &str) -> Value {
        json!({
            "eventName": "INSERT",
            "dynamodb": {
                "Keys": {"pk": {"S": format!("P#{partner}#C#{customer}")}, "sk": {"S": format!("A#{id}")}},
                "NewImage": {
                    "pk": {"S": format!("P#{partner}#C#{customer}")}, "sk": {"S": format!("A#{id}")},
                    "partnerId": {"S": partner}, "customerId": {"S": customer}, "id": {"S": id},
                    "ttl": {"N": "1900000000"}, "action": {"S": "placed an order"}
                },
                "SequenceNumber": "1"
            }
        })
    }

    #[test]
    fn activity_inserts_are_grouped_by_tenant_in_stream_order_and_the_rest_is_left() {
        let event: StreamEvent = serde_json::from_value(json!({"Records": [
            insert("p1", "c1", "a1"),
            {"eventName": "MODIFY", "dynamodb": {"Keys": {"pk": {"S": "P#p1#C#c1"}, "sk": {"S": "HEAD"}}}},
            insert("p2", "c9", "b1"),
            {"eventName": "INSERT", "dynamodb": {"Keys": {"pk": {"S": "P#p1#EXPORTS"}, "sk": {"S": "SLOTS"}}}},
            insert("p1", "c2", "a2"),
            {"eventName": "MODIFY", "dynamodb": {"Keys": {"pk": {"S": "P#p1#C#c1"}, "sk": {"S": "A#a1"}}}},
            insert("p1", "c2", "a2"),
        ]}))
        .unwrap();
        let inserted = event.inserted();
        assert_eq!(inserted.other_records, 4);
        assert!(inserted.unreadable.is_empty());
        let ids: Vec<(String, Vec<String>)> = inserted
            .by_partner
            .iter()
            .map(|(p, e)| {
                (
                    p.to_string(),
                    e.iter().map(|e| e.activity_id.to_string()).collect(),
                )
            })
            .collect();
        assert_eq!(
            ids,
            vec![
                ("p1".to_owned(), vec!["a1".to_owned(), "a2".to_owned()]),
                ("p2".to_owned(), vec!["b1".to_owned()])
            ]
        );
        assert_eq!(inserted.by_partner[0].1[1].customer_id.as_str(), "c2");
        assert_eq!(inserted.by_partner[0].1[0].expires_at, 1_900_000_000);
    }

    #[test]
    fn an_insert_without_a_readable_image_is_reported_not_guessed() {
        let mut broken = insert("p1", "c1", "a1");
        broken["dynamodb"]["NewImage"]
            .as_object_mut()
            .unwrap()
            .remove("ttl");
        let event: StreamEvent =
            serde_json::from_value(json!({"Records": [broken, insert("p1", "c1", "a2")]})).unwrap();
        let inserted = event.inserted();
        assert_eq!(inserted.unreadable, vec!["P#p1#C#c1 A#a1".to_owned()]);
        assert_eq!(inserted.by_partner[0].1.len(), 1);
    }
}
