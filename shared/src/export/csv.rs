//! Excel-compatible CSV: UTF-8 with BOM, CRLF, RFC 4180 quoting, formula injection neutralised.

use std::sync::{Arc, Mutex};

use chrono::{FixedOffset, Offset, SecondsFormat, Utc};
use chrono_tz::Tz;

use crate::domain::Activity;

pub const BOM: &[u8] = b"\xEF\xBB\xBF";
pub const HEADER: [&str; 9] = [
    "Date-Time",
    "Affected customer",
    "Action",
    "Partner user",
    "Customer ID",
    "Resource type",
    "Status",
    "Activity ID",
    "Details",
];

/// Prefixes a cell that a spreadsheet would read as a formula with `'` (OWASP CSV injection).
pub fn neutralise(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{cell}").into(),
        _ => cell.into(),
    }
}

/// The encoder's output: a buffer the writer appends to and the caller drains.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Output>>);

#[derive(Default)]
struct Output {
    buf: Vec<u8>,
    /// What a drained buffer is allocated with again when the next bytes come (0: grow).
    capacity: usize,
}

impl std::io::Write for Shared {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let mut out = self
            .0
            .lock()
            .map_err(|_| std::io::Error::other("poisoned buffer"))?;
        if out.buf.capacity() == 0 {
            let capacity = out.capacity;
            out.buf.reserve_exact(capacity);
        }
        out.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Encodes rows into an in-memory buffer that the caller drains part by part.
pub struct CsvEncoder {
    writer: csv::Writer<Shared>,
    out: Shared,
    time_zone: Tz,
}

impl CsvEncoder {
    /// Starts a file: BOM and header row.
    pub fn new(time_zone: Tz) -> Result<Self, csv::Error> {
        let out = Shared(Arc::new(Mutex::new(Output {
            buf: BOM.to_vec(),
            capacity: 0,
        })));
        let mut writer = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .quote_style(csv::QuoteStyle::Necessary)
            .from_writer(out.clone());
        writer.write_record(HEADER)?;
        Ok(Self {
            writer,
            out,
            time_zone,
        })
    }

    /// `details` is the activity's full details JSON, if any.
    pub fn row(&mut self, a: &Activity, details: Option<&str>) -> Result<(), csv::Error> {
        let local = a.occurred_at.with_timezone(&self.time_zone);
        let offset = local.offset().fix().local_minus_utc();
        let when = if offset % 60 == 0 {
            local.to_rfc3339_opts(SecondsFormat::Millis, true)
        } else {
            // RFC 3339 offsets are whole minutes and chrono would round the offset but keep the
            // local time (Africa/Monrovia was -00:44:30 until 1972): write the same instant at
            // the offset floored to the minute.
            let floored =
                FixedOffset::east_opt(offset - offset.rem_euclid(60)).unwrap_or_else(|| Utc.fix());
            a.occurred_at
                .with_timezone(&floored)
                .to_rfc3339_opts(SecondsFormat::Millis, true)
        };
        let cells = [
            when.as_str(),
            &a.customer_name,
            &a.action,
            &a.partner_user,
            a.customer_id.as_str(),
            a.resource_type.as_deref().unwrap_or(""),
            a.status.as_str(),
            a.id.as_str(),
            details.unwrap_or(""),
        ];
        self.writer
            .write_record(cells.iter().map(|c| neutralise(c).into_owned()))
    }

    /// Sizes each part's buffer once, at `bytes`, instead of growing it by doubling. The next
    /// buffer is only allocated when the next row comes, after the caller has handed the last
    /// one on: one part in memory at a time (BENCHMARKS.md, export memory).
    pub fn with_part_capacity(self, bytes: usize) -> Self {
        if let Ok(mut out) = self.out.0.lock() {
            out.capacity = bytes;
            let more = bytes.saturating_sub(out.buf.len());
            out.buf.reserve_exact(more);
        }
        self
    }

    /// Bytes encoded so far and not yet taken (give or take the writer's 8 KiB buffer).
    pub fn buffered(&self) -> usize {
        self.out.0.lock().map(|o| o.buf.len()).unwrap_or(0)
    }

