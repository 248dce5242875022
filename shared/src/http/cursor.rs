//! Page cursors: opaque to callers, HMAC-signed, bound to the tenant and to the query.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::{ActivityId, CustomerId, DateRange, PageKey, PartnerId};

/// Longest cursor text accepted before any decoding.
const MAX_CURSOR_LEN: usize = 1024;

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
}

#[derive(Serialize, Deserialize)]
struct Payload {
    v: u8,
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

pub fn encode(key: &[u8], partner: &PartnerId, query: &str, state: &CursorState) -> String {
    let payload = Payload {
        v: 1,
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
    key: &[u8],
    partner: &PartnerId,
    query: &str,
    text: &str,
) -> Result<CursorState, CursorError> {
    if text.len() > MAX_CURSOR_LEN {
        return Err(CursorError::Malformed);
    }
    let (body, sig) = text.split_once('.').ok_or(CursorError::Malformed)?;
    let sig = URL_SAFE_NO_PAD
        .decode(sig)
        .map_err(|_| CursorError::Malformed)?;
    mac(key, body.as_bytes())
        .verify_slice(&sig)
        .map_err(|_| CursorError::BadSignature)?;
    let bytes = URL_SAFE_NO_PAD
        .decode(body)
        .map_err(|_| CursorError::Malformed)?;
    let p: Payload = serde_json::from_slice(&bytes).map_err(|_| CursorError::Malformed)?;
    if p.v != 1 {
        return Err(CursorError::Malformed);
    }
    // Another tenant's cursor is as good as a forged one: it tells the caller nothing.
    if p.p != partner.as_str() {
        return Err(CursorError::BadSignature);
    }
    if p.q != query {
        return Err(CursorError::WrongQuery);
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
        let c = encode(KEY, &p("p1"), &q, &state());
        assert_eq!(decode(KEY, &p("p1"), &q, &c), Ok(state()));
    }

    #[test]
    fn another_tenant_or_query_or_key_is_refused() {
        let q = fingerprint(&[("customer", Some("c1"))]);
        let c = encode(KEY, &p("p1"), &q, &state());
        assert_eq!(
            decode(KEY, &p("p2"), &q, &c),
            Err(CursorError::BadSignature)
        );
        let other_q = fingerprint(&[("customer", Some("c2"))]);
        assert_eq!(
            decode(KEY, &p("p1"), &other_q, &c),
            Err(CursorError::WrongQuery)
        );
        assert_eq!(
            decode(b"another-key-another-key-another-k", &p("p1"), &q, &c),
            Err(CursorError::BadSignature)
        );
    }

    #[test]
    fn tampering_is_detected() {
        let q = fingerprint(&[]);
        let c = encode(KEY, &p("p1"), &q, &state());
        let (body, sig) = c.split_once('.').unwrap();
        // Re-encode the payload for another tenant but keep the signature.
        let mut payload: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).unwrap()).unwrap();
        payload["p"] = "p2".into();
        let forged = format!("{}.{sig}", URL_SAFE_NO_PAD.encode(payload.to_string()));
        assert_eq!(
            decode(KEY, &p("p2"), &q, &forged),
            Err(CursorError::BadSignature)
        );
        for bad in ["", ".", "abc", "a.b", &format!("{c}x"), &"A".repeat(5000)] {
            assert!(decode(KEY, &p("p1"), &q, bad).is_err(), "{bad:?} accepted");
        }
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
