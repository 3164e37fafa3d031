//! Delivery to a command (`|command` in aliases, .forward and :include: files, and
//! mailbox_command), as Postfix's pipe_command() does it: `/bin/sh -c COMMAND` (or
//! local_command_shell followed by the command) with the message on standard input,
//! run as the delivery's identity (real and effective ids, supplementary groups
//! dropped), in its own process group, with a clean environment, file size limited by
//! mailbox_size_limit (RLIMIT_FSIZE), killed with its whole process group after
//! command_time_limit. A bounded amount of its output (standard output and error
//! together) is kept for the bounce or defer reason; the exit status is mapped by
//! [`crate::sysexits`]. Input, output and the wait happen in the calling thread on
//! non-blocking pipes: no helper thread (and no copy of the message) can outlive the
//! delivery when a daemon the command started holds the pipes.

#![allow(unsafe_code)] // every unsafe block here states why it is sound

use crate::failure::Failure;
use crate::privileges::{running_as_root, Identity};
use crate::sysexits::{command_outcome, CommandEnd};
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How much command output is kept for the diagnostic (Postfix keeps about 2 KiB).
pub const OUTPUT_KEEP: usize = 2048;

/// After the command ended: how long to wait for its output pipe to close (a daemon
/// it started may hold the pipe open forever; we stop listening then).
const OUTPUT_GRACE: Duration = Duration::from_secs(2);

/// How to run one command.
#[derive(Debug, Clone)]
pub struct CommandSpec<'a> {
    /// The command text (after the `|`).
    pub command: &'a str,
    /// local_command_shell: empty means `/bin/sh -c`; else its words, then the command.
    pub shell: &'a str,
    /// Run as this identity (only when running as root).
    pub ident: Identity,
    /// The complete environment.
    pub env: Vec<(String, String)>,
    /// Working directory (command_execution_directory), if any.
    pub cwd: Option<PathBuf>,
    /// The bytes written to the command's standard input.
    pub input: &'a [u8],
    /// command_time_limit.
    pub time_limit: Duration,
    /// mailbox_size_limit as RLIMIT_FSIZE; 0 = unlimited.
    pub file_size_limit: u64,
}

/// The argument vector: `/bin/sh -c COMMAND`, or local_command_shell's words + COMMAND.
pub fn argv(shell: &str, command: &str) -> Vec<String> {
    let mut v: Vec<String> = if shell.trim().is_empty() {
        vec!["/bin/sh".into(), "-c".into()]
    } else {
        shell.split_whitespace().map(String::from).collect()
    };
    v.push(command.to_string());
    v
}

/// Output as Postfix reports it: tabs and newlines become spaces, other unprintable
/// bytes underscores, surrounding space trimmed.
pub fn printable_output(raw: &[u8]) -> String {
    let s: String = String::from_utf8_lossy(raw)
        .chars()
        .map(|c| match c {
            '\t' | '\n' | '\r' => ' ',
            c if c.is_control() => '_',
            c => c,
        })
        .collect();
    s.trim().to_string()
}

/// Runs the command and maps its end to Ok (exit 0) or a [`Failure`].
pub fn run_command(spec: &CommandSpec<'_>) -> Result<(), Failure> {
    run_argv(&argv(spec.shell, spec.command), spec)
}

