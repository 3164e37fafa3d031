//! The blocking facade smtpd calls (it serves one client at a time, like the
//! restrictions' DNS in crates/smtpd/src/restrictions/dns.rs): a tokio
//! current-thread runtime, the hickory resolver on it, and each check run with
//! `block_on` under a deadline.
//!
//! The SPF result of a (client, HELO, sender) is remembered, so a restriction at
//! MAIL FROM (reject_spf_fail) and the Authentication-Results header at the end of
//! DATA share one evaluation.

use crate::dmarc::{self, DmarcOutcome, Identifiers};
use crate::header::to_lf_field;
use crate::psl::SuffixList;
use crate::VerifyError;
use mail_auth::dkim::DkimError;
use mail_auth::spf::verify::SpfParameters;
use mail_auth::{
    AuthenticatedMessage, AuthenticationResults, DkimOutput, DkimResult, Error,
    MessageAuthenticator, SpfOutput, SpfResult,
};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The SMTP facts the checks use.
#[derive(Debug, Clone, Copy)]
pub struct Peer<'a> {
    pub ip: IpAddr,
    /// The HELO/EHLO argument ("" when none was given).
    pub helo: &'a str,
    /// The envelope sender ("" for the null sender).
    pub sender: &'a str,
    /// What the server's reverse lookup of the client found, reported as `iprev`;
    /// None when it does not look client names up.
    pub iprev: Option<Iprev<'a>>,
}

/// The iprev result (RFC 8601 2.7.3) of the lookup smtpd already makes for its
/// client name: the PTR name, and its address lookup that must give the client's
/// address back. Not looked up again here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Iprev<'a> {
    /// Forward-confirmed: the verified name.
    Pass(&'a str),
    /// The PTR name's addresses do not include the client's (or it has none).
    Fail,
    /// A DNS timeout or server failure.
    TempError,
    /// No PTR record (or a malformed name).
    PermError,
}

impl Iprev<'_> {
    /// `;\r\n\tiprev=RESULT policy.iprev=IP`, with the verified name as a comment.
    fn clause(&self, ip: IpAddr) -> String {
        let (result, name) = match self {
            Iprev::Pass(name) => ("pass", Some(*name)),
            Iprev::Fail => ("fail", None),
            Iprev::TempError => ("temperror", None),
            Iprev::PermError => ("permerror", None),
        };
        // An IPv6 address has colons, which a pvalue token cannot hold: quoted.
        let ip = match ip {
            IpAddr::V4(a) => a.to_string(),
            IpAddr::V6(a) => format!("\"{a}\""),
        };
        let comment = name.map_or(String::new(), |n| format!(" ({n})"));
        format!(";\r\n\tiprev={result} policy.iprev={ip}{comment}")
    }
}

/// What verification of one message found.
#[derive(Debug, Clone)]
pub struct Report {
    /// `Authentication-Results: ...` in LF form, ending in LF.
    pub header: String,
    /// None when DMARC did not apply (no single From: domain).
    pub dmarc: Option<DmarcOutcome>,
    pub spf: SpfResult,
}

/// Remembered SPF results: (ip, identity) -> (when, output); a handful per session.
type SpfMemo = Vec<((IpAddr, String), (Instant, SpfOutput))>;

/// How long an SPF result is reused: long enough for one session's MAIL FROM, RCPT
/// and end of DATA, short enough that a process serving many sessions sees a
/// changed record soon (its DNS answers are not cached beyond their TTL either).
const SPF_MEMO_LIFETIME: Duration = Duration::from_secs(60);

/// Verification, set up once before the chroot.
pub struct Verifier {
    runtime: tokio::runtime::Runtime,
    auth: MessageAuthenticator,
    psl: SuffixList,
    authserv_id: String,
    deadline: Duration,
    spf_memo: Mutex<SpfMemo>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Verifier({})", self.authserv_id)
    }
}

