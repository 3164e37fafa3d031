"""TLS client certificates in smtpd, end to end with Python's ssl client, swaks
--tls-cert and openssl s_client -cert, and OpenSSL-made certificates:
smtpd_tls_ask_ccert, smtpd_tls_req_ccert (encrypt level),
check_ccert_access (certificate fingerprint), permit_tls_clientcerts
(relay_clientcerts, public-key fingerprint of an untrusted certificate),
permit_tls_all_clientcerts (smtpd_tls_CAfile), the ccert_* attributes a policy
service gets, and the Received: note of smtpd_tls_received_header."""

import hashlib
import shutil
import smtplib
import socket
import ssl
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest

import harness
from harness import USER1, maildir_messages, wait_for

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")

EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def openssl(*args, stdin=None):
    return subprocess.run(["openssl", *args], input=stdin, check=True,
                          capture_output=True).stdout


def make_pki(d):
    """A CA; a client certificate it signed (`trusted`); two self-signed ones
    (`stranger`, `banned`); a server certificate."""
    openssl("req", "-x509", *EC, "-days", "2", "-subj", "/CN=Rostfix Test CA",
            "-keyout", str(d / "ca.key"), "-out", str(d / "ca.pem"))
    openssl("req", *EC, "-subj", "/CN=trusted.rostfix.test", "-keyout", str(d / "trusted.key"),
            "-out", str(d / "trusted.csr"))
    (d / "ext.cnf").write_text("basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n"
                               "subjectAltName=DNS:trusted.rostfix.test\n")
    openssl("x509", "-req", "-in", str(d / "trusted.csr"), "-CA", str(d / "ca.pem"),
            "-CAkey", str(d / "ca.key"), "-CAcreateserial", "-days", "2",
            "-extfile", str(d / "ext.cnf"), "-out", str(d / "trusted.pem"))
    for name in ("stranger", "banned", "server"):
        openssl("req", "-x509", *EC, "-days", "2", "-subj", f"/CN={name}.rostfix.test",
                "-keyout", str(d / f"{name}.key"), "-out", str(d / f"{name}.pem"))
    for f in d.iterdir():
        f.chmod(0o600)


def cert_fp(pem):
    """Postfix's sha256 certificate fingerprint: AB:CD:..."""
    out = openssl("x509", "-in", str(pem), "-noout", "-fingerprint", "-sha256").decode()
    return out.strip().split("=", 1)[1].upper()


def pkey_fp(pem):
    """Postfix's sha256 public-key fingerprint: of the DER SubjectPublicKeyInfo."""
    pub = openssl("x509", "-in", str(pem), "-noout", "-pubkey")
    der = openssl("pkey", "-pubin", "-outform", "DER", stdin=pub)
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    make_pki(d)
    return d


@pytest.fixture
def inst(make_instance, workdir, pki):
    conf = Path(tempfile.mkdtemp(prefix="ccert-", dir=workdir))
    (conf / "ccert_access").write_text(f"{cert_fp(pki / 'trusted.pem')} OK\n"
                                       f"{cert_fp(pki / 'banned.pem')} REJECT\n")
    (conf / "relay_ccerts").write_text(f"{pkey_fp(pki / 'stranger.pem')} stranger\n")
    ports = {name: harness.free_port() for name in ("req", "all", "hdr")}
    master_extra = (
        f"127.0.0.1:{ports['req']} inet n - y - - smtpd -o smtpd_tls_security_level=encrypt"
        f" -o smtpd_tls_req_ccert=yes\n"
        f"127.0.0.1:{ports['all']} inet n - y - - smtpd"
        f" -o smtpd_relay_restrictions=permit_tls_all_clientcerts,reject_unauth_destination\n"
        f"127.0.0.1:{ports['hdr']} inet n - y - - smtpd -o smtpd_tls_received_header=yes\n")
    i = make_instance(main_extra={
        # The test client is not in mynetworks: only its certificate can permit relaying.
        "mynetworks": "192.0.2.0/24",
        "smtpd_tls_security_level": "may",
        "smtpd_tls_cert_file": f"{pki}/server.pem",
        "smtpd_tls_key_file": f"{pki}/server.key",
        "smtpd_tls_ask_ccert": "yes",
        "smtpd_tls_CAfile": f"{pki}/ca.pem",
        "smtpd_tls_loglevel": "2",
        "relay_clientcerts": f"texthash:{conf}/relay_ccerts",
        "smtpd_relay_restrictions": f"check_ccert_access texthash:{conf}/ccert_access,"
                                    " permit_tls_clientcerts, reject_unauth_destination",
    }, master_extra=master_extra)
    i.ports = ports
    return i


