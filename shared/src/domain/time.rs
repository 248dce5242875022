//! Timestamps and the From/To period of a query.
//!
//! Every timestamp the service stores or returns is UTC with millisecond precision and a `Z`
//! (`2026-11-25T14:58:14.123Z`): fixed width, so its text sorts like its time, which the storage
//! keys rely on.

use chrono::{DateTime, Months, NaiveDate, SecondsFormat, TimeDelta, Utc};

/// Earliest instant accepted anywhere (keeps the key text fixed-width and sortable).
pub fn earliest() -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp(0, 0).unwrap_or_default()
}

/// Latest instant accepted anywhere (year 9999, the last one with a four-digit year).
pub fn latest() -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_millis(253_402_300_799_999).unwrap_or_default()
}

/// Formats as RFC 3339 UTC with milliseconds and `Z`.
pub fn format(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Truncates to whole milliseconds, the precision the service keeps.
pub fn truncate_millis(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

/// The IANA time zone names the service knows (chrono-tz's database: canonical zones and their
/// links), in its order. An export's `timeZone` is one of them exactly; `openapi.yaml` lists the
/// same names (generated from this, checked by the contract test).
pub fn time_zone_names() -> impl Iterator<Item = &'static str> {
    chrono_tz::TZ_VARIANTS.iter().map(|z| z.name())
}

/// The zone named `name` exactly (case matters), if the service knows it.
pub fn time_zone(name: &str) -> Option<chrono_tz::Tz> {
    name.parse().ok()
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    #[error(
        "must be an RFC 3339 timestamp such as 2026-11-25T09:30:00Z or a date such as 2026-11-25"
    )]
    Format,
    #[error("must be between 1970-01-01 and 9999-12-31")]
    OutOfRange,
}

/// Parses an RFC 3339 timestamp (any offset; converted to UTC, truncated to milliseconds).
pub fn parse_timestamp(text: &str) -> Result<DateTime<Utc>, TimeError> {
    let t = DateTime::parse_from_rfc3339(text).map_err(|_| TimeError::Format)?;
    let t = truncate_millis(t.with_timezone(&Utc));
    if t < earliest() || t > latest() {
        return Err(TimeError::OutOfRange);
    }
    Ok(t)
}

/// One end of a period as the caller wrote it: a timestamp, or a whole UTC day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    Instant(DateTime<Utc>),
    Day(NaiveDate),
}

impl Bound {
    /// Exactly as written: surrounding whitespace is an error, as the contract's pattern says.
    pub fn parse(text: &str) -> Result<Self, TimeError> {
        if text.len() == 10 {
            let day = NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| TimeError::Format)?;
            let start = day.and_hms_opt(0, 0, 0).ok_or(TimeError::Format)?.and_utc();
            if start < earliest() || start > latest() {
                return Err(TimeError::OutOfRange);
            }
            return Ok(Self::Day(day));
        }
        parse_timestamp(text).map(Self::Instant)
    }

    /// As the start of a period: the instant itself, or the first millisecond of the day.
    fn as_from(self) -> DateTime<Utc> {
        match self {
            Self::Instant(t) => t,
            Self::Day(d) => d
                .and_hms_opt(0, 0, 0)
                .map(|n| n.and_utc())
                .unwrap_or_else(earliest),
        }
    }

    /// As the (inclusive) end of a period: the instant itself, or the last millisecond of the day.
    fn as_to(self) -> DateTime<Utc> {
        match self {
            Self::Instant(t) => t,
            Self::Day(d) => d
                .and_hms_milli_opt(23, 59, 59, 999)
                .map(|n| n.and_utc())
                .unwrap_or_else(latest),
        }
    }
}

/// A closed period `[from, to]` in whole milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateRange {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    #[error("from must not be after to")]
    Inverted,
}

impl DateRange {
    /// Resolves the caller's optional bounds the way the portal does: `to` defaults to now and
    /// `from` to one calendar month before `to`.
    pub fn resolve(
        from: Option<Bound>,
        to: Option<Bound>,
        now: DateTime<Utc>,
    ) -> Result<Self, RangeError> {
        let to = to.map(Bound::as_to).unwrap_or_else(|| truncate_millis(now));
        let from = match from {
            Some(b) => b.as_from(),
            None => to
                .checked_sub_months(Months::new(1))
                .unwrap_or_else(earliest)
                .max(earliest()),
        };
        if from > to {
            return Err(RangeError::Inverted);
        }
        Ok(Self { from, to })
    }
}

/// How far in the future an activity may claim to have happened (clock skew allowance).
pub const MAX_FUTURE_SKEW: TimeDelta = TimeDelta::minutes(5);

/// Serde for a timestamp as the service writes it everywhere ([`format`], [`parse_timestamp`]):
/// `#[serde(with = "time::millis")]`, or `time::millis::option` for an optional one.
pub mod millis {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format(*t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        super::parse_timestamp(&text).map_err(D::Error::custom)
    }

