//! Request → domain: routes, and the parameters of the list and export endpoints.
//!
//! Both endpoints select activities the same way ([`Selection`]: customer, period, filters); the
//! list endpoints take it from the query string with [`Paging`], an export from its JSON body with
//! [`ExportOptions`]. Each struct is the one definition of its parameter names.

use std::sync::LazyLock;

use lambda_http::{Request, RequestExt};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::error::{ApiError, ErrorCode};
use crate::domain::activity::{MAX_LABEL_CHARS, MAX_RESOURCE_TYPE_CHARS};
use crate::domain::destination::DestinationId;
use crate::domain::feed::{DEFAULT_FEED_LIMIT, MAX_FEED_LIMIT, MAX_POSITION};
use crate::domain::names::{choices_of, fields_of};
use crate::domain::query::{DEFAULT_LIMIT, MAX_LIMIT};
use crate::domain::time;
use crate::domain::{
    ActivityId, Bound, CustomerId, ExportFormat, ExportId, ExportLocale, Filters, Status,
};

/// The path's segments, each percent-decoded once. Ids are taken from the raw (still
/// percent-encoded) path: path parameters are decoded differently by API Gateway and by local
/// emulation, and decoding them again would turn a literal `%41` into `A`.
fn segments(req: &Request) -> Vec<String> {
    let raw = req.raw_http_path();
    let path = if raw.is_empty() {
        req.uri().path()
    } else {
        raw
    };
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect()
}

fn path_param(req: &Request, name: &str) -> Option<String> {
    req.path_parameters_ref()
        .and_then(|p| p.first(name))
        .map(str::to_owned)
}

fn no_route() -> ApiError {
    ApiError::NotFound("no such route".into())
}

/// The read routes.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadRoute {
    TenantLog,
    CustomerLog(CustomerId),
    Detail(CustomerId, ActivityId),
    /// `GET /feed`.
    Feed,
}

pub fn read_route(req: &Request) -> Result<ReadRoute, ApiError> {
    let segments = segments(req);
    let tail: Vec<&str> = segments.iter().map(String::as_str).collect();
    let (customer, activity) = match tail.as_slice() {
        [.., "customers", c, "activities", a] => (Some((*c).to_owned()), Some((*a).to_owned())),
        [.., "customers", c, "activities"] => (Some((*c).to_owned()), None),
        [.., "feed"] => return Ok(ReadRoute::Feed),
        [.., "activities"] => (None, None),
        // Path parameters are the fallback.
        _ => match (path_param(req, "customerId"), path_param(req, "activityId")) {
            (None, _) => return Err(no_route()),
            found => found,
        },
    };
    let customer = customer.as_deref().map(parse_customer).transpose()?;
    match (customer, activity) {
        (None, _) => Ok(ReadRoute::TenantLog),
        (Some(c), None) => Ok(ReadRoute::CustomerLog(c)),
        // An id that cannot exist is simply not found.
        (Some(c), Some(a)) => ActivityId::parse(&a)
            .map(|a| ReadRoute::Detail(c, a))
            .map_err(|_| ApiError::NotFound("no such activity".into())),
    }
}

/// The export routes.
#[derive(Debug, PartialEq, Eq)]
pub enum ExportRoute {
    Create,
    Status(ExportId),
}

pub fn export_route(req: &Request) -> Result<ExportRoute, ApiError> {
    let segments = segments(req);
    let tail: Vec<&str> = segments.iter().map(String::as_str).collect();
    let id = match (req.method().as_str(), tail.as_slice()) {
        ("POST", [.., "exports"]) => return Ok(ExportRoute::Create),
        ("GET", [.., "exports", id]) => (*id).to_owned(),
        ("GET", _) => path_param(req, "exportId").ok_or_else(no_route)?,
        _ => return Err(no_route()),
    };
    // An id that cannot exist is simply not found.
    ExportId::parse(&id)
        .map(ExportRoute::Status)
        .map_err(|_| ApiError::NotFound(format!("no export {id}")))
}

/// The destination routes.
#[derive(Debug, PartialEq, Eq)]
pub enum DestinationRoute {
    List,
    Create,
    Get(DestinationId),
    Update(DestinationId),
    Delete(DestinationId),
}