impl Verifier {
    /// `servers`: rostfix_dns_servers (empty: /etc/resolv.conf); `query_timeout` per
    /// DNS query; `deadline` for a whole check (one SPF evaluation, or the DKIM, ARC
    /// and DMARC checks of a message).
    pub fn new(
        servers: &[String],
        query_timeout: Duration,
        deadline: Duration,
        suffix_list: &str,
        authserv_id: &str,
    ) -> Result<Verifier, VerifyError> {
        let psl = SuffixList::load(suffix_list)?;
        let rostfix_dns::Resolver { runtime, resolver } =
            rostfix_dns::Resolver::new_dns_only(servers, query_timeout)?;
        Ok(Verifier {
            runtime,
            auth: MessageAuthenticator(resolver),
            psl,
            authserv_id: authserv_id.to_string(),
            deadline,
            spf_memo: Mutex::new(Vec::new()),
        })
    }

    pub fn authserv_id(&self) -> &str {
        &self.authserv_id
    }

    /// The resolver-backed checker (arc_seal.rs).
    pub(crate) fn auth(&self) -> &MessageAuthenticator {
        &self.auth
    }

    /// Runs `fut` to completion or until the deadline (None).
    pub(crate) fn bounded<F: std::future::Future>(&self, fut: F) -> Option<F::Output> {
        self.runtime
            .block_on(async { tokio::time::timeout(self.deadline, fut).await.ok() })
    }

    /// SPF for the MAIL FROM identity (RFC 7208 2.4; for the null sender
    /// postmaster@HELO, as mail-auth and RFC 7208 2.4 say).
    pub fn spf_mail_from(&self, peer: &Peer<'_>) -> SpfOutput {
        let identity = if peer.sender.is_empty() {
            format!("postmaster@{}", peer.helo)
        } else {
            peer.sender.to_string()
        };
        self.spf_memoized(peer.ip, identity, |auth| {
            auth.verify_spf(SpfParameters::verify_mail_from(
                peer.ip,
                peer.helo,
                &self.authserv_id,
                peer.sender,
            ))
        })
    }

    /// SPF for the HELO identity (RFC 7208 2.3); `none` for an address literal or a
    /// name without a dot, which no SPF record can be published for.
    pub fn spf_helo(&self, peer: &Peer<'_>) -> SpfOutput {
        let helo = peer.helo.trim_end_matches('.');
        if helo.starts_with('[') || !helo.contains('.') {
            return SpfOutput::new(helo.to_string()).with_result(SpfResult::None);
        }
        self.spf_memoized(peer.ip, format!("helo:{helo}"), |auth| {
            auth.verify_spf(SpfParameters::verify_ehlo(peer.ip, helo, &self.authserv_id))
        })
    }

