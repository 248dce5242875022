//! What a reader asks for: scope, period, filters, page position.

use chrono::{DateTime, Utc};

use super::activity::{Activity, Status};
use super::ids::{ActivityId, CustomerId};
use super::time::DateRange;

/// Exact-match filters; all given ones must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    pub action: Option<String>,
    pub partner_user: Option<String>,
    pub resource_type: Option<String>,
    pub status: Option<Status>,
}

impl Filters {
    pub fn matches(&self, a: &Activity) -> bool {
        self.action.as_ref().is_none_or(|v| *v == a.action)
            && self
                .partner_user
                .as_ref()
                .is_none_or(|v| *v == a.partner_user)
            && self
                .resource_type
                .as_ref()
                .is_none_or(|v| Some(v) == a.resource_type.as_ref())
            && self.status.is_none_or(|v| v == a.status)
    }
}

/// A query over one tenant's log: one customer's activities, or all customers'.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityQuery {
    pub customer: Option<CustomerId>,
    pub range: DateRange,
    pub filters: Filters,
}

/// A position in the newest-first order: paging continues strictly after it.
/// Activities are ordered by time, then customer, then id (all descending).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PageKey {
    #[serde(with = "super::time::millis")]
    pub occurred_at: DateTime<Utc>,
    pub customer_id: CustomerId,
    pub id: ActivityId,
}

impl PageKey {
    pub fn of(a: &Activity) -> Self {
        Self {
            occurred_at: a.occurred_at,
            customer_id: a.customer_id.clone(),
            id: a.id.clone(),
        }
    }
}

/// Page sizes a caller may ask for.
pub const DEFAULT_LIMIT: usize = 100;
pub const MAX_LIMIT: usize = 1000;
