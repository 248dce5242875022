//! The chain's rules, by example; `vectors` below holds them to the shared golden file.

use chrono::TimeDelta;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::*;
use crate::domain::integrity::checkpoint_message;
use crate::domain::{Activity, PartnerId, time};
use crate::testing::fixtures::synthetic_activity;
use serde_json::json;

fn jcs(v: Value) -> String {
    String::from_utf8(serde_json_canonicalizer::to_vec(&v).unwrap()).unwrap()
}

/// RFC 8785 §3.2.2 (sorting, with non-ASCII keys by UTF-16 code units), §3.2.2.3 (numbers)
/// and §3.2.2.2 (strings), and the example of its appendix.
#[test]
fn jcs_follows_rfc_8785() {
    let numbers: Value = serde_json::from_str(
        r#"[333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001, -0, 1e21, 1e-7, 100]"#,
    )
    .unwrap();
    assert_eq!(
        jcs(numbers),
        "[333333333.3333333,1e+30,4.5,0.002,1e-27,0,1e+21,1e-7,100]"
    );
    let sorting: Value = serde_json::from_str(
        "{\"\\u20ac\":\"Euro Sign\",\"\\r\":\"Carriage Return\",\"\\ufb33\":\"Hebrew Letter Dalet With Dagesh\",\"1\":\"One\",\"\\ud83d\\ude00\":\"Emoji: Grinning Face\",\"\\u0080\":\"Control\",\"\\u00f6\":\"Latin Small Letter O With Diaeresis\"}",
    )
    .unwrap();
    let sorted: Vec<String> = match serde_json::from_str::<Value>(&jcs(sorting)).unwrap() {
        Value::Object(m) => m.values().map(|v| v.as_str().unwrap().to_owned()).collect(),
        _ => unreachable!(),
    };
    assert_eq!(
        sorted,
        [
            "Carriage Return",
            "One",
            "Control",
            "Latin Small Letter O With Diaeresis",
            "Euro Sign",
            "Emoji: Grinning Face",
            "Hebrew Letter Dalet With Dagesh"
        ]
    );
    let strings: Value =
        serde_json::from_str(r#"{"string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/"}"#)
            .unwrap();
    assert_eq!(
        jcs(strings),
        "{\"string\":\"€$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"}"
    );
    let example: Value = serde_json::from_str(
        r#"{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
            "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
            "literals": [null, true, false]}"#,
    )
    .unwrap();
    assert_eq!(
        jcs(example),
        "{\"literals\":[null,true,false],\"numbers\":[333333333.3333333,1e+30,4.5,0.002,1e-27],\"string\":\"€$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"}"
    );
}

fn partner() -> PartnerId {
    PartnerId::parse("p1").unwrap()
}

fn activity(n: u64) -> Activity {
    let mut a = synthetic_activity(
        n,
        "客戶 #1",
        time::parse_timestamp("2026-11-25T01:02:03.004Z").unwrap(),
    );
    a.recorded_at = time::parse_timestamp("2026-11-25T01:02:04Z").unwrap();
    a.recorded_by = Some("writer-1".into());
    a
}

#[test]
fn hashes_chain_from_sixty_four_zeros() {
    let mut record = activity(1).record(&partner(), None).unwrap();
    let mut head = Head::genesis();
    let first = head.append(&mut record).unwrap();
    assert_eq!(first.sequence, 1);
    assert_eq!(first.previous_hash, GENESIS_HASH);
    let mut expected = Sha256::new();
    expected.update([0u8; 32]);
    expected.update(record.canonical(1).unwrap());
    assert_eq!(first.hash, hex::encode(expected.finalize()));
    assert_eq!(record.previous_recorded_at, Value::Null);
    let second = head.append(&mut record).unwrap();
    assert_eq!(
        record.previous_recorded_at,
        json!("2026-11-25T01:02:04.000Z")
    );
    assert_eq!((second.sequence, &second.previous_hash), (2, &first.hash));
    assert_ne!(
        second.hash, first.hash,
        "the sequence is part of the record"
    );
    assert_eq!(
        head,
        Head {
            sequence: 2,
            hash: second.hash,
            recorded_at: Some(time::parse_timestamp("2026-11-25T01:02:04Z").unwrap()),
        }
    );
    assert_eq!(record.hash("ABC", 1), Err(ChainError::BadHash));
    assert_eq!(record.hash(&"AB".repeat(32), 1), Err(ChainError::BadHash));
    assert!(record.hash(&"ab".repeat(32), 1).is_ok());
}

