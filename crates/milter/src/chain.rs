//! The milters of one session, called in their configured order at each SMTP event,
//! as Postfix's milter8 does: the first one that rejects decides the reply, ACCEPT
//! ends a milter's interest (for the session before MAIL, for the message after), and
//! at the end of a message each milter receives the content as edited by the ones
//! before it, its own edits being applied only when it then accepts or continues.

use crate::client::{Decision, Milter, MilterError};
use crate::codec::{act, cmd, proto, put_str, Response, BODY_CHUNK};
use crate::config::{DefaultAction, MacroLists, MilterConfig};
use crate::message::{EnvelopeEdits, Message};

/// What smtpd must do after an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Continue,
    /// Refuse the command with this reply: `code` and the text after it, which
    /// starts with the enhanced status code ("5.7.1 Command rejected"); lines are
    /// separated by CRLF when a REPLYCODE was multi-line.
    Reply {
        code: u16,
        text: String,
    },
    /// Accept the message but throw it away.
    Discard,
}

impl Verdict {
    fn reject() -> Verdict {
        Verdict::Reply {
            code: 550,
            text: "5.7.1 Command rejected".into(),
        }
    }

    fn tempfail() -> Verdict {
        Verdict::Reply {
            code: 451,
            text: "4.7.1 Service unavailable - try again later".into(),
        }
    }

    /// A REPLYCODE text; the decoder checked it starts with 4xx or 5xx.
    fn reply_code(full: &str) -> Verdict {
        let code = full.get(..3).and_then(|c| c.parse().ok()).unwrap_or(451);
        let rest = full.get(3..).unwrap_or("").trim_start_matches([' ', '-']);
        Verdict::Reply {
            code,
            text: rest.to_string(),
        }
    }
}

/// The connecting client, for SMFIC_CONNECT.
#[derive(Debug, Clone)]
pub struct ConnectInfo {
    pub hostname: String,
    /// None for a client on a UNIX-domain socket.
    pub addr: Option<std::net::IpAddr>,
    pub port: u16,
}

/// Looks up a macro's value by its name without braces (`i`, `daemon_name`).
pub type MacroLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The milters of a session.
pub struct Milters {
    config: MilterConfig,
    list: Vec<Milter>,
}

/// Which event, for protocol-step flags and macro lists.
#[derive(Clone, Copy)]
enum Event {
    Connect,
    Helo,
    Mail,
    Rcpt,
    Data,
    /// A command smtpd does not know.
    Unknown,
}

impl Event {
    fn command(self) -> u8 {
        match self {
            Event::Connect => cmd::CONNECT,
            Event::Helo => cmd::HELO,
            Event::Mail => cmd::MAIL,
            Event::Rcpt => cmd::RCPT,
            Event::Data => cmd::DATA,
            Event::Unknown => cmd::UNKNOWN,
        }
    }
    /// (skip flag, no-reply flag)
    fn flags(self) -> (u32, u32) {
        match self {
            Event::Connect => (proto::NOCONNECT, proto::NR_CONN),
            Event::Helo => (proto::NOHELO, proto::NR_HELO),
            Event::Mail => (proto::NOMAIL, proto::NR_MAIL),
            Event::Rcpt => (proto::NORCPT, proto::NR_RCPT),
            Event::Data => (proto::NODATA, proto::NR_DATA),
            Event::Unknown => (proto::NOUNKNOWN, proto::NR_UNKN),
        }
    }
    fn name(self) -> &'static str {
        match self {
            Event::Connect => "connect",
            Event::Helo => "helo",
            Event::Mail => "mail",
            Event::Rcpt => "rcpt",
            Event::Data => "data",
            Event::Unknown => "unknown command",
        }
    }

    /// The macro names sent before it: the milter's own list (SETSYMLIST) when it
    /// gave one for this stage, else the configured one. None for UNKNOWN, which
    /// has no macro stage.
    fn macros<'a>(self, configured: &'a MacroLists, own: &'a MacroLists) -> &'a [String] {
        let pick = |f: fn(&MacroLists) -> &Vec<String>| {
            let o = f(own);
            if o.is_empty() {
                f(configured).as_slice()
            } else {
                o.as_slice()
            }
        };
        match self {
            Event::Connect => pick(|l| &l.connect),
            Event::Helo => pick(|l| &l.helo),
            Event::Mail => pick(|l| &l.mail),
            Event::Rcpt => pick(|l| &l.rcpt),
            Event::Data => pick(|l| &l.data),
            Event::Unknown => &[],
        }
    }
}

