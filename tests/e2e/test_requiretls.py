"""REQUIRETLS (RFC 8689) between two Rostfix instances.

Instance A takes a message with MAIL FROM ... REQUIRETLS (offered only after
STARTTLS) and relays it to instance B. Over TLS whose certificate A verifies, and with
B offering REQUIRETLS, the message goes and B keeps the REQUIRETLS flag with it. When
B offers no TLS, or the aiosmtpd peer offers TLS but not REQUIRETLS, A returns the
message (5.7.10, 5.7.30) instead of sending it in clear or to a server that would drop
the requirement. `TLS-Required: No` lets a message through an unverifiable TLS policy."""

import re
import smtplib
import ssl

from harness import USER1, wait_for
from peers import make_ca_and_server_cert
from peers import certs, start_peer  # noqa: F401 (fixtures)

RCPT = f"{USER1}@b.test"


def tls_files(directory):
    certs = make_ca_and_server_cert(directory)
    for name in ("server.pem", "server.key", "ca.pem", "self.pem", "self.key"):
        (certs / name).chmod(0o644)
    return certs


def client_context(certs):
    ctx = ssl.create_default_context(cafile=str(certs / "ca.pem"))
    ctx.check_hostname = False
    return ctx


def sender_instance(make_instance, certs, next_hop_port, **extra):
    """A: takes mail over STARTTLS (so REQUIRETLS is offered) and relays to next_hop_port."""
    return make_instance(main_extra={
        "relayhost": f"[127.0.0.1]:{next_hop_port}",
        "smtp_tls_security_level": "may",
        "smtp_tls_CAfile": str(certs / "ca.pem"),
        "smtp_tls_loglevel": "1",
        "smtpd_tls_security_level": "may",
        "smtpd_tls_cert_file": str(certs / "server.pem"),
        "smtpd_tls_key_file": str(certs / "server.key"),
        **extra,
    })


def submit(inst, certs, subject, requiretls=True, headers=""):
    with inst.smtp() as s:
        s.ehlo("client.example")
        assert not s.has_extn("requiretls"), "REQUIRETLS offered before STARTTLS"
        s.starttls(context=client_context(certs))
        s.ehlo("client.example")
        assert s.has_extn("requiretls"), s.esmtp_features
        options = ["REQUIRETLS"] if requiretls else []
        code, text = s.mail("alice@mx.rostfix.test", options)
        assert code == 250, text
        assert s.rcpt(RCPT)[0] == 250
        code, _ = s.data(f"Subject: {subject}\r\n{headers}\r\nbody\r\n".encode())
        assert code == 250


def test_requiretls_goes_over_verified_tls_and_the_flag_travels(make_instance, tmp_path):
    certs = tls_files(tmp_path)
    hold = tmp_path / "hold.regexp"
    hold.write_text("/^Subject: hold me/ HOLD\n")
    hold.chmod(0o644)
    b = make_instance(main_extra={
        "mydestination": "$myhostname, localhost, b.test",
        "smtpd_tls_security_level": "may",
        "smtpd_tls_cert_file": str(certs / "server.pem"),
        "smtpd_tls_key_file": str(certs / "server.key"),
        "header_checks": f"regexp:{hold}",
    })
    a = sender_instance(make_instance, certs, b.port)
    submit(a, certs, "hold me")
    wait_for(lambda: "status=sent" in a.log_text(), timeout=30, what="A's delivery to B")
    log = a.log_text()
    assert re.search(r"Verified TLS connection established to 127\.0\.0\.1\[127\.0\.0\.1\]:"
                     rf"{b.port}", log), log
    held = wait_for(lambda: b.queue_ids("hold"), timeout=30, what="the message held on B")
    data = (b.queue / "hold" / held[0]).read_bytes()
    assert b"requiretls" in data, data[:600]

    # Without REQUIRETLS the same path keeps no flag.
    submit(a, certs, "hold me too", requiretls=False)
    wait_for(lambda: len(b.queue_ids("hold")) == 2, timeout=30, what="second held message")
    plain = [i for i in b.queue_ids("hold") if i != held[0]][0]
    assert b"requiretls" not in (b.queue / "hold" / plain).read_bytes()


def test_requiretls_is_returned_when_the_next_hop_has_no_tls(make_instance, tmp_path):
    certs = tls_files(tmp_path)
    b = make_instance(main_extra={"mydestination": "$myhostname, localhost, b.test"})
    a = sender_instance(make_instance, certs, b.port)
    submit(a, certs, "must not go in clear")
    wait_for(lambda: "status=bounced" in a.log_text(), timeout=30, what="the bounce")
    log = a.log_text()
    assert re.search(rf"to=<{re.escape(RCPT)}>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:{b.port}, .*"
                     r"dsn=5\.7\.10, status=bounced \(REQUIRETLS: TLS is required, but was not "
                     r"offered by host 127\.0\.0\.1\[127\.0\.0\.1\]\)", log), log
    assert "status=sent" not in "".join(l for l in log.splitlines() if RCPT in l)


def test_requiretls_needs_the_server_to_offer_it(make_instance, tmp_path, certs, start_peer):
    own = tls_files(tmp_path)
    # aiosmtpd offers STARTTLS with a certificate of the peers' CA, not REQUIRETLS.
    peer = start_peer(certs / "server.pem", certs / "server.key")
    a = sender_instance(make_instance, own, peer.port, smtp_tls_CAfile=str(certs / "ca.pem"))
    submit(a, own, "to a server without REQUIRETLS")
    wait_for(lambda: "status=bounced" in a.log_text(), timeout=30, what="the bounce")
    assert re.search(r"dsn=5\.7\.30, status=bounced \(REQUIRETLS support required, but not "
                     r"offered by host 127\.0\.0\.1\[127\.0\.0\.1\]\)", a.log_text()), a.log_text()
    assert peer.messages() == []


def test_tls_required_no_lets_mail_past_an_unverifiable_policy(make_instance, tmp_path,
                                                                certs, start_peer):
    own = tls_files(tmp_path)
    # A self-signed peer: `verify` would defer; TLS-Required: No delivers over TLS anyway.
    peer = start_peer(certs / "self.pem", certs / "self.key")
    a = sender_instance(make_instance, own, peer.port, smtp_tls_security_level="verify")
    submit(a, own, "optional tls", requiretls=False, headers="TLS-Required: No\r\n")
    msgs = wait_for(peer.messages, timeout=30, what="delivery despite the policy")
    assert b"tls=yes" in msgs[0]
    assert "Untrusted TLS connection established" in a.log_text()
