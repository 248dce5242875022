//! `POST /activities`: record one activity or a batch, all or nothing, retry-safe.

use std::collections::HashMap;

use chrono::Utc;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde_json::value::RawValue;

use crate::config::Config;
use crate::domain::activity::{BatchError, MAX_BATCH, parse_batch};
use crate::domain::{
    Activity, ActivityId, CustomerId, Details, Identity, NewActivity, PartnerId, WriteRules,
};
use crate::http::response::{ActivityView, Links, json};
use crate::http::{ApiError, ErrorCode, edge, request_id, routes};
use crate::metrics;
use crate::store::{ActivityWriter, DetailsBlobs, InsertOutcome, Unchained, keys};

/// Largest request body accepted (Lambda's synchronous payload limit).
pub const MAX_BODY_BYTES: usize = 6 * 1024 * 1024;

/// `POST /activities` through the edge, uncounted (in-process callers: the tests).
pub async fn handle<W: ActivityWriter, B: DetailsBlobs>(
    config: &Config,
    writer: &W,
    blobs: &B,
    req: Request,
) -> Response<Body> {
    edge::respond(config, routes::RECORD.permission, req, |who, req| {
        serve(config, writer, blobs, who, req)
    })
    .await
}

/// Answers a verified writer (`app::serve_api` puts it behind the whole edge).
pub async fn serve<W: ActivityWriter, B: DetailsBlobs>(
    config: &Config,
    writer: &W,
    blobs: &B,
    who: Identity,
    req: Request,
) -> Result<Response<Body>, ApiError> {
    let rules = WriteRules {
        now: Utc::now(),
        retention_days: config.retention_days,
    };
    let batch = parse_body(req.body().as_ref(), rules)?;
    let records = batch
        .iter()
        .map(|new| {
            let a = to_record(&who.partner, new, rules, config, &who.subject);
            Unchained::new(&who.partner, a, new.details.as_deref())
        })
        .collect::<Result<Vec<_>, _>>()?;
    upload_external_details(blobs, &batch, &records).await?;
    let stored = insert_new(writer, &who.partner, records).await?;

    let links = Links::new(config.subscriptions_url_template.as_str());
    let raw: Vec<Option<Box<RawValue>>> = batch
        .iter()
        .map(|n| {
            n.details
                .as_ref()
                .and_then(|d| RawValue::from_string(d.clone()).ok())
        })
        .collect();
    let mut views = Vec::with_capacity(batch.len());
    for (new, details) in batch.iter().zip(&raw) {
        let Some(a) = stored.get(&(new.customer_id.clone(), new.id.clone())) else {
            return Err(ApiError::Internal);
        };
        views.push(ActivityView::new(a, details.as_deref(), &links));
    }
    tracing::info!(partner = %who.partner, count = views.len(), "activities recorded");
    metrics::emit(
        "recorded",
        &[(metrics::ACTIVITIES_RECORDED, views.len() as f64)],
        metrics::About {
            partner: Some(who.partner.as_str()),
            request_id: request_id(&req).as_deref(),
        },
    );
    Ok(json(StatusCode::CREATED, &Recorded { items: &views }))
}

/// The answer to a record request.
#[derive(serde::Serialize)]
struct Recorded<'a> {
    items: &'a [ActivityView<'a>],
}

/// Checks the body's size and parses it into a validated batch.
fn parse_body(body: &[u8], rules: WriteRules) -> Result<Vec<NewActivity>, ApiError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError::TooLarge(format!(
            "the body is {} bytes; the limit is {MAX_BODY_BYTES}",
            body.len()
        )));
    }
    let batch = parse_batch(body, rules).map_err(|e| match e {
        BatchError::Malformed(m) => ApiError::bad_request(ErrorCode::InvalidBody, m),
        BatchError::Invalid(fields) => ApiError::BadRequest {
            code: ErrorCode::ValidationFailed,
            message: match fields.as_slice() {
                [one] => format!("{} {}", one.field, one.message),
                many => format!(
                    "{} problems, the first: {} {}",
                    many.len(),
                    many[0].field,
                    many[0].message
                ),
            },
            fields,
        },
        BatchError::TooLarge(f) => ApiError::TooLarge(format!("{} {}", f.field, f.message)),
        BatchError::TooManyWrites(m) => ApiError::bad_request(ErrorCode::BatchTooLarge, m),
    })?;
    debug_assert!(batch.len() <= MAX_BATCH);
    Ok(batch)
}

