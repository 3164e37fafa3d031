"""Concurrent delivery of 200 messages to one user (issue 5, "What must be shown" 2):
the mbox stays intact (Python's mailbox.mbox reads exactly 200 messages, each whole,
none interleaved with another) thanks to the dotlock + fcntl locks; the Maildir gets
200 files, each one whole."""

import mailbox
import threading

from harness import USER1, maildir_messages, wait_for
import pwd
from pathlib import Path

N = 200
THREADS = 8


def body(n):
    # Several lines, one of them an mbox trap, so interleaving or bad quoting shows.
    lines = [f"line {k} of message {n}" for k in range(20)]
    lines.insert(5, "From the middle of a line start")
    return (f"From: load@example.org\r\nSubject: msg {n}\r\nMessage-ID: <m{n}@example.org>\r\n\r\n"
            + "\r\n".join(lines) + "\r\n").encode()


def blast(inst, rcpt):
    def worker(start):
        with inst.smtp() as s:
            for n in range(start, N, THREADS):
                s.sendmail("load@example.org", [rcpt], body(n))
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def check_message(msg, n_seen, trap="From the middle of a line start"):
    n = int(msg["Subject"].split()[1])
    payload = msg.get_payload()
    lines = payload.splitlines()
    assert lines[5] == trap, payload
    others = [l for l in lines if l.startswith("line ")]
    assert others == [f"line {k} of message {n}" for k in range(20)], payload
    n_seen.append(n)


def test_mbox_200_concurrent(make_instance):
    inst = make_instance(main_extra={"home_mailbox": "Mailbox",
                                     "local_destination_concurrency_limit": "8"})
    box = Path(pwd.getpwnam(USER1).pw_dir) / "Mailbox"
    box.unlink(missing_ok=True)
    blast(inst, f"{USER1}@mx.rostfix.test")
    wait_for(lambda: box.exists() and box.read_bytes().count(b"\nSubject: msg ") == N,
             timeout=300, what=f"{N} messages in the mbox")
    inst.wait_queue_empty(timeout=120)
    msgs = list(mailbox.mbox(str(box)))
    assert len(msgs) == N
    seen = []
    for m in msgs:
        # mailbox.mbox does not undo the mboxrd quoting local added to the trap line.
        check_message(m, seen, trap=">From the middle of a line start")
    assert sorted(seen) == list(range(N))
    assert not (box.parent / "Mailbox.lock").exists()
    box.unlink()


def test_maildir_200_concurrent(make_instance):
    inst = make_instance(main_extra={"local_destination_concurrency_limit": "8"})
    blast(inst, f"{USER1}@mx.rostfix.test")
    wait_for(lambda: len(maildir_messages(USER1)) == N, timeout=300,
             what=f"{N} files in Maildir/new")
    seen = []
    for _, data in maildir_messages(USER1):
        check_message(mailbox.MaildirMessage(data), seen)
    assert sorted(seen) == list(range(N))
