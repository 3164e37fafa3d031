"""Privilege separation is real: users, chroot roots and capabilities seen in /proc; and
master restarts a killed smtpd."""

import os
import pwd
import signal
import socket

from harness import MAIL_OWNER, wait_for
from harness import USER1


def proc_status(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def uids(pid):
    return [int(x) for x in proc_status(pid)["Uid"].split()]


def confined(pid, owner, name, timeout=10.0):
    """Waits until `pid` runs with every uid = owner: True, or False if it exited
    meanwhile; fails if it is still running with another uid after `timeout`."""
    def state():
        try:
            return "confined" if set(uids(pid)) == {owner} else None
        except FileNotFoundError:
            return "gone"
    return wait_for(state, timeout=timeout, what=f"{name}[{pid}] to drop to uid {owner}") == "confined"


def caps(pid):
    st = proc_status(pid)
    return {k: int(st[k], 16) for k in ("CapEff", "CapPrm", "CapInh", "CapAmb")}


def open_session(instance):
    """A client mid-session, so an smtpd is certainly busy."""
    s = socket.create_connection(("127.0.0.1", instance.port), timeout=10)
    assert s.recv(512).startswith(b"220")
    s.sendall(b"EHLO probe.example.org\r\n")
    assert b"250" in s.recv(4096)
    return s


def test_processes_confined_as_configured(instance):
    owner = pwd.getpwnam(MAIL_OWNER).pw_uid
    client = open_session(instance)
    try:
        # qmgr and pickup start on master's wake-up triggers.
        procs = wait_for(
            lambda: (lambda p: p if {"master", "smtpd", "qmgr", "pickup"} <= set(p.values()) else None)(
                instance.processes()),
            what="master, smtpd, qmgr and pickup to run")
        seen = set()
        for pid, name in procs.items():
            seen.add(name)
            if name == "master":
                root = os.readlink(f"/proc/{pid}/root")
                assert uids(pid)[0] == 0, "master runs as root"
                assert root == "/"
                continue
            if name in ("smtpd", "pickup", "bounce", "smtp"):
                # chroot=y, unpriv=y in master.cf. A process master has just forked may
                # still be initializing as root (reading tables and the password file
                # before chroot); it must be confined before it serves anyone, so wait
                # for that instead of judging it mid-start.
                if not confined(pid, owner, name):
                    continue
                root = os.readlink(f"/proc/{pid}/root")
                assert root == str(instance.queue), f"{name}[{pid}] root is {root}"
            elif name == "qmgr":
                # chroot=n, unpriv=y
                if not confined(pid, owner, name):
                    continue
                assert os.readlink(f"/proc/{pid}/root") == "/"
            elif name == "local":
                # unpriv=n: stays root to deliver as each recipient
                assert uids(pid)[0] == 0
                continue
            else:
                continue
            assert all(v == 0 for v in caps(pid).values()), f"{name}[{pid}] holds capabilities {caps(pid)}"
        assert {"master", "smtpd", "qmgr"} <= seen
    finally:
        client.close()


def test_killed_smtpd_is_replaced(instance):
    client = open_session(instance)
    smtpds = [pid for pid, name in instance.processes().items() if name == "smtpd"]
    assert smtpds, "an smtpd serves the open session"
    for pid in smtpds:
        os.kill(pid, signal.SIGKILL)
    # The killed session is gone ...
    client.settimeout(10)
    try:
        client.sendall(b"NOOP\r\n")
        assert client.recv(512) == b""
    except ConnectionResetError:
        pass
    client.close()
    # ... and the next client is served by a new smtpd, end to end.
    with instance.smtp() as s:
        s.sendmail("alice@example.org", [f"{USER1}@mx.rostfix.test"],
                   b"Subject: after kill\r\n\r\nstill here\r\n")
    new = [pid for pid, name in instance.processes().items() if name == "smtpd"]
    assert new and not set(new) & set(smtpds)
