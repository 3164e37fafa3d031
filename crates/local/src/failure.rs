//! The outcome of a failed delivery attempt: temporary (qmgr retries) or permanent
//! (qmgr bounces), with the enhanced status code and the text that ends up in the log
//! line and the non-delivery notice.

use nix::errno::Errno;

/// Why one recipient could not be delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{dsn} {text}")]
pub struct Failure {
    /// true: bounce now; false: defer and retry later.
    pub permanent: bool,
    /// Enhanced status code, e.g. "4.2.0", "5.1.1".
    pub dsn: &'static str,
    /// Human-readable reason, logged as `status=... (text)`.
    pub text: String,
}

impl Failure {
    /// A temporary failure.
    pub fn defer(dsn: &'static str, text: impl Into<String>) -> Failure {
        Failure {
            permanent: false,
            dsn,
            text: text.into(),
        }
    }

    /// A permanent failure.
    pub fn bounce(dsn: &'static str, text: impl Into<String>) -> Failure {
        Failure {
            permanent: true,
            dsn,
            text: text.into(),
        }
    }

    /// Maps a system error met while writing a mailbox the way Postfix's mbox_dsn()
    /// does: a full disk or a read-only/broken file system is a system problem (4.3.0),
    /// a quota or file size limit is a full mailbox (5.2.2, bounced), anything else
    /// (permissions, locks, ...) is a mailbox problem that may be fixed later (4.2.0).
    pub fn from_io(err: &std::io::Error, text: impl Into<String>) -> Failure {
        match err.raw_os_error().map(Errno::from_raw) {
            Some(Errno::ENOSPC) | Some(Errno::EIO) | Some(Errno::EROFS) => {
                Failure::defer("4.3.0", text)
            }
            Some(Errno::EDQUOT) | Some(Errno::EFBIG) => Failure::bounce("5.2.2", text),
            _ => Failure::defer("4.2.0", text),
        }
    }
}

/// The bare system error text ("No space left on device"), without Rust's
/// " (os error 28)" suffix, so reasons read like Postfix's.
pub fn errtext(err: &std::io::Error) -> String {
    match err.raw_os_error() {
        Some(code) => Errno::from_raw(code).desc().to_string(),
        None => err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    #[test]
    fn errno_mapping() {
        let enospc = io::Error::from_raw_os_error(libc::ENOSPC);
        let f = Failure::from_io(&enospc, "x");
        assert_eq!((f.permanent, f.dsn), (false, "4.3.0"));
        let edquot = io::Error::from_raw_os_error(libc::EDQUOT);
        let f = Failure::from_io(&edquot, "x");
        assert_eq!((f.permanent, f.dsn), (true, "5.2.2"));
        let eacces = io::Error::from_raw_os_error(libc::EACCES);
        let f = Failure::from_io(&eacces, "x");
        assert_eq!((f.permanent, f.dsn), (false, "4.2.0"));
    }

    #[test]
    fn errtext_is_bare() {
        let e = io::Error::from_raw_os_error(libc::ENOSPC);
        assert_eq!(errtext(&e), "No space left on device");
        let e = io::Error::other("custom");
        assert_eq!(errtext(&e), "custom");
    }
}