/// Puts the details documents too large for a table item in the bucket, before any record
/// points to them. Nothing removes them: no function may delete details (IAM, template.yaml).
/// One that no record points to (the batch was refused after the upload) is content-addressed,
/// so a retry reuses it, and the bucket's lifecycle removes it after the retention period.
async fn upload_external_details<B: DetailsBlobs>(
    blobs: &B,
    batch: &[NewActivity],
    records: &[Unchained],
) -> Result<(), ApiError> {
    for (new, record) in batch.iter().zip(records) {
        if let (Details::External { key, .. }, Some(json)) =
            (&record.activity.details, &new.details)
        {
            // On failure, objects already uploaded stay: an identical concurrent request may
            // have stored records pointing to them (keys are content-addressed).
            blobs.put(key, json).await?;
        }
    }
    Ok(())
}

type Stored = HashMap<(CustomerId, ActivityId), Activity>;

/// Inserts what is new; a key that exists is a retry (same content: its stored record is the
/// answer) or a conflict (nothing of the batch is written).
async fn insert_new<W: ActivityWriter>(
    writer: &W,
    partner: &PartnerId,
    records: Vec<Unchained>,
) -> Result<Stored, ApiError> {
    let mut stored = Stored::new();
    let mut pending = records;
    // Each round stores the batch or settles at least one existing key.
    for _ in 0..=MAX_BATCH {
        if pending.is_empty() {
            return Ok(stored);
        }
        match writer.insert_all(partner, &pending).await? {
            InsertOutcome::Written(written) => {
                pending.clear();
                for a in written {
                    stored.insert((a.customer_id.clone(), a.id.clone()), a);
                }
            }
            InsertOutcome::Existing(existing) => {
                if let Some(clash) = existing.iter().find(|old| {
                    pending.iter().map(|u| &u.activity).any(|a| {
                        a.customer_id == old.customer_id
                            && a.id == old.id
                            && a.content_hash != old.content_hash
                    })
                }) {
                    return Err(ApiError::Conflict(format!(
                        "activity {} of customer {} already exists with different content",
                        clash.id, clash.customer_id
                    )));
                }
                for old in existing {
                    let Some(mine) = pending.iter().position(|u| {
                        u.activity.customer_id == old.customer_id && u.activity.id == old.id
                    }) else {
                        continue;
                    };
                    let a = pending.remove(mine).activity;
                    stored.insert((a.customer_id, a.id), old);
                }
            }
        }
    }
    if pending.is_empty() {
        Ok(stored)
    } else {
        Err(ApiError::Unavailable)
    }
}

pub(crate) fn to_record(
    partner: &PartnerId,
    new: &NewActivity,
    rules: WriteRules,
    config: &Config,
    recorded_by: &str,
) -> Activity {
    let details = match &new.details {
        None => Details::None,
        Some(json) if json.len() <= config.details_inline_max_bytes => {
            Details::Inline(json.clone())
        }
        Some(json) => Details::External {
            key: keys::details_object_key(partner, &new.customer_id, &new.id, &new.content_hash),
            size: json.len(),
        },
    };
    let recorded_at = crate::domain::time::truncate_millis(rules.now);
    Activity {
        feed_position: None,
        id: new.id.clone(),
        customer_id: new.customer_id.clone(),
        customer_name: new.customer_name.clone(),
        action: new.action.clone(),
        partner_user: new.partner_user.clone(),
        occurred_at: new.occurred_at,
        recorded_at,
        resource_type: new.resource_type.clone(),
        status: new.status,
        details,
        content_hash: new.content_hash.clone(),
        // Kept for the retention period after it was recorded, so activities expire in the
        // order of their chain (README, "Tamper-evident log").
        expires_at: rules.expires_at(recorded_at),
        recorded_by: Some(recorded_by.to_owned()),
        chain: None,
    }
}
