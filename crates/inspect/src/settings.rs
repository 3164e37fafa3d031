//! The parameters of content inspection, read once at start: the four table lists
//! (opened then, so a missing table stops the daemon at start as Postfix's does),
//! body_checks_size_limit, disable_mime_input_processing, header_size_limit (the
//! longest header inspected) and receive_override_options.

use rostfix_config::MainCf;
use rostfix_maps::{open_map, Map, MapError};

/// Why the settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("{param}: {source}")]
    Table {
        param: &'static str,
        #[source]
        source: MapError,
    },
}

/// The open tables and limits.
pub struct ContentChecks {
    pub header: Vec<Box<dyn Map>>,
    pub mime: Vec<Box<dyn Map>>,
    pub nested: Vec<Box<dyn Map>>,
    pub body: Vec<Box<dyn Map>>,
    /// Body bytes of each segment inspected (body_checks_size_limit).
    pub body_size_limit: u64,
    /// Follow MIME structure (not disable_mime_input_processing).
    pub mime_processing: bool,
    /// Longest logical header inspected (header_size_limit).
    pub header_cap: usize,
}

impl std::fmt::Debug for ContentChecks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let specs = |maps: &[Box<dyn Map>]| {
            maps.iter()
                .map(|m| m.spec().to_string())
                .collect::<Vec<_>>()
        };
        f.debug_struct("ContentChecks")
            .field("header", &specs(&self.header))
            .field("mime", &specs(&self.mime))
            .field("nested", &specs(&self.nested))
            .field("body", &specs(&self.body))
            .field("body_size_limit", &self.body_size_limit)
            .field("mime_processing", &self.mime_processing)
            .finish()
    }
}

fn open_list(cf: &MainCf, param: &'static str) -> Result<Vec<Box<dyn Map>>, SettingsError> {
    cf.get_list(param)
        .iter()
        .map(|spec| open_map(spec).map_err(|source| SettingsError::Table { param, source }))
        .collect()
}

impl ContentChecks {
    /// Opens every table the parameters name.
    pub fn from_config(cf: &MainCf) -> Result<ContentChecks, SettingsError> {
        Ok(ContentChecks {
            header: open_list(cf, "header_checks")?,
            mime: open_list(cf, "mime_header_checks")?,
            nested: open_list(cf, "nested_header_checks")?,
            body: open_list(cf, "body_checks")?,
            body_size_limit: cf.get_u64("body_checks_size_limit"),
            mime_processing: !cf.get_bool("disable_mime_input_processing"),
            header_cap: usize::try_from(cf.get_u64("header_size_limit").max(1))
                .unwrap_or(usize::MAX),
        })
    }

    /// No table at all: content passes untouched.
    pub fn is_empty(&self) -> bool {
        self.header.is_empty()
            && self.mime.is_empty()
            && self.nested.is_empty()
            && self.body.is_empty()
    }
}

/// receive_override_options: what this receiving service leaves out (typically on the
/// port where an after-queue content filter hands mail back).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReceiveOverrides {
    /// No header_checks/body_checks (and friends).
    pub no_header_body_checks: bool,
    /// smtpd does not reject unknown recipients.
    pub no_unknown_recipient_checks: bool,
    /// No address rewriting (virtual aliases): they were applied before the filter.
    pub no_address_mappings: bool,
    /// No milters: smtpd_milters and non_smtpd_milters are not called, and native DKIM
    /// signing (which replaces the OpenDKIM milter) is off.
    pub no_milters: bool,
}

impl ReceiveOverrides {
    /// Parses the list; each unknown word gives a warning naming where it was set.
    pub fn from_config(cf: &MainCf) -> (ReceiveOverrides, Vec<String>) {
        let mut o = ReceiveOverrides::default();
        let mut warnings = Vec::new();
        let place = cf
            .explicit()
            .into_iter()
            .rev()
            .find(|s| s.name == "receive_override_options")
            .map(|s| match s.file {
                Some(file) => format!("{}, line {}", file.display(), s.line),
                None => "master.cf -o".to_string(),
            })
            .unwrap_or_else(|| "main.cf".to_string());
        for word in cf.get_list("receive_override_options") {
            match word.to_ascii_lowercase().as_str() {
                "no_header_body_checks" => o.no_header_body_checks = true,
                "no_unknown_recipient_checks" => o.no_unknown_recipient_checks = true,
                "no_address_mappings" => o.no_address_mappings = true,
                "no_milters" => o.no_milters = true,
                _ => warnings.push(format!(
                    "{place}: receive_override_options: unknown option: {word}"
                )),
            }
        }
        (o, warnings)
    }
}
