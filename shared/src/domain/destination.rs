//! Streaming destinations: where a partner's feed is delivered (its own S3 bucket, an HTTPS
//! endpoint, an EventBridge bus), what a partner may set on one, and the rules each field obeys.
//! No I/O: the handler parses requests into these types and the store keeps them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::activity::FieldError;
use super::ids::IdError;

/// The most destinations one partner may have.
pub const MAX_DESTINATIONS: usize = 3;
/// A destination's name: 1 to this many characters.
pub const MAX_NAME_CHARS: usize = 64;
/// How long a destination may keep failing before delivery pauses it, when the partner does not
/// say (minutes): a day.
pub const DEFAULT_AUTO_PAUSE_MINUTES: u32 = 24 * 60;
/// The shortest and longest failing period a partner may choose (minutes): 15 minutes to 7 days.
pub const AUTO_PAUSE_MINUTES: std::ops::RangeInclusive<u32> = 15..=7 * 24 * 60;
/// Longest HTTPS endpoint URL.
pub const MAX_URL_CHARS: usize = 2048;
/// Longest S3 key prefix.
pub const MAX_PREFIX_CHARS: usize = 256;

/// Id of a destination (a ULID, in capitals), unique within a tenant.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct DestinationId(String);

impl DestinationId {
    pub fn generate() -> Self {
        Self(ulid::Ulid::generate().to_string())
    }

    fn check(value: &str) -> Result<(), IdError> {
        if value.len() == 26 && value.bytes().all(|b| b.is_ascii_alphanumeric()) {
            Ok(())
        } else {
            Err(IdError::Charset("is not a destination id"))
        }
    }
}

super::ids::string_id!(DestinationId, |mut value: String| {
    value.make_ascii_uppercase();
    value
});

/// The kinds of destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Kind {
    S3,
    Https,
    EventBridge,
}

/// What an HTTPS destination receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum HttpsFormat {
    /// A JSON body `{"events": [...]}` signed with HMAC-SHA256 over `<timestamp>.<body>` in the
    /// `Activity-Log-Signature` header (`t=<unix seconds>,v1=<hex>`).
    #[default]
    Webhook,
    /// Splunk HTTP Event Collector: one `{"time", "source", "sourcetype", "event"}` object per
    /// activity, with `Authorization: Splunk <token>`.
    SplunkHec,
}

/// What an S3 destination's objects hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ObjectFormat {
    /// Gzipped JSON Lines, one event per line, under `<prefix>/YYYY/MM/DD/HH/`.
    #[default]
    Jsonl,
    /// Parquet of OCSF API Activity events (README "Analytics"), under
    /// `<prefix>/region=…/accountId=…/eventDay=YYYYMMDD/`, as Athena and Security Lake read them.
    Parquet,
}

super::names::serde_names!(Kind, HttpsFormat, ObjectFormat);

/// Where a destination delivers, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Target {
    /// Gzipped JSON Lines objects and their manifests in a bucket of the partner's account,
    /// written with a role of that account the service assumes.
    S3 {
        bucket: String,
        prefix: String,
        region: String,
        role_arn: String,
        external_id: String,
        /// Destinations made before objects had a choice hold JSON Lines.
        #[serde(default)]
        object_format: ObjectFormat,
    },
    Https {
        url: String,
        format: HttpsFormat,
    },
    /// An event bus of the partner's account, reached with a role of that account.
    EventBridge {
        event_bus_arn: String,
        role_arn: String,
        external_id: String,
    },
}

impl Target {
    pub fn kind(&self) -> Kind {
        match self {
            Self::S3 { .. } => Kind::S3,
            Self::Https { .. } => Kind::Https,
            Self::EventBridge { .. } => Kind::EventBridge,
        }
    }

    /// The role the service assumes to deliver, if the kind needs one.
    pub fn role_arn(&self) -> Option<&str> {
        match self {
            Self::S3 { role_arn, .. } | Self::EventBridge { role_arn, .. } => Some(role_arn),
            Self::Https { .. } => None,
        }
    }
}

