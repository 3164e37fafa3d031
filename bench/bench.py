#!/usr/bin/python3
"""Rostfix benchmark harness (issues 7 and 18): the same load against Rostfix and,
optionally, Debian's Postfix on this machine, measured until every message has left the
queue.

Usage (as root, from the repository; `make bench` does this):
    bench/bench.py [--peers postfix] [--messages N] [--runs N] [--sessions N] ...

Every option also reads an environment variable (BENCH_MESSAGES, BENCH_RUNS,
BENCH_SESSIONS, BENCH_SIZE, BENCH_FANOUT_RCPTS, BENCH_FANOUT_DOMAINS, BENCH_TIMEOUT,
BENCH_COLD_MESSAGES, BENCH_LOCAL_USERS, BENCH_F100K_*, BENCH_CURVE_*, BENCH_DEFERRED*,
PEERS; see --help). Load comes from Postfix's smtp-source / smtp-sink, unpacked from the
Debian package into bench/work/postfix (nothing installed for that). Everything talks
to 127.0.0.1 only. See docs/performance.md for the method.
"""

import argparse
import concurrent.futures
import contextlib
import datetime
import json
import os
import platform
import pwd
import re
import shutil
import signal
import smtplib
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / "bench" / "work"
RESULTS = REPO / "bench" / "results"
PFX = WORK / "postfix"
PFX_LIB = PFX / "usr" / "lib" / "postfix"
# The default list (`make bench`), in the order they run.
SCENARIOS = ["receive", "relay", "local", "local-many", "fanout", "ceiling",
             "receive-dkim", "relay-dkim", "relay-shared",
             "receive-cold", "relay-cold", "local-cold"]
# Long ones, only when named in --scenarios / BENCH_SCENARIOS; a group name selects
# its members.
OPT_IN = ["fanout-100k-rcpts", "fanout-100k-msgs",
          "curve-sessions", "curve-sizes", "curve-deferred"]
GROUPS = {"fanout-100k": ["fanout-100k-rcpts", "fanout-100k-msgs"],
          "curves": ["curve-sessions", "curve-sizes", "curve-deferred"]}
# Variants: the load of a base scenario on Rostfix configured otherwise, reported
# beside the base figures (Postfix is not measured in them):
# - *-dkim: native DKIM signing of every message (issue 15: "signing must not halve
#   throughput"), an RSA-2048 key for the From: domain of smtp-source's mail;
# - relay-shared: what the shared engines of a multi-machine set-up add per message
#   (issue 20): a check_sender_access lookup in PostgreSQL through proxymap for every
#   MAIL, and every connection, message and recipient counted in Redis by anvil.
VARIANTS = {"receive-dkim": ("receive", "dkim"), "relay-dkim": ("relay", "dkim"),
            "relay-shared": ("relay", "shared")}
ROSTFIX_ONLY_VARIANTS = ("dkim", "shared")
# Cold: the base scenario, each run on a freshly started instance whose queue directory
# is new (for Rostfix: no recycled queue files in recycle/, docs/queue-format.md).
COLD = {"receive-cold": "receive", "relay-cold": "relay", "local-cold": "local"}
# receive: mail for this domain goes to the discard transport in both suites, so the
# scenario measures intake to the durable queue (and the queue manager's pass), not a
# delivery agent.
DISCARD_DOMAIN = "discard.test"
DISCARD_MAP = f"inline:{{ {DISCARD_DOMAIN}=discard: }}"
# The benchmark's own mailbox user: not the e2e tests' rftest users, which a parallel
# `make test` deletes when it finishes. local-many adds USER001..USERnnn.
USER = "rfbench"
# fanout-100k: domain i is d{i}.FANOUT100K_DOMAIN, routed by a texthash transport map
# to its own port of the counting proxy (bench/sinkproxy.py). Its smtp-sink behind the
# proxy, by i % 20: 0-1 slow (DATA answered after 1 s), 2 a 421 (and disconnect) after
# MAIL, 3 a 450 for every RCPT; the rejecting ones refuse one session in
# F100K_REJECT_EVERY and pass the others to the fast sink.
FANOUT100K_DOMAIN = "fanout100k.test"
F100K_REJECT_EVERY = 3
# curve-deferred: a message to this domain goes to a port where nothing listens until
# the flush, so it is deferred; it is then copied N-1 times in deferred/.
FLUSH_DOMAIN = "flush.test"
CLK_TCK = os.sysconf("SC_CLK_TCK")
POSTFIX_SPOOL = Path("/var/spool/postfix")

os.environ.setdefault("ROSTFIX_BIN", str(Path(os.environ.get(
    "CARGO_TARGET_DIR", REPO / "target")) / "release"))
sys.path.insert(0, str(REPO / "tests" / "e2e"))
import harness  # noqa: E402  (needs ROSTFIX_BIN set first)


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# -- load tools ----------------------------------------------------------------------

def fetch_load_tools():
    """smtp-source and smtp-sink from Debian's postfix .deb, unpacked, not installed."""
    if (PFX / "usr" / "sbin" / "smtp-source").exists():
        return
    WORK.mkdir(parents=True, exist_ok=True)
    subprocess.run(["apt-get", "download", "postfix"], cwd=WORK, check=True)
    deb = sorted(WORK.glob("postfix_*.deb"))[-1]
    subprocess.run(["dpkg", "-x", str(deb), str(PFX)], check=True)


def tool_env():
    return {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C",
            "LD_LIBRARY_PATH": str(PFX_LIB)}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sink:
    """smtp-sink on 127.0.0.1:PORT; counts messages from its -c running counter.
    `options` are smtp-sink's own (delays, rejections)."""

    def __init__(self, port=None, options=()):
        self.port = port or free_port()
        self.count = 0
        argv = [str(PFX / "usr/sbin/smtp-sink"), "-c", "-u", "nobody", "-m", "1000",
                *options, f"127.0.0.1:{self.port}", "256"]
        self.proc = subprocess.Popen(argv, env=tool_env(), stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL)
        threading.Thread(target=self._read, daemon=True).start()
        harness.wait_for(self._up, timeout=10, what="smtp-sink to listen")

    def _up(self):
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def _read(self):
        buf = b""
        while True:
            chunk = self.proc.stdout.read1(4096)
            if not chunk:
                return
            buf = (buf + chunk)[-64:]
            nums = re.findall(rb"(\d+)", buf)
            if nums:
                self.count = int(nums[-1])

    def stop(self):
        harness.stop_process(self.proc)


