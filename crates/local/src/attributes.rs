//! The per-recipient attributes local(8) knows (`$user`, `$home`, `$extension`, ...)
//! and what is built from them: the `$name` expansion of forward_path, luser_relay and
//! command_execution_directory, and the environment of commands.
//!
//! Expansion follows Postfix's mac_expand: `$name`, `${name}`, `$(name)`,
//! `${name?text}` (text when name is non-empty), `${name:text}` (text when it is
//! empty). A plain reference to an attribute without a value (no extension, no
//! recipient_delimiter) makes the whole result "undefined": forward_path skips such
//! an entry, exactly why `$home/.forward${recipient_delimiter}${extension}` is only
//! tried for addresses with an extension.
//!
//! What reaches a command is censored as Postfix does: in its environment (SENDER,
//! RECIPIENT, EXTENSION, ...) and in the values substituted into
//! command_execution_directory, every character outside command_expansion_filter
//! (resp. execution_directory_expansion_filter) becomes `_`, so text the client chose
//! (an extension with backticks, `$(...)`, `;`) cannot act as shell syntax.

/// The attributes of the recipient being delivered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes {
    /// The user name (passwd).
    pub user: String,
    pub home: String,
    pub shell: String,
    /// The full recipient address (`user+ext@domain`).
    pub recipient: String,
    /// The local part with extension.
    pub local: String,
    pub domain: String,
    /// The address extension, if any.
    pub extension: Option<String>,
    /// recipient_delimiter (may be empty).
    pub recipient_delimiter: String,
    /// Envelope sender ("" for `<>`).
    pub sender: String,
    /// The recipient as first received (ORIGINAL_RECIPIENT).
    pub original_recipient: String,
}

impl Attributes {
    /// The value of one attribute; None when it has none (undefined).
    fn value(&self, name: &str) -> Option<&str> {
        match name {
            "user" => nonempty(&self.user),
            "home" => nonempty(&self.home),
            "shell" => nonempty(&self.shell),
            "recipient" => nonempty(&self.recipient),
            "local" => nonempty(&self.local),
            "domain" => nonempty(&self.domain),
            "extension" => self.extension.as_deref().and_then(nonempty),
            "recipient_delimiter" => nonempty(&self.recipient_delimiter),
            "sender" => nonempty(&self.sender),
            _ => None,
        }
    }
}

fn nonempty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

/// `value` with every character not in `allowed` replaced by `_`.
pub fn censor(value: &str, allowed: &str) -> String {
    value
        .chars()
        .map(|c| if allowed.contains(c) { c } else { '_' })
        .collect()
}

/// Expands `text`; None when a plain reference had no value. `params` answers names
/// that are not attributes (main.cf parameters).
pub fn expand(
    text: &str,
    attrs: &Attributes,
    params: &dyn Fn(&str) -> Option<String>,
) -> Option<String> {
    expand_filtered(text, attrs, params, None)
}

/// [`expand`] with every substituted value [`censor`]ed by `filter` when given (the
/// template's own text is the administrator's and stays as written).
pub fn expand_filtered(
    text: &str,
    attrs: &Attributes,
    params: &dyn Fn(&str) -> Option<String>,
    filter: Option<&str>,
) -> Option<String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        let (inner, consumed) = match after.chars().next() {
            Some(open @ ('{' | '(')) => {
                let close = if open == '{' { '}' } else { ')' };
                match after.find(close) {
                    Some(end) => (&after[1..end], end + 1),
                    None => {
                        out.push('$');
                        rest = after;
                        continue;
                    }
                }
            }
            _ => {
                let end = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                (&after[..end], end)
            }
        };
        rest = &after[consumed..];
        if inner.is_empty() {
            out.push('$');
            continue;
        }
        let (name, cond) = match inner.find(['?', ':']) {
            Some(i) => (&inner[..i], Some((&inner[i..i + 1], &inner[i + 1..]))),
            None => (inner, None),
        };
        let value = attrs
            .value(name)
            .map(str::to_string)
            .or_else(|| params(name).filter(|v| !v.is_empty()));
        match (cond, value) {
            (Some(("?", t)), Some(_)) => out.push_str(&expand_filtered(t, attrs, params, filter)?),
            (Some(("?", _)), None) => {}
            (Some((_, t)), None) => out.push_str(&expand_filtered(t, attrs, params, filter)?),
            (Some(_), Some(_)) => {}
            (None, Some(v)) => match filter {
                Some(allowed) => out.push_str(&censor(&v, allowed)),
                None => out.push_str(&v),
            },
            (None, None) => return None,
        }
    }
    out.push_str(rest);
    Some(out)
}

