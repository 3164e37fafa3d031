//! Signals that cannot leave a half-written maildrop file behind. The rest of the
//! start-up hygiene (standard descriptors, environment, umask) is shared with
//! rostqueue: rostfix_privilege::hygiene.

#![allow(unsafe_code)] // every unsafe block here states why it is sound

use nix::sys::signal::{signal, SigHandler, SigSet, SigmaskHow, Signal};

/// Signals that would otherwise kill us between creating and committing a file.
const DEFERRED_SIGNALS: [Signal; 4] = [
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
];

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
