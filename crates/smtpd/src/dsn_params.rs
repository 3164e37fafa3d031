//! The ESMTP parameters of MAIL FROM and RCPT TO: SIZE (RFC 1870), BODY (RFC 6152),
//! SMTPUTF8 (RFC 6531), DSN's RET, ENVID, NOTIFY and ORCPT (RFC 3461), REQUIRETLS
//! (RFC 8689), Postfix's XVERP (for smtpd_authorized_verp_clients only), and AUTH=
//! (RFC 4954, accepted and ignored here: the AUTH layer may use it).
//!
//! Each function checks the parameters the client sent and returns either what the
//! transaction keeps or the exact reply to send. xtext (RFC 3461 4), NOTIFY and ORCPT
//! are decoded by rostfix_proto::dsn_args (shared with milters' ADDRCPT_PAR);
//! decoded ENVID and ORCPT values must be printable ASCII (or, for a UTF-8 ORCPT under
//! SMTPUTF8, free of control characters), so nothing a client sends can inject a line
//! break into a queue file record, a log line or a DSN.
//!
//! The queue-file attributes written from [`MailParams`] are listed in
//! docs/queue-format.md: `body_type`, `smtputf8`, `dsn_ret`, `dsn_envid`.

use crate::reply::Reply;
pub use rostfix_proto::dsn_args::decode_xtext;
use rostfix_proto::dsn_args::{parse_notify, parse_orcpt, printable_ascii};

/// RFC 3461 4.4: ENVID is at most 100 characters.
const MAX_ENVID: usize = 100;

/// What MAIL FROM's parameters said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailParams {
    /// SIZE= as declared.
    pub size: Option<u64>,
    /// `7BIT` or `8BITMIME`, uppercased, when BODY= was given.
    pub body: Option<&'static str>,
    /// SMTPUTF8 was given.
    pub smtputf8: bool,
    /// `FULL` or `HDRS`.
    pub ret: Option<&'static str>,
    /// Decoded ENVID.
    pub envid: Option<String>,
    /// REQUIRETLS (RFC 8689): deliver only over verified TLS.
    pub requiretls: bool,
    /// XVERP: the two checked delimiter characters.
    pub verp: Option<[char; 2]>,
}

impl MailParams {
    /// The queue file attributes for these parameters (see docs/queue-format.md).
    pub fn attributes(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if let Some(b) = self.body {
            out.push(("body_type".to_string(), b.to_string()));
        }
        if self.smtputf8 {
            out.push(("smtputf8".to_string(), "1".to_string()));
        }
        if let Some(r) = self.ret {
            out.push(("dsn_ret".to_string(), r.to_string()));
        }
        if let Some(e) = &self.envid {
            out.push(("dsn_envid".to_string(), e.clone()));
        }
        if self.requiretls {
            out.push(("requiretls".to_string(), "1".to_string()));
        }
        if let Some([a, b]) = self.verp {
            out.push((rostfix_queue::VERP_ATTR.to_string(), format!("{a}{b}")));
        }
        out
    }
}

/// What RCPT TO's parameters said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RcptParams {
    /// `NEVER`, or a comma list of `SUCCESS`, `FAILURE`, `DELAY` in that order; "" when
    /// NOTIFY was not given.
    pub notify: String,
    /// The decoded ORCPT address (its type is rfc822, or utf-8 with SMTPUTF8).
    pub orcpt: Option<String>,
}

/// XVERP for a client in smtpd_authorized_verp_clients: default_verp_delimiters and
/// verp_delimiter_filter.
#[derive(Debug, Clone, Copy)]
pub struct VerpPolicy<'a> {
    pub default: &'a str,
    pub filter: &'a str,
}

/// Limits and switches the MAIL parameters are checked against.
#[derive(Debug, Clone, Copy)]
pub struct ParamPolicy<'a> {
    /// message_size_limit; 0 = none.
    pub size_limit: u64,
    /// smtputf8_enable.
    pub smtputf8_enable: bool,
    /// REQUIRETLS was offered in this session (TLS active, rostfix_requiretls_enable):
    /// otherwise the parameter is as unknown as any other.
    pub requiretls_offered: bool,
    /// XVERP allowed for this client (else the parameter is unknown, as in Postfix).
    pub verp: Option<VerpPolicy<'a>>,
}

