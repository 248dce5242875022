//! CSV export cells (`activity_log::export::csv`). The input's first bytes pick a time zone and an
//! instant; the rest, if UTF-8, is the cell text.
//!
//! Properties: `restore(neutralise(text)) == text`; no piece of `neutralise(text)` split on `,`,
//! `;` or TAB, as it is or without one opening quote, starts with a formula trigger (`=`, `+`,
//! `-`, `@`, tab, CR); text without a separator (`,` `;` tab CR LF) and not starting with `'` or
//! `"` is prefixed with `'` exactly when it starts with a trigger, and otherwise kept as it is.
//! A `CsvEncoder` file with a row carrying the text in every free-text column, followed by an
//! ordinary row, starts with the BOM, quotes every cell, and reads back with the `csv` crate as
//! exactly the header and two rows of 12 fields; each text cell reads back as `neutralise(text)`,
//! the Date-Time cell is the instant in RFC 3339 with milliseconds (also in zones whose offset had
//! seconds), and the ordinary row is intact. Read by a quote-aware reader splitting on `;` or TAB
//! (a spreadsheet in another locale), no cell of the file starts with a formula trigger.
#![no_main]

use activity_log::domain::chain::Link;
use activity_log::domain::time::{earliest, latest};
use activity_log::domain::{Activity, ActivityId, CustomerId, Details, ExportLocale, Status};
use activity_log::export::csv::{BOM, CsvEncoder, header, neutralise, restore};
use chrono::{DateTime, Offset, Utc};
use chrono_tz::TZ_VARIANTS;
use libfuzzer_sys::arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;

const TRIGGERS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let (Ok(zone), Ok(ms)) = (
        u.choose(&TZ_VARIANTS),
        // Instants whose local time has a four-digit year in every zone (offsets reach +14:00).
        // Activities are refused more than 5 minutes in the future, so later ones are never
        // stored or exported; chrono writes a year past 9999 as `+10000-…`.
        u.int_in_range(
            earliest().timestamp_millis()
                ..=(latest() - chrono::TimeDelta::hours(14)).timestamp_millis(),
        ),
    ) else {
        return;
    };
    let Ok(text) = std::str::from_utf8(u.take_rest()) else {
        return;
    };
    let occurred_at = DateTime::<Utc>::from_timestamp_millis(ms).unwrap();

    let cell = neutralise(text);
    assert_eq!(restore(&cell), text, "{cell:?}");
    for sep in [',', ';', '\t'] {
        for piece in cell.split(sep) {
            let unquoted = piece.strip_prefix('"').unwrap_or(piece);
            assert!(
                !piece.starts_with(TRIGGERS) && !unquoted.starts_with(TRIGGERS),
                "{piece:?} of {cell:?} split on {sep:?}"
            );
        }
    }
    // Text without a separator, `'` or `"` at its start: prefixed exactly if it starts with a
    // trigger, as before the rule covered separators.
    if !text.contains([',', ';', '\t', '\r', '\n']) && !text.starts_with(['\'', '"']) {
        if text.starts_with(TRIGGERS) {
            assert_eq!(cell, format!("'{text}"));
        } else {
            assert_eq!(cell, text);
        }
    }

    let mut odd = activity(occurred_at, text);
    if let Ok(c) = CustomerId::parse(text) {
        odd.customer_id = c;
    }
    let plain = activity(occurred_at, "Contoso");
    let mut e = CsvEncoder::new(*zone, ExportLocale::English).unwrap();
    e.row(&odd, Some(text)).unwrap();
    e.row(&plain, None).unwrap();
    let file = e.take().unwrap();
    assert!(file.starts_with(BOM));
    assert!(file[BOM.len()..].starts_with(b"\"Date-Time\",\""));

    // A spreadsheet splitting on `;` or TAB: the Details cell is last, so text ending in a
    // separator would let such a reader run on into the next line; it is given JSON instead.
    let mut e = CsvEncoder::new(*zone, ExportLocale::English).unwrap();
    e.row(&odd, Some(r#"{"n":-1}"#)).unwrap();
    e.row(&plain, None).unwrap();
    let other = e.take().unwrap();
    for sep in [b';', b'\t'] {
        for row in csv::ReaderBuilder::new()
            .delimiter(sep)
            .has_headers(false)
            .flexible(true)
            .from_reader(other.as_slice())
            .records()
        {
            let row = row.unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(&other)));
            for c in &row {
                assert!(!c.starts_with(TRIGGERS), "{c:?} split on {:?}", sep as char);
            }
        }
    }

    // The csv reader skips the BOM itself.
    let rows: Vec<csv::StringRecord> = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(file.as_slice())
        .records()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("unreadable CSV {e}: {:?}", String::from_utf8_lossy(&file)));
    assert_eq!(rows.len(), 3, "{:?}", String::from_utf8_lossy(&file));
    assert_eq!(
        rows[0].iter().collect::<Vec<_>>(),
        header(ExportLocale::English)
    );
    let c: &str = &cell;
    // The Date-Time cell: RFC 3339 with milliseconds, the same instant; the zone's own local
    // time wherever its offset is whole minutes (RFC 3339 cannot write an offset with seconds).
    let when = rows[1][0].to_owned();
    assert!(when.len() == 24 || when.len() == 29, "{when}");
    let local = occurred_at.with_timezone(zone);
    if local.offset().fix().local_minus_utc() % 60 == 0 {
        assert_eq!(
            when,
            local.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        );
    }
    assert_eq!(
        rows[1].iter().collect::<Vec<_>>(),
        [
            when.as_str(),
            c,
            c,
            c,
            &neutralise(odd.customer_id.as_str()),
            c,
            "succeeded",
            "a1",
            c,
            c,
            "7",
            HASH,
        ]
    );
    let read_back = DateTime::parse_from_rfc3339(&rows[1][0]).unwrap();
    assert_eq!(read_back, occurred_at, "{} in {zone}", &rows[1][0]);
    assert_eq!(
        rows[2].iter().collect::<Vec<_>>(),
        [
            when.as_str(),
            "Contoso",
            "Contoso",
            "Contoso",
            "c1",
            "Contoso",
            "succeeded",
            "a1",
            "",
            "Contoso",
            "7",
            HASH,
        ]
    );
});

/// An activity with `text` in every free-text field.
fn activity(occurred_at: DateTime<Utc>, text: &str) -> Activity {
    Activity {
        feed_position: None,
        id: ActivityId::parse("a1").unwrap(),
        customer_id: CustomerId::parse("c1").unwrap(),
        customer_name: text.into(),
        action: text.into(),
        partner_user: text.into(),
        occurred_at,
        recorded_at: occurred_at,
        resource_type: Some(text.into()),
        status: Status::Succeeded,
        details: Details::None,
        content_hash: String::new(),
        expires_at: 0,
        recorded_by: Some(text.into()),
        chain: Some(Link {
            sequence: 7,
            hash: HASH.into(),
            previous_hash: "0".repeat(64),
            previous_recorded_at: None,
        }),
    }
}

/// The hash every row shows.
const HASH: &str = "ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12";