    pub mod option {
        use chrono::{DateTime, Utc};
        use serde::{Deserialize, Deserializer, Serializer};

        pub fn serialize<S: Serializer>(
            t: &Option<DateTime<Utc>>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => super::serialize(t, s),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<DateTime<Utc>>, D::Error> {
            #[derive(Deserialize)]
            struct Wrapped(#[serde(with = "super")] DateTime<Utc>);
            Ok(Option::<Wrapped>::deserialize(d)?.map(|Wrapped(t)| t))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_zone_name_is_accepted_and_nothing_else() {
        let names: Vec<&str> = time_zone_names().collect();
        assert!(names.len() > 500, "{}", names.len());
        for name in &names {
            assert_eq!(time_zone(name).map(|z| z.name()), Some(*name));
        }
        for unknown in [
            "KAUfURIza0w/8HA",
            "asia/taipei",
            "Asia/Taipei ",
            "",
            "UTC+8",
            "Mars/Olympus",
        ] {
            assert_eq!(time_zone(unknown), None, "{unknown:?}");
        }
        for known in [
            "UTC",
            "Asia/Taipei",
            "America/Argentina/Buenos_Aires",
            "Etc/GMT-14",
        ] {
            assert!(names.contains(&known), "{known}");
        }
    }

    fn t(s: &str) -> DateTime<Utc> {
        parse_timestamp(s).unwrap()
    }

    #[test]
    fn formats_fixed_width_millis_with_z() {
        assert_eq!(
            format(t("2026-11-25T14:58:14.123456+08:00")),
            "2026-11-25T06:58:14.123Z"
        );
        assert_eq!(
            format(t("2026-01-01T00:00:00Z")),
            "2026-01-01T00:00:00.000Z"
        );
    }

    #[test]
    fn rejects_garbage_and_out_of_range_years() {
        assert_eq!(parse_timestamp("yesterday"), Err(TimeError::Format));
        assert_eq!(
            parse_timestamp("1969-12-31T23:59:59Z"),
            Err(TimeError::OutOfRange)
        );
        assert!(Bound::parse("2026-02-30").is_err());
        assert!(Bound::parse("0000-01-01").is_err());
        assert!(Bound::parse(" 2026-02-03").is_err());
        assert!(Bound::parse("2026-02-03T00:00:00Z\n").is_err());
    }

    #[test]
    fn accepts_what_rfc_3339_allows() {
        let utc = |s: &str| parse_timestamp(s).map(format);
        // chrono reads :60 as a leap second; truncating to milliseconds carries it into the next minute.
        assert!(parse_timestamp("2016-12-31T23:59:60Z").is_ok());
        assert_eq!(
            utc("2026-11-25t09:30:00.123456z"),
            Ok("2026-11-25T09:30:00.123Z".into())
        );
        assert_eq!(
            utc("2026-11-25T09:30:00+08:00"),
            Ok("2026-11-25T01:30:00.000Z".into())
        );
        assert_eq!(
            utc("1970-01-01T01:00:00+01:00"),
            Ok("1970-01-01T00:00:00.000Z".into())
        );
        assert_eq!(
            parse_timestamp("1970-01-01T00:59:59+01:00"),
            Err(TimeError::OutOfRange)
        );
    }

    #[test]
    fn default_period_is_the_most_recent_calendar_month() {
        let now = t("2026-03-31T10:00:00.500Z");
        let r = DateRange::resolve(None, None, now).unwrap();
        assert_eq!(r.to, now);
        // chrono clamps to the last day of the shorter month
        assert_eq!(r.from, t("2026-02-28T10:00:00.500Z"));
    }

    #[test]
    fn dates_mean_whole_utc_days() {
        let r = DateRange::resolve(
            Some(Bound::parse("2026-11-01").unwrap()),
            Some(Bound::parse("2026-11-01").unwrap()),
            t("2026-11-25T00:00:00Z"),
        )
        .unwrap();
        assert_eq!(r.from, t("2026-11-01T00:00:00Z"));
        assert_eq!(r.to, t("2026-11-01T23:59:59.999Z"));
    }

    #[test]
    fn from_defaults_relative_to_an_explicit_to() {
        let r = DateRange::resolve(None, Some(Bound::parse("2026-05-15").unwrap()), Utc::now())
            .unwrap();
        assert_eq!(r.from, t("2026-04-15T23:59:59.999Z"));
    }

    #[test]
    fn inverted_range_is_refused() {
        let e = DateRange::resolve(
            Some(Bound::parse("2026-11-02").unwrap()),
            Some(Bound::parse("2026-11-01T12:00:00Z").unwrap()),
            Utc::now(),
        );
        assert_eq!(e, Err(RangeError::Inverted));
    }
}
