#!/usr/bin/python3
"""Rostfix benchmark harness (issue 7): the same load against Rostfix and, optionally,
Debian's Postfix on this machine, measured until every message has left the queue.

Usage (as root, from the repository; `make bench` does this):
    bench/bench.py [--peers postfix] [--messages N] [--runs N] [--sessions N] ...

Every option also reads an environment variable (BENCH_MESSAGES, BENCH_RUNS,
BENCH_SESSIONS, BENCH_SIZE, BENCH_FANOUT_RCPTS, BENCH_FANOUT_DOMAINS, BENCH_TIMEOUT,
PEERS). Load comes from Postfix's smtp-source / smtp-sink, unpacked from the Debian
package into bench/work/postfix (nothing installed for that). Everything talks to
127.0.0.1 only. See docs/performance.md for the method.
"""

import argparse
import datetime
import json
import os
import platform
import pwd
import re
import shutil
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
SCENARIOS = ["receive", "relay", "local", "fanout", "ceiling",
             "receive-dkim", "relay-dkim", "relay-shared"]
# Variants: the load of a base scenario on Rostfix configured otherwise, reported
# beside the base figures (Postfix is not measured in them):
# - *-dkim: native DKIM signing of every message (issue 15: "signing must not halve
#   throughput"), an RSA-2048 key for the From: domain of smtp-source's mail;
# - relay-shared: what the shared engines of a multi-machine set-up add per message
#   (issue 20): a check_sender_access lookup in PostgreSQL through proxymap for every
#   MAIL, and every connection, message and recipient counted in Redis by anvil.
VARIANTS = {"receive-dkim": ("receive", "dkim"), "relay-dkim": ("relay", "dkim"),
            "relay-shared": ("relay", "shared")}
# receive: mail for this domain goes to the discard transport in both suites, so the
# scenario measures intake to the durable queue (and the queue manager's pass), not a
# delivery agent.
DISCARD_DOMAIN = "discard.test"
DISCARD_MAP = f"inline:{{ {DISCARD_DOMAIN}=discard: }}"
# The benchmark's own mailbox user: not the e2e tests' rftest users, which a parallel
# `make test` deletes when it finishes.
USER = "rfbench"
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
    """smtp-sink on 127.0.0.1:PORT; counts messages from its -c running counter."""

    def __init__(self):
        self.port = free_port()
        self.count = 0
        argv = [str(PFX / "usr/sbin/smtp-sink"), "-c", "-u", "nobody",
                f"127.0.0.1:{self.port}", "256"]
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
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def smtp_source(port, cfg, to, messages):
    argv = [str(PFX / "usr/sbin/smtp-source"), "-s", str(cfg.sessions),
            "-l", str(cfg.size), "-m", str(messages), "-f", "bench@source.test",
            "-t", to, "-M", "source.test", f"127.0.0.1:{port}"]
    proc = subprocess.run(argv, env=tool_env(), capture_output=True, text=True,
                          timeout=cfg.timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"smtp-source failed: {proc.stderr.strip()[-500:]}")


def fanout_send(port, cfg):
    """One message, cfg.fanout_rcpts recipients spread over cfg.fanout_domains domains
    (smtp-source cannot vary the domain, so this client is Python's smtplib)."""
    rcpts = [f"u{i}@d{i % cfg.fanout_domains}.fanout.test"
             for i in range(cfg.fanout_rcpts)]
    body = ("Subject: fanout\r\n\r\n" + "x" * 76 + "\r\n") * max(1, cfg.size // 78)
    with smtplib.SMTP("127.0.0.1", port, timeout=120) as s:
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


class Sampler:
    """Peaks of the summed VmRSS and Pss over the trees under roots, every 100 ms."""

    def __init__(self, roots):
        self.roots, self.peak, self.peak_pss = roots, 0, 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop.is_set():
            pids = [p for r in self.roots for p in tree(r)]
            self.peak = max(self.peak, sum(_rss_kb(p) for p in pids))
            self.peak_pss = max(self.peak_pss, sum(_pss_kb(p) for p in pids))
            self._stop.wait(0.1)

    def stop(self):
        self._stop.set()
        self._t.join()
        return self.peak, self.peak_pss


# -- suites ---------------------------------------------------------------------------

def count_files(dirs):
    n = 0
    for d in dirs:
        for _root, _dirs, files in os.walk(d):
            n += sum(1 for f in files if not f.startswith("tmp."))
    return n


def ensure_bench_user(homes):
    """The suite's mail_owner and setgid group (as tests/e2e/harness.py makes them; its
    ensure_system_users is not called because it re-homes the e2e users that a parallel
    test run may be using), then our own mailbox user."""
    if subprocess.run(["getent", "group", harness.SETGID_GROUP],
                      capture_output=True).returncode != 0:
        subprocess.run(["groupadd", "--system", harness.SETGID_GROUP], check=True)
    if subprocess.run(["id", harness.MAIL_OWNER], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir",
                        "/nonexistent", "--shell", "/usr/sbin/nologin",
                        harness.MAIL_OWNER], check=True)
    home = homes / USER
    if subprocess.run(["id", USER], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "--no-create-home", "--home-dir", str(home),
                        "--shell", "/usr/sbin/nologin", USER], check=True)
    home.mkdir(parents=True, exist_ok=True)
    pw = pwd.getpwnam(USER)
    os.chown(home, pw.pw_uid, pw.pw_gid)
    os.chmod(home, 0o755)