/// Who paused a destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PausedBy {
    /// A partner's admin, through the API or the page.
    Partner,
    /// Delivery, after the destination kept failing for its configured period.
    Delivery,
}

super::names::serde_names!(PausedBy);

/// A pause: by whom and since when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pause {
    pub by: PausedBy,
    pub at: DateTime<Utc>,
}

/// A destination's delivery failing since `since`, with its last error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Failing {
    pub since: DateTime<Utc>,
    pub last_error: String,
    pub last_error_at: DateTime<Utc>,
}

/// A destination's state as the API shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum State {
    Active,
    Failing,
    Paused,
}

super::names::serde_names!(State);

/// A destination as stored: the partner's settings (changed only through the API, each change
/// under `version`) and delivery's progress (`delivered` and `failing`, changed only by delivery
/// and by a replay).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Destination {
    pub id: DestinationId,
    pub name: String,
    pub target: Target,
    /// The webhook signing secret, or the Splunk HEC token. Never shown again after the answer
    /// that created (or rotated) it.
    pub secret: Option<String>,
    pub paused: Option<Pause>,
    pub auto_pause_after_minutes: u32,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
    /// Moves on every settings change: the condition of the next one.
    pub version: u64,
    /// The last feed position the destination acknowledged (delivery's cursor).
    pub delivered: u64,
    pub last_delivered_at: Option<DateTime<Utc>>,
    pub failing: Option<Failing>,
}

impl Destination {
    pub fn state(&self) -> State {
        match (&self.paused, &self.failing) {
            (Some(_), _) => State::Paused,
            (None, Some(_)) => State::Failing,
            (None, None) => State::Active,
        }
    }

    /// The last four characters of the secret, to tell secrets apart without showing them.
    pub fn secret_hint(&self) -> Option<String> {
        self.secret.as_ref().map(|s| {
            let n = s.chars().count();
            s.chars().skip(n.saturating_sub(4)).collect()
        })
    }
}

/// A new signing secret for a webhook: `whsec_` and 32 random bytes in hex.
pub fn new_signing_secret() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(format!("whsec_{}", hex::encode(bytes)))
}

/// The fields a create or update request may carry, as given (each checked by [`Rules`]).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DestinationFields {
    #[serde(rename = "type")]
    pub kind: Option<Kind>,
    pub name: Option<String>,
    pub url: Option<String>,
    pub format: Option<HttpsFormat>,
    pub token: Option<String>,
    pub bucket: Option<String>,
    pub prefix: Option<String>,
    pub region: Option<String>,
    pub object_format: Option<ObjectFormat>,
    pub role_arn: Option<String>,
    pub external_id: Option<String>,
    pub event_bus_arn: Option<String>,
    #[serde(default, deserialize_with = "whole_number")]
    pub auto_pause_after_minutes: Option<u32>,
    /// Create only: deliver what comes after this feed position (default: the head, so only
    /// what is recorded from now on; `0`: everything the feed still holds).
    #[serde(default, deserialize_with = "whole_number")]
    pub start_after: Option<u64>,
    /// Update only: `true` pauses, `false` resumes from the cursor.
    pub paused: Option<bool>,
    /// Update only: deliver again everything after this feed position.
    #[serde(default, deserialize_with = "whole_number")]
    pub replay_after: Option<u64>,
    /// Update only: `true` replaces a webhook's signing secret (the answer shows the new one).
    pub rotate_secret: Option<bool>,
}

/// A whole number given as JSON writes it: `15` or `15.0` (JSON Schema's integers include both),
/// from 0 to 2^53 − 1 (what every JSON reader holds exactly) and within `T`.
fn whole_number<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<u64>,
{
    use serde::de::Error;
    let n = serde_json::Number::deserialize(d)?;
    let whole = match (n.as_u64(), n.as_f64()) {
        (Some(u), _) => Some(u),
        (None, Some(f))
            if f >= 0.0 && f.fract() == 0.0 && f <= super::feed::MAX_POSITION as f64 =>
        {
            Some(f as u64)
        }
        _ => None,
    };
    whole
        .filter(|u| *u <= super::feed::MAX_POSITION)
        .and_then(|u| T::try_from(u).ok())
        .map(Some)
        .ok_or_else(|| D::Error::custom(format!("{n} is not a whole number from 0 to 2^53 - 1")))
}

