//! Postfix-shaped log lines, so grep, pflogsumm and dashboards keep working:
//! `Nov 23 09:35:12 myhostname rostfix/smtpd[1234]: 3F2A81C0D4E: client=...`.
//!
//! Written to `maillog_file` (opened O_APPEND before any chroot, one write per line so
//! lines from many processes never interleave) or, when that is empty, to syslog's
//! `/dev/log` (connected before chroot). Warnings are prefixed `warning: `, errors
//! `error: `, as Postfix does; debug lines only with `-v`. The error a process exits on
//! is logged with [`fatal!`] and prefixed `fatal: `, as Postfix's msg_fatal does.
//!
//! With `rostfix_maillog_format = json` the file gets one JSON object per line instead
//! (json.rs); syslog and stderr stay text.
//!
//! CR, LF and NUL in any logged text become spaces, so text from a client can never
//! forge a log line. Messages longer than 8 KiB are cut.

#![deny(unsafe_code)]

mod attempt_log;
pub mod date;
mod delivery;
mod json;
mod line;
mod logger;
pub mod outcome;
mod sink;
mod stamp;

pub use attempt_log::{AttemptLog, AttemptRecord};
pub use delivery::{format_delay, printable, DeliveryLine};
use std::sync::atomic::{AtomicBool, Ordering};

/// The `log` target that marks an error line as fatal: the logger prints it with
/// `fatal: ` instead of `error: `. Use it through [`fatal!`].
pub const FATAL_TARGET: &str = "fatal";

/// The `log` target of the lines Postfix's cleanup(8) writes (`ID: message-id=<...>`,
/// content-check actions such as `ID: reject: header ...`). Rostfix has no cleanup
/// daemon: whichever process receives the message writes them, and the logger tags
/// them `cleanup` as Postfix does, so that log readers (pflogsumm, the Prometheus
/// postfix exporter) count them where they expect them. Use it through [`cleanup!`].
pub const CLEANUP_TARGET: &str = "cleanup";

/// Logs an info line in cleanup's name (see [`CLEANUP_TARGET`]).
#[macro_export]
macro_rules! cleanup {
    ($($arg:tt)+) => {
        $crate::__log::info!(target: $crate::CLEANUP_TARGET, $($arg)+)
    };
}

/// Logs the error the process is about to exit on: `fatal: MESSAGE` (at error level,
/// so syslog and level filters treat it as one), where `log::error!` would print
/// `error: MESSAGE`.
#[macro_export]
macro_rules! fatal {
    ($($arg:tt)+) => {
        $crate::__log::error!(target: $crate::FATAL_TARGET, $($arg)+)
    };
}

/// For [`fatal!`]: the caller need not depend on `log` under that name.
#[doc(hidden)]
pub use log as __log;

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("{path}: {source}")]
    Open {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("a logger is already installed")]
    AlreadyInstalled,
    #[error("rostfix_maillog_format = {0}: expected text or json")]
    Format(String),
}

/// Where log lines go.
#[derive(Debug, Clone)]
pub enum LogTarget {
    /// Append to this file.
    File(std::path::PathBuf),
    /// Append one JSON object per line to this file (`rostfix_maillog_format = json`).
    JsonFile(std::path::PathBuf),
    /// syslog via /dev/log, facility mail. When /dev/log cannot be reached, whole
    /// file-shaped lines go to standard error instead.
    Syslog,
    /// Standard error (commands, foreground debugging): `service: msg`, like Postfix's
    /// commands (`postqueue: warning: ...`).
    Stderr,
}

/// The target for `maillog_file` and `rostfix_maillog_format` as main.cf sets them:
/// syslog when the file is empty, else the file as text or (format `json`) JSON lines.
/// An unknown format is refused, naming the parameter.
pub fn target_for(maillog_file: &str, format: &str) -> Result<LogTarget, LogError> {
    let path = std::path::PathBuf::from(maillog_file);
    match (maillog_file.is_empty(), format) {
        (_, f) if f != "text" && f != "json" => Err(LogError::Format(f.to_string())),
        (true, _) => Ok(LogTarget::Syslog),
        (false, "json") => Ok(LogTarget::JsonFile(path)),
        (false, _) => Ok(LogTarget::File(path)),
    }
}

