//! Handing the message to rostdrop: `rostdrop [-c DIR] -f SENDER -- RCPT...` with the
//! content on its standard input; rostdrop's exit status becomes ours.

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

/// Runs rostdrop and returns its exit code.
pub fn run_rostdrop(
    program: &Path,
    config_dir: Option<&Path>,
    sender: &str,
    recipients: &[String],
    content: &[u8],
) -> Result<i32, SubmitError> {
    let mut cmd = Command::new(program);
    if let Some(dir) = config_dir {
        cmd.arg("-c").arg(dir);
    }
    cmd.arg("-f")
        .arg(sender)
        .arg("--")
        .args(recipients)
        .stdin(Stdio::piped());
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