/// The environment of a command delivery, as local(8) documents it: the variables named
/// by export_environment copied from ours, PATH reset to the system default, then
/// HOME, USER, LOGNAME, SHELL, SENDER, RECIPIENT, LOCAL, DOMAIN, EXTENSION and
/// ORIGINAL_RECIPIENT (the last six as Postfix exports them, EXTENSION only when
/// there is one). The values set here (not the exported ones, which are ours) are
/// [`censor`]ed by `filter` (command_expansion_filter).
pub fn command_environment(
    attrs: &Attributes,
    export: &[String],
    filter: &str,
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = export
        .iter()
        .filter(|name| name.as_str() != "PATH")
        .filter_map(|name| std::env::var(name).ok().map(|v| (name.clone(), v)))
        .collect();
    let mut set = |k: &str, v: &str| env.push((k.to_string(), censor(v, filter)));
    set("PATH", "/usr/bin:/bin");
    set("HOME", &attrs.home);
    set("USER", &attrs.user);
    set("LOGNAME", &attrs.user);
    set("SHELL", &attrs.shell);
    set("SENDER", &attrs.sender);
    set("RECIPIENT", &attrs.recipient);
    set("LOCAL", &attrs.local);
    set("DOMAIN", &attrs.domain);
    if let Some(ext) = &attrs.extension {
        set("EXTENSION", ext);
    }
    set("ORIGINAL_RECIPIENT", &attrs.original_recipient);
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(ext: Option<&str>) -> Attributes {
        Attributes {
            user: "alice".into(),
            home: "/home/alice".into(),
            shell: "/bin/bash".into(),
            recipient: "alice+lists@example.org".into(),
            local: "alice+lists".into(),
            domain: "example.org".into(),
            extension: ext.map(Into::into),
            recipient_delimiter: "+".into(),
            sender: "bob@example.net".into(),
            original_recipient: "Alice+lists@example.org".into(),
        }
    }

    fn no_params(_: &str) -> Option<String> {
        None
    }

    const FORWARD_PATH: &str = "$home/.forward${recipient_delimiter}${extension}";

    #[test]
    fn forward_path_with_and_without_extension() {
        assert_eq!(
            expand(FORWARD_PATH, &attrs(Some("lists")), &no_params).as_deref(),
            Some("/home/alice/.forward+lists")
        );
        assert_eq!(expand(FORWARD_PATH, &attrs(None), &no_params), None);
        assert_eq!(
            expand("$home/.forward", &attrs(None), &no_params).as_deref(),
            Some("/home/alice/.forward")
        );
    }

    #[test]
    fn conditionals_and_params() {
        let a = attrs(None);
        assert_eq!(
            expand(
                "x${extension?+$extension}y${extension:none}",
                &a,
                &no_params
            )
            .as_deref(),
            Some("xynone")
        );
        let params = |n: &str| (n == "myhostname").then(|| "mx.example.org".to_string());
        assert_eq!(
            expand("$(user)@$myhostname", &a, &params).as_deref(),
            Some("alice@mx.example.org")
        );
        assert_eq!(
            expand("cost $ 5", &a, &no_params).as_deref(),
            Some("cost $ 5")
        );
    }

    const POSTFIX_FILTER: &str =
        "1234567890!@%-_=+:,./abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

    #[test]
    fn environment_values_are_censored() {
        let mut a = attrs(Some("x`id`$(reboot);|&"));
        a.sender = "a&b 'c'@example.net".into();
        a.recipient = "alice+x`id`@example.org".into();
        let env = command_environment(&a, &[], POSTFIX_FILTER);
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("EXTENSION"), Some("x_id___reboot____"));
        assert_eq!(get("SENDER"), Some("a_b__c_@example.net"));
        assert_eq!(get("RECIPIENT"), Some("alice+x_id_@example.org"));
        assert_eq!(get("HOME"), Some("/home/alice"));
    }

    #[test]
    fn filtered_expansion_censors_values_not_the_template() {
        let a = attrs(Some("a/../`b`"));
        let got = expand_filtered("/srv/$user;x/${extension}", &a, &no_params, Some("abc/."));
        // `;` is the administrator's; the `..` of a value survives (both characters are
        // in this filter) while the backticks do not.
        assert_eq!(got.as_deref(), Some("/srv/a__c_;x/a/../_b_"));
        assert_eq!(censor("ok-1", POSTFIX_FILTER), "ok-1");
    }

    #[test]
    fn environment() {
        let env = command_environment(
            &attrs(Some("lists")),
            &["NO_SUCH_VAR_X".into()],
            POSTFIX_FILTER,
        );
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("PATH"), Some("/usr/bin:/bin"));
        assert_eq!(get("HOME"), Some("/home/alice"));
        assert_eq!(get("USER"), Some("alice"));
        assert_eq!(get("LOGNAME"), Some("alice"));
        assert_eq!(get("SHELL"), Some("/bin/bash"));
        assert_eq!(get("SENDER"), Some("bob@example.net"));
        assert_eq!(get("RECIPIENT"), Some("alice+lists@example.org"));
        assert_eq!(get("LOCAL"), Some("alice+lists"));
        assert_eq!(get("DOMAIN"), Some("example.org"));
        assert_eq!(get("EXTENSION"), Some("lists"));
        assert_eq!(get("ORIGINAL_RECIPIENT"), Some("Alice+lists@example.org"));
        assert_eq!(get("NO_SUCH_VAR_X"), None);
        let env = command_environment(&attrs(None), &[], POSTFIX_FILTER);
        assert!(!env.iter().any(|(k, _)| k == "EXTENSION"));
    }
}
