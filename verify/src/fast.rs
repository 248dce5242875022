//! The offline hot path: a row's record hashed straight from the line's text, without building
//! JSON values, and a customer's chain checked on a few bytes per row.
//!
//! It only ever says "this holds". Whatever it cannot vouch for — a line it does not read the
//! way [`ChainRow::from_row`] does, a hash that does not match, a link that does not hold — goes
//! to the domain's [`verify`](activity_log::domain::chain::verify), which names the finding. So
//! a finding is always the domain's, and the path is sound as long as what it hashes is a
//! faithful serialization of the record `from_row` builds: if the bytes it hashes match the
//! row's hash, they are the bytes the service hashed (SHA-256 does not collide), so the row's
//! record is the one the service recorded. The bytes are the record's JCS (RFC 8785) in every
//! case the service produces, which keeps rows on this path; the tests compare them with
//! [`Record::canonical`](activity_log::domain::chain::Record::canonical).

use std::borrow::Cow;
use std::fmt;
use std::io::Write as _;

use activity_log::domain::chain::{
    ChainRow, ChainSummary, Linked, MEMBERS, Presence, SignedHead, verify_linked,
};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

/// Largest integer every JCS implementation writes as its digits (2^53).
const SAFE_INTEGER: u64 = 1 << 53;

/// What the chain check needs of a row: its place, its hashes, whether its record matches its
/// hash, and where its line is (to read it again for a finding).
#[derive(Debug, Clone)]
pub(crate) struct Compact {
    pub sequence: u64,
    pub hash: [u8; 32],
    pub previous: [u8; 32],
    /// The record's hash is the row's, and both hashes are 64 lower-case hex digits.
    pub intact: bool,
    pub start: usize,
    pub end: usize,
}

/// A line as the hot path reads it.
pub(crate) enum Line<'a> {
    /// `sequence` is null.
    Unchained,
    Chained {
        customer: Cow<'a, str>,
        sequence: u64,
        hash: [u8; 32],
        previous: [u8; 32],
        intact: bool,
    },
    /// Not read here: the caller reads it with `ChainRow::from_row` (and names what is wrong).
    Other,
}

/// A member's text as the line has it; absent is `None`, `null` is `Some("null")`.
#[derive(Default, Clone, Copy)]
struct Raw<'a>(Option<&'a RawValue>);

impl<'de: 'a, 'a> Deserialize<'de> for Raw<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <&'a RawValue>::deserialize(d).map(|r| Raw(Some(r)))
    }
}

impl<'a> Raw<'a> {
    fn text(self) -> Option<&'a str> {
        self.0.map(RawValue::get)
    }

    /// Present and not null.
    fn given(self) -> Option<&'a str> {
        self.text().filter(|t| *t != "null")
    }
}

/// Where a row's own members (not the record's) sit after the record's in [`RawRow`].
const HASH: usize = MEMBERS.len();
const PREVIOUS_HASH: usize = MEMBERS.len() + 1;
/// The record's members ([`MEMBERS`], in their order), then `hash` and `previousHash`.
const CAPTURED: usize = MEMBERS.len() + 2;

/// The index of a member the chain needs.
fn captured(name: &str) -> Option<usize> {
    match name {
        "hash" => Some(HASH),
        "previousHash" => Some(PREVIOUS_HASH),
        _ => MEMBERS.iter().position(|(n, _)| *n == name),
    }
}

/// The members of a row the chain needs, as the line has them (others are skipped); a member
/// given twice is an error, so such a line goes to the slow path, which keeps the last as
/// `serde_json` does.
struct RawRow<'a>([Raw<'a>; CAPTURED]);

impl<'a> RawRow<'a> {
    fn get(&self, name: &str) -> Raw<'a> {
        captured(name).map_or_else(Raw::default, |i| self.0[i])
    }
}

