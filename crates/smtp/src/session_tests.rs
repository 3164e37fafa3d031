//! Unit tests of the client session against scripted servers.

use super::*;
use crate::envelope::Rcpt;
use crate::sasl::parse_entry;
use std::io::{Read, Write};

/// A server that has already "said" everything in `script` and records what the
/// client writes. Reads return one line at a time, as a real server's replies arrive.
struct Fake {
    input: std::io::Cursor<Vec<u8>>,
    written: Vec<u8>,
}

impl Read for Fake {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let pos = self.input.position() as usize;
        let rest = &self.input.get_ref()[pos..];
        let line = rest
            .iter()
            .position(|b| *b == b'\n')
            .map_or(rest.len(), |i| i + 1);
        let n = line.min(buf.len());
        self.input.read(&mut buf[..n])
    }
}
impl Write for Fake {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.written.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
impl Transport for Fake {
    fn set_timeout(&mut self, _: Duration) -> std::io::Result<()> {
        Ok(())
    }
}
impl Transport for &mut Fake {
    fn set_timeout(&mut self, _: Duration) -> std::io::Result<()> {
        Ok(())
    }
}

fn fake(script: &str) -> Fake {
    Fake {
        input: std::io::Cursor::new(script.replace('\n', "\r\n").into_bytes()),
        written: Vec::new(),
    }
}

fn opts<'a>(t: &'a Timeouts, lmtp: bool, sasl: Option<SaslRequest<'a>>) -> OpenOptions<'a> {
    OpenOptions {
        helo_name: "a.test",
        lmtp,
        timeouts: t,
        tls: None,
        sasl,
        peer: "b.test[127.0.0.2]",
        relay: "b.test[127.0.0.2]:25",
        server_name: "b.test",
    }
}

fn rcpts_of(rcpts: &[&str]) -> Vec<Rcpt> {
    rcpts
        .iter()
        .map(|s| Rcpt {
            address: s.to_string(),
            orig: String::new(),
            notify: String::new(),
        })
        .collect()
}

/// Content for a test envelope, leaked: the envelope borrows it for as long as it lives.
fn content(bytes: &'static [u8]) -> &'static Content<'static> {
    Box::leak(Box::new(Content::from_bytes(bytes)))
}

fn env_of(rcpts: &[Rcpt]) -> Envelope<'_> {
    Envelope {
        sender: "alice@a.test",
        recipients: rcpts,
        content: content(b"Subject: hi\n\n.dot\nbody\n"),
        ret: None,
        envid: None,
        eight_bit: false,
        smtputf8: false,
        mime_downgrade: true,
        xforward: None,
        probe: false,
        requiretls: false,
        tls_optional: false,
    }
}

/// open + one transaction + QUIT, as one delivery does.
fn session(
    script: &str,
    env: &Envelope<'_>,
    lmtp: bool,
    sasl: Option<SaslRequest<'_>>,
) -> (Result<Vec<Outcome>, SiteFailure>, String) {
    let mut f = fake(script);
    let t = Timeouts::default();
    let r = match open(&mut f, &opts(&t, lmtp, sasl)) {
        Ok(mut c) => {
            let r = c.transaction(env);
            if r.is_ok() {
                c.quit();
            }
            r
        }
        Err(e) => Err(e),
    };
    (r, String::from_utf8_lossy(&f.written).into_owned())
}

fn run_with(script: &str, rcpts: &[&str]) -> (Result<Vec<Outcome>, SiteFailure>, String) {
    let r = rcpts_of(rcpts);
    session(script, &env_of(&r), false, None)
}

