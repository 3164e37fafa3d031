//! The attributes of a policy delegation request, in Postfix's order and with
//! Postfix's names (SMTPD_POLICY_README "Protocol description"), from what the
//! session knows. Attributes Rostfix has no value for yet are sent empty, as Postfix
//! sends them for a session that lacks them: queue_id before DATA (the queue file is
//! created at DATA, not at MAIL), client_port/server_address/server_port, and the
//! ccert_* ones (client certificates are not requested).

use super::eval::Facts;

/// Session facts only policy servers (and a few restrictions) look at.
#[derive(Debug, Clone, Default)]
pub struct SessionFacts<'a> {
    /// The command being checked: CONNECT, EHLO, HELO, MAIL, RCPT, DATA,
    /// END-OF-MESSAGE, VRFY, ETRN.
    pub protocol_state: &'static str,
    /// SMTP or ESMTP (Postfix sends the protocol without the S/A suffixes).
    pub protocol_name: &'static str,
    pub queue_id: &'a str,
    /// Recipients accepted so far.
    pub recipient_count: usize,
    /// A value that is the same for every request of one message.
    pub instance: String,
    pub sasl_method: Option<&'a str>,
    /// MAIL FROM's AUTH= parameter.
    pub sasl_sender: Option<&'a str>,
    /// MAIL FROM's SIZE=, or the received size at end of data.
    pub size: u64,
    pub encryption_protocol: Option<&'a str>,
    pub encryption_cipher: Option<&'a str>,
    pub encryption_keysize: u32,
    /// smtpd runs under stress (master's `-o stress=yes`).
    pub stress: bool,
    pub compatibility_level: &'a str,
    pub mail_version: &'a str,
    /// Improper pipelining was seen (reject_unauth_pipelining).
    pub ill_pipelining: bool,
    /// The client's TLS certificate (smtpd_tls_ask_ccert).
    pub ccert: Option<&'a crate::ccert::ClientCert>,
    /// The ETRN command's domain, while smtpd_etrn_restrictions run.
    pub etrn_domain: Option<&'a str>,
}

/// The request for `facts`, ending with the server's policy_context.
pub fn request_attributes(f: &Facts<'_>, policy_context: &str) -> Vec<(&'static str, String)> {
    let s = &f.session;
    let opt = |v: Option<&str>| v.unwrap_or("").to_string();
    let cert = |field: fn(&crate::ccert::ClientCert) -> &String| {
        s.ccert.map(field).cloned().unwrap_or_default()
    };
    // Postfix sends the names only of a trusted certificate, xtext-quoted with no
    // extra specials: `=` stays as it is, so "+3D" (only ever from `=`) is undone.
    let trusted_name = |field: fn(&crate::ccert::ClientCert) -> &String| {
        s.ccert
            .filter(|c| c.trusted)
            .map(|c| rostfix_proto::xtext(field(c)).replace("+3D", "="))
            .unwrap_or_default()
    };
    // Postfix sends recipient_count only once the recipients are final.
    let rcpt_count = match s.protocol_state {
        "DATA" | "END-OF-MESSAGE" => s.recipient_count,
        _ => 0,
    };
    vec![
        ("request", "smtpd_access_policy".into()),
        ("protocol_state", s.protocol_state.into()),
        ("protocol_name", s.protocol_name.into()),
        ("client_address", f.client_addr.clone()),
        ("client_name", f.client_name.into()),
        ("client_port", String::new()),
        ("reverse_client_name", f.client_name.into()),
        ("server_address", String::new()),
        ("server_port", String::new()),
        ("helo_name", opt(f.helo)),
        ("sender", opt(f.sender)),
        ("recipient", opt(f.recipient)),
        ("recipient_count", rcpt_count.to_string()),
        ("queue_id", s.queue_id.into()),
        ("instance", s.instance.clone()),
        ("size", s.size.to_string()),
        ("etrn_domain", opt(s.etrn_domain)),
        ("stress", if s.stress { "yes" } else { "" }.into()),
        ("sasl_method", opt(s.sasl_method)),
        ("sasl_username", opt(f.sasl_username)),
        ("sasl_sender", opt(s.sasl_sender)),
        ("ccert_subject", trusted_name(|c| &c.subject_cn)),
        ("ccert_issuer", trusted_name(|c| &c.issuer_cn)),
        ("ccert_fingerprint", cert(|c| &c.cert_fingerprint)),
        ("ccert_pubkey_fingerprint", cert(|c| &c.pkey_fingerprint)),
        ("encryption_protocol", opt(s.encryption_protocol)),
        ("encryption_cipher", opt(s.encryption_cipher)),
        ("encryption_keysize", s.encryption_keysize.to_string()),
        ("policy_context", policy_context.into()),
        ("compatibility_level", s.compatibility_level.into()),
        ("mail_version", s.mail_version.into()),
    ]
}
