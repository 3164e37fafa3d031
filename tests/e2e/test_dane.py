"""DANE for the smtp client (issue 17, RFC 7672): a DNSSEC-signed root zone served by
nsd (tests/e2e/signed_dns.py) publishes MX, A and TLSA records for an aiosmtpd peer
with STARTTLS and a self-signed certificate (tests/e2e/peers.py); the smtp client
validates from the zone's key (rostfix_dnssec_trust_anchor, smtp_dns_support_level =
dnssec). Shown: a matching TLSA record delivers and logs Verified; a mismatching one
defers and nothing is sent, not even in the clear; only PKIX records (unusable) means
mandatory unauthenticated TLS; an unsigned (insecure) zone falls back to opportunistic
TLS with `dane` and is deferred with `dane-only`."""

import hashlib
import re
import subprocess

import pytest

from harness import USER2, wait_for
from peers import certs, start_peer  # noqa: F401 (fixtures)
from signed_dns import signed_dns


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
    plain = {"plain.test.": ["plain.test. IN MX 10 mx.plain.test.",
                             "mx.plain.test. IN A 127.0.0.1"]}
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
