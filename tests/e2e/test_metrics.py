"""The native metrics endpoint scraped by a real Prometheus (issue 20). An instance
runs the metrics service (master.cf `metrics unix - - y - 1 metrics`, HTTP on a
loopback port); it receives a known mix: recipients relayed to Postfix's smtp-sink
(sent), to an smtp-sink that answers 4xx to RCPT (deferred), and to an unknown local
user (bounced by local; sent with a null sender so no notice follows). Debian's
Prometheus scrapes the endpoint every second; its query API must then give exactly that
mix per transport and status, the delay histogram's count, and the deferred queue's
size from the queue gauges.

The second test gives smtpd a known mix (messages accepted, recipients refused with
550 at RCPT, one failed AUTH after STARTTLS) with max_use = 1, so every count comes
from a process's flush at exit; relayed over STARTTLS to an aiosmtpd peer it also
shows smtp's outbound TLS. It checks contrib/grafana-rostfix.json against the live
endpoint: every series the dashboard queries is served, and Prometheus accepts each
of its expressions."""

import base64
import json
import re
import shutil
import socket
import subprocess
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from harness import USER1, free_port, read_reply, stop_process, wait_for
from peers import certs, start_peer  # noqa: F401 (fixtures)
from postfix_tools import SmtpSink, postfix_tools
from saslpeer import PASSWORD, plain_blob, write_passwd
from test_tls import no_verify

DASHBOARD = Path(__file__).resolve().parents[2] / "contrib" / "grafana-rostfix.json"

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
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                body = json.load(r)
        except urllib.error.HTTPError as e:
            # A bad expression is a 400 with the parser's message.
            raise AssertionError(f"{expr}: {e.read().decode(errors='replace')}") from e
        assert body["status"] == "success", body
        return {tuple(sorted(s["metric"].items())): float(s["value"][1])
                for s in body["data"]["result"]}

    def stop(self):
        stop_process(self.proc, timeout=10)
        self.log.close()


def metrics_instance(make_instance, metrics_port, main_extra):
    """An instance running the metrics service on loopback port `metrics_port`."""
    return make_instance(
        master_extra="metrics unix - - y - 1 metrics\n",
        main_extra={"rostfix_metrics_listen": f"127.0.0.1:{metrics_port}", **main_extra})


