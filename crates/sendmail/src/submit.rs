//! Handing the message to rostdrop: `rostdrop [-c DIR] [-N notify] [-R ret] [-V envid]
//! [-B body] -f SENDER -- RCPT...` with the content on its standard input; rostdrop's
//! exit status becomes ours.

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Why rostdrop could not be run at all.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("execute {path}: {source}")]
    Spawn {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("wait for {path}: {source}")]
    Wait {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} killed by signal {signal}")]
    Killed { path: PathBuf, signal: i32 },
}

/// DSN and body-type settings passed to rostdrop (already validated).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DropOptions {
    /// NOTIFY for every recipient (canonical form).
    pub notify: Option<String>,
    /// RET: FULL or HDRS.
    pub ret: Option<String>,
    /// ENVID.
    pub envid: Option<String>,
    /// 7BIT or 8BITMIME.
    pub body: Option<String>,
    /// VERP delimiters, already resolved and checked.
    pub verp: Option<String>,
}

/// Runs rostdrop and returns its exit code.
pub fn run_rostdrop(
    program: &Path,
    config_dir: Option<&Path>,
    sender: &str,
    recipients: &[String],
    content: &[u8],
    dsn: &DropOptions,
) -> Result<i32, SubmitError> {
    let mut cmd = Command::new(program);
    if let Some(dir) = config_dir {
        cmd.arg("-c").arg(dir);
    }
    for (flag, value) in [
        ("-N", &dsn.notify),
        ("-R", &dsn.ret),
        ("-V", &dsn.envid),
        ("-B", &dsn.body),
        ("-X", &dsn.verp),
    ] {
        if let Some(v) = value {
            cmd.arg(flag).arg(v);
        }
    }
    cmd.arg("-f")
        .arg(sender)
        .arg("--")
        .args(recipients)
        .stdin(Stdio::piped())
        // rostdrop prints nothing there; in -bs mode our stdout is the SMTP stream,
        // which nothing but the session may write.
        .stdout(Stdio::null());
    let mut child = cmd.spawn().map_err(|source| SubmitError::Spawn {
        path: program.to_path_buf(),
        source,
    })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A write error means rostdrop stopped reading (it refused the submission and
        // said why on stderr); its exit status tells the rest.
        let _ = stdin.write_all(content);
    }
    let status = child.wait().map_err(|source| SubmitError::Wait {
        path: program.to_path_buf(),
        source,
    })?;
    match (status.code(), status.signal()) {
        (Some(code), _) => Ok(code),
        (None, Some(signal)) => Err(SubmitError::Killed {
            path: program.to_path_buf(),
            signal,
        }),
        (None, None) => Err(SubmitError::Killed {
            path: program.to_path_buf(),
            signal: 0,
        }),
    }
}