/// Where plain-HTTP endpoints and private addresses are allowed: only on a developer's machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rules {
    pub allow_private_endpoints: bool,
}

/// Collects the problems of one request, each naming its field.
#[derive(Debug, Default)]
pub struct Problems(pub Vec<FieldError>);

impl Problems {
    fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0.push(FieldError {
            field: field.to_owned(),
            message: message.into(),
        });
    }

    fn required<'a>(&mut self, field: &str, value: &'a Option<String>) -> Option<&'a str> {
        if value.is_none() {
            self.add(field, "is required");
        }
        value.as_deref()
    }

    fn forbidden(&mut self, field: &str, present: bool, why: &str) {
        if present {
            self.add(field, why);
        }
    }
}

impl Rules {
    /// The name, checked: 1 to 64 printable characters without surrounding whitespace.
    pub fn name(&self, p: &mut Problems, value: &str) -> Option<String> {
        let n = value.chars().count();
        if n == 0 || n > MAX_NAME_CHARS {
            p.add(
                "name",
                format!("must be 1 to {MAX_NAME_CHARS} characters long"),
            );
        } else if value.chars().any(char::is_control) {
            p.add("name", "must not contain control characters");
        } else if value.trim() != value {
            p.add("name", "must not start or end with whitespace");
        } else {
            return Some(value.to_owned());
        }
        None
    }

    pub fn auto_pause(&self, p: &mut Problems, minutes: u32) -> Option<u32> {
        if AUTO_PAUSE_MINUTES.contains(&minutes) {
            Some(minutes)
        } else {
            p.add(
                "autoPauseAfterMinutes",
                format!(
                    "must be from {} to {} (7 days)",
                    AUTO_PAUSE_MINUTES.start(),
                    AUTO_PAUSE_MINUTES.end()
                ),
            );
            None
        }
    }

    /// The target a create request describes (`kind` given), every field checked.
    pub fn target(&self, p: &mut Problems, kind: Kind, f: &DestinationFields) -> Option<Target> {
        self.checked_target(p, kind, f, true)
    }

    /// `needs_token`: a Splunk HEC target must come with its token (a new one, or one whose
    /// format changes).
    fn checked_target(
        &self,
        p: &mut Problems,
        kind: Kind,
        f: &DestinationFields,
        needs_token: bool,
    ) -> Option<Target> {
        let not_for = |k: Kind| format!("is not a field of a destination of type {k}");
        let https_only = [("url", f.url.is_some()), ("format", f.format.is_some())];
        let role_fields = [
            ("roleArn", f.role_arn.is_some()),
            ("externalId", f.external_id.is_some()),
        ];
        let s3_only = [
            ("bucket", f.bucket.is_some()),
            ("prefix", f.prefix.is_some()),
            ("region", f.region.is_some()),
            ("objectFormat", f.object_format.is_some()),
        ];
        let mut forbid = |fields: &[(&str, bool)]| {
            for (name, present) in fields {
                p.forbidden(name, *present, &not_for(kind));
            }
        };
        match kind {
            Kind::S3 => {
                forbid(&https_only);
                forbid(&[
                    ("token", f.token.is_some()),
                    ("eventBusArn", f.event_bus_arn.is_some()),
                ]);
            }
            Kind::Https => {
                forbid(&role_fields);
                forbid(&s3_only);
                forbid(&[("eventBusArn", f.event_bus_arn.is_some())]);
            }
            Kind::EventBridge => {
                forbid(&https_only);
                forbid(&s3_only);
                forbid(&[("token", f.token.is_some())]);
            }
        }
        match kind {
            Kind::S3 => {
                let bucket = p.required("bucket", &f.bucket).and_then(|b| bucket(p, b));
                let prefix = prefix(p, f.prefix.as_deref().unwrap_or(""));
                let region = p.required("region", &f.region).and_then(|r| region(p, r));
                let (role_arn, external_id) = self.role(p, f);
                Some(Target::S3 {
                    bucket: bucket?,
                    prefix: prefix?,
                    region: region?,
                    role_arn: role_arn?,
                    external_id: external_id?,
                    object_format: f.object_format.unwrap_or_default(),
                })
            }
            Kind::Https => {
                let url = p.required("url", &f.url).and_then(|u| self.url(p, u));
                let format = f.format.unwrap_or_default();
                self.token_for(p, format, f.token.as_deref(), needs_token);
                Some(Target::Https { url: url?, format })
            }
            Kind::EventBridge => {
                let bus = p
                    .required("eventBusArn", &f.event_bus_arn)
                    .and_then(|b| event_bus_arn(p, b));
                let (role_arn, external_id) = self.role(p, f);
                Some(Target::EventBridge {
                    event_bus_arn: bus?,
                    role_arn: role_arn?,
                    external_id: external_id?,
                })
            }
        }
    }

