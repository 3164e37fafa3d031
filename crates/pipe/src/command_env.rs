//! What a command run by a master.cf service gets besides its arguments, shared by
//! pipe(8) and spawn(8): the environment (export_environment's variables and a fixed
//! PATH) and the time it may run (SERVICE_time_limit, else command_time_limit).

use rostfix_config::{parse_time, MainCf};
use std::time::Duration;

/// The command's environment: export_environment's variables as the daemon has them,
/// and a fixed PATH (never the daemon's own: the command must not depend on how master
/// was started).
pub fn environment(export: &[String]) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = export
        .iter()
        .filter(|name| name.as_str() != "PATH")
        .filter_map(|name| std::env::var(name).ok().map(|v| (name.clone(), v)))
        .collect();
    env.push(("PATH".into(), "/usr/bin:/bin".into()));
    env
}

/// SERVICE_time_limit when set (Postfix's per-service form, e.g. policy-spf_time_limit),
/// else command_time_limit.
pub fn time_limit(cfg: &MainCf, service: &str) -> Duration {
    let own = cfg
        .raw(&format!("{service}_time_limit"))
        .and_then(|raw| cfg.expand_text(raw).ok())
        .and_then(|v| parse_time(v.trim(), 's'));
    match own {
        Some(secs) => Duration::from_secs(secs),
        None => cfg.get_time("command_time_limit"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_is_fixed_and_exported_names_pass() {
        let env = environment(&["PATH".into(), "NO_SUCH_VARIABLE_HERE".into()]);
        assert_eq!(env, vec![("PATH".to_string(), "/usr/bin:/bin".to_string())]);
    }
}
