"""`rostfix reload` while mail flows: every acknowledged message is delivered exactly once.

On reload master drops the old qmgr's status pipe: the old qmgr finishes the deliveries
it has in flight, and a new qmgr starts at once and recovers active/. The new one must
leave alone the files the old one still owns (qmgr holds an exclusive lock on each
message it has in active/), or it delivers them a second time.

Mail goes to an alias whose command takes a moment (as a real pipe delivery does), so
that every reload finds deliveries in flight.

The default size is one round of 20 reloads during about 20 seconds of load;
ROSTFIX_RELOAD_ROUNDS / ROSTFIX_RELOAD_SECONDS give the full size of docs/reliability.md
(three rounds of 20 reloads in 40 s).
"""

import os
import re
import smtplib
import threading
import time
from pathlib import Path

import pytest

from harness import wait_for

ROUNDS = int(os.environ.get("ROSTFIX_RELOAD_ROUNDS", "1"))
SECONDS = float(os.environ.get("ROSTFIX_RELOAD_SECONDS", "20"))
RELOADS = 20
SENDERS = 4
# Each sender's pause between messages: about 30 messages a second in all, which the
# slow alias (20 at once, 0.3 s each) keeps up with, so the queue stays short and every
# reload finds deliveries in flight rather than a backlog.
PAUSE = 0.12
RCPT = "slow@mx.rostfix.test"


@pytest.fixture
def slow_site(make_instance, workdir):
    inst = make_instance(start=False, main_extra={
        "local_destination_concurrency_limit": "20",
        "local_recipient_maps": "",  # the alias is known to local only
    })
    out = Path(inst.base) / "delivered"
    out.mkdir()
    os.chmod(out, 0o1777)  # the command runs as default_privs
    aliases = inst.conf / "aliases"
    aliases.write_text(f'slow: "|sleep 0.3; cat > $(mktemp -p {out} msg.XXXXXX)"\n')
    inst.cmd("rostmap", "-a", f"hash:{aliases}")
    main = (inst.conf / "main.cf").read_text()
    (inst.conf / "main.cf").write_text(main.replace(f"texthash:{aliases}", f"hash:{aliases}"))
    inst.start()
    return inst, out


def message(n):
    return (f"From: reload@example.org\r\nTo: {RCPT}\r\n"
            f"Subject: reload-test-{n:05d}\r\n\r\nmessage {n}\r\n").encode()


def sender(instance, first, step, acked, lock, stop, errors):
    """Sends messages first, first+step, ... until stopped; records the 250s."""
    s = None
    n = first
    while not stop.is_set():
        try:
            if s is None:
                s = instance.smtp()
                s.ehlo("reload.example.org")
            s.sendmail("reload@example.org", [RCPT], message(n))
            with lock:
                acked.add(n)
            n += step
            time.sleep(PAUSE)
        except (smtplib.SMTPException, OSError) as e:
            errors.append((n, repr(e)))
            s = None
            n += step  # a refused number is never retried, so it cannot count twice
            time.sleep(0.05)
    if s is not None:
        try:
            s.quit()
        except (smtplib.SMTPException, OSError):
            pass


def delivered_counts(out, strict=False):
    """{message number: copies delivered}; a copy still being written is skipped
    unless `strict` (once the queue is empty, every copy is complete)."""
    counts = {}
    for path in out.iterdir():
        data = path.read_bytes()
        m = re.search(rb"Subject: reload-test-(\d+)", data)
        if not m and not strict:
            continue
        assert m, data[:300]
        n = int(m.group(1))
        counts[n] = counts.get(n, 0) + 1
    return counts


def one_round(instance, base):
    acked = set()
    lock = threading.Lock()
    errors = []
    stop = threading.Event()
    threads = [threading.Thread(target=sender,
                                args=(instance, base + i, SENDERS, acked, lock, stop, errors))
               for i in range(SENDERS)]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: len(acked) >= 10, timeout=60, what="mail to flow before the reloads")
        pause = SECONDS / RELOADS
        for _ in range(RELOADS):
            time.sleep(pause)
            instance.cmd("rostfix", "reload")
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    return acked, errors


def test_reloads_under_load_deliver_each_message_once(slow_site):
    instance, out = slow_site
    all_acked = set()
    for r in range(ROUNDS):
        acked, errors = one_round(instance, base=r * 100000)
        all_acked |= acked
        assert acked, f"nothing was accepted in round {r}; errors: {errors[-5:]}"
    wait_for(lambda: all_acked <= set(delivered_counts(out)), timeout=180,
             what="every acknowledged message to be delivered")
    instance.wait_queue_empty(timeout=120)
    counts = delivered_counts(out, strict=True)
    lost = sorted(n for n in all_acked if n not in counts)
    duplicates = {n: c for n, c in counts.items() if c > 1}
    unexpected = sorted(n for n in counts if n not in all_acked)
    print(f"\nreload test: {ROUNDS} x {RELOADS} reloads in {SECONDS:.0f}s; "
          f"{len(all_acked)} acknowledged, {sum(counts.values())} delivered, "
          f"{len(duplicates)} delivered more than once {sorted(duplicates)[:20]}; "
          f"{len(unexpected)} delivered without a 250")
    assert not lost, f"acknowledged messages lost: {lost[:20]}"
    assert not duplicates, f"delivered more than once: {duplicates}"
    log = instance.log_text()
    assert "cannot update queue file" not in log, "an agent lost its queue file under it"
    assert "cannot mark recipient" not in log, "an agent lost its queue file under it"
