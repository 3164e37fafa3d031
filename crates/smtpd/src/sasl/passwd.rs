//! The built-in SASL type (`smtpd_sasl_type = rostfix`): PLAIN and LOGIN checked
//! against a passwd-file named by `smtpd_sasl_path`.
//!
//! # File format
//!
//! One user per line, `user:{SCHEME}hash`, optionally followed by more `:`-separated
//! fields that are ignored (so a Dovecot passwd-file works unchanged). Blank lines and
//! lines starting with `#` are ignored. Schemes:
//!
//! | scheme | hash | make one with |
//! |---|---|---|
//! | `{SHA512-CRYPT}` or a bare `$6$...` | SHA-512 crypt | `openssl passwd -6`, `doveadm pw -s SHA512-CRYPT` |
//! | `{SHA256-CRYPT}` or a bare `$5$...` | SHA-256 crypt | `openssl passwd -5` |
//! | `{ARGON2ID}` / `{ARGON2I}` or a bare `$argon2...` | PHC string | `doveadm pw -s ARGON2ID` |
//! | `{CRYPT}` | one of the crypt forms above | |
//! | `{PLAIN}` | the password itself (tests only; warned about) | |
//!
//! Other schemes (bcrypt `{BLF-CRYPT}`, MD5-CRYPT, ...) are refused at load time with a
//! warning naming the user and line, never the hash.
//!
//! The file is read before smtpd confines itself (it normally lives outside the chroot
//! and is readable by root only); when it changes and is still readable (no chroot),
//! it is read again on the next AUTH. A user that is not in the file gets the same
//! SHA-512 work as one with a wrong password, so timing does not tell which users exist.

use super::{ConnInfo, SaslError, SaslServer, Step};
use base64::Engine;
use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// A hash of no password anyone knows, checked for unknown users (equal timing).
const DUMMY_HASH: &str = "$6$rostfixdummysalt$DHK6xYr7.qHXR5JKnhu9ApB/Gjb5Da3O6.RjsK.QI.LSrhfSVugthTfvBjEbOYUNIOfeZW9cRhz.K0ToYrLC/1";

/// Longest file we read.
const MAX_FILE: u64 = 16 * 1024 * 1024;

/// A stored password.
#[derive(Clone, PartialEq, Eq)]
enum Secret {
    Sha512Crypt(String),
    Sha256Crypt(String),
    Argon2(String),
    Plain(String),
}

impl Secret {
    /// Parses `{SCHEME}hash` or a bare crypt/PHC string.
    fn parse(text: &str) -> Option<Secret> {
        let (scheme, hash) = match text.strip_prefix('{').and_then(|t| t.split_once('}')) {
            Some((s, h)) => (s.to_ascii_uppercase(), h),
            None => ("CRYPT".to_string(), text),
        };
        match scheme.as_str() {
            "PLAIN" => Some(Secret::Plain(hash.to_string())),
            "SHA512-CRYPT" | "SHA256-CRYPT" | "ARGON2ID" | "ARGON2I" | "CRYPT" => {
                if hash.starts_with("$6$") {
                    Some(Secret::Sha512Crypt(hash.to_string()))
                } else if hash.starts_with("$5$") {
                    Some(Secret::Sha256Crypt(hash.to_string()))
                } else if hash.starts_with("$argon2") {
                    Some(Secret::Argon2(hash.to_string()))
                } else {
                    None
                }
            }
            _ => None,
        }
    }

    fn verify(&self, password: &str) -> bool {
        match self {
            Secret::Sha512Crypt(h) => sha_crypt::sha512_check(password, h).is_ok(),
            Secret::Sha256Crypt(h) => sha_crypt::sha256_check(password, h).is_ok(),
            Secret::Argon2(h) => {
                use argon2::password_hash::{phc::PasswordHash, PasswordVerifier};
                match PasswordHash::new(h) {
                    Ok(parsed) => argon2::Argon2::default()
                        .verify_password(password.as_bytes(), &parsed)
                        .is_ok(),
                    Err(_) => false,
                }
            }
            Secret::Plain(p) => constant_time_eq(p.as_bytes(), password.as_bytes()),
        }
    }
}

/// Compares without an early exit on the first differing byte.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        diff |= usize::from(x ^ b.get(i).copied().unwrap_or(0));
    }
    diff == 0
}

type Stamp = Option<(SystemTime, u64, u64)>;

struct Loaded {
    users: HashMap<String, Secret>,
    stamp: Stamp,
}

