//! Calendar values (DATE, DATETIME) and their integer encodings, zero dates included.
//!
//! MariaDB accepts dates that are not calendar dates: the zero date `0000-00-00` and, unless
//! `NO_ZERO_IN_DATE` is set, dates with a zero month or day (`2024-00-00`). They are kept, not
//! turned into NULL. A value field never carries one on the wire (record format 2: the field is
//! null and the record header `cdc.zero_dates` holds the exact value, see `inexact.rs`). A key
//! field cannot be null, so there, and in records of format 1, such a value is written as a
//! sentinel far outside MariaDB's range (`0001-01-01` … `9999-12-31`), which decodes back
//! exactly:
//!
//! * date, days: `i32::MIN + yyyymmdd` (the zero date is `i32::MIN`);
//! * datetime, µs: `i64::MIN + yyyymmdd * 86_400_000_000 + microseconds of the day`;
//! * datetime, ms: `i64::MIN / 1000 + yyyymmdd * 86_400_000 + milliseconds of the day`.
//!
//! Readers other than this crate see a date tens of thousands of years before year 1.
//!
//! TIMESTAMP values are also written as `io.debezium.time.ZonedTimestamp` text
//! ([`format_zoned`], [`parse_zoned`]): ISO-8601 in UTC with exactly the column's fsp digits.

use std::fmt;

const MICROS_PER_DAY: i64 = 86_400_000_000;
const MILLIS_PER_DAY: i64 = 86_400_000;
/// Origin of the millisecond sentinels (see the module docs).
const MILLIS_SENTINEL: i64 = i64::MIN / 1000;

/// A DATE value: year, month, day, each possibly zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Date {
    pub year: u16,
    pub month: u8,
    pub day: u8,
}

/// Days from 1970-01-01 to the given proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

impl Date {
    /// The zero date `0000-00-00`.
    pub const ZERO: Date = Date {
        year: 0,
        month: 0,
        day: 0,
    };

    /// Whether this is a real calendar date (month 1..=12, day within the month, year ≥ 1).
    pub fn is_calendar_date(&self) -> bool {
        (1..=12).contains(&self.month)
            && self.day >= 1
            && i64::from(self.day) <= days_in_month(i64::from(self.year), i64::from(self.month))
            && self.year >= 1
    }

    fn packed(&self) -> i64 {
        i64::from(self.year) * 10_000 + i64::from(self.month) * 100 + i64::from(self.day)
    }

    fn from_packed(p: i64) -> Option<Date> {
        Some(Date {
            year: u16::try_from(p / 10_000).ok()?,
            month: u8::try_from(p / 100 % 100).ok()?,
            day: u8::try_from(p % 100).ok()?,
        })
    }

    /// Days since 1970-01-01, or the zero-date sentinel (see module docs).
    pub fn to_epoch_days(&self) -> i32 {
        if self.is_calendar_date() {
            let days = days_from_civil(
                i64::from(self.year),
                i64::from(self.month),
                i64::from(self.day),
            );
            i32::try_from(days).unwrap_or(i32::MIN)
        } else {
            i32::MIN.saturating_add(i32::try_from(self.packed()).unwrap_or(0))
        }
    }

    /// Inverse of [`Date::to_epoch_days`]; `None` outside years 0..=9999.
    pub fn from_epoch_days(days: i32) -> Option<Date> {
        let days = i64::from(days);
        let sentinel = days - i64::from(i32::MIN);
        if sentinel <= 99_991_231 {
            return Date::from_packed(sentinel);
        }
        let (y, m, d) = civil_from_days(days);
        Some(Date {
            year: u16::try_from(y).ok().filter(|y| *y <= 9999)?,
            month: u8::try_from(m).ok()?,
            day: u8::try_from(d).ok()?,
        })
    }
}

impl Date {
    /// Parses MariaDB's text form `YYYY-MM-DD` (zero parts allowed, as MariaDB prints them).
    pub fn parse(text: &str) -> Option<Date> {
        let b = text.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        let num = |r: std::ops::Range<usize>| -> Option<u16> {
            let s = &text[r];
            s.bytes().all(|c| c.is_ascii_digit()).then_some(())?;
            s.parse().ok()
        };
        let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
        if month > 12 || day > 31 {
            return None;
        }
        Some(Date { year, month: month as u8, day: day as u8 })
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// A DATETIME value: a wall-clock date and time without time zone, microsecond precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DateTime {
    pub date: Date,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    pub micros: u32,
}

impl DateTime {
    /// The zero datetime `0000-00-00 00:00:00`.
    pub const ZERO: DateTime = DateTime {
        date: Date::ZERO,
        hour: 0,
        minute: 0,
        second: 0,
        micros: 0,
    };

