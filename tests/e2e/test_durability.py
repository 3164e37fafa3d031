"""Durability is tested, not asserted (issue 22 item 8; docs/queue-format.md "Writing and
naming", "Marking recipients done", "Moving between queues"; docs/local-delivery.md).

kill -9 keeps the page cache, so the crash test cannot see a missing fsync. These tests
record the system calls of smtpd, qmgr and local with strace while one message goes
through, and check the order that makes an acknowledgement safe against a power cut:

- smtpd: queue file data written -> that file fsync'ed -> renamed into incoming/ ->
  incoming/ fsync'ed -> "250 ... queued as ID" sent to the client;
- qmgr: incoming/ID renamed to active/ID -> active/ and incoming/ fsync'ed -> only then
  the delivery request for ID; a deferred message: active/ID renamed to deferred/ID ->
  deferred/ fsync'ed, then active/;
- local (a group commit, docs/performance.md): Maildir tmp/UNIQUE written -> fsync'ed
  -> linked to new/NAME (the name stamped with the queue id and the recipient's
  offset) -> new/ fsync'ed -> the reply to qmgr that says "Sent"; then qmgr writes the
  recipient's done mark into the queue file -> syncfs -> and only then moves the file
  on (here to deferred/: the message's other recipient was deferred).

A second test watches new/ with inotify while 200 messages are delivered: each file is
complete when it appears, and no file in new/ is ever written through new/.
"""

import ctypes
import os
import pwd
import re
import select
import shutil
import struct
import threading
from pathlib import Path

import pytest

import harness
from harness import USER1, USER2, wait_for
from syscall_trace import SyscallTrace

pytestmark = pytest.mark.skipif(shutil.which("strace") is None,
                                reason="strace missing: run tests/setup-deps.sh")

MARKER = "DURABILITY-MARKER-7c1e"
WRITES = ("write", "writev", "pwrite64", "pwritev")
SYNCS = ("fsync", "fdatasync")
RENAMES = ("rename", "renameat", "renameat2", "link", "linkat")


def _home(user):
    return Path(pwd.getpwnam(user).pw_dir)


def _data(call):
    """The bytes a write/sendto carried (strace's quoted string), as text."""
    return "".join(call.strings())


def _first(calls, what, pred, after=None, before=None):
    """The first successful call matching `pred` that starts after `after` ended and
    ends before `before` started; fails naming the step and the nearest candidates."""
    matching = [c for c in calls if c.ok and pred(c)]
    for c in matching:
        if after is not None and c.start < after.end:
            continue
        if before is not None and c.end > before.start:
            continue
        return c
    window = f"after {after}" if after else ""
    window += f" and before {before}" if before else ""
    shown = "\n  ".join(str(c) for c in matching[:8]) or "(none at all)"
    raise AssertionError(f"no {what} {window}; calls of that kind:\n  {shown}")


def _send_one(inst, recipients, body):
    """Sends one message over SMTP; returns the queue id from the 250 reply."""
    msg = (f"From: durability@example.org\r\nSubject: durability\r\n\r\n{body}").encode()
    with inst.smtp() as s:
        s.ehlo("durability.example.org")
        s.mail("durability@example.org")
        for rcpt in recipients:
            code, _ = s.rcpt(rcpt)
            assert code == 250, rcpt
        code, text = s.data(msg)
    assert code == 250, text
    return text.decode().rsplit(" ", 1)[-1]


@pytest.fixture(scope="module")
def traced(workdir):
    """One message to USER1 (delivered) and USER2 (deferred: Maildir is a plain file),
    sent while strace records the instance; yields (instance, queue id, calls)."""
    for user in harness.TEST_USERS:
        harness.reset_maildir(user)
    blocker = _home(USER2) / "Maildir"
    blocker.write_text("not a directory\n")
    inst = harness.Instance(workdir)
    try:
        inst.start()
        out = inst.base / "strace.out"
        with SyscallTrace(inst, out) as trace:
            body = f"{MARKER}\r\n" + "padding line\r\n" * 40
            qid = _send_one(inst, [f"{USER1}@mx.rostfix.test", f"{USER2}@mx.rostfix.test"],
                            body)
            wait_for(lambda: (inst.queue / "deferred" / qid).exists(), timeout=40,
                     what=f"{qid} to be delivered to {USER1} and deferred for {USER2}")
            # qmgr's one thread moves a message to deferred/ and syncs the directories
            # before it activates the next: a later message delivered and removed shows
            # that every call of the first one is in the trace.
            later = _send_one(inst, [f"{USER1}@mx.rostfix.test"], "a later message\r\n")
            wait_for(lambda: f"{later}: removed" in inst.log_text(),
                     what="a later message to be delivered and removed")
        calls = trace.calls()
        yield inst, qid, calls
    finally:
        blocker.unlink(missing_ok=True)
        inst.stop()
        inst.forget()
        if os.environ.get("ROSTFIX_KEEP") is None:
            shutil.rmtree(inst.base, ignore_errors=True)


