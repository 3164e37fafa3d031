//! What one transaction sends, and the MAIL FROM / RCPT TO parameters that depend on
//! what the server offers: SIZE, BODY=8BITMIME, SMTPUTF8, and the DSN parameters
//! (RET, ENVID on MAIL; NOTIFY, ORCPT on RCPT, RFC 3461) passed on only when the server
//! announces DSN. Also the `TLS-Required: No` check over the header section (content.rs
//! scans the message for it and for the 8-bit data that decides BODY=8BITMIME and
//! SMTPUTF8).
//!
//! 8BITMIME: a message with 8-bit content goes to a server without 8BITMIME converted
//! to 7-bit MIME (quoted-printable, `downgrade.rs`), as Postfix does by default; with
//! `disable_mime_output_conversion = yes` it goes as it is, without a BODY parameter.
//! SMTPUTF8: a message that needs it (UTF-8 in an envelope address, or received with
//! SMTPUTF8 and UTF-8 in its headers) is bounced with 5.6.7 when the server lacks
//! SMTPUTF8, as Postfix does.

/// One recipient as the server should see it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rcpt {
    pub address: String,
    /// The original recipient for ORCPT (empty: none).
    pub orig: String,
    /// NOTIFY as received (`SUCCESS,FAILURE`, `NEVER`; empty: not given).
    pub notify: String,
}

/// Everything one transaction carries.
#[derive(Debug, Clone, Copy)]
pub struct Envelope<'a> {
    pub sender: &'a str,
    pub recipients: &'a [Rcpt],
    /// What goes after DATA, streamed (content.rs).
    pub content: &'a crate::content::Content<'a>,
    /// DSN RET (`FULL`/`HDRS`) and ENVID as received, if any.
    pub ret: Option<&'a str>,
    pub envid: Option<&'a str>,
    /// The content has 8-bit bytes or was received with BODY=8BITMIME.
    pub eight_bit: bool,
    /// The message needs SMTPUTF8 (see module doc).
    pub smtputf8: bool,
    /// Downgrade 8-bit content to 7-bit MIME for a server without 8BITMIME.
    pub mime_downgrade: bool,
    /// The original client, sent with XFORWARD when the server offers it
    /// (smtp_send_xforward_command = yes); None: never sent.
    pub xforward: Option<&'a crate::xforward::Attributes>,
    /// An address verification probe: MAIL and RCPT only, then RSET (session.rs).
    pub probe: bool,
    /// Received with REQUIRETLS (RFC 8689): sent only over verified TLS to a server
    /// that offers REQUIRETLS, with the parameter passed on (session.rs checks).
    pub requiretls: bool,
    /// The message carries `TLS-Required: No` (RFC 8689 5) and no REQUIRETLS: the
    /// recipient domain's TLS policies (DANE, MTA-STS, policy table) are not enforced;
    /// TLS is still tried (deliver.rs).
    pub tls_optional: bool,
}

/// Which extensions the server announced that change the commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Offers {
    pub dsn: bool,
    pub eight_bit_mime: bool,
    pub smtputf8: bool,
    /// SIZE announced (Some(0): without a limit).
    pub size: Option<u64>,
    pub pipelining: bool,
    /// XFORWARD announced, with the attribute names it takes.
    pub xforward: Option<crate::xforward::Offered>,
    pub requiretls: bool,
}

impl Offers {
    /// From the upper-cased EHLO keyword lines.
    pub fn from_extensions(ext: &[String]) -> Offers {
        let has = |k: &str| ext.iter().any(|e| e.split_whitespace().next() == Some(k));
        Offers {
            dsn: has("DSN"),
            eight_bit_mime: has("8BITMIME"),
            smtputf8: has("SMTPUTF8"),
            pipelining: has("PIPELINING"),
            xforward: crate::xforward::Offered::from_extensions(ext),
            requiretls: has("REQUIRETLS"),
            size: ext.iter().find_map(|e| {
                let mut w = e.split_whitespace();
                (w.next() == Some("SIZE"))
                    .then(|| w.next().and_then(|n| n.parse::<u64>().ok()).unwrap_or(0))
            }),
        }
    }
}

/// `MAIL FROM:<s>` with the parameters the server can take; `size` is the wire size.
pub fn mail_command(env: &Envelope<'_>, offers: &Offers, size: u64) -> String {
    let mut cmd = format!("MAIL FROM:<{}>", env.sender);
    if offers.size.is_some() {
        cmd.push_str(&format!(" SIZE={size}"));
    }
    if env.eight_bit && offers.eight_bit_mime {
        cmd.push_str(" BODY=8BITMIME");
    }
    if env.smtputf8 && offers.smtputf8 {
        cmd.push_str(" SMTPUTF8");
    }
    if env.requiretls && offers.requiretls {
        cmd.push_str(" REQUIRETLS");
    }
    if offers.dsn {
        if let Some(ret) = env.ret.filter(|r| !r.is_empty()) {
            cmd.push_str(&format!(" RET={}", ret.to_ascii_uppercase()));
        }
        if let Some(id) = env.envid.filter(|r| !r.is_empty()) {
            cmd.push_str(&format!(" ENVID={}", xtext(id)));
        }
    }
    cmd
}