fn syntax(what: &str) -> Reply {
    Reply::new(501, "5.5.4", format!("Bad {what} parameter syntax"))
}

fn unsupported(key: &str) -> Reply {
    Reply::new(555, "5.5.4", format!("Unsupported option: {key}"))
}

/// Checks MAIL FROM's parameters.
pub fn mail_params(
    params: &[(String, Option<String>)],
    policy: ParamPolicy,
) -> Result<MailParams, Reply> {
    let mut out = MailParams::default();
    for (key, value) in params {
        let value = value.as_deref();
        match key.as_str() {
            "SIZE" => {
                let v = value
                    .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                    .ok_or_else(|| Reply::new(501, "5.5.4", "Bad message size syntax"))?;
                // A number too large for u64 is certainly over any limit.
                let size = v.parse::<u64>().unwrap_or(u64::MAX);
                if policy.size_limit > 0 && size > policy.size_limit {
                    return Err(Reply::new(552, "5.3.4", "Message size exceeds fixed limit"));
                }
                out.size = Some(size);
            }
            "BODY" => {
                out.body = Some(match value {
                    Some(v) if v.eq_ignore_ascii_case("7BIT") => "7BIT",
                    Some(v) if v.eq_ignore_ascii_case("8BITMIME") => "8BITMIME",
                    _ => return Err(Reply::new(501, "5.5.4", "Unsupported BODY parameter value")),
                });
            }
            "XVERP" if policy.verp.is_some() => {
                let Some(verp) = policy.verp else {
                    return Err(unsupported(key));
                };
                let delims = value.unwrap_or(verp.default);
                let pair = rostfix_queue::verify_delimiters(delims, verp.filter).map_err(|_| {
                    Reply::new(
                        501,
                        "5.5.4",
                        format!("Error: XVERP needs two characters from {}", verp.filter),
                    )
                })?;
                out.verp = Some(pair);
            }
            "REQUIRETLS" if policy.requiretls_offered => {
                if value.is_some() {
                    return Err(syntax("REQUIRETLS"));
                }
                out.requiretls = true;
            }
            "SMTPUTF8" if policy.smtputf8_enable => {
                if value.is_some() {
                    return Err(syntax("SMTPUTF8"));
                }
                out.smtputf8 = true;
            }
            "RET" => {
                if out.ret.is_some() {
                    return Err(Reply::new(501, "5.5.4", "Duplicate RET parameter"));
                }
                out.ret = Some(match value {
                    Some(v) if v.eq_ignore_ascii_case("FULL") => "FULL",
                    Some(v) if v.eq_ignore_ascii_case("HDRS") => "HDRS",
                    _ => return Err(syntax("RET")),
                });
            }
            "ENVID" => {
                if out.envid.is_some() {
                    return Err(Reply::new(501, "5.5.4", "Duplicate ENVID parameter"));
                }
                let decoded = value
                    .and_then(decode_xtext)
                    .filter(|d| !d.is_empty() && d.len() <= MAX_ENVID && printable_ascii(d))
                    .ok_or_else(|| syntax("ENVID"))?;
                out.envid = Some(decoded);
            }
            // RFC 4954 5: AUTH=<mailbox> or AUTH=<>; meaningful only to an
            // authenticated relay chain, which this server does not trust by default.
            "AUTH" if value.is_some_and(|v| decode_xtext(v).is_some()) => {}
            "AUTH" => return Err(syntax("AUTH")),
            other => return Err(unsupported(other)),
        }
    }
    Ok(out)
}

