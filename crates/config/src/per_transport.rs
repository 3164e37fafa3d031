//! Postfix's per-transport parameters: `TRANSPORT_SUFFIX`, where TRANSPORT is the name
//! of a master.cf service (`relay_destination_concurrency_limit`,
//! `dovecot_destination_recipient_limit`). They are not in `PARAMS` (any service name
//! may prefix them), so main.cf alone cannot tell whether one is in use: this module
//! judges them against master.cf, as postconf does. A name whose transport is not a
//! master.cf service is an "unused parameter"; one whose suffix qmgr does not read is
//! reported as not implemented, with file and line.

use crate::main_cf::MainCf;
use crate::master_cf::MasterCf;
use std::collections::HashSet;

/// The suffixes qmgr reads for every transport (crates/qmgr/src/settings.rs).
pub const QMGR_SUFFIXES: &[&str] = &[
    "destination_concurrency_limit",
    "destination_recipient_limit",
    "initial_destination_concurrency",
    "destination_concurrency_positive_feedback",
    "destination_concurrency_negative_feedback",
    "destination_concurrency_failed_cohort_limit",
    "destination_rate_delay",
];

/// Postfix's other per-transport suffixes, which Rostfix's scheduler has no use for or
/// does not implement: a setting of one is reported.
pub const UNIMPLEMENTED_SUFFIXES: &[&str] = &[
    "delivery_slot_cost",
    "delivery_slot_discount",
    "delivery_slot_loan",
    "extra_recipient_limit",
    "minimum_delivery_slots",
    "recipient_limit",
    "recipient_refill_delay",
    "recipient_refill_limit",
    "transport_rate_delay",
    "time_limit",
];

/// Suffixes pipe and spawn read for their own service (the command's time limit,
/// crates/pipe/src/command_env.rs); set for a service of another command they do
/// nothing.
pub const PIPE_SUFFIXES: &[&str] = &["time_limit"];

/// A name split into its transport and a per-transport suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PerTransport<'a> {
    pub transport: &'a str,
    pub suffix: &'static str,
    /// qmgr reads this suffix.
    pub implemented: bool,
}

/// Splits `name` when it ends in a per-transport suffix after a non-empty transport
/// name. `default_*` names are ordinary parameters (in `PARAMS`) and are not split.
/// The longest matching suffix wins (`..._destination_recipient_limit` is not
/// `..._recipient_limit` of transport `X_destination`).
pub fn split(name: &str) -> Option<PerTransport<'_>> {
    let mut best: Option<PerTransport<'_>> = None;
    let all = QMGR_SUFFIXES
        .iter()
        .map(|s| (s, true))
        .chain(UNIMPLEMENTED_SUFFIXES.iter().map(|s| (s, false)));
    for (suffix, implemented) in all {
        let Some(transport) = name
            .strip_suffix(suffix)
            .and_then(|rest| rest.strip_suffix('_'))
        else {
            continue;
        };
        if transport.is_empty() || transport == "default" {
            continue;
        }
        if best.is_none_or(|b| b.suffix.len() < suffix.len()) {
            best = Some(PerTransport {
                transport,
                suffix,
                implemented,
            });
        }
    }
    best
}

/// Warnings for main.cf's per-transport settings judged against master.cf's service
/// names: postconf's `FILE: unused parameter: NAME=VALUE` when no service has that
/// name, and `FILE, line N: parameter NAME is not implemented ...` for a suffix qmgr
/// does not read.
pub fn warnings(main: &MainCf, master: &MasterCf) -> Vec<String> {
    let services: HashSet<&str> = master.services.iter().map(|s| s.name.as_str()).collect();
    let pipes: HashSet<&str> = master
        .services
        .iter()
        .filter(|s| s.command == "pipe" || s.command == "spawn")
        .map(|s| s.name.as_str())
        .collect();
    let mut out = Vec::new();
    for setting in main.explicit() {
        if crate::lookup_param(&setting.name).is_some() {
            continue;
        }
        let Some(split) = split(&setting.name) else {
            continue;
        };
        let Some(file) = setting.file.as_ref() else {
            continue;
        };
        if !services.contains(split.transport) {
            out.push(format!(
                "{}: unused parameter: {}={}",
                file.display(),
                setting.name,
                setting.raw
            ));
        } else if !(split.implemented
            || PIPE_SUFFIXES.contains(&split.suffix) && pipes.contains(split.transport))
        {
            out.push(format!(
                "{}, line {}: parameter {} is not implemented by Rostfix; its setting has no \
                 effect (the {} part of per-transport scheduling: Rostfix's qmgr reads only \
                 the *_destination_* limits and the rate delay)",
                file.display(),
                setting.line,
                setting.name,
                split.suffix
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn splits_at_the_longest_suffix() {
        let s = split("relay_destination_recipient_limit").unwrap();
        assert_eq!(
            (s.transport, s.suffix, s.implemented),
            ("relay", "destination_recipient_limit", true)
        );
        let s = split("smtp-amavis_time_limit").unwrap();
        assert_eq!((s.transport, s.implemented), ("smtp-amavis", false));
        let s = split("dovecot_recipient_limit").unwrap();
        assert_eq!((s.transport, s.suffix), ("dovecot", "recipient_limit"));
        assert!(split("default_destination_concurrency_limit").is_none());
        assert!(split("_destination_rate_delay").is_none());
        assert!(split("myhostname").is_none());
    }

    #[test]
    fn judged_against_master_cf_services() {
        let main = MainCf::parse(
            "relay_destination_concurrency_limit = 4\n\
             dovecot_destination_recipient_limit = 1\n\
             nosuch_destination_rate_delay = 1s\n\
             dovecot_time_limit = 100s\n\
             relay_time_limit = 100s\n",
            Path::new("/etc/rostfix/main.cf"),
        )
        .unwrap();
        let master = MasterCf::parse(
            "relay unix - - n - - smtp\n\
             dovecot unix - n n - - pipe flags=DRhu user=vmail argv=/usr/lib/dovecot/dovecot-lda\n",
            Path::new("/etc/rostfix/master.cf"),
            100,
        )
        .unwrap();
        assert_eq!(
            warnings(&main, &master),
            vec![
                "/etc/rostfix/main.cf: unused parameter: nosuch_destination_rate_delay=1s"
                    .to_string(),
                // dovecot is a pipe service, which reads its time limit; relay is not.
                "/etc/rostfix/main.cf, line 5: parameter relay_time_limit is not implemented \
                 by Rostfix; its setting has no effect (the time_limit part of per-transport \
                 scheduling: Rostfix's qmgr reads only the *_destination_* limits and the rate \
                 delay)"
                    .to_string(),
            ]
        );
        // main.cf alone does not call them unused: master.cf decides.
        assert!(
            main.warnings().iter().all(|w| !w.contains("_destination_")),
            "{:?}",
            main.warnings()
        );
    }
}