/// The end-of-header and end-of-message macro names for one milter (its own lists
/// when it asked for them).
fn content_macros<'a>(
    configured: &'a MacroLists,
    own: &'a MacroLists,
) -> (&'a [String], &'a [String]) {
    let or = |o: &'a Vec<String>, c: &'a Vec<String>| if o.is_empty() { c } else { o };
    (
        or(&own.eoh, &configured.eoh).as_slice(),
        or(&own.eom, &configured.eom).as_slice(),
    )
}

/// The values of the macros in `names` that have one.
fn macro_values(names: &[String], lookup: MacroLookup) -> Vec<(String, String)> {
    names
        .iter()
        .filter_map(|n| {
            let bare = n.trim_start_matches('{').trim_end_matches('}');
            lookup(bare).map(|v| (n.clone(), v))
        })
        .collect()
}

impl Milters {
    /// Connects to every milter and sends the CONNECT event.
    pub fn connect(
        config: &MilterConfig,
        client: &ConnectInfo,
        lookup: MacroLookup,
    ) -> (Milters, Verdict) {
        let list = config
            .milters
            .iter()
            .cloned()
            .map(Milter::connect)
            .collect();
        let mut milters = Milters {
            config: config.clone(),
            list,
        };
        let mut data = Vec::new();
        // A client without a verified name is `[addr]` to milters (Sendmail's form,
        // as Postfix's milter8 sends it), not Postfix's "unknown".
        let name = match client.addr {
            Some(ip) if client.hostname == "unknown" => format!("[{ip}]"),
            _ => client.hostname.clone(),
        };
        put_str(&mut data, &name);
        match client.addr {
            Some(ip) => {
                data.push(if ip.is_ipv4() { b'4' } else { b'6' });
                data.extend_from_slice(&client.port.to_be_bytes());
                put_str(&mut data, &ip.to_string());
            }
            None => data.push(b'U'),
        }
        let verdict = milters.event(Event::Connect, &data, lookup);
        (milters, verdict)
    }

    /// Whether any milter is configured (the chain is not empty).
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The `{daemon_name}` and `v` macro values of the configuration.
    pub fn config(&self) -> &MilterConfig {
        &self.config
    }

    pub fn helo(&mut self, helo: &str, lookup: MacroLookup) -> Verdict {
        let mut data = Vec::new();
        put_str(&mut data, helo);
        self.event(Event::Helo, &data, lookup)
    }

    /// MAIL FROM: the sender in angle brackets, then the ESMTP parameters.
    pub fn mail(&mut self, args: &[String], lookup: MacroLookup) -> Verdict {
        self.abort();
        let mut data = Vec::new();
        for a in args {
            put_str(&mut data, a);
        }
        self.event(Event::Mail, &data, lookup)
    }

    pub fn rcpt(&mut self, args: &[String], lookup: MacroLookup) -> Verdict {
        let mut data = Vec::new();
        for a in args {
            put_str(&mut data, a);
        }
        self.event(Event::Rcpt, &data, lookup)
    }

    pub fn data(&mut self, lookup: MacroLookup) -> Verdict {
        self.event(Event::Data, &[], lookup)
    }

    /// RSET, or the message is finished: every milter forgets it.
    pub fn abort(&mut self) {
        for m in &mut self.list {
            m.abort();
        }
    }

    /// End of session.
    pub fn quit(&mut self) {
        for m in &mut self.list {
            m.quit();
        }
    }

    /// A command smtpd does not know (the whole line): a refusal is the reply to give
    /// instead of 502, as Postfix's smtpd does.
    pub fn unknown(&mut self, line: &str, lookup: MacroLookup) -> Verdict {
        let mut data = Vec::new();
        put_str(&mut data, line);
        self.event(Event::Unknown, &data, lookup)
    }

    /// A recipient smtpd refused, shown to the milters that asked for refused
    /// recipients (SMFIP_RCPT_REJ); their answers change nothing (Postfix's rule).
    /// `lookup` gives `{rcpt_mailer}` = error and the refusal in `{rcpt_host}` and
    /// `{rcpt_addr}`.
    pub fn rejected_rcpt(&mut self, args: &[String], lookup: MacroLookup) {
        let mut data = Vec::new();
        for a in args {
            put_str(&mut data, a);
        }
        for m in &mut self.list {
            if !m.active() || m.steps & proto::RCPT_REJ == 0 || m.steps & proto::NORCPT != 0 {
                continue;
            }
            let macros = macro_values(Event::Rcpt.macros(&self.config.macros, &m.symlists), lookup);
            let no_reply = m.steps & proto::NR_RCPT != 0;
            let r = m
                .macros(cmd::RCPT, &macros)
                .and_then(|()| m.event(cmd::RCPT, &data, no_reply, false, "rcpt"));
            if let Err(e) = r {
                m.fail(&e);
            }
        }
    }

