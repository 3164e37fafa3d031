//! The metrics service's state: counters and histograms keyed by name and labels,
//! added up from daemons' reports, and their Prometheus text exposition (format
//! 0.0.4). Bounded: names and label pairs are checked, values escaped, and the number
//! of series is capped so a confused reporter cannot grow the service without limit.

use rostfix_proto::{MetricSample, SampleKind};
use std::collections::BTreeMap;
use std::fmt::Write;

/// Histogram bucket bounds in seconds for delivery delays: from sub-second local
/// deliveries to the day a deferred message may wait.
pub const DELAY_BUCKETS: [f64; 12] = [
    0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 14400.0, 86400.0,
];

/// Histogram bucket bounds in bytes for message sizes: from a one-line notice to
/// Postfix's default message_size_limit (10240000) and beyond.
pub const SIZE_BUCKETS: [f64; 10] = [
    1_000.0,
    4_000.0,
    16_000.0,
    64_000.0,
    256_000.0,
    1_000_000.0,
    4_000_000.0,
    10_240_000.0,
    25_000_000.0,
    50_000_000.0,
];

/// Most distinct series kept; samples for new series beyond it are dropped (counted
/// in `rostfix_metrics_dropped_samples_total`).
pub const MAX_SERIES: usize = 5_000;

type Key = (String, Vec<(String, String)>);

#[derive(Debug, Clone)]
struct Histogram {
    /// The upper bounds, ascending: the family's from [`Registry::set_buckets`], else
    /// [`DELAY_BUCKETS`].
    bounds: &'static [f64],
    /// Per bound, not cumulative; the +Inf bucket is `count`.
    buckets: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            buckets: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        }
    }
}

/// Counters, histograms and gauges by series.
#[derive(Debug, Default)]
pub struct Registry {
    counters: BTreeMap<Key, f64>,
    histograms: BTreeMap<Key, Histogram>,
    gauges: BTreeMap<Key, f64>,
    help: BTreeMap<String, String>,
    /// Bucket bounds per histogram family named here; the wire format carries only
    /// observations, so the service, not the reporter, knows the buckets.
    buckets: BTreeMap<String, &'static [f64]>,
    dropped: u64,
}

fn valid_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
        && s.len() <= 200
}

fn valid_labels(labels: &[(String, String)]) -> bool {
    labels.len() <= 8
        && labels
            .iter()
            .all(|(k, v)| valid_name(k) && !k.starts_with("__") && v.len() <= 200)
}

/// Prometheus's label-value escaping: backslash, double quote and newline.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn write_labels(out: &mut String, labels: &[(String, String)], extra: Option<(&str, &str)>) {
    let mut all: Vec<(String, String)> = labels.to_vec();
    if let Some((k, v)) = extra {
        all.push((k.to_string(), v.to_string()));
    }
    if all.is_empty() {
        return;
    }
    out.push('{');
    for (i, (k, v)) in all.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{k}=\"{}\"", escape(v));
    }
    out.push('}');
}

fn number(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else if v.is_nan() {
        "NaN".into()
    } else if v > 0.0 {
        "+Inf".into()
    } else {
        "-Inf".into()
    }
}

impl Registry {
    /// Sets the `# HELP` text of a metric family.
    pub fn describe(&mut self, name: &str, help: &str) {
        self.help.insert(name.to_string(), help.to_string());
    }

    /// Gives histogram family `name` its own bucket bounds (ascending) instead of
    /// [`DELAY_BUCKETS`]; set before its first observation.
    pub fn set_buckets(&mut self, name: &str, bounds: &'static [f64]) {
        self.buckets.insert(name.to_string(), bounds);
    }

    fn series(&self) -> usize {
        self.counters.len() + self.histograms.len() + self.gauges.len()
    }