class Proxy:
    """bench/sinkproxy.py in a process of its own (not to share this one's interpreter
    lock with the sampler): one port per fanout-100k domain, sessions counted."""

    def __init__(self, ports, backends):
        conf = WORK / "sinkproxy.json"
        conf.write_text(json.dumps({"ports": {str(p): m for p, m in ports.items()},
                                    "backends": backends,
                                    "reject_every": F100K_REJECT_EVERY}))
        self.proc = subprocess.Popen([sys.executable, str(REPO / "bench/sinkproxy.py"),
                                      str(conf)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("sinkproxy.py did not start")

    def ask(self, command):
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def stop(self):
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            pass
        if self.proc.poll() is None:
            harness.stop_process(self.proc)


def smtp_source(port, cfg, to, messages, sessions=None, size=None):
    argv = [str(PFX / "usr/sbin/smtp-source"), "-s", str(sessions or cfg.sessions),
            "-l", str(size or cfg.size), "-m", str(messages), "-f", "bench@source.test",
            "-t", to, "-M", "source.test", f"127.0.0.1:{port}"]
    proc = subprocess.run(argv, env=tool_env(), capture_output=True, text=True,
                          timeout=cfg.timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"smtp-source failed: {proc.stderr.strip()[-500:]}")


def smtp_source_many(port, cfg, targets, sessions=None, size=None):
    """[(recipient, count)], each sent by its own one-session smtp-source, `sessions` of
    them at a time: smtp-source has one recipient address per run, so this is how mail
    to many users or domains keeps the same number of parallel sessions as the rest."""
    workers = min(sessions or cfg.sessions, len(targets))
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers)
    try:
        jobs = [pool.submit(smtp_source, port, cfg, to, n, 1, size)
                for to, n in targets if n]
        for job in jobs:
            job.result()
    finally:
        # On a failure (or SIGTERM) the runs not started yet are dropped.
        pool.shutdown(wait=True, cancel_futures=True)


def spread(total, names):
    """[(name, count)]: `total` split as evenly as possible over `names`."""
    q, r = divmod(total, len(names))
    return [(name, q + (i < r)) for i, name in enumerate(names)]


def fanout_send(port, cfg, rcpts):
    """One message to `rcpts` (smtp-source cannot vary the domain, so this client is
    Python's smtplib)."""
    body = ("Subject: fanout\r\n\r\n" + "x" * 76 + "\r\n") * max(1, cfg.size // 78)
    with smtplib.SMTP("127.0.0.1", port, timeout=300) as s:
        refused = s.sendmail("bench@source.test", rcpts, body)
    if refused:
        raise RuntimeError(f"fanout: {len(refused)} recipients refused")


# -- measuring a process tree ---------------------------------------------------------

def _stat(pid):
    """(ppid, utime+stime+cutime+cstime in ticks) from /proc/PID/stat, or None."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rfind(")") + 2:].split()
    # fields[0] is state (field 3); utime..cstime are fields 14..17.
    return int(fields[1]), sum(int(x) for x in fields[11:15])


def _rss_kb(pid):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _pss_kb(pid):
    """Proportional set size: shared pages (libraries, the binary) divided among the
    processes that map them, so a many-process suite is not charged N times for them."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree(root):
    """root and all its live descendants."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _stat(int(entry))
            if st:
                children.setdefault(st[0], []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += children.get(pid, [])
    return out


def cpu_ticks(root):
    """CPU used so far by the tree, including reaped children: each live process's own
    utime+stime plus cutime+cstime (what it has reaped). A child's whole total moves into
    its parent's c-times when reaped, so the sum only grows by real CPU use."""
    total = 0
    for pid in tree(root):
        st = _stat(pid)
        if st:
            total += st[1]
    return total


def _comm(pid):
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


class Sampler:
    """Peaks of the summed VmRSS and Pss over the trees under roots, and of qmgr's own
    VmRSS (the process named qmgr in either suite), every 100 ms."""

    def __init__(self, roots):
        self.roots, self.peak, self.peak_pss, self.peak_qmgr = roots, 0, 0, 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop.is_set():
            pids = [p for r in self.roots for p in tree(r)]
            rss = {p: _rss_kb(p) for p in pids}
            self.peak = max(self.peak, sum(rss.values()))
            self.peak_pss = max(self.peak_pss, sum(_pss_kb(p) for p in pids))
            self.peak_qmgr = max([self.peak_qmgr] + [rss[p] for p in pids
                                                      if _comm(p) == "qmgr"])
            self._stop.wait(0.1)

    def stop(self):
        self._stop.set()
        self._t.join()
        return self.peak, self.peak_pss


class CpuGroup:
    """CPU time of every process of one suite, including those that have exited: a
    cgroup that the suite's master is started in (its children inherit it, and a
    cgroup's usage keeps what its exited members used). cgroup v2's cpu.stat
    (usage_usec, present without the cpu controller) where the unified hierarchy is
    writable, else v1's cpuacct.usage; without either, None (the caller falls back to
    summing /proc over the master's tree). The benchmark joins the group only for the
    moment it runs the suite's start command, then goes back to its own."""

    def __init__(self, name):
        self.path = self.home = self.kind = None
        mounts = [line.split() for line in Path("/proc/self/mounts").read_text()
                  .splitlines()]
        own = [line.split(":", 2) for line in Path("/proc/self/cgroup").read_text()
               .splitlines()]
        for kind, usage in (("cgroup2", "cpu.stat"), ("cpuacct", "cpuacct.usage")):
            if kind == "cgroup2":
                mount = next((m[1] for m in mounts if m[2] == "cgroup2"), None)
                rel = next((o[2] for o in own if o[0] == "0" and o[1] == ""), None)
            else:
                mount = next((m[1] for m in mounts if m[2] == "cgroup"
                              and "cpuacct" in m[3].split(",")), None)
                rel = next((o[2] for o in own if "cpuacct" in o[1].split(",")), None)
            if mount is None or rel is None:
                continue
            home = Path(mount + rel)
            path = home / f"rostfix-bench-{os.getpid()}-{name}"
            try:
                path.mkdir(exist_ok=True)
            except OSError:
                continue
            if (path / usage).exists():
                self.path, self.home, self.kind = path, home, kind
                return
            path.rmdir()

    def usage_s(self):
        if self.kind == "cgroup2":
            for line in (self.path / "cpu.stat").read_text().splitlines():
                if line.startswith("usage_usec "):
                    return int(line.split()[1]) / 1e6
        return int((self.path / "cpuacct.usage").read_text()) / 1e9

    @contextlib.contextmanager
    def joined(self):
        """The benchmark itself in the group while the body runs (start a suite)."""
        if self.path is None:
            yield
            return
        (self.path / "cgroup.procs").write_text(str(os.getpid()))
        try:
            yield
        finally:
            (self.home / "cgroup.procs").write_text(str(os.getpid()))

    def close(self):
        """Kills what is left in the group (only the suite's own processes are there),
        then removes it."""
        if self.path is None or not self.path.exists():
            return
        for _ in range(50):
            pids = [int(p) for p in (self.path / "cgroup.procs").read_text().split()]
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            try:
                self.path.rmdir()
                return
            except OSError:
                time.sleep(0.1)
        log(f"could not remove {self.path}")


# -- suites ---------------------------------------------------------------------------

def count_files(dirs):
    n = 0
    for d in dirs:
        for _root, _dirs, files in os.walk(d):
            n += sum(1 for f in files if not f.startswith("tmp."))
    return n


def ensure_system_users():
    """The suite's mail_owner and setgid group, as tests/e2e/harness.py makes them (its
    ensure_system_users is not called because it re-homes the e2e users that a parallel
    test run may be using). Shared with the e2e tests, so left in place at the end."""
    if subprocess.run(["getent", "group", harness.SETGID_GROUP],
                      capture_output=True).returncode != 0:
        subprocess.run(["groupadd", "--system", harness.SETGID_GROUP], check=True)
    if subprocess.run(["id", harness.MAIL_OWNER], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir",
                        "/nonexistent", "--shell", "/usr/sbin/nologin",
                        harness.MAIL_OWNER], check=True)


def ensure_bench_users(names, homes):
    """Our own mailbox users (USER, and local-many's USER001...), homes under `homes`;
    remove_bench_users() takes them away at the end."""
    for name in names:
        home = homes / name
        if subprocess.run(["id", name], capture_output=True).returncode != 0:
            subprocess.run(["useradd", "--no-create-home", "--home-dir", str(home),
                            "--shell", "/usr/sbin/nologin", name], check=True)
        home.mkdir(parents=True, exist_ok=True)
        pw = pwd.getpwnam(name)
        os.chown(home, pw.pw_uid, pw.pw_gid)
        os.chmod(home, 0o755)


def remove_bench_users(names, homes):
    for name in names:
        if subprocess.run(["id", name], capture_output=True).returncode == 0:
            subprocess.run(["userdel", name], capture_output=True)
        discard(homes / name)


def many_users(cfg):
    return [f"{USER}{i:03d}" for i in range(1, cfg.local_users + 1)]


def maildir_count(users):
    n = 0
    for user in users:
        new = Path(pwd.getpwnam(user).pw_dir) / "Maildir" / "new"
        n += len(os.listdir(new)) if new.is_dir() else 0
    return n


# Files the benchmark is done with are moved here and deleted only at the end. Deleting
# thousands of files just before a run makes the next file creations slow on ext4 (the
# inode allocator skips recently freed inodes, up to minutes after the deletion), which
# would charge the benchmark's own clean-up to whichever suite runs next.
TRASH = WORK / "trash"


def discard(path):
    """Moves `path` (a Maildir, an instance) out of the way; see TRASH. Something on
    another file system than TRASH (Postfix's spool, on some machines) is deleted."""
    if not os.path.lexists(path):
        return
    TRASH.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(path, TRASH / f"{time.monotonic_ns()}-{Path(path).name}")
    except OSError:
        shutil.rmtree(path, ignore_errors=True)


def empty_trash():
    shutil.rmtree(TRASH, ignore_errors=True)


def reset_maildirs(users):
    for user in users:
        discard(Path(pwd.getpwnam(user).pw_dir) / "Maildir")


def variant_settings(variant, cfg, rig):
    """main.cf settings of the variants both suites run (the others are Rostfix's)."""
    routes = f"{DISCARD_MAP}, texthash:{rig.routes}"
    if variant == "fanout100k":
        # Retries after 421/450 within seconds, not the benchmark's usual 300 s (which
        # exists to make a deferral fail the run); the per-destination limit set to
        # both suites' default explicitly, since it is what the run checks.
        # No size limit: Postfix counts the envelope in message_size_limit, and the
        # 100 000 recipients of fanout-100k-rcpts take it past the default 10 MB
        # ("552 5.3.4 Error: message file too big"); Rostfix counts the content only.
        return {"transport_maps": routes, "minimal_backoff_time": f"{cfg.f100k_backoff}s",
                "maximal_backoff_time": f"{2 * cfg.f100k_backoff}s",
                "smtp_destination_concurrency_limit": str(cfg.f100k_concurrency),
                "message_size_limit": "0"}
    if variant == "deferred":
        # Both suites' defaults: no scan of deferred/ but the one the flush asks for.
        return {"transport_maps": routes, "queue_run_delay": "300s",
                "minimal_backoff_time": "300s", "maximal_backoff_time": "4000s"}
    raise ValueError(variant)


# Set by a variant and by no base configuration (Postfix: removed with postconf -X).
VARIANT_ONLY_KEYS = ("smtp_destination_concurrency_limit", "message_size_limit")


def populate_deferred(template, copies, retry_at):
    """`copies` copies of the queue file `template` beside it in deferred/ (or its
    hashed subdirectory), each named as both suites name queue files (5 hex digits of
    microseconds, then the inode number in hex: Postfix's postsuper would rename a file
    whose name does not match its inode), with the template's owner and mode and
    `retry_at` as mtime (the time before which neither suite retries it). Cheap: one
    create, write and rename each, nothing goes through SMTP."""
    data = template.read_bytes()
    st = template.stat()
    deferred = next(p for p in template.parents if p.name == "deferred")
    depth = len(template.relative_to(deferred).parts) - 1
    if depth and list(template.relative_to(deferred).parts[:-1]) != list(template.name[:depth]):
        raise RuntimeError(f"{template}: hashed directory is not the id's first letters")
    tmp = deferred / f"bench-tmp.{os.getpid()}"
    for i in range(copies):
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, st.st_mode & 0o7777)
        try:
            os.write(fd, data)
            os.fchown(fd, st.st_uid, st.st_gid)
            os.fchmod(fd, st.st_mode & 0o7777)
            os.utime(fd, (retry_at, retry_at))
            ino = os.fstat(fd).st_ino
        finally:
            os.close(fd)
        qid = f"{(i * 7919) % 1000000:05X}{ino:X}"
        target = deferred.joinpath(*qid[:depth], qid)
        if depth and not target.parent.is_dir():
            # Postfix makes a hashed subdirectory when it first needs it: as it would.
            target.parent.mkdir(parents=True)
            dst = template.parent.stat()
            for d in [target.parent] + list(target.parent.parents)[:depth - 1]:
                os.chown(d, dst.st_uid, dst.st_gid)
                os.chmod(d, dst.st_mode & 0o7777)
        os.rename(tmp, target)
    os.utime(template, (retry_at, retry_at))


