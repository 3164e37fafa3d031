"""rostqueue (issue 5, "What must be shown" 6): -j of a deferred message parses as JSON
with postqueue's fields, and an ordinary user lists the queue through the showq
service, since queue_directory is closed to them."""

import json
import re

from harness import USER1, free_port, wait_for

POSTQUEUE_FIELDS = {"queue_name", "queue_id", "arrival_time", "message_size",
                    "forced_expire", "sender", "recipients"}


def deferring(make_instance):
    return make_instance(main_extra={"relayhost": f"[127.0.0.1]:{free_port()}"})


def rostqueue_as(inst, user, *args):
    """The installed (set-group-id) rostqueue, as `user` (None: root)."""
    return inst._run([str(inst.bindir / "rostqueue"), "-c", str(inst.conf), *args],
                     check=False, user=user)


def test_json_fields_of_a_deferred_message(make_instance):
    inst = deferring(make_instance)
    with inst.smtp() as s:
        s.sendmail("alice@example.org", ["bob@remote.example", "carol@remote.example"],
                   b"Subject: deferred\r\n\r\nwaiting\r\n")
    wait_for(lambda: inst.queue_ids("deferred"), what="the message to be deferred")
    qid = inst.queue_ids("deferred")[0]
    lines = inst.cmd("rostqueue", "-j").stdout.decode().splitlines()
    assert len(lines) == 1
    r = json.loads(lines[0])
    assert set(r) == POSTQUEUE_FIELDS, r
    assert (r["queue_name"], r["queue_id"], r["sender"]) == ("deferred", qid, "alice@example.org")
    assert isinstance(r["arrival_time"], int) and isinstance(r["message_size"], int)
    assert r["forced_expire"] is False
    assert sorted(x["address"] for x in r["recipients"]) == \
        ["bob@remote.example", "carol@remote.example"]
    for rcpt in r["recipients"]:
        assert set(rcpt) <= {"address", "delay_reason"}, rcpt
        assert "127.0.0.1" in rcpt["delay_reason"], rcpt

    # postsuper -e shows as forced_expire (held first so qmgr does not act on it).
    inst.cmd("rostsuper", "-h", qid)
    inst.cmd("rostsuper", "-e", qid)
    r = json.loads(inst.cmd("rostqueue", "-j").stdout.decode())
    assert r["queue_name"] == "hold" and r["forced_expire"] is True


def test_ordinary_user_lists_the_queue_through_showq(make_instance):
    inst = deferring(make_instance)
    with inst.smtp() as s:
        s.sendmail("alice@example.org", ["bob@remote.example"], b"Subject: x\r\n\r\nx\r\n")
    wait_for(lambda: inst.queue_ids("deferred"), what="the message to be deferred")
    qid = inst.queue_ids("deferred")[0]

    # The user cannot read the queue itself...
    probe = inst._run(["/bin/ls", str(inst.queue / "deferred")], check=False, user=USER1)
    assert probe.returncode != 0
    # ...but rostqueue, set-group-id setgid_group, asks showq on public/showq: master
    # starts showq on demand, and nothing asked it before.
    assert "showq" not in inst.processes().values()
    proc = rostqueue_as(inst, USER1, "-p")
    assert "showq" in inst.processes().values(), "the listing did not come from showq"
    assert proc.returncode == 0, proc.stderr
    listing = proc.stdout.decode()
    assert re.search(rf"^{qid}\s+\d+ .*alice@example.org$", listing, re.M), listing
    assert "bob@remote.example" in listing and "in 1 Request" in listing
    assert listing == inst.cmd("rostqueue", "-p").stdout.decode(), "same as root's listing"

    proc = rostqueue_as(inst, USER1, "-j")
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    assert r["queue_id"] == qid and set(r) == POSTQUEUE_FIELDS

    # An ordinary user may not point the set-group-id rostqueue at a directory the
    # default main.cf does not list.
    proc = inst._run([str(inst.bindir / "rostqueue"), "-c", "/tmp", "-p"], check=False,
                     user=USER1)
    assert proc.returncode == 77, proc.stderr

    # With the mail system down, postqueue's words and EX_UNAVAILABLE.
    inst.stop()
    proc = rostqueue_as(inst, USER1, "-p")
    assert proc.returncode == 69
    assert b"mail system is down" in proc.stderr
