"""The foundation's mail path end to end: SMTP and sendmail in, Maildir out, as the user."""

import mailbox
import os
import pwd
import re
import subprocess
import time

import harness
from harness import maildir_messages, wait_for
from harness import USER1, USER2

BODY = ("From: Alice <alice@example.org>\r\n"
        f"To: {USER1}@mx.rostfix.test\r\n"
        "Subject: foundation test\r\n"
        "Message-ID: <foundation-1@example.org>\r\n"
        "\r\n"
        f"Hello {USER1}.\r\n"
        "..a line that starts with a dot\r\n"
        "\r\n"
        "Last line, with trailing spaces   \r\n").encode()


def our_header_names(delivered, sent_lf):
    """The names of the header lines we put before the message that was sent."""
    assert delivered.endswith(sent_lf), "delivered message does not end with what was sent"
    prefix = delivered[: len(delivered) - len(sent_lf)].decode()
    names = []
    for line in prefix.split("\n"):
        if not line:
            continue
        if line[0] in " \t":
            continue
        names.append(line.split(":", 1)[0])
    return names


def expected_lf(body):
    # On the wire lines end CRLF and leading dots are stuffed; in the Maildir lines end
    # LF and the stuffing is gone.
    text = body.replace(b"\r\n", b"\n")
    return text.replace(b"\n..a line", b"\n.a line")


def assert_owned_by(path, user):
    pw = pwd.getpwnam(user)
    st = os.stat(path)
    assert (st.st_uid, st.st_gid) == (pw.pw_uid, pw.pw_gid), f"{path} owned by {st.st_uid}"


def test_smtplib_to_maildir(instance):
    with instance.smtp() as s:
        s.ehlo("client.example.org")
        # smtplib stuffs dots itself; send the raw already-stuffed form through data().
        code, resp = s.docmd("MAIL FROM:<alice@example.org>")
        assert code == 250, resp
        code, resp = s.docmd(f"RCPT TO:<{USER1}@mx.rostfix.test>")
        assert code == 250, resp
        code, resp = s.docmd("DATA")
        assert code == 354, resp
        s.send(BODY + b".\r\n")
        code, resp = s.getreply()
        assert code == 250, resp
        queue_id = re.search(rb"queued as ([0-9A-F]+)", resp).group(1).decode()
    msgs = wait_for(lambda: maildir_messages(USER1), what=f"delivery to {USER1}")
    assert len(msgs) == 1
    path, data = msgs[0]
    assert_owned_by(path, USER1)
    names = our_header_names(data, expected_lf(BODY))
    # local adds X-Original-To (the recipient as received) as Postfix's local does.
    assert names == ["Return-Path", "X-Original-To", "Delivered-To", "Received"], names
    assert data.startswith(b"Return-Path: <alice@example.org>\n")
    assert f"Delivered-To: {USER1}@mx.rostfix.test\n".encode() in data
    instance.wait_queue_empty()
    log = instance.log_text()
    # The message's life is traceable by its queue id, in Postfix's shape.
    for pattern in [rf"rostfix/smtpd\[\d+\]: {queue_id}: client=",
                    rf"rostfix/qmgr\[\d+\]: {queue_id}: from=<alice@example.org>, size=\d+, nrcpt=1 \(queue active\)",
                    rf"rostfix/local\[\d+\]: {queue_id}: to=<{USER1}@mx.rostfix.test>, relay=local, .*dsn=2\.0\.0, status=sent",
                    rf"rostfix/qmgr\[\d+\]: {queue_id}: removed"]:
        assert re.search(pattern, log), f"log lacks {pattern!r}:\n{log[-3000:]}"


