//! RFC 5322 address lists as found in To:/Cc:/Bcc: headers and in command-line
//! recipient arguments: `a@x, "Doe, John" <j@y>, Friends: b@z, c@z;, (comment) d@w`.
//!
//! Commas split only outside quoted strings, comments and angle brackets. For a
//! `name <addr>` element the address inside the brackets is taken (a source route
//! `@a,@b:` is dropped); otherwise comments and white space outside quotes are removed.
//! A group's display name (`Friends:`) is skipped and its `;` ends an element.

/// The addr-specs in `list`, in order; empty elements (and `<>`) are skipped.
pub fn parse_address_list(list: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut plain = String::new();
    let mut angle: Option<String> = None;
    let mut in_angle = false;
    let mut in_quote = false;
    let mut comment_depth = 0usize;
    let mut chars = list.chars();

    while let Some(c) = chars.next() {
        if in_quote {
            let target = if in_angle {
                angle.get_or_insert_with(String::new)
            } else {
                &mut plain
            };
            target.push(c);
            if c == '\\' {
                if let Some(next) = chars.next() {
                    target.push(next);
                }
            } else if c == '"' {
                in_quote = false;
            }
            continue;
        }
        if comment_depth > 0 {
            match c {
                '\\' => {
                    chars.next();
                }
                '(' => comment_depth += 1,
                ')' => comment_depth -= 1,
                _ => {}
            }
            continue;
        }
        if in_angle {
            let target = angle.get_or_insert_with(String::new);
            match c {
                '>' => in_angle = false,
                '"' => {
                    in_quote = true;
                    target.push(c);
                }
                '(' => comment_depth = 1,
                c if c.is_whitespace() => {}
                c => target.push(c),
            }
            continue;
        }
        match c {
            '"' => {
                in_quote = true;
                plain.push(c);
            }
            '(' => comment_depth = 1,
            '<' => {
                in_angle = true;
                angle = Some(String::new());
            }
            ',' | ';' => finish(&mut out, &mut plain, &mut angle),
            // Group syntax: what came before the colon is the group's name.
            ':' => {
                plain.clear();
                angle = None;
            }
            c if c.is_whitespace() => {}
            c => plain.push(c),
        }
    }
    finish(&mut out, &mut plain, &mut angle);
    out
}

fn finish(out: &mut Vec<String>, plain: &mut String, angle: &mut Option<String>) {
    let addr = match angle.take() {
        Some(a) => strip_route(&a).to_string(),
        None => std::mem::take(plain),
    };
    plain.clear();
    if !addr.is_empty() {
        out.push(addr);
    }
}

/// `@relay1,@relay2:user@x` -> `user@x` (RFC 5322 obs-route).
fn strip_route(addr: &str) -> &str {
    if addr.starts_with('@') {
        if let Some(pos) = addr.find(':') {
            return &addr[pos + 1..];
        }
    }
    addr
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn simple_lists() {
        assert_eq!(parse_address_list("a@x"), vec!["a@x"]);
        assert_eq!(parse_address_list(" a@x , b@y,c "), vec!["a@x", "b@y", "c"]);
        assert!(parse_address_list("").is_empty());
        assert!(parse_address_list(" , ,").is_empty());
    }

    #[test]
    fn display_names() {
        assert_eq!(
            parse_address_list("\"Doe, John\" <john@x>, Jane Roe <jane@y>"),
            vec!["john@x", "jane@y"]
        );
        assert_eq!(parse_address_list("\"a<b>, c\" <d@e>"), vec!["d@e"]);
    }

    #[test]
    fn comments_and_spaces() {
        assert_eq!(
            parse_address_list("joe@x (Joe, the plumber)"),
            vec!["joe@x"]
        );
        assert_eq!(parse_address_list("(a (nested, one)) b@y"), vec!["b@y"]);
        assert_eq!(
            parse_address_list("user @ example.org"),
            vec!["user@example.org"]
        );
        assert_eq!(parse_address_list("\"john doe\"@x"), vec!["\"john doe\"@x"]);
    }

    #[test]
    fn groups() {
        assert_eq!(
            parse_address_list("Friends: a@x, \"B\" <b@y>;, c@z"),
            vec!["a@x", "b@y", "c@z"]
        );
        assert!(parse_address_list("undisclosed-recipients:;").is_empty());
    }

    #[test]
    fn routes_and_null() {
        assert_eq!(parse_address_list("<@r1,@r2:u@x>"), vec!["u@x"]);
        assert!(parse_address_list("<>").is_empty());
    }

    proptest! {
        #[test]
        fn never_panics_and_yields_no_separators(s in "\\PC{0,200}") {
            for a in parse_address_list(&s) {
                prop_assert!(!a.is_empty());
            }
        }

        #[test]
        fn plain_lists_round_trip(v in proptest::collection::vec("[a-z]{1,8}@[a-z]{1,8}\\.org", 1..6)) {
            prop_assert_eq!(parse_address_list(&v.join(", ")), v);
        }
    }
}