/// The parsed passwd-file.
pub struct PasswdDb {
    path: String,
    state: Mutex<Loaded>,
    /// smtpd_sasl_local_domain: the realm of logins given without one.
    realm: Option<String>,
}

fn stamp(path: &str) -> Stamp {
    let md = std::fs::metadata(path).ok()?;
    Some((md.modified().ok()?, md.len(), md.ino()))
}

/// Parses the file's text; returns the users and warnings (no secrets in them).
fn parse(text: &str, path: &str) -> (HashMap<String, Secret>, Vec<String>) {
    let mut users = HashMap::new();
    let mut warnings = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let mut fields = line.split(':');
        let user = fields.next().unwrap_or("").trim();
        let secret = fields.next().unwrap_or("").trim();
        if user.is_empty() || user.chars().any(char::is_control) {
            warnings.push(format!(
                "{path}, line {}: no user name; line ignored",
                n + 1
            ));
            continue;
        }
        match Secret::parse(secret) {
            Some(Secret::Plain(p)) => {
                warnings.push(format!(
                    "{path}, line {}: user {user} has a {{PLAIN}} password; use a hash",
                    n + 1
                ));
                users.entry(user.to_string()).or_insert(Secret::Plain(p));
            }
            Some(s) => {
                users.entry(user.to_string()).or_insert(s);
            }
            None => warnings.push(format!(
                "{path}, line {}: user {user}: unsupported password scheme; user ignored",
                n + 1
            )),
        }
    }
    (users, warnings)
}

fn read_file(path: &str) -> Result<String, SaslError> {
    use std::io::Read;
    let err = |source| SaslError::Passwd {
        path: path.to_string(),
        source,
    };
    let mut text = String::new();
    std::fs::File::open(path)
        .map_err(err)?
        .take(MAX_FILE)
        .read_to_string(&mut text)
        .map_err(err)?;
    Ok(text)
}

impl PasswdDb {
    /// Reads `path` now (before confinement). Returns warnings to log.
    pub fn load(path: &str) -> Result<(PasswdDb, Vec<String>), SaslError> {
        let st = stamp(path);
        let (users, warnings) = parse(&read_file(path)?, path);
        Ok((
            PasswdDb {
                path: path.to_string(),
                state: Mutex::new(Loaded { users, stamp: st }),
                realm: None,
            },
            warnings,
        ))
    }

    /// A database from text (tests).
    #[cfg(test)]
    pub fn from_text(text: &str) -> PasswdDb {
        PasswdDb {
            path: "test".into(),
            realm: None,
            state: Mutex::new(Loaded {
                users: parse(text, "test").0,
                stamp: None,
            }),
        }
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// smtpd_sasl_local_domain, as Cyrus SASL applies it: a login without `@` is the
    /// user of this realm (`alice` is `alice@example.com`); empty means none.
    pub fn with_realm(mut self, realm: &str) -> PasswdDb {
        let realm = realm.trim();
        self.realm = (!realm.is_empty()).then(|| realm.to_string());
        self
    }

    /// The name a login is known by: `login@realm` when a realm is set and the login
    /// has none.
    pub fn qualify(&self, login: &str) -> String {
        match &self.realm {
            Some(realm) if !login.contains('@') => format!("{login}@{realm}"),
            _ => login.to_string(),
        }
    }

    /// True when `user` exists and `password` matches.
    pub fn verify(&self, user: &str, password: &str) -> bool {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        // Re-read a changed file when we still can (not chrooted away from it).
        let now = stamp(&self.path);
        if now.is_some() && now != st.stamp {
            if let Ok(text) = read_file(&self.path) {
                let (users, warnings) = parse(&text, &self.path);
                for w in warnings {
                    log::warn!("{w}");
                }
                st.users = users;
                st.stamp = now;
            }
        }
        match st.users.get(user) {
            Some(secret) => secret.verify(password),
            None => {
                // Same work as a wrong password (result ignored on purpose).
                let _ = sha_crypt::sha512_check(password, DUMMY_HASH);
                false
            }
        }
    }
}

/// Where a built-in exchange is.
enum Pending {
    None,
    /// LOGIN sent "Username:".
    LoginUser,
    /// LOGIN sent "Password:" for this user.
    LoginPass(String),
    /// PLAIN without an initial response sent an empty challenge.
    Plain,
}

/// One session's built-in server.
pub struct BuiltinServer {
    db: Arc<PasswdDb>,
    pending: Pending,
}

const USERNAME: &str = "VXNlcm5hbWU6"; // "Username:"
const PASSWORD: &str = "UGFzc3dvcmQ6"; // "Password:"

impl BuiltinServer {
    pub fn new(db: Arc<PasswdDb>) -> BuiltinServer {
        BuiltinServer {
            db,
            pending: Pending::None,
        }
    }

