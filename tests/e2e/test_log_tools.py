"""The log tools Postfix administrators already run, against a real instance's log
(issue 20): Debian's prometheus-postfix-exporter and pflogsumm. The instance logs as
`postfix/...` (syslog_name = postfix, what an administrator keeps after the switch so
these tools need no change) and receives a known mix: messages relayed to Postfix's
smtp-sink (sent), messages whose next hop answers 4xx to RCPT (deferred), recipients
smtpd rejects with 550. Each tool's counts must equal that mix, and the exporter must
find no line it cannot parse.

The exporter reads the log from its end, as `tail -F` does: it is started after master
has written its first lines and before any mail is sent. Its queue metrics come from a
second showq service speaking Postfix 3's showq protocol (rostfix_showq_protocol =
postfix; the default showq speaks our framed JSON for rostqueue)."""

import json
import re
import shutil
import subprocess
import time
import urllib.request
from email.message import EmailMessage
from pathlib import Path

import pytest

from harness import REPO, USER1, free_port, stop_process, wait_for
from postfix_tools import SmtpSink, postfix_tools

PFLOGSUMM = shutil.which("pflogsumm")

SENT = 3
DEFERRED = 2
REJECTED = 2


def exporter_binary():
    """Debian's exporter, unpacked (its package would install postfix), or None."""
    proc = subprocess.run(
        [str(REPO / "tests" / "fetch-deb.sh"), "prometheus-postfix-exporter",
         "usr/bin/prometheus-postfix-exporter"],
        capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        return None
    return str(Path(proc.stdout.strip()) / "usr/bin/prometheus-postfix-exporter")


class Exporter:
    """prometheus-postfix-exporter tailing `logfile` on a loopback port."""

    def __init__(self, binary, logfile, showq, workdir):
        self.port = free_port()
        self.stderr = open(Path(workdir) / f"exporter-{self.port}.log", "w+")
        self.proc = subprocess.Popen(
            [binary, f"--web.listen-address=127.0.0.1:{self.port}",
             f"--postfix.logfile_path={logfile}",
             f"--postfix.showq_path={showq}",
             "--log.unsupported"],
            stdout=self.stderr, stderr=subprocess.STDOUT)
        wait_for(self._up, timeout=15, what="the exporter to answer")

    def _up(self):
        try:
            self.scrape()
            return True
        except OSError:
            return False

    def scrape(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as r:
            return r.read().decode()

    def metric(self, name, labels=None):
        """The sum of `name`'s samples whose labels include `labels`."""
        total = 0.0
        found = False
        for line in self.scrape().splitlines():
            m = re.match(rf"^{re.escape(name)}(\{{[^}}]*\}})? (\S+)$", line)
            if not m:
                continue
            have = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1) or ""))
            if all(have.get(k) == v for k, v in (labels or {}).items()):
                total += float(m.group(2))
                found = True
        return total if found else None

    def output(self):
        self.stderr.flush()
        self.stderr.seek(0)
        return self.stderr.read()

    def stop(self):
        stop_process(self.proc, timeout=5)
        self.stderr.close()


def message(rcpt, n):
    msg = EmailMessage()
    msg["From"] = "sender@rostfix.test"
    msg["To"] = rcpt
    msg["Subject"] = f"log tools {n}"
    msg["Message-ID"] = f"<logtools-{n}@rostfix.test>"
    msg.set_content(f"message {n}\n")
    return msg


def send_mix(inst):
    """SENT + DEFERRED accepted messages, REJECTED refused recipients, one per session."""
    n = 0
    for rcpt in [f"rcpt{i}@sent.test" for i in range(SENT)] + \
            [f"rcpt{i}@defer.test" for i in range(DEFERRED)]:
        n += 1
        with inst.smtp() as s:
            s.send_message(message(rcpt, n))
    for i in range(REJECTED):
        with inst.smtp() as s:
            s.ehlo("client.rostfix.test")
            s.mail("sender@rostfix.test")
            code, _ = s.rcpt(f"nosuchuser{i}@rostfix.test")
            assert code == 550, code


@pytest.fixture
def log_instance(make_instance, workdir):
    if PFLOGSUMM is None:
        pytest.skip("needs pflogsumm (tests/setup-deps.sh)")
    pfx = postfix_tools()
    good = SmtpSink(pfx)
    bad = SmtpSink(pfx, reject="rcpt")
    transport = Path(workdir) / f"transport-{good.port}"
    transport.write_text(f"sent.test smtp:[127.0.0.1]:{good.port}\n"
                         f"defer.test smtp:[127.0.0.1]:{bad.port}\n")
    transport.chmod(0o644)
    # A second showq speaking Postfix 3's protocol, where the exporter reads the queue.
    showq = "postfix-showq unix n - y - - showq -o rostfix_showq_protocol=postfix\n"
    inst = make_instance(master_extra=showq, main_extra={
        "syslog_name": "postfix",
        "transport_maps": f"texthash:{transport}",
        "smtpd_recipient_restrictions": "permit_mynetworks, reject_unauth_destination",
        # One attempt per deferred message within the test, so each tool sees it once.
        "minimal_backoff_time": "300s",
        "maximal_backoff_time": "600s",
        "queue_run_delay": "300s",
    })
    try:
        yield inst
    finally:
        good.stop()
        bad.stop()


def settle(inst):
    """Every accepted message has its final or deferred outcome in the log."""
    def done():
        text = inst.log_text()
        return (text.count("status=sent") >= SENT
                and text.count("status=deferred") >= DEFERRED)
    wait_for(done, timeout=60, what="deliveries and deferrals in the log")


