"""Group commit of local deliveries (issue 18, "Local"): qmgr hands the local agent
several queued messages for one mailbox in one request; local stores each in the
Maildir, syncs new/ once for the batch, and qmgr records the done marks with one sync.

The crash test sends many messages to one user while the local agent is killed with
SIGKILL again and again; every accepted message must end up in the Maildir exactly
once. A batch cut short by a kill is sent again whole, and the copies its first
messages had stored are found under their stamped names (ARRIVAL.MMICROSQQUEUEID_
OFFSET.HOST) instead of being stored twice: this asserts exactly once, not "at most
one duplicate per kill". Dovecot then reads the Maildir those names are in."""

import os
import pwd
import random
import re
import signal
import smtplib
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from harness import USER1, free_port, maildir_messages, wait_for

TOTAL = int(os.environ.get("ROSTFIX_GROUP_MESSAGES", "1000"))
SENDERS = 8
KILLS = int(os.environ.get("ROSTFIX_GROUP_KILLS", "12"))
# Large enough that writing and syncing a batch takes a while, so kills land inside
# batches rather than between them.
BODY_LINES = 400


def message(n):
    body = "\r\n".join(f"line {k} of message {n} " + "x" * 60 for k in range(BODY_LINES))
    return (f"From: batch@example.org\r\nTo: {USER1}@mx.rostfix.test\r\n"
            f"Subject: group-commit-{n:05d}\r\n\r\n{body}\r\n").encode()


def send_range(instance, numbers, acked, errors):
    s = None
    for n in numbers:
        try:
            if s is None:
                s = instance.smtp()
                s.ehlo("batch.example.org")
            s.sendmail("batch@example.org", [f"{USER1}@mx.rostfix.test"], message(n))
            acked.add(n)  # only after the 250 reply to the end of DATA
        except (smtplib.SMTPException, OSError) as e:
            errors.append((n, repr(e)))
            s = None
    if s is not None:
        try:
            s.quit()
        except (smtplib.SMTPException, OSError):
            pass


def delivered_counts(folder="new"):
    counts = {}
    new = Path(pwd.getpwnam(USER1).pw_dir) / "Maildir" / folder
    for p in new.iterdir() if new.is_dir() else []:
        with open(p, "rb") as f:
            head = f.read(4096)
        m = re.search(rb"Subject: group-commit-(\d+)", head)
        assert m, (p, head[:300])
        n = int(m.group(1))
        counts[n] = counts.get(n, 0) + 1
    return counts


def local_pids(instance):
    return [pid for pid, name in instance.processes().items() if name == "local"]


def kill_locals(instance, stop, kills, total):
    """SIGKILLs every local agent process, up to KILLS times, at random moments while
    mail for the user is still being delivered (batches in progress)."""
    while len(kills) < KILLS and not stop.is_set():
        time.sleep(random.uniform(0.05, 0.3))
        if len(delivered_counts()) >= total:
            continue
        pids = local_pids(instance)
        if not pids:
            continue
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        kills.append((time.time(), pids))


@pytest.fixture
def batching(make_instance):
    return make_instance(main_extra={
        "rostfix_local_batch_limit": "32",
        # A killed agent counts as a failed delivery: do not let the mailbox stay
        # marked dead (minimal_backoff_time) longer than the harness's 5 s.
        "local_destination_concurrency_failed_cohort_limit": "0",
    })


