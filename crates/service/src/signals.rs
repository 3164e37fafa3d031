//! Signal set-up: SIGPIPE ignored (so a broken status pipe or client socket is an EPIPE
//! error, not death) and, inside the serve loop, SIGTERM turned into a flag so a child
//! finishes its current client and exits cleanly between clients.

#![allow(unsafe_code)] // every unsafe block here states why it is sound

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use std::sync::atomic::{AtomicBool, Ordering};

static TERMINATE: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigterm(_: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    TERMINATE.store(true, Ordering::SeqCst);
}

/// Ignores SIGPIPE (Rust's runtime usually has already; a daemon must not rely on it).
/// Programs a daemon spawns through std::process get SIGPIPE back at its default.
pub(crate) fn ignore_sigpipe() -> std::io::Result<()> {
    let action = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
    // SAFETY: SIG_IGN installs no handler code, so no async-signal-safety question arises.
    unsafe { sigaction(Signal::SIGPIPE, &action) }
        .map(|_| ())
        .map_err(std::io::Error::from)
}

/// Makes SIGTERM set a flag. SA_RESTART keeps a client handler's blocking reads and
/// writes going; poll(2) in the serve loop still returns EINTR so the flag is seen.
pub(crate) fn catch_sigterm() -> std::io::Result<()> {
    let action = SigAction::new(
        SigHandler::Handler(on_sigterm),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    // SAFETY: the handler only stores to a static AtomicBool, which is async-signal-safe,
    // and touches no other state.
    unsafe { sigaction(Signal::SIGTERM, &action) }
        .map(|_| ())
        .map_err(std::io::Error::from)
}

/// True once SIGTERM arrived.
pub(crate) fn terminate_requested() -> bool {
    TERMINATE.load(Ordering::SeqCst)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigterm_sets_the_flag_instead_of_killing() {
        catch_sigterm().unwrap();
        assert!(!terminate_requested());
        nix::sys::signal::raise(Signal::SIGTERM).unwrap();
        assert!(terminate_requested());
        ignore_sigpipe().unwrap();
    }
}
