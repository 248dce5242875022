//! Key design of the activity table (see README, "Storage").
//!
//! | attribute | value                                   | serves                                |
//! |-----------|-----------------------------------------|---------------------------------------|
//! | `pk`      | `P#<partner>#C#<customer>`              | table partition: one tenant's customer|
//! | `sk`      | `A#<activityId>`                        | detail lookup, idempotent insert      |
//! | `tsk`     | `<occurredAt>#<activityId>`             | LSI `byTime`: customer log by period  |
//! | `gpk`     | `P#<partner>`                           | GSI `byPartnerTime` partition         |
//! | `gsk`     | `<occurredAt>#<customer>#<activityId>`  | GSI `byPartnerTime`: tenant-wide log  |
//!
//! Export jobs live in the same table under `pk = P#<partner>#X#<exportId>`, `sk = EXPORT`, with
//! no index keys, so they never appear in activity queries. A tenant's export slots (the exports
//! pending or running) are one item, `pk = P#<partner>#EXPORTS`, `sk = SLOTS`: `active` counts
//! them and `r_<request key>` holds each one's export id. Rate-limit counters are
//! `pk = P#<partner>#RATE`, `sk = <window start, epoch seconds>`, with a TTL.
//!
//! Each customer's chain head (README, "Tamper-evident log") is `pk = P#<partner>#C#<customer>`,
//! `sk = HEAD`, beside its activities and without index keys: `sequence` and `hash` of the last
//! activity recorded, moved in the same transaction as the activities. Signed heads are kept
//! outside the table, in the anchor bucket, which only the signing functions write.
//!
//! A tenant's feed (README, "Streaming"): its head, `pk = P#<partner>#FEED`, `sk = HEAD`, holds
//! `position`, the last position given; the entry at each position is
//! `pk = P#<partner>#F#<position / FEED_BLOCK>`, `sk = <position, 20 digits>`, naming the
//! customer and activity, with the activity's TTL. The activity itself carries `feedPosition`.
//! Blocks keep each item collection small (the table's local index limits one to 10 GB).
//!
//! A tenant's streaming destinations (README, "Streaming"): each is
//! `pk = P#<partner>#DEST`, `sk = D#<destinationId>`, holding its settings under `version` and
//! delivery's cursor `delivered`; `sk = COUNT` beside them counts them in `n` (at most
//! [`MAX_DESTINATIONS`](crate::domain::destination::MAX_DESTINATIONS)). Every tenant's
//! destinations are also listed under `pk = DESTINATIONS`, `sk = <partner>#<destinationId>`, for
//! scheduled delivery.
//!
//! `occurredAt` is fixed-width RFC 3339 UTC with milliseconds, so string order is time order.
//! Partner ids cannot contain `#`, so partitions of different tenants never collide.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use serde::{Deserialize, Serialize};

use crate::domain::destination::DestinationId;
use crate::domain::{ActivityId, CustomerId, ExportId, PageKey, PartnerId, time};

pub const PK: &str = "pk";
pub const SK: &str = "sk";
pub const TIME_SK: &str = "tsk";
pub const PARTNER_PK: &str = "gpk";
pub const PARTNER_SK: &str = "gsk";
pub const BY_TIME_INDEX: &str = "byTime";
pub const BY_PARTNER_TIME_INDEX: &str = "byPartnerTime";
/// A customer's chain in sequence order: its activities and head by `sequence`; keys and the
/// chain's attributes only.
pub const BY_SEQUENCE_INDEX: &str = "bySequence";
/// The sort key of the `bySequence` index.
pub const SEQUENCE: &str = "sequence";
/// Every customer's head by when its last activity was recorded, across tenants, in
/// [`HEAD_SHARDS`] partitions (`headShard`, `recordedAt`): what the sealer reads.
pub const BY_HEAD_MOVED_INDEX: &str = "byHeadMoved";
/// The partition key of the `byHeadMoved` index (only heads carry it).
pub const HEAD_SHARD: &str = "headShard";
/// The partitions of the `byHeadMoved` index: a head's is fixed by its customer's partition.
pub const HEAD_SHARDS: u32 = 8;
/// Sort keys of activities start with it.
pub const ACTIVITY_SK_PREFIX: &str = "A#";

/// Positions of one feed block (one partition of feed entries).
pub const FEED_BLOCK: u64 = 1_000_000;
/// Attribute of an activity holding its feed position.
pub const FEED_POSITION: &str = "feedPosition";