/// Set by the first [`init`]; a second call is refused before it opens anything.
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// Installs the global logger for `syslog_name/service` (e.g. "rostfix", "smtpd").
/// `hostname` is the host column. `verbose` enables debug lines.
///
/// Call before any chroot: it loads the time zone and opens the log file or connects to
/// /dev/log. May be called once per process; later calls return
/// [`LogError::AlreadyInstalled`].
pub fn init(
    syslog_name: &str,
    service: &str,
    hostname: &str,
    target: LogTarget,
    verbose: bool,
) -> Result<(), LogError> {
    if INSTALLED.swap(true, Ordering::SeqCst) {
        return Err(LogError::AlreadyInstalled);
    }
    stamp::load_zone();
    let sink = match sink::Sink::open(&target) {
        Ok(sink) => sink,
        Err(e) => {
            // Nothing was installed: let the caller retry with another target.
            INSTALLED.store(false, Ordering::SeqCst);
            return Err(e);
        }
    };
    let spec = line::LineSpec {
        hostname: hostname.to_string(),
        syslog_name: syslog_name.to_string(),
        service: service.to_string(),
    };
    let cleanup_spec = line::LineSpec {
        service: CLEANUP_TARGET.to_string(),
        ..spec.clone()
    };
    let logger = logger::Logger {
        spec,
        cleanup_spec,
        sink,
        verbose,
    };
    let max_level = logger.max_level();
    // The logger lives for the rest of the process; leaking it is how `log` wants it.
    let logger: &'static logger::Logger = Box::leak(Box::new(logger));
    log::set_logger(logger).map_err(|_| LogError::AlreadyInstalled)?;
    log::set_max_level(max_level);
    Ok(())
}

/// Formats one line exactly as written to a file (without the trailing newline), for
/// tests and for tools that print log-shaped output. `unix_time` is seconds.
pub fn format_line(
    unix_time: i64,
    hostname: &str,
    syslog_name: &str,
    service: &str,
    pid: u32,
    level: log::Level,
    msg: &str,
) -> String {
    let spec = line::LineSpec {
        hostname: hostname.to_string(),
        syslog_name: syslog_name.to_string(),
        service: service.to_string(),
    };
    spec.file_line(stamp::Stamp::local(unix_time), pid, level, msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_line_uses_local_time_and_postfix_shape() {
        stamp::load_zone();
        let t = 1_732_354_512;
        let line = format_line(t, "mx", "rostfix", "qmgr", 42, log::Level::Warn, "a\nb");
        let mut expected = String::new();
        stamp::Stamp::local(t).write_to(&mut expected);
        expected.push_str(" mx rostfix/qmgr[42]: warning: a b");
        assert_eq!(line, expected);
        // `Mon DD HH:MM:SS ` is always 16 characters.
        assert_eq!(&line[15..16], " ");
        assert_eq!(&line[16..], "mx rostfix/qmgr[42]: warning: a b");
    }

    #[test]
    fn init_installs_once_and_writes_to_the_file() {
        let path =
            std::env::temp_dir().join(format!("rostfix-maillog-init-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        init("rostfix", "unit", "h", LogTarget::File(path.clone()), false).unwrap();
        log::warn!("first\r\nline");
        log::debug!("not verbose");
        let again = init("rostfix", "unit", "h", LogTarget::Stderr, false);
        assert!(matches!(again, Err(LogError::AlreadyInstalled)));
        let text = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        let suffix = format!(
            " h rostfix/unit[{}]: warning: first  line\n",
            std::process::id()
        );
        assert!(text.ends_with(&suffix), "{text:?}");
        assert_eq!(text.lines().count(), 1);
    }
}