def maildir_count():
    new = Path(pwd.getpwnam(USER).pw_dir) / "Maildir" / "new"
    return len(os.listdir(new)) if new.is_dir() else 0


# Files the benchmark is done with are moved here and deleted only at the end. Deleting
# thousands of files just before a run makes the next file creations slow on ext4 (the
# inode allocator skips recently freed inodes, up to minutes after the deletion), which
# would charge the benchmark's own clean-up to whichever suite runs next.
TRASH = WORK / "trash"


def discard(path):
    """Moves `path` (a Maildir, an instance) out of the way; see TRASH."""
    if not os.path.lexists(path):
        return
    TRASH.mkdir(parents=True, exist_ok=True)
    os.rename(path, TRASH / f"{time.monotonic_ns()}-{Path(path).name}")


def empty_trash():
    shutil.rmtree(TRASH, ignore_errors=True)


def reset_maildir():
    discard(Path(pwd.getpwnam(USER).pw_dir) / "Maildir")


class Rostfix:
    name = "rostfix"

    def __init__(self, base, relay_port):
        self.inst = harness.Instance(base, main_extra={
            "relayhost": f"[127.0.0.1]:{relay_port}",
            "transport_maps": DISCARD_MAP,
            "smtpd_recipient_limit": "100000",
            "queue_run_delay": "1s", "minimal_backoff_time": "300s",
            "maximal_backoff_time": "600s"})
        self.port = self.inst.port

        self.main_cf = (self.inst.conf / "main.cf").read_text()
        self.engines = []

    def start(self):
        self.inst.start()

    def stop(self):
        self.inst.stop()
        if not os.environ.get("BENCH_KEEP"):  # its queue and log, for a post-mortem
            discard(self.inst.base)

    def restart_with(self, variant):
        """Restarts with a variant's settings added to main.cf (None: the base)."""
        extra = {"dkim": self._dkim, "shared": self._shared}[variant]() if variant else {}
        self.inst.stop()
        (self.inst.conf / "main.cf").write_text(
            self.main_cf + "".join(f"{k} = {v}\n" for k, v in extra.items()))
        self.inst.start()

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

    def pending(self):
        return count_files(self.inst.queue / q
                           for q in ("maildrop", "incoming", "active", "deferred"))

    def deferred(self):
        return count_files([self.inst.queue / "deferred"])

    def purge(self):
        """Empty the queue so a failed scenario does not leak into the next one."""
        self.inst.cmd("rostsuper", "-d", "ALL", check=False)

    def smtp_is_placeholder(self):
        text = (REPO / "crates/smtp/src/main.rs").read_text(errors="replace")
        return "PLACEHOLDER" in text.upper()[:2000]


