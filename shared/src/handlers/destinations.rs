//! `GET/POST /destinations`, `GET/PATCH/DELETE /destinations/{destinationId}`: a partner's
//! admins manage where its feed is streamed. Every change is recorded, in the same write, as an
//! activity of the partner's own account ([`CustomerId::PARTNER_ACCOUNT`]).

use chrono::{DateTime, Utc};
use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Request, Response};
use serde::Serialize;
use serde_json::{Value, json};

use crate::config::Config;
use crate::domain::destination::{
    DEFAULT_AUTO_PAUSE_MINUTES, Destination, DestinationFields, DestinationId, HttpsFormat,
    MAX_DESTINATIONS, Pause, PausedBy, Problems, Rules, State, Target, new_signing_secret,
};
use crate::domain::{CustomerId, Identity, NewActivity, WriteRules, time};
use crate::http::params::{DestinationRoute, destination_route};
use crate::http::response::json as json_response;
use crate::http::{ApiError, ErrorCode, edge, routes};
use crate::store::{ChangeOutcome, DestinationChange, Destinations, FeedLog, Unchained};

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// Attempts of a change that meets a concurrent one (without `If-Match`).
const CHANGE_ATTEMPTS: usize = 3;
/// The resource type of the activities that record destination changes.
pub const RESOURCE_TYPE: &str = "Streaming destination";

/// Every destination route through the edge, uncounted (in-process callers: the tests).
pub async fn handle<S: Destinations + FeedLog>(
    config: &Config,
    store: &S,
    req: Request,
) -> Response<Body> {
    edge::respond(config, routes::DESTINATION.permission, req, |who, req| {
        serve(config, store, who, req)
    })
    .await
}

/// Answers a verified admin (`app::serve_api` puts it behind the whole edge).
pub async fn serve<S: Destinations + FeedLog>(
    config: &Config,
    store: &S,
    who: Identity,
    req: Request,
) -> Result<Response<Body>, ApiError> {
    let rules = Rules {
        allow_private_endpoints: config.allow_private_endpoints,
    };
    let ctx = Ctx {
        config,
        store,
        who: &who,
        rules,
        now: Utc::now(),
    };
    match destination_route(&req)? {
        DestinationRoute::List => ctx.list().await,
        DestinationRoute::Get(id) => {
            let d = ctx.existing(&id).await?;
            ctx.answer(StatusCode::OK, &d, None).await
        }
        DestinationRoute::Create => ctx.create(&req).await,
        DestinationRoute::Update(id) => ctx.update(&id, &req).await,
        DestinationRoute::Delete(id) => ctx.delete(&id, &req).await,
    }
}

struct Ctx<'a, S> {
    config: &'a Config,
    store: &'a S,
    who: &'a Identity,
    rules: Rules,
    now: DateTime<Utc>,
}