class Rostfix:
    name = "rostfix"

    def __init__(self, runs_dir, relay_port, cfg, rig):
        self.runs_dir, self.cfg, self.rig = runs_dir, cfg, rig
        self.main_extra = {
            "relayhost": f"[127.0.0.1]:{relay_port}",
            "transport_maps": DISCARD_MAP,
            "smtpd_recipient_limit": "100000",
            "queue_run_delay": "1s", "minimal_backoff_time": "300s",
            "maximal_backoff_time": "600s"}
        self.inst = harness.Instance(runs_dir, main_extra=self.main_extra)
        self.main_cf = (self.inst.conf / "main.cf").read_text()
        self.extra = {}    # the variant's settings, in main.cf now
        self.warm = None   # the long-lived instance while a cold one runs
        self.engines = []
        self.cpu = CpuGroup(self.name)

    @property
    def port(self):
        return self.inst.port

    def boot(self):
        with self.cpu.joined():
            self.inst.start()

    def halt(self):
        self.inst.stop()

    def start(self):
        self.boot()

    def _drop(self, inst):
        inst.stop()
        inst.forget()
        if not os.environ.get("BENCH_KEEP"):  # its queue and log, for a post-mortem
            discard(inst.base)

    def stop(self):
        if self.warm is not None:
            self._drop(self.inst)
            self.inst, self.warm = self.warm, None
        self._drop(self.inst)

    def restart_with(self, variant):
        """Restarts with a variant's settings added to main.cf (None: the base)."""
        if variant in ("dkim", "shared"):
            self.extra = {"dkim": self._dkim, "shared": self._shared}[variant]()
        else:
            self.extra = variant_settings(variant, self.cfg, self.rig) if variant else {}
        self.inst.stop()
        (self.inst.conf / "main.cf").write_text(self.main_cf + self._extra_text())
        self.boot()

    def _extra_text(self):
        return "".join(f"{k} = {v}\n" for k, v in self.extra.items())

    def cold_start(self):
        """A new instance with a new, empty queue directory (so no recycled queue files)
        and new processes, in place of the current one; the long-lived instance waits
        stopped, its queue as it was, until cold_end()."""
        if self.warm is None:
            self.warm = self.inst
            self.warm.stop()
        else:
            self._drop(self.inst)
        self.inst = harness.Instance(self.runs_dir, main_extra=self.main_extra)
        main_cf = self.inst.conf / "main.cf"
        main_cf.write_text(main_cf.read_text() + self._extra_text())
        self.boot()

    def cold_end(self):
        if self.warm is None:
            return
        self._drop(self.inst)
        self.inst, self.warm = self.warm, None
        self.boot()

    def maillog(self):
        return self.inst.maillog

    def flush(self):
        self.inst.cmd("rostqueue", "-f")

    def _dkim(self):
        keys = self.inst.base / "dkim"
        if not keys.exists():
            keys.mkdir()
            subprocess.run([str(harness.BIN / "rostfix"), "dkim-keygen", "-a", "rsa", "-D",
                            str(keys), "source.test", "bench"], check=True,
                           capture_output=True)
            (keys / "KeyTable").write_text(
                f"bench._domainkey.source.test source.test:bench:{keys}/bench.private\n")
            (keys / "SigningTable").write_text("*@source.test bench._domainkey.source.test\n")
        return {"rostfix_dkim_key_table": f"{keys}/KeyTable",
                "rostfix_dkim_signing_table": f"refile:{keys}/SigningTable"}

    def _shared(self):
        from test_sql_tables import Postgres  # noqa: E402 (bench-only dependency)
        from test_shared_limits import Redis  # noqa: E402
        if not self.engines:
            self.engines = [Postgres(), Redis(free_port(), str(self.inst.base))]
        pg, redis = self.engines
        cf = self.inst.conf / "pgsql-senders.cf"
        cf.write_text(pg.cf("SELECT 'OK' FROM domain WHERE domain='%s' AND active = 1"))
        os.chown(cf, 0, pwd.getpwnam(harness.MAIL_OWNER).pw_gid)
        os.chmod(cf, 0o640)
        return {"smtpd_sender_restrictions": f"check_sender_access proxy:pgsql:{cf}",
                "rostfix_anvil_redis_server": f"127.0.0.1:{redis.port}",
                "smtpd_client_event_limit_exceptions": "",
                "smtpd_client_connection_rate_limit": "10000000",
                "smtpd_client_message_rate_limit": "10000000",
                "smtpd_client_recipient_rate_limit": "10000000"}

    def close_engines(self):
        for engine in self.engines:
            (engine.close if hasattr(engine, "close") else engine.stop)()
        self.engines = []

    def master_pid(self):
        for pid, prog in self.inst.processes().items():
            if prog == "master":
                return pid
        raise RuntimeError("rostfix master not running")

    def queue_dir(self):
        return self.inst.queue

    def purge(self):
        """Empty the queue so a failed scenario does not leak into the next one."""
        self.inst.cmd("rostsuper", "-d", "ALL", check=False)

    def smtp_is_placeholder(self):
        text = (REPO / "crates/smtp/src/main.rs").read_text(errors="replace")
        return "PLACEHOLDER" in text.upper()[:2000]


