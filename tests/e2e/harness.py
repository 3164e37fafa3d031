"""Boots real Rostfix instances for end-to-end tests.

Each Instance has its own temporary configuration directory, queue directory, log file
and loopback port; master is started as root through `rostfix start`, so chroot and
privilege dropping really happen. stop() always runs (fixtures call it in a finally),
and anything still alive that carries the instance's MAIL_CONFIG is killed.
"""

import contextlib
import os
import pwd
import grp
import shutil
import signal
import smtplib
import socket
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("ROSTFIX_BIN", REPO / "target" / "debug"))
MAIL_OWNER = "rostfix"
SETGID_GROUP = "rostdrop"
# Ordinary users to deliver to. The prefix can be changed so that two suites running at
# once on one machine (developers, helpers) do not share users and their homes.
TEST_USER_PREFIX = os.environ.get("ROSTFIX_TEST_USER_PREFIX", "rftest")
USER1 = TEST_USER_PREFIX + "1"
USER2 = TEST_USER_PREFIX + "2"
TEST_USERS = [USER1, USER2]


def is_root():
    return os.geteuid() == 0


# -- the default main.cf's list of authorized configuration directories ----------------
# Set-group-id rostdrop and rostqueue (which ordinary users run, e.g. through sendmail)
# accept an instance's -c directory only when the DEFAULT main.cf lists it in
# alternate_config_directories, as Postfix's postdrop and postqueue do. The harness
# keeps its instances there in a marked block, and removes the block (and a file it
# created) when the last one is gone. e2e runs hold /tmp/rostfix-e2e.lock, so one
# harness edits the file at a time.
DEFAULT_CONFIG_DIR = Path("/etc/rostfix")
_CREATED_MARK = "# created by tests/e2e/harness.py for test instances; removed after them"
_BLOCK_BEGIN = "# BEGIN tests/e2e/harness.py: configuration directories of test instances"
_BLOCK_END = "# END tests/e2e/harness.py"
_authorized = []


def _rewrite_default_main_cf():
    main = DEFAULT_CONFIG_DIR / "main.cf"
    try:
        text = main.read_text()
    except FileNotFoundError:
        text = None
    lines = [] if text is None else text.splitlines()
    kept, inside = [], False
    for line in lines:
        if line == _BLOCK_BEGIN:
            inside = True
        elif line == _BLOCK_END:
            inside = False
        elif not inside:
            kept.append(line)
    dirs = [d for d in _authorized if Path(d).is_dir()]
    if not dirs and (text is None or kept in ([], [_CREATED_MARK])):
        if text is not None:
            main.unlink()
            try:
                DEFAULT_CONFIG_DIR.rmdir()
            except OSError:
                pass
        return
    if text is None:
        DEFAULT_CONFIG_DIR.mkdir(mode=0o755, exist_ok=True)
        kept = [_CREATED_MARK]
    if dirs:
        kept += [_BLOCK_BEGIN, "alternate_config_directories = " + ", ".join(dirs), _BLOCK_END]
    tmp = main.with_name("main.cf.harness-tmp")
    tmp.write_text("\n".join(kept) + "\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, main)


def authorize_config_dir(path):
    """Lists `path` in the default main.cf's alternate_config_directories."""
    if is_root() and str(path) not in _authorized:
        _authorized.append(str(path))
        _rewrite_default_main_cf()


def revoke_config_dir(path):
    if is_root() and str(path) in _authorized:
        _authorized.remove(str(path))
        _rewrite_default_main_cf()


_HANDED_OUT_PORTS = set()
_NEXT_PORT = [20000 + (os.getpid() % 1000) * 10]


def free_port(host="127.0.0.1"):
    """A port nobody listens on, never the same twice in one test session.

    Ports come from 20000-32767, below the kernel's ephemeral range (32768+): a port the
    kernel hands out for port 0 can come back on the next call, and any outgoing
    connection may take it in between, so two services of one master.cf once got the same
    port ("duplicate service") and a listener once lost its port to a client socket."""
    while True:
        port = _NEXT_PORT[0]
        _NEXT_PORT[0] = 20000 + (port - 20000 + 1) % 12768
        if port in _HANDED_OUT_PORTS:
            if len(_HANDED_OUT_PORTS) >= 12768:
                raise AssertionError("free_port: every port of 20000-32767 handed out")
            continue
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
        _HANDED_OUT_PORTS.add(port)
        return port


def listening(port, host="127.0.0.1"):
    """True when something accepts TCP connections on host:port."""
    try:
        socket.create_connection((host, port), timeout=1).close()
        return True
    except OSError:
        return False


def stop_process(proc, timeout=5):
    """SIGTERM, then SIGKILL if `proc` (a Popen) has not exited within `timeout`."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def write_table(workdir, name, rows):
    """A `key value` table file (texthash: form) named `name` in a fresh directory of
    `workdir`, both readable by the confined services; returns its path."""
    d = Path(tempfile.mkdtemp(prefix="tables-", dir=workdir))
    os.chmod(d, 0o755)
    t = d / name
    t.write_text("".join(f"{k} {v}\n" for k, v in rows))
    os.chmod(t, 0o644)
    return t


def wait_for(predicate, timeout=20.0, interval=0.05, what="condition"):
    """Polls predicate until it returns a truthy value; raises with `what` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def ensure_system_users(homes_root):
    """The suite's own user and group, and ordinary users to deliver to."""
    if not _group_exists(SETGID_GROUP):
        subprocess.run(["groupadd", "--system", SETGID_GROUP], check=True)
    if not _user_exists(MAIL_OWNER):
        subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir",
                        "/nonexistent", "--shell", "/usr/sbin/nologin", MAIL_OWNER],
                       check=True)
    for user in TEST_USERS:
        home = Path(homes_root) / user
        if _user_exists(user):
            subprocess.run(["usermod", "--home", str(home), user], check=True)
        else:
            subprocess.run(["useradd", "--no-create-home", "--home-dir", str(home),
                            "--shell", "/bin/sh", user], check=True)
        home.mkdir(parents=True, exist_ok=True)
        pw = pwd.getpwnam(user)
        os.chown(home, pw.pw_uid, pw.pw_gid)
        os.chmod(home, 0o755)


