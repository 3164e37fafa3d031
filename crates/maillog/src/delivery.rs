//! The one per-recipient delivery line every agent and qmgr's built-in transports log,
//! in the shape of Postfix's log_adhoc.c, which pflogsumm and log exporters parse:
//! `ID: to=<ADDR>, orig_to=<ORIG>, relay=R, conn_use=N, delay=T, delays=a/b/c/d,
//! dsn=X.Y.Z, status=STATUS (TEXT) class=CLASS`.
//!
//! `class=` (outcome.rs) is Rostfix's addition. It goes last: pflogsumm's pattern
//! requires `relay=`, `delay=`, `delays=`, `dsn=` and `status=` in that order with
//! nothing between them and ends with `(.*)$`, and prometheus-postfix-exporter's
//! requires `dsn=..., status=WORD ` followed by anything, so text after the reason is
//! the one place both ignore.
//!
//! Times follow Postfix's format_tv with two significant digits and at most two
//! decimals (delay_logging_resolution_limit's default): `0.04`, `0.5`, `1.5`, `13`,
//! trailing zeros never printed, `0` for nothing.

use crate::outcome::{classify, Outcome};
use std::fmt;

/// Significant digits Postfix keeps for sub-10-second times.
const SIGNIFICANT_DIGITS: u32 = 2;
/// Decimals at most (Postfix's delay_logging_resolution_limit default).
const MAX_DECIMALS: u32 = 2;
const MICROS: u64 = 1_000_000;

/// One delivery line. `status` is Postfix's status word (`sent`, `deferred`, `bounced`,
/// or a whole column such as `expired, returned to sender`); `text`, when present, is
/// the reason shown in parentheses.
#[derive(Debug, Clone)]
pub struct DeliveryLine<'a> {
    pub queue_id: &'a str,
    pub to: &'a str,
    /// Shown only when it differs from `to` (ignoring case, as Postfix does).
    pub orig_to: &'a str,
    pub relay: &'a str,
    /// Deliveries made over this connection so far; shown when above 1.
    pub conn_use: u32,
    /// Arrival to now, in seconds.
    pub delay: f64,
    /// Before qmgr took the message (a), in qmgr (b), connection set-up (c), and
    /// transmission (d), in seconds.
    pub delays: [f64; 4],
    pub dsn: &'a str,
    pub status: &'a str,
    pub text: Option<&'a str>,
}

impl fmt::Display for DeliveryLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: to=<{}>",
            printable(self.queue_id),
            printable(self.to)
        )?;
        if !self.orig_to.is_empty() && !self.orig_to.eq_ignore_ascii_case(self.to) {
            write!(f, ", orig_to=<{}>", printable(self.orig_to))?;
        }
        write!(f, ", relay={}", printable(self.relay))?;
        if self.conn_use > 1 {
            write!(f, ", conn_use={}", self.conn_use)?;
        }
        let [a, b, c, d] = self.delays.map(format_delay);
        write!(
            f,
            ", delay={}, delays={a}/{b}/{c}/{d}, dsn={}, status={}",
            format_delay(self.delay),
            printable(self.dsn),
            printable(self.status)
        )?;
        if let Some(text) = self.text {
            write!(f, " ({})", printable(text))?;
        }
        write!(f, " class={}", self.class())
    }
}

impl DeliveryLine<'_> {
    /// The outcome class of this line, as the JSON delivery log records it too.
    pub fn class(&self) -> crate::outcome::Class {
        classify(&Outcome::of(self.status, self.dsn, self.text.unwrap_or("")))
    }
}

