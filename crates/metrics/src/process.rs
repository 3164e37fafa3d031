//! One [`Reporter`] for a whole process, for daemons that serve one client at a time
//! (smtpd, smtp) and count from deep inside their sessions: [`start`] it after
//! confinement, then [`add`] and [`observe`] from anywhere. Its thread flushes every
//! few seconds and the serving loop's exit hook (rostfix_service::at_exit) flushes
//! once more when max_use, max_idle or SIGTERM retires the process, so a short-lived
//! process loses no counts. Before `start` (unit tests, fuzz targets) nothing is
//! counted.

use crate::Reporter;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// How often counts go to the metrics service (as qmgr's).
pub const EVERY: Duration = Duration::from_secs(5);

static REPORTER: OnceLock<Arc<Reporter>> = OnceLock::new();

/// Starts this process's reporter for `program`, its flusher thread and its flush at
/// exit; `root` is queue_directory ("." after confinement). A second call does
/// nothing.
pub fn start(program: &str, root: &Path) {
    if REPORTER.get().is_some() {
        return;
    }
    let reporter = REPORTER.get_or_init(|| Arc::new(Reporter::new(program, root)));
    reporter.spawn_flusher(EVERY);
    let at_exit = reporter.clone();
    rostfix_service::at_exit(move || at_exit.flush());
}

/// Adds `value` to counter `name{labels}` (nothing before [`start`]).
pub fn add(name: &str, labels: &[(&str, &str)], value: f64) {
    if let Some(r) = REPORTER.get() {
        r.add(name, labels, value);
    }
}

/// Sets gauge `name{labels}` (nothing before [`start`]).
pub fn set(name: &str, labels: &[(&str, &str)], value: f64) {
    if let Some(r) = REPORTER.get() {
        r.set(name, labels, value);
    }
}

/// Records one observation in histogram `name{labels}` (nothing before [`start`]).
pub fn observe(name: &str, labels: &[(&str, &str)], value: f64) {
    if let Some(r) = REPORTER.get() {
        r.observe(name, labels, value);
    }
}