#[test]
fn pipelined_delivery_with_per_recipient_failure() {
    let (r, written) = run_with(
        "220 b.test ESMTP\n250-b.test\n250-PIPELINING\n250 SIZE 100000\n250 2.1.0 Ok\n\
         250 2.1.5 Ok\n550 5.1.1 <x@b.test>: User unknown\n354 go\n250 2.0.0 Ok: queued as Q1\n221 Bye\n",
        &["bob@b.test", "x@b.test"],
    );
    let out = r.unwrap();
    assert_eq!(out[0].status, DeliveryStatus::Sent);
    assert_eq!(out[0].dsn, "2.0.0");
    assert_eq!(out[0].text, "250 2.0.0 Ok: queued as Q1");
    assert_eq!(out[1].status, DeliveryStatus::Bounced);
    assert_eq!(out[1].dsn, "5.1.1");
    assert_eq!(
        out[1].text,
        "host b.test[127.0.0.2] said: 550 5.1.1 <x@b.test>: User unknown (in reply to RCPT TO command)"
    );
    assert!(written.starts_with("EHLO a.test\r\nMAIL FROM:<alice@a.test> SIZE=28\r\nRCPT TO:<bob@b.test>\r\nRCPT TO:<x@b.test>\r\nDATA\r\n"));
    assert!(written.contains("Subject: hi\r\n\r\n..dot\r\nbody\r\n.\r\nQUIT\r\n"));
}

#[test]
fn pipelined_data_refused_when_every_recipient_is() {
    let (r, written) = run_with(
        "220 b.test ESMTP\n250-b.test\n250 PIPELINING\n250 2.1.0 Ok\n\
         550 5.1.1 unknown\n554 5.5.1 Error: no valid recipients\n221 Bye\n",
        &["x@b.test"],
    );
    let out = r.unwrap();
    assert_eq!(out[0].status, DeliveryStatus::Bounced);
    // The refused DATA's reply was consumed: QUIT follows, no message was sent.
    assert!(written.ends_with("RCPT TO:<x@b.test>\r\nDATA\r\nQUIT\r\n"));
}

#[test]
fn pipelined_data_accepted_without_recipients_is_ended_empty() {
    // A server that breaks RFC 2920 and says 354 with no recipient gets "." at once,
    // and the session stays in step for QUIT.
    let (r, written) = run_with(
        "220 b.test ESMTP\n250-b.test\n250 PIPELINING\n250 2.1.0 Ok\n\
         550 5.1.1 unknown\n354 go\n554 no recipients\n221 Bye\n",
        &["x@b.test"],
    );
    assert_eq!(r.unwrap()[0].status, DeliveryStatus::Bounced);
    assert!(written.ends_with("DATA\r\n.\r\nQUIT\r\n"));
    assert!(!written.contains("Subject"));
}

#[test]
fn pipelined_mail_refusal_drains_rcpt_and_data_replies() {
    let mut f = fake(
        "220 b.test ESMTP\n250-b.test\n250 PIPELINING\n553 5.1.8 bad sender\n\
         503 5.5.1 need MAIL\n503 5.5.1 need MAIL\n250 2.0.0 Ok\n",
    );
    let t = Timeouts::default();
    let r = rcpts_of(&["a@b.test"]);
    let mut c = open(&mut f, &opts(&t, false, None)).unwrap();
    let failure = c.transaction(&env_of(&r)).unwrap_err();
    assert_eq!(failure.dsn, "5.1.8");
    // In step: the next command's reply is RSET's own, not a leftover.
    assert!(c.reset());
}

#[test]
fn helo_fallback_and_temporary_rcpt() {
    let (r, written) = run_with(
        "220 old\n502 what\n250 old\n250 ok\n451 4.3.0 try later\n250 ok\n354 go\n250 sent\n221 bye\n",
        &["a@b.test", "c@b.test"],
    );
    let out = r.unwrap();
    assert_eq!(out[0].status, DeliveryStatus::Deferred);
    assert_eq!(out[0].dsn, "4.3.0");
    assert_eq!(out[1].status, DeliveryStatus::Sent);
    assert_eq!(out[1].dsn, "2.0.0");
    assert!(written.starts_with(
        "EHLO a.test\r\nHELO a.test\r\nMAIL FROM:<alice@a.test>\r\nRCPT TO:<a@b.test>\r\n"
    ));
}

