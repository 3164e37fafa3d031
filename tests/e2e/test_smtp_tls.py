"""The smtp client's STARTTLS (issue 4, "What must be shown" 6) and connection reuse,
against an aiosmtpd peer on loopback (tests/e2e/smtp_peer.py): `verify` to a peer with
an untrusted certificate defers with a clear reason; `verify` with the right CA
delivers; `may` delivers over TLS and logs the TLS version; two messages in a row to
the same destination share one connection (conn_use=2)."""

import re
import shutil

import pytest

from harness import USER2, wait_for
from peers import certs, start_peer  # noqa: F401 (fixtures)

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")


def send(inst, subject, rcpt=f"{USER2}@b.test"):
    with inst.smtp() as s:
        s.sendmail("alice@example.org", [rcpt], f"Subject: {subject}\r\n\r\nbody\r\n".encode())


def test_verify_with_untrusted_certificate_defers(make_instance, certs, start_peer):
    peer = start_peer(certs / "self.pem", certs / "self.key")
    a = make_instance(main_extra={
        "relayhost": f"[127.0.0.1]:{peer.port}",
        "smtp_tls_security_level": "verify",
        "smtp_tls_CAfile": str(certs / "ca.pem"),
        "smtp_tls_loglevel": "1",
    })
    send(a, "must not leave")
    wait_for(lambda: a.queue_ids("deferred"), timeout=30, what="the message to be deferred")
    log = a.log_text()
    assert re.search(rf"to=<{USER2}@b\.test>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:{peer.port}, .*"
                     r"dsn=4\.7\.5, status=deferred \(Server certificate not trusted\)", log), log
    assert "Untrusted TLS connection established" in log
    assert peer.messages() == []


def test_verify_with_the_right_ca_delivers_verified(make_instance, certs, start_peer):
    peer = start_peer(certs / "server.pem", certs / "server.key")
    a = make_instance(main_extra={
        "relayhost": f"[127.0.0.1]:{peer.port}",
        "smtp_tls_security_level": "verify",
        "smtp_tls_CAfile": str(certs / "ca.pem"),
        "smtp_tls_loglevel": "1",
    })
    send(a, "verified")
    msgs = wait_for(peer.messages, timeout=30, what="delivery to the peer")
    assert b"tls=yes" in msgs[0] and b"Subject: verified" in msgs[0]
    log = a.log_text()
    assert re.search(rf"Verified TLS connection established to 127\.0\.0\.1\[127\.0\.0\.1\]:"
                     rf"{peer.port}: TLSv1\.[23] with cipher \S+", log), log
    wait_for(lambda: "status=sent" in a.log_text(), what="the delivery log line")


def test_may_delivers_over_tls_and_reuses_the_connection(make_instance, certs, start_peer):
    peer = start_peer(certs / "self.pem", certs / "self.key")
    a = make_instance(main_extra={
        "relayhost": f"[127.0.0.1]:{peer.port}",
        "smtp_tls_security_level": "may",
        "smtp_tls_loglevel": "1",
        # Long enough for the second message to arrive while the session is idle.
        "smtp_connection_cache_time_limit": "20s",
    })
    send(a, "first")
    wait_for(lambda: len(peer.messages()) == 1, timeout=30, what="first delivery")
    wait_for(lambda: "status=sent" in a.log_text(), what="first delivery log line")
    send(a, "second")
    msgs = wait_for(lambda: len(peer.messages()) == 2 and peer.messages(), timeout=30,
                    what="second delivery")
    log = a.log_text()
    m = re.search(rf"Untrusted TLS connection established to 127\.0\.0\.1\[127\.0\.0\.1\]:"
                  rf"{peer.port}: (TLSv1\.[23]) with cipher \S+", log)
    assert m, log
    assert all(b"tls=yes" in x for x in msgs)
    # Same client port on the peer's side: the same TCP connection.
    ports = [x.split(b"\r\n", 1)[0].split()[1] for x in msgs]
    assert ports[0] == ports[1], ports
    wait_for(lambda: "conn_use=2" in a.log_text(), what="the reuse log line")
    assert re.search(rf"to=<{USER2}@b\.test>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:{peer.port}, "
                     r"conn_use=2, delay=[\d.]+, delays=[\d.]+/[\d.]+/[\d.]+/[\d.]+, dsn=2\.0\.0, "
                     r"status=sent \(250 2\.0\.0 Ok: queued as PEER2\)", a.log_text())
    # One TLS handshake for both messages.
    assert a.log_text().count("TLS connection established") == 1


def test_encrypt_to_a_peer_without_starttls_defers(make_instance, certs, start_peer, workdir):
    # A second Rostfix instance without smtpd TLS is a peer that offers no STARTTLS.
    b = make_instance(main_extra={"inet_interfaces": "127.0.0.1"})
    a = make_instance(main_extra={
        "relayhost": f"[127.0.0.1]:{b.port}",
        "smtp_tls_security_level": "encrypt",
    })
    send(a, "needs tls")
    wait_for(lambda: a.queue_ids("deferred"), timeout=30, what="the message to be deferred")
    assert re.search(r"dsn=4\.7\.4, status=deferred \(TLS is required, but was not offered by "
                     rf"host 127\.0\.0\.1\[127\.0\.0\.1\]\)", a.log_text()), a.log_text()


@pytest.mark.parametrize("cache", [True, False])
def test_session_cache_resumes_the_second_connection(make_instance, certs, start_peer, cache):
    """With smtp_tls_session_cache_database set, the second TLS connection to the same
    server resumes the first one's session (the peer's OpenSSL says so); without it,
    Postfix's default, every connection does a full handshake."""
    peer = start_peer(certs / "server.pem", certs / "server.key")
    extra = {
        "relayhost": f"[127.0.0.1]:{peer.port}",
        "smtp_tls_security_level": "verify",
        "smtp_tls_CAfile": str(certs / "ca.pem"),
        "smtp_tls_loglevel": "2",
        # A new connection for each message, so that TLS starts twice.
        "smtp_connection_cache_on_demand": "no",
    }
    if cache:
        extra["smtp_tls_session_cache_database"] = "btree:${data_directory}/smtp_scache"
    a = make_instance(main_extra=extra, start=False)
    # One smtp process: the cache lives in each process (crates/smtp/src/tls_sessions.rs).
    master = a.conf / "master.cf"
    text = master.read_text()
    line = next(l for l in text.splitlines() if l.startswith("smtp ") and "unix" in l)
    fields = line.split()
    fields[6] = "1"  # maxproc
    master.write_text(text.replace(line, " ".join(fields)))
    a.start()
    send(a, "first")
    wait_for(lambda: len(peer.messages()) == 1, timeout=30, what="first delivery")
    send(a, "second")
    msgs = wait_for(lambda: len(peer.messages()) == 2 and peer.messages(), timeout=30,
                    what="second delivery")
    first, second = (m.split(b"\r\n", 1)[0] for m in msgs)
    assert first.endswith(b"tls=yes auth=None reused=no"), first
    assert first.split()[1] != second.split()[1], "expected two TCP connections"
    log = a.log_text()
    # Both connections are judged Verified: a resumed session is checked again.
    assert log.count("Verified TLS connection established to 127.0.0.1[127.0.0.1]") == 2, log
    if cache:
        assert second.endswith(b"reused=yes"), (second, log)
        assert f"127.0.0.1[127.0.0.1]:{peer.port}: Reusing old session" in log, log
    else:
        assert second.endswith(b"reused=no"), second
        assert "Reusing old session" not in log
