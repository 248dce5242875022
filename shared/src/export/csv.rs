//! Excel-compatible CSV: UTF-8 with BOM, CRLF, every cell quoted, formula injection neutralised
//! for readers splitting on `,`, `;` or TAB (see [`neutralise`]).

use chrono::{
    DateTime, Datelike, FixedOffset, Offset, SecondsFormat, TimeDelta, TimeZone, Timelike, Utc,
};
use chrono_tz::Tz;

use super::buffer::SharedBuffer;
use crate::domain::{Activity, ExportLocale};

pub const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The header row in the export's language. The first four are the portal page's own column
/// names (in Traditional Chinese, the words of Partner Center's page); the last two are the
/// activity's place in its customer's chain (README, "Tamper-evident log").
pub fn header(locale: ExportLocale) -> [&'static str; 12] {
    match locale {
        ExportLocale::English => [
            "Date-Time",
            "Affected customer",
            "Action",
            "Partner user",
            "Customer ID",
            "Resource type",
            "Status",
            "Activity ID",
            "Details",
            "Recorded by",
            "Sequence",
            "Hash",
        ],
        ExportLocale::TraditionalChinese => [
            "日期 / 時間",
            "受影響客戶",
            "動作",
            "合作夥伴使用者",
            "客戶識別碼",
            "資源類型",
            "狀態",
            "活動識別碼",
            "詳細資料",
            "記錄者",
            "序號",
            "雜湊",
        ],
    }
}

/// The characters after which a spreadsheet may start a new cell (or row) in some locale: `,`
/// (English), `;` (German, French, … where `,` is the decimal separator), TAB (tab-separated
/// import), and CR and LF, where a reader that is out of step with the quoting (one splitting on
/// `;` reads our quotes differently) starts a new row.
fn is_separator(b: u8) -> bool {
    matches!(b, b',' | b';' | b'\t' | b'\r' | b'\n')
}

/// The first characters that make a spreadsheet read a cell as a formula (OWASP CSV injection):
/// `=`, `+`, `-`, `@`, and TAB and CR, which some readers skip before one of the others.
fn is_formula(b: u8) -> bool {
    matches!(b, b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r')
}

/// Whether `rest`, text at a cell start or right after a separator, gets a `'` before it: it
/// starts with a formula character or `'` (so that the rule can be undone), or with a `"` and
/// then a formula character (the doubled `""` a quote is written as opens and closes a quoted
/// field in a reader splitting on `;` or TAB, which then reads the formula character as the
/// cell's first).
fn guarded(rest: &[u8]) -> bool {
    match rest {
        [b, ..] if is_formula(*b) || *b == b'\'' => true,
        [b'"', b, ..] => is_formula(*b),
        _ => false,
    }
}

/// Where the text of a cell can become the start of a spreadsheet cell: its start and right after
/// each separator. Every separator and trigger is ASCII, so these are `char` boundaries.
fn starts(cell: &str) -> impl Iterator<Item = usize> + '_ {
    std::iter::once(0).chain(
        cell.bytes()
            .enumerate()
            .filter(|&(_, b)| is_separator(b))
            .map(|(i, _)| i + 1),
    )
}

/// The formula rule, for every spreadsheet locale: a `'` is put at the start of the cell and
/// right after every `,` `;` TAB CR or LF where the text goes on with `=` `+` `-` `@` TAB CR `'`,
/// or with `"` and then one of `=` `+` `-` `@` TAB CR.
///
/// Prefixing only a cell's first character is not enough: Excel and LibreOffice in a German or
/// French locale split CSV lines on `;`, some users import with TAB, and a quote-aware reader
/// splitting on `;` reads a quoted cell and the `,` after it as one literal text up to the next
/// `;`. So `Contoso;=HYPERLINK(…)` would give them a second cell `=HYPERLINK(…)`; it is written
/// `Contoso;'=HYPERLINK(…)`. After splitting on `,` `;` or TAB (and dropping one opening quote) no
/// piece of a cell starts with a formula character, and whatever a spreadsheet shows starts with
/// `'` where the text had a formula. `'` itself counts as a trigger so that [`restore`] gives the
/// original text back exactly: `restore(&neutralise(x)) == x` for every `x`.
pub fn neutralise(cell: &str) -> std::borrow::Cow<'_, str> {
    let bytes = cell.as_bytes();
    // Most cells have no separator and no trigger at the start: one pass (without an early
    // exit, so it is vectorised) tells.
    if !guarded(bytes) && !bytes.iter().fold(false, |any, &b| any | is_separator(b)) {
        return cell.into();
    }
    let mut out: Option<String> = None;
    let mut copied = 0;
    for start in starts(cell) {
        if guarded(&bytes[start..]) {
            let out = out.get_or_insert_with(|| String::with_capacity(cell.len() + 8));
            out.push_str(&cell[copied..start]);
            out.push('\'');
            copied = start;
        }
    }
    match out {
        None => cell.into(),
        Some(mut out) => {
            out.push_str(&cell[copied..]);
            out.into()
        }
    }
}

