//! Postfix's SMTP access restriction lists (smtpd_client_restrictions,
//! smtpd_helo_restrictions, smtpd_sender_restrictions, smtpd_relay_restrictions,
//! smtpd_recipient_restrictions, smtpd_data_restrictions,
//! smtpd_end_of_data_restrictions): parsing here, evaluation in [`eval`], the
//! per-instance configuration in [`config`].
//!
//! A list is a sequence of restriction names, some followed by an argument
//! (`check_client_access hash:/etc/rostfix/access`, `reject_rbl_client zen.example`).
//! An unknown name is a configuration error naming the parameter, which stops smtpd at
//! start, as Postfix does ("unknown smtpd restriction").

pub mod access;
#[cfg(test)]
mod ccert_tests;
pub mod config;
pub mod dns;
pub mod dnsxl;
pub mod eval;
pub mod implicit_access;
pub mod interfaces;
pub mod legacy;
pub mod local;
pub mod login_maps;
pub mod policy_codec;
pub mod policy_request;
pub mod policy_service;
pub mod ptr_query;
pub mod queue_actions;
pub mod server_access;
mod spf;
pub mod unknown;
pub mod unlisted;
pub mod verify;
pub mod virtual_domains;

use rostfix_maps::Map;
use std::sync::Arc;

/// Which lookup key a `check_*_access` uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessKind {
    Client,
    /// check_reverse_client_hostname_access: the unverified PTR name, then the address.
    ReverseClient,
    Helo,
    Sender,
    Recipient,
    /// check_etrn_access: the ETRN command's domain and its parents.
    Etrn,
}

/// One restriction.
#[derive(Clone)]
pub enum Restriction {
    Permit,
    Reject,
    Defer,
    /// Makes the next restriction log its reject instead of rejecting.
    WarnIfReject,
    PermitMynetworks,
    PermitSaslAuthenticated,
    PermitAuthDestination,
    RejectUnauthDestination,
    DeferUnauthDestination,
    RejectUnknownSenderDomain,
    RejectUnknownRecipientDomain,
    RejectNonFqdnSender,
    RejectNonFqdnRecipient,
    RejectNonFqdnHelo,
    RejectInvalidHelo,
    RejectUnlistedRecipient,
    /// reject_spf_fail (Rostfix): SPF of the MAIL FROM identity fails (spf.rs).
    RejectSpfFail,
    CheckAccess {
        kind: AccessKind,
        table: Arc<dyn Map>,
    },
    /// A bare `type:table`: the access check of the stage it is evaluated at
    /// (implicit_access.rs).
    StageAccess(Arc<dyn Map>),
    /// `check_policy_service server` (policy_service.rs).
    CheckPolicyService(Arc<policy_service::PolicyClient>),
    /// A smtpd_restriction_classes name, looked up when evaluated.
    Class(String),
    /// reject_{,authenticated_,known_,unauthenticated_}sender_login_mismatch.
    SenderLoginMismatch(login_maps::Mismatch),
    /// `check_sasl_access table`: keyed by the SASL login name.
    CheckSaslAccess(Arc<dyn Map>),
    RejectUnlistedSender,
    RejectMultiRecipientBounce,
    PermitInetInterfaces,
    RejectUnauthPipelining,
    DeferIfPermit,
    DeferIfReject,
    /// permit_tls_clientcerts (`all` false) and permit_tls_all_clientcerts (`all`
    /// true): relay_clientcerts fingerprints, or (`all`) any trusted certificate.
    PermitTlsClientcerts {
        all: bool,
    },
    /// `check_ccert_access table`: keyed by the client certificate's fingerprint,
    /// then its public key's.
    CheckCcertAccess(Arc<dyn Map>),
    RejectUnknownClient,
    RejectUnknownReverseClient,
    RejectUnknownForwardClient,
    RejectPlaintextSession,
    PermitMxBackup,
    /// `sleep SECONDS` (legacy.rs bounds it).
    Sleep(u64),
    /// Deprecated in Postfix: a HELO that is a bare IP address.
    PermitNakedIpAddress,
    /// Deprecated in Postfix: reject_rbl_client for each of maps_rbl_domains.
    RejectMapsRbl,
    /// Removed in Postfix 2.2; acts as reject_unauth_destination.
    CheckRelayDomains,
    RejectUnknownHelo,
    /// reject_rbl_client, reject_rhsbl_*, permit_dnswl_client, permit_rhswl_client.
    Dnsxl(dnsxl::Dnsxl),
    /// check_*_{mx,ns,a}_access.
    ServerAccess(server_access::ServerAccess),
    /// reject_unverified_sender / _recipient: address verification is not built
    /// (issue 14), so these warn and go on.
    Unverified(&'static str),
}

impl std::fmt::Debug for Restriction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Restriction::CheckAccess { kind, table } => {
                write!(f, "CheckAccess({kind:?}, {})", table.spec())
            }
            Restriction::StageAccess(table) => write!(f, "StageAccess({})", table.spec()),
            Restriction::CheckCcertAccess(table) => write!(f, "CheckCcertAccess({})", table.spec()),
            Restriction::CheckPolicyService(c) => write!(f, "CheckPolicyService({})", c.spec.name),
            Restriction::Class(name) => write!(f, "Class({name})"),
            Restriction::Dnsxl(x) => write!(f, "{}({})", x.kind.name(), x.arg),
            Restriction::ServerAccess(s) => write!(f, "{s:?}"),
            other => write!(f, "{}", other.name()),
        }
    }
}

