"""Traffic shaping per mailbox provider (docs/bulk-sending.md, "Traffic shaping per
provider"): two sink "providers", each with two domains whose MX hosts match one
pattern (mx1/mx2.provider-a.test, mx1/mx2.provider-b.test, served by
tests/e2e/dns_server.py and pointing at a sink on a port of its own). Provider A
answers 421 4.7.0 to about 30% of the recipients: its bucket backs off and
recovers, logged; provider B keeps full speed and finishes first. The sinks count
concurrent connections and messages per connection per provider: no bucket limit is
exceeded. The rules file is edited during the run (a bad edit first: kept rules,
a warning naming file and line; then a good one: reloaded). Every message arrives
exactly once."""

import os
import re
import socketserver
import tempfile
import threading
import time

from dns_server import dnsmasq
from harness import free_port, wait_for
from smtpsink import ThreadingServer

PER_DOMAIN = 12
CONCURRENCY = 3
PER_CONNECTION = 4

RULES = f"""# written by tests/e2e/test_shaping.py
[provider-a]
mx = *.provider-a.test
concurrency = {CONCURRENCY}
messages_per_connection = {PER_CONNECTION}
rate = 7200
burst = 3
backoff_factor = 0.5
rate_floor = 2400
cooloff = 6s
recover_interval = 3s
recover_step = 50

[provider-b]
mx = *.provider-b.test
concurrency = {CONCURRENCY}
messages_per_connection = {PER_CONNECTION}
rate = 7200
burst = 3
"""