def client(port, pki, who):
    """An EHLO'd, STARTTLS'd session presenting `who`'s certificate (None: none)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if who:
        ctx.load_cert_chain(str(pki / f"{who}.pem"), str(pki / f"{who}.key"))
    s = smtplib.SMTP("127.0.0.1", port, timeout=30)
    s.ehlo("client.example.org")
    s.starttls(context=ctx)
    return s


def relay_reply(inst, pki, who, port=None):
    s = client(port or inst.port, pki, who)
    try:
        s.ehlo("client.example.org")
        assert s.mail("alice@example.org")[0] == 250
        return s.rcpt("bob@remote.example")
    finally:
        s.close()


def test_check_ccert_access_and_relay_clientcerts(inst, pki):
    # Listed by certificate fingerprint with OK: relaying permitted.
    assert relay_reply(inst, pki, "trusted")[0] == 250
    # Listed REJECT: Postfix's text, naming the certificate's CommonName.
    assert relay_reply(inst, pki, "banned") == (
        554, b"5.7.1 <banned.rostfix.test>: Client certificate rejected: Access denied")
    # Self-signed, but its public key is in relay_clientcerts.
    assert relay_reply(inst, pki, "stranger")[0] == 250
    # No certificate: nothing permits, reject_unauth_destination refuses.
    assert relay_reply(inst, pki, None) == (
        554, b"5.7.1 <bob@remote.example>: Relay access denied")
    log = inst.log_text()
    assert "Trusted TLS connection established from unknown[127.0.0.1]" in log
    assert "Untrusted TLS connection established from unknown[127.0.0.1]" in log
    assert "Anonymous TLS connection established from unknown[127.0.0.1]" in log
    assert (f"subject_CN=trusted.rostfix.test, issuer=Rostfix Test CA, cert fingerprint="
            f"{cert_fp(pki / 'trusted.pem')}, pkey fingerprint={pkey_fp(pki / 'trusted.pem')}"
            in log)


def test_permit_tls_all_clientcerts_wants_a_trusted_certificate(inst, pki):
    port = inst.ports["all"]
    assert relay_reply(inst, pki, "trusted", port)[0] == 250
    assert relay_reply(inst, pki, "banned", port) == (
        554, b"5.7.1 <bob@remote.example>: Relay access denied")


def test_req_ccert_refuses_clients_without_a_trusted_certificate(inst, pki):
    port = inst.ports["req"]
    for who, why in ((None, "No client certificate presented"),
                     ("stranger", "Client certificate not trusted")):
        s = client(port, pki, who)
        code, text = s.docmd("EHLO client.example.org")
        assert (code, text.decode()) == (421, f"4.7.1 mx.rostfix.test Error: {why}")
        s.close()
        assert f"NOQUEUE: abort: TLS from unknown[127.0.0.1]: {why}" in inst.log_text()
    s = client(port, pki, "trusted")
    assert s.ehlo("client.example.org")[0] == 250
    assert s.mail("alice@example.org")[0] == 250
    s.quit()


def delivered(subject):
    for _, data in maildir_messages(USER1):
        if f"Subject: {subject}".encode() in data:
            return data.decode(errors="replace")
    return None


def test_received_header_notes_the_certificate_only_when_asked(inst, pki):
    for port, subject in ((inst.port, "ccert-plain"), (inst.ports["hdr"], "ccert-noted")):
        s = client(port, pki, "trusted")
        s.ehlo("client.example.org")
        s.sendmail("alice@example.org", [f"{USER1}@mx.rostfix.test"],
                   f"Subject: {subject}\r\n\r\nbody\r\n")
        s.quit()
    wait_for(lambda: delivered("ccert-plain") and delivered("ccert-noted"), what="delivery")
    note = '(Client CN "trusted.rostfix.test", Issuer "Rostfix Test CA" (verified OK))'
    assert note in delivered("ccert-noted")
    assert "(using TLSv1.3" in delivered("ccert-noted")
    assert "Client CN" not in delivered("ccert-plain")
    assert "(using " not in delivered("ccert-plain")


@pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks not installed")
def test_swaks_tls_cert_relays_only_with_a_listed_certificate(inst, pki):
    def swaks(*cert):
        return subprocess.run(
            ["swaks", "--server", f"127.0.0.1:{inst.port}", "--tls", *cert,
             "--ehlo", "client.example.org", "--from", "alice@example.org",
             "--to", "bob@remote.example", "--quit-after", "RCPT", "--timeout", "30"],
            capture_output=True, text=True, timeout=90)
    listed = swaks("--tls-cert", str(pki / "stranger.pem"), "--tls-key", str(pki / "stranger.key"))
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert "<~  250 2.1.5 Ok" in listed.stdout
    bare = swaks()
    assert bare.returncode != 0
    assert "<~* 554 5.7.1 <bob@remote.example>: Relay access denied" in bare.stdout, bare.stdout


def s_client(port, pki, who, commands):
    """`openssl s_client -starttls smtp` presenting `who`'s certificate; sends each
    command after the previous reply (no pipelining) and returns everything read."""
    args = ["openssl", "s_client", "-quiet", "-crlf", "-starttls", "smtp",
            "-connect", f"127.0.0.1:{port}", "-cert", str(pki / f"{who}.pem"),
            "-key", str(pki / f"{who}.key")]
    proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    out = []
    try:
        for cmd in commands:
            proc.stdin.write(cmd + "\n")
            proc.stdin.flush()
            while True:
                line = proc.stdout.readline()
                out.append(line)
                if not line or line[3:4] == " ":
                    break
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
    return "".join(out)


def test_openssl_s_client_cert_by_fingerprint(inst, pki):
    rcpt = ["EHLO client.example.org", "MAIL FROM:<alice@example.org>",
            "RCPT TO:<bob@remote.example>", "QUIT"]
    ok = s_client(inst.port, pki, "trusted", rcpt)
    assert "250 2.1.5 Ok" in ok, ok
    banned = s_client(inst.port, pki, "banned", rcpt)
    assert ("554 5.7.1 <banned.rostfix.test>: Client certificate rejected: Access denied"
            in banned), banned
    assert ("reject: RCPT from unknown[127.0.0.1]: 554 5.7.1 <banned.rostfix.test>: "
            "Client certificate rejected: Access denied" in inst.log_text())


class RecordingPolicy:
    """A policy server that records each request's attributes and answers DUNNO."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.requests = []
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        with c, c.makefile("rb") as f:
            attrs = {}
            for line in f:
                line = line.rstrip(b"\n").decode()
                if line:
                    name, _, value = line.partition("=")
                    attrs[name] = value
                    continue
                self.requests.append(attrs)
                attrs = {}
                c.sendall(b"action=DUNNO\n\n")

    def close(self):
        self.sock.close()