/// Sort keys of destinations start with it.
pub const DESTINATION_SK_PREFIX: &str = "D#";
/// The partition that lists every tenant's destinations (`sk = <partner>#<destinationId>`),
/// which scheduled delivery reads.
pub const DESTINATION_REGISTRY_PK: &str = "DESTINATIONS";
/// Sort key of the item counting a tenant's destinations.
pub const DESTINATION_COUNT_SK: &str = "COUNT";
/// Attribute of the count item.
pub const DESTINATION_COUNT: &str = "n";

/// The partition of `partner`'s destinations.
pub fn destinations_pk(partner: &PartnerId) -> String {
    format!("P#{partner}#DEST")
}

/// Sort key of a customer's chain head.
pub const CHAIN_HEAD_SK: &str = "HEAD";
/// Sort key of an export job record.
pub const EXPORT_JOB_SK: &str = "EXPORT";
/// Sort key of a tenant's export slots.
pub const EXPORT_SLOTS_SK: &str = "SLOTS";
/// Attribute of the slots item counting the exports pending or running.
pub const ACTIVE_EXPORTS: &str = "active";

/// Attribute of the slots item holding the export id of the request `request_key`.
pub fn export_slot(request_key: &str) -> String {
    format!("r_{request_key}")
}

/// The primary key of an item (attribute names [`PK`], [`SK`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableKey {
    pub pk: String,
    pub sk: String,
}

impl TableKey {
    pub fn activity(partner: &PartnerId, customer: &CustomerId, id: &ActivityId) -> Self {
        Self {
            pk: customer_pk(partner, customer),
            sk: activity_sk(id),
        }
    }

    pub fn chain_head(partner: &PartnerId, customer: &CustomerId) -> Self {
        Self {
            pk: customer_pk(partner, customer),
            sk: CHAIN_HEAD_SK.to_owned(),
        }
    }

    pub fn export_job(partner: &PartnerId, id: &ExportId) -> Self {
        Self {
            pk: format!("P#{partner}#X#{id}"),
            sk: EXPORT_JOB_SK.to_owned(),
        }
    }

    pub fn export_slots(partner: &PartnerId) -> Self {
        Self {
            pk: format!("P#{partner}#EXPORTS"),
            sk: EXPORT_SLOTS_SK.to_owned(),
        }
    }

    /// The head of `partner`'s feed.
    pub fn feed_head(partner: &PartnerId) -> Self {
        Self {
            pk: format!("P#{partner}#FEED"),
            sk: CHAIN_HEAD_SK.to_owned(),
        }
    }

    /// The entry at `position` of `partner`'s feed.
    pub fn feed_entry(partner: &PartnerId, position: u64) -> Self {
        Self {
            pk: feed_block_pk(partner, position / FEED_BLOCK),
            sk: feed_sk(position),
        }
    }

    /// A streaming destination of `partner`.
    pub fn destination(partner: &PartnerId, id: &DestinationId) -> Self {
        Self {
            pk: destinations_pk(partner),
            sk: format!("{DESTINATION_SK_PREFIX}{id}"),
        }
    }

    /// `partner`'s destination `id` in the registry of every tenant's destinations.
    pub fn registered_destination(partner: &PartnerId, id: &DestinationId) -> Self {
        Self {
            pk: DESTINATION_REGISTRY_PK.to_owned(),
            sk: format!("{partner}#{id}"),
        }
    }

    /// The item counting `partner`'s destinations.
    pub fn destination_count(partner: &PartnerId) -> Self {
        Self {
            pk: destinations_pk(partner),
            sk: DESTINATION_COUNT_SK.to_owned(),
        }
    }

    /// The request counter of `partner` for the window starting at `window_start` (epoch
    /// seconds).
    pub fn rate_window(partner: &PartnerId, window_start: i64) -> Self {
        Self {
            pk: format!("P#{partner}#RATE"),
            sk: window_start.to_string(),
        }
    }
}

/// The index keys of an activity (attribute names [`TIME_SK`], [`PARTNER_PK`], [`PARTNER_SK`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexKeys {
    pub tsk: String,
    pub gpk: String,
    pub gsk: String,
}

impl IndexKeys {
    pub fn activity(partner: &PartnerId, key: &PageKey) -> Self {
        Self {
            tsk: time_sk(key),
            gpk: partner_pk(partner),
            gsk: partner_sk(key),
        }
    }
}

pub fn customer_pk(partner: &PartnerId, customer: &CustomerId) -> String {
    format!("P#{partner}#C#{customer}")
}

/// The `byHeadMoved` partition of the head of the customer whose partition is `pk`.
pub fn head_shard(pk: &str) -> String {
    let n = pk
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    (n % HEAD_SHARDS).to_string()
}

/// The partition of `partner`'s feed entries of block `block`.
pub fn feed_block_pk(partner: &PartnerId, block: u64) -> String {
    format!("P#{partner}#F#{block}")
}

