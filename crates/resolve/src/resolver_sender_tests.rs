//! Unit tests of sender-dependent routing (postconf(5):
//! sender_dependent_relayhost_maps, sender_dependent_default_transport_maps).

use super::*;

const BASE: &str = "myhostname = mail.example.com\n\
mydomain = example.com\n\
mydestination = $myhostname, $mydomain\n\
inet_interfaces = 127.0.0.1\n\
recipient_delimiter = +\n\
relay_domains = relayed.test\n\
relayhost = [smarthost.test]\n";

fn r(extra: &str) -> Resolver {
    Resolver::from_main_cf_text(&format!("{BASE}{extra}")).expect("resolver")
}

fn hop(res: &Resolver, sender: &str, rcpt: &str) -> (String, String) {
    let x = res.resolve_from(Some(sender), rcpt).expect("resolves");
    (x.transport, x.nexthop)
}

fn pair(t: &str, n: &str) -> (String, String) {
    (t.to_string(), n.to_string())
}

#[test]
fn relayhost_by_sender_then_domain_dunno_and_null_sender() {
    let res = r("sender_dependent_relayhost_maps = inline:{ \
         news@example.com=[mailout.test]:587, @shop.test=[shopgw.test], \
         ceo@shop.test=DUNNO, <>=[bounces.test] }\n");
    assert_eq!(
        hop(&res, "news+x@example.com", "a@remote.test"),
        pair("smtp", "[mailout.test]:587")
    );
    assert_eq!(
        hop(&res, "anyone@shop.test", "a@remote.test"),
        pair("smtp", "[shopgw.test]")
    );
    // relay_domains mail follows the sender's relayhost too (relay_transport).
    assert_eq!(
        hop(&res, "anyone@shop.test", "a@relayed.test"),
        pair("relay", "[shopgw.test]")
    );
    // DUNNO: the global relayhost.
    assert_eq!(
        hop(&res, "ceo@shop.test", "a@remote.test"),
        pair("smtp", "[smarthost.test]")
    );
    assert_eq!(
        hop(&res, "", "a@remote.test"),
        pair("smtp", "[bounces.test]")
    );
    assert_eq!(
        hop(&res, "other@else.test", "a@remote.test"),
        pair("smtp", "[smarthost.test]")
    );
    // Local mail is not affected, nor is resolve() without a sender.
    assert_eq!(
        hop(&res, "news@example.com", "joe@example.com"),
        pair("local", "mail.example.com")
    );
    let plain = res.resolve("a@remote.test").unwrap();
    assert_eq!(plain.nexthop, "[smarthost.test]");
}

#[test]
fn default_transport_by_sender() {
    let res = r("sender_dependent_default_transport_maps = inline:{ \
         @bulk.test=bulk:[bulkgw.test], @plain.test=bulk }\n");
    assert_eq!(
        hop(&res, "x@bulk.test", "a@remote.test"),
        pair("bulk", "[bulkgw.test]")
    );
    // A transport without a next hop keeps the relayhost.
    assert_eq!(
        hop(&res, "x@plain.test", "a@remote.test"),
        pair("bulk", "[smarthost.test]")
    );
    // Only the default class: relay_domains keep relay_transport.
    assert_eq!(
        hop(&res, "x@bulk.test", "a@relayed.test"),
        pair("relay", "[smarthost.test]")
    );
}