    fn spf_memoized<'a, F, Fut>(&'a self, ip: IpAddr, identity: String, check: F) -> SpfOutput
    where
        F: FnOnce(&'a MessageAuthenticator) -> Fut,
        Fut: std::future::Future<Output = SpfOutput>,
    {
        let key = (ip, identity.to_ascii_lowercase());
        if let Ok(mut memo) = self.spf_memo.lock() {
            memo.retain(|(_, (when, _))| when.elapsed() < SPF_MEMO_LIFETIME);
            if let Some((_, (_, out))) = memo.iter().find(|(k, _)| *k == key) {
                return out.clone();
            }
        }
        let domain = key.1.rsplit_once('@').map_or(key.1.as_str(), |(_, d)| d);
        let out = self.bounded(check(&self.auth)).unwrap_or_else(|| {
            log::warn!("SPF check of {domain} for {ip} timed out");
            SpfOutput::new(domain.to_string()).with_result(SpfResult::TempError)
        });
        if let Ok(mut memo) = self.spf_memo.lock() {
            // A session checks a few identities; keep the memory bounded anyway.
            if memo.len() >= 16 {
                memo.remove(0);
            }
            memo.push((key, (Instant::now(), out.clone())));
        }
        out
    }

    /// Verifies one message (`content`: as stored, LF line ends): SPF (remembered),
    /// DKIM, ARC, DMARC, and the Authentication-Results header that reports them.
    pub fn verify(&self, peer: &Peer<'_>, content: &[u8]) -> Report {
        let helo_spf = self.spf_helo(peer);
        let mail_spf = self.spf_mail_from(peer);
        // The MAIL FROM result first: it is the identity DMARC aligns, and the
        // Authentication-Results parsers of OpenDMARC and OpenARC keep only the first
        // result of each method (but dkim) when they read ours as trusted.
        // smtp.mailfrom names the domain, as pypolicyd-spf writes it: RFC 8601 allows
        // the address or its domain, and OpenDMARC 1.4 cannot read the address form
        // (it then takes the SPF pass for a failure).
        let mailfrom = peer.sender.rsplit_once('@').map_or(peer.sender, |(_, d)| d);
        let mut ar = AuthenticationResults::new(&self.authserv_id)
            .with_spf_mailfrom_result(&mail_spf, peer.ip, mailfrom, peer.helo);
        if !peer.helo.is_empty() && !peer.helo.starts_with('[') {
            ar = ar.with_spf_ehlo_result(&helo_spf, peer.ip, peer.helo);
        }
        let wire = rostfix_dkim::to_crlf(content);
        let (mut tail, dmarc) = match AuthenticatedMessage::parse(&wire) {
            Some(message) => self.message_results(peer, &message, &mail_spf, ar.clone()),
            None => (
                format!("{ar};\r\n\tdkim=permerror (message not parseable)"),
                None,
            ),
        };
        if let Some(iprev) = &peer.iprev {
            tail.push_str(&iprev.clause(peer.ip));
        }
        Report {
            header: to_lf_field(&format!("Authentication-Results: {tail}")),
            dmarc,
            spf: mail_spf.result(),
        }
    }

    /// DKIM, ARC and DMARC under one deadline; the header text after the name.
    fn message_results(
        &self,
        peer: &Peer<'_>,
        message: &AuthenticatedMessage<'_>,
        mail_spf: &SpfOutput,
        ar: AuthenticationResults<'_>,
    ) -> (String, Option<DmarcOutcome>) {
        let from_domains = from_domains(message.froms());
        let spf_domain = match peer.sender.rsplit_once('@') {
            Some((_, d)) => d,
            None => peer.helo,
        };
        let checks = async {
            let dkim: Vec<DkimOutput<'_>> = self
                .auth
                .verify_dkim(message)
                .await
                .into_iter()
                .map(|o| body_hash_fails(message, o))
                .collect();
            let arc = self.auth.verify_arc(message).await;
            // RFC 8617 knows pass, fail and none: a chain that does not verify fails.
            let arc = match arc.result().clone() {
                DkimResult::Neutral(e) | DkimResult::PermError(e) => {
                    arc.with_result(DkimResult::Fail(e))
                }
                _ => arc,
            };
            let dmarc = match from_domains.as_slice() {
                [from] => {
                    let ids = Identifiers {
                        spf_domain,
                        spf: mail_spf.result(),
                        dkim_pass: dkim
                            .iter()
                            .filter(|o| *o.result() == DkimResult::Pass)
                            .filter_map(|o| o.signature().map(|s| s.d.clone()))
                            .collect(),
                        dkim_temperror: dkim
                            .iter()
                            .any(|o| matches!(o.result(), DkimResult::TempError(_))),
                    };
                    Some(dmarc::check(&self.auth, &self.psl, from, &ids).await)
                }
                // No From: domain, or several (RFC 7489 6.6.1 leaves it to the
                // receiver; mail-auth and RFC 9989 exempt them): no DMARC.
                _ => None,
            };
            let mut text = ar.to_string();
            if dkim.is_empty() {
                text.push_str(";\r\n\tdkim=none");
            }
            for o in &dkim {
                text.push_str(&crate::header::dkim_result(o));
            }
            if !message.ams_headers.is_empty() || !message.as_headers.is_empty() {
                let arc_part = AuthenticationResults::new("").with_arc_result(&arc, peer.ip);
                text.push_str(&arc_part.to_string());
            }
            (text, dmarc)
        };
        let (mut text, dmarc) = match self.bounded(checks) {
            Some(done) => done,
            None => {
                log::warn!("DKIM/ARC/DMARC checks for {} timed out", peer.ip);
                let dmarc = from_domains.first().map(|d| DmarcOutcome {
                    status: crate::DmarcStatus::TempError,
                    from_domain: d.clone(),
                    org_domain: self.psl.organizational(d),
                    policy: None,
                    enforce: None,
                });
                (
                    format!("{ar};\r\n\tdkim=temperror (verification timed out)"),
                    dmarc,
                )
            }
        };
        if let Some(d) = &dmarc {
            text.push_str(&dmarc_result(d));
        }
        (text, dmarc)
    }
}

