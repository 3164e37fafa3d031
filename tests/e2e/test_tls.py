"""smtpd TLS end to end: STARTTLS, implicit TLS (wrapper mode), encrypt level, protocol
minimums and the CVE-2011-0411 pipelined-plaintext discard, against real clients
(Python's smtplib/ssl and openssl s_client)."""

import shutil
import smtplib
import socket
import ssl
import subprocess
import tempfile
from pathlib import Path

import pytest

import harness
from harness import maildir_messages, wait_for
from harness import USER1

RSA_CN = "rsa.rostfix.test"
EC_CN = "ec.rostfix.test"

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")


def make_certs(directory):
    """A self-signed RSA and a self-signed ECDSA (P-256) certificate with their keys."""
    d = Path(directory)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", f"/CN={RSA_CN}", "-keyout", str(d / "rsa.key"),
                    "-out", str(d / "rsa.pem")], check=True, capture_output=True)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                    "-subj", f"/CN={EC_CN}", "-keyout", str(d / "ec.key"),
                    "-out", str(d / "ec.pem")], check=True, capture_output=True)
    for f in d.iterdir():
        f.chmod(0o600)
    return d


@pytest.fixture
def tls(make_instance, workdir):
    """An instance with STARTTLS (may) on its main port, plus a wrapper-mode port, an
    encrypt-level port and an ECDSA-certificate port."""
    certs = make_certs(tempfile.mkdtemp(prefix="tls-", dir=workdir))
    ports = {name: harness.free_port() for name in ("wrapper", "encrypt", "ec", "noaes128")}
    master_extra = f"""127.0.0.1:{ports['wrapper']} inet n - y - - smtpd -o smtpd_tls_wrappermode=yes
127.0.0.1:{ports['encrypt']} inet n - y - - smtpd -o smtpd_tls_security_level=encrypt
127.0.0.1:{ports['ec']} inet n - y - - smtpd -o smtpd_tls_cert_file={certs}/ec.pem -o smtpd_tls_key_file={certs}/ec.key
127.0.0.1:{ports['noaes128']} inet n - y - - smtpd -o smtpd_tls_exclude_ciphers=AES128,aNULL,RC4
"""
    inst = make_instance(main_extra={
        "smtpd_tls_security_level": "may",
        "smtpd_tls_cert_file": f"{certs}/rsa.pem",
        "smtpd_tls_key_file": f"{certs}/rsa.key",
        "smtpd_tls_protocols": "!SSLv2, !SSLv3, !TLSv1, !TLSv1.1",
        # The injection test pipelines after STARTTLS on purpose, to show the
        # plaintext discard; with the guard on it would get 554 5.5.0 instead.
        "smtpd_forbid_unauth_pipelining": "no",
        # The cipher note in Received and the handshake summary in the log are
        # asked for here; both are off by default (test_smtpd_session.py).
        "smtpd_tls_received_header": "yes",
        "smtpd_tls_loglevel": "1",
    }, master_extra=master_extra)
    inst.ports = ports
    return inst


def no_verify():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def message(subject):
    return (f"From: alice@example.org\r\nTo: {USER1}@mx.rostfix.test\r\n"
            f"Subject: {subject}\r\n\r\nover TLS\r\n")


def delivered_with(subject):
    for _, data in maildir_messages(USER1):
        if f"Subject: {subject}".encode() in data:
            return data
    return None


def test_starttls_with_smtplib_delivers_and_notes_tls(tls):
    with tls.smtp() as s:
        s.ehlo("client.example.org")
        assert s.has_extn("starttls")
        s.starttls(context=no_verify())
        s.ehlo("client.example.org")
        assert not s.has_extn("starttls"), "STARTTLS offered again inside TLS"
        code, resp = s.docmd("STARTTLS")
        assert (code, resp) == (554, b"5.5.1 Error: TLS already active")
        s.sendmail("alice@example.org", [f"{USER1}@mx.rostfix.test"], message("starttls-1"))
    wait_for(lambda: delivered_with("starttls-1"), what="delivery")
    data = delivered_with("starttls-1").decode()
    # Postfix notes the client certificate, here that none was asked for.
    assert ("\n\t(using TLSv1.3 with cipher TLS13_AES_256_GCM_SHA384 (256/256 bits))\n"
            "\t(No client certificate requested)\n\tby ") in data
    assert "with ESMTPS id" in data
    assert "Anonymous TLS connection established from unknown[127.0.0.1]: TLSv1.3 with cipher" \
        in tls.log_text()


def s_client(port, *extra, starttls=True):
    argv = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", *extra]
    if starttls:
        argv[2:2] = ["-starttls", "smtp"]
    return subprocess.run(argv, input=b"QUIT\n", capture_output=True, timeout=30)


