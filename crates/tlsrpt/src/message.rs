//! The report as mail (RFC 8460 5.3): a multipart/report; report-type="tlsrpt" with a
//! short text part and the gzipped JSON as application/tlsrpt+gzip, named
//! `submitter!domain!start!end.json.gz`, and the TLS-Report-Domain /
//! TLS-Report-Submitter headers.

use crate::report::{report_id, Reporter};
use flate2::write::GzEncoder;
use flate2::Compression;
use std::io::Write;

/// The report as application/tlsrpt+gzip (mailed and POSTed alike).
pub fn gzip(json: &str) -> std::io::Result<Vec<u8>> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(json.as_bytes())?;
    gz.finish()
}

/// The whole message (CRLF line ends) to `to` from `from`.
pub fn build(
    reporter: &Reporter,
    from: &str,
    to: &[String],
    domain: &str,
    (start, end): (u64, u64),
    json: &str,
    date: &str,
) -> std::io::Result<Vec<u8>> {
    let compressed = gzip(json)?;
    let id = report_id(reporter, domain, start);
    let submitter = &reporter.submitter;
    let boundary = format!("=_tlsrpt_{start}_{}", domain.len());
    let mut m = String::new();
    m.push_str(&format!("From: <{from}>\r\n"));
    m.push_str(&format!(
        "To: {}\r\n",
        to.iter()
            .map(|t| format!("<{t}>"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    m.push_str(&format!(
        "Subject: Report Domain: {domain} Submitter: {submitter} Report-ID: <{id}>\r\n"
    ));
    m.push_str(&format!("Date: {date}\r\n"));
    m.push_str(&format!("Message-ID: <tlsrpt.{id}>\r\n"));
    m.push_str(&format!("TLS-Report-Domain: {domain}\r\n"));
    m.push_str(&format!("TLS-Report-Submitter: {submitter}\r\n"));
    m.push_str("Auto-Submitted: auto-generated\r\n");
    m.push_str("MIME-Version: 1.0\r\n");
    m.push_str(&format!(
        "Content-Type: multipart/report; report-type=\"tlsrpt\"; boundary=\"{boundary}\"\r\n\r\n"
    ));
    m.push_str(&format!(
        "--{boundary}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
    ));
    m.push_str(&format!(
        "This is an aggregate TLS report from {submitter} for {domain}.\r\n\r\n"
    ));
    m.push_str(&format!(
        "--{boundary}\r\nContent-Type: application/tlsrpt+gzip\r\n\
         Content-Transfer-Encoding: base64\r\n\
         Content-Disposition: attachment; filename=\"{submitter}!{domain}!{start}!{end}.json.gz\"\r\n\r\n"
    ));
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(&compressed);
    for chunk in encoded.as_bytes().chunks(76) {
        m.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        m.push_str("\r\n");
    }
    m.push_str(&format!("--{boundary}--\r\n"));
    Ok(m.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_shape() {
        let r = Reporter {
            organization: "Org".into(),
            contact: "c".into(),
            submitter: "mx.s.test".into(),
        };
        let m = build(
            &r,
            "noreply@s.test",
            &["tls@d.test".to_string()],
            "d.test",
            (0, 86_400),
            "{}",
            "Thu, 1 Jan 1970 00:00:00 +0000",
        )
        .unwrap();
        let text = String::from_utf8(m).unwrap();
        assert!(text.contains("report-type=\"tlsrpt\""));
        assert!(text.contains("filename=\"mx.s.test!d.test!0!86400.json.gz\""));
        assert!(text.contains(
            "Subject: Report Domain: d.test Submitter: mx.s.test Report-ID: <0.d.test@mx.s.test>"
        ));
    }
}
