//! `POST /exports` and `GET /exports/{exportId}`: asynchronous exports with presigned downloads.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use lambda_http::http::{StatusCode, header};
use lambda_http::{Body, Request, Response};
use serde::Serialize;

use crate::config::Config;
use crate::domain::integrity::Manifest;
use crate::domain::{
    ActivityQuery, CustomerId, DateRange, ExportFormat, ExportId, ExportJob, ExportLocale,
    ExportSpec, ExportStatus, Identity, Status, time,
};
use crate::http::params::{ExportRequest, ExportRoute, export_route};
use crate::http::response::json;
use crate::http::{ApiError, ErrorCode, edge, routes};
use crate::launch::ExportLauncher;
use crate::store::{Admission, ExportJobs, ExportObjects};

/// How long `POST /exports` waits for the worker invocation to be accepted. In AWS an `Event`
/// invocation is acknowledged in milliseconds; where it runs synchronously (local emulation) the
/// request answers anyway and the invocation goes on in the background.
pub const LAUNCH_ACK: Duration = Duration::from_secs(2);
/// A job still pending this long after creation (or its last hand-over) is launched again when
/// its status is read.
pub const STALE_PENDING: TimeDelta = TimeDelta::minutes(2);
/// Largest export request body.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// When a tenant at its export limit is told to try again (seconds): exports take from seconds
/// to minutes.
pub const FULL_RETRY_AFTER_SECS: u64 = 30;

/// The export routes through the edge, uncounted (in-process callers: the tests).
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
    edge::respond(config, routes::CREATE_EXPORT.permission, req, |who, req| {
        serve(config, jobs, objects, launcher, who, req)
    })
    .await
}

/// Answers a verified reader (`app::serve_api` puts it behind the whole edge).
pub async fn serve<J, O, L>(
    config: &Config,
    jobs: &J,
    objects: &O,
    launcher: &L,
    who: Identity,
    req: Request,
) -> Result<Response<Body>, ApiError>
where
    J: ExportJobs,
    O: ExportObjects,
    L: ExportLauncher + Clone + 'static,
{
    match export_route(&req)? {
        ExportRoute::Create => create(config, jobs, launcher, &who, &req).await,
        ExportRoute::Status(id) => status(config, jobs, objects, launcher, &who, &id).await,
    }
}