/// The destination route a request takes; none of them takes query parameters.
pub fn destination_route(req: &Request) -> Result<DestinationRoute, ApiError> {
    query_once(req, &[])?;
    let segments = segments(req);
    let tail: Vec<&str> = segments.iter().map(String::as_str).collect();
    let method = req.method().as_str();
    let id = match tail.as_slice() {
        [.., "destinations"] => {
            return match method {
                "GET" => Ok(DestinationRoute::List),
                "POST" => Ok(DestinationRoute::Create),
                _ => Err(no_route()),
            };
        }
        [.., "destinations", id] => (*id).to_owned(),
        _ => path_param(req, "destinationId").ok_or_else(no_route)?,
    };
    // An id that cannot exist is simply not found.
    let id = DestinationId::parse(&id)
        .map_err(|_| ApiError::NotFound(format!("no destination {id}")))?;
    match method {
        "GET" => Ok(DestinationRoute::Get(id)),
        "PATCH" => Ok(DestinationRoute::Update(id)),
        "DELETE" => Ok(DestinationRoute::Delete(id)),
        _ => Err(no_route()),
    }
}

/// The integrity routes.
#[derive(Debug, PartialEq, Eq)]
pub enum IntegrityRoute {
    Checkpoint(CustomerId),
    PublicKey,
    /// A customer's chain links with sequences `from` to `to` (inclusive).
    Chain {
        customer: CustomerId,
        from: u64,
        to: u64,
    },
}

/// Sequences one `GET /customers/{id}/chain` covers at most.
pub const MAX_CHAIN_SPAN: u64 = 1000;

/// The largest sequence the chain route takes (2^53 − 1, as the contract states: every JSON
/// reader holds it exactly).
pub const MAX_SEQUENCE: u64 = (1 << 53) - 1;

pub fn integrity_route(req: &Request) -> Result<IntegrityRoute, ApiError> {
    let segments = segments(req);
    let tail: Vec<&str> = segments.iter().map(String::as_str).collect();
    match tail.as_slice() {
        [.., "integrity", "public-key"] => Ok(IntegrityRoute::PublicKey),
        [.., "customers", c, "chain"] => {
            let customer = parse_customer(c)?;
            let (from, to) = chain_span(req)?;
            Ok(IntegrityRoute::Chain { customer, from, to })
        }
        [.., "customers", c, "checkpoint"] => parse_customer(c).map(IntegrityRoute::Checkpoint),
        _ => match path_param(req, "customerId") {
            Some(c) => parse_customer(&c).map(IntegrityRoute::Checkpoint),
            None => Err(no_route()),
        },
    }
}

/// The query string's values by name, each of `known` given at most once; any other name is
/// refused, so a typo never silently changes what is read.
fn query_once<'a>(req: &'a Request, known: &[&str]) -> Result<Vec<(&'a str, &'a str)>, ApiError> {
    let Some(q) = req.query_string_parameters_ref() else {
        return Ok(Vec::new());
    };
    let mut values = Vec::new();
    for (name, value) in q.iter() {
        if !known.contains(&name) {
            return Err(ApiError::bad_request(
                ErrorCode::UnknownParameter,
                format!("unknown query parameter {name:?}"),
            ));
        }
        if q.all(name).is_some_and(|v| v.len() > 1) {
            return Err(ApiError::bad_request(
                ErrorCode::InvalidParameter,
                format!("query parameter {name} is given more than once"),
            ));
        }
        values.push((name, value));
    }
    Ok(values)
}

/// A whole number from `low` to `high` given as `name`.
fn whole_number(name: &str, text: &str, low: u64, high: u64, what: &str) -> Result<u64, ApiError> {
    text.parse::<u64>()
        .ok()
        .filter(|n| (low..=high).contains(n))
        .ok_or_else(|| {
            ApiError::bad_request(
                ErrorCode::InvalidParameter,
                format!("{name} must be {what} (a whole number from {low} to {high})"),
            )
        })
}

/// `from` and `to` of `GET /customers/{id}/chain`: sequences, `1 <= from <= to`, at most
/// [`MAX_CHAIN_SPAN`] of them; nothing else in the query string.
fn chain_span(req: &Request) -> Result<(u64, u64), ApiError> {
    let given = query_once(req, &["from", "to"])?;
    let sequence = |name: &str| match given.iter().find(|(n, _)| *n == name) {
        Some((_, v)) => whole_number(name, v, 1, MAX_SEQUENCE, "a sequence"),
        None => Err(ApiError::bad_request(
            ErrorCode::InvalidParameter,
            format!("{name} is required (a sequence)"),
        )),
    };
    let (from, to) = (sequence("from")?, sequence("to")?);
    if to < from || to - from >= MAX_CHAIN_SPAN {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidSequenceRange,
            format!("to must be from from to {MAX_CHAIN_SPAN} sequences after it"),
        ));
    }
    Ok((from, to))
}

