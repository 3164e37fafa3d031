//! `$name` expansion in Postfix syntax.
//!
//! Supported: `$name`, `${name}`, `$(name)`, `${name?text}` (text when name is
//! non-empty), `${name:text}` (text when name is empty), the Postfix 3 form
//! `${name?{text1}:{text2}}`, and `$$` for a literal `$`. The text of a conditional is
//! itself expanded. Unknown names expand to nothing. Anything else after `$` is kept
//! literally, as is an unterminated `${`.

use crate::ConfigError;

/// Nesting deeper than this is a loop such as `a = $b`, `b = $a` (Postfix's limit too).
pub(crate) const MAX_DEPTH: usize = 100;

/// Expands `$name` in values; `lookup` gives the unexpanded value of a name.
pub(crate) struct Expander<'a> {
    pub lookup: &'a dyn Fn(&str) -> Option<String>,
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Finds the index of the bracket closing the one just before `rest`, counting nesting.
fn matching_close(rest: &str, open: char, close: char) -> Option<usize> {
    let mut depth = 1usize;
    for (index, c) in rest.char_indices() {
        if c == open {
            depth += 1;
        } else if c == close {
            depth -= 1;
            if depth == 0 {
                return Some(index);
            }
        }
    }
    None
}

/// Splits `{a}:{b}` (white space allowed around `:`) into `(a, Some(b))`, or `{a}` into
/// `(a, None)`; None when `text` is not in that form.
fn braced_pair(text: &str) -> Option<(&str, Option<&str>)> {
    let text = text.trim();
    let body = text.strip_prefix('{')?;
    let end = matching_close(body, '{', '}')?;
    let first = &body[..end];
    let rest = body[end + 1..].trim_start();
    if rest.is_empty() {
        return Some((first, None));
    }
    let rest = rest.strip_prefix(':')?.trim_start();
    let body = rest.strip_prefix('{')?;
    let end = matching_close(body, '{', '}')?;
    if !body[end + 1..].trim().is_empty() {
        return None;
    }
    Some((first, Some(&body[..end])))
}

impl Expander<'_> {
    /// The expanded value of `name` (empty when unknown), at nesting `depth`.
    pub fn value_of(&self, name: &str, depth: usize) -> Result<String, ConfigError> {
        if depth > MAX_DEPTH {
            return Err(ConfigError::Recursion {
                param: name.to_string(),
            });
        }
        match (self.lookup)(name) {
            Some(raw) => self.expand(&raw, depth + 1),
            None => Ok(String::new()),
        }
    }

    /// Expands `text`; `depth` counts the names being expanded around it.
    pub fn expand(&self, text: &str, depth: usize) -> Result<String, ConfigError> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(dollar) = rest.find('$') {
            out.push_str(&rest[..dollar]);
            let after = &rest[dollar + 1..];
            let Some(next) = after.chars().next() else {
                out.push('$');
                rest = after;
                break;
            };
            if next == '$' {
                out.push('$');
                rest = &after[1..];
            } else if next == '{' || next == '(' {
                let close = if next == '{' { '}' } else { ')' };
                let inner_all = &after[1..];
                match matching_close(inner_all, next, close) {
                    Some(end) => {
                        out.push_str(&self.expand_braced(&inner_all[..end], depth)?);
                        rest = &inner_all[end + 1..];
                    }
                    None => {
                        // Unterminated: keep the rest literally rather than guess.
                        out.push('$');
                        rest = after;
                        out.push_str(rest);
                        rest = "";
                    }
                }
            } else if is_name_char(next) {
                let end = after
                    .find(|c: char| !is_name_char(c))
                    .unwrap_or(after.len());
                out.push_str(&self.value_of(&after[..end], depth)?);
                rest = &after[end..];
            } else {
                out.push('$');
                rest = after;
            }
        }
        out.push_str(rest);
        Ok(out)
    }

    /// The inside of `${...}` or `$(...)`.
    fn expand_braced(&self, inner: &str, depth: usize) -> Result<String, ConfigError> {
        let name_end = inner
            .find(|c: char| !is_name_char(c))
            .unwrap_or(inner.len());
        let name = &inner[..name_end];
        let op_text = &inner[name_end..];
        if name.is_empty() {
            // Postfix 3's `${{$a} == {$b} ? ...}` and other forms we do not evaluate.
            return Ok(format!("${{{inner}}}"));
        }
        let mut chars = op_text.chars();
        match chars.next() {
            None => self.value_of(name, depth),
            Some(op @ ('?' | ':')) => {
                let value = self.value_of(name, depth)?;
                let text = chars.as_str();
                let (if_set, if_empty) = match (op, braced_pair(text)) {
                    ('?', Some((a, b))) => (Some(a), b),
                    ('?', None) => (Some(text), None),
                    _ => (None, Some(text)),
                };
                let chosen = if value.is_empty() { if_empty } else { if_set };
                match chosen {
                    Some(text) => self.expand(text, depth + 1),
                    None => Ok(String::new()),
                }
            }
            Some(_) => Ok(format!("${{{inner}}}")),
        }
    }
}