/// A writer whose clock is behind the head's records at the head's time: recording times never
/// go back along a chain, and each record names the time of the one before it.
#[test]
fn a_recording_time_behind_the_head_is_held_to_the_head() {
    let mut head = Head::genesis();
    let mut first = activity(1).record(&partner(), None).unwrap();
    head.append(&mut first).unwrap();
    let mut behind = activity(2);
    behind.recorded_at = time::parse_timestamp("2026-11-25T01:02:03Z").unwrap();
    let mut second = behind.record(&partner(), None).unwrap();
    let link = head.append(&mut second).unwrap();
    assert_eq!(second.recorded_at, json!("2026-11-25T01:02:04.000Z"));
    assert_eq!(
        second.previous_recorded_at,
        json!("2026-11-25T01:02:04.000Z")
    );
    assert_eq!(link.previous_recorded_at, head.recorded_at);
    assert_eq!(link.hash, second.hash(&link.previous_hash, 2).unwrap());
    let mut bad = activity(3).record(&partner(), None).unwrap();
    bad.recorded_at = json!(7);
    assert!(matches!(
        head.append(&mut bad),
        Err(ChainError::BadRecord(_))
    ));
}

#[test]
fn the_signed_message_is_jcs_of_the_six_members() {
    let m = checkpoint_message("p1", "c1", (42, "ab"), "2026-11-28T10:00:00.000Z", 365).unwrap();
    assert_eq!(
        String::from_utf8(m).unwrap(),
        r#"{"customerId":"c1","hash":"ab","issuedAt":"2026-11-28T10:00:00.000Z","partnerId":"p1","retentionDays":365,"sequence":42}"#
    );
}

/// The rows of a chain of `n`, as the API shows them.
fn chain(n: u64) -> Vec<ChainRow> {
    let mut head = Head::genesis();
    (1..=n)
        .map(|i| {
            let a = activity(i);
            let link = head
                .append(&mut a.record(&partner(), None).unwrap())
                .unwrap();
            row_of(&a, &link)
        })
        .collect()
}

/// The row of `a` at `link` as the API shows it: its record's members (whatever they are) and
/// its place.
fn row_of(a: &Activity, link: &Link) -> ChainRow {
    let mut v = serde_json::to_value(a.record(&partner(), None).unwrap()).unwrap();
    v["detailsIncluded"] = json!(true);
    v["sequence"] = json!(link.sequence);
    v["hash"] = json!(link.hash);
    v["previousHash"] = json!(link.previous_hash);
    v["previousRecordedAt"] = json!(link.previous_recorded_at.map(time::format));
    ChainRow::from_row("p1", v.as_object().unwrap()).unwrap()
}

fn set(row: &mut ChainRow, name: &str, value: Value) {
    let mut members = serde_json::to_value(&row.record).unwrap();
    members[name] = value;
    let partner = row.record.partner_id.clone();
    row.record = Record::from_row(&partner, members.as_object().unwrap()).unwrap();
}

#[test]
fn an_intact_chain_passes_in_any_order() {
    let mut rows = chain(5);
    rows.reverse();
    let head = SignedHead {
        sequence: 5,
        hash: rows[0].link.hash.clone(),
    };
    let s = verify(&mut rows, Some(&head), Some(expiry())).unwrap();
    assert_eq!(
        (s.rows, s.first, s.last, s.expired, s.reaches_checkpoint),
        (5, 1, 5, 0, true)
    );
}

fn expiry() -> Expiry {
    Expiry {
        now: time::parse_timestamp("2026-11-28T00:00:00Z").unwrap(),
        retention: TimeDelta::days(365),
    }
}

#[test]
fn a_changed_field_names_the_activity() {
    let mut rows = chain(5);
    set(&mut rows[2], "action", json!("deleted everything"));
    let found = verify(&mut rows, None, Some(expiry())).unwrap_err();
    assert_eq!(
        found,
        Finding::Altered {
            id: rows[2].id.clone(),
            sequence: 3
        }
    );
    assert!(found.to_string().contains("altered"), "{found}");
}

#[test]
fn a_changed_field_with_its_hash_recomputed_breaks_the_next_link() {
    let mut rows = chain(5);
    set(&mut rows[2], "action", json!("deleted everything"));
    rows[2].link.hash = rows[2].record.hash(&rows[2].link.previous_hash, 3).unwrap();
    let found = verify(&mut rows, None, Some(expiry())).unwrap_err();
    assert!(
        matches!(found, Finding::Rehashed { sequence: 3, .. }),
        "{found}"
    );
}