class Postfix:
    name = "postfix"

    def __init__(self, relay_port):
        self.port = free_port()
        self.relay_port = relay_port

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
        subprocess.run(["postconf", "-e"] + [f"{k}={v}" for k, v in settings.items()],
                       check=True)
        # No port 25: comment out the stock smtpd and listen on our own high port.
        subprocess.run(["postconf", "-M#", "smtp/inet"], check=False)
        subprocess.run(["postconf", "-M",
                        f"127.0.0.1:{self.port}/inet = 127.0.0.1:{self.port} inet n - y - - smtpd"],
                       check=True)
        subprocess.run(["postconf", "-M", "postlog/unix-dgram = postlog unix-dgram n - n - 1 postlogd"],
                       check=False)

    def start(self):
        subprocess.run(["postfix", "start"], check=True, capture_output=True)
        harness.wait_for(lambda: self._up(), timeout=30, what="postfix smtpd")

    def _up(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                return s.recv(512).startswith(b"220")
        except OSError:
            return False

    def stop(self):
        subprocess.run(["postfix", "stop"], capture_output=True)
        time.sleep(1)

    def master_pid(self):
        return int((POSTFIX_SPOOL / "pid/master.pid").read_text().split()[0])

    def pending(self):
        return count_files(POSTFIX_SPOOL / q
                           for q in ("maildrop", "incoming", "active", "deferred"))

    def deferred(self):
        return count_files([POSTFIX_SPOOL / "deferred"])

    def purge(self):
        subprocess.run(["postsuper", "-d", "ALL"], capture_output=True)


# -- scenarios ------------------------------------------------------------------------

def run_once(scenario, suite, sink, cfg):
    """One timed run; returns (msgs_per_s, peak_rss_kb, cpu_s_per_1000, accepted_per_s)
    where accepted_per_s is the rate at which the client got its 250s (intake only)."""
    reset_maildir()
    base_sink = sink.count
    if scenario == "ceiling":
        roots, port = [sink.proc.pid], sink.port
    else:
        roots, port = [suite.master_pid()], suite.port
    cpu0 = sum(cpu_ticks(r) for r in roots)
    sampler = Sampler(roots)
    t0 = time.monotonic()
    n = cfg.fanout_rcpts if scenario == "fanout" else cfg.messages
    if scenario == "fanout":
        fanout_send(port, cfg)
        accepted = time.monotonic() - t0
    else:
        base = VARIANTS.get(scenario, (scenario,))[0]
        to = {"receive": f"user@{DISCARD_DOMAIN}", "local": f"{USER}@localhost",
              "relay": "user@relay.test", "ceiling": "user@relay.test"}[base]
        smtp_source(port, cfg, to, cfg.messages)
    accepted = time.monotonic() - t0  # every message had its 250 (after fsync)

    def done():
        if scenario == "ceiling":
            return sink.count - base_sink >= cfg.messages
        if suite.deferred():
            raise RuntimeError(f"{suite.name}: mail was deferred in {scenario}")
        # The queue first: while it holds mail there is no need to list a Maildir of
        # up to 20 000 files (every 20 ms, on the CPUs the suite is using).
        if suite.pending():
            return False
        return scenario != "local" or maildir_count() >= cfg.messages
    harness.wait_for(done, timeout=cfg.timeout, interval=0.02,
                     what=f"{scenario} on {suite.name if suite else 'sink'} to finish")
    elapsed = time.monotonic() - t0
    cpu = sum(cpu_ticks(r) for r in roots) - cpu0
    rss = sampler.stop()  # (rss_kb, pss_kb)
    return n / elapsed, rss, cpu / CLK_TCK * 1000 / n, n / accepted


def measure(scenario, suite, sink, cfg):
    rates, rss, pss, cpu, acc = [], [], [], [], []
    for i in range(cfg.runs):
        r, m, c, a = run_once(scenario, suite, sink, cfg)
        acc.append(a)
        log(f"{scenario} {suite.name if scenario != 'ceiling' else 'sink'} run {i + 1}: "
            f"{r:.0f} msgs/s, peak RSS {m[0]} kB (PSS {m[1]} kB), {c:.2f} CPU s/1000")
        rates.append(r)
        rss.append(m[0])
        pss.append(m[1])
        cpu.append(c)
    return {"msgs_per_s": round(statistics.median(rates), 1), "min": round(min(rates), 1),
            "max": round(max(rates), 1), "rss_kb": max(rss), "pss_kb": max(pss),
            "cpu_s_per_1000": round(statistics.median(cpu), 3),
            "accepted_msgs_per_s": round(statistics.median(acc), 1)}


def skip_reason(scenario, suite):
    if scenario in VARIANTS and suite.name != "rostfix":
        return "not measured: a variant of Rostfix's own configuration"
    if (suite.name == "rostfix" and scenario in ("relay", "fanout")
            and suite.smtp_is_placeholder()):
        return ("skipped: Rostfix's smtp client is still the foundation placeholder "
                "(crates/smtp/src/main.rs defers all remote mail; issue 4)")
    return None


def run_suite(suite, sink, cfg, results):
    suite.start()
    try:
        for sc in cfg.scenarios:
            if sc == "ceiling":
                continue
            reason = skip_reason(sc, suite)
            entry = results[sc]
            if reason:
                log(f"{sc} {suite.name}: {reason}")
                entry.setdefault("skipped", {})[suite.name] = reason
                entry[suite.name] = None
                continue
            suite.purge()
            variant = VARIANTS.get(sc, (sc, None))[1]
            try:
                if variant:
                    suite.restart_with(variant)
                entry[suite.name] = measure(sc, suite, sink, cfg)
            except (RuntimeError, AssertionError, subprocess.TimeoutExpired,
                    subprocess.CalledProcessError) as e:
                log(f"{sc} {suite.name}: FAILED: {e}")
                entry.setdefault("failed", {})[suite.name] = str(e)[:300]
                entry[suite.name] = None
            finally:
                if variant:
                    suite.restart_with(None)
    finally:
        suite.stop()
        if hasattr(suite, "close_engines"):
            suite.close_engines()


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
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |"
             for row in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def env_int(name, default):
    return int(os.environ.get(name) or default)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--peers", default=os.environ.get("PEERS", ""),
                   help="'postfix' to also benchmark Debian's postfix (installs it)")
    p.add_argument("--messages", type=int, default=env_int("BENCH_MESSAGES", 20000))
    p.add_argument("--runs", type=int, default=env_int("BENCH_RUNS", 3))
    p.add_argument("--sessions", type=int, default=env_int("BENCH_SESSIONS", 20))
    p.add_argument("--size", type=int, default=env_int("BENCH_SIZE", 4096),
                   help="message size in bytes")
    p.add_argument("--fanout-rcpts", type=int, default=env_int("BENCH_FANOUT_RCPTS", 5000))
    p.add_argument("--fanout-domains", type=int,
                   default=env_int("BENCH_FANOUT_DOMAINS", 50))
    p.add_argument("--timeout", type=int, default=env_int("BENCH_TIMEOUT", 1800),
                   help="seconds one run may take before it counts as failed")
    p.add_argument("--scenarios", default=os.environ.get("BENCH_SCENARIOS",
                                                          ",".join(SCENARIOS)))
    cfg = p.parse_args()
    cfg.scenarios = [s for s in cfg.scenarios.split(",") if s]
    bad = [s for s in cfg.scenarios if s not in SCENARIOS]
    if bad or cfg.peers not in ("", "postfix"):
        p.error(f"unknown scenario(s) {bad} or peers {cfg.peers!r}")
    return cfg