#[test]
fn server_closing_421_mid_session_defers_the_rest() {
    let (r, written) = run_with(
        "220 x\n250 x\n250 ok\n250 ok\n421 4.7.0 closing\n",
        &["a@b.test", "c@b.test", "d@b.test"],
    );
    let out = r.unwrap();
    assert!(out
        .iter()
        .all(|o| o.status == DeliveryStatus::Deferred && o.dsn == "4.7.0"));
    assert!(!written.contains("DATA"));
}

#[test]
fn greeting_and_mail_failures_are_site_failures() {
    let (r, _) = run_with("421 busy\n", &["a@b.test"]);
    let f = r.unwrap_err();
    assert!(f.try_next);
    assert_eq!(f.status, DeliveryStatus::Deferred);
    let (r, _) = run_with("220 x\n250 x\n553 5.1.8 bad sender\n", &["a@b.test"]);
    let f = r.unwrap_err();
    assert!(!f.try_next);
    assert_eq!(f.status, DeliveryStatus::Bounced);
    assert_eq!(f.dsn, "5.1.8");
    let (r, _) = run_with("220 x\n250 x\n451 later\n", &["a@b.test"]);
    assert!(r.unwrap_err().try_next);
}

#[test]
fn lost_connection_is_a_site_failure() {
    let (r, _) = run_with("220 x\n250 x\n250 ok\n250 ok\n354 go\n", &["a@b.test"]);
    let f = r.unwrap_err();
    assert!(f.try_next);
    assert_eq!(f.dsn, "4.4.2");
    assert!(f
        .text
        .starts_with("lost connection with b.test[127.0.0.2] while sending end of data"));
}

#[test]
fn data_rejection_and_size_limit() {
    let (r, _) = run_with(
        "220 x\n250 x\n250 ok\n250 ok\n554 5.5.0 no\n",
        &["a@b.test"],
    );
    assert_eq!(r.unwrap()[0].status, DeliveryStatus::Bounced);
    let (r, _) = run_with("220 x\n250-x\n250 SIZE 10\n", &["a@b.test"]);
    assert_eq!(r.unwrap_err().dsn, "5.3.4");
}

#[test]
fn lmtp_gives_one_reply_per_accepted_recipient() {
    let (r, written) = session(
        "220 lmtp\n250-d.test\n250 PIPELINING\n250 ok\n250 ok\n550 5.1.1 no\n250 ok\n354 go\n\
         250 2.0.0 <a> Saved\n452 4.2.2 Quota exceeded\n221 bye\n",
        &env_of(&rcpts_of(&["a@d.test", "x@d.test", "c@d.test"])),
        true,
        None,
    );
    let out = r.unwrap();
    assert!(written.starts_with("LHLO a.test\r\n"));
    assert_eq!(out[0].status, DeliveryStatus::Sent);
    assert_eq!(out[1].status, DeliveryStatus::Bounced);
    assert_eq!(out[2].status, DeliveryStatus::Deferred);
    assert_eq!(out[2].dsn, "4.2.2");
}

#[test]
fn lmtp_lost_after_first_reply_keeps_the_first_sent() {
    let (r, _) = session(
        "220 lmtp\n250 d.test\n250 ok\n250 ok\n250 ok\n354 go\n250 2.0.0 Saved\n",
        &env_of(&rcpts_of(&["a@d.test", "c@d.test"])),
        true,
        None,
    );
    let out = r.unwrap();
    assert_eq!(out[0].status, DeliveryStatus::Sent);
    assert_eq!(out[1].status, DeliveryStatus::Deferred);
    assert_eq!(out[1].dsn, "4.4.2");
}

