//! Building log lines: level prefixes, sanitising, and the three shapes (file, syslog
//! datagram, stderr).

use crate::stamp::Stamp;
use log::Level;

/// Longest message text kept in one line; longer text is cut (on a character boundary)
/// and marked, so a hostile peer cannot make one log write unbounded.
pub(crate) const MAX_MSG: usize = 8192;

/// syslog facility "mail".
const FACILITY_MAIL: u8 = 2;

/// Postfix's severities: the `log` crate's levels plus fatal, the error a process
/// exits on, which `log` has no level for (see [`crate::FATAL_TARGET`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Severity {
    Fatal,
    Error,
    Warning,
    Info,
    Debug,
}

impl From<Level> for Severity {
    fn from(level: Level) -> Severity {
        match level {
            Level::Error => Severity::Error,
            Level::Warn => Severity::Warning,
            Level::Info => Severity::Info,
            Level::Debug | Level::Trace => Severity::Debug,
        }
    }
}

/// Postfix's severity word before the message; info and debug have none.
pub(crate) fn level_prefix(severity: Severity) -> &'static str {
    match severity {
        Severity::Fatal => "fatal: ",
        Severity::Error => "error: ",
        Severity::Warning => "warning: ",
        Severity::Info | Severity::Debug => "",
    }
}

/// syslog PRI for facility mail: facility * 8 + severity. Fatal is LOG_CRIT, as
/// Postfix's msg_fatal logs it.
pub(crate) fn syslog_pri(severity: Severity) -> u8 {
    let code = match severity {
        Severity::Fatal => 2,
        Severity::Error => 3,
        Severity::Warning => 4,
        Severity::Info => 6,
        Severity::Debug => 7,
    };
    FACILITY_MAIL * 8 + code
}

/// Appends `text` with CR, LF and NUL replaced by spaces, so text from the network can
/// never start a forged log line (or cut one short for C readers).
pub(crate) fn push_sanitized(out: &mut String, text: &str) {
    out.extend(text.chars().map(|c| {
        if matches!(c, '\r' | '\n' | '\0') {
            ' '
        } else {
            c
        }
    }));
}

/// Appends the level prefix and the sanitised message, cut at [`MAX_MSG`] bytes.
fn push_message(out: &mut String, severity: Severity, msg: &str) {
    out.push_str(level_prefix(severity));
    if msg.len() <= MAX_MSG {
        push_sanitized(out, msg);
    } else {
        let mut cut = MAX_MSG;
        while !msg.is_char_boundary(cut) {
            cut -= 1;
        }
        push_sanitized(out, &msg[..cut]);
        out.push_str("...[truncated]");
    }
}

/// Appends `syslog_name/service[pid]: `.
fn push_tag(out: &mut String, syslog_name: &str, service: &str, pid: u32) {
    push_sanitized(out, syslog_name);
    out.push('/');
    push_sanitized(out, service);
    out.push('[');
    out.push_str(&pid.to_string());
    out.push_str("]: ");
}

/// The parts of a line that do not change between lines of one process.
#[derive(Debug, Clone)]
pub(crate) struct LineSpec {
    pub hostname: String,
    pub syslog_name: String,
    pub service: String,
}

impl LineSpec {
    /// `Mon DD HH:MM:SS host name/service[pid]: prefix msg` (no newline).
    pub(crate) fn file_line(
        &self,
        stamp: Stamp,
        pid: u32,
        level: impl Into<Severity>,
        msg: &str,
    ) -> String {
        let mut out = String::with_capacity(64 + msg.len().min(MAX_MSG));
        stamp.write_to(&mut out);
        out.push(' ');
        push_sanitized(&mut out, &self.hostname);
        out.push(' ');
        push_tag(&mut out, &self.syslog_name, &self.service, pid);
        push_message(&mut out, level.into(), msg);
        out
    }

    /// `<PRI>Mon DD HH:MM:SS name/service[pid]: prefix msg` (syslogd adds the host).
    pub(crate) fn syslog_line(
        &self,
        stamp: Stamp,
        pid: u32,
        level: impl Into<Severity>,
        msg: &str,
    ) -> String {
        let mut out = String::with_capacity(64 + msg.len().min(MAX_MSG));
        out.push('<');
        let level = level.into();
        out.push_str(&syslog_pri(level).to_string());
        out.push('>');
        stamp.write_to(&mut out);
        out.push(' ');
        push_tag(&mut out, &self.syslog_name, &self.service, pid);
        push_message(&mut out, level, msg);
        out
    }

