//! The `%` templates of SQL tables (Postfix's db_common): a query such as
//! `SELECT goto FROM alias WHERE address='%s'` is filled in from the lookup key with
//! each piece quoted for the server, and `result_format` shapes each value found.
//!
//! Lower-case `%s %u %d` name the value being expanded (the key in a query, the
//! found value in a result format); upper-case `%S %U %D` and `%1`..`%9` (domain
//! labels counted from the right) always name the lookup key. A template that needs
//! a part the input lacks (a domain for `%d`, a non-empty local part for `%u`,
//! enough labels for `%3`) is skipped: the query is not sent, the value not used.

use std::fmt;

/// What a template refers to, one per `%` specifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spec {
    Percent,
    Whole,
    User,
    Domain,
    KeyWhole,
    KeyUser,
    KeyDomain,
    Label(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Spec(Spec),
}

/// A bad `%` in a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError(String);

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid template '{}'", self.0)
    }
}

/// A parsed query or result template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    text: String,
    pieces: Vec<Piece>,
    is_query: bool,
}

/// What the query and result templates of one table need, together (Postfix keeps
/// one context for both, so a `%D` in the result format also keeps domain-less keys
/// from being queried).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    key_user: bool,
    key_domain: bool,
    value_user: bool,
    value_domain: bool,
    labels: usize,
}

impl Needs {
    /// The combined needs of `templates`.
    pub fn of(templates: &[&Template]) -> Needs {
        let mut n = Needs::default();
        for t in templates {
            for p in &t.pieces {
                let Piece::Spec(spec) = p else { continue };
                match (spec, t.is_query) {
                    (Spec::User, true) | (Spec::KeyUser, _) => n.key_user = true,
                    (Spec::Domain, true) | (Spec::KeyDomain, _) => n.key_domain = true,
                    (Spec::User, false) => n.value_user = true,
                    (Spec::Domain, false) => n.value_domain = true,
                    (Spec::Label(k), _) => {
                        n.key_domain = true;
                        n.labels = n.labels.max(*k);
                    }
                    _ => {}
                }
            }
        }
        n
    }
}

/// `text` split at its last `@`: (local part, domain) or None without an `@`.
fn split_at(text: &str) -> Option<(&str, &str)> {
    text.rfind('@').map(|at| (&text[..at], &text[at + 1..]))
}

/// True when `text` lacks what `need_user`/`need_domain` ask for.
fn lacks(text: &str, need_user: bool, need_domain: bool) -> bool {
    match split_at(text) {
        None => need_domain,
        Some((user, domain)) => {
            (need_domain && domain.is_empty()) || (need_user && user.is_empty())
        }
    }
}

impl Template {
    /// Parse `text`; `is_query` says whether lower-case specifiers name the key.
    pub fn parse(text: &str, is_query: bool) -> Result<Template, TemplateError> {
        let mut pieces = Vec::new();
        let mut lit = String::new();
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                lit.push(c);
                continue;
            }
            let spec = match chars.next() {
                Some('%') => Spec::Percent,
                Some('s') => Spec::Whole,
                Some('u') => Spec::User,
                Some('d') => Spec::Domain,
                Some('S') => Spec::KeyWhole,
                Some('U') => Spec::KeyUser,
                Some('D') => Spec::KeyDomain,
                Some(d @ '1'..='9') => Spec::Label(d as usize - '0' as usize),
                _ => return Err(TemplateError(text.to_string())),
            };
            if spec == Spec::Percent {
                lit.push('%');
                continue;
            }
            if !lit.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut lit)));
            }
            pieces.push(Piece::Spec(spec));
        }
        if !lit.is_empty() {
            pieces.push(Piece::Text(lit));
        }
        Ok(Template {
            text: text.to_string(),
            pieces,
            is_query,
        })
    }

    /// The template as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Fill in the template. `value` is the key for a query, the found value for a
    /// result format; `key` is the lookup key (the same as `value` for a query).
    /// `quote` escapes each inserted piece for the database. None: the input lacks a
    /// part the templates need, so nothing is to be queried or used.
    pub fn expand(
        &self,
        needs: &Needs,
        value: &str,
        key: &str,
        quote: &dyn Fn(&str, &mut String),
    ) -> Option<String> {
        if self.is_query {
            if lacks(value, needs.key_user, needs.key_domain) {
                return None;
            }
        } else if lacks(value, needs.value_user, needs.value_domain)
            || lacks(key, needs.key_user, needs.key_domain)
        {
            return None;
        }
        let labels: Vec<&str> = match split_at(key) {
            Some((_, domain)) if needs.labels > 0 => {
                domain.split('.').filter(|l| !l.is_empty()).collect()
            }
            _ => Vec::new(),
        };
        if labels.len() < needs.labels {
            return None;
        }
        let user_of = |t: &'_ str| -> String { split_at(t).map_or(t, |(u, _)| u).to_string() };
        let domain_of = |t: &'_ str| -> String { split_at(t).map_or("", |(_, d)| d).to_string() };
        let mut out = String::with_capacity(self.text.len() + value.len());
        for piece in &self.pieces {
            let part = match piece {
                Piece::Text(t) => {
                    out.push_str(t);
                    continue;
                }
                Piece::Spec(Spec::Percent) => "%".to_string(),
                Piece::Spec(Spec::Whole) => value.to_string(),
                Piece::Spec(Spec::User) => user_of(value),
                Piece::Spec(Spec::Domain) => domain_of(value),
                Piece::Spec(Spec::KeyWhole) => key.to_string(),
                Piece::Spec(Spec::KeyUser) => user_of(key),
                Piece::Spec(Spec::KeyDomain) => domain_of(key),
                Piece::Spec(Spec::Label(k)) => labels[labels.len() - k].to_string(),
            };
            quote(&part, &mut out);
        }
        Some(out)
    }
}