    /// `target` with an update's fields applied (the type cannot change), every field checked.
    pub fn updated_target(
        &self,
        p: &mut Problems,
        target: &Target,
        f: &DestinationFields,
    ) -> Option<Target> {
        if let Some(kind) = f.kind.filter(|k| *k != target.kind()) {
            p.add(
                "type",
                format!(
                    "cannot change from {} to {kind}: create a new destination",
                    target.kind()
                ),
            );
            return None;
        }
        // The current settings, overlaid with what the update gives, checked as a create would.
        let mut merged = DestinationFields {
            kind: Some(target.kind()),
            ..Default::default()
        };
        match target {
            Target::S3 {
                bucket,
                prefix,
                region,
                role_arn,
                external_id,
                object_format,
            } => {
                merged.object_format = f.object_format.or(Some(*object_format));
                merged.bucket = f.bucket.clone().or(Some(bucket.clone()));
                merged.prefix = f.prefix.clone().or(Some(prefix.clone()));
                merged.region = f.region.clone().or(Some(region.clone()));
                merged.role_arn = f.role_arn.clone().or(Some(role_arn.clone()));
                merged.external_id = f.external_id.clone().or(Some(external_id.clone()));
                merged.token = f.token.clone();
                merged.url = f.url.clone();
                merged.format = f.format;
                merged.event_bus_arn = f.event_bus_arn.clone();
            }
            Target::Https { url, format } => {
                merged.url = f.url.clone().or(Some(url.clone()));
                merged.format = f.format.or(Some(*format));
                merged.token = f.token.clone();
                merged.bucket = f.bucket.clone();
                merged.prefix = f.prefix.clone();
                merged.region = f.region.clone();
                merged.object_format = f.object_format;
                merged.role_arn = f.role_arn.clone();
                merged.external_id = f.external_id.clone();
                merged.event_bus_arn = f.event_bus_arn.clone();
            }
            Target::EventBridge {
                event_bus_arn,
                role_arn,
                external_id,
            } => {
                merged.event_bus_arn = f.event_bus_arn.clone().or(Some(event_bus_arn.clone()));
                merged.role_arn = f.role_arn.clone().or(Some(role_arn.clone()));
                merged.external_id = f.external_id.clone().or(Some(external_id.clone()));
                merged.url = f.url.clone();
                merged.format = f.format;
                merged.bucket = f.bucket.clone();
                merged.prefix = f.prefix.clone();
                merged.region = f.region.clone();
                merged.object_format = f.object_format;
                merged.token = f.token.clone();
            }
        }
        // A Splunk HEC target keeps its stored token unless the update gives one; one that
        // becomes a HEC target needs one.
        let needs_token = merged.format == Some(HttpsFormat::SplunkHec)
            && !matches!(
                target,
                Target::Https {
                    format: HttpsFormat::SplunkHec,
                    ..
                }
            );
        self.checked_target(p, target.kind(), &merged, needs_token)
    }