impl<S: Destinations + FeedLog> Ctx<'_, S> {
    async fn list(&self) -> Result<Response<Body>, ApiError> {
        let all = self.store.destinations(&self.who.partner).await?;
        let head = self.store.feed_head(&self.who.partner).await?;
        let mut items = Vec::with_capacity(all.len());
        for d in &all {
            items.push(self.view(d, head, None).await?);
        }
        Ok(json_response(
            StatusCode::OK,
            &json!({
                "items": items,
                "headPosition": head,
                "maxDestinations": MAX_DESTINATIONS,
            }),
        ))
    }

    async fn existing(&self, id: &DestinationId) -> Result<Destination, ApiError> {
        self.store
            .destination(&self.who.partner, id)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("no destination {id}")))
    }

    async fn create(&self, req: &Request) -> Result<Response<Body>, ApiError> {
        let f = parse_body(req)?;
        let mut p = Problems::default();
        for (field, present) in [
            ("paused", f.paused.is_some()),
            ("replayAfter", f.replay_after.is_some()),
            ("rotateSecret", f.rotate_secret.is_some()),
        ] {
            if present {
                p.0.push(field_error(field, "is for changing a destination (PATCH)"));
            }
        }
        let name = match &f.name {
            Some(n) => self.rules.name(&mut p, n),
            None => {
                p.0.push(field_error("name", "is required"));
                None
            }
        };
        let target = match f.kind {
            Some(kind) => self.rules.target(&mut p, kind, &f),
            None => {
                p.0.push(field_error("type", "is required: s3, https or eventBridge"));
                None
            }
        };
        let auto_pause = self.rules.auto_pause(
            &mut p,
            f.auto_pause_after_minutes
                .unwrap_or(DEFAULT_AUTO_PAUSE_MINUTES),
        );
        let head = self.store.feed_head(&self.who.partner).await?;
        let start_after = f.start_after.unwrap_or(head);
        if start_after > head {
            p.0.push(field_error(
                "startAfter",
                format!("must be at most the feed's head position, {head}"),
            ));
        }
        let (Some(name), Some(target), Some(auto_pause), true) =
            (name, target, auto_pause, p.0.is_empty())
        else {
            return Err(invalid(p));
        };
        let (secret, shown) = match (&target, f.token) {
            (
                Target::Https {
                    format: HttpsFormat::Webhook,
                    ..
                },
                _,
            ) => {
                let s = new_secret()?;
                (Some(s.clone()), Some(s))
            }
            (_, token) => (token, None),
        };
        let d = Destination {
            id: DestinationId::generate(),
            name,
            target,
            secret,
            paused: None,
            auto_pause_after_minutes: auto_pause,
            created_at: self.now,
            created_by: self.who.subject.clone(),
            updated_at: self.now,
            updated_by: self.who.subject.clone(),
            version: 1,
            delivered: start_after,
            last_delivered_at: None,
            failing: None,
        };
        let details = json!({
            "destinationId": d.id,
            "after": settings(&d),
            "startAfter": start_after,
        });
        let record = self.record("Create streaming destination", &d, details)?;
        match self
            .store
            .change_destination(
                &self.who.partner,
                &DestinationChange::Create(Box::new(d.clone())),
                &record,
            )
            .await?
        {
            ChangeOutcome::Done(_) => {}
            ChangeOutcome::Refused => {
                return Err(ApiError::State {
                    code: ErrorCode::TooManyDestinations,
                    message: format!(
                        "a partner may have at most {MAX_DESTINATIONS} destinations: delete one \
                         first"
                    ),
                });
            }
        }
        tracing::info!(partner = %self.who.partner, destination = %d.id, kind = %d.target.kind(), "destination created");
        let mut response = self
            .answer(StatusCode::CREATED, &d, shown.as_deref())
            .await?;
        if let Ok(location) = HeaderValue::from_str(&self_link(&d.id)) {
            response.headers_mut().insert(header::LOCATION, location);
        }
        Ok(response)
    }

    async fn update(&self, id: &DestinationId, req: &Request) -> Result<Response<Body>, ApiError> {
        let f = parse_body(req)?;
        let if_match = if_match(req)?;
        if f.start_after.is_some() {
            let mut p = Problems::default();
            p.0.push(field_error(
                "startAfter",
                "is for a new destination; replayAfter delivers again from a position",
            ));
            return Err(invalid(p));
        }
        for _ in 0..CHANGE_ATTEMPTS {
            let before = self.existing(id).await?;
            let head = self.store.feed_head(&self.who.partner).await?;
            // Bad input is refused as such, whatever the version.
            let change = self.changed(&before, &f, head)?;
            if let Some(expected) = if_match
                && expected != before.version
            {
                return Err(precondition(&before));
            }
            let Some(Change {
                after,
                action,
                changed,
                replay,
                shown,
            }) = change
            else {
                // Nothing to change: nothing is written or recorded.
                return self.answer(StatusCode::OK, &before, None).await;
            };
            let mut details = json!({
                "destinationId": id,
                "changed": changed,
                "before": settings(&before),
                "after": settings(&after),
            });
            if replay {
                details["deliveredBefore"] = json!(before.delivered);
                details["replayAfter"] = json!(after.delivered);
            }
            let record = self.record(action, &after, details)?;
            let outcome = self
                .store
                .change_destination(
                    &self.who.partner,
                    &DestinationChange::Update {
                        expected: before.version,
                        after: Box::new(after.clone()),
                        replay,
                    },
                    &record,
                )
                .await?;
            match outcome {
                ChangeOutcome::Done(_) => {
                    tracing::info!(partner = %self.who.partner, destination = %id, action, "destination changed");
                    // Delivery's progress as stored now (a replay moved it).
                    let now = self.existing(id).await?;
                    return self.answer(StatusCode::OK, &now, shown.as_deref()).await;
                }
                // Changed meanwhile: the caller's version is stale, or (without one) apply the
                // request to the new settings.
                ChangeOutcome::Refused if if_match.is_some() => {
                    return Err(precondition(&self.existing(id).await?));
                }
                ChangeOutcome::Refused => {}
            }
        }
        Err(ApiError::State {
            code: ErrorCode::VersionConflict,
            message: "the destination kept changing while this change was made; read it again \
                      and retry"
                .into(),
        })
    }

    async fn delete(&self, id: &DestinationId, req: &Request) -> Result<Response<Body>, ApiError> {
        if !req.body().as_ref().iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::bad_request(
                ErrorCode::InvalidBody,
                "a delete takes no body",
            ));
        }
        let if_match = if_match(req)?;
        for _ in 0..CHANGE_ATTEMPTS {
            let before = self.existing(id).await?;
            if let Some(expected) = if_match
                && expected != before.version
            {
                return Err(precondition(&before));
            }
            let details = json!({
                "destinationId": id,
                "before": settings(&before),
                "deliveredPosition": before.delivered,
            });
            let record = self.record("Delete streaming destination", &before, details)?;
            let change = DestinationChange::Delete {
                id: id.clone(),
                expected: before.version,
            };
            match self
                .store
                .change_destination(&self.who.partner, &change, &record)
                .await?
            {
                ChangeOutcome::Done(_) => {
                    tracing::info!(partner = %self.who.partner, destination = %id, "destination deleted");
                    return Ok(Response::builder()
                        .status(StatusCode::NO_CONTENT)
                        .body(Body::Empty)
                        .unwrap_or_default());
                }
                ChangeOutcome::Refused if if_match.is_some() => {
                    return Err(precondition(&self.existing(id).await?));
                }
                ChangeOutcome::Refused => {}
            }
        }
        Err(ApiError::State {
            code: ErrorCode::VersionConflict,
            message: "the destination kept changing while it was being deleted; retry".into(),
        })
    }

    /// What `f` changes in `before` (`None`: nothing), every field checked.
    fn changed(
        &self,
        before: &Destination,
        f: &DestinationFields,
        head: u64,
    ) -> Result<Option<Change>, ApiError> {
        let mut p = Problems::default();
        let mut after = before.clone();
        let mut changed: Vec<&str> = Vec::new();
        let mut shown = None;
        if let Some(n) = &f.name
            && let Some(n) = self.rules.name(&mut p, n)
            && n != before.name
        {
            after.name = n;
            changed.push("name");
        }
        if let Some(m) = f.auto_pause_after_minutes
            && let Some(m) = self.rules.auto_pause(&mut p, m)
            && m != before.auto_pause_after_minutes
        {
            after.auto_pause_after_minutes = m;
            changed.push("autoPauseAfterMinutes");
        }
        if let Some(target) = self.rules.updated_target(&mut p, &before.target, f)
            && target != before.target
        {
            after.target = target;
            changed.push("target");
        }
        // The secret follows the target: a HEC token as given, a webhook's made here.
        let was_webhook = is_webhook(&before.target);
        let now_webhook = is_webhook(&after.target);
        if let Some(token) = &f.token
            && !now_webhook
            && before.secret.as_ref() != Some(token)
        {
            after.secret = Some(token.clone());
            changed.push("token");
        }
        let rotate = f.rotate_secret == Some(true);
        if rotate && !now_webhook {
            p.0.push(field_error(
                "rotateSecret",
                "is only for webhooks (a HEC token is changed by giving a new token)",
            ));
        }
        if now_webhook && (rotate || !was_webhook) {
            let s = new_secret()?;
            after.secret = Some(s.clone());
            shown = Some(s);
            changed.push("signingSecret");
        } else if !now_webhook && was_webhook && f.token.is_none() {
            after.secret = None;
        }
        if let Some(pause) = f.paused {
            match (pause, &before.paused) {
                (true, None) => {
                    after.paused = Some(Pause {
                        by: PausedBy::Partner,
                        at: self.now,
                    });
                    changed.push("paused");
                }
                (false, Some(_)) => {
                    after.paused = None;
                    changed.push("paused");
                }
                _ => {}
            }
        }
        let mut replay = false;
        if let Some(position) = f.replay_after {
            if position > head {
                p.0.push(field_error(
                    "replayAfter",
                    format!("must be at most the feed's head position, {head}"),
                ));
            } else {
                after.delivered = position;
                after.failing = None;
                replay = true;
                changed.push("replayAfter");
            }
        }
        if !p.0.is_empty() {
            return Err(invalid(p));
        }
        if changed.is_empty() {
            return Ok(None);
        }
        after.version = before.version + 1;
        after.updated_at = self.now;
        after.updated_by = self.who.subject.clone();
        let action = match changed.as_slice() {
            ["paused"] if after.paused.is_some() => "Pause streaming destination",
            ["paused"] => "Resume streaming destination",
            ["replayAfter"] => "Replay streaming destination",
            ["signingSecret"] => "Rotate streaming destination secret",
            _ => "Update streaming destination",
        };
        Ok(Some(Change {
            after,
            action,
            changed: changed.into_iter().map(str::to_owned).collect(),
            replay,
            shown,
        }))
    }

    /// The activity that records a change to `d`, by the caller, in the partner's own account.
    fn record(&self, action: &str, d: &Destination, details: Value) -> Result<Unchained, ApiError> {
        Ok(change_record(
            self.config,
            &self.who.partner,
            &self.who.subject,
            action,
            d,
            details,
            self.now,
        )?)
    }

    /// `d` as the API shows it, with delivery's progress against the feed's head.
    async fn view(
        &self,
        d: &Destination,
        head: u64,
        secret: Option<&str>,
    ) -> Result<DestinationView, ApiError> {
        let lag_seconds = if d.delivered >= head {
            Some(0)
        } else {
            // The age of the oldest activity not delivered yet.
            let page = self
                .store
                .feed_page(&self.who.partner, d.delivered, head, 1)
                .await?;
            page.activities
                .first()
                .map(|a| (self.now - a.recorded_at).num_seconds().max(0))
        };
        Ok(DestinationView {
            id: d.id.to_string(),
            name: d.name.clone(),
            target: d.target.clone(),
            state: d.state(),
            paused: d.paused.as_ref().map(|p| PauseView {
                by: p.by,
                at: time::format(p.at),
            }),
            failing: d.failing.as_ref().map(|f| FailingView {
                since: time::format(f.since),
                last_error: f.last_error.clone(),
                last_error_at: time::format(f.last_error_at),
            }),
            auto_pause_after_minutes: d.auto_pause_after_minutes,
            delivered_position: d.delivered,
            head_position: head,
            lag_positions: head.saturating_sub(d.delivered),
            lag_seconds,
            last_delivered_at: d.last_delivered_at.map(time::format),
            secret_hint: d.secret_hint(),
            signing_secret: secret.map(str::to_owned),
            created_at: time::format(d.created_at),
            created_by: d.created_by.clone(),
            updated_at: time::format(d.updated_at),
            updated_by: d.updated_by.clone(),
            version: d.version,
            links: ViewLinks {
                this: self_link(&d.id),
            },
        })
    }

    /// `d` as the answer, with its version as the `ETag`.
    async fn answer(
        &self,
        status: StatusCode,
        d: &Destination,
        secret: Option<&str>,
    ) -> Result<Response<Body>, ApiError> {
        let head = self.store.feed_head(&self.who.partner).await?;
        let view = self.view(d, head, secret).await?;
        let mut response = json_response(status, &view);
        if let Ok(tag) = HeaderValue::from_str(&format!("\"{}\"", d.version)) {
            response.headers_mut().insert(header::ETAG, tag);
        }
        if secret.is_some() {
            // The secret is shown once: no cache may keep it.
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
        Ok(response)
    }
}

