//! API mode: a customer's whole retained chain, read through the API, against a checkpoint the
//! service signs on request.

use std::time::Duration;

use std::path::PathBuf;

use activity_log::domain::chain::{ChainRow, ChainSummary, Expiry, Finding, verify};
use activity_log::domain::integrity::{Checkpoint, HeldSummary, PublicKey, check_held};
use activity_log::domain::time;

use crate::anchors;
use chrono::{DateTime, TimeDelta, Utc};
use reqwest::{Client, Response, StatusCode, Url, header};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::{Error, Key, activities, held, read_error, segment};

/// How long activities are kept unless told otherwise (the service's `RETENTION_DAYS`).
/// The largest page the API serves.
const PAGE_LIMIT: &str = "1000";
/// Attempts of one request answered 429 or 503.
const MAX_TRIES: u32 = 5;
/// Longest wait for a Retry-After.
const MAX_WAIT: Duration = Duration::from_secs(30);
/// Longest a request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Where and what to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiOptions {
    /// The API's base URL (`http://127.0.0.1:9000`, or with a stage path).
    pub url: String,
    /// A bearer token with a reader role.
    pub token: String,
    pub customer: String,
    /// The service's public key (PEM) the auditor holds; `None`: the one the API names.
    pub public_key: Option<PathBuf>,
    /// Checkpoints signed earlier that the chain must extend (`--checkpoint`).
    pub held: Vec<PathBuf>,
    /// Where to write the checkpoint verified now, for the next check to hold.
    pub save_checkpoint: Option<PathBuf>,
    /// A copy of the anchor bucket (`--anchors`): the chain must extend every anchored head of
    /// the customer ([`crate::anchors`]).
    pub anchors: Option<PathBuf>,
}

impl ApiOptions {
    /// A check of `customer` through the API at `url`, with the API's key and no held
    /// checkpoints.
    pub fn new(url: &str, token: &str, customer: &str) -> Self {
        Self {
            url: url.to_owned(),
            token: token.to_owned(),
            customer: customer.to_owned(),
            public_key: None,
            held: Vec::new(),
            save_checkpoint: None,
            anchors: None,
        }
    }
}

/// Where the key that checked the signatures came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// A file the auditor holds (`--public-key`).
    Pinned(PathBuf),
    /// The API under test (`GET /integrity/public-key`): it proves the service signed, not
    /// that the key is the one deployed.
    Api,
}

/// What was verified of a customer's chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiReport {
    pub customer_id: String,
    /// The rows up to the checkpoint.
    pub summary: ChainSummary,
    pub checkpoint: Checkpoint,
    /// The key the checkpoint names.
    pub key_id: String,
    pub key_source: KeySource,
    /// Held checkpoints given (the anchored heads read included), and what they vouched for.
    pub held: usize,
    /// Anchored heads of the customer read from `--anchors` (`None`: not given).
    pub anchors: Option<usize>,
    pub held_summary: HeldSummary,
    /// Activities recorded after the checkpoint was signed: not checked.
    pub after_checkpoint: u64,
    /// Activities whose details a page left out, read one by one.
    pub details_fetched: u64,
    pub pages: u64,
}

impl ApiReport {
    /// The customer's line, notes on what was skipped, and the `OK:` line.
    pub fn lines(&self) -> Vec<String> {
        let s = &self.summary;
        let cp = &self.checkpoint;
        let checkpoint = format!(
            "signed checkpoint at {} (issued {})",
            cp.sequence, cp.issued_at
        );
        let mut lines = Vec::new();
        if s.rows == 0 {
            lines.push(format!(
                "{}: no chained activities, {checkpoint} signature checked",
                self.customer_id
            ));
        } else {
            let mut line = format!(
                "{}: {}, sequences {}–{}, hashes and links checked",
                self.customer_id,
                activities(s.rows as u64),
                s.first,
                s.last
            );
            if s.first > 1 {
                line.push_str(&format!(
                    ", the chain starts at sequence {} (earlier activities expired)",
                    s.first
                ));
            }
            if s.expired > 0 {
                line.push_str(&format!(
                    ", {} expired {} skipped",
                    s.expired,
                    if s.expired == 1 {
                        "sequence"
                    } else {
                        "sequences"
                    }
                ));
            }
            let reach = if s.reaches_checkpoint {
                "matches"
            } else {
                "is after the last activity"
            };
            line.push_str(&format!(", {checkpoint} {reach}"));
            lines.push(line);
        }
        if self.after_checkpoint > 0 {
            lines.push(format!(
                "{} recorded after the checkpoint: not checked",
                activities(self.after_checkpoint)
            ));
        }
        if let Some(n) = self.anchors {
            lines.push(format!(
                "anchors: {} of the customer read from the copy of the anchor bucket (signatures and seals checked), held below",
                match n {
                    1 => "1 head".to_owned(),
                    n => format!("{n} heads"),
                }
            ));
        }
        lines.extend(held::line(self.held, &self.held_summary));
        lines.push(match &self.key_source {
            KeySource::Pinned(path) => format!("key: pinned ({})", path.display()),
            KeySource::Api => "key: as the API under test names it (GET /integrity/public-key); \
                give --public-key to check against the deployed key you hold"
                .to_owned(),
        });
        lines.push(format!(
            "OK: {} of customer {} verified against key {}",
            activities(s.rows as u64),
            self.customer_id,
            self.key_id
        ));
        lines
    }
}

