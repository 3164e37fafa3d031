"""SMTP AUTH end to end (issue 3, "What must be shown" 1): smtplib and swaks with AUTH
PLAIN and LOGIN against a real Dovecot (Debian's dovecot-core, its auth socket inside
the queue directory so the chrooted smtpd reaches it) and against the built-in
passwd-file type; plain, STARTTLS on 25 and on a submission port, implicit TLS on a
submissions port; a wrong password gets 535 after a pause and is logged without it."""

import base64
import re
import shutil
import smtplib
import ssl
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

import harness
from harness import USER1, maildir_messages, wait_for
from saslpeer import PASSWORD, Dovecot, write_passwd
from test_tls import make_certs, no_verify

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")

LOGIN = "alice@rostfix.test"


@pytest.fixture(params=["rostfix", "dovecot"])
def sasl(request, make_instance, workdir):
    """An instance with AUTH on every port: 25 (TLS may), a submission port (TLS
    encrypt) and a submissions port (wrapper mode); SASL from `param`."""
    kind = request.param
    if kind == "dovecot" and shutil.which("dovecot") is None and not Path("/usr/sbin/dovecot").exists():
        pytest.skip("dovecot-core not installed (tests/setup-deps.sh)")
    certs = make_certs(tempfile.mkdtemp(prefix="tls-", dir=workdir))
    ports = {"submission": harness.free_port(), "submissions": harness.free_port()}
    master_extra = f"""127.0.0.1:{ports['submission']} inet n - y - - smtpd
  -o smtpd_tls_security_level=encrypt
127.0.0.1:{ports['submissions']} inet n - y - - smtpd
  -o smtpd_tls_wrappermode=yes
"""
    main = {
        "smtpd_tls_security_level": "may",
        "smtpd_tls_cert_file": f"{certs}/rsa.pem",
        "smtpd_tls_key_file": f"{certs}/rsa.key",
        "smtpd_sasl_auth_enable": "yes",
        "smtpd_sasl_type": kind,
        # A client outside mynetworks: only AUTH lets it relay.
        "mynetworks": "127.0.0.1/32",
    }
    dovecot = None
    if kind == "rostfix":
        sasl_dir = Path(tempfile.mkdtemp(prefix="sasl-", dir=workdir))
        main["smtpd_sasl_path"] = str(write_passwd(sasl_dir / "sasl_passwd", {LOGIN: PASSWORD}))
        inst = make_instance(main_extra=main, master_extra=master_extra)
    else:
        main["smtpd_sasl_path"] = "private/auth"
        inst = make_instance(main_extra=main, master_extra=master_extra)
        dovecot = Dovecot(inst.base, inst.queue, {LOGIN: PASSWORD})
        dovecot.start()
    inst.ports = ports
    inst.kind = kind
    try:
        yield inst
    finally:
        if dovecot is not None:
            dovecot.stop()


def msg(subject):
    return (f"From: {LOGIN}\r\nTo: {USER1}@mx.rostfix.test\r\nSubject: {subject}\r\n\r\n"
            "sent with AUTH\r\n")


def delivered(subject):
    def find():
        for _, data in maildir_messages(USER1):
            if f"Subject: {subject}".encode() in data:
                return data
        return None
    return wait_for(find, timeout=30, what=f"delivery of {subject}")


def outside(inst):
    """smtplib from 127.0.0.2 (outside mynetworks = 127.0.0.1/32)."""
    return inst.smtp(source_address="127.0.0.2")


def auth_with(s, mech):
    s.user, s.password = LOGIN, PASSWORD
    if mech == "PLAIN":
        code, text = s.auth("PLAIN", s.auth_plain, initial_response_ok=True)
    else:
        code, text = s.auth("LOGIN", s.auth_login, initial_response_ok=False)
    return code, text


@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN"])
def test_auth_plain_session_relays_and_logs(sasl, mech):
    with outside(sasl) as s:
        s.ehlo("client.test")
        assert s.has_extn("auth")
        assert set(s.esmtp_features["auth"].split()) >= {"PLAIN", "LOGIN"}
        # Before AUTH, a foreign recipient is refused (defer_unauth_destination).
        s.mail("x@client.test")
        code, text = s.rcpt("someone@far-away.test")
        assert code == 454 and b"Relay access denied" in text
        s.rset()
        code, _ = auth_with(s, mech)
        assert code == 235
        s.mail(LOGIN)
        assert s.rcpt("someone@far-away.test")[0] == 250
        s.rset()
        s.sendmail(LOGIN, [f"{USER1}@mx.rostfix.test"], msg(f"auth-{mech}-{sasl.kind}"))
    data = delivered(f"auth-{mech}-{sasl.kind}")
    assert b"with ESMTPA id" in data
    # smtpd_sasl_authenticated_header = no: the login is not shown in Received:.
    assert b"Authenticated sender" not in data
    log = sasl.log_text()
    assert re.search(rf"client=unknown\[127\.0\.0\.2\], sasl_method={mech}, "
                     rf"sasl_username={re.escape(LOGIN)}", log), log[-3000:]
    assert PASSWORD not in log