    fn event(&mut self, event: Event, data: &[u8], lookup: MacroLookup) -> Verdict {
        for m in &mut self.list {
            // ACCEPT ends the session's interest before MAIL, the message's after it.
            let before_mail = match event {
                Event::Connect | Event::Helo => true,
                Event::Unknown => !m.in_message,
                _ => false,
            };
            let decision = if m.failed {
                m.default_decision()
            } else if !m.active() {
                continue;
            } else {
                let (skip, no_reply) = event.flags();
                if m.steps & skip != 0 {
                    continue;
                }
                if matches!(event, Event::Mail) {
                    m.in_message = true;
                }
                let macros = macro_values(event.macros(&self.config.macros, &m.symlists), lookup);
                let r = m.macros(event.command(), &macros).and_then(|()| {
                    m.event(
                        event.command(),
                        data,
                        m.steps & no_reply != 0,
                        false,
                        event.name(),
                    )
                });
                match r {
                    Ok(d) => d,
                    Err(e) => {
                        m.fail(&e);
                        m.default_decision()
                    }
                }
            };
            match decision {
                Decision::Continue | Decision::Skip => {}
                Decision::Accept if before_mail => m.session_done = true,
                Decision::Accept => m.message_done = true,
                Decision::Reject => return Verdict::reject(),
                Decision::Tempfail => return Verdict::tempfail(),
                Decision::ReplyCode(text) => return Verdict::reply_code(&text),
                Decision::Discard if before_mail => {}
                Decision::Discard => return Verdict::Discard,
            }
        }
        Verdict::Continue
    }

    /// End of data: every milter in turn gets the headers, body and end of message,
    /// and its modifications are applied to `msg` and `env` when it accepts.
    /// `lookup` gives the macros (the queue id `i` is known by now).
    pub fn message(
        &mut self,
        msg: &mut Message,
        env: &mut EnvelopeEdits,
        lookup: MacroLookup,
    ) -> Verdict {
        for m in &mut self.list {
            if m.failed {
                match m.spec.default_action {
                    DefaultAction::Tempfail => return Verdict::tempfail(),
                    DefaultAction::Reject => return Verdict::reject(),
                    DefaultAction::Quarantine => {
                        env.quarantine = Some(format!("milter {} unavailable", m.spec.name))
                    }
                    DefaultAction::Accept => {}
                }
                continue;
            }
            if !m.active() {
                continue;
            }
            let (eoh, eom) = content_macros(&self.config.macros, &m.symlists);
            let (eoh, eom) = (macro_values(eoh, lookup), macro_values(eom, lookup));
            match one_message(m, msg, env, &eoh, &eom) {
                Ok(Decision::Continue | Decision::Accept | Decision::Skip) => {}
                Ok(Decision::Reject) => return Verdict::reject(),
                Ok(Decision::Tempfail) => return Verdict::tempfail(),
                Ok(Decision::ReplyCode(text)) => return Verdict::reply_code(&text),
                Ok(Decision::Discard) => return Verdict::Discard,
                Err(e) => {
                    m.fail(&e);
                    match m.spec.default_action {
                        DefaultAction::Tempfail => return Verdict::tempfail(),
                        DefaultAction::Reject => return Verdict::reject(),
                        DefaultAction::Quarantine => {
                            env.quarantine = Some(format!("milter {} failed", m.spec.name))
                        }
                        DefaultAction::Accept => {}
                    }
                }
            }
        }
        Verdict::Continue
    }

    /// The message was delivered or refused: a milter that answered its end of
    /// message needs no ABORT; the others are told the message is gone.
    pub fn end_message(&mut self) {
        self.abort();
    }
}