    /// Takes the encoded bytes, leaving the encoder ready for more rows.
    pub fn take(&mut self) -> Result<Vec<u8>, std::io::Error> {
        self.writer.flush()?;
        let mut out = self
            .out
            .0
            .lock()
            .map_err(|_| std::io::Error::other("poisoned buffer"))?;
        Ok(std::mem::take(&mut out.buf))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ActivityId, CustomerId, Details, Status, time::parse_timestamp};

    fn activity(name: &str, user: &str) -> Activity {
        Activity {
            id: ActivityId::parse("a1").unwrap(),
            customer_id: CustomerId::parse("c1").unwrap(),
            customer_name: name.into(),
            action: "placed an order".into(),
            partner_user: user.into(),
            occurred_at: parse_timestamp("2026-11-25T01:02:03.456Z").unwrap(),
            recorded_at: parse_timestamp("2026-11-25T01:02:04Z").unwrap(),
            resource_type: None,
            status: Status::Succeeded,
            details: Details::None,
            content_hash: String::new(),
            expires_at: 0,
        }
    }

    fn encode(tz: Tz, rows: &[(Activity, Option<&str>)]) -> String {
        let mut e = CsvEncoder::new(tz).unwrap();
        for (a, d) in rows {
            e.row(a, *d).unwrap();
        }
        String::from_utf8(e.take().unwrap()).unwrap()
    }

    /// Found by the csv_cell fuzz target: an offset with seconds (Africa/Monrovia, -00:44:30
    /// until 1972) was rounded while the local time was kept, moving the instant by 30 s.
    #[test]
    fn offsets_with_seconds_keep_the_instant() {
        let mut a = activity("C", "u");
        a.occurred_at = parse_timestamp("1970-01-01T00:00:00Z").unwrap();
        let text = encode(chrono_tz::Africa::Monrovia, &[(a.clone(), None)]);
        let cell = text
            .split("\r\n")
            .nth(1)
            .unwrap()
            .split(',')
            .next()
            .unwrap();
        assert_eq!(
            chrono::DateTime::parse_from_rfc3339(cell).unwrap(),
            a.occurred_at
        );
    }

    #[test]
    fn bom_header_crlf_and_quoting() {
        let text = encode(
            Tz::UTC,
            &[(activity("Contoso, \"Ltd\"", "ann"), Some(r#"{"a":"b, c"}"#))],
        );
        assert!(text.starts_with('\u{feff}'));
        let lines: Vec<&str> = text.trim_start_matches('\u{feff}').split("\r\n").collect();
        assert_eq!(lines[0], HEADER.join(","));
        assert_eq!(
            lines[1],
            r#"2026-11-25T01:02:03.456Z,"Contoso, ""Ltd""",placed an order,ann,c1,,succeeded,a1,"{""a"":""b, c""}""#
        );
        assert_eq!(lines[2], "");
        assert!(!text.replace("\r\n", "").contains('\n'));
    }

    #[test]
    fn formula_cells_are_neutralised() {
        for bad in [
            "=HYPERLINK(\"http://x\")",
            "+1",
            "-1",
            "@SUM(A1)",
            "\tx",
            "\rx",
        ] {
            assert!(neutralise(bad).starts_with('\''), "{bad:?}");
        }
        assert_eq!(neutralise("Contoso"), "Contoso");
        let text = encode(Tz::UTC, &[(activity("=cmd|' /C calc'!A0", "@ann"), None)]);
        assert!(
            text.contains(",\"'=cmd|' /C calc'!A0\",") || text.contains(",'=cmd|' /C calc'!A0,"),
            "{text}"
        );
        assert!(text.contains(",'@ann,"));
    }

    #[test]
    fn times_carry_the_requested_zone_offset() {
        let text = encode(chrono_tz::Asia::Taipei, &[(activity("C", "u"), None)]);
        assert!(
            text.contains("\r\n2026-11-25T09:02:03.456+08:00,"),
            "{text}"
        );
    }

    #[test]
    fn chinese_names_survive_as_utf8() {
        let text = encode(
            Tz::UTC,
            &[(activity("台北雲端科技股份有限公司", "陳偉"), None)],
        );
        assert!(text.contains(",台北雲端科技股份有限公司,"));
    }
}
