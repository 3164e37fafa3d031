//! smtpd_sender_login_maps and the four reject_*_sender_login_mismatch restrictions
//! (Postfix's reject_auth_sender_login_mismatch / reject_unauth_sender_login_mismatch):
//! the tables say which SASL login names own a sender address; an owner is a comma or
//! space separated list of login names, compared without regard to case.

use rostfix_maps::Map;
use std::sync::Arc;

/// Which of the four restrictions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mismatch {
    /// reject_sender_login_mismatch: authenticated and known, plus unauthenticated.
    Both,
    /// reject_authenticated_sender_login_mismatch: a logged-in client must own the
    /// sender, even one no table lists.
    Authenticated,
    /// reject_known_sender_login_mismatch: like Both, but a logged-in client may use an
    /// address no table lists.
    Known,
    /// reject_unauthenticated_sender_login_mismatch: an owned address needs a login.
    Unauthenticated,
}

impl Mismatch {
    pub fn from_name(name: &str) -> Option<Mismatch> {
        Some(match name {
            "reject_sender_login_mismatch" => Mismatch::Both,
            "reject_authenticated_sender_login_mismatch" => Mismatch::Authenticated,
            "reject_known_sender_login_mismatch" => Mismatch::Known,
            "reject_unauthenticated_sender_login_mismatch" => Mismatch::Unauthenticated,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Mismatch::Both => "reject_sender_login_mismatch",
            Mismatch::Authenticated => "reject_authenticated_sender_login_mismatch",
            Mismatch::Known => "reject_known_sender_login_mismatch",
            Mismatch::Unauthenticated => "reject_unauthenticated_sender_login_mismatch",
        }
    }
}

/// The verdict on one sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginVerdict {
    Ok,
    /// `553 5.7.1 <addr>: Sender address rejected: not owned by user USER`.
    NotOwned,
    /// `553 5.7.1 <addr>: Sender address rejected: not logged in`.
    NotLoggedIn,
    /// A table failed: 4xx.
    LookupFailed,
}

/// smtpd_sender_login_maps, opened.
#[derive(Clone, Default)]
pub struct SenderLoginMaps {
    pub tables: Vec<Arc<dyn Map>>,
}

impl std::fmt::Debug for SenderLoginMaps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SenderLoginMaps({} tables)", self.tables.len())
    }
}

impl SenderLoginMaps {
    /// The owners listed for `sender`: the first table with an answer decides. Keys
    /// as Postfix's mail_addr_find: the address, then `@domain`; a pattern table
    /// (pcre, regexp) sees the whole address only.
    pub fn owners(&self, sender: &str) -> Result<Option<String>, rostfix_maps::MapError> {
        let mut keys = vec![sender.to_string()];
        if let Some((_, domain)) = sender.rsplit_once('@') {
            keys.push(format!("@{domain}"));
        }
        for t in &self.tables {
            let keys = if t.is_pattern() {
                &keys[..1]
            } else {
                &keys[..]
            };
            for k in keys {
                if let Some(v) = t.lookup(k)? {
                    return Ok(Some(v));
                }
            }
        }
        Ok(None)
    }

    /// Decides `which` for `sender` (non-empty) and the login name, if any.
    pub fn check(&self, which: Mismatch, sender: &str, login: Option<&str>) -> LoginVerdict {
        if self.tables.is_empty() || sender.is_empty() {
            return LoginVerdict::Ok;
        }
        let owners = match self.owners(sender) {
            Ok(o) => o,
            Err(e) => {
                log::warn!("smtpd_sender_login_maps lookup error for {sender}: {e}");
                return LoginVerdict::LookupFailed;
            }
        };
        match (login, which) {
            (Some(user), Mismatch::Both | Mismatch::Authenticated | Mismatch::Known) => {
                let owned = owners.as_deref().is_some_and(|o| {
                    o.split(|c: char| c == ',' || c.is_whitespace())
                        .any(|n| !n.is_empty() && n.eq_ignore_ascii_case(user))
                });
                let unknown_allowed = which == Mismatch::Known;
                if owned || (owners.is_none() && unknown_allowed) {
                    LoginVerdict::Ok
                } else {
                    LoginVerdict::NotOwned
                }
            }
            (None, Mismatch::Both | Mismatch::Known | Mismatch::Unauthenticated)
                if owners.is_some() =>
            {
                LoginVerdict::NotLoggedIn
            }
            _ => LoginVerdict::Ok,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn maps(spec: &str) -> SenderLoginMaps {
        SenderLoginMaps {
            tables: vec![Arc::from(rostfix_maps::open_map(spec).unwrap())],
        }
    }

    #[test]
    fn the_four_restrictions() {
        let dir = std::env::temp_dir().join(format!("login-maps-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("senders");
        std::fs::write(
            &file,
            "alice@example.com alice\n@shared.example alice, bob\n",
        )
        .unwrap();
        let m = maps(&format!("texthash:{}", file.display()));
        std::fs::remove_dir_all(&dir).unwrap();
        use LoginVerdict::*;
        use Mismatch::*;
        let cases = [
            (Both, "alice@example.com", Some("alice"), Ok),
            (Both, "alice@example.com", Some("ALICE"), Ok),
            (Both, "alice@example.com", Some("bob"), NotOwned),
            (Both, "alice@example.com", None, NotLoggedIn),
            (Both, "x@shared.example", Some("bob"), Ok),
            (Both, "nobody@else.example", Some("bob"), NotOwned),
            (Both, "nobody@else.example", None, Ok),
            (Authenticated, "alice@example.com", None, Ok),
            (Authenticated, "nobody@else.example", Some("bob"), NotOwned),
            (Known, "nobody@else.example", Some("bob"), Ok),
            (Known, "alice@example.com", Some("bob"), NotOwned),
            (Known, "alice@example.com", None, NotLoggedIn),
            (Unauthenticated, "alice@example.com", Some("bob"), Ok),
            (Unauthenticated, "alice@example.com", None, NotLoggedIn),
        ];
        for (which, sender, login, want) in cases {
            assert_eq!(
                m.check(which, sender, login),
                want,
                "{which:?} {sender} {login:?}"
            );
        }
        assert_eq!(SenderLoginMaps::default().check(Both, "a@b", Some("x")), Ok);
    }
}
