"""DANE for the smtp client (issue 17, RFC 7672): a DNSSEC-signed root zone served by
nsd (tests/e2e/signed_dns.py) publishes MX, A and TLSA records for an aiosmtpd peer
with STARTTLS and a self-signed certificate (tests/e2e/peers.py); the smtp client
validates from the zone's key (rostfix_dnssec_trust_anchor, smtp_dns_support_level =
dnssec). Shown: a matching TLSA record delivers and logs Verified; a mismatching one
defers and nothing is sent, not even in the clear; only PKIX records (unusable) means
mandatory unauthenticated TLS; an unsigned (insecure) zone falls back to opportunistic
TLS with `dane` and is deferred with `dane-only`; a DANE-TA record naming the CA of
the chain the server sends delivers Verified; a TLSA answer that fails validation
(signed delegation, unsigned child) defers with "TLSA lookup error"; a proxy that
strips STARTTLS (tests/e2e/starttls_strip.py) gets the mail deferred, never sent in
the clear."""

import hashlib
import re
import subprocess

import pytest

from harness import USER2, wait_for
from peers import certs, chain_for, start_peer  # noqa: F401 (fixtures)
from signed_dns import signed_dns
from starttls_strip import StarttlsStripper


def cert_sha256(cert):
    der = subprocess.run(["openssl", "x509", "-in", str(cert), "-outform", "DER"],
                         check=True, capture_output=True).stdout
    return hashlib.sha256(der).hexdigest()


def spki_sha256(cert):
    der = subprocess.run(
        f"openssl x509 -in {cert} -noout -pubkey | openssl pkey -pubin -outform DER",
        shell=True, check=True, capture_output=True).stdout
    return hashlib.sha256(der).hexdigest()


def zone(port, digest):
    records = []
    for name, tlsa in (("good", f"3 1 1 {digest}"),
                       ("bad", "3 1 1 " + "00" * 32),
                       ("pkix", f"1 1 1 {digest}")):
        records += [f"{name}.test. IN MX 10 mx.{name}.test.",
                    f"mx.{name}.test. IN A 127.0.0.1",
                    f"_{port}._tcp.mx.{name}.test. IN TLSA {tlsa}"]
    # Signed, but no TLSA records (a validated denial).
    records += ["notlsa.test. IN MX 10 mx.notlsa.test.", "mx.notlsa.test. IN A 127.0.0.1"]
    # mx.tlsafail.test is in the signed root, but its TLSA name sits in a child zone
    # the root says is signed (a DS record) that is served unsigned: bogus.
    records += ["tlsafail.test. IN MX 10 mx.tlsafail.test.",
                "mx.tlsafail.test. IN A 127.0.0.1",
                "_tcp.mx.tlsafail.test. IN DS 12345 13 2 " + "ab" * 32]
    plain = {"plain.test.": ["plain.test. IN MX 10 mx.plain.test.",
                             "mx.plain.test. IN A 127.0.0.1"],
             "_tcp.mx.tlsafail.test.": [f"_{port}._tcp.mx.tlsafail.test. IN TLSA 3 1 1 {digest}"]}
    return records, plain


@pytest.fixture
def dane_setup(workdir, certs, start_peer):
    peer = start_peer(certs / "self.pem", certs / "self.key")
    records, plain = zone(peer.port, spki_sha256(certs / "self.pem"))
    with signed_dns(workdir / f"dns-{peer.port}", records, plain) as (dns_port, anchor):
        yield peer, dns_port, anchor


def instance_for(make_instance, setup, domain, level="dane"):
    peer, dns_port, anchor = setup
    return make_instance(main_extra={
        # An MX lookup for the domain, then the peer's port.
        "relayhost": f"{domain}:{peer.port}",
        "smtp_tls_security_level": level,
        "smtp_dns_support_level": "dnssec",
        "rostfix_dns_servers": f"127.0.0.1:{dns_port}",
        "rostfix_dnssec_trust_anchor": str(anchor),
        "smtp_tls_loglevel": "1",
    })


def send(inst, subject):
    with inst.smtp() as s:
        s.sendmail("alice@example.org", [f"{USER2}@b.test"],
                   f"Subject: {subject}\r\n\r\nbody\r\n".encode())


def test_matching_tlsa_delivers_verified(make_instance, dane_setup):
    peer = dane_setup[0]
    a = instance_for(make_instance, dane_setup, "good.test")
    send(a, "dane good")
    msgs = wait_for(peer.messages, timeout=30, what="delivery to the peer")
    assert b"tls=yes" in msgs[0] and b"Subject: dane good" in msgs[0]
    wait_for(lambda: "status=sent" in a.log_text(), what="the delivery log line")
    log = a.log_text()
    assert re.search(rf"Verified TLS connection established to mx\.good\.test\[127\.0\.0\.1\]:"
                     rf"{peer.port}: TLSv1\.[23] with cipher \S+", log), log


def test_mismatching_tlsa_defers_and_sends_nothing(make_instance, dane_setup):
    peer = dane_setup[0]
    a = instance_for(make_instance, dane_setup, "bad.test")
    send(a, "dane bad")
    wait_for(lambda: a.queue_ids("deferred"), timeout=30, what="the message to be deferred")
    log = a.log_text()
    assert "Untrusted TLS connection established to mx.bad.test[127.0.0.1]" in log, log
    assert re.search(r"dsn=4\.7\.5, status=deferred \(Server certificate not trusted\)", log), log
    assert peer.messages() == []