/// The export a request asks for, with the same defaults and rules as the query endpoints.
pub fn parse_spec(body: &[u8], now: DateTime<Utc>) -> Result<ExportSpec, ApiError> {
    let request = ExportRequest::from_body(body)?;
    let selection = &request.selection;
    let customer = selection.customer()?;
    let (from, to) = selection.bounds()?;
    let range = DateRange::resolve(from, to, now)
        .map_err(|e| ApiError::bad_request(ErrorCode::InvalidDateRange, e.to_string()))?;
    let format = request.format()?;
    let time_zone = request.time_zone()?;
    let locale = request.locale()?;
    Ok(ExportSpec {
        query: ActivityQuery {
            customer,
            range,
            filters: selection.filters()?,
        },
        format,
        time_zone,
        locale,
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
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError::TooLarge(format!(
            "an export request body is at most {} KiB",
            MAX_BODY_BYTES / 1024
        )));
    }
    let now = Utc::now();
    let spec = parse_spec(body, now)?;
    let job = ExportJob {
        requested_by: Some(who.subject.clone()),
        ..ExportJob::pending(
            who.partner.clone(),
            spec,
            now,
            TimeDelta::days(i64::from(config.exports.retention_days)),
        )
    };
    let job = match jobs.admit_job(&job, config.exports.max_active).await? {
        Admission::Created => {
            if let Err(e) = launch(launcher, &job).await {
                // The caller gets no id to come back to: the slot is not held for it. (Should
                // the job be read and relaunched after all, its end gives back no slot.)
                if let Err(release) = jobs.release_slot(&job).await {
                    tracing::warn!(error = %release, "could not give back the export slot");
                }
                return Err(e);
            }
            tracing::info!(export = %job.id, partner = %job.partner, subject = %who.subject, "export requested");
            // Where the invocation ran synchronously the job may already have moved on.
            jobs.get_job(&job.partner, &job.id).await?.unwrap_or(job)
        }
        Admission::Duplicate(existing) => {
            tracing::info!(export = %existing.id, "the same export is under way; answering with it");
            *existing
        }
        Admission::Full => {
            return Err(ApiError::Limited {
                code: ErrorCode::TooManyExports,
                message: format!(
                    "{} exports are pending or running, the most one partner may have at once; \
                     retry when one has finished",
                    config.exports.max_active
                ),
                retry_after: FULL_RETRY_AFTER_SECS,
            });
        }
    };
    let view = ExportView::new(&job, None);
    let mut response = json(StatusCode::ACCEPTED, &view);
    if let Ok(location) = view.links.this.parse() {
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

/// Whether a job's run looks lost: pending for too long, or running past its lease.
fn is_stale(job: &ExportJob, now: DateTime<Utc>) -> bool {
    match job.status {
        ExportStatus::Pending => now - job.pending_since > STALE_PENDING,
        // A run that died (timeout, crash) leaves its lease to run out.
        ExportStatus::Running => job.lease_until.is_some_and(|until| until < now),
        ExportStatus::Succeeded | ExportStatus::Failed => false,
    }
}

async fn status<J: ExportJobs, O: ExportObjects, L: ExportLauncher + Clone + 'static>(
    config: &Config,
    jobs: &J,
    objects: &O,
    launcher: &L,
    who: &Identity,
    id: &ExportId,
) -> Result<Response<Body>, ApiError> {
    let job = jobs
        .get_job(&who.partner, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no export {id}")))?;
    if is_stale(&job, Utc::now()) {
        // The invocation was lost, is still queued, or its run died: starting another is
        // harmless, only one run can claim the job.
        if let Err(e) = launch(launcher, &job).await {
            tracing::warn!(error = ?e, "relaunch of a stale export failed");
        }
    }
    let link = match job.status {
        ExportStatus::Succeeded => Some(download_link(config, objects, &job).await?),
        _ => None,
    };
    Ok(json(StatusCode::OK, &ExportView::new(&job, link)))
}

/// Presigned links to a finished export's file (or files) and manifest, and when they expire.
async fn download_link<O: ExportObjects>(
    config: &Config,
    objects: &O,
    job: &ExportJob,
) -> Result<DownloadLink, ApiError> {
    let ttl = config.exports.link_ttl;
    let content_type = job.spec.format.content_type();
    let (url, files) = if job.spec.format.is_dataset() {
        // The files are those the signed manifest lists.
        let manifest: Manifest = serde_json::from_slice(
            &objects.get_bytes(&job.manifest_key()).await?,
        )
        .map_err(|e| {
            tracing::error!(error = %e, "an export's manifest does not parse");
            ApiError::Internal
        })?;
        let prefix = job.dataset_prefix();
        let mut files = Vec::with_capacity(manifest.files.len());
        for f in manifest.files {
            let name = f.path.rsplit('/').next().unwrap_or(&f.path);
            let url = objects
                .presign_get(
                    &format!("{prefix}{}", f.path),
                    content_type,
                    &format!("attachment; filename=\"{name}\""),
                    ttl,
                )
                .await?;
            files.push(FileLink {
                path: f.path,
                rows: f.rows,
                bytes: f.bytes,
                sha256: f.sha256,
                download_url: url,
            });
        }
        (None, Some(files))
    } else {
        let url = objects
            .presign_get(
                &job.object_key(),
                content_type,
                &job.content_disposition(),
                ttl,
            )
            .await?;
        (Some(url), None)
    };
    let (ascii, _) = job.file_name();
    let manifest_url = objects
        .presign_get(
            &job.manifest_key(),
            "application/json",
            &format!("attachment; filename=\"{ascii}.manifest.json\""),
            ttl,
        )
        .await?;
    let lifetime = TimeDelta::from_std(ttl).map_err(|_| ApiError::Internal)?;
    Ok(DownloadLink {
        url,
        files,
        manifest_url,
        expires_at: time::truncate_millis(Utc::now() + lifetime),
    })
}

pub struct DownloadLink {
    /// The file, of an export that is one file.
    pub url: Option<String>,
    /// The files, of an export that is a set of files (Parquet), in the manifest's order.
    pub files: Option<Vec<FileLink>>,
    /// The file's signed manifest (README, "Tamper-evident log").
    pub manifest_url: String,
    pub expires_at: DateTime<Utc>,
}

/// One file of an export that is a set of files, and its link.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileLink {
    /// Its key under the export's prefix: `region=…/accountId=…/eventDay=YYYYMMDD/<name>`.
    pub path: String,
    pub rows: u64,
    pub bytes: u64,
    pub sha256: String,
    pub download_url: String,
}

/// An export job as the API returns it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportView<'a> {
    id: &'a ExportId,
    status: ExportStatus,
    format: ExportFormat,
    time_zone: &'static str,
    locale: ExportLocale,
    customer_id: Option<&'a CustomerId>,
    #[serde(with = "time::millis")]
    from: DateTime<Utc>,
    #[serde(with = "time::millis")]
    to: DateTime<Utc>,
    filters: FiltersView<'a>,
    row_count: u64,
    bytes: u64,
    #[serde(with = "time::millis")]
    created_at: DateTime<Utc>,
    #[serde(with = "time::millis::option")]
    completed_at: Option<DateTime<Utc>>,
    requested_by: Option<&'a str>,
    links: ExportLinks,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    download_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    files: Option<Vec<FileLink>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    manifest_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", with = "time::millis::option")]
    download_url_expires_at: Option<DateTime<Utc>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FiltersView<'a> {
    action: Option<&'a str>,
    partner_user: Option<&'a str>,
    resource_type: Option<&'a str>,
    status: Option<Status>,
}

#[derive(Serialize)]
struct ExportLinks {
    #[serde(rename = "self")]
    this: String,
}

impl<'a> ExportView<'a> {
    pub fn new(job: &'a ExportJob, link: Option<DownloadLink>) -> Self {
        let q = &job.spec.query;
        let (download_url, files, manifest_url, download_url_expires_at) = match link {
            Some(l) => (l.url, l.files, Some(l.manifest_url), Some(l.expires_at)),
            None => (None, None, None, None),
        };
        Self {
            id: &job.id,
            status: job.status,
            format: job.spec.format,
            time_zone: job.spec.time_zone.name(),
            locale: job.spec.locale,
            customer_id: q.customer.as_ref(),
            from: q.range.from,
            to: q.range.to,
            filters: FiltersView {
                action: q.filters.action.as_deref(),
                partner_user: q.filters.partner_user.as_deref(),
                resource_type: q.filters.resource_type.as_deref(),
                status: q.filters.status,
            },
            row_count: job.row_count,
            bytes: job.bytes,
            created_at: job.created_at,
            completed_at: job.completed_at,
            requested_by: job.requested_by.as_deref(),
            links: ExportLinks {
                this: format!("/exports/{}", job.id),
            },
            error: job.error.as_deref(),
            download_url,
            files,
            manifest_url,
            download_url_expires_at,
        }
    }
}
