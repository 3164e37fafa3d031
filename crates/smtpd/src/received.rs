//! The `Received:` header smtpd prepends, and the RFC 5322 date it ends with.
//!
//! The date is written in UTC (`+0000 (UTC)`): inside the chroot there is no zoneinfo,
//! and a correct UTC time is better than a guessed local offset.

use std::time::{SystemTime, UNIX_EPOCH};

/// What the Received: header says about one message.
#[derive(Debug, Clone)]
pub struct ReceivedInfo<'a> {
    /// HELO/EHLO argument, or the client name when the client sent none.
    pub helo: &'a str,
    pub client_name: &'a str,
    /// `192.0.2.1` or `IPv6:2001:db8::1` (the form inside the brackets).
    pub client_literal: &'a str,
    pub myhostname: &'a str,
    /// "SMTP" or "ESMTP".
    pub protocol: &'a str,
    pub queue_id: &'a str,
    /// `TLSv1.3 with cipher ... (256/256 bits)` when the session was encrypted.
    pub tls: Option<&'a str>,
    /// With `tls`: what Postfix says of the client certificate (`Client CN "x",
    /// Issuer "y" (verified OK)`, `No client certificate requested` ...).
    pub client_cert: Option<&'a str>,
    /// Present only when the message has exactly one recipient (privacy, as Postfix).
    pub single_recipient: Option<&'a str>,
    pub unix_time: i64,
}

/// The header with LF line endings and TAB continuation lines, ending in LF.
pub fn received_header(r: &ReceivedInfo<'_>) -> String {
    let mut h = format!(
        "Received: from {} ({} [{}])\n",
        r.helo, r.client_name, r.client_literal
    );
    // Postfix puts the TLS note on its own continuation line before "by".
    if let Some(tls) = r.tls {
        h.push_str(&format!("\t(using {tls})\n"));
        if let Some(cert) = r.client_cert {
            h.push_str(&format!("\t({cert})\n"));
        }
    }
    h.push_str(&format!(
        "\tby {} (Rostfix) with {}",
        r.myhostname, r.protocol
    ));
    // No queue file, no id: a before-queue filter's smtpd assigns it (Postfix too).
    if !r.queue_id.is_empty() {
        h.push_str(&format!(" id {}", r.queue_id));
    }
    match r.single_recipient {
        Some(rcpt) => h.push_str(&format!(
            "\n\tfor <{}>; {}\n",
            rcpt,
            rfc5322_date(r.unix_time)
        )),
        None => h.push_str(&format!(";\n\t{}\n", rfc5322_date(r.unix_time))),
    }
    h
}

/// The client-certificate line's text, as Postfix writes it under
/// smtpd_tls_received_header; `asked` is smtpd_tls_ask_ccert.
pub fn client_cert_note(cert: Option<&crate::ccert::ClientCert>, asked: bool) -> String {
    match cert {
        Some(c) => format!(
            "Client CN \"{}\", Issuer \"{}\" ({})",
            comment_safe(&c.subject_cn),
            comment_safe(&c.issuer_cn),
            if c.trusted {
                "verified OK"
            } else {
                "not verified"
            }
        ),
        None if asked => "Client did not present a certificate".into(),
        None => "No client certificate requested".into(),
    }
}

/// A certificate name made safe inside a header comment's quoted text: control
/// characters dropped, quotes, parentheses and backslashes escaped (the names come
/// from the client).
fn comment_safe(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars().filter(|c| !c.is_control()) {
        if matches!(c, '"' | '(' | ')' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Seconds since the epoch, now.
pub fn now_unix() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(_) => 0,
    }
}

/// `Mon, 23 Nov 2025 09:35:12 +0000 (UTC)`: UTC because the chroot has no zone data
/// and a Received: date must not depend on what libc cached.
pub fn rfc5322_date(unix_time: i64) -> String {
    format!(
        "{} (UTC)",
        rostfix_maillog::date::format_rfc5322(unix_time, 0)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc5322_date(0), "Thu, 1 Jan 1970 00:00:00 +0000 (UTC)");
        assert_eq!(
            rfc5322_date(951_782_400),
            "Tue, 29 Feb 2000 00:00:00 +0000 (UTC)"
        );
        assert_eq!(
            rfc5322_date(1_763_890_512),
            "Sun, 23 Nov 2025 09:35:12 +0000 (UTC)"
        );
        assert_eq!(
            rfc5322_date(4_102_444_799),
            "Thu, 31 Dec 2099 23:59:59 +0000 (UTC)"
        );
    }

    fn info(rcpt: Option<&str>) -> String {
        received_header(&ReceivedInfo {
            helo: "client.example",
            client_name: "unknown",
            client_literal: "192.0.2.1",
            myhostname: "mx.example.com",
            protocol: "ESMTP",
            queue_id: "3F2A81C0D4E",
            tls: None,
            client_cert: None,
            single_recipient: rcpt,
            unix_time: 0,
        })
    }

    #[test]
    fn header_with_one_recipient() {
        assert_eq!(
            info(Some("u@example.com")),
            "Received: from client.example (unknown [192.0.2.1])\n\tby mx.example.com (Rostfix) with ESMTP id 3F2A81C0D4E\n\tfor <u@example.com>; Thu, 1 Jan 1970 00:00:00 +0000 (UTC)\n"
        );
    }

    #[test]
    fn header_without_for() {
        assert_eq!(
            info(None),
            "Received: from client.example (unknown [192.0.2.1])\n\tby mx.example.com (Rostfix) with ESMTP id 3F2A81C0D4E;\n\tThu, 1 Jan 1970 00:00:00 +0000 (UTC)\n"
        );
    }

    #[test]
    fn header_with_tls_note() {
        let h = received_header(&ReceivedInfo {
            helo: "c.example",
            client_name: "unknown",
            client_literal: "127.0.0.1",
            myhostname: "mx.example.com",
            protocol: "ESMTPS",
            queue_id: "ABC",
            single_recipient: Some("u@example.com"),
            tls: Some("TLSv1.3 with cipher TLS13_AES_256_GCM_SHA384 (256/256 bits)"),
            client_cert: Some("No client certificate requested"),
            unix_time: 0,
        });
        assert_eq!(
            h,
            "Received: from c.example (unknown [127.0.0.1])\n\t(using TLSv1.3 with cipher TLS13_AES_256_GCM_SHA384 (256/256 bits))\n\t(No client certificate requested)\n\tby mx.example.com (Rostfix) with ESMTPS id ABC\n\tfor <u@example.com>; Thu, 1 Jan 1970 00:00:00 +0000 (UTC)\n"
        );
    }

    #[test]
    fn client_cert_notes() {
        use crate::ccert::ClientCert;
        let mut c = ClientCert {
            subject_cn: "relay (\"one\")\u{7}".into(),
            issuer_cn: "Test CA".into(),
            cert_fingerprint: String::new(),
            pkey_fingerprint: String::new(),
            trusted: true,
        };
        assert_eq!(
            client_cert_note(Some(&c), true),
            "Client CN \"relay \\(\\\"one\\\"\\)\", Issuer \"Test CA\" (verified OK)"
        );
        c.trusted = false;
        assert!(client_cert_note(Some(&c), true).ends_with("(not verified)"));
        assert_eq!(
            client_cert_note(None, true),
            "Client did not present a certificate"
        );
        assert_eq!(
            client_cert_note(None, false),
            "No client certificate requested"
        );
    }
}
