"""smtpd session settings end to end (issue 13, part 4): smtpd behind a real HAProxy
(PROXY v2 and v1) with the log and restrictions seeing the real client, malformed and
slow PROXY headers refused, XCLIENT and XFORWARD from authorized and unauthorized
hosts, smtpd_helo_required, smtpd_forbidden_commands, smtpd_discard_ehlo_keywords,
smtpd_sasl_security_options = noplaintext, and SNI choosing the certificate.

The test clients use source addresses 127.0.0.2 and 127.0.0.3 while HAProxy connects
to smtpd from 127.0.0.1, so the address smtpd logs tells whose it took."""

import re
import shutil
import smtplib
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

import harness
from harness import maildir_messages, wait_for
from harness import USER1
from saslpeer import PASSWORD, plain_blob, write_passwd
from test_tls import make_certs, no_verify

LOGIN = "alice@rostfix.test"


def read_reply(sock_file):
    """One (possibly multi-line) reply: (code, [lines])."""
    lines = []
    while True:
        line = sock_file.readline().decode(errors="replace").rstrip("\r\n")
        if not line:
            raise EOFError("connection closed")
        lines.append(line)
        if len(line) < 4 or line[3] != "-":
            return int(line[:3]), lines


class Raw:
    """A raw SMTP connection from `source` (a loopback address)."""

    def __init__(self, port, source="127.0.0.1", greet=True):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=20,
                                             source_address=(source, 0))
        self.f = self.sock.makefile("rb")
        if greet:
            self.greeting = read_reply(self.f)

    def cmd(self, line):
        self.sock.sendall(line.encode() + b"\r\n")
        return read_reply(self.f)

    def close(self):
        self.sock.close()


# ---------------------------------------------------------------- HAProxy

@pytest.fixture
def behind_haproxy(make_instance, workdir):
    """An instance whose second smtpd port expects the PROXY protocol, a client table
    refusing 127.0.0.2, and HAProxy in front of that port (v2 and v1 frontends)."""
    d = Path(tempfile.mkdtemp(prefix="haproxy-", dir=workdir))
    (d / "client").write_text("127.0.0.2 REJECT proxied client refused\n")
    proxied = harness.free_port()
    inst = make_instance(main_extra={
        "smtpd_client_restrictions": f"check_client_access texthash:{d}/client",
        "smtpd_upstream_proxy_timeout": "2s",
    }, master_extra=f"127.0.0.1:{proxied} inet n - y - - smtpd"
                    " -o smtpd_upstream_proxy_protocol=haproxy\n")
    with harness.haproxy_in_front(d, proxied) as ports:
        inst.proxy_ports = dict(ports, smtpd=proxied)
        yield inst


@pytest.mark.parametrize("version", ["v2", "v1"])
def test_haproxy_real_client_in_log_and_restrictions(behind_haproxy, version):
    inst = behind_haproxy
    port = inst.proxy_ports[version]
    refused = Raw(port, source="127.0.0.2")
    assert refused.greeting[0] == 220
    assert refused.cmd("EHLO client.example")[0] == 250
    assert refused.cmd("MAIL FROM:<a@example.org>")[0] == 250
    code, lines = refused.cmd(f"RCPT TO:<{USER1}@localhost>")
    assert code == 554 and "Client host rejected: proxied client refused" in lines[0], lines
    refused.cmd("QUIT")
    refused.close()
    log = wait_for(lambda: re.search(r"NOQUEUE: reject: RCPT from \S+\[127\.0\.0\.2\]: 554",
                                     inst.log_text()) and inst.log_text(), what="reject logged")
    assert re.search(r"connect from \S+\[127\.0\.0\.2\]", log), log

    # Another real client through the same proxy is accepted and delivered.
    subject = f"via haproxy {version}"
    with smtplib.SMTP("127.0.0.1", port, source_address=("127.0.0.3", 0), timeout=20) as s:
        s.sendmail("a@example.org", [f"{USER1}@localhost"],
                   f"Subject: {subject}\r\n\r\nhi\r\n")
    data = wait_for(lambda: next((d for _, d in maildir_messages(USER1)
                                  if subject.encode() in d), None), what="delivery")
    assert re.search(rb"Received: from \S+ \(\S+ \[127\.0\.0\.3\]\)", data), data[:300]
    assert re.search(r"client=\S+\[127\.0\.0\.3\]", inst.log_text())


def test_malformed_proxy_header_is_refused(behind_haproxy):
    inst = behind_haproxy
    raw = Raw(inst.proxy_ports["smtpd"], greet=False)
    raw.sock.sendall(b"PROXY TCP4 300.1.1.1 127.0.0.1 1 25\r\nEHLO x\r\n")
    code, lines = read_reply(raw.f)
    raw.close()
    assert (code, lines[0]) == (421, "421 4.3.0 mx.rostfix.test Server local error")
    log = wait_for(lambda: "haproxy read:" in inst.log_text() and inst.log_text(),
                   what="warning")
    assert ("warning: haproxy read: bad or missing client address: "
            "PROXY TCP4 300.1.1.1 127.0.0.1 1 25\\r\\n") in log, log
    assert "connect from unknown[unknown]" in log
    # A client speaking SMTP straight at the proxied port is refused the same way.
    raw = Raw(inst.proxy_ports["smtpd"], greet=False)
    raw.sock.sendall(b"EHLO direct.example\r\n")
    assert read_reply(raw.f)[0] == 421
    raw.close()
    wait_for(lambda: "haproxy read: unrecognized protocol header" in inst.log_text(),
             what="unrecognized header logged")


