//! Unit tests of the client-certificate restrictions (check_ccert_access,
//! permit_tls_clientcerts, permit_tls_all_clientcerts) and of the ccert_* policy
//! attributes, on a certificate given directly (the handshake is e2e's business).

use super::config::{ClientCertMaps, RestrictionConfig};
use super::eval::{evaluate, Facts, Stage, Verdict};
use super::parse_list;
use super::policy_request::request_attributes;
use crate::ccert::ClientCert;
use crate::client::NameStatus;
use std::sync::Arc;

fn open(spec: &str) -> Result<Arc<dyn rostfix_maps::Map>, String> {
    rostfix_maps::open_map(spec)
        .map(Arc::from)
        .map_err(|e| e.to_string())
}

fn cert(trusted: bool) -> ClientCert {
    ClientCert {
        subject_cn: "relay=one.test".into(),
        issuer_cn: "Test CA".into(),
        cert_fingerprint: "AA:01".into(),
        pkey_fingerprint: "BB:02".into(),
        trusted,
    }
}

fn facts<'a>(cert: Option<&'a ClientCert>, d: &'a [String]) -> Facts<'a> {
    let mut f = Facts {
        client_name: "unknown",
        reverse_client_name: "unknown",
        name_status: NameStatus::Perm,
        reverse_name_status: NameStatus::Perm,
        client_addr: "192.0.2.9".into(),
        client_ip: Some("192.0.2.9".parse().unwrap()),
        client_log: "unknown[192.0.2.9]".into(),
        helo: Some("client.test"),
        sender: Some("s@sender.test"),
        recipient: Some("u@remote.test"),
        mynetworks: false,
        sasl_username: None,
        mydestination: d,
        session: Default::default(),
    };
    f.session.ccert = cert;
    f
}

fn rc(relay_clientcerts: &str) -> RestrictionConfig {
    let mut rc = RestrictionConfig::defaults();
    if !relay_clientcerts.is_empty() {
        rc.relay_clientcerts = ClientCertMaps(vec![open(relay_clientcerts).unwrap()]);
    }
    rc
}

fn run(list: &str, cert: Option<&ClientCert>, rc: &RestrictionConfig) -> Verdict {
    let d = vec!["mx.test".to_string()];
    let list = parse_list("smtpd_relay_restrictions", list, &open).unwrap();
    evaluate(
        &list,
        Stage::Recipient,
        &facts(cert, &d),
        rc,
        &mut Vec::new(),
    )
}

fn reject_text(v: &Verdict) -> String {
    match v {
        Verdict::Reject(r) => r.log_text(),
        other => panic!("not rejected: {other:?}"),
    }
}

const RELAY: &str = "reject_unauth_destination";

#[test]
fn check_ccert_access_tries_the_certificate_then_its_key() {
    let rc = rc("");
    let trusted = cert(true);
    let by_cert = format!("check_ccert_access inline:{{AA:01=OK}}, {RELAY}");
    assert_eq!(run(&by_cert, Some(&trusted), &rc), Verdict::Permit);
    // An untrusted certificate matches by fingerprint just the same.
    assert_eq!(run(&by_cert, Some(&cert(false)), &rc), Verdict::Permit);
    // DUNNO for the certificate still lets the key's entry decide.
    let by_key = format!("check_ccert_access inline:{{AA:01=DUNNO, BB:02=REJECT}}, {RELAY}");
    assert_eq!(
        reject_text(&run(&by_key, Some(&trusted), &rc)),
        "554 5.7.1 <relay=one.test>: Client certificate rejected: Access denied"
    );
    // No certificate: the table is not consulted and the relay check refuses.
    assert_eq!(
        reject_text(&run(&by_cert, None, &rc)),
        "554 5.7.1 <u@remote.test>: Relay access denied"
    );
}

#[test]
fn permit_tls_clientcerts_wants_a_listed_fingerprint() {
    let list = format!("permit_tls_clientcerts, {RELAY}");
    let by_key = rc("inline:{BB:02=relay-one}");
    assert_eq!(run(&list, Some(&cert(false)), &by_key), Verdict::Permit);
    let by_cert = rc("inline:{AA:01=relay-one}");
    assert_eq!(run(&list, Some(&cert(true)), &by_cert), Verdict::Permit);
    let other = rc("inline:{CC:03=someone-else}");
    assert!(matches!(
        run(&list, Some(&cert(true)), &other),
        Verdict::Reject(_)
    ));
    assert!(matches!(run(&list, None, &by_key), Verdict::Reject(_)));
}

#[test]
fn permit_tls_all_clientcerts_wants_a_trusted_certificate() {
    let list = format!("permit_tls_all_clientcerts, {RELAY}");
    let rc = rc("");
    assert_eq!(run(&list, Some(&cert(true)), &rc), Verdict::Permit);
    assert!(matches!(
        run(&list, Some(&cert(false)), &rc),
        Verdict::Reject(_)
    ));
}

#[test]
fn policy_requests_carry_the_certificate() {
    let d = vec!["mx.test".to_string()];
    let attr = |c: Option<&ClientCert>, name: &str| {
        request_attributes(&facts(c, &d), "")
            .into_iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v)
            .unwrap()
    };
    let trusted = cert(true);
    // Names xtext-quoted as Postfix does (`=` kept, space and `+` encoded).
    let mut spaced = cert(true);
    spaced.subject_cn = "a b+c=d".into();
    assert_eq!(attr(Some(&spaced), "ccert_subject"), "a+20b+2Bc=d");
    assert_eq!(attr(Some(&trusted), "ccert_issuer"), "Test+20CA");
    assert_eq!(attr(Some(&trusted), "ccert_fingerprint"), "AA:01");
    assert_eq!(attr(Some(&trusted), "ccert_pubkey_fingerprint"), "BB:02");
    // An untrusted certificate's names are withheld, its fingerprints are not.
    let untrusted = cert(false);
    assert_eq!(attr(Some(&untrusted), "ccert_subject"), "");
    assert_eq!(attr(Some(&untrusted), "ccert_fingerprint"), "AA:01");
    assert_eq!(attr(None, "ccert_fingerprint"), "");
}
