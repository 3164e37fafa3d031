//! A message as milters see and change it: the header fields (name and raw value, the
//! value being everything after the colon, folding kept as LF line breaks) and the body
//! (LF line endings, as in a Rostfix queue file), plus the envelope changes milters ask
//! for. [`Message::parse`] splits stored content, [`Message::render`] joins it again,
//! [`Message::apply`] performs one end-of-message modification the way Postfix's
//! cleanup does (header indexes are 1-based and count fields of the same name).

use crate::codec::Response;

/// A header field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    /// After the colon, with its leading space and any folded lines (LF-joined).
    pub value: String,
}

impl Header {
    /// The value as the milter expects it, line breaks as CRLF: without
    /// SMFIP_HDR_LEADSPC the leading white space of the first line dropped, with it
    /// (`leadspc`) kept as is.
    pub fn milter_value(&self, leadspc: bool) -> String {
        let v = if leadspc {
            self.value.as_str()
        } else {
            self.value.trim_start_matches([' ', '\t'])
        };
        v.replace('\n', "\r\n")
    }
}

/// The content of one message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    pub headers: Vec<Header>,
    pub body: Vec<u8>,
}

/// Envelope changes requested by milters (addresses without angle brackets).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EnvelopeEdits {
    /// CHGFROM: the new sender and its ESMTP arguments.
    pub sender: Option<(String, Option<String>)>,
    /// ADDRCPT / ADDRCPT_PAR.
    pub add_rcpts: Vec<(String, Option<String>)>,
    /// DELRCPT.
    pub del_rcpts: Vec<String>,
    /// QUARANTINE: the reason; the message goes to the hold queue.
    pub quarantine: Option<String>,
}

impl EnvelopeEdits {
    pub fn is_empty(&self) -> bool {
        self.sender.is_none() && self.add_rcpts.is_empty() && self.del_rcpts.is_empty()
    }

    /// Applies CHGFROM, DELRCPT and ADDRCPT to the envelope to be queued (smtpd's and
    /// pickup's, the one place both take milter envelope changes from), with the
    /// ESMTP arguments Postfix's cleanup takes: RET= and ENVID= of CHGFROM, NOTIFY=
    /// and ORCPT= of ADDRCPT_PAR. Others, and bad values, are logged and ignored.
    pub fn apply_to(&self, env: &mut rostfix_queue::Envelope) {
        if let Some((sender, args)) = &self.sender {
            env.sender = sender.clone();
            for (attr, value) in sender_args(args.as_deref()) {
                env.attrs.retain(|(n, _)| n != attr);
                env.attrs.push((attr.to_string(), value));
            }
        }
        env.recipients.retain(|r| {
            !self.del_rcpts.iter().any(|d| {
                d.eq_ignore_ascii_case(&r.address) || d.eq_ignore_ascii_case(&r.orig_address)
            })
        });
        for (addr, args) in &self.add_rcpts {
            let (notify, orcpt) = rcpt_args(args.as_deref());
            env.recipients.push(rostfix_queue::Recipient {
                address: addr.clone(),
                orig_address: orcpt.unwrap_or_else(|| addr.clone()),
                notify,
                ..rostfix_queue::Recipient::default()
            });
        }
    }
}

/// `KEY=value` words of a milter's ESMTP arguments, keys upper-cased.
fn esmtp_words(args: Option<&str>) -> impl Iterator<Item = (String, &str, &str)> {
    args.unwrap_or("").split_whitespace().map(|word| {
        let (k, v) = word.split_once('=').unwrap_or((word, ""));
        (k.to_ascii_uppercase(), v, word)
    })
}

fn ignored(word: &str, from: &str) {
    log::warn!(
        "ignoring ESMTP argument from milter {from}: \"{}\"",
        word.chars().take(100).collect::<String>().escape_debug()
    );
}

/// CHGFROM's RET= and ENVID= as the queue attributes smtpd writes for them.
fn sender_args(args: Option<&str>) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for (key, value, word) in esmtp_words(args) {
        match key.as_str() {
            "RET" if value.eq_ignore_ascii_case("FULL") || value.eq_ignore_ascii_case("HDRS") => {
                out.push(("dsn_ret", value.to_ascii_uppercase()));
            }
            "ENVID" => match rostfix_proto::dsn_args::decode_xtext(value) {
                Some(id) if !id.is_empty() && id.len() <= 100 => {
                    if rostfix_proto::dsn_args::printable_ascii(&id) {
                        out.push(("dsn_envid", id));
                    } else {
                        ignored(word, "change sender");
                    }
                }
                _ => ignored(word, "change sender"),
            },
            _ => ignored(word, "change sender"),
        }
    }
    out
}

