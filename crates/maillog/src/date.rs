//! RFC 5322 dates (`Mon, 23 Nov 2026 09:35:12 +0100`) for the Date:, Received: and
//! notice headers every program writes, and the local UTC offset from the C library
//! (so TZ and /etc/localtime are honoured; call [`crate::init`] or [`local_offset`]
//! once before a chroot so libc has the zone cached).

#![allow(unsafe_code)] // every unsafe block here states why it is sound

use crate::stamp::civil_from_days;

/// Broken-down local time: (year, month 1-12, day, hour, minute, second, weekday 0=Sun).
pub fn broken_down(unix: i64, offset_secs: i32) -> (i64, u32, u32, u32, u32, u32, usize) {
    let local = unix + i64::from(offset_secs);
    let days = local.div_euclid(86_400);
    let secs = local.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let weekday = (days + 4).rem_euclid(7) as usize;
    (
        y,
        m,
        d,
        (secs / 3600) as u32,
        (secs / 60 % 60) as u32,
        (secs % 60) as u32,
        weekday,
    )
}

/// Formats `unix` seconds at the given offset from UTC.
pub fn format_rfc5322(unix: i64, offset_secs: i32) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (y, mo, d, h, mi, s, wd) = broken_down(unix, offset_secs);
    let sign = if offset_secs < 0 { '-' } else { '+' };
    let off = offset_secs.unsigned_abs() / 60;
    format!(
        "{}, {} {} {} {:02}:{:02}:{:02} {}{:02}{:02}",
        DAYS[wd],
        d,
        MONTHS[(mo - 1) as usize],
        y,
        h,
        mi,
        s,
        sign,
        off / 60,
        off % 60
    )
}

/// `YYYYMMDDhhmmss` at the given offset, for Message-Id values.
pub fn compact_timestamp(unix: i64, offset_secs: i32) -> String {
    let (y, mo, d, h, mi, s, _) = broken_down(unix, offset_secs);
    format!("{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}")
}

/// The local offset from UTC at `unix`, in seconds; 0 if the C library cannot tell.
pub fn local_offset(unix: i64) -> i32 {
    let t: libc::time_t = unix as libc::time_t;
    // SAFETY: `tm` is plain old data, so all-zero is a valid value; localtime_r only
    // writes into the `tm` we pass and reads `t`, both valid for the call's duration.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: see above; both pointers are to live, properly aligned locals.
    let res = unsafe { libc::localtime_r(&t, &mut tm) };
    if res.is_null() {
        0
    } else {
        tm.tm_gmtoff as i32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(format_rfc5322(0, 0), "Thu, 1 Jan 1970 00:00:00 +0000");
        // 2024-02-29 12:34:56 UTC, a leap day.
        assert_eq!(
            format_rfc5322(1_709_210_096, 0),
            "Thu, 29 Feb 2024 12:34:56 +0000"
        );
        assert_eq!(
            format_rfc5322(1_709_210_096, 3600),
            "Thu, 29 Feb 2024 13:34:56 +0100"
        );
        assert_eq!(
            format_rfc5322(1_709_210_096, -(5 * 3600 + 1800)),
            "Thu, 29 Feb 2024 07:04:56 -0530"
        );
        // Offset crossing midnight back into the previous day.
        assert_eq!(format_rfc5322(0, -3600), "Wed, 31 Dec 1969 23:00:00 -0100");
    }

    #[test]
    fn compact_stamp() {
        assert_eq!(compact_timestamp(1_709_210_096, 0), "20240229123456");
    }

    #[test]
    fn local_offset_is_sane() {
        assert!(local_offset(1_709_210_096).abs() <= 14 * 3600);
    }
}