fn sasl_req(c: &Credentials, soft: bool) -> SaslRequest<'_> {
    SaslRequest {
        creds: c,
        plain_opts: SecurityOptions::parse(&["noanonymous".to_string()]),
        tls_opts: SecurityOptions::parse(&["noanonymous".to_string()]),
        soft_bounce: soft,
    }
}

#[test]
fn auth_plain_then_mail() {
    let c = parse_entry("tim:tanstaaftanstaaf");
    let (r, written) = session(
        "220 x\n250-x\n250 AUTH LOGIN PLAIN\n235 2.7.0 ok\n250 ok\n250 ok\n354 go\n250 sent\n221 bye\n",
        &env_of(&rcpts_of(&["a@b.test"])),
        false,
        Some(sasl_req(&c, true)),
    );
    assert_eq!(r.unwrap()[0].status, DeliveryStatus::Sent);
    assert!(written.contains("AUTH PLAIN AHRpbQB0YW5zdGFhZnRhbnN0YWFm\r\nMAIL FROM:"));
}

#[test]
fn auth_login_exchange() {
    let c = parse_entry("u:p");
    let (r, written) = session(
        "220 x\n250-x\n250 AUTH=LOGIN\n334 VXNlcm5hbWU6\n334 UGFzc3dvcmQ6\n235 ok\n250 ok\n250 ok\n354 go\n250 sent\n221 bye\n",
        &env_of(&rcpts_of(&["a@b.test"])),
        false,
        Some(sasl_req(&c, true)),
    );
    assert_eq!(r.unwrap()[0].status, DeliveryStatus::Sent);
    assert!(written.contains("AUTH LOGIN\r\ndQ==\r\ncA==\r\n"));
}

#[test]
fn auth_rejected_defers_with_soft_bounce_and_hides_the_password() {
    let c = parse_entry("u:secretpw");
    let script = "220 x\n250-x\n250 AUTH PLAIN\n535 5.7.8 Error: authentication failed\n221 bye\n";
    let (r, _) = session(
        script,
        &env_of(&rcpts_of(&["a@b.test"])),
        false,
        Some(sasl_req(&c, true)),
    );
    let f = r.unwrap_err();
    assert_eq!(f.status, DeliveryStatus::Deferred);
    assert_eq!(f.dsn, "4.7.8");
    assert_eq!(
        f.text,
        "SASL authentication failed; server b.test[127.0.0.2] said: 535 5.7.8 Error: authentication failed"
    );
    assert!(!f.text.contains("secretpw"));
    let (r, _) = session(
        script,
        &env_of(&rcpts_of(&["a@b.test"])),
        false,
        Some(sasl_req(&c, false)),
    );
    let f = r.unwrap_err();
    assert_eq!(f.status, DeliveryStatus::Bounced);
    assert_eq!(f.dsn, "5.7.8");
}

#[test]
fn auth_without_a_worthy_mechanism_defers() {
    let c = parse_entry("u:p");
    let req = SaslRequest {
        creds: &c,
        plain_opts: SecurityOptions::parse(&["noplaintext".to_string()]),
        tls_opts: SecurityOptions::default(),
        soft_bounce: true,
    };
    let (r, written) = session(
        "220 x\n250-x\n250 AUTH PLAIN LOGIN\n221 bye\n",
        &env_of(&rcpts_of(&["a@b.test"])),
        false,
        Some(req),
    );
    let f = r.unwrap_err();
    assert_eq!(f.dsn, "4.7.0");
    assert!(f.text.contains("no mechanism available"));
    assert!(!written.contains("AUTH"));
}

#[test]
fn smtputf8_needed_but_not_offered_bounces() {
    let r = rcpts_of(&["a@b.test"]);
    let mut e = env_of(&r);
    e.smtputf8 = true;
    let (res, written) = session("220 x\n250-x\n250 8BITMIME\n221 bye\n", &e, false, None);
    let f = res.unwrap_err();
    assert_eq!(
        (f.status, f.dsn.as_str()),
        (DeliveryStatus::Bounced, "5.6.7")
    );
    assert!(!written.contains("MAIL FROM"));
}

