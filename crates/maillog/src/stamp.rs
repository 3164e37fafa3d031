//! The BSD syslog timestamp (`Nov  3 09:05:12`) in local time, via libc's localtime_r.
//!
//! glibc's localtime_r loads the time zone once and then keeps using it, so calling
//! [`load_zone`] before a chroot keeps log times local even when /etc/localtime is no
//! longer reachable.

#![allow(unsafe_code)] // every unsafe block here states why it is sound

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// The broken-down parts of a timestamp that a log line shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    /// 0..=11
    pub month: usize,
    /// 1..=31
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

// The libc crate does not declare tzset on every target; it is POSIX and present in
// both glibc and musl with exactly this signature.
extern "C" {
    fn tzset();
}

/// Loads the local time zone into libc's cache (reads TZ and /etc/localtime).
pub(crate) fn load_zone() {
    // SAFETY: tzset takes no arguments, returns nothing and only initialises libc's own
    // time-zone state (glibc serialises it with an internal lock); the declaration above
    // matches POSIX `void tzset(void)`. Nothing in this crate modifies TZ.
    unsafe { tzset() }
}

impl Stamp {
    /// `unix_time` in the local time zone; falls back to UTC fields when localtime_r
    /// fails (out-of-range time), so a log line is never lost to a clock problem.
    pub(crate) fn local(unix_time: i64) -> Stamp {
        let t: libc::time_t = unix_time as libc::time_t;
        // SAFETY: libc::tm is plain old data (integers and a pointer that localtime_r
        // sets), so the all-zero value is valid.
        let mut tm: libc::tm = unsafe { std::mem::zeroed() };
        // SAFETY: both pointers refer to live, properly aligned locals for the duration of
        // the call; localtime_r is the reentrant variant and writes only into `tm`.
        let ok = unsafe { !libc::localtime_r(&t, &mut tm).is_null() };
        if ok {
            Stamp::from_tm(&tm)
        } else {
            Stamp::utc(unix_time)
        }
    }

    /// `unix_time` in UTC, computed without libc (also used by tests, which must not
    /// depend on the machine's zone).
    pub(crate) fn utc(unix_time: i64) -> Stamp {
        let days = unix_time.div_euclid(86_400);
        let secs = unix_time.rem_euclid(86_400);
        let (_, month, day) = civil_from_days(days);
        Stamp {
            month: (month - 1) as usize,
            day,
            hour: (secs / 3600) as u32,
            minute: ((secs / 60) % 60) as u32,
            second: (secs % 60) as u32,
        }
    }

    fn from_tm(tm: &libc::tm) -> Stamp {
        Stamp {
            month: tm.tm_mon.clamp(0, 11) as usize,
            day: tm.tm_mday.clamp(1, 31) as u32,
            hour: tm.tm_hour.clamp(0, 23) as u32,
            minute: tm.tm_min.clamp(0, 59) as u32,
            // 60 is a leap second; keep it as libc reports it.
            second: tm.tm_sec.clamp(0, 60) as u32,
        }
    }

    /// Appends `Mon DD HH:MM:SS`, the day padded with a space as syslog does.
    pub(crate) fn write_to(&self, out: &mut String) {
        use std::fmt::Write;
        // Writing to a String cannot fail.
        let _ = write!(
            out,
            "{} {:>2} {:02}:{:02}:{:02}",
            MONTHS[self.month.min(11)],
            self.day,
            self.hour,
            self.minute,
            self.second
        );
    }
}

/// Howard Hinnant's days-to-civil algorithm: (year, month 1..=12, day 1..=31).
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
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

    fn text(s: Stamp) -> String {
        let mut out = String::new();
        s.write_to(&mut out);
        out
    }

    #[test]
    fn single_digit_day_is_space_padded() {
        // 2024-11-03 09:05:07 UTC
        assert_eq!(text(Stamp::utc(1_730_624_707)), "Nov  3 09:05:07");
    }

    #[test]
    fn two_digit_day_and_end_of_year() {
        // 2023-12-31 23:59:59 UTC
        assert_eq!(text(Stamp::utc(1_704_067_199)), "Dec 31 23:59:59");
        // one second later
        assert_eq!(text(Stamp::utc(1_704_067_200)), "Jan  1 00:00:00");
    }

    #[test]
    fn leap_day() {
        // 2024-02-29 12:00:00 UTC
        assert_eq!(text(Stamp::utc(1_709_208_000)), "Feb 29 12:00:00");
    }

    #[test]
    fn before_epoch() {
        // 1969-12-31 23:59:59 UTC
        assert_eq!(text(Stamp::utc(-1)), "Dec 31 23:59:59");
    }

    #[test]
    fn local_agrees_with_libc_fields() {
        load_zone();
        let s = Stamp::local(1_730_624_707);
        // Whatever the zone, minutes and seconds of this instant are the same in every
        // zone with a whole-quarter-hour offset (all current ones).
        assert_eq!(s.second, 7);
        assert_eq!(s.minute % 15, 5);
        assert!(s.month == 10 && (2..=4).contains(&s.day));
    }
}
