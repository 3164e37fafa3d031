//! The modes sendmail hands to another command, as Postfix's sendmail does: `-bp` and
//! `mailq` run `rostqueue -p`, `-q` runs `rostqueue -f`, `-qRsite` `rostqueue -s site`,
//! `-bi`, `-I` and `newaliases` run `rostalias` on every hash:/btree: table of
//! alias_database (other types need no build step, as with postalias).

use std::path::Path;
use std::process::Command;

/// Why a helper command could not be run.
#[derive(Debug, thiserror::Error)]
pub enum DelegateError {
    #[error("execute {}: {}", .0.display(), .1)]
    Spawn(std::path::PathBuf, std::io::Error),
}

/// Runs `command_directory/PROGRAM [-c DIR] ARGS...` and returns its exit code (1 when
/// it died by a signal).
pub fn run_tool(
    command_directory: &str,
    program: &str,
    config_dir: Option<&Path>,
    args: &[String],
) -> Result<i32, DelegateError> {
    let path = Path::new(command_directory).join(program);
    let mut cmd = Command::new(&path);
    if let Some(dir) = config_dir {
        cmd.arg("-c").arg(dir);
    }
    cmd.args(args);
    let status = cmd
        .status()
        .map_err(|e| DelegateError::Spawn(path.clone(), e))?;
    Ok(status.code().unwrap_or(1))
}

/// The alias_database entries that newaliases builds: `hash:` and `btree:` ones.
pub fn alias_tables(alias_database: &str) -> Vec<String> {
    alias_database
        .split([',', ' ', '\t', '\n'])
        .filter(|s| s.starts_with("hash:") || s.starts_with("btree:"))
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_indexed_alias_tables() {
        assert_eq!(
            alias_tables("hash:/etc/aliases, btree:/etc/more texthash:/x\tinline:{a=b}"),
            vec!["hash:/etc/aliases", "btree:/etc/more"]
        );
        assert!(alias_tables("").is_empty());
    }
}
