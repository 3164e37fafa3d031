"""The native metrics endpoint scraped by a real Prometheus (issue 20). An instance
runs the metrics service (master.cf `metrics unix - - y - 1 metrics`, HTTP on a
loopback port); it receives a known mix: recipients relayed to Postfix's smtp-sink
(sent), to an smtp-sink that answers 4xx to RCPT (deferred), and to an unknown local
user (bounced by local; sent with a null sender so no notice follows). Debian's
Prometheus scrapes the endpoint every second; its query API must then give exactly that
mix per transport and status, the delay histogram's count, and the deferred queue's
size from the queue gauges."""

import json
import shutil
import subprocess
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from harness import free_port, stop_process, wait_for
from postfix_tools import SmtpSink, postfix_tools

PROMETHEUS = shutil.which("prometheus")

SENT = 3
DEFERRED = 2
BOUNCED = 1


class Prometheus:
    """Debian's prometheus scraping one target every second, on a loopback port."""

    def __init__(self, target, workdir):
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="prometheus-", dir=workdir))
        config = self.dir / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: rostfix\n"
            f"    static_configs:\n      - targets: ['{target}']\n")
        self.log = open(self.dir / "prometheus.log", "w+")
        self.proc = subprocess.Popen(
            [PROMETHEUS, f"--config.file={config}",
             f"--storage.tsdb.path={self.dir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=self.log, stderr=subprocess.STDOUT, cwd=self.dir)
        wait_for(self._ready, timeout=30, what="prometheus to be ready")

    def _ready(self):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready",
                                        timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def query(self, expr):
        """{labels-as-tuple: value} of an instant query."""
        url = (f"http://127.0.0.1:{self.port}/api/v1/query?"
               + urllib.parse.urlencode({"query": expr}))
        with urllib.request.urlopen(url, timeout=5) as r:
            body = json.load(r)
        assert body["status"] == "success", body
        return {tuple(sorted(s["metric"].items())): float(s["value"][1])
                for s in body["data"]["result"]}

    def stop(self):
        stop_process(self.proc, timeout=10)
        self.log.close()


def test_prometheus_scrapes_delivery_counts_and_queue_sizes(make_instance, workdir):
    if PROMETHEUS is None:
        pytest.skip("needs prometheus (tests/setup-deps.sh)")
    pfx = postfix_tools()
    good, bad = SmtpSink(pfx), SmtpSink(pfx, reject="rcpt")
    metrics_port = free_port()
    transport = Path(workdir) / f"transport-metrics-{good.port}"
    transport.write_text(f"sent.test smtp:[127.0.0.1]:{good.port}\n"
                         f"defer.test smtp:[127.0.0.1]:{bad.port}\n")
    transport.chmod(0o644)
    prom = None
    try:
        inst = make_instance(
            master_extra="metrics unix - - y - 1 metrics\n",
            main_extra={
                "rostfix_metrics_listen": f"127.0.0.1:{metrics_port}",
                "transport_maps": f"texthash:{transport}",
                # Unknown local users are accepted, then bounced by local.
                "local_recipient_maps": "",
                # One attempt per deferred recipient within the test.
                "minimal_backoff_time": "300s",
                "maximal_backoff_time": "600s",
                "queue_run_delay": "300s",
            })
        prom = Prometheus(f"127.0.0.1:{metrics_port}", workdir)
        with inst.smtp() as s:
            for i in range(SENT):
                s.sendmail("sender@sent.test", [f"r{i}@sent.test"], f"Subject: s{i}\n\nx\n")
            for i in range(DEFERRED):
                s.sendmail("sender@sent.test", [f"r{i}@defer.test"], f"Subject: d{i}\n\nx\n")
            for i in range(BOUNCED):
                s.sendmail("<>", [f"nosuchuser{i}@rostfix.test"], f"Subject: b{i}\n\nx\n")

        want = {(("status", "sent"), ("transport", "smtp")): SENT,
                (("status", "deferred"), ("transport", "smtp")): DEFERRED,
                (("status", "bounced"), ("transport", "local")): BOUNCED}

        def counted():
            got = prom.query("sum by (transport, status) (rostfix_delivery_recipients_total)")
            return got == want
        try:
            wait_for(counted, timeout=45, what="prometheus to see every outcome")
        except AssertionError:
            got = prom.query("rostfix_delivery_recipients_total")
            raise AssertionError(f"prometheus has {got}, want {want}\n"
                                 f"log:\n{inst.log_text()[-3000:]}")
        delays = prom.query("sum(rostfix_delivery_delay_seconds_count)")
        assert list(delays.values()) == [SENT + DEFERRED + BOUNCED], delays
        activated = prom.query("sum(rostfix_messages_activated_total)")
        assert list(activated.values()) == [SENT + DEFERRED + BOUNCED], activated
        queued = prom.query('rostfix_queue_messages{queue="deferred"}')
        assert list(queued.values()) == [DEFERRED], queued
        active = prom.query('rostfix_queue_messages{queue="active"}')
        assert list(active.values()) == [0], active
        up = prom.query('up{job="rostfix"}')
        assert list(up.values()) == [1], up
    finally:
        if prom:
            prom.stop()
        good.stop()
        bad.stop()
