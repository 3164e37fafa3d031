"""Good-sender hygiene at intake (issue 19): campaign mail this server sends out (from
mynetworks or after AUTH) is held to rostfix_bulk_hygiene_checks — DKIM-signed (here
by native signing with a key from `rostfix dkim-keygen`), RFC 8058 one-click
unsubscription, a From: domain publishing DMARC (served by a private dnsmasq) — and
each failure is logged (action warn) or refused with 550 5.7.1 (action reject, logged
as smtpd logs a reject at the end of DATA).
Person-to-person mail and mail from outside mynetworks are never judged.
Locally submitted mail (sendmail, and the bus intake, which reaches the queue through
maildrop/) is checked by pickup, after its own DKIM signing: action reject returns it
to its sender with 5.7.1."""

import smtplib
import tempfile
from pathlib import Path

import pytest

from dns_server import dnsmasq
from harness import USER1, maildir_messages, wait_for
from test_dkim import keygen

RCPT = f"{USER1}@mx.rostfix.test"
GOOD = "news.rostfix.test"
BAD = "bad.rostfix.test"


def campaign(domain, one_click=True, extra=""):
    head = (f"From: News <letter@{domain}>\r\nTo: {RCPT}\r\nSubject: spring issue\r\n"
            f"List-Id: <spring.{domain}>\r\n")
    if one_click:
        head += (f"List-Unsubscribe: <https://{domain}/u/42>, <mailto:u@{domain}>\r\n"
                 "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n")
    return (head + extra + "\r\nnews\r\n").encode()


@pytest.fixture
def dns():
    with dnsmasq([f'--txt-record=_dmarc.rostfix.test,"v=DMARC1; p=none"']) as port:
        yield port


def instance(make_instance, workdir, dns, action):
    keys = Path(tempfile.mkdtemp(prefix=f"dkim-{action}-", dir=workdir))
    keygen(keys, GOOD, "s1", "ed25519")
    (keys / "KeyTable").write_text(f"s1._domainkey.{GOOD} {GOOD}:s1:{keys}/s1.private\n")
    (keys / "SigningTable").write_text(f"*@{GOOD} s1._domainkey.{GOOD}\n")
    return make_instance(main_extra={
        "rostfix_dkim_key_table": f"{keys}/KeyTable",
        "rostfix_dkim_signing_table": f"refile:{keys}/SigningTable",
        "mynetworks": "127.0.0.1/32",
        "rostfix_dns_servers": f"127.0.0.1:{dns}",
        "rostfix_bulk_hygiene_action": action,
    })


def hygiene_lines(inst):
    return [l for l in inst.log_text().splitlines() if "bulk mail hygiene" in l]


def test_warn_names_each_failure_and_passes_good_mail(make_instance, workdir, dns):
    inst = instance(make_instance, workdir, dns, "warn")
    with inst.smtp() as s:
        s.sendmail(f"letter@{GOOD}", [RCPT], campaign(GOOD))
        # DMARC is found at the parent domain (tree walk); the unsubscription header
        # is missing; no key signs bad.rostfix.test.
        s.sendmail(f"letter@{BAD}", [RCPT], campaign(BAD, one_click=False))
        s.sendmail(f"friend@{BAD}", [RCPT],
                   f"From: friend@{BAD}\r\nTo: {RCPT}\r\nSubject: hi\r\n\r\nhello\r\n".encode())
    inst.wait_queue_empty()
    lines = wait_for(lambda: len(hygiene_lines(inst)) >= 2 and hygiene_lines(inst),
                     timeout=20, what="the hygiene warnings")
    assert len(lines) == 2, lines
    assert any(f"dkim: not DKIM-signed for {BAD}" in l and f"from=<letter@{BAD}>" in l
               for l in lines), lines
    assert any("one_click_unsubscribe: no List-Unsubscribe header" in l for l in lines), lines
    # Nothing about the good campaign or the personal message.
    assert not any(GOOD in l or "friend@" in l for l in lines), lines
    assert "DKIM-Signature field added (s=s1, d=news.rostfix.test)" in inst.log_text()


def test_reject_refuses_and_outside_mail_is_not_judged(make_instance, workdir, dns):
    inst = instance(make_instance, workdir, dns, "reject")
    with inst.smtp() as s:
        s.sendmail(f"letter@{GOOD}", [RCPT], campaign(GOOD))
        with pytest.raises(smtplib.SMTPDataError) as e:
            s.sendmail(f"letter@{BAD}", [RCPT], campaign(BAD))
        assert e.value.smtp_code == 550
        assert e.value.smtp_error.startswith(
            f"5.7.1 Error: bulk mail hygiene: not DKIM-signed for {BAD}".encode()), e.value
        # A DKIM-Signature the client made, aligned with From:, counts as signed.
        signed = campaign(BAD, extra=f"DKIM-Signature: v=1; a=rsa-sha256; d={BAD}; s=x; "
                                     "h=from; bh=x; b=x\r\n")
        s.sendmail(f"letter@{BAD}", [RCPT], signed)
    # From outside mynetworks, unauthenticated: someone else's newsletter to our user.
    with smtplib.SMTP("127.0.0.1", inst.port, source_address=("127.0.0.2", 0),
                      timeout=30) as s:
        s.sendmail(f"letter@{BAD}", [RCPT], campaign(BAD, one_click=False))
    inst.wait_queue_empty()
    log = inst.log_text()
    assert log.count(" reject: DATA from unknown[127.0.0.1]: 550 5.7.1") == 1, log[-3000:]
    assert "550 5.7.1 Error: bulk mail hygiene" in log


def submit(inst, content):
    inst._run([str(inst.bindir / "sendmail"), "-C", str(inst.conf), "-f", USER1, RCPT],
              user=USER1, input=content.replace(b"\r\n", b"\n"))


def test_local_submission_is_checked_by_pickup(make_instance, workdir, dns):
    inst = instance(make_instance, workdir, dns, "reject")
    before = len(maildir_messages(USER1))
    # Signed by pickup's native signer, so it passes; the other has no key and no
    # signature of its own.
    submit(inst, campaign(GOOD, extra="Message-ID: <good@local.test>\r\n"))
    submit(inst, campaign(BAD, extra="Message-ID: <bad@local.test>\r\n"))
    # Person-to-person mail is not campaign mail.
    submit(inst, f"From: friend@{BAD}\r\nSubject: hi\r\nMessage-ID: <hi@local.test>"
                 "\r\n\r\nhello\r\n".encode())
    msgs = wait_for(lambda: len(maildir_messages(USER1)) >= before + 3
                    and [raw for _, raw in maildir_messages(USER1)[before:]],
                    timeout=40, what="the good campaign, the personal mail and the notice")
    inst.wait_queue_empty()
    msgs = [raw for _, raw in maildir_messages(USER1)[before:]]
    delivered = [m for m in msgs if b"Undelivered Mail" not in m]
    notices = [m for m in msgs if b"Undelivered Mail" in m]
    assert len(delivered) == 2 and len(notices) == 1, msgs
    good = [m for m in delivered if b"<good@local.test>" in m]
    assert good and b"DKIM-Signature:" in good[0], delivered
    assert any(b"<hi@local.test>" in m for m in delivered), delivered
    # The refused campaign came back to its sender with the reason.
    assert b"bulk mail hygiene: not DKIM-signed for bad.rostfix.test" in notices[0], notices[0]
    assert b"<bad@local.test>" in notices[0]
