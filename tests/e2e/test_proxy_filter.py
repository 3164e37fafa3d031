"""smtpd_proxy_filter (issue 13): a before-queue content filter, wired as Postfix's
SMTPD_PROXY_README and the amavisd-new guides write it, with a real amavisd-new
as the filter. The front smtpd relays each transaction live to amavis, which hands
it to the re-entry smtpd on another port; the client gets the answers of that chain,
so a message refused behind the filter is refused in the client's own session and
queued nowhere, and a filter that is down answers 451 4.3.0 as Postfix does.

Before this work smtpd_proxy_filter was a parameter nothing read: the front smtpd
queued every message itself (the refusal test got 250 and the mail was delivered;
amavis never saw the mail; the filter-down test got 250 instead of 451)."""

import re
import smtplib
import sys
from email.utils import make_msgid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from amavis import amavisd  # noqa: E402
from harness import (USER1, Instance, free_port, maildir_messages,  # noqa: E402
                     reset_maildir, wait_for)

RCPT = f"{USER1}@rostfix.test"

# The classic wiring: the public smtpd with the filter, the re-entry smtpd behind it
# (here with a header_checks table of its own, to refuse one message).
MASTER = """
127.0.0.1:{front} inet n - y - 20 smtpd
    -o smtpd_proxy_filter=127.0.0.1:{amavis}
    -o smtpd_client_connection_count_limit=10
127.0.0.1:{reentry} inet n - n - - smtpd
    -o smtpd_authorized_xforward_hosts=127.0.0.0/8
    -o smtpd_client_restrictions=
    -o smtpd_helo_restrictions=
    -o smtpd_sender_restrictions=
    -o smtpd_recipient_restrictions=permit_mynetworks,reject
    -o smtpd_data_restrictions=
    -o mynetworks=127.0.0.0/8
    -o receive_override_options=no_unknown_recipient_checks
    -o header_checks=regexp:{conf}/reentry_checks
"""


@pytest.fixture(scope="module")
def chain(workdir):
    reset_maildir(USER1)
    reentry = free_port()
    with amavisd(workdir, reentry) as am:
        inst = Instance(workdir)
        (inst.conf / "reentry_checks").write_text(
            "/^Subject: refuse-me/ REJECT 5.7.1 refused behind the filter\n")
        inst.front = free_port()
        inst.reentry = reentry
        inst.amavis = am
        with open(inst.conf / "master.cf", "a") as master:
            master.write(MASTER.format(front=inst.front, amavis=am.port, reentry=reentry,
                                       conf=inst.conf))
        inst.start()
        wait_for(lambda: _listening(inst.front), what="the front smtpd")
        try:
            yield inst
        finally:
            inst.stop()
            inst.forget()


def _listening(port):
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=5) as s:
            s.noop()
        return True
    except OSError:
        return False


def send(port, subject, source="127.0.0.2"):
    """One message through `port`; returns (DATA code, text, message-id)."""
    msgid = make_msgid(domain="client.example")
    msg = (f"From: <alice@client.example>\r\nTo: <{RCPT}>\r\nSubject: {subject}\r\n"
           f"Message-ID: {msgid}\r\n\r\nhello\r\n.starts with a dot\r\n")
    with smtplib.SMTP("127.0.0.1", port, timeout=120, source_address=(source, 0)) as s:
        s.ehlo("client.example")
        code, text = s.mail("alice@client.example")
        assert code == 250, text
        code, text = s.rcpt(RCPT)
        assert code == 250, text
        code, text = s.data(msg.encode())
    return code, text.decode(errors="replace"), msgid


def copies(msgid):
    return [m for _, m in maildir_messages(USER1) if msgid.encode() in m]


def test_mail_passes_the_filter_and_is_delivered_once(chain):
    code, text, msgid = send(chain.front, "through the proxy")
    assert code == 250, text
    wait_for(lambda: copies(msgid), timeout=60, what="delivery behind the filter")
    chain.wait_queue_empty()
    msgs = copies(msgid)
    assert len(msgs) == 1
    body = msgs[0]
    # amavis saw it once; the dot-stuffed line arrived whole.
    assert len(re.findall(rb"\(amavis, port \d+\)", body)) == 1, body
    assert b"\n.starts with a dot\n" in body
    # The front smtpd queued nothing itself: its Received: has no queue id...
    assert re.search(rb"by mx\.rostfix\.test \(Rostfix\) with ESMTP\r?\n\tfor <", body), body
    log = chain.log_text()
    # ...and logged the filter's answer, Postfix's shape.
    assert re.search(r"proxy-accept: END-OF-MESSAGE: 250 .*; from=<alice@client\.example> "
                     rf"to=<{re.escape(RCPT)}> proto=ESMTP helo=<client\.example>$", log,
                     re.M), log
    # XFORWARD: amavis names the original client, not the front smtpd's 127.0.0.1.
    passed = [l for l in chain.amavis.log_text().splitlines() if "Passed CLEAN {" in l]
    assert passed and "[127.0.0.2]" in passed[-1], chain.amavis.log_text()[-3000:]


def test_refusal_behind_the_filter_reaches_the_client(chain):
    before = len(re.findall(r"status=sent", chain.log_text()))
    code, text, msgid = send(chain.front, "refuse-me please")
    assert code >= 500, (code, text)
    assert "refused behind the filter" in text, text
    log = chain.log_text()
    assert re.search(r"proxy-reject: END-OF-MESSAGE: 5\d\d .*; from=<alice@client\.example>",
                     log, re.M), log
    # A message after it is delivered; the refused one never is, and no bounce.
    _, _, marker = send(chain.front, "after the refusal")
    wait_for(lambda: copies(marker), timeout=60, what="the next message")
    chain.wait_queue_empty()
    assert copies(msgid) == []
    log = chain.log_text()
    assert len(re.findall(r"status=sent", log)) == before + 1, log


def test_filter_down_answers_451(make_instance):
    closed = free_port()
    front = free_port()
    inst = make_instance(master_extra=(
        f"127.0.0.1:{front} inet n - y - - smtpd\n"
        f"    -o smtpd_proxy_filter=127.0.0.1:{closed}\n"
        "    -o smtpd_proxy_timeout=5s\n"))
    wait_for(lambda: _listening(front), what="the front smtpd")
    with smtplib.SMTP("127.0.0.1", front, timeout=30) as s:
        s.ehlo("client.example")
        assert s.mail("alice@client.example")[0] == 250
        code, text = s.rcpt(RCPT)
        assert (code, text) == (451, b"4.3.0 Error: queue file write error")
        code, _ = s.docmd("DATA")
        assert code == 554
    wait_for(lambda: f"warning: connect to proxy filter 127.0.0.1:{closed}: "
             in inst.log_text(), what="the warning")
    assert inst.queue_ids() == []