/// The activity that records a change to `d` by `by`, in `partner`'s own account: what the API's
/// changes and delivery's automatic pause write together with the change.
pub fn change_record(
    config: &Config,
    partner: &crate::domain::PartnerId,
    by: &str,
    action: &str,
    d: &Destination,
    details: Value,
    now: DateTime<Utc>,
) -> Result<Unchained, crate::store::StoreError> {
    let rules = WriteRules {
        now,
        retention_days: config.retention_days,
    };
    let new = NewActivity::by_service(
        CustomerId::partner_account(),
        CustomerId::PARTNER_ACCOUNT_NAME,
        action,
        by,
        now,
        Some(RESOURCE_TYPE),
        &json!({ "destination": d.name, "type": d.target.kind(), "change": details }),
    );
    let activity = super::record::to_record(partner, &new, rules, config, by);
    // Details of a change are a few hundred bytes: always kept in the table item.
    let activity = crate::domain::Activity {
        details: crate::domain::Details::Inline(new.details.clone().unwrap_or_default()),
        ..activity
    };
    Unchained::new(partner, activity, None)
}

/// A change `changed` found.
struct Change {
    after: Destination,
    action: &'static str,
    changed: Vec<String>,
    replay: bool,
    /// A new signing secret, shown once in the answer.
    shown: Option<String>,
}

