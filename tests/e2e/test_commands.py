"""The administrator's commands behave like postconf, postqueue, postsuper and postfix."""

import json
import re
import socket

from harness import free_port, wait_for
from harness import USER1


def test_rostconf_n_d_e(make_instance):
    inst = make_instance(start=False)
    out = inst.cmd("rostconf", "-n").stdout.decode()
    # -n: exactly the explicit settings, sorted like postconf -n, `name = value`.
    lines = out.splitlines()
    assert f"queue_directory = {inst.queue}" in lines
    assert "myhostname = mx.rostfix.test" in lines
    assert lines == sorted(lines)
    assert not any(l.startswith("message_size_limit") for l in lines)

    socket_host = socket.gethostname()
    d = inst.cmd("rostconf", "-d", "myhostname").stdout.decode().strip()
    assert d.startswith("myhostname = ") and socket_host.split(".")[0] in d, d
    assert inst.cmd("rostconf", "-h", "myhostname").stdout.decode().strip() == "mx.rostfix.test"
    assert inst.cmd("rostconf", "-d", "message_size_limit").stdout.decode().strip() == \
        "message_size_limit = 10240000"

    main = inst.conf / "main.cf"
    main.write_text("# leading comment\n" + main.read_text() + "# trailing comment\n")
    inst.cmd("rostconf", "-e", "message_size_limit=2048000", "myhostname=other.rostfix.test")
    text = main.read_text()
    assert text.startswith("# leading comment\n") and text.endswith(
        "# trailing comment\nmessage_size_limit = 2048000\n"), text
    assert "myhostname = other.rostfix.test\n" in text
    assert text.index("myhostname = other") < text.index("mydomain ="), "edited in place"
    assert inst.cmd("rostconf", "-h", "message_size_limit").stdout.strip() == b"2048000"
    inst.cmd("rostconf", "-X", "message_size_limit")
    assert "message_size_limit" not in main.read_text()

    m = inst.cmd("rostconf", "-M", "local/unix").stdout.decode().split()
    assert m[:2] == ["local", "unix"] and m[-1] == "local", m


def deferring_instance(make_instance):
    """An instance whose remote mail goes to a relayhost where nothing listens, so it is
    deferred (and no DNS query leaves the machine)."""
    return make_instance(main_extra={"relayhost": f"[127.0.0.1]:{free_port()}"})


def test_queue_listing_json_and_delete(make_instance):
    instance = deferring_instance(make_instance)
    # From mynetworks a foreign domain is relayed; the relayhost refuses connections, so
    # the smtp transport defers it and it waits in deferred/.
    with instance.smtp() as s:
        s.sendmail("alice@example.org", ["bob@remote.example"],
                   b"Subject: deferred\r\n\r\nwaiting\r\n")
    wait_for(lambda: instance.queue_ids("deferred"), what="the message to be deferred")
    qid = instance.queue_ids("deferred")[0]

    listing = instance.cmd("rostqueue", "-p").stdout.decode()
    lines = listing.splitlines()
    assert lines[0].startswith("-Queue ID-")
    assert re.match(rf"^{qid}\s+\d+ \w{{3}} \w{{3}} [ \d]\d \d\d:\d\d:\d\d\s+alice@example.org$",
                    lines[1]), listing
    assert any(l.strip().startswith("(") for l in lines), "defer reason shown"
    assert any(l.strip() == "bob@remote.example" for l in lines)
    assert lines[-1].startswith("-- ") and "in 1 Request" in lines[-1]

    records = [json.loads(l) for l in instance.cmd("rostqueue", "-j").stdout.decode().splitlines()]
    assert len(records) == 1
    r = records[0]
    assert r["queue_name"] == "deferred" and r["queue_id"] == qid
    assert r["sender"] == "alice@example.org"
    assert isinstance(r["arrival_time"], int) and r["message_size"] > 0
    assert r["forced_expire"] is False
    assert r["recipients"][0]["address"] == "bob@remote.example"
    assert r["recipients"][0]["delay_reason"]

    proc = instance.cmd("rostsuper", "-d", qid)
    assert b"Deleted: 1 message" in proc.stderr
    assert qid not in instance.queue_ids()
    assert instance.cmd("rostqueue", "-p").stdout.decode().strip() == "Mail queue is empty"


def test_rostsuper_d_all(make_instance):
    instance = deferring_instance(make_instance)
    with instance.smtp() as s:
        for n in range(3):
            s.sendmail("alice@example.org", [f"u{n}@remote.example"], b"Subject: x\r\n\r\nx\r\n")
    wait_for(lambda: len(instance.queue_ids("deferred")) == 3, what="three deferred messages")
    proc = instance.cmd("rostsuper", "-d", "ALL")
    assert b"Deleted: 3 messages" in proc.stderr
    assert instance.queue_ids() == []


def test_malformed_main_cf_names_file_line_parameter(make_instance):
    inst = make_instance(start=False)
    main = inst.conf / "main.cf"
    text = main.read_text()
    main.write_text(text + "max_use = lots\n")
    line = len(text.splitlines()) + 1
    proc = inst.cmd("rostfix", "start", check=False)
    err = proc.stderr.decode()
    assert proc.returncode != 0
    assert str(main) in err and f"line {line}" in err and "max_use" in err, err
    assert not inst.pids()

    main.write_text(text + "this line has no equals sign\n")
    proc = inst.cmd("rostfix", "check", check=False)
    assert proc.returncode != 0
    assert str(main) in proc.stderr.decode() and f"line {line}" in proc.stderr.decode()


def test_start_twice_says_running(instance):
    proc = instance.cmd("rostfix", "start", check=False)
    assert proc.returncode != 0
    assert b"already running" in proc.stderr
    status = instance.cmd("rostfix", "status", check=False)
    assert status.returncode == 0 and b"is running" in status.stderr
    instance.cmd("rostfix", "stop")
    wait_for(lambda: not instance.pids(), what="every process to stop")
    status = instance.cmd("rostfix", "status", check=False)
    assert status.returncode != 0 and b"not running" in status.stderr


def test_reload_keeps_serving(instance):
    instance.cmd("rostconf", "-e", "smtpd_banner=$myhostname ESMTP reloaded")
    instance.cmd("rostfix", "reload")

    def banner():
        with socket.create_connection(("127.0.0.1", instance.port), timeout=5) as s:
            return s.recv(512)
    wait_for(lambda: b"reloaded" in banner(), what="the new banner after reload")
    with instance.smtp() as s:
        s.sendmail("alice@example.org", [f"{USER1}@mx.rostfix.test"], b"Subject: r\r\n\r\nr\r\n")
    instance.wait_queue_empty()