/// The original text of a cell written by [`neutralise`]: one `'` is removed at the start of the
/// cell and right after every `,` `;` TAB CR or LF where it is followed by `=` `+` `-` `@` TAB CR
/// `'`, or by `"` and then one of `=` `+` `-` `@` TAB CR.
pub fn restore(cell: &str) -> String {
    let bytes = cell.as_bytes();
    let mut out = String::with_capacity(cell.len());
    let mut copied = 0;
    for start in starts(cell) {
        if bytes.get(start) == Some(&b'\'') && guarded(&bytes[start + 1..]) {
            out.push_str(&cell[copied..start]);
            copied = start + 1;
        }
    }
    out.push_str(&cell[copied..]);
    out
}

/// `at` in `zone` as RFC 3339 with milliseconds (`Z` for a zero offset), written into `out`.
///
/// RFC 3339 offsets are whole minutes, and chrono would round an offset with seconds but keep
/// the local time (Africa/Monrovia was -00:44:30 until 1972), moving the instant: the offset is
/// floored to the minute and the local time is the instant at that offset. Years 0–9999 are
/// written here, digit by digit, as chrono writes them (a unit test compares the two); others
/// and leap seconds by chrono itself.
fn local_time(at: DateTime<Utc>, zone: Tz, out: &mut Vec<u8>) -> &[u8] {
    let offset = zone.offset_from_utc_datetime(&at.naive_utc()).fix();
    let seconds = offset.local_minus_utc();
    let floored = seconds - seconds.rem_euclid(60);
    let offset = FixedOffset::east_opt(floored).unwrap_or_else(|| Utc.fix());
    let local = at.naive_utc() + TimeDelta::seconds(i64::from(floored));
    out.clear();
    let (year, nanos) = (local.year(), at.nanosecond());
    if !(0..=9999).contains(&year) || nanos >= 1_000_000_000 {
        let text = at
            .with_timezone(&offset)
            .to_rfc3339_opts(SecondsFormat::Millis, true);
        out.extend_from_slice(text.as_bytes());
        return out;
    }
    let digits = |out: &mut Vec<u8>, n: u32, width: u32| {
        for place in (0..width).rev() {
            out.push(b'0' + (n / 10u32.pow(place) % 10) as u8);
        }
    };
    // Each field with its width and the character after it.
    let fields = [
        (year.unsigned_abs(), 4, b'-'),
        (local.month(), 2, b'-'),
        (local.day(), 2, b'T'),
        (local.hour(), 2, b':'),
        (local.minute(), 2, b':'),
        (local.second(), 2, b'.'),
    ];
    for (n, width, then) in fields {
        digits(out, n, width);
        out.push(then);
    }
    digits(out, nanos / 1_000_000, 3);
    if floored == 0 {
        out.push(b'Z');
    } else {
        out.push(if floored < 0 { b'-' } else { b'+' });
        let minutes = floored.unsigned_abs() / 60;
        digits(out, minutes / 60, 2);
        out.push(b':');
        digits(out, minutes % 60, 2);
    }
    out
}

/// Encodes rows into an in-memory buffer that the caller drains part by part.
pub struct CsvEncoder {
    writer: csv::Writer<SharedBuffer>,
    out: SharedBuffer,
    time_zone: Tz,
    /// The row's time, written again for each row.
    when: Vec<u8>,
}

impl CsvEncoder {
    /// Starts a file: BOM and header row.
    pub fn new(time_zone: Tz, locale: ExportLocale) -> Result<Self, csv::Error> {
        let out = SharedBuffer::starting_with(BOM.to_vec());
        let mut writer = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .quote_style(csv::QuoteStyle::Always)
            .from_writer(out.clone());
        writer.write_record(header(locale))?;
        Ok(Self {
            writer,
            out,
            time_zone,
            when: Vec::with_capacity(32),
        })
    }