/// Quoting for servers that take `''` for a quote inside a string (SQLite,
/// PostgreSQL with standard_conforming_strings on).
pub fn quote_doubling(text: &str, out: &mut String) {
    for c in text.chars() {
        if c == '\'' {
            out.push('\'');
        }
        out.push(c);
    }
}

/// Quoting for PostgreSQL with standard_conforming_strings off, where a backslash
/// in a string is an escape too.
pub fn quote_doubling_backslash(text: &str, out: &mut String) {
    for c in text.chars() {
        if c == '\'' || c == '\\' {
            out.push(c);
        }
        out.push(c);
    }
}

/// Quoting as mysql_real_escape_string does when backslash escapes are on (MySQL's
/// and MariaDB's default): a backslash before each character that could end or
/// confuse a quoted string, in either quote style.
pub fn quote_backslash(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '\0' => out.push_str("\\0"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\x1a' => out.push_str("\\Z"),
            '\\' | '\'' | '"' => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
}

/// No quoting (result formats, and the check whether a query is to be sent at all).
pub fn no_quote(text: &str, out: &mut String) {
    out.push_str(text);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(t: &str, key: &str) -> Option<String> {
        let q = Template::parse(t, true).unwrap();
        let needs = Needs::of(&[&q]);
        q.expand(&needs, key, key, &quote_doubling)
    }

    #[test]
    fn key_parts() {
        let t = "s=%s u=%u d=%d 1=%1 2=%2 %%";
        assert_eq!(
            query(t, "joe@mail.example.com").unwrap(),
            "s=joe@mail.example.com u=joe d=mail.example.com 1=com 2=example %"
        );
        assert_eq!(query("%S %U %D", "a@b.c").unwrap(), "a@b.c a b.c");
    }

    #[test]
    fn missing_parts_suppress_the_query() {
        assert_eq!(query("x='%d'", "joe"), None);
        assert_eq!(query("x='%d'", "joe@"), None);
        assert_eq!(query("x='%u'", "@example.com"), None);
        assert_eq!(query("x='%3'", "joe@example.com"), None);
        assert_eq!(query("x='%u'", "joe").unwrap(), "x='joe'");
        assert_eq!(query("x='%2'", "joe@a..b").unwrap(), "x='a'");
        assert_eq!(query("x='%s'", "joe").unwrap(), "x='joe'");
    }

    #[test]
    fn quotes_in_keys_are_escaped() {
        assert_eq!(
            query("WHERE a='%s'", "x' OR '1'='1@example.com").unwrap(),
            "WHERE a='x'' OR ''1''=''1@example.com'"
        );
        assert_eq!(
            query("WHERE u='%u' AND d='%d'", "o'neil@ex'ample.com").unwrap(),
            "WHERE u='o''neil' AND d='ex''ample.com'"
        );
        let mut out = String::new();
        quote_backslash("a'b\"c\\d\0e\n", &mut out);
        assert_eq!(out, "a\\'b\\\"c\\\\d\\0e\\n");
        out.clear();
        quote_doubling_backslash("a'\\", &mut out);
        assert_eq!(out, "a''\\\\");
    }

    #[test]
    fn percent_literal_is_not_a_quote_target() {
        assert_eq!(query("LIKE '%%%s'", "a'b").unwrap(), "LIKE '%a''b'");
    }

    #[test]
    fn bad_templates() {
        assert!(Template::parse("%x", true).is_err());
        assert!(Template::parse("trailing %", true).is_err());
        assert!(Template::parse("%0", false).is_err());
    }

    #[test]
    fn result_format_parts() {
        let q = Template::parse("SELECT x WHERE k='%s'", true).unwrap();
        let r = Template::parse("smtp:[%d] %u %S %D %1", false).unwrap();
        let needs = Needs::of(&[&q, &r]);
        assert_eq!(
            r.expand(&needs, "relay@gw.example.net", "joe@example.com", &no_quote)
                .unwrap(),
            "smtp:[gw.example.net] relay joe@example.com example.com com"
        );
        // The result needs a domain; a value without one is skipped.
        assert_eq!(
            r.expand(&needs, "relay", "joe@example.com", &no_quote),
            None
        );
        // %D in the result format keeps domain-less keys from being queried at all.
        assert_eq!(q.expand(&needs, "joe", "joe", &no_quote), None);
    }
}
