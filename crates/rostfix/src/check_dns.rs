//! `rostfix check-dns DOMAIN`: is DOMAIN's DNS right for mail sent and received by
//! this server, as its main.cf describes it? MX (does one point at myhostname?), SPF
//! (does it authorise our outbound address, evaluated as a receiver would?), each DKIM
//! selector of rostfix_dkim_key_table for DOMAIN (does the published key match ours?),
//! DMARC, PTR with forward confirmation for the outbound address, and, for
//! information, MTA-STS and TLS-RPT. Each record that is missing or wrong is printed
//! as it should be published.

use rostfix_config::MainCf;
use rostfix_dns::{Resolver, TxtError};
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

pub const HELP: &str = "\
NAME
    rostfix check-dns - check a mail domain's DNS records against this server

SYNOPSIS
    rostfix check-dns [-c config_dir] [-i ADDRESS] DOMAIN

DESCRIPTION
    Looks up DOMAIN's records (with rostfix_dns_servers when set) and says, one
    line each, whether they fit this server's main.cf:
      MX       an MX host of DOMAIN is myhostname;
      SPF      the SPF record authorises the outbound ADDRESS (evaluated as
               receivers do, includes and all);
      DKIM     for each rostfix_dkim_key_table entry of DOMAIN, the TXT record
               at SELECTOR._domainkey.DOMAIN holds our public key (run as root:
               the keys are root-only);
      DMARC    _dmarc.DOMAIN has a DMARC1 record;
      PTR      ADDRESS has a PTR record whose name resolves back to ADDRESS;
      MTA-STS  and TLS-RPT: whether DOMAIN publishes them (information only).
    Each record that is missing or wrong is followed by the line to publish.
    ADDRESS is -i, else the address of myhostname.

OPTIONS
    -c DIR    Configuration directory (default /etc/rostfix).
    -i ADDR   The address this server sends from.
    --help    Show this text.

EXIT STATUS
    0 every check passed; 1 a record is missing or wrong; 2 DNS could not be
    asked (the checks that could not run are named); 64 usage error.

SEE ALSO
    rostfix dkim-keygen, docs/mail-auth.md, docs/dkim.md
";

const USAGE: &str = "usage: rostfix check-dns [-c config_dir] [-i ADDRESS] DOMAIN";

/// One check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Ok,
    Wrong,
    Missing,
    Info,
    Failed,
}

impl Verdict {
    fn word(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Wrong => "WRONG",
            Verdict::Missing => "MISSING",
            Verdict::Info => "info",
            Verdict::Failed => "FAILED",
        }
    }
}

struct Report {
    worst: i32,
}

impl Report {
    fn line(&mut self, what: &str, v: Verdict, text: &str, publish: Option<String>) {
        println!("{what:<8} {:<8} {text}", v.word());
        if let Some(p) = publish {
            println!("{:<17} publish: {p}", "");
        }
        let status = match v {
            Verdict::Ok | Verdict::Info => 0,
            Verdict::Wrong | Verdict::Missing => 1,
            Verdict::Failed => 2,
        };
        self.worst = self.worst.max(status);
    }
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Request {
    config_dir: Option<PathBuf>,
    ip: Option<IpAddr>,
    domain: String,
}

/// None: --help.
fn parse(args: &[String]) -> Result<Option<Request>, String> {
    let mut req = Request::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--help" | "-h" => return Ok(None),
            "-c" => req.config_dir = Some(PathBuf::from(it.next().ok_or("-c needs a directory")?)),
            "-i" => {
                let v = it.next().ok_or("-i needs an address")?;
                req.ip = Some(
                    v.parse()
                        .map_err(|_| format!("-i {v}: not an IP address"))?,
                );
            }
            s if s.starts_with('-') => return Err(format!("unknown option {s}")),
            d if req.domain.is_empty() => req.domain = d.trim_end_matches('.').to_ascii_lowercase(),
            extra => return Err(format!("unexpected argument {extra}")),
        }
    }
    if req.domain.is_empty() {
        return Err("a DOMAIN is needed".into());
    }
    Ok(Some(req))
}

pub fn main(args: &[String]) -> i32 {
    let req = match parse(args) {
        Ok(Some(r)) => r,
        Ok(None) => {
            print!("{HELP}");
            return 0;
        }
        Err(e) => {
            eprintln!("rostfix check-dns: {e}\n{USAGE}");
            return 64;
        }
    };
    let dir = rostfix_config::config_dir(req.config_dir.as_deref());
    let cf = match MainCf::load(&dir) {
        Ok(cf) => cf,
        Err(e) => {
            eprintln!("rostfix check-dns: {e}");
            return 1;
        }
    };
    let dns =
        match Resolver::new_dns_only(&cf.get_list("rostfix_dns_servers"), Duration::from_secs(5)) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("rostfix check-dns: {e}");
                return 2;
            }
        };
    let mut report = Report { worst: 0 };
    run(&cf, &dns, &req, &mut report);
    report.worst
}

