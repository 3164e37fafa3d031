//! Showing main.cf parameters: all, named, explicit (-n), defaults (-d), expanded (-x).

use crate::args::Options;
use crate::Fatal;
use rostfix_config::{ineffective, lookup_param, MainCf, PARAMS};
use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;

/// Prints the parameters asked for; warnings go to stderr as `rostconf: warning: ...`.
pub fn show(options: &Options, dir: &Path, out: &mut impl Write) -> Result<(), Fatal> {
    let config = if options.defaults {
        MainCf::defaults(dir)
    } else {
        MainCf::load(dir)?
    };
    if !options.defaults {
        // Unused parameters judged against master.cf too, and the settings that have no
        // effect, as `rostfix check` and master report them, so `rostconf -n` after an
        // import shows what does not carry.
        let limit = u32::try_from(config.get_int("default_process_limit").max(1)).unwrap_or(100);
        let master = rostfix_config::MasterCf::load(dir, limit).ok();
        for warning in rostfix_config::unused::warnings(&config, master.as_ref()) {
            eprintln!("rostconf: warning: {warning}");
        }
        for warning in ineffective::setting_warnings(&config, master.as_ref()) {
            eprintln!("rostconf: warning: {warning}");
        }
    }
    let names: Vec<String> = if options.args.is_empty() {
        all_names(&config, options.explicit_only)
    } else {
        options.args.clone()
    };
    for name in names {
        let explicit = !options.defaults && config.raw(&name).is_some();
        if lookup_param(&name).is_none() && !explicit {
            eprintln!("rostconf: warning: unknown parameter: {name}");
            continue;
        }
        if options.explicit_only && !explicit {
            continue;
        }
        let value = value_of(&config, &name, options)?;
        let line = if options.values_only {
            value
        } else {
            format!("{name} = {value}")
        };
        writeln!(out, "{line}").map_err(Fatal::Output)?;
    }
    Ok(())
}

/// The names to print when none were given: the explicit settings with -n, else every
/// known parameter plus any user-defined setting, sorted by name as postconf does.
fn all_names(config: &MainCf, explicit_only: bool) -> Vec<String> {
    let mut names: BTreeSet<String> = config
        .explicit()
        .into_iter()
        .map(|setting| setting.name)
        .collect();
    if !explicit_only {
        names.extend(PARAMS.iter().map(|def| def.name.to_string()));
    }
    names.into_iter().collect()
}

/// The value shown for `name`: raw or expanded, main.cf's or the default.
fn value_of(config: &MainCf, name: &str, options: &Options) -> Result<String, Fatal> {
    if options.expand {
        return Ok(config.expanded(name)?);
    }
    let raw = match config.raw(name) {
        Some(raw) if !options.defaults => raw.to_string(),
        _ => config.default_raw(name).unwrap_or_default(),
    };
    Ok(raw)
}
