//! Running the command for one client: the connection becomes its standard input,
//! output and error; it runs as the service's user with a clean environment in its
//! own process group, and the whole group is killed when it outlives the time limit
//! (a policy server that hangs must not pin a spawn process, and the client sees the
//! connection close).

use rostfix_local::privileges::{running_as_root, Identity};
use std::os::fd::OwnedFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How often the wait looks at the child: short against any useful time limit, long
/// enough to cost nothing while a policy server runs for hours.
const POLL: Duration = Duration::from_millis(50);

/// What to run for each client.
#[derive(Debug, Clone)]
pub struct SpawnCommand {
    pub argv: Vec<String>,
    pub ident: Identity,
    pub env: Vec<(String, String)>,
    pub time_limit: Duration,
}

/// How the command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Exited(i32),
    Signaled(i32),
    /// Killed with its process group after the time limit.
    TimedOut,
}

/// Why the command could not be run or waited for.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("empty command")]
    Empty,
    #[error("cannot duplicate the client socket: {0}")]
    Dup(#[source] std::io::Error),
    #[error("cannot execute command {command}: {source}")]
    Exec {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("waiting for command {command}: {source}")]
    Wait {
        command: String,
        #[source]
        source: std::io::Error,
    },
}

/// Runs `cmd` with `client` as its standard streams and waits for it.
pub fn run(cmd: &SpawnCommand, client: OwnedFd) -> Result<Ended, SpawnError> {
    let program = cmd.argv.first().ok_or(SpawnError::Empty)?;
    let out = client.try_clone().map_err(SpawnError::Dup)?;
    let err = client.try_clone().map_err(SpawnError::Dup)?;
    let mut command = Command::new(program);
    command
        .args(&cmd.argv[1..])
        .env_clear()
        .envs(cmd.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::from(client))
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .current_dir("/")
        .process_group(0);
    if running_as_root() {
        // std drops supplementary groups (setgroups) before setgid/setuid when the
        // real uid is root: the command keeps nothing of ours.
        command
            .uid(cmd.ident.uid.as_raw())
            .gid(cmd.ident.gid.as_raw());
    }
    let mut child = command.spawn().map_err(|source| SpawnError::Exec {
        command: program.clone(),
        source,
    })?;
    // Our copies of the socket went with `command`: the client sees the connection
    // close when the command (and whatever it started) closes its own.
    drop(command);
    let deadline = Instant::now() + cmd.time_limit;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                return Ok(match (status.code(), status.signal()) {
                    (Some(code), _) => Ended::Exited(code),
                    (None, Some(sig)) => Ended::Signaled(sig),
                    (None, None) => Ended::Exited(-1),
                });
            }
            Ok(None) if Instant::now() >= deadline => {
                let pgid = nix::unistd::Pid::from_raw(child.id() as i32);
                let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
                let _ = child.wait();
                return Ok(Ended::TimedOut);
            }
            Ok(None) => std::thread::sleep(POLL.min(deadline - Instant::now())),
            Err(source) => {
                let pgid = nix::unistd::Pid::from_raw(child.id() as i32);
                let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
                let _ = child.wait();
                return Err(SpawnError::Wait {
                    command: program.clone(),
                    source,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::unistd::{getgid, getuid};
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;

    fn cmd(argv: &[&str], limit: Duration) -> SpawnCommand {
        SpawnCommand {
            argv: argv.iter().map(|s| s.to_string()).collect(),
            ident: Identity {
                uid: getuid(),
                gid: getgid(),
            },
            env: vec![("PATH".into(), "/usr/bin:/bin".into())],
            time_limit: limit,
        }
    }

    #[test]
    fn the_client_talks_to_the_command() {
        let (mut ours, theirs) = UnixStream::pair().unwrap();
        ours.write_all(b"request=smtpd_access_policy\n\n").unwrap();
        ours.shutdown(std::net::Shutdown::Write).unwrap();
        let c = cmd(
            &[
                "/bin/sh",
                "-c",
                "read line; cat >/dev/null; echo \"got $line\"; echo oops >&2",
            ],
            Duration::from_secs(10),
        );
        let ended = run(&c, theirs.into()).unwrap();
        assert_eq!(ended, Ended::Exited(0));
        let mut answer = String::new();
        ours.read_to_string(&mut answer).unwrap();
        assert_eq!(answer, "got request=smtpd_access_policy\noops\n");
    }

    #[test]
    fn exit_status_is_reported() {
        let (_ours, theirs) = UnixStream::pair().unwrap();
        let c = cmd(&["/bin/sh", "-c", "exit 3"], Duration::from_secs(10));
        assert_eq!(run(&c, theirs.into()).unwrap(), Ended::Exited(3));
    }

    #[test]
    fn a_command_past_its_time_limit_is_killed_with_its_group() {
        let (mut ours, theirs) = UnixStream::pair().unwrap();
        // The grandchild keeps the socket open; killing the group must close it.
        let c = cmd(
            &["/bin/sh", "-c", "sleep 30 & sleep 30"],
            Duration::from_millis(300),
        );
        let start = Instant::now();
        assert_eq!(run(&c, theirs.into()).unwrap(), Ended::TimedOut);
        assert!(start.elapsed() < Duration::from_secs(20));
        ours.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut rest = Vec::new();
        assert_eq!(ours.read_to_end(&mut rest).unwrap(), 0, "socket closed");
    }

    #[test]
    fn a_missing_program_is_an_exec_error() {
        let (_ours, theirs) = UnixStream::pair().unwrap();
        let c = cmd(&["/nonexistent/policy"], Duration::from_secs(1));
        assert!(matches!(
            run(&c, theirs.into()),
            Err(SpawnError::Exec { .. })
        ));
    }
}
