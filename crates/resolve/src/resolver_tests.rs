//! Unit tests of the resolver against Postfix's documented behaviour
//! (ADDRESS_CLASS_README, transport(5), virtual(5), postconf(5) examples).

use super::*;

const BASE: &str = "myhostname = mail.example.com\n\
mydomain = example.com\n\
myorigin = $mydomain\n\
mydestination = $myhostname, localhost.$mydomain, localhost, $mydomain\n\
inet_interfaces = 127.0.0.1\n\
recipient_delimiter = +\n";

fn r(extra: &str) -> Resolver {
    Resolver::from_main_cf_text(&format!("{BASE}{extra}")).expect("resolver")
}

fn route(res: &Resolver, a: &str) -> (AddressClass, String, String) {
    let x = res.resolve(a).expect("resolves");
    (x.class, x.transport, x.nexthop)
}

fn t(c: AddressClass, tr: &str, n: &str) -> (AddressClass, String, String) {
    (c, tr.to_string(), n.to_string())
}

#[test]
fn local_class_mydestination_and_own_literals() {
    let res = r("");
    let local = t(AddressClass::Local, "local", "mail.example.com");
    assert_eq!(route(&res, "joe@example.com"), local);
    assert_eq!(route(&res, "joe@LOCALHOST."), local);
    assert_eq!(route(&res, "joe"), local);
    assert_eq!(route(&res, "joe@[127.0.0.1]"), local);
    assert_eq!(
        route(&res, "joe@[127.0.0.2]"),
        t(AddressClass::Default, "smtp", "[127.0.0.2]")
    );
    assert_eq!(
        route(&res, "joe@sub.example.com"),
        t(AddressClass::Default, "smtp", "sub.example.com")
    );
}

#[test]
fn mydestination_may_name_a_table() {
    let res = r("mydestination = $myhostname, inline:{ hosted.org=ok }\n");
    assert_eq!(route(&res, "a@hosted.org").0, AddressClass::Local);
    assert_eq!(route(&res, "a@other.org").0, AddressClass::Default);
}

#[test]
fn virtual_alias_domain_without_mapping_is_user_unknown() {
    let res = r(
        "virtual_alias_domains = valias.org\nvirtual_alias_maps = inline:{ info@valias.org=joe }\n",
    );
    assert_eq!(
        route(&res, "nobody@valias.org"),
        t(AddressClass::VirtualAlias, "error", VIRTUAL_ALIAS_UNKNOWN)
    );
    assert_eq!(
        res.expand_virtual("info@valias.org").unwrap(),
        ["joe@example.com"]
    );
}

#[test]
fn virtual_alias_domains_default_to_the_maps_keys() {
    // virtual(5): "example.com anything" in virtual_alias_maps makes it a domain.
    let res = r("virtual_alias_maps = inline:{ valias.org=anything, a@valias.org=b@x.org }\n");
    assert!(res.is_virtual_alias_domain("valias.org").unwrap());
    assert_eq!(route(&res, "zz@valias.org").0, AddressClass::VirtualAlias);
}

#[test]
fn virtual_mailbox_class_uses_virtual_transport() {
    let res = r("virtual_mailbox_domains = vm1.org, vm2.org\n");
    assert_eq!(
        route(&res, "u@vm2.org"),
        t(AddressClass::VirtualMailbox, "virtual", "vm2.org")
    );
    let lmtp = r(
        "virtual_mailbox_domains = vm1.org\nvirtual_transport = lmtp:unix:private/dovecot-lmtp\n",
    );
    assert_eq!(
        route(&lmtp, "u@vm1.org"),
        t(
            AddressClass::VirtualMailbox,
            "lmtp",
            "unix:private/dovecot-lmtp"
        )
    );
}

