//! Process hygiene for a set-group-id program run by a possibly hostile user: standard
//! descriptors that really exist, an environment with nothing we did not choose, a
//! private umask, and signals that cannot leave a half-written file behind.

#![allow(unsafe_code)] // every unsafe block here states why it is sound

use nix::sys::signal::{signal, SigHandler, SigSet, SigmaskHow, Signal};
use nix::sys::stat::{umask, Mode};
use std::os::fd::AsRawFd;

/// Environment variables kept (time zone only; nothing else is read by us).
const KEEP_ENV: &[&str] = &["TZ"];

/// Signals that would otherwise kill us between creating and committing a file.
const DEFERRED_SIGNALS: [Signal; 4] = [
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
];

/// Opens /dev/null on any of fds 0, 1, 2 the caller closed, so a file we open later
/// can never become "stderr" and receive our error messages.
pub fn ensure_std_fds() {
    for fd in 0..3 {
        if nix::fcntl::fcntl(
            // SAFETY: the fd is only probed with F_GETFD and not kept.
            unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) },
            nix::fcntl::FcntlArg::F_GETFD,
        )
        .is_err()
        {
            match std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/null")
            {
                // The lowest free descriptor is the closed one; keep it open for good.
                Ok(f) if f.as_raw_fd() == fd => std::mem::forget(f),
                Ok(_) | Err(_) => std::process::exit(crate::sysexits::EX_TEMPFAIL),
            }
        }
    }
}

/// Removes every environment variable except [`KEEP_ENV`]. Call while single-threaded.
pub fn clear_environment() {
    let names: Vec<_> = std::env::vars_os().map(|(k, _)| k).collect();
    for name in names {
        if !KEEP_ENV.iter().any(|k| name == *k) {
            std::env::remove_var(&name);
        }
    }
}

/// Files we create are private to us until pickup reads them.
pub fn private_umask() {
    umask(Mode::from_bits_truncate(0o077));
}

/// Blocks SIGHUP/SIGINT/SIGQUIT/SIGTERM (they stay pending, see [`interrupted`]) and
/// ignores SIGXFSZ (a low RLIMIT_FSIZE then makes write fail, and we clean up).
pub fn defer_signals() {
    let mut set = SigSet::empty();
    for s in DEFERRED_SIGNALS {
        set.add(s);
    }
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None);
    // SAFETY: SigIgn installs no handler code, so no async-signal-safety concerns.
    let _ = unsafe { signal(Signal::SIGXFSZ, SigHandler::SigIgn) };
}

/// True if one of the deferred signals arrived: the user interrupted the submission
/// (e.g. ^C reaches sendmail and us alike), so the input may be cut short and must not
/// be committed.
pub fn interrupted() -> bool {
    // SAFETY: sigset_t is plain data; sigemptyset initializes it before sigpending
    // fills it, and both only write to the local we pass.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: see above.
    unsafe {
        libc::sigemptyset(&mut set);
        if libc::sigpending(&mut set) != 0 {
            return false;
        }
    }
    DEFERRED_SIGNALS.iter().any(|s| {
        // SAFETY: `set` was initialized by sigpending; sigismember only reads it.
        unsafe { libc::sigismember(&set, *s as libc::c_int) == 1 }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_signal_detected() {
        // Signal masks are per thread: block and raise in this test's thread only.
        let mut set = SigSet::empty();
        set.add(Signal::SIGHUP);
        set.thread_block().unwrap();
        assert!(!interrupted());
        // SAFETY: raise() sends SIGHUP to this thread, where it is blocked: no handler runs.
        assert_eq!(unsafe { libc::raise(libc::SIGHUP) }, 0);
        assert!(interrupted());
        // Consume it so the test harness is not affected.
        let got = set.wait().unwrap();
        assert_eq!(got, Signal::SIGHUP);
    }
}
