//! What the tests of every crate share: the local development defaults, a configuration, sample
//! activities, times relative to now, and the record request.

use chrono::{DateTime, TimeDelta, Utc};
use lambda_http::{Body, Response};
use serde_json::{Value, json};

use super::ApiRequest;
use crate::config::{AuthMode, Config, LocalIssuer};
use crate::domain::chain::Link;
use crate::domain::{
    Activity, ActivityId, ActivityQuery, CustomerId, DateRange, Details, ExportFormat,
    ExportLocale, ExportSpec, Filters, PartnerId, Status, time,
};
use crate::handlers::record;
use crate::store::memory::MemoryStore;
use crate::store::{ActivityWriter, DetailsBlobs, InsertOutcome, Unchained};

/// An export of the last `days` days up to `now`: every customer, no filter, CSV in UTC with
/// an English header row.
pub fn csv_export_of_last_days(days: i64, now: DateTime<Utc>) -> ExportSpec {
    ExportSpec {
        query: ActivityQuery {
            customer: None,
            range: DateRange {
                from: now - TimeDelta::days(days),
                to: now,
            },
            filters: Filters::default(),
        },
        format: ExportFormat::Csv,
        time_zone: chrono_tz::Tz::UTC,
        locale: ExportLocale::English,
    }
}

/// A local development default by name (`CURSOR_SIGNING_KEY`, `TABLE_NAME`, …).
pub fn local_default(name: &str) -> &'static str {
    crate::config::local_default(name).unwrap_or_else(|| panic!("scripts/local.env has no {name}"))
}

/// The cursor key of tests outside local mode, where the development key is refused.
pub const TEST_CURSOR_KEY: &str = "unit-test-cursor-signing-key-0123456789abcdef";

/// The configuration from the local defaults (a table and bucket named `t` and `b`, identities
/// from API Gateway's authorizer); tests change what they test.
pub fn config() -> Config {
    Config::from_lookup(|name| match name {
        "CURSOR_SIGNING_KEY" => Some(TEST_CURSOR_KEY.to_owned()),
        _ => crate::config::local_default(name).map(str::to_owned),
    })
    .unwrap_or_else(|e| panic!("local defaults: {e}"))
}

/// The local OpenID Connect provider as the functions see it in local mode: its issuer and
/// audience, and the public keys of `web/local/jwks.json`.
pub fn local_issuer() -> LocalIssuer {
    LocalIssuer {
        issuer: local_issuer_url(),
        audience: local_default("LOCAL_OIDC_AUDIENCE").to_owned(),
        keys: LocalIssuer::keys_from_jwks(include_str!("../../../web/local/jwks.json"))
            .unwrap_or_else(|e| panic!("web/local/jwks.json: {e}")),
    }
}

/// `http://127.0.0.1:<ACTIVITY_LOG_IDP_PORT>`, the local provider's issuer.
pub fn local_issuer_url() -> String {
    format!(
        "http://127.0.0.1:{}",
        local_default("ACTIVITY_LOG_IDP_PORT")
    )
}

/// An access token of the local provider, as `scripts/dev-token` prints one: RS256 with the
/// development key, the local issuer and audience, `partner_id`, `roles` and `sub`, valid for
/// `ttl_secs` from now (negative: already expired).
pub fn local_token(partner: &str, roles: &[&str], sub: &str, ttl_secs: i64) -> String {
    let now = Utc::now().timestamp();
    sign_local(&json!({
        "iss": local_issuer_url(),
        "aud": local_default("LOCAL_OIDC_AUDIENCE"),
        "partner_id": partner,
        "roles": roles,
        "sub": sub,
        "iat": now,
        "nbf": now.min(now + ttl_secs),
        "exp": now + ttl_secs,
    }))
}

/// `claims` signed with the local provider's development key (RS256, its `kid`).
pub fn sign_local(claims: &Value) -> String {
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(include_bytes!(
        "../../../web/local/signing-key.pem"
    ))
    .unwrap_or_else(|e| panic!("web/local/signing-key.pem: {e}"));
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = local_issuer().keys.first().map(|k| k.kid.clone());
    jsonwebtoken::encode(&header, claims, &key).unwrap_or_else(|e| panic!("sign token: {e}"))
}

