//! Page cursors: opaque to callers, HMAC-signed, bound to the tenant and to the query, valid
//! for [`CURSOR_LIFETIME`], and naming the key that signed them, so the key can be rotated
//! while pages are open ([`CursorKeys`]).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeDelta, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use crate::config::CursorKeys;
use crate::domain::{ActivityId, CustomerId, DateRange, PageKey, PartnerId};

/// Longest cursor text accepted before any decoding.
const MAX_CURSOR_LEN: usize = 1024;

/// How long a cursor can be used: a day, long enough for a person paging through a period and
/// for a script's run; a cursor older than that is refused and the first page asked again.
pub const CURSOR_LIFETIME: TimeDelta = TimeDelta::hours(24);

/// What a cursor carries: where to continue and the period the first page resolved
/// (so a defaulted `to = now` does not move between pages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorState {
    pub range: DateRange,
    pub position: PageKey,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CursorError {
    #[error("cursor is malformed")]
    Malformed,
    #[error("cursor signature does not verify")]
    BadSignature,
    #[error("cursor belongs to a different query")]
    WrongQuery,
    #[error("the cursor has expired (cursors last 24 hours); ask for the first page again")]
    Expired,
    #[error("the cursor was signed with a key no longer in use; ask for the first page again")]
    RetiredKey,
}

#[derive(Serialize, Deserialize)]
struct Payload {
    v: u8,
    /// Id of the key that signed it.
    k: String,
    /// Expiry, epoch milliseconds.
    e: i64,
    /// Tenant.
    p: String,
    /// Query fingerprint.
    q: String,
    /// Period, epoch milliseconds.
    f: i64,
    t: i64,
    /// Position: time (epoch ms), customer, id.
    o: i64,
    c: String,
    i: String,
}

/// The members of a cursor read before its signature is checked: its version and key id.
#[derive(Deserialize)]
struct Header {
    v: u8,
    #[serde(default)]
    k: String,
}

/// A fingerprint of everything that defines a query's result set except the page size.
/// Parameters are as the caller wrote them, so a second page is asked for with the same ones.
pub fn fingerprint(parts: &[(&str, Option<&str>)]) -> String {
    let mut h = Sha256::new();
    for (name, value) in parts {
        h.update(name.as_bytes());
        match value {
            Some(v) => {
                h.update([1]);
                h.update((v.len() as u64).to_be_bytes());
                h.update(v.as_bytes());
            }
            None => h.update([0]),
        }
    }
    hex::encode(&h.finalize()[..16])
}

fn mac(key: &[u8], data: &[u8]) -> Hmac<Sha256> {
    let mut m =
        <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes keys of any length");
    m.update(data);
    m
}

pub fn encode(
    keys: &CursorKeys,
    partner: &PartnerId,
    query: &str,
    state: &CursorState,
    now: DateTime<Utc>,
) -> String {
    let (id, key) = keys.current();
    let payload = Payload {
        v: 2,
        k: id.clone(),
        e: (now + CURSOR_LIFETIME).timestamp_millis(),
        p: partner.as_str().to_owned(),
        q: query.to_owned(),
        f: state.range.from.timestamp_millis(),
        t: state.range.to.timestamp_millis(),
        o: state.position.occurred_at.timestamp_millis(),
        c: state.position.customer_id.as_str().to_owned(),
        i: state.position.id.as_str().to_owned(),
    };
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&payload).unwrap_or_default());
    let sig = URL_SAFE_NO_PAD.encode(mac(key, body.as_bytes()).finalize().into_bytes());
    format!("{body}.{sig}")
}