def remove_test_users():
    for user in TEST_USERS:
        if _user_exists(user):
            subprocess.run(["userdel", user], check=False)


def _user_exists(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def _group_exists(name):
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


class Instance:
    """One private Rostfix: config, queue, log, port. Use as a context manager."""

    def __init__(self, base, main_extra=None, master_extra=""):
        self.base = Path(tempfile.mkdtemp(prefix="rostfix-e2e-", dir=base))
        os.chmod(self.base, 0o755)
        self.conf = self.base / "etc"
        # A test may put the queue elsewhere (a small file system of its own, to fill
        # it): the instance then observes that directory.
        self.queue = Path((main_extra or {}).get("queue_directory", self.base / "queue"))
        self.maillog = self.base / "maillog"
        self.bindir = self.base / "bin"
        self.port = free_port()
        self.conf.mkdir()
        self.bindir.mkdir()
        self._install_commands()
        settings = {
            "queue_directory": str(self.queue),
            "daemon_directory": str(BIN),
            "command_directory": str(self.bindir),
            "data_directory": str(self.base / "data"),
            "maillog_file": str(self.maillog),
            "mail_owner": MAIL_OWNER,
            "setgid_group": SETGID_GROUP,
            "myhostname": "mx.rostfix.test",
            "mydomain": "rostfix.test",
            "mydestination": "$myhostname, localhost.$mydomain, localhost, $mydomain",
            "mynetworks": "127.0.0.0/8",
            "inet_interfaces": "127.0.0.1",
            "home_mailbox": "Maildir/",
            "service_throttle_time": "2s",
            "minimal_backoff_time": "5s",
            "maximal_backoff_time": "10s",
            "queue_run_delay": "5s",
            # Tests never send traffic off the machine: a DNS lookup no test asked for
            # goes to a closed loopback port and fails there (tests that need DNS
            # start their own server and override this).
            "rostfix_dns_servers": "127.0.0.1:9",
            # An empty alias table of the instance's own, so that local never reads
            # the host's /etc/aliases (tests that need aliases override both).
            "alias_maps": f"texthash:{self.conf / 'aliases'}",
            "alias_database": f"texthash:{self.conf / 'aliases'}",
        }
        (self.conf / "aliases").write_text("")
        settings.update(main_extra or {})
        lines = ["# written by tests/e2e/harness.py"]
        lines += [f"{k} = {v}" for k, v in settings.items()]
        (self.conf / "main.cf").write_text("\n".join(lines) + "\n")
        master = f"""# written by tests/e2e/harness.py
127.0.0.1:{self.port} inet n - y - - smtpd
pickup    unix  n       -       y       60      1       pickup
qmgr      unix  n       -       n       300     1       qmgr
showq     unix  n       -       y       -       -       showq
bounce    unix  -       -       y       -       0       bounce
smtp      unix  -       -       y       -       -       smtp
relay     unix  -       -       y       -       -       smtp
lmtp      unix  -       -       y       -       -       lmtp
local     unix  -       n       n       -       -       local
anvil     unix  -       -       y       -       1       anvil
virtual   unix  -       n       n       -       -       virtual
""" + master_extra
        (self.conf / "master.cf").write_text(master)
        os.chmod(self.conf / "main.cf", 0o644)
        os.chmod(self.conf / "master.cf", 0o644)
        authorize_config_dir(self.conf)

    def _install_commands(self):
        """sendmail and friends in command_directory; rostdrop setgid as installed."""
        for name in ["sendmail", "rostsuper", "rostconf", "rostfix"]:
            (self.bindir / name).symlink_to(BIN / name)
        # rostqueue is set-group-id too, so ordinary users reach public/showq.
        for name in ["rostdrop", "rostqueue"]:
            drop = self.bindir / name
            shutil.copy2(BIN / name, drop)
            if is_root():
                os.chown(drop, 0, grp.getgrnam(SETGID_GROUP).gr_gid)
                os.chmod(drop, 0o2755)

    # -- running commands -------------------------------------------------------------

    def cmd(self, name, *args, check=True, user=None, input=None, timeout=60):
        argv = [str(BIN / name), "-c", str(self.conf), *args]
        return self._run(argv, check=check, user=user, input=input, timeout=timeout)

    def _run(self, argv, check=True, user=None, input=None, timeout=60):
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C"}
        kwargs = {}
        if user is not None:
            pw = pwd.getpwnam(user)
            kwargs["user"] = pw.pw_uid
            kwargs["group"] = pw.pw_gid
            kwargs["extra_groups"] = []
            kwargs["cwd"] = "/"
            env["HOME"] = pw.pw_dir
            env["USER"] = env["LOGNAME"] = user
        proc = subprocess.run(argv, capture_output=True, input=input, env=env,
                              timeout=timeout, **kwargs)
        if check and proc.returncode != 0:
            raise AssertionError(
                f"{argv} exited {proc.returncode}\nstdout: {proc.stdout!r}\n"
                f"stderr: {proc.stderr!r}\nlog:\n{self.log_text()[-4000:]}")
        return proc

    def start(self):
        self.cmd("rostfix", "start")
        wait_for(self.accepting, what="smtpd to accept connections")

    def stop(self):
        self.cmd("rostfix", "stop", check=False, timeout=60)
        self.kill_leftovers()

    def kill_leftovers(self, sig=signal.SIGKILL):
        for pid in self.pids():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def accepting(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                s.settimeout(5)
                return s.recv(512).startswith(b"220")
        except OSError:
            return False

    def pids(self):
        """Every live process started for this instance (master and its children)."""
        marker = f"MAIL_CONFIG={self.conf}".encode()
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                env = Path(f"/proc/{entry}/environ").read_bytes().split(b"\0")
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            is_master = (cmdline and cmdline[0].endswith(b"/master")
                         and str(self.conf).encode() in cmdline)
            if marker in env or is_master:
                found.append(int(entry))
        return found

    def processes(self):
        """{pid: program name} of this instance's processes."""
        out = {}
        for pid in self.pids():
            try:
                exe = os.readlink(f"/proc/{pid}/exe")
            except OSError:
                continue
            out[pid] = os.path.basename(exe.replace(" (deleted)", ""))
        return out

    # -- observing ---------------------------------------------------------------------

    def log_text(self):
        try:
            return self.maillog.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def queue_ids(self, *queues):
        ids = []
        for q in queues or ("incoming", "active", "deferred", "hold"):
            d = self.queue / q
            if d.is_dir():
                ids += [n for n in os.listdir(d) if not n.startswith("tmp.")]
        return ids

    def wait_queue_empty(self, timeout=60):
        wait_for(lambda: not self.queue_ids("incoming", "active", "maildrop"),
                 timeout=timeout, what="the queue to drain")

    def smtp(self, source_address=None):
        kwargs = {"timeout": 30}
        if source_address:
            kwargs["source_address"] = (source_address, 0)
        return smtplib.SMTP("127.0.0.1", self.port, **kwargs)

    def authorized_config_dir(self, path):
        """Context manager: `path` listed in the default main.cf while it runs."""
        instance = self

        class _Authorized:
            def __enter__(self):
                authorize_config_dir(path)
                return instance

            def __exit__(self, *exc):
                revoke_config_dir(path)
                return False
        return _Authorized()

    def forget(self):
        """Takes the instance's directory off the default main.cf's list."""
        revoke_config_dir(self.conf)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        self.forget()
        if exc[0] is None and os.environ.get("ROSTFIX_KEEP") is None:
            shutil.rmtree(self.base, ignore_errors=True)
        return False


def maildir_messages(user, folder="Maildir"):
    """[(path, bytes)] of the messages in the user's Maildir/new, oldest first."""
    new = Path(pwd.getpwnam(user).pw_dir) / folder / "new"
    if not new.is_dir():
        return []
    paths = sorted(new.iterdir(), key=lambda p: p.stat().st_mtime)
    return [(p, p.read_bytes()) for p in paths]


def reset_maildir(user, folder="Maildir"):
    path = Path(pwd.getpwnam(user).pw_dir) / folder
    if path.is_symlink() or path.is_file():
        # A test may leave a file (or link) where the Maildir goes, to make delivery fail.
        path.unlink()
    shutil.rmtree(path, ignore_errors=True)


def read_reply(f):
    """One (possibly multi-line) SMTP reply from a socket file: its lines, or [] at end
    of input."""
    lines = []
    while True:
        line = f.readline()
        if not line:
            return lines
        lines.append(line.decode(errors="replace").rstrip("\r\n"))
        if len(line) < 4 or line[3:4] != b"-":
            return lines


# ---------------------------------------------------------------- HAProxy

_HAPROXY_CFG = """global
    maxconn 20
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend v2
    bind 127.0.0.1:{v2}
    default_backend proxied_v2
frontend v1
    bind 127.0.0.1:{v1}
    default_backend proxied_v1
backend proxied_v2
    server s 127.0.0.1:{target} send-proxy-v2
backend proxied_v1
    server s 127.0.0.1:{target} send-proxy
"""


@contextlib.contextmanager
def haproxy_in_front(directory, target):
    """The Debian package's HAProxy on two fresh loopback ports, both forwarding to
    127.0.0.1:`target` with a PROXY header: "v2" (send-proxy-v2) and "v1" (send-proxy).
    Yields {"v1": port, "v2": port}; HAProxy is stopped on exit. Skips the test when
    haproxy is not installed (tests/setup-deps.sh)."""
    import pytest
    if shutil.which("haproxy") is None:
        pytest.skip("haproxy not installed (tests/setup-deps.sh)")
    ports = {"v2": free_port(), "v1": free_port()}
    cfg = Path(directory) / "haproxy.cfg"
    cfg.write_text(_HAPROXY_CFG.format(target=target, **ports))
    proc = subprocess.Popen(["haproxy", "-db", "-f", str(cfg)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def listening():
            try:
                socket.create_connection(("127.0.0.1", ports["v1"]), timeout=1).close()
                return True
            except OSError:
                return False
        wait_for(listening, what="haproxy listening")
        yield ports
    finally:
        proc.terminate()
        proc.wait(timeout=10)