def test_kill_9_of_local_mid_batch_delivers_every_message_exactly_once(batching):
    inst = batching
    acked, errors, kills = set(), [], []
    stop = threading.Event()
    killer = threading.Thread(target=kill_locals, args=(inst, stop, kills, TOTAL))
    killer.start()
    senders = [threading.Thread(target=send_range,
                                args=(inst, range(i, TOTAL, SENDERS), acked, errors))
               for i in range(SENDERS)]
    try:
        for t in senders:
            t.start()
        for t in senders:
            t.join(timeout=600)
        wait_for(lambda: len(kills) >= KILLS or len(delivered_counts()) >= len(acked),
                 timeout=300, interval=0.5, what="the kills")
    finally:
        stop.set()
        killer.join(timeout=30)
    assert len(acked) == TOTAL, f"every message accepted; errors: {errors[-5:]}"

    # Deferred batches come back after the backoff (5-10 s here).
    wait_for(lambda: len(delivered_counts()) >= TOTAL, timeout=300, interval=1,
             what="every accepted message in the Maildir")
    inst.wait_queue_empty(timeout=120)
    wait_for(lambda: not inst.queue_ids("deferred"), timeout=120, interval=1,
             what="the deferred queue to drain")
    time.sleep(1)
    counts = delivered_counts()
    lost = sorted(n for n in acked if n not in counts)
    duplicates = {n: c for n, c in counts.items() if c > 1}
    log = inst.log_text()
    found_again = log.count("from an earlier delivery attempt: not stored again")
    print(f"\ngroup commit crash test: {TOTAL} messages, {len(kills)} kills of local, "
          f"{found_again} copies found again by a retried batch, {len(lost)} lost, "
          f"{len(duplicates)} delivered twice")
    assert len(kills) >= KILLS // 2, f"the agent was killed only {len(kills)} times"
    assert not lost, f"accepted messages lost: {lost}"
    assert not duplicates, f"delivered more than once: {duplicates}"
    # Some kills landed inside a batch after it had stored copies: the retried batch
    # found them (the idempotent names were exercised, not merely present).
    assert found_again > 0, "no kill cut a batch short"
    for path, _ in maildir_messages(USER1):
        assert re.fullmatch(r"\d+\.M\d+Q[0-9A-F]+_\d+\.mx\.rostfix\.test", path.name), path


def test_a_batch_is_logged_and_dovecot_reads_the_stamped_maildir(make_instance, workdir):
    """A burst for one user goes in batches (qmgr logs each message as usual); then
    Dovecot's IMAP server lists every message and moves them from new/ to cur/ under
    the stamped names with its flags appended."""
    from test_lmtp import DOVECOT, PASSWORD, dovecot_conf
    if not Path(DOVECOT).exists() or not Path("/usr/lib/dovecot/imap").exists():
        pytest.skip("dovecot-imapd not installed (tests/setup-deps.sh)")
    inst = make_instance()
    n = 40
    acked, errors = set(), []
    threads = [threading.Thread(target=send_range, args=(inst, range(i, n, 4), acked, errors))
               for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(acked) == n, errors
    wait_for(lambda: len(delivered_counts()) == n, timeout=120, what=f"{n} messages")
    inst.wait_queue_empty(timeout=60)

    pw = pwd.getpwnam(USER1)
    d = Path(tempfile.mkdtemp(prefix="dovecot-", dir=workdir))
    d.chmod(0o755)
    imap_port = free_port()
    conf = dovecot_conf(d, str(d / "lmtp.sock"), imap_port, pw.pw_uid, pw.pw_gid)
    conf = conf.replace(f"mail_location = maildir:{d}/mail/%n",
                        f"mail_location = maildir:{pw.pw_dir}/Maildir")
    (d / "dovecot.conf").write_text(conf)
    (d / "users").write_text(
        f"{USER1}:{{PLAIN}}{PASSWORD}:{pw.pw_uid}:{pw.pw_gid}::{pw.pw_dir}::\n")
    proc = subprocess.Popen([DOVECOT, "-F", "-c", str(d / "dovecot.conf")],
                            stdout=subprocess.DEVNULL, stderr=open(d / "stderr", "wb"))
    try:
        import imaplib
        wait_for(lambda: proc.poll() is not None or _imap_up(imap_port), timeout=20,
                 what="Dovecot's IMAP port")
        assert proc.poll() is None, (d / "stderr").read_text()
        imap = imaplib.IMAP4("127.0.0.1", imap_port)
        imap.login(USER1, PASSWORD)
        typ, data = imap.select("INBOX")  # read-write: Dovecot moves new/ to cur/
        assert typ == "OK" and int(data[0]) == n, data
        _, found = imap.search(None, "ALL")
        subjects = set()
        for num in found[0].split():
            _, parts = imap.fetch(num, "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            subjects.add(parts[0][1].decode().strip())
        imap.logout()
        assert subjects == {f"Subject: group-commit-{k:05d}" for k in range(n)}
        cur = list((Path(pw.pw_dir) / "Maildir" / "cur").iterdir())
        assert len(cur) == n, "Dovecot took every message into cur/"
        for p in cur:
            assert re.fullmatch(r"\d+\.M\d+Q[0-9A-F]+_\d+\.mx\.rostfix\.test(,.*)?:2,.*",
                                p.name), p.name
        log = (d / "dovecot.log").read_text() if (d / "dovecot.log").exists() else ""
        assert not [line for line in log.splitlines()
                    if "Error" in line and "aildir" in line], log
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _imap_up(port):
    import socket
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            return s.recv(64).startswith(b"* OK")
    except OSError:
        return False
