//! Export jobs: what a reader asked to export and where the job stands.

use super::integrity::DataFile;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::ids::{IdError, PartnerId};
use super::query::{ActivityQuery, PageKey};

/// Id of an export job (a ULID, in capitals), unique within a tenant.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct ExportId(String);

impl ExportId {
    pub fn generate() -> Self {
        Self(ulid::Ulid::generate().to_string())
    }

    fn check(value: &str) -> Result<(), IdError> {
        if value.len() == 26 && value.bytes().all(|b| b.is_ascii_alphanumeric()) {
            Ok(())
        } else {
            Err(IdError::Charset("is not an export id"))
        }
    }
}

super::ids::string_id!(ExportId, |mut value: String| {
    value.make_ascii_uppercase();
    value
});

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    Csv,
    #[serde(rename = "jsonl")]
    JsonLines,
    /// OCSF API Activity events in Parquet files, one set per day (README, "Analytics").
    Parquet,
}

/// The language of a CSV export's header row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ExportLocale {
    #[default]
    #[serde(rename = "en")]
    English,
    #[serde(rename = "zh-TW")]
    TraditionalChinese,
}

super::names::serde_names!(ExportFormat, ExportStatus, ExportLocale);

impl ExportFormat {
    pub fn extension(self) -> &'static str {
        self.as_str()
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Csv => "text/csv; charset=utf-8",
            Self::JsonLines => "application/x-ndjson",
            Self::Parquet => "application/vnd.apache.parquet",
        }
    }

    /// Whether the export is a set of files (Parquet, partitioned by day) rather than one.
    pub fn is_dataset(self) -> bool {
        matches!(self, Self::Parquet)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportStatus {
    Pending,
    Running,
    Succeeded,
    Failed,
}

/// What to export: the same query as the read endpoints, a format, and the time zone and
/// language of the CSV.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportSpec {
    pub query: ActivityQuery,
    pub format: ExportFormat,
    pub time_zone: chrono_tz::Tz,
    pub locale: ExportLocale,
}

impl ExportSpec {
    /// Identifies the request within a tenant: equal for the same scope, resolved period,
    /// filters, format, time zone and language (SHA-256, hex). Identical requests share one job.
    pub fn request_key(&self) -> String {
        use sha2::Digest as _;
        let q = &self.query;
        let f = &q.filters;
        let parts = serde_json::json!([
            q.customer.as_ref().map(|c| c.as_str()),
            super::time::format(q.range.from),
            super::time::format(q.range.to),
            f.action,
            f.partner_user,
            f.resource_type,
            f.status.map(|s| s.as_str()),
            self.format.as_str(),
            self.time_zone.name(),
            self.locale.as_str(),
        ]);
        hex::encode(sha2::Sha256::digest(parts.to_string().as_bytes()))
    }
}

/// Where an unfinished export stands, saved with its job so that another invocation goes on
/// from there: the open multipart upload and its parts, the last activity written, and the
/// bytes encoded since the last part (kept in the bucket under `tail_key`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResumePoint {
    pub upload_id: String,
    /// The ETags of parts 1, 2, … in order.
    pub etags: Vec<String>,
    /// Bytes in those parts.
    pub uploaded_bytes: u64,
    /// Rows written to the parts and the tail.
    pub rows: u64,
    /// The last activity written (to a part or the tail); `None`: nothing read yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<PageKey>,
    /// Object holding what was encoded after the last part.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tail_key: Option<String>,
    /// SHA-256 (hex) of the tail's bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tail_sha256: Option<String>,
    /// Object holding the manifest's state (file hash, customers' sequences) at this point.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_state: Option<String>,
    /// SHA-256 (hex) of the manifest state's bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_state_sha256: Option<String>,
    /// The files finished so far, of an export that is a set of files (Parquet); none of them
    /// is open at a saved point.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<DataFile>,
    /// The service's signature of the point (`crate::export::resume`): a point without a
    /// valid one is not gone on from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ExportJob {
    pub id: ExportId,
    pub partner: PartnerId,
    pub spec: ExportSpec,
    pub status: ExportStatus,
    pub row_count: u64,
    pub bytes: u64,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
    /// How many times a worker has claimed the job.
    pub attempt: u32,
    /// Runs that failed (a transient error, or killed without saying so); at the cap the job
    /// fails. Continuations do not count.
    pub failures: u32,
    /// Invocations that stopped at their time budget and handed over to a new one.
    pub continuations: u32,
    /// Where the file stands, if a run has started it.
    pub resume: Option<ResumePoint>,
    /// Since when the job waits for a worker (creation, or the last hand-over).
    pub pending_since: DateTime<Utc>,
    /// Until when the current worker holds the job; a later claim may take it over.
    pub lease_until: Option<DateTime<Utc>>,
    /// Expiry of the job record, seconds since the epoch (DynamoDB TTL).
    pub expires_at: i64,
    /// The `sub` of the token that asked for the export (`None` on jobs stored before it was
    /// recorded). An identical request merged into this job keeps the first asker.
    pub requested_by: Option<String>,
}

impl ExportJob {
    /// A new job, waiting for a worker; its record is kept for `keep`.
    pub fn pending(
        partner: PartnerId,
        spec: ExportSpec,
        now: DateTime<Utc>,
        keep: chrono::TimeDelta,
    ) -> Self {
        Self {
            id: ExportId::generate(),
            partner,
            spec,
            status: ExportStatus::Pending,
            row_count: 0,
            bytes: 0,
            created_at: super::time::truncate_millis(now),
            completed_at: None,
            error: None,
            attempt: 0,
            failures: 0,
            continuations: 0,
            resume: None,
            pending_since: super::time::truncate_millis(now),
            lease_until: None,
            expires_at: (now + keep).timestamp(),
            requested_by: None,
        }
    }

