//! The client's name at connect, as Postfix's smtpd_peer.c finds it: the PTR name of
//! the address, kept as the reverse name; then the name's addresses in the client's
//! family, and the name is trusted (logged as `name[addr]`, put in Received and the
//! queue file) only when they include the client's address. Anything else leaves
//! `unknown`, with the temporary/permanent/forged distinction
//! reject_unknown_client_hostname needs. Each lookup is bounded by the resolver's
//! timeout and attempts (restrictions/dns.rs).

use crate::client::{ClientInfo, NameStatus};
use crate::restrictions::dns::{Answer, Dns};
use crate::restrictions::eval::valid_hostname;
use std::net::IpAddr;

/// The two lookups the name needs; [`Dns`] in smtpd, a table in unit tests.
pub trait NameLookup {
    fn ptr(&self, ip: IpAddr) -> Answer<Vec<String>>;
    fn addresses(&self, name: &str, v6: bool) -> Answer<Vec<IpAddr>>;
}

impl NameLookup for Dns {
    fn ptr(&self, ip: IpAddr) -> Answer<Vec<String>> {
        Dns::ptr(self, ip)
    }
    fn addresses(&self, name: &str, v6: bool) -> Answer<Vec<IpAddr>> {
        Dns::addresses(self, name, v6)
    }
}

/// Fills in `client`'s names (it has its address). Logs Postfix's warnings when the
/// PTR name does not confirm.
pub fn resolve(client: &mut ClientInfo, dns: &dyn NameLookup) {
    let Some(ip) = client.ip else {
        return;
    };
    let status = |a: &Answer<Vec<String>>| match a {
        Answer::TempFail => NameStatus::Temp,
        _ => NameStatus::Perm,
    };
    let answer = dns.ptr(ip);
    let name = match &answer {
        Answer::Found(names) => names.first().map(|n| n.to_ascii_lowercase()),
        _ => None,
    };
    // A numeric or malformed PTR name must never pass for a name: an access table
    // keyed on names could then be fooled by an attacker who controls their PTR.
    let Some(name) = name.filter(|n| valid_hostname(n) && n.parse::<IpAddr>().is_err()) else {
        client.name_status = status(&answer);
        client.reverse_name_status = status(&answer);
        return;
    };
    client.reverse_name = name.clone();
    client.reverse_name_status = NameStatus::Ok;
    let addr = client.addr();
    match dns.addresses(&name, ip.is_ipv6()) {
        Answer::Found(addrs) if addrs.contains(&ip) => {
            client.name = name;
            client.name_status = NameStatus::Ok;
        }
        Answer::Found(_) => {
            log::warn!("hostname {name} does not resolve to address {addr}");
            client.name_status = NameStatus::Forged;
        }
        Answer::NotFound => {
            log::warn!(
                "hostname {name} does not resolve to address {addr}: Name or service not known"
            );
            client.name_status = NameStatus::Forged;
        }
        Answer::TempFail => {
            log::warn!(
                "hostname {name} does not resolve to address {addr}: \
                 Temporary failure in name resolution"
            );
            client.name_status = NameStatus::Temp;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Fake {
        ptr: HashMap<IpAddr, Answer<Vec<String>>>,
        a: HashMap<String, Answer<Vec<IpAddr>>>,
    }

    impl NameLookup for Fake {
        fn ptr(&self, ip: IpAddr) -> Answer<Vec<String>> {
            self.ptr.get(&ip).cloned().unwrap_or(Answer::NotFound)
        }
        fn addresses(&self, name: &str, _v6: bool) -> Answer<Vec<IpAddr>> {
            self.a.get(name).cloned().unwrap_or(Answer::NotFound)
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn fake() -> Fake {
        let mut ptr = HashMap::new();
        let mut a = HashMap::new();
        ptr.insert(ip("192.0.2.1"), Answer::Found(vec!["Good.Example".into()]));
        a.insert(
            "good.example".to_string(),
            Answer::Found(vec![ip("192.0.2.1")]),
        );
        ptr.insert(
            ip("192.0.2.2"),
            Answer::Found(vec!["forged.example".into()]),
        );
        a.insert(
            "forged.example".to_string(),
            Answer::Found(vec![ip("192.0.2.99")]),
        );
        ptr.insert(ip("192.0.2.3"), Answer::TempFail);
        ptr.insert(ip("192.0.2.4"), Answer::Found(vec!["192.0.2.4".into()]));
        ptr.insert(ip("192.0.2.5"), Answer::Found(vec!["slow.example".into()]));
        a.insert("slow.example".to_string(), Answer::TempFail);
        ptr.insert(ip("192.0.2.6"), Answer::Found(vec!["gone.example".into()]));
        Fake { ptr, a }
    }

    fn named(addr: &str) -> ClientInfo {
        let mut c = ClientInfo::from_ip(ip(addr));
        resolve(&mut c, &fake());
        c
    }

    #[test]
    fn confirmed_name_is_used() {
        let c = named("192.0.2.1");
        assert_eq!(c.log_name(), "good.example[192.0.2.1]");
        assert_eq!(
            (c.name_status, c.reverse_name_status),
            (NameStatus::Ok, NameStatus::Ok)
        );
        assert_eq!(c.reverse_name, "good.example");
    }

    #[test]
    fn forward_mismatch_keeps_only_the_reverse_name() {
        let c = named("192.0.2.2");
        assert_eq!(c.log_name(), "unknown[192.0.2.2]");
        assert_eq!(c.name_status, NameStatus::Forged);
        assert_eq!(c.reverse_name, "forged.example");
        assert_eq!(c.reverse_name_status, NameStatus::Ok);
        let c = named("192.0.2.6");
        assert_eq!(
            (c.name.as_str(), c.name_status),
            ("unknown", NameStatus::Forged)
        );
    }

    #[test]
    fn failures_keep_their_kind() {
        let c = named("192.0.2.3");
        assert_eq!(
            (c.name_status, c.reverse_name_status),
            (NameStatus::Temp, NameStatus::Temp)
        );
        let c = named("192.0.2.9");
        assert_eq!(
            (c.name_status, c.reverse_name_status),
            (NameStatus::Perm, NameStatus::Perm)
        );
        let c = named("192.0.2.5");
        assert_eq!(
            (c.name_status, c.reverse_name_status),
            (NameStatus::Temp, NameStatus::Ok)
        );
    }

    #[test]
    fn numeric_ptr_is_not_a_name() {
        let c = named("192.0.2.4");
        assert_eq!(c.log_name(), "unknown[192.0.2.4]");
        assert_eq!(c.reverse_name, "unknown");
        assert_eq!(c.reverse_name_status, NameStatus::Perm);
    }
}