def test_smtpd_acknowledges_after_file_rename_and_directory_are_synced(traced):
    inst, qid, calls = traced
    incoming = os.path.realpath(inst.queue / "incoming")
    ack = _first(calls, f"250 reply for {qid}",
                 lambda c: c.name in ("sendto", "write", "writev", "sendmsg")
                 and f"250 2.0.0 Ok: queued as {qid}" in _data(c))
    smtpd = ack.tid
    commit = _first(calls, f"rename of the temporary file to incoming/{qid}",
                    lambda c: c.tid == smtpd and c.name in RENAMES and len(c.strings()) >= 2
                    and c.strings()[1].endswith(f"incoming/{qid}"))
    temp_name = os.path.basename(commit.strings()[0])
    assert temp_name.startswith("tmp."), commit
    temp_path = f"{incoming}/{temp_name}"
    writes = [c for c in calls if c.tid == smtpd and c.name in WRITES and c.ok
              and c.fd_path == temp_path]
    assert any(MARKER in _data(c) for c in writes), \
        f"the message body was not written to {temp_path}: {[str(c) for c in writes]}"
    last_write = max(writes, key=lambda c: c.end)
    file_sync = _first(calls, f"fsync of {temp_path} between its last write and the rename",
                       lambda c: c.tid == smtpd and c.name in SYNCS and c.fd_path == temp_path,
                       after=last_write, before=commit)
    dir_sync = _first(calls, "fsync of incoming/ between the rename and the 250 reply",
                      lambda c: c.tid == smtpd and c.name in ("fsync", "syncfs")
                      and c.fd_path == incoming,
                      after=commit, before=ack)
    assert last_write.end <= file_sync.start < commit.start < dir_sync.start < ack.start


def test_qmgr_syncs_active_and_incoming_before_handing_the_message_to_local(traced):
    inst, qid, calls = traced
    active = os.path.realpath(inst.queue / "active")
    incoming = os.path.realpath(inst.queue / "incoming")
    activate = _first(calls, f"rename incoming/{qid} -> active/{qid}",
                      lambda c: c.name in RENAMES and len(c.strings()) >= 2
                      and c.strings()[0].endswith(f"incoming/{qid}")
                      and c.strings()[1].endswith(f"active/{qid}"))
    requests = [c for c in calls if c.ok and c.name in ("sendto", "write", "sendmsg")
                and f'"queue_id":"{qid}"' in _data(c)]
    assert requests, f"no delivery request for {qid} was traced"
    first_request = min(requests, key=lambda c: c.start)
    assert '"queue_name":"active"' in _data(first_request), first_request
    for directory in (active, incoming):
        _first(calls, f"fsync of {directory} after the activation and before the request",
               lambda c, d=directory: c.name == "fsync" and c.fd_path == d,
               after=activate, before=first_request)


def test_qmgr_syncs_target_then_source_when_deferring(traced):
    inst, qid, calls = traced
    active = os.path.realpath(inst.queue / "active")
    deferred = os.path.realpath(inst.queue / "deferred")
    move = _first(calls, f"rename active/{qid} -> deferred/{qid}",
                  lambda c: c.name in RENAMES and len(c.strings()) >= 2
                  and c.strings()[0].endswith(f"active/{qid}")
                  and c.strings()[1].endswith(f"deferred/{qid}"))
    target = _first(calls, "fsync of deferred/ after the move",
                    lambda c: c.tid == move.tid and c.name == "fsync" and c.fd_path == deferred,
                    after=move)
    _first(calls, "fsync of active/ after that of deferred/",
           lambda c: c.tid == move.tid and c.name == "fsync" and c.fd_path == active,
           after=target)
    # The reason for the deferral is in defer/ID, written in one block and synced.
    defer_log = os.path.realpath(inst.queue / "defer" / qid)
    block = _first(calls, f"write of {USER2}'s reason to defer/{qid}",
                   lambda c: c.name in WRITES and c.fd_path == defer_log
                   and f"recipient={USER2}@mx.rostfix.test" in _data(c))
    _first(calls, f"fsync of defer/{qid} after the block",
           lambda c: c.name in SYNCS and c.fd_path == defer_log, after=block)