impl<'de> Deserialize<'de> for RawRow<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawRow<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an activity")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut row = RawRow([Raw::default(); CAPTURED]);
                while let Some(Name(name)) = map.next_key()? {
                    match captured(&name) {
                        Some(i) if row.0[i].0.is_some() => {
                            return Err(de::Error::custom(format_args!("{name} given twice")));
                        }
                        Some(i) => row.0[i] = map.next_value()?,
                        None => {
                            map.next_value::<de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(row)
            }
        }
        d.deserialize_map(V)
    }
}

/// Reads a line of an export of the partner whose id, as a JSON string, is `partner_json`.
/// `buf` is scratch space for the record's bytes.
pub(crate) fn read<'a>(line: &'a [u8], partner_json: &[u8], buf: &mut Vec<u8>) -> Line<'a> {
    read_inner(line, partner_json, buf).unwrap_or(Line::Other)
}

fn read_inner<'a>(line: &'a [u8], partner_json: &[u8], buf: &mut Vec<u8>) -> Option<Line<'a>> {
    let text = std::str::from_utf8(line).ok()?;
    // A derived struct would also take an array; a row is an object.
    if !text.trim_start().starts_with('{') {
        return None;
    }
    let row: RawRow<'a> = serde_json::from_str(text).ok()?;
    let sequence = row.get("sequence").text()?;
    if sequence == "null" {
        return Some(Line::Unchained);
    }
    let sequence = serde_json::from_str::<serde_json::Number>(sequence)
        .ok()?
        .as_u64()
        .filter(|s| (1..=SAFE_INTEGER).contains(s))?;
    let customer = string(row.get("customerId").text()?)?;
    string(row.get("id").text()?)?;
    // `from_row` takes any string as a hash (a malformed one does not match); not a string is
    // an error it names.
    let hash = hex_hash(row.0[HASH].text().filter(|t| t.starts_with('"'))?);
    let previous = hex_hash(row.0[PREVIOUS_HASH].text().filter(|t| t.starts_with('"'))?);
    record(&row, partner_json, sequence, buf)?;
    // Recording times never go back: its own not before the one before it. Both as the
    // service writes them (fixed width, so bytes order as times); another form is left to
    // the domain, which reads them as times.
    let in_order = match row.get("previousRecordedAt").given() {
        None => true,
        Some(before) => row
            .get("recordedAt")
            .given()
            .is_some_and(|at| at.len() == 26 && before.len() == 26 && at >= before),
    };
    let intact = in_order
        && match (hash, previous) {
            (Some(hash), Some(previous)) => {
                let mut h = Sha256::new();
                h.update(previous);
                h.update(&buf[..]);
                <[u8; 32]>::from(h.finalize()) == hash
            }
            _ => false,
        };
    Some(Line::Chained {
        customer,
        sequence,
        hash: hash.unwrap_or_default(),
        previous: previous.unwrap_or_default(),
        intact,
    })
}

/// A JSON string's value.
fn string(raw: &str) -> Option<Cow<'_, str>> {
    let inner = raw.strip_prefix('"')?.strip_suffix('"')?;
    if inner.contains('\\') {
        serde_json::from_str::<String>(raw).ok().map(Cow::Owned)
    } else {
        Some(Cow::Borrowed(inner))
    }
}

