"""Bounce classification, the JSON delivery log and the suppression list (issue 19,
docs/bulk-sending.md).

1. A 5.1.1 from a sink puts the address on the suppression list; the next message to it
   is not tried (the sink sees no RCPT for it) and is refused at RCPT
   (rostfix_suppression_action = reject) or bounced by qmgr (bounce); `rostsuper -S
   remove` takes it off and mail goes again.
2. A campaign of 10 000 messages (Postfix's smtp-source) to sinks that accept, answer
   550 5.1.1, 452 4.2.2, 421 4.7.0 rate limited, 554 5.7.1 spam, fail STARTTLS, and a
   port where nothing listens: the JSON delivery log parses line by line, has one
   record per attempt (as many as the mail log has delivery lines), each with the class
   of its sink's behaviour, and the counts add up."""

import json
import os
import re
import subprocess
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from harness import USER1, free_port, wait_for, write_table
from postfix_tools import postfix_tools
from smtpsink import Sink

UNKNOWN = "550 5.1.1 <{}>: Recipient address rejected: User unknown in local recipient table"


def table(workdir, name, lines):
    return write_table(workdir, name, lines)


def records(path):
    """Every line of the JSON delivery log, parsed (a line that is not JSON fails)."""
    if not path.exists():
        return []
    out = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        assert line.strip(), f"empty line {n}"
        out.append(json.loads(line))
    return out


def suppressed(inst):
    proc = inst.cmd("rostsuper", "-S", "list")
    return [l.split("\t")[0] for l in proc.stdout.decode().splitlines() if l.strip()]


@pytest.mark.parametrize("action", ["reject", "bounce"])
def test_hard_bounce_suppresses_until_removed(make_instance, workdir, action):
    port = free_port()
    gone, ok = "gone@remote.test", "ok@remote.test"
    transport = table(workdir, "transport", [("remote.test", f"smtp:[127.0.0.1]:{port}")])
    jlog = Path(tempfile.mkdtemp(prefix="jlog-", dir=workdir)) / "delivery.json"
    inst = make_instance(main_extra={
        "transport_maps": f"texthash:{transport}",
        "rostfix_suppression_action": action,
        "rostfix_delivery_log": str(jlog),
    })
    sink = Sink(port, rcpt_replies={gone: UNKNOWN.format(gone)})
    sender = f"{USER1}@rostfix.test"
    try:
        with inst.smtp() as s:
            s.sendmail(sender, [gone, ok], b"Subject: one\r\n\r\nfirst\r\n")
        wait_for(lambda: gone in suppressed(inst), timeout=30,
                 what="the 5.1.1 to put the address on the suppression list")
        assert sink.rcpts_seen.count(gone) == 1
        listing = inst.cmd("rostsuper", "-S", "list").stdout.decode()
        assert re.search(r"gone@remote\.test\texpires \d{4}-\d\d-\d\d .*\tbad-mailbox 5\.1\.1 ",
                         listing), listing
        first = [r for r in records(jlog) if r["recipient"] == gone]
        assert [(r["status"], r["dsn"], r["class"]) for r in first] == \
            [("bounced", "5.1.1", "bad-mailbox")]
        assert "User unknown in local recipient table" in first[0]["reply"]
        assert re.search(r"to=<gone@remote\.test>.*status=bounced \(.*\) class=bad-mailbox",
                         inst.log_text())
        inst.wait_queue_empty()

        # The next message: never tried at the sink.
        with inst.smtp() as s:
            refused = s.sendmail(sender, [gone, "ok2@remote.test"],
                                 b"Subject: two\r\n\r\nsecond\r\n")
        if action == "reject":
            assert refused == {gone: (550, b"5.1.1 <gone@remote.test>: Recipient address "
                                            b"suppressed after hard bounce")}, refused
            assert re.search(r"NOQUEUE: reject: RCPT from .*: 550 5\.1\.1 <gone@remote\.test>: "
                             r"Recipient address suppressed after hard bounce;", inst.log_text())
        else:
            assert refused == {}
            wait_for(lambda: any(r["recipient"] == gone and r["class"] == "suppressed"
                                 for r in records(jlog)),
                     timeout=30, what="qmgr to bounce the suppressed recipient")
            assert re.search(r"to=<gone@remote\.test>, relay=none, .*dsn=5\.1\.1, status=bounced "
                             r"\(Recipient address suppressed after hard bounce\) class=suppressed",
                             inst.log_text())
        wait_for(lambda: sink.for_rcpt("ok2@remote.test"), timeout=30, what="ok2 delivered")
        inst.wait_queue_empty()
        assert sink.rcpts_seen.count(gone) == 1, sink.rcpts_seen

        # Taken off the list (and the mailbox exists again): mail goes.
        out = inst.cmd("rostsuper", "-S", "remove", "GONE@remote.test")
        assert b"removed from the suppression list" in out.stderr
        assert gone not in suppressed(inst)
        del sink.rcpt_replies[gone]
        with inst.smtp() as s:
            assert s.sendmail(sender, [gone], b"Subject: three\r\n\r\nthird\r\n") == {}
        wait_for(lambda: sink.for_rcpt(gone), timeout=30, what="delivery after removal")
        assert sink.rcpts_seen.count(gone) == 2
        # The sink has the message before qmgr hears the smtp client's result and logs it.
        inst.wait_queue_empty()
        sent = [r for r in records(jlog) if r["recipient"] == gone and r["status"] == "sent"]
        assert len(sent) == 1 and sent[0]["class"] == "delivered"
    finally:
        sink.stop()


