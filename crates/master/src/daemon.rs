//! Detaching from the terminal: fork, the parent waits on a pipe for the child's
//! "ready" (exit 0) or its error text (printed, exit 1); the child starts a new session
//! and does all setup before it reports.

#![allow(unsafe_code)] // every unsafe block here states why it is sound

use std::io::{Read, Write};
use std::os::fd::OwnedFd;

/// What the child writes when setup is done.
const READY: &[u8] = b"ready";
/// Longest error text the parent reads back.
const MAX_MESSAGE: u64 = 4096;

/// The child's end of the readiness pipe.
pub struct ReadyPipe(std::fs::File);

/// Forks. Only the child returns (in a new session); the parent exits with the child's
/// verdict. Must be called while the process has a single thread.
pub fn daemonize() -> std::io::Result<ReadyPipe> {
    let (read, write): (OwnedFd, OwnedFd) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(std::io::Error::from)?;
    // SAFETY: called from main before any thread exists, so the child is a consistent
    // copy; both sides continue with ordinary Rust code.
    match unsafe { nix::unistd::fork() }.map_err(std::io::Error::from)? {
        nix::unistd::ForkResult::Parent { .. } => {
            drop(write);
            let mut text = Vec::new();
            let _ = std::fs::File::from(read)
                .take(MAX_MESSAGE)
                .read_to_end(&mut text);
            if text == READY {
                std::process::exit(0);
            }
            let message = String::from_utf8_lossy(&text);
            if message.is_empty() {
                eprintln!("master: fatal: the master process died during startup");
            } else {
                eprintln!("master: fatal: {message}");
            }
            std::process::exit(1);
        }
        nix::unistd::ForkResult::Child => {
            drop(read);
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            Ok(ReadyPipe(std::fs::File::from(write)))
        }
    }
}

impl ReadyPipe {
    /// Setup succeeded: tell the parent, then detach stdin/stdout/stderr (whoever
    /// started us may be waiting for them to close).
    pub fn ready(mut self) {
        let _ = self.0.write_all(READY);
        drop(self);
        if let Ok(null) = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")
        {
            let _ = nix::unistd::dup2_stdin(&null);
            let _ = nix::unistd::dup2_stdout(&null);
            let _ = nix::unistd::dup2_stderr(&null);
        }
    }

    /// Setup failed: hand the reason to the parent, which prints it.
    pub fn failed(mut self, message: &str) {
        let _ = self.0.write_all(message.as_bytes());
    }
}
