//! `GET /activities`, `GET /customers/{customerId}/activities` and
//! `GET /customers/{customerId}/activities/{activityId}`.

use chrono::Utc;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde_json::value::RawValue;
use tracing::instrument;

use crate::config::Config;
use crate::domain::{
    Activity, ActivityId, ActivityQuery, CustomerId, DateRange, Details, Identity, PageKey,
    Permission,
};
use crate::http::cursor::{self, CursorError, CursorState};
use crate::http::params::{ListParams, ReadRoute, read_route};
use crate::http::response::{ActivityView, Links, json};
use crate::http::{ApiError, identity, request_id};
use crate::store::{ActivityReader, DetailsBlobs};

/// Response bytes a page may fill before it is cut short (Lambda responses are limited to 6 MB).
pub const PAGE_BYTE_BUDGET: usize = 4 * 1024 * 1024;

#[instrument(skip_all, fields(request_id = request_id(&req).unwrap_or_default()))]
pub async fn handle<R: ActivityReader, B: DetailsBlobs>(
    config: &Config,
    reader: &R,
    blobs: &B,
    req: Request,
) -> Response<Body> {
    let rid = request_id(&req);
    let result = async {
        let who = identity::authorize(&req, &config.auth, Permission::Read)?;
        match read_route(&req)? {
            ReadRoute::Detail(customer, id) => {
                detail(config, reader, blobs, &who, &customer, &id).await
            }
            ReadRoute::CustomerLog(customer) => {
                let params = ListParams::from_request(&req, false)?;
                list(config, reader, &who, Some(customer), &params).await
            }
            ReadRoute::TenantLog => {
                let params = ListParams::from_request(&req, true)?;
                let customer = params
                    .customer_id
                    .as_deref()
                    .map(|c| {
                        CustomerId::parse(c).map_err(|e| {
                            ApiError::bad_request("InvalidParameter", format!("customerId {e}"))
                        })
                    })
                    .transpose()?;
                list(config, reader, &who, customer, &params).await
            }
        }
    }
    .await;
    result.unwrap_or_else(|e| e.into_response(rid.as_deref()))
}

async fn detail<R: ActivityReader, B: DetailsBlobs>(
    config: &Config,
    reader: &R,
    blobs: &B,
    who: &Identity,
    customer: &CustomerId,
    id: &ActivityId,
) -> Result<Response<Body>, ApiError> {
    let Some(a) = reader.get(&who.partner, customer, id).await? else {
        return Err(ApiError::NotFound(format!(
            "no activity {id} for customer {customer}"
        )));
    };
    let full = match &a.details {
        Details::External { key, .. } => {
            Some(RawValue::from_string(blobs.get(key).await?).map_err(|e| {
                tracing::error!(error = %e, "stored details are not JSON");
                ApiError::Internal
            })?)
        }
        _ => None,
    };
    let links = Links::new(config.subscriptions_url_template.as_str());
    Ok(json(
        StatusCode::OK,
        &ActivityView::new(&a, full.as_deref(), &links),
    ))
}

async fn list<R: ActivityReader>(
    config: &Config,
    reader: &R,
    who: &Identity,
    customer: Option<CustomerId>,
    params: &ListParams,
) -> Result<Response<Body>, ApiError> {
    let limit = params.limit()?;
    let filters = params.filters()?;
    let query_id =
        cursor::fingerprint(&params.fingerprint_parts(customer.as_ref().map(CustomerId::as_str)));

    let (range, mut after) = match &params.cursor {
        Some(text) => {
            let state = cursor::decode(&config.cursor_signing_key, &who.partner, &query_id, text)
                .map_err(|e| {
                ApiError::bad_request(
                    "InvalidCursor",
                    match e {
                        CursorError::WrongQuery => {
                            "the cursor belongs to a different query; repeat the \
                                                    parameters of the first page"
                                .to_owned()
                        }
                        other => format!("{other}"),
                    },
                )
            })?;
            (state.range, Some(state.position))
        }
        None => {
            let (from, to) = params.bounds()?;
            let range = DateRange::resolve(from, to, Utc::now())
                .map_err(|e| ApiError::bad_request("InvalidDateRange", e.to_string()))?;
            (range, None)
        }
    };

    let query = ActivityQuery {
        customer,
        range,
        filters,
    };
    let mut items: Vec<Activity> = Vec::new();
    let mut bytes = 0;
    let next = loop {
        let page = reader
            .query_page(&who.partner, &query, after.as_ref(), limit - items.len())
            .await?;
        let mut cut_short = false;
        let count = page.items.len();
        for (i, a) in page.items.into_iter().enumerate() {
            bytes += ActivityView::estimated_bytes(&a);
            let over_budget = bytes > PAGE_BYTE_BUDGET && !items.is_empty();
            if items.len() == limit || over_budget {
                cut_short = true;
                break;
            }
            after = Some(PageKey::of(&a));
            items.push(a);
            debug_assert!(i < count);
        }
        if cut_short {
            break after.clone();
        }
        match page.last_evaluated {
            None => break None,
            Some(k) => {
                after = Some(k);
                if items.len() == limit {
                    break after.clone();
                }
            }
        }
    };

    let next_cursor = next.map(|position| {
        cursor::encode(
            &config.cursor_signing_key,
            &who.partner,
            &query_id,
            &CursorState { range, position },
        )
    });
    let links = Links::new(config.subscriptions_url_template.as_str());
    let views: Vec<ActivityView> = items
        .iter()
        .map(|a| ActivityView::new(a, None, &links))
        .collect();
    Ok(json(
        StatusCode::OK,
        &Page {
            items: &views,
            next_cursor: next_cursor.as_deref(),
        },
    ))
}

/// A page as the API returns it, serialized straight from the views (no intermediate
/// `serde_json::Value`: BENCHMARKS.md, request CPU).
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Page<'a> {
    items: &'a [ActivityView<'a>],
    /// `null` on the last page.
    next_cursor: Option<&'a str>,
}
