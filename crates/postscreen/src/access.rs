//! postscreen_access_list: the permanent allow/deny list checked before any test.
//! Items in order: `permit_mynetworks` (the client is in mynetworks), or a table
//! (`cidr:/etc/rostfix/postscreen_access.cidr`) looked up with the client address
//! whose result is `permit`, `reject` or `dunno`. The first permit or reject decides.

use rostfix_maps::Map;
use rostfix_smtpd::cidr::NetworkList;
use std::net::IpAddr;

/// The list's verdict for one client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowlisted,
    Denylisted,
    /// Nothing decided: run the tests.
    Unknown,
}

enum Item {
    PermitMynetworks,
    Table(Box<dyn Map>),
}

/// The parsed list.
pub struct AccessList {
    items: Vec<Item>,
    mynetworks: NetworkList,
}

impl std::fmt::Debug for AccessList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AccessList({} items)", self.items.len())
    }
}

/// An item of postscreen_access_list that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("postscreen_access_list: unknown item \"{0}\" (want permit_mynetworks or type:table)")]
    Item(String),
    #[error("postscreen_access_list: {0}")]
    Table(#[from] rostfix_maps::MapError),
}

impl AccessList {
    /// Opens every table of the list (before the chroot: they may live outside it).
    pub fn new<'a>(
        items: impl IntoIterator<Item = &'a str>,
        mynetworks: NetworkList,
    ) -> Result<AccessList, AccessError> {
        let mut parsed = Vec::new();
        for item in items {
            if item.eq_ignore_ascii_case("permit_mynetworks") {
                parsed.push(Item::PermitMynetworks);
            } else if item.contains(':') {
                parsed.push(Item::Table(rostfix_maps::open_map(item)?));
            } else {
                return Err(AccessError::Item(item.to_string()));
            }
        }
        Ok(AccessList {
            items: parsed,
            mynetworks,
        })
    }

    /// The verdict for `client`. A table lookup error or an unknown result is logged
    /// and skipped (the client then simply takes the tests).
    pub fn check(&self, client: IpAddr) -> Verdict {
        for item in &self.items {
            match item {
                Item::PermitMynetworks => {
                    if self.mynetworks.contains(client) {
                        return Verdict::Allowlisted;
                    }
                }
                Item::Table(map) => match map.lookup(&client.to_string()) {
                    Ok(Some(value)) => {
                        let word = value.split_whitespace().next().unwrap_or("");
                        match word.to_ascii_lowercase().as_str() {
                            "permit" => return Verdict::Allowlisted,
                            "reject" => return Verdict::Denylisted,
                            "dunno" => {}
                            _ => log::warn!(
                                "postscreen_access_list: {}: unknown action \"{value}\" for {client}; ignored",
                                map.spec()
                            ),
                        }
                    }
                    Ok(None) => {}
                    Err(e) => log::warn!("postscreen_access_list: {}: {e}", map.spec()),
                },
            }
        }
        Verdict::Unknown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_decision_wins_and_dunno_falls_through() {
        let dir = std::env::temp_dir().join(format!("rostfix-psc-acl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let table = dir.join("access.cidr");
        std::fs::write(
            &table,
            "192.0.2.1 dunno\n192.0.2.0/24 reject\n198.51.100.0/24 permit\n203.0.113.9 bogus\n",
        )
        .unwrap();
        let spec = format!("cidr:{}", table.display());
        let nets = NetworkList::parse(["127.0.0.0/8"]).unwrap();
        let list = AccessList::new(["permit_mynetworks", spec.as_str()], nets).unwrap();
        let check = |a: &str| list.check(a.parse().unwrap());
        assert_eq!(check("127.0.0.2"), Verdict::Allowlisted);
        // The table's first matching line decides within it: dunno, so no verdict.
        assert_eq!(check("192.0.2.1"), Verdict::Unknown);
        assert_eq!(check("192.0.2.77"), Verdict::Denylisted);
        assert_eq!(check("198.51.100.3"), Verdict::Allowlisted);
        assert_eq!(check("203.0.113.9"), Verdict::Unknown);
        assert_eq!(check("203.0.113.10"), Verdict::Unknown);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn unknown_items_are_refused() {
        let nets = NetworkList::parse(Vec::<&str>::new()).unwrap();
        assert!(matches!(
            AccessList::new(["permit_sasl_authenticated"], nets),
            Err(AccessError::Item(_))
        ));
    }
}
