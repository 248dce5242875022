//! The activity every benchmark writes, reads and exports: activity `n` of a synthetic log,
//! with a mix of ASCII and CJK customer names and small inline details.

use activity_log::domain::{Activity, ActivityId, CustomerId, Details, Status};
use chrono::{DateTime, TimeDelta, Utc};

/// Activity `n` (`act-000000042`) of `customer`, occurred at `occurred_at`.
pub fn activity(n: u64, customer: &str, occurred_at: DateTime<Utc>) -> Result<Activity, String> {
    Ok(Activity {
        id: ActivityId::parse(&format!("act-{n:09}")).map_err(|e| e.to_string())?,
        customer_id: CustomerId::parse(customer).map_err(|e| e.to_string())?,
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
        content_hash: format!("bench-{n}"),
        expires_at: (occurred_at + TimeDelta::days(365)).timestamp(),
    })
}
