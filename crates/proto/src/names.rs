//! The names IPC messages carry, checked once when a message is decoded: a queue id
//! ([`QueueId`]), a queue directory ([`QueueName`]) and an enhanced status code
//! ([`Dsn`]). A request naming `../etc` as its queue id or `5.x` as its status is then
//! refused by the frame reader with a clear error, and no service re-checks them.
//!
//! The queue crate re-exports [`QueueName`] and [`is_valid_queue_id`], so the queue
//! files and the requests that name them share one definition.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::Deref;

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("invalid queue id {0:?}")]
    QueueId(String),
    #[error("invalid queue name {0:?}")]
    QueueName(String),
    #[error("invalid enhanced status code {0:?}")]
    Dsn(String),
}

/// True for ids the queue could have made: 6 to 32 characters of `[0-9A-F]`.
/// Temporary names (`tmp.PID.N`) and anything else fail, so they are never taken for
/// queue files and an id can never be a path like `../x`.
pub fn is_valid_queue_id(s: &str) -> bool {
    (6..=32).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
}

/// A string checked by `$valid` when made or decoded, refused with `$error` otherwise;
/// it derefs to `str`, so it goes wherever a `&str` did (paths, log lines).
macro_rules! checked_string {
    ($(#[$doc:meta])* $name:ident, $valid:path, $error:path) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// `s`, if it is well-formed.
            pub fn new(s: impl Into<String>) -> Result<$name, NameError> {
                let s = s.into();
                if $valid(&s) {
                    Ok($name(s))
                } else {
                    Err($error(s))
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = NameError;
            fn try_from(s: String) -> Result<$name, NameError> {
                $name::new(s)
            }
        }

        impl std::str::FromStr for $name {
            type Err = NameError;
            fn from_str(s: &str) -> Result<$name, NameError> {
                $name::new(s)
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }

        impl Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    };
}

checked_string!(
    /// A queue id that passed [`is_valid_queue_id`]: safe to use as a file name.
    QueueId,
    is_valid_queue_id,
    NameError::QueueId
);

impl AsRef<std::path::Path> for QueueId {
    fn as_ref(&self) -> &std::path::Path {
        std::path::Path::new(&self.0)
    }
}

/// The queue directories that hold queue files; on the wire, the directory name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QueueName {
    Maildrop,
    Incoming,
    Active,
    Deferred,
    Hold,
    Corrupt,
    /// The bus intake's staging directory: complete messages not yet in maildrop/
    /// (crates/bus). Not a queue rostqueue lists, so not in [`ALL_QUEUES`].
    Bus,
}

/// All of them, in the order rostqueue lists them.
pub const ALL_QUEUES: [QueueName; 6] = [
    QueueName::Maildrop,
    QueueName::Incoming,
    QueueName::Active,
    QueueName::Deferred,
    QueueName::Hold,
    QueueName::Corrupt,
];

impl QueueName {
    /// The directory name, e.g. "incoming".
    pub fn as_str(&self) -> &'static str {
        match self {
            QueueName::Maildrop => "maildrop",
            QueueName::Incoming => "incoming",
            QueueName::Active => "active",
            QueueName::Deferred => "deferred",
            QueueName::Hold => "hold",
            QueueName::Corrupt => "corrupt",
            QueueName::Bus => "bus",
        }
    }

    /// Parses a directory name.
    pub fn parse(s: &str) -> Option<QueueName> {
        ALL_QUEUES.iter().copied().find(|q| q.as_str() == s)
    }
}

impl fmt::Display for QueueName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

checked_string!(
    /// An RFC 3463 enhanced status code `class.subject.detail`: class 2, 4 or 5, then
    /// two numbers of one to three digits (e.g. "5.1.1").
    Dsn,
    is_valid_dsn,
    NameError::Dsn
);

/// True for a well-formed enhanced status code.
pub fn is_valid_dsn(s: &str) -> bool {
    let mut parts = s.split('.');
    let number = |p: Option<&str>| {
        p.is_some_and(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
    };
    matches!(parts.next(), Some("2" | "4" | "5"))
        && number(parts.next())
        && number(parts.next())
        && parts.next().is_none()
}

impl Dsn {
    /// `s` if it is a code, else the bare class code (`2.0.0`, `4.0.0`, `5.0.0`) of
    /// `status`: an agent's codes come from remote servers and configuration, and must
    /// not make its reply undecodable.
    pub fn or_class(s: &str, status: crate::DeliveryStatus) -> Dsn {
        Dsn::new(s).unwrap_or_else(|_| {
            let class = match status {
                crate::DeliveryStatus::Sent => "2.0.0",
                crate::DeliveryStatus::Deferred => "4.0.0",
                crate::DeliveryStatus::Bounced => "5.0.0",
            };
            Dsn(class.to_string())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_ids() {
        assert!(is_valid_queue_id("3F2A81C0D4E"));
        assert!(is_valid_queue_id("000001"));
        assert!(is_valid_queue_id(&"F".repeat(32)));
        assert_eq!(QueueId::new("3F2A81C0D4E").unwrap(), "3F2A81C0D4E");
    }

    #[test]
    fn invalid_ids() {
        for s in [
            "",
            "ABCDE",
            "3f2a81c0d4e",
            "tmp.123.4",
            "../ABCDEF",
            "ABCDEFG",
            &"F".repeat(33),
        ] {
            assert!(!is_valid_queue_id(s), "{s}");
            assert_eq!(QueueId::new(s), Err(NameError::QueueId(s.to_string())));
        }
    }

    #[test]
    fn queue_names_round_trip_as_directory_names() {
        for q in ALL_QUEUES {
            let json = serde_json::to_string(&q).unwrap();
            assert_eq!(json, format!("\"{}\"", q.as_str()));
            assert_eq!(serde_json::from_str::<QueueName>(&json).unwrap(), q);
            assert_eq!(QueueName::parse(q.as_str()), Some(q));
        }
        assert!(serde_json::from_str::<QueueName>("\"../x\"").is_err());
        assert!(serde_json::from_str::<QueueName>("\"Active\"").is_err());
    }

    #[test]
    fn dsn_codes() {
        for s in ["2.0.0", "4.4.1", "5.1.1", "5.123.999"] {
            assert_eq!(Dsn::new(s).unwrap(), s);
        }
        for s in [
            "", "5", "5.1", "3.0.0", "5.1.1.1", "5.1.x", "5..1", "5.1234.1", " 5.1.1",
        ] {
            assert_eq!(Dsn::new(s), Err(NameError::Dsn(s.to_string())), "{s}");
        }
        use crate::DeliveryStatus::*;
        assert_eq!(Dsn::or_class("5.7.1", Bounced), "5.7.1");
        assert_eq!(Dsn::or_class("junk", Bounced), "5.0.0");
        assert_eq!(Dsn::or_class("", Deferred), "4.0.0");
        assert_eq!(Dsn::or_class("x", Sent), "2.0.0");
    }

    #[test]
    fn decoding_checks_and_encoding_keeps_the_plain_string() {
        let id: QueueId = serde_json::from_str("\"ABCDEF1\"").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"ABCDEF1\"");
        let err = serde_json::from_str::<QueueId>("\"../../etc/passwd\"").unwrap_err();
        assert!(err.to_string().contains("invalid queue id"), "{err}");
        let err = serde_json::from_str::<Dsn>("\"9.9.9\"").unwrap_err();
        assert!(
            err.to_string().contains("invalid enhanced status code"),
            "{err}"
        );
    }
}