    /// Checks `token` against the format: a Splunk HEC destination needs one (`required`), a
    /// webhook never takes one (the service makes its signing secret).
    fn token_for(
        &self,
        p: &mut Problems,
        format: HttpsFormat,
        token: Option<&str>,
        required: bool,
    ) {
        match (format, token) {
            (HttpsFormat::Webhook, Some(_)) => p.add(
                "token",
                "is only for the splunkHec format: a webhook's signing secret is made by the \
                 service and shown once",
            ),
            (HttpsFormat::SplunkHec, None) if required => p.add(
                "token",
                "is required for the splunkHec format (the HEC token)",
            ),
            (HttpsFormat::SplunkHec, Some(t)) => {
                let n = t.chars().count();
                if !(1..=128).contains(&n)
                    || !t.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                {
                    p.add(
                        "token",
                        "must be a Splunk HEC token: 1 to 128 letters, digits and '-'",
                    );
                }
            }
            _ => {}
        }
    }

    fn role(&self, p: &mut Problems, f: &DestinationFields) -> (Option<String>, Option<String>) {
        let role = p
            .required("roleArn", &f.role_arn)
            .and_then(|r| role_arn(p, r));
        let external = p
            .required("externalId", &f.external_id)
            .and_then(|e| external_id(p, e));
        (role, external)
    }

    /// An HTTPS URL without credentials; on AWS neither a private nor a loopback address.
    pub fn url(&self, p: &mut Problems, value: &str) -> Option<String> {
        if value.chars().count() > MAX_URL_CHARS {
            p.add("url", format!("must be at most {MAX_URL_CHARS} characters"));
            return None;
        }
        let Ok(url) = url::Url::parse(value) else {
            p.add("url", "is not a URL");
            return None;
        };
        let scheme_ok =
            url.scheme() == "https" || (self.allow_private_endpoints && url.scheme() == "http");
        if !scheme_ok {
            p.add("url", "must be an https:// URL");
            return None;
        }
        if !url.username().is_empty() || url.password().is_some() {
            p.add(
                "url",
                "must not carry credentials (a webhook is signed; a HEC endpoint takes a token)",
            );
            return None;
        }
        if url.fragment().is_some() {
            p.add("url", "must not have a fragment");
            return None;
        }
        let private = match url.host() {
            None => {
                p.add("url", "must name a host");
                return None;
            }
            Some(url::Host::Domain(d)) => {
                let d = d.to_ascii_lowercase();
                d == "localhost" || d.ends_with(".localhost") || d.ends_with(".internal")
            }
            Some(url::Host::Ipv4(ip)) => is_internal_address(ip.into()),
            Some(url::Host::Ipv6(ip)) => is_internal_address(ip.into()),
        };
        if private && !self.allow_private_endpoints {
            p.add(
                "url",
                "must be reachable on the internet: private, loopback and link-local addresses \
                 are refused",
            );
            return None;
        }
        Some(url.to_string())
    }
}

/// Whether `ip` is not on the internet: private (RFC 1918, unique local), shared (RFC 6598),
/// loopback, link-local, unspecified, broadcast, or an IPv4-mapped IPv6 address (which may hide
/// any of them). Destinations' URLs are checked against it when set, and the names they hold
/// when resolved for each request (activity_log::sinks).
pub fn is_internal_address(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(ip) => {
            ip.is_private()
                || ip.is_loopback()
                || ip.is_link_local()
                || ip.is_unspecified()
                || ip.is_broadcast()
                || ip.octets()[0] == 100 && (64..128).contains(&ip.octets()[1])
        }
        std::net::IpAddr::V6(ip) => {
            ip.is_loopback()
                || ip.is_unspecified()
                || (ip.segments()[0] & 0xfe00) == 0xfc00
                || (ip.segments()[0] & 0xffc0) == 0xfe80
                || ip.to_ipv4_mapped().is_some()
        }
    }
}

/// An S3 bucket name (the general-purpose bucket rules).
fn bucket(p: &mut Problems, value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let shape = (3..=63).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-'))
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric);
    if !shape {
        p.add(
            "bucket",
            "must be an S3 bucket name: 3 to 63 lower-case letters, digits, '.' and '-', \
             beginning and ending with a letter or digit",
        );
        None
    } else if value.contains("..") || value.parse::<std::net::Ipv4Addr>().is_ok() {
        p.add(
            "bucket",
            "is not a bucket name S3 allows: it holds '..' or has the form of an IP address",
        );
        None
    } else {
        Some(value.to_owned())
    }
}