pub fn decode(
    keys: &CursorKeys,
    partner: &PartnerId,
    query: &str,
    text: &str,
    now: DateTime<Utc>,
) -> Result<CursorState, CursorError> {
    if text.len() > MAX_CURSOR_LEN {
        return Err(CursorError::Malformed);
    }
    let (body, sig) = text.split_once('.').ok_or(CursorError::Malformed)?;
    let sig = URL_SAFE_NO_PAD
        .decode(sig)
        .map_err(|_| CursorError::Malformed)?;
    let bytes = URL_SAFE_NO_PAD
        .decode(body)
        .map_err(|_| CursorError::Malformed)?;
    // The key id only picks the key; nothing else is read before the signature verifies.
    let header: Header = serde_json::from_slice(&bytes).map_err(|_| CursorError::Malformed)?;
    if header.v != 2 {
        // Version 1 (before key ids and expiry): handed out before the key could rotate.
        return Err(if header.v == 1 {
            CursorError::Expired
        } else {
            CursorError::Malformed
        });
    }
    let key = keys.by_id(&header.k).ok_or(CursorError::RetiredKey)?;
    mac(key, body.as_bytes())
        .verify_slice(&sig)
        .map_err(|_| CursorError::BadSignature)?;
    let p: Payload = serde_json::from_slice(&bytes).map_err(|_| CursorError::Malformed)?;
    // Another tenant's cursor is as good as a forged one: it tells the caller nothing.
    if p.p != partner.as_str() {
        return Err(CursorError::BadSignature);
    }
    if p.q != query {
        return Err(CursorError::WrongQuery);
    }
    if now.timestamp_millis() > p.e {
        return Err(CursorError::Expired);
    }
    let at = |ms: i64| DateTime::<Utc>::from_timestamp_millis(ms).ok_or(CursorError::Malformed);
    Ok(CursorState {
        range: DateRange {
            from: at(p.f)?,
            to: at(p.t)?,
        },
        position: PageKey {
            occurred_at: at(p.o)?,
            customer_id: CustomerId::parse(&p.c).map_err(|_| CursorError::Malformed)?,
            id: ActivityId::parse(&p.i).map_err(|_| CursorError::Malformed)?,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::time::parse_timestamp;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn keys() -> CursorKeys {
        CursorKeys::new(KEY.to_vec(), [])
    }

    fn now() -> DateTime<Utc> {
        parse_timestamp("2026-11-25T12:00:00Z").unwrap()
    }

    fn state() -> CursorState {
        CursorState {
            range: DateRange {
                from: parse_timestamp("2026-10-25T00:00:00Z").unwrap(),
                to: parse_timestamp("2026-11-25T00:00:00Z").unwrap(),
            },
            position: PageKey {
                occurred_at: parse_timestamp("2026-11-01T10:00:00.123Z").unwrap(),
                customer_id: CustomerId::parse("客戶-1").unwrap(),
                id: ActivityId::parse("a1").unwrap(),
            },
        }
    }

    fn p(id: &str) -> PartnerId {
        PartnerId::parse(id).unwrap()
    }

    #[test]
    fn round_trips_for_the_same_tenant_and_query() {
        let q = fingerprint(&[("customer", Some("c1")), ("from", None)]);
        let c = encode(&keys(), &p("p1"), &q, &state(), now());
        assert_eq!(decode(&keys(), &p("p1"), &q, &c, now()), Ok(state()));
    }

    #[test]
    fn another_tenant_or_query_or_key_is_refused() {
        let q = fingerprint(&[("customer", Some("c1"))]);
        let c = encode(&keys(), &p("p1"), &q, &state(), now());
        assert_eq!(
            decode(&keys(), &p("p2"), &q, &c, now()),
            Err(CursorError::BadSignature)
        );
        let other_q = fingerprint(&[("customer", Some("c2"))]);
        assert_eq!(
            decode(&keys(), &p("p1"), &other_q, &c, now()),
            Err(CursorError::WrongQuery)
        );
        assert_eq!(
            decode(
                &CursorKeys::new(b"another-key-another-key-another-k".to_vec(), []),
                &p("p1"),
                &q,
                &c,
                now()
            ),
            Err(CursorError::RetiredKey)
        );
    }

    #[test]
    fn tampering_is_detected() {
        let q = fingerprint(&[]);
        let c = encode(&keys(), &p("p1"), &q, &state(), now());
        let (body, sig) = c.split_once('.').unwrap();
        // Re-encode the payload for another tenant but keep the signature.
        let mut payload: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).unwrap()).unwrap();
        payload["p"] = "p2".into();
        let forged = format!("{}.{sig}", URL_SAFE_NO_PAD.encode(payload.to_string()));
        assert_eq!(
            decode(&keys(), &p("p2"), &q, &forged, now()),
            Err(CursorError::BadSignature)
        );
        for bad in ["", ".", "abc", "a.b", &format!("{c}x"), &"A".repeat(5000)] {
            assert!(
                decode(&keys(), &p("p1"), &q, bad, now()).is_err(),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn a_cursor_expires_after_its_lifetime() {
        let q = fingerprint(&[]);
        let c = encode(&keys(), &p("p1"), &q, &state(), now());
        let last = now() + CURSOR_LIFETIME;
        assert_eq!(decode(&keys(), &p("p1"), &q, &c, last), Ok(state()));
        assert_eq!(
            decode(&keys(), &p("p1"), &q, &c, last + TimeDelta::milliseconds(1)),
            Err(CursorError::Expired)
        );
        // A cursor of version 1 (no key id, no expiry) is treated as expired.
        let v1 = URL_SAFE_NO_PAD.encode(br#"{"v":1,"p":"p1"}"#);
        assert_eq!(
            decode(&keys(), &p("p1"), &q, &format!("{v1}.AAAA"), now()),
            Err(CursorError::Expired)
        );
    }

    #[test]
    fn after_a_rotation_open_cursors_still_work_until_their_key_is_dropped() {
        let q = fingerprint(&[]);
        let old_key = b"the-key-before-the-rotation-0123456".to_vec();
        let new_key = b"the-key-after-the-rotation-01234567".to_vec();
        let before = CursorKeys::new(old_key.clone(), []);
        let open = encode(&before, &p("p1"), &q, &state(), now());

        let rotated = CursorKeys::new(new_key.clone(), [old_key.clone()]);
        assert_eq!(decode(&rotated, &p("p1"), &q, &open, now()), Ok(state()));
        let fresh = encode(&rotated, &p("p1"), &q, &state(), now());
        let payload = |c: &str| -> serde_json::Value {
            let body = c.split_once('.').unwrap().0;
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).unwrap()).unwrap()
        };
        assert_eq!(payload(&fresh)["k"], CursorKeys::key_id(&new_key));
        assert_eq!(payload(&open)["k"], CursorKeys::key_id(&old_key));
        assert_eq!(rotated.current_id(), CursorKeys::key_id(&new_key));
        assert!(
            !format!("{rotated:?}").contains("rotation"),
            "keys never printed"
        );

        let dropped = CursorKeys::new(new_key, []);
        assert_eq!(
            decode(&dropped, &p("p1"), &q, &open, now()),
            Err(CursorError::RetiredKey)
        );
        assert_eq!(decode(&dropped, &p("p1"), &q, &fresh, now()), Ok(state()));
        // A key id rewritten to the current key's does not make the old signature verify.
        let mut forged = payload(&open);
        forged["k"] = rotated.current_id().into();
        let sig = open.split_once('.').unwrap().1;
        let forged = format!("{}.{sig}", URL_SAFE_NO_PAD.encode(forged.to_string()));
        assert_eq!(
            decode(&dropped, &p("p1"), &q, &forged, now()),
            Err(CursorError::BadSignature)
        );
    }

    #[test]
    fn fingerprint_tells_absent_from_empty() {
        assert_ne!(fingerprint(&[("a", None)]), fingerprint(&[("a", Some(""))]));
        assert_ne!(
            fingerprint(&[("a", Some("bc"))]),
            fingerprint(&[("a", Some("b")), ("c", None)])
        );
    }
}
