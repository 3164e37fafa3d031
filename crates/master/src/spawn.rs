//! fork + exec of one service child with the fd layout of docs: fd 3 = status pipe write
//! end, fds 4.. = listening sockets, signal mask and dispositions reset.
//!
//! Everything the child needs (C strings, pointer arrays, scratch space) is prepared
//! before fork, so the child only makes async-signal-safe system calls.

#![allow(unsafe_code)] // every unsafe block here states why it is sound

use std::ffi::CString;
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// First fd of the child's layout (the status pipe).
const FIRST_FD: RawFd = 3;
/// Exit status of a child whose exec failed.
const EXEC_FAILED: i32 = 127;

/// A child ready to be forked.
pub struct SpawnSpec {
    path: CString,
    _argv: Vec<CString>,
    _envp: Vec<CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    envp_ptrs: Vec<*const libc::c_char>,
    /// fds to place at 3, 4, ... in order.
    sources: Vec<RawFd>,
    scratch: Vec<RawFd>,
}

/// Why a spawn could not be prepared or forked.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("argument or environment contains a NUL byte")]
    Nul,
    #[error("fork: {0}")]
    Fork(std::io::Error),
}

fn cstring(text: &[u8]) -> Result<CString, SpawnError> {
    CString::new(text).map_err(|_| SpawnError::Nul)
}

impl SpawnSpec {
    /// `status_fd` goes to fd 3, `listeners` to 4...
    pub fn new(
        program: &Path,
        argv: &[String],
        env: &[(String, String)],
        status_fd: RawFd,
        listeners: &[RawFd],
    ) -> Result<SpawnSpec, SpawnError> {
        let path = cstring(program.as_os_str().as_bytes())?;
        let argv: Vec<CString> = argv
            .iter()
            .map(|a| cstring(a.as_bytes()))
            .collect::<Result<_, _>>()?;
        let envp: Vec<CString> = env
            .iter()
            .map(|(n, v)| cstring(format!("{n}={v}").as_bytes()))
            .collect::<Result<_, _>>()?;
        let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
        argv_ptrs.push(std::ptr::null());
        let mut envp_ptrs: Vec<*const libc::c_char> = envp.iter().map(|e| e.as_ptr()).collect();
        envp_ptrs.push(std::ptr::null());
        let mut sources = vec![status_fd];
        sources.extend_from_slice(listeners);
        let scratch = vec![-1; sources.len()];
        Ok(SpawnSpec {
            path,
            _argv: argv,
            _envp: envp,
            argv_ptrs,
            envp_ptrs,
            sources,
            scratch,
        })
    }