fn run(cf: &MainCf, dns: &Resolver, req: &Request, r: &mut Report) {
    let domain = req.domain.as_str();
    let host = cf
        .get("myhostname")
        .trim()
        .trim_end_matches('.')
        .to_ascii_lowercase();
    // MX
    match dns.mx(domain) {
        Ok(mx) if mx.iter().any(|(_, h)| h.eq_ignore_ascii_case(&host)) => r.line(
            "MX",
            Verdict::Ok,
            &format!("{host} is an MX host of {domain}"),
            None,
        ),
        Ok(mx) if !mx.is_empty() => {
            let hosts: Vec<String> = mx.iter().map(|(p, h)| format!("{p} {h}")).collect();
            r.line(
                "MX",
                Verdict::Wrong,
                &format!("{domain} MX {} does not name {host}", hosts.join(", ")),
                Some(format!("{domain}. IN MX 10 {host}.")),
            )
        }
        Ok(_) | Err(TxtError::None) => r.line(
            "MX",
            Verdict::Missing,
            &format!("{domain} has no MX record"),
            Some(format!("{domain}. IN MX 10 {host}.")),
        ),
        Err(TxtError::Failed(e)) => r.line("MX", Verdict::Failed, &e, None),
    }
    // The outbound address.
    let ip = req
        .ip
        .or_else(|| dns.addresses(&host).ok().and_then(|a| a.first().copied()));
    let Some(ip) = ip else {
        r.line(
            "SPF",
            Verdict::Failed,
            &format!("no outbound address: give -i, or publish an address for {host}"),
            None,
        );
        return;
    };
    spf(dns, domain, &host, ip, r);
    dkim(cf, dns, domain, r);
    // DMARC
    let dmarc = format!("_dmarc.{domain}");
    match dns.txt(&dmarc) {
        Ok(t) if t.iter().any(|v| v.trim_start().starts_with("v=DMARC1")) => r.line(
            "DMARC",
            Verdict::Ok,
            &format!("{dmarc} has a DMARC1 record"),
            None,
        ),
        Ok(_) | Err(TxtError::None) => r.line(
            "DMARC",
            Verdict::Missing,
            &format!("{dmarc} has no DMARC1 record"),
            Some(format!(
                "{dmarc}. IN TXT \"v=DMARC1; p=none; rua=mailto:postmaster@{domain}\""
            )),
        ),
        Err(TxtError::Failed(e)) => r.line("DMARC", Verdict::Failed, &e, None),
    }
    ptr(dns, &host, ip, r);
    for (what, name, want) in [
        ("MTA-STS", format!("_mta-sts.{domain}"), "v=STSv1"),
        ("TLS-RPT", format!("_smtp._tls.{domain}"), "v=TLSRPTv1"),
    ] {
        let found = dns
            .txt(&name)
            .map(|t| t.iter().any(|v| v.trim_start().starts_with(want)))
            .unwrap_or(false);
        let text = if found {
            format!("{name} has a {want} record")
        } else {
            format!("{name} has no {want} record (optional)")
        };
        r.line(what, Verdict::Info, &text, None);
    }
}

fn spf(dns: &Resolver, domain: &str, host: &str, ip: IpAddr, r: &mut Report) {
    use mail_auth::spf::verify::SpfParameters;
    use mail_auth::SpfResult;
    let suggestion = |ip: IpAddr| {
        let mech = match ip {
            IpAddr::V4(_) => "ip4",
            IpAddr::V6(_) => "ip6",
        };
        format!("{domain}. IN TXT \"v=spf1 {mech}:{ip} mx -all\"")
    };
    let has_record = match dns.txt(domain) {
        Ok(t) => t.iter().any(|v| v.trim_start().starts_with("v=spf1")),
        Err(TxtError::None) => false,
        Err(TxtError::Failed(e)) => {
            r.line("SPF", Verdict::Failed, &e, None);
            return;
        }
    };
    if !has_record {
        r.line(
            "SPF",
            Verdict::Missing,
            &format!("{domain} has no SPF record"),
            Some(suggestion(ip)),
        );
        return;
    }
    let auth = mail_auth::MessageAuthenticator(dns.resolver.clone());
    let sender = format!("postmaster@{domain}");
    let out = dns
        .runtime
        .block_on(auth.verify_spf(SpfParameters::verify_mail_from(ip, host, host, &sender)));
    match out.result() {
        SpfResult::Pass => r.line(
            "SPF",
            Verdict::Ok,
            &format!("{domain}'s SPF record authorises {ip}"),
            None,
        ),
        SpfResult::TempError => r.line(
            "SPF",
            Verdict::Failed,
            &format!("{domain}'s SPF record could not be evaluated (DNS error)"),
            None,
        ),
        other => r.line(
            "SPF",
            Verdict::Wrong,
            &format!(
                "{domain}'s SPF record does not authorise {ip} (result {})",
                rostfix_authverify::spf_name(other)
            ),
            Some(suggestion(ip)),
        ),
    }
}

