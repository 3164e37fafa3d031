"""The first minutes on a fresh machine (issue 16).

`make run` (scripts/run-dev.sh) delivers the README's first message, to root@localhost,
whether or not the machine has /etc/aliases, and started by root it does not warn about
the set-group-id modes of an installed system. `make deb` installs its own build
dependencies when run as root and names them otherwise (packaging/build-deps.sh). The
init script's start message is one clean status line."""

import grp
import os
import pwd
import re
import signal
import smtplib
import subprocess
import tempfile
from pathlib import Path

import pytest

from harness import BIN, REPO, USER1, free_port, wait_for

RUN_DEV = REPO / "scripts" / "run-dev.sh"
BUILD_DEPS = REPO / "packaging" / "build-deps.sh"
INIT_SCRIPT = REPO / "packaging" / "debian" / "rostfix.init"
PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


def as_user(user):
    """subprocess arguments running a command as `user` (None: as root)."""
    if user is None:
        return {}
    pw = pwd.getpwnam(user)
    return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": [], "cwd": pw.pw_dir}


def pids_of(conf):
    """Live processes of the instance configured in `conf` (master and children)."""
    marker = f"MAIL_CONFIG={conf}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            env = Path(f"/proc/{entry}/environ").read_bytes().split(b"\0")
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if marker in env or (cmdline[0].endswith(b"/master") and str(conf).encode() in cmdline):
            found.append(int(entry))
    return found


class DevInstance:
    """scripts/run-dev.sh run by `user` with its instance in a folder of its own."""

    def __init__(self, workdir, user=None):
        self.user = user
        self.run = Path(tempfile.mkdtemp(prefix="make-run-", dir=workdir))
        os.chmod(self.run, 0o755)
        if user is not None:
            pw = pwd.getpwnam(user)
            os.chown(self.run, pw.pw_uid, pw.pw_gid)
        self.port = free_port()
        self.conf = self.run / "etc"

    def script(self, action):
        home = pwd.getpwnam(self.user).pw_dir if self.user else "/root"
        env = {"PATH": PATH, "LANG": "C", "HOME": home, "RUN_PORT": str(self.port),
               "ROSTFIX_RUN_DIR": str(self.run)}
        return subprocess.run(["bash", str(RUN_DEV), action], env=env, capture_output=True,
                              text=True, timeout=120, **as_user(self.user))

    def send(self, rcpt, subject):
        with smtplib.SMTP("127.0.0.1", self.port, timeout=30) as s:
            s.sendmail("you@example.org", [rcpt],
                       f"From: you@example.org\r\nSubject: {subject}\r\n\r\nhello\r\n")

    def maildir(self, user):
        new = self.run / "mail" / user / "new"
        return sorted(new.iterdir()) if new.is_dir() else []

    def log(self):
        try:
            return (self.run / "maillog").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self):
        self.script("stop")
        for pid in pids_of(self.conf):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture
def dev_instances(workdir):
    made = []

    def factory(user=None):
        inst = DevInstance(workdir, user)
        made.append(inst)
        return inst

    yield factory
    for inst in made:
        inst.stop()


def test_make_run_delivers_root_mail_to_the_user_without_etc_aliases(dev_instances):
    """Run by an ordinary user: root@localhost (the README's first message) reaches the
    user's Maildir through the instance's own aliases, never through /etc/aliases
    (before: 'alias database unavailable' deferred it when /etc/aliases was missing,
    and root's mail never reached the user where it was present)."""
    inst = dev_instances(USER1)
    started = inst.script("start")
    assert started.returncode == 0, started.stdout + started.stderr
    inst.send("root@localhost", "first message")
    wait_for(lambda: inst.maildir(USER1), timeout=30,
             what=f"root@localhost's mail in {USER1}'s Maildir; log:\n{inst.log()[-2000:]}")
    assert "alias database unavailable" not in inst.log()
    main_cf = (inst.conf / "main.cf").read_text()
    alias_maps = re.findall(r"^alias_maps *= *(.*)$", main_cf, re.M)[-1]
    assert alias_maps == f"hash:{inst.conf}/aliases", alias_maps
    assert re.search(rf"to=<{USER1}@[^>]+>, orig_to=<root@localhost>, relay=local, .*"
                     r"status=sent", inst.log()), inst.log()[-2000:]