def main():
    try:
        cfg = parse_args()
    except SystemExit as e:
        return 64 if e.code == 2 else e.code  # EX_USAGE on bad arguments
    if os.geteuid() != 0:
        print("bench: must run as root (master, chroot, local delivery)", file=sys.stderr)
        return 77
    fetch_load_tools()
    empty_trash()  # left by an interrupted run; before anything is measured
    homes = WORK / "homes"
    ensure_bench_user(homes)
    results = {s: {"name": s, "messages": cfg.fanout_rcpts if s == "fanout"
                   else cfg.messages, "rostfix": None, "postfix": None}
               for s in cfg.scenarios}
    sink = Sink()
    runs_dir = WORK / "instances"
    runs_dir.mkdir(parents=True, exist_ok=True)
    try:
        if "ceiling" in results:
            results["ceiling"]["rostfix"] = measure("ceiling", None, sink, cfg)
            if cfg.peers:
                results["ceiling"]["postfix"] = results["ceiling"]["rostfix"]
        run_suite(Rostfix(runs_dir, sink.port), sink, cfg, results)
        if cfg.peers == "postfix":
            pf = Postfix(sink.port)
            pf.install()
            pf.configure()
            run_suite(pf, sink, cfg, results)
    finally:
        sink.stop()
        empty_trash()
    out = {"machine": machine(), "date": datetime.datetime.now(datetime.timezone.utc)
           .strftime("%Y-%m-%dT%H:%M:%SZ"),
           "parameters": {"messages": cfg.messages, "runs": cfg.runs,
                          "sessions": cfg.sessions, "size": cfg.size,
                          "fanout_rcpts": cfg.fanout_rcpts,
                          "fanout_domains": cfg.fanout_domains},
           "scenarios": [results[s] for s in SCENARIOS if s in results]}
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / (datetime.date.today().isoformat() + "-" + socket.gethostname()
                      + ".json")
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(table(out["scenarios"], cfg.peers))
    log(f"results written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