    /// `service: prefix msg`, as Postfix's commands print on stderr.
    pub(crate) fn stderr_line(&self, level: impl Into<Severity>, msg: &str) -> String {
        let mut out = String::with_capacity(32 + msg.len().min(MAX_MSG));
        push_sanitized(&mut out, &self.service);
        out.push_str(": ");
        push_message(&mut out, level.into(), msg);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> LineSpec {
        LineSpec {
            hostname: "mx.example.org".into(),
            syslog_name: "rostfix".into(),
            service: "smtpd".into(),
        }
    }

    // 2024-11-23 09:35:12 UTC
    const T: i64 = 1_732_354_512;

    #[test]
    fn file_line_shape() {
        let line = spec().file_line(Stamp::utc(T), 1234, Level::Info, "3F2A81C0D4E: client=x");
        assert_eq!(
            line,
            "Nov 23 09:35:12 mx.example.org rostfix/smtpd[1234]: 3F2A81C0D4E: client=x"
        );
    }

    #[test]
    fn level_prefixes() {
        let s = spec();
        let st = Stamp::utc(T);
        assert!(s
            .file_line(st, 1, Level::Warn, "m")
            .ends_with("[1]: warning: m"));
        assert!(s
            .file_line(st, 1, Level::Error, "m")
            .ends_with("[1]: error: m"));
        assert!(s.file_line(st, 1, Level::Debug, "m").ends_with("[1]: m"));
        assert!(s.file_line(st, 1, Level::Trace, "m").ends_with("[1]: m"));
        assert!(s
            .file_line(st, 1, Severity::Fatal, "m")
            .ends_with("[1]: fatal: m"));
    }

    #[test]
    fn syslog_line_shape_and_priority() {
        let s = spec();
        let st = Stamp::utc(T);
        assert_eq!(
            s.syslog_line(st, 7, Level::Info, "hello"),
            "<22>Nov 23 09:35:12 rostfix/smtpd[7]: hello"
        );
        assert!(s.syslog_line(st, 7, Level::Error, "x").starts_with("<19>"));
        assert!(s.syslog_line(st, 7, Level::Warn, "x").starts_with("<20>"));
        assert!(s.syslog_line(st, 7, Level::Debug, "x").starts_with("<23>"));
        assert!(s
            .syslog_line(st, 7, Severity::Fatal, "x")
            .starts_with("<18>"));
    }

    #[test]
    fn stderr_line_shape() {
        let s = LineSpec {
            service: "rostqueue".into(),
            ..spec()
        };
        assert_eq!(
            s.stderr_line(Level::Warn, "mail system is down"),
            "rostqueue: warning: mail system is down"
        );
    }

    #[test]
    fn forged_lines_are_flattened() {
        let line = spec().file_line(
            Stamp::utc(T),
            1,
            Level::Info,
            "a\r\nNov 23 09:35:12 mx rostfix/qmgr[2]: X: removed\0z",
        );
        assert!(!line.contains(['\r', '\n', '\0']));
        assert!(line.ends_with("a  Nov 23 09:35:12 mx rostfix/qmgr[2]: X: removed z"));
    }

    #[test]
    fn names_are_sanitized_too() {
        let s = LineSpec {
            hostname: "h\nx".into(),
            syslog_name: "r\r".into(),
            service: "s\0".into(),
        };
        let line = s.file_line(Stamp::utc(T), 1, Level::Info, "m");
        assert_eq!(line, "Nov 23 09:35:12 h x r /s [1]: m");
    }

    #[test]
    fn long_messages_are_cut_on_a_char_boundary() {
        let msg = "é".repeat(MAX_MSG); // 2 bytes each
        let line = spec().stderr_line(Level::Info, &msg);
        assert!(line.ends_with("...[truncated]"));
        assert!(line.len() <= "smtpd: ".len() + MAX_MSG + "...[truncated]".len());
    }

    proptest::proptest! {
        #[test]
        fn no_control_line_breaks_ever(msg in ".*", host in ".*") {
            let s = LineSpec { hostname: host, ..spec() };
            let line = s.file_line(Stamp::utc(T), 1, Level::Warn, &msg);
            proptest::prop_assert!(!line.contains(['\r', '\n', '\0']));
            proptest::prop_assert!(line.starts_with("Nov 23 09:35:12 "));
        }
    }
}
