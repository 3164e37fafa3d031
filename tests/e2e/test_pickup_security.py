"""pickup trusts nothing in a maildrop file that a local user could not ask for
(issue 12 items 7 and 10, issue 22 item 8; docs/queue-format.md, "maildrop files").

An ordinary user who reaches maildrop/ with the rostdrop group (as rostdrop runs, or
anyone the group's write access reaches) writes queue files by hand: forged attributes
(alias_expanded=1 to skip virtual_alias_maps, client and SASL identities, protocol,
rewrite_context, uid=0, an 8 MB attribute), a directory, a message over
message_size_limit. pickup must copy only what a local submitter may set, log a
non-file once and not loop over it, and refuse the oversized message."""

import grp
import os
import pwd
import re
import socket
import time

from harness import SETGID_GROUP, USER1, USER2, free_port, maildir_messages, wait_for

FORGED = [
    ("uid", "0"),
    ("alias_expanded", "1"),
    ("client_address", "203.0.113.9"),
    ("client_name", "forged.example"),
    ("sasl_username", "forgeduser"),
    ("protocol", "FORGEDPROTO"),
    ("rewrite_context", "remote"),
]
BIG_ATTR = 8 * 1024 * 1024


# -- the queue file format (docs/queue-format.md), written and read by hand ------------

def _varint(n):
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _record(rtype, payload):
    return rtype.encode() + _varint(len(payload)) + payload


def queue_file(sender, recipients, attrs, content):
    """A complete queue file, as rostdrop writes it, with whatever attributes we like."""
    out = _record("V", b"ROSTQ1")
    out += _record("T", str(int(time.time() * 1e6)).encode())
    out += _record("S", sender.encode())
    for name, value in attrs:
        out += _record("A", f"{name}={value}".encode())
    for rcpt in recipients:
        out += _record("R", f"{rcpt}\0{rcpt}\0".encode())
    out += _record("M", b"")
    for i in range(0, len(content), 65536):
        out += _record("N", content[i:i + 65536])
    return out + _record("E", b"")


def envelope_attrs(path):
    """{name: value} of a queue file's attribute records."""
    data = path.read_bytes()
    pos, attrs = 0, {}
    while pos < len(data):
        rtype = chr(data[pos])
        pos += 1
        n = shift = 0
        while True:
            byte = data[pos]
            pos += 1
            n |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        payload = data[pos:pos + n]
        pos += n
        if rtype == "A":
            name, value = payload.decode().split("=", 1)
            attrs[name] = value
        if rtype == "M":
            return attrs
    raise AssertionError(f"{path}: no 'M' record")


# -- acting as a local user with the maildrop group ------------------------------------

def as_drop_user(user, action):
    """Runs action() in a child with the user's uid and rostdrop as effective group,
    the credentials rostdrop runs with; fails the test if it raises."""
    pw = pwd.getpwnam(user)
    drop_gid = grp.getgrnam(SETGID_GROUP).gr_gid
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            os.setgroups([])
            os.setresgid(pw.pw_gid, drop_gid, drop_gid)
            os.setresuid(pw.pw_uid, pw.pw_uid, pw.pw_uid)
            action()
            status = 0
        finally:
            os._exit(status)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, f"action as {user} failed"


def drop_file(inst, user, name, data):
    """Writes maildrop/NAME as USER, complete before pickup can see its name."""
    maildrop = inst.queue / "maildrop"

    def write():
        tmp = maildrop / f"writing.{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.rename(tmp, maildrop / name)

    as_drop_user(user, write)