#[test]
fn a_removed_activity_is_a_named_gap_unless_expired() {
    let mut rows = chain(5);
    rows.remove(2);
    let found = verify(&mut rows.clone(), None, Some(expiry())).unwrap_err();
    assert_eq!(
        found,
        Finding::Missing {
            id: rows[2].id.clone(),
            sequence: 4,
            after: 2
        }
    );
    assert!(
        found.to_string().contains("sequence 3 is missing"),
        "{found}"
    );
    // An export may leave sequences out.
    assert!(verify(&mut rows.clone(), None, None).is_ok());
    // Long after, the gap held only expired activities.
    let later = Expiry {
        now: expiry().now + TimeDelta::days(400),
        ..expiry()
    };
    assert_eq!(verify(&mut rows, None, Some(later)).unwrap().expired, 1);
}

#[test]
fn swapped_sequences_are_out_of_order() {
    let mut rows = chain(5);
    let (a, b) = (rows[1].link.sequence, rows[3].link.sequence);
    rows[1].link.sequence = b;
    rows[3].link.sequence = a;
    let found = verify(&mut rows, None, Some(expiry())).unwrap_err();
    assert!(
        matches!(
            found,
            Finding::OutOfOrder {
                sequence: 2,
                follows_sequence: 3,
                ..
            }
        ),
        "{found}"
    );
}

#[test]
fn a_chain_may_start_later_but_must_reach_the_checkpoint() {
    let mut rows = chain(6);
    let head = SignedHead {
        sequence: 6,
        hash: rows[5].link.hash.clone(),
    };
    let mut tail = rows.split_off(2);
    // Sequences 1 and 2 are gone: deleted while 2 was retained, expired once it is not.
    assert_eq!(
        verify(&mut tail.clone(), Some(&head), Some(expiry())).unwrap_err(),
        Finding::MissingAtStart {
            id: tail[0].id.clone(),
            sequence: 3,
            previous_recorded_at: "2026-11-25T01:02:04.000Z".into(),
        }
    );
    let later = Expiry {
        now: time::parse_timestamp("2027-11-25T01:02:04Z").unwrap(),
        ..expiry()
    };
    let s = verify(&mut tail.clone(), Some(&head), Some(later)).unwrap();
    assert_eq!((s.first, s.last, s.expired), (3, 6, 0));
    tail.pop();
    assert_eq!(
        verify(&mut tail, Some(&head), Some(later)).unwrap_err(),
        Finding::MissingBeforeCheckpoint {
            last: 5,
            checkpoint: 6
        }
    );
    let other = SignedHead {
        sequence: 2,
        hash: GENESIS_HASH.into(),
    };
    assert!(matches!(
        verify(&mut rows, Some(&other), None),
        Err(Finding::NotSigned { sequence: 2, .. })
    ));
}

#[test]
fn a_row_without_its_place_is_refused() {
    let row = json!({"id": "a", "customerId": "c"});
    assert!(ChainRow::from_row("p1", row.as_object().unwrap()).is_err());
}

/// `shared/spec/chain-vectors.json`, which the verifier's fast path and the page read too.
mod vectors {
    use serde_json::{Value, json};

    use super::super::*;
    use crate::domain::time;

    pub const FILE: &str = include_str!("../../../spec/chain-vectors.json");

    fn spec() -> Value {
        serde_json::from_str(FILE).unwrap()
    }