#[test]
fn rset_for_reuse_and_second_transaction() {
    let mut f = fake(
        "220 x\n250-x\n250 PIPELINING\n250 ok\n250 ok\n354 go\n250 one\n250 reset\n250 ok\n250 ok\n354 go\n250 two\n",
    );
    let t = Timeouts::default();
    let r = rcpts_of(&["a@b.test"]);
    let mut c = open(&mut f, &opts(&t, false, None)).unwrap();
    assert_eq!(c.transaction(&env_of(&r)).unwrap()[0].text, "250 one");
    assert!(c.reusable() && c.reset());
    assert_eq!(c.transaction(&env_of(&r)).unwrap()[0].text, "250 two");
    assert_eq!(c.uses, 2);
}

#[test]
fn encrypt_level_without_starttls_offer_fails_over() {
    let mut f = fake("220 x\n250-x\n250 PIPELINING\n221 bye\n");
    let t = Timeouts::default();
    let client = crate::tls::TlsClient::load(&crate::tls::TlsFiles {
        ca_file: "",
        ca_path: "",
        append_default_ca: false,
        cert_file: "",
        key_file: "",
        protocols: ("p", ">=TLSv1.2"),
        mandatory_protocols: ("m", ">=TLSv1.2"),
        session_cache: ("", std::time::Duration::ZERO),
    })
    .unwrap();
    let mut o = opts(&t, false, None);
    o.tls = Some(TlsRequest {
        level: Level::Encrypt,
        client: &client,
        match_names: vec![],
        dane: None,
        loglevel: 0,
    });
    let err = open(&mut f, &o).err().unwrap();
    assert_eq!(err.dsn, "4.7.4");
    assert!(err.try_next);
    assert_eq!(
        err.text,
        "TLS is required, but was not offered by host b.test[127.0.0.2]"
    );
    // May: the same server gets the mail in plaintext.
    let mut f = fake("220 x\n250-x\n250 PIPELINING\n");
    o.tls.as_mut().unwrap().level = Level::May;
    assert!(open(&mut f, &o).is_ok());
}

/// A server without 8BITMIME gets 8-bit mail as quoted-printable (Postfix's default);
/// with the conversion disabled, as it is; with 8BITMIME, as it is with BODY=8BITMIME.
#[test]
fn eight_bit_mail_is_downgraded_for_a_server_without_8bitmime() {
    let rcpts = rcpts_of(&["bob@b.test"]);
    let mut env = env_of(&rcpts);
    env.content = content("Subject: hi\n\nna\u{ef}ve\n".as_bytes());
    env.eight_bit = true;
    let plain = "220 b.test ESMTP\n250-b.test\n250 PIPELINING\n250 2.1.0 Ok\n250 2.1.5 Ok\n354 go\n250 2.0.0 Ok\n221 Bye\n";
    let (r, written) = session(plain, &env, false, None);
    assert!(r.is_ok(), "{r:?}");
    assert!(!written.contains("BODY=8BITMIME"), "{written}");
    assert!(
        written.contains(
            "Subject: hi\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nna=C3=AFve\r\n.\r\n"
        ),
        "{written}"
    );
    env.mime_downgrade = false;
    let (_, written) = session(plain, &env, false, None);
    assert!(written.contains("\r\n\r\nna\u{ef}ve\r\n.\r\n"), "{written}");
    env.mime_downgrade = true;
    let eight = "220 b.test ESMTP\n250-b.test\n250-PIPELINING\n250 8BITMIME\n250 2.1.0 Ok\n250 2.1.5 Ok\n354 go\n250 2.0.0 Ok\n221 Bye\n";
    let (_, written) = session(eight, &env, false, None);
    assert!(written.contains("BODY=8BITMIME"), "{written}");
    assert!(written.contains("\r\n\r\nna\u{ef}ve\r\n.\r\n"), "{written}");
}