/// A key prefix: empty, or segments of printable characters joined by '/' (a trailing '/' is
/// dropped).
fn prefix(p: &mut Problems, value: &str) -> Option<String> {
    let trimmed = value.strip_suffix('/').unwrap_or(value);
    let problem = if value.chars().count() > MAX_PREFIX_CHARS {
        Some(format!("must be at most {MAX_PREFIX_CHARS} characters"))
    } else if value.chars().any(char::is_control) {
        Some("must not contain control characters".into())
    } else if !trimmed.is_empty()
        && trimmed
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
    {
        Some("must not begin with '/', hold '//', or have '.' or '..' segments".into())
    } else {
        None
    };
    match problem {
        Some(m) => {
            p.add("prefix", m);
            None
        }
        None => Some(trimmed.to_owned()),
    }
}

/// An AWS region name such as `eu-west-1` or `us-gov-west-1`.
fn region(p: &mut Problems, value: &str) -> Option<String> {
    let parts: Vec<&str> = value.split('-').collect();
    let ok = (3..=4).contains(&parts.len())
        && parts[0].len() == 2
        && parts.iter().all(|s| !s.is_empty())
        && parts[..parts.len() - 1]
            .iter()
            .all(|s| s.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].bytes().all(|b| b.is_ascii_digit());
    if ok {
        Some(value.to_owned())
    } else {
        p.add("region", "must be an AWS region name such as eu-west-1");
        None
    }
}

