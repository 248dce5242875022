//! Period parsing (`activity_log::domain::time`) on arbitrary text. The input is up to three
//! lines: `from`, `to` and `now` (`now` is used if it is an RFC 3339 instant in the accepted
//! range, sub-millisecond digits kept, as `Utc::now()` has them; otherwise a fixed instant).
//!
//! Properties: nothing panics; every timestamp `parse_timestamp` or `Bound::parse` accepts is in
//! `earliest()..=latest()`, in whole milliseconds, formats as the fixed-width 24-character
//! `YYYY-MM-DDTHH:MM:SS.mmmZ` and parses back to itself; an accepted day starts and ends in that
//! range; and whenever `DateRange::resolve` (with each bound given or left out) succeeds,
//! `from <= to`, both in that range and in whole milliseconds.
#![no_main]

use activity_log::domain::time::{earliest, format, latest, parse_timestamp};
use activity_log::domain::{Bound, DateRange};
use chrono::{DateTime, Utc};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.splitn(3, '\n');
    let (from, to, now) = (
        lines.next().unwrap_or(""),
        lines.next().unwrap_or(""),
        lines.next().unwrap_or(""),
    );

    for s in [from, to, now, &*text] {
        if let Ok(t) = parse_timestamp(s) {
            check_instant(t, s);
        }
        match Bound::parse(s) {
            Ok(Bound::Instant(t)) => check_instant(t, s),
            Ok(Bound::Day(d)) => {
                let start = d.and_hms_opt(0, 0, 0).unwrap().and_utc();
                let end = d.and_hms_milli_opt(23, 59, 59, 999).unwrap().and_utc();
                assert!(earliest() <= start && end <= latest(), "{s:?} gave {d}");
            }
            Err(_) => {}
        }
    }

    let now = DateTime::parse_from_rfc3339(now.trim())
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .filter(|t| (earliest()..=latest()).contains(t))
        .unwrap_or_else(|| parse_timestamp("2026-11-25T12:00:00.5Z").unwrap());
    let (from, to) = (Bound::parse(from).ok(), Bound::parse(to).ok());
    for (f, t) in [(from, to), (None, to), (from, None), (None, None)] {
        if let Ok(r) = DateRange::resolve(f, t, now) {
            assert!(r.from <= r.to, "{f:?}..{t:?} at {now} resolved to {r:?}");
            for end in [r.from, r.to] {
                assert!(
                    earliest() <= end && end <= latest(),
                    "{f:?}..{t:?} at {now} resolved to {r:?}"
                );
                assert_eq!(end.timestamp_subsec_nanos() % 1_000_000, 0, "{r:?}");
            }
        }
    }
});

fn check_instant(t: DateTime<Utc>, text: &str) {
    assert!(
        earliest() <= t && t <= latest(),
        "{text:?} gave {t} out of range"
    );
    assert_eq!(
        t.timestamp_subsec_nanos() % 1_000_000,
        0,
        "{text:?} gave {t}, not whole milliseconds"
    );
    let shown = format(t);
    assert_eq!(shown.len(), 24, "{text:?} gave {t}, formatted {shown:?}");
    assert_eq!(
        parse_timestamp(&shown),
        Ok(t),
        "{text:?} formatted {shown:?}"
    );
}
