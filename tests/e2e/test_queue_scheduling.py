"""qmgr scheduling end to end (issue 4, "What must be shown" 2 and 5): per-destination
concurrency against Postfix's own smtp-sink, deferral with growing retry times and a
flush, expiry with an RFC 3464 report, a dead destination not holding other mail, and
rostqueue -s. Destinations are smtp-sink / Python sinks on 127.0.0.1 ports, reached
through transport_maps `[127.0.0.1]:PORT` entries: no DNS, nothing leaves loopback."""

import email
import email.policy
import json
import os
import re
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from harness import REPO, USER1, free_port, maildir_messages, wait_for
from smtpsink import Sink

TOOLS = REPO / "tests" / "fetch-postfix-tools.sh"


def postfix_tools():
    """The unpacked Postfix test tools, or skip."""
    proc = subprocess.run([str(TOOLS)], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        pytest.skip(f"Postfix's smtp-sink unavailable: {proc.stderr.strip()}")
    return Path(proc.stdout.strip())


def tool_env(pfx):
    return {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C",
            "LD_LIBRARY_PATH": str(pfx / "usr/lib/postfix")}


def client_closed(sock):
    """True once the peer has closed (EOF is pending or the socket is gone). On
    loopback the FIN of a close() is queued before the closer's next connect() returns,
    so a connection closed before a new one is opened is never counted with it."""
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


class CountingProxy:
    """A TCP relay 127.0.0.1:port -> 127.0.0.1:target that records how many client
    connections are open at once: at each accept it counts the earlier connections
    whose client has not closed (exact, not sampled)."""

    def __init__(self, target):
        self.target = target
        self.maximum = 0
        self.total = 0
        self.open = set()
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(256)
        self.port = self.sock.getsockname()[1]
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopped:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                live = sum(1 for c in self.open if not client_closed(c))
                self.open.add(client)
                self.total += 1
                self.maximum = max(self.maximum, live + 1)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _pipe(self, a, b):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _serve(self, client):
        client.settimeout(60)
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target), timeout=10)
            upstream.settimeout(60)
            t = threading.Thread(target=self._pipe, args=(upstream, client), daemon=True)
            t.start()
            self._pipe(client, upstream)
            t.join(60)
            upstream.close()
        except OSError:
            pass
        finally:
            with self.lock:
                self.open.discard(client)
            client.close()

    def stop(self):
        self.stopped = True
        self.sock.close()


class SmtpSink:
    """Postfix's smtp-sink on a loopback port; -w 1 holds each DATA a second so that
    parallel deliveries really overlap."""

    def __init__(self, pfx):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [str(pfx / "usr/sbin/smtp-sink"), "-u", "nobody", "-w", "1",
             f"127.0.0.1:{self.port}", "256"],
            env=tool_env(pfx), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self._up, timeout=10, what="smtp-sink to listen")

    def _up(self):
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def table_dir(workdir):
    """A folder the unprivileged daemons can read (tables are re-checked at lookup)."""
    d = Path(tempfile.mkdtemp(prefix="tables-", dir=workdir))
    os.chmod(d, 0o755)
    return d


def write_table(path, lines):
    path.write_text("".join(f"{k} {v}\n" for k, v in lines))
    os.chmod(path, 0o644)


def count_sent(inst):
    return inst.log_text().count("status=sent")


def test_concurrency_limit_per_destination_with_smtp_sink(make_instance, workdir):
    """2000 messages to 20 domains, each domain its own smtp-sink behind a counting
    relay: no destination ever has more connections open than
    smtp_destination_concurrency_limit (cached sessions included: qmgr sends the next
    request for a destination on the agent stream that holds the session), sessions
    are reused, and every message is delivered."""
    pfx = postfix_tools()
    limit, domains, per_domain = 3, 20, 100
    sinks, proxies = [], []
    try:
        for _ in range(domains):
            sink = SmtpSink(pfx)
            sinks.append(sink)
            proxies.append(CountingProxy(sink.port))
        tables = table_dir(workdir)
        transport = tables / "transport"
        write_table(transport, [(f"d{i}.test", f"smtp:[127.0.0.1]:{p.port}")
                                for i, p in enumerate(proxies)])
        inst = make_instance(main_extra={
            "transport_maps": f"texthash:{transport}",
            "smtp_destination_concurrency_limit": str(limit),
            "smtp_destination_recipient_limit": "50",
        })
        started = time.monotonic()
        for i in range(domains):
            proc = subprocess.run(
                [str(pfx / "usr/sbin/smtp-source"), "-s", "4", "-m", str(per_domain),
                 "-f", "sender@src.test", "-t", f"user@d{i}.test", "-M", "src.test",
                 f"127.0.0.1:{inst.port}"],
                env=tool_env(pfx), capture_output=True, text=True, timeout=120)
            assert proc.returncode == 0, proc.stderr
        total = domains * per_domain
        wait_for(lambda: count_sent(inst) >= total, timeout=150, interval=0.5,
                 what=f"{total} deliveries (have {count_sent(inst)})")
        elapsed = time.monotonic() - started
        maxima = [p.maximum for p in proxies]
        assert max(maxima) <= limit, maxima
        # The limit was actually reached: deliveries did run in parallel.
        assert max(maxima) == limit, maxima
        assert sum(p.total for p in proxies) >= total // 50
        # Connection reuse, visible at the sinks: far fewer connections than messages,
        # and the delivery log says which deliveries reused a session.
        connections = sum(p.total for p in proxies)
        assert connections < total // 2, (connections, total)
        assert re.search(r"conn_use=\d+", inst.log_text())
        assert "status=deferred" not in inst.log_text()
        inst.wait_queue_empty()
        print(f"2000 messages in {elapsed:.1f}s, per-destination maxima {maxima}, "
              f"{connections} connections")
    finally:
        for p in proxies:
            p.stop()
        for s in sinks:
            s.stop()


