"""Content inspection (issue 13, part 3): header_checks, mime_header_checks,
nested_header_checks and body_checks against a booted instance, one test per action
with the log line Postfix's cleanup writes for it; body_checks_size_limit; a second
smtpd with `-o header_checks=` and a third with `-o receive_override_options=
no_header_body_checks`; locally submitted mail (sendmail -> pickup) through the same
checks, a REJECT there bounced to the sender as Postfix does.

Before this work every table here was read by nothing: each test below fails on that
code (the REJECTs are accepted, the log lines never appear, nothing is held)."""

import re
import smtplib
from email.utils import make_msgid

import pytest

from harness import (USER1, USER2, Instance, free_port, maildir_messages, reset_maildir,
                     wait_for)

SENDER = f"{USER1}@rostfix.test"
RCPT = f"{USER1}@rostfix.test"
OTHER = f"{USER2}@rostfix.test"

HEADER_CHECKS = f"""\
/^Subject: reject-me/ REJECT no thanks
/^Subject: defer-me/ DEFER try later
/^Subject: warn-me/ WARN watch this
/^Subject: info-me/ INFO noted
/^X-Drop-Me:/ IGNORE
/^X-Hold-Me:/ HOLD held for review
/^Subject: hold-me/ HOLD held for review
/^Subject: discard-me/ DISCARD dropped
/^Subject: redirect-me/ REDIRECT {OTHER}
/^Subject: filter-me/ FILTER smtp:[127.0.0.1]:10025
/^Subject: prepend-me/ PREPEND X-Prepended: yes
/^X-Replace-Me:/ REPLACE X-Replaced: yes
/^Subject: bcc-me/ BCC {OTHER}
/^Subject: dunno-me/ DUNNO
/^Subject: ok-me/ OK
/^Subject: folded.*second line/ REJECT folded header matched
"""

# pcre: on purpose, the other table type content checks are written in.
BODY_CHECKS = """\
/^forbidden body phrase/ REJECT body says no
/^strip this line$/ IGNORE
"""

MIME_HEADER_CHECKS = """\
/^Content-Disposition:.*filename="?[^"]*\\.exe/ REJECT attachment type not allowed
"""

NESTED_HEADER_CHECKS = """\
/^Subject: nested-bad/ REJECT nested message refused
"""

PORT2_CHECKS = """\
/^Subject: port2-only/ REJECT refused on the second port
"""


@pytest.fixture(scope="module")
def inst(workdir):
    """One instance for the module: tables in its etc/, two extra smtpd ports."""
    for user in (USER1, USER2):
        reset_maildir(user)
    instance = Instance(workdir)
    conf = instance.conf
    for name, text in [("header_checks", HEADER_CHECKS), ("body_checks", BODY_CHECKS),
                       ("mime_header_checks", MIME_HEADER_CHECKS),
                       ("nested_header_checks", NESTED_HEADER_CHECKS),
                       ("port2_checks", PORT2_CHECKS)]:
        (conf / name).write_text(text)
    with open(conf / "main.cf", "a") as main:
        main.write(f"header_checks = regexp:{conf}/header_checks\n"
                   f"body_checks = pcre:{conf}/body_checks\n"
                   f"mime_header_checks = regexp:{conf}/mime_header_checks\n"
                   f"nested_header_checks = regexp:{conf}/nested_header_checks\n"
                   "body_checks_size_limit = 1000\n")
    instance.port2 = free_port()
    instance.port3 = free_port()
    instance.port4 = free_port()
    with open(conf / "master.cf", "a") as master:
        master.write(f"127.0.0.1:{instance.port2} inet n - y - - smtpd\n"
                     f"  -o header_checks=regexp:{conf}/port2_checks\n"
                     f"127.0.0.1:{instance.port3} inet n - y - - smtpd\n"
                     "  -o receive_override_options=no_header_body_checks,no_such_option\n"
                     f"127.0.0.1:{instance.port4} inet n - y - - smtpd\n"
                     "  -o disable_mime_input_processing=yes\n")
    instance.start()
    yield instance
    instance.stop()
    instance.forget()


