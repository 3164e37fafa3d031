"""A queue file with the wrong owner in deferred/ (a careless restore): qmgr cannot open
it. It must say so once, clearly, and back off instead of retrying it on every deferred
scan; `rostfix check` reports it."""

import os
import pwd
import re
import time

from harness import USER1, free_port, wait_for


def send(inst, rcpt, subject):
    with inst.smtp() as s:
        s.sendmail("owner@example.org", [rcpt],
                   f"From: owner@example.org\r\nSubject: {subject}\r\n\r\nbody\r\n".encode())


def deferred_attempts(inst, rcpt):
    return sum(1 for line in inst.log_text().splitlines()
               if f"to=<{rcpt}>" in line and "status=deferred" in line)


def test_wrong_owner_is_logged_once_and_backed_off(make_instance):
    # Remote mail goes to a relayhost on a closed loopback port: deferred, and retried
    # every few seconds; the retries show the deferred scans going on.
    inst = make_instance(main_extra={"relayhost": f"[127.0.0.1]:{free_port()}"})
    send(inst, "victim@example.org", "wrong owner")
    wait_for(lambda: inst.queue_ids("deferred"), what="the message to be deferred")
    [bad] = inst.queue_ids("deferred")
    path = inst.queue / "deferred" / bad
    # qmgr renames the file into deferred/ and then sets its retry time (the mtime, in
    # the future): chowning it between the two would make that second step fail too.
    wait_for(lambda: path.stat().st_mtime > time.time(),
             what="qmgr to set the deferred file's retry time")
    pw = pwd.getpwnam(USER1)
    os.chown(path, pw.pw_uid, pw.pw_gid)
    os.chmod(path, 0o600)
    past = time.time() - 60
    os.utime(path, (past, past))

    send(inst, "witness@example.org", "scans go on")
    wait_for(lambda: re.search(rf"{bad}: .*Permission denied", inst.log_text()), timeout=30,
             what="qmgr to report the unreadable file")
    seen = deferred_attempts(inst, "witness@example.org")
    # Three more retries of the witness: at least three deferred scans.
    wait_for(lambda: deferred_attempts(inst, "witness@example.org") >= seen + 3, timeout=60,
             what="three more deferred scans")

    log = inst.log_text()
    lines = [line for line in log.splitlines()
             if bad in line and ("Permission denied" in line or "cannot open" in line
                                 or "cannot read" in line)]
    print("\n" + "\n".join(lines))
    assert len(lines) == 1, lines
    assert re.search(rf"qmgr\[\d+\]: warning: {bad}: cannot open queue file: .*Permission denied"
                     r".*left in deferred and retried with backoff", lines[0]), lines[0]
    assert (inst.queue / "deferred" / bad).exists(), "set aside, not lost"

    check = inst.cmd("rostfix", "check", check=False)
    out = (check.stdout + check.stderr).decode()
    assert f"not owned by mail_owner: {path}" in out, out