    /// Applies one reported sample; an invalid one or one past [`MAX_SERIES`] is
    /// dropped and counted.
    pub fn apply(&mut self, s: &MetricSample) {
        let ok = valid_name(&s.name) && valid_labels(&s.labels) && s.value.is_finite();
        if !ok || (s.kind == SampleKind::Add && s.value < 0.0) {
            self.dropped += 1;
            return;
        }
        let mut labels = s.labels.clone();
        labels.sort();
        let key = (s.name.clone(), labels);
        let full = self.series() >= MAX_SERIES;
        match s.kind {
            SampleKind::Add => {
                if full && !self.counters.contains_key(&key) {
                    self.dropped += 1;
                    return;
                }
                *self.counters.entry(key).or_insert(0.0) += s.value;
            }
            SampleKind::Observe => {
                if full && !self.histograms.contains_key(&key) {
                    self.dropped += 1;
                    return;
                }
                let bounds = self.buckets.get(&s.name).copied().unwrap_or(&DELAY_BUCKETS);
                let h = self
                    .histograms
                    .entry(key)
                    .or_insert_with(|| Histogram::new(bounds));
                if let Some(i) = h.bounds.iter().position(|b| s.value <= *b) {
                    h.buckets[i] += 1;
                }
                h.sum += s.value;
                h.count += 1;
            }
            SampleKind::Set => {
                if full && !self.gauges.contains_key(&key) {
                    self.dropped += 1;
                    return;
                }
                self.gauges.insert(key, s.value);
            }
        }
    }

    /// Replaces the gauges named `name` (computed at scrape time, e.g. queue sizes).
    pub fn set_gauges(&mut self, name: &str, values: Vec<(Vec<(String, String)>, f64)>) {
        self.gauges.retain(|(n, _), _| n != name);
        for (labels, v) in values {
            self.gauges.insert((name.to_string(), labels), v);
        }
    }

    /// The current value of a counter (tests and the service's own counters).
    pub fn counter(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let mut l: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        l.sort();
        self.counters
            .get(&(name.to_string(), l))
            .copied()
            .unwrap_or(0.0)
    }

