//! non_smtpd_milters: a locally submitted message goes through the same milters as
//! mail from smtpd, with the SMTP session Postfix's cleanup fakes for it
//! (cleanup_milter.c): CONNECT from `localhost` 127.0.0.1 port 0, EHLO `localhost`,
//! MAIL FROM the sender as a bare address (no angle brackets, as Postfix sends it),
//! one RCPT per recipient, DATA, then the content as queued (pickup's Received: first,
//! after header_checks and rewriting) and the end of message. The session is opened
//! per message and closed after it.
//!
//! There is no client to answer, so refusals become what cleanup makes of them: a 5xx
//! reply returns the message to its sender, a 4xx reply leaves it in maildrop/ for a
//! later scan, a refused RCPT is a configuration error (deferred with 4.3.5, as in
//! Postfix: a local submission cannot lose one recipient), DISCARD drops it and
//! QUARANTINE puts it on hold.

use rostfix_milter::{ConnectInfo, EnvelopeEdits, Message, MilterConfig, Milters, Verdict};
use rostfix_queue::Envelope;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

/// The faked client: Postfix's cleanup pretends local mail came from here.
const CLIENT_NAME: &str = "localhost";
const CLIENT_ADDR: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// What the milters made of the message.
#[derive(Debug, PartialEq, Eq)]
pub enum MilterResult {
    /// Queue it: the edited content (None when no milter changed it) and the
    /// envelope changes (a QUARANTINE among them).
    Queue {
        content: Option<Vec<u8>>,
        edits: EnvelopeEdits,
    },
    /// Refused: the reason as content inspection gives it (`dsn text`); a 4.x.x
    /// reason leaves the file in maildrop/, a 5.x.x one bounces it.
    Refuse(String),
    /// DISCARD: dropped without a notice.
    Discard,
}

/// The macro values of the faked session, Postfix's cleanup_milter_eval.
fn macros(
    cfg: &MilterConfig,
    myhostname: &str,
    id: &str,
    sender: &str,
    rcpt: Option<&str>,
) -> HashMap<&'static str, String> {
    let addr = CLIENT_ADDR.to_string();
    let mut m = HashMap::from([
        ("j", myhostname.to_string()),
        ("daemon_name", cfg.daemon_name.clone()),
        ("v", cfg.macro_v.clone()),
        ("_", format!("{CLIENT_NAME} [{addr}]")),
        ("client_addr", addr.clone()),
        ("client_name", CLIENT_NAME.to_string()),
        ("client_ptr", CLIENT_NAME.to_string()),
        ("client_port", "0".to_string()),
        ("daemon_addr", addr),
        ("daemon_port", "0".to_string()),
        ("i", id.to_string()),
        ("mail_addr", sender.to_string()),
    ]);
    if let Some(r) = rcpt {
        m.insert("rcpt_addr", r.to_string());
    }
    m
}

/// A refusal as `dsn text`; a REPLYCODE without an enhanced status code gets the
/// one Postfix's milter client supplies (x.7.1).
fn reason(code: u16, text: &str) -> String {
    let first = text.split("\r\n").next().unwrap_or("");
    let has_dsn = first.split(' ').next().is_some_and(|t| {
        t.split('.').count() == 3 && t.split('.').all(|p| p.parse::<u16>().is_ok())
    });
    if has_dsn {
        first.to_string()
    } else {
        format!("{}.7.1 {first}", if code < 500 { 4 } else { 5 })
    }
}

/// Runs the message through `cfg`'s milters; `content` is the message as queued.
pub fn run(
    cfg: &MilterConfig,
    myhostname: &str,
    id: &str,
    env: &Envelope,
    content: &[u8],
) -> MilterResult {
    let log = |what: &str, stage: &str, text: &str| {
        let to = env.recipients.first().map(|r| r.address.as_str());
        let to = to.map(|t| format!(" to=<{t}>")).unwrap_or_default();
        log::info!(
            "{id}: {what}: {stage} from {CLIENT_NAME}[{CLIENT_ADDR}]: {text}; from=<{}>{to}",
            env.sender
        );
    };
    let refuse = |stage: &str, code: u16, text: &str| {
        let r = reason(code, text);
        log("milter-reject", stage, &r);
        MilterResult::Refuse(r)
    };
    let discard = |stage: &str| {
        log("milter-discard", stage, "milter triggers DISCARD action");
        MilterResult::Discard
    };
    let info = ConnectInfo {
        hostname: CLIENT_NAME.to_string(),
        addr: Some(CLIENT_ADDR),
        port: 0,
    };
    let mac = macros(cfg, myhostname, id, &env.sender, None);
    let lookup = |n: &str| mac.get(n).cloned();
    let (mut milters, verdict) = Milters::connect(cfg, &info, &lookup);
    let result = match verdict {
        Verdict::Reply { code, text } => refuse("CONNECT", code, &text),
        _ => session(
            &mut milters,
            cfg,
            myhostname,
            id,
            env,
            content,
            &refuse,
            &discard,
        ),
    };
    milters.quit();
    if let MilterResult::Queue { edits, .. } = &result {
        if let Some(why) = &edits.quarantine {
            log("milter-hold", "END-OF-MESSAGE", why);
        }
    }
    result
}

