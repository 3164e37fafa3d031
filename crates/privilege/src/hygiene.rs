//! Start-up hygiene of a set-group-id command (rostdrop, rostqueue) run by a possibly
//! hostile user, as Postfix's postdrop and postqueue do it: standard descriptors that
//! really exist, a umask of our choosing, and an environment reduced to what
//! import_environment names, so nothing the caller set reaches us or a library.

#![allow(unsafe_code)] // every unsafe block here states why it is sound

use nix::sys::stat::{umask, Mode};
use std::ffi::OsString;
use std::os::fd::{AsRawFd, BorrowedFd};

/// The standard descriptors could not be made safe.
#[derive(Debug, thiserror::Error)]
#[error("open /dev/null for a closed standard descriptor {fd}: {reason}")]
pub struct HygieneError {
    pub fd: i32,
    pub reason: String,
}

/// Opens /dev/null on any of fds 0, 1, 2 the caller closed, so a file opened later can
/// never become "stderr" and receive error messages.
pub fn ensure_std_fds() -> Result<(), HygieneError> {
    for fd in 0..3 {
        // SAFETY: the descriptor is only probed with F_GETFD, never used or kept.
        let probe = unsafe { BorrowedFd::borrow_raw(fd) };
        if nix::fcntl::fcntl(probe, nix::fcntl::FcntlArg::F_GETFD).is_ok() {
            continue;
        }
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")
            .map_err(|e| HygieneError {
                fd,
                reason: e.to_string(),
            })?;
        if file.as_raw_fd() != fd {
            return Err(HygieneError {
                fd,
                reason: format!("got descriptor {} instead", file.as_raw_fd()),
            });
        }
        // The lowest free descriptor is the closed one: keep it open for good.
        std::mem::forget(file);
    }
    Ok(())
}

/// The caller's environment, taken out of the process by [`take_environment`].
#[derive(Debug, Default, Clone)]
pub struct SavedEnvironment {
    vars: Vec<(OsString, OsString)>,
}

impl SavedEnvironment {
    /// A saved value.
    pub fn get(&self, name: &str) -> Option<&OsString> {
        self.vars.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// The environment to put back under import_environment: `NAME` keeps the
    /// caller's value if there was one, `NAME=VALUE` sets that value whatever the
    /// caller had. Everything else stays out.
    pub fn imported(&self, import: &[String]) -> Vec<(OsString, OsString)> {
        let mut out: Vec<(OsString, OsString)> = Vec::new();
        for item in import {
            let (name, value) = match item.split_once('=') {
                Some((name, value)) => (name, Some(OsString::from(value))),
                None => (item.as_str(), self.get(item).cloned()),
            };
            let Some(value) = value else { continue };
            if name.is_empty() {
                continue;
            }
            out.retain(|(k, _)| k != name);
            out.push((OsString::from(name), value));
        }
        out
    }

    /// Sets the variables [`SavedEnvironment::imported`] keeps. Call while
    /// single-threaded.
    pub fn import(&self, import: &[String]) {
        for (name, value) in self.imported(import) {
            std::env::set_var(name, value);
        }
    }
}

/// Empties the process environment and returns what was in it. Call while
/// single-threaded, before anything reads the environment.
pub fn take_environment() -> SavedEnvironment {
    let vars: Vec<(OsString, OsString)> = std::env::vars_os().collect();
    for (name, _) in &vars {
        std::env::remove_var(name);
    }
    SavedEnvironment { vars }
}

/// The start of a set-group-id command: standard descriptors, `mask` as umask, and the
/// caller's environment taken away (see [`SavedEnvironment::import`] to restore the
/// part main.cf's import_environment allows).
pub fn harden(mask: u32) -> Result<SavedEnvironment, HygieneError> {
    ensure_std_fds()?;
    umask(Mode::from_bits_truncate(mask));
    Ok(take_environment())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saved(vars: &[(&str, &str)]) -> SavedEnvironment {
        SavedEnvironment {
            vars: vars
                .iter()
                .map(|(k, v)| (OsString::from(k), OsString::from(v)))
                .collect(),
        }
    }

    fn list(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn import_keeps_named_and_sets_assigned() {
        let env = saved(&[
            ("TZ", "UTC"),
            ("LD_PRELOAD", "/tmp/evil.so"),
            ("LANG", "de_DE"),
            ("MAIL_CONFIG", "/tmp/x"),
        ]);
        let got = env.imported(&list(&["MAIL_CONFIG", "TZ", "DISPLAY", "LANG=C"]));
        let got: Vec<(String, String)> = got
            .into_iter()
            .map(|(k, v)| (k.into_string().unwrap(), v.into_string().unwrap()))
            .collect();
        assert_eq!(
            got,
            [
                ("MAIL_CONFIG".to_string(), "/tmp/x".to_string()),
                ("TZ".to_string(), "UTC".to_string()),
                ("LANG".to_string(), "C".to_string()),
            ]
        );
        assert!(env.imported(&[]).is_empty());
        assert!(env.imported(&list(&["=x"])).is_empty());
    }

    #[test]
    fn open_std_fds_are_left_alone() {
        // The test harness has 0, 1 and 2 open: nothing to do, and no error.
        ensure_std_fds().unwrap();
    }
}
