//! A stand-in for a table that could not be opened (Postfix's dict_surrogate): every
//! lookup fails with the open error, so the caller defers instead of treating the
//! missing table as empty and answering "unknown user".

use crate::error::MapError;
use crate::Map;

/// Answers every lookup with a [`MapError::Lookup`] naming why the table is missing.
pub struct Surrogate {
    spec: String,
    reason: String,
}

impl Surrogate {
    /// A stand-in for `spec`, which failed to open with `error`.
    pub fn new(spec: &str, error: &MapError) -> Surrogate {
        Surrogate {
            spec: spec.to_string(),
            reason: format!("table could not be opened: {error}"),
        }
    }
}

impl Map for Surrogate {
    fn lookup(&self, _key: &str) -> Result<Option<String>, MapError> {
        Err(MapError::Lookup {
            table: self.spec.clone(),
            reason: self.reason.clone(),
        })
    }
    fn spec(&self) -> &str {
        &self.spec
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_lookup_is_an_error() {
        let err = crate::open_map("pgsql:/nonexistent/rostfix.cf")
            .err()
            .unwrap();
        let s = Surrogate::new("pgsql:/nonexistent/rostfix.cf", &err);
        assert!(matches!(s.lookup("a@b"), Err(MapError::Lookup { .. })));
    }
}
