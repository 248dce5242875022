//! Domain → response: the JSON shape of an activity and helpers for JSON responses.

use super::path_segment as encode;
use lambda_http::http::{StatusCode, header};
use lambda_http::{Body, Response};
use serde::Serialize;
use serde_json::value::RawValue;

use crate::domain::{Activity, CustomerId, Details, time};

/// Builds the links an activity carries.
#[derive(Debug, Clone)]
pub struct Links {
    subscriptions_template: String,
}

impl Links {
    pub fn new(subscriptions_template: impl Into<String>) -> Self {
        Self {
            subscriptions_template: subscriptions_template.into(),
        }
    }

    pub fn subscriptions(&self, customer: &CustomerId) -> String {
        self.subscriptions_template
            .replace("{customerId}", &encode(customer.as_str()))
    }
}

/// An activity as every endpoint returns it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivityView<'a> {
    id: &'a str,
    customer_id: &'a str,
    customer_name: &'a str,
    action: &'a str,
    partner_user: &'a str,
    occurred_at: String,
    recorded_at: String,
    resource_type: Option<&'a str>,
    status: &'a str,
    /// The details object; `null` when there are none or (in lists) when they are kept
    /// out of the page because of their size — then `detailsIncluded` is false.
    details: Option<&'a RawValue>,
    details_size: usize,
    details_included: bool,
    /// The `sub` of the token that recorded it (`null` before writers were kept).
    recorded_by: Option<&'a str>,
    /// Its place in its customer's chain (`null` before the chain, until backfilled).
    sequence: Option<u64>,
    hash: Option<&'a str>,
    previous_hash: Option<&'a str>,
    /// When the activity before it was recorded (`null` for sequence 1).
    previous_recorded_at: Option<String>,
    /// Its place in its tenant's feed (`null` until it is placed, moments after recording).
    feed_position: Option<u64>,
    links: ActivityLinks,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ActivityLinks {
    #[serde(rename = "self")]
    this: String,
    subscriptions: String,
}

impl<'a> ActivityView<'a> {
    /// `details` overrides what the record holds inline (the full document of an externally
    /// kept one); without it external details are reported as not included.
    pub fn new(a: &'a Activity, details: Option<&'a RawValue>, links: &Links) -> Self {
        let inline = match &a.details {
            Details::Inline(json) => serde_json::from_str::<&RawValue>(json).ok(),
            _ => None,
        };
        let details = details.or(inline);
        Self {
            id: a.id.as_str(),
            customer_id: a.customer_id.as_str(),
            customer_name: &a.customer_name,
            action: &a.action,
            partner_user: &a.partner_user,
            occurred_at: time::format(a.occurred_at),
            recorded_at: time::format(a.recorded_at),
            resource_type: a.resource_type.as_deref(),
            status: a.status.as_str(),
            details,
            details_size: a.details.size(),
            details_included: details.is_some() || matches!(a.details, Details::None),
            recorded_by: a.recorded_by.as_deref(),
            sequence: a.chain.as_ref().map(|l| l.sequence),
            hash: a.chain.as_ref().map(|l| l.hash.as_str()),
            previous_hash: a.chain.as_ref().map(|l| l.previous_hash.as_str()),
            previous_recorded_at: a
                .chain
                .as_ref()
                .and_then(|l| l.previous_recorded_at)
                .map(time::format),
            feed_position: a.feed_position,
            links: ActivityLinks {
                this: format!(
                    "/customers/{}/activities/{}",
                    encode(a.customer_id.as_str()),
                    a.id
                ),
                subscriptions: links.subscriptions(&a.customer_id),
            },
        }
    }

    /// Rough size of this activity in a JSON response, to keep pages under Lambda's 6 MB limit.
    pub fn estimated_bytes(a: &Activity) -> usize {
        let inline = match &a.details {
            Details::Inline(json) => json.len(),
            _ => 0,
        };
        800 + inline + a.customer_name.len() + a.action.len() + a.partner_user.len()
    }
}

pub fn json<T: Serialize>(status: StatusCode, body: &T) -> Response<Body> {
    match serde_json::to_string(body) {
        Ok(text) => Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::Text(text))
            .unwrap_or_default(),
        Err(e) => {
            tracing::error!(error = %e, "response serialisation failed");
            Response::builder()
                .status(StatusCode::INTERNAL_SERVER_ERROR)
                .body(Body::Empty)
                .unwrap_or_default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::chain::{MEMBERS, Presence, Record};
    use crate::domain::{PartnerId, time};
    use crate::testing::fixtures::synthetic_activity;

    /// What every endpoint shows of an activity rebuilds the record its hash was computed over
    /// (what a verifier recomputes is what the writer hashed), with every optional member set
    /// and with none. The members and their JCS are pinned once, by the golden vectors.
    #[test]
    fn an_activity_as_shown_rebuilds_the_record_it_was_hashed_over() {
        let partner = PartnerId::parse("p1").unwrap();
        let links = Links::new("https://portal.example/customers/{customerId}");
        let mut full = synthetic_activity(
            3,
            "客戶 #1",
            time::parse_timestamp("2026-11-25T01:02:03.004Z").unwrap(),
        );
        full.recorded_by = Some("writer-1".into());
        full.details = Details::Inline(r#"{"z":1,"a":{"名稱":"台積電","n":1.50}}"#.into());
        if let Some(link) = &mut full.chain {
            link.previous_recorded_at = Some(full.occurred_at);
        }
        let mut bare = full.clone();
        if let Some(link) = &mut bare.chain {
            link.previous_recorded_at = None;
        }
        bare.recorded_by = None;
        bare.resource_type = None;
        bare.details = Details::None;
        for (name, a, absent) in [
            ("every member", &full, false),
            ("no optional member", &bare, true),
        ] {
            let hashed = a.record(&partner, None).unwrap().canonical(7).unwrap();
            let shown = serde_json::to_value(ActivityView::new(a, None, &links)).unwrap();
            let rebuilt = Record::from_row("p1", shown.as_object().unwrap()).unwrap();
            assert_eq!(
                String::from_utf8(rebuilt.canonical(7).unwrap()).unwrap(),
                String::from_utf8(hashed.clone()).unwrap(),
                "{name}"
            );
            // Each member as its presence says: written out, null, or left out.
            let text: serde_json::Value = serde_json::from_slice(&hashed).unwrap();
            for (member, presence) in MEMBERS {
                let value = text.get(member);
                let expected = match (presence, absent) {
                    (Presence::OmittedWhenNull, true) => value.is_none(),
                    (Presence::NullWhenAbsent, true) => value == Some(&serde_json::Value::Null),
                    _ => value.is_some_and(|v| !v.is_null()),
                };
                assert!(expected, "{name}: {member} is {value:?}");
            }
        }
    }

    #[test]
    fn subscriptions_link_encodes_the_customer() {
        let l = Links::new("https://portal.example/customers/{customerId}/subscriptions");
        let c = CustomerId::parse("台灣 客戶?&").unwrap();
        let url = l.subscriptions(&c);
        assert!(url.starts_with("https://portal.example/customers/%E5%8F%B0"));
        assert!(!url.contains(' ') && !url.contains('?') && !url.contains('&'));
    }
}