    /// Prometheus text exposition format 0.0.4.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut last = String::new();
        let mut header = |out: &mut String, name: &str, kind: &str| {
            if last != name {
                if let Some(h) = self.help.get(name) {
                    let _ = writeln!(out, "# HELP {name} {}", h.replace('\n', " "));
                }
                let _ = writeln!(out, "# TYPE {name} {kind}");
                last = name.to_string();
            }
        };
        for ((name, labels), v) in &self.counters {
            header(&mut out, name, "counter");
            out.push_str(name);
            write_labels(&mut out, labels, None);
            let _ = writeln!(out, " {}", number(*v));
        }
        for ((name, labels), v) in &self.gauges {
            header(&mut out, name, "gauge");
            out.push_str(name);
            write_labels(&mut out, labels, None);
            let _ = writeln!(out, " {}", number(*v));
        }
        for ((name, labels), h) in &self.histograms {
            header(&mut out, name, "histogram");
            let mut cumulative = 0;
            for (bound, n) in h.bounds.iter().zip(&h.buckets) {
                cumulative += n;
                let _ = write!(out, "{name}_bucket");
                write_labels(&mut out, labels, Some(("le", &number(*bound))));
                let _ = writeln!(out, " {cumulative}");
            }
            let _ = write!(out, "{name}_bucket");
            write_labels(&mut out, labels, Some(("le", "+Inf")));
            let _ = writeln!(out, " {}", h.count);
            let _ = write!(out, "{name}_sum");
            write_labels(&mut out, labels, None);
            let _ = writeln!(out, " {}", number(h.sum));
            let _ = write!(out, "{name}_count");
            write_labels(&mut out, labels, None);
            let _ = writeln!(out, " {}", h.count);
        }
        let _ = writeln!(
            out,
            "# TYPE rostfix_metrics_dropped_samples_total counter\nrostfix_metrics_dropped_samples_total {}",
            self.dropped
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(name: &str, labels: &[(&str, &str)], value: f64) -> MetricSample {
        MetricSample {
            name: name.into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            kind: SampleKind::Add,
            value,
        }
    }

    #[test]
    fn counters_add_up_whatever_the_label_order() {
        let mut r = Registry::default();
        r.apply(&add("x_total", &[("a", "1"), ("b", "2")], 2.0));
        r.apply(&add("x_total", &[("b", "2"), ("a", "1")], 3.0));
        assert_eq!(r.counter("x_total", &[("a", "1"), ("b", "2")]), 5.0);
        assert!(r.render().contains("x_total{a=\"1\",b=\"2\"} 5\n"));
    }

    #[test]
    fn histogram_buckets_are_cumulative() {
        let mut r = Registry::default();
        for v in [0.05, 0.7, 2000.0, 1e9] {
            r.apply(&MetricSample {
                kind: SampleKind::Observe,
                ..add("d_seconds", &[("t", "smtp")], v)
            });
        }
        let text = r.render();
        assert!(text.contains("# TYPE d_seconds histogram\n"), "{text}");
        assert!(
            text.contains("d_seconds_bucket{t=\"smtp\",le=\"0.1\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("d_seconds_bucket{t=\"smtp\",le=\"1\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("d_seconds_bucket{t=\"smtp\",le=\"3600\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("d_seconds_bucket{t=\"smtp\",le=\"+Inf\"} 4\n"),
            "{text}"
        );
        assert!(text.contains("d_seconds_count{t=\"smtp\"} 4\n"), "{text}");
    }

    #[test]
    fn a_family_with_its_own_buckets_uses_them() {
        let mut r = Registry::default();
        r.set_buckets("s_bytes", &SIZE_BUCKETS);
        for (name, v) in [
            ("s_bytes", 3_000.0),
            ("s_bytes", 2e6),
            ("d_seconds", 3_000.0),
        ] {
            r.apply(&MetricSample {
                kind: SampleKind::Observe,
                ..add(name, &[], v)
            });
        }
        let text = r.render();
        assert!(text.contains("s_bytes_bucket{le=\"1000\"} 0\n"), "{text}");
        assert!(text.contains("s_bytes_bucket{le=\"4000\"} 1\n"), "{text}");
        assert!(
            text.contains("s_bytes_bucket{le=\"4000000\"} 2\n"),
            "{text}"
        );
        assert!(!text.contains("s_bytes_bucket{le=\"0.1\"}"), "{text}");
        // Others keep the delay buckets.
        assert!(text.contains("d_seconds_bucket{le=\"3600\"} 1\n"), "{text}");
    }

    #[test]
    fn bad_samples_are_dropped_and_counted() {
        let mut r = Registry::default();
        r.apply(&add("1bad", &[], 1.0));
        r.apply(&add("ok_total", &[("__reserved", "x")], 1.0));
        r.apply(&add("ok_total", &[], -1.0));
        r.apply(&add("ok_total", &[], f64::NAN));
        assert!(r
            .render()
            .contains("rostfix_metrics_dropped_samples_total 4\n"));
        assert!(!r.render().contains("ok_total"));
    }

    #[test]
    fn label_values_are_escaped() {
        let mut r = Registry::default();
        r.apply(&add("e_total", &[("v", "a\"b\\c\nd")], 1.0));
        assert!(r.render().contains(r#"e_total{v="a\"b\\c\nd"} 1"#));
    }

    #[test]
    fn series_are_capped() {
        let mut r = Registry::default();
        for i in 0..MAX_SERIES + 10 {
            r.apply(&add("many_total", &[("i", &i.to_string())], 1.0));
        }
        assert_eq!(r.series(), MAX_SERIES);
        assert!(r
            .render()
            .contains("rostfix_metrics_dropped_samples_total 10\n"));
        // An existing series still counts.
        r.apply(&add("many_total", &[("i", "0")], 1.0));
        assert_eq!(r.counter("many_total", &[("i", "0")]), 2.0);
    }

    #[test]
    fn gauges_are_replaced_per_name() {
        let mut r = Registry::default();
        let l = |q: &str| vec![("queue".to_string(), q.to_string())];
        r.set_gauges("q", vec![(l("active"), 1.0), (l("deferred"), 2.0)]);
        r.set_gauges("q", vec![(l("active"), 0.0)]);
        let text = r.render();
        assert!(text.contains("q{queue=\"active\"} 0\n"), "{text}");
        assert!(!text.contains("deferred"), "{text}");
    }
}