#[test]
fn xforward_goes_before_mail_when_offered_and_wanted() {
    let r = rcpts_of(&["bob@b.test"]);
    let x = crate::xforward::Attributes::from_queue(
        |n| match n {
            "client_address" => Some("192.0.2.9"),
            "client_name" => Some("c.example"),
            _ => None,
        },
        "QID1",
    );
    let mut env = env_of(&r);
    env.xforward = Some(&x);
    let (out, written) = session(
        "220 b.test ESMTP\n250-b.test\n250 XFORWARD NAME ADDR IDENT\n250 2.0.0 Ok\n\
         250 2.1.0 Ok\n250 2.1.5 Ok\n354 go\n250 2.0.0 Ok\n221 Bye\n",
        &env,
        false,
        None,
    );
    assert_eq!(out.unwrap()[0].status, DeliveryStatus::Sent);
    assert!(
        written.starts_with(
            "EHLO a.test\r\nXFORWARD NAME=c.example ADDR=192.0.2.9 IDENT=QID1\r\nMAIL FROM:<alice@a.test>\r\n"
        ),
        "{written}"
    );
    // Not offered: nothing sent, even when configured.
    let (_, written) = session(
        "220 b.test ESMTP\n250 b.test\n250 2.1.0 Ok\n250 2.1.5 Ok\n354 go\n250 2.0.0 Ok\n221 Bye\n",
        &env,
        false,
        None,
    );
    assert!(!written.contains("XFORWARD"), "{written}");
}

#[test]
fn a_refused_xforward_fails_the_message_before_mail() {
    let r = rcpts_of(&["bob@b.test"]);
    let x = crate::xforward::Attributes::default();
    let mut env = env_of(&r);
    env.xforward = Some(&x);
    let (out, written) = session(
        "220 b.test ESMTP\n250-b.test\n250 XFORWARD ADDR\n421 4.7.0 go away\n221 Bye\n",
        &env,
        false,
        None,
    );
    let f = out.unwrap_err();
    assert_eq!(f.status, DeliveryStatus::Deferred);
    assert!(
        f.text.ends_with("(in reply to XFORWARD command)"),
        "{}",
        f.text
    );
    assert!(!written.contains("MAIL FROM"), "{written}");
}

#[test]
fn a_probe_stops_after_rcpt_and_resets() {
    let r = rcpts_of(&["bob@b.test", "x@b.test"]);
    let env = Envelope {
        probe: true,
        requiretls: false,
        tls_optional: false,
        ..env_of(&r)
    };
    let (out, written) = session(
        "220 b.test ESMTP\n250-b.test\n250 PIPELINING\n250 2.1.0 Ok\n\
         250 2.1.5 Ok\n550 5.1.1 <x@b.test>: User unknown\n250 2.0.0 Reset\n221 Bye\n",
        &env,
        false,
        None,
    );
    let out = out.unwrap();
    assert_eq!(out[0].status, DeliveryStatus::Sent);
    assert_eq!(out[0].text, "250 2.1.5 Ok");
    assert_eq!(out[1].status, DeliveryStatus::Bounced);
    assert!(out[1].text.contains("User unknown"), "{}", out[1].text);
    // No DATA, no content: MAIL and RCPT in one batch, then RSET and QUIT.
    assert_eq!(
        written,
        "EHLO a.test\r\nMAIL FROM:<alice@a.test>\r\nRCPT TO:<bob@b.test>\r\n\
         RCPT TO:<x@b.test>\r\nRSET\r\nQUIT\r\n"
    );
}