def test_suppression_command_usage(make_instance):
    inst = make_instance(main_extra={"rostfix_suppression_action": "bounce"})
    inst.cmd("rostsuper", "-S", "add", "<A@Example.test>", "b@example.test")
    assert suppressed(inst) == ["a@example.test", "b@example.test"]
    # The list file belongs to mail_owner, like the rest of the queue.
    st = os.stat(inst.queue / "suppress" / "list")
    assert st.st_uid == os.stat(inst.queue / "incoming").st_uid
    out = inst.cmd("rostsuper", "-S", "remove", "nobody@example.test")
    assert b"not on the suppression list" in out.stderr
    for argv in (["-S"], ["-S", "add"], ["-S", "list", "x@y"], ["-S", "purge", "x@y"],
                 ["-S", "list", "-d", "ALL"]):
        proc = inst.cmd("rostsuper", *argv, check=False)
        assert proc.returncode == 64, (argv, proc)
        assert b"usage: rostsuper" in proc.stderr
    help_text = inst.cmd("rostsuper", "--help").stdout.decode()
    assert "-S remove address..." in help_text
    bad = inst.cmd("rostsuper", "-S", "add", "two words", check=False)
    assert bad.returncode != 0 and b"not a valid address" in bad.stderr


# -- the campaign ----------------------------------------------------------------------

# Domain -> (messages, expected status of the first attempt, expected class).
CAMPAIGN = {
    "ok.test": (5000, "sent", "delivered"),
    "unknown.test": (1000, "bounced", "bad-mailbox"),
    "full.test": (1000, "deferred", "quota"),
    "rate.test": (1000, "deferred", "rate-limited"),
    "spam.test": (1000, "bounced", "policy"),
    "dead.test": (500, "deferred", "network"),
    "tls.test": (500, "deferred", "tls"),
}


def tool_env(pfx):
    return {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C",
            "LD_LIBRARY_PATH": str(pfx / "usr/lib/postfix")}


