//! `rostfix check`'s start-up test of every smtpd service: the settings each smtpd of
//! master.cf would build (main.cf plus that entry's `-o` overrides) are built here the
//! same way, so what would make smtpd exit at its first connection (an unknown
//! restriction name, a class that is not defined, a table that does not open, a
//! certificate that does not load) fails the check before anything starts, naming the
//! file and line of the setting and the parameter.

use rostfix_config::{MainCf, MasterCf};

/// One message per smtpd service that could not start: `FILE, line N: ...`.
pub fn smtpd_start_errors(main: &MainCf, master: &MasterCf) -> Vec<String> {
    let hostname = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok());
    let mut out = Vec::new();
    for service in master.services.iter().filter(|s| s.command == "smtpd") {
        let mut cf = main.clone();
        let overrides = service.overrides();
        let mut failed = None;
        for (name, value) in &overrides {
            if let Err(e) = cf.set_override(name, value) {
                failed = Some(e.to_string());
                break;
            }
        }
        let error = match failed {
            Some(e) => e,
            None => match rostfix_smtpd::settings::Settings::from_config(&cf, hostname.clone()) {
                Ok(_) => continue,
                Err(e) => e.to_string(),
            },
        };
        out.push(format!(
            "{}smtpd of service {}/{} ({}, line {}) cannot start: {error}",
            where_set(&error, main, &overrides),
            service.name,
            service.service_type,
            service.file.display(),
            service.line,
        ));
    }
    out
}

/// `FILE, line N: ` of the main.cf setting an error names first (`param: ...`), when
/// main.cf sets it and the service does not override it; else nothing.
fn where_set(error: &str, main: &MainCf, overrides: &[(String, String)]) -> String {
    let Some((param, _)) = error.split_once(':') else {
        return String::new();
    };
    if overrides.iter().any(|(name, _)| name == param) {
        return String::new();
    }
    main.explicit()
        .into_iter()
        .find(|s| s.name == param)
        .and_then(|s| {
            s.file
                .as_ref()
                .map(|f| format!("{}, line {}: ", f.display(), s.line))
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn master(text: &str) -> MasterCf {
        MasterCf::parse(text, Path::new("/etc/rostfix/master.cf"), 100).unwrap()
    }

    #[test]
    fn an_unknown_restriction_is_named_with_file_line_and_service() {
        let main = MainCf::parse(
            "myhostname = mx.example\nsmtpd_client_restrictions = permit_mynetwork\n",
            Path::new("/etc/rostfix/main.cf"),
        )
        .unwrap();
        let errors = smtpd_start_errors(
            &main,
            &master("smtp inet n - n - - smtpd\nsubmission inet n - n - - smtpd\n  -o smtpd_client_restrictions=permit\n"),
        );
        assert_eq!(
            errors,
            vec!["/etc/rostfix/main.cf, line 2: smtpd of service smtp/inet \
                 (/etc/rostfix/master.cf, line 1) cannot start: smtpd_client_restrictions: \
                 unknown smtpd restriction: \"permit_mynetwork\""
                .to_string()]
        );
        let errors = smtpd_start_errors(
            &main,
            &master("smtp inet n - n - - smtpd\n  -o smtpd_client_restrictions=reject_unknwn\n"),
        );
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].starts_with("smtpd of service smtp/inet (/etc/rostfix/master.cf, line 1)"),
            "{}",
            errors[0]
        );
    }

    #[test]
    fn a_working_configuration_has_no_errors() {
        let main = MainCf::parse(
            "myhostname = mx.example\n",
            Path::new("/etc/rostfix/main.cf"),
        )
        .unwrap();
        assert!(smtpd_start_errors(&main, &master("smtp inet n - n - - smtpd\n")).is_empty());
    }
}