/// Tokens the local stack must refuse, each named by what is wrong with it; otherwise like
/// [`local_token`] for `partner` and `roles`.
pub fn refused_tokens(partner: &str, roles: &[&str]) -> Vec<(&'static str, String)> {
    let now = Utc::now().timestamp();
    let claims = json!({
        "iss": local_issuer_url(),
        "aud": local_default("LOCAL_OIDC_AUDIENCE"),
        "partner_id": partner,
        "roles": roles,
        "sub": "someone",
        "iat": now,
        "exp": now + 600,
    });
    let with = |name: &str, value: Value| {
        let mut c = claims.clone();
        c[name] = value;
        sign_local(&c)
    };
    // A real token of another partner with this partner's claims put in: the signature no
    // longer matches.
    let forged = {
        let real = local_token("someone-else", roles, "someone", 600);
        let parts: Vec<&str> = real.split('.').collect();
        let payload = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            claims.to_string(),
        );
        format!("{}.{payload}.{}", parts[0], parts[2])
    };
    // Signed with HMAC keyed by the public key: a verifier that let the token pick its algorithm
    // would accept it.
    let public_as_secret = {
        let key = local_issuer().keys.remove(0);
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = Some(key.kid.clone());
        jsonwebtoken::encode(
            &header,
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(key.n.as_bytes()),
        )
        .unwrap_or_else(|e| panic!("sign token: {e}"))
    };
    let unknown_key = {
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(include_bytes!(
            "../../../web/local/signing-key.pem"
        ))
        .unwrap_or_else(|e| panic!("web/local/signing-key.pem: {e}"));
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = Some("another-key".into());
        jsonwebtoken::encode(&header, &claims, &key).unwrap_or_else(|e| panic!("sign: {e}"))
    };
    vec![
        ("expired", local_token(partner, roles, "someone", -600)),
        ("forged signature", forged),
        (
            "another issuer",
            with("iss", json!("https://login.example.com")),
        ),
        ("another audience", with("aud", json!("another-api"))),
        ("not valid yet", with("nbf", json!(now + 600))),
        ("no issuer", {
            let mut c = claims.clone();
            c.as_object_mut().map(|o| o.remove("iss"));
            sign_local(&c)
        }),
        ("HS256 keyed by the public key", public_as_secret),
        ("unknown key id", unknown_key),
        ("not a JWT", "not-a-token".to_owned()),
    ]
}

/// [`config`] with its own table and bucket names and `auth`.
pub fn config_for(table: &str, bucket: &str, auth: AuthMode) -> Config {
    Config {
        table_name: table.into(),
        bucket_name: bucket.into(),
        auth,
        ..config()
    }
}

/// `minutes` ago, as the API writes times.
pub fn minutes_ago(minutes: i64) -> String {
    time::format(Utc::now() - TimeDelta::minutes(minutes))
}

/// A record request item for `customer` with the activity id `id`, occurred `at`.
pub fn activity(customer: &str, id: &str, at: &str) -> Value {
    json!({"id": id, "customerId": customer, "customerName": "Contoso Ltd.", "action": "placed an order",
           "partnerUser": "ann@partner.example", "occurredAt": at, "resourceType": "order"})
}

/// Activity `n` (`act-000000042`) of a synthetic log, for `customer`, occurred at `occurred_at`:
/// a mix of ASCII and CJK customer names and small inline details. The benchmarks and the large
/// tests write, read and export it.
pub fn synthetic_activity(n: u64, customer: &str, occurred_at: DateTime<Utc>) -> Activity {
    let id = format!("act-{n:09}");
    Activity {
        feed_position: None,
        id: ActivityId::parse(&id).unwrap_or_else(|e| panic!("{id}: {e}")),
        customer_id: CustomerId::parse(customer).unwrap_or_else(|e| panic!("{customer}: {e}")),
        customer_name: if n.is_multiple_of(3) {
            "台北雲端科技股份有限公司".into()
        } else {
            "Contoso, Ltd.".into()
        },
        action: "placed an order".into(),
        partner_user: "chen.wei@partner.example".into(),
        occurred_at,
        recorded_at: occurred_at,
        resource_type: Some("order".into()),
        status: Status::Succeeded,
        details: Details::Inline(format!(
            r#"{{"orderId":"ORD-{n}","seats":{},"sku":"CFQ7TTC0LH18"}}"#,
            n % 50
        )),
        content_hash: format!("synthetic-{n}"),
        expires_at: (occurred_at + TimeDelta::days(365)).timestamp(),
        recorded_by: Some("synthetic-writer".into()),
        // A link of the real size (storing it through a writer chains it for real).
        chain: Some(Link {
            sequence: n + 1,
            hash: format!("{:064x}", n + 1),
            previous_hash: format!("{n:064x}"),
            previous_recorded_at: Some(occurred_at),
        }),
    }
}