/// Checks RCPT TO's parameters; `smtputf8` says whether MAIL declared SMTPUTF8.
pub fn rcpt_params(
    params: &[(String, Option<String>)],
    smtputf8: bool,
) -> Result<RcptParams, Reply> {
    let mut out = RcptParams::default();
    let mut seen_notify = false;
    for (key, value) in params {
        let value = value.as_deref();
        match key.as_str() {
            "NOTIFY" => {
                if seen_notify {
                    return Err(Reply::new(501, "5.5.4", "Duplicate NOTIFY parameter"));
                }
                seen_notify = true;
                out.notify = value
                    .and_then(parse_notify)
                    .ok_or_else(|| syntax("NOTIFY"))?;
            }
            "ORCPT" => {
                if out.orcpt.is_some() {
                    return Err(Reply::new(501, "5.5.4", "Duplicate ORCPT parameter"));
                }
                out.orcpt = Some(
                    value
                        .and_then(|v| parse_orcpt(v, smtputf8))
                        .ok_or_else(|| syntax("ORCPT"))?,
                );
            }
            other => return Err(unsupported(other)),
        }
    }
    Ok(out)
}

/// RFC 6531 3.4: without SMTPUTF8 on MAIL, addresses must be ASCII.
pub fn needs_smtputf8(address: &str) -> bool {
    !address.is_ascii()
}