def poke_pickup(inst):
    """Any connection to public/pickup makes pickup scan maildrop/."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(str(inst.queue / "public" / "pickup"))
        s.sendall(b"\0")


def sendmail(inst, subject, user=USER1):
    message = f"Subject: {subject}\n\n{subject}\n".encode()
    inst._run([str(inst.bindir / "sendmail"), "-C", str(inst.conf), f"{user}@mx.rostfix.test"],
              user=user, input=message)


def delivered(user, subject):
    marker = f"Subject: {subject}\n".encode()
    return [data for _, data in maildir_messages(user) if marker in data]


# -- the tests -------------------------------------------------------------------------

def test_forged_maildrop_attributes_are_ignored(make_instance):
    closed = free_port()  # nothing listens: far@remote.test stays deferred
    inst = make_instance(start=False, main_extra={"relayhost": f"[127.0.0.1]:{closed}"})
    (inst.conf / "valias").write_text(f"fwd@rostfix.test {USER2}@mx.rostfix.test\n")
    main = inst.conf / "main.cf"
    main.write_text(main.read_text() + f"virtual_alias_maps = texthash:{inst.conf}/valias\n")
    inst.start()
    uid = pwd.getpwnam(USER1).pw_uid
    attrs = FORGED + [("junk", "Z" * BIG_ATTR), ("dsn_envid", "keep-me")]
    content = b"From: someone\nSubject: forged attributes\n\nbody\n"
    drop_file(inst, USER1, "ABCDEF0A1",
              queue_file(USER1, ["fwd@rostfix.test", "far@remote.test"], attrs, content))
    poke_pickup(inst)

    # alias_expanded=1 was not believed: qmgr expanded fwd@ to USER2.
    data = wait_for(lambda: delivered(USER2, "forged attributes"),
                    what="the virtual alias's delivery")[0]
    assert f"(Rostfix, from userid {uid})".encode() in data, data[:400]
    for forged in (b"userid 0)", b"forged.example", b"203.0.113.9", b"forgeduser",
                   b"FORGEDPROTO"):
        assert forged not in data, forged

    # The deferred copy's envelope holds only what pickup vouches for.
    deferred = wait_for(lambda: inst.queue_ids("deferred"), what="far@remote.test deferred")
    path = inst.queue / "deferred" / deferred[0]
    assert path.stat().st_size < 64 * 1024, "the 8 MB attribute was carried into the queue"
    attrs_now = envelope_attrs(path)
    assert attrs_now["uid"] == str(uid)
    assert attrs_now["rewrite_context"] == "local"
    assert attrs_now["dsn_envid"] == "keep-me"
    for name in ("client_address", "client_name", "sasl_username", "protocol", "junk"):
        assert name not in attrs_now, (name, attrs_now)

    log = inst.log_text()
    assert re.search(rf"pickup\[\d+\]: [0-9A-F]+: uid={uid} from=<{USER1}@", log), log[-3000:]
    assert not re.search(r"pickup\[\d+\]: [0-9A-F]+: uid=0 from=", log)
    assert f"uid={uid}: ignoring attribute record: alias_expanded=1" in log
    assert f"uid={uid}: ignoring attribute record: client_address=203.0.113.9" in log
    assert re.search(rf"uid={uid}: ignoring attribute record of {BIG_ATTR + 5} bytes", log)


def test_directory_in_maildrop_is_logged_once(instance):
    maildrop = instance.queue / "maildrop"

    def make_dirs():
        os.mkdir(maildrop / "ABCDEF0D1", 0o700)
        (maildrop / "ABCDEF0D1" / "inside").write_bytes(b"x")
        os.mkdir(maildrop / "ABCDEF0D2", 0o700)

    as_drop_user(USER1, make_dirs)
    # Three scans that certainly saw both directories: each message below made one.
    for i in range(3):
        poke_pickup(instance)
        sendmail(instance, f"scan {i}")
        wait_for(lambda: delivered(USER1, f"scan {i}"), what=f"message {i}")
    log = instance.log_text()
    stuck = [line for line in log.splitlines() if "maildrop/ABCDEF0D1" in line]
    empty = [line for line in log.splitlines() if "maildrop/ABCDEF0D2" in line]
    assert len(stuck) == 1, stuck
    assert "not a regular file (directory)" in stuck[0] and "ignoring it from now on" in stuck[0]
    assert len(empty) == 1 and empty[0].endswith("not a regular file (directory); removed"), empty
    assert not (maildrop / "ABCDEF0D2").exists()
    assert not os.listdir(instance.queue / "corrupt")


def test_maildrop_message_over_size_limit_is_not_delivered(make_instance):
    inst = make_instance(main_extra={"message_size_limit": "100000"})
    body = b"Subject: too big\n\n" + b"x" * 80 + b"\n"
    content = body * (200_000 // len(body))
    drop_file(inst, USER1, "ABCDEF0B1", queue_file(USER1, [USER1], [], content))
    poke_pickup(inst)
    line = wait_for(lambda: next((l for l in inst.log_text().splitlines()
                                  if "maildrop/ABCDEF0B1" in l and "too big" in l), None),
                    what="pickup's verdict on the big message")
    uid = pwd.getpwnam(USER1).pw_uid
    assert re.search(rf"warning: maildrop/ABCDEF0B1: uid={uid} from=<{USER1}@[^>]+>: message "
                     r"file too big \(over message_size_limit 100000 bytes\); not queued, "
                     r"removed$", line), line
    # A later message goes through; the big one never does.
    sendmail(inst, "after")
    wait_for(lambda: delivered(USER1, "after"), what="the next message")
    assert not delivered(USER1, "too big")
    assert not (inst.queue / "maildrop" / "ABCDEF0B1").exists()
    assert not os.listdir(inst.queue / "corrupt")