/// `arn:<partition>:<service>:<region>:<account>:<resource>` with a 12-digit account.
fn arn_parts(value: &str) -> Option<(&str, &str, &str, &str)> {
    let mut parts = value.splitn(6, ':');
    let (Some("arn"), Some(partition), Some(service), Some(region), Some(account), Some(res)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    let partition_ok = matches!(partition, "aws" | "aws-cn" | "aws-us-gov");
    let account_ok = account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
    (partition_ok && account_ok).then_some((service, region, account, res))
}

/// An IAM role ARN: `arn:aws:iam::<account>:role/<path/>name`.
fn role_arn(p: &mut Problems, value: &str) -> Option<String> {
    let ok = value.len() <= 2048
        && arn_parts(value).is_some_and(|(service, region, _, res)| {
            service == "iam"
                && region.is_empty()
                && res.strip_prefix("role/").is_some_and(|name| {
                    !name.is_empty()
                        && !name.ends_with('/')
                        && name
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-/".contains(&b))
                })
        });
    if ok {
        Some(value.to_owned())
    } else {
        p.add(
            "roleArn",
            "must be an IAM role ARN such as arn:aws:iam::123456789012:role/activity-log-delivery",
        );
        None
    }
}

/// An external id (STS AssumeRole's rules): 2 to 1224 of letters, digits and `+=,.@:/-_`.
fn external_id(p: &mut Problems, value: &str) -> Option<String> {
    let ok = (2..=1224).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@:/-_".contains(&b));
    if ok {
        Some(value.to_owned())
    } else {
        p.add(
            "externalId",
            "must be 2 to 1224 letters, digits and the characters + = , . @ : / - _",
        );
        None
    }
}

/// An EventBridge bus ARN: `arn:aws:events:<region>:<account>:event-bus/<name>`.
fn event_bus_arn(p: &mut Problems, value: &str) -> Option<String> {
    let ok = arn_parts(value).is_some_and(|(service, region, _, res)| {
        service == "events"
            && !region.is_empty()
            && res.strip_prefix("event-bus/").is_some_and(|name| {
                (1..=256).contains(&name.len())
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"/._-".contains(&b))
            })
    });
    if ok {
        Some(value.to_owned())
    } else {
        p.add(
            "eventBusArn",
            "must be an EventBridge bus ARN such as \
             arn:aws:events:eu-west-1:123456789012:event-bus/activity-log",
        );
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(json: serde_json::Value) -> DestinationFields {
        serde_json::from_value(json).unwrap()
    }

    fn check(json: serde_json::Value) -> Result<Target, Vec<String>> {
        let f = fields(json);
        let mut p = Problems::default();
        let t = Rules::default().target(&mut p, f.kind.unwrap(), &f);
        match (t, p.0.is_empty()) {
            (Some(t), true) => Ok(t),
            _ => Err(p.0.into_iter().map(|e| e.field).collect()),
        }
    }

    #[test]
    fn each_kind_takes_its_own_fields_and_refuses_the_others() {
        let s3 = check(serde_json::json!({
            "type": "s3", "bucket": "acme-audit", "prefix": "activity/", "region": "eu-west-1",
            "roleArn": "arn:aws:iam::123456789012:role/al/delivery", "externalId": "acme-42"
        }))
        .unwrap();
        assert!(matches!(&s3, Target::S3 { prefix, .. } if prefix == "activity"));
        let hec = check(serde_json::json!({
            "type": "https", "url": "https://hec.example.com:8088/services/collector/event",
            "format": "splunkHec", "token": "12345678-1234-1234-1234-123456789012"
        }))
        .unwrap();
        assert_eq!(hec.kind(), Kind::Https);
        check(serde_json::json!({
            "type": "eventBridge",
            "eventBusArn": "arn:aws:events:eu-west-1:123456789012:event-bus/audit",
            "roleArn": "arn:aws:iam::123456789012:role/put-events", "externalId": "x1"
        }))
        .unwrap();
        assert_eq!(
            check(serde_json::json!({"type": "https", "url": "https://a.example", "bucket": "b"})),
            Err(vec!["bucket".into()])
        );
        assert_eq!(
            check(serde_json::json!({"type": "s3"})),
            Err(vec![
                "bucket".to_string(),
                "region".into(),
                "roleArn".into(),
                "externalId".into()
            ])
        );
        assert_eq!(
            check(serde_json::json!({"type": "https", "url": "https://a.example", "token": "t"})),
            Err(vec!["token".into()])
        );
        assert_eq!(
            check(
                serde_json::json!({"type": "https", "url": "https://a.example", "format": "splunkHec"})
            ),
            Err(vec!["token".into()])
        );
    }

    #[test]
    fn positions_and_minutes_are_whole_numbers_however_json_writes_them() {
        let f = fields(serde_json::json!({"startAfter": 916570.0, "autoPauseAfterMinutes": 30}));
        assert_eq!(
            (f.start_after, f.auto_pause_after_minutes),
            (Some(916570), Some(30))
        );
        for bad in [
            serde_json::json!({"startAfter": 1.5}),
            serde_json::json!({"startAfter": -1}),
            serde_json::json!({"replayAfter": 9007199254740992_u64}),
            serde_json::json!({"autoPauseAfterMinutes": 4294967296_u64}),
            serde_json::json!({"startAfter": "5"}),
        ] {
            assert!(
                serde_json::from_value::<DestinationFields>(bad.clone()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn urls_must_be_public_https_without_credentials() {
        for bad in [
            "http://a.example/hook",
            "https://user:pw@a.example/",
            "https://127.0.0.1/",
            "https://169.254.169.254/latest/meta-data",
            "https://10.1.2.3/",
            "https://[::1]/",
            "https://localhost:8443/",
            "https://a.example/#x",
            "ftp://a.example/",
            "not a url",
        ] {
            assert_eq!(
                check(serde_json::json!({"type": "https", "url": bad})),
                Err(vec!["url".into()]),
                "{bad}"
            );
        }
        let mut p = Problems::default();
        let local = Rules {
            allow_private_endpoints: true,
        };
        assert!(local.url(&mut p, "http://127.0.0.1:9000/hook").is_some());
        assert!(p.0.is_empty());
    }

    #[test]
    fn names_arns_buckets_prefixes_and_regions_follow_aws_rules() {
        let mut p = Problems::default();
        assert!(bucket(&mut p, "ab").is_none());
        assert!(bucket(&mut p, "Upper").is_none());
        assert!(bucket(&mut p, "192.168.1.1").is_none());
        assert!(bucket(&mut p, "a..b").is_none());
        assert!(prefix(&mut p, "/lead").is_none());
        assert!(prefix(&mut p, "a//b").is_none());
        assert!(prefix(&mut p, "a/../b").is_none());
        assert!(region(&mut p, "eu_west_1").is_none());
        assert!(role_arn(&mut p, "arn:aws:iam::12345:role/x").is_none());
        assert!(role_arn(&mut p, "arn:aws:iam::123456789012:user/x").is_none());
        assert!(event_bus_arn(&mut p, "arn:aws:events::123456789012:event-bus/x").is_none());
        assert!(external_id(&mut p, "x").is_none());
        assert_eq!(p.0.len(), 12);
        let mut p = Problems::default();
        assert_eq!(prefix(&mut p, "").as_deref(), Some(""));
        assert_eq!(
            region(&mut p, "us-gov-west-1").as_deref(),
            Some("us-gov-west-1")
        );
        assert!(role_arn(&mut p, "arn:aws-cn:iam::123456789012:role/a/b").is_some());
        assert!(p.0.is_empty());
        let mut p = Problems::default();
        assert!(Rules::default().name(&mut p, " padded").is_none());
        assert!(Rules::default().name(&mut p, &"x".repeat(65)).is_none());
        assert!(Rules::default().auto_pause(&mut p, 14).is_none());
        assert_eq!(p.0.len(), 3);
    }

    #[test]
    fn an_update_keeps_the_type_and_checks_the_merged_settings() {
        let target = Target::Https {
            url: "https://a.example/hook".into(),
            format: HttpsFormat::Webhook,
        };
        let mut p = Problems::default();
        let rules = Rules::default();
        let changed = rules.updated_target(
            &mut p,
            &target,
            &fields(serde_json::json!({"url": "https://b.example/hook"})),
        );
        assert!(
            matches!(changed, Some(Target::Https { url, .. }) if url == "https://b.example/hook")
        );
        assert!(p.0.is_empty());
        for (update, field) in [
            (serde_json::json!({"type": "s3"}), "type"),
            (serde_json::json!({"bucket": "abc"}), "bucket"),
            (serde_json::json!({"token": "abc"}), "token"),
            (serde_json::json!({"url": "https://10.0.0.1/"}), "url"),
        ] {
            let mut p = Problems::default();
            let _ = rules.updated_target(&mut p, &target, &fields(update.clone()));
            assert_eq!(
                p.0.iter().map(|e| e.field.as_str()).collect::<Vec<_>>(),
                [field],
                "{update}"
            );
        }
    }

    #[test]
    fn state_follows_pause_then_failure_and_secrets_show_only_their_end() {
        let now = Utc::now();
        let mut d = Destination {
            id: DestinationId::generate(),
            name: "n".into(),
            target: Target::Https {
                url: "https://a.example".into(),
                format: HttpsFormat::Webhook,
            },
            secret: Some(new_signing_secret().unwrap()),
            paused: None,
            auto_pause_after_minutes: DEFAULT_AUTO_PAUSE_MINUTES,
            created_at: now,
            created_by: "u".into(),
            updated_at: now,
            updated_by: "u".into(),
            version: 1,
            delivered: 0,
            last_delivered_at: None,
            failing: None,
        };
        assert_eq!(d.state(), State::Active);
        let secret = d.secret.clone().unwrap();
        assert!(secret.starts_with("whsec_") && secret.len() == 6 + 64);
        assert_eq!(d.secret_hint().unwrap(), secret[secret.len() - 4..]);
        d.failing = Some(Failing {
            since: now,
            last_error: "HTTP 500".into(),
            last_error_at: now,
        });
        assert_eq!(d.state(), State::Failing);
        d.paused = Some(Pause {
            by: PausedBy::Delivery,
            at: now,
        });
        assert_eq!(d.state(), State::Paused);
        assert_ne!(new_signing_secret().unwrap(), secret);
    }
}
