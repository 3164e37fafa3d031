//! DANE (RFC 7672) for the smtp client: what the levels `dane` and `dane-only` become
//! for one server, given the DNSSEC status of its MX set and addresses and its TLSA
//! records. [`decide`] is the decision table, a pure function (the TLSA lookup is
//! passed in as a closure, called only when the table needs it), following Postfix's
//! dane_init() in smtp_tls_policy.c:
//!
//! | situation                                   | dane            | dane-only      |
//! |---------------------------------------------|-----------------|----------------|
//! | smtp_dns_support_level is not dnssec        | may (warning)   | defer (config) |
//! | MX set insecure                             | see below       | defer          |
//! | host address insecure (no TLSA lookup)      | may             | defer          |
//! | TLSA lookup failed (SERVFAIL, bogus)        | defer           | defer          |
//! | no validated TLSA records                   | may             | defer          |
//! | TLSA records, none usable                   | encrypt         | defer          |
//! | usable TLSA records                         | dane            | dane           |
//!
//! An insecure MX set with `dane` goes on to the host's own TLSA records when
//! smtp_tls_dane_insecure_mx_policy is `dane` (Postfix's "half-dane", its default when
//! the main.cf level is dane), or gets opportunistic TLS when it is `may`. Usable records are DANE-TA(2) and DANE-EE(3)
//! with selector 0 or 1 and matching type 0, 1 or 2; PKIX-TA(0) and PKIX-EE(1) are
//! unusable for SMTP (RFC 7672 section 3.1.3). How a certificate is checked against
//! the records is in `dane_verify.rs`.

/// The two DANE levels of smtp_tls_security_level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DaneLevel {
    Dane,
    DaneOnly,
}

impl DaneLevel {
    pub fn name(self) -> &'static str {
        match self {
            DaneLevel::Dane => "dane",
            DaneLevel::DaneOnly => "dane-only",
        }
    }
}

/// One TLSA record (RFC 6698): usage, selector, matching type, association data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tlsa {
    pub usage: u8,
    pub selector: u8,
    pub mtype: u8,
    pub data: Vec<u8>,
}

/// DANE-TA: the record names a trust anchor in (or beside) the server's chain.
pub const USAGE_DANE_TA: u8 = 2;
/// DANE-EE: the record names the server's own certificate or key.
pub const USAGE_DANE_EE: u8 = 3;

impl Tlsa {
    /// Whether RFC 7672 lets an SMTP client use this record.
    pub fn usable(&self) -> bool {
        matches!(self.usage, USAGE_DANE_TA | USAGE_DANE_EE)
            && self.selector <= 1
            && match self.mtype {
                0 => !self.data.is_empty(),
                1 => self.data.len() == 32,
                2 => self.data.len() == 64,
                _ => false,
            }
    }
}

/// The outcome of the TLSA lookup at `_port._tcp.host`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsaAnswer {
    /// SERVFAIL, a bogus answer, a timeout: the mail waits.
    Error,
    /// No records, or only records DNSSEC did not prove.
    NotFound,
    /// Validated records (usable or not).
    Records(Vec<Tlsa>),
}

/// What the connection to one server does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Opportunistic TLS (`may`).
    May,
    /// Mandatory TLS without authentication (`encrypt`).
    Encrypt,
    /// Mandatory TLS, the certificate checked against these usable records.
    Dane(Vec<Tlsa>),
    /// This server is skipped: the next one is tried, else the mail is deferred with
    /// this enhanced status and text.
    Defer { dsn: &'static str, text: String },
}

/// The facts [`decide`] needs about one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts<'a> {
    pub level: DaneLevel,
    /// smtp_dns_support_level = dnssec (the resolver validates).
    pub dnssec: bool,
    /// The DNSSEC status of the MX set; `None` without an MX lookup.
    pub mx_secure: Option<bool>,
    /// The DNSSEC status of the server's address records.
    pub host_secure: bool,
    /// smtp_tls_dane_insecure_mx_policy = may.
    pub insecure_mx_may: bool,
    /// For texts: the next hop, the server host name and port.
    pub nexthop: &'a str,
    pub host: &'a str,
    pub port: u16,
}