def send(inst, subject, extra_headers="", body="hello\n", rcpt=RCPT, port=None):
    """Sends one message; returns (code, text, queue id or None, message-id)."""
    msgid = make_msgid(domain="client.test")
    msg = (f"From: <{SENDER}>\nTo: <{rcpt}>\nSubject: {subject}\nMessage-ID: {msgid}\n"
           f"{extra_headers}\n{body}")
    with smtplib.SMTP("127.0.0.1", port or inst.port, timeout=30) as s:
        s.ehlo("client.test")
        s.mail(SENDER)
        code, _ = s.rcpt(rcpt)
        assert code == 250
        code, text = s.data(msg.encode())
    text = text.decode()
    queued = re.search(r"queued as (\w+)", text)
    return code, text, queued.group(1) if queued else None, msgid


def action_line(inst, action, content, text=None, origin=r"\S+\[127\.0\.0\.1\]",
                rcpt=RCPT, smtp=True):
    """Waits for `cleanup[PID]: ID: ACTION: header CONTENT from ORIGIN; from=<S> to=<R>
    proto=ESMTP helo=<client.test>[: TEXT]` (Postfix's cleanup line, in cleanup's name
    though smtpd or pickup wrote it) and returns the queue id."""
    tail = " proto=ESMTP helo=<client.test>" if smtp else ""
    kind = "body" if content.startswith("body ") else "header"
    content = content.removeprefix("body ")
    pattern = (rf"/cleanup\[\d+\]: (\w+): {action}: {kind} {re.escape(content)} from {origin}; "
               rf"from=<{re.escape(SENDER)}> to=<{re.escape(rcpt)}>{tail}")
    if text is not None:
        pattern += rf": {re.escape(text)}$"
    else:
        pattern += "$"
    found = wait_for(lambda: re.search(pattern, inst.log_text(), re.M),
                     what=f"log line {pattern}")
    return found.group(1)


def delivered(user, msgid):
    """The delivered message with this Message-ID (waits for it)."""
    def find():
        for _, data in maildir_messages(user):
            if msgid.encode() in data:
                return data
        return None
    return wait_for(find, timeout=30, what=f"{msgid} in {user}'s Maildir")


def test_reject(inst):
    code, text, _, _ = send(inst, "reject-me now")
    assert (code, text) == (550, "5.7.1 no thanks")
    action_line(inst, "reject", "Subject: reject-me now", "5.7.1 no thanks")


def test_defer(inst):
    code, text, _, _ = send(inst, "defer-me please")
    assert (code, text) == (451, "4.7.1 try later")
    action_line(inst, "reject", "Subject: defer-me please", "4.7.1 try later")


def test_warn(inst):
    code, _, qid, msgid = send(inst, "warn-me")
    assert code == 250
    assert action_line(inst, "warning", "Subject: warn-me", "watch this") == qid
    delivered(USER1, msgid)


def test_info(inst):
    code, _, qid, msgid = send(inst, "info-me")
    assert code == 250
    assert action_line(inst, "info", "Subject: info-me", "noted") == qid
    delivered(USER1, msgid)


def test_ignore_drops_the_header(inst):
    code, _, _, msgid = send(inst, "ignore", "X-Drop-Me: secret\nX-Keep: kept\n")
    assert code == 250
    data = delivered(USER1, msgid)
    assert b"X-Drop-Me" not in data and b"X-Keep: kept\n" in data


def test_hold_then_release(inst):
    code, _, qid, msgid = send(inst, "hold-me")
    assert code == 250
    assert action_line(inst, "hold", "Subject: hold-me", "held for review") == qid
    assert qid in inst.queue_ids("hold")
    assert qid not in inst.queue_ids("incoming", "active", "deferred")
    inst.cmd("rostsuper", "-H", qid)
    delivered(USER1, msgid)


def test_discard(inst):
    code, text, qid, msgid = send(inst, "discard-me")
    assert code == 250 and qid, text
    assert action_line(inst, "discard", "Subject: discard-me", "dropped") == qid
    assert qid not in inst.queue_ids()
    # A message sent after it arrives; the discarded one never does.
    _, _, _, marker = send(inst, "after the discard")
    delivered(USER1, marker)
    assert not any(msgid.encode() in data for _, data in maildir_messages(USER1))


