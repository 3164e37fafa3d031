"""After `rostfix reload` the wake-up triggers go to the new queue manager, not to the
old one that is only finishing its deliveries in flight.

The old qmgr's acceptor thread used to stay blocked in accept on public/qmgr after the
reload; it took master's post-reload wake-up and the triggers of new mail, ignored
them (it was stopping), and master saw no client waiting, so it started no new qmgr.
New mail then sat in incoming/ until some later trigger (qmgr's wakeup is 300 s).
Found by test_full_disk.py, which reloads while deliveries are held."""

import os
import re

from harness import free_port, wait_for
from holdsink import HoldingSink

HOLD = 6


def send(inst, tag):
    with inst.smtp() as s:
        s.ehlo("client.example.org")
        s.mail("reload@example.org")
        s.rcpt("someone@far.test")
        code, text = s.data(f"Subject: reload-trigger {tag}\r\n\r\nbody\r\n".encode())
    assert code == 250, text
    return text.decode().rsplit(" ", 1)[-1]


def activated_by(inst, qid):
    """The pid of the qmgr that logged `qid` entering active/, or None yet."""
    m = re.search(rf"qmgr\[(\d+)\]: {qid}: from=<reload@example\.org>, .*\(queue active\)\n",
                  inst.log_text())
    return m and m.group(1)


def listening_socket_inode(path):
    """The inode of the unix socket listening at `path` (/proc/net/unix)."""
    with open("/proc/net/unix") as f:
        next(f)
        for line in f:
            fields = line.split()
            # Flags 00010000: __SO_ACCEPTCON, a listening socket.
            if len(fields) == 8 and fields[7] == str(path) and fields[3] == "00010000":
                return fields[6]
    return None


def holds_socket(pid, inode):
    fd_dir = f"/proc/{pid}/fd"
    for fd in os.listdir(fd_dir):
        try:
            if os.readlink(f"{fd_dir}/{fd}") == f"socket:[{inode}]":
                return True
        except OSError:
            pass
    return False


def test_mail_after_a_reload_is_taken_in_while_the_old_qmgr_finishes(make_instance):
    port = free_port()
    sink = HoldingSink(port)
    try:
        inst = make_instance(main_extra={
            "relayhost": f"[127.0.0.1]:{port}",
            "smtp_helo_timeout": f"{HOLD}s",
            "minimal_backoff_time": "60s",
            "maximal_backoff_time": "60s",
        })
        first = send(inst, "before")
        old_qmgr = wait_for(lambda: activated_by(inst, first), timeout=10,
                            what="the first message in active/")
        wait_for(lambda: sink.held >= 1, timeout=10, what="its delivery to be in flight")
        inst.cmd("rostfix", "reload")
        # The old generation notices the reload (silently, as Postfix's qmgr: a routine
        # reload logs nothing alarming) and lets go of the trigger socket (master keeps
        # it open).
        inode = listening_socket_inode(inst.queue / "public" / "qmgr")
        assert inode is not None
        wait_for(lambda: not holds_socket(int(old_qmgr), inode), timeout=10,
                 what="the old qmgr to notice the reload and close its copy of public/qmgr")
        assert os.path.isdir(f"/proc/{old_qmgr}"), "the old qmgr is still finishing"
        second = send(inst, "after")
        # Well before the old qmgr's delivery can end (HOLD seconds).
        new_qmgr = wait_for(lambda: activated_by(inst, second), timeout=HOLD / 2,
                            what="a new qmgr to take in the mail sent after the reload")
        assert new_qmgr != old_qmgr
        assert os.path.isdir(f"/proc/{old_qmgr}"), "taken in while the old one finishes"
    finally:
        sink.stop()
