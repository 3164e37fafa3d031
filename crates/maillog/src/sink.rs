//! Where finished lines go: an O_APPEND file (text or JSON lines), syslog's /dev/log,
//! or stderr. Each line is
//! handed to the kernel in one write so lines of concurrent processes never interleave.

use crate::line::{LineSpec, Severity};
use crate::stamp::Stamp;
use crate::{LogError, LogTarget};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::Path;

/// syslog's local socket.
const DEV_LOG: &str = "/dev/log";

/// An opened log destination.
#[derive(Debug)]
pub(crate) enum Sink {
    File(File),
    /// One JSON object per line (json.rs).
    JsonFile(File),
    Syslog(UnixDatagram),
    /// Postfix command style: `service: msg`.
    Stderr,
    /// Daemon without /dev/log: whole file-shaped lines on stderr, so nothing is lost.
    StderrFull,
}

impl Sink {
    /// Opens the target now (before any chroot), so later writes need no path lookup.
    pub(crate) fn open(target: &LogTarget) -> Result<Sink, LogError> {
        match target {
            LogTarget::File(path) => open_file(path).map(Sink::File),
            LogTarget::JsonFile(path) => open_file(path).map(Sink::JsonFile),
            LogTarget::Syslog => Ok(connect_syslog().map_or(Sink::StderrFull, Sink::Syslog)),
            LogTarget::Stderr => Ok(Sink::Stderr),
        }
    }

    /// Formats and writes one record. Failures are dropped: logging must never take a
    /// daemon down, and there is nowhere better to report them.
    pub(crate) fn emit(
        &self,
        spec: &LineSpec,
        unix_time: i64,
        pid: u32,
        level: Severity,
        msg: &str,
    ) {
        match self {
            Sink::File(file) => {
                let line = spec.file_line(Stamp::local(unix_time), pid, level, msg);
                write_line(&mut &*file, line);
            }
            Sink::JsonFile(file) => {
                write_line(&mut &*file, spec.json_line(unix_time, pid, level, msg));
            }
            Sink::Syslog(socket) => {
                let line = spec.syslog_line(Stamp::local(unix_time), pid, level, msg);
                if socket.send(line.as_bytes()).is_err() {
                    // syslogd restarted or went away: keep the line on stderr instead.
                    let line = spec.file_line(Stamp::local(unix_time), pid, level, msg);
                    write_line(&mut std::io::stderr(), line);
                }
            }
            Sink::Stderr => write_line(&mut std::io::stderr(), spec.stderr_line(level, msg)),
            Sink::StderrFull => {
                let line = spec.file_line(Stamp::local(unix_time), pid, level, msg);
                write_line(&mut std::io::stderr(), line);
            }
        }
    }
}

pub(crate) fn open_file(path: &Path) -> Result<File, LogError> {
    // std adds O_CLOEXEC, so programs a daemon runs (pipe deliveries) do not inherit it.
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o644)
        .open(path)
        .map_err(|source| LogError::Open {
            path: path.to_path_buf(),
            source,
        })
}

fn connect_syslog() -> Option<UnixDatagram> {
    let socket = UnixDatagram::unbound().ok()?;
    socket.connect(DEV_LOG).ok()?;
    Some(socket)
}

/// Writes `line` plus a newline with one write(2). Only if the kernel takes part of it
/// (disk full, signal) is the rest written by further calls, rather than lost.
pub(crate) fn write_line<W: Write>(out: &mut W, line: String) {
    let mut buf = line.into_bytes();
    buf.push(b'\n');
    let mut rest = &buf[..];
    while !rest.is_empty() {
        match out.write(rest) {
            Ok(0) => return,
            Ok(n) => rest = &rest[n..],
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}