    fn micros_of_day(&self) -> i64 {
        ((i64::from(self.hour) * 60 + i64::from(self.minute)) * 60 + i64::from(self.second))
            * 1_000_000
            + i64::from(self.micros)
    }

    fn from_parts(date: Date, micros_of_day: i64) -> Option<DateTime> {
        let secs = micros_of_day / 1_000_000;
        Some(DateTime {
            date,
            hour: u8::try_from(secs / 3600).ok()?,
            minute: u8::try_from(secs / 60 % 60).ok()?,
            second: u8::try_from(secs % 60).ok()?,
            micros: u32::try_from(micros_of_day % 1_000_000).ok()?,
        })
    }

    /// Microseconds since 1970-01-01 00:00:00 (reading the wall clock as if it were UTC), or the
    /// zero-date sentinel (see module docs).
    pub fn to_epoch_micros(&self) -> i64 {
        let day = if self.date.is_calendar_date() {
            i64::from(self.date.to_epoch_days())
        } else {
            return i64::MIN + self.date.packed() * MICROS_PER_DAY + self.micros_of_day();
        };
        day * MICROS_PER_DAY + self.micros_of_day()
    }

    /// Inverse of [`DateTime::to_epoch_micros`]; `None` outside years 0..=9999.
    pub fn from_epoch_micros(micros: i64) -> Option<DateTime> {
        let sentinel = i128::from(micros) - i128::from(i64::MIN);
        if sentinel < 100_000_000 * i128::from(MICROS_PER_DAY) {
            let sentinel = i64::try_from(sentinel).ok()?;
            let date = Date::from_packed(sentinel / MICROS_PER_DAY)?;
            return DateTime::from_parts(date, sentinel % MICROS_PER_DAY);
        }
        let days = i32::try_from(micros.div_euclid(MICROS_PER_DAY)).ok()?;
        let date = Date::from_epoch_days(days)?;
        DateTime::from_parts(date, micros.rem_euclid(MICROS_PER_DAY))
    }
}

impl DateTime {
    /// Milliseconds since 1970-01-01 00:00:00 (wall clock as if UTC), or the millisecond
    /// zero-date sentinel; `None` when the value has a sub-millisecond part.
    pub fn to_epoch_millis(&self) -> Option<i64> {
        if !self.micros.is_multiple_of(1000) {
            return None;
        }
        let ms_of_day = self.micros_of_day() / 1000;
        Some(if self.date.is_calendar_date() {
            i64::from(self.date.to_epoch_days()) * MILLIS_PER_DAY + ms_of_day
        } else {
            MILLIS_SENTINEL + self.date.packed() * MILLIS_PER_DAY + ms_of_day
        })
    }

    /// Inverse of [`DateTime::to_epoch_millis`]; `None` outside years 0..=9999.
    pub fn from_epoch_millis(millis: i64) -> Option<DateTime> {
        let sentinel = i128::from(millis) - i128::from(MILLIS_SENTINEL);
        if (0..100_000_000 * i128::from(MILLIS_PER_DAY)).contains(&sentinel) {
            let sentinel = i64::try_from(sentinel).ok()?;
            let date = Date::from_packed(sentinel / MILLIS_PER_DAY)?;
            return DateTime::from_parts(date, sentinel % MILLIS_PER_DAY * 1000);
        }
        DateTime::from_epoch_micros(millis.checked_mul(1000)?)
    }

    /// Whether the date part is a real calendar date (see [`Date::is_calendar_date`]).
    pub fn is_calendar(&self) -> bool {
        self.date.is_calendar_date()
    }

    /// Parses MariaDB's text form `YYYY-MM-DD HH:MM:SS[.ffffff]` (zero dates included).
    pub fn parse(text: &str) -> Option<DateTime> {
        let (date, time) = text.split_once(' ')?;
        let date = Date::parse(date)?;
        let (hms, frac) = match time.split_once('.') {
            Some((hms, frac)) => (hms, Some(frac)),
            None => (time, None),
        };
        let mut parts = hms.split(':');
        let mut next = || -> Option<u8> {
            let p = parts.next()?;
            (p.len() == 2).then_some(())?;
            p.parse().ok()
        };
        let (hour, minute, second) = (next()?, next()?, next()?);
        if parts.next().is_some() || hour > 23 || minute > 59 || second > 59 {
            return None;
        }
        Some(DateTime { date, hour, minute, second, micros: parse_fraction(frac)? })
    }