class Postfix:
    name = "postfix"
    # What `postfix start` makes anew when missing (post-install create-missing).
    QUEUES = ("active", "bounce", "corrupt", "defer", "deferred", "flush", "hold",
              "incoming", "maildrop", "saved", "trace")
    PARKED = POSTFIX_SPOOL.parent / "postfix-bench-parked"

    def __init__(self, relay_port, cfg, rig):
        self.port = free_port()
        self.relay_port, self.cfg, self.rig = relay_port, cfg, rig
        self.extra = {}
        self.cpu = CpuGroup(self.name)

    def install(self):
        if not Path("/usr/sbin/postfix").exists():
            env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
            sel = "postfix postfix/main_mailer_type select No configuration\n"
            subprocess.run(["debconf-set-selections"], input=sel, text=True, check=True)
            subprocess.run(["apt-get", "install", "-y", "postfix"], env=env, check=True)
        subprocess.run(["postfix", "stop"], capture_output=True)  # the package may start it
        if not Path("/etc/postfix/master.cf").exists():
            shutil.copy("/usr/share/postfix/master.cf.dist", "/etc/postfix/master.cf")
        Path("/etc/postfix/main.cf").touch()

    def configure(self):
        settings = {
            "myhostname": "mx.rostfix.test", "mydomain": "rostfix.test",
            "mydestination": "$myhostname, localhost.$mydomain, localhost, $mydomain",
            "mynetworks": "127.0.0.0/8", "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4", "home_mailbox": "Maildir/",
            "relayhost": f"[127.0.0.1]:{self.relay_port}",
            "transport_maps": DISCARD_MAP,
            "smtpd_recipient_limit": "100000", "alias_maps": "", "alias_database": "",
            "biff": "no", "compatibility_level": "3.6", "smtputf8_enable": "no",
            "maillog_file": "/var/log/postfix-bench.log",
            "queue_run_delay": "1s", "minimal_backoff_time": "300s",
            "maximal_backoff_time": "600s"}
        # A variant's settings over the base; one it no longer has goes back to the
        # default (postconf -X).
        settings.update(self.extra)
        subprocess.run(["postconf", "-e"] + [f"{k}={v}" for k, v in settings.items()],
                       check=True)
        gone = [k for k in VARIANT_ONLY_KEYS if k not in settings]
        if gone:
            subprocess.run(["postconf", "-X"] + gone, check=True)
        # No port 25: comment out the stock smtpd and listen on our own high port.
        subprocess.run(["postconf", "-M#", "smtp/inet"], check=False)
        subprocess.run(["postconf", "-M",
                        f"127.0.0.1:{self.port}/inet = 127.0.0.1:{self.port} inet n - y - - smtpd"],
                       check=True)
        subprocess.run(["postconf", "-M", "postlog/unix-dgram = postlog unix-dgram n - n - 1 postlogd"],
                       check=False)

    def boot(self):
        with self.cpu.joined():
            subprocess.run(["postfix", "start"], check=True, capture_output=True,
                           timeout=self.cfg.timeout)
        harness.wait_for(lambda: self._up(), timeout=60, what="postfix smtpd")

    def start(self):
        self.boot()

    def _up(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                return s.recv(512).startswith(b"220")
        except OSError:
            return False

    def halt(self):
        subprocess.run(["postfix", "stop"], capture_output=True)
        harness.wait_for(lambda: subprocess.run(
            ["postfix", "status"], capture_output=True).returncode != 0,
            timeout=60, what="postfix to stop")

    def stop(self):
        self.halt()
        self.cold_end(boot=False)

    def restart_with(self, variant):
        self.extra = variant_settings(variant, self.cfg, self.rig) if variant else {}
        self.halt()
        self.configure()
        self.boot()

    def cold_start(self):
        """Postfix stopped, its queue directories moved aside (the first time: parked,
        to come back at cold_end) or away (a previous cold run's), and started again:
        `postfix start` makes new, empty ones."""
        self.halt()
        first = not self.PARKED.exists()
        if first:
            self.PARKED.mkdir()
        for q in self.QUEUES:
            if first:
                if (POSTFIX_SPOOL / q).exists():
                    os.rename(POSTFIX_SPOOL / q, self.PARKED / q)
            else:
                discard(POSTFIX_SPOOL / q)
        self.boot()

    def cold_end(self, boot=True):
        if not self.PARKED.exists():
            return
        self.halt()
        for q in self.QUEUES:
            discard(POSTFIX_SPOOL / q)
            if (self.PARKED / q).exists():
                os.rename(self.PARKED / q, POSTFIX_SPOOL / q)
        self.PARKED.rmdir()
        if boot:
            self.boot()

    def master_pid(self):
        return int((POSTFIX_SPOOL / "pid/master.pid").read_text().split()[0])

    def queue_dir(self):
        return POSTFIX_SPOOL

    def maillog(self):
        return Path("/var/log/postfix-bench.log")

    def flush(self):
        subprocess.run(["postqueue", "-f"], check=True, capture_output=True)

    def purge(self):
        subprocess.run(["postsuper", "-d", "ALL"], capture_output=True)


def pending(suite):
    return count_files(suite.queue_dir() / q
                       for q in ("maildrop", "incoming", "active", "deferred"))


def deferred_count(suite):
    return count_files([suite.queue_dir() / "deferred"])


def deferred_files(suite):
    out = []
    for root, _dirs, files in os.walk(suite.queue_dir() / "deferred"):
        out += [Path(root) / f for f in files if not f.startswith(("tmp.", "bench-"))]
    return out


# -- scenarios ------------------------------------------------------------------------

def plan(cfg):
    """The result entries of the selected scenarios, in the order they run. A curve is
    one entry per point. Keys beside those of the JSON: base (the load), variant, cold,
    sessions, size."""
    entries = []

    def add(name, base, messages, variant=None, cold=False, sessions=None, size=None,
            curve=None, x=None):
        entries.append({"name": name, "base": base, "variant": variant, "cold": cold,
                        "messages": messages, "sessions": sessions or cfg.sessions,
                        "size": size or cfg.size, "curve": curve, "x": x})
    for sc in cfg.scenarios:
        if sc in VARIANTS:
            add(sc, VARIANTS[sc][0], cfg.messages, variant=VARIANTS[sc][1])
        elif sc in COLD:
            add(sc, COLD[sc], cfg.cold_messages, cold=True)
        elif sc == "fanout":
            add(sc, sc, cfg.fanout_rcpts)
        elif sc == "fanout-100k-rcpts":
            add(sc, sc, cfg.f100k_rcpts, variant="fanout100k")
        elif sc == "fanout-100k-msgs":
            add(sc, sc, cfg.f100k_messages, variant="fanout100k")
        elif sc == "curve-sessions":
            for n in cfg.curve_sessions:
                add(f"sessions-{n}", cfg.curve_base, cfg.curve_messages, sessions=n,
                    curve="sessions", x=n)
        elif sc == "curve-sizes":
            for size in cfg.curve_sizes:
                # Bounded by bytes too: 20 000 messages of 10 MB would be 200 GB.
                n = min(cfg.curve_messages, max(cfg.sessions, cfg.curve_bytes // size))
                add(f"size-{size}", cfg.curve_base, n, size=size, curve="size", x=size)
        elif sc == "curve-deferred":
            for n in cfg.deferred:
                add(f"deferred-{n}", "deferred", n, variant="deferred", cold=True,
                    curve="deferred", x=n)
        else:
            add(sc, sc, cfg.messages)
    return entries


def recipient(e):
    return {"receive": f"user@{DISCARD_DOMAIN}", "local": f"{USER}@localhost",
            "relay": "user@relay.test", "ceiling": "user@relay.test"}[e["base"]]


def f100k_domains(cfg):
    return [f"d{i}.{FANOUT100K_DOMAIN}" for i in range(cfg.f100k_domains)]


def send_load(e, port, cfg):
    """The scenario's mail, from the client's first connection to its last 250."""
    base, n = e["base"], e["messages"]
    if base == "fanout":
        fanout_send(port, cfg, [f"u{i}@d{i % cfg.fanout_domains}.fanout.test"
                                for i in range(n)])
    elif base == "fanout-100k-rcpts":
        domains = f100k_domains(cfg)
        fanout_send(port, cfg, [f"u{i}@{domains[i % len(domains)]}" for i in range(n)])
    elif base == "fanout-100k-msgs":
        smtp_source_many(port, cfg, spread(n, [f"u@{d}" for d in f100k_domains(cfg)]),
                         e["sessions"], e["size"])
    elif base == "local-many":
        smtp_source_many(port, cfg, spread(n, [f"{u}@localhost" for u in many_users(cfg)]),
                         e["sessions"], e["size"])
    else:
        smtp_source(port, cfg, recipient(e), n, e["sessions"], e["size"])


def log_lines_since(path, offset, needle):
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read().count(needle)
    except OSError:
        return 0


def log_size(path):
    try:
        return path.stat().st_size
    except OSError:
        return 0


def run_once(e, suite, rig, cfg):
    """One timed run; returns a dict: rate (msgs/s), rss (kB), pss (kB), qmgr (qmgr's
    peak RSS, kB), cpu (s per 1000, whole suite), cpu_tree (s per 1000, the old /proc
    sum), accepted (msgs/s until the client had its last 250), seconds, and for
    fanout-100k what the proxy counted."""
    base, n = e["base"], e["messages"]
    users = {"local": [USER], "local-many": many_users(cfg)}.get(base, [])
    reset_maildirs(users)
    sink = rig.sink
    base_sink = sink.count
    if base == "ceiling":
        roots, port = [sink.proc.pid], sink.port
    else:
        roots, port = [suite.master_pid()], suite.port
    tolerate_deferred = base.startswith("fanout-100k")
    if tolerate_deferred:
        rig.proxy.ask("reset")
        log_at = log_size(suite.maillog())
    cpu0 = sum(cpu_ticks(r) for r in roots)
    cg0 = suite.cpu.usage_s() if suite and suite.cpu.path else None
    sampler = Sampler(roots)
    t0 = time.monotonic()
    send_load(e, port, cfg)
    accepted = time.monotonic() - t0  # every message had its 250 (after fsync)

    def done():
        if base == "ceiling":
            return sink.count - base_sink >= n
        if not tolerate_deferred and deferred_count(suite):
            raise RuntimeError(f"{suite.name}: mail was deferred in {e['name']}")
        # The queue first: while it holds mail there is no need to list a Maildir of
        # up to 20 000 files (every 20 ms, on the CPUs the suite is using).
        if pending(suite):
            return False
        return not users or maildir_count(users) >= n
    harness.wait_for(done, timeout=cfg.timeout, interval=0.02 if n <= 20000 else 0.2,
                     what=f"{e['name']} on {suite.name if suite else 'sink'} to finish")
    elapsed = time.monotonic() - t0
    cpu_tree = (sum(cpu_ticks(r) for r in roots) - cpu0) / CLK_TCK
    cpu = suite.cpu.usage_s() - cg0 if cg0 is not None else cpu_tree
    rss = sampler.stop()  # (rss_kb, pss_kb)
    out = {"rate": n / elapsed, "rss": rss[0], "pss": rss[1], "qmgr": sampler.peak_qmgr,
           "cpu": cpu * 1000 / n, "cpu_tree": cpu_tree * 1000 / n,
           "accepted": n / accepted, "seconds": elapsed}
    if tolerate_deferred:
        out.update(concurrency_check(rig, cfg))
        out["deferrals"] = log_lines_since(suite.maillog(), log_at, b"status=deferred")
        out["bounced"] = log_lines_since(suite.maillog(), log_at, b"status=bounced")
    return out


def concurrency_check(rig, cfg):
    """Most sessions any fanout-100k destination had open at once, by the proxy's
    count, against the limit both suites were configured with."""
    stats = rig.proxy.ask("stats")
    peaks = {rig.port_domain[int(p)]: k for p, k in stats["peak"].items()}
    over = {d: k for d, k in peaks.items() if k > cfg.f100k_concurrency}
    return {"max_sessions_per_destination": max(peaks.values(), default=0),
            "destinations_over_limit": len(over), "over_limit": dict(sorted(over.items())[:20]),
            "sessions": sum(stats["sessions"].values())}


def measure(e, suite, rig, cfg):
    runs = []
    for i in range(cfg.runs):
        if e["cold"]:
            suite.cold_start()
        r = run_once(e, suite, rig, cfg)
        runs.append(r)
        extra = (f", at most {r['max_sessions_per_destination']} sessions per "
                 f"destination, {r['deferrals']} deferrals"
                 if "max_sessions_per_destination" in r else "")
        log(f"{e['name']} {suite.name if suite else 'sink'} run {i + 1}: "
            f"{r['rate']:.0f} msgs/s, {r['seconds']:.1f} s, peak RSS {r['rss']} kB "
            f"(PSS {r['pss']} kB, qmgr {r['qmgr']} kB), {r['cpu']:.2f} CPU s/1000{extra}")
    rates = [r["rate"] for r in runs]
    out = {"msgs_per_s": round(statistics.median(rates), 1), "min": round(min(rates), 1),
           "max": round(max(rates), 1), "rss_kb": max(r["rss"] for r in runs),
           "pss_kb": max(r["pss"] for r in runs),
           "cpu_s_per_1000": round(statistics.median(r["cpu"] for r in runs), 3),
           "accepted_msgs_per_s": round(statistics.median(r["accepted"] for r in runs), 1),
           "seconds": round(statistics.median(r["seconds"] for r in runs), 2),
           "qmgr_rss_kb": max(r["qmgr"] for r in runs)}
    if suite and suite.cpu.path:
        out["cpu_tree_s_per_1000"] = round(statistics.median(r["cpu_tree"] for r in runs), 3)
    if "max_sessions_per_destination" in runs[0]:
        out["max_sessions_per_destination"] = max(r["max_sessions_per_destination"]
                                                  for r in runs)
        out["concurrency_limit"] = cfg.f100k_concurrency
        out["destinations_over_limit"] = max(r["destinations_over_limit"] for r in runs)
        out["over_limit"] = next((r["over_limit"] for r in runs if r["over_limit"]), {})
        for k in ("sessions", "deferrals", "bounced"):
            out[k] = max(r[k] for r in runs)
    return out


def measure_deferred(e, suite, rig, cfg):
    """curve-deferred: N messages in deferred/ of a fresh queue, then the flush.

    One message to FLUSH_DOMAIN (nothing listens on its port) is deferred; the suite
    stops; the file is copied N-1 times (populate_deferred, retry time a day ahead);
    the suite starts (start_s: how long its start command took, e.g. Postfix's
    postsuper checking every file's name); qmgr's RSS is watched for cfg.deferred_settle
    seconds (qmgr_idle_rss_kb); a sink starts listening on the port; rostqueue -f /
    postqueue -f; first_delivery_s is the time until the sink got the first message.
    The sampling goes on cfg.deferred_watch seconds more (delivered_in_watch counts
    what arrived by then); qmgr_rss_kb is qmgr's peak over all of it. One run."""
    n = e["messages"]
    suite.cold_start()
    smtp_source(suite.port, cfg, f"user@{FLUSH_DOMAIN}", 1, 1)
    template = harness.wait_for(lambda: pending(suite) == 1 and deferred_files(suite),
                                timeout=120, what="the template message to be deferred")[0]
    suite.halt()
    t = time.monotonic()
    populate_deferred(template, n - 1, time.time() + 86400)
    log(f"{e['name']} {suite.name}: {n} messages in deferred/ "
        f"({time.monotonic() - t:.0f} s to make)")
    t = time.monotonic()
    suite.boot()
    start_s = time.monotonic() - t
    sampler = Sampler([suite.master_pid()])
    sink = None
    try:
        time.sleep(cfg.deferred_settle)
        idle_qmgr = sampler.peak_qmgr
        sink = Sink(port=rig.flush_port)
        cg0 = suite.cpu.usage_s() if suite.cpu.path else None
        t0 = time.monotonic()
        suite.flush()
        harness.wait_for(lambda: sink.count >= 1, timeout=cfg.timeout, interval=0.01,
                         what=f"the first flushed message on {suite.name}")
        first = time.monotonic() - t0
        time.sleep(cfg.deferred_watch)
        delivered = sink.count
        cpu = suite.cpu.usage_s() - cg0 if cg0 is not None else None
    finally:
        rss, pss = sampler.stop()
        if sink:
            sink.stop()
    r = {"start_s": round(start_s, 2), "first_delivery_s": round(first, 3),
         "qmgr_idle_rss_kb": idle_qmgr, "qmgr_rss_kb": sampler.peak_qmgr,
         "rss_kb": rss, "pss_kb": pss, "watch_s": cfg.deferred_watch,
         "delivered_in_watch": delivered,
         "cpu_s": None if cpu is None else round(cpu, 2)}
    log(f"{e['name']} {suite.name}: start {r['start_s']} s, first delivery after "
        f"{r['first_delivery_s']} s, qmgr {idle_qmgr} kB idle, {r['qmgr_rss_kb']} kB "
        f"peak, {delivered} delivered in {cfg.deferred_watch} s")
    return r


def skip_reason(e, suite):
    if e["variant"] in ROSTFIX_ONLY_VARIANTS and suite.name != "rostfix":
        return "not measured: a variant of Rostfix's own configuration"
    remote = e["base"] in ("relay", "fanout", "deferred") or e["base"].startswith("fanout")
    if suite.name == "rostfix" and remote and suite.smtp_is_placeholder():
        return ("skipped: Rostfix's smtp client is still the foundation placeholder "
                "(crates/smtp/src/main.rs defers all remote mail; issue 4)")
    return None


def run_suite(suite, rig, cfg, entries, results):
    suite.start()
    try:
        for e in entries:
            if e["base"] == "ceiling":
                continue
            reason = skip_reason(e, suite)
            entry = results[e["name"]]
            if reason:
                log(f"{e['name']} {suite.name}: {reason}")
                entry.setdefault("skipped", {})[suite.name] = reason
                entry[suite.name] = None
                continue
            suite.purge()
            try:
                if e["variant"]:
                    suite.restart_with(e["variant"])
                if e["base"] == "deferred":
                    entry[suite.name] = measure_deferred(e, suite, rig, cfg)
                else:
                    entry[suite.name] = measure(e, suite, rig, cfg)
            except (RuntimeError, AssertionError, OSError, subprocess.TimeoutExpired,
                    subprocess.CalledProcessError) as ex:
                log(f"{e['name']} {suite.name}: FAILED: {ex}")
                entry.setdefault("failed", {})[suite.name] = str(ex)[:300]
                entry[suite.name] = None
            finally:
                if e["cold"]:
                    suite.cold_end()
                if e["variant"]:
                    suite.restart_with(None)
    finally:
        suite.stop()
        suite.cpu.close()
        if hasattr(suite, "close_engines"):
            suite.close_engines()


class Rig:
    """What every suite's load goes to: the sink (relayhost), fanout-100k's proxy and
    sinks, and the routes of the variants (a texthash transport map)."""

    def __init__(self, cfg, entries):
        self.sink = Sink()
        self.others, self.proxy, self.port_domain = [], None, {}
        # Nothing listens here until curve-deferred's flush.
        self.flush_port = harness.free_port()
        self.routes = WORK / "routes"
        lines = [f"{FLUSH_DOMAIN} smtp:[127.0.0.1]:{self.flush_port}"]
        if any(e["base"].startswith("fanout-100k") for e in entries):
            backends = {"fast": [], "slow": ["-w", "1"], "421": ["-Q", "MAIL"],
                        "450": ["-r", "RCPT"]}
            ports = {}
            for mode, options in backends.items():
                self.others.append(Sink(options=options))
                backends[mode] = self.others[-1].port
            for i, domain in enumerate(f100k_domains(cfg)):
                port = harness.free_port()
                ports[port] = {0: "slow", 1: "slow", 2: "421", 3: "450"}.get(i % 20, "fast")
                self.port_domain[port] = domain
                lines.append(f"{domain} smtp:[127.0.0.1]:{port}")
            self.proxy = Proxy(ports, backends)
        self.routes.write_text("\n".join(lines) + "\n")
        os.chmod(self.routes, 0o644)

    def close(self):
        if self.proxy:
            self.proxy.stop()
            (WORK / "sinkproxy.json").unlink(missing_ok=True)
        for sink in [self.sink] + self.others:
            sink.stop()
        self.routes.unlink(missing_ok=True)


def machine():
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = Path("/proc/meminfo").read_text().split("\n")[0].split()[1]
    return {"host": socket.gethostname(), "cpu": cpu, "cores": os.cpu_count(),
            "memory_kb": int(mem), "kernel": platform.release()}


def table(results, peers):
    def mem(v):
        return f"{v['rss_kb']}/{v['pss_kb']}" if v else "-"

    def f(v, fmt="{:.0f}"):
        return "-" if v is None else fmt.format(v)
    head = ["scenario", "rostfix msg/s (min-max)", "postfix msg/s (min-max)", "ratio",
            "rostfix RSS/PSS kB", "postfix RSS/PSS kB", "rostfix CPU s/1k", "postfix CPU s/1k"]
    rows = [head]
    for r in results:
        if r.get("curve") == "deferred":
            continue
        ro, po = r.get("rostfix"), r.get("postfix")
        cell = {}
        for k, v in (("r", ro), ("p", po)):
            cell[k] = (f"{v['msgs_per_s']:.0f} ({v['min']:.0f}-{v['max']:.0f})"
                       if v else ("skipped" if k in ("r", "p") and
                                  r.get("skipped", {}).get("rostfix" if k == "r" else "postfix")
                                  else "-"))
        ratio = (f"{ro['msgs_per_s'] / po['msgs_per_s']:.2f}"
                 if ro and po and r["name"] != "ceiling" else "-")
        rows.append([r["name"], cell["r"], cell["p"], ratio,
                     mem(ro), mem(po),
                     f(ro and ro["cpu_s_per_1000"], "{:.2f}"),
                     f(po and po["cpu_s_per_1000"], "{:.2f}")])
    out = [markdown(rows)] if len(rows) > 1 else []
    # What only some scenarios have: completion time, qmgr's peak, fanout-100k's
    # concurrency check, curve-deferred's flush.
    rows = [["scenario", "suite", "seconds", "qmgr kB", "details"]]
    for r in results:
        for name in ("rostfix", "postfix"):
            v = r.get(name)
            if not v or r["name"] == "ceiling":
                continue
            if r.get("curve") == "deferred":
                rows.append([r["name"], name, f"{v['first_delivery_s']:.2f} to 1st",
                             f"{v['qmgr_idle_rss_kb']}/{v['qmgr_rss_kb']}",
                             f"start {v['start_s']:.1f} s, {v['delivered_in_watch']} "
                             f"delivered in {v['watch_s']} s"])
                continue
            detail = ""
            if "max_sessions_per_destination" in v:
                detail = (f"max {v['max_sessions_per_destination']} sessions/destination "
                          f"(limit {v['concurrency_limit']}, "
                          f"{v['destinations_over_limit']} over), {v['deferrals']} "
                          f"deferrals, {v['bounced']} bounced")
            rows.append([r["name"], name, f"{v['seconds']:.1f}", str(v["qmgr_rss_kb"]),
                         detail])
    if len(rows) > 1:
        out.append(markdown(rows))
    return "\n\n".join(out)


def markdown(rows):
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |"
             for row in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def env_int(name, default):
    return int(os.environ.get(name) or default)


def env_ints(name, default):
    return [int(x) for x in (os.environ.get(name) or default).split(",") if x]


def ints(text):
    return [int(x) for x in text.split(",") if x]


def parse_args():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--peers", default=os.environ.get("PEERS", ""),
                   help="'postfix' to also benchmark Debian's postfix (installs it)")
    # (option, environment variable, default, help): the numbers.
    for opt, var, default, text in [
            ("--messages", "BENCH_MESSAGES", 20000,
             "messages per run (receive, relay, local, local-many, ceiling)"),
            ("--runs", "BENCH_RUNS", 3, "runs per scenario"),
            ("--sessions", "BENCH_SESSIONS", 20, "parallel SMTP sessions of the client"),
            ("--size", "BENCH_SIZE", 4096, "message size in bytes"),
            ("--fanout-rcpts", "BENCH_FANOUT_RCPTS", 5000, "recipients of fanout"),
            ("--fanout-domains", "BENCH_FANOUT_DOMAINS", 50, "domains of fanout"),
            ("--cold-messages", "BENCH_COLD_MESSAGES", 5000,
             "messages per run of receive-cold, relay-cold, local-cold"),
            ("--local-users", "BENCH_LOCAL_USERS", 100,
             "users local-many's messages are spread over"),
            ("--f100k-rcpts", "BENCH_F100K_RCPTS", 100000,
             "recipients of fanout-100k-rcpts' one message"),
            ("--f100k-messages", "BENCH_F100K_MESSAGES", 100000,
             "single-recipient messages of fanout-100k-msgs"),
            ("--f100k-domains", "BENCH_F100K_DOMAINS", 1000,
             "domains (each its own proxy port) of fanout-100k"),
            ("--f100k-concurrency", "BENCH_F100K_CONCURRENCY", 20,
             "smtp_destination_concurrency_limit in fanout-100k, checked"),
            ("--f100k-backoff", "BENCH_F100K_BACKOFF", 5,
             "minimal_backoff_time in fanout-100k, seconds (maximal: twice)"),
            ("--curve-messages", "BENCH_CURVE_MESSAGES", 5000,
             "messages per run of a curve point"),
            ("--curve-bytes", "BENCH_CURVE_BYTES", 1000000000,
             "at most this many bytes per run of a size point"),
            ("--deferred-settle", "BENCH_DEFERRED_SETTLE", 5,
             "seconds qmgr idles with curve-deferred's messages before the flush"),
            ("--deferred-watch", "BENCH_DEFERRED_WATCH", 30,
             "seconds watched after the first flushed delivery"),
            ("--timeout", "BENCH_TIMEOUT", 1800,
             "seconds one run may take before it counts as failed")]:
        p.add_argument(opt, type=int, default=env_int(var, default),
                       help=f"{text} ({var}, default {default})")
    # The lists: comma-separated numbers.
    for opt, var, default, text in [
            ("--curve-sessions", "BENCH_CURVE_SESSIONS", "1,5,20,100,500",
             "the points of curve-sessions"),
            ("--curve-sizes", "BENCH_CURVE_SIZES", "1000,100000,10000000",
             "the points of curve-sizes, bytes (10000000 is under both suites' "
             "message_size_limit of 10240000)"),
            ("--deferred", "BENCH_DEFERRED", "1000000",
             "messages in deferred/ for curve-deferred, one point each")]:
        p.add_argument(opt, type=ints, default=env_ints(var, default),
                       help=f"{text} ({var}, default {default})")
    p.add_argument("--curve-base", default=os.environ.get("BENCH_CURVE_BASE", "relay"),
                   choices=["receive", "relay", "local"],
                   help="the load of curve-sessions and curve-sizes (BENCH_CURVE_BASE)")
    p.add_argument("--scenarios", default=os.environ.get("BENCH_SCENARIOS",
                                                          ",".join(SCENARIOS)),
                   help=f"comma list of {SCENARIOS + OPT_IN} or groups {list(GROUPS)}")
    cfg = p.parse_args()
    chosen = {m for s in cfg.scenarios.split(",") if s for m in GROUPS.get(s, [s])}
    bad = sorted(chosen - set(SCENARIOS + OPT_IN))
    if bad or cfg.peers not in ("", "postfix"):
        p.error(f"unknown scenario(s) {bad} or peers {cfg.peers!r}")
    # Always in the documented order (cold ones after the warm ones, long ones last),
    # whatever order they were named in.
    cfg.scenarios = [s for s in SCENARIOS + OPT_IN if s in chosen]
    return cfg


def results_path(stem):
    """bench/results/STEM.json, or STEM-2.json, -3, ... when taken: a second run on one
    day must not overwrite the first run's figures (docs cite them by file name)."""
    path, n = RESULTS / f"{stem}.json", 1
    while path.exists():
        n += 1
        path = RESULTS / f"{stem}-{n}.json"
    return path


def parameters(cfg, entries):
    out = {"messages": cfg.messages, "runs": cfg.runs, "sessions": cfg.sessions,
           "size": cfg.size, "fanout_rcpts": cfg.fanout_rcpts,
           "fanout_domains": cfg.fanout_domains, "cold_messages": cfg.cold_messages,
           "local_users": cfg.local_users}
    bases = {e["base"] for e in entries}
    if bases & {"fanout-100k-rcpts", "fanout-100k-msgs"}:
        out.update({"f100k_rcpts": cfg.f100k_rcpts, "f100k_messages": cfg.f100k_messages,
                    "f100k_domains": cfg.f100k_domains,
                    "f100k_concurrency": cfg.f100k_concurrency,
                    "f100k_backoff": cfg.f100k_backoff,
                    "f100k_reject_every": F100K_REJECT_EVERY})
    if any(e["curve"] in ("sessions", "size") for e in entries):
        out.update({"curve_base": cfg.curve_base, "curve_messages": cfg.curve_messages,
                    "curve_bytes": cfg.curve_bytes})
    if "deferred" in bases:
        out.update({"deferred_settle": cfg.deferred_settle,
                    "deferred_watch": cfg.deferred_watch})
    return out


def main():
    try:
        cfg = parse_args()
    except SystemExit as e:
        return 64 if e.code == 2 else e.code  # EX_USAGE on bad arguments
    if os.geteuid() != 0:
        print("bench: must run as root (master, chroot, local delivery)", file=sys.stderr)
        return 77
    # SIGTERM unwinds like a failure, so that every `finally` cleans up (suites, sinks,
    # users, cgroups, Postfix's parked queue).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    fetch_load_tools()
    empty_trash()  # left by an interrupted run; before anything is measured
    entries = plan(cfg)
    homes = WORK / "homes"
    users = [USER] + (many_users(cfg) if "local-many" in cfg.scenarios else [])
    results = {}
    for e in entries:
        results[e["name"]] = {"name": e["name"], "messages": e["messages"],
                              "rostfix": None, "postfix": None}
        if e["cold"]:
            results[e["name"]]["cold"] = True
        if e["curve"]:
            results[e["name"]].update({"curve": e["curve"], "x": e["x"], "base": e["base"],
                                       "sessions": e["sessions"], "size": e["size"]})
    runs_dir = WORK / "instances"
    runs_dir.mkdir(parents=True, exist_ok=True)
    rig = cpu_kind = None
    suites = []
    try:
        ensure_system_users()
        ensure_bench_users(users, homes)
        rig = Rig(cfg, entries)
        ceiling = next((e for e in entries if e["base"] == "ceiling"), None)
        if ceiling:
            results["ceiling"]["rostfix"] = measure(ceiling, None, rig, cfg)
            if cfg.peers:
                results["ceiling"]["postfix"] = results["ceiling"]["rostfix"]
        rostfix = Rostfix(runs_dir, rig.sink.port, cfg, rig)
        suites.append(rostfix)
        cpu_kind = rostfix.cpu.kind
        run_suite(rostfix, rig, cfg, entries, results)
        if cfg.peers == "postfix":
            pf = Postfix(rig.sink.port, cfg, rig)
            suites.append(pf)
            pf.install()
            pf.configure()
            run_suite(pf, rig, cfg, entries, results)
    finally:
        for suite in suites:  # run_suite closed them, unless it never ran
            suite.cpu.close()
        if rig:
            rig.close()
        remove_bench_users(users, homes)
        empty_trash()
    out = {"machine": machine(), "date": datetime.datetime.now(datetime.timezone.utc)
           .strftime("%Y-%m-%dT%H:%M:%SZ"),
           "parameters": parameters(cfg, entries),
           "cpu_accounting": {"cgroup2": "cgroup v2 cpu.stat usage_usec of a cgroup per suite",
                              "cpuacct": "cgroup v1 cpuacct.usage of a cgroup per suite",
                              None: "/proc utime+stime+cutime+cstime of the master's tree"}
           [cpu_kind],
           "scenarios": [results[e["name"]] for e in entries]}
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = results_path(datetime.date.today().isoformat() + "-" + socket.gethostname())
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(table(out["scenarios"], cfg.peers))
    log(f"results written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