def test_unusable_tlsa_means_mandatory_unauthenticated_tls(make_instance, dane_setup):
    peer = dane_setup[0]
    a = instance_for(make_instance, dane_setup, "pkix.test")
    send(a, "dane pkix")
    msgs = wait_for(peer.messages, timeout=30, what="delivery to the peer")
    assert b"tls=yes" in msgs[0]
    assert "Untrusted TLS connection established to mx.pkix.test[127.0.0.1]" in a.log_text()


def test_signed_zone_without_tlsa(make_instance, dane_setup):
    """dane: opportunistic TLS; dane-only: deferred, nothing sent."""
    peer = dane_setup[0]
    a = instance_for(make_instance, dane_setup, "notlsa.test", level="dane-only")
    send(a, "dane-only notlsa")
    wait_for(lambda: a.queue_ids("deferred"), timeout=30, what="the message to be deferred")
    assert re.search(r"dsn=4\.7\.5, status=deferred \(no TLSA records found\)",
                     a.log_text()), a.log_text()
    assert peer.messages() == []
    a.stop()
    b = instance_for(make_instance, dane_setup, "notlsa.test")
    send(b, "dane notlsa")
    msgs = wait_for(peer.messages, timeout=30, what="delivery to the peer")
    assert b"tls=yes" in msgs[0] and b"Subject: dane notlsa" in msgs[0]
    assert "Untrusted TLS connection established to mx.notlsa.test[127.0.0.1]" in b.log_text()


def test_insecure_zone_with_dane_is_opportunistic(make_instance, dane_setup):
    peer = dane_setup[0]
    a = instance_for(make_instance, dane_setup, "plain.test")
    send(a, "dane plain")
    msgs = wait_for(peer.messages, timeout=30, what="delivery to the peer")
    assert b"tls=yes" in msgs[0]
    wait_for(lambda: "status=sent" in a.log_text(), what="the delivery log line")
    assert "Untrusted TLS connection established to mx.plain.test[127.0.0.1]" in a.log_text()


def test_insecure_zone_with_dane_only_defers(make_instance, dane_setup):
    peer = dane_setup[0]
    a = instance_for(make_instance, dane_setup, "plain.test", level="dane-only")
    send(a, "dane-only plain")
    wait_for(lambda: a.queue_ids("deferred"), timeout=30, what="the message to be deferred")
    log = a.log_text()
    assert re.search(r"dsn=4\.7\.5, status=deferred \(non DNSSEC destination\)", log), log
    assert "TLS connection established" not in log
    assert peer.messages() == []


def test_tlsa_lookup_failure_defers(make_instance, dane_setup):
    peer = dane_setup[0]
    a = instance_for(make_instance, dane_setup, "tlsafail.test")
    send(a, "dane tlsa bogus")
    wait_for(lambda: a.queue_ids("deferred"), timeout=30, what="the message to be deferred")
    log = a.log_text()
    assert re.search(rf"dsn=4\.7\.5, status=deferred \(TLSA lookup error for "
                     rf"mx\.tlsafail\.test:{peer.port}\)", log), log
    assert peer.messages() == []


def test_dane_ta_record_verifies_the_chain(make_instance, workdir, certs, start_peer):
    chain, key = chain_for(certs, "mx.ta.test")
    peer = start_peer(chain, key)
    records = ["ta.test. IN MX 10 mx.ta.test.", "mx.ta.test. IN A 127.0.0.1",
               f"_{peer.port}._tcp.mx.ta.test. IN TLSA 2 0 1 {cert_sha256(certs / 'ca.pem')}"]
    with signed_dns(workdir / f"dns-ta-{peer.port}", records) as (dns_port, anchor):
        a = instance_for(make_instance, (peer, dns_port, anchor), "ta.test")
        send(a, "dane ta")
        msgs = wait_for(peer.messages, timeout=30, what="delivery to the peer")
        assert b"Subject: dane ta" in msgs[0]
        wait_for(lambda: "status=sent" in a.log_text(), what="the delivery log line")
        assert re.search(rf"Verified TLS connection established to mx\.ta\.test\[127\.0\.0\.1\]:"
                         rf"{peer.port}", a.log_text()), a.log_text()


def test_stripped_starttls_defers_and_sends_nothing(make_instance, workdir, certs, start_peer):
    # A man in the middle (tests/e2e/starttls_strip.py) hides STARTTLS; the TLSA
    # records name his port, which is where the MX host is reached.
    peer = start_peer(certs / "self.pem", certs / "self.key")
    proxy = StarttlsStripper(peer.port)
    try:
        records, plain = zone(proxy.port, spki_sha256(certs / "self.pem"))
        with signed_dns(workdir / f"dns-{proxy.port}", records, plain) as (dns_port, anchor):
            a = instance_for(make_instance, (proxy, dns_port, anchor), "good.test")
            send(a, "stripped")
            wait_for(lambda: a.queue_ids("deferred"), timeout=30, what="the deferral")
            assert re.search(r"dsn=4\.7\.4, status=deferred \(TLS is required, but was not "
                             r"offered by host mx\.good\.test\[127\.0\.0\.1\]\)",
                             a.log_text()), a.log_text()
            assert proxy.connections >= 1
            assert peer.messages() == []
    finally:
        proxy.close()