impl Restriction {
    /// The Postfix name (for logs and debugging).
    pub fn name(&self) -> &'static str {
        match self {
            Restriction::Permit => "permit",
            Restriction::Reject => "reject",
            Restriction::Defer => "defer",
            Restriction::WarnIfReject => "warn_if_reject",
            Restriction::PermitMynetworks => "permit_mynetworks",
            Restriction::PermitSaslAuthenticated => "permit_sasl_authenticated",
            Restriction::PermitAuthDestination => "permit_auth_destination",
            Restriction::RejectUnauthDestination => "reject_unauth_destination",
            Restriction::DeferUnauthDestination => "defer_unauth_destination",
            Restriction::RejectUnknownSenderDomain => "reject_unknown_sender_domain",
            Restriction::RejectUnknownRecipientDomain => "reject_unknown_recipient_domain",
            Restriction::RejectNonFqdnSender => "reject_non_fqdn_sender",
            Restriction::RejectNonFqdnRecipient => "reject_non_fqdn_recipient",
            Restriction::RejectNonFqdnHelo => "reject_non_fqdn_helo_hostname",
            Restriction::RejectInvalidHelo => "reject_invalid_helo_hostname",
            Restriction::RejectUnlistedRecipient => "reject_unlisted_recipient",
            Restriction::RejectSpfFail => "reject_spf_fail",
            Restriction::CheckAccess { kind, .. } => match kind {
                AccessKind::Client => "check_client_access",
                AccessKind::ReverseClient => "check_reverse_client_hostname_access",
                AccessKind::Helo => "check_helo_access",
                AccessKind::Sender => "check_sender_access",
                AccessKind::Recipient => "check_recipient_access",
                AccessKind::Etrn => "check_etrn_access",
            },
            Restriction::StageAccess(_) => "access table",
            Restriction::CheckPolicyService(_) => "check_policy_service",
            Restriction::Class(_) => "restriction class",
            Restriction::SenderLoginMismatch(m) => m.name(),
            Restriction::CheckSaslAccess(_) => "check_sasl_access",
            Restriction::RejectUnlistedSender => "reject_unlisted_sender",
            Restriction::RejectMultiRecipientBounce => "reject_multi_recipient_bounce",
            Restriction::PermitInetInterfaces => "permit_inet_interfaces",
            Restriction::RejectUnauthPipelining => "reject_unauth_pipelining",
            Restriction::DeferIfPermit => "defer_if_permit",
            Restriction::DeferIfReject => "defer_if_reject",
            Restriction::PermitTlsClientcerts { all: false } => "permit_tls_clientcerts",
            Restriction::PermitTlsClientcerts { all: true } => "permit_tls_all_clientcerts",
            Restriction::CheckCcertAccess(_) => "check_ccert_access",
            Restriction::RejectUnknownClient => "reject_unknown_client_hostname",
            Restriction::RejectUnknownReverseClient => "reject_unknown_reverse_client_hostname",
            Restriction::RejectUnknownForwardClient => "reject_unknown_forward_client_hostname",
            Restriction::RejectPlaintextSession => "reject_plaintext_session",
            Restriction::PermitMxBackup => "permit_mx_backup",
            Restriction::Sleep(_) => "sleep",
            Restriction::PermitNakedIpAddress => "permit_naked_ip_address",
            Restriction::RejectMapsRbl => "reject_maps_rbl",
            Restriction::CheckRelayDomains => "check_relay_domains",
            Restriction::RejectUnknownHelo => "reject_unknown_helo_hostname",
            Restriction::Dnsxl(x) => x.kind.name(),
            Restriction::ServerAccess(s) => s.name(),
            Restriction::Unverified(name) => name,
        }
    }

    /// True for what satisfies Postfix's "the relay or recipient list must restrict
    /// relaying" start-up check.
    pub fn restricts_relay(&self) -> bool {
        matches!(
            self,
            Restriction::Reject
                | Restriction::Defer
                | Restriction::RejectUnauthDestination
                | Restriction::DeferUnauthDestination
                | Restriction::CheckRelayDomains
        )
    }

    /// Needs DNS lookups.
    pub fn uses_dns(&self) -> bool {
        matches!(
            self,
            Restriction::RejectUnknownSenderDomain
                | Restriction::RejectUnknownRecipientDomain
                | Restriction::RejectUnknownHelo
                | Restriction::Dnsxl(_)
                | Restriction::ServerAccess(_)
                | Restriction::PermitMxBackup
                | Restriction::RejectMapsRbl
        )
    }
}