    /// Forks; the child execs and never returns. Returns the child's pid.
    pub fn spawn(mut self) -> Result<i32, SpawnError> {
        // SAFETY: fork in master, which is single-threaded (signals arrive through a
        // signalfd, there are no helper threads), so the child's copy of the address
        // space is consistent. The child only runs `exec_child`, which makes
        // async-signal-safe calls on memory prepared before the fork and never returns.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(SpawnError::Fork(std::io::Error::last_os_error()));
        }
        if pid == 0 {
            // SAFETY: in the freshly forked child, see above.
            unsafe { self.exec_child() }
        }
        Ok(pid)
    }

    /// In the child: arrange fds, reset signals, exec; `_exit(127)` on any failure.
    ///
    /// # Safety
    /// Only to be called in the child right after fork.
    unsafe fn exec_child(&mut self) -> ! {
        let count = self.sources.len() as RawFd;
        // First move every source above the target range, so placing one target cannot
        // clobber a source that is still to be placed.
        for (index, source) in self.sources.iter().enumerate() {
            // SAFETY: fcntl on an fd we own; F_DUPFD_CLOEXEC returns a new fd or -1.
            let dup = unsafe { libc::fcntl(*source, libc::F_DUPFD_CLOEXEC, FIRST_FD + count) };
            if dup < 0 {
                // SAFETY: _exit is async-signal-safe and ends the child.
                unsafe { libc::_exit(EXEC_FAILED) };
            }
            self.scratch[index] = dup;
        }
        for (index, dup) in self.scratch.iter().enumerate() {
            // SAFETY: dup2 onto the target; the new fd does not have FD_CLOEXEC, so it
            // survives exec, while the scratch copy (CLOEXEC) goes away.
            if unsafe { libc::dup2(*dup, FIRST_FD + index as RawFd) } < 0 {
                // SAFETY: as above.
                unsafe { libc::_exit(EXEC_FAILED) };
            }
        }
        // SAFETY: sigset_t is plain data; sigemptyset initializes it. Unblocking all
        // signals undoes master's mask (master blocks the ones its signalfd reads).
        unsafe {
            let mut empty: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut empty);
            libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
        }
        for signal in 1..libc::SIGRTMIN() {
            // SAFETY: resetting a disposition to SIG_DFL is always sound; SIGKILL and
            // SIGSTOP simply fail with EINVAL, which we ignore. Ignored dispositions
            // (master ignores SIGPIPE) would otherwise survive exec.
            unsafe { libc::signal(signal, libc::SIG_DFL) };
        }
        // SAFETY: path, argv and envp are NUL-terminated C strings and null-terminated
        // pointer arrays built before fork and still alive (self is borrowed).
        unsafe {
            libc::execve(
                self.path.as_ptr(),
                self.argv_ptrs.as_ptr(),
                self.envp_ptrs.as_ptr(),
            );
            libc::_exit(EXEC_FAILED)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::wait::{waitpid, WaitStatus};
    use nix::unistd::Pid;
    use std::io::Read;
    use std::os::fd::AsRawFd;

    /// Runs a shell in the child that reports what it got at fds 3 and 4 and its env.
    #[test]
    fn child_gets_fd_layout_env_and_default_signals() {
        let (status_read, status_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        let listener = std::os::unix::net::UnixListener::bind(
            std::env::temp_dir().join(format!("master-spawn-{}", std::process::id())),
        )
        .unwrap();
        let script = "echo \"$LISTEN_FDS $GENERATION $HOME\" >&3; \
                      [ -S /proc/self/fd/4 ] || readlink /proc/self/fd/4 | grep -q socket && echo sock4 >&3; \
                      grep -q '^SigBlk:\t0000000000000000' /proc/self/status && echo unblocked >&3";
        let argv = vec!["/bin/sh".to_string(), "-c".to_string(), script.to_string()];
        let env = vec![
            ("LISTEN_FDS".to_string(), "1".to_string()),
            ("GENERATION".to_string(), "9".to_string()),
        ];
        let spec = SpawnSpec::new(
            Path::new("/bin/sh"),
            &argv,
            &env,
            status_write.as_raw_fd(),
            &[listener.as_raw_fd()],
        )
        .unwrap();
        let pid = spec.spawn().unwrap();
        drop(status_write);
        let mut out = String::new();
        std::fs::File::from(status_read)
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(
            waitpid(Pid::from_raw(pid), None).unwrap(),
            WaitStatus::Exited(Pid::from_raw(pid), 0)
        );
        assert_eq!(out, "1 9 \nsock4\nunblocked\n");
        let _ = std::fs::remove_file(
            std::env::temp_dir().join(format!("master-spawn-{}", std::process::id())),
        );
    }

    #[test]
    fn exec_failure_exits_127() {
        let spec = SpawnSpec::new(
            Path::new("/nonexistent/prog"),
            &["prog".to_string()],
            &[],
            1,
            &[],
        )
        .unwrap();
        let pid = spec.spawn().unwrap();
        assert_eq!(
            waitpid(Pid::from_raw(pid), None).unwrap(),
            WaitStatus::Exited(Pid::from_raw(pid), 127)
        );
    }

    #[test]
    fn nul_is_refused() {
        assert!(SpawnSpec::new(Path::new("/bin/sh"), &["a\0b".to_string()], &[], 1, &[]).is_err());
    }
}