def test_policy_service_gets_the_certificate(make_instance, pki):
    policy = RecordingPolicy()
    try:
        inst = make_instance(main_extra={
            "smtpd_tls_security_level": "may",
            "smtpd_tls_cert_file": f"{pki}/server.pem",
            "smtpd_tls_key_file": f"{pki}/server.key",
            "smtpd_tls_ask_ccert": "yes",
            "smtpd_tls_CAfile": f"{pki}/ca.pem",
            "smtpd_recipient_restrictions":
                f"reject_unauth_destination, check_policy_service inet:127.0.0.1:{policy.port}",
        })
        for who in ("trusted", "stranger"):
            s = client(inst.port, pki, who)
            s.ehlo("client.example.org")
            s.mail("alice@example.org")
            assert s.rcpt(f"{USER1}@mx.rostfix.test")[0] == 250
            s.close()
        wait_for(lambda: len(policy.requests) == 2, what="two policy requests")
    finally:
        policy.close()
    trusted, stranger = policy.requests
    # Names only for a certificate the CAs vouch for, xtext-quoted (space is +20).
    assert trusted["ccert_subject"] == "trusted.rostfix.test"
    assert trusted["ccert_issuer"] == "Rostfix+20Test+20CA"
    assert trusted["ccert_fingerprint"] == cert_fp(pki / "trusted.pem")
    assert trusted["ccert_pubkey_fingerprint"] == pkey_fp(pki / "trusted.pem")
    assert stranger["ccert_subject"] == "" and stranger["ccert_issuer"] == ""
    assert stranger["ccert_fingerprint"] == cert_fp(pki / "stranger.pem")