#[test]
fn relay_class_matches_subdomains_by_default() {
    let res = r("relay_domains = relayed.org\n");
    assert_eq!(
        route(&res, "u@relayed.org"),
        t(AddressClass::Relay, "relay", "relayed.org")
    );
    assert_eq!(route(&res, "u@a.relayed.org").0, AddressClass::Relay);
    let with_rh = r("relay_domains = relayed.org\nrelayhost = [gw.example.com]:587\n");
    assert_eq!(route(&with_rh, "u@relayed.org").2, "[gw.example.com]:587");
}

#[test]
fn default_class_relayhost_forms() {
    assert_eq!(
        route(
            &r("relayhost = [smarthost.example.com]:2525\n"),
            "u@far.org"
        ),
        t(
            AddressClass::Default,
            "smtp",
            "[smarthost.example.com]:2525"
        )
    );
    assert_eq!(route(&r("relayhost = isp.net\n"), "u@far.org").2, "isp.net");
    assert_eq!(
        route(
            &r("default_transport = error:outbound mail disabled\n"),
            "u@far.org"
        ),
        t(AddressClass::Default, "error", "outbound mail disabled")
    );
    // A nexthop in default_transport wins over relayhost.
    assert_eq!(
        route(
            &r("relayhost = [rh]\ndefault_transport = smtp:[gw]:25\n"),
            "u@far.org"
        )
        .2,
        "[gw]:25"
    );
}

#[test]
fn transport_maps_examples_from_the_manual() {
    // transport(5) EXAMPLES: deliver internal mail directly, everything else via a relay.
    let res = r(
        "transport_maps = inline:{ my.domain=:, .my.domain=:, *=smtp:outbound-relay.my.domain }\n",
    );
    assert_eq!(
        route(&res, "u@my.domain"),
        t(AddressClass::Default, "smtp", "my.domain")
    );
    assert_eq!(route(&res, "u@a.my.domain").2, "a.my.domain");
    assert_eq!(route(&res, "u@else.org").2, "outbound-relay.my.domain");
    // "example.com slow:" -> the slow transport, nexthop the recipient domain.
    let slow = r("relayhost = [rh]\ntransport_maps = inline:{ example.net=slow: }\n");
    assert_eq!(
        route(&slow, "u@example.net"),
        t(AddressClass::Default, "slow", "example.net")
    );
    // ":[gateway]" keeps the transport, changes the nexthop.
    let gw = r("transport_maps = inline:{ example.net=:[gateway.example.net] }\n");
    assert_eq!(
        route(&gw, "u@example.net"),
        t(AddressClass::Default, "smtp", "[gateway.example.net]")
    );
    // user@domain entries, with the extension removed.
    let user = r("transport_maps = inline:{ bob@example.net=discard:, example.net=smtp:[h]:25 }\n");
    assert_eq!(route(&user, "bob+x@example.net").1, "discard");
    assert_eq!(route(&user, "al@example.net").2, "[h]:25");
    // Without parent matching, a bare domain does not cover subdomains.
    assert_eq!(route(&user, "al@sub.example.net").2, "sub.example.net");
    // It applies to local addresses too.
    let loc = r("transport_maps = inline:{ { example.com = error:5.7.1 closed } }\n");
    assert_eq!(
        route(&loc, "joe@example.com"),
        t(AddressClass::Local, "error", "5.7.1 closed")
    );
}

#[test]
fn parent_domain_matching_for_transport_maps_when_configured() {
    let res = r("parent_domain_matches_subdomains = transport_maps\ntransport_maps = inline:{ example.net=smtp:[h] }\n");
    assert_eq!(route(&res, "u@deep.sub.example.net").2, "[h]");
}

#[test]
fn bad_transport_names_are_errors() {
    let res = r("transport_maps = inline:{ x.org=../public/qmgr: }\n");
    assert!(res.resolve("u@x.org").is_err());
}

#[test]
fn missing_tables_fail_at_open() {
    assert!(
        Resolver::from_main_cf_text(&format!("{BASE}transport_maps = hash:/nonexistent/t\n"))
            .is_err()
    );
}

