"""Submission end to end (issue 3, "What must be shown" 3): the `submission` and
`submissions` entries of the Ubuntu + Dovecot master.cf fixture (crates/config/testdata), with their -o
overrides copied as written, on loopback ports. On the submission port without TLS,
AUTH is not offered and MAIL is refused (smtpd_tls_security_level=encrypt); after
STARTTLS and AUTH mail goes through, and without AUTH the recipient is refused
(permit_sasl_authenticated, reject). On the submissions port TLS comes first. The
overrides apply to that service only: port 25 offers no AUTH."""

import smtplib
import socket
import ssl
import tempfile
from pathlib import Path

import pytest

import harness
from harness import USER1, maildir_messages, wait_for
from saslpeer import PASSWORD, write_passwd
from test_tls import make_certs, no_verify

# The repository's copy of ../shared/fixtures/ubuntu-dovecot-master.cf (the config crate's
# tests load the same file), so the test runs from any checkout.
FIXTURE = harness.REPO / "crates" / "config" / "testdata" / "ubuntu-dovecot-master.cf"
LOGIN = "sub-user"


def fixture_entry(name):
    """The lines of master.cf entry `name` (its first line and the -o lines)."""
    lines = FIXTURE.read_text().splitlines()
    out = None
    for line in lines:
        if out is None:
            if line.split() and line.split()[0] == name:
                out = [line]
        elif line.startswith((" ", "\t")):
            out.append(line)
        else:
            break
    assert out, f"{name} not in {FIXTURE}"
    return out


def on_port(entry, port):
    """The entry with its service name replaced by 127.0.0.1:port, -o lines untouched."""
    first = entry[0].split(None, 1)
    return "\n".join([f"127.0.0.1:{port} {first[1]}"] + entry[1:]) + "\n"


@pytest.fixture
def submission(make_instance, workdir):
    if not FIXTURE.exists():
        pytest.skip(f"{FIXTURE} not present")
    certs = make_certs(tempfile.mkdtemp(prefix="tls-", dir=workdir))
    sasl_dir = Path(tempfile.mkdtemp(prefix="sasl-", dir=workdir))
    passwd = write_passwd(sasl_dir / "sasl_passwd", {LOGIN: PASSWORD})
    ports = {"submission": harness.free_port(), "submissions": harness.free_port()}
    master_extra = (on_port(fixture_entry("submission"), ports["submission"])
                    + on_port(fixture_entry("submissions"), ports["submissions"]))
    inst = make_instance(main_extra={
        # As on a Debian/Ubuntu host: TLS and the SASL back end in main.cf, AUTH
        # switched on per service by the -o overrides.
        "smtpd_tls_cert_file": f"{certs}/rsa.pem",
        "smtpd_tls_key_file": f"{certs}/rsa.key",
        "smtpd_tls_security_level": "may",
        "smtpd_sasl_type": "rostfix",
        "smtpd_sasl_path": str(passwd),
        "mynetworks": "127.0.0.1/32",
    }, master_extra=master_extra)
    inst.ports = ports
    return inst


def smtpd_argvs(inst, service):
    """The argv of each of the instance's smtpd processes for master.cf entry `service`."""
    out = []
    for pid, name in inst.processes().items():
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]
        except OSError:
            continue
        if name == "smtpd" and argv[argv.index("-n") + 1] == service:
            out.append(argv)
    return out


def test_master_gives_each_service_its_own_overrides(submission):
    """master starts each entry's smtpd with that entry's -o lines, in order and as
    written, and the port 25 smtpd with none of them."""
    for name in ("submission", "submissions"):
        service = f"127.0.0.1:{submission.ports[name]}"
        with socket.create_connection(("127.0.0.1", submission.ports[name]), timeout=10):
            argvs = wait_for(lambda s=service: smtpd_argvs(submission, s),
                             what=f"master to start smtpd for {service}")
        expected = [word for line in fixture_entry(name)[1:] for word in line.split()]
        assert expected[:2] == ["-o", f"syslog_name=postfix/{name}"], expected
        for argv in argvs:
            assert argv[-len(expected):] == expected, argv
    plain = smtpd_argvs(submission, f"127.0.0.1:{submission.port}")
    assert plain, "no smtpd for the port 25 entry"
    for argv in plain:
        assert "-o" not in argv, argv