/// A list that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RestrictionError {
    #[error("{param}: unknown smtpd restriction: \"{name}\"")]
    Unknown { param: &'static str, name: String },
    #[error("{param}: {name} needs an argument")]
    MissingArgument { param: &'static str, name: String },
    #[error("{param}: {name}: {reason}")]
    BadArgument {
        param: &'static str,
        name: String,
        reason: dnsxl::PatternError,
    },
    #[error("{param}: {name}: cannot open table {table}: {reason}")]
    Table {
        param: &'static str,
        name: String,
        table: String,
        reason: String,
    },
    #[error("{param}: check_policy_service {server}: {reason}")]
    Policy {
        param: &'static str,
        server: String,
        reason: policy_service::SpecError,
    },
    #[error(
        "{param}: specify at least one working instance of: reject_unauth_destination, \
         defer_unauth_destination, reject, defer (in smtpd_relay_restrictions or \
         smtpd_recipient_restrictions), or mail may be relayed for anyone"
    )]
    OpenRelay { param: &'static str },
}

/// Opens a `type:name` table for a `check_*_access` restriction.
pub type TableOpener<'a> = dyn Fn(&str) -> Result<Arc<dyn Map>, String> + 'a;

/// What parsing a list needs besides the text: the table opener, the
/// smtpd_restriction_classes names and the policy service defaults.
pub struct ParseContext<'a> {
    pub open: &'a TableOpener<'a>,
    pub classes: &'a [String],
    pub policy: &'a policy_service::PolicySpec,
}

/// Parses one restriction list. Names are case-insensitive; commas and white space
/// separate, as in every Postfix list.
pub fn parse_list(
    param: &'static str,
    value: &str,
    open: &TableOpener<'_>,
) -> Result<Vec<Restriction>, RestrictionError> {
    let policy = policy_service::PolicySpec::builtin();
    let ctx = ParseContext {
        open,
        classes: &[],
        policy: &policy,
    };
    parse_list_in(param, value, &ctx)
}