    /// MariaDB's text form, with the fraction only when it is not zero (`2024-05-01 10:00:00`,
    /// `0000-00-00 00:00:00.500000`).
    pub fn to_short_string(&self) -> String {
        let text = self.to_string();
        if self.micros == 0 {
            text[..19].to_string()
        } else {
            text
        }
    }
}

/// Microseconds of a fraction of 1..=6 digits (`None` = no fraction = 0).
fn parse_fraction(frac: Option<&str>) -> Option<u32> {
    let Some(f) = frac else { return Some(0) };
    if f.is_empty() || f.len() > 6 || !f.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let v: u32 = f.parse().ok()?;
    Some(v * 10u32.pow(6 - f.len() as u32))
}

/// TIMESTAMP microseconds since the epoch as `io.debezium.time.ZonedTimestamp` text: ISO-8601 in
/// UTC with exactly `fsp` fraction digits (none for 0), e.g. `2024-05-01T10:00:00.123456Z`.
/// `None` when the value has more precision than `fsp` or is outside years 0..=9999.
pub fn format_zoned(micros: i64, fsp: u8) -> Option<String> {
    let fsp = u32::from(fsp.min(6));
    if micros.rem_euclid(10i64.pow(6 - fsp)) != 0 {
        return None;
    }
    let dt = DateTime::from_epoch_micros(micros).filter(DateTime::is_calendar)?;
    let mut out = format!(
        "{}T{:02}:{:02}:{:02}",
        dt.date, dt.hour, dt.minute, dt.second
    );
    if fsp > 0 {
        let digits = format!("{:06}", dt.micros);
        out.push('.');
        out.push_str(&digits[..fsp as usize]);
    }
    out.push('Z');
    Some(out)
}

/// Parses ISO-8601 date-time text with a zone (`Z` or `±HH:MM`), as written by
/// [`format_zoned`] or by Debezium, into microseconds since the epoch (UTC). Up to 9 fraction
/// digits are read; digits below the microsecond must be zero (never rounded silently).
pub fn parse_zoned(text: &str) -> Option<i64> {
    let t = text.trim();
    let (body, offset_secs) = if let Some(b) = t.strip_suffix('Z').or_else(|| t.strip_suffix('z')) {
        (b, 0i64)
    } else {
        let at = t.len().checked_sub(6)?;
        let (b, off) = t.split_at(at);
        let sign = match off.as_bytes()[0] {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        let (h, m) = off[1..].split_once(':')?;
        let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
        (b, sign * (h * 3600 + m * 60))
    };
    let (date, time) = body.split_once(['T', ' '])?;
    let (hms, frac) = match time.split_once('.') {
        Some((hms, frac)) => (hms, Some(frac)),
        None => (time, None),
    };
    let frac = match frac {
        Some(f) if f.len() > 6 => {
            let (us, below) = f.split_at(6);
            below.bytes().all(|b| b == b'0').then_some(us)?;
            Some(us)
        }
        other => other,
    };
    let dt = DateTime::parse(&format!("{date} {hms}{}", frac.map(|f| format!(".{f}")).unwrap_or_default()))?;
    if !dt.is_calendar() {
        return None;
    }
    Some(dt.to_epoch_micros() - offset_secs * 1_000_000)
}

impl fmt::Display for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {:02}:{:02}:{:02}.{:06}",
            self.date, self.hour, self.minute, self.second, self.micros
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(year: u16, month: u8, day: u8) -> Date {
        Date { year, month, day }
    }

    #[test]
    fn epoch_days_of_known_dates() {
        assert_eq!(date(1970, 1, 1).to_epoch_days(), 0);
        assert_eq!(date(2000, 3, 1).to_epoch_days(), 11_017);
        assert_eq!(date(1, 1, 1).to_epoch_days(), -719_162);
        assert_eq!(date(9999, 12, 31).to_epoch_days(), 2_932_896);
        assert_eq!(Date::ZERO.to_epoch_days(), i32::MIN);
    }

    #[test]
    fn zero_and_partial_dates_round_trip() {
        for d in [
            Date::ZERO,
            date(2024, 0, 0),
            date(2024, 2, 0),
            date(0, 1, 1),
            date(2023, 2, 29),
        ] {
            assert_eq!(Date::from_epoch_days(d.to_epoch_days()), Some(d), "{d}");
            let dt = DateTime {
                date: d,
                hour: 23,
                minute: 59,
                second: 59,
                micros: 999_999,
            };
            assert_eq!(
                DateTime::from_epoch_micros(dt.to_epoch_micros()),
                Some(dt),
                "{dt}"
            );
        }
    }

    #[test]
    fn datetime_extremes_round_trip() {
        let min = DateTime {
            date: date(1000, 1, 1),
            ..DateTime::ZERO
        };
        let max = DateTime {
            date: date(9999, 12, 31),
            hour: 23,
            minute: 59,
            second: 59,
            micros: 999_999,
        };
        for dt in [min, max, DateTime::ZERO] {
            assert_eq!(DateTime::from_epoch_micros(dt.to_epoch_micros()), Some(dt));
        }
        assert_eq!(
            DateTime {
                date: date(1970, 1, 2),
                ..DateTime::ZERO
            }
            .to_epoch_micros(),
            MICROS_PER_DAY
        );
    }
}
