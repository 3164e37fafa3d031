//! Address qualification for locally submitted mail: an address without a domain
//! (`user`) gets `@$myorigin`, as Postfix's rewrite in the `local` context does. An `@`
//! inside a quoted local part (`"a@b"`) is not a domain separator. The null sender
//! stays empty.

/// True if `addr` has an `@` outside a quoted string.
fn has_domain(addr: &str) -> bool {
    let mut in_quote = false;
    let mut escaped = false;
    for c in addr.chars() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '"' {
            in_quote = !in_quote;
        } else if c == '@' && !in_quote {
            return true;
        }
    }
    false
}

/// `user` -> `user@MYORIGIN`; anything with a domain, and "", unchanged.
pub fn qualify(addr: &str, myorigin: &str) -> String {
    if addr.is_empty() || myorigin.is_empty() || has_domain(addr) {
        addr.to_string()
    } else {
        format!("{addr}@{myorigin}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn qualification() {
        assert_eq!(qualify("joe", "example.org"), "joe@example.org");
        assert_eq!(qualify("joe@other.org", "example.org"), "joe@other.org");
        assert_eq!(qualify("", "example.org"), "");
        assert_eq!(qualify("\"a@b\"", "example.org"), "\"a@b\"@example.org");
        assert_eq!(
            qualify("\"a\\\"@b\"", "example.org"),
            "\"a\\\"@b\"@example.org"
        );
        assert_eq!(qualify("\"a b\"@x", "example.org"), "\"a b\"@x");
        assert_eq!(qualify("joe", ""), "joe");
    }

    proptest! {
        #[test]
        fn qualified_once(local in "[a-z.+-]{1,20}", origin in "[a-z]{1,10}\\.org") {
            let once = qualify(&local, &origin);
            prop_assert_eq!(&once, &format!("{local}@{origin}"));
            prop_assert_eq!(qualify(&once, &origin), once);
        }
    }
}