/// ADDRCPT_PAR's NOTIFY= (canonical form, "" when absent) and decoded ORCPT=.
fn rcpt_args(args: Option<&str>) -> (String, Option<String>) {
    let (mut notify, mut orcpt) = (String::new(), None);
    for (key, value, word) in esmtp_words(args) {
        let parsed = match key.as_str() {
            "NOTIFY" => rostfix_proto::dsn_args::parse_notify(value).map(|n| notify = n),
            // A milter may give a utf-8 ORCPT (RFC 6533) as Postfix's cleanup allows.
            "ORCPT" => rostfix_proto::dsn_args::parse_orcpt(value, true).map(|o| orcpt = Some(o)),
            _ => None,
        };
        if parsed.is_none() {
            ignored(word, "add recipient");
        }
    }
    (notify, orcpt)
}

/// Strips one pair of angle brackets: milters send `<a@b>` or `a@b`.
pub fn strip_brackets(addr: &str) -> &str {
    let a = addr.trim();
    a.strip_prefix('<')
        .and_then(|s| s.strip_suffix('>'))
        .unwrap_or(a)
}

/// Milter text (CRLF line breaks, maybe bare LF) to stored form (LF).
fn to_lf(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\r', "")
}

/// A milter's header value in stored form: LF line breaks, every line after the first
/// indented (a tab added where the milter's line starts in column 1) and no trailing
/// line break, so a value can neither start a field of its own nor end the header
/// section early.
fn header_value(text: &str) -> String {
    let lf = to_lf(text);
    let mut out = String::with_capacity(lf.len() + 8);
    for (i, line) in lf.trim_end_matches('\n').split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
            if !line.starts_with([' ', '\t']) {
                out.push('\t');
            }
        }
        out.push_str(line);
    }
    out
}

/// A field name RFC 5322 allows (printable ASCII but the colon): anything else from a
/// milter would break the header section it is written into.
fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| (33..=126).contains(&b) && b != b':')
}

impl Message {
    /// Splits stored content (LF line endings) at the first empty line.
    pub fn parse(content: &[u8]) -> Message {
        let mut headers: Vec<Header> = Vec::new();
        let mut pos = 0;
        while pos < content.len() {
            let end = content[pos..]
                .iter()
                .position(|b| *b == b'\n')
                .map_or(content.len(), |i| pos + i);
            let line = &content[pos..end];
            let next = (end + 1).min(content.len());
            if line.is_empty() {
                pos = next;
                break;
            }
            let text = String::from_utf8_lossy(line);
            let folded = matches!(line[0], b' ' | b'\t');
            match (folded, headers.last_mut(), text.split_once(':')) {
                (true, Some(last), _) => {
                    last.value.push('\n');
                    last.value.push_str(&text);
                }
                (false, _, Some((name, value)))
                    if !name.is_empty() && !name.contains([' ', '\t']) =>
                {
                    headers.push(Header {
                        name: name.to_string(),
                        value: value.to_string(),
                    });
                }
                // Not a header line: the body starts here (no separator line).
                _ => break,
            }
            pos = next;
        }
        Message {
            headers,
            body: content[pos..].to_vec(),
        }
    }

