"""The smtp client delivery agent against a second Rostfix instance on 127.0.0.2:25
(issue 4 slice): relayhost delivery, and MX lookup through a local dnsmasq when it is
installed. All traffic stays on loopback: instance A's DNS goes to a dnsmasq on
127.0.0.1 (rostfix_dns_servers), or there is no DNS at all (bracketed relayhost)."""

import re
import shutil
import subprocess
import time

import pytest

from harness import free_port, maildir_messages, wait_for
from harness import USER2


def make_b(make_instance):
    """Instance B: the final destination for b.test, listening on 127.0.0.2:25."""
    return make_instance(
        main_extra={
            "myhostname": "mx.b.test",
            "mydomain": "b.test",
            "mydestination": "b.test, $myhostname, localhost",
            "inet_interfaces": "127.0.0.1, 127.0.0.2",
        },
        master_extra="127.0.0.2:25 inet n - y - - smtpd\n",
    )


def send(inst, rcpt, subject):
    with inst.smtp() as s:
        s.sendmail("alice@example.org", [rcpt],
                   f"Subject: {subject}\r\n\r\n.leading dot\r\nbody\r\n".encode())


def test_relayhost_delivers_to_second_instance(make_instance):
    b = make_b(make_instance)
    a = make_instance(main_extra={"relayhost": "[127.0.0.2]:25"})
    send(a, f"{USER2}@b.test", "via relayhost")
    msgs = wait_for(lambda: maildir_messages(USER2), timeout=40,
                    what="delivery to B's Maildir")
    data = msgs[0][1]
    assert b"Subject: via relayhost" in data
    # Dot-stuffing undone by B: the body line is unchanged.
    assert b"\n.leading dot\n" in data
    a_log = a.log_text()
    assert re.search(rf"rostfix/smtp\[\d+\]: [0-9A-F]+: to=<{USER2}@b\.test>, "
                     r"relay=127\.0\.0\.2\[127\.0\.0\.2\]:25, delay=[\d.]+, "
                     r"delays=[\d.]+/[\d.]+/[\d.]+/[\d.]+, dsn=2\.0\.0, status=sent \(250 ",
                     a_log), a_log
    a.wait_queue_empty()
    assert not a.queue_ids("deferred")
    # B logs its local delivery just after the Maildir file appears.
    wait_for(lambda: f"to=<{USER2}@b.test>" in b.log_text(), what="B's delivery log line")


def test_relayhost_down_defers_with_connect_error(make_instance):
    port = free_port()
    a = make_instance(main_extra={"relayhost": f"[127.0.0.1]:{port}"})
    send(a, f"{USER2}@b.test", "nobody listening")
    wait_for(lambda: a.queue_ids("deferred"), what="the message to be deferred")
    assert re.search(rf"to=<{USER2}@b\.test>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:{port}, .*"
                     rf"dsn=4\.4\.1, status=deferred \(connect to 127\.0\.0\.1\[127\.0\.0\.1\]:{port}: "
                     r"Connection refused\)", a.log_text()), a.log_text()


@pytest.fixture
def dnsmasq():
    """A DNS server on 127.0.0.1:<port> serving b.test (MX 10 mx1 down, MX 20 mx2 up)
    and null.test (null MX)."""
    exe = shutil.which("dnsmasq")
    if exe is None:
        pytest.skip("dnsmasq not installed (tests/setup-deps.sh)")
    port = free_port()
    proc = subprocess.Popen(
        [exe, "--no-daemon", f"--port={port}", "--listen-address=127.0.0.1",
         "--bind-interfaces", "--no-resolv", "--no-hosts", "--user=root",
         "--pid-file=", "--log-facility=-",
         "--mx-host=b.test,mx1.b.test,10", "--mx-host=b.test,mx2.b.test,20",
         "--host-record=mx1.b.test,127.0.0.3", "--host-record=mx2.b.test,127.0.0.2",
         "--mx-host=null.test,.,0", "--host-record=null.test,127.0.0.2",
         "--address=/nx.test/"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(0.5)
    if proc.poll() is not None:
        pytest.fail("dnsmasq did not start: " + proc.stderr.read().decode(errors="replace"))
    yield port
    proc.terminate()
    proc.wait(timeout=10)


def test_mx_lookup_skips_dead_first_mx(make_instance, dnsmasq):
    make_b(make_instance)
    a = make_instance(main_extra={"rostfix_dns_servers": f"127.0.0.1:{dnsmasq}"})
    send(a, f"{USER2}@b.test", "via mx")
    msgs = wait_for(lambda: maildir_messages(USER2), timeout=60,
                    what="delivery via the second MX")
    assert b"Subject: via mx" in msgs[0][1]
    log = a.log_text()
    assert "connect to mx1.b.test[127.0.0.3]:25: Connection refused" in log, log
    assert re.search(rf"to=<{USER2}@b\.test>, relay=mx2\.b\.test\[127\.0\.0\.2\]:25, .*"
                     r"dsn=2\.0\.0, status=sent", log), log


def test_null_mx_bounces(make_instance, dnsmasq):
    a = make_instance(main_extra={"rostfix_dns_servers": f"127.0.0.1:{dnsmasq}"})
    send(a, "someone@null.test", "null mx")
    wait_for(lambda: "status=bounced" in a.log_text(), timeout=40, what="the bounce")
    assert re.search(r"to=<someone@null\.test>, relay=none, .*dsn=5\.1\.0, status=bounced "
                     r"\(Domain null\.test does not accept mail \(nullMX\)\)", a.log_text()), a.log_text()


def test_nxdomain_bounces_and_unanswered_name_defers(make_instance, dnsmasq):
    a = make_instance(main_extra={"rostfix_dns_servers": f"127.0.0.1:{dnsmasq}"})
    send(a, "someone@nx.test", "nxdomain")
    # dnsmasq has no upstream for other names: it refuses, which is temporary.
    send(a, "someone@elsewhere.test", "no answer")
    wait_for(lambda: "to=<someone@nx.test>" in a.log_text()
             and "to=<someone@elsewhere.test>" in a.log_text(), timeout=60, what="both verdicts")
    log = a.log_text()
    assert re.search(r"to=<someone@nx\.test>, relay=none, .*dsn=5\.4\.4, status=bounced "
                     r"\(Host or domain name not found\. Name service error for name=nx\.test "
                     r"type=MX: Host not found\)", log), log
    assert re.search(r"to=<someone@elsewhere\.test>, relay=none, .*dsn=4\.4\.3, "
                     r"status=deferred \(Host or domain name not found\. Name service error "
                     r"for name=elsewhere\.test type=MX: Host not found, try again\)", log), log
