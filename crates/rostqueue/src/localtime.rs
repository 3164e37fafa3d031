//! asctime(3) of localtime(3) without a date crate: "Mon Nov 23 09:35:12 2020\n".

#![allow(unsafe_code)] // every unsafe block here states why it is sound

const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// The local time of `secs` since the epoch in asctime's format (with its newline), or
/// `??` when the time cannot be converted (as showq prints).
pub fn asctime(secs: i64) -> String {
    // time_t is i64 on every target we build for.
    let t: libc::time_t = secs;
    // SAFETY: `tm` is a plain C struct for which all-zero bytes are a valid value (the
    // pointer field tm_zone may be null); localtime_r only writes into it.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are to live, properly aligned locals; localtime_r is the
    // thread-safe variant and keeps no reference to them after returning.
    let result = unsafe { libc::localtime_r(&t, &mut tm) };
    if result.is_null() {
        return "??".to_string();
    }
    let day = usize::try_from(tm.tm_wday)
        .ok()
        .and_then(|i| DAYS.get(i))
        .unwrap_or(&"???");
    let month = usize::try_from(tm.tm_mon)
        .ok()
        .and_then(|i| MONTHS.get(i))
        .unwrap_or(&"???");
    format!(
        "{day} {month}{:>3} {:02}:{:02}:{:02} {}\n",
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        i64::from(tm.tm_year) + 1900
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_is_asctime() {
        // Whatever the local zone, the shape is fixed: 3+1+3+3+1+8+1+year+newline.
        let s = asctime(1_606_123_512);
        assert_eq!(s.len(), 25, "{s:?}");
        assert!(s.ends_with('\n'));
        let b = s.as_bytes();
        assert_eq!(
            (b[3], b[7], b[10], b[13], b[16], b[19]),
            (b' ', b' ', b' ', b':', b':', b' ')
        );
        assert!(DAYS.contains(&&s[..3]));
        assert!(MONTHS.contains(&&s[4..7]));
    }
}