def test_swaks_to_maildir(instance):
    proc = subprocess.run(
        ["swaks", "--server", f"127.0.0.1:{instance.port}", "--from", "bob@example.org",
         "--to", f"{USER2}@mx.rostfix.test", "--header", "Subject: via swaks",
         "--body", "swaks body line\n.dot line\n", "--helo", "swaks.example.org"],
        capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stdout.decode() + proc.stderr.decode()
    assert b"250 2.0.0 Ok: queued as" in proc.stdout
    msgs = wait_for(lambda: maildir_messages(USER2), what=f"delivery to {USER2}")
    path, data = msgs[0]
    assert_owned_by(path, USER2)
    assert b"Subject: via swaks\n" in data
    assert b"\nswaks body line\n.dot line\n" in data
    assert b"\r" not in data


def test_sendmail_t_as_ordinary_user(instance):
    message = (f"To: Second <{USER2}@mx.rostfix.test>\n"
               f"Bcc: {USER1}@mx.rostfix.test\n"
               "Subject: from sendmail\n"
               "\n"
               f"sent by {USER1} with sendmail -t\n").encode()
    proc = instance._run([str(instance.bindir / "sendmail"), "-C", str(instance.conf), "-t"],
                         user=USER1, input=message)
    assert proc.returncode == 0
    for user in (USER1, USER2):
        msgs = wait_for(lambda: maildir_messages(user), what=f"delivery to {user}")
        path, data = msgs[0]
        assert_owned_by(path, user)
        assert f"sent by {USER1} with sendmail -t\n".encode() in data
        assert b"Subject: from sendmail\n" in data
        assert b"Bcc:" not in data, "Bcc header must be removed with -t"
        assert data.startswith(f"Return-Path: <{USER1}@".encode()), data[:200]
    log = instance.log_text()
    uid = pwd.getpwnam(USER1).pw_uid
    assert re.search(rf"rostfix/pickup\[\d+\]: [0-9A-F]+: uid={uid} from=<{USER1}@", log), log[-3000:]


def test_unknown_local_user_bounces_to_sender(make_instance):
    # smtpd refuses unknown local users at RCPT (smtpd_reject_unlisted_recipient, see
    # test_relay.py); with local_recipient_maps empty it accepts them, as Postfix does,
    # and local bounces.
    instance = make_instance(main_extra={"local_recipient_maps": ""})
    with instance.smtp() as s:
        s.sendmail(f"{USER1}@mx.rostfix.test", ["nosuchuser@mx.rostfix.test"],
                   b"Subject: to nobody\r\n\r\nbody\r\n")
    msgs = wait_for(lambda: maildir_messages(USER1), what="the bounce to the sender")
    data = msgs[0][1]
    assert b"Return-Path: <>\n" in data
    assert b"multipart/report" in data and b"report-type=delivery-status" in data
    assert b"nosuchuser@mx.rostfix.test" in data
    assert b"Status: 5.1.1" in data
    instance.wait_queue_empty()


def test_mbox_under_mail_spool_directory(make_instance):
    inst = make_instance(start=False)
    spool = inst.base / "spool"
    spool.mkdir()
    os.chmod(spool, 0o1777)
    inst.cmd("rostconf", "-e", "home_mailbox=", f"mail_spool_directory={spool}")
    inst.start()
    with inst.smtp() as s:
        for n in range(3):
            s.sendmail("alice@example.org", [f"{USER1}@mx.rostfix.test"],
                       f"Subject: mbox {n}\r\n\r\nFrom the start of a line\r\nbody {n}\r\n".encode())
    mbox = spool / USER1
    wait_for(lambda: mbox.exists() and mbox.read_bytes().count(b"\nSubject: mbox") == 3,
             what="three messages in the mbox")
    inst.wait_queue_empty()
    assert_owned_by(mbox, USER1)
    assert os.stat(mbox).st_mode & 0o777 == 0o600
    msgs = list(mailbox.mbox(str(mbox)))
    # local delivers two at a time, so arrival order in the mbox is not fixed.
    assert sorted(m["Subject"] for m in msgs) == ["mbox 0", "mbox 1", "mbox 2"]
    data = mbox.read_bytes()
    assert data.startswith(b"From alice@example.org ")
    assert b"\n>From the start of a line\n" in data, "From_ lines in the body are quoted"
    assert not (spool / f"{USER1}.lock").exists()


def test_failed_delivery_is_deferred_then_flushed(instance):
    home = pwd.getpwnam(USER2).pw_dir
    os.chmod(home, 0o500)  # USER2 cannot create Maildir/: local must defer
    try:
        with instance.smtp() as s:
            s.sendmail("alice@example.org", [f"{USER2}@mx.rostfix.test"],
                       b"Subject: deferred locally\r\n\r\nlater\r\n")
        wait_for(lambda: instance.queue_ids("deferred"), what="the message to be deferred")
        qid = instance.queue_ids("deferred")[0]
        retry = os.stat(instance.queue / "deferred" / qid).st_mtime
        assert retry > time.time(), "a deferred message carries its next retry time"
        log = instance.log_text()
        assert re.search(rf"{qid}: to=<{USER2}@mx.rostfix.test>, relay=local, .*status=deferred", log), log[-2000:]
        assert not maildir_messages(USER2)
    finally:
        os.chmod(home, 0o755)
    instance.cmd("rostqueue", "-f")
    wait_for(lambda: maildir_messages(USER2), what="delivery after the flush")
    instance.wait_queue_empty()
    assert not instance.queue_ids("deferred")