/// The query string of `GET /feed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedParams {
    /// Read the positions after this one (0: from the start).
    pub after: u64,
    pub limit: usize,
}

impl FeedParams {
    pub fn from_request(req: &Request) -> Result<Self, ApiError> {
        let mut params = Self {
            after: 0,
            limit: DEFAULT_FEED_LIMIT,
        };
        for (name, value) in query_once(req, &["after", "limit"])? {
            match name {
                "after" => {
                    params.after = whole_number(name, value, 0, MAX_POSITION, "a feed position")?;
                }
                _ => {
                    params.limit = value
                        .parse::<usize>()
                        .ok()
                        .filter(|n| (1..=MAX_FEED_LIMIT).contains(n))
                        .ok_or_else(|| {
                            ApiError::bad_request(
                                ErrorCode::InvalidLimit,
                                format!("limit must be a whole number from 1 to {MAX_FEED_LIMIT}"),
                            )
                        })?;
                }
            }
        }
        Ok(params)
    }
}

/// A customer id given by the caller (path, query string or body).
pub fn parse_customer(text: &str) -> Result<CustomerId, ApiError> {
    CustomerId::parse(text)
        .map_err(|e| ApiError::bad_request(ErrorCode::InvalidParameter, format!("customerId {e}")))
}

/// What selects activities, as the caller wrote it.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Selection {
    pub customer_id: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub action: Option<String>,
    pub partner_user: Option<String>,
    pub resource_type: Option<String>,
    pub status: Option<String>,
}

/// Page size and position of the list endpoints.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct Paging {
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

/// What an export produces.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportOptions {
    pub format: Option<String>,
    pub time_zone: Option<String>,
    pub locale: Option<String>,
}

fn names_of<A: DeserializeOwned, B: DeserializeOwned>() -> Vec<&'static str> {
    fields_of::<A>()
        .iter()
        .chain(fields_of::<B>())
        .copied()
        .collect()
}

/// The query parameters of the list endpoints (`customerId` only on `/activities`).
pub fn list_params() -> &'static [&'static str] {
    static NAMES: LazyLock<Vec<&'static str>> = LazyLock::new(names_of::<Selection, Paging>);
    &NAMES
}

/// The fields of an export request body.
pub fn export_fields() -> &'static [&'static str] {
    static NAMES: LazyLock<Vec<&'static str>> = LazyLock::new(names_of::<Selection, ExportOptions>);
    &NAMES
}

/// Splits named string values into a [`Selection`] and the endpoint's own parameters.
fn split<T: DeserializeOwned>(values: Map<String, Value>) -> Result<(Selection, T), ApiError> {
    let own: Map<String, Value> = values
        .iter()
        .filter(|(k, _)| fields_of::<T>().contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let shared: Map<String, Value> = values
        .into_iter()
        .filter(|(k, _)| fields_of::<Selection>().contains(&k.as_str()))
        .collect();
    // Every value is a string or null by now, so these cannot fail.
    let internal = |e: serde_json::Error| {
        tracing::error!(error = %e, "parameters did not map");
        ApiError::Internal
    };
    Ok((
        serde_json::from_value(Value::Object(shared)).map_err(internal)?,
        serde_json::from_value(Value::Object(own)).map_err(internal)?,
    ))
}

/// Query-string parameters of the list endpoints.
#[derive(Debug, Default, Clone)]
pub struct ListParams {
    pub selection: Selection,
    pub paging: Paging,
}

impl ListParams {
    /// Reads the query string; unknown or repeated parameters are refused so a typo
    /// (`form=`) never silently widens a query.
    pub fn from_request(req: &Request, allow_customer: bool) -> Result<Self, ApiError> {
        let Some(q) = req.query_string_parameters_ref() else {
            return Ok(Self::default());
        };
        let mut values = Map::new();
        for (name, value) in q.iter() {
            let known = list_params().contains(&name) && (allow_customer || name != "customerId");
            if !known {
                return Err(ApiError::bad_request(
                    ErrorCode::UnknownParameter,
                    format!("unknown query parameter {name:?}"),
                ));
            }
            if q.all(name).is_some_and(|v| v.len() > 1) {
                return Err(ApiError::bad_request(
                    ErrorCode::InvalidParameter,
                    format!("query parameter {name} is given more than once"),
                ));
            }
            values.insert(name.to_owned(), Value::String(value.to_owned()));
        }
        let (selection, paging) = split(values)?;
        Ok(Self { selection, paging })
    }

    pub fn limit(&self) -> Result<usize, ApiError> {
        match &self.paging.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| {
                    ApiError::bad_request(
                        ErrorCode::InvalidLimit,
                        format!("limit must be a whole number from 1 to {MAX_LIMIT}"),
                    )
                }),
        }
    }
}