/// Expands a template whose `$name`s are not main.cf parameters but values of the
/// moment (default_rbl_reply's `$rbl_code`, `$client_address`...): `lookup` gives
/// each value, which is used literally (a `$` in it is not expanded again).
pub fn expand_template(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, ConfigError> {
    let escaped = |name: &str| lookup(name).map(|v| v.replace('$', "$$"));
    Expander { lookup: &escaped }.expand(text, 0)
}

/// Names a value refers to with `$name`, `${name...}` or `$(name...)` (also inside
/// conditional text), for the unused-parameter check.
pub(crate) fn referenced_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(dollar) = rest.find('$') {
        let mut after = &rest[dollar + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            rest = stripped;
            continue;
        }
        if let Some(stripped) = after.strip_prefix(['{', '(']) {
            after = stripped;
        }
        let end = after
            .find(|c: char| !is_name_char(c))
            .unwrap_or(after.len());
        if end > 0 {
            names.push(after[..end].to_string());
        }
        rest = &after[end..];
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(name: &str) -> Option<String> {
        let value = match name {
            "myhostname" => "mail.example.org",
            "mail_name" => "Rostfix",
            "empty" => "",
            "nested" => "<$myhostname>",
            "loop_a" => "$loop_b",
            "loop_b" => "x${loop_a}",
            "self" => "$self",
            _ => return None,
        };
        Some(value.to_string())
    }

    fn expand(text: &str) -> Result<String, ConfigError> {
        let lookup = table;
        Expander { lookup: &lookup }.expand(text, 0)
    }

    fn ok(text: &str) -> String {
        expand(text).unwrap_or_else(|e| format!("ERROR {e}"))
    }

    #[test]
    fn plain_forms() {
        assert_eq!(
            ok("$myhostname ESMTP $mail_name"),
            "mail.example.org ESMTP Rostfix"
        );
        assert_eq!(ok("${myhostname}x"), "mail.example.orgx");
        assert_eq!(ok("$(mail_name)!"), "Rostfix!");
        assert_eq!(ok("a$$b"), "a$b");
        assert_eq!(ok("[$nested]"), "[<mail.example.org>]");
        assert_eq!(ok("$unknown|"), "|");
        assert_eq!(ok("cost 5$"), "cost 5$");
        assert_eq!(ok("$ x"), "$ x");
        assert_eq!(ok("${unterminated"), "${unterminated");
        assert_eq!(
            ok("localhost.$myhostname,x"),
            "localhost.mail.example.org,x"
        );
    }

    #[test]
    fn conditionals() {
        assert_eq!(ok("${myhostname?set}"), "set");
        assert_eq!(ok("${empty?set}"), "");
        assert_eq!(ok("${empty:unset}"), "unset");
        assert_eq!(ok("${myhostname:unset}"), "");
        assert_eq!(ok("${myhostname?[$mail_name]}"), "[Rostfix]");
        assert_eq!(ok("$(empty:a b)"), "a b");
        assert_eq!(ok("${myhostname?{yes}:{no}}"), "yes");
        assert_eq!(ok("${empty?{yes}:{no}}"), "no");
        assert_eq!(ok("${empty ? {yes} : {no}}"), "${empty ? {yes} : {no}}");
        assert_eq!(
            ok("${{$a} == {b} ? {x} : {y}}"),
            "${{$a} == {b} ? {x} : {y}}"
        );
    }

    #[test]
    fn recursion_is_an_error() {
        assert!(matches!(
            expand("$loop_a"),
            Err(ConfigError::Recursion { .. })
        ));
        assert!(matches!(
            expand("${self}"),
            Err(ConfigError::Recursion { .. })
        ));
    }

    #[test]
    fn finds_references() {
        assert_eq!(
            referenced_names("$a ${b} $(c?$d) $$e ${f:x}"),
            vec!["a", "b", "c", "d", "f"]
        );
    }
}
