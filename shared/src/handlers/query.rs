//! `GET /activities`, `GET /customers/{customerId}/activities`,
//! `GET /customers/{customerId}/activities/{activityId}` and `GET /feed` (in
//! [`feed`](super::feed)).

use chrono::Utc;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde_json::value::RawValue;

use crate::config::Config;
use crate::domain::{
    Activity, ActivityId, ActivityQuery, CustomerId, DateRange, Details, Identity, PageKey,
};
use crate::http::cursor::{self, CursorError, CursorKeys, CursorState};
use crate::http::params::{ListParams, ReadRoute, read_route};
use crate::http::response::{ActivityView, Links, json};
use crate::http::{ApiError, ErrorCode, edge, routes};
use crate::metrics;
use crate::store::{ActivityReader, DetailsBlobs, FeedLog};

/// Response bytes a page may fill before it is cut short (Lambda responses are limited to 6 MB).
pub const PAGE_BYTE_BUDGET: usize = 4 * 1024 * 1024;

/// The read routes through the edge, uncounted (in-process callers: the tests).
pub async fn handle<R: ActivityReader + FeedLog, B: DetailsBlobs>(
    config: &Config,
    reader: &R,
    blobs: &B,
    req: Request,
) -> Response<Body> {
    edge::respond(config, routes::TENANT_LOG.permission, req, |who, req| {
        serve(config, reader, blobs, who, req)
    })
    .await
}

/// Answers a verified reader (`app::serve_api` puts it behind the whole edge).
pub async fn serve<R: ActivityReader + FeedLog, B: DetailsBlobs>(
    config: &Config,
    reader: &R,
    blobs: &B,
    who: Identity,
    req: Request,
) -> Result<Response<Body>, ApiError> {
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
            let customer = params.selection.customer()?;
            list(config, reader, &who, customer, &params).await
        }
        ReadRoute::Feed => super::feed::serve_feed(config, reader, &who, &req).await,
    }
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
    returned(who, "detail", 1);
    Ok(json(
        StatusCode::OK,
        &ActivityView::new(&a, full.as_deref(), &links),
    ))
}

/// The read's metric: how many activities it returned.
fn returned(who: &Identity, outcome: &str, items: usize) {
    metrics::emit(
        outcome,
        &[(metrics::QUERY_ITEMS_RETURNED, items as f64)],
        metrics::About {
            partner: Some(who.partner.as_str()),
            request_id: None,
        },
    );
}

async fn list<R: ActivityReader>(
    config: &Config,
    reader: &R,
    who: &Identity,
    customer: Option<CustomerId>,
    params: &ListParams,
) -> Result<Response<Body>, ApiError> {
    let limit = params.limit()?;
    let selection = &params.selection;
    let filters = selection.filters()?;
    let query_id = cursor::fingerprint(
        &selection.fingerprint_parts(customer.as_ref().map(CustomerId::as_str)),
    );
    let (range, after) = match &params.paging.cursor {
        Some(text) => {
            let state = decode_cursor(config, who, &query_id, text)?;
            (state.range, Some(state.position))
        }
        None => {
            let (from, to) = selection.bounds()?;
            let range = DateRange::resolve(from, to, Utc::now())
                .map_err(|e| ApiError::bad_request(ErrorCode::InvalidDateRange, e.to_string()))?;
            (range, None)
        }
    };
    let query = ActivityQuery {
        customer,
        range,
        filters,
    };
    let bound = ReadBound {
        limit,
        max_reads: config.list_max_reads,
    };
    let (items, next) = collect_page(reader, who, &query, after, bound).await?;

    let keys = cursor_keys(config)?;
    let next_cursor = next.map(|position| {
        cursor::encode(
            keys,
            &who.partner,
            &query_id,
            &CursorState { range, position },
            Utc::now(),
        )
    });
    let links = Links::new(config.subscriptions_url_template.as_str());
    let views: Vec<ActivityView> = items
        .iter()
        .map(|a| ActivityView::new(a, None, &links))
        .collect();
    returned(who, "list", views.len());
    Ok(json(
        StatusCode::OK,
        &Page {
            items: &views,
            next_cursor: next_cursor.as_deref(),
        },
    ))
}

/// The query function refuses to start without its key; a handler built without one answers 500.
fn cursor_keys(config: &Config) -> Result<&CursorKeys, ApiError> {
    config.cursor_keys().map_err(|e| {
        tracing::error!(error = %e, "no cursor key");
        ApiError::Internal
    })
}

fn decode_cursor(
    config: &Config,
    who: &Identity,
    query_id: &str,
    text: &str,
) -> Result<CursorState, ApiError> {
    cursor::decode(
        cursor_keys(config)?,
        &who.partner,
        query_id,
        text,
        Utc::now(),
    )
    .map_err(|e| {
        ApiError::bad_request(
            ErrorCode::InvalidCursor,
            match e {
                CursorError::WrongQuery => "the cursor belongs to a different query; repeat the \
                                            parameters of the first page"
                    .to_owned(),
                other => other.to_string(),
            },
        )
    })
}

/// How much one list request may return and read.
#[derive(Clone, Copy, Debug)]
pub struct ReadBound {
    /// Items on the page at most.
    pub limit: usize,
    /// Storage reads at most (`Config::list_max_reads`).
    pub max_reads: usize,
}

/// Reads storage pages after `after` until the page holds `limit` items, would pass the byte
/// budget, the period ends, or `max_reads` reads were made. Returns the items and where the next
/// page starts (`None`: the period is exhausted). A sparse filter can thus answer with fewer
/// items than `limit`, even none, and a position to go on from.
pub async fn collect_page<R: ActivityReader>(
    reader: &R,
    who: &Identity,
    query: &ActivityQuery,
    mut after: Option<PageKey>,
    bound: ReadBound,
) -> Result<(Vec<Activity>, Option<PageKey>), ApiError> {
    let ReadBound { limit, max_reads } = bound;
    let mut items: Vec<Activity> = Vec::new();
    let mut bytes = 0;
    let mut reads = 0;
    loop {
        let page = reader
            .query_page(&who.partner, query, after.as_ref(), limit - items.len())
            .await?;
        reads += 1;
        for a in page.items {
            bytes += ActivityView::estimated_bytes(&a);
            let over_budget = bytes > PAGE_BYTE_BUDGET && !items.is_empty();
            if items.len() == limit || over_budget {
                // Cut short inside a storage page: continue after the last item taken.
                return Ok((items, after));
            }
            after = Some(PageKey::of(&a));
            items.push(a);
        }
        match page.last_evaluated {
            None => return Ok((items, None)),
            Some(k) => {
                after = Some(k);
                if items.len() == limit || reads >= max_reads {
                    return Ok((items, after));
                }
            }
        }
    }
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
