"""SMTP TLS reporting (RFC 8460) on loopback, on test_mta_sts.py's set-up (dnsmasq,
nginx serving MTA-STS policies, an aiosmtpd peer whose certificate names only
mx.enf.test), with `_smtp._tls` TXT records asking for reports by mail to a local
user. After a delivery that succeeds under enf.test's enforced policy and one that
fails under wrong.test's (certificate name mismatch), the tlsrpt service sends, once
the report period has ended, one report per domain: a multipart/report mail with the
gzipped JSON, which validates against RFC 8460's schema and counts what happened; and
enf.test's record also names an https: destination, to which the same report is
POSTed as application/tlsrpt+gzip (a Python HTTPS server with a certificate from the
test CA, found through the test DNS)."""

import base64
import email
import gzip
import http.server
import json
import re
import ssl
import threading

import jsonschema
import pytest

from harness import USER1, maildir_messages, wait_for
from peers import certs, chain_for, start_peer  # noqa: F401 (fixtures)
from test_mta_sts import NGINX, deferred_line, instance_for, send, sts  # noqa: F401

pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx not installed")

TLSRPT_SERVICE = "tlsrpt    unix  -       -       n       1       1       tlsrpt\n"

# RFC 8460 section 4.4 (the report's JSON), as a JSON schema.
DATE = {"type": "string",
        "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$"}
RESULT_TYPES = ["starttls-not-supported", "certificate-host-mismatch", "certificate-expired",
                "certificate-not-trusted", "validation-failure", "tlsa-invalid",
                "dnssec-invalid", "dane-required", "sts-policy-fetch-error",
                "sts-policy-invalid", "sts-webpki-invalid"]
SCHEMA = {
    "type": "object",
    "required": ["organization-name", "date-range", "contact-info", "report-id", "policies"],
    "properties": {
        "organization-name": {"type": "string"},
        "contact-info": {"type": "string"},
        "report-id": {"type": "string"},
        "date-range": {"type": "object", "required": ["start-datetime", "end-datetime"],
                       "properties": {"start-datetime": DATE, "end-datetime": DATE}},
        "policies": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["policy", "summary"],
            "properties": {
                "policy": {"type": "object", "required": ["policy-type", "policy-domain"],
                           "properties": {
                               "policy-type": {"enum": ["tlsa", "sts", "no-policy-found"]},
                               "policy-string": {"type": "array",
                                                 "items": {"type": "string"}},
                               "policy-domain": {"type": "string"},
                               "mx-host": {"type": "array", "items": {"type": "string"}}}},
                "summary": {"type": "object",
                            "required": ["total-successful-session-count",
                                         "total-failure-session-count"],
                            "properties": {
                                "total-successful-session-count": {"type": "integer",
                                                                   "minimum": 0},
                                "total-failure-session-count": {"type": "integer",
                                                                "minimum": 0}}},
                "failure-details": {"type": "array", "items": {
                    "type": "object", "required": ["result-type", "failed-session-count"],
                    "properties": {
                        "result-type": {"enum": RESULT_TYPES},
                        "sending-mta-ip": {"type": "string"},
                        "receiving-mx-hostname": {"type": "string"},
                        "receiving-ip": {"type": "string"},
                        "failed-session-count": {"type": "integer", "minimum": 1},
                        "failure-reason-code": {"type": "string"}}}}}}},
    },
}


def reports(domain):
    """Every TLS report for `domain` in USER1's mailbox: (message, JSON)."""
    out = []
    for _, data in maildir_messages(USER1):
        msg = email.message_from_bytes(data)
        if msg.get("TLS-Report-Domain") != domain:
            continue
        for part in msg.walk():
            if part.get_content_type() == "application/tlsrpt+gzip":
                out.append((msg, json.loads(gzip.decompress(base64.b64decode(
                    part.get_payload())))))
    return out


class ReportServer:
    """An HTTPS server for reports.enf.test that keeps every POST: (headers, body)."""

    def __init__(self, port, chain, key):
        posts = self.posts = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                length = int(self.headers.get("Content-Length", "0"))
                posts.append((self.path, dict(self.headers), self.rfile.read(length)))
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(chain, key)
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def totals(domain):
    ok = failed = 0
    for _, report in reports(domain):
        for p in report["policies"]:
            ok += p["summary"]["total-successful-session-count"]
            failed += p["summary"]["total-failure-session-count"]
    return ok, failed


