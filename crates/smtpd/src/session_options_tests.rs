//! Tests of the session settings parser (session_options.rs).

use super::*;
use crate::settings::test_config;

fn load(pairs: &[(&str, &str)]) -> Result<SessionOptions, OptionsError> {
    let cf = test_config(pairs).expect("valid main.cf");
    SessionOptions::from_config(&cf, &mut Vec::new())
}

#[test]
fn forbidden_commands_default_and_inline_regexp() {
    let o = load(&[]).unwrap();
    for verb in ["CONNECT", "get", "Post", "1foo", "<html>"] {
        assert!(o.forbidden_commands.matches(verb), "{verb}");
    }
    assert!(!o.forbidden_commands.matches("XYZZY"));
    let o = load(&[(
        "smtpd_forbidden_commands",
        "FOO, regexp:{{/^BAR/ x}, {/^BAZ$/ y}}",
    )])
    .unwrap();
    assert!(o.forbidden_commands.matches("foo"));
    assert!(o.forbidden_commands.matches("BARX"));
    assert!(o.forbidden_commands.matches("baz"));
    assert!(!o.forbidden_commands.matches("GET"));
    assert!(load(&[("smtpd_forbidden_commands", "regexp:{{/(/ x}}")]).is_err());
}

#[test]
fn sasl_security_options() {
    let o = load(&[]).unwrap();
    assert!(o.sasl_plain.allows("PLAIN") && o.sasl_tls.allows("LOGIN"));
    assert!(!o.sasl_plain.allows("ANONYMOUS"));
    let o = load(&[
        ("smtpd_sasl_security_options", "noanonymous, noplaintext"),
        ("smtpd_sasl_tls_security_options", "noanonymous"),
    ])
    .unwrap();
    assert!(!o.sasl_plain.allows("PLAIN") && !o.sasl_plain.allows("LOGIN"));
    assert!(o.sasl_tls.allows("PLAIN"));
    // The TLS options default to the plain ones.
    let o = load(&[("smtpd_sasl_security_options", "nodictionary")]).unwrap();
    assert!(!o.sasl_tls.allows("LOGIN"));
    assert!(load(&[("smtpd_sasl_security_options", "nosuchthing")]).is_err());
}

#[test]
fn proxy_protocol() {
    assert_eq!(load(&[]).unwrap().upstream_proxy, None);
    let o = load(&[
        ("smtpd_upstream_proxy_protocol", "haproxy"),
        ("smtpd_upstream_proxy_timeout", "3s"),
    ])
    .unwrap();
    assert_eq!(o.upstream_proxy, Some(Duration::from_secs(3)));
    assert!(matches!(
        load(&[("smtpd_upstream_proxy_protocol", "nginx")]),
        Err(OptionsError::ProxyProtocol(_))
    ));
}

#[test]
fn discard_keywords_and_hosts() {
    let o = load(&[
        ("smtpd_discard_ehlo_keywords", "PIPELINING, silent-discard"),
        (
            "smtpd_discard_ehlo_keyword_address_maps",
            "inline:{127.0.0.9=starttls}",
        ),
        ("smtpd_authorized_xclient_hosts", "127.0.0.0/8, mx.example"),
    ])
    .unwrap();
    assert_eq!(
        o.discarded_keywords(Some("192.0.2.1".parse().unwrap())),
        vec!["pipelining", "silent-discard"]
    );
    assert_eq!(
        o.discarded_keywords(Some("127.0.0.9".parse().unwrap())),
        vec!["starttls"]
    );
    assert!(o.xclient_hosts.contains(Some("127.0.0.3".parse().unwrap())));
    assert!(!o.xclient_hosts.contains(None));
    assert!(!o
        .xforward_hosts
        .contains(Some("127.0.0.3".parse().unwrap())));
}

#[test]
fn braces_stay_one_item() {
    assert_eq!(
        list_with_braces("A, regexp:{{/^x y/ z}} B"),
        vec!["A", "regexp:{{/^x y/ z}}", "B"]
    );
}
