"""rostsuper (issue 5, "What must be shown" 6): -h / -H / -r / -d / -e change the queue
as postsuper does while mail flows (local mail keeps being delivered, nothing is lost),
and -s repairs file names and modes after a restore."""

import json
import os
import re
import threading

from harness import USER1, free_port, maildir_messages, wait_for


def queue_json(inst):
    out = inst.cmd("rostqueue", "-j").stdout.decode()
    return {r["queue_id"]: r for r in map(json.loads, out.splitlines())}


def test_hold_release_requeue_expire_delete_while_mail_flows(make_instance):
    inst = make_instance(main_extra={"relayhost": f"[127.0.0.1]:{free_port()}"})
    with inst.smtp() as s:
        for n in range(4):
            s.sendmail("alice@example.org", [f"r{n}@remote.example"],
                       f"Subject: remote {n}\r\n\r\nx\r\n".encode())
    wait_for(lambda: len(inst.queue_ids("deferred")) == 4, what="four deferred messages")
    a, b, c, d = sorted(inst.queue_ids("deferred"))

    # Local mail flows the whole time.
    errors = []

    def flow():
        try:
            with inst.smtp() as s:
                for n in range(30):
                    s.sendmail("flow@example.org", [f"{USER1}@mx.rostfix.test"],
                               f"Subject: flow {n}\r\n\r\nflow\r\n".encode())
        except Exception as e:  # reported by the main thread
            errors.append(e)
    sender = threading.Thread(target=flow)
    sender.start()
    try:
        # -h: to hold/, shown with "!" by -p and as queue_name hold by -j.
        err = inst.cmd("rostsuper", "-h", a).stderr.decode()
        assert f"rostsuper: {a}: placed on hold" in err and "Placed on hold: 1 message" in err
        assert queue_json(inst)[a]["queue_name"] == "hold"
        assert re.search(rf"^{a}!", inst.cmd("rostqueue", "-p").stdout.decode(), re.M)

        # -H: back to deferred/.
        err = inst.cmd("rostsuper", "-H", a).stderr.decode()
        assert "Released from hold: 1 message" in err
        wait_for(lambda: queue_json(inst).get(a, {}).get("queue_name") == "deferred",
                 what="the released message back in deferred")

        # -r: to incoming/, where qmgr picks it up and resolves it again.
        before = inst.log_text().count(f"{b}: from=<")
        err = inst.cmd("rostsuper", "-r", b).stderr.decode()
        assert f"{b}: requeued" in err and "Requeued: 1 message" in err
        wait_for(lambda: inst.log_text().count(f"{b}: from=<") > before,
                 what="qmgr to activate the requeued message")
        wait_for(lambda: b in inst.queue_ids("deferred"), what="the requeued message deferred again")

        # -f (-e plus a flush): qmgr returns it to the sender instead of delivering.
        err = inst.cmd("rostsuper", "-f", c).stderr.decode()
        assert f"{c}: expired" in err
        wait_for(lambda: c not in inst.queue_ids(), what="the expired message to be removed")
        # qmgr logs before it removes the file, but its log line can reach the maillog
        # file a moment after the removal is visible (CI saw that once).
        wait_for(lambda: re.search(rf"{c}: to=<r\d@remote.example>.*status=expired, "
                                   r"returned to sender", inst.log_text()),
                 what="qmgr's expired line for the message")

        # -d - (ids on stdin).
        proc = inst._run([str(inst.bindir / "rostsuper"), "-c", str(inst.conf), "-d", "-"],
                         input=f"{d}\nnot-an-id\n".encode(), check=False)
        assert f"{d}: removed".encode() in proc.stderr
        assert b"invalid mail queue id" in proc.stderr
        assert d not in inst.queue_ids()
    finally:
        sender.join(timeout=120)
    assert not errors, errors
    wait_for(lambda: len(maildir_messages(USER1)) == 30, timeout=120,
             what="all 30 local messages delivered during the queue operations")
    remaining = queue_json(inst)
    assert a in remaining and b in remaining, "held/requeued messages are never lost"

    # -d ALL deferred: only the named queue.
    err = inst.cmd("rostsuper", "-d", "ALL", "deferred").stderr.decode()
    assert "Deleted:" in err
    assert not inst.queue_ids("deferred")


def test_repair_after_restore_and_purge(make_instance):
    inst = make_instance(main_extra={"relayhost": f"[127.0.0.1]:{free_port()}"})
    with inst.smtp() as s:
        s.sendmail("alice@example.org", ["r@remote.example"], b"Subject: x\r\n\r\nx\r\n")
    wait_for(lambda: inst.queue_ids("deferred"), what="a deferred message")
    qid = inst.queue_ids("deferred")[0]
    inst.cmd("rostsuper", "-h", qid)
    # A restore gives the file a new inode, so its name no longer matches; and a
    # careless copy leaves it readable by others.
    held = inst.queue / "hold" / qid
    data = held.read_bytes()
    held.unlink()
    restored = inst.queue / "hold" / (qid[:5] + "FFFFFF")
    restored.write_bytes(data)
    os.chmod(restored, 0o644)
    stale = inst.queue / "incoming" / "tmp.2147483600.1"
    stale.write_bytes(b"partial")
    os.utime(stale, (1, 1))

    ino = os.stat(restored).st_ino
    proc = inst.cmd("rostsuper", "-s", "-p")
    want = f"{qid[:5]}{ino:X}"
    assert f"{restored.name}: renamed to {want}".encode() in proc.stderr, proc.stderr
    assert not stale.exists()
    fixed = inst.queue / "hold" / want
    st = os.stat(fixed)
    assert st.st_mode & 0o7777 == 0o600
    import pwd
    assert st.st_uid == pwd.getpwnam("rostfix").pw_uid
    # The repaired message is whole: released, it is listed again.
    inst.cmd("rostsuper", "-H", want)
    assert want in queue_json(inst)
