"""Access-table actions on the whole message (issue 13): HOLD, DISCARD, FILTER,
REDIRECT and BCC from a check_sender_access inline: table, against a booted instance,
each with the line Postfix's smtpd_check.c logs when the table matches
(`NOQUEUE: hold: RCPT from C: <s>: Sender address triggers HOLD action; from=<s>
to=<r> proto=ESMTP helo=<h>`).

Before this work smtpd logged `access table action ... is not supported yet; ignored`
and queued the message as if the table had said DUNNO: every test below fails on
that code (nothing is held, discarded, redirected, copied or filtered)."""

import re
import smtplib
from email.utils import make_msgid

import pytest

from harness import USER1, USER2, Instance, free_port, maildir_messages, reset_maildir, wait_for

RCPT = f"{USER1}@rostfix.test"
OTHER = f"{USER2}@rostfix.test"


@pytest.fixture(scope="module")
def inst(workdir):
    """One instance: the sender table, and a re-entry smtpd for the FILTER target that
    has no sender restrictions (so filtered mail does not go round again)."""
    for user in (USER1, USER2):
        reset_maildir(user)
    reentry = free_port()
    table = ("{hold@client.test=HOLD}, "
             "{held-why@client.test=HOLD 4.7.1 kept for review}, "
             "{discard@client.test=DISCARD}, "
             f"{{filter@client.test=FILTER smtp:[127.0.0.1]:{reentry}}}, "
             f"{{redirect@client.test=REDIRECT {OTHER}}}, "
             f"{{bcc@client.test=BCC {OTHER}}}")
    instance = Instance(workdir, {
        "smtpd_sender_restrictions": f"check_sender_access inline:{{{table}}}",
    }, f"127.0.0.1:{reentry} inet n - y - - smtpd\n"
       "  -o smtpd_sender_restrictions=\n"
       "  -o content_filter=\n")
    instance.reentry = reentry
    instance.start()
    yield instance
    instance.stop()
    instance.forget()


def send(inst, sender, rcpts=(RCPT,)):
    """Sends one message from `sender`; returns (code, queue id or None, message-id)."""
    msgid = make_msgid(domain="client.test")
    msg = f"From: <{sender}>\nSubject: access actions\nMessage-ID: {msgid}\n\nhello\n"
    with smtplib.SMTP("127.0.0.1", inst.port, timeout=30) as s:
        s.ehlo("client.test")
        s.mail(sender)
        for r in rcpts:
            code, text = s.rcpt(r)
            assert code == 250, (r, code, text)
        code, text = s.data(msg.encode())
    queued = re.search(rb"queued as (\w+)", text)
    return code, queued.group(1).decode() if queued else None, msgid


def action_line(inst, action, sender, text, rcpt=RCPT):
    pattern = (rf"NOQUEUE: {action}: RCPT from \S+\[127\.0\.0\.1\]: <{re.escape(sender)}>: "
               rf"Sender address {re.escape(text)}; from=<{re.escape(sender)}> "
               rf"to=<{re.escape(rcpt)}> proto=ESMTP helo=<client\.test>$")
    return wait_for(lambda: re.search(pattern, inst.log_text(), re.M),
                    what=f"log line {pattern}")


def delivered(user, msgid):
    def find():
        for _, data in maildir_messages(user):
            if msgid.encode() in data:
                return data
        return None
    return wait_for(find, timeout=30, what=f"{msgid} in {user}'s Maildir")


def not_delivered(user, msgid):
    return not any(msgid.encode() in data for _, data in maildir_messages(user))


def test_hold(inst):
    code, qid, msgid = send(inst, "hold@client.test")
    assert code == 250 and qid
    action_line(inst, "hold", "hold@client.test", "triggers HOLD action")
    assert qid in inst.queue_ids("hold")
    assert qid not in inst.queue_ids("incoming", "active", "deferred")
    inst.cmd("rostsuper", "-H", qid)
    delivered(USER1, msgid)


def test_hold_with_text(inst):
    code, qid, _ = send(inst, "held-why@client.test")
    assert code == 250
    action_line(inst, "hold", "held-why@client.test", "4.7.1 kept for review")
    assert qid in inst.queue_ids("hold")


def test_discard(inst):
    # The second recipient is not ours: DISCARD ends the restrictions, so it is not
    # refused as relaying (Postfix: the whole message goes nowhere anyway).
    code, qid, msgid = send(inst, "discard@client.test", (RCPT, "someone@elsewhere.example"))
    assert code == 250 and qid
    action_line(inst, "discard", "discard@client.test", "triggers DISCARD action")
    assert qid not in inst.queue_ids()
    _, _, marker = send(inst, "plain@client.test")
    delivered(USER1, marker)
    assert not_delivered(USER1, msgid)
    assert "Relay access denied" not in inst.log_text()


def test_redirect(inst):
    code, _, msgid = send(inst, "redirect@client.test")
    assert code == 250
    action_line(inst, "redirect", "redirect@client.test", f"triggers REDIRECT {OTHER}")
    delivered(USER2, msgid)
    assert not_delivered(USER1, msgid)


def test_bcc(inst):
    code, _, msgid = send(inst, "bcc@client.test")
    assert code == 250
    action_line(inst, "bcc", "bcc@client.test", f"triggers BCC {OTHER}")
    delivered(USER1, msgid)
    delivered(USER2, msgid)


def test_filter_routes_through_the_named_transport_once(inst):
    code, qid, msgid = send(inst, "filter@client.test")
    assert code == 250 and qid
    target = f"smtp:[127.0.0.1]:{inst.reentry}"
    action_line(inst, "filter", "filter@client.test", f"triggers FILTER {target}")
    data = delivered(USER1, msgid)
    log = inst.log_text()
    # qmgr sent it to the filter's next hop, whatever the recipient's route says...
    assert re.search(rf"^.*{qid}: to=<{re.escape(RCPT)}>, relay=[^,]*\[127\.0\.0\.1\]:"
                     rf"{inst.reentry},.*status=sent", log, re.M), log
    # ...and the re-entry smtpd queued it once more, for local delivery, only once.
    assert data.count(b"Received: from") >= 2
    assert len([m for _, m in maildir_messages(USER1) if msgid.encode() in m]) == 1