/// The `p=` value of a DKIM key record, white space removed.
fn dkim_p(record: &str) -> Option<String> {
    record.split(';').find_map(|tag| {
        let (name, value) = tag.split_once('=')?;
        (name.trim() == "p").then(|| value.chars().filter(|c| !c.is_whitespace()).collect())
    })
}

fn dkim(cf: &MainCf, dns: &Resolver, domain: &str, r: &mut Report) {
    let table = cf.get("rostfix_dkim_key_table");
    if table.trim().is_empty() {
        r.line(
            "DKIM",
            Verdict::Info,
            "rostfix_dkim_key_table is not set: no native signing",
            None,
        );
        return;
    }
    let keys = match rostfix_dkim::KeyTable::load(&table) {
        Ok(k) => k,
        Err(e) => {
            r.line("DKIM", Verdict::Failed, &e.to_string(), None);
            return;
        }
    };
    let mut entries: Vec<_> = keys
        .entries
        .values()
        .filter(|e| e.domain == domain || e.domain == "%")
        .collect();
    entries.sort_by(|a, b| a.selector.cmp(&b.selector));
    if entries.is_empty() {
        r.line(
            "DKIM",
            Verdict::Missing,
            &format!("rostfix_dkim_key_table has no key for {domain}"),
            None,
        );
        return;
    }
    for e in entries {
        let name = format!("{}._domainkey.{domain}", e.selector);
        let ours = match rostfix_dkim::load_key(&e.key_path) {
            Ok(k) => k.txt_record(),
            Err(err) => {
                r.line("DKIM", Verdict::Failed, &format!("{name}: {err}"), None);
                continue;
            }
        };
        let publish = Some(rostfix_dkim::keygen::zone_line(domain, &e.selector, &ours));
        match dns.txt(&name) {
            Ok(t)
                if t.iter()
                    .any(|v| dkim_p(v).is_some() && dkim_p(v) == dkim_p(&ours)) =>
            {
                r.line(
                    "DKIM",
                    Verdict::Ok,
                    &format!("{name} matches {}", e.key_path),
                    None,
                )
            }
            Ok(t) if !t.is_empty() => r.line(
                "DKIM",
                Verdict::Wrong,
                &format!("{name} does not hold the public key of {}", e.key_path),
                publish,
            ),
            Ok(_) | Err(TxtError::None) => r.line(
                "DKIM",
                Verdict::Missing,
                &format!("{name} has no TXT record"),
                publish,
            ),
            Err(TxtError::Failed(err)) => r.line("DKIM", Verdict::Failed, &err, None),
        }
    }
}

fn ptr(dns: &Resolver, host: &str, ip: IpAddr, r: &mut Report) {
    let reverse = match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v6) => {
            let hex: String = v6.octets().iter().map(|b| format!("{b:02x}")).collect();
            let mut nibbles: Vec<String> = hex.chars().rev().map(|c| c.to_string()).collect();
            nibbles.push("ip6.arpa".into());
            nibbles.join(".")
        }
    };
    let publish = Some(format!(
        "{reverse}. IN PTR {host}.  (set by whoever runs {ip}'s network)"
    ));
    match dns.ptr(ip) {
        Ok(names) if !names.is_empty() => {
            let confirmed = names
                .iter()
                .find(|n| dns.addresses(n).map(|a| a.contains(&ip)).unwrap_or(false));
            match confirmed {
                Some(n) if n.eq_ignore_ascii_case(host) => r.line(
                    "PTR",
                    Verdict::Ok,
                    &format!("{ip} is {n}, which resolves back to {ip}"),
                    None,
                ),
                Some(n) => r.line(
                    "PTR",
                    Verdict::Wrong,
                    &format!("{ip} is {n}, not myhostname {host}"),
                    publish,
                ),
                None => r.line(
                    "PTR",
                    Verdict::Wrong,
                    &format!(
                        "{ip} is {}, which does not resolve back to {ip}",
                        names.join(", ")
                    ),
                    publish,
                ),
            }
        }
        Ok(_) | Err(TxtError::None) => r.line(
            "PTR",
            Verdict::Missing,
            &format!("{ip} has no PTR record"),
            publish,
        ),
        Err(TxtError::Failed(e)) => r.line("PTR", Verdict::Failed, &e, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line() {
        let p = |a: &[&str]| parse(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(p(&["--help"]), Ok(None));
        let r = p(&["-i", "192.0.2.1", "Example.ORG."]).unwrap().unwrap();
        assert_eq!(r.domain, "example.org");
        assert_eq!(r.ip, Some("192.0.2.1".parse().unwrap()));
        assert!(p(&[]).is_err());
        assert!(p(&["-i", "x", "d"]).is_err());
        assert!(p(&["a", "b"]).is_err());
    }

    #[test]
    fn dkim_key_values() {
        assert_eq!(dkim_p("v=DKIM1; k=rsa; p=AB CD").as_deref(), Some("ABCD"));
        assert_eq!(dkim_p("v=DKIM1; k=rsa"), None);
    }
}