/// A page of `GET /customers/{id}/activities`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Page {
    items: Vec<Map<String, Value>>,
    next_cursor: Option<String>,
}

/// The error body of every endpoint.
#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ErrorDetail {
    code: String,
    message: String,
    request_id: Option<String>,
}

struct Api {
    client: Client,
    base: String,
    token: String,
}

impl Api {
    fn new(opts: &ApiOptions) -> Result<Self, Error> {
        let base = opts.url.trim_end_matches('/').to_owned();
        let url = Url::parse(&base)
            .map_err(|e| Error::Usage(format!("--api {}: not a URL: {e}", opts.url)))?;
        match url.scheme() {
            // https: the system's trusted certificates (rustls with the platform verifier).
            "http" | "https" => {}
            other => {
                return Err(Error::Usage(format!(
                    "--api {}: {other} is not an HTTP URL",
                    opts.url
                )));
            }
        }
        let client = Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| Error::Usage(format!("cannot start an HTTP client: {e}")))?;
        Ok(Self {
            client,
            base,
            token: opts.token.clone(),
        })
    }

    /// `path` (starting with `/`) under the base URL.
    fn url(&self, path: &str) -> Result<Url, Error> {
        Url::parse(&format!("{}{path}", self.base))
            .map_err(|e| Error::Failed(format!("{}{path} is not a URL: {e}", self.base)))
    }

    /// GETs `url` as JSON, waiting out 429 and 503 as Retry-After says, and a connection that
    /// could not be made or was dropped before an answer (1, 2, 4, 8 s apart).
    async fn get<T: DeserializeOwned>(&self, url: Url) -> Result<T, Error> {
        let what = match url.query() {
            Some(_) => format!("GET {}?…", url.path()),
            None => format!("GET {}", url.path()),
        };
        let mut tries = 0;
        let response = loop {
            tries += 1;
            let sent = self
                .client
                .get(url.clone())
                .bearer_auth(&self.token)
                .header(header::ACCEPT, "application/json")
                .send()
                .await;
            let response = match sent {
                Ok(response) => response,
                // Nothing was answered: safe to ask again (a GET).
                Err(e) if (e.is_connect() || e.is_request()) && tries < MAX_TRIES => {
                    tokio::time::sleep(Duration::from_secs(1 << (tries - 1))).await;
                    continue;
                }
                Err(e) => return Err(Error::Failed(format!("{what}: {e}"))),
            };
            let status = response.status();
            let retry = matches!(
                status,
                StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
            );
            if !retry || tries >= MAX_TRIES {
                break response;
            }
            tokio::time::sleep(retry_after(&response)).await;
        };
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| Error::Failed(format!("{what}: HTTP {status}: {e}")))?;
        if !status.is_success() {
            return Err(Error::Failed(
                match serde_json::from_slice::<ErrorBody>(&body) {
                    Ok(ErrorBody { error: e }) => format!(
                        "{what}: HTTP {status}: {}: {}{}",
                        e.code,
                        e.message,
                        e.request_id
                            .map(|id| format!(" (request id {id})"))
                            .unwrap_or_default()
                    ),
                    Err(_) => format!("{what}: HTTP {status}"),
                },
            ));
        }
        serde_json::from_slice(&body)
            .map_err(|e| Error::Failed(format!("{what}: the answer cannot be read: {e}")))
    }
}