def test_starttls_on_25_then_auth(sasl):
    with outside(sasl) as s:
        s.ehlo("client.test")
        s.starttls(context=no_verify())
        s.ehlo("client.test")
        assert s.has_extn("auth")
        assert auth_with(s, "PLAIN")[0] == 235
        s.sendmail(LOGIN, [f"{USER1}@mx.rostfix.test"], msg(f"starttls25-{sasl.kind}"))
    assert b"with ESMTPSA id" in delivered(f"starttls25-{sasl.kind}")


def test_submission_port_starttls_then_auth(sasl):
    with smtplib.SMTP("127.0.0.1", sasl.ports["submission"], timeout=30,
                      source_address=("127.0.0.2", 0)) as s:
        s.ehlo("client.test")
        # smtpd_tls_security_level = encrypt implies smtpd_tls_auth_only.
        assert not s.has_extn("auth")
        s.starttls(context=no_verify())
        s.ehlo("client.test")
        assert s.has_extn("auth")
        assert auth_with(s, "LOGIN")[0] == 235
        s.sendmail(LOGIN, [f"{USER1}@mx.rostfix.test"], msg(f"sub587-{sasl.kind}"))
    delivered(f"sub587-{sasl.kind}")


def test_submissions_port_implicit_tls_then_auth(sasl):
    with smtplib.SMTP_SSL("127.0.0.1", sasl.ports["submissions"], timeout=30,
                          context=no_verify(), source_address=("127.0.0.2", 0)) as s:
        s.ehlo("client.test")
        assert s.has_extn("auth")
        assert auth_with(s, "PLAIN")[0] == 235
        s.sendmail(LOGIN, [f"{USER1}@mx.rostfix.test"], msg(f"sub465-{sasl.kind}"))
    delivered(f"sub465-{sasl.kind}")


def test_wrong_password_is_refused_delayed_and_not_logged(sasl):
    wrong = "Wr0ng-pa55word-xyz"
    with outside(sasl) as s:
        s.ehlo("client.test")
        s.user, s.password = LOGIN, wrong
        started = time.monotonic()
        with pytest.raises(smtplib.SMTPAuthenticationError) as e:
            s.auth("PLAIN", s.auth_plain, initial_response_ok=True)
        took = time.monotonic() - started
        assert e.value.smtp_code == 535
        assert e.value.smtp_error.startswith(b"5.7.8 Error: authentication failed")
        # smtpd_error_sleep_time (1s by default) slows guessing.
        assert took >= 0.9, took
        # * cancels an exchange.
        code, text = s.docmd("AUTH", "LOGIN")
        assert code == 334
        code, text = s.docmd("*")
        assert code == 501 and b"aborted" in text
        code, text = s.docmd("AUTH", "PLAIN not-base64!")
        assert code == 501
    log = wait_for(lambda: "authentication failed" in sasl.log_text() and sasl.log_text(),
                   what="the failure log line")
    assert re.search(r"warning: unknown\[127\.0\.0\.2\]: SASL PLAIN authentication failed", log), log[-2000:]
    blob = base64.b64encode(f"\0{LOGIN}\0{wrong}".encode()).decode()
    assert wrong not in log and blob not in log


@pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks not installed")
@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN"])
def test_swaks_auth_with_starttls(sasl, mech):
    subject = f"swaks-{mech}-{sasl.kind}"
    proc = subprocess.run(
        ["swaks", "--server", f"127.0.0.1:{sasl.ports['submission']}", "--tls",
         "--auth", mech, "--auth-user", LOGIN, "--auth-password", PASSWORD,
         "--from", LOGIN, "--to", f"{USER1}@mx.rostfix.test",
         "--header", f"Subject: {subject}", "--body", "swaks with AUTH",
         "--timeout", "30"],
        capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "235 2.7.0 Authentication successful" in proc.stdout
    delivered(subject)
    proc = subprocess.run(
        ["swaks", "--server", f"127.0.0.1:{sasl.port}",
         "--auth", mech, "--auth-user", LOGIN, "--auth-password", "nope-nope",
         "--from", LOGIN, "--to", f"{USER1}@mx.rostfix.test", "--timeout", "30"],
        capture_output=True, text=True, timeout=90)
    assert proc.returncode != 0
    assert "535 5.7.8" in proc.stdout, proc.stdout