/// [`parse_list`] knowing the restriction classes and policy defaults.
pub fn parse_list_in(
    param: &'static str,
    value: &str,
    ctx: &ParseContext<'_>,
) -> Result<Vec<Restriction>, RestrictionError> {
    let open = ctx.open;
    let words_vec = split_words(value);
    let mut words = words_vec.iter().map(String::as_str);
    let mut out = Vec::new();
    while let Some(word) = words.next() {
        let lower = word.to_ascii_lowercase();
        let mut arg = |name: &str| {
            words
                .next()
                .map(str::to_string)
                .ok_or_else(|| RestrictionError::MissingArgument {
                    param,
                    name: name.to_string(),
                })
        };
        let access = |kind, table: String| -> Result<Restriction, RestrictionError> {
            let t = open(&table).map_err(|reason| RestrictionError::Table {
                param,
                name: lower.clone(),
                table: table.clone(),
                reason,
            })?;
            Ok(Restriction::CheckAccess { kind, table: t })
        };
        if let Some((of, rtype)) = server_access::parse_name(&lower) {
            let table = arg(&lower)?;
            let t = open(&table).map_err(|reason| RestrictionError::Table {
                param,
                name: lower.clone(),
                table: table.clone(),
                reason,
            })?;
            out.push(server_access::restriction(of, rtype, t));
            continue;
        }
        if let Some(kind) = dnsxl::DnsxlKind::from_name(&lower) {
            let x = dnsxl::Dnsxl::parse(kind, &arg(&lower)?).map_err(|reason| {
                RestrictionError::BadArgument {
                    param,
                    name: lower.clone(),
                    reason,
                }
            })?;
            out.push(Restriction::Dnsxl(x));
            continue;
        }
        let r = match lower.as_str() {
            "permit" => Restriction::Permit,
            "reject" => Restriction::Reject,
            "defer" => Restriction::Defer,
            "warn_if_reject" => Restriction::WarnIfReject,
            "permit_mynetworks" => Restriction::PermitMynetworks,
            "permit_sasl_authenticated" => Restriction::PermitSaslAuthenticated,
            "permit_auth_destination" => Restriction::PermitAuthDestination,
            "reject_unauth_destination" => Restriction::RejectUnauthDestination,
            "defer_unauth_destination" => Restriction::DeferUnauthDestination,
            "reject_unknown_sender_domain" => Restriction::RejectUnknownSenderDomain,
            "reject_spf_fail" => Restriction::RejectSpfFail,
            "reject_unknown_recipient_domain" => Restriction::RejectUnknownRecipientDomain,
            "reject_non_fqdn_sender" => Restriction::RejectNonFqdnSender,
            "reject_non_fqdn_recipient" => Restriction::RejectNonFqdnRecipient,
            // The second names are Postfix's pre-2.3 spellings, still accepted.
            "reject_non_fqdn_helo_hostname" | "reject_non_fqdn_hostname" => {
                Restriction::RejectNonFqdnHelo
            }
            "reject_invalid_helo_hostname" | "reject_invalid_hostname" => {
                Restriction::RejectInvalidHelo
            }
            "reject_unlisted_recipient" | "check_recipient_maps" => {
                Restriction::RejectUnlistedRecipient
            }
            "check_client_access" => access(AccessKind::Client, arg(&lower)?)?,
            "check_reverse_client_hostname_access" => {
                access(AccessKind::ReverseClient, arg(&lower)?)?
            }
            "reject_unknown_forward_client_hostname" => Restriction::RejectUnknownForwardClient,
            "reject_plaintext_session" => Restriction::RejectPlaintextSession,
            "permit_mx_backup" => Restriction::PermitMxBackup,
            "sleep" => {
                let text = arg(&lower)?;
                let seconds = text
                    .parse()
                    .map_err(|_| RestrictionError::MissingArgument {
                        param,
                        name: format!("sleep (a number of seconds, not \"{text}\")"),
                    })?;
                Restriction::Sleep(seconds)
            }
            "permit_naked_ip_address" => {
                log::warn!(
                    "{param}: restriction permit_naked_ip_address is deprecated; use \
                     permit_mynetworks or permit_sasl_authenticated instead"
                );
                Restriction::PermitNakedIpAddress
            }
            "reject_maps_rbl" => {
                log::warn!(
                    "{param}: restriction reject_maps_rbl is deprecated; use reject_rbl_client \
                     DOMAIN instead (it checks the maps_rbl_domains lists)"
                );
                Restriction::RejectMapsRbl
            }
            "check_relay_domains" => {
                log::warn!(
                    "{param}: restriction check_relay_domains was removed in Postfix 2.2; \
                     it acts as reject_unauth_destination"
                );
                Restriction::CheckRelayDomains
            }
            "check_helo_access" => access(AccessKind::Helo, arg(&lower)?)?,
            "check_sender_access" => access(AccessKind::Sender, arg(&lower)?)?,
            "check_recipient_access" => access(AccessKind::Recipient, arg(&lower)?)?,
            "check_etrn_access" => access(AccessKind::Etrn, arg(&lower)?)?,
            // The second names are Postfix's older spellings, still accepted.
            "reject_unknown_client_hostname" | "reject_unknown_client" => {
                Restriction::RejectUnknownClient
            }
            "reject_unknown_reverse_client_hostname" => Restriction::RejectUnknownReverseClient,
            "reject_unknown_helo_hostname" | "reject_unknown_hostname" => {
                Restriction::RejectUnknownHelo
            }
            "reject_unverified_sender" => Restriction::Unverified("reject_unverified_sender"),
            "reject_unverified_recipient" => Restriction::Unverified("reject_unverified_recipient"),
            "check_policy_service" => {
                let server = arg(&lower)?;
                let spec =
                    policy_service::PolicySpec::parse(&server, ctx.policy).map_err(|reason| {
                        RestrictionError::Policy {
                            param,
                            server: server.clone(),
                            reason,
                        }
                    })?;
                Restriction::CheckPolicyService(Arc::new(policy_service::PolicyClient::new(spec)))
            }
            "check_sasl_access" => {
                let table = arg(&lower)?;
                match access(AccessKind::Client, table)? {
                    Restriction::CheckAccess { table, .. } => Restriction::CheckSaslAccess(table),
                    other => other,
                }
            }
            "reject_unlisted_sender" => Restriction::RejectUnlistedSender,
            "reject_multi_recipient_bounce" => Restriction::RejectMultiRecipientBounce,
            "permit_inet_interfaces" => Restriction::PermitInetInterfaces,
            "reject_unauth_pipelining" => Restriction::RejectUnauthPipelining,
            "defer_if_permit" => Restriction::DeferIfPermit,
            "defer_if_reject" => Restriction::DeferIfReject,
            "permit_tls_clientcerts" => Restriction::PermitTlsClientcerts { all: false },
            "permit_tls_all_clientcerts" => Restriction::PermitTlsClientcerts { all: true },
            "check_ccert_access" => match access(AccessKind::Client, arg(&lower)?)? {
                Restriction::CheckAccess { table, .. } => Restriction::CheckCcertAccess(table),
                other => other,
            },
            w => match login_maps::Mismatch::from_name(w) {
                Some(m) => Restriction::SenderLoginMismatch(m),
                None if ctx.classes.iter().any(|c| c.eq_ignore_ascii_case(w)) => {
                    Restriction::Class(w.to_string())
                }
                None if word.contains(':') => match access(AccessKind::Client, word.to_string())? {
                    Restriction::CheckAccess { table, .. } => Restriction::StageAccess(table),
                    other => other,
                },
                None => {
                    return Err(RestrictionError::Unknown {
                        param,
                        name: word.to_string(),
                    })
                }
            },
        };
        out.push(r);
    }
    Ok(out)
}