    fn check(&self, login: &str, password: &str) -> Step {
        let user = self.db.qualify(login);
        if self.db.verify(&user, password) {
            Step::Success(user)
        } else {
            failure("authentication failure")
        }
    }

    /// PLAIN: `authzid NUL authcid NUL password` (RFC 4616).
    fn plain(&self, b64: &str) -> Step {
        let Some(raw) = decode(b64) else {
            return failure("Invalid base64 data");
        };
        let parts: Vec<&[u8]> = raw.split(|&b| b == 0).collect();
        let [authz, authc, pass] = parts.as_slice() else {
            return failure("Invalid PLAIN message");
        };
        let (Ok(authz), Ok(authc), Ok(pass)) = (
            std::str::from_utf8(authz),
            std::str::from_utf8(authc),
            std::str::from_utf8(pass),
        ) else {
            return failure("Invalid PLAIN message");
        };
        if !authz.is_empty() && authz != authc {
            // We do not support acting as another user.
            return failure("authorization identity differs");
        }
        self.check(authc, pass)
    }
}

fn failure(reason: &str) -> Step {
    Step::Failure {
        reason: reason.to_string(),
        temporary: false,
    }
}

fn decode(b64: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(b64).ok()
}

fn decode_text(b64: &str) -> Option<String> {
    decode(b64).and_then(|v| String::from_utf8(v).ok())
}

impl SaslServer for BuiltinServer {
    fn mechanisms(&mut self) -> Result<Vec<String>, SaslError> {
        Ok(vec!["PLAIN".into(), "LOGIN".into()])
    }

    fn start(
        &mut self,
        mech: &str,
        initial: Option<&str>,
        _conn: &ConnInfo,
    ) -> Result<Step, SaslError> {
        self.pending = Pending::None;
        Ok(match (mech.to_ascii_uppercase().as_str(), initial) {
            ("PLAIN", Some(resp)) if !resp.is_empty() => self.plain(resp),
            ("PLAIN", _) => {
                self.pending = Pending::Plain;
                Step::Challenge(String::new())
            }
            ("LOGIN", Some(user)) if !user.is_empty() => match decode_text(user) {
                Some(u) => {
                    self.pending = Pending::LoginPass(u);
                    Step::Challenge(PASSWORD.into())
                }
                None => failure("Invalid base64 data"),
            },
            ("LOGIN", _) => {
                self.pending = Pending::LoginUser;
                Step::Challenge(USERNAME.into())
            }
            _ => failure("Invalid authentication mechanism"),
        })
    }