def test_prometheus_scrapes_delivery_counts_and_queue_sizes(make_instance, workdir):
    if PROMETHEUS is None:
        pytest.skip("needs prometheus (tests/setup-deps.sh)")
    pfx = postfix_tools()
    good, bad = SmtpSink(pfx), SmtpSink(pfx, reject="rcpt")
    metrics_port = free_port()
    transport = Path(workdir) / f"transport-metrics-{good.port}"
    closed = free_port()  # nothing listens: a dead destination
    transport.write_text(f"sent.test smtp:[127.0.0.1]:{good.port}\n"
                         f"defer.test smtp:[127.0.0.1]:{bad.port}\n"
                         f"dead.test smtp:[127.0.0.1]:{closed}\n")
    transport.chmod(0o644)
    prom = None
    try:
        inst = metrics_instance(make_instance, metrics_port, {
            "transport_maps": f"texthash:{transport}",
            # Unknown local users are accepted, then bounced by local.
            "local_recipient_maps": "",
            # One attempt per deferred recipient within the test.
            "minimal_backoff_time": "300s",
            "maximal_backoff_time": "600s",
            "queue_run_delay": "300s",
            # A window of one: one failed connection is a failed cohort, so the
            # destination nobody listens on is declared dead at once.
            "smtp_initial_destination_concurrency": "1",
        })
        prom = Prometheus(f"127.0.0.1:{metrics_port}", workdir)
        with inst.smtp() as s:
            for i in range(SENT):
                s.sendmail("sender@sent.test", [f"r{i}@sent.test"], f"Subject: s{i}\n\nx\n")
            for i in range(DEFERRED):
                s.sendmail("sender@sent.test", [f"r{i}@defer.test"], f"Subject: d{i}\n\nx\n")
            for i in range(BOUNCED):
                s.sendmail("<>", [f"nosuchuser{i}@rostfix.test"], f"Subject: b{i}\n\nx\n")
            s.sendmail("sender@sent.test", ["r@dead.test"], "Subject: dead\n\nx\n")

        want = {(("status", "sent"), ("transport", "smtp")): SENT,
                (("status", "deferred"), ("transport", "smtp")): DEFERRED + 1,
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
        assert list(delays.values()) == [SENT + DEFERRED + BOUNCED + 1], delays
        activated = prom.query("sum(rostfix_messages_activated_total)")
        assert list(activated.values()) == [SENT + DEFERRED + BOUNCED + 1], activated
        queued = prom.query('rostfix_queue_messages{queue="deferred"}')
        assert list(queued.values()) == [DEFERRED + 1], queued
        # qmgr's gauges: the destination that refuses connections is dead, the
        # others are known with nothing in flight once everything is done.
        # qmgr's gauges: the destination that refuses connections is dead (and
        # known, with nothing in flight); destinations that went idle are forgotten.
        def dead_count():
            got = prom.query('sum by (transport) (rostfix_qmgr_dead_destinations)')
            return got.get((("transport", "smtp"),))
        try:
            wait_for(lambda: dead_count() == 1, timeout=30, what="the dead destination gauge")
        except AssertionError:
            raise AssertionError(f"{prom.query('rostfix_qmgr_dead_destinations')}\n"
                                 f"{inst.log_text()[-2500:]}")
        conc = prom.query('sum by (destination) '
                          '(rostfix_qmgr_destination_concurrency{transport="smtp"})')
        assert conc.get((("destination", f"[127.0.0.1]:{closed}"),)) == 0, conc
        active = prom.query('rostfix_queue_messages{queue="active"}')
        assert list(active.values()) == [0], active
        up = prom.query('up{job="rostfix"}')
        assert list(up.values()) == [1], up
    finally:
        if prom:
            prom.stop()
        good.stop()
        bad.stop()


ACCEPTED = 3
REJECTED = 2
LOGIN = "metrics-user"


def dashboard_exprs():
    """Every PromQL expression of contrib/grafana-rostfix.json's panels."""
    dash = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    assert exprs, "the dashboard queries nothing"
    return exprs


def test_grafana_dashboard_parses_and_covers_the_issue():
    dash = json.loads(DASHBOARD.read_text())
    assert dash["uid"] and dash["title"]
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)), ids
    text = " ".join(dashboard_exprs())
    # The panels the brief asks for: outcome rates, delay quantiles, queue sizes and
    # smtpd's rejects.
    assert "rate(rostfix_delivery_recipients_total" in text
    assert "histogram_quantile(0.99, sum by (le) (rate(rostfix_delivery_delay_seconds_bucket" in text
    assert "rostfix_queue_messages" in text
    assert "rostfix_smtpd_rejects_total" in text