/// Executes `args` directly (no shell: pipe(8)'s argv= words), otherwise as
/// [`run_command`]; `spec.command` and `spec.shell` only name the command in texts.
pub fn run_argv(args: &[String], spec: &CommandSpec<'_>) -> Result<(), Failure> {
    let Some(program) = args.first() else {
        return Err(Failure::bounce("5.3.5", "empty command"));
    };
    let (out_read, out_write) =
        std::io::pipe().map_err(|e| Failure::defer("4.3.0", format!("cannot create pipe: {e}")))?;
    let err_write = out_write
        .try_clone()
        .map_err(|e| Failure::defer("4.3.0", format!("cannot duplicate pipe: {e}")))?;
    let mut cmd = Command::new(program);
    cmd.args(&args[1..])
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::from(out_write))
        .stderr(Stdio::from(err_write))
        .process_group(0);
    if let Some(dir) = &spec.cwd {
        cmd.current_dir(dir);
    }
    if running_as_root() {
        // std calls setgroups(0) before setgid/setuid when the real uid is root, so
        // the command keeps no supplementary group of ours.
        cmd.uid(spec.ident.uid.as_raw())
            .gid(spec.ident.gid.as_raw());
    }
    if spec.file_size_limit > 0 {
        let limit = spec.file_size_limit as libc::rlim_t;
        // SAFETY: the closure runs in the forked child before exec and calls only
        // setrlimit(2), which is async-signal-safe; it touches no heap or locks (the
        // rlimit value lives on the child's stack).
        unsafe {
            cmd.pre_exec(move || {
                let lim = libc::rlimit {
                    rlim_cur: limit,
                    rlim_max: limit,
                };
                if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let mut child = cmd.spawn().map_err(|e| {
        Failure::defer(
            "4.3.0",
            format!("cannot execute command \"{}\": {e}", spec.command),
        )
    })?;
    // The parent's copies of the write ends are gone with `cmd`: EOF on out_read
    // comes when the command (and its children) close theirs.
    drop(cmd);

    let stdin = child.stdin.take();
    let end = match pump(&mut child, stdin, out_read, spec) {
        Ok(end) => end,
        Err(e) => {
            kill_group(&mut child);
            return Err(Failure::defer(
                "4.3.0",
                format!("waiting for command \"{}\": {e}", spec.command),
            ));
        }
    };
    command_outcome(end.0, spec.command, &printable_output(&end.1))
}

fn kill_group(child: &mut std::process::Child) {
    let pgid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
    let _ = child.wait();
}

fn set_nonblocking(fd: &impl AsFd) -> std::io::Result<()> {
    let flags = fcntl(fd, FcntlArg::F_GETFL)?;
    fcntl(
        fd,
        FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK),
    )?;
    Ok(())
}

/// Feeds the input, collects the output and waits for the command, all in this
/// thread with non-blocking pipes: no helper thread can outlive the delivery (a
/// daemon the command started may hold either pipe forever without reading or
/// writing; we stop at command_time_limit, and OUTPUT_GRACE after the command
/// ended). Returns how it ended and the first [`OUTPUT_KEEP`] bytes of output.
fn pump(
    child: &mut std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    output: std::io::PipeReader,
    spec: &CommandSpec<'_>,
) -> std::io::Result<(CommandEnd, Vec<u8>)> {
    let mut stdin = stdin;
    let mut output = Some(output);
    if let Some(w) = &stdin {
        set_nonblocking(w)?;
    }
    if let Some(r) = &output {
        set_nonblocking(r)?;
    }
    let mut written = 0usize;
    let mut kept = Vec::new();
    let deadline = Instant::now() + spec.time_limit;
    let mut ended: Option<(CommandEnd, Instant)> = None;
    loop {
        if ended.is_none() {
            if let Some(status) = child.try_wait()? {
                let end = match (status.code(), status.signal()) {
                    (Some(code), _) => CommandEnd::Exited(code),
                    (None, Some(sig)) => CommandEnd::Signaled(sig),
                    (None, None) => CommandEnd::Signaled(0),
                };
                // Whatever input is left has no reader any more.
                stdin = None;
                ended = Some((end, Instant::now() + OUTPUT_GRACE));
            } else if Instant::now() >= deadline {
                kill_group(child);
                return Ok((CommandEnd::TimedOut, kept));
            }
        }
        if let Some((_, grace_end)) = &ended {
            if output.is_none() || Instant::now() >= *grace_end {
                return Ok((ended.map(|e| e.0).unwrap_or(CommandEnd::TimedOut), kept));
            }
        }
        let mut fds = Vec::with_capacity(2);
        if let Some(w) = &stdin {
            fds.push(PollFd::new(w.as_fd(), PollFlags::POLLOUT));
        }
        if let Some(r) = &output {
            fds.push(PollFd::new(r.as_fd(), PollFlags::POLLIN));
        }
        // Short waits: the exit of the command is noticed by try_wait, not by poll.
        match poll(&mut fds, PollTimeout::from(10u16)) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
        drop(fds);
        if let Some(w) = stdin.as_mut() {
            match w.write(&spec.input[written..]) {
                Ok(n) => written += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                // EPIPE: the command does not read its input; that is its business
                // (SIGPIPE is ignored in Rust programs).
                Err(_) => written = spec.input.len(),
            }
            if written >= spec.input.len() {
                stdin = None;
            }
        }
        if let Some(r) = output.as_mut() {
            let mut buf = [0u8; 4096];
            loop {
                match r.read(&mut buf) {
                    Ok(0) => {
                        output = None;
                        break;
                    }
                    Ok(n) => {
                        let room = OUTPUT_KEEP.saturating_sub(kept.len());
                        kept.extend_from_slice(&buf[..n.min(room)]);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(_) => {
                        output = None;
                        break;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdir::TestDir;

    fn spec<'a>(command: &'a str, input: &'a [u8]) -> CommandSpec<'a> {
        CommandSpec {
            command,
            shell: "",
            ident: Identity::current(),
            env: vec![
                ("PATH".into(), "/usr/bin:/bin".into()),
                ("RECIPIENT".into(), "alice@example.org".into()),
            ],
            cwd: None,
            input,
            time_limit: Duration::from_secs(10),
            file_size_limit: 0,
        }
    }

    #[test]
    fn input_env_and_success() {
        let t = TestDir::new("cmd-ok");
        let out = t.path().join("out");
        let command = format!("cat > {0}; echo \"$RECIPIENT $HOME\" >> {0}", out.display());
        run_command(&spec(&command, b"hello\n")).unwrap();
        assert_eq!(
            std::fs::read_to_string(out).unwrap(),
            "hello\nalice@example.org \n"
        );
    }

    #[test]
    fn exit_codes_and_output() {
        let f = run_command(&spec("echo nope; exit 67", b"x")).unwrap_err();
        assert_eq!((f.permanent, f.dsn), (true, "5.1.1"));
        assert_eq!(f.text, "user unknown. Command output: nope");
        let f = run_command(&spec("exit 75", b"x")).unwrap_err();
        assert_eq!((f.permanent, f.dsn), (false, "4.3.0"));
        let f = run_command(&spec("echo a >&2; exit 3", b"x")).unwrap_err();
        assert_eq!(
            f.text,
            "Command died with status 3: \"echo a >&2; exit 3\". Command output: a"
        );
    }

    #[test]
    fn command_not_reading_input_is_fine() {
        let big = vec![b'x'; 1 << 20];
        run_command(&spec("true", &big)).unwrap();
    }

    #[test]
    fn time_limit_kills_the_group() {
        let mut s = spec("sleep 30 & sleep 30", b"");
        s.time_limit = Duration::from_millis(300);
        let start = Instant::now();
        let f = run_command(&s).unwrap_err();
        assert!(start.elapsed() < Duration::from_secs(5));
        assert_eq!((f.permanent, f.dsn), (true, "5.3.0"));
        assert!(
            f.text.starts_with("Command time limit exceeded"),
            "{}",
            f.text
        );
    }

    #[test]
    fn file_size_limit_applies() {
        let t = TestDir::new("cmd-fsize");
        let command = format!("head -c 10000 /dev/zero > {}", t.path().join("f").display());
        let mut s = spec(&command, b"");
        s.file_size_limit = 1000;
        let f = run_command(&s).unwrap_err();
        // head is killed by SIGXFSZ (or exits non-zero when it is ignored).
        assert!(
            f.text.contains("signal 25") || f.text.contains("status"),
            "{}",
            f.text
        );
    }

    #[test]
    fn argv_with_local_command_shell() {
        assert_eq!(argv("", "x y"), vec!["/bin/sh", "-c", "x y"]);
        assert_eq!(
            argv("/usr/sbin/smrsh -c", "vacation"),
            vec!["/usr/sbin/smrsh", "-c", "vacation"]
        );
        assert_eq!(printable_output(b" a\tb\nc\x01 "), "a b c_");
    }
}
