//! Calendar arithmetic for contract months: the exchange's date at an instant (America/Chicago, the time
//! zone of CME, NYMEX and COMEX), business days, and the US exchange holidays that are not business days.
//!
//! The holidays are computed by their rules (the NYSE/CME holiday calendar: New Year's Day, Martin Luther
//! King Jr. Day, Presidents' Day, Good Friday, Memorial Day, Juneteenth, Independence Day, Labor Day,
//! Thanksgiving, Christmas; a Sunday holiday is observed on Monday, a Saturday one on Friday except New
//! Year's Day). An exchange that closes on another day is covered by a root's explicit `roll_dates`.

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc, Weekday};
use chrono_tz::America::Chicago;

use crate::clock::Timestamp;

/// The date on the exchange's calendar (America/Chicago) at `at`.
pub fn exchange_date(at: Timestamp) -> NaiveDate {
    let utc = DateTime::<Utc>::from_timestamp_millis(at.as_ms() as i64).unwrap_or_default();
    utc.with_timezone(&Chicago).date_naive()
}

/// Midnight (America/Chicago) at the start of `date`, as a timestamp.
pub fn start_of(date: NaiveDate) -> Timestamp {
    let midnight = date.and_hms_opt(0, 0, 0).unwrap_or_default();
    let ms = Chicago
        .from_local_datetime(&midnight)
        .earliest()
        .map_or(0, |t| t.timestamp_millis());
    Timestamp(ms.max(0) as u64)
}

/// The `n`th (1-based) `weekday` of a month.
pub fn nth_weekday(year: i32, month: u32, weekday: Weekday, n: u8) -> Option<NaiveDate> {
    NaiveDate::from_weekday_of_month_opt(year, month, weekday, n)
}

/// The last day of a month.
pub fn last_day_of_month(year: i32, month: u32) -> NaiveDate {
    let (y, m) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    NaiveDate::from_ymd_opt(y, m, 1).unwrap_or_default() - Duration::days(1)
}

/// True on a weekday that is not a US exchange holiday.
pub fn is_business_day(d: NaiveDate) -> bool {
    !matches!(d.weekday(), Weekday::Sat | Weekday::Sun) && !is_holiday(d)
}

/// The business day `n` business days before `d` (`n = 0`: `d` itself, or the business day before it).
pub fn business_days_before(d: NaiveDate, n: u32) -> NaiveDate {
    let mut d = on_or_before(d);
    for _ in 0..n {
        d = on_or_before(d - Duration::days(1));
    }
    d
}

/// `d` if it is a business day, else the business day before it.
pub fn on_or_before(mut d: NaiveDate) -> NaiveDate {
    while !is_business_day(d) {
        d -= Duration::days(1);
    }
    d
}

/// True on a US exchange holiday (see the module doc for the list).
pub fn is_holiday(d: NaiveDate) -> bool {
    let y = d.year();
    let fixed = |month, day| NaiveDate::from_ymd_opt(y, month, day).map(observed);
    let mut days = [
        fixed(1, 1).filter(|o| o.year() == y),
        nth_weekday(y, 1, Weekday::Mon, 3),
        nth_weekday(y, 2, Weekday::Mon, 3),
        easter(y).map(|e| e - Duration::days(2)),
        last_weekday(y, 5, Weekday::Mon),
        fixed(6, 19).filter(|_| y >= 2022),
        fixed(7, 4),
        nth_weekday(y, 9, Weekday::Mon, 1),
        nth_weekday(y, 11, Weekday::Thu, 4),
        fixed(12, 25),
    ]
    .into_iter()
    .flatten();
    // New Year's Day on a Saturday is not observed on the Friday before (the NYSE rule).
    days.any(|h| h == d)
}

/// A fixed-date holiday on a weekend is observed on the nearest weekday.
fn observed(d: NaiveDate) -> NaiveDate {
    match d.weekday() {
        Weekday::Sat if !(d.month() == 1 && d.day() == 1) => d - Duration::days(1),
        Weekday::Sat => d,
        Weekday::Sun => d + Duration::days(1),
        _ => d,
    }
}

fn last_weekday(year: i32, month: u32, weekday: Weekday) -> Option<NaiveDate> {
    let mut d = last_day_of_month(year, month);
    while d.weekday() != weekday {
        d -= Duration::days(1);
    }
    Some(d)
}

/// Easter Sunday (Gregorian), by the anonymous Gregorian algorithm (Meeus/Jones/Butcher).
fn easter(year: i32) -> Option<NaiveDate> {
    let a = year % 19;
    let b = year / 100;
    let c = year % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    NaiveDate::from_ymd_opt(year, month as u32, day as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn holidays_of_2026_and_2027() {
        // NYSE holiday calendar (nyse.com/markets/hours-calendars) for 2026 and 2027.
        for h in [
            "2026-01-01",
            "2026-01-19",
            "2026-02-16",
            "2026-04-03",
            "2026-05-25",
            "2026-06-19",
            "2026-07-03", // July 4th on a Saturday
            "2026-09-07",
            "2026-11-26",
            "2026-12-25",
            "2027-01-01",
            "2027-01-18",
            "2027-02-15",
            "2027-03-26",
            "2027-05-31",
            "2027-06-18", // Juneteenth on a Saturday
            "2027-07-05", // July 4th on a Sunday
            "2027-09-06",
            "2027-11-25",
            "2027-12-24", // Christmas on a Saturday
        ] {
            assert!(is_holiday(d(h)), "{h}");
            assert!(!is_business_day(d(h)), "{h}");
        }
        // New Year's Day 2028 is a Saturday: Friday 2027-12-31 stays a business day.
        assert!(is_business_day(d("2027-12-31")));
        assert!(is_business_day(d("2026-12-24")));
        assert!(!is_business_day(d("2026-12-05")));
    }

    #[test]
    fn business_day_steps() {
        assert_eq!(business_days_before(d("2027-01-25"), 3), d("2027-01-20"));
        assert_eq!(business_days_before(d("2026-12-28"), 1), d("2026-12-24"));
        assert_eq!(on_or_before(d("2027-04-25")), d("2027-04-23"));
    }

    #[test]
    fn the_exchange_date_is_chicago_time() {
        // 2026-12-10T05:30Z is still 2026-12-09 23:30 in Chicago (UTC-6 in winter).
        let at = Timestamp(1_796_880_600_000);
        assert_eq!(at.to_string(), "2026-12-10T05:30:00.000Z");
        assert_eq!(exchange_date(at), d("2026-12-09"));
        assert_eq!(
            start_of(d("2026-12-10")).to_string(),
            "2026-12-10T06:00:00.000Z"
        );
    }
}
