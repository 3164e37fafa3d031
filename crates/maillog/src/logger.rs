//! The `log::Log` implementation: filters by level and hands records to the sink.

use crate::line::{LineSpec, Severity};
use crate::sink::Sink;
use log::{Level, LevelFilter, Metadata, Record};
use std::time::{SystemTime, UNIX_EPOCH};

/// The process-wide logger.
#[derive(Debug)]
pub(crate) struct Logger {
    pub spec: LineSpec,
    /// `spec` with the service `cleanup`, for lines logged to [`crate::CLEANUP_TARGET`].
    pub cleanup_spec: LineSpec,
    pub sink: Sink,
    pub verbose: bool,
}

impl Logger {
    /// The most detailed level this logger writes.
    pub(crate) fn max_level(&self) -> LevelFilter {
        if self.verbose {
            LevelFilter::Trace
        } else {
            LevelFilter::Info
        }
    }
}

impl log::Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= Level::Info || self.verbose
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        // Most messages are plain strings; avoid a format round trip for them.
        let owned;
        let msg = match record.args().as_str() {
            Some(s) => s,
            None => {
                owned = record.args().to_string();
                &owned
            }
        };
        let severity = if record.level() == Level::Error && record.target() == crate::FATAL_TARGET {
            Severity::Fatal
        } else {
            Severity::from(record.level())
        };
        let spec = if record.target() == crate::CLEANUP_TARGET {
            &self.cleanup_spec
        } else {
            &self.spec
        };
        // The pid is read per line: a forked child must not log under its parent's pid.
        self.sink.emit(spec, now, std::process::id(), severity, msg);
    }

    fn flush(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LogTarget;
    use log::Log;
    use std::path::{Path, PathBuf};

    fn temp_path(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("rostfix-maillog-{}-{name}", std::process::id()))
    }

    fn logger(path: &Path, verbose: bool) -> Logger {
        let spec = LineSpec {
            hostname: "host.example".into(),
            syslog_name: "rostfix".into(),
            service: "test".into(),
        };
        Logger {
            cleanup_spec: LineSpec {
                service: "cleanup".into(),
                ..spec.clone()
            },
            spec,
            sink: Sink::open(&LogTarget::File(path.to_path_buf())).unwrap(),
            verbose,
        }
    }

    fn record(logger: &Logger, level: Level, msg: &str) {
        logger.log(
            &Record::builder()
                .level(level)
                .args(format_args!("{msg}"))
                .build(),
        );
    }

    #[test]
    fn two_threads_write_whole_lines() {
        let path = temp_path("threads");
        let _ = std::fs::remove_file(&path);
        let logger = std::sync::Arc::new(logger(&path, false));
        let lines_each = 500;
        let payload_a = "a".repeat(300);
        let payload_b = "b".repeat(700);
        let threads: Vec<_> = [payload_a.clone(), payload_b.clone()]
            .into_iter()
            .map(|payload| {
                let logger = logger.clone();
                std::thread::spawn(move || {
                    for i in 0..lines_each {
                        record(&logger, Level::Info, &format!("{i} {payload}"));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2 * lines_each);
        let tag = format!(" host.example rostfix/test[{}]: ", std::process::id());
        let (mut a, mut b) = (0, 0);
        for line in lines {
            let (_, msg) = line.split_once(&tag).expect("line has the tag");
            let (_, payload) = msg.split_once(' ').unwrap();
            if payload == payload_a {
                a += 1;
            } else if payload == payload_b {
                b += 1;
            } else {
                panic!("mixed line: {line}");
            }
        }
        assert_eq!((a, b), (lines_each, lines_each));
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn debug_only_when_verbose() {
        let path = temp_path("verbose");
        let _ = std::fs::remove_file(&path);
        let quiet = logger(&path, false);
        record(&quiet, Level::Debug, "hidden");
        record(&quiet, Level::Warn, "shown");
        let loud = logger(&path, true);
        record(&loud, Level::Debug, "detail");
        let text = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        assert!(!text.contains("hidden"));
        assert!(text.contains(": warning: shown\n"));
        assert!(text.contains(": detail\n"));
        assert_eq!(quiet.max_level(), LevelFilter::Info);
        assert_eq!(loud.max_level(), LevelFilter::Trace);
    }

    #[test]
    fn fatal_target_logs_fatal_not_error() {
        let path = temp_path("fatal");
        let _ = std::fs::remove_file(&path);
        let l = logger(&path, false);
        l.log(
            &Record::builder()
                .level(Level::Error)
                .target(crate::FATAL_TARGET)
                .args(format_args!("bad config"))
                .build(),
        );
        record(&l, Level::Error, "plain");
        let text = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        assert!(text.contains("]: fatal: bad config\n"), "{text}");
        assert!(!text.contains("error: fatal:"), "{text}");
        assert!(text.contains("]: error: plain\n"), "{text}");
    }

    #[test]
    fn cleanup_target_logs_in_cleanups_name() {
        let path = temp_path("cleanup");
        let _ = std::fs::remove_file(&path);
        let l = logger(&path, false);
        l.log(
            &Record::builder()
                .level(Level::Info)
                .target(crate::CLEANUP_TARGET)
                .args(format_args!("ABC: message-id=<m@h>"))
                .build(),
        );
        record(&l, Level::Info, "ABC: client=x");
        let text = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        let pid = std::process::id();
        assert!(
            text.contains(&format!(" rostfix/cleanup[{pid}]: ABC: message-id=<m@h>\n")),
            "{text}"
        );
        assert!(
            text.contains(&format!(" rostfix/test[{pid}]: ABC: client=x\n")),
            "{text}"
        );
    }

    #[test]
    fn file_open_error_names_the_path() {
        let err = Sink::open(&LogTarget::File("/nonexistent-dir/x/maillog".into())).unwrap_err();
        assert!(err.to_string().starts_with("/nonexistent-dir/x/maillog: "));
    }
}