/// Splits at commas and white space outside `{ }`, so `inline:{ a=REJECT go away }`
/// stays one word (Postfix's list syntax).
pub fn split_words(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut depth = 0u32;
    for c in value.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        if depth == 0 && (c == ',' || c.is_whitespace()) {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
        } else {
            cur.push(c);
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(spec: &str) -> Result<Arc<dyn Map>, String> {
        rostfix_maps::open_map(spec)
            .map(Arc::from)
            .map_err(|e| e.to_string())
    }

    fn names(v: &[Restriction]) -> Vec<&'static str> {
        v.iter().map(Restriction::name).collect()
    }

    #[test]
    fn parses_postfix_defaults_and_arguments() {
        let l = parse_list(
            "smtpd_relay_restrictions",
            "permit_mynetworks, permit_sasl_authenticated,defer_unauth_destination",
            &open,
        )
        .unwrap();
        assert_eq!(
            names(&l),
            vec![
                "permit_mynetworks",
                "permit_sasl_authenticated",
                "defer_unauth_destination"
            ]
        );
        let l = parse_list(
            "smtpd_recipient_restrictions",
            "check_recipient_access inline:{a@b=REJECT} REJECT_RBL_CLIENT zen.test=127.0.0.2\n reject_rhsbl_sender rhs.test. reject_non_fqdn_hostname reject",
            &open,
        )
        .unwrap();
        assert_eq!(
            names(&l),
            vec![
                "check_recipient_access",
                "reject_rbl_client",
                "reject_rhsbl_sender",
                "reject_non_fqdn_helo_hostname",
                "reject"
            ]
        );
        match &l[1] {
            Restriction::Dnsxl(x) => {
                assert_eq!(x.domain, "zen.test");
                assert!(x.want.is_some());
            }
            other => panic!("{other:?}"),
        }
        match &l[2] {
            Restriction::Dnsxl(x) => {
                assert_eq!(x.domain, "rhs.test");
                assert!(x.want.is_none());
            }
            other => panic!("{other:?}"),
        }
        assert!(parse_list("x", "", &open).unwrap().is_empty());
        assert_eq!(
            split_words("a, check_x inline:{ k=REJECT go away, j=OK },b"),
            vec!["a", "check_x", "inline:{ k=REJECT go away, j=OK }", "b"]
        );
    }

    #[test]
    fn dns_names_parse() {
        let l = parse_list(
            "smtpd_client_restrictions",
            "reject_unknown_client_hostname reject_unknown_client \
             reject_unknown_reverse_client_hostname reject_unknown_helo_hostname \
             reject_unknown_hostname permit_dnswl_client wl.test \
             permit_rhswl_client rwl.test reject_rhsbl_client a.test \
             reject_rhsbl_reverse_client b.test reject_rhsbl_helo c.test \
             reject_rhsbl_recipient d.test reject_rbl e.test \
             check_helo_mx_access inline:{x=OK} check_reverse_client_hostname_ns_access inline:{x=OK} \
             check_recipient_a_access inline:{x=OK} reject_unverified_sender \
             reject_unverified_recipient",
            &open,
        )
        .unwrap();
        assert_eq!(
            names(&l),
            vec![
                "reject_unknown_client_hostname",
                "reject_unknown_client_hostname",
                "reject_unknown_reverse_client_hostname",
                "reject_unknown_helo_hostname",
                "reject_unknown_helo_hostname",
                "permit_dnswl_client",
                "permit_rhswl_client",
                "reject_rhsbl_client",
                "reject_rhsbl_reverse_client",
                "reject_rhsbl_helo",
                "reject_rhsbl_recipient",
                "reject_rbl_client",
                "check_helo_mx_access",
                "check_reverse_client_hostname_ns_access",
                "check_recipient_a_access",
                "reject_unverified_sender",
                "reject_unverified_recipient",
            ]
        );
        assert_eq!(l.iter().filter(|r| r.uses_dns()).count(), 12);
        let e = parse_list("p", "reject_rbl_client bl.test=127.0.0.[9..2]", &open).unwrap_err();
        assert!(matches!(e, RestrictionError::BadArgument { .. }), "{e}");
        let e = parse_list("p", "check_client_mx_access", &open).unwrap_err();
        assert!(matches!(e, RestrictionError::MissingArgument { .. }), "{e}");
    }

    #[test]
    fn errors_name_the_parameter() {
        let e = parse_list("smtpd_client_restrictions", "permit, rejetc", &open).unwrap_err();
        assert_eq!(
            e.to_string(),
            "smtpd_client_restrictions: unknown smtpd restriction: \"rejetc\""
        );
        let e = parse_list("smtpd_sender_restrictions", "check_sender_access", &open).unwrap_err();
        assert!(matches!(e, RestrictionError::MissingArgument { .. }));
        let e = parse_list(
            "smtpd_sender_restrictions",
            "check_sender_access nosuchtype:/x",
            &open,
        )
        .unwrap_err();
        assert!(e.to_string().contains("nosuchtype:/x"), "{e}");
    }
}

