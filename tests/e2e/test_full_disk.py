"""A full queue file system, for real (issue 22 item 4; docs/reliability.md "Full queue
file system").

The queue lives on a small ext4 made for the test (a loop-mounted image, no blocks
reserved for root, so that root's filler and the unprivileged daemons see the same
free space). A root-owned filler file takes the space away and gives it back. Mail goes
to a relayhost on loopback that holds each connection without a greeting (so every
delivery is deferred after smtp_helo_timeout and the messages stay queued, where the
disk is) until the last phase, when it accepts mail.

1. queue_minfree: MAIL is accepted just above it and refused with exactly
   `452 4.3.1 Insufficient system storage` just below it, while megabytes are still
   free (refused before the disk is full).
2. queue_minfree = 0 (reload) and a small message_size_limit: sessions that passed MAIL
   while there was room send more DATA than fits. Every end of DATA answers 250 or
   452 4.3.1, nothing else; then MAIL is refused by the 1.5 x message_size_limit rule.
3. No free block, and no room left in deferred/'s directory block: the messages that
   were acknowledged are flushed into active/, their delivery is deferred and qmgr
   cannot move them back to deferred/ (ENOSPC on the rename). They stay locked in
   active/ and are retried.
4. The filler goes: without a restart qmgr moves them to deferred/, and once the
   relayhost answers every acknowledged message is delivered exactly once, and no
   refused one.
"""

import errno
import os
import re
import shutil
import smtplib
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from harness import free_port, wait_for
from holdsink import HoldingSink

FS_SIZE = 32 * 1024 * 1024
MINFREE = 4 * 1024 * 1024
SIZE_LIMIT = 128 * 1024
BODY_SIZE = 100 * 1024
HELO_TIMEOUT = 3
BACKOFF = 15
REFUSED = (452, b"4.3.1 Insufficient system storage")
RCPT = "someone@far.test"


pytestmark = pytest.mark.skipif(
    shutil.which("mkfs.ext4") is None or shutil.which("losetup") is None,
    reason="mkfs.ext4 or losetup missing: run tests/setup-deps.sh (e2fsprogs, mount)")


# -- the file system -------------------------------------------------------------------

def _loop_device_available():
    """True if `losetup -f` finds a free loop device, making nodes if the kernel has
    loop support but the nodes are missing (some containers)."""
    if subprocess.run(["losetup", "-f"], capture_output=True).returncode == 0:
        return True
    for minor in range(8):
        node = Path(f"/dev/loop{minor}")
        if not node.exists():
            subprocess.run(["mknod", str(node), "b", "7", str(minor)], capture_output=True)
    return subprocess.run(["losetup", "-f"], capture_output=True).returncode == 0


