//! Postfix-shaped log lines, so grep, pflogsumm and dashboards keep working:
//! `Nov 23 09:35:12 myhostname rostfix/smtpd[1234]: 3F2A81C0D4E: client=...`.
//!
//! Written to `maillog_file` (opened O_APPEND before any chroot, one write per line so
//! lines from many processes never interleave) or, when that is empty, to syslog's
//! `/dev/log` (connected before chroot). Warnings are prefixed `warning: `, errors
//! `error: `, as Postfix does; debug lines only with `-v`.

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("{path}: {source}")]
    Open { path: std::path::PathBuf, #[source] source: std::io::Error },
    #[error("a logger is already installed")]
    AlreadyInstalled,
}

/// Where log lines go.
#[derive(Debug, Clone)]
pub enum LogTarget {
    /// Append to this file.
    File(std::path::PathBuf),
    /// syslog via /dev/log, facility mail.
    Syslog,
    /// Standard error (commands, foreground debugging).
    Stderr,
}

/// Installs the global logger for `syslog_name/service` (e.g. "rostfix", "smtpd").
/// `hostname` is the host column. `verbose` enables debug lines.
pub fn init(syslog_name: &str, service: &str, hostname: &str, target: LogTarget, verbose: bool) -> Result<(), LogError> {
    let _ = (syslog_name, service, hostname, target, verbose);
    todo!()
}

/// Formats one line exactly as written to a file (without the trailing newline), for
/// tests and for tools that print log-shaped output. `unix_time` is seconds.
pub fn format_line(unix_time: i64, hostname: &str, syslog_name: &str, service: &str, pid: u32, level: log::Level, msg: &str) -> String {
    let _ = (unix_time, hostname, syslog_name, service, pid, level, msg);
    todo!()
}
