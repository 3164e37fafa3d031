//! Every table [`crate::open_map`] opens counts its lookup errors for the metrics
//! service (`rostfix_table_errors_total{type}`, issue 20): a database that went away
//! shows there before the deferrals pile up. Counted only in processes that started
//! a metrics reporter (smtpd, smtp, postscreen, ...); the label is the table type, so
//! it stays bounded.

use crate::{Map, MapError};

/// A table with its type name, forwarding every call.
pub struct Counted {
    inner: Box<dyn Map>,
    kind: String,
}

impl Counted {
    pub fn new(inner: Box<dyn Map>, kind: String) -> Counted {
        Counted { inner, kind }
    }

    fn count<T>(&self, r: Result<T, MapError>) -> Result<T, MapError> {
        if r.is_err() {
            rostfix_metrics::process::add(
                "rostfix_table_errors_total",
                &[("type", &self.kind)],
                1.0,
            );
        }
        r
    }
}

impl Map for Counted {
    fn lookup(&self, key: &str) -> Result<Option<String>, MapError> {
        self.count(self.inner.lookup(key))
    }
    fn spec(&self) -> &str {
        self.inner.spec()
    }
    fn is_pattern(&self) -> bool {
        self.inner.is_pattern()
    }
    fn entries(&self) -> Option<Result<Vec<(String, String)>, MapError>> {
        self.inner.entries()
    }
    fn update(&self, key: &str, value: &str) -> Result<(), MapError> {
        self.count(self.inner.update(key, value))
    }
    fn delete(&self, key: &str) -> Result<bool, MapError> {
        self.count(self.inner.delete(key))
    }
}
