//! Request → domain: path and query-string parameters of the read endpoints.

use lambda_http::{Request, RequestExt};

use super::error::ApiError;
use crate::domain::query::{DEFAULT_LIMIT, MAX_LIMIT};
use crate::domain::{ActivityId, Bound, CustomerId, Filters, Status};

/// The read routes. Ids are taken from the raw (still percent-encoded) path and decoded once:
/// path parameters are decoded differently by API Gateway and by local emulation, and decoding
/// them again would turn a literal `%41` into `A`. Path parameters are the fallback.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadRoute {
    TenantLog,
    CustomerLog(CustomerId),
    Detail(CustomerId, ActivityId),
}

pub fn read_route(req: &Request) -> Result<ReadRoute, ApiError> {
    let raw = req.raw_http_path();
    let path = if raw.is_empty() {
        req.uri().path()
    } else {
        raw
    };
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let tail: Vec<&str> = segments.iter().map(String::as_str).collect();
    let (customer, activity) = match tail.as_slice() {
        [.., "customers", c, "activities", a] => (Some((*c).to_owned()), Some((*a).to_owned())),
        [.., "customers", c, "activities"] => (Some((*c).to_owned()), None),
        [.., "activities"] => (None, None),
        _ => {
            let params = req.path_parameters_ref();
            let param = |name: &str| params.and_then(|p| p.first(name)).map(str::to_owned);
            match (param("customerId"), param("activityId")) {
                (None, _) => return Err(ApiError::NotFound("no such route".into())),
                found => found,
            }
        }
    };
    let customer = customer
        .map(|c| CustomerId::parse(&c).map_err(|e| invalid("customerId", e)))
        .transpose()?;
    match (customer, activity) {
        (None, _) => Ok(ReadRoute::TenantLog),
        (Some(c), None) => Ok(ReadRoute::CustomerLog(c)),
        // An id that cannot exist is simply not found.
        (Some(c), Some(a)) => ActivityId::parse(&a)
            .map(|a| ReadRoute::Detail(c, a))
            .map_err(|_| ApiError::NotFound("no such activity".into())),
    }
}

fn invalid(name: &str, e: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request("InvalidParameter", format!("{name} {e}"))
}

/// Query-string parameters of the list endpoints, as the caller wrote them.
#[derive(Debug, Default)]
pub struct ListParams {
    pub customer_id: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub limit: Option<String>,
    pub cursor: Option<String>,
    pub action: Option<String>,
    pub partner_user: Option<String>,
    pub resource_type: Option<String>,
    pub status: Option<String>,
}

/// The query parameters of the list endpoints (`customerId` only on `/activities`).
pub const LIST_PARAMS: &[&str] = &[
    "customerId",
    "from",
    "to",
    "limit",
    "cursor",
    "action",
    "partnerUser",
    "resourceType",
    "status",
];

impl ListParams {
    /// Reads the query string; unknown or repeated parameters are refused so a typo
    /// (`form=`) never silently widens a query.
    pub fn from_request(req: &Request, allow_customer: bool) -> Result<Self, ApiError> {
        let mut out = Self::default();
        let Some(q) = req.query_string_parameters_ref() else {
            return Ok(out);
        };
        for (name, _) in q.iter() {
            let known = LIST_PARAMS.contains(&name) && (allow_customer || name != "customerId");
            if !known {
                return Err(ApiError::bad_request(
                    "UnknownParameter",
                    format!("unknown query parameter {name:?}"),
                ));
            }
            if q.all(name).is_some_and(|v| v.len() > 1) {
                return Err(ApiError::bad_request(
                    "InvalidParameter",
                    format!("query parameter {name} is given more than once"),
                ));
            }
        }
        let get = |n: &str| q.first(n).map(str::to_owned);
        out.customer_id = get("customerId");
        out.from = get("from");
        out.to = get("to");
        out.limit = get("limit");
        out.cursor = get("cursor");
        out.action = get("action");
        out.partner_user = get("partnerUser");
        out.resource_type = get("resourceType");
        out.status = get("status");
        Ok(out)
    }

    pub fn limit(&self) -> Result<usize, ApiError> {
        match &self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "InvalidLimit",
                        format!("limit must be a whole number from 1 to {MAX_LIMIT}"),
                    )
                }),
        }
    }

    pub fn bounds(&self) -> Result<(Option<Bound>, Option<Bound>), ApiError> {
        let parse = |name: &str, v: &Option<String>| {
            v.as_deref()
                .map(Bound::parse)
                .transpose()
                .map_err(|e| ApiError::bad_request("InvalidDateRange", format!("{name} {e}")))
        };
        Ok((parse("from", &self.from)?, parse("to", &self.to)?))
    }

    pub fn filters(&self) -> Result<Filters, ApiError> {
        let text = |name: &str,
                    v: &Option<String>,
                    max: usize|
         -> Result<Option<String>, ApiError> {
            match v {
                Some(s) if s.is_empty() || s.chars().count() > max => Err(ApiError::bad_request(
                    "InvalidParameter",
                    format!("{name} must be between 1 and {max} characters long"),
                )),
                other => Ok(other.clone()),
            }
        };
        Ok(Filters {
            action: text("action", &self.action, 256)?,
            partner_user: text("partnerUser", &self.partner_user, 256)?,
            resource_type: text("resourceType", &self.resource_type, 64)?,
            status: self
                .status
                .as_deref()
                .map(|s| {
                    Status::parse(s).ok_or_else(|| {
                        ApiError::bad_request(
                            "InvalidParameter",
                            "status must be one of succeeded, failed, inProgress",
                        )
                    })
                })
                .transpose()?,
        })
    }

    /// Everything that defines the result set (not the page size or position), as written.
    pub fn fingerprint_parts<'a>(
        &'a self,
        scope: Option<&'a str>,
    ) -> [(&'a str, Option<&'a str>); 7] {
        [
            ("customer", scope),
            ("from", self.from.as_deref()),
            ("to", self.to.as_deref()),
            ("action", self.action.as_deref()),
            ("partnerUser", self.partner_user.as_deref()),
            ("resourceType", self.resource_type.as_deref()),
            ("status", self.status.as_deref()),
        ]
    }
}