/// Retry-After in seconds (at most [`MAX_WAIT`]; 1 s when absent or not a number).
fn retry_after(response: &Response) -> Duration {
    response
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(Duration::from_secs(1), Duration::from_secs)
        .min(MAX_WAIT)
}

/// Checks a customer's chain through the API now (see [`verify_api_at`]).
pub async fn verify_api(opts: &ApiOptions) -> Result<ApiReport, Error> {
    verify_api_at(opts, Utc::now()).await
}

/// [`verify_api`] on a runtime of its own, for callers without one.
pub fn verify_api_blocking(opts: &ApiOptions) -> Result<ApiReport, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Usage(format!("cannot start a runtime: {e}")))?
        .block_on(verify_api(opts))
}

/// Reads the service's public key and a signed checkpoint of the customer, checks its signature,
/// pages through every retained activity of the customer (reading those whose details a page
/// leaves out one by one), and checks the chain up to the checkpoint: every hash, every link,
/// no gap but of expired activities (by the retention the checkpoint signs), and the signed head.
/// `now` is the expiry's clock.
pub async fn verify_api_at(opts: &ApiOptions, now: DateTime<Utc>) -> Result<ApiReport, Error> {
    let customer = opts.customer.as_str();
    let api = Api::new(opts)?;
    let held_files = held::read(&opts.held)?;
    let (key, key_source) = match &opts.public_key {
        Some(path) => (pinned_key(path)?, KeySource::Pinned(path.clone())),
        None => (api.public_key().await?.1, KeySource::Api),
    };
    let checkpoint = api.checkpoint(customer, &key).await?;
    let mut heads = held::heads(&held_files, &checkpoint.partner_id, customer, &key, true)?;
    let anchored = match &opts.anchors {
        Some(dir) => Some(anchors::heads(
            dir,
            &checkpoint.partner_id,
            customer,
            &checkpoint.key_id,
            &key,
        )?),
        None => None,
    };
    let anchored_count = anchored.as_ref().map(Vec::len);
    heads.extend(anchored.into_iter().flatten());
    let days = checkpoint.retention_days;
    let retention = days_of(days, i64::from(days))?;
    let period = retained_period(now, days)?;
    let mut read = api.retained_rows(customer, &period, &checkpoint).await?;
    let expiry = Some(Expiry { now, retention });
    let head = checkpoint.head();
    let summary =
        verify(&mut read.rows, Some(&head), expiry).map_err(|f| failed(customer, f.to_string()))?;
    let issued = checkpoint
        .issued()
        .map_err(|e| failed(customer, format!("the checkpoint: {e}")))?;
    let held_summary = check_held(&read.rows, &head, issued, &heads, expiry)
        .map_err(|f| failed(customer, f.to_string()))?;
    if let Some(path) = &opts.save_checkpoint {
        held::save(path, &checkpoint)?;
    }
    Ok(ApiReport {
        customer_id: customer.to_owned(),
        summary,
        key_id: checkpoint.key_id.clone(),
        checkpoint,
        key_source,
        held: heads.len(),
        anchors: anchored_count,
        held_summary,
        after_checkpoint: read.after_checkpoint,
        details_fetched: read.details_fetched,
        pages: read.pages,
    })
}

/// The key in a PEM file the auditor holds.
fn pinned_key(path: &std::path::Path) -> Result<Key, Error> {
    let pem = std::fs::read_to_string(path).map_err(|e| read_error(path, &e))?;
    Key::from_pem(&pem).map_err(|e| Error::Usage(format!("{}: {e}", path.display())))
}

/// A failure about the customer's chain.
fn failed(customer: &str, message: String) -> Error {
    Error::Failed(format!("{customer}: {message}"))
}

/// `n` days, computed from a retention of `days` days (which is too large if they overflow).
fn days_of(days: u32, n: i64) -> Result<TimeDelta, Error> {
    TimeDelta::try_days(n)
        .ok_or_else(|| Error::Failed(format!("the signed retention of {days} days is too large")))
}

/// The `from` and `to` of a listing that holds every retained activity. The period is by
/// occurredAt, which may be up to the retention before recordedAt: a retained activity occurred
/// at most twice the retention ago.
fn retained_period(now: DateTime<Utc>, days: u32) -> Result<(String, String), Error> {
    let from = now
        .checked_sub_signed(days_of(days, 2 * i64::from(days) + 1)?)
        .unwrap_or_else(time::earliest)
        .max(time::earliest());
    let to = (now + TimeDelta::minutes(10)).min(time::latest());
    Ok((time::format(from), time::format(to)))
}

