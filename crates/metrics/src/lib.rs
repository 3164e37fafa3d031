//! Native Prometheus metrics (issue 20): daemons count what they see and report it to
//! the metrics service over `private/metrics` (reporter.rs); the service adds the
//! reports up (registry.rs) and serves them with queue gauges in Prometheus's text
//! format on an HTTP endpoint (the `metrics` binary). docs/operations.md lists the
//! series.

#![forbid(unsafe_code)]

pub mod process;
pub mod registry;
pub mod reporter;

pub use registry::{Registry, DELAY_BUCKETS, SIZE_BUCKETS};
pub use reporter::Reporter;
