//! The `filter` attribute: Postfix's FILTER record, `transport:destination`. The
//! receiving step (smtpd, pickup) writes it from content_filter (or a FILTER action);
//! qmgr then sends every recipient of the message through that transport and next hop
//! instead of its normal route. One parser, so that what the writers accept is exactly
//! what qmgr understands.

/// The attribute's name in the queue file.
pub const FILTER_ATTR: &str = "filter";

/// A parsed `transport:destination`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentFilter {
    /// master.cf service name.
    pub transport: String,
    /// Next hop as written; empty when the value named none.
    pub nexthop: String,
}

/// Why a filter value is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("no transport name in \"{0}\" (expected transport:destination)")]
    NoTransport(String),
    #[error("white space or control character in \"{0}\"")]
    BadCharacter(String),
    #[error("transport \"{0}\" is not a master.cf service name")]
    BadTransport(String),
}

/// A transport becomes the socket path `private/NAME`: a plain service name only.
fn service_name(name: &str) -> bool {
    !name.starts_with('.')
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

impl ContentFilter {
    /// Parses `transport[:destination]`; an empty value is no filter (`Ok(None)`).
    /// The destination keeps its own colons (`[127.0.0.1]:10024`).
    pub fn parse(value: &str) -> Result<Option<ContentFilter>, FilterError> {
        let value = value.trim();
        if value.is_empty() {
            return Ok(None);
        }
        if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(FilterError::BadCharacter(value.to_string()));
        }
        let (transport, nexthop) = value.split_once(':').unwrap_or((value, ""));
        if transport.is_empty() {
            return Err(FilterError::NoTransport(value.to_string()));
        }
        if !service_name(transport) {
            return Err(FilterError::BadTransport(transport.to_string()));
        }
        Ok(Some(ContentFilter {
            transport: transport.to_string(),
            nexthop: nexthop.to_string(),
        }))
    }

    /// The attribute value, `transport:destination`.
    pub fn to_attr(&self) -> String {
        format!("{}:{}", self.transport, self.nexthop)
    }

    /// The next hop qmgr uses, as Postfix's qmgr does: the destination when given,
    /// else default_filter_nexthop, else the recipient's domain, else myhostname.
    pub fn nexthop_for(&self, default_nexthop: &str, recipient: &str, myhostname: &str) -> String {
        if !self.nexthop.is_empty() {
            return self.nexthop.clone();
        }
        if !default_nexthop.is_empty() {
            return default_nexthop.to_string();
        }
        match recipient.rsplit_once('@') {
            Some((_, domain)) if !domain.is_empty() => domain.to_string(),
            _ => myhostname.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(t: &str, n: &str) -> ContentFilter {
        ContentFilter {
            transport: t.into(),
            nexthop: n.into(),
        }
    }

    #[test]
    fn parses_the_amavis_form_keeping_the_port() {
        assert_eq!(
            ContentFilter::parse("smtp-amavis:[127.0.0.1]:10024"),
            Ok(Some(f("smtp-amavis", "[127.0.0.1]:10024")))
        );
        assert_eq!(ContentFilter::parse("  "), Ok(None));
        assert_eq!(ContentFilter::parse("scan"), Ok(Some(f("scan", ""))));
        assert_eq!(ContentFilter::parse("scan:"), Ok(Some(f("scan", ""))));
    }

    #[test]
    fn refuses_a_value_without_transport_or_with_spaces() {
        assert!(matches!(
            ContentFilter::parse(":[127.0.0.1]"),
            Err(FilterError::NoTransport(_))
        ));
        assert!(matches!(
            ContentFilter::parse("../../x:c"),
            Err(FilterError::BadTransport(_))
        ));
        assert!(matches!(
            ContentFilter::parse("a b:c"),
            Err(FilterError::BadCharacter(_))
        ));
    }

    #[test]
    fn nexthop_falls_back_as_postfix_qmgr_does() {
        let x = f("scan", "");
        assert_eq!(x.nexthop_for("", "u@example.com", "mx"), "example.com");
        assert_eq!(
            x.nexthop_for("relay.test", "u@example.com", "mx"),
            "relay.test"
        );
        assert_eq!(x.nexthop_for("", "postmaster", "mx"), "mx");
        assert_eq!(
            f("scan", "[::1]:25").nexthop_for("d", "u@e", "m"),
            "[::1]:25"
        );
        assert_eq!(f("scan", "[::1]:25").to_attr(), "scan:[::1]:25");
    }
}