/// A lower-case hex digit's value; 0x10 for any other byte.
static HEX: [u8; 256] = {
    let mut table = [0x10u8; 256];
    let mut i = 0;
    while i < 10 {
        table[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        table[b'a' as usize + i] = 10 + i as u8;
        i += 1;
    }
    table
};

/// The 32 bytes of a hash written as 64 lower-case hex digits (as the domain requires).
fn hex_hash(raw: &str) -> Option<[u8; 32]> {
    let text = raw.strip_prefix('"')?.strip_suffix('"')?.as_bytes();
    if text.len() != 64 {
        return None;
    }
    let mut bytes = [0u8; 32];
    let mut invalid = 0;
    for (byte, pair) in bytes.iter_mut().zip(text.chunks_exact(2)) {
        let (hi, lo) = (HEX[usize::from(pair[0])], HEX[usize::from(pair[1])]);
        invalid |= (hi | lo) & 0x10;
        *byte = (hi << 4) | (lo & 0x0f);
    }
    if invalid != 0 {
        return None;
    }
    Some(bytes)
}

/// The record `ChainRow::from_row` builds of `row`, at `sequence`, as JCS into `out`: the
/// members of [`MEMBERS`] in their (JCS) order, each as its [`Presence`] says.
fn record(row: &RawRow<'_>, partner_json: &[u8], sequence: u64, out: &mut Vec<u8>) -> Option<()> {
    out.clear();
    let mut separator = b'{';
    for (i, (name, presence)) in MEMBERS.iter().enumerate() {
        let raw = row.0[i];
        let text = match presence {
            Presence::Required => raw.text()?,
            Presence::NullWhenAbsent => raw.text().unwrap_or("null"),
            Presence::OmittedWhenNull => match raw.given() {
                Some(text) => text,
                None => continue,
            },
            Presence::Tenant | Presence::Sequence => "",
        };
        out.push(separator);
        separator = b',';
        out.push(b'"');
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\":");
        match presence {
            Presence::Tenant => out.extend_from_slice(partner_json),
            Presence::Sequence => write!(out, "{sequence}").ok()?,
            _ => value(text, out)?,
        }
    }
    out.push(b'}');
    Some(())
}

/// `partner` as a JCS string.
pub(crate) fn json_string(partner: &str) -> Option<Vec<u8>> {
    serde_json_canonicalizer::to_vec(&partner).ok()
}

/// JCS of one JSON value given as valid JSON text (`None`: not one this path writes).
fn value(raw: &str, out: &mut Vec<u8>) -> Option<()> {
    let raw = raw.trim_matches([' ', '\t', '\n', '\r']);
    match raw.as_bytes().first()? {
        b'"' => {
            // Without an escape the text is the JCS (a JSON string holds no raw control
            // characters, and JCS escapes nothing else).
            if raw.contains('\\') {
                let s: String = serde_json::from_str(raw).ok()?;
                serde_json_canonicalizer::to_writer(&s, out).ok()?;
            } else {
                out.extend_from_slice(raw.as_bytes());
            }
        }
        b'{' => {
            let Members(mut members) = serde_json::from_str(raw).ok()?;
            // By UTF-16 code units (RFC 8785 §3.2.3).
            members.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
            if members.windows(2).any(|w| w[0].0 == w[1].0) {
                return None;
            }
            out.push(b'{');
            for (i, (name, v)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                name_jcs(name, out)?;
                out.push(b':');
                value(v.get(), out)?;
            }
            out.push(b'}');
        }
        b'[' => {
            let items: Vec<&RawValue> = serde_json::from_str(raw).ok()?;
            out.push(b'[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                value(v.get(), out)?;
            }
            out.push(b']');
        }
        b't' | b'f' | b'n' => out.extend_from_slice(raw.as_bytes()),
        _ => {
            let n: serde_json::Number = serde_json::from_str(raw).ok()?;
            match (n.as_u64(), n.as_i64()) {
                (Some(u), _) if u <= SAFE_INTEGER => write!(out, "{u}").ok()?,
                (_, Some(i)) if i.unsigned_abs() <= SAFE_INTEGER => write!(out, "{i}").ok()?,
                // Numbers as ECMAScript writes them.
                _ => serde_json_canonicalizer::to_writer(&n, out).ok()?,
            }
        }
    }
    Some(())
}

/// A member name as a JCS string: as it is unless something in it needs escaping.
fn name_jcs(name: &str, out: &mut Vec<u8>) -> Option<()> {
    if name.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(name.as_bytes());
        out.push(b'"');
    } else {
        serde_json_canonicalizer::to_writer(&name, out).ok()?;
    }
    Some(())
}