def test_port_587_without_tls_offers_no_auth_and_refuses_mail(submission):
    with smtplib.SMTP("127.0.0.1", submission.ports["submission"], timeout=30,
                      source_address=("127.0.0.2", 0)) as s:
        s.ehlo("client.test")
        assert s.has_extn("starttls")
        assert not s.has_extn("auth")
        code, text = s.docmd("MAIL", "FROM:<a@client.test>")
        assert (code, text) == (530, b"5.7.0 Must issue a STARTTLS command first")
        code, text = s.docmd("AUTH", "PLAIN =")
        assert code == 530


def test_port_587_starttls_auth_delivers_and_needs_auth(submission):
    with smtplib.SMTP("127.0.0.1", submission.ports["submission"], timeout=30,
                      source_address=("127.0.0.2", 0)) as s:
        s.ehlo("client.test")
        s.starttls(context=no_verify())
        s.ehlo("client.test")
        assert s.has_extn("auth")
        # permit_sasl_authenticated, reject: nothing without AUTH, even local mail.
        s.mail("a@client.test")
        code, text = s.rcpt(f"{USER1}@mx.rostfix.test")
        assert code == 554
        assert text == f"5.7.1 <{USER1}@mx.rostfix.test>: Recipient address rejected: Access denied".encode()
        s.rset()
        s.user, s.password = LOGIN, PASSWORD
        assert s.auth("PLAIN", s.auth_plain)[0] == 235
        s.sendmail(LOGIN, [f"{USER1}@mx.rostfix.test"],
                   f"Subject: via-587\r\n\r\nsubmitted\r\n".encode())
        s.mail(LOGIN)
        assert s.rcpt("someone@far-away.test")[0] == 250
        s.rset()
    wait_for(lambda: any(b"Subject: via-587" in d for _, d in maildir_messages(USER1)),
             timeout=30, what="delivery via 587")


def test_port_465_is_tls_first(submission):
    port = submission.ports["submissions"]
    # A plaintext client gets no greeting: the server waits for a TLS ClientHello.
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.settimeout(2)
        try:
            data = sock.recv(100)
        except socket.timeout:
            data = b""
        assert not data.startswith(b"220")
    with smtplib.SMTP_SSL("127.0.0.1", port, timeout=30, context=no_verify(),
                          source_address=("127.0.0.2", 0)) as s:
        s.ehlo("client.test")
        assert s.has_extn("auth")
        assert not s.has_extn("starttls")
        s.user, s.password = LOGIN, PASSWORD
        assert s.auth("LOGIN", s.auth_login, initial_response_ok=False)[0] == 235
        s.sendmail(LOGIN, [f"{USER1}@mx.rostfix.test"],
                   b"Subject: via-465\r\n\r\nsubmitted\r\n")
    wait_for(lambda: any(b"Subject: via-465" in d for _, d in maildir_messages(USER1)),
             timeout=30, what="delivery via 465")


def test_overrides_stay_with_their_service(submission):
    # Port 25 (the harness's smtpd line): main.cf has smtpd_sasl_auth_enable = no.
    with submission.smtp(source_address="127.0.0.2") as s:
        s.ehlo("client.test")
        assert not s.has_extn("auth")
        assert s.mail("a@client.test")[0] == 250
        assert s.rcpt(f"{USER1}@mx.rostfix.test")[0] == 250
        s.rset()
    # syslog_name=postfix/submission names that service's log lines.
    with smtplib.SMTP("127.0.0.1", submission.ports["submission"], timeout=30) as s:
        s.ehlo("client.test")
    wait_for(lambda: "postfix/submission/smtpd[" in submission.log_text(),
             what="log lines under syslog_name postfix/submission")