def test_prometheus_postfix_exporter_counts_what_was_sent(log_instance, workdir):
    inst = log_instance
    binary = exporter_binary()
    if binary is None:
        pytest.skip("prometheus-postfix-exporter unavailable (tests/fetch-deb.sh)")
    wait_for(lambda: inst.maillog.exists() and inst.maillog.stat().st_size > 0,
             what="master's first log lines")
    exporter = Exporter(binary, inst.maillog, inst.queue / "public/postfix-showq", workdir)
    try:
        send_mix(inst)
        settle(inst)
        accepted = SENT + DEFERRED
        sessions = accepted + REJECTED

        def counted():
            return (exporter.metric("postfix_qmgr_messages_removed_total") == SENT
                    and exporter.metric("postfix_smtp_status_deferred") == DEFERRED)
        try:
            wait_for(counted, timeout=20, what="the exporter to read the deliveries")
        except AssertionError:
            postfix = [x for x in exporter.scrape().splitlines() if x.startswith("postfix_")]
            raise AssertionError("\n".join(postfix) + "\n" + exporter.output()[-3000:]
                                 + "\nlog:\n" + inst.log_text()[-3000:])
        m = exporter.metric
        assert m("postfix_smtpd_connects_total") == sessions
        assert m("postfix_smtpd_disconnects_total") == sessions
        assert m("postfix_smtpd_messages_processed_total") == accepted
        assert m("postfix_cleanup_messages_processed_total") == accepted
        assert m("postfix_qmgr_messages_inserted_receipients_count") == accepted
        assert m("postfix_qmgr_messages_removed_total") == SENT
        # One observation per stage (a/b/c/d of delays=) for every smtp status line.
        assert m("postfix_smtp_delivery_delay_seconds_count") == 4 * accepted
        assert m("postfix_smtp_status_deferred") == DEFERRED
        assert m("postfix_smtpd_messages_rejected_total", {"code": "550"}) == REJECTED
        # The deferred messages wait in the deferred queue, read through showq in
        # Postfix's format: their number, and their sizes as qmgr logged them.
        assert m("postfix_up", {"path": str(inst.queue / "public/postfix-showq")}) == 1
        assert m("postfix_showq_message_size_bytes_count", {"queue": "deferred"}) == DEFERRED
        assert m("postfix_showq_message_size_bytes_count", {"queue": "active"}) == 0
        log = inst.log_text()
        deferred_ids = set(re.findall(r"\]: (\w+): to=<[^>]*>.*status=deferred", log))
        sizes = {i: int(n) for i, n in re.findall(r"\]: (\w+): from=<[^>]*>, size=(\d+)", log)}
        assert m("postfix_showq_message_size_bytes_sum", {"queue": "deferred"}) == \
            sum(sizes[i] for i in deferred_ids)
        unsupported = m("postfix_unsupported_log_entries_total") or 0
        assert unsupported == 0, exporter.output()[-3000:]
    finally:
        exporter.stop()


def test_pflogsumm_counts_what_was_sent(log_instance):
    inst = log_instance
    # The harness's own probe that smtpd accepts is a session too.
    probes = inst.log_text().count(": connect from ")
    send_mix(inst)
    settle(inst)
    # Deliveries are done; the last qmgr "removed" lines follow the status lines.
    time.sleep(1)
    proc = subprocess.run([PFLOGSUMM, "--smtpd-stats", str(inst.maillog)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    report = proc.stdout

    def count(label):
        m = re.search(rf"^\s*(\d+)\s+{label}\b", report, re.M)
        assert m, f"no '{label}' line in:\n{report}"
        return int(m.group(1))
    assert count("received") == SENT + DEFERRED, report
    assert count("delivered") == SENT, report
    assert count("deferred") == DEFERRED, report
    assert count("rejected") == REJECTED, report
    assert count("bounced") == 0, report
    assert count("connections") == probes + SENT + DEFERRED + REJECTED, report


def test_json_log_lines_carry_the_text_lines_fields(make_instance):
    """rostfix_maillog_format = json: every line of maillog_file is one JSON object,
    and one message's life (smtpd, cleanup, qmgr, local) is there under its queue_id
    with the programs and texts the text format has."""
    inst = make_instance({"rostfix_maillog_format": "json"})
    with inst.smtp() as s:
        s.send_message(message(f"{USER1}@rostfix.test", 1))

    def delivered():
        return "status=sent" in inst.log_text()
    wait_for(delivered, timeout=30, what="local delivery in the log")
    events = [json.loads(line) for line in inst.log_text().splitlines()]
    for e in events:
        assert set(e) >= {"time", "host", "program", "pid", "severity", "message"}, e
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", e["time"]), e
        assert e["host"] == "mx.rostfix.test"
    sent = [e for e in events if "status=sent" in e["message"]]
    assert len(sent) == 1 and sent[0]["program"] == "rostfix/local", sent
    qid = sent[0]["queue_id"]
    life = [(e["program"], e["message"].split("=")[0]) for e in events
            if e.get("queue_id") == qid]
    assert ("rostfix/smtpd", "client") in life, life
    assert ("rostfix/cleanup", "message-id") in life, life
    assert ("rostfix/qmgr", "from") in life, life
    assert ("rostfix/qmgr", "removed") in life, life
    assert any(e["program"] == "rostfix/master" for e in events), events[:3]