/// The rows of a customer's chain up to a checkpoint, as the API lists them, and what was
/// skipped or read on the way.
struct Read {
    rows: Vec<ChainRow>,
    after_checkpoint: u64,
    details_fetched: u64,
    pages: u64,
}

impl Api {
    /// The key the service names, read.
    async fn public_key(&self) -> Result<(PublicKey, Key), Error> {
        let public: PublicKey = self.get(self.url("/integrity/public-key")?).await?;
        let key = Key::from_pem(&public.pem).map_err(|e| {
            Error::Failed(format!(
                "GET /integrity/public-key: the key cannot be read: {e}"
            ))
        })?;
        Ok((public, key))
    }

    /// A checkpoint of `customer`, signed by `key`.
    async fn checkpoint(&self, customer: &str, key: &Key) -> Result<Checkpoint, Error> {
        let path = format!("/customers/{}/checkpoint", segment(customer));
        let checkpoint: Checkpoint = self.get(self.url(&path)?).await?;
        if checkpoint.customer_id != customer {
            return Err(failed(
                customer,
                format!("the checkpoint is for customer {}", checkpoint.customer_id),
            ));
        }
        if !checkpoint.verify(key) {
            return Err(failed(
                customer,
                "checkpoint signature invalid: the checkpoint was altered or not signed by this key"
                    .into(),
            ));
        }
        Ok(checkpoint)
    }

    /// Every page of the customer's activities in `period`: rows after the checkpoint counted
    /// and set aside, the others read as chain rows (with their details); a row without a
    /// sequence is a finding (every activity is chained when recorded).
    async fn retained_rows(
        &self,
        customer: &str,
        (from, to): &(String, String),
        checkpoint: &Checkpoint,
    ) -> Result<Read, Error> {
        let list = format!("/customers/{}/activities", segment(customer));
        let mut read = Read {
            rows: Vec::new(),
            after_checkpoint: 0,
            details_fetched: 0,
            pages: 0,
        };
        let mut cursor: Option<String> = None;
        loop {
            let mut url = self.url(&list)?;
            {
                let mut query = url.query_pairs_mut();
                query
                    .append_pair("from", from)
                    .append_pair("to", to)
                    .append_pair("limit", PAGE_LIMIT);
                if let Some(c) = &cursor {
                    query.append_pair("cursor", c);
                }
            }
            let page: Page = self.get(url).await?;
            read.pages += 1;
            for item in page.items {
                match item.get("sequence") {
                    None | Some(Value::Null) => {
                        let id = item.get("id").and_then(Value::as_str).unwrap_or("?");
                        let stripped = Finding::Unchained { id: id.to_owned() };
                        return Err(failed(customer, stripped.to_string()));
                    }
                    Some(s) if s.as_u64().is_some_and(|s| s > checkpoint.sequence) => {
                        read.after_checkpoint += 1;
                    }
                    _ => {
                        let row = self
                            .chain_row(customer, item, checkpoint, &mut read)
                            .await?;
                        read.rows.push(row);
                    }
                }
            }
            match page.next_cursor {
                Some(next) if cursor.as_deref() == Some(next.as_str()) => {
                    return Err(failed(
                        customer,
                        format!("the API answered the cursor {next} with itself"),
                    ));
                }
                Some(next) => cursor = Some(next),
                None => return Ok(read),
            }
        }
    }

    /// A listed activity as a chain row, its details read through `links.self` when the page
    /// left them out.
    async fn chain_row(
        &self,
        customer: &str,
        mut item: Map<String, Value>,
        checkpoint: &Checkpoint,
        read: &mut Read,
    ) -> Result<ChainRow, Error> {
        let id = item
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or("(without an id)")
            .to_owned();
        if item.get("detailsIncluded") == Some(&Value::Bool(false)) {
            let path = item
                .get("links")
                .and_then(|l| l.get("self"))
                .and_then(Value::as_str)
                .filter(|p| p.starts_with('/'))
                .ok_or_else(|| {
                    failed(
                        customer,
                        format!("activity {id}: its details are left out and it has no links.self"),
                    )
                })?;
            item = self.get(self.url(path)?).await?;
            read.details_fetched += 1;
        }
        ChainRow::from_row(&checkpoint.partner_id, &item)
            .map_err(|e| failed(customer, format!("activity {id}: {e}")))
    }
}