    /// Whether a worker still has to finish it.
    pub fn is_active(&self) -> bool {
        matches!(self.status, ExportStatus::Pending | ExportStatus::Running)
    }

    /// Object key of what run `attempt` encoded after its last part, when it stopped at its time
    /// budget (one per run, so a late run never overwrites another's).
    pub fn tail_key(&self) -> String {
        format!("{}.tail-{}", self.object_key(), self.attempt)
    }

    /// Object key of the file's manifest, beside it.
    pub fn manifest_key(&self) -> String {
        format!("{}.manifest.json", self.object_key())
    }

    /// Object key of the manifest's state saved with the file's part `parts` and `rows` rows
    /// (a pause after a part saves another state than the part did: never at the same key).
    pub fn manifest_state_key(&self, parts: usize, rows: u64) -> String {
        format!("{}.manifest-state-{parts}-{rows}", self.object_key())
    }

    /// Where the files of an export that is a set of files (Parquet) are, under the tenant's
    /// prefix; each file's [`DataFile::path`] is under it.
    pub fn dataset_prefix(&self) -> String {
        format!("exports/{}/{}/", self.partner, self.id)
    }

    /// The path (under [`Self::dataset_prefix`]) of the `n`th file (from 1), which holds
    /// activities of `day` (UTC): partitioned as Athena and Amazon Security Lake read them.
    pub fn data_file_path(&self, region: &str, day: chrono::NaiveDate, n: usize) -> String {
        format!(
            "region={region}/accountId={}/eventDay={}/{}-{n:05}.{}",
            self.partner,
            day.format("%Y%m%d"),
            self.id,
            self.spec.format.extension()
        )
    }

    /// Object key of the file, under the tenant's prefix.
    pub fn object_key(&self) -> String {
        format!(
            "exports/{}/{}.{}",
            self.partner,
            self.id,
            self.spec.format.extension()
        )
    }

    /// `activity-log-<customer or all>-<from>-<to>.<ext>`, dates in the export's time zone.
    /// Returns an ASCII name and, when the customer id is not plain ASCII, a UTF-8 one.
    pub fn file_name(&self) -> (String, String) {
        let tz = self.spec.time_zone;
        let day = |t: DateTime<Utc>| t.with_timezone(&tz).format("%Y-%m-%d").to_string();
        let (from, to) = (
            day(self.spec.query.range.from),
            day(self.spec.query.range.to),
        );
        let ext = self.spec.format.extension();
        let who = self
            .spec
            .query
            .customer
            .as_ref()
            .map(|c| c.as_str())
            .unwrap_or("all");
        let ascii: String = who
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        (
            format!("activity-log-{ascii}-{from}-{to}.{ext}"),
            format!("activity-log-{who}-{from}-{to}.{ext}"),
        )
    }

    /// `Content-Disposition` for the download: attachment with the file name (RFC 6266/5987).
    pub fn content_disposition(&self) -> String {
        let (ascii, utf8) = self.file_name();
        // RFC 5987 attr-char: letters, digits and !#$&+-.^_`|~ stay as they are.
        const ATTR: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
            .remove(b'!')
            .remove(b'#')
            .remove(b'$')
            .remove(b'&')
            .remove(b'+')
            .remove(b'-')
            .remove(b'.')
            .remove(b'^')
            .remove(b'_')
            .remove(b'`')
            .remove(b'|')
            .remove(b'~');
        let encoded = percent_encoding::utf8_percent_encode(&utf8, ATTR);
        format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
    }
}

/// Largest export; past it the job fails with a clear error instead of a truncated file.
pub const MAX_EXPORT_ROWS: u64 = 10_000_000;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{CustomerId, DateRange, Filters, time::parse_timestamp};

    fn job(customer: Option<&str>, tz: chrono_tz::Tz) -> ExportJob {
        let spec = ExportSpec {
            query: ActivityQuery {
                customer: customer.map(|c| CustomerId::parse(c).unwrap()),
                range: DateRange {
                    from: parse_timestamp("2026-10-25T16:30:00Z").unwrap(),
                    to: parse_timestamp("2026-11-25T16:30:00Z").unwrap(),
                },
                filters: Filters::default(),
            },
            format: ExportFormat::Csv,
            time_zone: tz,
            locale: ExportLocale::English,
        };
        ExportJob::pending(
            PartnerId::parse("p1").unwrap(),
            spec,
            Utc::now(),
            chrono::TimeDelta::days(1),
        )
    }

    #[test]
    fn file_name_names_customer_and_period_in_the_export_zone() {
        let j = job(None, chrono_tz::Asia::Taipei);
        assert_eq!(
            j.file_name().0,
            "activity-log-all-2026-10-26-2026-11-26.csv"
        );
        assert_eq!(
            j.content_disposition(),
            "attachment; filename=\"activity-log-all-2026-10-26-2026-11-26.csv\"; \
             filename*=UTF-8''activity-log-all-2026-10-26-2026-11-26.csv"
        );
        assert!(j.object_key().starts_with("exports/p1/"));
    }

    #[test]
    fn non_ascii_customers_get_an_ascii_name_and_an_encoded_utf8_one() {
        let j = job(Some("台北 \"雲端\""), chrono_tz::Tz::UTC);
        let disposition = j.content_disposition();
        assert!(disposition.starts_with(
            "attachment; filename=\"activity-log-_______-2026-10-25-2026-11-25.csv\""
        ));
        assert!(disposition.contains("filename*=UTF-8''activity-log-%E5%8F%B0%E5%8C%97%20%22"));
        assert!(disposition.is_ascii());
    }
}
