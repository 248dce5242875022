//! Record request bodies (`activity_log::domain::activity::parse_batch`) from arbitrary bytes.
//!
//! Properties: it never panics, and an accepted batch holds what the validation promises:
//! 1..=MAX_BATCH activities with distinct (customer, id) pairs; ids and customer ids that parse
//! as themselves; `customerName`, `action`, `partnerUser` (1..=256 characters) and
//! `resourceType` (1..=64) without control characters and not blank; `occurredAt` in whole
//! milliseconds, in the accepted range and within the retention period and the 5-minute skew;
//! `details` a JSON object in compact form of at most MAX_DETAILS_BYTES; a 64-hex-digit
//! content hash.
#![no_main]

use std::collections::HashSet;

use activity_log::domain::activity::{MAX_BATCH, MAX_DETAILS_BYTES, parse_batch};
use activity_log::domain::time::{MAX_FUTURE_SKEW, earliest, latest, parse_timestamp};
use activity_log::domain::{ActivityId, CustomerId, WriteRules};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|body: &[u8]| {
    let rules = WriteRules {
        now: parse_timestamp("2026-11-25T12:00:00Z").unwrap(),
        retention_days: 365,
    };
    let Ok(batch) = parse_batch(body, rules) else {
        return;
    };
    assert!((1..=MAX_BATCH).contains(&batch.len()), "{}", batch.len());
    let mut seen = HashSet::new();
    for a in &batch {
        assert!(seen.insert((&a.customer_id, &a.id)), "duplicate {a:?}");
        assert_eq!(ActivityId::parse(a.id.as_str()).as_ref(), Ok(&a.id));
        assert_eq!(
            CustomerId::parse(a.customer_id.as_str()).as_ref(),
            Ok(&a.customer_id)
        );
        for (label, max) in [
            (Some(&a.customer_name), 256),
            (Some(&a.action), 256),
            (Some(&a.partner_user), 256),
            (a.resource_type.as_ref(), 64),
        ] {
            let Some(label) = label else { continue };
            let n = label.chars().count();
            assert!((1..=max).contains(&n), "{label:?} has {n} characters");
            assert!(!label.chars().any(char::is_control), "{label:?}");
            assert!(!label.trim().is_empty(), "{label:?}");
        }
        let t = a.occurred_at;
        assert_eq!(t.timestamp_subsec_nanos() % 1_000_000, 0, "{t}");
        assert!(earliest() <= t && t <= latest(), "{t}");
        assert!(
            rules.oldest_accepted() <= t && t <= rules.now + MAX_FUTURE_SKEW,
            "{t}"
        );
        if let Some(d) = &a.details {
            assert!(d.len() <= MAX_DETAILS_BYTES, "{} bytes", d.len());
            let v: Value = serde_json::from_str(d).unwrap();
            assert!(v.is_object(), "{d}");
            assert_eq!(&v.to_string(), d, "details not compact");
        }
        assert_eq!(a.content_hash.len(), 64);
        assert!(a.content_hash.bytes().all(|b| b.is_ascii_hexdigit()));
    }
});