/// Formats seconds as Postfix's delay columns do. Negative or non-finite values (a clock
/// step) show as `0`.
pub fn format_delay(secs: f64) -> String {
    let total_us = if secs.is_finite() && secs > 0.0 {
        (secs * MICROS as f64).round() as u64
    } else {
        0
    };
    let (mut sec, mut usec) = (total_us / MICROS, total_us % MICROS);
    let wid = 10u64.pow(SIGNIFICANT_DIGITS);
    // Resolution in microseconds: whole seconds from 10 s up, then one decimal per
    // significant digit the integer part leaves free, never finer than MAX_DECIMALS.
    let mut resolution = MICROS / 10u64.pow(MAX_DECIMALS);
    if sec > 0 {
        let mut n = 1;
        while sec >= n && n <= wid / 10 {
            n *= 10;
        }
        resolution = (MICROS / wid) * n;
    } else {
        while usec >= wid * resolution {
            resolution *= 10;
        }
    }
    if resolution > 1 {
        usec += resolution / 2;
        if usec >= MICROS {
            sec += 1;
            usec -= MICROS;
        }
    }
    let mut out = sec.to_string();
    if usec >= resolution {
        out.push('.');
        let (mut rest, mut unit) = (usec, MICROS / 10);
        while rest >= resolution && unit > 0 {
            out.push(char::from(b'0' + (rest / unit) as u8));
            rest %= unit;
            unit /= 10;
        }
    }
    out
}

/// Masks control characters, so queue-file, agent or peer text can never split a line
/// or hide part of it, whatever sink the line goes to.
pub fn printable(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_as_postfix_prints_them() {
        // Pairs taken from Postfix's format_tv behaviour with sig_dig 2, max_dig 2.
        for (secs, shown) in [
            (0.0, "0"),
            (0.0001, "0"),
            (0.004, "0"),
            (0.005, "0.01"),
            (0.043, "0.04"),
            (0.5, "0.5"),
            (0.50, "0.5"),
            (0.996, "1"),
            (1.0, "1"),
            (1.53, "1.5"),
            (3.26, "3.3"),
            (9.96, "10"),
            (13.4, "13"),
            (336.0, "336"),
            (432_000.2, "432000"),
            (-3.0, "0"),
            (f64::NAN, "0"),
        ] {
            assert_eq!(format_delay(secs), shown, "{secs}");
        }
    }

    fn line() -> DeliveryLine<'static> {
        DeliveryLine {
            queue_id: "3F2A81C0D4E",
            to: "alice@example.org",
            orig_to: "alice@example.org",
            relay: "local",
            conn_use: 0,
            delay: 0.12,
            delays: [0.1, 0.0, 0.0, 0.02],
            dsn: "2.0.0",
            status: "sent",
            text: Some("delivered to maildir"),
        }
    }

    #[test]
    fn shape_of_postfix_log_adhoc() {
        assert_eq!(
            line().to_string(),
            "3F2A81C0D4E: to=<alice@example.org>, relay=local, delay=0.12, \
             delays=0.1/0/0/0.02, dsn=2.0.0, status=sent (delivered to maildir) class=delivered"
        );
        let mut l = line();
        l.orig_to = "root@example.org";
        l.relay = "mx.example.org[192.0.2.1]:25";
        l.conn_use = 2;
        l.delay = 1.234;
        l.delays = [0.5, 0.0, 0.12, 12.4];
        assert_eq!(
            l.to_string(),
            "3F2A81C0D4E: to=<alice@example.org>, orig_to=<root@example.org>, \
             relay=mx.example.org[192.0.2.1]:25, conn_use=2, delay=1.2, \
             delays=0.5/0/0.12/12, dsn=2.0.0, status=sent (delivered to maildir) class=delivered"
        );
    }

    #[test]
    fn orig_to_differing_only_in_case_is_not_shown() {
        let mut l = line();
        l.orig_to = "Alice@Example.ORG";
        assert!(!l.to_string().contains("orig_to"));
    }

    #[test]
    fn status_without_text_and_masked_controls() {
        let mut l = line();
        l.to = "a\nb";
        l.status = "expired, returned to sender";
        l.text = None;
        let s = l.to_string();
        assert!(s.contains("to=<a?b>"));
        assert!(s.ends_with("status=expired, returned to sender class=other"));
    }
}