    /// `details` is the activity's full details JSON, if any.
    pub fn row(&mut self, a: &Activity, details: Option<&str>) -> Result<(), csv::Error> {
        let when = local_time(a.occurred_at, self.time_zone, &mut self.when);
        let mut sequence = itoa::Buffer::new();
        let sequence = a.chain.as_ref().map_or("", |l| sequence.format(l.sequence));
        // The time, the status and the sequence are written by the service itself and cannot
        // hold a separator or start with a formula character; every other cell is stored text.
        let stored = [
            a.customer_name.as_str(),
            &a.action,
            &a.partner_user,
            a.customer_id.as_str(),
            a.resource_type.as_deref().unwrap_or(""),
            a.id.as_str(),
            details.unwrap_or(""),
            a.recorded_by.as_deref().unwrap_or(""),
            a.chain.as_ref().map_or("", |l| l.hash.as_str()),
        ]
        .map(neutralise);
        let [
            name,
            action,
            user,
            customer,
            resource,
            id,
            details,
            recorded_by,
            hash,
        ] = &stored;
        self.writer.write_record([
            when,
            name.as_bytes(),
            action.as_bytes(),
            user.as_bytes(),
            customer.as_bytes(),
            resource.as_bytes(),
            a.status.as_str().as_bytes(),
            id.as_bytes(),
            details.as_bytes(),
            recorded_by.as_bytes(),
            sequence.as_bytes(),
            hash.as_bytes(),
        ])
    }

    /// Sizes each part's buffer once, at `bytes`, instead of growing it by doubling. The next
    /// buffer is only allocated when the next row comes, after the caller has handed the last
    /// one on: one part in memory at a time (BENCHMARKS.md, export memory).
    pub fn with_part_capacity(self, bytes: usize) -> Self {
        self.out.set_capacity(bytes);
        self
    }

    /// Bytes encoded so far and not yet taken (give or take the writer's 8 KiB buffer).
    pub fn buffered(&self) -> usize {
        self.out.len()
    }

    /// Takes the encoded bytes, leaving the encoder ready for more rows.
    pub fn take(&mut self) -> Result<Vec<u8>, std::io::Error> {
        self.writer.flush()?;
        self.out.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ActivityId, CustomerId, Details, Status, time::parse_timestamp};

    fn activity(name: &str, user: &str) -> Activity {
        Activity {
            feed_position: None,
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
            recorded_by: Some("writer-1".into()),
            chain: Some(crate::domain::chain::Link {
                sequence: 7,
                hash: "ab".repeat(32),
                previous_hash: "cd".repeat(32),
                previous_recorded_at: None,
            }),
        }
    }

    fn encode(tz: Tz, rows: &[(Activity, Option<&str>)]) -> String {
        let mut e = CsvEncoder::new(tz, ExportLocale::English).unwrap();
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
            .unwrap()
            .trim_matches('"');
        assert_eq!(
            chrono::DateTime::parse_from_rfc3339(cell).unwrap(),
            a.occurred_at
        );
    }

    /// The time as chrono writes it, at the zone's offset floored to the minute.
    fn chrono_time(at: DateTime<Utc>, zone: Tz) -> String {
        let offset = at.with_timezone(&zone).offset().fix().local_minus_utc();
        let floored = FixedOffset::east_opt(offset - offset.rem_euclid(60)).unwrap();
        at.with_timezone(&floored)
            .to_rfc3339_opts(SecondsFormat::Millis, true)
    }

    #[test]
    fn times_are_written_as_chrono_writes_them_in_every_zone() {
        let mut state = 0x2545_F491_4F6C_DD1D_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let leap = chrono::NaiveDate::from_ymd_opt(2016, 12, 31)
            .unwrap()
            .and_hms_milli_opt(23, 59, 59, 1_500)
            .unwrap()
            .and_utc();
        // Both ends of years 0–9999 (written by chrono in zones that cross them), and a leap
        // second.
        let mut instants: Vec<DateTime<Utc>> = [
            "0000-01-01T00:00:00Z",
            "9999-12-31T23:59:59.999Z",
            "1970-01-01T00:00:00Z",
        ]
        .map(|t| DateTime::parse_from_rfc3339(t).unwrap().to_utc())
        .into();
        instants.push(leap);
        // Milliseconds from 1850 to 2150.
        let (from, span) = (-3_786_825_600_000_i64, 9_467_280_000_000_u64);
        instants.extend((0..2_000).map(|_| {
            let ms = from + (next() % span) as i64;
            DateTime::from_timestamp_millis(ms).unwrap()
        }));
        let mut out = Vec::new();
        let mut compared = 0;
        for zone in chrono_tz::TZ_VARIANTS {
            for at in instants.iter().step_by(1 + (next() % 7) as usize) {
                let ours = local_time(*at, zone, &mut out);
                assert_eq!(
                    std::str::from_utf8(ours).unwrap(),
                    chrono_time(*at, zone),
                    "{at:?} in {zone}"
                );
                compared += 1;
            }
        }
        assert!(compared > 100_000, "{compared}");
    }

