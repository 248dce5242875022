//! Page cursors (`activity_log::http::cursor`) under hostile input. Every input checks:
//!
//! 1. `decode` never panics on arbitrary text (the input as lossy UTF-8).
//! 2. `decode` never panics on an arbitrary payload signed with the right key (the input is the
//!    payload, so the fuzzer gets past the HMAC check to the JSON, the times and the ids), and a
//!    payload it accepts re-encodes to a cursor that decodes to the same state.
//! 3. Round trip: a `CursorState` built from the input, `encode`d for a tenant and a query,
//!    `decode`s to the same state; it is refused for another tenant (`BadSignature`) and another
//!    query (`WrongQuery`); and with any one character changed it is refused (in particular it
//!    never decodes to `Ok` with a different state).
#![no_main]

use activity_log::domain::{ActivityId, CustomerId, DateRange, PageKey, PartnerId};
use activity_log::http::cursor::{
    CursorError, CursorKeys, CursorState, decode, encode, fingerprint,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use sha2::Sha256;

const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";
/// The characters of an encoded cursor: base64url and the separator.
const CURSOR_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.";

fuzz_target!(|data: &[u8]| {
    let partner = PartnerId::parse("p1").unwrap();
    let keys = CursorKeys::new(KEY.to_vec(), []);
    // Cursors last a day from `now`; a fixed instant keeps every run reproducible.
    let now = DateTime::<Utc>::from_timestamp_millis(1_795_824_000_000).unwrap();
    let query = fingerprint(&[("customer", Some("c1"))]);

    // 1. Arbitrary text.
    let _ = decode(&keys, &partner, &query, &String::from_utf8_lossy(data), now);

    // 2. Arbitrary payload, validly signed.
    let body = URL_SAFE_NO_PAD.encode(data);
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(KEY).unwrap();
    mac.update(body.as_bytes());
    let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    if let Ok(state) = decode(&keys, &partner, &query, &format!("{body}.{sig}"), now) {
        let again = encode(&keys, &partner, &query, &state, now);
        assert_eq!(decode(&keys, &partner, &query, &again, now), Ok(state));
    }

    // 3. Round trip and tampering.
    let _ = round_trip(&mut Unstructured::new(data), &partner, &keys, now);
});

fn round_trip(
    u: &mut Unstructured,
    partner: &PartnerId,
    keys: &CursorKeys,
    now: DateTime<Utc>,
) -> Result<()> {
    let state = CursorState {
        range: DateRange {
            from: instant(u)?,
            to: instant(u)?,
        },
        position: PageKey {
            occurred_at: instant(u)?,
            customer_id: customer_id(u)?,
            id: activity_id(u)?,
        },
    };
    // Queries are always fingerprints (32 hex digits); a longer one could push a cursor over
    // MAX_CURSOR_LEN, which real cursors never reach.
    let customer: String = u.arbitrary()?;
    let query = fingerprint(&[("customer", Some(&customer))]);
    let cursor = encode(keys, partner, &query, &state, now);
    assert_eq!(
        decode(keys, partner, &query, &cursor, now),
        Ok(state.clone())
    );

    let other = PartnerId::parse("p2").unwrap();
    assert_eq!(
        decode(keys, &other, &query, &cursor, now),
        Err(CursorError::BadSignature)
    );
    assert_eq!(
        decode(keys, partner, &fingerprint(&[]), &cursor, now),
        Err(CursorError::WrongQuery)
    );

    // Flip one character to another cursor character (the cursor is ASCII).
    let at = u.choose_index(cursor.len())?;
    let mut bytes = cursor.clone().into_bytes();
    let pick = usize::from(u.arbitrary::<u8>()?) % CURSOR_CHARS.len();
    bytes[at] = if CURSOR_CHARS[pick] == bytes[at] {
        CURSOR_CHARS[(pick + 1) % CURSOR_CHARS.len()]
    } else {
        CURSOR_CHARS[pick]
    };
    let tampered = String::from_utf8(bytes).unwrap();
    let result = decode(keys, partner, &query, &tampered, now);
    assert!(
        !matches!(&result, Ok(s) if *s != state),
        "tampered cursor {tampered:?} decoded to another state: {result:?}"
    );
    assert!(
        result.is_err(),
        "tampered cursor {tampered:?} accepted: {result:?}"
    );
    Ok(())
}

/// Any instant chrono can hold, in whole milliseconds (what a cursor carries).
fn instant(u: &mut Unstructured) -> Result<DateTime<Utc>> {
    let ms = u.int_in_range(
        DateTime::<Utc>::MIN_UTC.timestamp_millis()..=DateTime::<Utc>::MAX_UTC.timestamp_millis(),
    )?;
    Ok(DateTime::<Utc>::from_timestamp_millis(ms).unwrap())
}

/// Arbitrary text made into a valid customer id: no controls or '/', trimmed, 1..=128 chars.
fn customer_id(u: &mut Unstructured) -> Result<CustomerId> {
    let raw: String = u.arbitrary()?;
    let kept: String = raw
        .chars()
        .filter(|c| !c.is_control() && *c != '/')
        .take(CustomerId::MAX_LEN)
        .collect();
    let text = match kept.trim() {
        "" => "c",
        t => t,
    };
    Ok(CustomerId::parse(text).unwrap())
}

/// 1..=64 characters of `[A-Za-z0-9_-]`.
fn activity_id(u: &mut Unstructured) -> Result<ActivityId> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let len = u.int_in_range(1..=ActivityId::MAX_LEN)?;
    let mut id = String::with_capacity(len);
    for _ in 0..len {
        id.push(char::from(
            ALPHABET[usize::from(u.arbitrary::<u8>()?) % ALPHABET.len()],
        ));
    }
    Ok(ActivityId::parse(&id).unwrap())
}
