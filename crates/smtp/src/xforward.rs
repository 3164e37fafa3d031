//! XFORWARD (Postfix's XFORWARD_README), client side: with smtp_send_xforward_command
//! = yes and a server that announces XFORWARD, the original client's name, address,
//! protocol, HELO name, queue id and source are sent before MAIL FROM, so a content
//! filter (amavisd-new) and the re-entry smtpd see who really sent the message, not
//! 127.0.0.1. Only the attributes the server lists are sent; unknown values go as
//! `[UNAVAILABLE]`; values are xtext-encoded; commands stay under 512 bytes.

/// The value for an attribute the message does not carry.
pub const UNAVAILABLE: &str = "[UNAVAILABLE]";
/// Longest XFORWARD command line, CRLF excluded (Postfix's limit: RFC 5321's 512).
const MAX_COMMAND: usize = 510;

/// The attribute names, in the order Postfix sends them.
const NAMES: [&str; 7] = ["NAME", "ADDR", "PORT", "PROTO", "HELO", "IDENT", "SOURCE"];

/// Which attribute names the server announced (a bit per entry of `NAMES`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Offered(u8);

impl Offered {
    /// From the upper-cased EHLO keyword lines; `None` without an XFORWARD line.
    pub fn from_extensions(ext: &[String]) -> Option<Offered> {
        let line = ext
            .iter()
            .find(|e| e.split_whitespace().next() == Some("XFORWARD"))?;
        let mut bits = 0u8;
        for word in line.split_whitespace().skip(1) {
            if let Some(i) = NAMES.iter().position(|n| *n == word) {
                bits |= 1 << i;
            }
        }
        Some(Offered(bits))
    }

    fn has(self, i: usize) -> bool {
        self.0 & (1 << i) != 0
    }
}

/// What the queue file says about the original client, in `NAMES` order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Attributes {
    pub name: Option<String>,
    pub addr: Option<String>,
    pub port: Option<String>,
    pub proto: Option<String>,
    pub helo: Option<String>,
    pub ident: Option<String>,
    /// `LOCAL` (a local submission) or `REMOTE`.
    pub source: &'static str,
}

impl Attributes {
    /// From the queue file's attributes (`attr(name)`) and the queue id.
    pub fn from_queue<'a>(attr: impl Fn(&str) -> Option<&'a str>, queue_id: &str) -> Attributes {
        let own = |n: &str| attr(n).filter(|v| !v.is_empty()).map(str::to_string);
        let addr = own("client_address").map(|a| {
            if a.contains(':') && !a.to_ascii_uppercase().starts_with("IPV6:") {
                format!("IPV6:{a}")
            } else {
                a
            }
        });
        // XFORWARD knows SMTP and ESMTP; the +S/+A variants are ours to keep.
        let proto = own("protocol").map(|p| {
            if p.starts_with("ESMTP") {
                "ESMTP".to_string()
            } else {
                p
            }
        });
        Attributes {
            name: own("client_name"),
            addr,
            port: own("client_port"),
            proto,
            helo: own("helo_name"),
            ident: Some(queue_id.to_string()).filter(|q| !q.is_empty()),
            source: if attr("rewrite_context") == Some("local") {
                "LOCAL"
            } else {
                "REMOTE"
            },
        }
    }

    fn value(&self, i: usize) -> Option<&str> {
        match i {
            0 => self.name.as_deref(),
            1 => self.addr.as_deref(),
            2 => self.port.as_deref(),
            3 => self.proto.as_deref(),
            4 => self.helo.as_deref(),
            5 => self.ident.as_deref(),
            _ => Some(self.source),
        }
    }

    /// The XFORWARD command lines (without CRLF) for what the server offered.
    pub fn commands(&self, offered: Offered) -> Vec<String> {
        let mut out = Vec::new();
        let mut line = String::from("XFORWARD");
        for (i, name) in NAMES.iter().enumerate() {
            if !offered.has(i) {
                continue;
            }
            let value = self
                .value(i)
                .map(xtext)
                .unwrap_or_else(|| UNAVAILABLE.into());
            let item = format!(" {name}={value}");
            if line.len() + item.len() > MAX_COMMAND && line.len() > "XFORWARD".len() {
                out.push(std::mem::replace(&mut line, String::from("XFORWARD")));
            }
            // One value longer than a line on its own is cut, never sent over-long.
            let room = MAX_COMMAND.saturating_sub(line.len());
            line.push_str(&item[..floor_boundary(&item, room)]);
        }
        if line.len() > "XFORWARD".len() {
            out.push(line);
        }
        out
    }
}

use rostfix_proto::xtext;

/// The largest index <= `at` that is a char boundary of `s` (xtext output is ASCII,
/// so this is `at` in practice).
fn floor_boundary(s: &str, at: usize) -> usize {
    let mut i = at.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs() -> Attributes {
        let kv = [
            ("client_name", "mail.example.net"),
            ("client_address", "192.0.2.7"),
            ("protocol", "ESMTPSA"),
            ("helo_name", "helo name+x"),
        ];
        Attributes::from_queue(
            |n| kv.iter().find(|(k, _)| *k == n).map(|(_, v)| *v),
            "4ABC123",
        )
    }

    #[test]
    fn sends_what_the_server_offers_xtext_encoded() {
        let offered = Offered::from_extensions(&[
            "PIPELINING".into(),
            "XFORWARD NAME ADDR PROTO HELO IDENT SOURCE PORT".into(),
        ])
        .expect("offered");
        assert_eq!(
            attrs().commands(offered),
            ["XFORWARD NAME=mail.example.net ADDR=192.0.2.7 PORT=[UNAVAILABLE] PROTO=ESMTP HELO=helo+20name+2Bx IDENT=4ABC123 SOURCE=REMOTE"]
        );
        let some = Offered::from_extensions(&["XFORWARD ADDR".into()]).expect("offered");
        assert_eq!(attrs().commands(some), ["XFORWARD ADDR=192.0.2.7"]);
    }

    #[test]
    fn nothing_without_the_keyword_and_local_mail_is_local() {
        assert_eq!(Offered::from_extensions(&["XCLIENT NAME".into()]), None);
        let local = Attributes::from_queue(|n| (n == "rewrite_context").then_some("local"), "Q1");
        let all = Offered::from_extensions(&["XFORWARD NAME ADDR SOURCE".into()]).expect("offered");
        assert_eq!(
            local.commands(all),
            ["XFORWARD NAME=[UNAVAILABLE] ADDR=[UNAVAILABLE] SOURCE=LOCAL"]
        );
    }

    #[test]
    fn ipv6_addresses_get_the_prefix_and_long_values_split_commands() {
        let a = Attributes::from_queue(
            |n| match n {
                "client_address" => Some("2001:db8::1"),
                "helo_name" => Some("h"),
                _ => None,
            },
            "Q",
        );
        let offered = Offered::from_extensions(&["XFORWARD ADDR".into()]).expect("offered");
        assert_eq!(a.commands(offered), ["XFORWARD ADDR=IPV6:2001:db8::1"]);
        let long = Attributes {
            name: Some("n".repeat(300)),
            helo: Some("h".repeat(300)),
            ..Attributes::default()
        };
        let both = Offered::from_extensions(&["XFORWARD NAME HELO".into()]).expect("offered");
        let cmds = long.commands(both);
        assert_eq!(cmds.len(), 2);
        assert!(cmds.iter().all(|c| c.len() <= MAX_COMMAND));
    }
}