/// The sort key of a feed entry: its position, zero-padded so string order is position order.
pub fn feed_sk(position: u64) -> String {
    format!("{position:020}")
}

pub fn activity_sk(id: &ActivityId) -> String {
    format!("A#{id}")
}

pub fn time_sk(key: &PageKey) -> String {
    format!("{}#{}", time::format(key.occurred_at), key.id)
}

pub fn partner_pk(partner: &PartnerId) -> String {
    format!("P#{partner}")
}

pub fn partner_sk(key: &PageKey) -> String {
    format!(
        "{}#{}#{}",
        time::format(key.occurred_at),
        key.customer_id,
        key.id
    )
}

/// Lowest sort key of anything at or after `t` (a bare timestamp sorts before `<t>#…`).
pub fn range_low(t: chrono::DateTime<chrono::Utc>) -> String {
    time::format(t)
}

/// Highest sort key of anything at or before `t`: `$` follows `#`, so `<t>$` is above every `<t>#…`.
pub fn range_high(t: chrono::DateTime<chrono::Utc>) -> String {
    format!("{}$", time::format(t))
}

/// Rebuilds a page position from the keys DynamoDB reports as the last one it read.
pub fn page_key_from(partner: &PartnerId, pk: &str, sk: &str, time_key: &str) -> Option<PageKey> {
    let prefix = format!("P#{partner}#C#");
    let customer = CustomerId::parse(pk.strip_prefix(&prefix)?).ok()?;
    let id = ActivityId::parse(sk.strip_prefix("A#")?).ok()?;
    let occurred_at = time::parse_timestamp(time_key.get(..24)?).ok()?;
    Some(PageKey {
        occurred_at,
        customer_id: customer,
        id,
    })
}

/// Object key of a details document kept in the bucket, under the tenant's prefix.
/// The content fingerprint in the name means a conflicting write can never overwrite stored details.
pub fn details_object_key(
    partner: &PartnerId,
    customer: &CustomerId,
    id: &ActivityId,
    content_hash: &str,
) -> String {
    format!(
        "details/{partner}/{}/{id}/{content_hash}.json",
        URL_SAFE_NO_PAD.encode(customer.as_str())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(t: &str, c: &str, id: &str) -> PageKey {
        PageKey {
            occurred_at: time::parse_timestamp(t).unwrap(),
            customer_id: CustomerId::parse(c).unwrap(),
            id: ActivityId::parse(id).unwrap(),
        }
    }

    #[test]
    fn time_keys_sort_like_time_and_stay_inside_range_bounds() {
        let a = key("2026-01-01T00:00:00.000Z", "c", "zzz");
        let b = key("2026-01-01T00:00:00.001Z", "c", "AAA");
        assert!(time_sk(&a) < time_sk(&b));
        assert!(partner_sk(&a) < partner_sk(&b));
        assert!(range_low(a.occurred_at) <= time_sk(&a));
        assert!(time_sk(&a) < range_high(a.occurred_at));
        assert!(
            partner_sk(&key("2026-01-01T00:00:00.000Z", "客戶", "z")) < range_high(a.occurred_at)
        );
        assert!(range_high(a.occurred_at) < time_sk(&b));
    }

    #[test]
    fn page_keys_round_trip_through_table_keys() {
        let p = PartnerId::parse("p1").unwrap();
        let k = key("2026-03-04T05:06:07.089Z", "客戶#1", "id-1");
        let back = page_key_from(
            &p,
            &customer_pk(&p, &k.customer_id),
            &activity_sk(&k.id),
            &partner_sk(&k),
        );
        assert_eq!(back, Some(k.clone()));
        let other = PartnerId::parse("p2").unwrap();
        assert_eq!(
            page_key_from(
                &other,
                &customer_pk(&p, &k.customer_id),
                &activity_sk(&k.id),
                &time_sk(&k)
            ),
            None
        );
    }

    #[test]
    fn key_structs_name_the_key_attributes() {
        use crate::domain::names::fields_of;
        assert_eq!(fields_of::<TableKey>(), [PK, SK]);
        assert_eq!(fields_of::<IndexKeys>(), [TIME_SK, PARTNER_PK, PARTNER_SK]);
    }

    #[test]
    fn details_keys_live_under_the_tenant_prefix() {
        let p = PartnerId::parse("p1").unwrap();
        let k = details_object_key(
            &p,
            &CustomerId::parse("a b/..").unwrap_or_else(|_| CustomerId::parse("a b..").unwrap()),
            &ActivityId::parse("x").unwrap(),
            "abc",
        );
        assert!(k.starts_with("details/p1/"));
        assert!(!k.contains(' '));
    }
}