class Provider:
    """An SMTP sink standing for one provider: counts connections open at once and
    messages per connection, records each accepted message with its time, and (with
    `throttle`) answers 421 4.7.0 to every recipient whose running number says so
    (3 of every 10), or (with `refuse`) to each RCPT line it says yes to, then hangs
    up, as providers do. Bounded: 64 KiB lines, 30 s timeouts."""

    def __init__(self, port, throttle=False, refuse=None):
        self.port = port
        self.throttle = throttle
        self.refuse = refuse
        self.lock = threading.Lock()
        self.open = 0
        self.max_open = 0
        self.max_per_connection = 0
        self.rcpts_seen = 0
        self.throttled = 0
        self.accepted = []  # (time, subject)
        provider = self

        class Handler(socketserver.StreamRequestHandler):
            timeout = 30

            def handle(self):
                with provider.lock:
                    provider.open += 1
                    provider.max_open = max(provider.max_open, provider.open)
                try:
                    provider.session(self.rfile, self.wfile)
                except (ConnectionError, OSError):
                    pass
                finally:
                    with provider.lock:
                        provider.open -= 1

        self.server = ThreadingServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def session(self, rfile, wfile):
        def send(text):
            wfile.write((text + "\r\n").encode())

        def line():
            raw = rfile.readline(65536)
            if not raw:
                raise ConnectionError("client went away")
            return raw.decode("latin-1").rstrip("\r\n")

        send("220 sink.provider.test ESMTP")
        messages = 0
        while True:
            command = line()
            verb = command[:4].upper()
            if verb in ("EHLO", "HELO"):
                send("250 sink.provider.test")
            elif verb == "RCPT":
                with self.lock:
                    self.rcpts_seen += 1
                    refuse = ((self.throttle and self.rcpts_seen % 10 in (1, 4, 7))
                              or (self.refuse is not None and self.refuse(command)))
                    self.throttled += refuse
                if refuse:
                    send("421 4.7.0 rate limited, try again later")
                    return
                send("250 ok")
            elif verb == "DATA":
                send("354 go")
                subject = None
                while (l := line()) != ".":
                    if l.lower().startswith("subject:"):
                        subject = l.split(":", 1)[1].strip()
                messages += 1
                with self.lock:
                    self.accepted.append((time.monotonic(), subject))
                    self.max_per_connection = max(self.max_per_connection, messages)
                send("250 queued")
            elif verb == "QUIT":
                send("221 bye")
                return
            else:
                send("250 ok")

    def subjects(self):
        with self.lock:
            return [s for _, s in self.accepted]

    def last(self):
        with self.lock:
            return max(t for t, _ in self.accepted)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def test_throttled_provider_backs_off_and_recovers_while_the_other_keeps_speed(
        make_instance, workdir):
    providers = {"a": Provider(free_port(), throttle=True), "b": Provider(free_port())}
    domains = {f"{d}{n}.test": p for p in providers for d, n in ((p, 1), (p, 2))}
    records = []
    for domain, p in domains.items():
        mx = f"mx{domain[1]}.provider-{p}.test"
        records += [f"--mx-host={domain},{mx},10", f"--host-record={mx},127.0.0.1"]
    base = tempfile.mkdtemp(prefix="shaping-", dir=workdir)
    os.chmod(base, 0o755)
    rules = os.path.join(base, "shaping.cf")
    with open(rules, "w") as f:
        f.write(RULES)
    os.chmod(rules, 0o644)
    transport = os.path.join(base, "transport")
    with open(transport, "w") as f:
        f.writelines(f"{d} smtp:{d}:{providers[p].port}\n" for d, p in domains.items())
    os.chmod(transport, 0o644)
    try:
        with dnsmasq(records) as dns_port:
            inst = make_instance(main_extra={
                "transport_maps": f"texthash:{transport}",
                "rostfix_dns_servers": f"127.0.0.1:{dns_port}",
                "rostfix_shaping_rules": rules,
                "minimal_backoff_time": "2s",
                "maximal_backoff_time": "4s",
                "queue_run_delay": "2s",
            })
            wait_for(lambda: "shaping: loaded 2 bucket(s)" in inst.log_text(),
                     what="the rules to load")
            sent = {p: [] for p in providers}
            with inst.smtp() as s:
                for i in range(PER_DOMAIN):
                    for domain, p in domains.items():
                        subject = f"shaping {domain} {i}"
                        s.sendmail("news@example.org", [f"user{i}@{domain}"],
                                   f"Subject: {subject}\r\n\r\nhello\r\n".encode())
                        sent[p].append(subject)

            # Edited during the run: a bad edit is refused with its line number and
            # the rules in force stay; the fixed file is reloaded.
            time.sleep(1.5)
            bad = RULES + "\n[broken]\nmx = *.c.test\nrate = fast\n"
            bad_line = bad.splitlines().index("rate = fast") + 1
            with open(rules, "w") as f:
                f.write(bad)
            wait_for(lambda: (
                f"warning: shaping: {rules}: line {bad_line}: bad value for rate: "
                '"fast"; keeping the 2 bucket(s) in force') in inst.log_text(),
                what="the warning about the bad rules file")
            # The fixed file has a third bucket (for no test domain): the count in the
            # log line shows the new text was read.
            time.sleep(1.1)
            with open(rules, "w") as f:
                f.write(RULES + "\n[provider-c]\nmx = *.provider-c.test\nconcurrency = 1\n")
            wait_for(lambda: "shaping: reloaded 3 bucket(s)" in inst.log_text(),
                     what="the rules to be reloaded")

            def all_there():
                return all(len(providers[p].subjects()) >= len(sent[p]) for p in providers)

            wait_for(all_there, timeout=150, interval=0.5, what="every message delivered")
            inst.wait_queue_empty(timeout=30)
            wait_for(lambda: "shaping: bucket provider-a: " in inst.log_text()
                     and ", recovered" in inst.log_text(), timeout=30,
                     what="provider-a's bucket to recover")
            log = inst.log_text()
    finally:
        for p in providers.values():
            p.stop()

    # Exactly once, at both providers.
    for p in providers:
        got = providers[p].subjects()
        assert sorted(got) == sorted(sent[p]), f"provider {p}: {len(got)} of {len(sent[p])}"
    a, b = providers["a"], providers["b"]
    assert a.throttled >= 5, a.throttled
    assert b.throttled == 0
    # A's bucket backed off (logged with the reply and its server) and recovered.
    cut = re.search(r"qmgr\[\d+\]: warning: shaping: bucket provider-a: rate 7200/h -> 3600/h"
                    r", concurrency 3 -> 2 after 421 4\.7\.0 from mx[12]\.provider-a\.test"
                    r"\[127\.0\.0\.1\]", log)
    assert cut, log[-3000:]
    assert re.search(r"shaping: bucket provider-a: rate \d+/h -> \d+/h.*, recovering", log)
    assert re.search(r"shaping: bucket provider-a: .*, recovered", log)
    assert "shaping: bucket provider-b:" not in log
    # B kept its speed and finished well before A.
    assert b.last() + 5 < a.last(), (b.last(), a.last())
    # No bucket limit was exceeded, at either sink.
    for p in (a, b):
        assert 1 <= p.max_open <= CONCURRENCY, p.max_open
        assert 1 <= p.max_per_connection <= PER_CONNECTION, p.max_per_connection
    # Connection reuse did happen (so the per-connection limit was what stopped it).
    assert b.max_per_connection == PER_CONNECTION