class SmallFs:
    """A loop-mounted ext4 of FS_SIZE bytes under `parent`, and a filler file on it."""

    def __init__(self, parent):
        self.dir = Path(tempfile.mkdtemp(prefix="fullfs-", dir=parent))
        os.chmod(self.dir, 0o755)
        self.image = self.dir / "queue.img"
        self.mnt = self.dir / "mnt"
        self.filler = self.mnt / "filler"
        self.mounted = False

    def mount(self):
        with open(self.image, "wb") as f:
            f.truncate(FS_SIZE)
        # -m 0: no blocks reserved for root, so the root-owned filler leaves exactly
        # what the daemons (running as mail_owner) can use.
        subprocess.run(["mkfs.ext4", "-q", "-F", "-m", "0", "-b", "4096", str(self.image)],
                       check=True, capture_output=True)
        self.mnt.mkdir()
        proc = subprocess.run(["mount", "-o", "loop", str(self.image), str(self.mnt)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            pytest.skip(f"cannot loop-mount an ext4 image here: {proc.stderr.strip()}")
        self.mounted = True
        os.chmod(self.mnt, 0o755)

    def free(self):
        """Bytes an unprivileged writer may still use."""
        st = os.statvfs(self.mnt)
        return st.f_bavail * st.f_frsize

    def fill_to(self, target):
        """Grows the filler until at most `target` bytes are free (within a block)."""
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            chunk = None
            while self.free() > target:
                want = self.free() - target
                chunk = want if chunk is None else min(chunk, want)
                chunk -= chunk % 4096
                if chunk < 4096:
                    break
                try:
                    os.posix_fallocate(fd, os.fstat(fd).st_size, chunk)
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
                    # The extent tree needs a block of its own now and then.
                    chunk //= 2
        finally:
            os.close(fd)
        return self.free()

    def fill_up(self):
        """Takes every block."""
        self.fill_to(0)
        assert self.free() == 0, f"{self.free()} bytes still free"

    def unfill(self):
        self.filler.unlink(missing_ok=True)

    def unmount(self):
        if self.mounted:
            if subprocess.run(["umount", str(self.mnt)], capture_output=True).returncode:
                # Something still had it open (a process being killed): detach it.
                subprocess.run(["umount", "-l", str(self.mnt)], capture_output=True)
            self.mounted = False
        shutil.rmtree(self.dir, ignore_errors=True)


# -- mail ---------------------------------------------------------------------------------

def message(tag, size=2000):
    line = "x" * 76 + "\r\n"
    body = line * (size // len(line))
    return (f"From: filler@example.org\r\nTo: {RCPT}\r\nSubject: full-disk {tag}\r\n"
            f"\r\n{body}").encode()


def queued_id(reply):
    code, text = reply
    assert code == 250, reply
    return text.decode().rsplit(" ", 1)[-1]


def open_session(inst):
    s = inst.smtp()
    s.ehlo("client.example.org")
    return s


def send(inst, tag, size=2000):
    """The MAIL reply, and the DATA reply if MAIL was accepted."""
    with open_session(inst) as s:
        mail = s.mail("filler@example.org")
        if mail[0] != 250:
            return mail, None
        assert s.rcpt(RCPT)[0] == 250
        return mail, s.data(message(tag, size))


def subjects(sink):
    with sink.lock:
        return [line.split("full-disk ", 1)[1]
                for _, _, data in sink.messages
                for line in data.splitlines() if line.startswith("Subject: full-disk ")]


def log_has(inst, text):
    return text in inst.log_text()


def set_main(inst, name, value):
    main = inst.conf / "main.cf"
    lines = [ln for ln in main.read_text().splitlines() if not ln.startswith(f"{name} =")]
    main.write_text("\n".join(lines + [f"{name} = {value}"]) + "\n")


def smtpd_pids(inst):
    return {pid for pid, name in inst.processes().items() if name == "smtpd"}


# -- the test -----------------------------------------------------------------------------

def test_full_queue_file_system_loses_nothing(make_instance, workdir):
    if not _loop_device_available():
        pytest.skip("no loop device: losetup -f finds none and none can be made")
    fs = SmallFs(workdir)
    sink = None
    inst = None
    figures = {}
    try:
        fs.mount()
        port = free_port()
        sink = HoldingSink(port)
        inst = make_instance(main_extra={
            "queue_directory": str(fs.mnt / "queue"),
            "queue_minfree": str(MINFREE),
            "message_size_limit": str(SIZE_LIMIT),
            "relayhost": f"[127.0.0.1]:{port}",
            "smtp_helo_timeout": f"{HELO_TIMEOUT}s",
            # Every held connection defers only its own message: no dead destination,
            # no shrinking window, so the timing below is the helo timeout's alone.
            "default_destination_concurrency_failed_cohort_limit": "0",
            "default_destination_concurrency_negative_feedback": "0",
            "initial_destination_concurrency": "10",
            # No retry by itself before phase 4 (the phases take less than this).
            "minimal_backoff_time": f"{BACKOFF}s",
            "maximal_backoff_time": f"{BACKOFF}s",
            "queue_run_delay": "1s",
        })
        acked, refused = {}, []
        figures["free at start"] = fs.free()

        # Phase 1: queue_minfree.
        acked["p1-roomy"] = queued_id(send(inst, "p1-roomy")[1])
        figures["free just above queue_minfree"] = fs.fill_to(MINFREE + 512 * 1024)
        acked["p1-above"] = queued_id(send(inst, "p1-above")[1])
        below = fs.fill_to(MINFREE - 512 * 1024)
        figures["free just below queue_minfree"] = below
        mail, _ = send(inst, "p1-below")
        assert mail == REFUSED
        refused.append("p1-below")
        assert below > 3 * 1024 * 1024, "refused before the disk is full"
        wait_for(lambda: re.search(r"smtpd\[\d+\]: warning: not enough free space in mail "
                                   rf"queue: \d+ bytes <= queue_minfree {MINFREE}\n",
                                   inst.log_text()),
                 timeout=10, what="smtpd's queue_minfree warning")

        # Phase 2: no queue_minfree; DATA that does not fit.
        set_main(inst, "queue_minfree", "0")
        old = smtpd_pids(inst)
        inst.cmd("rostfix", "reload")
        wait_for(lambda: not (old & smtpd_pids(inst)), timeout=20,
                 what="the smtpd processes of the old configuration to exit")
        figures["free before phase 2"] = fs.fill_to(350 * 1024)
        sessions = [open_session(inst) for _ in range(6)]
        try:
            for s in sessions:
                assert s.mail("filler@example.org") == (250, b"2.1.0 Ok")
                assert s.rcpt(RCPT)[0] == 250
            data_replies = []
            for n, s in enumerate(sessions):
                tag = f"p2-{n}"
                reply = s.data(message(tag, BODY_SIZE))
                data_replies.append(reply)
                if reply[0] == 250:
                    acked[tag] = queued_id(reply)
                else:
                    assert reply == REFUSED, f"{tag}: {reply}"
                    refused.append(tag)
        finally:
            for s in sessions:
                try:
                    s.quit()
                except (smtplib.SMTPException, OSError):
                    pass
        figures["phase 2 DATA replies"] = [r[0] for r in data_replies]
        assert any(r == REFUSED for r in data_replies), data_replies
        assert any(r[0] == 250 for r in data_replies), data_replies
        # A refused message leaves no temporary file behind to eat the space.
        assert not [n for n in os.listdir(inst.queue / "incoming") if n.startswith("tmp.")]
        figures["free after phase 2"] = fs.free()
        assert fs.free() < 1.5 * SIZE_LIMIT
        mail, _ = send(inst, "p2-late")
        assert mail == REFUSED
        refused.append("p2-late")
        wait_for(lambda: re.search(r"smtpd\[\d+\]: warning: not enough free space in mail "
                                   r"queue: \d+ bytes < 1\.5\*message size limit\n",
                                   inst.log_text()), timeout=10,
                 what="smtpd's 1.5 x message_size_limit warning")

        # Phase 3: active/ -> deferred/ fails for lack of space.
        ids = set(acked.values())
        wait_for(lambda: ids <= set(inst.queue_ids("deferred"))
                 and not inst.queue_ids("incoming", "active"),
                 timeout=6 * HELO_TIMEOUT, what="the acknowledged messages to be deferred")
        deferred_dir = inst.queue / "deferred"
        assert deferred_dir.stat().st_size == 4096, "deferred/ has one directory block"
        fs.fill_up()
        inst.cmd("rostqueue", "-f")
        wait_for(lambda: ids <= set(inst.queue_ids("active")), timeout=HELO_TIMEOUT - 1,
                 interval=0.01, what="the flush to move them into active/")
        # The slots they left in deferred/ and the rest of its block: a rename into
        # deferred/ now needs a new directory block, and there is none.
        pads = 0
        while True:
            try:
                os.close(os.open(deferred_dir / f"pad.{pads:05d}",
                                 os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
            except OSError as e:
                assert e.errno == errno.ENOSPC, e
                break
            pads += 1
        figures["entries padding deferred/"] = pads
        assert ids <= set(inst.queue_ids("active")), "all still in delivery while padding"
        for qid in ids:
            wait_for(lambda: log_has(inst, f"{qid}: cannot move to deferred"),
                     timeout=3 * HELO_TIMEOUT, what=f"{qid}'s failed move to deferred")
        assert ids <= set(inst.queue_ids("active"))

        # Phase 4: space returns; nothing restarts.
        qmgr_before = {p for p, n in inst.processes().items() if n == "qmgr"}
        fs.unfill()
        for qid in ids:
            wait_for(lambda: log_has(inst, f"{qid}: moved to deferred after an earlier failure"),
                     timeout=10, what=f"{qid} to be moved to deferred once there is room")
        assert not ids & set(inst.queue_ids("active"))
        for pad in deferred_dir.glob("pad.*"):
            pad.unlink()
        sink.holding = False
        started = time.monotonic()
        wait_for(lambda: sorted(subjects(sink)) == sorted(acked), timeout=BACKOFF + 15,
                 what="every acknowledged message to be delivered")
        figures["seconds from space back to all delivered"] = round(
            time.monotonic() - started, 1)
        assert sorted(subjects(sink)) == sorted(acked), "each exactly once"
        assert not set(refused) & set(subjects(sink))
        inst.wait_queue_empty(timeout=10)
        assert not inst.queue_ids("deferred")
        assert {p for p, n in inst.processes().items() if n == "qmgr"} == qmgr_before
        figures["acknowledged"] = len(acked)
        figures["refused"] = len(refused)
        print("\nfull-disk figures:", figures)
    finally:
        if inst is not None:
            inst.stop()
        if sink is not None:
            sink.stop()
        fs.unmount()