/// The body of `POST /exports`.
#[derive(Debug, Default, Clone)]
pub struct ExportRequest {
    pub selection: Selection,
    pub options: ExportOptions,
}

impl ExportRequest {
    /// Parses the body: a JSON object (an empty body is `{}`) of known fields, each a string or
    /// null.
    pub fn from_body(body: &[u8]) -> Result<Self, ApiError> {
        let invalid = |m: String| ApiError::bad_request(ErrorCode::InvalidBody, m);
        let value: Value = if body.iter().all(u8::is_ascii_whitespace) {
            Value::Object(Map::new())
        } else {
            serde_json::from_slice(body)
                .map_err(|e| invalid(format!("body is not valid JSON: {e}")))?
        };
        let Value::Object(fields) = value else {
            return Err(invalid("body must be a JSON object".into()));
        };
        if let Some(unknown) = fields
            .keys()
            .find(|k| !export_fields().contains(&k.as_str()))
        {
            return Err(invalid(format!(
                "{unknown} is not a field of an export request"
            )));
        }
        if let Some((name, _)) = fields
            .iter()
            .find(|(_, v)| !matches!(v, Value::String(_) | Value::Null))
        {
            return Err(invalid(format!("{name} must be a string")));
        }
        let (selection, options) = split(fields)?;
        Ok(Self { selection, options })
    }

    pub fn format(&self) -> Result<ExportFormat, ApiError> {
        match &self.options.format {
            None => Ok(ExportFormat::Csv),
            Some(f) => ExportFormat::parse(f).ok_or_else(|| {
                ApiError::bad_request(
                    ErrorCode::InvalidParameter,
                    "format must be csv, jsonl or parquet",
                )
            }),
        }
    }

    pub fn locale(&self) -> Result<ExportLocale, ApiError> {
        match &self.options.locale {
            None => Ok(ExportLocale::default()),
            Some(l) => ExportLocale::parse(l).ok_or_else(|| {
                ApiError::bad_request(
                    ErrorCode::InvalidParameter,
                    format!("locale must be one of {}", choices_of::<ExportLocale>()),
                )
            }),
        }
    }

    pub fn time_zone(&self) -> Result<chrono_tz::Tz, ApiError> {
        match &self.options.time_zone {
            None => Ok(chrono_tz::Tz::UTC),
            Some(z) => time::time_zone(z).ok_or_else(|| {
                ApiError::bad_request(
                    ErrorCode::InvalidParameter,
                    "timeZone must be an IANA time zone name such as Asia/Taipei (the list is in \
                     openapi.yaml)",
                )
            }),
        }
    }
}

impl Selection {
    /// The `customerId` parameter, checked.
    pub fn customer(&self) -> Result<Option<CustomerId>, ApiError> {
        self.customer_id.as_deref().map(parse_customer).transpose()
    }

    pub fn bounds(&self) -> Result<(Option<Bound>, Option<Bound>), ApiError> {
        let parse = |name: &str, v: &Option<String>| {
            v.as_deref().map(Bound::parse).transpose().map_err(|e| {
                ApiError::bad_request(ErrorCode::InvalidDateRange, format!("{name} {e}"))
            })
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
                    ErrorCode::InvalidParameter,
                    format!("{name} must be between 1 and {max} characters long"),
                )),
                other => Ok(other.clone()),
            }
        };
        Ok(Filters {
            action: text("action", &self.action, MAX_LABEL_CHARS)?,
            partner_user: text("partnerUser", &self.partner_user, MAX_LABEL_CHARS)?,
            resource_type: text("resourceType", &self.resource_type, MAX_RESOURCE_TYPE_CHARS)?,
            status: self
                .status
                .as_deref()
                .map(|s| {
                    Status::parse(s).ok_or_else(|| {
                        ApiError::bad_request(
                            ErrorCode::InvalidParameter,
                            format!("status must be one of {}", choices_of::<Status>()),
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