def test_local_links_syncs_and_replies_then_qmgr_marks_done_and_syncs(traced):
    inst, qid, calls = traced
    queue_file = os.path.realpath(inst.queue / "active" / qid)
    maildir = os.path.realpath(_home(USER1) / "Maildir")
    link = _first(calls, f"link of {USER1}'s message from tmp/ into new/",
                  lambda c: c.name in RENAMES and len(c.strings()) >= 2
                  and c.strings()[1].startswith(f"{maildir}/new/"))
    local = link.tid
    tmp_path, new_path = link.strings()[0], link.strings()[1]
    assert tmp_path.startswith(f"{maildir}/tmp/"), \
        f"the message reached new/ from {tmp_path}, not from tmp/"
    # The name in new/ is stamped: a repeated delivery of this recipient finds it.
    m = re.fullmatch(rf"\d+\.M\d+Q{qid}_(\d+)\.mx\.rostfix\.test", os.path.basename(new_path))
    assert m, new_path
    offset = m.group(1)
    # Nothing is ever created or written under new/ directly.
    direct = [c for c in calls if c.name == "openat" and f"{maildir}/new/" in "".join(c.strings())]
    assert not direct, [str(c) for c in direct]
    writes = [c for c in calls if c.tid == local and c.name in WRITES and c.ok
              and c.fd_path == tmp_path]
    assert any(MARKER in _data(c) for c in writes), \
        f"the message was not written to {tmp_path}: {[str(c) for c in writes]}"
    last_write = max(writes, key=lambda c: c.end)
    _first(calls, f"fsync of {tmp_path} between its last write and the link",
           lambda c: c.tid == local and c.name in SYNCS and c.fd_path == tmp_path,
           after=last_write, before=link)
    new_sync = _first(calls, "fsync of new/ after the link",
                      lambda c: c.tid == local and c.name == "fsync"
                      and c.fd_path == f"{maildir}/new",
                      after=link)
    reply = _first(calls, "local's reply that the recipient was sent",
                   lambda c: c.tid == local and c.name in ("sendto", "write", "sendmsg")
                   and f'"offset":{offset},"status":"Sent"' in _data(c)
                   and c.start >= link.end)
    assert new_sync.end <= reply.start, \
        f"local told qmgr 'Sent' before new/ was synced:\n {new_sync}\n {reply}"
    # The agent marks nothing in a group commit: qmgr does, after the reply.
    early = [c for c in calls if c.tid == local and c.name in ("pwrite64", "pwritev")
             and c.fd_path == queue_file]
    assert not early, [str(c) for c in early]
    mark = _first(calls, f"the done mark ('D') written into {queue_file} at {offset}",
                  lambda c: c.name in ("pwrite64", "pwritev") and c.fd_path == queue_file
                  and c.strings() == ["D"] and c.args.rsplit(",", 1)[-1].strip() == offset)
    assert reply.start <= mark.start and new_sync.end <= mark.start, \
        f"the recipient was marked done before it was durable and reported:\n {mark}"
    mark_sync = _first(calls, "syncfs of the queue after the mark",
                       lambda c: c.tid == mark.tid and c.name == "syncfs", after=mark)
    moved = _first(calls, f"{qid} moved out of active/",
                   lambda c: c.name in RENAMES and c.strings()
                   and c.strings()[0].endswith(f"active/{qid}"), after=mark)
    assert mark_sync.end <= moved.start, \
        f"the file moved on before its mark was synced:\n {mark_sync}\n {moved}"


# -- a reader watching new/ with inotify -------------------------------------------------

IN_MODIFY = 0x002
IN_CLOSE_WRITE = 0x008
IN_MOVED_TO = 0x080
IN_CREATE = 0x100
IN_Q_OVERFLOW = 0x4000
_EVENT = struct.Struct("iIII")
TOTAL = 200
SENDERS = 4


class NewDirWatcher:
    """Reads every file the moment inotify reports it in new/; records writes seen
    through new/ (IN_MODIFY, IN_CLOSE_WRITE), which a tmp/-then-link delivery never
    causes."""

    def __init__(self, new_dir):
        self.new_dir = new_dir
        self.libc = ctypes.CDLL("libc.so.6", use_errno=True)
        self.fd = self.libc.inotify_init1(os.O_CLOEXEC)
        assert self.fd >= 0, os.strerror(ctypes.get_errno())
        mask = IN_CREATE | IN_MOVED_TO | IN_MODIFY | IN_CLOSE_WRITE
        wd = self.libc.inotify_add_watch(self.fd, str(new_dir).encode(), mask)
        assert wd >= 0, os.strerror(ctypes.get_errno())
        self.seen = {}
        self.written = []
        self.overflow = False
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop.is_set():
            ready, _, _ = select.select([self.fd], [], [], 0.2)
            if not ready:
                continue
            buf = os.read(self.fd, 1 << 16)
            pos = 0
            while pos < len(buf):
                _, mask, _, length = _EVENT.unpack_from(buf, pos)
                name = buf[pos + _EVENT.size: pos + _EVENT.size + length].rstrip(b"\0")
                pos += _EVENT.size + length
                if mask & IN_Q_OVERFLOW:
                    self.overflow = True
                if mask & (IN_MODIFY | IN_CLOSE_WRITE):
                    self.written.append((name.decode(), mask))
                if mask & (IN_CREATE | IN_MOVED_TO):
                    try:
                        self.seen[name.decode()] = (self.new_dir / name.decode()).read_bytes()
                    except OSError as e:
                        self.seen[name.decode()] = e

    def close(self):
        self.stop.set()
        self.thread.join(timeout=5)
        os.close(self.fd)