/// An object's members in the order written, names decoded.
struct Members<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(Name(name)) = map.next_key()? {
                    members.push((name, map.next_value::<&'de RawValue>()?));
                }
                Ok(Members(members))
            }
        }
        d.deserialize_map(V)
    }
}

/// A member's name: borrowed from the line unless it has escapes.
struct Name<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Name<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Name<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Name(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Name(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Name(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// The compact form of a row read with `ChainRow::from_row` (the slow path).
pub(crate) fn compact_of(row: &ChainRow, start: usize, end: usize) -> Compact {
    let hash = hex_hash(&format!("\"{}\"", row.link.hash));
    let previous = hex_hash(&format!("\"{}\"", row.link.previous_hash));
    let intact = hash.is_some()
        && previous.is_some()
        && row
            .record
            .hash(&row.link.previous_hash, row.link.sequence)
            .is_ok_and(|h| h == row.link.hash);
    Compact {
        sequence: row.link.sequence,
        hash: hash.unwrap_or_default(),
        previous: previous.unwrap_or_default(),
        intact,
        start,
        end,
    }
}

impl Linked for Compact {
    type Hash = [u8; 32];
    fn sequence(&self) -> u64 {
        self.sequence
    }
    fn hash(&self) -> &[u8; 32] {
        &self.hash
    }
    fn previous(&self) -> &[u8; 32] {
        &self.previous
    }
    fn follows_genesis(&self) -> bool {
        self.previous == [0; 32]
    }
    fn has_hash(&self, hex: &str) -> bool {
        hex_hash(&format!("\"{hex}\"")) == Some(self.hash)
    }
    fn intact(&self) -> bool {
        self.intact
    }
    /// Not needed: an export's rows may leave sequences out, so no gap is excused, and
    /// consecutive rows are held together by their hashes.
    fn recorded_at(&self) -> Option<DateTime<Utc>> {
        None
    }
    /// Not needed, as `recorded_at`.
    fn previous_recorded_at(&self) -> Option<DateTime<Utc>> {
        None
    }
    /// Not needed: a finding is named by the domain, from the rows read again.
    fn id(&self) -> &str {
        ""
    }
}

/// The domain's check ([`verify_linked`]) on compact rows, as an export is checked (sequences
/// may be left out): `None` when anything does not hold (the caller then reads the rows again
/// and asks the domain to name the finding).
pub(crate) fn chain_holds(rows: &mut [Compact], head: &SignedHead) -> Option<ChainSummary> {
    verify_linked(rows, Some(head), None).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use activity_log::domain::chain::{Head, Record};
    use serde_json::{Map, Value, json};

    const PARTNER: &str = "p1";

    /// The row's record hashed by the domain and by this path, at sequence 1.
    fn both(mut row: Map<String, Value>) -> (Vec<u8>, Vec<u8>, bool) {
        let mut record = Record::from_row(PARTNER, &row).unwrap();
        let expected = record.canonical(1).unwrap();
        let link = Head::genesis().append(&mut record).unwrap();
        row.insert("sequence".into(), json!(1));
        row.insert("hash".into(), json!(link.hash));
        row.insert("previousHash".into(), json!(link.previous_hash));
        let line = serde_json::to_vec(&row).unwrap();
        let partner = json_string(PARTNER).unwrap();
        let mut buf = Vec::new();
        let parsed: RawRow<'_> = serde_json::from_slice(&line).unwrap();
        record_of(&parsed, &partner, &mut buf);
        let intact = match read(&line, &partner, &mut Vec::new()) {
            Line::Chained { intact, .. } => intact,
            _ => false,
        };
        (expected, buf, intact)
    }

    fn record_of(row: &RawRow<'_>, partner: &[u8], buf: &mut Vec<u8>) {
        record(row, partner, 1, buf).unwrap();
    }

    fn base() -> Map<String, Value> {
        match json!({
            "id": "a-1", "customerId": "客戶 #1", "customerName": "Contoso, Ltd.",
            "action": "placed an order", "partnerUser": "chen.wei@partner.example",
            "occurredAt": "2026-11-25T01:02:03.004Z", "recordedAt": "2026-11-25T01:02:04.000Z",
            "recordedBy": "writer-1", "status": "succeeded", "resourceType": "order",
            "details": {"orderId": "ORD-1", "seats": 3}, "detailsSize": 30, "detailsIncluded": true,
            "links": {"self": "/customers/x/activities/a-1", "subscriptions": "https://p/x"},
        }) {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn the_bytes_are_the_domains_jcs() {
        let cases: Vec<(&str, Value)> = vec![
            (
                "details",
                json!({"z": 1, "a": {"名稱": "台積電", "n": 1.50}, "m": [1, "x", null, true, {"b": 2, "a": 1}]}),
            ),
            (
                "details",
                json!({"\u{e000}": 1, "\u{10000}": 2, "a\"b": 3, "\n": 4, "é": 5}),
            ),
            (
                "details",
                json!({"big": 1152921504606846976_u64, "neg": -9007199254740993_i64, "f": 1e30, "small": 1e-7, "z": -0.0, "third": 0.1}),
            ),
            (
                "details",
                json!({"s": "tab\there \"quoted\" back\\slash \u{1f} \u{7f} \u{2028} €"}),
            ),
            ("details", Value::Null),
            ("details", json!({})),
            ("details", json!([])),
            ("resourceType", Value::Null),
            ("recordedBy", Value::Null),
            ("action", json!("line\nbreak / slash")),
            ("action", json!(42)),
            ("customerName", json!("台北雲端科技股份有限公司")),
        ];
        for (name, v) in cases {
            let mut row = base();
            row.insert(name.into(), v.clone());
            let (expected, ours, intact) = both(row);
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                String::from_utf8(expected).unwrap(),
                "{name}: {v}"
            );
            assert!(intact, "{name}: {v}");
        }
        // Left out entirely.
        for name in ["details", "resourceType", "recordedBy"] {
            let mut row = base();
            row.remove(name);
            let (expected, ours, intact) = both(row);
            assert_eq!(ours, expected, "without {name}");
            assert!(intact, "without {name}");
        }
    }

    #[test]
    fn escapes_in_the_line_are_read_as_their_characters() {
        let mut row = base();
        row.insert("action".into(), json!("é"));
        let mut record = Record::from_row(PARTNER, &row).unwrap();
        let link = Head::genesis().append(&mut record).unwrap();
        row.insert("sequence".into(), json!(link.sequence));
        row.insert("hash".into(), json!(link.hash));
        row.insert("previousHash".into(), json!(link.previous_hash));
        // The row as serde_json writes it, then with characters written as escapes.
        let mut line = serde_json::to_string(&row).unwrap();
        for (plain, escaped) in [
            ("客戶", r"\u5ba2\u6236"),
            (r#""action":"é""#, r#""action":"\u00e9""#),
            ("orderId", r"order\u0049d"),
        ] {
            assert!(line.contains(plain), "{plain} in {line}");
            line = line.replace(plain, escaped);
        }
        match read(
            line.as_bytes(),
            &json_string(PARTNER).unwrap(),
            &mut Vec::new(),
        ) {
            Line::Chained {
                customer, intact, ..
            } => {
                assert_eq!(customer, "客戶 #1");
                assert!(intact);
            }
            _ => panic!("not read"),
        }
    }

    #[test]
    fn a_changed_member_does_not_match() {
        for (name, v) in [
            ("action", json!("deleted everything")),
            ("details", json!({"orderId": "ORD-1", "seats": 4})),
            ("details", json!({"orderId": "ORD-1", "seats": 3.5})),
            ("details", Value::Null),
            ("resourceType", Value::Null),
            ("recordedBy", json!("someone")),
            ("customerId", json!("c2")),
        ] {
            let row = base();
            let mut record = Record::from_row(PARTNER, &row).unwrap();
            let link = Head::genesis().append(&mut record).unwrap();
            let mut changed = row.clone();
            changed.insert(name.into(), v.clone());
            changed.insert("sequence".into(), json!(1));
            changed.insert("hash".into(), json!(link.hash));
            changed.insert("previousHash".into(), json!(link.previous_hash));
            let line = serde_json::to_vec(&changed).unwrap();
            match read(&line, &json_string(PARTNER).unwrap(), &mut Vec::new()) {
                Line::Chained { intact, .. } => assert!(!intact, "{name}: {v}"),
                _ => panic!("{name}: not read"),
            }
        }
    }

    #[test]
    fn hashes_are_64_lower_case_hex_digits() {
        let text = "00ff10a9".repeat(8);
        let bytes = hex_hash(&format!("\"{text}\"")).unwrap();
        assert_eq!(hex::encode(bytes), text);
        for bad in [
            "00FF10A9".repeat(8),
            "00ff10a9".repeat(7),
            format!("{}g", "0".repeat(63)),
            format!("{} ", "0".repeat(63)),
        ] {
            assert_eq!(hex_hash(&format!("\"{bad}\"")), None, "{bad}");
        }
        assert_eq!(hex_hash(&"0".repeat(64)), None, "not a string");
    }

    #[test]
    fn lines_it_does_not_vouch_for_go_to_the_slow_path() {
        let partner = json_string(PARTNER).unwrap();
        for line in [
            r#"["a", "b"]"#,
            r#"{"id": "a", "id": "b", "sequence": 1}"#,
            r#"{"id": "a", "customerId": "c", "sequence": 1.0}"#,
            r#"{"id": "a", "customerId": "c", "sequence": 0}"#,
            r#"{"id": "a", "customerId": 7, "sequence": 1}"#,
            r#"{"id": "a", "customerId": "c"}"#,
            r#"{"customerId": "c", "sequence": 2, "hash": "x", "previousHash": "y"}"#,
            r#"{"id": "a", "customerId": "c", "sequence": 2, "hash": 7, "previousHash": "y"}"#,
            "not json",
        ] {
            assert!(
                matches!(
                    read(line.as_bytes(), &partner, &mut Vec::new()),
                    Line::Other
                ),
                "{line}"
            );
        }
        assert!(matches!(
            read(br#"{"sequence": null}"#, &partner, &mut Vec::new()),
            Line::Unchained
        ));
    }

    /// What this path says of rows, against what the domain says: it may leave a verdict to the
    /// domain, but never passes what the domain finds, and agrees on what passes.
    fn agree(rows: &[Map<String, Value>], head: &SignedHead) -> Option<ChainSummary> {
        let partner = json_string(PARTNER).unwrap();
        let mut compact: Vec<Compact> = rows
            .iter()
            .map(|r| {
                let line = serde_json::to_vec(r).unwrap();
                match read(&line, &partner, &mut Vec::new()) {
                    Line::Chained {
                        sequence,
                        hash,
                        previous,
                        intact,
                        ..
                    } => Compact {
                        sequence,
                        hash,
                        previous,
                        intact,
                        start: 0,
                        end: 0,
                    },
                    _ => panic!("not read: {r:?}"),
                }
            })
            .collect();
        let mut chain: Vec<ChainRow> = rows
            .iter()
            .map(|r| ChainRow::from_row(PARTNER, r).unwrap())
            .collect();
        let ours = chain_holds(&mut compact, head);
        let domain = activity_log::domain::chain::verify(&mut chain, Some(head), None);
        match (&ours, &domain) {
            (Some(a), Ok(b)) => assert_eq!(a, b),
            (Some(a), Err(f)) => panic!("passed {a:?} where the domain finds {f}"),
            (None, Ok(b)) => panic!("left {b:?} to the domain"),
            (None, Err(_)) => {}
        }
        ours
    }

    #[test]
    fn it_passes_exactly_what_the_domain_passes() {
        let t = chrono::DateTime::parse_from_rfc3339("2026-11-25T08:00:00Z")
            .unwrap()
            .to_utc();
        let (rows, head) = activity_log::testing::signed::chain(PARTNER, "c1", 8, t).unwrap();
        let signed = |sequence: u64, hash: &str| SignedHead {
            sequence,
            hash: hash.to_owned(),
        };
        let hash_of = |i: usize| rows[i]["hash"].as_str().unwrap().to_owned();
        let at_head = signed(head.sequence, &head.hash);
        assert!(agree(&rows, &at_head).is_some());
        assert!(agree(&rows, &signed(4, &hash_of(3))).is_some());
        assert!(agree(&rows, &signed(12, &"ab".repeat(32))).is_some());
        agree(&rows, &signed(8, &"ab".repeat(32)));
        for k in 0..rows.len() {
            let mut fewer = rows.clone();
            fewer.remove(k);
            // An export may leave any sequence out.
            assert!(agree(&fewer, &at_head).is_some() || k == 7);
            let mut twice = rows.clone();
            twice.push(rows[k].clone());
            agree(&twice, &at_head);
            for (name, value) in [
                (
                    "previousHash",
                    json!(activity_log::domain::chain::GENESIS_HASH),
                ),
                ("previousHash", json!(hash_of((k + 3) % 8))),
                ("hash", json!(hash_of((k + 1) % 8))),
                ("sequence", json!(k as u64 + 20)),
                ("status", json!("failed")),
            ] {
                let mut changed = rows.clone();
                changed[k].insert(name.into(), value);
                agree(&changed, &at_head);
            }
            for j in 0..rows.len() {
                let mut swapped = rows.clone();
                let (a, b) = (rows[k]["sequence"].clone(), rows[j]["sequence"].clone());
                swapped[k].insert("sequence".into(), b);
                swapped[j].insert("sequence".into(), a);
                agree(&swapped, &at_head);
            }
        }
    }

    /// `shared/spec/chain-vectors.json`: each record's bytes are the filed JCS, and on every
    /// chain the hot path passes exactly what the domain passes (an export's check: sequences
    /// may be left out), with the filed summary where the case is an export's.
    #[test]
    fn the_shared_vectors_hold() {
        let spec: Value =
            serde_json::from_str(include_str!("../../shared/spec/chain-vectors.json")).unwrap();
        let partner = spec["partnerId"].as_str().unwrap();
        let partner_json = json_string(partner).unwrap();
        for case in spec["records"].as_array().unwrap() {
            let line = serde_json::to_vec(&case["row"]).unwrap();
            let mut buf = Vec::new();
            let Line::Chained { intact, .. } = read(&line, &partner_json, &mut buf) else {
                panic!("not read: {}", case["name"]);
            };
            assert!(intact, "{}", case["name"]);
            assert_eq!(
                std::str::from_utf8(&buf).unwrap(),
                case["canonical"].as_str().unwrap()
            );
        }
        for case in spec["chains"].as_array().unwrap() {
            let rows: Vec<Map<String, Value>> = case["rows"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_object().unwrap().clone())
                .collect();
            let head = SignedHead {
                sequence: case["checkpoint"]["sequence"].as_u64().unwrap(),
                hash: case["checkpoint"]["hash"].as_str().unwrap().to_owned(),
            };
            let ours = agree(&rows, &head);
            if case["contiguous"] == false {
                assert_eq!(
                    serde_json::to_value(ours).unwrap(),
                    case["expect"]["ok"],
                    "{}",
                    case["name"]
                );
            } else if case["expect"]["finding"]["kind"]
                .as_str()
                .is_some_and(|k| !k.starts_with("missing"))
            {
                assert_eq!(ours, None, "{}", case["name"]);
            }
        }
    }
}