    /// The stored form: headers, an empty line, the body.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.body.len() + 64 * self.headers.len());
        for h in &self.headers {
            out.extend_from_slice(h.name.as_bytes());
            out.push(b':');
            out.extend_from_slice(h.value.as_bytes());
            out.push(b'\n');
        }
        out.push(b'\n');
        out.extend_from_slice(&self.body);
        out
    }

    /// The body with CRLF line endings, as milters receive it.
    pub fn crlf_body(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.body.len() + self.body.len() / 32);
        for b in &self.body {
            if *b == b'\n' {
                out.push(b'\r');
            }
            out.push(*b);
        }
        out
    }

    /// Position of the `index`-th (1-based) header called `name`.
    fn nth(&self, name: &str, index: u32) -> Option<usize> {
        let index = usize::try_from(index).ok()?.max(1);
        self.headers
            .iter()
            .enumerate()
            .filter(|(_, h)| h.name.eq_ignore_ascii_case(name))
            .nth(index - 1)
            .map(|(i, _)| i)
    }

    /// Applies one modification; a new body is returned in pieces, so `new_body`
    /// collects REPLBODY data (CRLF) until the end. Returns false for a reply that is
    /// not a modification.
    pub fn apply(
        &mut self,
        change: Response,
        env: &mut EnvelopeEdits,
        new_body: &mut Option<Vec<u8>>,
        leadspc: bool,
    ) -> bool {
        // Without SMFIP_HDR_LEADSPC the milter's value lacks the space after the colon;
        // with it the milter wrote the value as it is to appear.
        let field = |value: &str| {
            if leadspc {
                header_value(value)
            } else {
                format!(" {}", header_value(value))
            }
        };
        match &change {
            Response::AddHeader { name, .. }
            | Response::InsHeader { name, .. }
            | Response::ChgHeader { name, .. }
                if !valid_name(name) =>
            {
                log::warn!(
                    "milter header modification with bad field name {:?}: ignored",
                    name.escape_debug().to_string()
                );
                return true;
            }
            _ => {}
        }
        match change {
            Response::AddHeader { name, value } => self.headers.push(Header {
                name,
                value: field(&value),
            }),
            Response::InsHeader { index, name, value } => {
                let at = usize::try_from(index)
                    .unwrap_or(usize::MAX)
                    .min(self.headers.len());
                self.headers.insert(
                    at,
                    Header {
                        name,
                        value: field(&value),
                    },
                );
            }
            Response::ChgHeader { index, name, value } => match self.nth(&name, index) {
                Some(at) if value.is_empty() => {
                    self.headers.remove(at);
                }
                Some(at) => self.headers[at].value = field(&value),
                // Changing a header that is not there adds it (libmilter's rule).
                None if !value.is_empty() => self.headers.push(Header {
                    name,
                    value: field(&value),
                }),
                None => {}
            },
            Response::AddRcpt { rcpt, args } => {
                env.add_rcpts
                    .push((strip_brackets(&rcpt).to_string(), args));
            }
            Response::DelRcpt(rcpt) => env.del_rcpts.push(strip_brackets(&rcpt).to_string()),
            Response::ChgFrom { from, args } => {
                env.sender = Some((strip_brackets(&from).to_string(), args));
            }
            Response::ReplBody(data) => new_body.get_or_insert_with(Vec::new).extend(data),
            Response::Quarantine(reason) => env.quarantine = Some(reason),
            _ => return false,
        }
        true
    }

    /// Installs a replacement body collected from REPLBODY pieces (CRLF to LF).
    pub fn replace_body(&mut self, crlf: &[u8]) {
        let mut body = Vec::with_capacity(crlf.len());
        let mut i = 0;
        while i < crlf.len() {
            if crlf[i] == b'\r' && crlf.get(i + 1) == Some(&b'\n') {
                i += 1;
                continue;
            }
            body.push(crlf[i]);
            i += 1;
        }
        self.body = body;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] =
        b"Received: from x\n\tby y\nSubject: hi\nX-A: 1\nx-a: 2\n\nbody line\nsecond\n";

    #[test]
    fn parses_and_renders_unchanged() {
        let m = Message::parse(MSG);
        assert_eq!(m.headers.len(), 4);
        assert_eq!(m.headers[0].value, " from x\n\tby y");
        assert_eq!(m.headers[0].milter_value(false), "from x\r\n\tby y");
        assert_eq!(m.body, b"body line\nsecond\n");
        assert_eq!(m.render(), MSG);
        assert_eq!(m.crlf_body(), b"body line\r\nsecond\r\n");
    }

    #[test]
    fn esmtp_arguments_of_envelope_changes_are_applied() {
        let edits = EnvelopeEdits {
            sender: Some(("new@x".into(), Some("RET=hdrs ENVID=QQ+2B1 SIZE=5".into()))),
            add_rcpts: vec![
                (
                    "archive@x".into(),
                    Some("NOTIFY=never ORCPT=rfc822;a+2Bb@x".into()),
                ),
                ("plain@x".into(), Some("NOTIFY=bogus XYZ=1".into())),
            ],
            ..EnvelopeEdits::default()
        };
        let mut env = rostfix_queue::Envelope {
            attrs: vec![("dsn_ret".into(), "FULL".into())],
            ..rostfix_queue::Envelope::default()
        };
        edits.apply_to(&mut env);
        assert_eq!(env.sender, "new@x");
        assert_eq!(env.attr("dsn_ret"), Some("HDRS"));
        assert_eq!(env.attr("dsn_envid"), Some("QQ+1"));
        assert_eq!(env.attrs.len(), 2);
        let r = &env.recipients;
        assert_eq!(
            (
                r[0].address.as_str(),
                r[0].orig_address.as_str(),
                r[0].notify.as_str()
            ),
            ("archive@x", "a+b@x", "NEVER")
        );
        assert_eq!(
            (r[1].orig_address.as_str(), r[1].notify.as_str()),
            ("plain@x", "")
        );
    }

    #[test]
    fn milter_header_text_cannot_break_the_header_section() {
        let mut m = Message::parse(MSG);
        let (mut env, mut body) = (EnvelopeEdits::default(), None);
        let add = |name: &str, value: &str| Response::AddHeader {
            name: name.into(),
            value: value.into(),
        };
        assert!(m.apply(
            add("X-A", "one\r\nX-Evil: 1\r\n\r\nbody?\r\n"),
            &mut env,
            &mut body,
            false
        ));
        assert!(m.apply(add("Bad Name", "v"), &mut env, &mut body, false));
        assert!(m.apply(add("X-B\nX-C", "v"), &mut env, &mut body, false));
        let text = String::from_utf8(m.render()).unwrap();
        assert!(
            text.contains("\nX-A: one\n\tX-Evil: 1\n\t\n\tbody?\n\nbody line\n"),
            "{text}"
        );
        assert_eq!(Message::parse(text.as_bytes()).headers.len(), 5);
    }

    #[test]
    fn leading_space_kept_both_ways_under_hdr_leadspc() {
        let mut m = Message::parse(MSG);
        assert_eq!(m.headers[0].milter_value(true), " from x\r\n\tby y");
        let (mut env, mut body) = (EnvelopeEdits::default(), None);
        let add = |value: &str| Response::AddHeader {
            name: "X-Lead".into(),
            value: value.into(),
        };
        assert!(m.apply(add("\tindented"), &mut env, &mut body, true));
        assert!(m.apply(add("tight"), &mut env, &mut body, true));
        let text = String::from_utf8(m.render()).unwrap();
        assert!(text.contains("X-Lead:\tindented\nX-Lead:tight\n"), "{text}");
    }

    #[test]
    fn header_modifications_follow_libmilter_indexes() {
        let mut m = Message::parse(MSG);
        let mut env = EnvelopeEdits::default();
        let mut body = None;
        let chg = |index, value: &str| Response::ChgHeader {
            index,
            name: "X-A".into(),
            value: value.into(),
        };
        assert!(m.apply(chg(2, "two"), &mut env, &mut body, false));
        assert_eq!(m.headers[3].value, " two");
        assert!(m.apply(chg(1, ""), &mut env, &mut body, false));
        assert_eq!(m.headers.len(), 3);
        let ins = Response::InsHeader {
            index: 0,
            name: "X-Top".into(),
            value: "t".into(),
        };
        assert!(m.apply(ins, &mut env, &mut body, false));
        assert_eq!(m.headers[0].name, "X-Top");
        let add = Response::AddHeader {
            name: "X-End".into(),
            value: "a\r\n\tb".into(),
        };
        assert!(m.apply(add, &mut env, &mut body, false));
        assert!(m.render().starts_with(
            b"X-Top: t\nReceived: from x\n\tby y\nSubject: hi\nx-a: two\nX-End: a\n\tb\n\n"
        ));
        assert!(!m.apply(Response::Continue, &mut env, &mut body, false));
    }

    #[test]
    fn envelope_and_body_changes() {
        let mut m = Message::parse(MSG);
        let mut env = EnvelopeEdits::default();
        let mut body = None;
        m.apply(
            Response::DelRcpt("<a@x>".into()),
            &mut env,
            &mut body,
            false,
        );
        m.apply(
            Response::AddRcpt {
                rcpt: "<b@x>".into(),
                args: None,
            },
            &mut env,
            &mut body,
            false,
        );
        m.apply(
            Response::ChgFrom {
                from: "<s@x>".into(),
                args: None,
            },
            &mut env,
            &mut body,
            false,
        );
        m.apply(
            Response::ReplBody(b"new\r\n".to_vec()),
            &mut env,
            &mut body,
            false,
        );
        m.apply(
            Response::ReplBody(b"body\r\n".to_vec()),
            &mut env,
            &mut body,
            false,
        );
        assert_eq!(env.del_rcpts, ["a@x"]);
        assert_eq!(env.add_rcpts, [("b@x".to_string(), None)]);
        assert_eq!(env.sender, Some(("s@x".to_string(), None)));
        m.replace_body(&body.unwrap());
        assert_eq!(m.body, b"new\nbody\n");
    }

    #[test]
    fn content_without_separator_or_headers() {
        let m = Message::parse(b"not a header line\nmore\n");
        assert!(m.headers.is_empty());
        assert_eq!(m.body, b"not a header line\nmore\n");
        let m = Message::parse(b"A: b\n");
        assert_eq!(m.headers.len(), 1);
        assert!(m.body.is_empty());
    }
}