/// A destination as the API shows it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DestinationView {
    id: String,
    name: String,
    /// `type` and the settings of that type, named as a create request names them.
    #[serde(flatten)]
    target: Target,
    state: State,
    paused: Option<PauseView>,
    failing: Option<FailingView>,
    auto_pause_after_minutes: u32,
    delivered_position: u64,
    head_position: u64,
    lag_positions: u64,
    /// How long the oldest activity not yet delivered has waited (`null`: it is gone from the
    /// feed).
    lag_seconds: Option<i64>,
    last_delivered_at: Option<String>,
    /// The last four characters of the signing secret or HEC token.
    secret_hint: Option<String>,
    /// A webhook's signing secret: only in the answer that made it.
    #[serde(skip_serializing_if = "Option::is_none")]
    signing_secret: Option<String>,
    created_at: String,
    created_by: String,
    updated_at: String,
    updated_by: String,
    version: u64,
    links: ViewLinks,
}

#[derive(Serialize)]
struct PauseView {
    by: PausedBy,
    at: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FailingView {
    since: String,
    last_error: String,
    last_error_at: String,
}

#[derive(Serialize)]
struct ViewLinks {
    #[serde(rename = "self")]
    this: String,
}

fn self_link(id: &DestinationId) -> String {
    format!("/destinations/{id}")
}

fn is_webhook(t: &Target) -> bool {
    matches!(
        t,
        Target::Https {
            format: HttpsFormat::Webhook,
            ..
        }
    )
}

/// A destination's settings for the record of a change: everything but its secret.
fn settings(d: &Destination) -> Value {
    json!({
        "name": d.name,
        "target": d.target,
        "paused": d.paused.is_some(),
        "autoPauseAfterMinutes": d.auto_pause_after_minutes,
    })
}

fn field_error(field: &str, message: impl Into<String>) -> crate::domain::FieldError {
    crate::domain::FieldError {
        field: field.to_owned(),
        message: message.into(),
    }
}

fn invalid(p: Problems) -> ApiError {
    let message = match p.0.as_slice() {
        [one] => format!("{} {}", one.field, one.message),
        many => format!(
            "{} problems, the first: {} {}",
            many.len(),
            many.first().map(|e| e.field.as_str()).unwrap_or_default(),
            many.first().map(|e| e.message.as_str()).unwrap_or_default()
        ),
    };
    ApiError::BadRequest {
        code: ErrorCode::ValidationFailed,
        message,
        fields: p.0,
    }
}

fn new_secret() -> Result<String, ApiError> {
    new_signing_secret().map_err(|e| {
        tracing::error!(error = %e, "no randomness for a signing secret");
        ApiError::Internal
    })
}

fn precondition(current: &Destination) -> ApiError {
    ApiError::PreconditionFailed(format!(
        "If-Match names another version: the destination is at version {}",
        current.version
    ))
}

/// The body of a create or update: a JSON object of known fields.
fn parse_body(req: &Request) -> Result<DestinationFields, ApiError> {
    let body: &[u8] = req.body().as_ref();
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError::TooLarge(format!(
            "a destination request body is at most {} KiB",
            MAX_BODY_BYTES / 1024
        )));
    }
    let invalid = |m: String| ApiError::bad_request(ErrorCode::InvalidBody, m);
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| invalid(format!("body is not valid JSON: {e}")))?;
    let Some(fields) = value.as_object() else {
        return Err(invalid("body must be a JSON object".into()));
    };
    if let Some((name, _)) = fields.iter().find(|(_, v)| v.is_null()) {
        return Err(invalid(format!(
            "{name} must not be null: leave out what does not change"
        )));
    }
    if fields.is_empty() {
        return Err(invalid("the body names nothing to set".into()));
    }
    serde_json::from_value(value).map_err(|e| invalid(format!("body: {e}")))
}

/// The version `If-Match` names (`"3"` or `3`), if given.
fn if_match(req: &Request) -> Result<Option<u64>, ApiError> {
    let Some(value) = req.headers().get(header::IF_MATCH) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .map(|v| v.trim().trim_start_matches("W/").trim_matches('"'))
        .and_then(|v| v.parse::<u64>().ok())
        .map(Some)
        .ok_or_else(|| {
            ApiError::bad_request(
                ErrorCode::InvalidParameter,
                "If-Match must be the ETag of a destination, such as \"3\"",
            )
        })
}

#[cfg(test)]
#[path = "destination_tests.rs"]
mod tests;