/// Whether the header section has `TLS-Required: No` (RFC 8689 section 5; unfolded,
/// case-insensitive).
pub fn tls_required_no(content: &[u8]) -> bool {
    let end = content
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .or_else(|| content.windows(2).position(|w| w == b"\n\n"))
        .unwrap_or(content.len());
    let head = String::from_utf8_lossy(&content[..end]);
    let mut value: Option<String> = None;
    let mut found = false;
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some(v) = value.as_mut() {
                v.push_str(line.trim());
            }
            continue;
        }
        if let Some(v) = value.take() {
            found |= v.trim().eq_ignore_ascii_case("no");
        }
        if let Some((name, rest)) = line.split_once(':') {
            if name.trim().eq_ignore_ascii_case("TLS-Required") {
                value = Some(rest.trim().to_string());
            }
        }
    }
    found || value.is_some_and(|v| v.trim().eq_ignore_ascii_case("no"))
}

/// `RCPT TO:<r>` with NOTIFY and ORCPT when the server offers DSN.
pub fn rcpt_command(r: &Rcpt, offers: &Offers) -> String {
    let mut cmd = format!("RCPT TO:<{}>", r.address);
    if offers.dsn {
        if !r.notify.is_empty() {
            cmd.push_str(&format!(" NOTIFY={}", r.notify.to_ascii_uppercase()));
        }
        if !r.orig.is_empty() {
            // The queue keeps the bare address; an `rfc822;` prefix already present
            // (an ORCPT passed through) is not doubled.
            let addr = r
                .orig
                .strip_prefix("rfc822;")
                .or_else(|| r.orig.strip_prefix("RFC822;"))
                .unwrap_or(&r.orig);
            cmd.push_str(&format!(" ORCPT=rfc822;{}", xtext(addr)));
        }
    }
    cmd
}

/// RFC 3461 xtext: `+XX` for `+`, `=`, and bytes outside `!`..`~`.
pub fn xtext(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if (b'!'..=b'~').contains(&b) && b != b'+' && b != b'=' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("+{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn env<'a>(rcpts: &'a [Rcpt]) -> Envelope<'a> {
        Envelope {
            sender: "a@x.test",
            recipients: rcpts,
            // Leaked: a test's envelope borrows its content for as long as it lives.
            content: Box::leak(Box::new(crate::content::Content::from_bytes(b""))),
            ret: Some("hdrs"),
            envid: Some("id+1=2"),
            eight_bit: true,
            smtputf8: false,
            mime_downgrade: true,
            xforward: None,
            probe: false,
            requiretls: false,
            tls_optional: false,
        }
    }

    #[test]
    fn tls_required_header() {
        assert!(tls_required_no(
            b"Subject: x\r\nTLS-Required: No\r\n\r\nbody"
        ));
        assert!(tls_required_no(b"tls-required:\r\n no\r\n\r\n"));
        assert!(!tls_required_no(b"Subject: x\r\n\r\nTLS-Required: No\r\n"));
        assert!(!tls_required_no(b"TLS-Required: yes\r\n\r\n"));
    }

    #[test]
    fn offers_parse() {
        let ext: Vec<String> = ["PIPELINING", "SIZE 1000", "8BITMIME", "DSN", "AUTH PLAIN"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let o = Offers::from_extensions(&ext);
        assert!(o.dsn && o.eight_bit_mime && o.pipelining && !o.smtputf8);
        assert_eq!(o.size, Some(1000));
        assert_eq!(Offers::from_extensions(&["SIZE".to_string()]).size, Some(0));
    }

    #[test]
    fn mail_and_rcpt_parameters() {
        let r = [Rcpt {
            address: "b@y.test".into(),
            orig: "B@y.test".into(),
            notify: "success,failure".into(),
        }];
        let e = env(&r);
        let all = Offers {
            dsn: true,
            eight_bit_mime: true,
            smtputf8: true,
            size: Some(0),
            pipelining: true,
            xforward: None,
            requiretls: true,
        };
        assert_eq!(
            mail_command(&e, &all, 42),
            "MAIL FROM:<a@x.test> SIZE=42 BODY=8BITMIME RET=HDRS ENVID=id+2B1+3D2"
        );
        assert_eq!(
            rcpt_command(&r[0], &all),
            "RCPT TO:<b@y.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;B@y.test"
        );
        let none = Offers::default();
        assert_eq!(mail_command(&e, &none, 42), "MAIL FROM:<a@x.test>");
        assert_eq!(rcpt_command(&r[0], &none), "RCPT TO:<b@y.test>");
    }

    proptest! {
        #[test]
        fn xtext_is_printable_ascii(s in "\\PC{0,40}") {
            let x = xtext(&s);
            prop_assert!(x.bytes().all(|b| (b'!'..=b'~').contains(&b) && b != b'='));
        }
    }
}