def test_openssl_sees_tls13_and_the_configured_certificates(tls):
    out = s_client(tls.port).stdout.decode(errors="replace")
    assert "TLSv1.3" in out, out
    assert f"CN = {RSA_CN}" in out or f"CN={RSA_CN}" in out, out
    out = s_client(tls.ports["ec"]).stdout.decode(errors="replace")
    assert "TLSv1.3" in out, out
    assert f"CN = {EC_CN}" in out or f"CN={EC_CN}" in out, out
    # TLS 1.2 is still allowed by "!SSLv2, !SSLv3, !TLSv1, !TLSv1.1".
    out = s_client(tls.port, "-tls1_2").stdout.decode(errors="replace")
    assert "TLSv1.2" in out, out


def test_excluded_ciphers_are_not_negotiated(tls):
    """smtpd_tls_exclude_ciphers = AES128 on one port: a TLS 1.2 client offering only
    AES128 gets no handshake there, while the main port accepts the same client and the
    excluding port still speaks TLS 1.2 with another cipher."""
    only_aes128 = ("-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256")
    out = s_client(tls.port, *only_aes128).stdout.decode(errors="replace")
    assert "ECDHE-RSA-AES128-GCM-SHA256" in out, out
    r = s_client(tls.ports["noaes128"], *only_aes128)
    out = r.stdout.decode(errors="replace")
    assert "Cipher is ECDHE-RSA-AES128-GCM-SHA256" not in out, out
    out = s_client(tls.ports["noaes128"], "-tls1_2").stdout.decode(errors="replace")
    assert "TLSv1.2" in out and "AES128" not in out.split("Cipher is", 1)[-1][:60], out


def test_tls10_and_tls11_clients_are_refused(tls):
    for flag in ("-tls1", "-tls1_1"):
        r = s_client(tls.port, flag, "-cipher", "DEFAULT@SECLEVEL=0")
        out = r.stdout.decode(errors="replace")
        assert r.returncode != 0 or "Cipher is (NONE)" in out, out
        assert "Cipher is TLS" not in out and "Cipher is ECDHE" not in out, out
    # Refused by the server, not only by the client's own settings.
    wait_for(lambda: "TLS handshake failed from unknown[127.0.0.1]" in tls.log_text(),
             what="the handshake failure log line")
    # The server still serves others afterwards.
    assert tls.accepting()


def test_implicit_tls_on_the_wrapper_port_delivers(tls):
    with smtplib.SMTP_SSL("127.0.0.1", tls.ports["wrapper"], timeout=30,
                          context=no_verify()) as s:
        code, _ = s.ehlo("client.example.org")
        assert code == 250
        assert not s.has_extn("starttls")
        s.sendmail("alice@example.org", [f"{USER1}@mx.rostfix.test"], message("wrapper-1"))
    wait_for(lambda: delivered_with("wrapper-1"), what="delivery")
    assert "with ESMTPS id" in delivered_with("wrapper-1").decode()


def test_encrypt_level_refuses_mail_before_starttls(tls):
    with smtplib.SMTP("127.0.0.1", tls.ports["encrypt"], timeout=30) as s:
        s.ehlo("client.example.org")
        assert s.has_extn("starttls")
        code, resp = s.docmd("MAIL FROM:<alice@example.org>")
        assert (code, resp) == (530, b"5.7.0 Must issue a STARTTLS command first")
        code, _ = s.docmd("NOOP")
        assert code == 250
        s.starttls(context=no_verify())
        s.ehlo("client.example.org")
        code, resp = s.docmd("MAIL FROM:<alice@example.org>")
        assert code == 250, resp


def read_reply(f):
    """One complete (possibly multi-line) reply from a file-like socket reader."""
    lines = []
    while True:
        line = f.readline()
        assert line, f"connection closed after {lines}"
        lines.append(line)
        if line[3:4] != b"-":
            return lines


def test_plaintext_pipelined_after_starttls_is_discarded(tls):
    raw = socket.create_connection(("127.0.0.1", tls.port), timeout=30)
    try:
        f = raw.makefile("rb", buffering=0)
        assert read_reply(f)[0].startswith(b"220")
        raw.sendall(b"EHLO client.example.org\r\n")
        read_reply(f)
        # The injection: RSET rides in the same write as STARTTLS, in plaintext.
        raw.sendall(b"STARTTLS\r\nRSET\r\n")
        assert read_reply(f) == [b"220 2.0.0 Ready to start TLS\r\n"]
        tls_sock = no_verify().wrap_socket(raw, server_hostname=RSA_CN)
        tls_sock.sendall(b"NOOP\r\nQUIT\r\n")
        got = b""
        while True:
            chunk = tls_sock.recv(4096)
            if not chunk:
                break
            got += chunk
        # Exactly the NOOP's and QUIT's replies: nothing answers the injected RSET.
        assert got == b"250 2.0.0 Ok\r\n221 2.0.0 Bye\r\n"
    finally:
        raw.close()
    wait_for(lambda: "discarded 6 bytes of pipelined plaintext after STARTTLS"
             in tls.log_text(), what="the discard log line")