def deferred_mtime(inst, qid):
    return os.stat(inst.queue / "deferred" / qid).st_mtime


def test_deferred_then_flushed_then_expired_with_a_report(make_instance, workdir):
    port = free_port()
    tables = table_dir(workdir)
    transport = tables / "transport"
    write_table(transport, [("down.test", f"smtp:[127.0.0.1]:{port}"),
                            ("never.test", "smtp:[127.0.0.1]:9")])
    inst = make_instance(main_extra={
        "transport_maps": f"texthash:{transport}",
        "minimal_backoff_time": "2s",
        "maximal_backoff_time": "30s",
        "queue_run_delay": "1s",
        "maximal_queue_lifetime": "12s",
    })
    with inst.smtp() as s:
        s.sendmail("sender@src.test", ["rcpt@down.test"], b"Subject: later\r\n\r\nbody\r\n")
    qid = wait_for(lambda: inst.queue_ids("deferred"), what="the message to be deferred")[0]
    # rostqueue -j shows it deferred with the reason.
    out = inst.cmd("rostqueue", "-j").stdout.decode()
    entry = json.loads(out.splitlines()[0])
    assert entry["queue_name"] == "deferred" and entry["queue_id"] == qid
    assert "Connection refused" in entry["recipients"][0]["delay_reason"]
    # Retry times grow: each deferral waits about the time already spent in the queue.
    first = deferred_mtime(inst, qid)
    wait_for(lambda: inst.log_text().count("rcpt@down.test") >= 2 and
             (inst.queue / "deferred" / qid).exists() and deferred_mtime(inst, qid) > first,
             timeout=20, what="a second attempt")
    second = deferred_mtime(inst, qid)
    arrival = entry["arrival_time"]
    assert second - arrival > first - arrival
    # The destination comes up; rostqueue -f delivers now.
    sink = Sink(port)
    try:
        inst.cmd("rostqueue", "-f")
        wait_for(lambda: sink.messages, timeout=20, what="delivery after the flush")
        assert sink.messages[0][1] == ["rcpt@down.test"]
    finally:
        sink.stop()
    inst.wait_queue_empty()
    assert not inst.queue_ids("deferred")

    # A destination that never answers: after maximal_queue_lifetime the sender gets a
    # DSN (here the sender is a local user, so it lands in a Maildir).
    with inst.smtp() as s:
        s.sendmail(f"{USER1}@rostfix.test", ["x@never.test"],
                   b"Subject: doomed\r\nMessage-Id: <doomed@src.test>\r\n\r\nbody\r\n")
    msgs = wait_for(lambda: maildir_messages(USER1), timeout=60, what="the expiry DSN")
    report = email.message_from_bytes(msgs[0][1], policy=email.policy.default)
    assert report.get_content_type() == "multipart/report"
    assert report.get_param("report-type") == "delivery-status"
    parts = list(report.iter_parts())
    status = parts[1]
    assert status.get_content_type() == "message/delivery-status"
    # email parses message/delivery-status as a list of header blocks.
    blocks = status.get_payload()
    assert blocks[0]["Reporting-MTA"] == "dns; mx.rostfix.test"
    per_rcpt = blocks[1]
    assert per_rcpt["Final-Recipient"] == "rfc822; x@never.test"
    assert per_rcpt["Action"] == "failed"
    assert per_rcpt["Status"] == "4.4.7"
    assert "message delivery timed out" in per_rcpt["Diagnostic-Code"]
    assert "expired, returned to sender" in inst.log_text()


def test_dead_destination_does_not_hold_other_mail_and_site_flush(make_instance, workdir):
    dead_port, ok_port = free_port(), free_port()
    tables = table_dir(workdir)
    transport = tables / "transport"
    write_table(transport, [("dead.test", f"smtp:[127.0.0.1]:{dead_port}"),
                            ("ok.test", f"smtp:[127.0.0.1]:{ok_port}")])
    inst = make_instance(main_extra={
        "transport_maps": f"texthash:{transport}",
        "initial_destination_concurrency": "1",
        "minimal_backoff_time": "60s",
        "maximal_backoff_time": "120s",
    })
    ok = Sink(ok_port)
    try:
        with inst.smtp() as s:
            for i in range(4):
                s.sendmail("sender@src.test", [f"r{i}@dead.test"], b"Subject: d\r\n\r\nx\r\n")
            for i in range(4):
                s.sendmail("sender@src.test", [f"r{i}@ok.test"], b"Subject: o\r\n\r\nx\r\n")
        wait_for(lambda: len(ok.messages) == 4, timeout=30, what="mail to ok.test")
        wait_for(lambda: len(inst.queue_ids("deferred")) == 4, timeout=30,
                 what="the dead destination's mail deferred")
        log = inst.log_text()
        assert "marked dead" in log
        assert "status=deferred (delivery temporarily suspended: connect to" in log, log
        # Only the first message was tried against the dead destination.
        assert log.count(f"relay=127.0.0.1[127.0.0.1]:{dead_port}") == 1, log
        # rostqueue -s with the destination up again delivers it now.
        dead = Sink(dead_port)
        try:
            inst.cmd("rostqueue", "-s", "dead.test")
            wait_for(lambda: len(dead.messages) == 4, timeout=30, what="site flush")
        finally:
            dead.stop()
        inst.wait_queue_empty()
        wait_for(lambda: not inst.queue_ids("deferred"), what="deferred/ to empty")
    finally:
        ok.stop()
