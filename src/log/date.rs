//! Wall-clock dates for log lines without touching libc's time zone lock on
//! an executor: the local UTC offset is read once at start and dates are
//! computed from it with integer arithmetic. (A daylight-saving change is
//! picked up at the next restart.)

use std::fmt::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Local time zone as a fixed offset from UTC, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    pub offset_secs: i64,
}

impl Clock {
    /// The process's current local offset (UTC if it cannot be read).
    pub fn local() -> Self {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as libc::time_t);
        // SAFETY: localtime_r writes only into `tm`, which we own.
        let mut tm: libc::tm = unsafe { std::mem::zeroed() };
        let ok = unsafe { !libc::localtime_r(&now, &mut tm).is_null() };
        Clock {
            offset_secs: if ok { tm.tm_gmtoff } else { 0 },
        }
    }

    pub fn utc() -> Self {
        Clock { offset_secs: 0 }
    }

    pub fn date(&self, t: SystemTime) -> Date {
        let since = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
        let local = since.as_secs() as i64 + self.offset_secs;
        let days = local.div_euclid(86_400);
        let secs = local.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        Date {
            year,
            month,
            day,
            hour: (secs / 3600) as u32,
            minute: (secs / 60 % 60) as u32,
            second: (secs % 60) as u32,
            micros: since.subsec_micros(),
            offset_secs: self.offset_secs,
        }
    }
}

/// A broken-down local date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Date {
    pub year: i64,
    /// 1..=12
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub micros: u32,
    pub offset_secs: i64,
}

impl Date {
    fn month_name(&self) -> &'static str {
        MONTHS[(self.month.clamp(1, 12) - 1) as usize]
    }

    /// HAProxy's log date: `06/Feb/2009:12:14:14.655`.
    pub fn haproxy(&self) -> String {
        format!(
            "{:02}/{}/{:04}:{:02}:{:02}:{:02}.{:03}",
            self.day,
            self.month_name(),
            self.year,
            self.hour,
            self.minute,
            self.second,
            self.micros / 1000
        )
    }

    /// [`Date::haproxy`] appended to `out` (no allocation of its own).
    pub fn write_haproxy(&self, out: &mut String) {
        let _ = write!(
            out,
            "{:02}/{}/{:04}:{:02}:{:02}:{:02}.{:03}",
            self.day,
            self.month_name(),
            self.year,
            self.hour,
            self.minute,
            self.second,
            self.micros / 1000
        );
    }

    /// The common log format date: `06/Feb/2009:12:14:14 +0000`
    /// (HAProxy `%T`, `%Tl`, `%trg`, `%trl`).
    pub fn write_clf(&self, out: &mut String) {
        let sign = if self.offset_secs < 0 { '-' } else { '+' };
        let off = self.offset_secs.unsigned_abs();
        let _ = write!(
            out,
            "{:02}/{}/{:04}:{:02}:{:02}:{:02} {sign}{:02}{:02}",
            self.day,
            self.month_name(),
            self.year,
            self.hour,
            self.minute,
            self.second,
            off / 3600,
            off / 60 % 60
        );
    }

    /// RFC 3164 TIMESTAMP: `Feb  6 12:14:14`.
    pub fn rfc3164(&self) -> String {
        format!(
            "{} {:>2} {:02}:{:02}:{:02}",
            self.month_name(),
            self.day,
            self.hour,
            self.minute,
            self.second
        )
    }

    /// RFC 3339 / 5424 with microseconds: `2009-02-06T12:14:14.655000+01:00`.
    pub fn rfc3339(&self) -> String {
        let sign = if self.offset_secs < 0 { '-' } else { '+' };
        let off = self.offset_secs.unsigned_abs();
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}{sign}{:02}:{:02}",
            self.year,
            self.month,
            self.day,
            self.hour,
            self.minute,
            self.second,
            self.micros,
            off / 3600,
            off / 60 % 60
        )
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64, micros: u32) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_micros(u64::from(micros))
    }

    #[test]
    fn formats_known_instants() {
        // 2009-02-06T12:14:14.655Z (HAProxy's documentation example date).
        let t = at(1_233_922_454, 655_123);
        let d = Clock::utc().date(t);
        assert_eq!(d.haproxy(), "06/Feb/2009:12:14:14.655");
        assert_eq!(d.rfc3164(), "Feb  6 12:14:14");
        assert_eq!(d.rfc3339(), "2009-02-06T12:14:14.655123+00:00");
        let east = Clock { offset_secs: 3600 }.date(t);
        assert_eq!(east.rfc3339(), "2009-02-06T13:14:14.655123+01:00");
        let west = Clock {
            offset_secs: -(5 * 3600 + 1800),
        }
        .date(at(0, 0));
        assert_eq!(west.rfc3339(), "1969-12-31T18:30:00.000000-05:30");
    }

    #[test]
    fn calendar_edges() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        // 2000-02-29 (leap by the 400 rule) and 2100-03-01 (2100 not leap).
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(47_541), (2100, 3, 1));
        assert_eq!(civil_from_days(47_540), (2100, 2, 28));
    }
}