def served_names(metrics_port):
    """The series names the live endpoint serves (histograms as _bucket/_sum/_count)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as r:
        text = r.read().decode()
    return {m.group(1) for m in re.finditer(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]", text, re.M)}


def test_prometheus_scrapes_smtpd_counts_and_the_dashboard_matches(
        make_instance, workdir, certs, start_peer):
    if PROMETHEUS is None:
        pytest.skip("needs prometheus (tests/setup-deps.sh)")
    peer = start_peer(certs / "self.pem", certs / "self.key")
    sasl_dir = Path(tempfile.mkdtemp(prefix="sasl-", dir=workdir))
    passwd = write_passwd(sasl_dir / "sasl_passwd", {LOGIN: PASSWORD})
    metrics_port = free_port()
    prom = None
    try:
        inst = metrics_instance(make_instance, metrics_port, {
            # One client per process: counts reach the service only through the
            # flush at exit (the 5 s flusher never gets its turn).
            "max_use": "1",
            "relayhost": f"[127.0.0.1]:{peer.port}",
            "smtp_tls_security_level": "may",
            "smtpd_tls_cert_file": str(certs / "server.pem"),
            "smtpd_tls_key_file": str(certs / "server.key"),
            "smtpd_tls_security_level": "may",
            "smtpd_sasl_auth_enable": "yes",
            "smtpd_sasl_type": "rostfix",
            "smtpd_sasl_path": str(passwd),
        })
        prom = Prometheus(f"127.0.0.1:{metrics_port}", workdir)
        with inst.smtp() as s:
            for i in range(ACCEPTED):
                # The last one is large: the size histogram must tell them apart.
                body = "x\r\n" if i < ACCEPTED - 1 else ("y" * 70 + "\r\n") * 400
                s.sendmail("a@client.test", [f"r{i}@far.test"],
                           f"Subject: m{i}\r\n\r\n{body}".encode())
            s.mail("a@client.test")
            for i in range(REJECTED):
                code, text = s.rcpt(f"nosuchuser{i}@mx.rostfix.test")
                assert code == 550, (code, text)
            s.rset()
        with inst.smtp() as s:
            s.ehlo("client.test")
            s.starttls(context=no_verify())
            s.ehlo("client.test")
            code, text = s.docmd("AUTH", "PLAIN " + plain_blob(LOGIN, "wrong-password"))
            assert code == 535, (code, text)
        # A client that asks for TLS and then sends no ClientHello but garbage.
        with socket.create_connection(("127.0.0.1", inst.port), timeout=30) as raw:
            f = raw.makefile("rb")
            read_reply(f)
            raw.sendall(b"EHLO client.test\r\n")
            read_reply(f)
            raw.sendall(b"STARTTLS\r\n")
            assert read_reply(f)[0].startswith("220")
            raw.sendall(b"this is not a TLS record\r\n" * 4)
            f.read()  # smtpd hangs up
        wait_for(lambda: len(peer.messages()) == ACCEPTED, timeout=45,
                 what="relayed messages at the peer")

        want = {
            "sum(rostfix_smtpd_messages_accepted_total)": {(): ACCEPTED},
            "sum by (stage, restriction, code) (rostfix_smtpd_rejects_total)": {
                (("code", "550"), ("restriction", "smtpd_reject_unlisted_recipient"),
                 ("stage", "RCPT")): REJECTED},
            "sum by (mechanism, result) (rostfix_smtpd_auth_total)": {
                (("mechanism", "PLAIN"), ("result", "failure")): 1},
            # Python's ssl and rustls agree on TLS 1.3.
            "sum by (version) (rostfix_smtpd_tls_handshakes_total)": {
                (("version", "TLSv1.3"),): 1},
            "sum by (reason) (rostfix_smtpd_tls_handshake_failures_total)": {
                (("reason", "error"),): 1},
            "sum(rostfix_smtpd_message_size_bytes_count)": {(): ACCEPTED},
            'sum(rostfix_smtpd_message_size_bytes_bucket{le="4000"})': {(): ACCEPTED - 1},
            'sum(rostfix_smtpd_message_size_bytes_bucket{le="64000"})': {(): ACCEPTED},
            'sum by (status) (rostfix_delivery_recipients_total)': {
                (("status", "sent"),): ACCEPTED},
        }

        def counted():
            return all(prom.query(q) == v for q, v in want.items())
        try:
            wait_for(counted, timeout=45, what="prometheus to see smtpd's counts")
        except AssertionError:
            got = {q: prom.query(q) for q in want}
            raise AssertionError(f"prometheus has {got}, want {want}\n"
                                 f"log:\n{inst.log_text()[-3000:]}")
        # Each client was its own smtpd process; the harness's readiness probe may
        # add one.
        conns = prom.query("sum(rostfix_smtpd_connections_total)")
        assert 3 <= list(conns.values())[0] <= 4, conns
        # Outbound: one handshake per smtp session (max_use = 1 rules out reuse
        # across processes, the connection cache may still carry one over).
        out = prom.query("sum by (version) (rostfix_smtp_tls_handshakes_total)")
        assert set(out) == {(("version", "TLSv1.3"),)}, out
        assert 1 <= out[(("version", "TLSv1.3"),)] <= ACCEPTED, out

        # The dashboard: every series it queries is served, and Prometheus parses
        # each expression ($__rate_interval is Grafana's; any range stands in).
        names = served_names(metrics_port)
        used = {n for e in dashboard_exprs() for n in re.findall(r"\brostfix_[a-z0-9_]+", e)}
        assert used <= names, f"dashboard uses series the endpoint does not serve: {used - names}"
        for expr in dashboard_exprs():
            prom.query(expr.replace("$__rate_interval", "1m"))
    finally:
        if prom:
            prom.stop()


def scrape(metrics_port, auth=None):
    """(status, body) of GET /metrics, with `auth` = (user, password) for basic auth."""
    req = urllib.request.Request(f"http://127.0.0.1:{metrics_port}/metrics")
    if auth:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, ""


def series_value(body, name, **labels):
    """The value of series `name{labels}` in an exposition (None when absent)."""
    for line in body.splitlines():
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$", line)
        if not m or m.group(1) != name:
            continue
        got = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        if all(got.get(k) == v for k, v in labels.items()):
            return float(m.group(4))
    return None


# Messages test_basic_auth_milter_table_errors_and_postscreen_verdicts submits with
# sendmail.
PICKED_UP = 2


def test_basic_auth_milter_table_errors_and_postscreen_verdicts(make_instance, workdir):
    """The endpoint behind basic auth (401 without, wrong or right credentials), and
    the counts of a milter that is down (in smtpd and, as non_smtpd_milters, in
    pickup), a table that cannot be reached, postscreen's verdicts and the messages
    pickup queued."""
    metrics_port = free_port()
    closed = free_port()  # nothing listens here: the milter and the tcp: table fail
    secrets = Path(tempfile.mkdtemp(prefix="metrics-auth-", dir=workdir))
    (secrets / "passwd").write_text("# Prometheus\nprom:s3cret\n")
    (secrets / "passwd").chmod(0o600)
    inst = make_instance(start=False, main_extra={
        "rostfix_metrics_listen": f"127.0.0.1:{metrics_port}",
        "rostfix_metrics_password_file": str(secrets / "passwd"),
        "smtpd_milters": f"inet:127.0.0.1:{closed}",
        "non_smtpd_milters": f"inet:127.0.0.1:{closed}",
        "milter_default_action": "accept",
        "smtpd_client_restrictions": f"check_client_access tcp:127.0.0.1:{closed}",
        "postscreen_greet_wait": "1s",
        # Every client is allowlisted: postscreen hands each to smtpd at once.
        "mynetworks": "127.0.0.0/8",
    }, master_extra="metrics unix - - y - 1 metrics\n")
    master = inst.conf / "master.cf"
    text = master.read_text()
    smtpd_line = f"127.0.0.1:{inst.port} inet n - y - - smtpd\n"
    master.write_text(text.replace(
        smtpd_line,
        f"127.0.0.1:{inst.port} inet n - y - 1 postscreen\n"
        "smtpd     pass  -       -       y       -       -       smtpd\n"))
    inst.start()
    with inst.smtp() as s:
        s.ehlo("client.test")
        s.mail("a@client.test")
        code, _ = s.rcpt("someone@mx.rostfix.test")
        assert code // 100 == 4, code  # the table's failure is a temporary refusal
    for i in range(PICKED_UP):
        proc = inst._run([str(inst.bindir / "sendmail"), "-C", str(inst.conf), "-t"],
                         check=False, user=USER1,
                         input=f"To: {USER1}@mx.rostfix.test\nSubject: p{i}\n\nx\n".encode())
        assert proc.returncode == 0, proc.stderr

    # master starts the metrics service when the first report arrives.
    def up():
        try:
            return scrape(metrics_port)[0]
        except urllib.error.URLError:
            return None
    assert wait_for(up, timeout=30, what="the metrics endpoint") == 401
    assert scrape(metrics_port, ("prom", "wrong"))[0] == 401

    def counted():
        status, body = scrape(metrics_port, ("prom", "s3cret"))
        assert status == 200
        # One from smtpd's session, one per message pickup ran through the milter.
        return (series_value(body, "rostfix_milter_errors_total",
                             milter=f"inet:127.0.0.1:{closed}") or 0) >= 1 + PICKED_UP \
            and series_value(body, "rostfix_pickup_messages_total",
                             fate="queued") == PICKED_UP \
            and (series_value(body, "rostfix_table_errors_total", type="tcp") or 0) >= 1 \
            and (series_value(body, "rostfix_postscreen_verdicts_total",
                              verdict="ALLOWLISTED") or 0) >= 1
    try:
        wait_for(counted, timeout=30, what="milter, table and postscreen counts")
    except AssertionError:
        raise AssertionError(f"{scrape(metrics_port, ('prom', 's3cret'))[1][-3000:]}\n"
                             f"{inst.log_text()[-2000:]}")