    #[test]
    fn the_members_are_the_files_and_the_records() {
        let spec = spec();
        let listed: Vec<(String, Presence)> =
            MEMBERS.iter().map(|(n, p)| ((*n).to_owned(), *p)).collect();
        let filed: Vec<(String, Presence)> = spec["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                let presence = serde_json::from_value(m["presence"].clone()).unwrap();
                (m["name"].as_str().unwrap().to_owned(), presence)
            })
            .collect();
        assert_eq!(listed, filed);
        // Every member of the struct is listed, and only those (with every option given).
        let row = &spec["records"][0]["row"];
        let record = Record::from_row("p1", row.as_object().unwrap()).unwrap();
        let Value::Object(written) = serde_json::to_value(&record).unwrap() else {
            unreachable!()
        };
        let mut names: Vec<&str> = written.keys().map(String::as_str).collect();
        names.push("sequence");
        names.sort_unstable();
        let listed: Vec<&str> = MEMBERS.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names, listed,
            "MEMBERS is in JCS order and names every member"
        );
    }

    #[test]
    fn each_record_canonicalizes_and_hashes_as_filed() {
        let spec = spec();
        let partner = spec["partnerId"].as_str().unwrap();
        for case in spec["records"].as_array().unwrap() {
            let name = case["name"].as_str().unwrap();
            let row = ChainRow::from_row(partner, case["row"].as_object().unwrap()).unwrap();
            let canonical = row.record.canonical(row.link.sequence).unwrap();
            assert_eq!(
                String::from_utf8(canonical).unwrap(),
                case["canonical"].as_str().unwrap(),
                "{name}"
            );
            let hash = row
                .record
                .hash(&row.link.previous_hash, row.link.sequence)
                .unwrap();
            assert_eq!(hash, case["hash"].as_str().unwrap(), "{name}");
        }
    }

    /// The outcome of a chain case as the file writes it.
    pub fn outcome(result: Result<ChainSummary, Finding>) -> Value {
        match result {
            Ok(summary) => json!({ "ok": summary }),
            Err(finding) => json!({ "finding": finding }),
        }
    }

    /// The signed head and the expiry of a chain case.
    pub fn head_and_expiry(case: &Value) -> (SignedHead, Option<Expiry>) {
        let head = SignedHead {
            sequence: case["checkpoint"]["sequence"].as_u64().unwrap(),
            hash: case["checkpoint"]["hash"].as_str().unwrap().to_owned(),
        };
        let expiry = case["expiry"].as_object().map(|e| Expiry {
            now: time::parse_timestamp(e["now"].as_str().unwrap()).unwrap(),
            retention: chrono::TimeDelta::days(e["retentionDays"].as_i64().unwrap()),
        });
        (head, expiry)
    }

    #[test]
    fn each_chain_gets_the_filed_outcome() {
        let spec = spec();
        let partner = spec["partnerId"].as_str().unwrap();
        let cases = spec["chains"].as_array().unwrap();
        assert!(cases.len() >= 12);
        for case in cases {
            let name = case["name"].as_str().unwrap();
            let mut rows: Vec<ChainRow> = case["rows"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| ChainRow::from_row(partner, r.as_object().unwrap()).unwrap())
                .collect();
            let (head, expiry) = head_and_expiry(case);
            let got = outcome(verify(&mut rows, Some(&head), expiry));
            assert_eq!(got, case["expect"], "{name}");
        }
        // Every kind of finding is among them.
        let kinds: std::collections::BTreeSet<&str> = cases
            .iter()
            .filter_map(|c| c["expect"]["finding"]["kind"].as_str())
            .collect();
        assert_eq!(
            kinds.into_iter().collect::<Vec<_>>(),
            [
                "altered",
                "duplicate",
                "missing",
                "missingAtStart",
                "missingBeforeCheckpoint",
                "notSigned",
                "outOfOrder",
                "rehashed",
                "timeWentBack"
            ]
        );
    }

    #[test]
    fn each_held_checkpoint_gets_the_filed_outcome() {
        use crate::domain::integrity::{HeldHead, check_held};
        let spec = spec();
        let partner = spec["partnerId"].as_str().unwrap();
        let cases = spec["held"].as_array().unwrap();
        let at = |v: &Value| time::parse_timestamp(v.as_str().unwrap()).unwrap();
        for case in cases {
            let name = case["name"].as_str().unwrap();
            let mut rows: Vec<ChainRow> = case["rows"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| ChainRow::from_row(partner, r.as_object().unwrap()).unwrap())
                .collect();
            let (head, expiry) = head_and_expiry(case);
            // What the chain's own check says: it passes (what the held checkpoints catch, it
            // does not), or it finds `chainFinding` first.
            let chain = match verify(&mut rows, Some(&head), expiry) {
                Ok(_) => Value::Null,
                Err(finding) => json!(finding),
            };
            assert_eq!(chain, case["chainFinding"], "{name}");
            let held: Vec<HeldHead> = case["held"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| HeldHead {
                    sequence: h["sequence"].as_u64().unwrap(),
                    hash: h["hash"].as_str().unwrap().to_owned(),
                    issued_at: at(&h["issuedAt"]),
                })
                .collect();
            let signed_at = at(&case["checkpoint"]["issuedAt"]);
            let got = match check_held(&rows, &head, signed_at, &held, expiry) {
                Ok(summary) => json!({ "ok": summary }),
                Err(finding) => json!({ "finding": finding }),
            };
            assert_eq!(got, case["expect"], "{name}");
        }
        let kinds: std::collections::BTreeSet<&str> = cases
            .iter()
            .filter_map(|c| c["expect"]["finding"]["kind"].as_str())
            .collect();
        assert_eq!(
            kinds.into_iter().collect::<Vec<_>>(),
            ["heldMissing", "heldRewritten", "rolledBack"]
        );
    }
}