#[test]
fn virtual_alias_lookup_order_and_extensions() {
    let res = r(
        "virtual_alias_maps = inline:{ sales@valias.org=alice@remote.net, @catch.org=postmaster, joe=jim }\n\
         virtual_alias_domains = valias.org catch.org\n",
    );
    // user+ext@domain found as user@domain: the extension propagates.
    assert_eq!(
        res.expand_virtual("sales+q1@valias.org").unwrap(),
        ["alice+q1@remote.net"]
    );
    // Catch-all, result qualified with $myorigin.
    assert_eq!(
        res.expand_virtual("anyone@catch.org").unwrap(),
        ["postmaster@example.com"]
    );
    // Bare "user" keys apply only to local domains.
    assert_eq!(
        res.expand_virtual("joe@example.com").unwrap(),
        ["jim@example.com"]
    );
    assert_eq!(res.expand_virtual("joe@far.org").unwrap(), ["joe@far.org"]);
}

#[test]
fn virtual_alias_recursion_and_self_mapping() {
    let res = r(
        "virtual_alias_maps = inline:{ { list@v.org = a@v.org b@remote.net }, { a@v.org = a@v.org c@v.org } }\n\
         virtual_alias_domains = v.org\n",
    );
    assert_eq!(
        res.expand_virtual("list@v.org").unwrap(),
        ["a@v.org", "b@remote.net", "c@v.org"]
    );
}

#[test]
fn virtual_alias_limits_are_read_from_main_cf() {
    let res = r(
        "virtual_alias_maps = inline:{ a@v.org=b@v.org, b@v.org=c@v.org, c@v.org=d@v.org }\n\
         virtual_alias_recursion_limit = 2\n",
    );
    assert!(res.expand_virtual("a@v.org").is_err());
}

#[test]
fn canonicalization_uses_myorigin() {
    let res = r("append_dot_mydomain = yes\n");
    assert_eq!(res.canonicalize("joe", true), "joe@example.com");
    assert_eq!(res.canonicalize("joe@host", true), "joe@host.example.com");
}

#[test]
fn regexp_transport_maps_may_not_substitute_the_address() {
    let dir = std::env::temp_dir().join(format!("rostfix-resolve-re-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("transport.re");
    std::fs::write(
        &file,
        "/^(.*)@sub\\.x\\.org$/ smtp:[$1]\n/@x\\.org$/ smtp:[h]\n",
    )
    .unwrap();
    let res = r(&format!("transport_maps = regexp:{}\n", file.display()));
    // The client picks the local part: it must not choose the next hop.
    let err = res
        .resolve("evil.example@sub.x.org")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("regular expression substitution is not allowed"),
        "{err}"
    );
    assert_eq!(route(&res, "u@x.org").2, "[h]");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn percent_and_bang_routed_from_our_domains() {
    let res = Resolver::from_main_cf_text(
        "myhostname = mx.example.com\nmydomain = example.com\nmyorigin = example.com\n\
         mydestination = example.com, localhost\n",
    )
    .unwrap();
    let r = |a: &str| res.route_local_part(a).unwrap();
    assert_eq!(r("joe%far.org@example.com"), "joe@far.org");
    assert_eq!(r("far.org!joe@example.com"), "joe@far.org");
    // Through several of our domains; never for a domain not ours.
    assert_eq!(r("joe%localhost@example.com"), "joe@localhost");
    assert_eq!(r("joe%far.org@other.net"), "joe%far.org@other.net");
    assert_eq!(r("joe@example.com"), "joe@example.com");
    let off = Resolver::from_main_cf_text(
        "myorigin = example.com\nmydestination = example.com\nallow_percent_hack = no\n",
    )
    .unwrap();
    assert_eq!(
        off.route_local_part("joe%far.org@example.com").unwrap(),
        "joe%far.org@example.com"
    );
}
