//! The commands that act on a running (or not running) master: start, start-fg, stop,
//! reload, status, flush.

use crate::pidlock::{lock_holder, pid_file};
use crate::Fatal;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::Path;
use std::time::{Duration, Instant};

/// How long `stop` waits for master to release its lock.
const STOP_WAIT: Duration = Duration::from_secs(30);

/// The running master's pid, if any.
pub fn running(queue_directory: &Path) -> Result<Option<i32>, Fatal> {
    let path = pid_file(queue_directory);
    lock_holder(&path).map_err(|e| Fatal::Check(format!("{}: {e}", path.display())))
}

fn not_running() -> Fatal {
    Fatal::Check("the Rostfix mail system is not running".to_string())
}

/// Starts `daemon_directory/master -c DIR`, which detaches once ready; with
/// `foreground`, replaces this process with `master -d -c DIR`.
pub fn start(
    daemon_directory: &Path,
    config_dir: &Path,
    verbose: bool,
    foreground: bool,
) -> Result<(), Fatal> {
    let program = daemon_directory.join("master");
    if !program.is_file() {
        return Err(Fatal::Check(format!(
            "{}: no such program",
            program.display()
        )));
    }
    let mut command = std::process::Command::new(&program);
    if foreground {
        command.arg("-d");
    }
    command.arg("-c").arg(config_dir);
    if verbose {
        command.arg("-v");
    }
    if foreground {
        use std::os::unix::process::CommandExt;
        let error = command.exec();
        return Err(Fatal::Check(format!("exec {}: {error}", program.display())));
    }
    let status = command
        .status()
        .map_err(|e| Fatal::Check(format!("{}: {e}", program.display())))?;
    if !status.success() {
        // master printed its reason on our standard error.
        return Err(Fatal::Quiet);
    }
    Ok(())
}

/// SIGTERM, then waits until the lock is released.
pub fn stop(queue_directory: &Path) -> Result<(), Fatal> {
    let pid = running(queue_directory)?.ok_or_else(not_running)?;
    kill(Pid::from_raw(pid), Signal::SIGTERM)
        .map_err(|e| Fatal::Check(format!("kill master pid {pid}: {e}")))?;
    let deadline = Instant::now() + STOP_WAIT;
    while running(queue_directory)?.is_some() {
        if Instant::now() >= deadline {
            return Err(Fatal::Check(format!(
                "the master process (pid {pid}) did not stop in {} seconds",
                STOP_WAIT.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// SIGHUP.
pub fn reload(queue_directory: &Path) -> Result<(), Fatal> {
    let pid = running(queue_directory)?.ok_or_else(not_running)?;
    kill(Pid::from_raw(pid), Signal::SIGHUP)
        .map_err(|e| Fatal::Check(format!("kill master pid {pid}: {e}")))
}

/// Sends `Trigger::Flush` to public/qmgr.
pub fn flush(queue_directory: &Path) -> Result<(), Fatal> {
    running(queue_directory)?.ok_or_else(not_running)?;
    let path = queue_directory.join(rostfix_proto::QMGR_SOCKET);
    let fail =
        |e: &dyn std::fmt::Display| Fatal::Check(format!("cannot flush: {}: {e}", path.display()));
    let mut stream = std::os::unix::net::UnixStream::connect(&path).map_err(|e| fail(&e))?;
    stream
        .set_write_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| fail(&e))?;
    rostfix_proto::write_message(&mut stream, &rostfix_proto::Trigger::Flush).map_err(|e| fail(&e))
}