#[test]
fn a_probe_without_pipelining_refused_at_mail_still_resets() {
    let r = rcpts_of(&["bob@b.test"]);
    let env = Envelope {
        probe: true,
        requiretls: false,
        tls_optional: false,
        ..env_of(&r)
    };
    let (out, written) = session(
        "220 b.test ESMTP\n250 b.test\n250 2.1.0 Ok\n450 4.2.0 try later\n250 Reset\n221 Bye\n",
        &env,
        false,
        None,
    );
    assert_eq!(out.unwrap()[0].status, DeliveryStatus::Deferred);
    assert!(!written.contains("DATA"));
    assert!(
        written.ends_with("RCPT TO:<bob@b.test>\r\nRSET\r\nQUIT\r\n"),
        "{written}"
    );
}

/// A queued message is streamed after DATA: SIZE= is the size of what follows DATA,
/// and a second transaction (the next server, a reused session) sends it again whole.
#[test]
fn a_queued_message_is_streamed_and_sized() {
    let mut body = b"Subject: big\n\n".to_vec();
    for i in 0..30_000 {
        body.extend_from_slice(format!(".{i}\n").as_bytes());
    }
    let (_root, queued, _) = crate::content::testqueue::queued(&body);
    let (content, _) = Content::scan(Vec::new(), &queued).unwrap();
    let r = rcpts_of(&["bob@b.test"]);
    let mut env = env_of(&r);
    env.content = &content;
    let script =
        "220 x\n250-x\n250-PIPELINING\n250 SIZE 100000000\n250 ok\n250 ok\n354 go\n250 one\n\
                  250 reset\n250 ok\n250 ok\n354 go\n250 two\n";
    let mut f = fake(script);
    let t = Timeouts::default();
    let mut c = open(&mut f, &opts(&t, false, None)).unwrap();
    assert_eq!(c.transaction(&env).unwrap()[0].text, "250 one");
    assert!(c.reset());
    assert_eq!(c.transaction(&env).unwrap()[0].text, "250 two");
    drop(c);
    let written = f.written;
    let data = [crate::content::to_wire(&body), b".\r\n".to_vec()].concat();
    let size = format!("SIZE={}", data.len() - 3);
    let starts: Vec<usize> = written
        .windows(data.len())
        .enumerate()
        .filter(|(_, w)| *w == &data[..])
        .map(|(i, _)| i)
        .collect();
    assert_eq!(starts.len(), 2, "the message twice");
    let text = String::from_utf8_lossy(&written);
    assert_eq!(text.matches(&size).count(), 2, "{size}");
}

/// When the content becomes unreadable half-way through DATA, the end of data is not
/// sent (the server must not deliver a truncated message), the recipients are
/// deferred, and nothing more is written: not even QUIT, which would be content.
#[test]
fn unreadable_content_abandons_the_session_inside_data() {
    let body = vec![b'a'; 300_000];
    let (_root, queued, path) = crate::content::testqueue::queued(&body);
    let (content, _) = Content::scan(Vec::new(), &queued).unwrap();
    let len = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let r = rcpts_of(&["bob@b.test", "eve@b.test"]);
    let mut env = env_of(&r);
    env.content = &content;
    let mut f =
        fake("220 x\n250-x\n250 PIPELINING\n250 ok\n250 ok\n550 5.1.1 no such user\n354 go\n");
    let t = Timeouts::default();
    let mut c = open(&mut f, &opts(&t, false, None)).unwrap();
    let out = c.transaction(&env).unwrap();
    assert_eq!(out[0].status, DeliveryStatus::Deferred);
    assert_eq!(out[0].dsn, "4.3.0");
    assert!(
        out[0].text.starts_with("cannot read message content: "),
        "{}",
        out[0].text
    );
    // The refused recipient keeps its own answer.
    assert_eq!(out[1].status, DeliveryStatus::Bounced);
    assert!(!c.reusable());
    assert!(!c.reset());
    c.quit();
    drop(c);
    let written = f.written;
    assert!(written.len() > 100_000, "part of the message went out");
    assert!(!written.ends_with(b"\r\n.\r\n"));
    assert!(!String::from_utf8_lossy(&written).contains("QUIT"));
    assert!(!String::from_utf8_lossy(&written).contains("RSET"));
}
