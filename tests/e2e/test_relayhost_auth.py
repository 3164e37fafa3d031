"""Relaying through a submission service with client SASL (issue 4, "What must be
shown" 3): relayhost = [127.0.0.1]:PORT, an aiosmtpd peer that requires STARTTLS and
AUTH (tests/e2e/smtp_peer.py), the password in a root-only table read before the
chroot. Right password: delivered, authenticated, over TLS. Wrong password: deferred
with the server's reply logged, and the password never in the log."""

import os
import re
import shutil

import pytest

from harness import USER2, wait_for
from peers import certs, start_peer  # noqa: F401 (fixtures)

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")


def relay_instance(make_instance, workdir, peer, password):
    table = workdir / f"sasl_passwd-{peer.port}"
    table.write_text(f"[127.0.0.1]:{peer.port} relayuser:{password}\n")
    os.chmod(table, 0o600)
    return make_instance(main_extra={
        "relayhost": f"[127.0.0.1]:{peer.port}",
        "smtp_sasl_auth_enable": "yes",
        "smtp_sasl_password_maps": f"texthash:{table}",
        # PLAIN/LOGIN need this, as in Postfix's SASL_README.
        "smtp_sasl_security_options": "noanonymous",
        "smtp_tls_security_level": "encrypt",
        "smtp_tls_loglevel": "1",
    })


def send(inst, subject):
    with inst.smtp() as s:
        s.sendmail("alice@example.org", [f"{USER2}@b.test"],
                   f"Subject: {subject}\r\n\r\nbody\r\n".encode())


def test_authenticated_relay_delivers(make_instance, workdir, certs, start_peer):
    peer = start_peer(certs / "self.pem", certs / "self.key", auth="relayuser:s3cret:pw")
    a = relay_instance(make_instance, workdir, peer, "s3cret:pw")
    send(a, "via the submission relay")
    msgs = wait_for(peer.messages, timeout=30, what="delivery through the relay")
    assert b"tls=yes auth=relayuser" in msgs[0]
    assert b"Subject: via the submission relay" in msgs[0]
    wait_for(lambda: "status=sent" in a.log_text(), what="the delivery log line")
    log = a.log_text()
    assert re.search(rf"to=<{USER2}@b\.test>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:{peer.port}, "
                     r".*dsn=2\.0\.0, status=sent \(250 2\.0\.0 Ok: queued as PEER1\)", log), log
    assert "s3cret" not in log
    a.wait_queue_empty()


def test_wrong_password_defers_with_the_server_reply(make_instance, workdir, certs, start_peer):
    peer = start_peer(certs / "self.pem", certs / "self.key", auth="relayuser:right")
    a = relay_instance(make_instance, workdir, peer, "wrongpass")
    send(a, "bad credentials")
    wait_for(lambda: a.queue_ids("deferred"), timeout=30, what="the message to be deferred")
    log = a.log_text()
    assert re.search(rf"to=<{USER2}@b\.test>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:{peer.port}, .*"
                     r"dsn=4\.7\.8, status=deferred \(SASL authentication failed; server "
                     r"127\.0\.0\.1\[127\.0\.0\.1\] said: 535 5\.7\.8 Authentication credentials "
                     r"invalid\)", log), log
    assert "wrongpass" not in log
    assert peer.messages() == []