    fn respond(&mut self, response: &str) -> Result<Step, SaslError> {
        let pending = std::mem::replace(&mut self.pending, Pending::None);
        Ok(match pending {
            Pending::None => failure("no exchange in progress"),
            Pending::Plain => self.plain(response),
            Pending::LoginUser => match decode_text(response) {
                Some(u) => {
                    self.pending = Pending::LoginPass(u);
                    Step::Challenge(PASSWORD.into())
                }
                None => failure("Invalid base64 data"),
            },
            Pending::LoginPass(user) => match decode_text(response) {
                Some(p) => self.check(&user, &p),
                None => failure("Invalid base64 data"),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA512: &str = "$6$saltsalt$jCP90RmSIIja2o9FRs25ASQaR1lMN6uKHmNcHaoNCpAXgV3n5NfAlQdZQcvMVQO1BTCOFF0LzoHFZBt9E45NW0";
    const ARGON: &str = "{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$NTbaAGxkg63OB1rDDaNwXA$UK0FpRp6KueFhbe9N/IXhmOOcxUiMpPmhHe/aqj0EYI";
    const DOVECOT_SHA512: &str = "{SHA512-CRYPT}$6$CJ79C6lkGyUlTb10$1TnvZqkSBYjzXTabpty387f3is26dzMk4ltUEaZNogzLi0arfQCIiNoZhpacU7YvMNOuzSW0gxnXk7j51T0GD.";

    fn db() -> PasswdDb {
        PasswdDb::from_text(&format!(
            "# users\nalice:{SHA512}\nbob:{ARGON}:1000:1000::/home/bob\ncarol:{DOVECOT_SHA512}\ndave:{{PLAIN}}pw\neve:{{BLF-CRYPT}}$2y$05$xx\n\n"
        ))
    }

    fn b64(s: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn hashes_verify() {
        let db = db();
        assert!(db.verify("alice", "secret1"));
        assert!(!db.verify("alice", "secret2"));
        assert!(db.verify("bob", "secret1"));
        assert!(!db.verify("bob", "wrong"));
        assert!(db.verify("carol", "secret1"));
        assert!(db.verify("dave", "pw"));
        assert!(!db.verify("dave", "pw2"));
        assert!(!db.verify("eve", "anything"));
        assert!(!db.verify("nobody", "secret1"));
        assert!(!db.verify("Alice", "secret1"));
    }

    #[test]
    fn warnings_name_user_not_hash() {
        let (_, w) = parse("x:{PLAIN}topsecret\ny:{MD5}abc\n:nouser\n", "f");
        assert_eq!(w.len(), 3);
        assert!(w
            .iter()
            .all(|l| !l.contains("topsecret") && !l.contains("abc")));
        assert!(w[1].contains("user y"));
    }

    #[test]
    fn plain_exchanges() {
        let db = Arc::new(db());
        let conn = ConnInfo::default();
        let mut s = BuiltinServer::new(Arc::clone(&db));
        let ok = b64(b"\0alice\0secret1");
        assert_eq!(
            s.start("plain", Some(&ok), &conn).unwrap(),
            Step::Success("alice".into())
        );
        assert_eq!(
            s.start("PLAIN", None, &conn).unwrap(),
            Step::Challenge(String::new())
        );
        assert_eq!(s.respond(&ok).unwrap(), Step::Success("alice".into()));
        let bad = b64(b"\0alice\0nope");
        assert!(matches!(
            s.start("PLAIN", Some(&bad), &conn).unwrap(),
            Step::Failure { .. }
        ));
        let other = b64(b"bob\0alice\0secret1");
        assert!(matches!(
            s.start("PLAIN", Some(&other), &conn).unwrap(),
            Step::Failure { .. }
        ));
        let same = b64(b"alice\0alice\0secret1");
        assert_eq!(
            s.start("PLAIN", Some(&same), &conn).unwrap(),
            Step::Success("alice".into())
        );
        assert!(matches!(
            s.start("PLAIN", Some(&b64(b"alice secret1")), &conn)
                .unwrap(),
            Step::Failure { .. }
        ));
    }

    #[test]
    fn local_domain_qualifies_bare_logins() {
        let text = format!("alice@example.com:{SHA512}\n");
        let db = Arc::new(PasswdDb::from_text(&text).with_realm("example.com"));
        let conn = ConnInfo::default();
        let mut s = BuiltinServer::new(Arc::clone(&db));
        assert_eq!(
            s.start("PLAIN", Some(&b64(b"\0alice\0secret1")), &conn)
                .unwrap(),
            Step::Success("alice@example.com".into())
        );
        assert_eq!(
            s.start("PLAIN", Some(&b64(b"\0alice@example.com\0secret1")), &conn)
                .unwrap(),
            Step::Success("alice@example.com".into())
        );
        // Without the realm, the bare login is another (unknown) user.
        let db = Arc::new(PasswdDb::from_text(&text).with_realm(""));
        let mut s = BuiltinServer::new(db);
        assert!(matches!(
            s.start("PLAIN", Some(&b64(b"\0alice\0secret1")), &conn)
                .unwrap(),
            Step::Failure { .. }
        ));
    }

    #[test]
    fn login_exchanges() {
        let mut s = BuiltinServer::new(Arc::new(db()));
        let conn = ConnInfo::default();
        assert_eq!(
            s.start("LOGIN", None, &conn).unwrap(),
            Step::Challenge(USERNAME.into())
        );
        assert_eq!(
            s.respond(&b64(b"bob")).unwrap(),
            Step::Challenge(PASSWORD.into())
        );
        assert_eq!(
            s.respond(&b64(b"secret1")).unwrap(),
            Step::Success("bob".into())
        );
        assert_eq!(
            s.start("LOGIN", Some(&b64(b"bob")), &conn).unwrap(),
            Step::Challenge(PASSWORD.into())
        );
        assert!(matches!(
            s.respond(&b64(b"bad")).unwrap(),
            Step::Failure { .. }
        ));
        assert!(matches!(
            s.start("CRAM-MD5", None, &conn).unwrap(),
            Step::Failure { .. }
        ));
    }

    #[test]
    fn constant_time_compare() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
    }
}
