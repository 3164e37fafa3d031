//! `unix:passwd.byname` (getpwnam; the value is the passwd line
//! `name:passwd:uid:gid:gecos:home:shell`) and `unix:group.byname` (getgrnam; the
//! value is `name:passwd:gid:member,member`), as Postfix's dict_unix answers.

use crate::error::MapError;
use crate::Map;
use nix::unistd::{Group, User};

/// Which system database to ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Which {
    Passwd,
    Group,
}

/// A `unix:` table.
pub struct UnixMap {
    spec: String,
    which: Which,
}

impl UnixMap {
    /// `name` is `passwd.byname` or `group.byname`.
    pub fn open(spec: &str, name: &str) -> Result<UnixMap, MapError> {
        let which = match name {
            "passwd.byname" => Which::Passwd,
            "group.byname" => Which::Group,
            _ => {
                return Err(MapError::BadSpec {
                    spec: spec.to_string(),
                    reason: "unknown table; use passwd.byname or group.byname".into(),
                })
            }
        };
        Ok(UnixMap {
            spec: spec.to_string(),
            which,
        })
    }
}

impl Map for UnixMap {
    fn lookup(&self, key: &str) -> Result<Option<String>, MapError> {
        // A NUL cannot be in a user name and would make getpwnam fail oddly.
        if key.is_empty() || key.contains('\0') {
            return Ok(None);
        }
        let err = |e: nix::Error| MapError::Lookup {
            table: self.spec.clone(),
            reason: e.to_string(),
        };
        match self.which {
            Which::Passwd => Ok(User::from_name(key).map_err(err)?.map(|u| {
                format!(
                    "{}:{}:{}:{}:{}:{}:{}",
                    u.name,
                    u.passwd.to_string_lossy(),
                    u.uid,
                    u.gid,
                    u.gecos.to_string_lossy(),
                    u.dir.display(),
                    u.shell.display()
                )
            })),
            Which::Group => Ok(Group::from_name(key).map_err(err)?.map(|g| {
                format!(
                    "{}:{}:{}:{}",
                    g.name,
                    g.passwd.to_string_lossy(),
                    g.gid,
                    g.mem.join(",")
                )
            })),
        }
    }
    fn spec(&self) -> &str {
        &self.spec
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_uid_zero() {
        let m = UnixMap::open("unix:passwd.byname", "passwd.byname").unwrap();
        let line = m.lookup("root").unwrap().unwrap();
        let fields: Vec<&str> = line.split(':').collect();
        assert_eq!(fields.len(), 7);
        assert_eq!((fields[0], fields[2]), ("root", "0"));
        assert_eq!(m.lookup("no-such-user-rostfix").unwrap(), None);
        let g = UnixMap::open("unix:group.byname", "group.byname").unwrap();
        assert!(g.lookup("root").unwrap().unwrap().starts_with("root:"));
        assert!(UnixMap::open("unix:x", "x").is_err());
    }
}