/// The DANE decision for one server (see the module table). Warnings meant for the
/// administrator come back beside the decision, for the caller to log.
pub fn decide(f: &Facts<'_>, tlsa: impl FnOnce() -> TlsaAnswer) -> (Decision, Option<String>) {
    let dest_failure = |text: &str| match f.level {
        DaneLevel::Dane => Decision::May,
        DaneLevel::DaneOnly => Decision::Defer {
            dsn: "4.7.5",
            text: text.to_string(),
        },
    };
    if !f.dnssec {
        let warning = format!(
            "{}: {} configured with dnssec lookups disabled",
            f.nexthop,
            f.level.name()
        );
        let d = match f.level {
            DaneLevel::Dane => Decision::May,
            // Postfix marks the policy invalid: an administrator's error.
            DaneLevel::DaneOnly => Decision::Defer {
                dsn: "4.7.0",
                text: "client TLS configuration problem".to_string(),
            },
        };
        return (d, Some(warning));
    }
    if f.mx_secure == Some(false) && f.level == DaneLevel::DaneOnly {
        return (dest_failure("non DNSSEC destination"), None);
    }
    if f.mx_secure == Some(false) && f.insecure_mx_may {
        return (Decision::May, None);
    }
    // RFC 7672 section 2.2.2: no TLSA lookup for a host whose address is not secure.
    let answer = if f.host_secure {
        tlsa()
    } else {
        TlsaAnswer::NotFound
    };
    let d = match answer {
        TlsaAnswer::Error => Decision::Defer {
            dsn: "4.7.5",
            text: format!("TLSA lookup error for {}:{}", f.host, f.port),
        },
        TlsaAnswer::NotFound => dest_failure("no TLSA records found"),
        TlsaAnswer::Records(records) => {
            let usable: Vec<Tlsa> = records.into_iter().filter(Tlsa::usable).collect();
            if !usable.is_empty() {
                Decision::Dane(usable)
            } else if f.level == DaneLevel::Dane {
                Decision::Encrypt
            } else {
                Decision::Defer {
                    dsn: "4.7.5",
                    text: "TLSA records unusable".to_string(),
                }
            }
        }
    };
    (d, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(usage: u8, selector: u8, mtype: u8) -> Tlsa {
        let len = match mtype {
            1 => 32,
            2 => 64,
            _ => 20,
        };
        Tlsa {
            usage,
            selector,
            mtype,
            data: vec![7; len],
        }
    }

    fn facts(level: DaneLevel, mx_secure: Option<bool>, host_secure: bool) -> Facts<'static> {
        Facts {
            level,
            dnssec: true,
            mx_secure,
            host_secure,
            insecure_mx_may: false,
            nexthop: "example.test",
            host: "mx.example.test",
            port: 25,
        }
    }

    fn run(f: &Facts<'_>, answer: TlsaAnswer) -> (Decision, bool) {
        let mut asked = false;
        let (d, _) = decide(f, || {
            asked = true;
            answer
        });
        (d, asked)
    }

    fn defer(text: &str) -> Decision {
        Decision::Defer {
            dsn: "4.7.5",
            text: text.to_string(),
        }
    }

    #[test]
    fn usable_records() {
        assert!(rec(3, 1, 1).usable());
        assert!(rec(2, 0, 2).usable());
        assert!(rec(3, 0, 0).usable());
        assert!(!rec(1, 1, 1).usable(), "PKIX-EE is unusable for SMTP");
        assert!(!rec(0, 0, 1).usable(), "PKIX-TA is unusable for SMTP");
        assert!(!rec(3, 2, 1).usable());
        assert!(!rec(3, 1, 3).usable());
        let mut short = rec(3, 1, 1);
        short.data.pop();
        assert!(!short.usable(), "a SHA-256 value must be 32 bytes");
    }

    #[test]
    fn secure_chain_with_usable_records_is_dane() {
        let good = vec![rec(3, 1, 1), rec(1, 1, 1)];
        for level in [DaneLevel::Dane, DaneLevel::DaneOnly] {
            let (d, asked) = run(
                &facts(level, Some(true), true),
                TlsaAnswer::Records(good.clone()),
            );
            assert!(asked);
            assert_eq!(d, Decision::Dane(vec![rec(3, 1, 1)]));
        }
    }

    #[test]
    fn unusable_records() {
        let only_pkix = TlsaAnswer::Records(vec![rec(1, 1, 1), rec(0, 0, 1)]);
        let f = facts(DaneLevel::Dane, Some(true), true);
        assert_eq!(run(&f, only_pkix.clone()).0, Decision::Encrypt);
        let f = facts(DaneLevel::DaneOnly, Some(true), true);
        assert_eq!(run(&f, only_pkix).0, defer("TLSA records unusable"));
    }

    #[test]
    fn no_records_and_lookup_errors() {
        let f = facts(DaneLevel::Dane, Some(true), true);
        assert_eq!(run(&f, TlsaAnswer::NotFound).0, Decision::May);
        assert_eq!(
            run(&f, TlsaAnswer::Error).0,
            defer("TLSA lookup error for mx.example.test:25")
        );
        let f = facts(DaneLevel::DaneOnly, None, true);
        assert_eq!(
            run(&f, TlsaAnswer::NotFound).0,
            defer("no TLSA records found")
        );
    }

    #[test]
    fn insecure_mx_and_hosts() {
        // dane-only: an insecure MX set fails before any TLSA lookup.
        let f = facts(DaneLevel::DaneOnly, Some(false), true);
        let (d, asked) = run(&f, TlsaAnswer::Records(vec![rec(3, 1, 1)]));
        assert_eq!(d, defer("non DNSSEC destination"));
        assert!(!asked);
        // dane: an insecure host address means no TLSA lookup, opportunistic TLS.
        let f = facts(DaneLevel::Dane, Some(false), false);
        let (d, asked) = run(&f, TlsaAnswer::Records(vec![rec(3, 1, 1)]));
        assert_eq!(d, Decision::May);
        assert!(!asked);
        // dane: an insecure MX set naming a host in a signed zone uses its records.
        let f = facts(DaneLevel::Dane, Some(false), true);
        let (d, _) = run(&f, TlsaAnswer::Records(vec![rec(3, 1, 1)]));
        assert_eq!(d, Decision::Dane(vec![rec(3, 1, 1)]));
        let f = facts(DaneLevel::DaneOnly, None, false);
        assert_eq!(
            run(&f, TlsaAnswer::NotFound).0,
            defer("no TLSA records found")
        );
        // smtp_tls_dane_insecure_mx_policy = may: opportunistic, no TLSA lookup.
        let f = Facts {
            insecure_mx_may: true,
            ..facts(DaneLevel::Dane, Some(false), true)
        };
        let (d, asked) = run(&f, TlsaAnswer::Records(vec![rec(3, 1, 1)]));
        assert_eq!((d, asked), (Decision::May, false));
        // ...which changes nothing for a signed MX set, nor for dane-only.
        let f = Facts {
            insecure_mx_may: true,
            ..facts(DaneLevel::Dane, Some(true), true)
        };
        assert_eq!(
            run(&f, TlsaAnswer::Records(vec![rec(3, 1, 1)])).0,
            Decision::Dane(vec![rec(3, 1, 1)])
        );
        let f = Facts {
            insecure_mx_may: true,
            ..facts(DaneLevel::DaneOnly, Some(false), true)
        };
        assert_eq!(
            run(&f, TlsaAnswer::NotFound).0,
            defer("non DNSSEC destination")
        );
    }

    #[test]
    fn dnssec_disabled() {
        let mut f = facts(DaneLevel::Dane, Some(true), true);
        f.dnssec = false;
        let (d, warning) = decide(&f, || panic!("no TLSA lookup without DNSSEC"));
        assert_eq!(d, Decision::May);
        assert_eq!(
            warning.as_deref(),
            Some("example.test: dane configured with dnssec lookups disabled")
        );
        f.level = DaneLevel::DaneOnly;
        let (d, warning) = decide(&f, || panic!("no TLSA lookup without DNSSEC"));
        assert!(matches!(d, Decision::Defer { dsn: "4.7.0", .. }));
        assert!(warning.is_some());
    }
}