/// The reply for a UTF-8 address in a transaction that did not declare SMTPUTF8.
pub fn utf8_without_smtputf8() -> Reply {
    Reply::new(
        553,
        "5.6.7",
        "Must declare SMTPUTF8 to send unicode address",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn kv(pairs: &[(&str, Option<&str>)]) -> Vec<(String, Option<String>)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
            .collect()
    }

    const POLICY: ParamPolicy = ParamPolicy {
        size_limit: 1000,
        smtputf8_enable: true,
        requiretls_offered: true,
        verp: Some(VerpPolicy {
            default: "+=",
            filter: "-=+",
        }),
    };

    fn code(r: Result<impl std::fmt::Debug, Reply>) -> String {
        r.err().map(|r| r.log_text()).unwrap_or_default()
    }

    #[test]
    fn mail_dsn_and_friends() {
        let m = mail_params(
            &kv(&[
                ("SIZE", Some("10")),
                ("BODY", Some("8bitmime")),
                ("SMTPUTF8", None),
                ("RET", Some("hdrs")),
                ("ENVID", Some("QQ314159+2Bx")),
            ]),
            POLICY,
        )
        .unwrap();
        assert_eq!(m.size, Some(10));
        assert_eq!(m.body, Some("8BITMIME"));
        assert!(m.smtputf8);
        assert_eq!(m.ret, Some("HDRS"));
        assert_eq!(m.envid.as_deref(), Some("QQ314159+x"));
        assert_eq!(
            m.attributes(),
            vec![
                ("body_type".into(), "8BITMIME".into()),
                ("smtputf8".into(), "1".into()),
                ("dsn_ret".into(), "HDRS".into()),
                ("dsn_envid".into(), "QQ314159+x".into()),
            ]
        );
    }

    #[test]
    fn requiretls_only_when_offered() {
        let m = mail_params(&kv(&[("REQUIRETLS", None)]), POLICY).unwrap();
        assert!(m.requiretls);
        assert_eq!(m.attributes(), vec![("requiretls".into(), "1".into())]);
        assert!(code(mail_params(&kv(&[("REQUIRETLS", Some("x"))]), POLICY)).starts_with("501"));
        let plain = ParamPolicy {
            requiretls_offered: false,
            ..POLICY
        };
        assert!(code(mail_params(&kv(&[("REQUIRETLS", None)]), plain)).starts_with("555 5.5.4"));
    }

    #[test]
    fn xverp_only_for_authorized_clients_with_filtered_delimiters() {
        let m = mail_params(&kv(&[("XVERP", None)]), POLICY).unwrap();
        assert_eq!(m.verp, Some(['+', '=']));
        assert_eq!(
            m.attributes(),
            vec![("verp_delimiters".into(), "+=".into())]
        );
        let m = mail_params(&kv(&[("XVERP", Some("-="))]), POLICY).unwrap();
        assert_eq!(m.verp, Some(['-', '=']));
        let bad = code(mail_params(&kv(&[("XVERP", Some("#="))]), POLICY));
        assert_eq!(bad, "501 5.5.4 Error: XVERP needs two characters from -=+");
        assert!(code(mail_params(&kv(&[("XVERP", Some("+"))]), POLICY)).starts_with("501 5.5.4"));
        let outsider = ParamPolicy {
            verp: None,
            ..POLICY
        };
        assert_eq!(
            code(mail_params(&kv(&[("XVERP", None)]), outsider)),
            "555 5.5.4 Unsupported option: XVERP"
        );
    }

    #[test]
    fn mail_errors() {
        assert!(code(mail_params(&kv(&[("SIZE", Some("1001"))]), POLICY)).starts_with("552 5.3.4"));
        assert!(code(mail_params(&kv(&[("SIZE", Some("x"))]), POLICY)).starts_with("501 5.5.4"));
        assert!(code(mail_params(&kv(&[("BODY", Some("BINARYMIME"))]), POLICY)).starts_with("501"));
        assert!(code(mail_params(&kv(&[("RET", Some("ALL"))]), POLICY)).starts_with("501"));
        assert!(code(mail_params(
            &kv(&[("RET", Some("FULL")), ("RET", Some("FULL"))]),
            POLICY
        ))
        .starts_with("501"));
        assert!(code(mail_params(&kv(&[("ENVID", Some("a+0Db"))]), POLICY)).starts_with("501"));
        assert!(code(mail_params(&kv(&[("ENVID", Some("a+Z1"))]), POLICY)).starts_with("501"));
        assert!(code(mail_params(&kv(&[("XYZ", None)]), POLICY)).starts_with("555 5.5.4"));
        let off = ParamPolicy {
            smtputf8_enable: false,
            requiretls_offered: false,
            ..POLICY
        };
        assert!(code(mail_params(&kv(&[("SMTPUTF8", None)]), off)).starts_with("555"));
        assert!(mail_params(&kv(&[("AUTH", Some("<>"))]), POLICY).is_ok());
    }

    #[test]
    fn rcpt_notify_and_orcpt() {
        let r = rcpt_params(
            &kv(&[
                ("NOTIFY", Some("delay,Success")),
                ("ORCPT", Some("rfc822;a+2Bb@x.example")),
            ]),
            false,
        )
        .unwrap();
        assert_eq!(r.notify, "SUCCESS,DELAY");
        assert_eq!(r.orcpt.as_deref(), Some("a+b@x.example"));
        assert_eq!(
            rcpt_params(&kv(&[("NOTIFY", Some("NEVER"))]), false)
                .unwrap()
                .notify,
            "NEVER"
        );
        for bad in ["NEVER,SUCCESS", "", "FAILURE,FAILURE", "SOMETIMES"] {
            assert!(
                rcpt_params(&kv(&[("NOTIFY", Some(bad))]), false).is_err(),
                "{bad}"
            );
        }
        assert!(rcpt_params(&kv(&[("ORCPT", Some("x400;foo"))]), false).is_err());
        assert!(rcpt_params(&kv(&[("ORCPT", Some("rfc822;a+0A@b"))]), false).is_err());
        assert!(rcpt_params(&kv(&[("ORCPT", Some("utf-8;m\\x{FC}ller@b"))]), false).is_err());
        assert_eq!(
            rcpt_params(&kv(&[("ORCPT", Some("utf-8;m\\x{FC}ller@b"))]), true)
                .unwrap()
                .orcpt
                .as_deref(),
            Some("müller@b")
        );
        assert!(rcpt_params(&kv(&[("SIZE", Some("1"))]), false).is_err());
    }

    #[test]
    fn xtext() {
        assert_eq!(decode_xtext("abc+2B+3D").as_deref(), Some("abc+="));
        assert_eq!(decode_xtext("a=b"), None);
        assert_eq!(decode_xtext("a+2"), None);
        assert_eq!(decode_xtext("a b"), None);
        assert!(needs_smtputf8("müller@x"));
        assert!(!needs_smtputf8("m@x"));
    }

    proptest! {
        #[test]
        fn decoded_values_never_hold_controls(v in ".{0,60}") {
            let params = vec![("ENVID".to_string(), Some(v.clone()))];
            if let Ok(m) = mail_params(&params, POLICY) {
                prop_assert!(!m.envid.unwrap_or_default().chars().any(char::is_control));
            }
            let params = vec![("ORCPT".to_string(), Some(format!("utf-8;{v}")))];
            if let Ok(r) = rcpt_params(&params, true) {
                prop_assert!(!r.orcpt.unwrap_or_default().chars().any(char::is_control));
            }
        }
    }
}
