//! Settings of main.cf and master.cf `-o` that ask for something Rostfix does not do
//! (a parameter of the `UNIMPLEMENTED` list set to another value than the one Rostfix
//! behaves as), and values that carry a trailing `# comment`. Each is reported with
//! file, line and parameter by `rostfix check`, by master at start and reload, and by
//! `rostconf import` (grouped by what stops working).

use crate::main_cf::MainCf;
use crate::master_cf::MasterCf;
use crate::unimplemented::{ineffective, trailing_comment, Unimplemented};
use std::fmt;
use std::path::PathBuf;

/// One setting that has no effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ineffective {
    pub file: PathBuf,
    pub line: usize,
    pub param: String,
    /// The value as written.
    pub value: String,
    /// `NAME/TYPE` of the master.cf service whose `-o` sets it; None for main.cf.
    pub service: Option<String>,
    pub entry: &'static Unimplemented,
}

impl fmt::Display for Ineffective {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}, line {}: parameter {}",
            self.file.display(),
            self.line,
            self.param
        )?;
        if let Some(service) = &self.service {
            write!(f, " (-o of service {service})")?;
        }
        write!(
            f,
            " is not implemented by Rostfix; its setting has no effect ({})",
            self.entry.stops
        )
    }
}

/// The expanded default of `name` (empty for an unknown one).
fn expanded_default(main: &MainCf, name: &str) -> String {
    let raw = main.default_raw(name).unwrap_or_default();
    main.expand_text(&raw).unwrap_or(raw)
}

/// main.cf's explicit settings that have no effect, in file order (`-o` overrides
/// given to a daemon are not included: master.cf's are found by [`in_master_cf`]).
pub fn in_main_cf(main: &MainCf) -> Vec<Ineffective> {
    main.explicit()
        .into_iter()
        .filter_map(|setting| {
            let file = setting.file.clone()?;
            let value = main.expanded(&setting.name).ok()?;
            let entry = ineffective(
                &setting.name,
                &value,
                &expanded_default(main, &setting.name),
            )?;
            Some(Ineffective {
                file,
                line: setting.line,
                param: setting.name,
                value: setting.raw,
                service: None,
                entry,
            })
        })
        .collect()
}

/// master.cf `-o` overrides that have no effect, in file order; values are expanded
/// against `main` as the daemon would.
pub fn in_master_cf(master: &MasterCf, main: &MainCf) -> Vec<Ineffective> {
    let mut out = Vec::new();
    for service in &master.services {
        for (name, value) in service.overrides() {
            let expanded = main.expand_text(&value).unwrap_or_else(|_| value.clone());
            if let Some(entry) = ineffective(&name, &expanded, &expanded_default(main, &name)) {
                out.push(Ineffective {
                    file: service.file.clone(),
                    line: service.line,
                    param: name,
                    value,
                    service: Some(format!("{}/{}", service.name, service.service_type)),
                    entry,
                });
            }
        }
    }
    out
}

/// `FILE, line N: parameter NAME: ...` for each main.cf value with a trailing
/// `# comment`, which Postfix (and Rostfix) keep as part of the value.
pub fn comment_warnings(main: &MainCf) -> Vec<String> {
    main.explicit()
        .into_iter()
        .filter_map(|setting| {
            let file = setting.file.as_ref()?;
            let comment = trailing_comment(&setting.raw)?;
            Some(format!(
                "{}, line {}: parameter {}: the value ends in \"{comment}\", which is part of \
                 the value, not a comment (comments must be on a line of their own)",
                file.display(),
                setting.line,
                setting.name
            ))
        })
        .collect()
}

/// Every warning of this module for a loaded configuration: main.cf's trailing
/// comments, then main.cf's and master.cf's settings that have no effect, then the
/// tables of a type Rostfix lacks (table_types.rs).
pub fn setting_warnings(main: &MainCf, master: Option<&MasterCf>) -> Vec<String> {
    let mut out = comment_warnings(main);
    out.extend(in_main_cf(main).iter().map(ToString::to_string));
    if let Some(master) = master {
        out.extend(in_master_cf(master, main).iter().map(ToString::to_string));
        out.extend(crate::per_transport::warnings(main, master));
    }
    out.extend(crate::table_types::table_warnings(main, master));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn main_cf(text: &str) -> MainCf {
        MainCf::parse(text, Path::new("/etc/rostfix/main.cf")).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn main_cf_settings_name_file_line_and_group() {
        let main = main_cf("myhostname = mx.example\ndefer_transports = smtp\nsoft_bounce = no\nbiff = no\nresolve_dequoted_address = no\n");
        let found: Vec<String> = in_main_cf(&main).iter().map(ToString::to_string).collect();
        assert_eq!(
            found,
            vec![
                "/etc/rostfix/main.cf, line 2: parameter defer_transports is not implemented by \
                 Rostfix; its setting has no effect (routing)"
                    .to_string(),
                "/etc/rostfix/main.cf, line 5: parameter resolve_dequoted_address is not implemented by \
                 Rostfix; its setting has no effect (address rewriting)"
                    .to_string(),
            ]
        );
    }

    #[test]
    fn values_are_compared_expanded() {
        // milter_macro_daemon_name defaults to $myhostname: same value, nothing new.
        let main = main_cf(
            "myhostname = mx.example\nmilter_macro_daemon_name = mx.example\ndefer_transports = smtp\n",
        );
        let names: Vec<String> = in_main_cf(&main).into_iter().map(|i| i.param).collect();
        assert_eq!(names, vec!["defer_transports".to_string()]);
        let main = main_cf("x = yes\nsoft_bounce = $x\n");
        assert_eq!(in_main_cf(&main).len(), 1);
    }

    #[test]
    fn master_cf_overrides_name_service() {
        let main = main_cf("held = smtp\n");
        let master = MasterCf::parse(
            "smtp inet n - n - - smtpd\n  -o defer_transports=$held\n  -o soft_bounce=no\n  -o smtpd_tls_security_level=may\n",
            Path::new("/etc/rostfix/master.cf"),
            100,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let found: Vec<String> = in_master_cf(&master, &main)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            found,
            vec![
                "/etc/rostfix/master.cf, line 1: parameter defer_transports (-o of service \
                  smtp/inet) is not implemented by Rostfix; its setting has no effect (routing)"
                    .to_string()
            ]
        );
    }

    #[test]
    fn trailing_comment_is_reported() {
        let main =
            main_cf("# header\nrelayhost = [mx.example] # our ISP\nmydomain = example.org\n");
        let warnings = comment_warnings(&main);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].starts_with("/etc/rostfix/main.cf, line 2: parameter relayhost: "),
            "{}",
            warnings[0]
        );
        assert!(warnings[0].contains("\"# our ISP\""), "{}", warnings[0]);
    }
}
