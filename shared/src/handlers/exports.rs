//! `POST /exports` and `GET /exports/{id}`: asynchronous exports with presigned downloads.

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use lambda_http::http::{Method, StatusCode, header};
use lambda_http::{Body, Request, Response};
use serde_json::{Map, Value, json};
use tracing::instrument;

use crate::config::Config;
use crate::domain::{
    ActivityQuery, CustomerId, DateRange, ExportFormat, ExportId, ExportJob, ExportSpec,
    ExportStatus, Identity, Permission, time,
};
use crate::http::params::ListParams;
use crate::http::response::json;
use crate::http::{ApiError, identity, request_id};
use crate::store::{ExportJobs, ExportLauncher, ExportObjects};

/// How long `POST /exports` waits for the worker invocation to be accepted. In AWS an `Event`
/// invocation is acknowledged in milliseconds; where it runs synchronously (local emulation) the
/// request answers anyway and the invocation goes on in the background.
pub const LAUNCH_ACK: Duration = Duration::from_secs(2);
/// A job still pending this long after creation is launched again when its status is read.
pub const STALE_PENDING: TimeDelta = TimeDelta::minutes(2);

/// The fields of an export request body.
pub const BODY_FIELDS: &[&str] = &[
    "customerId",
    "from",
    "to",
    "action",
    "partnerUser",
    "resourceType",
    "status",
    "format",
    "timeZone",
];

#[instrument(skip_all, fields(request_id = request_id(&req).unwrap_or_default()))]
pub async fn handle<J, O, L>(
    config: &Config,
    jobs: &J,
    objects: &O,
    launcher: &L,
    req: Request,
) -> Response<Body>
where
    J: ExportJobs,
    O: ExportObjects,
    L: ExportLauncher + Clone + 'static,
{
    let rid = request_id(&req);
    let result = async {
        let who = identity::authorize(&req, &config.auth, Permission::Read)?;
        let segments: Vec<&str> = req
            .uri()
            .path()
            .split('/')
            .filter(|s| !s.is_empty())
            .collect();
        match (req.method(), segments.as_slice()) {
            (&Method::POST, [.., "exports"]) => create(config, jobs, launcher, &who, &req).await,
            (&Method::GET, [.., "exports", id]) => {
                status(config, jobs, objects, launcher, &who, id).await
            }
            _ => Err(ApiError::NotFound("no such route".into())),
        }
    }
    .await;
    result.unwrap_or_else(|e| e.into_response(rid.as_deref()))
}

fn text_field(body: &Map<String, Value>, name: &str) -> Result<Option<String>, ApiError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::bad_request(
            "InvalidBody",
            format!("{name} must be a string"),
        )),
    }
}

/// Parses the body into an export spec, with the same defaults and rules as the query endpoints.
pub fn parse_spec(body: &[u8], now: chrono::DateTime<Utc>) -> Result<ExportSpec, ApiError> {
    let value: Value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Map::new())
    } else {
        serde_json::from_slice(body).map_err(|e| {
            ApiError::bad_request("InvalidBody", format!("body is not valid JSON: {e}"))
        })?
    };
    let Value::Object(body) = value else {
        return Err(ApiError::bad_request(
            "InvalidBody",
            "body must be a JSON object",
        ));
    };
    if let Some(unknown) = body.keys().find(|k| !BODY_FIELDS.contains(&k.as_str())) {
        return Err(ApiError::bad_request(
            "InvalidBody",
            format!("{unknown} is not a field of an export request"),
        ));
    }
    let params = ListParams {
        customer_id: text_field(&body, "customerId")?,
        from: text_field(&body, "from")?,
        to: text_field(&body, "to")?,
        action: text_field(&body, "action")?,
        partner_user: text_field(&body, "partnerUser")?,
        resource_type: text_field(&body, "resourceType")?,
        status: text_field(&body, "status")?,
        ..ListParams::default()
    };
    let customer = params
        .customer_id
        .as_deref()
        .map(|c| {
            CustomerId::parse(c)
                .map_err(|e| ApiError::bad_request("InvalidParameter", format!("customerId {e}")))
        })
        .transpose()?;
    let (from, to) = params.bounds()?;
    let range = DateRange::resolve(from, to, now)
        .map_err(|e| ApiError::bad_request("InvalidDateRange", e.to_string()))?;
    let format = match text_field(&body, "format")? {
        None => ExportFormat::Csv,
        Some(f) => ExportFormat::parse(&f).ok_or_else(|| {
            ApiError::bad_request("InvalidParameter", "format must be csv or jsonl")
        })?,
    };
    let time_zone = match text_field(&body, "timeZone")? {
        None => chrono_tz::Tz::UTC,
        Some(z) => z.parse().map_err(|_| {
            ApiError::bad_request(
                "InvalidParameter",
                "timeZone must be an IANA time zone name such as Asia/Taipei",
            )
        })?,
    };
    Ok(ExportSpec {
        query: ActivityQuery {
            customer,
            range,
            filters: params.filters()?,
        },
        format,
        time_zone,
    })
}