def test_campaign_delivery_log_classes(make_instance, workdir):
    pfx = postfix_tools()
    assert sum(n for n, _, _ in CAMPAIGN.values()) == 10_000
    ports = {d: free_port() for d in CAMPAIGN}
    sinks = {
        "ok.test": Sink(ports["ok.test"]),
        "unknown.test": Sink(ports["unknown.test"],
                             rcpt_reply="550 5.1.1 The email account that you tried to "
                                        "reach does not exist."),
        "full.test": Sink(ports["full.test"],
                          rcpt_reply="452 4.2.2 The email account that you tried to reach "
                                     "is over quota."),
        "rate.test": Sink(ports["rate.test"],
                          mail_reply="421 4.7.0 [TSS04] Messages temporarily deferred due "
                                     "to unexpected volume; rate limited, try again later"),
        "spam.test": Sink(ports["spam.test"],
                          data_reply="554 5.7.1 Message rejected: likely unsolicited mail "
                                     "(spam blocked)"),
        "tls.test": Sink(ports["tls.test"], broken_tls=True),
        # dead.test: nothing listens on its port.
    }
    tables = Path(tempfile.mkdtemp(prefix="tables-", dir=workdir))
    os.chmod(tables, 0o755)
    transport = tables / "transport"
    # Non-delivery notices to the campaign's sender are discarded here.
    transport.write_text("".join(f"{d} smtp:[127.0.0.1]:{p}\n" for d, p in ports.items())
                         + "campaign.test discard:notices not wanted\n")
    policy = tables / "tls_policy"
    policy.write_text(f"[127.0.0.1]:{ports['tls.test']} encrypt\n")
    for f in (transport, policy):
        os.chmod(f, 0o644)
    jlog = tables / "delivery.json"
    inst = make_instance(main_extra={
        "transport_maps": f"texthash:{transport}",
        "smtp_tls_policy_maps": f"texthash:{policy}",
        "rostfix_delivery_log": str(jlog),
        # Deferred mail is retried during the run (each retry is one more record),
        # but not so often that retries crowd out the first attempts.
        "minimal_backoff_time": "10s",
        "maximal_backoff_time": "20s",
        "queue_run_delay": "10s",
        "smtp_connect_timeout": "5s",
    })
    try:
        started = time.monotonic()
        procs = []
        for domain, (count, _, _) in CAMPAIGN.items():
            procs.append(subprocess.Popen(
                [str(pfx / "usr/sbin/smtp-source"), "-s", "5", "-m", str(count), "-N",
                 "-f", "news@campaign.test", "-t", f"user@{domain}", "-M", "campaign.test",
                 f"127.0.0.1:{inst.port}"],
                env=tool_env(pfx), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
        for p in procs:
            _, err = p.communicate(timeout=150)
            assert p.returncode == 0, err
        injected = time.monotonic() - started

        def first_attempts():
            return len({r["queue_id"] for r in records(jlog)
                        if r["recipient"].rsplit("@", 1)[1] in CAMPAIGN})

        try:
            wait_for(lambda: first_attempts() >= 10_000, timeout=150, interval=2,
                     what="a first attempt for every message")
        except AssertionError as e:
            # The count when the wait gave up, not when it began.
            raise AssertionError(f"{e} (have {first_attempts()})") from None

        def retried_domains():
            attempts = Counter((r["queue_id"], r["recipient"]) for r in records(jlog))
            return {rcpt.rsplit("@", 1)[1] for (_, rcpt), n in attempts.items() if n > 1}

        deferring = {d for d, (_, status, _) in CAMPAIGN.items() if status == "deferred"}
        wait_for(lambda: deferring <= retried_domains(), timeout=120, interval=2,
                 what="a second attempt at each deferring sink")
        elapsed = time.monotonic() - started
        # Stopped, so that no retry runs between reading the two logs.
        inst.stop()
        recs = [r for r in records(jlog) if r["recipient"].rsplit("@", 1)[1] in CAMPAIGN]
        log = inst.log_text()
    finally:
        for s in sinks.values():
            s.stop()

    by_domain = defaultdict(list)
    for r in recs:
        by_domain[r["recipient"].rsplit("@", 1)[1]].append(r)
        for field in ("time", "unix_time", "queue_id", "sender", "recipient",
                      "orig_recipient", "status", "dsn", "class", "relay", "reply", "delay"):
            assert field in r, (field, r)
        assert r["sender"] == "news@campaign.test"
    assert set(by_domain) == set(CAMPAIGN), set(by_domain)
    for domain, (count, status, cls) in CAMPAIGN.items():
        rs = by_domain[domain]
        per_message = Counter(r["queue_id"] for r in rs)
        # Every message of the domain was attempted; one recipient each.
        assert len(per_message) == count, (domain, len(per_message))
        wrong = [r for r in rs if (r["status"], r["class"]) != (status, cls)]
        assert not wrong, (domain, wrong[:3])
        if status != "deferred":
            # Final at the first attempt: exactly one record per message.
            assert set(per_message.values()) == {1}, (domain, Counter(per_message.values()))
    # One record per attempt: as many records as delivery lines in the mail log, and
    # each delivery line carries the same class as its record.
    lines = re.findall(r"\]: ([0-9A-F]+): to=<([^>]*)>, .* class=([a-z-]+)$", log, re.M)
    line_count = Counter((q, to, c) for q, to, c in lines if to.split("@")[-1] in CAMPAIGN)
    rec_count = Counter((r["queue_id"], r["recipient"], r["class"]) for r in recs)
    assert line_count == rec_count
    # Counts add up at the receiving ends too.
    assert len(sinks["ok.test"].messages) == 5000
    # Deferred messages were tried again, each attempt a record of its own.
    for domain in deferring:
        assert max(Counter(r["queue_id"] for r in by_domain[domain]).values()) >= 2, domain
    assert not any("tls" in r for r in by_domain["ok.test"])
    assert all("delays" in r for r in by_domain["ok.test"])
    assert len(set(sinks["unknown.test"].rcpts_seen)) == 1000
    assert not sinks["rate.test"].senders
    print(f"10000 messages: injected in {injected:.0f}s, all attempted in {elapsed:.0f}s; "
          f"{len(recs)} records: {Counter(r['class'] for r in recs)}")