def test_redirect(inst):
    code, _, qid, msgid = send(inst, "redirect-me")
    assert code == 250
    assert action_line(inst, "redirect", "Subject: redirect-me", OTHER) == qid
    delivered(USER2, msgid)
    assert not any(msgid.encode() in data for _, data in maildir_messages(USER1))


def test_filter_writes_the_queue_attribute(inst):
    # Held as well, so the queue file can be read before qmgr routes it.
    code, _, qid, _ = send(inst, "filter-me", "X-Hold-Me: yes\n")
    assert code == 250
    assert action_line(inst, "filter", "Subject: filter-me", "smtp:[127.0.0.1]:10025") == qid
    data = (inst.queue / "hold" / qid).read_bytes()
    assert b"filter=smtp:[127.0.0.1]:10025" in data


def test_prepend(inst):
    code, _, qid, msgid = send(inst, "prepend-me")
    assert code == 250
    assert action_line(inst, "prepend", "Subject: prepend-me", "X-Prepended: yes") == qid
    assert b"X-Prepended: yes\nSubject: prepend-me\n" in delivered(USER1, msgid)


def test_replace(inst):
    code, _, qid, msgid = send(inst, "replace", "X-Replace-Me: old\n")
    assert code == 250
    assert action_line(inst, "replace", "X-Replace-Me: old", "X-Replaced: yes") == qid
    data = delivered(USER1, msgid)
    assert b"X-Replaced: yes\n" in data and b"X-Replace-Me" not in data


def test_bcc(inst):
    code, _, _, msgid = send(inst, "bcc-me")
    assert code == 250
    delivered(USER1, msgid)
    delivered(USER2, msgid)


@pytest.mark.parametrize("word", ["dunno", "ok"])
def test_dunno_and_ok_change_nothing(inst, word):
    code, _, qid, msgid = send(inst, f"{word}-me")
    assert code == 250
    data = delivered(USER1, msgid)
    assert f"Subject: {word}-me\n".encode() in data
    assert not re.search(rf"{qid}: \w+: header", inst.log_text())


def test_folded_header_is_one_key(inst):
    code, text, _, _ = send(inst, "folded\n second line")
    assert (code, text) == (550, "5.7.1 folded header matched")
    # Postfix's logging shows the fold as `?` characters.
    action_line(inst, "reject", "Subject: folded? second line", "5.7.1 folded header matched")


def test_pcre_body_checks_and_size_limit(inst):
    code, text, _, _ = send(inst, "body", body="first\nforbidden body phrase here\n")
    assert (code, text) == (550, "5.7.1 body says no")
    action_line(inst, "reject", "body forbidden body phrase here", "5.7.1 body says no")
    # Past body_checks_size_limit (1000 bytes) nothing is inspected.
    filler = "".join(f"filler line {i:04}\n" for i in range(80))
    code, _, _, msgid = send(inst, "body late", body=filler + "forbidden body phrase late\n")
    assert code == 250
    assert b"forbidden body phrase late" in delivered(USER1, msgid)
    code, _, _, msgid = send(inst, "body strip", body="keep\nstrip this line\nkeep too\n")
    assert code == 250
    assert b"keep\nkeep too\n" in delivered(USER1, msgid)


MULTIPART = """MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="==b1=="
"""


def test_attachment_header_hits_mime_header_checks(inst):
    body = ('--==b1==\nContent-Type: text/plain\n\nsee attached\n'
            '--==b1==\nContent-Type: application/octet-stream\n'
            'Content-Disposition: attachment; filename="setup.exe"\n'
            'Content-Transfer-Encoding: base64\n\nTVqQAAMAAAAEAAAA\n--==b1==--\n')
    code, text, _, _ = send(inst, "mime", MULTIPART, body)
    assert (code, text) == (550, "5.7.1 attachment type not allowed")
    action_line(inst, "reject", 'Content-Disposition: attachment; filename="setup.exe"',
                "5.7.1 attachment type not allowed")
    # The same header name at the top, as a plain header of the message, is not a part's.
    ok = body.replace("setup.exe", "notes.txt")
    code, _, _, msgid = send(inst, "mime ok", MULTIPART, ok)
    assert code == 250
    delivered(USER1, msgid)