def test_make_run_as_root_has_no_setgid_or_table_warnings(dev_instances):
    """Run by root, the instance's commands are set-group-id as installed (its own
    command_directory), so start warns about nothing, and postmaster@localhost is
    delivered through the instance's aliases to root's Maildir."""
    inst = dev_instances()
    started = inst.script("start")
    said = started.stdout + started.stderr
    assert started.returncode == 0, said
    for text in (said, inst.log()):
        assert "setgid_group" not in text and "mode should be" not in text, text
        assert "cannot read table" not in text, text
    commands = Path(re.findall(r"^command_directory *= *(.*)$",
                               (inst.conf / "main.cf").read_text(), re.M)[-1])
    drop = os.stat(commands / "rostdrop")
    assert drop.st_mode & 0o7777 == 0o2755 and drop.st_gid == grp.getgrnam("rostdrop").gr_gid
    # cargo's own file is left alone.
    assert os.stat(BIN / "rostdrop").st_mode & 0o2000 == 0
    inst.send("postmaster@localhost", "to postmaster")
    wait_for(lambda: inst.maildir("root"), timeout=30,
             what=f"postmaster's mail in root's Maildir; log:\n{inst.log()[-2000:]}")
    assert "warning:" not in inst.log(), inst.log()


# -- make deb's build dependencies ----------------------------------------------------


def fake_tools(folder, installed):
    """dpkg-query that knows only `installed`, and an apt-get that records its calls."""
    folder.mkdir()
    calls = folder / "apt-get.calls"
    (folder / "dpkg-query").write_text(
        "#!/bin/sh\nfor p; do :; done\n"
        f"case \" {' '.join(installed)} \" in *\" $p \"*) printf installed;; "
        "*) echo \"dpkg-query: no packages found matching $p\" >&2; exit 1;; esac\n")
    (folder / "apt-get").write_text(f"#!/bin/sh\necho \"$*\" >>{calls}\n")
    for name in ["dpkg-query", "apt-get"]:
        os.chmod(folder / name, 0o755)
    return calls


def test_make_deb_installs_its_build_dependencies_as_root(workdir):
    base = Path(tempfile.mkdtemp(prefix="build-deps-", dir=workdir))
    calls = fake_tools(base / "bin", installed=["python3"])
    env = {"PATH": f"{base / 'bin'}:{PATH}", "LANG": "C"}
    done = subprocess.run([str(BUILD_DEPS)], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert calls.read_text().splitlines() == [
        "update -qq", "install -y -qq --no-install-recommends debhelper dpkg-dev"]
    # The Makefile's deb target runs it before the release build.
    dry = subprocess.run(["make", "-n", "deb"], cwd=REPO, capture_output=True, text=True,
                         env={"PATH": PATH, "LANG": "C"}, timeout=60)
    lines = dry.stdout.splitlines()
    assert lines[0] == "packaging/build-deps.sh", dry.stdout


def test_make_deb_names_missing_build_dependencies_for_a_user(workdir):
    base = Path(tempfile.mkdtemp(prefix="build-deps-", dir=workdir))
    os.chmod(base, 0o755)
    calls = fake_tools(base / "bin", installed=["python3", "dpkg-dev"])
    env = {"PATH": f"{base / 'bin'}:{PATH}", "LANG": "C"}
    done = subprocess.run([str(BUILD_DEPS)], env=env, capture_output=True, text=True,
                          timeout=60, **as_user(USER1))
    assert done.returncode == 1
    assert "sudo apt-get install debhelper" in done.stderr, done.stderr
    assert not calls.exists()


# -- the init script ------------------------------------------------------------------


def test_init_script_start_message_is_one_clean_line(make_instance):
    """`/etc/init.d/rostfix start` on an instance (the script with DAEMON pointed at
    it): one status line, not 'rostfix/rostfix: starting ...' spliced into it."""
    inst = make_instance(start=False)
    wrapper = inst.base / "rostfix-wrapper"
    wrapper.write_text(f"#!/bin/sh\nexec {BIN / 'rostfix'} -c {inst.conf} \"$@\"\n")
    os.chmod(wrapper, 0o755)
    script = INIT_SCRIPT.read_text()
    assert "DAEMON=/usr/sbin/rostfix\n" in script
    script = script.replace("DAEMON=/usr/sbin/rostfix\n", f"DAEMON={wrapper}\n")
    script = script.replace("/usr/lib/rostfix/copy-chroot-files", "true")
    init = inst.base / "rostfix.init"
    init.write_text(script)
    env = {"PATH": PATH, "LANG": "C"}

    def run(action):
        done = subprocess.run(["sh", str(init), action], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=120)
        return done.returncode, done.stdout

    rc, said = run("start")
    assert rc == 0, said
    wait_for(inst.accepting, what="smtpd to accept connections")
    assert said.splitlines()[0] == "Starting Rostfix mail transfer agent: rostfix.", said
    assert "the Rostfix mail system" not in said, said
    rc, said = run("reload")
    assert (rc, said) == (0, "Reloading Rostfix mail transfer agent configuration: rostfix.\n")
    rc, said = run("stop")
    assert (rc, said) == (0, "Stopping Rostfix mail transfer agent: rostfix.\n")