/// EHLO to end of message, after a CONNECT that was not refused.
#[allow(clippy::too_many_arguments)]
fn session(
    milters: &mut Milters,
    cfg: &MilterConfig,
    myhostname: &str,
    id: &str,
    env: &Envelope,
    content: &[u8],
    refuse: &dyn Fn(&str, u16, &str) -> MilterResult,
    discard: &dyn Fn(&str) -> MilterResult,
) -> MilterResult {
    let mac = macros(cfg, myhostname, id, &env.sender, None);
    let lookup = |n: &str| mac.get(n).cloned();
    if let Verdict::Reply { code, text } = milters.helo(CLIENT_NAME, &lookup) {
        return refuse("EHLO", code, &text);
    }
    match milters.mail(std::slice::from_ref(&env.sender), &lookup) {
        Verdict::Reply { code, text } => return refuse("MAIL", code, &text),
        Verdict::Discard => return discard("MAIL"),
        Verdict::Continue => {}
    }
    for r in &env.recipients {
        let rmac = macros(cfg, myhostname, id, &env.sender, Some(&r.address));
        let rlookup = |n: &str| rmac.get(n).cloned();
        match milters.rcpt(std::slice::from_ref(&r.address), &rlookup) {
            Verdict::Reply { code, text } => {
                refuse("RCPT", code, &text);
                log::warn!(
                    "{id}: milter configuration error: can't reject recipient in non-smtpd(8) submission"
                );
                log::warn!("{id}: message not accepted, try again later");
                return MilterResult::Refuse("4.3.5 Server configuration error".into());
            }
            Verdict::Discard => return discard("RCPT"),
            Verdict::Continue => {}
        }
    }
    match milters.data(&lookup) {
        Verdict::Reply { code, text } => return refuse("DATA", code, &text),
        Verdict::Discard => return discard("DATA"),
        Verdict::Continue => {}
    }
    let original = Message::parse(content);
    let mut msg = original.clone();
    let mut edits = EnvelopeEdits::default();
    let verdict = milters.message(&mut msg, &mut edits, &lookup);
    milters.end_message();
    match verdict {
        Verdict::Reply { code, text } => refuse("END-OF-MESSAGE", code, &text),
        Verdict::Discard => discard("END-OF-MESSAGE"),
        // Unedited content stays byte for byte (the parsed form is lossy for 8-bit).
        Verdict::Continue if msg == original => MilterResult::Queue {
            content: None,
            edits,
        },
        Verdict::Continue => MilterResult::Queue {
            content: Some(msg.render()),
            edits,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_reasons_keep_or_get_an_enhanced_code() {
        assert_eq!(
            reason(550, "5.7.1 Command rejected"),
            "5.7.1 Command rejected"
        );
        assert_eq!(reason(554, "go away\r\nand stay"), "5.7.1 go away");
        assert_eq!(
            reason(451, "4.7.1 Service unavailable - try again later"),
            "4.7.1 Service unavailable - try again later"
        );
        assert_eq!(reason(421, "later"), "4.7.1 later");
    }

    #[test]
    fn the_faked_session_is_localhost() {
        let cfg = MilterConfig {
            daemon_name: "mail.example.org".into(),
            macro_v: "Rostfix".into(),
            ..MilterConfig::default()
        };
        let m = macros(
            &cfg,
            "mail.example.org",
            "ABC123",
            "joe@example.org",
            Some("amy@x"),
        );
        assert_eq!(m["_"], "localhost [127.0.0.1]");
        assert_eq!(m["client_addr"], "127.0.0.1");
        assert_eq!(m["client_name"], "localhost");
        assert_eq!(m["client_port"], "0");
        assert_eq!(m["daemon_addr"], "127.0.0.1");
        assert_eq!(m["i"], "ABC123");
        assert_eq!(m["mail_addr"], "joe@example.org");
        assert_eq!(m["rcpt_addr"], "amy@x");
    }

    /// The non_smtpd_milters configuration of this one list item.
    fn config(item: &str) -> MilterConfig {
        let text = format!("non_smtpd_milters = {item}\n");
        let cf = rostfix_config::MainCf::parse(&text, std::path::Path::new("main.cf")).unwrap();
        MilterConfig::from_main_cf(&cf, "non_smtpd_milters").unwrap()
    }

    #[test]
    fn an_unreachable_milter_follows_its_default_action() {
        // A port nobody listens on: the milter fails at connect.
        let item = "{ inet:127.0.0.1:1, default_action=reject, connect_timeout=2s }";
        let env = Envelope {
            sender: "joe@example.org".into(),
            recipients: vec![rostfix_queue::Recipient {
                address: "amy@example.org".into(),
                ..rostfix_queue::Recipient::default()
            }],
            ..Envelope::default()
        };
        let content = b"Subject: x\n\nbody\n";
        let r = run(&config(item), "mail.example.org", "ABC", &env, content);
        assert_eq!(r, MilterResult::Refuse("5.7.1 Command rejected".into()));
        let accept = item.replace("reject", "accept");
        let r = run(&config(&accept), "mail.example.org", "ABC", &env, content);
        assert_eq!(
            r,
            MilterResult::Queue {
                content: None,
                edits: EnvelopeEdits::default()
            }
        );
    }
}
