//! The daemons' side: a [`Reporter`] collects counts in memory and a background
//! thread sends them to the metrics service every few seconds (one connect, one
//! frame, no reply). Counters of one series are summed before they are sent;
//! histogram observations are sent one by one, at most [`MAX_METRICS_SAMPLES`] per
//! report (more are dropped). When no metrics service runs (it is optional in
//! master.cf) the report is dropped: metrics never hold up mail.

use rostfix_proto::{
    connect_unix, write_message, MetricSample, MetricsReport, SampleKind, MAX_METRICS_SAMPLES,
    METRICS_SOCKET,
};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a report may take to connect and write.
const SEND_TIMEOUT: Duration = Duration::from_secs(2);

type Labels = Vec<(String, String)>;

#[derive(Debug, Default)]
struct Pending {
    counters: BTreeMap<(String, Labels), f64>,
    gauges: BTreeMap<(String, Labels), f64>,
    observations: Vec<MetricSample>,
}

/// Counts of one daemon waiting to be reported.
#[derive(Debug)]
pub struct Reporter {
    program: String,
    socket: PathBuf,
    pending: Mutex<Pending>,
}

fn owned(labels: &[(&str, &str)]) -> Labels {
    labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl Reporter {
    /// A reporter for `program` that sends to `root`/private/metrics (root is
    /// queue_directory, "." after the daemon's chdir).
    pub fn new(program: &str, root: &std::path::Path) -> Reporter {
        Reporter {
            program: program.to_string(),
            socket: root.join(METRICS_SOCKET),
            pending: Mutex::new(Pending::default()),
        }
    }

    /// Starts the thread that reports every `every` for the rest of the process.
    pub fn spawn_flusher(self: &Arc<Self>, every: Duration) {
        let for_thread = self.clone();
        let spawned = std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || loop {
                std::thread::sleep(every);
                for_thread.flush();
            });
        if let Err(e) = spawned {
            log::warn!("cannot start the metrics reporter thread: {e}; metrics are not reported");
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        // A panic elsewhere while holding the lock leaves counts, not broken data.
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds `value` to counter `name{labels}`.
    pub fn add(&self, name: &str, labels: &[(&str, &str)], value: f64) {
        *self
            .lock()
            .counters
            .entry((name.to_string(), owned(labels)))
            .or_insert(0.0) += value;
    }

    /// Sets gauge `name{labels}` (the latest value before a flush wins).
    pub fn set(&self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.lock()
            .gauges
            .insert((name.to_string(), owned(labels)), value);
    }

    /// Records one observation in histogram `name{labels}`.
    pub fn observe(&self, name: &str, labels: &[(&str, &str)], value: f64) {
        let mut p = self.lock();
        if p.observations.len() < MAX_METRICS_SAMPLES / 2 {
            p.observations.push(MetricSample {
                name: name.to_string(),
                labels: owned(labels),
                kind: SampleKind::Observe,
                value,
            });
        }
    }

    /// Takes what is pending as one report (None when nothing is).
    pub fn take(&self) -> Option<MetricsReport> {
        let pending = std::mem::take(&mut *self.lock());
        let mut samples: Vec<MetricSample> = pending
            .counters
            .into_iter()
            .map(|((name, labels), value)| MetricSample {
                name,
                labels,
                kind: SampleKind::Add,
                value,
            })
            .collect();
        samples.extend(
            pending
                .gauges
                .into_iter()
                .map(|((name, labels), value)| MetricSample {
                    name,
                    labels,
                    kind: SampleKind::Set,
                    value,
                }),
        );
        samples.extend(pending.observations);
        samples.truncate(MAX_METRICS_SAMPLES);
        (!samples.is_empty()).then(|| MetricsReport {
            program: self.program.clone(),
            samples,
        })
    }

    /// Sends what is pending; on failure it is dropped (see the module comment).
    pub fn flush(&self) {
        let Some(report) = self.take() else {
            return;
        };
        let sent = connect_unix(&self.socket, SEND_TIMEOUT)
            .map_err(|e| e.to_string())
            .and_then(|mut s| {
                s.set_write_timeout(Some(SEND_TIMEOUT))
                    .map_err(|e| e.to_string())?;
                write_message(&mut s, &report).map_err(|e| e.to_string())
            });
        if let Err(e) = sent {
            log::debug!("metrics report dropped: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_summed_and_taken_once() {
        let r = Reporter::new("qmgr", std::path::Path::new("/nonexistent"));
        r.add("d_total", &[("status", "sent")], 1.0);
        r.add("d_total", &[("status", "sent")], 2.0);
        r.observe("d_seconds", &[], 0.5);
        let report = r.take().expect("pending");
        assert_eq!(report.program, "qmgr");
        assert_eq!(report.samples.len(), 2);
        assert_eq!(report.samples[0].value, 3.0);
        assert_eq!(report.samples[1].kind, SampleKind::Observe);
        assert!(r.take().is_none());
    }

    #[test]
    fn flush_without_a_service_drops_quietly() {
        let r = Reporter::new("qmgr", std::path::Path::new("/nonexistent"));
        r.add("x_total", &[], 1.0);
        r.flush();
        assert!(r.take().is_none());
    }
}