async fn create<J: ExportJobs, L: ExportLauncher + Clone + 'static>(
    config: &Config,
    jobs: &J,
    launcher: &L,
    who: &Identity,
    req: &Request,
) -> Result<Response<Body>, ApiError> {
    let body: &[u8] = req.body().as_ref();
    if body.len() > 64 * 1024 {
        return Err(ApiError::TooLarge(
            "an export request body is at most 64 KiB".into(),
        ));
    }
    let now = Utc::now();
    let spec = parse_spec(body, now)?;
    let job = ExportJob::pending(
        who.partner.clone(),
        spec,
        now,
        TimeDelta::days(i64::from(config.exports.retention_days)),
    );
    jobs.create_job(&job).await?;
    launch(launcher, &job).await?;
    // Where the invocation ran synchronously the job may already have moved on.
    let job = jobs.get_job(&job.partner, &job.id).await?.unwrap_or(job);
    tracing::info!(export = %job.id, partner = %job.partner, "export requested");
    let mut response = json(StatusCode::ACCEPTED, &view(&job, None));
    if let Ok(location) = format!("/exports/{}", job.id).parse() {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// Starts the worker, waiting at most `LAUNCH_ACK` for the invocation to be accepted.
async fn launch<L: ExportLauncher + Clone + 'static>(
    launcher: &L,
    job: &ExportJob,
) -> Result<(), ApiError> {
    let (launcher, partner, id) = (launcher.clone(), job.partner.clone(), job.id.clone());
    let task = tokio::spawn(async move { launcher.launch(&partner, &id).await });
    match tokio::time::timeout(LAUNCH_ACK, task).await {
        Ok(Ok(result)) => result.map_err(ApiError::from),
        Ok(Err(join)) => {
            tracing::error!(error = %join, "launch task failed");
            Err(ApiError::Internal)
        }
        Err(_) => {
            tracing::info!("worker invocation still running (synchronous invoke); answering now");
            Ok(())
        }
    }
}

async fn status<J: ExportJobs, O: ExportObjects, L: ExportLauncher + Clone + 'static>(
    config: &Config,
    jobs: &J,
    objects: &O,
    launcher: &L,
    who: &Identity,
    id: &str,
) -> Result<Response<Body>, ApiError> {
    let not_found = || ApiError::NotFound(format!("no export {id}"));
    let id = ExportId::parse(id).map_err(|_| not_found())?;
    let job = jobs
        .get_job(&who.partner, &id)
        .await?
        .ok_or_else(not_found)?;
    let now = Utc::now();
    let stale = match job.status {
        ExportStatus::Pending => now - job.created_at > STALE_PENDING,
        // A run that died (timeout, crash) leaves its lease to run out.
        ExportStatus::Running => job.lease_until.is_some_and(|until| until < now),
        _ => false,
    };
    if stale {
        // The invocation was lost, is still queued, or its run died: starting another is
        // harmless, only one run can claim the job.
        if let Err(e) = launch(launcher, &job).await {
            tracing::warn!(error = ?e, "relaunch of a stale export failed");
        }
    }
    let link = if job.status == ExportStatus::Succeeded {
        let ttl = Duration::from_secs(config.exports.link_ttl_secs.min(900));
        let url = objects
            .presign_get(
                &job.object_key(),
                job.spec.format.content_type(),
                &job.content_disposition(),
                ttl,
            )
            .await?;
        let expires = Utc::now() + TimeDelta::seconds(i64::try_from(ttl.as_secs()).unwrap_or(900));
        Some((url, time::format(time::truncate_millis(expires))))
    } else {
        None
    };
    Ok(json(StatusCode::OK, &view(&job, link)))
}

/// An export job as the API returns it; `link` is a download URL and its expiry.
pub fn view(job: &ExportJob, link: Option<(String, String)>) -> Value {
    let q = &job.spec.query;
    let mut v = json!({
        "id": job.id.as_str(),
        "status": job.status.as_str(),
        "format": job.spec.format.as_str(),
        "timeZone": job.spec.time_zone.name(),
        "customerId": q.customer.as_ref().map(CustomerId::as_str),
        "from": time::format(q.range.from),
        "to": time::format(q.range.to),
        "filters": {
            "action": q.filters.action,
            "partnerUser": q.filters.partner_user,
            "resourceType": q.filters.resource_type,
            "status": q.filters.status.map(|s| s.as_str()),
        },
        "rowCount": job.row_count,
        "bytes": job.bytes,
        "createdAt": time::format(job.created_at),
        "completedAt": job.completed_at.map(time::format),
        "links": {"self": format!("/exports/{}", job.id)},
    });
    if let Some(e) = &job.error {
        v["error"] = json!(e);
    }
    if let Some((url, expires)) = link {
        v["downloadUrl"] = json!(url);
        v["downloadUrlExpiresAt"] = json!(expires);
    }
    v
}