def _body(n):
    # Sizes from 8 to 64 KiB: a message written in place would be seen half-written.
    lines = [f"message {n:04d} line {i:05d} " + "x" * 40 for i in range(150 * (1 + n % 8))]
    return "\r\n".join(lines) + f"\r\nEND-OF-MESSAGE {n:04d}\r\n"


def _send_range(inst, numbers, errors):
    try:
        with inst.smtp() as s:
            s.ehlo("watch.example.org")
            for n in numbers:
                msg = (f"From: watch@example.org\r\nSubject: watch-{n:04d}\r\n\r\n"
                       + _body(n)).encode()
                s.sendmail("watch@example.org", [f"{USER1}@mx.rostfix.test"], msg)
    except Exception as e:  # noqa: BLE001 - reported by the test
        errors.append(repr(e))


def test_a_reader_watching_new_never_sees_a_partial_message(make_instance):
    inst = make_instance()
    maildir = _home(USER1) / "Maildir"
    user = pwd.getpwnam(USER1)
    for sub in ("", "tmp", "new", "cur"):
        (maildir / sub).mkdir(mode=0o700, exist_ok=True)
        os.chown(maildir / sub, user.pw_uid, user.pw_gid)
    watcher = NewDirWatcher(maildir / "new")
    try:
        errors = []
        threads = [threading.Thread(target=_send_range,
                                    args=(inst, range(i, TOTAL, SENDERS), errors))
                   for i in range(SENDERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not errors, errors
        wait_for(lambda: len(watcher.seen) >= TOTAL, timeout=60,
                 what=f"{TOTAL} messages to appear in new/")
    finally:
        watcher.close()
    assert not watcher.overflow, "inotify queue overflowed: events were lost"
    assert not watcher.written, f"files were written through new/: {watcher.written[:5]}"
    assert len(watcher.seen) == TOTAL, sorted(watcher.seen)[:5]
    numbers = set()
    for name, data in watcher.seen.items():
        assert isinstance(data, bytes), f"{name}: {data}"
        text = data.decode()
        head, sep, body = text.partition("\n\n")
        assert sep, f"{name}: no header/body separator when it appeared ({len(data)} bytes)"
        subject = [line for line in head.split("\n") if line.startswith("Subject: watch-")]
        assert len(subject) == 1, f"{name}: {head[:300]}"
        n = int(subject[0].removeprefix("Subject: watch-"))
        assert body == _body(n).replace("\r\n", "\n"), \
            f"{name} (message {n}) was incomplete when it appeared: {len(body)} bytes of body"
        assert (maildir / "new" / name).read_bytes() == data, f"{name} changed after it appeared"
        numbers.add(n)
    assert numbers == set(range(TOTAL))


def test_trace_parser_joins_split_calls():
    """The parser joins a call that strace split over two lines, and reads -yy paths."""
    from syscall_trace import parse
    calls = parse(
        '10 1.000000 fsync(7</q/incoming/tmp.1.1> <unfinished ...>\n'
        '11 1.000100 sendto(6<TCP:[127.0.0.1:25->127.0.0.1:4000]>, "250 ok\\r\\n", 8,'
        ' MSG_NOSIGNAL, NULL, 0) = 8 <0.000010>\n'
        '10 1.000500 <... fsync resumed>) = 0 <0.000500>\n'
        '10 1.000600 pwrite64(7</q/active/ABCDEF1>, "D", 1, 117) = 1 <0.000010>\n'
        '12 1.000700 sendto(6<UNIX-STREAM:[1->2,"/q/private/local"]>, "{}", 2, 0, NULL, 0)'
        ' = 2 <0.000010>\n')
    assert [c.name for c in calls] == ["fsync", "sendto", "pwrite64", "sendto"]
    fsync, sendto, mark, reply = calls
    assert fsync.fd_path == "/q/incoming/tmp.1.1" and fsync.end == pytest.approx(1.0005)
    assert sendto.fd_path == "TCP:[127.0.0.1:25->127.0.0.1:4000]"
    assert sendto.strings() == ["250 ok\r\n"]
    assert mark.strings() == ["D"] and mark.args.endswith("117")
    assert reply.fd_path == 'UNIX-STREAM:[1->2,"/q/private/local"]'
    assert reply.strings() == ["{}"]
    assert fsync.end > sendto.start, "the split fsync ended after the send started"