#[cfg(test)]
mod postfix_names {
    use super::*;

    /// Every restriction name Postfix 3.x's smtpd accepts (smtpd_check.c), with a
    /// sample argument where it takes one: each must parse, never stop smtpd.
    const POSTFIX_NAMES: &[&str] = &[
        "permit",
        "reject",
        "defer",
        "warn_if_reject",
        "defer_if_permit",
        "defer_if_reject",
        "reject_unauth_pipelining",
        "permit_mynetworks",
        "permit_sasl_authenticated",
        "permit_tls_clientcerts",
        "permit_tls_all_clientcerts",
        "check_ccert_access inline:{x=OK}",
        "check_client_access inline:{x=OK}",
        "check_reverse_client_hostname_access inline:{x=OK}",
        "check_client_a_access inline:{x=OK}",
        "check_client_mx_access inline:{x=OK}",
        "check_client_ns_access inline:{x=OK}",
        "check_reverse_client_hostname_a_access inline:{x=OK}",
        "check_reverse_client_hostname_mx_access inline:{x=OK}",
        "check_reverse_client_hostname_ns_access inline:{x=OK}",
        "check_helo_access inline:{x=OK}",
        "check_helo_a_access inline:{x=OK}",
        "check_helo_mx_access inline:{x=OK}",
        "check_helo_ns_access inline:{x=OK}",
        "check_sender_access inline:{x=OK}",
        "check_sender_a_access inline:{x=OK}",
        "check_sender_mx_access inline:{x=OK}",
        "check_sender_ns_access inline:{x=OK}",
        "check_recipient_access inline:{x=OK}",
        "check_recipient_a_access inline:{x=OK}",
        "check_recipient_mx_access inline:{x=OK}",
        "check_recipient_ns_access inline:{x=OK}",
        "check_sasl_access inline:{x=OK}",
        "check_policy_service inet:127.0.0.1:9",
        "reject_unknown_client_hostname",
        "reject_unknown_reverse_client_hostname",
        "reject_unknown_forward_client_hostname",
        "reject_unknown_client",
        "reject_invalid_helo_hostname",
        "reject_invalid_hostname",
        "reject_non_fqdn_helo_hostname",
        "reject_non_fqdn_hostname",
        "reject_unknown_helo_hostname",
        "reject_unknown_hostname",
        "reject_non_fqdn_sender",
        "reject_non_fqdn_recipient",
        "reject_unknown_sender_domain",
        "reject_unknown_recipient_domain",
        "reject_unlisted_sender",
        "reject_unlisted_recipient",
        "check_recipient_maps",
        "reject_unverified_sender",
        "reject_unverified_recipient",
        "reject_rbl_client zen.test",
        "reject_rbl zen.test",
        "reject_rhsbl_client rhs.test",
        "reject_rhsbl_reverse_client rhs.test",
        "reject_rhsbl_helo rhs.test",
        "reject_rhsbl_sender rhs.test",
        "reject_rhsbl_recipient rhs.test",
        "permit_dnswl_client wl.test",
        "permit_rhswl_client wl.test",
        "reject_unauth_destination",
        "defer_unauth_destination",
        "permit_auth_destination",
        "permit_mx_backup",
        "reject_multi_recipient_bounce",
        "reject_sender_login_mismatch",
        "reject_authenticated_sender_login_mismatch",
        "reject_known_sender_login_mismatch",
        "reject_unauthenticated_sender_login_mismatch",
        "permit_inet_interfaces",
        "reject_plaintext_session",
        "sleep 1",
        "permit_naked_ip_address",
        "reject_maps_rbl",
        "check_relay_domains",
    ];

    #[test]
    fn every_postfix_restriction_name_parses() {
        let open = |spec: &str| {
            rostfix_maps::open_map(spec)
                .map(Arc::from)
                .map_err(|e| e.to_string())
        };
        let unknown: Vec<&str> = POSTFIX_NAMES
            .iter()
            .copied()
            .filter(|name| parse_list("smtpd_recipient_restrictions", name, &open).is_err())
            .collect();
        assert!(unknown.is_empty(), "not accepted: {unknown:?}");
    }
}
