//! The metrics protocol (`private/metrics`): daemons report what they counted since
//! their last report, and the metrics service adds it up and serves it to Prometheus
//! (crates/metrics, docs/ipc.md). Counters come from the daemons that saw the events,
//! never from parsing the log.
//!
//! A reporter connects, sends one [`MetricsReport`] frame and closes; there is no
//! reply, so a report costs the daemon one connect and one write, and a metrics
//! service that is down only loses counts, never delays mail.

use serde::{Deserialize, Serialize};

/// The metrics service's socket.
pub const METRICS_SOCKET: &str = "private/metrics";

/// Most samples one report may carry; the service refuses a larger report whole.
pub const MAX_METRICS_SAMPLES: usize = 10_000;

/// What a sample does to its series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SampleKind {
    /// Adds `value` to a counter.
    Add,
    /// Records `value` once in a histogram (its sum, count and buckets).
    Observe,
    /// Sets a gauge to `value` (the reporter's latest state, e.g. qmgr's concurrency
    /// per destination).
    Set,
}

/// One update of one series: `name{labels}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricSample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub kind: SampleKind,
    pub value: f64,
}

/// A daemon -> metrics frame: what `program` counted since its previous report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricsReport {
    pub program: String,
    pub samples: Vec<MetricSample>,
}