/// A body hash mismatch as `fail`: mail-auth says `neutral`, as OpenDKIM does, but
/// RFC 6376 6.1.3 makes it a PERMFAIL and RFC 8601 2.7.1 calls a signature that failed
/// its verification test `fail` (`neutral` is for signatures that could not be
/// processed), which is what dkimpy and receivers such as Gmail report.
fn body_hash_fails<'x>(message: &'x AuthenticatedMessage<'x>, o: DkimOutput<'x>) -> DkimOutput<'x> {
    let DkimResult::Neutral(e @ Error::Dkim(DkimError::FailedBodyHashMatch)) = o.result() else {
        return o;
    };
    // The output's signature borrows from the message: find it there for its lifetime.
    let sig = o.signature().and_then(|sig| {
        message
            .dkim_headers
            .iter()
            .map(|h| &h.header)
            .find(|s| std::ptr::eq(*s, sig))
    });
    match sig {
        Some(sig) => DkimOutput::fail(e.clone()).with_signature(sig),
        None => o,
    }
}

/// The distinct From: domains (lowercase).
fn from_domains(froms: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for addr in froms {
        if let Some((_, d)) = addr.rsplit_once('@') {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            if !d.is_empty() && !out.contains(&d) {
                out.push(d);
            }
        }
    }
    out
}

/// `;\r\n\tdmarc=RESULT (p=POLICY dis=DISPOSITION) header.from=DOMAIN`, as
/// OpenDMARC writes it. The disposition is what smtpd does with a failure; a message
/// that gets a header was not rejected, so it is `none` or the quarantine smtpd
/// applies is not known here: `none` (the caller rewrites it when it acts).
fn dmarc_result(d: &DmarcOutcome) -> String {
    let comment = match d.policy {
        Some(p) => format!(" (p={} dis=none)", p.as_str()),
        None => String::new(),
    };
    format!(
        ";\r\n\tdmarc={}{comment} header.from={}",
        d.status.as_str(),
        d.from_domain
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_domains_distinct_lowercase() {
        let v = vec!["a@Example.com".to_string(), "b@example.com.".to_string()];
        assert_eq!(from_domains(&v), vec!["example.com".to_string()]);
        let v = vec![
            "a@x.org".to_string(),
            "b@y.org".to_string(),
            "nobody".into(),
        ];
        assert_eq!(from_domains(&v).len(), 2);
    }

    #[test]
    fn dmarc_text() {
        let d = DmarcOutcome {
            status: crate::DmarcStatus::Fail,
            from_domain: "example.org".into(),
            org_domain: "example.org".into(),
            policy: Some(crate::Policy::Reject),
            enforce: Some(crate::Policy::Reject),
        };
        assert_eq!(
            dmarc_result(&d),
            ";\r\n\tdmarc=fail (p=reject dis=none) header.from=example.org"
        );
    }

    #[test]
    fn iprev_clauses() {
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(
            Iprev::Pass("mail.example.org").clause(v4),
            ";\r\n\tiprev=pass policy.iprev=192.0.2.1 (mail.example.org)"
        );
        assert_eq!(
            Iprev::Fail.clause(v6),
            ";\r\n\tiprev=fail policy.iprev=\"2001:db8::1\""
        );
        assert!(Iprev::PermError.clause(v4).contains("iprev=permerror "));
        assert!(Iprev::TempError.clause(v4).contains("iprev=temperror "));
    }
}