def test_reports_count_successes_and_failures_and_validate(make_instance, sts, workdir):
    chain, key = chain_for(sts["certs"], "reports.enf.test")
    server = ReportServer(sts["report_port"], chain, key)
    try:
        check_reports(make_instance, sts, workdir, server)
    finally:
        server.stop()


def check_reports(make_instance, sts, workdir, server):
    a = instance_for(make_instance, sts, workdir, master_extra=TLSRPT_SERVICE, main_extra={
        "rostfix_tlsrpt_enable": "yes",
        "rostfix_tlsrpt_period": "5s",
        "rostfix_tlsrpt_organization": "Rostfix Test",
        "rostfix_tlsrpt_CAfile": str(sts["ca"]),
    })
    send(a, "enf.test", "enforced")
    wait_for(lambda: "status=sent" in a.log_text(), timeout=30, what="the enf.test delivery")
    send(a, "wrong.test", "mismatch")
    wait_for(lambda: deferred_line("wrong.test", "Server certificate not verified (MTA-STS "
                                   "policy of wrong.test requires verified TLS)")
             .search(a.log_text()), timeout=30, what="the wrong.test deferral")
    # The reports come once the 5 s period has ended (the service wakes every second).
    wait_for(lambda: totals("enf.test")[0] >= 1 and totals("wrong.test")[1] >= 1,
             timeout=60, what="both domains' reports")
    assert totals("enf.test") == (1, 0)
    assert totals("wrong.test") == (0, 1)
    for domain in ("enf.test", "wrong.test"):
        for msg, report in reports(domain):
            jsonschema.validate(report, SCHEMA)
            assert msg.get_content_type() == "multipart/report"
            assert msg.get_param("report-type") == "tlsrpt"
            assert re.fullmatch(rf"Report Domain: {re.escape(domain)} Submitter: \S+ "
                                r"Report-ID: <\S+>", msg["Subject"]), msg["Subject"]
            attachment = [p for p in msg.walk()
                          if p.get_content_type() == "application/tlsrpt+gzip"][0]
            assert re.fullmatch(rf"[^!]+!{re.escape(domain)}!\d+!\d+\.json\.gz",
                                attachment.get_filename())
            assert report["organization-name"] == "Rostfix Test"
            policy = report["policies"][0]["policy"]
            assert policy["policy-type"] == "sts" and policy["policy-domain"] == domain
            assert "mode: enforce" in policy["policy-string"]
    wrong = [r for _, r in reports("wrong.test")
             if r["policies"][0]["summary"]["total-failure-session-count"]][0]
    detail = wrong["policies"][0]["failure-details"][0]
    assert detail["result-type"] == "certificate-host-mismatch", detail
    assert detail["receiving-mx-hostname"] == "mx.wrong.test"
    assert detail["receiving-ip"] == "127.0.0.1"
    assert detail["failed-session-count"] == 1
    # No domain without a TLSRPT record got a report, and the log says what was sent.
    assert re.search(r"tlsrpt\[\d+\]: \w+: TLS report for wrong\.test \(\S+ to \S+\) to "
                     rf"{USER1}@mx\.rostfix\.test", a.log_text()), a.log_text()
    # enf.test's https: destination got the same report by POST; wrong.test names none.
    wait_for(lambda: server.posts, timeout=30, what="the https upload")
    assert "enf.test: TLS report posted to https://reports.enf.test:" in a.log_text()
    posted = []
    for path, headers, body in server.posts:
        assert path == "/v1/tlsrpt"
        assert headers["Content-Type"] == "application/tlsrpt+gzip", headers
        report = json.loads(gzip.decompress(body))
        jsonschema.validate(report, SCHEMA)
        posted.append(report)
    assert {p["policy"]["policy-domain"] for r in posted for p in r["policies"]} == {"enf.test"}
    assert sum(p["summary"]["total-successful-session-count"]
               for r in posted for p in r["policies"]) == 1