/// Headers, end of headers, body and end of message to one milter; its edits are
/// applied when its final answer lets the message through.
fn one_message(
    m: &mut Milter,
    msg: &mut Message,
    env: &mut EnvelopeEdits,
    eoh_macros: &[(String, String)],
    eom_macros: &[(String, String)],
) -> Result<Decision, MilterError> {
    let steps = m.steps;
    let leadspc = steps & proto::HDR_LEADSPC != 0;
    m.in_message = true;
    if steps & proto::NOHDRS == 0 {
        for h in &msg.headers {
            let mut data = Vec::new();
            put_str(&mut data, &h.name);
            put_str(&mut data, &h.milter_value(leadspc));
            match m.event(
                cmd::HEADER,
                &data,
                steps & proto::NR_HDR != 0,
                true,
                "header",
            )? {
                Decision::Continue | Decision::Skip => {}
                other => return Ok(other),
            }
        }
    }
    if steps & proto::NOEOH == 0 {
        m.macros(cmd::EOH, eoh_macros)?;
        match m.event(cmd::EOH, &[], steps & proto::NR_EOH != 0, true, "eoh")? {
            Decision::Continue => {}
            other => return Ok(other),
        }
    }
    if steps & proto::NOBODY == 0 {
        let body = msg.crlf_body();
        for chunk in body.chunks(BODY_CHUNK) {
            match m.event(cmd::BODY, chunk, steps & proto::NR_BODY != 0, true, "body")? {
                Decision::Continue => {}
                Decision::Skip => break,
                other => return Ok(other),
            }
        }
    }
    m.macros(cmd::BODYEOB, eom_macros)?;
    m.event(cmd::BODYEOB, &[], true, true, "end of message")?;
    let mut edited = msg.clone();
    let mut edited_env = env.clone();
    let mut new_body = None;
    // Each packet is bounded in size and time; their number is bounded here, so a
    // milter cannot make smtpd hold more than MAX_EDIT_BYTES of edits.
    let mut edit_bytes = 0usize;
    loop {
        let r = m.receive("end of message")?;
        edit_bytes = edit_bytes.saturating_add(r.data_len());
        if edit_bytes > MAX_EDIT_BYTES {
            return Err(MilterError::TooManyEdits(MAX_EDIT_BYTES));
        }
        if let Some(needed) = action_needed(&r) {
            if m.actions & needed == 0 {
                log::warn!(
                    "milter {}: modification {r:?} was not negotiated; ignored",
                    m.spec.name
                );
                continue;
            }
            edited.apply(r, &mut edited_env, &mut new_body, leadspc);
            continue;
        }
        let d = crate::client::decision(r, "end of message")?;
        if matches!(d, Decision::Continue | Decision::Accept) {
            if let Some(b) = new_body {
                edited.replace_body(&b);
            }
            *msg = edited;
            *env = edited_env;
        }
        // After end of message the milter is back in its session state.
        m.in_message = false;
        m.message_done = true;
        return Ok(d);
    }
}

/// Most modification data one milter may send for one message: a replaced body of
/// up to message_size_limit's default with ample room for headers and recipients.
const MAX_EDIT_BYTES: usize = 64 * 1024 * 1024;

/// The SMFIF_ action a modification needs, None for a reply that is not one.
fn action_needed(r: &Response) -> Option<u32> {
    Some(match r {
        // libmilter's smfi_insheader asks for SMFIF_ADDHDRS, as smfi_addheader does
        // (OpenDMARC and OpenDKIM insert their Authentication-Results with it and
        // negotiate ADDHDRS alone); only changing or deleting needs CHGHDRS.
        Response::AddHeader { .. } | Response::InsHeader { .. } => act::ADDHDRS,
        Response::ChgHeader { .. } => act::CHGHDRS,
        Response::AddRcpt { args: None, .. } => act::ADDRCPT,
        Response::AddRcpt { args: Some(_), .. } => act::ADDRCPT_PAR,
        Response::DelRcpt(_) => act::DELRCPT,
        Response::ChgFrom { .. } => act::CHGFROM,
        Response::ReplBody(_) => act::CHGBODY,
        Response::Quarantine(_) => act::QUARANTINE,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserting_a_header_needs_addhdrs_as_in_libmilter() {
        let h = |index| (index, "A".to_string(), "b".to_string());
        let (index, name, value) = h(0);
        let ins = Response::InsHeader { index, name, value };
        assert_eq!(action_needed(&ins), Some(act::ADDHDRS));
        let (index, name, value) = h(1);
        let chg = Response::ChgHeader { index, name, value };
        assert_eq!(action_needed(&chg), Some(act::CHGHDRS));
    }
}