def test_slow_proxy_header_times_out(behind_haproxy):
    inst = behind_haproxy
    raw = Raw(inst.proxy_ports["smtpd"], greet=False)
    started = time.monotonic()
    raw.sock.sendall(b"PROXY TCP4 127.0.0.2")  # and never the rest
    code, _ = read_reply(raw.f)
    elapsed = time.monotonic() - started
    raw.close()
    assert code == 421
    # smtpd_upstream_proxy_timeout = 2s bounds the whole header, not each byte.
    assert elapsed < 10, elapsed
    wait_for(lambda: "warning: haproxy read: timeout error" in inst.log_text(),
             what="timeout logged")


# ---------------------------------------------------------------- XCLIENT, XFORWARD

@pytest.fixture
def x_instance(make_instance):
    return make_instance(main_extra={
        "smtpd_authorized_xclient_hosts": "127.0.0.1",
        "smtpd_authorized_xforward_hosts": "127.0.0.1",
    })


def test_xclient_from_an_authorized_host_changes_the_client(x_instance):
    inst = x_instance
    c = Raw(inst.port)
    code, lines = c.cmd("EHLO proxy.example")
    assert any("XCLIENT" in l for l in lines), lines
    code, lines = c.cmd("XCLIENT NAME=client.example ADDR=192.0.2.9 HELO=real.example")
    assert code == 220 and lines[0].startswith("220 mx.rostfix.test"), lines
    assert c.cmd("MAIL FROM:<a@example.org>")[0] == 250
    # 192.0.2.9 is outside mynetworks now: no relaying for it.
    code, lines = c.cmd("RCPT TO:<x@elsewhere.example>")
    assert code == 454 and "Relay access denied" in lines[0], lines
    c.cmd("QUIT")
    c.close()
    log = wait_for(lambda: "Relay access denied" in inst.log_text() and inst.log_text(),
                   what="reject logged")
    assert "NOQUEUE: reject: RCPT from client.example[192.0.2.9]" in log, log


def test_xclient_and_xforward_from_an_unauthorized_host_get_550(x_instance):
    c = Raw(x_instance.port, source="127.0.0.3")
    code, lines = c.cmd("EHLO other.example")
    assert not any("XCLIENT" in l or "XFORWARD" in l for l in lines), lines
    assert c.cmd("XCLIENT ADDR=192.0.2.9") == \
        (550, ["550 5.7.0 Error: insufficient authorization"])
    assert c.cmd("XFORWARD ADDR=192.0.2.9") == \
        (550, ["550 5.7.0 Error: insufficient authorization"])
    c.cmd("QUIT")
    c.close()


