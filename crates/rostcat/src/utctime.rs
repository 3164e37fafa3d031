//! asctime(3)'s shape for a UTC time, by calendar arithmetic (no libc, no unsafe):
//! "Thu Dec  3 19:06:24 2026". postcat prints local time; rostcat says UTC instead of
//! depending on the zone of whoever runs it.

const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `secs` since the epoch as asctime prints it (without the newline), in UTC.
pub fn asctime_utc(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let in_day = secs.rem_euclid(86_400);
    // 1970-01-01 was a Thursday (DAYS starts there).
    let weekday = DAYS[days.rem_euclid(7) as usize];
    let (year, month, day) = civil_from_days(days);
    format!(
        "{weekday} {}{day:>3} {:02}:{:02}:{:02} {year}",
        MONTHS[(month - 1) as usize],
        in_day / 3600,
        in_day % 3600 / 60,
        in_day % 60
    )
}

/// Year, month (1..=12) and day of `days` since 1970-01-01 in the proleptic Gregorian
/// calendar: counts 400-year eras from 0000-03-01, where leap days fall at year ends.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(asctime_utc(0), "Thu Jan  1 00:00:00 1970");
        // date -u -d @1606123512
        assert_eq!(asctime_utc(1_606_123_512), "Mon Nov 23 09:25:12 2020");
        // A leap day and the day after.
        assert_eq!(asctime_utc(951_782_400), "Tue Feb 29 00:00:00 2000");
        assert_eq!(asctime_utc(951_868_799), "Tue Feb 29 23:59:59 2000");
        assert_eq!(asctime_utc(-1), "Wed Dec 31 23:59:59 1969");
    }
}