def test_disable_mime_input_processing_makes_parts_body(inst):
    body = ('--==b1==\nContent-Type: application/octet-stream\n'
            'Content-Disposition: attachment; filename="setup.exe"\n\nTVqQ\n--==b1==--\n')
    code, text, _, _ = send(inst, "mime", MULTIPART, body)
    assert (code, text) == (550, "5.7.1 attachment type not allowed")
    # Without MIME processing the part's headers are body lines: body_checks only.
    code, _, _, msgid = send(inst, "mime off", MULTIPART, body, port=inst.port4)
    assert code == 250
    delivered(USER1, msgid)


def test_attached_message_headers_hit_nested_header_checks(inst):
    body = ('--==b1==\nContent-Type: text/plain\n\nforwarded\n'
            '--==b1==\nContent-Type: message/rfc822\n\n'
            'From: someone@example.org\nSubject: nested-bad offer\n\ninner body\n'
            '--==b1==--\n')
    code, text, _, _ = send(inst, "nested", MULTIPART, body)
    assert (code, text) == (550, "5.7.1 nested message refused")
    action_line(inst, "reject", "Subject: nested-bad offer", "5.7.1 nested message refused")
    # The same Subject as the message's own header goes to header_checks, which lets it be.
    code, _, _, msgid = send(inst, "nested-bad but top level")
    assert code == 250
    delivered(USER1, msgid)


def test_master_cf_o_header_checks_on_a_second_port(inst):
    code, _, _, msgid = send(inst, "port2-only")
    assert code == 250
    delivered(USER1, msgid)
    code, text, _, _ = send(inst, "port2-only", port=inst.port2)
    assert (code, text) == (550, "5.7.1 refused on the second port")
    # The second port's header_checks replaces main.cf's.
    code, _, _, msgid = send(inst, "reject-me on port 2", port=inst.port2)
    assert code == 250
    delivered(USER1, msgid)


def test_receive_override_options_no_header_body_checks(inst):
    code, _, _, msgid = send(inst, "reject-me on port 3", port=inst.port3,
                             body="forbidden body phrase\n")
    assert code == 250
    delivered(USER1, msgid)
    assert ("master.cf -o: receive_override_options: unknown option: no_such_option"
            in inst.log_text())


def sendmail(inst, subject, rcpt=OTHER):
    msgid = make_msgid(domain="local.test")
    msg = f"Subject: {subject}\nMessage-ID: {msgid}\n\nlocal body\n"
    inst._run([str(inst.bindir / "sendmail"), "-C", str(inst.conf), "-f", SENDER, rcpt],
              user=USER1, input=msg.encode())
    return msgid


def test_sendmail_reject_bounces_to_the_sender(inst):
    msgid = sendmail(inst, "reject-me locally")
    qid = action_line(inst, "reject", "Subject: reject-me locally", "5.7.1 no thanks",
                origin="local", rcpt=OTHER, smtp=False)

    def notice():
        for _, data in maildir_messages(USER1):
            if msgid.encode() in data and b"no thanks" in data:
                return data
        return None
    data = wait_for(notice, timeout=30, what="the non-delivery notice to the sender")
    assert b"Undelivered Mail Returned to Sender" in data or b"5.7.1" in data
    assert not any(msgid.encode() in d for _, d in maildir_messages(USER2))
    # Neither the copy the bounce service read nor the submission is left behind.
    assert qid not in inst.queue_ids()
    assert not inst.queue_ids("maildrop")


def test_sendmail_hold(inst):
    sendmail(inst, "hold-me locally")
    qid = action_line(inst, "hold", "Subject: hold-me locally", "held for review",
                      origin="local", rcpt=OTHER, smtp=False)
    # pickup logs the action while it writes the queue file, as cleanup does: the
    # file reaches hold/ a moment later.
    wait_for(lambda: qid in inst.queue_ids("hold"), what=f"{qid} in hold/")
