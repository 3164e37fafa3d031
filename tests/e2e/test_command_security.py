"""Root commands never operate by path in mail_owner's queue directories, and
set-group-id commands take a configuration directory only from the administrator's
list (issue 12 items 1 and 10).

rostsuper used to chmod (-s, -e) and utime (-H) by path as root after a stat: a
mail_owner process that planted, or raced in, a symbolic link under a queue file's name
had root change a file of its choice. rostdrop and rostqueue used to accept any
root-owned configuration directory from an ordinary user, instead of only those the
default main.cf lists in alternate_config_directories."""

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from harness import BIN, MAIL_OWNER, USER1

RUNS = 10
# strace delays every statx(2) return by this many microseconds, widening the window
# between rostsuper's stat of a queue file and its change of it.
STAT_DELAY_US = 20000

# Alternates each name between a regular file (mode 0644, so -s wants to fix it) and a
# symbolic link to the target.
RACER = r"""
import os, sys
target, stop, d = sys.argv[1], sys.argv[2], sys.argv[3]
names = sys.argv[4:]
swaps = 0
n = 0
while not os.path.exists(stop):
    for name in names:
        n += 1
        path = os.path.join(d, name)
        tmp = os.path.join(d, "tmp.race.%d" % n)
        try:
            fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o644)
            os.fchmod(fd, 0o644)
            os.close(fd)
            os.rename(tmp, path)
            os.symlink(target, tmp)
            os.rename(tmp, path)
            swaps += 1
        except OSError:
            try:
                os.unlink(tmp)
            except OSError:
                pass
print(swaps)
"""


def mail_owner():
    pw = pwd.getpwnam(MAIL_OWNER)
    return pw.pw_uid, pw.pw_gid


def as_mail_owner(inst, *argv):
    return inst._run(list(argv), user=MAIL_OWNER)


@pytest.fixture
def secret():
    """A root-owned 0640 file in a root-only directory: what the attacker aims at."""
    d = Path(tempfile.mkdtemp(prefix="rostfix-secret-"))
    os.chmod(d, 0o700)
    target = d / "root-only"
    target.write_text("root's\n")
    os.chmod(target, 0o640)
    os.utime(target, (1000000, 1000000))
    yield target
    shutil.rmtree(d, ignore_errors=True)


def unchanged(target, before):
    now = os.stat(target)
    return (now.st_mode, now.st_uid, now.st_gid, now.st_mtime) == \
        (before.st_mode, before.st_uid, before.st_gid, before.st_mtime)


def test_rostsuper_expire_and_release_never_follow_a_planted_link(make_instance, secret):
    inst = make_instance(start=False)
    inst.cmd("rostfix", "check")  # creates the queue directories
    before = os.stat(secret)
    as_mail_owner(inst, "/bin/ln", "-s", str(secret), str(inst.queue / "deferred" / "ABCDEF1"))
    as_mail_owner(inst, "/bin/ln", "-s", str(secret), str(inst.queue / "hold" / "ABCDEF2"))
    inst.cmd("rostsuper", "-e", "ABCDEF1", check=False)
    inst.cmd("rostsuper", "-H", "ABCDEF2", check=False)
    now = os.stat(secret)
    assert unchanged(secret, before), \
        f"mode {now.st_mode:o} owner {now.st_uid}:{now.st_gid} mtime {now.st_mtime}"


def test_rostsuper_repair_race_never_reaches_root_files(make_instance, secret):
    inst = make_instance(start=False)
    inst.cmd("rostfix", "check")
    before = os.stat(secret)
    uid, gid = mail_owner()
    deferred = inst.queue / "deferred"
    names = [f"ABCDEF{n}" for n in range(1, 6)]
    strace = shutil.which("strace")
    rostsuper = [str(BIN / "rostsuper"), "-c", str(inst.conf), "-s", "deferred"]
    if strace:
        rostsuper = [strace, "-o", "/dev/null", "-e", "trace=statx",
                     "-e", f"inject=statx:delay_exit={STAT_DELAY_US}", *rostsuper]
    stop = inst.base / "racer-stop"  # where the racer can see it
    racer = subprocess.Popen(
        [sys.executable, "-c", RACER, str(secret), str(stop), str(deferred), *names],
        user=uid, group=gid, extra_groups=[], cwd="/", stdout=subprocess.PIPE,
        env={"PATH": "/usr/bin:/bin"})
    try:
        for n in range(RUNS):
            subprocess.run(rostsuper, capture_output=True, timeout=120,
                           env={"PATH": "/usr/bin:/bin", "LANG": "C"})
            now = os.stat(secret)
            assert unchanged(secret, before), \
                f"run {n}: mode {now.st_mode:o} owner {now.st_uid}:{now.st_gid}"
    finally:
        stop.touch()
        out, _ = racer.communicate(timeout=30)
    assert int(out.decode().strip() or "0") > 0, "the racer never swapped a file"


# -- configuration directories of the set-group-id commands ---------------------------

def other_config(inst):
    """A root-owned copy of the instance's configuration in a root-owned directory."""
    other = inst.base / "etc-other"
    other.mkdir()
    shutil.copy2(inst.conf / "main.cf", other / "main.cf")
    shutil.copy2(inst.conf / "master.cf", other / "master.cf")
    os.chmod(other, 0o755)
    return other


@pytest.mark.parametrize("command,args", [
    ("rostqueue", ["-p"]),
    ("rostdrop", ["-f", "alice@example.org", "--", "bob@example.org"]),
])
def test_setgid_commands_take_only_listed_config_dirs(make_instance, command, args):
    inst = make_instance()
    other = other_config(inst)
    argv = [str(inst.bindir / command), "-c", str(other), *args]
    refused = inst._run(argv, check=False, user=USER1, input=b"Subject: x\n\nx\n")
    assert refused.returncode != 0
    err = refused.stderr.decode()
    assert "unauthorized configuration directory" in err and str(other) in err, err
    assert "alternate_config_directories" in err, err

    # MAIL_CONFIG is held to the same rule.
    env_argv = ["/usr/bin/env", f"MAIL_CONFIG={other}", str(inst.bindir / command), *args]
    refused = inst._run(env_argv, check=False, user=USER1, input=b"Subject: x\n\nx\n")
    assert refused.returncode != 0
    assert "unauthorized configuration directory" in refused.stderr.decode()

    # Listed by the administrator in the default main.cf: accepted.
    with inst.authorized_config_dir(other):
        accepted = inst._run(argv, check=False, user=USER1, input=b"Subject: x\n\nx\n")
    assert accepted.returncode == 0, accepted.stderr
