//! Splitting list-valued parameters the way Postfix does: items are separated by commas
//! and/or whitespace, but text inside `{ ... }` stays one item, so a value such as
//! `check_client_access inline:{ 10.0.0.1=REJECT, 10.0.0.2=OK }` yields two items, not
//! five. Postfix's mystrtokq() has the same grouping; tables written inline depend on it.

/// Splits `value` into list items: separators are `,` and whitespace outside braces.
/// Unbalanced `}` are kept as text; an unclosed `{` extends to the end of the value
/// (the table parser reports the syntax error with the table's name).
pub fn split_list(value: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut current = String::new();
    let mut depth = 0usize;
    for c in value.chars() {
        match c {
            '{' => {
                depth += 1;
                current.push(c);
            }
            '}' if depth > 0 => {
                depth -= 1;
                current.push(c);
            }
            c if depth == 0 && (c == ',' || c.is_whitespace()) => {
                if !current.is_empty() {
                    items.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        items.push(current);
    }
    items
}

#[cfg(test)]
mod tests {
    use super::split_list;
    use proptest::prelude::*;

    #[test]
    fn commas_and_whitespace_separate() {
        assert_eq!(split_list(" a, b\tc ,,d\n e "), ["a", "b", "c", "d", "e"]);
        assert!(split_list("  , ").is_empty());
    }

    #[test]
    fn braces_group_one_item() {
        assert_eq!(
            split_list("check_client_access inline:{ 10.0.0.1=REJECT, 10.0.0.2=OK }, permit"),
            [
                "check_client_access",
                "inline:{ 10.0.0.1=REJECT, 10.0.0.2=OK }",
                "permit"
            ]
        );
        assert_eq!(
            split_list("inline:{a={b, c}}, d"),
            ["inline:{a={b, c}}", "d"]
        );
    }

    #[test]
    fn unbalanced_braces_do_not_lose_text() {
        assert_eq!(split_list("a} b"), ["a}", "b"]);
        assert_eq!(split_list("inline:{ a=b, c"), ["inline:{ a=b, c"]);
    }

    proptest! {
        #[test]
        fn without_braces_it_is_a_plain_split(s in "[a-z0-9=:, \t]{0,60}") {
            let plain: Vec<String> = s
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|i| !i.is_empty())
                .map(str::to_string)
                .collect();
            prop_assert_eq!(split_list(&s), plain);
        }

        #[test]
        fn never_loses_non_separator_characters(s in "[a-z{}=, ]{0,60}") {
            let kept: String = s.chars().filter(|c| *c != ',' && *c != ' ').collect();
            let joined: String = split_list(&s).concat().chars().filter(|c| *c != ',' && *c != ' ').collect();
            prop_assert_eq!(joined, kept);
        }
    }
}