/// Activities per write when a test or benchmark stores many straight through a store: with
/// as many customers at most, one transaction takes them (`MAX_TRANSACTION_WRITES`).
pub const SEED_CHUNK: usize = 50;

/// Stores `rows` of `partner` through `store`, chained in the order given, [`SEED_CHUNK`] at a
/// time. Panics on failure or on a key stored already.
pub async fn insert_activities<W: ActivityWriter>(
    store: &W,
    partner: &PartnerId,
    rows: &[Activity],
) {
    for chunk in rows.chunks(SEED_CHUNK) {
        let items: Vec<Unchained> = chunk
            .iter()
            .map(|a| Unchained::new(partner, a.clone(), None).unwrap_or_else(|e| panic!("{e}")))
            .collect();
        match store.insert_all(partner, &items).await {
            Ok(InsertOutcome::Written(_)) => {}
            Ok(InsertOutcome::Existing(e)) => panic!("{} activities stored already", e.len()),
            Err(e) => panic!("{e}"),
        }
    }
}

/// The stream records (new images, as Lambda delivers them) of inserting `rows` of `partner`:
/// what the sequencer reads.
pub fn stream_inserts(partner: &PartnerId, rows: &[Activity]) -> Value {
    let records: Vec<Value> = rows
        .iter()
        .map(|a| {
            let pk = crate::store::keys::customer_pk(partner, &a.customer_id);
            let sk = crate::store::keys::activity_sk(&a.id);
            serde_json::json!({
                "eventName": "INSERT",
                "dynamodb": {
                    "Keys": {"pk": {"S": pk}, "sk": {"S": sk}},
                    "NewImage": {
                        "pk": {"S": pk}, "sk": {"S": sk},
                        "partnerId": {"S": partner.as_str()},
                        "customerId": {"S": a.customer_id.as_str()},
                        "id": {"S": a.id.as_str()},
                        "ttl": {"N": a.expires_at.to_string()},
                        "recordedAt": {"S": crate::domain::time::format(a.recorded_at)}
                    }
                }
            })
        })
        .collect();
    serde_json::json!({ "Records": records })
}

/// A memory store holding `rows` of `partner`, read `page_size` items per storage page.
pub async fn memory_log(partner: &PartnerId, page_size: usize, rows: &[Activity]) -> MemoryStore {
    let store = MemoryStore::with_page_size(page_size);
    insert_activities(&store, partner, rows).await;
    store
}

/// `POST /activities` of `payload` by an `ActivityWriter` of `partner`.
pub async fn record<W: ActivityWriter, B: DetailsBlobs>(
    config: &Config,
    writer: &W,
    blobs: &B,
    partner: &str,
    payload: &Value,
) -> Response<Body> {
    let req = ApiRequest::post("/activities", payload.to_string())
        .caller(partner, &["ActivityWriter"])
        .build();
    record::handle(config, writer, blobs, req).await
}

/// The JSON body of a handler's response (`Null` when it is not JSON).
pub fn json_body(r: &Response<Body>) -> Value {
    serde_json::from_slice(r.body().as_ref()).unwrap_or(Value::Null)
}

/// No cell that a spreadsheet splitting lines on `,`, `;` or TAB makes of `text` starts with a
/// formula character: read quote-aware as the `csv` crate does, or split plainly (with and
/// without one opening quote).
pub fn assert_no_formula_cell(text: &str) {
    const FORMULA: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];
    for sep in [b',', b';', b'\t'] {
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(sep)
            .has_headers(false)
            .flexible(true)
            .from_reader(text.as_bytes());
        for record in reader.records() {
            let record = record.unwrap_or_else(|e| panic!("{e}"));
            for cell in &record {
                assert!(
                    !cell.starts_with(FORMULA),
                    "{cell:?} read with {:?}",
                    sep as char
                );
            }
        }
        for line in text.split("\r\n") {
            for piece in line.split(sep as char) {
                let unquoted = piece.strip_prefix('"').unwrap_or(piece);
                assert!(
                    !piece.starts_with(FORMULA) && !unquoted.starts_with(FORMULA),
                    "{piece:?} split on {:?}",
                    sep as char
                );
            }
        }
    }
}