def test_xforward_names_the_original_client_in_the_log(x_instance):
    inst = x_instance
    c = Raw(inst.port)
    assert c.cmd("EHLO filter.example")[0] == 250
    assert c.cmd("XFORWARD NAME=orig.example ADDR=192.0.2.7 HELO=orig-helo IDENT=1A2B3C")[0] == 250
    assert c.cmd("MAIL FROM:<a@example.org>")[0] == 250
    assert c.cmd(f"RCPT TO:<{USER1}@localhost>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    code, lines = c.cmd("Subject: forwarded\r\n\r\nhi\r\n.")
    assert code == 250, lines
    c.cmd("QUIT")
    c.close()
    log = wait_for(lambda: "orig_client=" in inst.log_text() and inst.log_text(),
                   what="client= line")
    assert re.search(r": client=\S+\[127\.0\.0\.1\], orig_queue_id=1A2B3C, "
                     r"orig_client=orig\.example\[192\.0\.2\.7\]", log), log


# ---------------------------------------------------------------- session settings

def test_helo_required(make_instance):
    inst = make_instance(main_extra={"smtpd_helo_required": "yes"})
    c = Raw(inst.port)
    assert c.cmd("MAIL FROM:<a@example.org>") == \
        (503, ["503 5.5.1 Error: send HELO/EHLO first"])
    assert c.cmd("HELO client.example")[0] == 250
    assert c.cmd("MAIL FROM:<a@example.org>")[0] == 250
    c.cmd("QUIT")
    c.close()


def test_forbidden_commands(make_instance):
    inst = make_instance(main_extra={"smtpd_forbidden_commands": "CONNECT GET POST XYZZY"})
    for line in ["GET / HTTP/1.0", "xyzzy plugh"]:
        c = Raw(inst.port)
        assert c.cmd(line) == \
            (221, ["221 2.7.0 Error: I can break rules, too. Goodbye."])
        c.close()
    wait_for(lambda: re.search(r"warning: non-SMTP command from \S+\[127\.0\.0\.1\]: xyzzy plugh",
                               inst.log_text()), what="warning")


def test_discard_ehlo_keywords(make_instance):
    inst = make_instance(main_extra={"smtpd_discard_ehlo_keywords": "pipelining, chunking"})
    with smtplib.SMTP("127.0.0.1", inst.port, timeout=20) as s:
        s.ehlo("client.example")
        assert not s.has_extn("pipelining") and not s.has_extn("chunking"), s.esmtp_features
        assert s.has_extn("8bitmime")
    wait_for(lambda: "discarding EHLO keywords: PIPELINING CHUNKING" in inst.log_text(),
             what="discard logged")


def test_sasl_noplaintext_hides_plain_before_tls(make_instance, workdir):
    certs = make_certs(tempfile.mkdtemp(prefix="tls-", dir=workdir))
    sasl_dir = Path(tempfile.mkdtemp(prefix="sasl-", dir=workdir))
    inst = make_instance(main_extra={
        "smtpd_tls_security_level": "may",
        "smtpd_tls_cert_file": f"{certs}/rsa.pem",
        "smtpd_tls_key_file": f"{certs}/rsa.key",
        "smtpd_sasl_auth_enable": "yes",
        "smtpd_sasl_type": "rostfix",
        "smtpd_sasl_path": str(write_passwd(sasl_dir / "sasl_passwd", {LOGIN: PASSWORD})),
        "smtpd_sasl_security_options": "noanonymous, noplaintext",
        "smtpd_sasl_tls_security_options": "noanonymous",
    })
    with smtplib.SMTP("127.0.0.1", inst.port, timeout=20) as s:
        s.ehlo("client.example")
        assert not s.has_extn("auth"), s.esmtp_features
        code, resp = s.docmd("AUTH", "PLAIN " + plain_blob(LOGIN, PASSWORD))
        assert code == 535 and b"Invalid authentication mechanism" in resp, resp
        s.starttls(context=no_verify())
        s.ehlo("client.example")
        assert s.esmtp_features.get("auth", "").split() == ["PLAIN", "LOGIN"], s.esmtp_features
        code, _ = s.docmd("AUTH", "PLAIN " + plain_blob(LOGIN, PASSWORD))
        assert code == 235


# ---------------------------------------------------------------- TLS certificates

def served_subject(port, servername=None, sigalgs=None):
    """The subject of the certificate smtpd presents after STARTTLS (openssl s_client)."""
    argv = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-starttls", "smtp",
            "-brief"]
    if servername:
        argv += ["-servername", servername]
    else:
        argv += ["-noservername"]
    if sigalgs:
        argv += ["-sigalgs", sigalgs]
    out = subprocess.run(argv, input=b"QUIT\r\n", capture_output=True, timeout=30)
    text = (out.stdout + out.stderr).decode(errors="replace")
    m = re.search(r"Peer certificate: (.*)", text)
    assert m, text
    return m.group(1)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_chain_files_and_sni_pick_the_certificate(make_instance, workdir):
    certs = make_certs(tempfile.mkdtemp(prefix="tls-", dir=workdir))
    # Chain files: key first, then the certificate, as Postfix documents them.
    for name in ("rsa", "ec"):
        (certs / f"{name}.chain").write_bytes((certs / f"{name}.key").read_bytes()
                                              + (certs / f"{name}.pem").read_bytes())
        (certs / f"{name}.chain").chmod(0o600)
    (certs / "sni").write_text(f"sni.rostfix.test {certs}/ec.chain\n")
    sni_port = harness.free_port()
    inst = make_instance(main_extra={
        "smtpd_tls_security_level": "may",
        "smtpd_tls_chain_files": f"{certs}/rsa.chain",
        "tls_server_sni_maps": f"texthash:{certs}/sni",
    }, master_extra=f"127.0.0.1:{sni_port} inet n - y - - smtpd"
                    f" -o smtpd_tls_chain_files={certs}/rsa.chain,{certs}/ec.chain"
                    " -o tls_server_sni_maps=\n")
    assert "CN = rsa.rostfix.test" in served_subject(inst.port)
    assert "CN = ec.rostfix.test" in served_subject(inst.port, "sni.rostfix.test")
    assert "CN = rsa.rostfix.test" in served_subject(inst.port, "other.rostfix.test")
    # Two chain files (RSA, ECDSA): a client that verifies only ECDSA gets that one.
    assert "CN = rsa.rostfix.test" in served_subject(sni_port)
    assert "CN = ec.rostfix.test" in served_subject(
        sni_port, sigalgs="ECDSA+SHA256:ECDSA+SHA384")
    # smtpd_tls_loglevel = 0 (the default): the handshakes above were not logged.
    wait_for(lambda: inst.log_text().count("disconnect from") >= 5, what="sessions ended")
    assert "TLS connection established" not in inst.log_text()
