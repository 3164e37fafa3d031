"""master's unix socket set-up against a compromised mail_owner process (issue 12 item
1). public/ and private/ belong to mail_owner; a mail_owner process that replaces each
freshly bound socket with a symbolic link must not make master (root) change a file
it does not own. master used to chmod 0666 (public) or chown to mail_owner (private)
by path right after bind, following such a link."""

import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import BIN, MAIL_OWNER, wait_for

STARTS = 30
# strace delays the return of every bind(2) by this many microseconds: the time a
# preempted master would take. It widens the window between bind and whatever master
# does next by path, so a racer in Python wins it when there is one.
BIND_DELAY_US = 20000

RACER = r"""
import os, sys
target, stop = sys.argv[1], sys.argv[2]
dirs = sys.argv[3:]
swaps = 0
n = 0
while not os.path.exists(stop):
    for d in dirs:
        try:
            entries = list(os.scandir(d))
        except OSError:
            continue
        for e in entries:
            # Sockets: neither file, directory nor link (d_type, no extra syscall).
            if e.name.startswith("race.") or e.is_symlink() or e.is_file() or e.is_dir():
                continue
            n += 1
            tmp = os.path.join(d, "race.%d" % n)
            try:
                os.symlink(target, tmp)
                os.rename(tmp, e.path)
                swaps += 1
            except OSError:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
print(swaps)
"""


def owner_ids():
    pw = pwd.getpwnam(MAIL_OWNER)
    return pw.pw_uid, pw.pw_gid


def start_racer(inst, target, stop):
    uid, gid = owner_ids()
    return subprocess.Popen(
        [sys.executable, "-c", RACER, str(target), str(stop),
         str(inst.queue / "public"), str(inst.queue / "private")],
        user=uid, group=gid, extra_groups=[], cwd="/", stdout=subprocess.PIPE,
        env={"PATH": "/usr/bin:/bin"})


def master_argv(inst):
    master = [str(BIN / "master"), "-d", "-c", str(inst.conf)]
    strace = shutil.which("strace")
    if strace is None:
        return master
    return [strace, "-o", "/dev/null", "-e", "trace=bind",
            "-e", f"inject=bind:delay_exit={BIND_DELAY_US}", *master]


def remove_leftovers(inst):
    """Names a racer left after master removed its sockets (master would refuse them)."""
    for d in ("public", "private"):
        for entry in os.scandir(inst.queue / d):
            if entry.is_symlink() or entry.name.startswith("race."):
                os.unlink(entry.path)


def test_racing_mail_owner_cannot_redirect_socket_setup(make_instance):
    inst = make_instance(start=False)
    inst.cmd("rostfix", "check")  # creates the queue directories
    secret_dir = Path(tempfile.mkdtemp(prefix="rostfix-secret-"))
    os.chmod(secret_dir, 0o700)
    target = secret_dir / "root-only"
    target.write_text("root's\n")
    os.chmod(target, 0o600)
    before = os.stat(target)
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C"}
    total_swaps = 0
    try:
        for n in range(STARTS):
            stop = inst.base / f"racer-stop.{n}"  # the racer can see it there
            racer = start_racer(inst, target, stop)
            started = inst.log_text().count("daemon started")
            master = subprocess.Popen(master_argv(inst), env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            try:
                wait_for(lambda: inst.log_text().count("daemon started") > started
                         or master.poll() is not None, what="master to start")
                stop.touch()
                out, _ = racer.communicate(timeout=30)
                total_swaps += int(out.decode().strip() or "0")
            finally:
                pid_file = inst.queue / "pid" / "master.pid"
                try:
                    os.kill(int(pid_file.read_text().split()[0]), signal.SIGTERM)
                except (OSError, ValueError, IndexError):
                    master.kill()
                _, err = master.communicate(timeout=60)
                if racer.poll() is None:
                    racer.kill()
                    racer.wait()
            assert master.returncode == 0, f"start {n}: master failed: {err!r}"
            now = os.stat(target)
            assert (now.st_mode, now.st_uid, now.st_gid) == \
                (before.st_mode, before.st_uid, before.st_gid), \
                f"start {n}: master changed {target}: mode {now.st_mode:o} " \
                f"owner {now.st_uid}:{now.st_gid}"
            remove_leftovers(inst)
        # The racer really replaced sockets, so the checks above had something to see.
        assert total_swaps > 0
        # The sockets master makes belong to mail_owner and have the usual modes.
        inst.start()
        uid, _ = owner_ids()
        public = os.lstat(inst.queue / "public" / "pickup")
        private = os.lstat(inst.queue / "private" / "local")
        assert public.st_uid == uid and public.st_mode & 0o777 == 0o666
        assert private.st_uid == uid and private.st_mode & 0o777 == 0o755
    finally:
        shutil.rmtree(secret_dir, ignore_errors=True)