    #[test]
    fn the_header_row_follows_the_language() {
        let mut e = CsvEncoder::new(Tz::UTC, ExportLocale::TraditionalChinese).unwrap();
        e.row(&activity("C", "u"), None).unwrap();
        let text = String::from_utf8(e.take().unwrap()).unwrap();
        let first = text
            .trim_start_matches('\u{feff}')
            .split("\r\n")
            .next()
            .unwrap();
        assert_eq!(
            first,
            "\"日期 / 時間\",\"受影響客戶\",\"動作\",\"合作夥伴使用者\",\"客戶識別碼\",\"資源類型\",\"狀態\",\"活動識別碼\",\"詳細資料\",\"記錄者\",\"序號\",\"雜湊\""
        );
        assert_eq!(text.split("\r\n").filter(|l| !l.is_empty()).count(), 2);
    }

    #[test]
    fn bom_header_crlf_and_every_cell_quoted() {
        let text = encode(
            Tz::UTC,
            &[(activity("Contoso, \"Ltd\"", "ann"), Some(r#"{"a":"b, c"}"#))],
        );
        assert!(text.starts_with('\u{feff}'));
        let lines: Vec<&str> = text.trim_start_matches('\u{feff}').split("\r\n").collect();
        assert_eq!(
            lines[0],
            r#""Date-Time","Affected customer","Action","Partner user","Customer ID","Resource type","Status","Activity ID","Details","Recorded by","Sequence","Hash""#
        );
        assert_eq!(
            lines[1],
            r#""2026-11-25T01:02:03.456Z","Contoso, ""Ltd""","placed an order","ann","c1","","succeeded","a1","{""a"":""b, c""}","writer-1","7","abababababababababababababababababababababababababababababababab""#
        );
        assert_eq!(lines[2], "");
        assert!(!text.replace("\r\n", "").contains('\n'));
    }

    /// Texts that a spreadsheet splitting on `,`, `;` or TAB could read as formulas, or that
    /// test the rule's edges.
    const NASTY: [&str; 24] = [
        r#"Contoso;=HYPERLINK("http://x","y")"#,
        r#"Contoso;=HYPERLINK("http://evil.example","x")"#,
        "a,=1+1",
        "x\t=cmd",
        "\t\t=",
        "'=x",
        "''",
        "'",
        "-5",
        "@a;@b,+c\t-d",
        r#""a";"=b""#,
        r#""=b"#,
        r#"x;""=y"#,
        r#"x,"-1","+2""#,
        "a;",
        ";",
        "a\r=b",
        "\r\n-1;\n@x",
        "台北雲端科技股份有限公司;=1+1",
        "",
        "=cmd|' /C calc'!A0",
        "Contoso, Ltd.",
        "a;'b",
        "ab'c",
    ];

    const FORMULA: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

    #[test]
    fn formula_rule_examples() {
        for (text, written) in [
            ("Contoso", "Contoso"),
            ("Contoso, Ltd.", "Contoso, Ltd."),
            ("=1+1", "'=1+1"),
            ("+1", "'+1"),
            ("-1", "'-1"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("\rx", "'\rx"),
            ("'x", "''x"),
            ("a'b", "a'b"),
            ("Contoso;=HYPERLINK(\"h\")", "Contoso;'=HYPERLINK(\"h\")"),
            ("a,=1+1", "a,'=1+1"),
            ("x\t=cmd", "x\t'=cmd"),
            ("a,\t=x", "a,'\t'=x"),
            ("\t\t=", "'\t'\t'="),
            ("\"a\";\"=b\"", "\"a\";'\"=b\""),
            ("\"a\";\"b\"", "\"a\";\"b\""),
            ("a\n=b", "a\n'=b"),
            ("-5;", "'-5;"),
            ("", ""),
        ] {
            assert_eq!(neutralise(text), written, "{text:?}");
            assert_eq!(restore(written), text, "{written:?}");
        }
        // Text not written by `neutralise` keeps its apostrophes.
        assert_eq!(restore("'abc;'d"), "'abc;'d");
        assert!(matches!(
            neutralise("Contoso, Ltd."),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    /// No piece of `cell` after splitting on `,`, `;` or TAB, with or without one opening quote,
    /// starts with a formula character.
    fn assert_no_formula_piece(cell: &str, context: &str) {
        for sep in [',', ';', '\t'] {
            for piece in cell.split(sep) {
                for p in [piece, piece.strip_prefix('"').unwrap_or(piece)] {
                    assert!(
                        !p.starts_with(FORMULA),
                        "{p:?} of {cell:?} split on {sep:?} ({context:?})"
                    );
                }
            }
        }
    }

    /// Deterministic pseudo-random texts over the characters that matter.
    fn random_texts(count: usize) -> Vec<String> {
        const ALPHABET: [char; 14] = [
            ',', ';', '\t', '\r', '\n', '"', '\'', '=', '+', '-', '@', 'a', ' ', '台',
        ];
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        (0..count)
            .map(|_| {
                let len = next() % 12;
                (0..len)
                    .map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize])
                    .collect()
            })
            .collect()
    }

    #[test]
    fn formula_rule_is_reversible_and_leaves_no_formula_piece() {
        let random = random_texts(20_000);
        for text in NASTY
            .iter()
            .copied()
            .chain(random.iter().map(String::as_str))
        {
            let cell = neutralise(text);
            assert_eq!(restore(&cell), text, "{text:?} written {cell:?}");
            assert_no_formula_piece(&cell, text);
            // Unchanged text is returned as it is.
            assert_eq!(
                matches!(cell, std::borrow::Cow::Borrowed(_)),
                *cell == *text
            );
        }
    }

    /// Reads `file` as a spreadsheet splitting on `sep` would: quote-aware, rows of any length.
    fn read_with(file: &str, sep: u8) -> Vec<csv::StringRecord> {
        csv::ReaderBuilder::new()
            .delimiter(sep)
            .has_headers(false)
            .flexible(true)
            .from_reader(file.as_bytes())
            .records()
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("{e}: {file:?}"))
    }

    const DETAILS: &str = r#"{"n":[1,-2],"s":"a;=b","q":"x;\"=y","t":"\t"}"#;

    /// Encodes a row per text, the text as customer name, action, partner user and resource type;
    /// checks every cell that a reader splitting on `,`, `;` or TAB (quote-aware or not) makes,
    /// and that the `,` reader and `restore` give back every text.
    fn assert_safe_in_every_locale(texts: &[&str]) {
        let rows: Vec<(Activity, Option<&str>)> = texts
            .iter()
            .map(|t| {
                let mut a = activity(t, t);
                a.action = (*t).into();
                a.resource_type = Some((*t).into());
                (a, Some(DETAILS))
            })
            .collect();
        let file = encode(Tz::UTC, &rows);
        crate::testing::fixtures::assert_no_formula_cell(file.trim_start_matches('\u{feff}'));
        let records = read_with(&file, b',');
        assert_eq!(records.len(), texts.len() + 1);
        let header = header(ExportLocale::English);
        assert_eq!(records[0].iter().collect::<Vec<_>>(), header);
        for (record, text) in records[1..].iter().zip(texts) {
            assert_eq!(record.len(), header.len());
            for column in [1, 2, 3, 5] {
                assert_eq!(record[column], neutralise(text), "{text:?}");
                assert_eq!(restore(&record[column]), *text);
            }
            assert_eq!(restore(&record[8]), DETAILS);
            assert_eq!(&record[7], "a1");
        }
    }

    #[test]
    fn csv_is_safe_when_split_on_comma_semicolon_or_tab() {
        assert_safe_in_every_locale(&NASTY);
    }

    #[test]
    fn random_csv_is_safe_when_split_on_comma_semicolon_or_tab() {
        let random = random_texts(3_000);
        for chunk in random.chunks(50) {
            let texts: Vec<&str> = chunk.iter().map(String::as_str).collect();
            assert_safe_in_every_locale(&texts);
        }
    }

    #[test]
    fn formula_cells_are_quoted_and_neutralised() {
        let text = encode(Tz::UTC, &[(activity("=cmd|' /C calc'!A0", "@ann"), None)]);
        assert!(text.contains(",\"'=cmd|' /C calc'!A0\","), "{text}");
        assert!(text.contains(",\"'@ann\","), "{text}");
    }

    #[test]
    fn times_carry_the_requested_zone_offset() {
        let text = encode(chrono_tz::Asia::Taipei, &[(activity("C", "u"), None)]);
        assert!(
            text.contains("\r\n\"2026-11-25T09:02:03.456+08:00\","),
            "{text}"
        );
    }

    #[test]
    fn chinese_names_survive_as_utf8() {
        let text = encode(
            Tz::UTC,
            &[(activity("台北雲端科技股份有限公司", "陳偉"), None)],
        );
        assert!(text.contains(",\"台北雲端科技股份有限公司\","));
    }
}
